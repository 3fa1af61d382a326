//! Fetching sources: a clip's `src` becomes a local file holding its bytes. A source is a
//! URL a user typed, so fetching it is the node's widest door to the outside: everything
//! here is bounded (redirects, connect time, total time, size) and guarded (only http and
//! https, no private addresses unless allowed, see [`guard`]).
//!
//! What is fetched is decided by the bytes alone: the URL's extension and the
//! Content-Type are never trusted. The decoder's probe is the real test of a source; this
//! module only refuses bodies that are plainly not media (an HTML error page, JSON, text)
//! so the user hears "the server sent an HTML page" rather than an FFmpeg probe failure.
//!
//! Downloads land in a content-addressed cache (`cache.rs`) shared by every job, and
//! a cached source is revalidated with its ETag or Last-Modified instead of downloaded
//! again. Local paths are accepted only where the caller allows them (the CLI), never by
//! the service.
//!
//! Accepted: `http://` and `https://` URLs on public addresses; up to [`MAX_REDIRECTS`]
//! redirects (301, 302, 303, 307, 308), each hop checked like the first; any 2xx answer
//! whose body does not look like a page; local paths and `file://` URLs when
//! [`FetchConfig::local_base`] is set (relative ones resolved against it).
//!
//! Refused, with an error naming the clip's field and the reason: other schemes; hosts
//! that are or resolve only to loopback, private (10/8, 172.16/12, 192.168/16), shared
//! (100.64/10), link-local, unique-local, unspecified, "this network" (0/8), multicast,
//! broadcast or reserved addresses, including IPv4 spelled in any form and IPv6 forms that
//! embed IPv4 (unless [`FetchConfig::allow_private`]); a sixth redirect; HTTP errors (the
//! status is named); a Content-Length or a streamed body over [`FetchConfig::max_bytes`];
//! a connect over [`FetchConfig::connect_timeout`] or a whole fetch (slow or stalled
//! bodies included) over [`FetchConfig::total_timeout`]; a body cut short; bodies whose
//! first bytes are HTML, XML, JSON, text or nothing (the Content-Type received is named).

mod cache;
pub mod guard;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{self, HeaderName};
use reqwest::{Response, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedMutexGuard;
use url::{Host, Url};

use self::cache::{Cache, Entry, TempFile};
pub use self::guard::{AddrClass, Refused, classify};
use self::guard::{Guard, GuardedResolver};
use crate::media::MediaError;

/// Redirects followed for one source; one more is refused.
pub const MAX_REDIRECTS: usize = 5;

/// How many leading bytes are looked at to tell markup, JSON and text from media.
const SNIFF_LEN: usize = 512;

/// Limits and places for fetching sources. [`FetchConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The content-addressed source cache, shared by every job (created if missing).
    pub cache_dir: PathBuf,
    /// Allow sources on loopback, private, link-local and other non-public addresses.
    pub allow_private: bool,
    /// Exact addresses let through although not public (a known internal media server).
    /// Empty by default.
    pub allow_private_addrs: Vec<IpAddr>,
    /// Largest source accepted, in bytes; default 2 GiB.
    pub max_bytes: u64,
    /// Time to resolve and connect to a host; default 10 s.
    pub connect_timeout: Duration,
    /// Time for a whole fetch, redirects and body included; default 10 min.
    pub total_timeout: Duration,
    /// Bound on the cache's total size; default 20 GiB.
    pub cache_max_bytes: u64,
    /// `Some`: local paths are accepted, relative ones resolved against this folder.
    /// `None` (the default): only http(s) URLs.
    pub local_base: Option<PathBuf>,
}

impl FetchConfig {
    /// The defaults, with the cache in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> FetchConfig {
        FetchConfig {
            cache_dir: cache_dir.into(),
            allow_private: false,
            allow_private_addrs: Vec::new(),
            max_bytes: 2 << 30,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(600),
            cache_max_bytes: 20 << 30,
            local_base: None,
        }
    }
}

/// Why a source could not be fetched; shown to the user after the clip's field path.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("is empty; expected an http(s) URL")]
    Empty,
    #[error("{src:?} is not a valid URL: {reason}")]
    BadUrl {
        src: String,
        reason: url::ParseError,
    },
    #[error("refused: scheme {scheme:?} is not accepted; use http or https")]
    Scheme { scheme: String },
    #[error("{url} has no host")]
    NoHost { url: String },
    #[error("refused: {0}")]
    Guard(Refused),
    #[error("redirect {hop} to {url}: {source}")]
    OnRedirect {
        hop: usize,
        url: String,
        source: Box<FetchError>,
    },
    #[error("refused: more than {max} redirects (the last one pointed to {url})")]
    TooManyRedirects { max: usize, url: String },
    #[error("HTTP {status} redirect from {url} without a usable Location header")]
    BadRedirect { status: StatusCode, url: String },
    #[error("could not connect to {host} within {}", secs(.limit))]
    ConnectTimeout { host: String, limit: Duration },
    #[error("could not fetch {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("HTTP {status} from {url}")]
    Status { status: StatusCode, url: String },
    #[error("refused: {declared} bytes (Content-Length) is over the limit of {limit} bytes")]
    TooLarge { declared: u64, limit: u64 },
    #[error("refused: the body grew past the limit of {limit} bytes; download aborted")]
    TooLargeStream { limit: u64 },
    #[error("the download from {url} broke off after {received} bytes: {reason}")]
    Broken {
        url: String,
        received: u64,
        reason: String,
    },
    #[error("refused: the server sent {kind}, not media (Content-Type: {content_type})")]
    NotMedia {
        kind: &'static str,
        content_type: String,
    },
    #[error("timed out: the fetch took longer than the total limit of {}", secs(.limit))]
    TimedOut { limit: Duration },
    #[error("refused: local paths are not accepted here; use an http(s) URL")]
    LocalRefused,
    #[error("cannot open the local file {path}: {reason}")]
    LocalUnreadable {
        path: String,
        reason: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("the source cache in {dir}: {reason}")]
    Cache { dir: String, reason: std::io::Error },
}

fn secs(duration: &Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// What a `src` names.
enum Source {
    Remote(Url),
    Local(PathBuf),
}

fn parse_src(src: &str) -> Result<Source, FetchError> {
    if src.trim().is_empty() {
        return Err(FetchError::Empty);
    }
    match Url::parse(src) {
        Ok(url) => match url.scheme() {
            "http" | "https" => Ok(Source::Remote(url)),
            "file" => url
                .to_file_path()
                .map(Source::Local)
                .map_err(|()| FetchError::Scheme {
                    scheme: "file (with a host)".into(),
                }),
            other => Err(FetchError::Scheme {
                scheme: other.into(),
            }),
        },
        Err(url::ParseError::RelativeUrlWithoutBase) => Ok(Source::Local(PathBuf::from(src))),
        Err(reason) => Err(FetchError::BadUrl {
            src: src.into(),
            reason,
        }),
    }
}

/// Fetches sources into the cache. One per process; share it (`Arc`) between jobs so that
/// concurrent fetches of one URL wait for each other instead of downloading twice.
#[derive(Debug)]
pub struct Fetcher {
    config: FetchConfig,
    client: reqwest::Client,
    guard: Guard,
    cache: Cache,
    local_base: Option<PathBuf>,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Fetcher {
    /// Opens the cache (creating its folder) and builds the HTTP client.
    pub fn new(config: FetchConfig) -> Result<Fetcher, MediaError> {
        let guard = Guard::new(config.allow_private, &config.allow_private_addrs);
        let stale_after = (config.total_timeout * 2).max(Duration::from_secs(3600));
        let cache = Cache::open(&config.cache_dir, config.cache_max_bytes, stale_after)
            .map_err(|e| io_context(e, format!("cache_dir {}", config.cache_dir.display())))?;
        let local_base = match &config.local_base {
            Some(base) => Some(
                std::fs::canonicalize(base)
                    .map_err(|e| io_context(e, format!("local_base {}", base.display())))?,
            ),
            None => None,
        };

        // Redirects are followed by hand so every hop is checked; proxies are off because
        // a proxy would resolve the source's host itself, out of the guard's sight.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .dns_resolver(Arc::new(GuardedResolver::new(guard.clone())))
            .user_agent(concat!("render-node/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| io_context(std::io::Error::other(e), "building the HTTP client"))?;

        Ok(Fetcher {
            config,
            client,
            guard,
            cache,
            local_base,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Returns a local file holding the source's bytes. `field` names the source in
    /// errors: `"project.clips[2].src"`.
    pub async fn fetch(&self, src: &str, field: &str) -> Result<PathBuf, MediaError> {
        let fetched = match parse_src(src) {
            Ok(Source::Remote(url)) => self.fetch_remote(url).await,
            Ok(Source::Local(path)) => self.fetch_local(&path).await,
            Err(error) => Err(error),
        };
        fetched.map_err(|error| MediaError::source(field, error.to_string()))
    }

    async fn fetch_local(&self, path: &Path) -> Result<PathBuf, FetchError> {
        let base = self.local_base.as_ref().ok_or(FetchError::LocalRefused)?;
        let joined = base.join(path);
        let unreadable = |reason| FetchError::LocalUnreadable {
            path: joined.display().to_string(),
            reason,
        };
        let canonical = tokio::fs::canonicalize(&joined).await.map_err(unreadable)?;
        let meta = tokio::fs::metadata(&canonical).await.map_err(unreadable)?;
        if !meta.is_file() {
            return Err(FetchError::NotAFile {
                path: canonical.display().to_string(),
            });
        }
        Ok(canonical)
    }

    async fn fetch_remote(&self, url: Url) -> Result<PathBuf, FetchError> {
        let _turn = self.wait_turn(url.as_str()).await;
        let limit = self.config.total_timeout;
        tracing::debug!(%url, "fetching a source");
        tokio::time::timeout(limit, self.download(&url))
            .await
            .unwrap_or(Err(FetchError::TimedOut { limit }))
    }

    /// Waits until no other fetch of `key` is running in this process.
    async fn wait_turn(&self, key: &str) -> Turn<'_> {
        let lock = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        Turn {
            map: &self.in_flight,
            key: key.to_owned(),
            held: Some(lock.lock_owned().await),
        }
    }

    /// Revalidates a cached copy or downloads the source; returns the object's path.
    async fn download(&self, url: &Url) -> Result<PathBuf, FetchError> {
        let cached = self.cache.lookup(url).await;
        let (final_url, response) = self.get(url, cached.as_ref()).await?;
        if response.status() != StatusCode::NOT_MODIFIED {
            return self.receive(url, &final_url, response).await;
        }

        if let Some(entry) = &cached
            && let Some(path) = self.cache.reuse(entry).await
        {
            tracing::debug!(%url, "source unchanged (304): reusing the cached copy");
            return Ok(path);
        }
        // The cached copy vanished meanwhile: ask again, unconditionally.
        let (final_url, response) = self.get(url, None).await?;
        self.receive(url, &final_url, response).await
    }

    /// Sends a GET and follows up to [`MAX_REDIRECTS`] redirects, checking every hop.
    /// Returns the last URL and its response.
    async fn get(&self, url: &Url, cached: Option<&Entry>) -> Result<(Url, Response), FetchError> {
        let mut current = url.clone();
        for hop in 0..=MAX_REDIRECTS {
            let response = self
                .send(&current, cached)
                .await
                .map_err(|error| match hop {
                    0 => error,
                    _ => FetchError::OnRedirect {
                        hop,
                        url: current.to_string(),
                        source: Box::new(error),
                    },
                })?;
            let Some(next) = redirect_target(&current, &response)? else {
                return Ok((current, response));
            };
            tracing::debug!(from = %current, to = %next, "following a redirect");
            current = next;
        }
        Err(FetchError::TooManyRedirects {
            max: MAX_REDIRECTS,
            url: current.to_string(),
        })
    }

    /// One request, after checking the scheme and an IP-literal host (a name is checked by
    /// the resolver, on the addresses it returns). Conditional headers go to the URL the
    /// cached copy came from.
    async fn send(&self, url: &Url, cached: Option<&Entry>) -> Result<Response, FetchError> {
        self.check_url(url)?;
        let mut request = self.client.get(url.clone());
        if let Some(entry) = cached.filter(|e| e.final_url == url.as_str()) {
            if let Some(etag) = &entry.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &entry.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, modified);
            }
        }
        request
            .send()
            .await
            .map_err(|e| self.request_error(url, &e))
    }

    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Scheme {
                scheme: url.scheme().into(),
            });
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            // The url crate turns every IPv4 spelling into Host::Ipv4; this is a backstop.
            Some(Host::Domain(name)) => name.parse().ok(),
            None => {
                return Err(FetchError::NoHost {
                    url: url.to_string(),
                });
            }
        };
        match (literal, url.host_str()) {
            (Some(ip), Some(host)) => self
                .guard
                .check_literal(host, ip)
                .map_err(FetchError::Guard),
            _ => Ok(()),
        }
    }

    fn request_error(&self, url: &Url, error: &reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(inner) = source {
            if let Some(refused) = inner.downcast_ref::<Refused>() {
                return FetchError::Guard(refused.clone());
            }
            source = inner.source();
        }
        if error.is_connect() && error.is_timeout() {
            return FetchError::ConnectTimeout {
                host: url.host_str().unwrap_or_default().to_owned(),
                limit: self.config.connect_timeout,
            };
        }
        FetchError::Request {
            url: url.to_string(),
            reason: error_chain(error),
        }
    }

    /// Takes a response that is not a redirect: checks status and size, streams the body
    /// into the cache and records the validator.
    async fn receive(
        &self,
        url: &Url,
        final_url: &Url,
        mut response: Response,
    ) -> Result<PathBuf, FetchError> {
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                status,
                url: final_url.to_string(),
            });
        }
        let limit = self.config.max_bytes;
        if let Some(declared) = response.content_length()
            && declared > limit
        {
            return Err(FetchError::TooLarge { declared, limit });
        }

        let content_type = header_text(&response, header::CONTENT_TYPE);
        let content_type = content_type.unwrap_or_else(|| "none".into());
        let etag = header_text(&response, header::ETAG);
        let last_modified = header_text(&response, header::LAST_MODIFIED);
        let (temp, object, size) = self.stream(&mut response, &content_type, final_url).await?;

        let entry = Entry {
            url: url.to_string(),
            final_url: final_url.to_string(),
            etag,
            last_modified,
            object,
            size,
        };
        tracing::debug!(%url, size, object = %entry.object, "fetched a source");
        self.cache
            .store(temp, entry)
            .await
            .map_err(|e| self.cache_error(e))
    }

    /// Streams the body into a temporary file, hashing it, enforcing the size cap, and
    /// refusing it as soon as its first bytes show it is not media.
    async fn stream(
        &self,
        response: &mut Response,
        content_type: &str,
        url: &Url,
    ) -> Result<(TempFile, String, u64), FetchError> {
        let limit = self.config.max_bytes;
        let mut temp = self
            .cache
            .temp_file()
            .await
            .map_err(|e| self.cache_error(e))?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut size = 0u64;

        while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Broken {
            url: url.to_string(),
            received: size,
            reason: error_chain(&e),
        })? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(FetchError::TooLargeStream { limit });
            }
            if head.len() < SNIFF_LEN {
                head.extend(chunk.iter().take(SNIFF_LEN - head.len()));
                if head.len() == SNIFF_LEN {
                    refuse_non_media(&head, content_type)?;
                }
            }
            hasher.update(&chunk);
            let written = temp.file.write_all(&chunk).await;
            written.map_err(|e| self.cache_error(e))?;
        }
        if head.len() < SNIFF_LEN {
            refuse_non_media(&head, content_type)?;
        }

        temp.file.flush().await.map_err(|e| self.cache_error(e))?;
        Ok((temp, hex::encode(hasher.finalize()), size))
    }

    fn cache_error(&self, reason: std::io::Error) -> FetchError {
        FetchError::Cache {
            dir: self.cache.dir().display().to_string(),
            reason,
        }
    }
}

/// A fetch's claim on its URL; the last one out removes the URL's lock from the map.
struct Turn<'a> {
    map: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: String,
    held: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = self.held.take() {
            // The map's reference and ours: nobody else is waiting.
            if Arc::strong_count(OwnedMutexGuard::mutex(&held)) == 2 {
                map.remove(&self.key);
            }
        }
    }
}

/// The URL a redirect response points to, or `None` when the response is no redirect.
fn redirect_target(current: &Url, response: &Response) -> Result<Option<Url>, FetchError> {
    let status = response.status();
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let location = response.headers().get(header::LOCATION);
    let target = location
        .and_then(|value| value.to_str().ok())
        .and_then(|text| current.join(text).ok());
    match target {
        Some(next) => Ok(Some(next)),
        None => Err(FetchError::BadRedirect {
            status,
            url: current.to_string(),
        }),
    }
}

fn header_text(response: &Response, name: HeaderName) -> Option<String> {
    let value = response.headers().get(name)?;
    value.to_str().ok().map(str::to_owned)
}

/// An error and its causes, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

fn io_context(error: std::io::Error, context: impl std::fmt::Display) -> MediaError {
    MediaError::Io(std::io::Error::new(
        error.kind(),
        format!("{context}: {error}"),
    ))
}

fn refuse_non_media(head: &[u8], content_type: &str) -> Result<(), FetchError> {
    match sniff_non_media(head) {
        Some(kind) => Err(FetchError::NotMedia {
            kind,
            content_type: content_type.to_owned(),
        }),
        None => Ok(()),
    }
}

/// What the first bytes of a body are when they are plainly not media: an HTML page, an
/// XML document, JSON, text or nothing. Media containers all start with binary headers
/// within their first bytes, so a body of only printable characters is never one (and a
/// text playlist, which could make the decoder open further URLs, is refused as well).
pub fn sniff_non_media(head: &[u8]) -> Option<&'static str> {
    if head.is_empty() {
        return Some("an empty body");
    }
    let textual = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c));
    let body = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let lower: Vec<u8> = start
        .map(|at| {
            body.iter()
                .skip(at)
                .take(16)
                .map(u8::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();

    const HTML: [&[u8]; 6] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<body",
        b"<script",
        b"<!--",
    ];
    const XML: [&[u8]; 2] = [b"<?xml", b"<svg"];
    if HTML.iter().any(|p| lower.starts_with(p)) {
        Some("an HTML page")
    } else if XML.iter().any(|p| lower.starts_with(p)) {
        Some("an XML document")
    } else if textual && (lower.starts_with(b"{") || lower.starts_with(b"[")) {
        Some("JSON")
    } else if textual {
        Some("text")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_tells_pages_from_media() {
        let table: &[(&[u8], Option<&str>)] = &[
            (b"", Some("an empty body")),
            (
                b"<!DOCTYPE html><html><body>Not found</body></html>",
                Some("an HTML page"),
            ),
            (b"\xef\xbb\xbf\n  <HTML lang=en>", Some("an HTML page")),
            (b"<!-- error --><p>", Some("an HTML page")),
            (
                b"<?xml version=\"1.0\"?><Error>AccessDenied</Error>",
                Some("an XML document"),
            ),
            (b"{\"error\": \"not found\"}", Some("JSON")),
            (b"[1, 2]", Some("JSON")),
            (
                b"#EXTM3U\n#EXTINF:10,\nhttp://10.0.0.1/a.ts\n",
                Some("text"),
            ),
            (b"Forbidden\r\n", Some("text")),
            // The start of an MP4, a WebM, a PNG, a WAV and an ID3-tagged MP3.
            (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", None),
            (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", None),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None),
            (b"RIFF\x24\x08\x00\x00WAVEfmt ", None),
            (b"ID3\x04\x00\x00\x00\x00\x00\x23TSSE", None),
        ];
        for &(head, want) in table {
            assert_eq!(
                sniff_non_media(head),
                want,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn sources_are_urls_or_local_paths() {
        assert!(matches!(
            parse_src("https://a.example/v"),
            Ok(Source::Remote(_))
        ));
        assert!(matches!(
            parse_src("HTTP://a.example/v"),
            Ok(Source::Remote(_))
        ));
        assert!(matches!(parse_src("clips/a.mp4"), Ok(Source::Local(_))));
        assert!(matches!(parse_src("/srv/a.mp4"), Ok(Source::Local(_))));
        assert!(matches!(
            parse_src("file:///srv/a.mp4"),
            Ok(Source::Local(_))
        ));
        assert!(matches!(parse_src(""), Err(FetchError::Empty)));
        for refused in [
            "ftp://a.example/v",
            "data:video/mp4;base64,AAAA",
            "gopher://x/",
        ] {
            let error = parse_src(refused).err().map(|e| e.to_string());
            assert!(
                error.is_some_and(|e| e.contains("use http or https")),
                "{refused}"
            );
        }
        assert!(matches!(
            parse_src("http://[::1/"),
            Err(FetchError::BadUrl { .. })
        ));
    }
}
