//! Turns a project that has passed validation into a [`Timeline`]: defaults applied, clips
//! placed on the frame grid.

use super::model::{self, Project};
use super::timeline::*;

pub const DEFAULT_WIDTH: u32 = 1920;
pub const DEFAULT_HEIGHT: u32 = 1080;
pub const DEFAULT_FPS: f64 = 30.0;

/// Resolves a project. It must have passed validation: values out of range here are
/// clamped, not reported.
pub fn resolve(project: &Project) -> Timeline {
    let (width, height) = project
        .resolution
        .map_or((DEFAULT_WIDTH, DEFAULT_HEIGHT), |r| {
            (r.width as u32, r.height as u32)
        });
    let fps = Fps::from_f64(project.fps.unwrap_or(DEFAULT_FPS));
    let transitions = cut_transitions(project);

    let mut clips = Vec::with_capacity(project.clips.len());
    let mut start = 0.0;
    for (index, clip) in project.clips.iter().enumerate() {
        let transition_in = if index == 0 {
            0.0
        } else {
            transitions[index - 1]
        };
        let transition_out = transitions.get(index).copied().unwrap_or(0.0);
        start -= transition_in;
        clips.push(resolve_clip(
            index,
            clip,
            start,
            fps,
            transition_in,
            transition_out,
        ));
        start += clip.duration;
    }

    let frame_count = fps.frame_at(start);
    if let Some(last) = clips.last_mut() {
        last.end_frame = frame_count;
    }
    Timeline {
        width,
        height,
        fps,
        background: project
            .background
            .as_deref()
            .and_then(parse_colour)
            .unwrap_or([0; 3]),
        clips,
        audio: project.audio.as_ref().map(|a| BackgroundTrack {
            src: a.src.clone(),
            gain: a.gain.unwrap_or(1.0),
            fade_in: a.fade_in.unwrap_or(0.0),
            fade_out: a.fade_out.unwrap_or(0.0),
        }),
        frame_count,
    }
}

/// The crossfade length at each cut (`len - 1` entries): the outgoing clip's own
/// transition, else the project's default, else 0 (a hard cut).
pub fn cut_transitions(project: &Project) -> Vec<f64> {
    let cuts = project.clips.len().saturating_sub(1);
    project.clips[..cuts]
        .iter()
        .map(|clip| {
            clip.transition
                .as_ref()
                .or(project.transition.as_ref())
                .map_or(0.0, |t| t.duration.max(0.0))
        })
        .collect()
}

fn resolve_clip(
    index: usize,
    clip: &model::Clip,
    start: f64,
    fps: Fps,
    transition_in: f64,
    transition_out: f64,
) -> TimelineClip {
    let gain = automation(
        &clip.audio_gain_keyframes,
        clip.audio_gain,
        clip.audio_gain_end,
        1.0,
    );
    let pan = automation(
        &clip.audio_pan_keyframes,
        clip.audio_pan,
        clip.audio_pan_end,
        0.0,
    );
    TimelineClip {
        index,
        src: clip.src.clone(),
        kind: if clip.kind == "image" {
            ClipKind::Image
        } else {
            ClipKind::Video
        },
        fit: match clip.fit.as_deref() {
            Some("cover") => Fit::Cover,
            Some("fill") => Fit::Fill,
            _ => Fit::Contain,
        },
        trim_start: clip.trim_start.unwrap_or(0.0),
        duration: clip.duration,
        start,
        start_frame: fps.frame_at(start),
        end_frame: fps.frame_at(start + clip.duration),
        transition_in,
        transition_out,
        gain,
        pan,
        mute: clip.audio_mute,
        solo: clip.audio_solo,
        fade_in: clip.audio_fade_in.unwrap_or(0.0),
        fade_out: clip.audio_fade_out.unwrap_or(0.0),
    }
}

fn automation(
    keyframes: &[model::Keyframe],
    start: Option<f64>,
    end: Option<f64>,
    default: f64,
) -> Automation {
    if keyframes.is_empty() {
        let start = start.unwrap_or(default);
        return Automation::Ramp {
            start,
            end: end.unwrap_or(start),
        };
    }
    Automation::Keyframes(
        keyframes
            .iter()
            .map(|k| Keyframe {
                time: k.time,
                value: k.value,
                ease: parse_ease(k.ease.as_deref()),
            })
            .collect(),
    )
}

pub fn parse_ease(ease: Option<&str>) -> Ease {
    match ease {
        Some("ease-in") => Ease::EaseIn,
        Some("ease-out") => Ease::EaseOut,
        Some("ease-in-out") => Ease::EaseInOut,
        _ => Ease::Linear,
    }
}

/// `#rrggbb` (or `rrggbb`) to bytes.
pub fn parse_colour(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#').unwrap_or(text);
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}
