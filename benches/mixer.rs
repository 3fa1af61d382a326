//! Mixer kernel throughput, scalar reference vs SIMD, in stereo frames per second for 1, 4
//! and 16 sources summed into one bus.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use render_node::audio::kernel::{mix_scalar, mix_simd};
use std::hint::black_box;

/// Stereo frames per iteration: 1024 frames, the mixer's block.
const FRAMES: usize = 1024;

type Kernel = fn(&mut [f32], &[f32], &[f32]);

fn bench(c: &mut Criterion) {
    for sources in [1usize, 4, 16] {
        let src: Vec<Vec<f32>> = (0..sources)
            .map(|s| {
                (0..FRAMES * 2)
                    .map(|i| ((i + s) as f32 * 0.01).sin())
                    .collect()
            })
            .collect();
        let gains: Vec<Vec<f32>> = (0..sources)
            .map(|s| {
                (0..FRAMES * 2)
                    .map(|i| 0.5 + ((i * 3 + s) % 7) as f32 * 0.01)
                    .collect()
            })
            .collect();
        let mut bus = vec![0.0f32; FRAMES * 2];
        let mut group = c.benchmark_group(format!("mix_{sources}_sources"));
        group.throughput(Throughput::Elements(FRAMES as u64));
        let kernels: [(&str, Kernel); 2] = [("scalar", mix_scalar), ("simd", mix_simd)];
        for (name, kernel) in kernels {
            group.bench_function(name, |b| {
                b.iter(|| {
                    bus.fill(0.0);
                    for (s, g) in src.iter().zip(&gains) {
                        kernel(black_box(&mut bus), black_box(s), black_box(g));
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
