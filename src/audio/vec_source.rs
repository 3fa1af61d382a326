//! An in-memory [`AudioSource`], for tests, benches and generated tones.

use super::source::{AudioSource, SAMPLE_RATE};
use crate::media::MediaError;

/// Interleaved stereo samples held in memory, read from the start.
#[derive(Debug, Clone)]
pub struct VecSource {
    samples: Vec<f32>,
    position: usize,
    mono: bool,
}

impl VecSource {
    /// `samples` interleaved L, R; `mono` when both sides carry the same signal.
    pub fn new(samples: Vec<f32>, mono: bool) -> VecSource {
        VecSource {
            samples,
            position: 0,
            mono,
        }
    }

    /// A sine of `frequency` Hz and peak `amplitude` on both sides, `seconds` long.
    pub fn sine(frequency: f64, amplitude: f64, seconds: f64, mono: bool) -> VecSource {
        let frames = (seconds * f64::from(SAMPLE_RATE)).round() as usize;
        let samples = (0..frames)
            .flat_map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let v = (amplitude * (std::f64::consts::TAU * frequency * t).sin()) as f32;
                [v, v]
            })
            .collect();
        VecSource::new(samples, mono)
    }
}

impl AudioSource for VecSource {
    fn read(&mut self, out: &mut [f32]) -> Result<usize, MediaError> {
        let rest = self.samples.get(self.position..).unwrap_or(&[]);
        let n = (out.len() / 2).min(rest.len() / 2);
        out[..n * 2].copy_from_slice(&rest[..n * 2]);
        self.position += n * 2;
        Ok(n)
    }

    fn is_mono(&self) -> bool {
        self.mono
    }
}
