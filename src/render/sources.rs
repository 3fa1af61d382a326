//! Source preparation, the render's first stage: every source is fetched and probed, in
//! parallel, before any frame is decoded, so that a broken source fails the render before
//! the encoder has written anything.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::audio::AudioSource;
use crate::media::{self, AudioReader, FetchConfig, Fetcher, MediaError, MediaInfo};
use crate::project::{ClipKind, Timeline};

use super::{CancelToken, RenderError, RenderSettings};

/// A source on local disk, probed.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// JSON path of its `src`, for error messages.
    pub field: String,
    pub path: PathBuf,
    pub info: MediaInfo,
}

/// The prepared sources of one render, indexed like `Timeline::clips`.
#[derive(Debug)]
pub struct Sources {
    pub clips: Vec<SourceFile>,
    pub background: Option<SourceFile>,
}

impl Sources {
    /// Opens the audio of clip `clip` (the background track for `None`) at its source
    /// start, for the mixer; `None` when it has no audio.
    pub fn open_audio(
        &self,
        timeline: &Timeline,
        clip: Option<usize>,
    ) -> Result<Option<Box<dyn AudioSource>>, MediaError> {
        let (file, start) = match clip {
            Some(index) => {
                let start = timeline.clips.get(index).map_or(0.0, |c| c.trim_start);
                (self.clips.get(index), start)
            }
            None => (self.background.as_ref(), 0.0),
        };
        let Some(file) = file.filter(|f| f.info.audio.is_some()) else {
            return Ok(None);
        };
        let reader = AudioReader::open(&file.path, &file.field, start)?;
        Ok(reader.map(|r| Box::new(r) as Box<dyn AudioSource>))
    }
}

/// JSON path of clip `index`'s source.
pub fn clip_field(index: usize) -> String {
    format!("project.clips[{index}].src")
}

pub const BACKGROUND_FIELD: &str = "project.audio.src";

/// Fetches every distinct source once (in parallel), then probes each (in parallel).
pub fn prepare(
    timeline: &Timeline,
    settings: &RenderSettings,
    cancel: &CancelToken,
) -> Result<Sources, RenderError> {
    let mut wanted: Vec<(String, String)> = timeline
        .clips
        .iter()
        .map(|c| (c.src.clone(), clip_field(c.index)))
        .collect();
    if let Some(track) = &timeline.audio {
        wanted.push((track.src.clone(), BACKGROUND_FIELD.to_string()));
    }

    let paths = fetch_all(&wanted, settings, cancel)?;
    if cancel.is_cancelled() {
        return Err(RenderError::Cancelled);
    }
    let mut files = probe_all(&wanted, &paths)?;

    let background = timeline.audio.as_ref().and_then(|_| files.pop());
    for (clip, file) in timeline.clips.iter().zip(&files) {
        check_kind(clip.kind, file)?;
    }
    Ok(Sources {
        clips: files,
        background,
    })
}

fn fetch_all(
    wanted: &[(String, String)],
    settings: &RenderSettings,
    cancel: &CancelToken,
) -> Result<HashMap<String, PathBuf>, RenderError> {
    let mut config = FetchConfig::new(settings.cache_dir.clone());
    config.allow_private = settings.allow_private_sources;
    config.local_base = settings.local_base.clone();
    if let Some(max_bytes) = settings.fetch_max_bytes {
        config.max_bytes = max_bytes;
    }
    if let Some(timeout) = settings.fetch_timeout {
        config.total_timeout = timeout;
    }
    let fetcher = Fetcher::new(config).map_err(source_error)?;

    // One fetch per distinct URL, the first clip that uses it names it in errors.
    let mut distinct: Vec<&(String, String)> = Vec::new();
    for item in wanted {
        if !distinct.iter().any(|d| d.0 == item.0) {
            distinct.push(item);
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RenderError::Internal(format!("starting the fetch runtime: {e}")))?;
    let fetches = futures::future::join_all(
        distinct
            .iter()
            .map(|(src, field)| fetcher.fetch(src, field)),
    );
    // Cancelling drops the downloads in flight (their partial files are removed), so a
    // stalled source never holds a cancelled render.
    let results = runtime
        .block_on(async {
            tokio::select! {
                results = fetches => Some(results),
                () = cancelled(cancel) => None,
            }
        })
        .ok_or(RenderError::Cancelled)?;

    let mut paths = HashMap::new();
    for ((src, _), result) in distinct.iter().zip(results) {
        paths.insert(src.clone(), result.map_err(source_error)?);
    }
    Ok(paths)
}

fn probe_all(
    wanted: &[(String, String)],
    paths: &HashMap<String, PathBuf>,
) -> Result<Vec<SourceFile>, RenderError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .iter()
            .map(|(src, field)| {
                let path = paths.get(src).cloned().unwrap_or_default();
                scope.spawn(move || {
                    let info = media::probe(&path, field)?;
                    Ok::<_, MediaError>(SourceFile {
                        field: field.clone(),
                        path,
                        info,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(result) => result.map_err(source_error),
                Err(_) => Err(RenderError::Internal("a probe thread panicked".into())),
            })
            .collect()
    })
}

/// A clip must have a picture to show.
fn check_kind(kind: ClipKind, file: &SourceFile) -> Result<(), RenderError> {
    if file.info.video.is_none() {
        let what = match kind {
            ClipKind::Video => "a video",
            ClipKind::Image => "an image",
        };
        return Err(RenderError::Source {
            field: file.field.clone(),
            reason: format!("expected {what}, but the file has no picture stream"),
        });
    }
    Ok(())
}

/// Media errors about a source are the user's; the rest are the node's.
pub fn source_error(error: MediaError) -> RenderError {
    match error {
        MediaError::Source { field, reason } => RenderError::Source { field, reason },
        other => RenderError::Internal(other.to_string()),
    }
}

/// Resolves once `cancel` is set (checked every 50 ms).
async fn cancelled(cancel: &CancelToken) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
