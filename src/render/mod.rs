//! One render: the pipelined stages from sources to the output file, with progress and
//! cancellation.

pub mod command;
pub mod console;
mod pipeline;
mod progress;
mod sources;

pub use pipeline::gpu_context;
pub use sources::{SourceFile, Sources, clip_field};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::project::Timeline;

/// How a render fetches and encodes; the same for the CLI and the node's jobs.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    /// libx264 preset (`ultrafast` … `veryslow`).
    pub preset: String,
    /// libx264 constant rate factor, 0..=51.
    pub crf: u8,
    /// Allow sources on loopback and private addresses (tests, local use).
    pub allow_private_sources: bool,
    /// Where relative local paths are resolved; `None` refuses local paths (the service).
    pub local_base: Option<PathBuf>,
    /// The content-addressed source cache.
    pub cache_dir: PathBuf,
    /// Largest source fetched, in bytes; `None`: the fetcher's default (2 GiB).
    pub fetch_max_bytes: Option<u64>,
    /// Longest whole fetch of one source; `None`: the fetcher's default (10 min).
    pub fetch_timeout: Option<std::time::Duration>,
}

/// Which part of the render is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Fetching,
    Rendering,
    Finishing,
    Done,
}

/// A progress report: frames muxed over frames total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    pub frames_done: u64,
    pub frames_total: u64,
    pub eta: Option<Duration>,
}

/// What a finished render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutput {
    pub video: PathBuf,
    pub thumbnail: PathBuf,
    pub frames: u64,
    pub duration_seconds: f64,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A source could not be fetched or decoded: the user's to fix.
    #[error("{field}: {reason}")]
    Source { field: String, reason: String },
    #[error("the render was cancelled")]
    Cancelled,
    /// Anything else: the node's own trouble (GPU, encoder, disk).
    #[error("{0}")]
    Internal(String),
}

/// Cancellation shared between a render and whoever may stop it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Renders `timeline` into `output` (MP4) and `thumbnail` (WebP), blocking the calling
/// thread; stages run on threads of their own. The files are written under temporary names
/// beside their targets and renamed into place only when the render has succeeded, so a
/// failed or cancelled render leaves whatever was at `output` untouched and no partial file.
pub fn render(
    timeline: &Timeline,
    output: &Path,
    thumbnail: &Path,
    settings: &RenderSettings,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &CancelToken,
) -> Result<RenderOutput, RenderError> {
    let reporter = progress::Reporter::new(progress, timeline.frame_count);
    reporter.stage(Stage::Fetching);
    crate::media::init();

    let (partial_video, partial_thumb) = (partial_path(output), partial_path(thumbnail));
    let result = sources::prepare(timeline, settings, cancel)
        .and_then(|sources| {
            pipeline::run(
                timeline,
                &sources,
                &partial_video,
                &partial_thumb,
                settings,
                &reporter,
                cancel,
            )
        })
        .and_then(|out| {
            let moved = std::fs::rename(&partial_video, output)
                .and_then(|()| std::fs::rename(&partial_thumb, thumbnail));
            moved
                .map_err(|e| RenderError::Internal(format!("moving the output into place: {e}")))?;
            Ok(RenderOutput {
                video: output.to_path_buf(),
                thumbnail: thumbnail.to_path_buf(),
                ..out
            })
        });
    match &result {
        Ok(_) => {
            reporter.frames(timeline.frame_count);
            reporter.stage(Stage::Done);
        }
        Err(_) => {
            let _ = std::fs::remove_file(&partial_video);
            let _ = std::fs::remove_file(&partial_thumb);
        }
    }
    result
}

/// `DIR/.NAME.partial`: where a file is written before it is renamed to `DIR/NAME`.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.partial"))
}
