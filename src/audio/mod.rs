//! Audio: every sample of the output's sound, at 48 kHz stereo f32 on the CPU.
//!
//! The sound is computed, not streamed through a graph: a [`Mixer`] walks the timeline,
//! opens each clip's decoded source when it becomes audible, shapes it with the clip's
//! envelope (automation, pan, fades, crossfades, declick), adds it into one stereo bus and
//! passes the bus through a look-ahead [`Limiter`] at -1 dBFS. A render encodes what the
//! mixer yields and `render-node preview` plays the very same samples, so what you hear is
//! what you get. The curves are documented in [`automation`] and [`mixer`].

pub mod automation;
pub mod kernel;
pub mod limiter;
pub mod mixer;
pub mod preview;
pub mod source;
pub mod vec_source;

pub use limiter::{CEILING, Limiter};
pub use mixer::{Mixer, SourceOpener};
pub use preview::{PreviewError, preview};
pub use source::{AudioSource, SAMPLE_RATE};
pub use vec_source::VecSource;
