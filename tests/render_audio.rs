//! Audio levels measured in dB on the decoded output of real renders (`render-node render`),
//! so the mixer, the AAC encoder and the muxer are checked together.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 3 s 320x180 clip with a 1 kHz stereo tone at amplitude 0.25 (-12 dBFS peak).
fn tone_clip(dir: &Path) -> PathBuf {
    let path = dir.join("tone.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30:duration=3",
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=0.25*sin(2*PI*1000*t)|0.25*sin(2*PI*1000*t):s=48000:d=3",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "pcm_s16le",
        "-f",
        "mov",
        path.to_str().unwrap(),
    ]);
    path
}

/// Renders a one-clip project with the given clip fields; returns the decoded stereo audio.
fn render_with(dir: &Path, clip_fields: &str) -> Vec<[f32; 2]> {
    let project = format!(
        r#"{{"fps": 30, "resolution": {{"width": 320, "height": 180}},
            "clips": [{{"src": "tone.mp4", "type": "video", "duration": 3 {clip_fields}}}]}}"#
    );
    let project_path = dir.join("project.json");
    std::fs::write(&project_path, project).unwrap();
    let out = dir.join("out.mp4");
    let status = Command::new(env!("CARGO_BIN_EXE_render-node"))
        .args(["render", "--preset", "ultrafast"])
        .arg(&project_path)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let raw = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "f32le", "-ac", "2", "-ar", "48000", "-"])
        .output()
        .unwrap()
        .stdout;
    raw.chunks_exact(8)
        .map(|c| {
            let l = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let r = f32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            [l, r]
        })
        .collect()
}

/// RMS in dBFS of one side over [from, to) seconds.
fn rms_db(samples: &[[f32; 2]], side: usize, from: f64, to: f64) -> f64 {
    let span = &samples[(from * 48000.0) as usize..(to * 48000.0) as usize];
    let power: f64 =
        span.iter().map(|s| f64::from(s[side]).powi(2)).sum::<f64>() / span.len() as f64;
    10.0 * power.max(1e-20).log10()
}

#[test]
fn gain_pan_and_ramps_measure_as_documented_after_encoding() {
    let dir = tempfile::tempdir().unwrap();
    tone_clip(dir.path());

    let unity = render_with(dir.path(), "");
    let reference = rms_db(&unity, 0, 1.0, 2.0);
    // amplitude 0.25 sine: -12.04 dBFS peak, -15.05 dB RMS
    assert!(
        (reference + 15.05).abs() < 0.1,
        "unity tone at {reference:.2} dB"
    );

    let half = render_with(dir.path(), r#", "audioGain": 0.5"#);
    let drop = rms_db(&half, 0, 1.0, 2.0) - reference;
    assert!((drop + 6.02).abs() < 0.1, "gain 0.5 measured {drop:.2} dB");

    let left = render_with(dir.path(), r#", "audioPan": -1"#);
    assert!(
        (rms_db(&left, 0, 1.0, 2.0) - reference).abs() < 0.1,
        "left side untouched"
    );
    assert!(
        rms_db(&left, 1, 1.0, 2.0) < -60.0,
        "pan -1 silences the right side"
    );

    // A ramp 0.25 -> 1.0 over 3 s is 0.625 (-4.08 dB) half way.
    let ramp = render_with(dir.path(), r#", "audioGain": 0.25, "audioGainEnd": 1.0"#);
    let mid = rms_db(&ramp, 0, 1.45, 1.55) - rms_db(&unity, 0, 1.45, 1.55);
    assert!(
        (mid - 20.0 * 0.625f64.log10()).abs() < 0.15,
        "ramp half way at {mid:.2} dB"
    );

    let muted = render_with(dir.path(), r#", "audioMute": true"#);
    assert!(
        rms_db(&muted, 0, 0.1, 2.9) < -90.0,
        "a muted clip is silent"
    );
}
