//! Faults: kill -9 of the node at random moments during renders, a full disk while the
//! output is written, a source server that dies mid-download. No job is lost, no credit
//! lost or charged twice, and no corrupt file is ever served as completed.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::hostile::{self, Behaviour};
use crate::service_support::*;

const RENDER: &str = "/api/video-editor/render";

async fn submit(node: &Node, body: &Value) -> String {
    let (status, answer) = node.post(RENDER, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["job_id"].as_str().unwrap_or_default().to_string()
}

fn served_video(data_dir: &Path, id: &str) -> std::path::PathBuf {
    data_dir
        .join("uploads")
        .join(format!("video-editor-{id}.mp4"))
}

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_and_serves_no_corrupt_file() {
    let media = tempfile::tempdir().unwrap();
    hostile::small_video(media.path(), "clip.mp4", "160x120", 1);
    let server = media_server(media.path()).await;
    let src = format!("{}/clip.mp4", server.base);
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--concurrency",
        "2",
        "--allow-private-sources",
        "--preset",
        "ultrafast",
    ];
    let mut node = Node::start(dir.path(), &flags).await;
    let key = node.key(100);
    let mut ids = Vec::new();
    for _ in 0..10 {
        let mut body = request(&key, &src, 1.0);
        body["project"]["resolution"] = serde_json::json!({"width": 160, "height": 120});
        ids.push(submit(&node, &body).await);
    }
    // Each kill lands a random 0-400 ms after a render is seen running.
    let mut kills = Vec::new();
    for _ in 0..4 {
        let running = until_one_runs(&node, &key, &ids).await;
        let pause = rand::random_range(0..400u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        node.kill9();
        kills.push((running, pause));
        node = Node::start(dir.path(), &flags).await;
    }
    println!("kills (renders running, ms after): {kills:?}");
    assert!(
        kills.iter().any(|(running, _)| *running > 0),
        "no kill landed during a render: {kills:?}"
    );

    let mut completed = 0;
    for id in &ids {
        let job = node.wait_final(&key, id, Duration::from_secs(120)).await;
        let video = served_video(dir.path(), id);
        match job["status"].as_str() {
            Some("completed") => {
                completed += 1;
                assert_eq!(job["credits_charged"], 1, "{job}");
                assert!(job.get("credits_refunded").is_none(), "{job}");
                assert_eq!(hostile::ffprobe_frames(&video), Some(30), "{id}: {job}");
            }
            Some("failed") => {
                assert_eq!(job["credits_refunded"], 1, "{job}");
                assert!(!video.exists(), "{id} failed but its video is served");
            }
            other => panic!("{id}: unexpected final state {other:?}: {job}"),
        }
    }
    println!("{completed} of 10 completed across {} kills", kills.len());
    assert_eq!(node.credits(&key).await, 100 - completed);
    ledger_matches_balances(dir.path());
}

/// Polls until a job of `ids` is in progress (or 10 s pass); returns how many are.
async fn until_one_runs(node: &Node, key: &str, ids: &[String]) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut running = 0;
        for id in ids {
            if node.job(key, id).await["status"] == "in_progress" {
                running += 1;
            }
        }
        if running > 0 || std::time::Instant::now() > deadline {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Mounts a tmpfs of `size` at `at` (root only); `false` when mounting is impossible.
fn mount_tmpfs(at: &Path, size: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

fn unmount(at: &Path) {
    let _ = std::process::Command::new("umount").arg(at).status();
}

/// A node whose every file write over `limit` bytes fails (EFBIG), by RLIMIT_FSIZE with
/// SIGXFSZ ignored: the stand-in for a full disk where no tmpfs can be mounted.
async fn node_with_file_size_limit(data_dir: &Path, flags: &[&str], limit: u64) -> Node {
    use std::os::unix::process::CommandExt;
    let http = free_addr();
    let grpc = free_addr();
    let mut command = std::process::Command::new(BIN);
    command
        .arg("serve")
        .args(["--http", &http.to_string(), "--grpc", &grpc.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit).
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("spawn render-node serve");
    let node = Node {
        child,
        http,
        grpc,
        data_dir: data_dir.to_path_buf(),
        client: reqwest::Client::new(),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while node.client.get(node.url("/healthz")).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the node did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node
}

#[tokio::test]
async fn a_full_disk_fails_the_job_refunded_with_no_partial_file_served() {
    let media = tempfile::tempdir().unwrap();
    hostile::small_video(media.path(), "clip.mp4", "160x120", 1);
    let server = media_server(media.path()).await;
    let src = format!("{}/clip.mp4", server.base);
    let mount = tempfile::tempdir().unwrap();
    let flags = [
        "--concurrency",
        "1",
        "--allow-private-sources",
        "--preset",
        "ultrafast",
        "--crf",
        "0",
    ];
    // RENDER_NODE_TEST_NO_TMPFS=1 takes the fallback even where mounting works.
    let mounted =
        std::env::var_os("RENDER_NODE_TEST_NO_TMPFS").is_none() && mount_tmpfs(mount.path(), "1m");
    let data_dir = mount.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = create_key(&data_dir, 100);
    let node = if mounted {
        println!("data dir on a 1 MiB tmpfs");
        Node::start(&data_dir, &flags).await
    } else {
        println!("no tmpfs (cannot mount, or RENDER_NODE_TEST_NO_TMPFS): RLIMIT_FSIZE of 1 MiB");
        node_with_file_size_limit(&data_dir, &flags, 1 << 20).await
    };
    // 4 s of lossless 640x480: several MiB, far over the disk.
    let mut body = request(&key, &src, 4.0);
    body["project"]["resolution"] = serde_json::json!({"width": 640, "height": 480});
    let id = submit(&node, &body).await;
    let job = node.wait_final(&key, &id, Duration::from_secs(120)).await;
    println!("full disk: {}", job["error"]["message"]);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["credits_refunded"], 4, "{job}");
        assert!(
            !served_video(&data_dir, &id).exists(),
            "a partial video is served"
        );
    }));
    let (status, _) = node
        .get(&format!("/static/uploads/video-editor-{id}.mp4"))
        .await;
    let credits = node.credits(&key).await;
    drop(node);
    ledger_matches_balances(&data_dir);
    if mounted {
        unmount(mount.path());
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(status, 404, "the failed job's video is not served");
    assert_eq!(credits, 100, "refunded in full");
}

#[tokio::test]
async fn a_source_server_that_dies_mid_download_fails_the_job_naming_the_clip() {
    let media = tempfile::tempdir().unwrap();
    hostile::small_video(media.path(), "clip.mp4", "160x120", 1);
    let bytes = std::fs::read(media.path().join("clip.mp4")).unwrap();
    let dying = hostile::serve(Behaviour::DiesMidway {
        body: bytes[..bytes.len() / 2].to_vec(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--concurrency", "1", "--allow-private-sources"];
    let node = Node::start(dir.path(), &flags).await;
    let key = node.key(10);
    let id = submit(
        &node,
        &request(&key, &format!("{}/clip.mp4", dying.base), 2.0),
    )
    .await;
    let job = node.wait_final(&key, &id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["field"], "project.clips[0].src", "{job}");
    assert_eq!(job["credits_refunded"], 2, "{job}");
    assert_eq!(node.credits(&key).await, 10);
    assert!(!served_video(dir.path(), &id).exists());
    ledger_matches_balances(dir.path());
}
