//! The mix, measured: levels in dB on in-memory tones run through the real `Mixer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use render_node::audio::{AudioSource, CEILING, Mixer, VecSource};
use render_node::media::MediaError;
use render_node::project::{Project, Timeline, resolve};

const RATE: f64 = 48_000.0;

fn timeline(json: &str) -> Timeline {
    let project: Project = serde_json::from_str(json).expect("test project parses");
    resolve(&project)
}

/// Mixes the whole timeline; `source(index)` gives clip `index`'s audio (None: background).
fn mix(timeline: &Timeline, mut source: impl FnMut(Option<usize>) -> VecSource + Send) -> Vec<f32> {
    let mut mixer = Mixer::new(timeline);
    let mut out = vec![0.0; mixer.total_frames() as usize * 2];
    let mut open = |i: Option<usize>| -> Result<Option<Box<dyn AudioSource>>, MediaError> {
        Ok(Some(Box::new(source(i))))
    };
    let mut done = 0;
    // Odd block sizes, so block edges fall anywhere.
    while done < out.len() {
        let end = (done + 2 * 777).min(out.len());
        let n = mixer.fill(&mut out[done..end], &mut open).expect("mix");
        assert!(n > 0, "mixer ended early at frame {}", done / 2);
        done += n * 2;
    }
    assert_eq!(mixer.fill(&mut [0.0; 64], &mut open).expect("mix"), 0);
    out
}

fn sine(amplitude: f64, seconds: f64) -> VecSource {
    VecSource::sine(1000.0, amplitude, seconds, false)
}

/// RMS in dB of one channel (0 left, 1 right) over `[from, to)` seconds.
fn rms_db(mix: &[f32], channel: usize, from: f64, to: f64) -> f64 {
    let (a, b) = ((from * RATE) as usize, (to * RATE) as usize);
    let sum: f64 = (a..b)
        .map(|i| f64::from(mix[i * 2 + channel]).powi(2))
        .sum();
    10.0 * (sum / (b - a) as f64).log10()
}

fn db(gain: f64) -> f64 {
    20.0 * gain.log10()
}

/// The level of a 1 kHz sine of `amplitude`, in dB RMS.
fn sine_db(amplitude: f64) -> f64 {
    db(amplitude / 2f64.sqrt())
}

fn assert_db(got: f64, want: f64, tolerance: f64, what: &str) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: {got:.3} dB, want {want:.3} ± {tolerance}"
    );
}

fn one_clip(fields: &str, seconds: f64) -> Timeline {
    timeline(&format!(
        r#"{{"fps": 30, "clips": [
            {{"src": "a.mp4", "type": "video", "duration": {seconds}{fields}}}]}}"#
    ))
}

#[test]
fn gain_half_is_minus_6_02_db() {
    let t = one_clip(r#", "audioGain": 0.5"#, 2.0);
    let out = mix(&t, |_| sine(0.5, 2.0));
    assert_db(
        rms_db(&out, 0, 0.5, 1.5) - sine_db(0.5),
        -6.0206,
        0.005,
        "left",
    );
    assert_db(
        rms_db(&out, 1, 0.5, 1.5) - sine_db(0.5),
        -6.0206,
        0.005,
        "right",
    );
}

#[test]
fn ramp_is_at_0_625_half_way() {
    let t = one_clip(r#", "audioGain": 0.25, "audioGainEnd": 1.0"#, 2.0);
    let out = mix(&t, |_| sine(0.5, 2.0));
    // Ten cycles centred on 1.0 s: the ramp is linear, so the RMS gain is 0.625.
    assert_db(
        rms_db(&out, 0, 0.995, 1.005) - sine_db(0.5),
        db(0.625),
        0.01,
        "half way",
    );
    assert_db(
        rms_db(&out, 0, 0.495, 0.505) - sine_db(0.5),
        db(0.4375),
        0.01,
        "quarter way",
    );
}

#[test]
fn pan_hard_left_silences_the_right_side() {
    let t = one_clip(r#", "audioPan": -1"#, 1.0);
    let out = mix(&t, |_| sine(0.5, 1.0));
    assert!(out.chunks(2).all(|f| f[1] == 0.0), "right side not silent");
    assert_db(
        rms_db(&out, 0, 0.2, 0.8),
        sine_db(0.5),
        0.005,
        "stereo balance keeps the left",
    );

    let mono = mix(&t, |_| VecSource::sine(1000.0, 0.5, 1.0, true));
    assert!(
        mono.chunks(2).all(|f| f[1].abs() < 1e-7),
        "mono: right side not silent"
    );
    assert_db(
        rms_db(&mono, 0, 0.2, 0.8) - sine_db(0.5),
        3.0103,
        0.005,
        "mono hard left",
    );
}

#[test]
fn mono_pan_is_constant_power() {
    let t = one_clip(r#", "audioPan": 0.5"#, 1.0);
    let out = mix(&t, |_| VecSource::sine(1000.0, 0.5, 1.0, true));
    let power = |c| 10f64.powf(rms_db(&out, c, 0.2, 0.8) / 10.0);
    let total = 10.0 * ((power(0) + power(1)) / 2.0).log10();
    assert_db(total, sine_db(0.5), 0.005, "summed power of both sides");
}

#[test]
fn gain_one_pan_zero_is_bit_exact_away_from_the_edges() {
    let t = one_clip("", 1.0);
    let noise: Vec<f32> = (0..96_000u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 8) as f32 / 16_777_216.0 - 0.5) * 1.6)
        .collect();
    let source = noise.clone();
    let out = mix(&t, move |_| VecSource::new(source.clone(), false));
    let (a, b) = (2 * 480, 2 * 47_000);
    assert_eq!(out[a..b], noise[a..b]);
}

#[test]
fn keyframes_hold_and_interpolate_as_documented() {
    let keys = r#"[{"time": 0.5, "value": 1.0, "ease": "ease-in"},
        {"time": 1.5, "value": 0.5, "ease": "ease-out"}, {"time": 2.5, "value": 0.25}]"#;
    let t = one_clip(
        &format!(r#", "audioGain": 0.1, "audioGainKeyframes": {keys}"#),
        3.0,
    );
    let out = mix(&t, |_| sine(0.5, 3.0));
    let level = |at: f64| rms_db(&out, 0, at - 0.0025, at + 0.0025) - sine_db(0.5);
    assert_db(level(0.25), 0.0, 0.005, "before the first keyframe: held");
    // ease-in from 1.0 to 0.5 half way: 1 - 0.5 · 0.5² = 0.875.
    assert_db(level(1.0), db(0.875), 0.01, "ease-in half way");
    // ease-out from 0.5 to 0.25 half way: 0.5 - 0.25 · (1 - 0.5²) = 0.3125.
    assert_db(level(2.0), db(0.3125), 0.01, "ease-out half way");
    assert_db(
        level(2.75),
        db(0.25),
        0.005,
        "after the last keyframe: held",
    );
}

#[test]
fn fades_are_at_half_level_half_way() {
    let t = one_clip(r#", "audioFadeIn": 1.0, "audioFadeOut": 1.0"#, 3.0);
    let out = mix(&t, |_| sine(0.5, 3.0));
    assert_db(
        rms_db(&out, 0, 0.495, 0.505) - sine_db(0.5),
        db(0.5),
        0.01,
        "fade-in",
    );
    assert_db(
        rms_db(&out, 0, 2.495, 2.505) - sine_db(0.5),
        db(0.5),
        0.01,
        "fade-out",
    );
    assert_db(
        rms_db(&out, 0, 1.2, 1.8) - sine_db(0.5),
        0.0,
        0.005,
        "between the fades",
    );
}

fn two_clips(first: &str, second: &str, project_fields: &str) -> Timeline {
    timeline(&format!(
        r#"{{"fps": 30{project_fields}, "clips": [
            {{"src": "a.mp4", "type": "video", "duration": 1{first}}},
            {{"src": "b.mp4", "type": "video", "duration": 1{second}}}]}}"#
    ))
}

#[test]
fn a_muted_clip_is_silent() {
    let t = two_clips(r#", "audioMute": true"#, "", "");
    let out = mix(&t, |_| sine(0.5, 1.0));
    assert!(
        out[..2 * 48_000].iter().all(|&x| x == 0.0),
        "muted clip is audible"
    );
    assert_db(
        rms_db(&out, 0, 1.2, 1.8),
        sine_db(0.5),
        0.005,
        "the other clip",
    );
}

#[test]
fn a_soloed_clip_mutes_the_others() {
    let t = two_clips("", r#", "audioSolo": true"#, "");
    let out = mix(&t, |_| sine(0.5, 1.0));
    assert!(
        out[..2 * 48_000].iter().all(|&x| x == 0.0),
        "unsoloed clip is audible"
    );
    assert_db(
        rms_db(&out, 0, 1.2, 1.8),
        sine_db(0.5),
        0.005,
        "the soloed clip",
    );
}

#[test]
fn a_tone_3_db_over_full_scale_is_limited_not_squashed() {
    // 0.0891 · 16 = 1.426: +3.08 dBFS peak.
    let t = one_clip(r#", "audioGain": 16"#, 2.0);
    let out = mix(&t, |_| sine(0.0891, 2.0));
    let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak <= CEILING, "peak {} dBFS", db(f64::from(peak)));
    // A sine peaking at -1 dBFS is -4.01 dBFS RMS.
    assert_db(rms_db(&out, 0, 0.5, 1.5), -4.0103, 0.05, "limited RMS");
}

#[test]
fn background_at_half_gain_and_its_fade_out_ends_at_the_output_end() {
    let t = timeline(
        r#"{"fps": 30, "audio": {"src": "m.mp3", "gain": 0.5, "fadeOut": 0.5},
            "clips": [{"src": "a.mp4", "type": "video", "duration": 2, "audioMute": true}]}"#,
    );
    // The music is longer than the output: it is cut, and the fade ends at 2 s.
    let out = mix(&t, |_| sine(0.5, 5.0));
    assert_eq!(out.len(), 2 * 96_000);
    assert_db(
        rms_db(&out, 0, 0.5, 1.4) - sine_db(0.5),
        -6.0206,
        0.005,
        "music at gain 0.5",
    );
    assert_db(
        rms_db(&out, 0, 1.745, 1.755) - sine_db(0.5),
        db(0.25),
        0.02,
        "half way out",
    );
    assert!(rms_db(&out, 0, 1.999, 2.0) < -60.0, "not silent at the end");
    assert!(
        out[out.len() - 2].abs() < 1e-4,
        "last sample {}",
        out[out.len() - 2]
    );
}

#[test]
fn music_and_a_clip_add_without_attenuation() {
    let t = timeline(
        r#"{"fps": 30, "audio": {"src": "m.mp3"},
            "clips": [{"src": "a.mp4", "type": "video", "duration": 1}]}"#,
    );
    let out = mix(&t, |i| match i {
        None => VecSource::sine(1000.0, 0.25, 1.0, false),
        Some(_) => VecSource::sine(1000.0, 0.25, 1.0, false),
    });
    // Two in-phase tones of 0.25 sum to one of 0.5: +6.02 dB over either.
    assert_db(
        rms_db(&out, 0, 0.2, 0.8) - sine_db(0.25),
        6.0206,
        0.005,
        "sum",
    );
}

#[test]
fn a_hard_cut_does_not_click() {
    let t = two_clips("", "", "");
    // A tone on +0.25 then the same tone on -0.25: the waveform jumps by 0.5 at the cut.
    let out = mix(&t, |i| {
        let offset = if i == Some(0) { 0.25 } else { -0.25 };
        let mut tone = sine(0.3, 1.0);
        let mut buf = vec![0.0; 96_000];
        tone.read(&mut buf).expect("in memory");
        let shifted = buf.iter().map(|x| x + offset).collect();
        VecSource::new(shifted, false)
    });
    let step = |a: usize, b: usize| {
        (a..b)
            .map(|i| (out[2 * i + 2] - out[2 * i]).abs())
            .fold(0.0f32, f32::max)
    };
    let steady = step(20_000, 30_000);
    let near_cut = step(48_000 - 2_000, 48_000 + 2_000);
    assert!(steady > 0.035, "steady-state step {steady}");
    assert!(
        near_cut <= steady,
        "step {near_cut} at the cut, steady state {steady}"
    );
}

#[test]
fn the_same_audio_at_24_30_and_60_fps() {
    let project = |fps: u32| {
        timeline(&format!(
            r#"{{"fps": {fps}, "clips": [
                {{"src": "a.mp4", "type": "video", "duration": 1.5, "audioGain": 0.2,
                  "audioGainEnd": 0.9, "audioPan": -0.3, "audioPanEnd": 0.4, "audioFadeIn": 0.3,
                  "transition": {{"type": "crossfade", "duration": 0.5}}}},
                {{"src": "b.mp4", "type": "video", "duration": 1.5, "audioGainKeyframes":
                  [{{"time": 0.1, "value": 0.3, "ease": "ease-in-out"}},
                   {{"time": 1.2, "value": 1.0}}]}}]}}"#
        ))
    };
    let render = |fps| mix(&project(fps), |_| sine(0.4, 1.5));
    let at_30 = render(30);
    assert_eq!(at_30.len(), 2 * 120_000);
    assert!(render(24) == at_30, "24 fps differs from 30");
    assert!(render(60) == at_30, "60 fps differs from 30");
}

#[test]
fn a_crossfade_is_equal_power() {
    let t = two_clips(
        r#", "transition": {"type": "crossfade", "duration": 0.5}"#,
        "",
        "",
    );
    assert_eq!(t.clips[1].start, 0.5);
    // Each side alone at the midpoint (0.75 s) is at cos(π/4): -3.01 dB.
    let only_first = mix(&t, |i| {
        if i == Some(0) {
            sine(0.5, 1.0)
        } else {
            sine(0.0, 1.0)
        }
    });
    assert_db(
        rms_db(&only_first, 0, 0.745, 0.755) - sine_db(0.5),
        -3.0103,
        0.02,
        "outgoing",
    );
    // Two uncorrelated tones keep the power constant through the crossfade.
    let both = mix(&t, |i| {
        let f = if i == Some(0) { 1000.0 } else { 1500.0 };
        VecSource::sine(f, 0.5, 1.0, false)
    });
    for at in [0.6, 0.75, 0.9] {
        assert_db(
            rms_db(&both, 0, at - 0.005, at + 0.005),
            sine_db(0.5),
            0.05,
            "power",
        );
    }
}

/// Counts the sources alive at once, to show the mixer drops each after its clip.
struct Counted {
    inner: VecSource,
    live: Arc<AtomicUsize>,
}

impl AudioSource for Counted {
    fn read(&mut self, out: &mut [f32]) -> Result<usize, MediaError> {
        self.inner.read(out)
    }
    fn is_mono(&self) -> bool {
        false
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn a_thousand_clips_keep_at_most_two_sources_open() {
    let clips: Vec<String> = (0..1000)
        .map(|_| r#"{"src": "a.mp4", "type": "video", "duration": 0.05}"#.to_string())
        .collect();
    let t = timeline(&format!(
        r#"{{"fps": 30, "transition": {{"type": "crossfade", "duration": 0.01}}, "clips": [{}]}}"#,
        clips.join(",")
    ));
    let mut mixer = Mixer::new(&t);
    let (live, peak, opened) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (l, p, o) = (live.clone(), peak.clone(), opened.clone());
    let mut open = move |_: Option<usize>| -> Result<Option<Box<dyn AudioSource>>, MediaError> {
        let now = l.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        o.fetch_add(1, Ordering::SeqCst);
        let inner = sine(0.1, 0.05);
        Ok(Some(Box::new(Counted {
            inner,
            live: l.clone(),
        })))
    };
    let mut block = vec![0.0; 2 * 1000];
    while mixer.fill(&mut block, &mut open).expect("mix") > 0 {}
    assert_eq!(opened.load(Ordering::SeqCst), 1000);
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "{} sources open at once",
        peak.load(Ordering::SeqCst)
    );
    drop(mixer);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn a_clip_without_audio_is_silence() {
    let t = one_clip("", 0.5);
    let mut mixer = Mixer::new(&t);
    let mut out = vec![1.0; 2 * 24_000];
    let mut open =
        |_: Option<usize>| -> Result<Option<Box<dyn AudioSource>>, MediaError> { Ok(None) };
    assert_eq!(mixer.fill(&mut out, &mut open).expect("mix"), 24_000);
    assert!(out.iter().all(|&x| x == 0.0));
}

#[test]
fn a_mute_switch_and_the_output_end_do_not_click() {
    let t = two_clips("", r#", "audioMute": true"#, "");
    let out = mix(&t, |_| sine(0.5, 1.0));
    let step = |a: usize, b: usize| {
        (a..b)
            .map(|i| (out[2 * i + 2] - out[2 * i]).abs())
            .fold(0.0f32, f32::max)
    };
    let steady = step(20_000, 30_000);
    assert!(
        step(47_000, 49_000) <= steady,
        "click where the sound is muted"
    );
    // A single clip ends with the output: its last sample is on the way to silence.
    let single = mix(&one_clip("", 1.0), |_| sine(0.5, 1.0));
    let last = single[single.len() - 2].abs();
    assert!(last < 1e-3, "last sample {last}");
}
