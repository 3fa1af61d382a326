//! The whole service path of a render that completes — submit, watch, status, download
//! with ranges, gallery, balance — with the node served in-process and a stand-in renderer
//! in place of the pipeline, so it runs before and independently of the real render.

mod service_support;

use std::sync::Arc;
use std::time::Duration;

use render_node::api::grpc::pb;
use render_node::api::grpc::pb::render_node_client::RenderNodeClient;
use render_node::api::{self, ServeConfig};
use render_node::jobs::{RenderFn, Store};
use render_node::render::{Progress, RenderError, RenderOutput, Stage};
use service_support::*;

/// Reports every frame (2 ms apart), then writes a 4096-byte "video" and a WebP header.
fn stand_in() -> RenderFn {
    Arc::new(|timeline, video, thumbnail, _settings, progress, cancel| {
        for frame in 0..=timeline.frame_count {
            if cancel.is_cancelled() {
                return Err(RenderError::Cancelled);
            }
            progress(Progress {
                stage: Stage::Rendering,
                frames_done: frame,
                frames_total: timeline.frame_count,
                eta: None,
            });
            std::thread::sleep(Duration::from_millis(2));
        }
        let bytes: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        std::fs::write(video, bytes).map_err(|e| RenderError::Internal(e.to_string()))?;
        std::fs::write(thumbnail, b"RIFF\0\0\0\0WEBPVP8 ")
            .map_err(|e| RenderError::Internal(e.to_string()))?;
        Ok(RenderOutput {
            video: video.to_path_buf(),
            thumbnail: thumbnail.to_path_buf(),
            frames: timeline.frame_count,
            duration_seconds: timeline.duration(),
            width: timeline.width,
            height: timeline.height,
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_render_is_reported_served_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = Store::open(dir.path()).unwrap().create_account(10).unwrap();
    let (http, grpc) = (free_addr(), free_addr());
    let public_url = format!("http://{http}/");
    let config = ServeConfig {
        http,
        grpc,
        data_dir: dir.path().to_path_buf(),
        public_url: Some(public_url.clone()),
        concurrency: 1,
        backlog: 4,
        allow_private_sources: false,
        fetch_max_bytes: None,
        fetch_timeout: None,
        preset: "ultrafast".into(),
        crf: 23,
        adapter: "stand-in".into(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve_with(config, stand_in(), async {
        let _ = stopped.await;
    }));
    let node = Client::new(http, grpc).await;

    let mut body = api_example(&key, "https://media.example");
    body["publish"] = true.into();
    let (status, submitted) = node.post("/api/video-editor/render", &body).await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(
        (
            submitted["credits_charged"].as_u64(),
            submitted["cost_usd"].as_f64()
        ),
        (Some(4), Some(0.04))
    );
    let job_id = submitted["job_id"].as_str().unwrap().to_string();

    // gRPC WatchJob: progress rises, never falls, and the stream ends at completion.
    let mut rpc = RenderNodeClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let watch = pb::WatchJobRequest {
        job_id: job_id.clone(),
        api_key: key.clone(),
    };
    let mut events = rpc.watch_job(watch).await.unwrap().into_inner();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), events.message())
        .await
        .expect("an event within 30 s")
        .unwrap()
    {
        seen.push(event);
    }
    let progress: Vec<u32> = seen.iter().map(|e| e.progress).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.len() > 3, "progress in steps: {progress:?}");
    let last = seen.last().unwrap();
    assert_eq!((last.status.as_str(), last.progress), ("completed", 100));

    let job = node.job(&key, &job_id).await;
    let video_url = format!("{public_url}static/uploads/video-editor-{job_id}.mp4");
    let thumb_url = format!("{public_url}static/uploads/video-editor-thumb-{job_id}.webp");
    let expected = serde_json::json!({
        "job_id": job_id, "status": "completed", "progress": 100,
        "credits_charged": 4, "cost_usd": 0.04,
        "result": {"video_url": video_url, "thumbnail_url": thumb_url,
                   "duration_seconds": 4, "width": 1920, "height": 1080,
                   "format": "mp4", "published": true}});
    assert_eq!(job, expected);
    assert_eq!(node.credits(&key).await, 6);

    let ranged = node
        .client
        .get(&video_url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    let bytes = ranged.bytes().await.unwrap();
    assert_eq!(
        bytes.to_vec(),
        (100..200u32).map(|i| i as u8).collect::<Vec<_>>()
    );
    let thumb = node
        .client
        .get(&thumb_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&thumb[8..12], b"WEBP");

    let (_, gallery) = node.get("/api/video-editor/gallery").await;
    assert_eq!(gallery["renders"][0]["job_id"], job_id.as_str());
    let (_, metrics) = node.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(metrics.contains("render_node_renders_total 1"), "{metrics}");
    assert!(
        metrics.contains("render_node_frames_total 120"),
        "{metrics}"
    );
    let info = rpc
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.adapter.as_str(), info.concurrency), ("stand-in", 1));

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    ledger_matches_balances(dir.path());
}
