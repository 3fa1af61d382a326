//! Validation: the one gate between user JSON and the render stages. A request is parsed
//! with its JSON path tracked, so a typo or a wrong type names the exact field, and then
//! every rule is checked and every broken one reported at once, so a user fixes a project
//! in one round trip instead of one error at a time. Nothing downstream re-checks user
//! input: a project that passes here resolves to a [`Timeline`] that cannot make a render
//! stage panic.
//!
//! Every field path is rooted at `project.` for project fields (the CLI and the API print
//! the same paths); the request's own fields are `api_key` and `format`; a body that is
//! not UTF-8 or not JSON is `body`.
//!
//! A transition on the last clip has no cut to act on: it is checked for shape and then
//! ignored.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::model::{BackgroundAudio, Clip, Keyframe, Project, RenderRequest, Transition};
use super::resolve::{DEFAULT_FPS, resolve};
use super::timeline::{Fps, Timeline};

/// At most this many clips in a project.
pub const MAX_CLIPS: usize = 1_000;
/// At most this many keyframes in one automation list.
pub const MAX_KEYFRAMES: usize = 1_000;
/// The longest clip and the longest output: three hours, in seconds.
pub const MAX_SECONDS: f64 = 3.0 * 3600.0;
/// The longest `src`, in characters.
pub const MAX_SRC_CHARS: usize = 4_096;
/// The longest `api_key`, in bytes: keys are far shorter, and a longer one is refused
/// before it is hashed or looked up.
pub const MAX_API_KEY_BYTES: usize = 256;
/// Output width and height bounds (inclusive; both must also be even).
pub const WIDTH_RANGE: (i64, i64) = (16, 7680);
pub const HEIGHT_RANGE: (i64, i64) = (16, 4320);
/// Output frame rate bounds (inclusive).
pub const FPS_RANGE: (f64, f64) = (1.0, 120.0);
/// Gain multiplier bounds (inclusive).
pub const GAIN_RANGE: (f64, f64) = (0.0, 16.0);
/// Pan bounds (inclusive): -1 left, 1 right.
pub const PAN_RANGE: (f64, f64) = (-1.0, 1.0);

const EASES: &[&str] = &["linear", "ease-in", "ease-out", "ease-in-out"];
const KINDS: &[&str] = &["video", "image"];
const FITS: &[&str] = &["contain", "cover", "fill"];
const TRANSITIONS: &[&str] = &["crossfade"];
const FORMATS: &[&str] = &["mp4"];

/// What the caller accepts beyond the public API's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidateOptions {
    /// `src` may be a local path (the CLI); otherwise only absolute http(s) URLs (the
    /// service).
    pub allow_local_paths: bool,
}

/// One broken rule: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `project.clips[2].duration`, `api_key`, or `body` for the document as a whole.
    pub field: String,
    /// The value and what is accepted: `must be > 0 seconds, got -1`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every rule a request breaks, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    fn single(field: impl Into<String>, message: impl Into<String>) -> ValidationErrors {
        ValidationErrors {
            errors: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        }
    }

    /// The field of the first error: what the HTTP API puts in its `field`.
    pub fn first_field(&self) -> Option<&str> {
        self.errors.first().map(|e| e.field.as_str())
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Parses the body of `POST /api/video-editor/render`.
pub fn parse_request(json: &[u8]) -> Result<RenderRequest, ValidationErrors> {
    parse(json, "")
}

/// Parses a bare project (the CLI's file); paths are still rooted at `project.`.
pub fn parse_project(json: &[u8]) -> Result<Project, ValidationErrors> {
    parse(json, "project")
}

/// Parses either a full request body (an object with a `project` key) or a bare project,
/// and validates it: what `render-node validate` and `render` read.
pub fn parse_and_validate_document(
    json: &[u8],
    opts: &ValidateOptions,
) -> Result<Timeline, ValidationErrors> {
    let is_request = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(json)
        .is_ok_and(|body| body.contains_key("project"));
    if is_request {
        validate_request(&parse_request(json)?, opts)
    } else {
        validate(&parse_project(json)?, opts)
    }
}

fn parse<T: DeserializeOwned>(json: &[u8], root: &str) -> Result<T, ValidationErrors> {
    let text = std::str::from_utf8(json).map_err(|e| {
        let at = e.valid_up_to();
        ValidationErrors::single("body", format!("must be UTF-8 text, invalid byte at {at}"))
    })?;
    // serde would take an array for a struct's fields in order; only an object is meant.
    if !text.trim_start().starts_with('{') {
        let field = if root.is_empty() { "body" } else { root };
        return Err(match serde_json::from_str::<serde_json::Value>(text) {
            Err(e) => ValidationErrors::single("body", format!("not valid JSON: {e}")),
            Ok(value) => ValidationErrors::single(
                field,
                format!("must be a JSON object, got {}", json_kind(&value)),
            ),
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| parse_error(&e, root))?;
    de.end()
        .map_err(|e| ValidationErrors::single("body", format!("not valid JSON: {e}")))?;
    if let Ok(document) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(field) = array_for_object(&document, root)
    {
        return Err(ValidationErrors::single(
            field,
            "must be a JSON object, got an array",
        ));
    }
    Ok(value)
}

/// Keys whose value is one object, and keys whose value is a list of objects.
const OBJECT_KEYS: &[&str] = &["project", "resolution", "audio", "transition"];
const OBJECT_LIST_KEYS: &[&str] = &["clips", "audioGainKeyframes", "audioPanKeyframes"];

/// The path of an object of the model written as an array. serde would read the array as
/// the struct's fields in order (`"resolution": [1920, 1080]`), which the API does not
/// define; it is refused like any other wrong type.
fn array_for_object(value: &serde_json::Value, path: &str) -> Option<String> {
    let serde_json::Value::Object(map) = value else {
        return None;
    };
    for (key, child) in map {
        let child_path = join_segment(path, key);
        if OBJECT_KEYS.contains(&key.as_str()) {
            if child.is_array() {
                return Some(child_path);
            }
            if let Some(found) = array_for_object(child, &child_path) {
                return Some(found);
            }
        } else if OBJECT_LIST_KEYS.contains(&key.as_str())
            && let serde_json::Value::Array(items) = child
        {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{child_path}[{i}]");
                if item.is_array() {
                    return Some(item_path);
                }
                if let Some(found) = array_for_object(item, &item_path) {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// Turns a serde error into a field error: the path it happened at and a message that
/// says what is accepted.
fn parse_error(e: &serde_path_to_error::Error<serde_json::Error>, root: &str) -> ValidationErrors {
    let mut field = join_path(root, e.path());
    let inner = e.inner();
    let mut message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    if let Some(stripped) = message.strip_suffix(&position) {
        message = stripped.to_string();
    }
    // A number too large for f64 is a syntax error to serde_json but a value to the user.
    if message == "number out of range" && !field.is_empty() {
        return ValidationErrors::single(field, "number out of range, must be finite");
    }
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return ValidationErrors::single("body", format!("not valid JSON: {inner}"));
    }

    if let Some(rest) = message.strip_prefix("unknown field `") {
        // `unknown field `x`, expected one of ...`: the path already ends in `x`.
        message = match rest.split_once("`, ") {
            Some((_, expected)) => format!("unknown field, {expected}"),
            None => "unknown field".to_string(),
        };
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        field = join_segment(&field, name);
        message = "required field is missing".to_string();
    }
    if field.is_empty() {
        field = "body".into();
    }
    // serde quotes the offending value and key in full: a 1 MiB string would come back
    // as a 1 MiB error.
    ValidationErrors::single(
        cut_middle(&field, MAX_ECHOED_CHARS),
        cut_middle(
            &message.replace("expected struct", "expected an object"),
            MAX_ECHOED_CHARS,
        ),
    )
}

/// The longest field path or parse message echoed back, in characters.
const MAX_ECHOED_CHARS: usize = 240;

/// `text` if at most `max` characters, else its head and tail around `...`.
fn cut_middle(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let keep = max / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(count - keep).collect();
    format!("{head}...{tail}")
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn join_path(root: &str, path: &serde_path_to_error::Path) -> String {
    let mut out = root.to_string();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join_segment(&out, key),
            Segment::Enum { variant } => out = join_segment(&out, variant),
            Segment::Unknown => out = join_segment(&out, "?"),
        }
    }
    out
}

fn join_segment(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Validates a full request: the project plus `api_key` and `format`.
pub fn validate_request(
    req: &RenderRequest,
    opts: &ValidateOptions,
) -> Result<Timeline, ValidationErrors> {
    let mut check = Checker::default();
    if req.api_key.trim().is_empty() {
        check.push("api_key", "must not be empty".into());
    } else if let Err(e) = check_api_key_length(&req.api_key) {
        check.errors.extend(e.errors);
    }
    if let Some(format) = &req.format {
        check.one_of("format", format, FORMATS);
    }
    check_project(&mut check, &req.project, opts);
    check.finish(&req.project)
}

/// Refuses an `api_key` over [`MAX_API_KEY_BYTES`], naming its length.
pub fn check_api_key_length(api_key: &str) -> Result<(), ValidationErrors> {
    if api_key.len() > MAX_API_KEY_BYTES {
        return Err(ValidationErrors::single(
            "api_key",
            format!(
                "must be at most {MAX_API_KEY_BYTES} bytes, got {}",
                api_key.len()
            ),
        ));
    }
    Ok(())
}

/// Validates a project, reporting every broken rule at once, and resolves it.
pub fn validate(project: &Project, opts: &ValidateOptions) -> Result<Timeline, ValidationErrors> {
    let mut check = Checker::default();
    check_project(&mut check, project, opts);
    check.finish(project)
}

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn push(&mut self, field: impl Into<String>, message: String) {
        self.errors.push(FieldError {
            field: field.into(),
            message,
        });
    }

    fn finish(self, project: &Project) -> Result<Timeline, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(resolve(project))
        } else {
            Err(ValidationErrors {
                errors: self.errors,
            })
        }
    }

    /// A finite number; reports and returns false otherwise.
    fn finite(&mut self, field: &str, value: f64) -> bool {
        if !value.is_finite() {
            self.push(
                field,
                format!("must be a finite number, got {}", num(value)),
            );
        }
        value.is_finite()
    }

    /// A finite number in `lo..=hi`.
    fn range(&mut self, field: &str, value: f64, (lo, hi): (f64, f64), unit: &str) -> bool {
        if !self.finite(field, value) {
            return false;
        }
        let ok = (lo..=hi).contains(&value);
        if !ok {
            let (lo, hi) = (num(lo), num(hi));
            let got = num(value);
            self.push(
                field,
                format!("must be between {lo} and {hi}{unit}, got {got}"),
            );
        }
        ok
    }

    /// A finite number >= 0 (seconds).
    fn non_negative(&mut self, field: &str, value: f64) -> bool {
        if !self.finite(field, value) {
            return false;
        }
        if value < 0.0 {
            self.push(field, format!("must be >= 0 seconds, got {}", num(value)));
        }
        value >= 0.0
    }

    fn one_of(&mut self, field: &str, value: &str, accepted: &[&str]) -> bool {
        let ok = accepted.contains(&value);
        if !ok {
            let accepted = accepted
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>();
            let got = quote(value);
            self.push(
                field,
                format!("must be one of {}, got {got}", accepted.join(", ")),
            );
        }
        ok
    }

    fn src(&mut self, field: &str, src: &str, opts: &ValidateOptions) {
        let accepted = if opts.allow_local_paths {
            "an absolute http(s) URL or a local path"
        } else {
            "an absolute http(s) URL"
        };
        let chars = src.chars().count();
        let problem = if src.trim().is_empty() {
            Some(format!("must be {accepted}, got an empty string"))
        } else if chars > MAX_SRC_CHARS {
            Some(format!(
                "must be at most {MAX_SRC_CHARS} characters, got {chars}"
            ))
        } else if src.contains('\0') {
            Some("must not contain a NUL character".to_string())
        } else if opts.allow_local_paths && !src.contains("://") {
            None
        } else {
            url_problem(src).map(|why| format!("must be {accepted}, got {} ({why})", quote(src)))
        };
        if let Some(message) = problem {
            self.push(field, message);
        }
    }
}

/// Why `src` is not an absolute http(s) URL with a host, if it is not.
fn url_problem(src: &str) -> Option<String> {
    match url::Url::parse(src) {
        Err(e) => Some(e.to_string()),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            Some(format!("scheme \"{}\" is not http or https", url.scheme()))
        }
        Ok(url) if url.host().is_none() => Some("no host".to_string()),
        Ok(_) => None,
    }
}

/// A number as a user wrote it: `-1`, `0.5`, `1e300`, `inf`.
fn num(value: f64) -> String {
    if value.is_finite() && value.abs() >= 1e9 {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// A string value for a message, quoted and cut short.
fn quote(value: &str) -> String {
    const SHOWN: usize = 80;
    if value.chars().count() > SHOWN {
        let head: String = value.chars().take(SHOWN).collect();
        format!("{head:?}...")
    } else {
        format!("{value:?}")
    }
}

fn check_project(check: &mut Checker, project: &Project, opts: &ValidateOptions) {
    let fps = check_format(check, project);
    check_clip_list(check, &project.clips);
    if let Some(transition) = &project.transition {
        check_transition(check, "project.transition", transition);
    }

    let mut durations_ok = true;
    for (index, clip) in project.clips.iter().enumerate() {
        durations_ok &= check_clip(check, index, clip, fps, opts);
    }
    let cuts_ok = check_cuts(check, project);

    // The output length is only meaningful once every duration and transition is.
    let output = (durations_ok && cuts_ok).then(|| output_seconds(project));
    if let Some(total) = output
        && total > MAX_SECONDS
    {
        let message =
            format!("output must be at most {MAX_SECONDS} seconds (3 hours), got {total}");
        check.push("project.clips", message);
    }
    if let Some(audio) = &project.audio {
        check_background_audio(check, audio, output, opts);
    }
}

/// Resolution, fps and background; returns the frame rate when it is valid.
fn check_format(check: &mut Checker, project: &Project) -> Option<Fps> {
    if let Some(resolution) = project.resolution {
        check_dimension(
            check,
            "project.resolution.width",
            resolution.width,
            WIDTH_RANGE,
        );
        check_dimension(
            check,
            "project.resolution.height",
            resolution.height,
            HEIGHT_RANGE,
        );
    }
    if let Some(background) = &project.background {
        let ok = background.len() == 7
            && background.starts_with('#')
            && background.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
        if !ok {
            let got = quote(background);
            check.push(
                "project.background",
                format!("must be a colour \"#rrggbb\", got {got}"),
            );
        }
    }
    let fps = project.fps.unwrap_or(DEFAULT_FPS);
    check
        .range("project.fps", fps, FPS_RANGE, " frames per second")
        .then(|| Fps::from_f64(fps))
}

fn check_dimension(check: &mut Checker, field: &str, value: i64, (lo, hi): (i64, i64)) {
    if !(lo..=hi).contains(&value) || value % 2 != 0 {
        let message = format!("must be an even number of pixels from {lo} to {hi}, got {value}");
        check.push(field, message);
    }
}

fn check_clip_list(check: &mut Checker, clips: &[Clip]) {
    if clips.is_empty() {
        check.push(
            "project.clips",
            "must hold at least one clip, got none".into(),
        );
    } else if clips.len() > MAX_CLIPS {
        let message = format!("must hold at most {MAX_CLIPS} clips, got {}", clips.len());
        check.push("project.clips", message);
    }
}

fn check_transition(check: &mut Checker, field: &str, transition: &Transition) -> bool {
    let kind_ok = check.one_of(&format!("{field}.type"), &transition.kind, TRANSITIONS);
    let duration_ok = check.non_negative(&format!("{field}.duration"), transition.duration);
    kind_ok && duration_ok
}

/// Checks one clip; returns whether its duration is valid (the cuts and the output length
/// depend on it).
fn check_clip(
    check: &mut Checker,
    index: usize,
    clip: &Clip,
    fps: Option<Fps>,
    opts: &ValidateOptions,
) -> bool {
    let base = format!("project.clips[{index}]");
    let field = |name: &str| format!("{base}.{name}");

    check.src(&field("src"), &clip.src, opts);
    check.one_of(&field("type"), &clip.kind, KINDS);
    if let Some(fit) = &clip.fit {
        check.one_of(&field("fit"), fit, FITS);
    }
    if let Some(trim) = clip.trim_start {
        check.non_negative(&field("trimStart"), trim);
    }
    if let Some(transition) = &clip.transition {
        check_transition(check, &field("transition"), transition);
    }
    let duration_ok = check_duration(check, &field("duration"), clip.duration, fps);
    let duration = duration_ok.then_some(clip.duration);

    check_audio_levels(check, &field, clip);
    check_keyframes(
        check,
        &field("audioGainKeyframes"),
        &clip.audio_gain_keyframes,
        GAIN_RANGE,
        duration,
    );
    check_keyframes(
        check,
        &field("audioPanKeyframes"),
        &clip.audio_pan_keyframes,
        PAN_RANGE,
        duration,
    );
    check_fades(
        check,
        &base,
        "audioFadeIn",
        "audioFadeOut",
        (clip.audio_fade_in, clip.audio_fade_out),
        duration,
    );
    duration_ok
}

fn check_duration(check: &mut Checker, field: &str, duration: f64, fps: Option<Fps>) -> bool {
    if !check.finite(field, duration) {
        return false;
    }
    let got = num(duration);
    if duration <= 0.0 {
        check.push(field, format!("must be > 0 seconds, got {got}"));
        return false;
    }
    if duration > MAX_SECONDS {
        check.push(
            field,
            format!("must be at most {MAX_SECONDS} seconds (3 hours), got {got}"),
        );
        return false;
    }
    // The placement rule gives a clip of at least one frame period at least one frame.
    if let Some(fps) = fps {
        let frame = fps.time_of(1);
        if duration < frame - 1e-9 {
            let message = format!("must be at least one frame ({frame:.6} s) long, got {got}");
            check.push(field, message);
            return false;
        }
    }
    true
}

fn check_audio_levels(check: &mut Checker, field: &impl Fn(&str) -> String, clip: &Clip) {
    let levels = [
        ("audioGain", clip.audio_gain, GAIN_RANGE),
        ("audioGainEnd", clip.audio_gain_end, GAIN_RANGE),
        ("audioPan", clip.audio_pan, PAN_RANGE),
        ("audioPanEnd", clip.audio_pan_end, PAN_RANGE),
    ];
    for (name, value, range) in levels {
        if let Some(value) = value {
            check.range(&field(name), value, range, "");
        }
    }
}

/// An automation list: times in the clip and strictly increasing, values in range.
fn check_keyframes(
    check: &mut Checker,
    field: &str,
    keyframes: &[Keyframe],
    range: (f64, f64),
    duration: Option<f64>,
) {
    if keyframes.len() > MAX_KEYFRAMES {
        let message = format!(
            "must hold at most {MAX_KEYFRAMES} keyframes, got {}",
            keyframes.len()
        );
        check.push(field, message);
    }
    let mut previous: Option<f64> = None;
    for (i, keyframe) in keyframes.iter().enumerate() {
        let time_field = format!("{field}[{i}].time");
        let time = keyframe.time;
        if check.non_negative(&time_field, time) {
            if let Some(duration) = duration
                && time > duration
            {
                let message = format!(
                    "must be within the clip (<= {} seconds), got {}",
                    num(duration),
                    num(time)
                );
                check.push(time_field.clone(), message);
            }
            if let Some(before) = previous
                && time <= before
            {
                let message = format!(
                    "must be later than the previous keyframe's time {}, got {}",
                    num(before),
                    num(time)
                );
                check.push(time_field, message);
            }
            previous = Some(time);
        }
        check.range(&format!("{field}[{i}].value"), keyframe.value, range, "");
        if let Some(ease) = &keyframe.ease {
            check.one_of(&format!("{field}[{i}].ease"), ease, EASES);
        }
    }
}

/// Fade-in and fade-out: each >= 0, together no longer than `length` (when known).
fn check_fades(
    check: &mut Checker,
    base: &str,
    in_name: &str,
    out_name: &str,
    (fade_in, fade_out): (Option<f64>, Option<f64>),
    length: Option<f64>,
) {
    let in_field = format!("{base}.{in_name}");
    let out_field = format!("{base}.{out_name}");
    let in_ok = fade_in.is_none_or(|v| check.non_negative(&in_field, v));
    let out_ok = fade_out.is_none_or(|v| check.non_negative(&out_field, v));
    let (fade_in, fade_out) = (fade_in.unwrap_or(0.0), fade_out.unwrap_or(0.0));
    if let Some(length) = length
        && in_ok
        && out_ok
        && fade_in + fade_out > length + 1e-9
    {
        let message = format!(
            "{in_name} + {out_name} must be at most the length ({} s), got {} + {}",
            num(length),
            num(fade_in),
            num(fade_out)
        );
        check.push(out_field, message);
    }
}

/// The crossfade at each cut: no longer than either clip it joins, and a clip's incoming
/// and outgoing transitions together no longer than the clip, so at most two clips ever
/// overlap. Returns whether every cut is valid.
fn check_cuts(check: &mut Checker, project: &Project) -> bool {
    let clips = &project.clips;
    let mut ok = true;
    let mut cuts: Vec<(String, f64)> = Vec::with_capacity(clips.len().saturating_sub(1));
    for (index, pair) in clips.windows(2).enumerate() {
        let (field, transition) = match (&pair[0].transition, &project.transition) {
            (Some(own), _) => (format!("project.clips[{index}].transition.duration"), own),
            (None, Some(default)) => ("project.transition.duration".to_string(), default),
            (None, None) => {
                cuts.push((String::new(), 0.0));
                continue;
            }
        };
        let length = transition.duration;
        if !(length.is_finite() && length >= 0.0) {
            // Already reported by the transition's own check.
            ok = false;
            cuts.push((field, 0.0));
            continue;
        }
        for (side, clip) in [(index, &pair[0]), (index + 1, &pair[1])] {
            if clip.duration.is_finite() && length > clip.duration + 1e-9 {
                let message = format!(
                    "must be at most the length of project.clips[{side}] ({} s), got {}",
                    num(clip.duration),
                    num(length)
                );
                check.push(field.clone(), message);
                ok = false;
            }
        }
        cuts.push((field, length));
    }
    ok && check_clip_overlaps(check, clips, &cuts)
}

/// A clip's transitions in and out together must fit in it.
fn check_clip_overlaps(check: &mut Checker, clips: &[Clip], cuts: &[(String, f64)]) -> bool {
    let mut ok = true;
    for (index, pair) in cuts.windows(2).enumerate() {
        let clip_index = index + 1;
        let Some(clip) = clips.get(clip_index) else {
            continue;
        };
        let ((_, into), (out_field, out)) = (&pair[0], &pair[1]);
        if clip.duration.is_finite() && into + out > clip.duration + 1e-9 {
            let message = format!(
                "with the incoming transition ({} s) must be at most the length of \
                 project.clips[{clip_index}] ({} s), got {}",
                num(*into),
                num(clip.duration),
                num(*out)
            );
            check.push(out_field.clone(), message);
            ok = false;
        }
    }
    ok
}

/// The output length in seconds: every clip minus every crossfade.
fn output_seconds(project: &Project) -> f64 {
    let clips: f64 = project.clips.iter().map(|c| c.duration).sum();
    let cuts: f64 = super::resolve::cut_transitions(project).iter().sum();
    clips - cuts
}

fn check_background_audio(
    check: &mut Checker,
    audio: &BackgroundAudio,
    output: Option<f64>,
    opts: &ValidateOptions,
) {
    check.src("project.audio.src", &audio.src, opts);
    if let Some(gain) = audio.gain {
        check.range("project.audio.gain", gain, GAIN_RANGE, "");
    }
    check_fades(
        check,
        "project.audio",
        "fadeIn",
        "fadeOut",
        (audio.fade_in, audio.fade_out),
        output,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SERVICE: ValidateOptions = ValidateOptions {
        allow_local_paths: false,
    };
    const CLI: ValidateOptions = ValidateOptions {
        allow_local_paths: true,
    };

    fn clip() -> Value {
        json!({"src": "https://media.example/a.mp4", "type": "video", "duration": 4})
    }

    fn project_with(clips: Vec<Value>) -> Value {
        json!({"fps": 30, "clips": clips})
    }

    /// Parses and validates a bare project; the errors as `field: message` lines.
    fn errors_of(project: &Value, opts: &ValidateOptions) -> Vec<String> {
        let bytes = serde_json::to_vec(project).unwrap();
        let result = parse_project(&bytes).and_then(|p| validate(&p, opts));
        match result {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// The single error of a project with one clip changed by `edit`.
    fn clip_error(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut c = clip();
        edit(&mut c);
        errors_of(&project_with(vec![c]), &SERVICE)
    }

    fn has(errors: &[String], expected: &str) {
        assert!(
            errors.iter().any(|e| e == expected),
            "expected {expected:?} in {errors:#?}"
        );
    }

    #[test]
    fn api_example_is_valid_and_costs_four_credits() {
        let body = include_bytes!("../../examples/api-example.json");
        let request = parse_request(body).unwrap();
        let timeline = validate_request(&request, &SERVICE).unwrap();
        assert_eq!(timeline.frame_count, 120);
        assert_eq!(timeline.credits(), 4);
        assert!((timeline.cost_usd() - 0.04).abs() < 1e-12);
        let bare = serde_json::to_vec(&request.project).unwrap();
        assert_eq!(parse_and_validate_document(&bare, &CLI).unwrap(), timeline);
        assert_eq!(parse_and_validate_document(body, &CLI).unwrap(), timeline);
    }

    #[test]
    fn unknown_field_names_its_path() {
        let mut c = clip();
        c["audioGian"] = json!(1);
        let bytes = serde_json::to_vec(&json!({"api_key": "k", "project": {"clips": [c]}}));
        let e = parse_request(&bytes.unwrap()).unwrap_err();
        assert_eq!(e.first_field(), Some("project.clips[0].audioGian"));
        assert!(
            e.errors[0]
                .message
                .starts_with("unknown field, expected one of `src`")
        );
        let bare = errors_of(&project_with(vec![c]), &SERVICE);
        assert!(
            bare[0].starts_with("project.clips[0].audioGian: unknown field"),
            "{bare:?}"
        );
    }

    #[test]
    fn wrong_type_names_path_and_expected_type() {
        let e = clip_error(|c| c["duration"] = json!("4"));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("project.clips[0].duration: invalid type: string"),
            "{e:?}"
        );
        assert!(e[0].contains("expected f64"), "{e:?}");
        let e = errors_of(
            &json!({"fps": 30, "clips": [], "resolution": {"width": 1.5, "height": 2}}),
            &SERVICE,
        );
        assert!(
            e[0].starts_with("project.resolution.width: invalid type"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_field_names_the_field() {
        let e = clip_error(|c| {
            c.as_object_mut().unwrap().remove("src");
        });
        assert_eq!(e, ["project.clips[0].src: required field is missing"]);
        let e = parse_request(br#"{"project": {"clips": []}}"#).unwrap_err();
        assert_eq!(e.to_string(), "api_key: required field is missing");
    }

    #[test]
    fn bad_documents_are_the_body() {
        let e = parse_request(b"{\"api_key\": ").unwrap_err();
        assert_eq!(e.first_field(), Some("body"));
        assert!(e.errors[0].message.starts_with("not valid JSON"));
        let e = parse_request(b"\xff\xfe").unwrap_err();
        assert_eq!(e.to_string(), "body: must be UTF-8 text, invalid byte at 0");
        let e = parse_request(b"[1, 2]").unwrap_err();
        assert_eq!(e.first_field(), Some("body"));
        assert_eq!(e.to_string(), "body: must be a JSON object, got an array");
        let e = parse_project(b"42").unwrap_err();
        assert_eq!(
            e.to_string(),
            "project: must be a JSON object, got a number"
        );
        let e = parse_project(b"{\"clips\": []} x").unwrap_err();
        assert_eq!(e.first_field(), Some("body"));
    }

    #[test]
    fn an_object_written_as_an_array_is_refused() {
        let e = errors_of(
            &json!({"resolution": [1920, 1080], "clips": [clip()]}),
            &SERVICE,
        );
        assert_eq!(
            e,
            ["project.resolution: must be a JSON object, got an array"]
        );
        let mut c = clip();
        c["transition"] = json!(["crossfade", 1]);
        let e = errors_of(&project_with(vec![clip(), c]), &SERVICE);
        assert_eq!(
            e,
            ["project.clips[1].transition: must be a JSON object, got an array"]
        );
        let c = json!(["https://a.example/x", "video", 4]);
        let body = json!({"api_key": "k", "project": {"clips": [c]}});
        let e = parse_request(&serde_json::to_vec(&body).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "project.clips[0]: must be a JSON object, got an array"
        );
    }

    #[test]
    fn overflowing_number_is_refused_with_its_path() {
        let e = parse_project(br#"{"clips": [{"src": "a", "type": "video", "duration": 1e400}]}"#)
            .unwrap_err();
        assert_eq!(e.first_field(), Some("project.clips[0].duration"), "{e}");
        assert_eq!(e.errors[0].message, "number out of range, must be finite");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let mut bad = clip();
        bad["duration"] = json!(-1);
        bad["audioPan"] = json!(2);
        let project = json!({"fps": 0, "resolution": {"width": 15, "height": 10000},
                             "clips": [clip(), clip(), bad]});
        let e = errors_of(&project, &SERVICE);
        assert_eq!(
            e,
            [
                "project.resolution.width: must be an even number of pixels from 16 to 7680, \
                 got 15",
                "project.resolution.height: must be an even number of pixels from 16 to 4320, \
                 got 10000",
                "project.fps: must be between 1 and 120 frames per second, got 0",
                "project.clips[2].duration: must be > 0 seconds, got -1",
                "project.clips[2].audioPan: must be between -1 and 1, got 2",
            ]
        );
        let display = parse_project(&serde_json::to_vec(&project).unwrap())
            .and_then(|p| validate(&p, &SERVICE))
            .unwrap_err()
            .to_string();
        assert_eq!(display.lines().count(), 5);
    }

    #[test]
    fn clip_count_limits() {
        has(
            &errors_of(&project_with(vec![]), &SERVICE),
            "project.clips: must hold at least one clip, got none",
        );
        let many =
            vec![json!({"src": "https://a.example/x", "type": "image", "duration": 0.1}); 1001];
        has(
            &errors_of(&project_with(many), &SERVICE),
            "project.clips: must hold at most 1000 clips, got 1001",
        );
    }

    #[test]
    fn duration_rules() {
        has(
            &clip_error(|c| c["duration"] = json!(0)),
            "project.clips[0].duration: must be > 0 seconds, got 0",
        );
        has(
            &clip_error(|c| c["duration"] = json!(10801)),
            "project.clips[0].duration: must be at most 10800 seconds (3 hours), got 10801",
        );
        has(
            &clip_error(|c| c["duration"] = json!(0.01)),
            "project.clips[0].duration: must be at least one frame (0.033333 s) long, got 0.01",
        );
        assert!(clip_error(|c| c["duration"] = json!(10800)).is_empty());
        assert!(clip_error(|c| c["duration"] = json!(1.0 / 30.0)).is_empty());
    }

    #[test]
    fn output_at_most_three_hours() {
        let long = json!({"src": "https://a.example/x", "type": "video", "duration": 10000});
        let e = errors_of(&project_with(vec![long.clone(), long]), &SERVICE);
        assert_eq!(
            e,
            ["project.clips: output must be at most 10800 seconds (3 hours), got 20000"]
        );
    }

    #[test]
    fn resolution_rules() {
        let at = |w: i64, h: i64| {
            errors_of(
                &json!({"resolution": {"width": w, "height": h}, "clips": [clip()]}),
                &SERVICE,
            )
        };
        assert!(at(16, 16).is_empty());
        assert!(at(7680, 4320).is_empty());
        has(
            &at(7682, 4320),
            "project.resolution.width: must be an even number of pixels from 16 to 7680, got 7682",
        );
        has(
            &at(1920, 1081),
            "project.resolution.height: must be an even number of pixels from 16 to 4320, got 1081",
        );
        has(
            &at(14, 16),
            "project.resolution.width: must be an even number of pixels from 16 to 7680, got 14",
        );
    }

    #[test]
    fn fps_rules() {
        let at = |fps: f64| errors_of(&json!({"fps": fps, "clips": [clip()]}), &SERVICE);
        assert!(at(1.0).is_empty());
        assert!(at(120.0).is_empty());
        assert!(at(29.97).is_empty());
        has(
            &at(120.5),
            "project.fps: must be between 1 and 120 frames per second, got 120.5",
        );
        has(
            &at(0.5),
            "project.fps: must be between 1 and 120 frames per second, got 0.5",
        );
    }

    #[test]
    fn gain_and_pan_ranges() {
        has(
            &clip_error(|c| c["audioGain"] = json!(-0.1)),
            "project.clips[0].audioGain: must be between 0 and 16, got -0.1",
        );
        has(
            &clip_error(|c| c["audioGainEnd"] = json!(17)),
            "project.clips[0].audioGainEnd: must be between 0 and 16, got 17",
        );
        has(
            &clip_error(|c| c["audioPan"] = json!(-1.5)),
            "project.clips[0].audioPan: must be between -1 and 1, got -1.5",
        );
        has(
            &clip_error(|c| c["audioPanEnd"] = json!(1.01)),
            "project.clips[0].audioPanEnd: must be between -1 and 1, got 1.01",
        );
        assert!(
            clip_error(|c| {
                c["audioGain"] = json!(16);
                c["audioGainEnd"] = json!(0);
                c["audioPan"] = json!(-1);
                c["audioPanEnd"] = json!(1);
            })
            .is_empty()
        );
        let e = errors_of(
            &json!({"clips": [clip()], "audio": {"src": "https://a.example/m.mp3", "gain": 20}}),
            &SERVICE,
        );
        assert_eq!(e, ["project.audio.gain: must be between 0 and 16, got 20"]);
    }

    #[test]
    fn keyframe_rules() {
        let e = clip_error(|c| {
            c["audioGainKeyframes"] = json!([
                {"time": -1, "value": 1},
                {"time": 2, "value": 17, "ease": "bounce"},
                {"time": 2, "value": 1},
                {"time": 5, "value": 1}
            ]);
            c["audioPanKeyframes"] = json!([{"time": 0, "value": -2}]);
        });
        assert_eq!(
            e,
            [
                "project.clips[0].audioGainKeyframes[0].time: must be >= 0 seconds, got -1",
                "project.clips[0].audioGainKeyframes[1].value: must be between 0 and 16, got 17",
                "project.clips[0].audioGainKeyframes[1].ease: must be one of \"linear\", \
                 \"ease-in\", \"ease-out\", \"ease-in-out\", got \"bounce\"",
                "project.clips[0].audioGainKeyframes[2].time: must be later than the previous \
                 keyframe's time 2, got 2",
                "project.clips[0].audioGainKeyframes[3].time: must be within the clip \
                 (<= 4 seconds), got 5",
                "project.clips[0].audioPanKeyframes[0].value: must be between -1 and 1, got -2",
            ]
        );
        let many: Vec<Value> = (0..1001)
            .map(|i| json!({"time": f64::from(i) / 1000.0, "value": 1}))
            .collect();
        let e = clip_error(|c| c["audioPanKeyframes"] = json!(many));
        has(
            &e,
            "project.clips[0].audioPanKeyframes: must hold at most 1000 keyframes, got 1001",
        );
    }

    #[test]
    fn kind_fit_and_background() {
        has(
            &clip_error(|c| c["type"] = json!("audio")),
            "project.clips[0].type: must be one of \"video\", \"image\", got \"audio\"",
        );
        has(
            &clip_error(|c| c["fit"] = json!("stretch")),
            "project.clips[0].fit: must be one of \"contain\", \"cover\", \"fill\", \
             got \"stretch\"",
        );
        assert!(clip_error(|c| c["fit"] = json!("cover")).is_empty());
        let e = errors_of(&json!({"clips": [clip()], "background": "red"}), &SERVICE);
        assert_eq!(
            e,
            ["project.background: must be a colour \"#rrggbb\", got \"red\""]
        );
        assert!(
            errors_of(
                &json!({"clips": [clip()], "background": "#A0b1C2"}),
                &SERVICE
            )
            .is_empty()
        );
    }

    #[test]
    fn trim_and_fades() {
        has(
            &clip_error(|c| c["trimStart"] = json!(-2)),
            "project.clips[0].trimStart: must be >= 0 seconds, got -2",
        );
        has(
            &clip_error(|c| c["audioFadeIn"] = json!(-1)),
            "project.clips[0].audioFadeIn: must be >= 0 seconds, got -1",
        );
        has(
            &clip_error(|c| {
                c["audioFadeIn"] = json!(3);
                c["audioFadeOut"] = json!(1.5);
            }),
            "project.clips[0].audioFadeOut: audioFadeIn + audioFadeOut must be at most the \
             length (4 s), got 3 + 1.5",
        );
        assert!(
            clip_error(|c| {
                c["audioFadeIn"] = json!(2);
                c["audioFadeOut"] = json!(2);
            })
            .is_empty()
        );
        let e = errors_of(
            &json!({"clips": [clip()],
                    "audio": {"src": "https://a.example/m.mp3", "fadeIn": 3, "fadeOut": 2}}),
            &SERVICE,
        );
        assert_eq!(
            e,
            ["project.audio.fadeOut: fadeIn + fadeOut must be at most the length (4 s), got 3 + 2"]
        );
    }

    #[test]
    fn src_rules() {
        let src = |s: &str, opts: &ValidateOptions| {
            let mut c = clip();
            c["src"] = json!(s);
            errors_of(&project_with(vec![c]), opts)
        };
        assert!(src("http://media.example/a.mp4", &SERVICE).is_empty());
        has(
            &src("", &SERVICE),
            "project.clips[0].src: must be an absolute http(s) URL, got an empty string",
        );
        has(
            &src("/tmp/a.mp4", &SERVICE),
            "project.clips[0].src: must be an absolute http(s) URL, got \"/tmp/a.mp4\" \
             (relative URL without a base)",
        );
        has(
            &src("ftp://media.example/a.mp4", &SERVICE),
            "project.clips[0].src: must be an absolute http(s) URL, got \
             \"ftp://media.example/a.mp4\" (scheme \"ftp\" is not http or https)",
        );
        assert!(!src("https://", &SERVICE).is_empty());
        assert!(src("/tmp/a.mp4", &CLI).is_empty());
        assert!(src("clips/a.mp4", &CLI).is_empty());
        has(
            &src("file:///etc/passwd", &CLI),
            "project.clips[0].src: must be an absolute http(s) URL or a local path, got \
             \"file:///etc/passwd\" (scheme \"file\" is not http or https)",
        );
        let long = format!("https://media.example/{}", "a".repeat(4096));
        has(
            &src(&long, &SERVICE),
            "project.clips[0].src: must be at most 4096 characters, got 4118",
        );
        let e = errors_of(
            &json!({"clips": [clip()], "audio": {"src": "nope"}}),
            &SERVICE,
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("project.audio.src: must be an absolute http(s) URL"),
            "{e:?}"
        );
    }

    fn two_clips(first: f64, second: f64, transition: f64) -> Value {
        json!({"fps": 30, "clips": [
            {"src": "https://a.example/1", "type": "video", "duration": first,
             "transition": {"type": "crossfade", "duration": transition}},
            {"src": "https://a.example/2", "type": "video", "duration": second}
        ]})
    }

    #[test]
    fn transition_rules() {
        assert!(errors_of(&two_clips(2.0, 2.0, 2.0), &SERVICE).is_empty());
        has(
            &errors_of(&two_clips(2.0, 1.0, 1.5), &SERVICE),
            "project.clips[0].transition.duration: must be at most the length of \
             project.clips[1] (1 s), got 1.5",
        );
        has(
            &errors_of(&two_clips(1.0, 2.0, 1.5), &SERVICE),
            "project.clips[0].transition.duration: must be at most the length of \
             project.clips[0] (1 s), got 1.5",
        );
        has(
            &errors_of(&two_clips(2.0, 2.0, -0.5), &SERVICE),
            "project.clips[0].transition.duration: must be >= 0 seconds, got -0.5",
        );
        let mut wipe = two_clips(2.0, 2.0, 0.5);
        wipe["clips"][0]["transition"]["type"] = json!("wipe");
        has(
            &errors_of(&wipe, &SERVICE),
            "project.clips[0].transition.type: must be one of \"crossfade\", got \"wipe\"",
        );
    }

    #[test]
    fn a_clip_holds_both_of_its_transitions() {
        let mut project = json!({"transition": {"type": "crossfade", "duration": 0.6},
                                 "clips": [clip(), clip(), clip()]});
        project["clips"][1]["duration"] = json!(1);
        let e = errors_of(&project, &SERVICE);
        assert_eq!(
            e,
            [
                "project.transition.duration: with the incoming transition (0.6 s) must be at most \
              the length of project.clips[1] (1 s), got 0.6"
            ]
        );
        project["clips"][1]["duration"] = json!(1.2);
        assert!(errors_of(&project, &SERVICE).is_empty());
    }

    #[test]
    fn a_transition_on_the_last_clip_is_ignored() {
        let mut project = two_clips(2.0, 2.0, 0.5);
        project["clips"][1]["transition"] = json!({"type": "crossfade", "duration": 1.0});
        let timeline = validate(&serde_json::from_value(project).unwrap(), &SERVICE).unwrap();
        assert_eq!(timeline.frame_count, 105);
        assert_eq!(timeline.clips[1].transition_out, 0.0);
    }

    #[test]
    fn request_fields() {
        let body = |key: &str, format: &str| {
            let project = json!({"clips": [clip()]});
            json!({"api_key": key, "format": format, "project": project})
        };
        let check = |body: Value| {
            let request = parse_request(&serde_json::to_vec(&body).unwrap()).unwrap();
            validate_request(&request, &SERVICE).map_err(|e| e.to_string())
        };
        assert!(check(body("k", "mp4")).is_ok());
        assert_eq!(
            check(body(" ", "mp4")).unwrap_err(),
            "api_key: must not be empty"
        );
        assert_eq!(
            check(body("k", "webm")).unwrap_err(),
            "format: must be one of \"mp4\", got \"webm\""
        );
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        // JSON cannot carry them, but a project built in code can.
        let mut project: Project = serde_json::from_value(project_with(vec![clip()])).unwrap();
        project.fps = Some(f64::INFINITY);
        project.clips[0].duration = f64::NAN;
        project.clips[0].audio_gain = Some(f64::NEG_INFINITY);
        let e = validate(&project, &SERVICE).unwrap_err().to_string();
        assert_eq!(
            e,
            "project.fps: must be a finite number, got inf\n\
             project.clips[0].duration: must be a finite number, got NaN\n\
             project.clips[0].audioGain: must be a finite number, got -inf"
        );
    }

    /// Field names of the model, so arbitrary documents reach past the parser.
    const KEYS: &[&str] = &[
        "api_key",
        "project",
        "format",
        "fps",
        "resolution",
        "width",
        "height",
        "clips",
        "src",
        "type",
        "duration",
        "trimStart",
        "fit",
        "transition",
        "audioGain",
        "audioGainEnd",
        "audioPan",
        "audioPanEnd",
        "audioGainKeyframes",
        "audioPanKeyframes",
        "time",
        "value",
        "ease",
        "audioMute",
        "audioSolo",
        "audioFadeIn",
        "audioFadeOut",
        "audio",
        "gain",
        "fadeIn",
        "fadeOut",
        "background",
    ];

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![any::<f64>(), -20.0..20.0f64, 0.0..1.0f64].prop_map(Value::from),
            prop_oneof![
                Just("video".to_string()),
                Just("crossfade".to_string()),
                Just("https://a.example/x".to_string()),
                Just("#00ff00".to_string()),
                ".{0,12}",
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..8).prop_map(
                    |map| Value::Object(map.into_iter().map(|(k, v)| (k.into(), v)).collect())
                ),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(0u8..=255, 0..256)) {
            let _ = parse_request(&bytes).and_then(|r| validate_request(&r, &SERVICE));
            let _ = parse_and_validate_document(&bytes, &CLI);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            for result in [
                parse_request(&bytes).and_then(|r| validate_request(&r, &SERVICE)),
                parse_project(&bytes).and_then(|p| validate(&p, &SERVICE)),
                parse_and_validate_document(&bytes, &CLI),
            ] {
                match result {
                    Ok(timeline) => proptest::prop_assert!(timeline.frame_count > 0),
                    Err(e) => proptest::prop_assert!(!e.errors.is_empty()),
                }
            }
            let wrapped = serde_json::to_vec(&json!({"clips": [value]})).unwrap();
            let _ = parse_project(&wrapped).and_then(|p| validate(&p, &CLI));
        }
    }
}
