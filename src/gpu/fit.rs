//! Where a layer lands on the output: the fit rectangle in output pixels and the affine map
//! from an output pixel position to the stored picture's normalised coordinates, with the
//! rotation and sample aspect of the source applied (they act on `display_size()`).

use crate::media::frame::{Rotation, VideoFrame};
use crate::project::Fit;

/// A layer's placement: `uv = origin + x * dx + y * dy` for an output position (x, y) in
/// pixels (pixel centres at +0.5); stored coordinates outside 0..1 show the background.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The displayed picture's rectangle on the output: x, y, width, height in pixels.
    pub rect: [f64; 4],
    pub origin: [f64; 2],
    pub dx: [f64; 2],
    pub dy: [f64; 2],
}

/// Places `frame` on a `width` x `height` output. A `contain` rectangle is rounded to even
/// sizes and whole-pixel offsets so letterbox bars are exact; `cover` and `fill` are not
/// rounded (their overflow is cropped anyway).
pub fn placement(frame: &VideoFrame, fit: Fit, width: u32, height: u32) -> Placement {
    let (w, h) = (f64::from(width), f64::from(height));
    let (dw, dh) = frame.display_size();
    let (dw, dh) = (dw.max(1e-9), dh.max(1e-9));
    let rect = match fit {
        Fit::Fill => [0.0, 0.0, w, h],
        Fit::Cover => centred(w, h, dw * (w / dw).max(h / dh), dh * (w / dw).max(h / dh)),
        Fit::Contain => {
            let s = (w / dw).min(h / dh);
            let rw = (2.0 * (dw * s / 2.0).round()).clamp(2.0, w);
            let rh = (2.0 * (dh * s / 2.0).round()).clamp(2.0, h);
            let [_, _, rw, rh] = centred(w, h, rw, rh);
            [((w - rw) / 2.0).floor(), ((h - rh) / 2.0).floor(), rw, rh]
        }
    };
    let uv = |x: f64, y: f64| {
        rotate(
            frame.rotation,
            (x - rect[0]) / rect[2],
            (y - rect[1]) / rect[3],
        )
    };
    let o = uv(0.0, 0.0);
    let ux = uv(1.0, 0.0);
    let uy = uv(0.0, 1.0);
    Placement {
        rect,
        origin: o,
        dx: [ux[0] - o[0], ux[1] - o[1]],
        dy: [uy[0] - o[0], uy[1] - o[1]],
    }
}

fn centred(w: f64, h: f64, rw: f64, rh: f64) -> [f64; 4] {
    [(w - rw) / 2.0, (h - rh) / 2.0, rw, rh]
}

/// Displayed normalised (u, v) → stored normalised coordinates for a clockwise rotation.
fn rotate(rotation: Rotation, u: f64, v: f64) -> [f64; 2] {
    match rotation {
        Rotation::None => [u, v],
        Rotation::Cw90 => [v, 1.0 - u],
        Rotation::Cw180 => [1.0 - u, 1.0 - v],
        Rotation::Cw270 => [1.0 - v, u],
    }
}

impl Placement {
    /// Stored-picture texels covered by one output pixel along output x and y, for a
    /// picture of `w` x `h` texels: how many taps shrinking needs.
    pub fn footprint(&self, w: u32, h: u32) -> (f64, f64) {
        let len = |d: [f64; 2]| (d[0] * f64::from(w)).hypot(d[1] * f64::from(h));
        (len(self.dx), len(self.dy))
    }
}
