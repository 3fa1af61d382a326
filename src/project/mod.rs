//! The timeline project: the JSON a user sends, its validation, and the resolved
//! [`Timeline`] that every render stage reads. Validation happens once, up front, and
//! reports every problem with its JSON path, so that nothing downstream has to re-check
//! user input.

mod model;
mod resolve;
mod timeline;

pub use model::{BackgroundAudio, Clip, Keyframe as JsonKeyframe, Project, RenderRequest};
pub use model::{Resolution, Transition};
pub use resolve::resolve;
pub use timeline::{
    Automation, BackgroundTrack, ClipKind, Ease, Fit, Fps, FrameLayers, Keyframe, Layer, Timeline,
    TimelineClip,
};
