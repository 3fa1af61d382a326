//! `render-node validate` as a user runs it: the API example prints its length, frames and
//! credits; a bad project exits 2 with every error on its own line.

use std::path::Path;
use std::process::{Command, Output};

fn validate(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_render-node"))
        .arg("validate")
        .arg(path)
        .output()
        .expect("run render-node")
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/api-example.json")
}

#[test]
fn api_example_prints_four_seconds_120_frames_4_credits() {
    let out = validate(&example());
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, "duration: 4.000 s\nframes: 120\ncredits: 4\n");
}

#[test]
fn bare_project_of_the_example_prints_the_same() {
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example()).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.json");
    std::fs::write(&path, serde_json::to_vec(&body["project"]).unwrap()).unwrap();
    let out = validate(&path);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "duration: 4.000 s\nframes: 120\ncredits: 4\n"
    );
}

#[test]
fn bad_project_exits_2_with_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    let bad = r#"{"fps": 30, "resolution": {"width": 1919, "height": 1080}, "clips": [
        {"src": "clips/a.mp4", "type": "video", "duration": 2},
        {"src": "ftp://x.example/b.mp4", "type": "video", "duration": -1, "audioPan": 3}
    ]}"#;
    std::fs::write(&path, bad).unwrap();
    let out = validate(&path);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let fields: Vec<&str> = stderr
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "project.resolution.width",
            "project.clips[1].src",
            "project.clips[1].duration",
            "project.clips[1].audioPan",
        ],
        "{stderr}"
    );
    assert!(stderr.contains("project.clips[1].duration: must be > 0 seconds, got -1"));
}

#[test]
fn unreadable_file_and_bad_json_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = validate(&dir.path().join("missing.json"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read")
    );

    let path = dir.path().join("typo.json");
    std::fs::write(
        &path,
        r#"{"clips": [{"src": "a.mp4", "type": "video", "duration": 1, "audioGian": 1}]}"#,
    )
    .unwrap();
    let out = validate(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("project.clips[0].audioGian: unknown field"),
        "{stderr}"
    );

    std::fs::write(&path, "{not json").unwrap();
    let out = validate(&path);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("body: not valid JSON")
    );
}
