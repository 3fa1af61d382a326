//! The render pipeline end to end on real footage (Big Buck Bunny with 5.1 AAC, bikes
//! without audio, carphone at 29.97 fps; `scripts/fetch-media.sh` fetches them), through
//! the `render-node render` command and through the library for cancellation.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use render_node::project::{Project, resolve};
use render_node::render::{self, CancelToken, RenderError, RenderSettings};

fn media(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/media")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-media.sh",
        path.display()
    );
    path
}

fn ffprobe(path: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One frame at `seconds` as raw yuv420p at `width`x`height`.
fn frame_at(path: &Path, seconds: f64, width: u32, height: u32) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-ss", &format!("{seconds}"), "-frames:v", "1"])
        .args(["-vf", &format!("scale={width}:{height}:flags=bicubic")])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

fn write_project(dir: &Path, json: &str) -> PathBuf {
    let path = dir.join("project.json");
    std::fs::write(&path, json).unwrap();
    path
}

fn demo_style_project() -> String {
    format!(
        r#"{{
        "fps": 30, "resolution": {{"width": 1280, "height": 720}},
        "transition": {{"type": "crossfade", "duration": 0.5}},
        "audio": {{"src": "{speech}", "gain": 0.8, "fadeOut": 0.5}},
        "clips": [
          {{"src": "{bbb}", "type": "video", "duration": 4,
           "audioGainKeyframes": [{{"time": 0, "value": 0.5}}, {{"time": 2, "value": 1.0}}],
           "audioPan": -0.3, "audioPanEnd": 0.3}},
          {{"src": "{bikes}", "type": "video", "duration": 3}},
          {{"src": "{carphone}", "type": "video", "duration": 3}}
        ]}}"#,
        speech = media("speech.wav").display(),
        bbb = media("bigbuckbunny.mp4").display(),
        bikes = media("bikes.mp4").display(),
        carphone = media("carphone_pristine.mp4").display(),
    )
}

#[test]
fn renders_real_footage_frame_exact_with_audio() {
    let dir = tempfile::tempdir().unwrap();
    let project = write_project(dir.path(), &demo_style_project());
    let out = dir.path().join("out.mp4");
    let status = Command::new(env!("CARGO_BIN_EXE_render-node"))
        .arg("render")
        .arg(&project)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());

    // 4 + 3 + 3 s less two 0.5 s crossfades = 9 s = 270 frames at 30 fps.
    let video = ffprobe(
        &out,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,pix_fmt,nb_read_frames,color_space",
            "-of",
            "csv=p=0",
        ],
    );
    assert_eq!(video, "h264,1280,720,yuv420p,bt709,270");
    let audio = ffprobe(
        &out,
        &[
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
        ],
    );
    assert_eq!(audio, "aac,48000,2");

    let duration = |stream: &str| -> f64 {
        ffprobe(
            &out,
            &[
                "-select_streams",
                stream,
                "-show_entries",
                "stream=duration",
                "-of",
                "csv=p=0",
            ],
        )
        .parse()
        .unwrap()
    };
    let (v, a) = (duration("v:0"), duration("a:0"));
    assert!((v - 9.0).abs() < 1e-3, "video lasts {v} s");
    assert!(
        (a - v).abs() <= 1024.0 / 48000.0,
        "audio {a} s vs video {v} s"
    );

    // moov before mdat: the index is at the front (+faststart).
    let bytes = std::fs::read(&out).unwrap();
    let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(find(b"moov") < find(b"mdat"), "moov must come before mdat");

    // The frame at 2.0 s is Big Buck Bunny's frame at 2.0 s (same size, no scaling).
    let ours = frame_at(&out, 2.0, 1280, 720);
    let source = frame_at(&media("bigbuckbunny.mp4"), 2.0, 1280, 720);
    let quality = psnr(&ours, &source);
    assert!(quality >= 30.0, "PSNR at 2.0 s is {quality:.1} dB");

    assert!(
        dir.path().join("out.webp").exists(),
        "the thumbnail is written beside the video"
    );
}

#[test]
fn a_bad_project_exits_2_and_a_broken_source_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_project(dir.path(), r#"{"clips": []}"#);
    let out = dir.path().join("out.mp4");
    let run = |project: &Path| {
        Command::new(env!("CARGO_BIN_EXE_render-node"))
            .arg("render")
            .arg(project)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap()
    };
    let result = run(&bad);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("project.clips"));

    let not_media = dir.path().join("notes.txt");
    std::fs::write(&not_media, "this is not a video").unwrap();
    let broken = write_project(
        dir.path(),
        r#"{"clips": [{"src": "notes.txt", "type": "video", "duration": 1}]}"#,
    );
    let result = run(&broken);
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).contains("project.clips[0].src"));
    assert!(!out.exists(), "a failed render leaves no output");
}

#[test]
fn cancel_stops_within_a_second_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = format!(
        r#"{{"fps": 30, "resolution": {{"width": 1280, "height": 720}},
            "clips": [{{"src": "{}", "type": "video", "duration": 60}}]}}"#,
        media("bigbuckbunny.mp4").display()
    );
    let project: Project = serde_json::from_str(&json).unwrap();
    let timeline = resolve(&project);
    let settings = RenderSettings {
        preset: "ultrafast".into(),
        crf: 23,
        allow_private_sources: true,
        local_base: Some(dir.path().to_path_buf()),
        cache_dir: dir.path().join("cache"),
        fetch_max_bytes: None,
        fetch_timeout: None,
    };
    let out = dir.path().join("long.mp4");
    let thumb = dir.path().join("long.webp");
    let cancel = CancelToken::default();
    let progress = |p: render::Progress| {
        if p.frames_done >= 30 {
            cancel.cancel();
        }
    };
    let started = Instant::now();
    let cancelled_at = std::sync::Mutex::new(None);
    let result = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            while !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            *cancelled_at.lock().unwrap() = Some(Instant::now());
        });
        let result = render::render(&timeline, &out, &thumb, &settings, &progress, &cancel);
        watcher.join().unwrap();
        result
    });
    let stopped = cancelled_at.lock().unwrap().expect("cancelled").elapsed();
    assert!(
        matches!(result, Err(RenderError::Cancelled)),
        "got {result:?}"
    );
    assert!(stopped < Duration::from_secs(1), "took {stopped:?} to stop");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        !out.exists() && !thumb.exists(),
        "a cancelled render leaves no file"
    );
}

#[test]
fn a_failed_render_never_touches_an_existing_output_or_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let render = |project: &Path, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_render-node"))
            .arg("render")
            .arg(project)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };

    // A source that is missing fails the render; the file already at -o survives.
    let precious = dir.path().join("precious.mp4");
    std::fs::write(&precious, "keep me").unwrap();
    let missing = write_project(
        dir.path(),
        r#"{"clips": [{"src": "missing.mp4", "type": "video", "duration": 1}]}"#,
    );
    let result = render(&missing, &precious);
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial file is left behind");

    // -o naming one of the project's own sources, or a folder, is refused up front.
    std::fs::copy(media("carphone_pristine.mp4"), dir.path().join("self.mp4")).unwrap();
    let own = write_project(
        dir.path(),
        r#"{"clips": [{"src": "self.mp4", "type": "video", "duration": 1}]}"#,
    );
    let result = render(&own, &dir.path().join("self.mp4"));
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("is a source of the project"));
    assert_eq!(
        std::fs::metadata(dir.path().join("self.mp4"))
            .unwrap()
            .len(),
        std::fs::metadata(media("carphone_pristine.mp4"))
            .unwrap()
            .len()
    );
    let result = render(&own, dir.path());
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("not a regular file"));
}

#[test]
fn cancel_stops_a_render_waiting_on_a_stalled_download() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Sends the headers and a little of the body, then holds the connection open.
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&[0u8; 1000]);
            std::thread::sleep(Duration::from_secs(20));
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let json = format!(
        r#"{{"resolution": {{"width": 64, "height": 48}},
            "clips": [{{"src": "http://127.0.0.1:{port}/stall", "type": "video",
                        "duration": 1}}]}}"#
    );
    let timeline = resolve(&serde_json::from_str::<Project>(&json).unwrap());
    let settings = RenderSettings {
        preset: "ultrafast".into(),
        crf: 23,
        allow_private_sources: true,
        local_base: None,
        cache_dir: dir.path().join("cache"),
        fetch_max_bytes: None,
        fetch_timeout: None,
    };
    let cancel = CancelToken::default();
    let started = Instant::now();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        });
        let out = dir.path().join("out.mp4");
        render::render(
            &timeline,
            &out,
            &dir.path().join("out.webp"),
            &settings,
            &|_| {},
            &cancel,
        )
    });
    assert!(
        matches!(result, Err(RenderError::Cancelled)),
        "got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
