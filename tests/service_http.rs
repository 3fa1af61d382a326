//! The HTTP API of API.md against a real `render-node serve` process on loopback.

mod service_support;

use std::time::Duration;

use serde_json::json;
use service_support::*;

const RENDER: &str = "/api/video-editor/render";

#[tokio::test]
async fn refusals_have_their_status_and_field_and_charge_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // No render slot: every accepted job stays queued, so the backlog fills.
    let node = Node::start(dir.path(), &["--concurrency", "0", "--backlog", "2"]).await;
    let alice = node.key(100);
    let bob = node.key(100);
    let poor = node.key(10);
    let src = "https://media.example/sample.mp4";

    let mut empty = request(&alice, src, 1.0);
    empty["project"]["clips"] = json!([]);
    let (status, body) = node.post(RENDER, &empty).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "project.clips", "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    let (status, body) = node.post_bytes(RENDER, b"{not json".to_vec()).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = node.post(RENDER, &request("rn_wrong", src, 1.0)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["field"], "api_key");

    let (status, body) = node.post(RENDER, &request(&poor, src, 60.0)).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(node.credits(&poor).await, 10, "a 402 charges nothing");

    let (status, body) = post_oversized(&node, 3 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"field\":\"body\""), "{body}");

    let (status, first) = node.post(RENDER, &request(&alice, src, 60.0)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "queued");
    assert_eq!(first["credits_charged"], 60);
    assert_eq!(first["cost_usd"], 0.6);
    let job_id = first["job_id"].as_str().unwrap();
    assert!(job_id.starts_with("job_"), "{job_id}");
    assert_eq!(first["status_url"], format!("{RENDER}/status/{job_id}"));
    assert_eq!(node.credits(&alice).await, 40);

    let (status, body) = node
        .get(&format!("{RENDER}/status/{job_id}?api_key={bob}"))
        .await;
    assert_eq!(status, 404, "another user's job is unknown: {body}");
    let (status, _) = node
        .post(
            &format!("{RENDER}/cancel/{job_id}?api_key={bob}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = node.get(&format!("{RENDER}/status/{job_id}")).await;
    assert_eq!(status, 401, "no key");

    let (status, _) = node.post(RENDER, &request(&alice, src, 1.0)).await;
    assert_eq!(status, 200);
    let (status, body) = node.post(RENDER, &request(&alice, src, 1.0)).await;
    assert_eq!(status, 429, "backlog of 2 is full: {body}");
    assert_eq!(node.credits(&alice).await, 39, "a 429 charges nothing");

    let (status, metrics) = node.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("render_node_jobs{state=\"queued\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("render_node_queue_length 2"), "{metrics}");

    let cancel = format!("{RENDER}/cancel/{job_id}?api_key={alice}");
    let (status, body) = node.post(&cancel, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"job_id": job_id, "status": "cancelled", "credits_refunded": 60})
    );
    assert_eq!(node.credits(&alice).await, 99);
    let (status, body) = node.post(&cancel, &json!({})).await;
    assert_eq!(status, 409, "{body}");
    let job = node.job(&alice, job_id).await;
    assert_eq!(job["status"], "cancelled");

    let (status, gallery) = node.get("/api/video-editor/gallery").await;
    assert_eq!(status, 200);
    assert_eq!(gallery["renders"], json!([]));
    ledger_matches_balances(&node.data_dir);
}

#[tokio::test]
async fn kill_9_and_restart_keep_every_job_and_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    // An empty loopback server: every source is a 404, so a job that runs fails.
    let server = media_server(media.path()).await;
    let src = format!("{}/missing.mp4", server.base);
    let flags = ["--concurrency", "0", "--allow-private-sources"];
    let mut node = Node::start(dir.path(), &flags).await;
    let key = node.key(50);

    let mut ids = Vec::new();
    for seconds in [3.0, 5.0, 7.0] {
        let (status, body) = node.post(RENDER, &request(&key, &src, seconds)).await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["job_id"].as_str().unwrap().to_string());
    }
    let cancel = format!("{RENDER}/cancel/{}?api_key={key}", ids[1]);
    assert_eq!(node.post(&cancel, &json!({})).await.0, 200);
    assert_eq!(node.credits(&key).await, 40);
    node.kill9();

    let node = Node::start(dir.path(), &flags).await;
    let statuses: Vec<String> = futures::future::join_all(ids.iter().map(|id| node.job(&key, id)))
        .await
        .iter()
        .map(|j| j["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(statuses, ["queued", "cancelled", "queued"]);
    assert_eq!(node.credits(&key).await, 40);
    ledger_matches_balances(dir.path());
    drop(node);

    // With a render slot the two queued jobs run; their source is gone, so each fails and
    // is refunded in full.
    let node = Node::start(
        dir.path(),
        &["--concurrency", "1", "--allow-private-sources"],
    )
    .await;
    for id in [&ids[0], &ids[2]] {
        let job = node.wait_final(&key, id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert!(job["error"]["message"].is_string(), "{job}");
    }
    assert_eq!(node.credits(&key).await, 50);
    ledger_matches_balances(dir.path());
}

// Two threads: the gRPC client must keep its connection alive while the test waits for
// the node to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_node_and_keeps_queued_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--concurrency", "0"]).await;
    let key = node.key(10);
    let (status, body) = node
        .post(RENDER, &request(&key, "https://media.example/a.mp4", 2.0))
        .await;
    assert_eq!(status, 200, "{body}");

    // An open WatchJob stream must not hold the node open.
    use render_node::api::grpc::pb;
    let url = format!("http://{}", node.grpc);
    let mut rpc = pb::render_node_client::RenderNodeClient::connect(url)
        .await
        .unwrap();
    let watch = pb::WatchJobRequest {
        job_id: body["job_id"].as_str().unwrap().into(),
        api_key: key.clone(),
    };
    let mut events = rpc.watch_job(watch).await.unwrap().into_inner();
    assert_eq!(events.message().await.unwrap().unwrap().status, "queued");

    let status = node.terminate();
    assert!(status.success(), "exit status {status}");
    let end = events.message().await;
    assert!(
        matches!(&end, Err(s) if s.code() == tonic::Code::Unavailable),
        "the stream ends with UNAVAILABLE: {end:?}"
    );

    let node = Node::start(dir.path(), &["--concurrency", "0"]).await;
    let job = node.job(&key, body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "queued");
    assert_eq!(node.credits(&key).await, 8);
}

/// Announces a body of `length` bytes, sends only its start, and reads the answer: the
/// node must refuse it from the header, before reading it.
async fn post_oversized(node: &Node, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(node.http).await.unwrap();
    let head = format!(
        "POST {RENDER} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n{{\"api_key\": \"",
        node.http
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Read the answer as it comes: the rest of the body is never sent, so the connection
    // stays open.
    let mut answer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while !(answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}")) {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer before the body");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// The API.md example end to end. Needs the render pipeline.
#[tokio::test]
async fn the_api_example_renders_and_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    make_example_media(media.path());
    let server = media_server(media.path()).await;
    let node = Node::start(
        dir.path(),
        &["--concurrency", "1", "--allow-private-sources"],
    )
    .await;
    let key = node.key(10);

    let (status, body) = node.post(RENDER, &api_example(&key, &server.base)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credits_charged"], 4);
    assert_eq!(body["cost_usd"], 0.04);
    let job_id = body["job_id"].as_str().unwrap();
    let job = node
        .wait_final(&key, job_id, Duration::from_secs(300))
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["progress"], 100);
    assert_eq!(job["result"]["width"], 1920);
    assert_eq!(job["result"]["height"], 1080);
    assert_eq!(job["result"]["format"], "mp4");
    assert_eq!(job["result"]["published"], false);
    assert_eq!(node.credits(&key).await, 6);

    let video_url = job["result"]["video_url"].as_str().unwrap();
    assert_eq!(
        video_url,
        node.url(&format!("/static/uploads/video-editor-{job_id}.mp4"))
    );
    let video = node.client.get(video_url).send().await.unwrap();
    assert_eq!(video.status(), 200);
    let path = media.path().join("out.mp4");
    std::fs::write(&path, video.bytes().await.unwrap()).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=codec_type,width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let streams = probe["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert_eq!(video["nb_read_frames"], "120");
    assert!(
        streams.iter().any(|s| s["codec_type"] == "audio"),
        "{probe}"
    );

    // Range requests let a browser seek.
    let ranged = node
        .client
        .get(video_url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap().len(), 100);

    let thumb = node
        .client
        .get(job["result"]["thumbnail_url"].as_str().unwrap());
    let thumb = thumb.send().await.unwrap().bytes().await.unwrap();
    assert!(thumb.len() > 12 && &thumb[..4] == b"RIFF" && &thumb[8..12] == b"WEBP");
    ledger_matches_balances(dir.path());
}

#[tokio::test]
async fn a_flood_of_submissions_is_answered_and_charged_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "0", "--backlog", "64"]).await;
    let key = node.key(1000);
    let body = request(&key, "https://media.example/a.mp4", 1.0);

    let answers = futures::future::join_all((0..200).map(|_| node.post(RENDER, &body))).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!((accepted, refused), (64, 136), "every answer is 200 or 429");
    assert_eq!(node.credits(&key).await, 1000 - 64);
    ledger_matches_balances(dir.path());
}

/// kill -9 while the render runs (with the pipeline in place; before it lands the job
/// fails at once and the kill lands after): after a restart the job ends completed and
/// charged, or failed and refunded, and the ledger is exact either way.
#[tokio::test]
async fn kill_9_during_a_render_ends_completed_or_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    make_example_media(media.path());
    let server = media_server(media.path()).await;
    let flags = [
        "--concurrency",
        "1",
        "--allow-private-sources",
        "--preset",
        "ultrafast",
    ];
    let mut node = Node::start(dir.path(), &flags).await;
    let key = node.key(10);

    let (status, body) = node.post(RENDER, &api_example(&key, &server.base)).await;
    assert_eq!(status, 200, "{body}");
    let job_id = body["job_id"].as_str().unwrap().to_string();
    for _ in 0..200 {
        if node.job(&key, &job_id).await["status"] != "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill9();

    let node = Node::start(dir.path(), &flags).await;
    let job = node
        .wait_final(&key, &job_id, Duration::from_secs(300))
        .await;
    let expected = match job["status"].as_str() {
        Some("completed") => 6,
        Some("failed") => 10,
        other => panic!("unexpected final state {other:?}: {job}"),
    };
    assert_eq!(node.credits(&key).await, expected, "{job}");
    ledger_matches_balances(dir.path());
}
