//! Encoding round trips: frames and samples in, an MP4 out that ffprobe and our own
//! decoder agree on; and the WebP thumbnail.

use std::path::Path;
use std::process::Command;

use render_node::audio::source::AudioSource;
use render_node::media::encode::packet_channel;
use render_node::media::{
    AudioEncoder, AudioReader, EncodeSettings, Mp4Writer, Muxer, VideoDecoder, VideoEncoder,
    VideoFrame, write_thumbnail,
};
use render_node::project::Fps;

/// ffprobe's JSON about `path` (streams with counted frames, and the format).
fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(info: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream"))
}

fn number(value: &serde_json::Value) -> f64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or(value.as_f64())
        .unwrap()
}

/// An output frame of uniform luma `y` (chroma neutral).
fn flat_frame(width: u32, height: u32, y: u8) -> VideoFrame {
    let mut frame = VideoFrame::new_output(width, height);
    frame.planes[0].data.fill(y);
    frame.planes[1].data.fill(128);
    frame.planes[2].data.fill(128);
    frame
}

fn mean(data: &[u8]) -> f64 {
    data.iter().map(|&v| f64::from(v)).sum::<f64>() / data.len() as f64
}

#[test]
fn mp4_round_trip_keeps_every_frame_and_the_audio_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    let settings = EncodeSettings::new(96, 64, Fps { num: 25, den: 1 });
    assert_eq!((settings.preset.as_str(), settings.crf), ("veryfast", 23));
    let mut writer = Mp4Writer::create(&path, &settings, true).unwrap();
    let tone: Vec<f32> = (0..96_000 * 2)
        .map(|i| 0.25 * (2.0 * std::f32::consts::PI * 440.0 * (i / 2) as f32 / 48_000.0).sin())
        .collect();
    for n in 0..37u32 {
        writer
            .write_video(&flat_frame(96, 64, 20 + 5 * n as u8))
            .unwrap();
    }
    // More audio than video (2 s against 1.48 s: cut), fed in uneven blocks.
    for block in tone.chunks(2 * 700) {
        writer.write_audio(block).unwrap();
    }
    assert_eq!(writer.finish().unwrap(), 37);

    let info = ffprobe(&path);
    let video = stream(&info, "video");
    assert_eq!(video["nb_read_frames"], "37");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["color_space"], "bt709");
    assert_eq!(video["color_primaries"], "bt709");
    assert_eq!(video["color_transfer"], "bt709");
    assert_eq!(video["color_range"], "tv");
    let audio = stream(&info, "audio");
    assert_eq!(
        (audio["codec_name"].as_str(), audio["profile"].as_str()),
        (Some("aac"), Some("LC"))
    );
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);
    let (video_len, audio_len) = (number(&video["duration"]), number(&audio["duration"]));
    assert!((video_len - 1.48).abs() < 1e-6, "video {video_len} s");
    assert!(
        (audio_len - video_len).abs() <= 1024.0 / 48_000.0,
        "audio {audio_len} s"
    );

    // The index comes before the media data (+faststart).
    let bytes = std::fs::read(&path).unwrap();
    let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(find(b"moov") < find(b"mdat"));

    // Our decoder reads back the same frames at the same times, and the tone.
    let mut decoder = VideoDecoder::open(&path, "out", 0.0).unwrap();
    for n in 0..37u32 {
        let frame = decoder.frame_at(f64::from(n) / 25.0).unwrap();
        let luma = mean(&frame.planes[0].data);
        assert!(
            (luma - f64::from(20 + 5 * n)).abs() < 2.0,
            "frame {n}: luma {luma}"
        );
    }
    let mut reader = AudioReader::open(&path, "out", 0.0).unwrap().unwrap();
    let mut all = vec![0.0f32; 2 * 80_000];
    let read = reader.read(&mut all).unwrap();
    assert!((read as i64 - 71_040).abs() <= 1024, "{read} samples");
    let rms = (all[2 * 4800..2 * 43_200].iter().map(|v| v * v).sum::<f32>() / 76_800.0).sqrt();
    assert!((rms - 0.25 / 2f32.sqrt()).abs() < 0.01, "rms {rms}");
}

#[test]
fn short_audio_is_padded_to_the_video_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pad.mp4");
    let settings = EncodeSettings::new(
        64,
        48,
        Fps {
            num: 30_000,
            den: 1001,
        },
    );
    let mut writer = Mp4Writer::create(&path, &settings, true).unwrap();
    for _ in 0..45 {
        writer.write_video(&flat_frame(64, 48, 100)).unwrap();
    }
    writer.write_audio(&vec![0.1; 2 * 4800]).unwrap();
    writer.finish().unwrap();

    let info = ffprobe(&path);
    let video_len = number(&stream(&info, "video")["duration"]);
    let audio_len = number(&stream(&info, "audio")["duration"]);
    assert_eq!(stream(&info, "video")["nb_read_frames"], "45");
    assert!(
        (video_len - 45.0 * 1001.0 / 30_000.0).abs() < 1e-3,
        "video {video_len} s"
    );
    assert!(
        (audio_len - video_len).abs() <= 1024.0 / 48_000.0,
        "audio {audio_len} s"
    );
}

#[test]
fn stages_run_on_their_own_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("threads.mp4");
    let settings = EncodeSettings {
        preset: "ultrafast".into(),
        crf: 30,
        ..EncodeSettings::new(64, 48, Fps { num: 30, den: 1 })
    };
    let (sender, packets) = packet_channel(16);
    let mut video = VideoEncoder::new(&settings, sender.clone()).unwrap();
    let mut audio = AudioEncoder::new(sender).unwrap();
    audio.set_length(settings.samples_for_frames(60));
    let muxer = Muxer::create(&path, &video, Some(&audio)).unwrap();

    let muxed = std::thread::spawn(move || muxer.run(packets, |_| {}));
    let video = std::thread::spawn(move || {
        for n in 0..60 {
            video.encode(&flat_frame(64, 48, 16 + n)).unwrap();
        }
        video.finish().unwrap()
    });
    let audio = std::thread::spawn(move || {
        for _ in 0..100 {
            audio.encode(&[0.2; 2 * 1000]).unwrap();
        }
        audio.finish().unwrap();
    });
    assert_eq!(video.join().unwrap(), 60);
    audio.join().unwrap();
    assert_eq!(muxed.join().unwrap().unwrap(), 60);

    let info = ffprobe(&path);
    assert_eq!(stream(&info, "video")["nb_read_frames"], "60");
    let audio_len = number(&stream(&info, "audio")["duration"]);
    assert!(
        (audio_len - 2.0).abs() <= 1024.0 / 48_000.0,
        "audio {audio_len} s"
    );
}

#[test]
fn odd_or_wrong_frames_are_refused() {
    let (sender, _packets) = packet_channel(0);
    let odd = EncodeSettings::new(65, 48, Fps { num: 25, den: 1 });
    let error = VideoEncoder::new(&odd, sender.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("65x48"), "{error}");
    let warp = EncodeSettings {
        preset: "warp".into(),
        ..EncodeSettings::new(64, 48, Fps { num: 25, den: 1 })
    };
    let error = VideoEncoder::new(&warp, sender.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("\"warp\""), "{error}");
    let settings = EncodeSettings::new(64, 48, Fps { num: 25, den: 1 });
    let mut encoder = VideoEncoder::new(&settings, sender).unwrap();
    let error = encoder
        .encode(&flat_frame(32, 48, 0))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("64x48") && error.contains("32x48"),
        "{error}"
    );
}

#[test]
fn thumbnail_is_a_valid_webp_of_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thumb.webp");
    let mut frame = flat_frame(320, 180, 235);
    frame.planes[0].data[..320 * 90].fill(16);
    write_thumbnail(&frame, &path).unwrap();

    let info = ffprobe(&path);
    let video = stream(&info, "video");
    assert_eq!(video["codec_name"], "webp");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(180))
    );
    // Decoded back: black on top, white below.
    let mut decoder = VideoDecoder::open(&path, "thumb", 0.0).unwrap();
    let back = decoder.frame_at(0.0).unwrap();
    let y = &back.planes[0];
    let top = mean(&y.row(20)[..320]);
    let bottom = mean(&y.row(160)[..320]);
    assert!(top < 24.0 && bottom > 225.0, "top {top}, bottom {bottom}");

    // Large frames are scaled down to fit 640 px.
    let big = flat_frame(1920, 1080, 128);
    write_thumbnail(&big, &path).unwrap();
    let video = stream(&ffprobe(&path), "video").clone();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
}
