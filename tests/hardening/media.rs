//! Media that attacks, from loopback servers (the node runs with
//! `--allow-private-sources`, a 1 MiB fetch cap and a 3 s fetch timeout): each attack
//! fails its job naming the clip, refunded, and the node keeps serving.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::hostile::{self, Behaviour};
use crate::service_support::*;

const RENDER: &str = "/api/video-editor/render";

const FLAGS: [&str; 11] = [
    "--concurrency",
    "2",
    "--allow-private-sources",
    "--preset",
    "ultrafast",
    "--fetch-max-bytes",
    "1048576",
    "--fetch-timeout",
    "3",
    "--backlog",
    "64",
];

fn image_request(key: &str, src: &str) -> Value {
    let mut body = request(key, src, 1.0);
    body["project"]["clips"][0]["type"] = json!("image");
    body
}

async fn submit(node: &Node, body: &Value) -> String {
    let (status, answer) = node.post(RENDER, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["job_id"].as_str().unwrap_or_default().to_string()
}

/// Waits for a job and checks it failed naming its first clip, refunded in full.
async fn assert_failed(node: &Node, key: &str, id: &str, what: &str, says: &str) -> Value {
    let job = node.wait_final(key, id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{what}: {job}");
    assert_eq!(
        job["error"]["field"], "project.clips[0].src",
        "{what}: {job}"
    );
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{what}: {message:?} lacks {says:?}");
    assert_eq!(
        job["credits_refunded"], job["credits_charged"],
        "{what}: {job}"
    );
    job
}

/// Overwrites the 32-bit duration of every `mvhd`, `tkhd` and `mdhd` box (version 0) with
/// `u32::MAX`: the file then claims a duration of days and a frame count to match.
fn claim_forever(mp4: &mut [u8]) -> usize {
    let mut patched = 0;
    for (name, offset) in [(b"mvhd", 16), (b"tkhd", 20), (b"mdhd", 16)] {
        let mut from = 0;
        while let Some(at) = mp4[from..].windows(4).position(|w| w == name) {
            let box_start = from + at + 4;
            let field = box_start + offset;
            if mp4.get(box_start) == Some(&0) && field + 4 <= mp4.len() {
                mp4[field..field + 4].copy_from_slice(&u32::MAX.to_be_bytes());
                patched += 1;
            }
            from = box_start;
        }
    }
    patched
}

#[tokio::test]
async fn attacks_fail_naming_the_clip_refunded_and_the_node_keeps_serving() {
    let media = tempfile::tempdir().unwrap();
    hostile::small_video(media.path(), "good.mp4", "160x120", 1);
    std::fs::write(
        media.path().join("bomb.png"),
        hostile::png_bomb(20_000, 12_000),
    )
    .unwrap();
    std::fs::write(
        media.path().join("bomb-wide.png"),
        hostile::png_bomb(30_000, 30_000),
    )
    .unwrap();
    let mut forever = std::fs::read(media.path().join("good.mp4")).unwrap();
    assert!(claim_forever(&mut forever) >= 3, "the MP4 boxes were found");
    std::fs::write(media.path().join("forever.mp4"), &forever).unwrap();
    let files = media_server(media.path()).await;
    let endless = hostile::serve(Behaviour::Forever).await;
    let trickle = hostile::serve(Behaviour::Trickle {
        length: 500_000,
        every: Duration::from_millis(100),
    })
    .await;
    let good = std::fs::read(media.path().join("good.mp4")).unwrap();
    let changing = hostile::serve(Behaviour::Changing {
        bodies: vec![good.clone(), hostile::png_bomb(20_000, 12_000)],
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &FLAGS).await;
    let key = node.key(100);
    let started = Instant::now();

    let bomb = submit(
        &node,
        &image_request(&key, &format!("{}/bomb.png", files.base)),
    )
    .await;
    let wide = submit(
        &node,
        &image_request(&key, &format!("{}/bomb-wide.png", files.base)),
    )
    .await;
    let bomb_as_video = submit(
        &node,
        &request(&key, &format!("{}/bomb.png", files.base), 1.0),
    )
    .await;
    let endless_job = submit(
        &node,
        &request(&key, &format!("{}/a.mp4", endless.base), 1.0),
    )
    .await;
    let trickle_job = submit(
        &node,
        &request(&key, &format!("{}/a.mp4", trickle.base), 1.0),
    )
    .await;
    let forever_job = submit(
        &node,
        &request(&key, &format!("{}/forever.mp4", files.base), 1.0),
    )
    .await;
    let changing_job = submit(
        &node,
        &request(&key, &format!("{}/c.mp4", changing.base), 1.0),
    )
    .await;

    assert_failed(&node, &key, &bomb, "PNG bomb", "8192x8192").await;
    assert_failed(&node, &key, &wide, "30000x30000 PNG", "8192x8192").await;
    assert_failed(
        &node,
        &key,
        &bomb_as_video,
        "PNG bomb as video",
        "8192x8192",
    )
    .await;
    assert_failed(
        &node,
        &key,
        &endless_job,
        "endless body",
        "past the limit of 1048576 bytes",
    )
    .await;
    assert_failed(&node, &key, &trickle_job, "trickled body", "timed out").await;
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the attacks took {:?}",
        started.elapsed()
    );

    // A file claiming a duration of days: only the second the clip needs is decoded.
    let job = node
        .wait_final(&key, &forever_job, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    let video = dir
        .path()
        .join("uploads")
        .join(format!("video-editor-{forever_job}.mp4"));
    assert_eq!(
        hostile::ffprobe_frames(&video),
        Some(30),
        "{}",
        video.display()
    );

    // The source changes after the first fetch: the job renders the bytes it fetched (one
    // fetch, probed and decoded from the same cached file), never a mix.
    let job = node
        .wait_final(&key, &changing_job, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(changing.count(), 1, "one fetch for probe and decode");
    let video = dir
        .path()
        .join("uploads")
        .join(format!("video-editor-{changing_job}.mp4"));
    assert_eq!(hostile::ffprobe_frames(&video), Some(30));

    // The node still serves: a good job after the attacks completes.
    let after = submit(
        &node,
        &request(&key, &format!("{}/good.mp4", files.base), 1.0),
    )
    .await;
    let job = node.wait_final(&key, &after, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        node.credits(&key).await,
        100 - 3,
        "only the completed jobs are charged"
    );
    ledger_matches_balances(dir.path());
}
