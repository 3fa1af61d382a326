//! Request limits over HTTP and gRPC: each broken body is answered 4xx naming the field,
//! before any work, and charges nothing.

use render_node::api::grpc::pb;
use render_node::api::grpc::pb::render_node_client::RenderNodeClient;
use serde_json::{Value, json};
use tonic::Code;

use crate::service_support::*;

const RENDER: &str = "/api/video-editor/render";
const SRC: &str = "https://media.example/a.mp4";

fn clip(seconds: f64) -> Value {
    json!({"src": SRC, "type": "video", "duration": seconds})
}

/// `request` with `edit` applied to its JSON.
fn edited(key: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = request(key, SRC, 1.0);
    edit(&mut body);
    serde_json::to_vec(&body).expect("json")
}

/// Replaces the body's `"clips":[]` with clips nested 10,000 arrays deep.
trait PipeDeep {
    fn pipe_deep(self) -> Vec<u8>;
}

impl PipeDeep for Vec<u8> {
    fn pipe_deep(self) -> Vec<u8> {
        let text = String::from_utf8(self).unwrap_or_default();
        let deep = format!("\"clips\":{}{}", "[".repeat(10_000), "]".repeat(10_000));
        text.replace("\"clips\":[]", &deep).into_bytes()
    }
}

#[tokio::test]
async fn every_broken_body_is_a_400_naming_its_field_and_charges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "0"]).await;
    let key = node.key(100);

    let keyframes: Vec<Value> = (0..1001)
        .map(|i| json!({"time": f64::from(i) * 0.0009, "value": 1.0}))
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"{\"api_key\": ".to_vec(), "body"),
        ("an array", b"[1, 2, 3]".to_vec(), "body"),
        ("a number", b"42".to_vec(), "body"),
        ("a string", b"\"render\"".to_vec(), "body"),
        ("empty", Vec::new(), "body"),
        (
            "not UTF-8",
            {
                let mut b = edited(&key, |_| {});
                let at = b.iter().position(|&c| c == b'h').unwrap_or(0);
                b[at] = 0xff;
                b
            },
            "body",
        ),
        (
            "duration as a string",
            edited(&key, |b| b["project"]["clips"][0]["duration"] = json!("4")),
            "project.clips[0].duration",
        ),
        (
            "fps as a string",
            edited(&key, |b| b["project"]["fps"] = json!("fast")),
            "project.fps",
        ),
        (
            "clips as an object",
            edited(&key, |b| b["project"]["clips"] = json!({"0": clip(1.0)})),
            "project.clips",
        ),
        (
            "api_key as a number",
            edited(&key, |b| b["api_key"] = json!(12345)),
            "api_key",
        ),
        (
            "width as a float",
            edited(&key, |b| b["project"]["resolution"]["width"] = json!(320.5)),
            "project.resolution.width",
        ),
        (
            "src over 4096 characters",
            edited(&key, |b| {
                let long = format!("https://media.example/{}.mp4", "a".repeat(5000));
                b["project"]["clips"][0]["src"] = json!(long);
            }),
            "project.clips[0].src",
        ),
        (
            "a 1 MiB api_key",
            edited(&key, |b| b["api_key"] = json!("k".repeat(1 << 20))),
            "api_key",
        ),
        (
            "1001 clips",
            edited(&key, |b| {
                b["project"]["clips"] = json!(vec![clip(0.1); 1001]);
            }),
            "project.clips",
        ),
        (
            "1001 gain keyframes",
            edited(&key, |b| {
                b["project"]["clips"][0]["audioGainKeyframes"] = json!(keyframes)
            }),
            "project.clips[0].audioGainKeyframes",
        ),
        (
            "width over 7680",
            edited(&key, |b| b["project"]["resolution"]["width"] = json!(7682)),
            "project.resolution.width",
        ),
        (
            "odd height",
            edited(&key, |b| b["project"]["resolution"]["height"] = json!(241)),
            "project.resolution.height",
        ),
        (
            "negative width",
            edited(&key, |b| b["project"]["resolution"]["width"] = json!(-320)),
            "project.resolution.width",
        ),
        (
            "fps 0",
            edited(&key, |b| b["project"]["fps"] = json!(0)),
            "project.fps",
        ),
        (
            "fps 121",
            edited(&key, |b| b["project"]["fps"] = json!(121)),
            "project.fps",
        ),
        (
            "a clip over 3 h",
            edited(&key, |b| {
                b["project"]["clips"][0]["duration"] = json!(10_801)
            }),
            "project.clips[0].duration",
        ),
        (
            "an output over 3 h",
            edited(&key, |b| {
                b["project"]["clips"] = json!(vec![clip(3600.0); 4])
            }),
            "project.clips",
        ),
        (
            "a duration of 1e308",
            edited(&key, |b| {
                b["project"]["clips"][0]["duration"] = json!(1e308)
            }),
            "project.clips[0].duration",
        ),
        (
            "a file: source",
            edited(&key, |b| {
                b["project"]["clips"][0]["src"] = json!("file:///etc/passwd")
            }),
            "project.clips[0].src",
        ),
        (
            "an ftp: source",
            edited(&key, |b| {
                b["project"]["clips"][0]["src"] = json!("ftp://127.0.0.1/a.mp4")
            }),
            "project.clips[0].src",
        ),
        (
            "a gopher: source",
            edited(&key, |b| {
                b["project"]["clips"][0]["src"] = json!("gopher://127.0.0.1:70/_a");
            }),
            "project.clips[0].src",
        ),
        (
            "a local path",
            edited(&key, |b| {
                b["project"]["clips"][0]["src"] = json!("/etc/passwd")
            }),
            "project.clips[0].src",
        ),
        (
            "a 1 MiB string as a duration",
            edited(&key, |b| {
                b["project"]["clips"][0]["duration"] = json!("9".repeat(1 << 20))
            }),
            "project.clips[0].duration",
        ),
        (
            "an unknown field with a 100 KiB name",
            edited(&key, |b| b["project"]["x".repeat(100 << 10)] = json!(1)),
            "project.xxxx*",
        ),
        (
            "a 1 MiB fit",
            edited(&key, |b| {
                b["project"]["clips"][0]["fit"] = json!("f".repeat(1 << 20))
            }),
            "project.clips[0].fit",
        ),
        (
            "a 1 MiB background",
            edited(&key, |b| {
                b["project"]["background"] = json!("#".repeat(1 << 20))
            }),
            "project.background",
        ),
        (
            "nesting 10000 deep",
            edited(&key, |b| b["project"]["clips"] = json!([])).pipe_deep(),
            "project.clips[0]*",
        ),
        (
            "format webm",
            edited(&key, |b| b["format"] = json!("webm")),
            "format",
        ),
    ];
    for (what, body, field) in cases {
        let (status, answer) = node.post_bytes(RENDER, body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        let got = answer["error"]["field"].as_str().unwrap_or_default();
        // `path*`: the field starts with `path`.
        let matches = match field.strip_suffix('*') {
            Some(prefix) => got.starts_with(prefix),
            None => got == field,
        };
        assert!(
            matches && got.len() < 300,
            "{what}: field {got:?}, expected {field:?}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && message.len() < 2000,
            "{what}: {message}"
        );
    }
    assert_eq!(node.credits(&key).await, 100, "nothing was charged");

    // The same long key on the other endpoints: refused, never looked up.
    let long = "k".repeat(4096);
    let (status, answer) = node.get(&format!("/api/account?api_key={long}")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "api_key", "{answer}");
    ledger_matches_balances(dir.path());
}

#[tokio::test]
async fn grpc_refuses_a_huge_key_and_too_many_clips_and_charges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "0"]).await;
    let key = node.key(100);
    let mut rpc = RenderNodeClient::connect(format!("http://{}", node.grpc))
        .await
        .expect("connect");
    let message = |api_key: &str, clips: usize| pb::SubmitRenderRequest {
        api_key: api_key.into(),
        format: Some("mp4".into()),
        publish: false,
        project: Some(pb::Project {
            fps: Some(30.0),
            resolution: Some(pb::Resolution {
                width: 320,
                height: 240,
            }),
            clips: vec![
                pb::Clip {
                    src: SRC.into(),
                    r#type: "video".into(),
                    duration: 0.1,
                    ..Default::default()
                };
                clips
            ],
            ..Default::default()
        }),
    };

    let status = rpc
        .submit_render(message(&"k".repeat(1 << 20), 1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("api_key"), "{}", status.message());

    let status = rpc.submit_render(message(&key, 1001)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("project.clips"),
        "{}",
        status.message()
    );

    let mut wide = message(&key, 1);
    if let Some(p) = wide.project.as_mut() {
        p.resolution = Some(pb::Resolution {
            width: 1 << 40,
            height: 240,
        });
    }
    let status = rpc.submit_render(wide).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("resolution.width"),
        "{}",
        status.message()
    );

    assert_eq!(node.credits(&key).await, 100, "nothing was charged");
    ledger_matches_balances(dir.path());
}

#[tokio::test]
async fn an_unknown_job_id_is_not_echoed_back_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--concurrency", "0"]).await;
    let key = node.key(1);
    let id = "j".repeat(6000);
    for (status, answer) in [
        node.get(&format!("{RENDER}/status/{id}?api_key={key}"))
            .await,
        node.post(&format!("{RENDER}/cancel/{id}?api_key={key}"), &json!({}))
            .await,
    ] {
        assert_eq!(status, 404, "{answer}");
        assert_eq!(answer["error"]["field"], "job_id");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.len() < 200, "a message of {} bytes", message.len());
    }
    let mut rpc = RenderNodeClient::connect(format!("http://{}", node.grpc))
        .await
        .expect("connect");
    let status = rpc
        .get_job(pb::GetJobRequest {
            job_id: "j".repeat(1 << 20),
            api_key: key.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status.message().len() < 200,
        "{} bytes",
        status.message().len()
    );
}
