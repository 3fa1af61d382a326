//! Decoding real files made with the ffmpeg CLI: geometry, timing, seeking, images, audio
//! resampling and errors, each asserted on what a viewer would see or hear.

use std::path::{Path, PathBuf};
use std::process::Command;

use render_node::audio::source::AudioSource;
use render_node::media::{
    AudioReader, PixelLayout, Range, Rotation, VideoDecoder, VideoFrame, probe,
};

const FIELD: &str = "project.clips[3].src";

/// Runs the ffmpeg CLI with `args` writing `name` in `dir`; returns the output path.
fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-nostdin"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg CLI runs");
    assert!(status.success(), "ffmpeg failed for {name}");
    out
}

/// The mean luma of a frame's Y plane.
fn mean_luma(frame: &VideoFrame) -> f64 {
    let y = &frame.planes[0];
    let mut sum = 0u64;
    for row in 0..y.height {
        sum += y.row(row)[..y.width as usize]
            .iter()
            .map(|&v| u64::from(v))
            .sum::<u64>();
    }
    sum as f64 / f64::from(y.width * y.height)
}

/// The frame number coded in the luma by `luma_coded` (luma = 16 + n).
fn frame_number(frame: &VideoFrame) -> i64 {
    (mean_luma(frame) - 16.0).round() as i64
}

/// A lossless 25 fps clip of `seconds` whose frame n has luma 16 + n, one keyframe
/// every `gop` frames.
fn luma_coded(dir: &Path, name: &str, seconds: u32, gop: u32) -> PathBuf {
    let source = format!("color=c=black:s=64x48:r=25:d={seconds},geq=lum='16+N':cb=128:cr=128");
    let gop = gop.to_string();
    ffmpeg(
        dir,
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            &source,
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-bf",
            "0",
        ],
    )
}

/// Writes a 90° clockwise display matrix into the MP4's video track header, as phones do
/// (the ffmpeg 5.1 CLI has no option for it).
fn set_display_rotation_90(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let tkhd = bytes
        .windows(4)
        .position(|w| w == b"tkhd")
        .expect("a track header");
    assert_eq!(bytes[tkhd + 4], 0, "version 0 track header");
    // size/type, version/flags, 5 x 32-bit fields, 8 reserved, layer..volume, 2 reserved.
    let matrix = tkhd + 4 + 4 + 20 + 8 + 8;
    let values: [i32; 9] = [0, 0x1_0000, 0, -0x1_0000, 0, 0, 0, 0, 0x4000_0000];
    for (i, v) in values.iter().enumerate() {
        bytes[matrix + 4 * i..matrix + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn rotation_90_displays_portrait() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "rot.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x180:r=25:d=0.2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    set_display_rotation_90(&path);
    let info = probe(&path, FIELD).unwrap();
    let video = info.video.unwrap();
    assert_eq!(video.rotation, Rotation::Cw90);
    assert_eq!(video.display_size(), (180.0, 320.0));

    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    let frame = decoder.frame_at(0.0).unwrap();
    assert_eq!((frame.width, frame.height), (320, 180));
    assert_eq!(frame.rotation, Rotation::Cw90);
    assert_eq!(frame.display_size(), (180.0, 320.0));
}

#[test]
fn sample_aspect_16_15_displays_4_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "pal.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=720x576:r=25:d=0.12",
            "-vf",
            "setsar=16/15",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    let frame = decoder.frame_at(0.0).unwrap();
    assert_eq!(frame.sample_aspect, (16, 15));
    let (w, h) = frame.display_size();
    assert!((w / h - 4.0 / 3.0).abs() < 1e-9, "display {w}x{h}");
    // Fitted into 1280x720 (contain): 960 px wide.
    assert_eq!((720.0 * w / h).round(), 960.0);
}

#[test]
fn odd_size_yuv444p_decodes_in_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "odd.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=1280x720:r=25:d=0.08",
            "-vf",
            "scale=1279:719",
            "-pix_fmt",
            "yuv444p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    let frame = decoder.frame_at(0.0).unwrap();
    assert_eq!((frame.width, frame.height), (1279, 719));
    assert_eq!(frame.layout, PixelLayout::Yuv444p);
    assert_eq!(frame.planes.len(), 3);
    for plane in &frame.planes {
        assert_eq!((plane.width, plane.height), (1279, 719));
        assert_eq!(plane.data.len(), 1279 * 719);
    }
}

#[test]
fn ten_bit_source_is_converted_to_8_bit_420_at_the_same_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "ten.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:s=34x22:r=25:d=0.08",
            "-vf",
            "scale=33:21",
            "-pix_fmt",
            "yuv420p10le",
            "-c:v",
            "ffv1",
        ],
    );
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    let frame = decoder.frame_at(0.0).unwrap();
    assert_eq!(
        (frame.width, frame.height, frame.layout),
        (33, 21, PixelLayout::Yuv420p)
    );
    assert_eq!((frame.planes[1].width, frame.planes[1].height), (17, 11));
    // lavfi's gray is RGB 128: luma 126 in limited range.
    assert!(
        (mean_luma(frame) - 126.0).abs() <= 2.0,
        "luma {}",
        mean_luma(frame)
    );
}

#[test]
fn trim_start_inside_a_long_gop_returns_the_exact_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = luma_coded(dir.path(), "gop.mp4", 8, 240);
    let mut decoder = VideoDecoder::open(&path, FIELD, 3.0).unwrap();
    // Frame n of the source steps by exactly one per output frame from there.
    for k in 0..25 {
        let frame = decoder.frame_at(3.0 + f64::from(k) / 25.0).unwrap();
        assert_eq!(frame_number(frame), 75 + i64::from(k), "output frame {k}");
    }
}

#[test]
fn past_the_end_the_last_frame_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = luma_coded(dir.path(), "short.mp4", 1, 25);
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    for k in 0..50 {
        let frame = decoder.frame_at(f64::from(k) / 25.0).unwrap();
        assert_eq!(
            frame_number(frame),
            i64::from(k.min(24)),
            "output frame {k}"
        );
    }
}

#[test]
fn variable_rate_source_gives_constant_rate_frames() {
    let dir = tempfile::tempdir().unwrap();
    // 30 frames at 30 fps, then 15 at 15 fps: luma codes the source frame number.
    let path = ffmpeg(
        dir.path(),
        "vfr.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=64x48:r=30:d=1.5,geq=lum='16+N':cb=128:cr=128",
            "-vf",
            "select='lt(n,30)+not(mod(n-30,2))',setpts='if(lt(N,30),N/30,1+(N-30)/15)/TB'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-bf",
            "0",
        ],
    );
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    for i in 0..60i64 {
        let frame = decoder.frame_at(i as f64 / 30.0).unwrap();
        // Source frames kept: 0..30, then every second one (30, 32, ...).
        // (44 is the last, then held).
        let expected = if i < 30 {
            i
        } else {
            (30 + (i - 30) / 2 * 2).min(44)
        };
        assert_eq!(frame_number(frame), expected, "output frame {i}");
    }
}

#[test]
fn png_with_alpha_decodes_once_as_rgba_and_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "logo.png",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red@0.5:s=33x17,format=rgba",
            "-frames:v",
            "1",
        ],
    );
    let info = probe(&path, FIELD).unwrap();
    assert!(info.is_image, "format {}", info.format_name);
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    for t in [0.0, 1.0, 10.0] {
        let frame = decoder.frame_at(t).unwrap();
        assert_eq!(
            (frame.width, frame.height, frame.layout),
            (33, 17, PixelLayout::Rgba)
        );
        let pixel = &frame.planes[0].row(8)[4 * 16..4 * 17];
        assert_eq!(pixel[0], 255);
        assert!((i32::from(pixel[3]) - 128).abs() <= 1, "alpha {}", pixel[3]);
    }
}

#[test]
fn jpeg_is_full_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "still.jpg",
        &["-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1"],
    );
    let mut decoder = VideoDecoder::open(&path, FIELD, 0.0).unwrap();
    let frame = decoder.frame_at(0.0).unwrap();
    assert_eq!(frame.range, Range::Full);
}

#[test]
fn a_file_cut_before_its_index_fails_naming_the_clip() {
    let dir = tempfile::tempdir().unwrap();
    let path = luma_coded(dir.path(), "whole.mp4", 1, 25);
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();

    let start = std::time::Instant::now();
    let error = probe(&cut, FIELD).unwrap_err().to_string();
    assert!(error.starts_with(FIELD), "{error}");
    assert!(error.contains("cannot open"), "{error}");
    let error = VideoDecoder::open(&cut, FIELD, 0.0)
        .err()
        .unwrap()
        .to_string();
    assert!(error.starts_with(FIELD), "{error}");
    assert!(start.elapsed().as_secs_f64() < 2.0);
}

/// Reads a whole audio source as stereo frames.
fn read_all(reader: &mut AudioReader) -> Vec<f32> {
    let mut all = Vec::new();
    let mut block = vec![0.0f32; 2 * 1000];
    loop {
        let n = reader.read(&mut block).unwrap();
        all.extend_from_slice(&block[..2 * n]);
        if n < 1000 {
            return all;
        }
    }
}

fn rms(samples: impl Iterator<Item = f32>) -> f64 {
    let (sum, n) = samples.fold((0.0, 0usize), |(s, n), v| (s + f64::from(v).powi(2), n + 1));
    (sum / n as f64).sqrt()
}

fn sides(all: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (
        all.iter().step_by(2).copied().collect(),
        all.iter().skip(1).step_by(2).copied().collect(),
    )
}

#[test]
fn mono_44k1_becomes_48k_stereo_equal_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "mono.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:r=44100:d=1",
            "-c:a",
            "pcm_f32le",
        ],
    );
    let mut reader = AudioReader::open(&path, FIELD, 0.0).unwrap().unwrap();
    assert!(reader.is_mono());
    let all = read_all(&mut reader);
    assert!(
        (all.len() as i64 / 2 - 48_000).abs() <= 2,
        "{} frames",
        all.len() / 2
    );
    let (left, right) = sides(&all);
    assert_eq!(left, right);
    // lavfi's sine has amplitude 1/8: RMS 0.0884, kept at unity gain.
    let level = rms(left[1000..47_000].iter().copied());
    assert!((level - 0.125 / 2f64.sqrt()).abs() < 0.002, "rms {level}");
}

#[test]
fn stereo_48k_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "stereo.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=exprs='0.5*sin(2*PI*440*t)|0.25*sin(2*PI*440*t)':s=48000:d=1",
            "-c:a",
            "pcm_f32le",
        ],
    );
    let mut reader = AudioReader::open(&path, FIELD, 0.0).unwrap().unwrap();
    assert!(!reader.is_mono());
    let all = read_all(&mut reader);
    assert_eq!(all.len(), 2 * 48_000);
    let (left, right) = sides(&all);
    let (l, r) = (rms(left.into_iter()), rms(right.into_iter()));
    assert!((l - 0.5 / 2f64.sqrt()).abs() < 1e-3 && (r - 0.25 / 2f64.sqrt()).abs() < 1e-3);
}

#[test]
fn centre_only_5_1_is_heard_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "surround.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=exprs='0|0|0.5*sin(2*PI*440*t)|0|0|0':c=5.1:s=48000:d=1",
            "-c:a",
            "pcm_f32le",
        ],
    );
    let mut reader = AudioReader::open(&path, FIELD, 0.0).unwrap().unwrap();
    let all = read_all(&mut reader);
    assert_eq!(all.len(), 2 * 48_000);
    let (left, right) = sides(&all);
    // The centre goes to each side at -3 dB: 0.5 * 0.7071 peak, RMS 0.25.
    for side in [left, right] {
        let level = rms(side.into_iter());
        assert!((level - 0.25).abs() < 0.005, "rms {level}");
    }
}

/// An MP4 with 2 s of video and `audio` seconds of AAC with a click at `click` s.
fn clip_with_click(dir: &Path, name: &str, audio: f64, click: f64) -> PathBuf {
    let burst = format!("if(between(t,{click},{click}+0.01),0.8*sin(2*PI*1000*t),0)");
    let sound = format!("aevalsrc=exprs='{burst}':s=48000:d={audio}");
    ffmpeg(
        dir,
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=64x48:r=25:d=2",
            "-f",
            "lavfi",
            "-i",
            &sound,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-ac",
            "2",
        ],
    )
}

fn first_loud(all: &[f32]) -> Option<usize> {
    all.iter().position(|v| v.abs() > 0.1).map(|i| i / 2)
}

#[test]
fn audio_shorter_than_video_ends_exactly_and_starts_accurately() {
    let dir = tempfile::tempdir().unwrap();
    let path = clip_with_click(dir.path(), "short.mp4", 1.5, 1.0);

    // From the start: the click at 1.0 s, and the audio ends at 1.5 s (AAC padding trimmed).
    let mut reader = AudioReader::open(&path, FIELD, 0.0).unwrap().unwrap();
    let all = read_all(&mut reader);
    assert!(
        (all.len() as i64 / 2 - 72_000).abs() <= 48,
        "{} frames",
        all.len() / 2
    );
    let click = first_loud(&all).unwrap() as i64;
    assert!((click - 48_000).abs() <= 48, "click at sample {click}");
    let mut block = [0.0f32; 64];
    assert_eq!(reader.read(&mut block).unwrap(), 0, "never loops");

    // From 0.3 s: the click lands at 0.7 s, within 1 ms.
    let mut reader = AudioReader::open(&path, FIELD, 0.3).unwrap().unwrap();
    let all = read_all(&mut reader);
    let click = first_loud(&all).unwrap() as i64;
    assert!((click - 33_600).abs() <= 48, "click at sample {click}");
    assert!(
        (all.len() as i64 / 2 - 57_600).abs() <= 48,
        "{} frames",
        all.len() / 2
    );
}

#[test]
fn a_file_without_audio_has_no_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = luma_coded(dir.path(), "silent.mp4", 1, 25);
    assert!(AudioReader::open(&path, FIELD, 0.0).unwrap().is_none());
    assert!(probe(&path, FIELD).unwrap().audio.is_none());
}

#[test]
fn ten_clips_with_short_audio_in_a_row_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let path = clip_with_click(dir.path(), "clip.mp4", 1.5, 1.0);
    // Each 2 s clip contributes its audio, then silence up to the clip's end, as the
    // mixer lays them out.
    let clip_frames = 96_000;
    let mut timeline = Vec::with_capacity(10 * 2 * clip_frames);
    for _ in 0..10 {
        let mut reader = AudioReader::open(&path, FIELD, 0.0).unwrap().unwrap();
        let mut clip = vec![0.0f32; 2 * clip_frames];
        let read = reader.read(&mut clip).unwrap();
        assert!(read < clip_frames, "the audio ends before the clip");
        timeline.extend_from_slice(&clip);
    }
    let last_clip = &timeline[2 * 9 * clip_frames..];
    let click = 9 * clip_frames as i64 + first_loud(last_clip).unwrap() as i64;
    let expected = 9 * clip_frames as i64 + 48_000;
    assert!(
        (click - expected).abs() <= 48,
        "click at {click}, expected {expected}"
    );
}

#[test]
fn still_webp_decodes_and_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        "still.webp",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=white:s=40x30",
            "-frames:v",
            "1",
            "-c:v",
            "libwebp",
        ],
    );
    assert!(probe(&path, FIELD).unwrap().is_image);
    let mut decoder = VideoDecoder::open(&path, FIELD, 2.0).unwrap();
    for t in [0.0, 3.0] {
        let frame = decoder.frame_at(t).unwrap();
        assert_eq!((frame.width, frame.height), (40, 30));
        assert!(mean_luma(frame) > 230.0);
    }
}

#[test]
fn decoders_move_between_threads() {
    fn is_send<T: Send>() {}
    is_send::<VideoDecoder>();
    is_send::<AudioReader>();
}

#[test]
fn a_missing_or_non_media_file_fails_naming_the_clip() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(&page, "<html><body>not a video</body></html>").unwrap();
    for path in [page, dir.path().join("absent.mp4")] {
        let error = probe(&path, FIELD).unwrap_err().to_string();
        assert!(
            error.starts_with(FIELD) && error.contains("cannot open"),
            "{error}"
        );
    }
}
