//! The mixer kernel: one source, scaled sample by sample, added into the bus.
//!
//! Gain and pan are folded into one per-sample multiplier per channel before the kernel
//! runs (see `mixer`), so the kernel is `bus[i] += src[i] * gain[i]` over interleaved
//! stereo. Both versions do a separate multiply and add (never a fused multiply-add), so
//! the SIMD kernel is bit-identical to the scalar reference, and a gain of exactly 1.0
//! added into a silent bus copies the source bit for bit.

use wide::f32x8;

/// The plain reference: `bus[i] += src[i] * gain[i]` over the shortest of the three.
pub fn mix_scalar(bus: &mut [f32], src: &[f32], gain: &[f32]) {
    for ((b, s), g) in bus.iter_mut().zip(src).zip(gain) {
        *b += *s * *g;
    }
}

/// The same as [`mix_scalar`], eight lanes at a time with `wide`.
pub fn mix_simd(bus: &mut [f32], src: &[f32], gain: &[f32]) {
    let n = bus.len().min(src.len()).min(gain.len());
    let (bus, src, gain) = (&mut bus[..n], &src[..n], &gain[..n]);
    let mut bus_chunks = bus.chunks_exact_mut(8);
    let mut src_chunks = src.chunks_exact(8);
    let mut gain_chunks = gain.chunks_exact(8);
    for ((b, s), g) in (&mut bus_chunks).zip(&mut src_chunks).zip(&mut gain_chunks) {
        let sum = lanes(b) + lanes(s) * lanes(g);
        b.copy_from_slice(sum.as_array());
    }
    mix_scalar(
        bus_chunks.into_remainder(),
        src_chunks.remainder(),
        gain_chunks.remainder(),
    );
}

fn lanes(chunk: &[f32]) -> f32x8 {
    let mut array = [0.0; 8];
    array.copy_from_slice(chunk);
    f32x8::from(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn simd_matches_scalar_bit_for_bit_on_random_input() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for len in [0, 1, 7, 8, 9, 63, 1000, 4099] {
            let src: Vec<f32> = (0..len).map(|_| rng.random_range(-1.5..1.5)).collect();
            let gain: Vec<f32> = (0..len).map(|_| rng.random_range(0.0..4.0)).collect();
            let bus: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (mut a, mut b) = (bus.clone(), bus);
            mix_scalar(&mut a, &src, &gain);
            mix_simd(&mut b, &src, &gain);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "length {len}");
        }
    }

    #[test]
    fn unit_gain_into_silence_is_a_copy() {
        let src: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 0.3).collect();
        let mut bus = vec![0.0; 37];
        mix_simd(&mut bus, &src, &[1.0; 37]);
        assert_eq!(bus, src);
    }
}
