//! Audio: every sample of the output's sound, at 48 kHz stereo f32 on the CPU.

pub mod source;
