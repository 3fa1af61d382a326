//! 1080p frames per second through upload → composite (two clips crossfading) → BT.709
//! 4:2:0 out → readback, with the ring of staging buffers and with a ring of one.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use render_node::gpu::{Compositor, Fit, GpuContext, LayerInput};
use render_node::media::frame::{Matrix, PixelLayout, Plane, Range, Rotation, VideoFrame};

const W: u32 = 1920;
const H: u32 = 1080;

/// A 1080p yuv420p frame with a pattern, so the planes are not trivially compressible.
fn frame(seed: u8) -> VideoFrame {
    sized(W, H, seed)
}

fn sized(w: u32, h: u32, seed: u8) -> VideoFrame {
    let plane = |w: u32, h: u32| Plane {
        data: (0..w * h)
            .map(|i| (i % w) as u8 ^ seed ^ (i / w) as u8)
            .collect(),
        stride: w as usize,
        width: w,
        height: h,
    };
    VideoFrame {
        width: w,
        height: h,
        layout: PixelLayout::Yuv420p,
        planes: vec![plane(w, h), plane(w / 2, h / 2), plane(w / 2, h / 2)],
        matrix: Matrix::Bt709,
        range: Range::Limited,
        rotation: Rotation::None,
        sample_aspect: (1, 1),
        pts: 0.0,
    }
}

fn crossfade(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("a GPU adapter");
    let (a, b) = (frame(0), frame(0x55));
    let mut group = c.benchmark_group(format!("gpu 1080p crossfade on {}", ctx.adapter_name()));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for ring in [3usize, 1] {
        let mut comp = Compositor::with_ring(&ctx, W, H, [0, 0, 0], ring).expect("compositor");
        let mut i = 0u32;
        group.bench_function(format!("ring {ring}"), |bench| {
            bench.iter(|| {
                i = (i + 1) % 30;
                let w = i as f32 / 30.0;
                let layers = [
                    LayerInput {
                        frame: &a,
                        weight: 1.0 - w,
                        fit: Fit::Contain,
                    },
                    LayerInput {
                        frame: &b,
                        weight: w,
                        fit: Fit::Contain,
                    },
                ];
                if let Some(out) = comp.submit(&layers).expect("submit") {
                    comp.recycle(out);
                }
            })
        });
        for out in comp.flush().expect("flush") {
            comp.recycle(out);
        }
    }
    group.finish();
}

/// One layer per frame: a 1080p clip (the passthrough copy) and a 720p clip scaled up.
fn single(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("a GPU adapter");
    let mut group = c.benchmark_group("gpu 1080p single clip");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for (name, f) in [
        ("1080p passthrough", frame(7)),
        ("720p scaled", sized(1280, 720, 7)),
    ] {
        let mut comp = Compositor::new(&ctx, W, H, [0, 0, 0]).expect("compositor");
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let layers = [LayerInput {
                    frame: &f,
                    weight: 1.0,
                    fit: Fit::Contain,
                }];
                if let Some(out) = comp.submit(&layers).expect("submit") {
                    comp.recycle(out);
                }
            })
        });
        for out in comp.flush().expect("flush") {
            comp.recycle(out);
        }
    }
    group.finish();
}

criterion_group!(benches, crossfade, single);
criterion_main!(benches);
