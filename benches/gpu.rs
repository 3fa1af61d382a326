//! 1080p frames per second through upload → composite (two clips crossfading) → BT.709
//! 4:2:0 out → readback, with the ring of staging buffers and with a ring of one.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use render_node::gpu::{Compositor, Fit, GpuContext, LayerInput};
use render_node::media::frame::{Matrix, PixelLayout, Plane, Range, Rotation, VideoFrame};

const W: u32 = 1920;
const H: u32 = 1080;

/// A 1080p yuv420p frame with a gradient, so the planes are not trivially compressible.
fn frame(seed: u8) -> VideoFrame {
    let plane = |w: u32, h: u32| Plane {
        data: (0..w * h)
            .map(|i| (i % w) as u8 ^ seed ^ (i / w) as u8)
            .collect(),
        stride: w as usize,
        width: w,
        height: h,
    };
    VideoFrame {
        width: W,
        height: H,
        layout: PixelLayout::Yuv420p,
        planes: vec![plane(W, H), plane(W / 2, H / 2), plane(W / 2, H / 2)],
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

criterion_group!(benches, crossfade);
criterion_main!(benches);
