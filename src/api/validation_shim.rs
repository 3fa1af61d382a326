//! A stand-in for `project::parse_request` / `project::validate_request`, which are being
//! written beside this module; it has the same names and shapes so that switching to the
//! real validator is a change of `use` lines. It checks what the service itself relies on
//! (a non-empty timeline, positive durations, public URLs, the output format) and leaves
//! the full rule set to the real validator.

use std::fmt;

use crate::project::{self, RenderRequest, Timeline};

/// What the caller may allow beyond the public API.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateOptions {
    /// Accept local file paths as sources (the CLI); the service never does.
    pub allow_local_paths: bool,
}

/// One problem, at its JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    fn one(field: &str, message: impl Into<String>) -> ValidationErrors {
        ValidationErrors {
            errors: vec![FieldError {
                field: field.to_string(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Parses a request body.
pub fn parse_request(body: &[u8]) -> Result<RenderRequest, ValidationErrors> {
    serde_json::from_slice(body).map_err(|e| ValidationErrors::one("body", e.to_string()))
}

/// Checks a parsed request and resolves its timeline.
pub fn validate_request(
    request: &RenderRequest,
    options: &ValidateOptions,
) -> Result<Timeline, ValidationErrors> {
    let mut errors = Vec::new();
    let mut push = |field: String, message: String| errors.push(FieldError { field, message });
    if let Some(format) = request.format.as_deref().filter(|f| *f != "mp4") {
        push("format".into(), format!("must be \"mp4\", got {format:?}"));
    }
    let p = &request.project;
    if p.clips.is_empty() {
        push(
            "project.clips".into(),
            "must hold at least one clip, got none".into(),
        );
    }
    if let Some(r) = p.resolution
        && !((16..=7680).contains(&r.width) && (16..=4320).contains(&r.height))
    {
        push(
            "project.resolution".into(),
            format!(
                "must be 16..=7680 x 16..=4320, got {}x{}",
                r.width, r.height
            ),
        );
    }
    if let Some(fps) = p.fps.filter(|f| !(1.0..=120.0).contains(f)) {
        push("project.fps".into(), format!("must be 1..=120, got {fps}"));
    }
    for (i, clip) in p.clips.iter().enumerate() {
        if !(clip.duration.is_finite() && clip.duration > 0.0 && clip.duration <= 3600.0) {
            let field = format!("project.clips[{i}].duration");
            push(
                field,
                format!("must be > 0 and <= 3600 seconds, got {}", clip.duration),
            );
        }
        if !options.allow_local_paths && !is_web_url(&clip.src) {
            let field = format!("project.clips[{i}].src");
            push(
                field,
                format!("must be an http or https URL, got {:?}", clip.src),
            );
        }
    }
    if let Some(audio) = &p.audio
        && !options.allow_local_paths
        && !is_web_url(&audio.src)
    {
        let message = format!("must be an http or https URL, got {:?}", audio.src);
        push("project.audio.src".into(), message);
    }
    if errors.is_empty() {
        Ok(project::resolve(p))
    } else {
        Err(ValidationErrors { errors })
    }
}

fn is_web_url(src: &str) -> bool {
    url::Url::parse(src).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}
