//! The one-screen answer to "what will this render be?": its length, frame count and
//! price, as `render-node validate` prints it and as the API charges it.

use std::fmt;

use super::timeline::Timeline;

/// A validated project's output length and price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Output length in seconds: whole frames, what the file will hold.
    pub seconds: f64,
    pub frames: u64,
    pub credits: u64,
    pub cost_usd: f64,
}

/// Summarises a resolved timeline.
pub fn summary(timeline: &Timeline) -> Summary {
    Summary {
        seconds: timeline.duration(),
        frames: timeline.frame_count,
        credits: timeline.credits(),
        cost_usd: timeline.cost_usd(),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "duration: {:.3} s", self.seconds)?;
        writeln!(f, "frames: {}", self.frames)?;
        write!(f, "credits: {}", self.credits)
    }
}
