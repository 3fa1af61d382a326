//! The WebP thumbnail of a render: one representative frame, scaled down to fit 640x640
//! (never up), converted to the BT.601 limited-range 4:2:0 that WebP defines, and encoded
//! with libwebp at quality 80. libwebp's packet is a complete `.webp` file, so it is
//! written as it is.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use super::encode::copy_plane_into;
use super::error::MediaError;
use super::frame::{Matrix, PixelLayout, Range, VideoFrame};
use super::probe;

/// The largest side of a thumbnail.
const MAX_SIDE: u32 = 640;

/// Writes `frame` as a WebP picture at `path`.
pub fn write_thumbnail(frame: &VideoFrame, path: &Path) -> Result<(), MediaError> {
    probe::init();
    let (width, height) = thumbnail_size(frame.width, frame.height)?;
    let picture = scale_to_webp_space(frame, width, height)?;
    let bytes = encode_webp(&picture)?;
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Fits within MAX_SIDE keeping the shape; even sides for 4:2:0.
fn thumbnail_size(width: u32, height: u32) -> Result<(u32, u32), MediaError> {
    if width == 0 || height == 0 {
        return Err(MediaError::Encode(format!(
            "thumbnail: frame size must be non-zero, got {width}x{height}"
        )));
    }
    let scale = (f64::from(MAX_SIDE) / f64::from(width.max(height))).min(1.0);
    let side = |v: u32| (((f64::from(v) * scale) / 2.0).round() as u32 * 2).max(2);
    Ok((side(width), side(height)))
}

fn source_format(layout: PixelLayout, range: Range) -> Pixel {
    let full = range == Range::Full;
    match layout {
        PixelLayout::Yuv420p if full => Pixel::YUVJ420P,
        PixelLayout::Yuv420p => Pixel::YUV420P,
        PixelLayout::Yuv422p if full => Pixel::YUVJ422P,
        PixelLayout::Yuv422p => Pixel::YUV422P,
        PixelLayout::Yuv444p if full => Pixel::YUVJ444P,
        PixelLayout::Yuv444p => Pixel::YUV444P,
        PixelLayout::Nv12 => Pixel::NV12,
        PixelLayout::Rgba => Pixel::RGBA,
    }
}

/// One swscale pass: any layout and matrix to BT.601 limited yuv420p at the thumbnail size.
fn scale_to_webp_space(
    frame: &VideoFrame,
    width: u32,
    height: u32,
) -> Result<ffmpeg::frame::Video, MediaError> {
    let format = source_format(frame.layout, frame.range);
    let mut source = ffmpeg::frame::Video::new(format, frame.width, frame.height);
    for (index, plane) in frame.planes.iter().enumerate() {
        copy_plane_into_bytes(&plane.data, plane.stride, &mut source, index);
    }
    let mut context = ffmpeg::software::scaling::Context::get(
        format,
        frame.width,
        frame.height,
        Pixel::YUV420P,
        width,
        height,
        ffmpeg::software::scaling::Flags::BICUBIC,
    )
    .map_err(|e| MediaError::Encode(format!("thumbnail scaler: {e}")))?;
    set_colorspace(&mut context, frame.matrix, frame.range);
    let mut out = ffmpeg::frame::Video::new(Pixel::YUV420P, width, height);
    context
        .run(&source, &mut out)
        .map_err(|e| MediaError::Encode(format!("thumbnail scaler: {e}")))?;
    Ok(out)
}

/// Copies a plane whose rows may hold several bytes per pixel (NV12 chroma, RGBA).
fn copy_plane_into_bytes(
    data: &[u8],
    stride: usize,
    frame: &mut ffmpeg::frame::Video,
    index: usize,
) {
    let format = frame.format();
    if matches!(format, Pixel::NV12 | Pixel::RGBA) {
        let bytes_per_pixel = if format == Pixel::RGBA { 4 } else { 2 };
        let rows = frame.plane_height(index) as usize;
        let width = frame.plane_width(index) as usize * bytes_per_pixel;
        let dest_stride = frame.stride(index);
        let dest = frame.data_mut(index);
        for row in 0..rows {
            let (Some(src), Some(dst)) = (
                data.get(row * stride..row * stride + width),
                dest.get_mut(row * dest_stride..row * dest_stride + width),
            ) else {
                break;
            };
            dst.copy_from_slice(src);
        }
    } else {
        copy_plane_into(data, stride, frame, index);
    }
}

/// Tells swscale the source's matrix and range, and BT.601 limited for the output.
fn set_colorspace(context: &mut ffmpeg::software::scaling::Context, matrix: Matrix, range: Range) {
    let source: i32 = match matrix {
        Matrix::Bt709 => ffmpeg::ffi::SWS_CS_ITU709,
        Matrix::Bt601 => ffmpeg::ffi::SWS_CS_ITU601,
    };
    // SAFETY: the context is initialised; sws_getCoefficients returns pointers to static
    // tables; the brightness/contrast/saturation values are swscale's neutral ones.
    unsafe {
        ffmpeg::ffi::sws_setColorspaceDetails(
            context.as_mut_ptr(),
            ffmpeg::ffi::sws_getCoefficients(source),
            i32::from(range == Range::Full),
            ffmpeg::ffi::sws_getCoefficients(ffmpeg::ffi::SWS_CS_ITU601),
            0,
            0,
            1 << 16,
            1 << 16,
        );
    }
}

fn encode_webp(picture: &ffmpeg::frame::Video) -> Result<Vec<u8>, MediaError> {
    let fail = |e: ffmpeg::Error| MediaError::Encode(format!("thumbnail (libwebp): {e}"));
    let codec = ffmpeg::encoder::find_by_name("libwebp")
        .ok_or_else(|| MediaError::Encode("FFmpeg has no libwebp encoder".into()))?;
    let mut encoder = ffmpeg::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(fail)?;
    encoder.set_width(picture.width());
    encoder.set_height(picture.height());
    encoder.set_format(Pixel::YUV420P);
    encoder.set_time_base(ffmpeg::Rational::new(1, 25));
    let mut options = ffmpeg::Dictionary::new();
    options.set("quality", "80");
    let mut encoder = encoder.open_as_with(codec, options).map_err(fail)?;

    encoder.send_frame(picture).map_err(fail)?;
    encoder.send_eof().map_err(fail)?;
    let mut packet = ffmpeg::Packet::empty();
    encoder.receive_packet(&mut packet).map_err(fail)?;
    let data = packet.data().unwrap_or_default();
    if !data.starts_with(b"RIFF") {
        return Err(MediaError::Encode(
            "thumbnail: libwebp returned no WebP file".into(),
        ));
    }
    Ok(data.to_vec())
}
