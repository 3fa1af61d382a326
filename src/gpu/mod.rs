//! The GPU compositor: decoded planes go in, encoder-ready BT.709 limited 4:2:0 planes come
//! out, and the CPU never converts, scales or blends a pixel on the way.
//!
//! The key noun is the *layer*: one visible clip's frame with its crossfade weight and fit.
//! The decision behind the design is that on a machine without a GPU (Mesa's lavapipe) every
//! GPU cycle is taken from the encoder, so a frame costs one compute pass that samples the
//! source planes where they lie and writes the output planes directly: no R'G'B'A
//! intermediate, no separate scaling or mipmap passes. Each layer's colour maths is folded
//! into one affine matrix (source matrix and range → R'G'B' → BT.709 limited), a crossfade
//! is a weighted sum of Y'CbCr (the same lerp as in gamma-encoded R'G'B', since the maps are
//! affine), and shrinking by 2x or more takes several bilinear taps per pixel so fine
//! detail averages instead of aliasing. A frame that already is the output (one layer at
//! weight 1, BT.709 limited 4:2:0 at the output's size) bypasses the GPU altogether, and a
//! crossfade between two such frames is a byte-wise lerp of their planes (`blend`).

mod blend;
mod colour;
mod compositor;
mod context;
mod fit;

pub use blend::BlendUniform;
pub use colour::{rgb_to_output, source_to_output};
pub use compositor::{Compositor, FrameUniform, LayerInput, LayerUniform};
pub use context::GpuContext;
pub use fit::{Placement, placement};

pub use crate::project::Fit;

/// What can go wrong on the GPU side of a render; every message names what was expected.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found (backends {backends}); install Mesa's lavapipe (scripts/setup.sh)"
    )]
    NoAdapter { backends: String },
    #[error("GPU device request on adapter {adapter:?} failed: {reason}")]
    Device { adapter: String, reason: String },
    #[error("output size {width}x{height}: must be even and between 2 and {max}")]
    OutputSize { width: u32, height: u32, max: u32 },
    #[error("layers: at most 2 per frame, got {0}")]
    TooManyLayers(usize),
    #[error("layers[{index}]: {reason}")]
    Layer { index: usize, reason: String },
    #[error("ring size {0}: must be at least 1")]
    Ring(usize),
    #[error("reading back an output frame failed: {0}")]
    Readback(String),
    #[error("GPU validation failed: {0}")]
    Validation(String),
}
