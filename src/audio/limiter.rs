//! The look-ahead peak limiter on the master bus.
//!
//! Nothing the node writes may exceed -1 dBFS, but audio under that ceiling must come out
//! bit for bit as it went in (no hidden 1/N attenuation). So the limiter computes, for each
//! stereo frame, the gain that would put its peak exactly on the ceiling (1.0 when it is
//! already under), takes the minimum of that over the next `LOOKAHEAD` frames, and smooths
//! it with a moving average of the same length. The average of minimums reaches every
//! peak's gain by the time the peak plays (attack over the look-ahead, no overshoot), then
//! the gain recovers with an exponential release. The signal is delayed by the look-ahead
//! so the gain and the peak meet; [`Limiter::DELAY`] says by how much, and the mixer runs
//! ahead by that many frames so its output stays aligned with the timeline. When no frame
//! in the window is over the ceiling the gain is exactly 1.0 and the samples pass
//! untouched.

use std::collections::VecDeque;

/// -1 dBFS as a linear amplitude.
pub const CEILING: f32 = 0.891_250_9;

/// Look-ahead (and attack) length: 5 ms at 48 kHz.
pub const LOOKAHEAD: usize = 240;

/// Release time constant: the gain covers 63% of the way back to 1.0 in 50 ms.
const RELEASE_SECONDS: f64 = 0.05;

/// Streaming state of the limiter: buffers of `LOOKAHEAD` frames, allocated once.
pub struct Limiter {
    /// Input frames waiting for their gain, oldest first.
    delay: VecDeque<[f32; 2]>,
    /// Sliding minimum of the required gain over the last `LOOKAHEAD` inputs:
    /// (input index, gain), gains increasing from front to back.
    minima: VecDeque<(u64, f32)>,
    /// The last `LOOKAHEAD` window minimums, and their sum and count below 1.0.
    averaged: VecDeque<f32>,
    sum: f64,
    below_one: usize,
    /// Input frames seen.
    seen: u64,
    /// The gain applied to the previous output frame (f64: in f32 the release would stall
    /// a few ulps short of 1.0).
    gain: f64,
    release: f64,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

impl Limiter {
    /// Frames between a frame going in and the same frame coming out.
    pub const DELAY: usize = LOOKAHEAD - 1;

    pub fn new() -> Limiter {
        let release = 1.0 - (-1.0 / (RELEASE_SECONDS * 48_000.0)).exp();
        let mut averaged = VecDeque::with_capacity(LOOKAHEAD);
        averaged.extend(std::iter::repeat_n(1.0, LOOKAHEAD));
        Limiter {
            delay: VecDeque::with_capacity(LOOKAHEAD),
            minima: VecDeque::with_capacity(LOOKAHEAD + 1),
            averaged,
            sum: LOOKAHEAD as f64,
            below_one: 0,
            seen: 0,
            gain: 1.0,
            release,
        }
    }

    /// Limits interleaved stereo `input` into `output` (same length): `output` holds the
    /// frames that went in `DELAY` frames earlier (silence before the first).
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        for (frame, out) in input.chunks_exact(2).zip(output.chunks_exact_mut(2)) {
            let [l, r] = self.push([frame[0], frame[1]]);
            out[0] = l;
            out[1] = r;
        }
    }

    fn push(&mut self, frame: [f32; 2]) -> [f32; 2] {
        self.push_minimum(frame);
        self.delay.push_back(frame);
        let window_gain = self.minima.front().map_or(1.0, |m| m.1);
        let target = self.push_average(window_gain);
        if self.delay.len() < LOOKAHEAD {
            return [0.0, 0.0];
        }
        let [l, r] = self.delay.pop_front().unwrap_or([0.0, 0.0]);
        self.gain = self.next_gain(target);
        if self.gain == 1.0 {
            return [l, r];
        }
        let g = self.gain as f32;
        [
            (l * g).clamp(-CEILING, CEILING),
            (r * g).clamp(-CEILING, CEILING),
        ]
    }

    /// Adds this frame's required gain to the sliding minimum of the last `LOOKAHEAD`.
    fn push_minimum(&mut self, [l, r]: [f32; 2]) {
        let peak = l.abs().max(r.abs());
        let required = if peak > CEILING { CEILING / peak } else { 1.0 };
        while self.minima.back().is_some_and(|m| m.1 >= required) {
            self.minima.pop_back();
        }
        self.minima.push_back((self.seen, required));
        self.seen += 1;
        while self
            .minima
            .front()
            .is_some_and(|m| m.0 + (LOOKAHEAD as u64) < self.seen)
        {
            self.minima.pop_front();
        }
    }

    /// Moving average of the window minimums; exactly 1.0 when all of them are 1.0.
    fn push_average(&mut self, window_gain: f32) -> f64 {
        let old = self.averaged.pop_front().unwrap_or(1.0);
        self.averaged.push_back(window_gain);
        self.sum += f64::from(window_gain) - f64::from(old);
        self.below_one = self.below_one + usize::from(window_gain < 1.0) - usize::from(old < 1.0);
        if self.below_one == 0 {
            self.sum = LOOKAHEAD as f64;
            return 1.0;
        }
        (self.sum / LOOKAHEAD as f64).min(1.0)
    }

    /// Attack follows the target at once (it is already smooth); release is exponential
    /// and snaps to exactly 1.0 when within 1e-5 (-0.0001 dB) of it.
    fn next_gain(&self, target: f64) -> f64 {
        if target <= self.gain {
            return target;
        }
        let next = self.gain + (target - self.gain) * self.release;
        if target == 1.0 && 1.0 - next < 1e-5 {
            1.0
        } else {
            next
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[f32]) -> Vec<f32> {
        let mut limiter = Limiter::new();
        let mut padded = input.to_vec();
        // DELAY stereo frames are 2 · DELAY samples.
        let delay = Limiter::DELAY * 2;
        padded.extend(std::iter::repeat_n(0.0, delay));
        let mut out = vec![0.0; padded.len()];
        limiter.process(&padded, &mut out);
        out[delay..delay + input.len()].to_vec()
    }

    #[test]
    fn under_the_ceiling_passes_bit_for_bit() {
        let input: Vec<f32> = (0..9600).map(|i| (i as f32 * 0.13).sin() * 0.89).collect();
        assert_eq!(run(&input), input);
    }

    #[test]
    fn over_the_ceiling_is_held_under_it() {
        let input: Vec<f32> = (0..9600).map(|i| (i as f32 * 0.13).sin() * 3.0).collect();
        let out = run(&input);
        let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak <= CEILING, "peak {peak}");
        assert!(peak > CEILING * 0.99, "peak {peak}");
    }

    #[test]
    fn a_single_spike_is_caught_and_released() {
        let mut input = vec![0.5f32; 96_000];
        input[20_000] = 2.0;
        let out = run(&input);
        assert!(out[20_000] <= CEILING);
        assert!(
            out[20_000 - 2 * LOOKAHEAD] == 0.5,
            "attack starts a look-ahead early"
        );
        assert!(
            out[20_000 - 2] < 0.5,
            "the gain comes down before the spike"
        );
        // The gain is back at exactly 1.0 some 15 release time constants after the spike.
        assert_eq!(out[20_000 + 2 * 36_000], 0.5);
    }
}
