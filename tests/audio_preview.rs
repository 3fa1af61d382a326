//! `preview` through a real cpal stream: ALSA's default device is routed, by an asoundrc in
//! a temporary HOME, through a plug converter to S16_LE into a file over the null device.
//! The captured samples must be the Mixer's output.

use render_node::audio::{AudioSource, Mixer, VecSource, preview};
use render_node::media::MediaError;
use render_node::project::{Project, Timeline, resolve};

const ASOUNDRC: &str = r#"
pcm.!default {
    type plug
    slave { pcm "capture"; format S16_LE; rate 48000; channels 2 }
}
pcm.capture {
    type file
    slave.pcm "null"
    file "CAPTURE"
    format "raw"
}
"#;

fn timeline() -> Timeline {
    let project: Project = serde_json::from_str(
        r#"{"fps": 30, "clips": [
            {"src": "a.mp4", "type": "video", "duration": 0.6, "audioGain": 0.3,
             "audioGainEnd": 0.9, "audioPan": -0.4,
             "transition": {"type": "crossfade", "duration": 0.2}},
            {"src": "b.mp4", "type": "video", "duration": 0.6, "audioFadeOut": 0.2}]}"#,
    )
    .expect("test project parses");
    resolve(&project)
}

fn open(i: Option<usize>) -> Result<Option<Box<dyn AudioSource>>, MediaError> {
    let frequency = if i == Some(0) { 440.0 } else { 1000.0 };
    Ok(Some(Box::new(VecSource::sine(
        frequency,
        0.8,
        0.6,
        i == Some(1),
    ))))
}

fn reference(timeline: &Timeline) -> Vec<f32> {
    let mut mixer = Mixer::new(timeline);
    let mut out = vec![0.0; mixer.total_frames() as usize * 2];
    let mut opener = open;
    let n = mixer.fill(&mut out, &mut opener).expect("mix");
    assert_eq!(n * 2, out.len());
    out
}

#[test]
fn preview_plays_the_mixers_samples() {
    let home = tempfile::tempdir().expect("temp dir");
    let capture = home.path().join("capture.raw");
    let rc = ASOUNDRC.replace("CAPTURE", &capture.display().to_string());
    std::fs::write(home.path().join(".asoundrc"), rc).expect("write asoundrc");
    // SAFETY: this is the only test in this binary and it sets HOME before anything reads
    // the environment (ALSA reads ~/.asoundrc when cpal first opens it, below).
    unsafe { std::env::set_var("HOME", home.path()) };

    let timeline = timeline();
    let want = reference(&timeline);
    let mut opener = open;
    let mut reports = 0;
    let played = preview(&timeline, &mut opener, None, &mut |_, _| reports += 1)
        .expect("preview through the ALSA file device");
    assert_eq!(played as usize * 2, want.len());
    assert!(reports > 0, "no progress reported");

    let bytes = std::fs::read(&capture).expect("captured file");
    let got: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    // The device may add silence before and after; the mix itself must be there, in order.
    let first = |v: &[f32]| v.iter().position(|x| x.abs() > 0.01).expect("some sound");
    let offset = first(&got) - first(&want);
    assert_eq!(offset % 2, 0, "channels swapped");
    let got = got
        .get(offset..offset + want.len())
        .expect("the whole mix was captured");
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 2.0 / 32768.0,
        "captured samples differ from the mix by {worst}"
    );
}
