//! The timeline project: the JSON a user sends, its validation, and the resolved
//! [`Timeline`] that every render stage reads. Validation happens once, up front, and
//! reports every problem with its JSON path, so that nothing downstream has to re-check
//! user input.

mod model;
mod resolve;
mod summary;
mod timeline;
mod validate;

pub use model::{BackgroundAudio, Clip, Keyframe as JsonKeyframe, Project, RenderRequest};
pub use model::{Resolution, Transition};
pub use resolve::resolve;
pub use summary::{Summary, summary};
pub use timeline::{
    Automation, BackgroundTrack, ClipKind, Ease, Fit, Fps, FrameLayers, Keyframe, Layer, Timeline,
    TimelineClip,
};
pub use validate::{
    FieldError, MAX_API_KEY_BYTES, ValidateOptions, ValidationErrors, check_api_key_length,
    parse_and_validate_document, parse_project, parse_request, validate, validate_request,
};
