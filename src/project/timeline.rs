//! The resolved timeline: a validated project with every default applied and every clip
//! placed on the output frame grid. It is what the render stages read; they never look at
//! the JSON model again.
//!
//! Placement rule: a clip starts at the cumulative time `start = sum(previous durations) -
//! sum(previous transitions)` and its first output frame is `round(start * fps)` (halves
//! round up). Because the rule is applied to the cumulative time, never to a running sum of
//! rounded lengths, rounding never accumulates. The output has `round(total * fps)` frames.
//! A clip shows on the frames `start_frame..end_frame`; at a hard cut one clip's
//! `end_frame` is the next one's `start_frame`, during a crossfade the two ranges overlap,
//! and validation keeps a clip's two crossfades within it, so at most two clips overlap.

/// A frame rate as an exact rational, so 29.97 is 30000/1001 and never drifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fps {
    pub num: u32,
    pub den: u32,
}

impl Fps {
    /// Reads a JSON frame rate: a rate within 0.005 of `n*1000/1001` for a whole `n` (the
    /// NTSC rates 23.976, 29.97, 47.952, 59.94, 119.88) becomes that exact fraction; a whole
    /// rate stays whole; any other rate is taken to the nearest 1/1000.
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

    /// The source time shown at timeline time `t`. The placement rule can put a clip's
    /// first frame up to half a frame before its exact start (and its last one past its
    /// end): those frames show the clip's first (last) instant.
    pub fn source_time(&self, t: f64) -> f64 {
        self.trim_start + (t - self.start).clamp(0.0, self.duration)
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

    /// The output length the project asks for, in seconds: every clip minus every
    /// crossfade, before the end is placed on the frame grid.
    pub fn requested_seconds(&self) -> f64 {
        self.clips.last().map_or(0.0, TimelineClip::end)
    }

    /// Credits charged for a render: one per started second of output. They are counted
    /// on the length the project asks for, not on the frame-rounded file length, so that a
    /// 4 s project at 29.97 fps (120 frames, 4.004 s) costs 4 credits, not 5.
    pub fn credits(&self) -> u64 {
        (self.requested_seconds() - 1e-9).ceil().max(0.0) as u64
    }

    /// The price of a render in US dollars: $0.01 per credit.
    pub fn cost_usd(&self) -> f64 {
        self.credits() as f64 / 100.0
    }

    /// The clips visible on output frame `n` with their weights and source times. During
    /// a crossfade the incoming clip weighs `(t - incoming.start) / transition` at the
    /// frame's time `t`, clamped to 0..=1, as FFmpeg's `xfade` does; the outgoing clip
    /// weighs the rest. A frame at or past `frame_count` has no layers.
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

#[cfg(test)]
mod tests {
    use super::super::model::{Clip, Project, Transition};
    use super::super::resolve::resolve;
    use super::*;
    use proptest::prelude::*;

    fn project(durations: &[f64], transition: f64, fps: f64) -> Project {
        Project {
            resolution: None,
            fps: Some(fps),
            clips: durations
                .iter()
                .map(|&duration| Clip {
                    src: "https://media.example/a.mp4".into(),
                    kind: "video".into(),
                    duration,
                    ..Clip::default()
                })
                .collect(),
            audio: None,
            background: None,
            transition: (transition > 0.0).then(|| Transition {
                kind: "crossfade".into(),
                duration: transition,
            }),
        }
    }

    /// Every frame has one or two layers whose weights sum to 1, the layers' clips are
    /// the ones whose frame range holds the frame, and each clip's frames are contiguous.
    fn assert_schedule(timeline: &Timeline) {
        let mut seen = vec![0u64; timeline.clips.len()];
        for n in 0..timeline.frame_count {
            let frame = timeline.frame(n);
            let layers: Vec<&Layer> = frame.iter().collect();
            assert!(!layers.is_empty(), "frame {n} is not covered");
            let sum: f32 = layers.iter().map(|l| l.weight).sum();
            assert!((sum - 1.0).abs() < 1e-6, "frame {n}: weights sum to {sum}");
            for layer in &layers {
                let clip = &timeline.clips[layer.clip];
                assert!((clip.start_frame..clip.end_frame).contains(&n));
                assert!((0.0..=1.0).contains(&layer.weight));
                let local = layer.source_time - clip.trim_start;
                assert!((0.0..=clip.duration).contains(&local), "frame {n}: {local}");
                seen[layer.clip] += 1;
            }
            let expected = timeline
                .clips
                .iter()
                .filter(|c| (c.start_frame..c.end_frame).contains(&n))
                .count();
            assert_eq!(layers.len(), expected, "frame {n}");
        }
        for (clip, count) in timeline.clips.iter().zip(seen) {
            assert_eq!(
                count,
                clip.end_frame - clip.start_frame,
                "clip {}",
                clip.index
            );
        }
        assert!(timeline.frame(timeline.frame_count).iter().next().is_none());
    }

    #[test]
    fn twenty_ntsc_clips_with_crossfades_end_on_the_nearest_frame() {
        // 20 * 2.345 - 19 * 0.5 = 37.4 s; 37.4 * 30000 / 1001 = 1120.88 -> 1121 frames.
        let timeline = resolve(&project(&[2.345; 20], 0.5, 29.97));
        assert_eq!(
            timeline.fps,
            Fps {
                num: 30000,
                den: 1001
            }
        );
        assert!((timeline.requested_seconds() - 37.4).abs() < 1e-9);
        assert_eq!(timeline.frame_count, 1121);
        let nearest = (37.4 * 30000.0 / 1001.0_f64).round() as u64;
        assert_eq!(timeline.frame_count, nearest);
        assert_eq!(timeline.credits(), 38);
        assert!((timeline.cost_usd() - 0.38).abs() < 1e-12);
        // Boundaries come from cumulative time: clip 10 starts at 10 * 1.845 = 18.45 s.
        assert_eq!(
            timeline.clips[10].start_frame,
            (18.45 * 30000.0 / 1001.0_f64).round() as u64
        );
        assert_schedule(&timeline);
    }

    #[test]
    fn crossfade_weight_follows_xfade() {
        // Two 2 s clips, 1 s crossfade at 10 fps: clip 1 starts at 1 s (frame 10).
        let timeline = resolve(&project(&[2.0, 2.0], 1.0, 10.0));
        assert_eq!(timeline.frame_count, 30);
        for n in 10..20u64 {
            let frame = timeline.frame(n);
            let [Some(out), Some(inc)] = frame.layers else {
                panic!("frame {n} is not a crossfade: {frame:?}");
            };
            let expected = (n as f32 - 10.0) / 10.0;
            assert_eq!((out.clip, inc.clip), (0, 1));
            assert!(
                (inc.weight - expected).abs() < 1e-6,
                "frame {n}: {}",
                inc.weight
            );
            assert!((out.weight - (1.0 - expected)).abs() < 1e-6);
            assert!((inc.source_time - f64::from(n as u32 - 10) / 10.0).abs() < 1e-9);
        }
        assert_eq!(timeline.frame(9).iter().count(), 1);
        assert_eq!(
            timeline
                .frame(20)
                .iter()
                .map(|l| l.clip)
                .collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn hard_cuts_hand_over_on_one_frame() {
        let timeline = resolve(&project(&[1.0, 1.0 / 3.0, 2.0], 0.0, 30.0));
        assert_eq!(timeline.frame_count, 100);
        assert_eq!(
            timeline
                .clips
                .iter()
                .map(|c| (c.start_frame, c.end_frame))
                .collect::<Vec<_>>(),
            [(0, 30), (30, 40), (40, 100)]
        );
        assert_schedule(&timeline);
    }

    #[test]
    fn credits_are_started_seconds_of_the_requested_length() {
        assert_eq!(resolve(&project(&[4.0], 0.0, 30.0)).credits(), 4);
        assert_eq!(resolve(&project(&[4.0], 0.0, 29.97)).credits(), 4);
        assert_eq!(resolve(&project(&[4.001], 0.0, 30.0)).credits(), 5);
        assert_eq!(resolve(&project(&[0.5], 0.0, 30.0)).credits(), 1);
    }

    #[test]
    fn fps_reads_ntsc_rates_exactly() {
        assert_eq!(
            Fps::from_f64(29.97),
            Fps {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(
            Fps::from_f64(23.976),
            Fps {
                num: 24000,
                den: 1001
            }
        );
        assert_eq!(
            Fps::from_f64(59.94),
            Fps {
                num: 60000,
                den: 1001
            }
        );
        assert_eq!(Fps::from_f64(30.0), Fps { num: 30, den: 1 });
        assert_eq!(Fps::from_f64(1.0), Fps { num: 1, den: 1 });
        assert_eq!(
            Fps::from_f64(12.5),
            Fps {
                num: 12500,
                den: 1000
            }
        );
    }

    /// Valid projects: clip lengths of at least one frame and transitions that fit.
    fn valid_project() -> impl Strategy<Value = Project> {
        let fps = prop_oneof![
            Just(29.97),
            Just(30.0),
            Just(25.0),
            Just(23.976),
            1.0..120.0f64
        ];
        (
            fps,
            prop::collection::vec((0.0..10.0f64, 0.0..1.0f64), 1..12),
        )
            .prop_map(|(fps, clips)| {
                let frame = Fps::from_f64(fps).time_of(1);
                let durations: Vec<f64> = clips.iter().map(|(d, _)| d.max(frame)).collect();
                let mut project = project(&durations, 0.0, fps);
                // Each cut takes up to half of the shorter clip, so a clip holds both.
                for (i, (_, share)) in clips.iter().enumerate().take(durations.len() - 1) {
                    let room = durations[i].min(durations[i + 1]) / 2.0;
                    project.clips[i].transition = Some(Transition {
                        kind: "crossfade".into(),
                        duration: if *share < 0.3 { 0.0 } else { room * share },
                    });
                }
                project
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn schedule_covers_every_frame_once(project in valid_project()) {
            let opts = super::super::validate::ValidateOptions::default();
            let validated = super::super::validate::validate(&project, &opts);
            prop_assert!(validated.is_ok(), "{:?}", validated);
            let timeline = resolve(&project);
            let fps = timeline.fps;
            let total = timeline.requested_seconds();
            prop_assert_eq!(timeline.frame_count, fps.frame_at(total));
            let exact = total * fps.as_f64();
            prop_assert!((timeline.frame_count as f64 - exact).abs() <= 0.5 + 1e-6);
            prop_assert_eq!(timeline.credits(), (total - 1e-9).ceil() as u64);
            assert_schedule(&timeline);
        }
    }
}
