//! Shared by the service tests: a real `render-node serve` process on loopback with a
//! temporary data folder, keys made with the `keys` subcommand, and a loopback media
//! server.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_render-node");

pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// A running node; killed when dropped.
pub struct Node {
    pub child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
}

impl Node {
    /// Starts a node on `data_dir` with extra `serve` flags and waits until it answers.
    pub async fn start(data_dir: &Path, flags: &[&str]) -> Node {
        let http = free_addr();
        let grpc = free_addr();
        let child = Command::new(BIN)
            .arg("serve")
            .args(["--http", &http.to_string(), "--grpc", &grpc.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn render-node serve");
        let node = Node {
            child,
            http,
            grpc,
            data_dir: data_dir.to_path_buf(),
            client: reqwest::Client::new(),
        };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url("/healthz");
            if let Ok(r) = self.client.get(&url).send().await
                && r.status().is_success()
                && tokio::net::TcpStream::connect(self.grpc).await.is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node did not start within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// A new API key with `credits`, from `render-node keys create`.
    pub fn key(&self, credits: u64) -> String {
        create_key(&self.data_dir, credits)
    }

    /// POSTs a JSON body; returns the status and the parsed body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        self.post_bytes(path, bytes).await
    }

    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        parse(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        parse(response).await
    }

    pub async fn credits(&self, key: &str) -> i64 {
        let (status, body) = self.get(&format!("/api/account?api_key={key}")).await;
        assert_eq!(status, 200, "{body}");
        body["credits"].as_i64().expect("credits is a number")
    }

    pub async fn job(&self, key: &str, job_id: &str) -> Value {
        let path = format!("/api/video-editor/render/status/{job_id}?api_key={key}");
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls a job until it reaches a final state.
    pub async fn wait_final(&self, key: &str, job_id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let job = self.job(key, job_id).await;
            if matches!(
                job["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job not final within {limit:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the node");
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM the node");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the node did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of a node served in-process.
pub struct Client {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub client: reqwest::Client,
}

impl Client {
    pub async fn new(http: SocketAddr, grpc: SocketAddr) -> Client {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client
            .get(format!("http://{http}/healthz"))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the node did not start within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Client { http, grpc, client }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("http://{}{path}", self.http);
        let response = self
            .client
            .post(url)
            .json_body(body)
            .send()
            .await
            .expect("POST");
        parse(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("http://{}{path}", self.http);
        parse(self.client.get(url).send().await.expect("GET")).await
    }

    pub async fn credits(&self, key: &str) -> i64 {
        let (status, body) = self.get(&format!("/api/account?api_key={key}")).await;
        assert_eq!(status, 200, "{body}");
        body["credits"].as_i64().expect("credits is a number")
    }

    pub async fn job(&self, key: &str, job_id: &str) -> Value {
        let path = format!("/api/video-editor/render/status/{job_id}?api_key={key}");
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

trait JsonBody {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("json"))
    }
}

async fn parse(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

pub fn create_key(data_dir: &Path, credits: u64) -> String {
    let out = Command::new(BIN)
        .args([
            "keys",
            "create",
            "--credits",
            &credits.to_string(),
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .expect("run keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(key.starts_with("rn_"), "{key}");
    key
}

/// A one-clip request for `seconds` of output from `src`.
pub fn request(key: &str, src: &str, seconds: f64) -> Value {
    serde_json::json!({
        "api_key": key,
        "format": "mp4",
        "project": {
            "fps": 30,
            "resolution": {"width": 320, "height": 240},
            "clips": [{"src": src, "type": "video", "duration": seconds}]
        }
    })
}

/// The API.md example body, byte for byte but for the hosts.
pub fn api_example(key: &str, base: &str) -> Value {
    let text = r#"{
  "api_key": "YOUR_API_KEY",
  "format": "mp4",
  "publish": false,
  "project": {
    "fps": 30,
    "resolution": {"width": 1920, "height": 1080},
    "audio": {"src": "https://media.example/sample-audio.mp3", "gain": 1.0, "fadeIn": 0.5, "fadeOut": 0.5},
    "clips": [
      {"src": "https://media.example/sample.mp4", "type": "video", "duration": 4,
       "audioGain": 0.8, "audioGainEnd": 1.1, "audioPan": -0.2, "audioPanEnd": 0.2,
       "audioGainKeyframes": [{"time": 0, "value": 0.8, "ease": "ease-in"},
                              {"time": 2, "value": 1.1, "ease": "ease-out"}],
       "audioPanKeyframes": [{"time": 0, "value": -0.2}, {"time": 2, "value": 0.2}],
       "audioMute": false, "audioSolo": false, "audioFadeIn": 0.2, "audioFadeOut": 0.2}
    ]
  }
}"#;
    let text = text
        .replace("YOUR_API_KEY", key)
        .replace("https://media.example", base);
    serde_json::from_str(&text).expect("the API.md example parses")
}

/// A loopback HTTP server over `dir` that counts requests.
pub struct MediaServer {
    pub base: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

pub async fn media_server(dir: &Path) -> MediaServer {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let app = axum::Router::new()
        .fallback_service(tower_http::services::ServeDir::new(dir))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    MediaServer { base, requests }
}

/// Generates the API.md example's sources with the ffmpeg CLI: a 4 s 1920x1080 video with
/// a tone, and a 4 s MP3.
pub fn make_example_media(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .current_dir(dir)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg {args:?}");
    };
    run(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1920x1080:rate=30:duration=4",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "sample.mp4",
    ]);
    run(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=220:duration=4",
        "sample-audio.mp3",
    ]);
}

/// Every ledger row sums to the balance, per account, read straight from the store.
pub fn ledger_matches_balances(data_dir: &Path) {
    let db = rusqlite::Connection::open(data_dir.join("render-node.sqlite3")).expect("open db");
    let mut stmt = db
        .prepare(
            "SELECT a.id, a.credits, COALESCE(SUM(l.delta), 0) FROM accounts a \
             LEFT JOIN ledger l ON l.account_id = a.id GROUP BY a.id",
        )
        .expect("prepare");
    let rows: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(!rows.is_empty());
    for (id, credits, sum) in rows {
        assert_eq!(
            credits, sum,
            "account {id}: balance {credits}, ledger sums to {sum}"
        );
    }
}
