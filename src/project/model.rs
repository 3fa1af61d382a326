//! The JSON model of a render request, field for field as in the public API (camelCase),
//! plus the node's additions: `type` `image`, `trimStart`, `fit`, `background` and the
//! crossfade `transition`. Every struct denies unknown fields so that a typo is an error
//! that names its path instead of a setting silently ignored.

use serde::{Deserialize, Serialize};

/// The body of `POST /api/video-editor/render`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    pub api_key: String,
    pub project: Project,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default)]
    pub publish: bool,
}

/// A timeline: clips played one after another, optionally crossfaded, over an optional
/// background track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Project {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    pub clips: Vec<Clip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<BackgroundAudio>,
    /// Letterbox colour for `fit: contain`, `#rrggbb`; black by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// The transition used at every cut whose outgoing clip has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub width: i64,
    pub height: i64,
}

/// One clip of the timeline. Optional numbers stay `Option` so that validation can tell
/// "absent" (take the default) from an explicit value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Clip {
    pub src: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub duration: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim_start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_gain: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_gain_end: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_pan: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_pan_end: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio_gain_keyframes: Vec<Keyframe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio_pan_keyframes: Vec<Keyframe>,
    #[serde(default)]
    pub audio_mute: bool,
    #[serde(default)]
    pub audio_solo: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_fade_in: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_fade_out: Option<f64>,
}

/// A point of an automation curve: `value` at `time` seconds from the clip's start; the
/// segment that starts here is shaped by `ease`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyframe {
    pub time: f64,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ease: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Transition {
    #[serde(rename = "type")]
    pub kind: String,
    pub duration: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackgroundAudio {
    pub src: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gain: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fade_in: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fade_out: Option<f64>,
}
