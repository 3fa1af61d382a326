//! The fetcher against loopback HTTP servers started by each test. The servers count the
//! requests they receive, so "refused before any connection" is checked as zero requests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use render_node::media::MediaError;
use render_node::media::fetch::{FetchConfig, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIELD: &str = "project.clips[0].src";

// ---------------------------------------------------------------------------------------
// A counting HTTP/1.1 server: one request per connection, answers from a route function.

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
    status: u16,
}

#[derive(Clone)]
enum Body {
    /// With a Content-Length.
    Sized(Vec<u8>),
    /// Without one: the body ends when the connection closes.
    Unsized(Vec<u8>),
    /// Declares `len` bytes, then sends one every `every`.
    Trickle { len: usize, every: Duration },
    /// Declares `declared` bytes, sends `sent`, closes.
    Cut { declared: usize, sent: usize },
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    fn ok(content_type: &str, body: &[u8]) -> Reply {
        Reply::status(200, Body::Sized(body.to_vec())).header("Content-Type", content_type)
    }

    fn media(body: &[u8]) -> Reply {
        Reply::ok("application/octet-stream", body)
    }

    fn status(status: u16, body: Body) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status, Body::Sized(Vec::new())).header("Location", location)
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Routes = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    async fn start(
        bind: &str,
        routes: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind(bind).await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let routes: Routes = Arc::new(routes);
        let task_log = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, routes.clone(), task_log.clone()));
            }
        });
        Server { addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }

    fn count(&self) -> usize {
        self.requests().len()
    }

    /// (full 200 answers, 304 answers) for `path`.
    fn answers(&self, path: &str) -> (usize, usize) {
        let requests = self.requests();
        let of = |status: u16| {
            requests
                .iter()
                .filter(move |r| r.path == path && r.status == status)
        };
        (of(200).count(), of(304).count())
    }
}

async fn serve(mut stream: TcpStream, routes: Routes, log: Arc<Mutex<Vec<Request>>>) {
    let Some(mut request) = read_head(&mut stream).await else {
        return;
    };
    let reply = routes(&request);
    request.status = reply.status;
    log.lock().expect("log").push(request);

    let mut head = format!(
        "HTTP/1.1 {} Whatever\r\nConnection: close\r\n",
        reply.status
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let declared = match &reply.body {
        Body::Sized(bytes) => Some(bytes.len()),
        Body::Unsized(_) => None,
        Body::Trickle { len, .. } => Some(*len),
        Body::Cut { declared, .. } => Some(*declared),
    };
    if let Some(len) = declared {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }

    let _ = match reply.body {
        Body::Sized(bytes) | Body::Unsized(bytes) => stream.write_all(&bytes).await,
        Body::Cut { sent, .. } => stream.write_all(&vec![0u8; sent]).await,
        Body::Trickle { len, every } => {
            for _ in 0..len {
                tokio::time::sleep(every).await;
                if stream.write_all(b"\0").await.is_err() {
                    break;
                }
            }
            Ok(())
        }
    };
    let _ = stream.shutdown().await;
}

async fn read_head(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buffer.len() > 16 * 1024 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buffer).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Request {
        path,
        headers,
        status: 0,
    })
}

// ---------------------------------------------------------------------------------------
// Media, fetchers and assertions.

/// A real 0.5 s H.264 MP4 made by the ffmpeg CLI, once per test binary.
fn media() -> &'static [u8] {
    static MEDIA: OnceLock<Vec<u8>> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("clip.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=64x48:rate=10",
            ])
            .args(["-t", "0.5", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-y"])
            .arg(&out)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg failed");
        std::fs::read(&out).expect("read the clip")
    })
}

/// Binary bytes, distinct for each `seed`, that start like an MP4.
fn blob(seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = b"\x00\x00\x00\x18ftypisom".to_vec();
    bytes.extend((0..len - bytes.len()).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    bytes
}

fn config(cache: &Path) -> FetchConfig {
    let mut config = FetchConfig::new(cache);
    config.allow_private = true;
    config
}

fn fetcher(config: FetchConfig) -> Fetcher {
    Fetcher::new(config).expect("a fetcher")
}

/// The error's text, which must name the field.
fn error_text(result: Result<PathBuf, MediaError>) -> String {
    let error = match result {
        Ok(path) => panic!("fetched {} where an error was expected", path.display()),
        Err(error) => error.to_string(),
    };
    assert!(error.starts_with(&format!("{FIELD}: ")), "{error}");
    error
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|items| items.filter_map(|i| i.ok()).map(|i| i.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------
// Fetching.

#[tokio::test]
async fn octet_stream_without_extension_and_behind_a_302_equal_the_file() {
    let server = Server::start("127.0.0.1:0", |req| match req.path.as_str() {
        "/v/7f3a" => Reply::media(media()),
        "/moved" => Reply::redirect(302, "/v/7f3a"),
        _ => Reply::status(404, Body::Sized(Vec::new())),
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let direct = fetcher
        .fetch(&server.url("/v/7f3a"), FIELD)
        .await
        .expect("direct");
    assert_eq!(std::fs::read(&direct).expect("read"), media());
    let moved = fetcher
        .fetch(&server.url("/moved"), FIELD)
        .await
        .expect("redirected");
    assert_eq!(std::fs::read(&moved).expect("read"), media());
    assert!(files_in(&cache.path().join("tmp")).is_empty());
}

fn redirect_chain(req: &Request) -> Reply {
    let hops: usize = req.path.trim_start_matches("/chain/").parse().unwrap_or(0);
    match hops {
        0 => Reply::media(media()),
        n if n % 2 == 0 => Reply::redirect(301, &format!("/chain/{}", n - 1)),
        n => Reply::redirect(307, &format!("/chain/{}", n - 1)),
    }
}

#[tokio::test]
async fn five_redirects_are_followed_and_a_sixth_is_refused() {
    let server = Server::start("127.0.0.1:0", redirect_chain).await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let five = fetcher
        .fetch(&server.url("/chain/5"), FIELD)
        .await
        .expect("5 redirects");
    assert_eq!(std::fs::read(five).expect("read"), media());
    assert_eq!(server.count(), 6);

    let error = error_text(fetcher.fetch(&server.url("/chain/6"), FIELD).await);
    assert!(error.contains("refused: more than 5 redirects"), "{error}");
    assert_eq!(server.count(), 12, "the seventh URL is never requested");
}

#[tokio::test]
async fn html_is_refused_naming_the_content_type_and_media_is_judged_by_its_bytes() {
    let page = b"<!DOCTYPE html>\n<html><body>Video not found</body></html>";
    let server = Server::start("127.0.0.1:0", move |req| match req.path.as_str() {
        "/page" => Reply::ok("text/html; charset=utf-8", page),
        "/page-as-binary" => Reply::media(page),
        "/json" => Reply::ok("application/json", b"{\"error\":\"expired\"}"),
        "/empty" => Reply::media(b""),
        _ => Reply::ok("text/html", media()),
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let error = error_text(fetcher.fetch(&server.url("/page"), FIELD).await);
    assert_eq!(
        error,
        format!(
            "{FIELD}: refused: the server sent an HTML page, not media \
             (Content-Type: text/html; charset=utf-8)"
        )
    );
    let error = error_text(fetcher.fetch(&server.url("/page-as-binary"), FIELD).await);
    assert!(error.contains("an HTML page"), "{error}");
    assert!(error.contains("application/octet-stream"), "{error}");
    let error = error_text(fetcher.fetch(&server.url("/json"), FIELD).await);
    assert!(
        error.contains("sent JSON") && error.contains("application/json"),
        "{error}"
    );
    let error = error_text(fetcher.fetch(&server.url("/empty"), FIELD).await);
    assert!(error.contains("an empty body"), "{error}");

    // Real media mislabelled as a page is still media.
    let path = fetcher
        .fetch(&server.url("/mislabelled"), FIELD)
        .await
        .expect("media");
    assert_eq!(std::fs::read(path).expect("read"), media());
    assert!(files_in(&cache.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn http_errors_name_the_status() {
    let server = Server::start("127.0.0.1:0", |req| match req.path.as_str() {
        "/gone" => Reply::redirect(302, "/missing"),
        "/broken" => Reply::status(500, Body::Sized(b"oops".to_vec())),
        "/nowhere" => Reply::status(302, Body::Sized(Vec::new())),
        _ => Reply::status(404, Body::Sized(b"no".to_vec())),
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let missing = server.url("/missing");
    let error = error_text(fetcher.fetch(&missing, FIELD).await);
    assert_eq!(error, format!("{FIELD}: HTTP 404 Not Found from {missing}"));
    let error = error_text(fetcher.fetch(&server.url("/gone"), FIELD).await);
    assert!(error.contains("HTTP 404 Not Found"), "{error}");
    let error = error_text(fetcher.fetch(&server.url("/broken"), FIELD).await);
    assert!(error.contains("HTTP 500 Internal Server Error"), "{error}");
    let error = error_text(fetcher.fetch(&server.url("/nowhere"), FIELD).await);
    assert!(error.contains("without a usable Location"), "{error}");
}

#[tokio::test]
async fn the_size_cap_holds_on_content_length_and_while_streaming() {
    let big = blob(1, 100_000);
    let server = Server::start("127.0.0.1:0", move |req| match req.path.as_str() {
        "/declared" => Reply::media(&big),
        "/fits" => Reply::media(&big[..10_000]),
        _ => Reply::status(200, Body::Unsized(big.clone())),
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let mut config = config(cache.path());
    config.max_bytes = 10_000;
    let fetcher = fetcher(config);

    let error = error_text(fetcher.fetch(&server.url("/declared"), FIELD).await);
    assert_eq!(
        error,
        format!("{FIELD}: refused: 100000 bytes (Content-Length) is over the limit of 10000 bytes")
    );
    let error = error_text(fetcher.fetch(&server.url("/undeclared"), FIELD).await);
    assert!(
        error.contains("grew past the limit of 10000 bytes"),
        "{error}"
    );
    let fits = fetcher
        .fetch(&server.url("/fits"), FIELD)
        .await
        .expect("at the cap");
    assert_eq!(std::fs::metadata(fits).expect("stat").len(), 10_000);

    assert!(files_in(&cache.path().join("tmp")).is_empty());
    assert_eq!(files_in(&cache.path().join("objects")).len(), 1);
}

#[tokio::test]
async fn a_trickling_or_stalled_body_hits_the_total_timeout() {
    let server = Server::start("127.0.0.1:0", |req| {
        let every = match req.path.as_str() {
            "/trickle" => Duration::from_millis(50),
            _ => Duration::from_secs(3600),
        };
        Reply::status(200, Body::Trickle { len: 10_000, every })
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let mut config = config(cache.path());
    config.total_timeout = Duration::from_millis(700);
    let fetcher = fetcher(config);

    for path in ["/trickle", "/stall"] {
        let started = Instant::now();
        let error = error_text(fetcher.fetch(&server.url(path), FIELD).await);
        let elapsed = started.elapsed();
        assert_eq!(
            error,
            format!("{FIELD}: timed out: the fetch took longer than the total limit of 0.7 s")
        );
        assert!(elapsed >= Duration::from_millis(700), "{path}: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{path}: {elapsed:?}");
    }
    assert!(files_in(&cache.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn a_server_dying_mid_download_leaves_nothing_in_the_cache() {
    let server = Server::start("127.0.0.1:0", |_| {
        Reply::status(
            200,
            Body::Cut {
                declared: 20_000,
                sent: 5_000,
            },
        )
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let error = error_text(fetcher.fetch(&server.url("/cut"), FIELD).await);
    assert!(error.contains("broke off after"), "{error}");
    assert!(files_in(&cache.path().join("tmp")).is_empty());
    assert!(files_in(&cache.path().join("objects")).is_empty());
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let server = Server::start("127.0.0.1:0", |_| {
        Reply::redirect(302, "file:///etc/passwd")
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    for src in [
        "ftp://media.example/a.mp4",
        "data:video/mp4;base64,AA",
        "gopher://a/",
    ] {
        let error = error_text(fetcher.fetch(src, FIELD).await);
        assert!(
            error.contains("is not accepted; use http or https"),
            "{src}: {error}"
        );
    }
    let error = error_text(fetcher.fetch("file:///etc/passwd", FIELD).await);
    assert!(
        error.contains("local paths are not accepted here"),
        "{error}"
    );
    let error = error_text(fetcher.fetch(&server.url("/x"), FIELD).await);
    assert!(
        error.contains("redirect 1 to file:///etc/passwd: refused: scheme"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------
// The private-address guard.

/// Every spelling of a loopback or unspecified address the guard must refuse, as URLs on
/// the ports of the loopback servers (IPv4 and IPv6) that must see no request.
fn private_spellings(v4: u16, v6: u16) -> Vec<(String, &'static str)> {
    let loopback = "is a loopback address (private sources are disabled)";
    [
        (format!("http://127.0.0.1:{v4}/a"), loopback),
        (format!("http://127.1:{v4}/a"), loopback),
        (format!("http://2130706433:{v4}/a"), loopback),
        (format!("http://0x7f000001:{v4}/a"), loopback),
        (format!("http://0x7f.1:{v4}/a"), loopback),
        (format!("http://0177.0.0.1:{v4}/a"), loopback),
        (format!("http://127.0.0.1.:{v4}/a"), loopback),
        (format!("http://[::1]:{v6}/a"), loopback),
        (format!("http://[::ffff:127.0.0.1]:{v4}/a"), loopback),
        (format!("http://[::ffff:7f00:1]:{v4}/a"), loopback),
        (
            format!("http://0.0.0.0:{v4}/a"),
            "is the unspecified address",
        ),
        (format!("http://0:{v4}/a"), "is the unspecified address"),
        (format!("http://[::]:{v6}/a"), "is the unspecified address"),
        (
            format!("http://localhost:{v4}/a"),
            "host localhost resolves to",
        ),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn private_addresses_are_refused_however_spelled_before_any_connection() {
    let v4 = Server::start("127.0.0.1:0", |_| Reply::media(media())).await;
    let v6 = Server::start("[::1]:0", |_| Reply::media(media())).await;
    let cache = tempfile::tempdir().expect("temp dir");
    let mut config = FetchConfig::new(cache.path());
    config.allow_private = false;
    let fetcher = fetcher(config);

    let error = error_text(
        fetcher
            .fetch(&v4.url("/a").replace("127.0.0.1", "127.1"), FIELD)
            .await,
    );
    assert_eq!(
        error,
        format!(
            "{FIELD}: refused: host 127.0.0.1 is a loopback address \
             (private sources are disabled)"
        )
    );
    for (src, reason) in private_spellings(v4.port(), v6.port()) {
        let error = error_text(fetcher.fetch(&src, FIELD).await);
        assert!(error.contains(": refused: host "), "{src}: {error}");
        assert!(error.contains(reason), "{src}: {error}");
    }
    assert_eq!(v4.count(), 0, "the IPv4 server was reached");
    assert_eq!(v6.count(), 0, "the IPv6 server was reached");
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused_on_that_hop() {
    // The origin is on 127.0.0.2, let through as an exception; the target on 127.0.0.1
    // and [::1] is not.
    let target = Server::start("127.0.0.1:0", |_| Reply::media(media())).await;
    let target6 = Server::start("[::1]:0", |_| Reply::media(media())).await;
    let spellings = private_spellings(target.port(), target6.port());
    let locations: Vec<String> = spellings.iter().map(|(url, _)| url.clone()).collect();
    let origin = Server::start("127.0.0.2:0", move |req| {
        let index: usize = req
            .path
            .trim_start_matches("/to/")
            .parse()
            .unwrap_or(usize::MAX);
        match locations.get(index) {
            Some(location) => Reply::redirect(302, location),
            None => Reply::media(media()),
        }
    })
    .await;

    let cache = tempfile::tempdir().expect("temp dir");
    let mut config = FetchConfig::new(cache.path());
    let origin_ip: IpAddr = "127.0.0.2".parse().expect("an address");
    config.allow_private_addrs = vec![origin_ip];
    let fetcher = fetcher(config);

    let direct = fetcher
        .fetch(&origin.url("/media"), FIELD)
        .await
        .expect("the exception");
    assert_eq!(std::fs::read(direct).expect("read"), media());
    for (index, (location, reason)) in spellings.iter().enumerate() {
        let error = error_text(
            fetcher
                .fetch(&origin.url(&format!("/to/{index}")), FIELD)
                .await,
        );
        let hop = format!("{FIELD}: redirect 1 to ");
        assert!(error.starts_with(&hop), "{location}: {error}");
        assert!(error.contains(": refused: host "), "{location}: {error}");
        assert!(error.contains(reason), "{location}: {error}");
    }
    assert_eq!(origin.count(), spellings.len() + 1);
    assert_eq!(target.count(), 0, "the IPv4 target was reached");
    assert_eq!(target6.count(), 0, "the IPv6 target was reached");
}

#[tokio::test]
async fn allow_private_lets_loopback_through() {
    let server = Server::start("127.0.0.1:0", |_| Reply::media(media())).await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let src = format!("http://localhost:{}/a", server.port());
    let path = fetcher.fetch(&src, FIELD).await.expect("allowed");
    assert_eq!(std::fs::read(path).expect("read"), media());
    assert_eq!(server.count(), 1);
}

// ---------------------------------------------------------------------------------------
// The cache.

/// Serves `/etag` and `/modified` with validators and 304s, `/plain` without.
fn validating_routes(version: Arc<Mutex<u8>>) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let v = *version.lock().expect("version");
        let body = blob(v, 4_000);
        let etag = format!("\"v{v}\"");
        let modified = format!("Tue, 0{v} Dec 2026 10:00:00 GMT");
        match req.path.as_str() {
            "/etag" if req.headers.get("if-none-match") == Some(&etag) => {
                Reply::status(304, Body::Sized(Vec::new())).header("ETag", &etag)
            }
            "/etag" => Reply::media(&body).header("ETag", &etag),
            "/modified" if req.headers.get("if-modified-since") == Some(&modified) => {
                Reply::status(304, Body::Sized(Vec::new()))
            }
            "/modified" => Reply::media(&body).header("Last-Modified", &modified),
            "/moved" => Reply::redirect(302, "/etag"),
            _ => Reply::media(&body),
        }
    }
}

#[tokio::test]
async fn a_cached_source_is_revalidated_not_downloaded_again() {
    let version = Arc::new(Mutex::new(1));
    let server = Server::start("127.0.0.1:0", validating_routes(version.clone())).await;
    let cache = tempfile::tempdir().expect("temp dir");

    for path in ["/etag", "/modified", "/moved"] {
        let first = fetcher(config(cache.path()))
            .fetch(&server.url(path), FIELD)
            .await;
        // A new fetcher on the same folder: the cache outlives the process that filled it.
        let second = fetcher(config(cache.path()))
            .fetch(&server.url(path), FIELD)
            .await;
        let (first, second) = (first.expect("first"), second.expect("second"));
        assert_eq!(first, second, "{path}");
        assert_eq!(
            std::fs::read(&second).expect("read"),
            blob(1, 4_000),
            "{path}"
        );
    }
    assert_eq!(
        server.answers("/etag"),
        (2, 2),
        "one download each for /etag and /moved"
    );
    assert_eq!(server.answers("/modified"), (1, 1));
    let revalidation = &server.requests()[1];
    assert_eq!(
        revalidation
            .headers
            .get("if-none-match")
            .map(String::as_str),
        Some("\"v1\"")
    );

    // A changed source is downloaded again and gets a new object.
    *version.lock().expect("version") = 2;
    let fetcher = fetcher(config(cache.path()));
    let changed = fetcher
        .fetch(&server.url("/etag"), FIELD)
        .await
        .expect("changed");
    assert_eq!(std::fs::read(changed).expect("read"), blob(2, 4_000));
    assert_eq!(server.answers("/etag"), (3, 2));
}

#[tokio::test]
async fn sources_without_a_validator_are_downloaded_each_time_into_one_object() {
    let server = Server::start("127.0.0.1:0", validating_routes(Arc::new(Mutex::new(1)))).await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let first = fetcher
        .fetch(&server.url("/plain"), FIELD)
        .await
        .expect("first");
    let second = fetcher
        .fetch(&server.url("/plain"), FIELD)
        .await
        .expect("second");
    assert_eq!(first, second);
    assert_eq!(server.answers("/plain"), (2, 0));
    assert_eq!(files_in(&cache.path().join("objects")).len(), 1);
}

#[tokio::test]
async fn concurrent_fetches_of_one_url_download_it_once() {
    let server = Server::start("127.0.0.1:0", validating_routes(Arc::new(Mutex::new(1)))).await;
    let cache = tempfile::tempdir().expect("temp dir");
    let fetcher = fetcher(config(cache.path()));

    let url = server.url("/etag");
    let (a, b, c) = tokio::join!(
        fetcher.fetch(&url, FIELD),
        fetcher.fetch(&url, "project.clips[1].src"),
        fetcher.fetch(&url, "project.clips[2].src"),
    );
    assert_eq!(a.expect("a"), b.expect("b"));
    assert_eq!(server.answers("/etag"), (1, 2));
    drop(c);
}

#[tokio::test]
async fn eviction_keeps_the_bound_and_drops_the_least_recently_used() {
    let server = Server::start("127.0.0.1:0", |req| {
        let seed: u8 = req.path.trim_start_matches("/blob/").parse().unwrap_or(0);
        let etag = format!("\"{seed}\"");
        match req.headers.get("if-none-match") {
            Some(tag) if *tag == etag => Reply::status(304, Body::Sized(Vec::new())),
            _ => Reply::media(&blob(seed, 10_000)).header("ETag", &etag),
        }
    })
    .await;
    let cache = tempfile::tempdir().expect("temp dir");
    let mut config = config(cache.path());
    config.cache_max_bytes = 25_000;
    let fetcher = fetcher(config);
    let objects = cache.path().join("objects");
    let total = || -> u64 {
        let sizes = files_in(&objects)
            .into_iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()));
        sizes.map(|len| len.unwrap_or(0)).sum()
    };

    let one = fetcher
        .fetch(&server.url("/blob/1"), FIELD)
        .await
        .expect("1");
    let two = fetcher
        .fetch(&server.url("/blob/2"), FIELD)
        .await
        .expect("2");
    // Using 1 again makes 2 the least recently used.
    assert_eq!(
        fetcher
            .fetch(&server.url("/blob/1"), FIELD)
            .await
            .expect("1 again"),
        one
    );
    let three = fetcher
        .fetch(&server.url("/blob/3"), FIELD)
        .await
        .expect("3");

    assert!(total() <= 25_000, "{} bytes cached", total());
    assert_eq!(files_in(&objects), {
        let mut kept = vec![one.clone(), three.clone()];
        kept.sort();
        kept
    });
    assert!(!two.exists());
    assert_eq!(
        files_in(&cache.path().join("index")).len(),
        2,
        "2's entry went with it"
    );

    // 2 is downloaded again, and the bound still holds.
    let again = fetcher
        .fetch(&server.url("/blob/2"), FIELD)
        .await
        .expect("2 again");
    assert_eq!(std::fs::read(again).expect("read"), blob(2, 10_000));
    assert_eq!(server.answers("/blob/2"), (2, 0));
    assert!(total() <= 25_000, "{} bytes cached", total());
}

// ---------------------------------------------------------------------------------------
// Local paths.

#[tokio::test]
async fn local_paths_only_where_allowed() {
    let base = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(base.path().join("clips")).expect("mkdir");
    let clip = base.path().join("clips").join("a.mp4");
    std::fs::write(&clip, media()).expect("write");
    let cache = tempfile::tempdir().expect("temp dir");

    let service = fetcher(FetchConfig::new(cache.path()));
    let error = error_text(service.fetch("clips/a.mp4", FIELD).await);
    assert!(
        error.contains("local paths are not accepted here"),
        "{error}"
    );
    let error = error_text(service.fetch(&clip.display().to_string(), FIELD).await);
    assert!(
        error.contains("local paths are not accepted here"),
        "{error}"
    );

    let mut config = FetchConfig::new(cache.path());
    config.local_base = Some(base.path().to_owned());
    let cli = fetcher(config);
    let canonical = clip.canonicalize().expect("canonical");
    assert_eq!(
        cli.fetch("clips/a.mp4", FIELD).await.expect("relative"),
        canonical
    );
    assert_eq!(
        cli.fetch("./clips/../clips/a.mp4", FIELD)
            .await
            .expect("dots"),
        canonical
    );
    let absolute = clip.display().to_string();
    assert_eq!(
        cli.fetch(&absolute, FIELD).await.expect("absolute"),
        canonical
    );
    let file_url = format!("file://{absolute}");
    assert_eq!(
        cli.fetch(&file_url, FIELD).await.expect("file URL"),
        canonical
    );

    let error = error_text(cli.fetch("clips/missing.mp4", FIELD).await);
    assert!(error.contains("cannot open the local file") && error.contains("missing.mp4"));
    let error = error_text(cli.fetch("clips", FIELD).await);
    assert!(error.contains("is not a regular file"), "{error}");
    assert!(
        files_in(&cache.path().join("objects")).is_empty(),
        "local files are not copied"
    );
}
