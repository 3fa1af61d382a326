//! Probing: what a source holds (its streams, size, rate, rotation, length) read from the
//! container without decoding it. The render plans the timeline from this, and a source
//! that cannot be opened fails here, before any frame is rendered, naming its clip.
//!
//! A truncated MP4 whose index (`moov`) is missing fails at once: FFmpeg refuses to open
//! it, and its reason is passed on.
//!
//! What the media module accepts: any container and codec this FFmpeg build demuxes and
//! decodes (MP4/MOV, Matroska/WebM, AVI, MPEG-TS, WAV, MP3, ...); video in any pixel
//! format (yuv420p/422p/444p, their `yuvj` full-range forms, NV12 and RGBA go to the GPU as
//! they are, anything else is converted once, see [`super::decode`]), any size including
//! odd ones, any frame rate including variable; display-matrix rotations of 90/180/270
//! degrees; non-square pixels; stills (PNG with alpha, JPEG, still WebP); audio of any rate
//! and channel layout. What it refuses, naming the clip and FFmpeg's reason: a file FFmpeg
//! cannot open (not media, an HTML page, a truncated MP4 without its index), a file with
//! neither video nor audio, a video stream with no decodable frame. Animated WebP is not
//! decoded by FFmpeg 5.1.

use std::path::Path;
use std::sync::Once;

use ffmpeg::codec::packet::side_data::Type as SideDataType;
use ffmpeg::format::stream::Stream;
use ffmpeg::media::Type as MediaType;
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::frame::Rotation;

/// Initialises FFmpeg once for the process and silences its log: every failure reaches
/// the user through a [`MediaError`] instead.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::warn!("FFmpeg failed to initialise: {e}");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Quiet);
    });
}

/// What [`probe`] found in a source.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub video: Option<VideoInfo>,
    pub audio: Option<AudioInfo>,
    /// Length in seconds, when the container knows it.
    pub duration: Option<f64>,
    /// FFmpeg's name of the container (`mov,mp4,m4a,3gp,3g2,mj2`, `png_pipe`, ...).
    pub format_name: String,
    /// A still picture (PNG, JPEG, WebP...): decoded once and held for the clip.
    pub is_image: bool,
}

/// The best video stream of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Stored (coded) size, before rotation and sample aspect.
    pub width: u32,
    pub height: u32,
    /// The stream's average frame rate, when known.
    pub fps: Option<f64>,
    pub rotation: Rotation,
    /// Pixel aspect ratio (num, den); (1, 1) for square pixels.
    pub sample_aspect: (u32, u32),
    /// FFmpeg's codec name (`h264`, `png`...).
    pub codec: String,
    /// FFmpeg's pixel format name (`yuv420p`, `rgba`...).
    pub pixel_format: String,
}

impl VideoInfo {
    /// The size the picture is shown at, after sample aspect and rotation.
    pub fn display_size(&self) -> (f64, f64) {
        let (num, den) = self.sample_aspect;
        let sar = if num == 0 || den == 0 {
            1.0
        } else {
            f64::from(num) / f64::from(den)
        };
        let (w, h) = (f64::from(self.width) * sar, f64::from(self.height));
        match self.rotation {
            Rotation::Cw90 | Rotation::Cw270 => (h, w),
            Rotation::None | Rotation::Cw180 => (w, h),
        }
    }
}

/// The best audio stream of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub codec: String,
}

/// The largest picture decoded, in pixels (8192x8192): twice 8K UHD, so every legal
/// output size and any real camera fits, while a tiny file that claims a huge picture (a
/// decompression bomb) is refused before a frame buffer is allocated.
pub const MAX_PICTURE_PIXELS: u64 = 8192 * 8192;
/// The longest picture side decoded, in pixels.
pub const MAX_PICTURE_SIDE: u32 = 16384;

/// Refuses a picture over [`MAX_PICTURE_SIDE`] or [`MAX_PICTURE_PIXELS`], naming the clip.
pub(crate) fn check_picture_size(width: u32, height: u32, field: &str) -> Result<(), MediaError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_PICTURE_SIDE || height > MAX_PICTURE_SIDE || pixels > MAX_PICTURE_PIXELS {
        return Err(MediaError::source(
            field,
            format!(
                "the picture is {width}x{height}; at most {MAX_PICTURE_SIDE} pixels a side and \
                 {MAX_PICTURE_PIXELS} pixels (8192x8192) in all are decoded"
            ),
        ));
    }
    Ok(())
}

/// Opens `path` and reads what it holds. `field` is the JSON path of the source
/// (`project.clips[3].src`) and names it in every error.
pub fn probe(path: &Path, field: &str) -> Result<MediaInfo, MediaError> {
    init();
    let input = open_input(path, field)?;
    let format_name = input.format().name().to_string();
    let video = input
        .streams()
        .best(MediaType::Video)
        .map(|s| video_info(&s));
    let audio = input
        .streams()
        .best(MediaType::Audio)
        .map(|s| audio_info(&s));
    if let Some(v) = &video {
        if v.width == 0 || v.height == 0 {
            // What FFmpeg leaves when the header it read was refused (over the limit
            // below, or broken): the picture cannot be decoded.
            return Err(MediaError::source(
                field,
                format!(
                    "the picture's size could not be read: its header is broken or claims \
                     more than {MAX_PICTURE_SIDE} pixels a side or {MAX_PICTURE_PIXELS} pixels \
                     (8192x8192) in all"
                ),
            ));
        }
        check_picture_size(v.width, v.height, field)?;
    }
    if video.is_none() && audio.is_none() {
        return Err(MediaError::source(
            field,
            "no video or audio stream in the file",
        ));
    }
    let duration = (input.duration() > 0)
        .then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE));
    let is_image = is_image_format(&format_name);
    Ok(MediaInfo {
        video,
        audio,
        duration,
        format_name,
        is_image,
    })
}

/// Opens a container, turning FFmpeg's failure into an error naming the clip.
///
/// Reading the stream information decodes a first frame of each stream; the decoders it
/// opens get FFmpeg's `max_pixels` at [`MAX_PICTURE_PIXELS`], so a file that claims a huge
/// picture is refused before that frame's buffer is allocated (FFmpeg's own default bound
/// lets a 20000x12000 RGBA picture, 960 MB, through).
pub(crate) fn open_input(
    path: &Path,
    field: &str,
) -> Result<ffmpeg::format::context::Input, MediaError> {
    use std::os::unix::ffi::OsStrExt;
    init();
    let failed = |e: ffmpeg::Error| {
        MediaError::source(
            field,
            format!("cannot open {} as media: {e}", path.display()),
        )
    };
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        MediaError::source(field, format!("{}: a NUL byte in the path", path.display()))
    })?;
    let limit = std::ffi::CString::new(MAX_PICTURE_PIXELS.to_string())
        .map_err(|_| MediaError::source(field, "the picture limit is not a C string"))?;
    // SAFETY: `ps` starts null and is set by avformat_open_input on success; it is closed
    // on every failure path or handed to `Input::wrap`, which owns and closes it. The
    // per-stream option dictionaries are an array of `nb_streams` entries, as
    // avformat_find_stream_info requires, and each is freed after the call.
    unsafe {
        let mut ps = std::ptr::null_mut();
        let r = ffmpeg::ffi::avformat_open_input(
            &mut ps,
            c_path.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
        );
        if r < 0 {
            return Err(failed(ffmpeg::Error::from(r)));
        }
        let streams = (*ps).nb_streams as usize;
        let mut options: Vec<*mut ffmpeg::ffi::AVDictionary> = vec![std::ptr::null_mut(); streams];
        for dict in &mut options {
            ffmpeg::ffi::av_dict_set(dict, c"max_pixels".as_ptr(), limit.as_ptr(), 0);
        }
        let options_ptr = if streams > 0 {
            options.as_mut_ptr()
        } else {
            std::ptr::null_mut()
        };
        let r = ffmpeg::ffi::avformat_find_stream_info(ps, options_ptr);
        for dict in &mut options {
            ffmpeg::ffi::av_dict_free(dict);
        }
        if r < 0 {
            ffmpeg::ffi::avformat_close_input(&mut ps);
            return Err(failed(ffmpeg::Error::from(r)));
        }
        Ok(ffmpeg::format::context::Input::wrap(ps))
    }
}

/// Still-image demuxers: `image2` (by file name) and the `*_pipe` ones (by content).
pub(crate) fn is_image_format(format_name: &str) -> bool {
    format_name == "image2" || format_name.ends_with("_pipe") || format_name == "webp"
}

fn video_info(stream: &Stream) -> VideoInfo {
    let params = stream.parameters();
    // SAFETY: `params` wraps the stream's live AVCodecParameters, valid while `stream` is.
    let (width, height, sar, format) = unsafe {
        let p = &*params.as_ptr();
        (p.width, p.height, p.sample_aspect_ratio, p.format)
    };
    let pixel_format = pixel_format_name(format);
    let rate = stream.avg_frame_rate();
    let fps = (rate.numerator() > 0 && rate.denominator() > 0).then(|| f64::from(rate));
    VideoInfo {
        width: width.max(0) as u32,
        height: height.max(0) as u32,
        fps,
        rotation: stream_rotation(stream),
        sample_aspect: stream_sample_aspect(stream, sar),
        codec: params.id().name().to_string(),
        pixel_format,
    }
}

fn audio_info(stream: &Stream) -> AudioInfo {
    let params = stream.parameters();
    // SAFETY: as in `video_info`.
    let (rate, channels) = unsafe {
        let p = &*params.as_ptr();
        (p.sample_rate, p.ch_layout.nb_channels)
    };
    AudioInfo {
        sample_rate: rate.max(0) as u32,
        channels: channels.max(0) as u16,
        codec: params.id().name().to_string(),
    }
}

fn pixel_format_name(format: i32) -> String {
    // SAFETY: av_get_pix_fmt_name accepts any value and returns null for unknown ones;
    // a non-null result is a static NUL-terminated string.
    unsafe {
        let name = ffmpeg::ffi::av_get_pix_fmt_name(std::mem::transmute::<
            i32,
            ffmpeg::ffi::AVPixelFormat,
        >(format.max(-1)));
        if name.is_null() {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// The clockwise turn the stream's display matrix asks for, to the nearest quarter.
pub(crate) fn stream_rotation(stream: &Stream) -> Rotation {
    for side in stream.side_data() {
        if side.kind() != SideDataType::DisplayMatrix || side.data().len() < 36 {
            continue;
        }
        // SAFETY: the display matrix is 9 native-endian i32 (36 bytes, checked above);
        // av_display_rotation_get only reads them.
        let ccw = unsafe { ffmpeg::ffi::av_display_rotation_get(side.data().as_ptr().cast()) };
        return rotation_from_degrees(-ccw);
    }
    Rotation::None
}

/// Maps a clockwise angle in degrees to the nearest quarter turn.
pub(crate) fn rotation_from_degrees(clockwise: f64) -> Rotation {
    if !clockwise.is_finite() {
        return Rotation::None;
    }
    match ((clockwise / 90.0).round() as i64).rem_euclid(4) {
        1 => Rotation::Cw90,
        2 => Rotation::Cw180,
        3 => Rotation::Cw270,
        _ => Rotation::None,
    }
}

/// The container's sample aspect if it sets one, else the codec's, else square.
pub(crate) fn stream_sample_aspect(
    stream: &Stream,
    codec_sar: ffmpeg::ffi::AVRational,
) -> (u32, u32) {
    // SAFETY: reads a plain field of the live AVStream.
    let container = unsafe { (*stream.as_ptr()).sample_aspect_ratio };
    [container, codec_sar]
        .into_iter()
        .find(|r| r.num > 0 && r.den > 0)
        .map_or((1, 1), |r| (r.num as u32, r.den as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_turns_round_to_the_nearest() {
        assert_eq!(rotation_from_degrees(90.0), Rotation::Cw90);
        assert_eq!(rotation_from_degrees(-90.0), Rotation::Cw270);
        assert_eq!(rotation_from_degrees(179.6), Rotation::Cw180);
        assert_eq!(rotation_from_degrees(0.2), Rotation::None);
        assert_eq!(rotation_from_degrees(f64::NAN), Rotation::None);
    }

    #[test]
    fn image_demuxers_are_recognised() {
        assert!(is_image_format("png_pipe"));
        assert!(is_image_format("image2"));
        assert!(!is_image_format("mov,mp4,m4a,3gp,3g2,mj2"));
    }
}
