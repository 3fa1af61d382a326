//! `render-node render PROJECT.json -o OUT.mp4`: one render in the foreground, on the same
//! code path as the node's jobs. Local `src` paths are resolved against the project file's
//! folder. Exit codes: 0 done, 2 the project is invalid, 1 the render failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::project::{self, Timeline, ValidateOptions};

use super::console::ConsoleProgress;
use super::{CancelToken, RenderError, RenderSettings};

pub const EXIT_BAD_PROJECT: u8 = 2;
pub const EXIT_FAILED: u8 = 1;

/// The options of the `render` command.
#[derive(Debug, Clone)]
pub struct RenderCommand {
    pub project: PathBuf,
    pub output: PathBuf,
    pub preset: String,
    pub crf: u8,
    pub allow_private_sources: bool,
    pub cache_dir: PathBuf,
}

pub fn run(command: &RenderCommand) -> ExitCode {
    let timeline = match load(&command.project) {
        Ok(timeline) => timeline,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_BAD_PROJECT);
        }
    };
    let base = project_folder(&command.project);
    if let Err(message) = check_output(&timeline, &base, &command.output) {
        eprintln!("{message}");
        return ExitCode::from(EXIT_BAD_PROJECT);
    }
    let settings = RenderSettings {
        preset: command.preset.clone(),
        crf: command.crf,
        allow_private_sources: command.allow_private_sources,
        local_base: Some(base),
        cache_dir: command.cache_dir.clone(),
        fetch_max_bytes: None,
        fetch_timeout: None,
    };
    let thumbnail = command.output.with_extension("webp");
    let console = ConsoleProgress::new(timeline.frame_count);
    let cancel = CancelToken::default();
    let result = super::render(
        &timeline,
        &command.output,
        &thumbnail,
        &settings,
        &|p| console.report(p),
        &cancel,
    );
    console.finish();
    match result {
        Ok(out) => {
            eprintln!(
                "rendered {} frames ({:.3} s, {}x{}) to {} and {}",
                out.frames,
                out.duration_seconds,
                out.width,
                out.height,
                out.video.display(),
                out.thumbnail.display()
            );
            ExitCode::SUCCESS
        }
        Err(RenderError::Cancelled) => {
            eprintln!("render cancelled");
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("render failed: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The output must be a new or regular file, and none of the project's own sources: a
/// render never overwrites what it reads, nor a device such as `/dev/null`.
fn check_output(timeline: &Timeline, base: &Path, output: &Path) -> Result<(), String> {
    let Ok(existing) = output.canonicalize() else {
        return Ok(());
    };
    if !existing.is_file() {
        return Err(format!(
            "-o {}: exists and is not a regular file",
            output.display()
        ));
    }
    let sources = timeline.clips.iter().map(|c| c.src.as_str());
    let sources = sources.chain(timeline.audio.iter().map(|a| a.src.as_str()));
    for src in sources.filter(|s| !s.contains("://")) {
        if base.join(src).canonicalize().is_ok_and(|p| p == existing) {
            return Err(format!(
                "-o {}: is a source of the project ({src})",
                output.display()
            ));
        }
    }
    Ok(())
}

/// Reads and validates the project file; the error lists every problem, one a line.
fn load(path: &Path) -> Result<Timeline, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    project::parse_and_validate_document(
        &bytes,
        &ValidateOptions {
            allow_local_paths: true,
        },
    )
    .map_err(|e| e.to_string())
}

fn project_folder(project: &Path) -> PathBuf {
    let folder = project.parent().unwrap_or(Path::new("."));
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    folder
        .canonicalize()
        .unwrap_or_else(|_| folder.to_path_buf())
}

/// The options of the `preview` command.
#[derive(Debug, Clone)]
pub struct PreviewCommand {
    pub project: PathBuf,
    pub device: Option<String>,
    pub allow_private_sources: bool,
    pub cache_dir: PathBuf,
}

/// `render-node preview`: fetches the sources and plays the project's mix (the same
/// `Mixer` a render encodes) through the sound card.
pub fn preview(command: &PreviewCommand) -> ExitCode {
    let timeline = match load(&command.project) {
        Ok(timeline) => timeline,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_BAD_PROJECT);
        }
    };
    let settings = RenderSettings {
        preset: String::new(),
        crf: 0,
        allow_private_sources: command.allow_private_sources,
        local_base: Some(project_folder(&command.project)),
        cache_dir: command.cache_dir.clone(),
        fetch_max_bytes: None,
        fetch_timeout: None,
    };
    crate::media::init();
    let sources = match super::sources::prepare(&timeline, &settings, &CancelToken::default()) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("preview failed: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut open = |clip: Option<usize>| sources.open_audio(&timeline, clip);
    let played = crate::audio::preview(
        &timeline,
        &mut open,
        command.device.as_deref(),
        &mut crate::audio::preview::print_progress,
    );
    match played {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("preview failed: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
