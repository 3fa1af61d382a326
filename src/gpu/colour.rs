//! Colour maths, folded into affine 3x4 matrices on normalised code values (code / 255).
//! A source's Y'CbCr goes to R'G'B' by its own matrix and range, then to the output's
//! BT.709 limited Y'CbCr; composing the two affine maps gives one matrix per layer, so the
//! shader does one product per pixel. Intermediate R'G'B' is not clamped, as FFmpeg's
//! Y'CbCr-to-Y'CbCr conversions do not clamp it either.

use crate::media::frame::{Matrix, Range};

/// An affine map: rows of (a, b, c, offset).
pub type Affine = [[f64; 4]; 3];

fn coefficients(matrix: Matrix) -> (f64, f64) {
    match matrix {
        Matrix::Bt601 => (0.299, 0.114),
        Matrix::Bt709 => (0.2126, 0.0722),
    }
}

/// Normalised Y'CbCr codes of `matrix`/`range` → R'G'B' in 0..1.
fn ycbcr_to_rgb(matrix: Matrix, range: Range) -> Affine {
    let (kr, kb) = coefficients(matrix);
    let kg = 1.0 - kr - kb;
    // Y' = (y - y0) * ys, Pb = (cb - 128/255) * cs.
    let (y0, ys, cs) = match range {
        Range::Limited => (16.0 / 255.0, 255.0 / 219.0, 255.0 / 224.0),
        Range::Full => (0.0, 1.0, 1.0),
    };
    let c0 = 128.0 / 255.0;
    let r_pr = 2.0 * (1.0 - kr);
    let b_pb = 2.0 * (1.0 - kb);
    let g_pb = -b_pb * kb / kg;
    let g_pr = -r_pr * kr / kg;
    let row = |pb: f64, pr: f64| [ys, pb * cs, pr * cs, -y0 * ys - (pb + pr) * cs * c0];
    [row(0.0, r_pr), row(g_pb, g_pr), row(b_pb, 0.0)]
}

/// R'G'B' in 0..1 → normalised BT.709 limited-range Y'CbCr codes.
pub fn rgb_to_output() -> Affine {
    let (kr, kb) = coefficients(Matrix::Bt709);
    let kg = 1.0 - kr - kb;
    let y = [kr, kg, kb];
    let pb = [-kr / (2.0 * (1.0 - kb)), -kg / (2.0 * (1.0 - kb)), 0.5];
    let pr = [0.5, -kg / (2.0 * (1.0 - kr)), -kb / (2.0 * (1.0 - kr))];
    let scale = |v: [f64; 3], gain: f64, offset: f64| {
        [
            v[0] * gain / 255.0,
            v[1] * gain / 255.0,
            v[2] * gain / 255.0,
            offset / 255.0,
        ]
    };
    [
        scale(y, 219.0, 16.0),
        scale(pb, 224.0, 128.0),
        scale(pr, 224.0, 128.0),
    ]
}

/// A source's normalised Y'CbCr → normalised BT.709 limited Y'CbCr, in one map.
pub fn source_to_output(matrix: Matrix, range: Range) -> Affine {
    compose(&rgb_to_output(), &ycbcr_to_rgb(matrix, range))
}

/// `outer ∘ inner`.
fn compose(outer: &Affine, inner: &Affine) -> Affine {
    let mut out = [[0.0; 4]; 3];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, cell) in row.iter_mut().enumerate() {
            let mut v: f64 = (0..3).map(|k| outer[r][k] * inner[k][c]).sum();
            if c == 3 {
                v += outer[r][3];
            }
            *cell = v;
        }
    }
    out
}

/// Applies an affine map to a 3-vector.
pub(crate) fn apply(m: &Affine, v: [f64; 3]) -> [f64; 3] {
    let row = |r: &[f64; 4]| r[0] * v[0] + r[1] * v[1] + r[2] * v[2] + r[3];
    [row(&m[0]), row(&m[1]), row(&m[2])]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt709_limited_source_maps_to_itself() {
        let m = source_to_output(Matrix::Bt709, Range::Limited);
        for (r, row) in m.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let want = if r == c { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "m[{r}][{c}] = {v}");
            }
        }
    }

    #[test]
    fn white_and_black_hit_the_limited_range_ends() {
        let m = rgb_to_output();
        let white = apply(&m, [1.0, 1.0, 1.0]).map(|v| v * 255.0);
        let black = apply(&m, [0.0, 0.0, 0.0]).map(|v| v * 255.0);
        for (got, want) in white.iter().zip([235.0, 128.0, 128.0]) {
            assert!((got - want).abs() < 1e-9, "white {white:?}");
        }
        for (got, want) in black.iter().zip([16.0, 128.0, 128.0]) {
            assert!((got - want).abs() < 1e-9, "black {black:?}");
        }
    }
}
