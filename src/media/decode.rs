//! Video decoding: a source's frames at the times the output asks for.
//!
//! A [`VideoDecoder`] turns any source into a constant-rate sequence: `frame_at(t)` is the
//! frame displayed at source time `t`, the last one whose presentation time is at or before
//! `t`. So variable-rate sources, rates unlike the output's and trimmed starts all come out
//! right, and past the end the last frame is held.
//!
//! Frames keep their native planar layout (see [`PixelLayout`]) so the GPU does the colour
//! conversion and scaling. The one CPU conversion is for layouts the GPU does not take
//! (10-bit, paletted, grey, packed RGB...): swscale turns them, at the same size, into
//! RGBA when they carry alpha or are RGB-like, else into 8-bit 4:2:0.
//!
//! The colour matrix is the stream's tag when it has one (BT.709; BT.601 for the
//! 470BG/170M/FCC tags; other tags such as BT.2020 are taken as BT.709, the nearest the GPU
//! knows); an untagged source is BT.709 when HD-sized (width >= 1280 or height >= 720) and
//! BT.601 otherwise, as players do. The range is full for `yuvj*` formats and sources
//! tagged full, limited otherwise.
//!
//! Each decoded picture is copied once, plane by plane, into one of two reused
//! [`VideoFrame`]s (the current one and the one after it), because FFmpeg reuses its own
//! buffers; in steady state nothing is allocated per frame by this module. FFmpeg itself
//! allocates each compressed packet it reads (one small allocation per packet, which its
//! API does not let a caller avoid).

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::media::Type as MediaType;
use ffmpeg::util::color;
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::frame::{Matrix, PixelLayout, Plane, Range, Rotation, VideoFrame};
use super::probe;

/// A frame is "displayed at t" when its time is at most half a microsecond after t, plus
/// half a tick of its stream's time base: a container with coarse ticks (Matroska's
/// milliseconds) rounds 1/30 s to 0.033 and 2/30 s to 0.067, and that rounding must not
/// make a frame late by a whole output frame.
const PTS_TOLERANCE: f64 = 0.5e-6;

/// Decodes one source's video stream for one clip.
pub struct VideoDecoder {
    input: ffmpeg::format::context::Input,
    decoder: ffmpeg::decoder::Video,
    stream_index: usize,
    field: String,
    /// Seconds per unit of the stream's timestamps.
    time_base: f64,
    /// How late a frame's time may be and still count as displayed at `t`.
    tolerance: f64,
    /// The container's start time in seconds: source time 0.
    start: f64,
    /// The frame rate used to place frames that carry no timestamp.
    fallback_step: f64,
    rotation: Rotation,
    container_sar: ffmpeg::ffi::AVRational,
    decoded: ffmpeg::frame::Video,
    converter: Option<Converter>,
    current: VideoFrame,
    has_current: bool,
    next: VideoFrame,
    has_next: bool,
    demuxer_done: bool,
    decoder_done: bool,
    last_pts: Option<f64>,
}

/// swscale to a layout the GPU takes, at the same size.
struct Converter {
    context: ffmpeg::software::scaling::Context,
    output: ffmpeg::frame::Video,
    layout: PixelLayout,
}

// SAFETY: the SwsContext is owned by this converter alone and only used through `&mut`;
// swscale contexts hold no thread-local state, so moving one to another thread is sound.
// (ffmpeg-next marks its other contexts Send for the same reason but not this one.)
unsafe impl Send for Converter {}

impl VideoDecoder {
    /// Opens the best video stream of `path` and positions it so that the first frame
    /// returned is the one displayed at `trim_start` seconds (ignored for stills).
    pub fn open(path: &Path, field: &str, trim_start: f64) -> Result<VideoDecoder, MediaError> {
        let mut input = probe::open_input(path, field)?;
        let is_image = probe::is_image_format(input.format().name());
        let stream = input
            .streams()
            .best(MediaType::Video)
            .ok_or_else(|| MediaError::source(field, "the file has no video stream"))?;
        let stream_index = stream.index();
        let time_base = f64::from(stream.time_base());
        let rate = stream.avg_frame_rate();
        let fallback_step = if rate.numerator() > 0 && rate.denominator() > 0 {
            1.0 / f64::from(rate)
        } else {
            1.0 / 25.0
        };
        let rotation = probe::stream_rotation(&stream);
        // SAFETY: reads a plain field of the live AVStream.
        let container_sar = unsafe { (*stream.as_ptr()).sample_aspect_ratio };
        let decoder = open_decoder(&stream, field)?;
        let start = container_start(&input);

        if trim_start > 0.0 && !is_image {
            seek_before(&mut input, start + trim_start, field)?;
        }
        Ok(VideoDecoder {
            input,
            decoder,
            stream_index,
            field: field.to_string(),
            time_base,
            tolerance: PTS_TOLERANCE + time_base.min(0.01) / 2.0,
            start,
            fallback_step,
            rotation,
            container_sar,
            decoded: ffmpeg::frame::Video::empty(),
            converter: None,
            current: VideoFrame::new_output(0, 0),
            has_current: false,
            next: VideoFrame::new_output(0, 0),
            has_next: false,
            demuxer_done: false,
            decoder_done: false,
            last_pts: None,
        })
    }

    /// The source frame displayed at source time `t` (seconds; calls come with `t`
    /// non-decreasing). Before the first frame, the first frame; past the end, the last
    /// frame, held.
    pub fn frame_at(&mut self, t: f64) -> Result<&VideoFrame, MediaError> {
        loop {
            if self.has_next {
                if self.has_current && self.next.pts > t + self.tolerance {
                    break;
                }
                std::mem::swap(&mut self.current, &mut self.next);
                self.has_current = true;
                self.has_next = false;
            }
            if self.decoder_done {
                break;
            }
            self.has_next = self.decode_next()?;
        }
        if !self.has_current {
            return Err(MediaError::source(
                &self.field,
                "the video stream has no decodable frame",
            ));
        }
        Ok(&self.current)
    }

    /// Decodes the next picture into `self.next`; false at the end of the stream.
    fn decode_next(&mut self) -> Result<bool, MediaError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    self.store_decoded()?;
                    return Ok(true);
                }
                Err(ffmpeg::Error::Eof) => {
                    self.decoder_done = true;
                    return Ok(false);
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {}
                Err(e) => return Err(self.error(format!("decoding failed: {e}"))),
            }
            self.feed_decoder()?;
        }
    }

    /// Sends the next packet of our stream to the decoder, or the end-of-stream mark.
    fn feed_decoder(&mut self) -> Result<(), MediaError> {
        let input = &mut self.input;
        super::demux::feed_decoder(
            input,
            self.stream_index,
            &mut self.demuxer_done,
            &mut self.decoder,
        )
        .map_err(|reason| MediaError::source(&self.field, format!("video: {reason}")))
    }

    /// Copies `self.decoded` (converted if need be) into `self.next`.
    fn store_decoded(&mut self) -> Result<(), MediaError> {
        let pts = self.frame_time();
        let matrix = frame_matrix(&self.decoded);
        let range = frame_range(&self.decoded);
        let sample_aspect = self.sample_aspect();
        let source = match native_layout(self.decoded.format()) {
            Some(layout) => Some(layout),
            None => {
                self.convert()?;
                None
            }
        };
        let (frame, layout) = match (&self.converter, source) {
            (_, Some(layout)) => (&self.decoded, layout),
            (Some(c), None) => (&c.output, c.layout),
            (None, None) => return Err(self.error("internal: no converter".to_string())),
        };
        copy_planes(frame, layout, &mut self.next);
        self.next.matrix = matrix;
        self.next.range = range;
        self.next.rotation = self.rotation;
        self.next.sample_aspect = sample_aspect;
        self.next.pts = pts;
        Ok(())
    }

    /// The picture's time in seconds from the source's start; a picture without a
    /// timestamp comes one frame after the previous one.
    fn frame_time(&mut self) -> f64 {
        let pts = self
            .decoded
            .timestamp()
            .map(|ts| ts as f64 * self.time_base - self.start)
            .unwrap_or_else(|| self.last_pts.map_or(0.0, |p| p + self.fallback_step));
        self.last_pts = Some(pts);
        pts
    }

    fn sample_aspect(&self) -> (u32, u32) {
        let codec = self.decoded.aspect_ratio();
        [
            (self.container_sar.num, self.container_sar.den),
            (codec.numerator(), codec.denominator()),
        ]
        .into_iter()
        .find(|&(n, d)| n > 0 && d > 0)
        .map_or((1, 1), |(n, d)| (n as u32, d as u32))
    }

    /// Converts `self.decoded` with swscale, creating the converter on first use (and again
    /// only if the source's format or size changes mid-stream).
    fn convert(&mut self) -> Result<(), MediaError> {
        let (format, width, height) = (
            self.decoded.format(),
            self.decoded.width(),
            self.decoded.height(),
        );
        let stale = self.converter.as_ref().is_none_or(|c| {
            let input = c.context.input();
            input.format != format || input.width != width || input.height != height
        });
        if stale {
            let (target, layout) = conversion_target(format);
            let context = ffmpeg::software::scaling::Context::get(
                format,
                width,
                height,
                target,
                width,
                height,
                ffmpeg::software::scaling::Flags::POINT,
            )
            .map_err(|e| self.error(format!("cannot convert pixel format {format:?}: {e}")))?;
            let output = ffmpeg::frame::Video::new(target, width, height);
            self.converter = Some(Converter {
                context,
                output,
                layout,
            });
        }
        let Some(converter) = self.converter.as_mut() else {
            return Err(self.error("internal: no converter".to_string()));
        };
        converter
            .context
            .run(&self.decoded, &mut converter.output)
            .map_err(|e| MediaError::source(&self.field, format!("pixel conversion failed: {e}")))
    }

    fn error(&self, reason: String) -> MediaError {
        MediaError::source(&self.field, reason)
    }
}

/// Opens the stream's decoder with FFmpeg's own thread count.
fn open_decoder(
    stream: &ffmpeg::format::stream::Stream,
    field: &str,
) -> Result<ffmpeg::decoder::Video, MediaError> {
    let mut context = ffmpeg::codec::Context::from_parameters(stream.parameters())
        .map_err(|e| MediaError::source(field, format!("cannot read the video codec: {e}")))?;
    // The file may differ from the one probed, or change size mid-stream: the header is
    // checked again here, and FFmpeg refuses any frame over the limit before allocating it.
    // SAFETY: the context was just allocated and is not open yet; plain field accesses.
    let (width, height) = unsafe {
        let raw = &mut *context.as_mut_ptr();
        raw.max_pixels = probe::MAX_PICTURE_PIXELS as i64;
        (raw.width.max(0) as u32, raw.height.max(0) as u32)
    };
    probe::check_picture_size(width, height, field)?;
    // Count 0: FFmpeg picks one thread per core.
    let mut threading = ffmpeg::threading::Config::kind(ffmpeg::threading::Type::Frame);
    threading.count = 0;
    context.set_threading(threading);
    context
        .decoder()
        .video()
        .map_err(|e| MediaError::source(field, format!("cannot decode the video stream: {e}")))
}

/// The container's start time in seconds (0 when unknown): every time is measured from it,
/// so audio and video of one file stay in step.
pub(crate) fn container_start(input: &ffmpeg::format::context::Input) -> f64 {
    // SAFETY: reads a plain field of the open AVFormatContext.
    let start = unsafe { (*input.as_ptr()).start_time };
    if start == ffmpeg::ffi::AV_NOPTS_VALUE {
        0.0
    } else {
        start as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    }
}

/// Seeks to the last keyframe at or before `seconds`; decoding forward from there reaches
/// the exact frame.
pub(crate) fn seek_before(
    input: &mut ffmpeg::format::context::Input,
    seconds: f64,
    field: &str,
) -> Result<(), MediaError> {
    let ts = (seconds * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
    input
        .seek(ts, ..ts)
        .map_err(|e| MediaError::source(field, format!("cannot seek to {seconds:.3} s: {e}")))
}

/// The layouts the GPU takes as they are.
fn native_layout(format: Pixel) -> Option<PixelLayout> {
    match format {
        Pixel::YUV420P | Pixel::YUVJ420P => Some(PixelLayout::Yuv420p),
        Pixel::YUV422P | Pixel::YUVJ422P => Some(PixelLayout::Yuv422p),
        Pixel::YUV444P | Pixel::YUVJ444P => Some(PixelLayout::Yuv444p),
        Pixel::NV12 => Some(PixelLayout::Nv12),
        Pixel::RGBA => Some(PixelLayout::Rgba),
        _ => None,
    }
}

/// What a format the GPU does not take becomes: RGBA when it has alpha or is RGB-like or
/// paletted, else 8-bit 4:2:0.
fn conversion_target(format: Pixel) -> (Pixel, PixelLayout) {
    let flags = format.descriptor().map_or(0, |d| {
        // SAFETY: a descriptor points to FFmpeg's static table entry.
        unsafe { (*d.as_ptr()).flags }
    });
    let rgb_like = ffmpeg::ffi::AV_PIX_FMT_FLAG_ALPHA
        | ffmpeg::ffi::AV_PIX_FMT_FLAG_RGB
        | ffmpeg::ffi::AV_PIX_FMT_FLAG_PAL;
    if flags & rgb_like as u64 != 0 {
        (Pixel::RGBA, PixelLayout::Rgba)
    } else {
        (Pixel::YUV420P, PixelLayout::Yuv420p)
    }
}

/// The matrix rule of the module docs.
fn frame_matrix(frame: &ffmpeg::frame::Video) -> Matrix {
    match frame.color_space() {
        color::Space::BT709 => Matrix::Bt709,
        color::Space::BT470BG | color::Space::SMPTE170M | color::Space::FCC => Matrix::Bt601,
        color::Space::Unspecified | color::Space::Reserved | color::Space::RGB => {
            if frame.width() >= 1280 || frame.height() >= 720 {
                Matrix::Bt709
            } else {
                Matrix::Bt601
            }
        }
        _ => Matrix::Bt709,
    }
}

fn frame_range(frame: &ffmpeg::frame::Video) -> Range {
    let jpeg_format = matches!(
        frame.format(),
        Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P
    );
    if jpeg_format || frame.color_range() == color::Range::JPEG {
        Range::Full
    } else {
        Range::Limited
    }
}

/// Plane sizes (width in bytes, height) of a layout at a picture size.
fn plane_shapes(layout: PixelLayout, width: u32, height: u32) -> Vec<(u32, u32)> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    match layout {
        PixelLayout::Yuv420p => vec![(width, height), (cw, ch), (cw, ch)],
        PixelLayout::Yuv422p => vec![(width, height), (cw, height), (cw, height)],
        PixelLayout::Yuv444p => vec![(width, height); 3],
        PixelLayout::Nv12 => vec![(width, height), (cw * 2, ch)],
        PixelLayout::Rgba => vec![(width * 4, height)],
    }
}

/// Copies a picture's planes into `out`, tightly packed, reusing its buffers. A plane's
/// `width` counts pixels, as [`Plane`] documents (an NV12 chroma pixel is a U,V pair, an
/// RGBA pixel four bytes).
pub(crate) fn copy_planes(frame: &ffmpeg::frame::Video, layout: PixelLayout, out: &mut VideoFrame) {
    let (width, height) = (frame.width(), frame.height());
    let shapes = plane_shapes(layout, width, height);
    out.planes.resize_with(shapes.len(), Plane::default);
    for (index, (&(bytes, rows), plane)) in shapes.iter().zip(out.planes.iter_mut()).enumerate() {
        let pixel_width = match layout {
            PixelLayout::Rgba => bytes / 4,
            PixelLayout::Nv12 if index == 1 => bytes / 2,
            _ => bytes,
        };
        let (bytes, rows) = (bytes as usize, rows as usize);
        plane.data.resize(bytes * rows, 0);
        plane.stride = bytes;
        plane.width = pixel_width;
        plane.height = rows as u32;
        let stride = frame.stride(index);
        let source = frame.data(index);
        for (row, dest) in plane.data.chunks_exact_mut(bytes).enumerate() {
            let start = row * stride;
            if let Some(src) = source.get(start..start + bytes) {
                dest.copy_from_slice(src);
            }
        }
    }
    out.width = width;
    out.height = height;
    out.layout = layout;
}
