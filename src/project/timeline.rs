//! The resolved timeline: a validated project with every default applied and every clip
//! placed on the output frame grid. It is what the render stages read; they never look at
//! the JSON model again.
//!
//! Placement rule: a clip starts at the cumulative time `start = sum(previous durations) -
//! sum(previous transitions)` and its first output frame is `round(start * fps)` (halves
//! round up). Because the rule is applied to the cumulative time, never to a running sum of
//! rounded lengths, rounding never accumulates. The output has `round(total * fps)` frames.

/// A frame rate as an exact rational, so 29.97 is 30000/1001 and never drifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fps {
    pub num: u32,
    pub den: u32,
}

impl Fps {
    /// Reads a JSON frame rate: the NTSC rates (23.976, 29.97, 47.952, 59.94, 119.88) become
    /// their exact n*1000/1001 form; any other rate is taken to the nearest 1/1000.
    pub fn from_f64(fps: f64) -> Fps {
        let ntsc = (fps * 1.001).round();
        if (fps - ntsc / 1.001).abs() < 0.005 && (fps - ntsc).abs() > 0.005 {
            return Fps {
                num: ntsc as u32 * 1000,
                den: 1001,
            };
        }
        if (fps - fps.round()).abs() < 1e-9 {
            return Fps {
                num: fps.round() as u32,
                den: 1,
            };
        }
        Fps {
            num: (fps * 1000.0).round() as u32,
            den: 1000,
        }
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// The output frame on whose start `seconds` falls, by the placement rule above.
    pub fn frame_at(self, seconds: f64) -> u64 {
        let exact = seconds * f64::from(self.num) / f64::from(self.den);
        // A tiny epsilon so that 2.345 * 30 = 70.35 does not become 70.349999.
        (exact + 0.5 + 1e-9).floor().max(0.0) as u64
    }

    /// The timeline time of output frame `n`, in seconds.
    pub fn time_of(self, frame: u64) -> f64 {
        frame as f64 * f64::from(self.den) / f64::from(self.num)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipKind {
    Video,
    Image,
}

/// How a source is placed in the output frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Scale to fit inside, letterbox with the background colour.
    #[default]
    Contain,
    /// Scale to fill, crop the overflow.
    Cover,
    /// Stretch to the output's size.
    Fill,
}

/// The shape of an automation segment; see `audio::automation` for the exact curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ease {
    #[default]
    Linear,
    EaseIn,
    EaseOut,
    EaseInOut,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keyframe {
    /// Seconds from the clip's start.
    pub time: f64,
    pub value: f64,
    pub ease: Ease,
}

/// A gain or pan curve over one clip.
#[derive(Debug, Clone, PartialEq)]
pub enum Automation {
    /// A linear ramp from `start` at the clip's start to `end` at its end.
    Ramp { start: f64, end: f64 },
    /// Keyframes, strictly increasing in time (at least one).
    Keyframes(Vec<Keyframe>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineClip {
    /// Position in `project.clips`, for error messages (`project.clips[2].src`).
    pub index: usize,
    pub src: String,
    pub kind: ClipKind,
    pub fit: Fit,
    /// Seconds into the source where the clip starts reading.
    pub trim_start: f64,
    /// Length on the timeline, in seconds, as in the project.
    pub duration: f64,
    /// Timeline time of the clip's start, in seconds (cumulative, exact).
    pub start: f64,
    /// First output frame showing this clip.
    pub start_frame: u64,
    /// One past the last output frame showing this clip.
    pub end_frame: u64,
    /// Crossfade with the previous clip, in seconds (0 for a hard cut or the first clip).
    pub transition_in: f64,
    /// Crossfade into the next clip, in seconds (0 for a hard cut or the last clip).
    pub transition_out: f64,
    pub gain: Automation,
    pub pan: Automation,
    pub mute: bool,
    pub solo: bool,
    pub fade_in: f64,
    pub fade_out: f64,
}

impl TimelineClip {
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }

    /// The clip's own seconds (from its start) that timeline time `t` falls on.
    pub fn local_time(&self, t: f64) -> f64 {
        t - self.start
    }

    /// The source time shown at timeline time `t`.
    pub fn source_time(&self, t: f64) -> f64 {
        self.trim_start + (t - self.start)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundTrack {
    pub src: String,
    pub gain: f64,
    pub fade_in: f64,
    pub fade_out: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub width: u32,
    pub height: u32,
    pub fps: Fps,
    /// Letterbox colour, R'G'B' 8-bit.
    pub background: [u8; 3],
    pub clips: Vec<TimelineClip>,
    pub audio: Option<BackgroundTrack>,
    pub frame_count: u64,
}

/// One clip's contribution to an output frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer {
    /// Index into `Timeline::clips`.
    pub clip: usize,
    /// Blend weight; the layers of a frame sum to 1.
    pub weight: f32,
    /// Seconds into the source.
    pub source_time: f64,
}

/// The layers of one output frame, bottom first (at most two: a crossfade).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameLayers {
    pub layers: [Option<Layer>; 2],
}

impl FrameLayers {
    pub fn iter(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().flatten()
    }
}

impl Timeline {
    /// Output length in seconds: whole frames, so it is what the file will hold.
    pub fn duration(&self) -> f64 {
        self.fps.time_of(self.frame_count)
    }

    /// Credits charged for a render: one per started second of output.
    pub fn credits(&self) -> u64 {
        (self.duration() - 1e-9).ceil().max(0.0) as u64
    }

    /// The clips visible on output frame `n` with their weights and source times.
    pub fn frame(&self, n: u64) -> FrameLayers {
        let t = self.fps.time_of(n);
        let first = self.clips.partition_point(|c| c.end_frame <= n);
        let mut layers = [None, None];
        let visible = self.clips[first.min(self.clips.len())..]
            .iter()
            .take_while(|c| c.start_frame <= n)
            .take(2);
        for (slot, clip) in visible.enumerate() {
            layers[slot] = Some(Layer {
                clip: clip.index,
                weight: 1.0,
                source_time: clip.source_time(t),
            });
        }
        if let [Some(prev), Some(next)] = &mut layers {
            let incoming = &self.clips[next.clip];
            let w = ((t - incoming.start) / incoming.transition_in.max(1e-9)).clamp(0.0, 1.0);
            next.weight = w as f32;
            prev.weight = 1.0 - next.weight;
        }
        FrameLayers { layers }
    }
}
