//! Where the mixer's samples come from: a decoded and resampled source, or anything else
//! that yields 48 kHz interleaved stereo f32.

/// The sample rate of everything the mixer sees and writes.
pub const SAMPLE_RATE: u32 = 48_000;

/// A stream of 48 kHz interleaved stereo f32 samples, read from the clip's start
/// (`trimStart` already applied).
pub trait AudioSource: Send {
    /// Fills `out` (interleaved L, R) from the current position and returns the number of
    /// stereo frames written; fewer than `out.len() / 2` means the source has ended.
    fn read(&mut self, out: &mut [f32]) -> Result<usize, crate::media::MediaError>;

    /// True when the source was mono (both sides carry the same signal): pan is then a
    /// constant-power pan instead of a balance.
    fn is_mono(&self) -> bool;
}
