//! The private-address guard through the service: with private sources disabled (the
//! default), a job whose source is on loopback however it is spelled fails naming the
//! clip, is refunded in full, and the loopback server never sees a request.

use std::time::Duration;

use crate::service_support::*;

const RENDER: &str = "/api/video-editor/render";

#[tokio::test]
async fn loopback_sources_fail_refunded_without_a_single_request() {
    let media = tempfile::tempdir().unwrap();
    crate::hostile::small_video(media.path(), "x.mp4", "160x120", 1);
    let server = media_server(media.path()).await;
    let port = server
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("port");
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "2"]).await;
    let key = node.key(100);

    let spellings = [
        format!("http://127.1:{port}/x.mp4"),
        format!("http://2130706433:{port}/x.mp4"),
        format!("http://0x7f000001:{port}/x.mp4"),
        format!("http://[::1]:{port}/x.mp4"),
        format!("http://[::ffff:127.0.0.1]:{port}/x.mp4"),
        format!("http://localhost:{port}/x.mp4"),
        format!("http://LOCALHOST.:{port}/x.mp4"),
        format!("http://0.0.0.0:{port}/x.mp4"),
        format!("http://017700000001:{port}/x.mp4"),
        format!("http://user@127.0.0.1:{port}/x.mp4"),
    ];
    let mut jobs = Vec::new();
    for src in &spellings {
        let (status, body) = node.post(RENDER, &request(&key, src, 2.0)).await;
        assert_eq!(status, 200, "{src}: {body}");
        jobs.push((src, body["job_id"].as_str().unwrap_or_default().to_string()));
    }
    for (src, id) in &jobs {
        let job = node.wait_final(&key, id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "failed", "{src}: {job}");
        assert_eq!(
            job["error"]["field"], "project.clips[0].src",
            "{src}: {job}"
        );
        assert_eq!(job["credits_refunded"], 2, "{src}: {job}");
    }
    assert_eq!(node.credits(&key).await, 100, "every job refunded in full");
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the loopback server was never contacted"
    );
    ledger_matches_balances(dir.path());
}
