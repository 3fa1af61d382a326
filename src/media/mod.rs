//! Media: everything between a source URL and frames in memory, and between rendered
//! frames and the output file.

pub mod frame;

pub use frame::{Matrix, PixelLayout, Plane, Range, Rotation, VideoFrame};
pub mod error;
pub mod fetch;

pub use error::MediaError;
