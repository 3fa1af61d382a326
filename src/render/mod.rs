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
/// thread; stages run on threads of their own. On failure or cancellation nothing is left
/// at `output` or `thumbnail`.
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

    let result = sources::prepare(timeline, settings, cancel).and_then(|sources| {
        pipeline::run(
            timeline, &sources, output, thumbnail, settings, &reporter, cancel,
        )
    });
    match &result {
        Ok(_) => {
            reporter.frames(timeline.frame_count);
            reporter.stage(Stage::Done);
        }
        Err(_) => {
            // Partial files must never look like a result.
            let _ = std::fs::remove_file(output);
            let _ = std::fs::remove_file(thumbnail);
        }
    }
    result
}
