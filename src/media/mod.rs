//! Media: everything between a source URL and frames in memory, and between rendered
//! frames and the output file.

pub mod frame;

pub use frame::{Matrix, PixelLayout, Plane, Range, Rotation, VideoFrame};
pub mod error;
pub mod fetch;

pub use error::MediaError;
pub use fetch::{FetchConfig, Fetcher};
pub mod audio;
pub mod decode;
mod demux;
pub mod encode;
pub mod probe;
pub mod thumbnail;

pub use audio::AudioReader;
pub use decode::VideoDecoder;
pub use encode::{AudioEncoder, EncodeSettings, Mp4Writer, Muxer, VideoEncoder};
pub use probe::{AudioInfo, MediaInfo, VideoInfo, init, probe};
pub use thumbnail::write_thumbnail;
