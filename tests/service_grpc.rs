//! The gRPC service against a real `render-node serve` process on loopback.

mod service_support;

use std::time::Duration;

use render_node::api::grpc::pb;
use render_node::api::grpc::pb::render_node_client::RenderNodeClient;
use service_support::*;
use tonic::Code;
use tonic::transport::Channel;

async fn client(node: &Node) -> RenderNodeClient<Channel> {
    RenderNodeClient::connect(format!("http://{}", node.grpc))
        .await
        .expect("connect")
}

fn submit(key: &str, src: &str, seconds: f64) -> pb::SubmitRenderRequest {
    pb::SubmitRenderRequest {
        api_key: key.into(),
        format: Some("mp4".into()),
        publish: false,
        project: Some(pb::Project {
            fps: Some(30.0),
            resolution: Some(pb::Resolution {
                width: 320,
                height: 240,
            }),
            clips: vec![pb::Clip {
                src: src.into(),
                r#type: "video".into(),
                duration: seconds,
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn errors_map_to_grpc_codes_and_cancel_refunds() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "0", "--backlog", "1"]).await;
    let key = node.key(100);
    let other = node.key(100);
    let mut rpc = client(&node).await;
    let src = "https://media.example/sample.mp4";

    let mut empty = submit(&key, src, 1.0);
    if let Some(p) = empty.project.as_mut() {
        p.clips.clear();
    }
    let status = rpc.submit_render(empty).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("clips"), "{}", status.message());

    let status = rpc
        .submit_render(submit("rn_nope", src, 1.0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = rpc
        .submit_render(submit(&key, src, 101.0))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );

    let job = rpc
        .submit_render(submit(&key, src, 60.0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (job.status.as_str(), job.credits_charged, job.cost_usd),
        ("queued", 60, 0.6)
    );
    let status = rpc.submit_render(submit(&key, src, 1.0)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "backlog of 1");

    let info = rpc
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.concurrency, info.queue_length), (0, 1));

    let get = |api_key: &str| pb::GetJobRequest {
        job_id: job.job_id.clone(),
        api_key: api_key.into(),
    };
    let status = rpc.get_job(get(&other)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let seen = rpc.get_job(get(&key)).await.unwrap().into_inner();
    assert_eq!((seen.status.as_str(), seen.progress), ("queued", 0));

    let cancel = pb::CancelJobRequest {
        job_id: job.job_id.clone(),
        api_key: key.clone(),
    };
    let done = rpc.cancel_job(cancel.clone()).await.unwrap().into_inner();
    assert_eq!(
        (done.status.as_str(), done.credits_refunded),
        ("cancelled", 60)
    );
    let status = rpc.cancel_job(cancel).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(node.credits(&key).await, 100);

    // Watching a finished job gives its final state and ends.
    let watch = pb::WatchJobRequest {
        job_id: job.job_id.clone(),
        api_key: key.clone(),
    };
    let mut stream = rpc.watch_job(watch).await.unwrap().into_inner();
    let event = stream.message().await.unwrap().expect("one event");
    assert_eq!(event.status, "cancelled");
    assert!(
        stream.message().await.unwrap().is_none(),
        "the stream ends after the final state"
    );
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "0"]).await;
    let url = format!("http://{}", node.grpc);

    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    let request = tonic_health::pb::HealthCheckRequest {
        service: "render_node.v1.RenderNode".into(),
    };
    let answer = health.check(request).await.unwrap().into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers
        .message()
        .await
        .unwrap()
        .expect("a reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "render_node.v1.RenderNode"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
}

/// WatchJob follows a real render to completion. Needs the render pipeline.
#[tokio::test]
async fn watch_follows_a_render_to_completion() {
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
    let mut rpc = client(&node).await;

    let mut request = submit(&key, &format!("{}/sample.mp4", server.base), 4.0);
    if let Some(p) = request.project.as_mut() {
        p.resolution = Some(pb::Resolution {
            width: 1920,
            height: 1080,
        });
        p.audio = Some(pb::BackgroundAudio {
            src: format!("{}/sample-audio.mp3", server.base),
            gain: Some(1.0),
            fade_in: Some(0.5),
            fade_out: Some(0.5),
        });
    }
    let job = rpc.submit_render(request).await.unwrap().into_inner();
    assert_eq!((job.credits_charged, job.cost_usd), (4, 0.04));

    let watch = pb::WatchJobRequest {
        job_id: job.job_id.clone(),
        api_key: key.clone(),
    };
    let mut stream = rpc.watch_job(watch).await.unwrap().into_inner();
    let mut progress = Vec::new();
    let mut last = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while let Some(event) = tokio::time::timeout_at(deadline, stream.message())
        .await
        .unwrap()
        .unwrap()
    {
        progress.push(event.progress);
        last = Some(event);
    }
    let last = last.expect("events");
    assert_eq!(last.status, "completed", "{last:?}");
    assert_eq!(last.progress, 100);
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "never decreasing: {progress:?}"
    );
    assert!(progress.len() > 2, "progress rises in steps: {progress:?}");
    let result = last.result.expect("a result");
    assert_eq!((result.width, result.height), (1920, 1080));
}
