//! The render's parts on their own: decode throughput per real source (frames per second
//! through `VideoDecoder::frame_at`, one source frame per call), and the schedule of a
//! 1,000-clip project (validation, placement and every frame's layers).
//!
//! `cargo bench --bench parts`; the real footage comes from `scripts/fetch-media.sh`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use render_node::media::{self, VideoDecoder};
use render_node::project::{self, ValidateOptions};

/// Source frames decoded per iteration.
const FRAMES: u64 = 60;

fn decode(c: &mut Criterion) {
    media::init();
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(FRAMES));
    for (name, fps) in [
        ("bigbuckbunny.mp4", 25.0),
        ("bikes.mp4", 25.0),
        ("carphone_pristine.mp4", 29.97),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/media")
            .join(name);
        if !path.exists() {
            panic!("{} is missing: run scripts/fetch-media.sh", path.display());
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut decoder = VideoDecoder::open(&path, "bench", 0.0).expect("opens");
                for n in 0..FRAMES {
                    black_box(decoder.frame_at(n as f64 / fps).expect("decodes"));
                }
            })
        });
    }
    group.finish();
}

fn schedule(c: &mut Criterion) {
    let clips: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"src": "https://media.example/{i}.mp4", "type": "video", "duration": 2.345,
                    "audioGainKeyframes": [{{"time": 0, "value": 0.5}},
                                           {{"time": 1, "value": 1, "ease": "ease-in"}}]}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"fps": 29.97, "transition": {{"type": "crossfade", "duration": 0.5}},
            "clips": [{}]}}"#,
        clips.join(",")
    );
    let options = ValidateOptions {
        allow_local_paths: false,
    };
    let mut group = c.benchmark_group("schedule");
    group.sample_size(10);
    group.bench_function("validate_1000_clips", |b| {
        b.iter(|| project::parse_and_validate_document(black_box(json.as_bytes()), &options))
    });
    let timeline =
        project::parse_and_validate_document(json.as_bytes(), &options).expect("valid project");
    group.throughput(Throughput::Elements(timeline.frame_count));
    group.bench_function("every_frame_of_1000_clips", |b| {
        b.iter(|| {
            for n in 0..timeline.frame_count {
                black_box(timeline.frame(n));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode, schedule);
criterion_main!(benches);
