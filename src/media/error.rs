//! Errors of fetching, probing, decoding and encoding. Those about a source name the clip
//! by its JSON path (`project.clips[3].src`) so the user knows which one to fix.

/// What went wrong with media, and where.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A source could not be fetched, probed or decoded. `field` is the JSON path of its
    /// `src` (`project.clips[3].src`, `project.audio.src`).
    #[error("{field}: {reason}")]
    Source { field: String, reason: String },
    /// The output could not be encoded or written.
    #[error("encoding the output: {0}")]
    Encode(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl MediaError {
    pub fn source(field: impl Into<String>, reason: impl Into<String>) -> MediaError {
        MediaError::Source {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
