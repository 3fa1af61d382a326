//! The source cache: fetched bytes kept on disk so that a source used by many jobs is
//! downloaded once. Objects are named by the SHA-256 of their content, so two URLs serving
//! the same bytes share one file and a file's name proves what it holds. An index entry per
//! URL remembers the object and the server's validator (ETag, Last-Modified) so the next
//! fetch can ask "has it changed?" and reuse the object on a 304.
//!
//! Layout under the cache folder: `objects/<sha256>` (the bytes), `index/<sha256 of the
//! URL>.json` (one [`Entry`]), `tmp/` (downloads in progress). Every file appears by an
//! atomic rename from `tmp/`, so a reader never sees half of one, even across processes.
//! The total size of `objects/` is bounded: after each store the least recently used
//! objects (by modification time, which a reuse refreshes) are removed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

/// What the cache remembers about one URL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The source URL as the project gave it (the key).
    pub url: String,
    /// The URL the bytes finally came from, after redirects; the validator belongs to it.
    pub final_url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// SHA-256 of the content, hex: the object's file name.
    pub object: String,
    pub size: u64,
}

/// A download in progress. The file is removed when this is dropped without being stored,
/// so an aborted download (error, size cap, timeout, cancellation) leaves nothing behind.
pub struct TempFile {
    path: PathBuf,
    pub file: tokio::fs::File,
    kept: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The cache folder. Cheap to clone; clones share the eviction lock.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    evicting: Arc<Mutex<()>>,
}

impl Cache {
    /// Opens (creating if needed) the cache in `dir`, removing downloads older than
    /// `stale_after` that a stopped process left in `tmp/`.
    pub fn open(dir: &Path, max_bytes: u64, stale_after: Duration) -> io::Result<Cache> {
        let cache = Cache {
            dir: dir.to_owned(),
            max_bytes,
            evicting: Arc::new(Mutex::new(())),
        };
        for sub in ["objects", "index", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        cache.sweep_tmp(stale_after)?;
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn object_path(&self, object: &str) -> PathBuf {
        self.dir.join("objects").join(object)
    }

    fn index_path(&self, url: &str) -> PathBuf {
        let key = hex::encode(Sha256::digest(url.as_bytes()));
        self.dir.join("index").join(format!("{key}.json"))
    }

    fn sweep_tmp(&self, stale_after: Duration) -> io::Result<()> {
        let now = SystemTime::now();
        for item in std::fs::read_dir(self.dir.join("tmp"))? {
            let item = item?;
            let modified = item.metadata()?.modified()?;
            let age = now.duration_since(modified).unwrap_or_default();
            if age > stale_after {
                let _ = std::fs::remove_file(item.path());
            }
        }
        Ok(())
    }

    /// The entry for `url`, if there is one whose object is still present and whole.
    pub async fn lookup(&self, url: &Url) -> Option<Entry> {
        let text = tokio::fs::read(self.index_path(url.as_str())).await.ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        let object = tokio::fs::metadata(self.object_path(&entry.object))
            .await
            .ok()?;
        (entry.url == url.as_str() && object.len() == entry.size).then_some(entry)
    }

    /// Marks an entry's object as just used and returns its path; `None` if the object
    /// vanished since the lookup (another process evicted it).
    pub async fn reuse(&self, entry: &Entry) -> Option<PathBuf> {
        let path = self.object_path(&entry.object);
        touch(&path).await.ok()?;
        Some(path)
    }

    /// A new file in `tmp/` for a download.
    pub async fn temp_file(&self) -> io::Result<TempFile> {
        let name = format!("{}-{:016x}.part", std::process::id(), rand::random::<u64>());
        let path = self.dir.join("tmp").join(name);
        let file = tokio::fs::File::create_new(&path).await?;
        Ok(TempFile {
            path,
            file,
            kept: false,
        })
    }

    /// Moves a finished download into `objects/`, records (or, without a validator,
    /// forgets) the URL's entry, evicts down to the bound, and returns the object's path.
    pub async fn store(&self, mut temp: TempFile, entry: Entry) -> io::Result<PathBuf> {
        temp.file.sync_all().await?;
        let object = self.object_path(&entry.object);
        tokio::fs::rename(&temp.path, &object).await?;
        temp.kept = true;
        touch(&object).await?;

        let index = self.index_path(&entry.url);
        if entry.etag.is_some() || entry.last_modified.is_some() {
            self.write_index(&index, &entry).await?;
        } else {
            remove_if_present(&index).await?;
        }

        let cache = self.clone();
        let keep = object.clone();
        tokio::task::spawn_blocking(move || cache.evict(&keep))
            .await
            .map_err(io::Error::other)??;
        Ok(object)
    }

    async fn write_index(&self, index: &Path, entry: &Entry) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        let mut temp = self.temp_file().await?;
        temp.file.write_all(&text).await?;
        temp.file.flush().await?;
        tokio::fs::rename(&temp.path, index).await?;
        temp.kept = true;
        Ok(())
    }

    /// Removes least recently used objects until `objects/` fits in the bound, never
    /// `keep` (the object being handed out now), then the index entries left pointing
    /// at nothing.
    fn evict(&self, keep: &Path) -> io::Result<()> {
        let _one_at_a_time = self.evicting.lock().unwrap_or_else(|e| e.into_inner());

        let mut objects = Vec::new();
        for item in std::fs::read_dir(self.dir.join("objects"))? {
            let item = item?;
            let meta = item.metadata()?;
            objects.push((meta.modified()?, meta.len(), item.path()));
        }
        let mut total: u64 = objects.iter().map(|o| o.1).sum();
        if total <= self.max_bytes {
            return Ok(());
        }

        objects.sort();
        let mut removed = 0;
        for (_, len, path) in objects {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            remove_file_sync(&path)?;
            total -= len;
            removed += 1;
        }
        tracing::debug!(
            removed,
            total,
            bound = self.max_bytes,
            "evicted cached sources"
        );
        self.drop_dangling_entries()
    }

    fn drop_dangling_entries(&self) -> io::Result<()> {
        for item in std::fs::read_dir(self.dir.join("index"))? {
            let path = item?.path();
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            let entry: Option<Entry> = serde_json::from_slice(&text).ok();
            let dangling = entry.is_none_or(|e| !self.object_path(&e.object).exists());
            if dangling {
                remove_file_sync(&path)?;
            }
        }
        Ok(())
    }
}

/// Sets a file's modification time to now: the cache's "last used" clock.
async fn touch(path: &Path) -> io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::options().write(true).open(path)?;
        file.set_modified(SystemTime::now())
    })
    .await
    .map_err(io::Error::other)?
}

async fn remove_if_present(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes a file another process may already have removed.
fn remove_file_sync(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(cache: &Cache, url: &str, bytes: &[u8], etag: Option<&str>) -> PathBuf {
        let mut temp = cache.temp_file().await.expect("temp file");
        temp.file.write_all(bytes).await.expect("write");
        let entry = Entry {
            url: url.into(),
            final_url: url.into(),
            etag: etag.map(Into::into),
            last_modified: None,
            object: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        };
        cache.store(temp, entry).await.expect("store")
    }

    #[tokio::test]
    async fn same_bytes_share_one_object_and_entries_need_a_validator() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = Cache::open(dir.path(), 1 << 20, Duration::from_secs(60)).expect("open");
        let a = put(&cache, "http://a.example/x", b"same bytes", Some("\"1\"")).await;
        let b = put(&cache, "http://b.example/y", b"same bytes", None).await;
        assert_eq!(a, b);

        let url_a = Url::parse("http://a.example/x").expect("url");
        let url_b = Url::parse("http://b.example/y").expect("url");
        assert_eq!(cache.lookup(&url_a).await.map(|e| e.size), Some(10));
        assert_eq!(cache.lookup(&url_b).await, None);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_dropped_download_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = Cache::open(dir.path(), 1 << 20, Duration::from_secs(60)).expect("open");
        let mut temp = cache.temp_file().await.expect("temp file");
        temp.file.write_all(b"partial").await.expect("write");
        drop(temp);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }
}
