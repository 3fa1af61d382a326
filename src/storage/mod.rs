//! Where a job's outputs live and under which names they are served. A render writes into
//! a private work folder and its files are moved into the served folder only once the job
//! is completed, so a half-written or failed output is never downloadable.

use std::io;
use std::path::{Path, PathBuf};

/// The served file names, as in the hosted API.
pub fn video_name(job_id: &str) -> String {
    format!("video-editor-{job_id}.mp4")
}

pub fn thumbnail_name(job_id: &str) -> String {
    format!("video-editor-thumb-{job_id}.webp")
}

/// A local folder of outputs: `uploads/` is served under `/static/uploads/`, `work/` holds
/// renders in progress.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Creates the folders under `root` if they are missing.
    pub fn open(root: &Path) -> io::Result<Storage> {
        let storage = Storage {
            root: root.to_path_buf(),
        };
        std::fs::create_dir_all(storage.uploads_dir())?;
        std::fs::create_dir_all(storage.work_dir())?;
        Ok(storage)
    }

    /// The folder served under `/static/uploads/`.
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The source cache shared by every render.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Where a running render writes its video and thumbnail.
    pub fn work_paths(&self, job_id: &str) -> (PathBuf, PathBuf) {
        let work = self.work_dir();
        (
            work.join(video_name(job_id)),
            work.join(thumbnail_name(job_id)),
        )
    }

    /// Moves a finished render's files into the served folder (a rename: atomic on one
    /// file system).
    pub fn publish(&self, job_id: &str) -> io::Result<()> {
        let (video, thumbnail) = self.work_paths(job_id);
        let uploads = self.uploads_dir();
        std::fs::rename(&thumbnail, uploads.join(thumbnail_name(job_id)))?;
        std::fs::rename(&video, uploads.join(video_name(job_id)))
    }

    /// Removes whatever a render that did not complete left behind.
    pub fn discard(&self, job_id: &str) {
        let (video, thumbnail) = self.work_paths(job_id);
        for path in [video, thumbnail] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), "cannot remove: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_moves_both_files_into_the_served_folder() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let (video, thumb) = storage.work_paths("job_a");
        std::fs::write(&video, b"mp4").unwrap();
        std::fs::write(&thumb, b"webp").unwrap();
        storage.publish("job_a").unwrap();
        let served = storage.uploads_dir();
        assert_eq!(
            std::fs::read(served.join("video-editor-job_a.mp4")).unwrap(),
            b"mp4"
        );
        assert_eq!(
            std::fs::read(served.join("video-editor-thumb-job_a.webp")).unwrap(),
            b"webp"
        );
        assert!(!video.exists());
    }
}
