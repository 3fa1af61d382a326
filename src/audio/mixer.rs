//! The mixer: every clip's audio, shaped by its envelope, summed into one stereo bus and
//! limited.
//!
//! The mix is produced in blocks, on demand, in timeline order. A clip's source is opened
//! when the first block that overlaps it is mixed and dropped after its last, so memory
//! stays flat however many clips the timeline has. Each clip owns the sample frames
//! `[round(start · 48000), round(end · 48000))`; within them its per-channel gain is the
//! product of
//!
//! - its gain automation (ramp or keyframes, see `automation`), evaluated at the frame's
//!   time from the clip's start, so the frame rate never matters;
//! - its pan: on a stereo source a balance (`L = 1 - p` for `p > 0`, `R = 1 + p` for
//!   `p < 0`), on a mono source a constant-power sin/cos law scaled so the centre is
//!   0 dB (`L = √2 cos θ`, `R = √2 sin θ`, `θ = (p + 1) π/4`; hard left is +3.01 dB on the
//!   left); pan 0 is exactly 1.0 on both sides;
//! - linear fades (`audioFadeIn`, `audioFadeOut`), multiplied in;
//! - equal-power crossfade curves over a transition: the incoming clip rises as
//!   `sin(x π/2)` and the outgoing one falls as `cos(x π/2)`, `x` the fraction of the
//!   transition elapsed, so the two powers always sum to 1;
//! - a 5 ms raised-cosine declick ramp (`½ - ½ cos(π x)`) at each edge that has neither a
//!   transition nor a fade, so hard cuts and mute or solo switches do not click (a muted
//!   clip is silence, so the edges of its neighbours are where the sound switches), and
//!   over the last 5 ms of the output. Outside those 5 ms the ramp is exactly 1.0.
//!
//! A muted clip, or a clip that is not soloed while another is, contributes nothing (its
//! source is never opened). The background track plays from 0 and is cut at the output's
//! end, with its gain and linear fades (the fade-out ends at the output's end). The bus is
//! a plain sum, never divided by the number of sources; the limiter keeps it under -1 dBFS.

use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI, SQRT_2};

use super::automation::{is_constant, value_at};
use super::kernel::mix_simd;
use super::limiter::Limiter;
use super::source::{AudioSource, SAMPLE_RATE};
use crate::media::MediaError;
use crate::project::{BackgroundTrack, Timeline, TimelineClip};

/// Opens the audio of clip `index` (its position in `project.clips`, or the background track
/// when None), positioned at the clip's source start; Ok(None) when it has no audio.
pub type SourceOpener<'a> =
    dyn FnMut(Option<usize>) -> Result<Option<Box<dyn AudioSource>>, MediaError> + Send + 'a;

/// Length of the declick ramp at hard edges, in seconds.
pub const DECLICK_SECONDS: f64 = 0.005;

/// Stereo frames mixed per internal block.
const BLOCK: usize = 1024;

const RATE: f64 = SAMPLE_RATE as f64;

/// One clip's place in the mix, worked out once.
struct Track {
    clip: TimelineClip,
    /// Sample frames `[first, end)` of the timeline it owns.
    first: u64,
    end: u64,
    audible: bool,
    /// Edges with neither a transition nor a fade get the declick ramp.
    hard_in: bool,
    hard_out: bool,
}

/// A source being read: a clip (index into `Mixer::tracks`) or the background (None).
struct Playing {
    track: Option<usize>,
    /// None once the source has ended (or had no audio): the rest is silence.
    source: Option<Box<dyn AudioSource>>,
    mono: bool,
    first: u64,
    end: u64,
}

/// Produces the final mix of a timeline, block by block.
pub struct Mixer {
    tracks: Vec<Track>,
    background: Option<BackgroundTrack>,
    background_opened: bool,
    total: u64,
    /// Next track not yet admitted to `playing`.
    next_track: usize,
    playing: Vec<Playing>,
    /// Frames mixed (ahead of `written` by the limiter's delay) and frames handed out.
    mixed: u64,
    written: u64,
    limiter: Limiter,
    primed: bool,
    // Scratch buffers of BLOCK stereo frames, allocated once.
    bus: Vec<f32>,
    src: Vec<f32>,
    gains: Vec<f32>,
}

impl Mixer {
    pub fn new(timeline: &Timeline) -> Mixer {
        let total = (timeline.duration() * RATE).round().max(0.0) as u64;
        let any_solo = timeline.clips.iter().any(|c| c.solo);
        let tracks = timeline
            .clips
            .iter()
            .map(|clip| Track {
                first: to_frames(clip.start).min(total),
                end: to_frames(clip.end()).min(total),
                audible: !clip.mute && (clip.solo || !any_solo),
                hard_in: clip.transition_in <= 0.0 && clip.fade_in <= 0.0,
                hard_out: clip.transition_out <= 0.0 && clip.fade_out <= 0.0,
                clip: clip.clone(),
            })
            .collect();
        Mixer {
            tracks,
            background: timeline.audio.clone(),
            background_opened: false,
            total,
            next_track: 0,
            playing: Vec::new(),
            mixed: 0,
            written: 0,
            limiter: Limiter::new(),
            primed: false,
            bus: vec![0.0; BLOCK * 2],
            src: vec![0.0; BLOCK * 2],
            gains: vec![0.0; BLOCK * 2],
        }
    }

    /// Stereo sample frames in the whole mix: `round(duration · 48000)`.
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// Fills `out` (interleaved stereo) with the next block of the final mix (after the
    /// limiter); returns frames written, 0 at the end.
    pub fn fill(&mut self, out: &mut [f32], open: &mut SourceOpener) -> Result<usize, MediaError> {
        let left = self.total - self.written;
        let frames = (out.len() / 2).min(usize::try_from(left).unwrap_or(usize::MAX));
        if frames == 0 {
            return Ok(0);
        }
        if !self.primed {
            self.prime(open)?;
        }
        for chunk in out[..frames * 2].chunks_mut(BLOCK * 2) {
            let n = chunk.len() / 2;
            self.mix_block(n, open)?;
            self.limiter.process(&self.bus[..n * 2], chunk);
        }
        self.written += frames as u64;
        Ok(frames)
    }

    /// Runs the mix ahead by the limiter's delay so that what `fill` returns is aligned
    /// with the timeline (the limiter's first outputs are the silence before frame 0).
    fn prime(&mut self, open: &mut SourceOpener) -> Result<(), MediaError> {
        let mut discard = [0.0f32; Limiter::DELAY * 2];
        self.mix_block(Limiter::DELAY, open)?;
        self.limiter
            .process(&self.bus[..Limiter::DELAY * 2], &mut discard);
        self.primed = true;
        Ok(())
    }

    /// Mixes the next `frames` (at most BLOCK) frames of the timeline into `self.bus`.
    fn mix_block(&mut self, frames: usize, open: &mut SourceOpener) -> Result<(), MediaError> {
        let (start, end) = (self.mixed, self.mixed + frames as u64);
        self.bus[..frames * 2].fill(0.0);
        self.admit(end, open)?;
        for i in 0..self.playing.len() {
            self.mix_playing(i, start, end)?;
        }

        // Sources whose last frame is behind us are dropped now, not at the end.
        self.playing.retain(|p| p.end > end);
        self.mixed = end;
        Ok(())
    }

    /// Opens the sources of the tracks that start before `end`.
    fn admit(&mut self, end: u64, open: &mut SourceOpener) -> Result<(), MediaError> {
        if !self.background_opened {
            self.background_opened = true;
            if self.background.is_some() && self.total > 0 {
                let source = open(None)?;
                self.playing.push(playing(None, source, 0, self.total));
            }
        }
        while let Some(track) = self.tracks.get(self.next_track) {
            if track.first >= end {
                break;
            }
            let index = self.next_track;
            self.next_track += 1;
            if track.audible && track.end > track.first {
                let (first, last) = (track.first, track.end);
                let source = open(Some(track.clip.index))?;
                self.playing.push(playing(Some(index), source, first, last));
            }
        }
        Ok(())
    }

    /// Reads, shapes and adds the part of source `i` that falls in `[start, end)`.
    fn mix_playing(&mut self, i: usize, start: u64, end: u64) -> Result<(), MediaError> {
        let Some(p) = self.playing.get_mut(i) else {
            return Ok(());
        };
        let (from, to) = (p.first.max(start), p.end.min(end));
        if from >= to {
            return Ok(());
        }
        let n = (to - from) as usize;
        let offset = (from - start) as usize;
        let Some(source) = p.source.as_mut() else {
            return Ok(());
        };
        let got = source.read(&mut self.src[..n * 2])?.min(n);
        if got < n {
            p.source = None;
        }
        let (track, mono) = (p.track, p.mono);
        let gains = &mut self.gains[..got * 2];
        match track.and_then(|t| self.tracks.get(t)) {
            Some(track) => clip_gains(track, mono, self.total, from, gains),
            None => {
                if let Some(bg) = &self.background {
                    background_gains(bg, self.total, from, gains);
                }
            }
        }
        let bus = &mut self.bus[offset * 2..(offset + got) * 2];
        mix_simd(bus, &self.src[..got * 2], gains);
        Ok(())
    }
}

fn playing(
    track: Option<usize>,
    source: Option<Box<dyn AudioSource>>,
    first: u64,
    end: u64,
) -> Playing {
    Playing {
        track,
        mono: source.as_ref().is_some_and(|s| s.is_mono()),
        source,
        first,
        end,
    }
}

fn to_frames(seconds: f64) -> u64 {
    (seconds * RATE).round().max(0.0) as u64
}

/// The 5 ms raised-cosine ramp, `x` in ramp lengths from the edge: 0 at the edge, exactly
/// 1.0 from one ramp length on.
fn declick(seconds_from_edge: f64) -> f64 {
    let x = seconds_from_edge / DECLICK_SECONDS;
    if x >= 1.0 {
        1.0
    } else if x <= 0.0 {
        0.0
    } else {
        0.5 - 0.5 * (PI * x).cos()
    }
}

/// A linear fade `length` seconds long, `seconds_from_edge` from its silent end.
fn fade(seconds_from_edge: f64, length: f64) -> f64 {
    if length <= 0.0 {
        1.0
    } else {
        (seconds_from_edge / length).clamp(0.0, 1.0)
    }
}

/// Per-channel pan gains (see the module docs); exactly (1, 1) at pan 0.
pub fn pan_gains(pan: f64, mono: bool) -> (f64, f64) {
    if pan == 0.0 {
        return (1.0, 1.0);
    }
    let p = pan.clamp(-1.0, 1.0);
    if mono {
        let theta = (p + 1.0) * FRAC_PI_4;
        (theta.cos() * SQRT_2, theta.sin() * SQRT_2)
    } else {
        (
            if p > 0.0 { 1.0 - p } else { 1.0 },
            if p < 0.0 { 1.0 + p } else { 1.0 },
        )
    }
}

/// The clip's gain at `local` seconds from its start, before pan; `output_left` is the
/// time to the output's end, which cuts the last clip when whole frames end a little early.
fn clip_gain(track: &Track, local: f64, output_left: f64, constant_gain: Option<f64>) -> f64 {
    let clip = &track.clip;
    let to_end = clip.duration - local;
    let mut gain = constant_gain.unwrap_or_else(|| value_at(&clip.gain, local, clip.duration));
    gain *= fade(local, clip.fade_in) * fade(to_end, clip.fade_out);
    if clip.transition_in > 0.0 && local < clip.transition_in {
        gain *= (local.max(0.0) / clip.transition_in * FRAC_PI_2).sin();
    }
    if clip.transition_out > 0.0 && to_end < clip.transition_out {
        gain *= (to_end.max(0.0) / clip.transition_out * FRAC_PI_2).sin();
    }
    if track.hard_in {
        gain *= declick(local);
    }
    if track.hard_out {
        gain *= declick(to_end);
    }
    gain * declick(output_left)
}

/// Fills interleaved per-channel gains for the clip's frames from timeline frame `from`.
fn clip_gains(track: &Track, mono: bool, total: u64, from: u64, gains: &mut [f32]) {
    let clip = &track.clip;
    let constant_gain = is_constant(&clip.gain).then(|| value_at(&clip.gain, 0.0, 1.0));
    let constant_pan =
        is_constant(&clip.pan).then(|| pan_gains(value_at(&clip.pan, 0.0, 1.0), mono));
    for (k, pair) in gains.chunks_exact_mut(2).enumerate() {
        let frame = from + k as u64;
        let local = frame as f64 / RATE - clip.start;
        let output_left = total.saturating_sub(frame) as f64 / RATE;
        let gain = clip_gain(track, local, output_left, constant_gain);
        let (l, r) = constant_pan
            .unwrap_or_else(|| pan_gains(value_at(&clip.pan, local, clip.duration), mono));
        pair[0] = (gain * l) as f32;
        pair[1] = (gain * r) as f32;
    }
}

/// Fills interleaved gains for the background track from timeline frame `from`.
fn background_gains(bg: &BackgroundTrack, total: u64, from: u64, gains: &mut [f32]) {
    let length = total as f64 / RATE;
    for (k, pair) in gains.chunks_exact_mut(2).enumerate() {
        let t = (from + k as u64) as f64 / RATE;
        let to_end = length - t;
        let mut gain = bg.gain * fade(t, bg.fade_in) * fade(to_end, bg.fade_out);
        if bg.fade_in <= 0.0 {
            gain *= declick(t);
        }
        if bg.fade_out <= 0.0 {
            gain *= declick(to_end);
        }
        pair[0] = gain as f32;
        pair[1] = gain as f32;
    }
}
