//! The compositor against a CPU reference of the same maths in f64, on lavapipe.
//!
//! Tolerances: colour conversion, fit, crossfade and alpha within 1 code value per sample
//! (the GPU works in f32 and rounds once); the round trip within 1 code value on average;
//! the anti-aliased shrink within 3 code values of flat grey.

use std::path::Path;
use std::process::Command;

use render_node::gpu::{Compositor, Fit, GpuContext, LayerInput};
use render_node::media::frame::{Matrix, PixelLayout, Plane, Range, Rotation, VideoFrame};

fn context() -> GpuContext {
    let dir = std::env::temp_dir().join(format!("render-node-xdg-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    // SAFETY: tests set the variable to the same value before any thread reads it.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    GpuContext::new().expect("a GPU adapter (lavapipe in CI)")
}

fn plane(data: Vec<u8>, width: u32, height: u32, bpp: u32) -> Plane {
    Plane {
        data,
        stride: (width * bpp) as usize,
        width,
        height,
    }
}

/// One frame of an ffmpeg lavfi source as raw planes.
fn lavfi_frame(dir: &Path, source: &str, w: u32, h: u32, pix_fmt: &str) -> VideoFrame {
    let out = dir.join(format!("{pix_fmt}-{w}x{h}.raw"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "{source}{}s={w}x{h}",
            if source.contains('=') { ":" } else { "=" }
        ))
        .args(["-frames:v", "1", "-pix_fmt", pix_fmt, "-f", "rawvideo"])
        .arg(&out)
        .status()
        .expect("ffmpeg CLI");
    assert!(status.success(), "ffmpeg failed for {source}");
    let data = std::fs::read(&out).expect("raw frame");
    split_planes(&data, w, h, pix_fmt)
}

fn split_planes(data: &[u8], w: u32, h: u32, pix_fmt: &str) -> VideoFrame {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (layout, shapes): (_, Vec<(u32, u32, u32)>) = match pix_fmt {
        "yuv420p" => (
            PixelLayout::Yuv420p,
            vec![(w, h, 1), (cw, ch, 1), (cw, ch, 1)],
        ),
        "yuv444p" => (PixelLayout::Yuv444p, vec![(w, h, 1), (w, h, 1), (w, h, 1)]),
        "nv12" => (PixelLayout::Nv12, vec![(w, h, 1), (cw, ch, 2)]),
        "rgba" => (PixelLayout::Rgba, vec![(w, h, 4)]),
        other => panic!("unsupported {other}"),
    };
    let mut offset = 0;
    let planes = shapes
        .into_iter()
        .map(|(pw, ph, bpp)| {
            let len = (pw * ph * bpp) as usize;
            let p = plane(data[offset..offset + len].to_vec(), pw, ph, bpp);
            offset += len;
            p
        })
        .collect();
    VideoFrame {
        width: w,
        height: h,
        layout,
        planes,
        matrix: Matrix::Bt709,
        range: Range::Limited,
        rotation: Rotation::None,
        sample_aspect: (1, 1),
        pts: 0.0,
    }
}

/// A yuv420p frame of one colour, given as BT.709 limited codes.
fn solid(w: u32, h: u32, yuv: [u8; 3]) -> VideoFrame {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    VideoFrame {
        width: w,
        height: h,
        layout: PixelLayout::Yuv420p,
        planes: vec![
            plane(vec![yuv[0]; (w * h) as usize], w, h, 1),
            plane(vec![yuv[1]; (cw * ch) as usize], cw, ch, 1),
            plane(vec![yuv[2]; (cw * ch) as usize], cw, ch, 1),
        ],
        matrix: Matrix::Bt709,
        range: Range::Limited,
        rotation: Rotation::None,
        sample_aspect: (1, 1),
        pts: 0.0,
    }
}

/// Composites one frame and waits for it.
fn composite(ctx: &GpuContext, w: u32, h: u32, bg: [u8; 3], layers: &[LayerInput]) -> VideoFrame {
    let mut c = Compositor::with_ring(ctx, w, h, bg, 1).expect("compositor");
    c.submit(layers)
        .expect("submit")
        .expect("ring of 1 returns at once")
}

// ---- the CPU reference, in f64 --------------------------------------------------------

fn kr_kb(m: Matrix) -> (f64, f64) {
    match m {
        Matrix::Bt601 => (0.299, 0.114),
        Matrix::Bt709 => (0.2126, 0.0722),
    }
}

/// Y'CbCr codes → R'G'B' 0..1.
fn to_rgb(ycc: [f64; 3], m: Matrix, r: Range) -> [f64; 3] {
    let (kr, kb) = kr_kb(m);
    let kg = 1.0 - kr - kb;
    let (y, pb, pr) = match r {
        Range::Limited => (
            (ycc[0] - 16.0) / 219.0,
            (ycc[1] - 128.0) / 224.0,
            (ycc[2] - 128.0) / 224.0,
        ),
        Range::Full => (
            ycc[0] / 255.0,
            (ycc[1] - 128.0) / 255.0,
            (ycc[2] - 128.0) / 255.0,
        ),
    };
    let red = y + 2.0 * (1.0 - kr) * pr;
    let blue = y + 2.0 * (1.0 - kb) * pb;
    let green = (y - kr * red - kb * blue) / kg;
    [red, green, blue]
}

/// R'G'B' 0..1 → BT.709 limited codes (unrounded).
fn to_out(rgb: [f64; 3]) -> [f64; 3] {
    let (kr, kb) = kr_kb(Matrix::Bt709);
    let y = kr * rgb[0] + (1.0 - kr - kb) * rgb[1] + kb * rgb[2];
    let pb = (rgb[2] - y) / (2.0 * (1.0 - kb));
    let pr = (rgb[0] - y) / (2.0 * (1.0 - kr));
    [16.0 + 219.0 * y, 128.0 + 224.0 * pb, 128.0 + 224.0 * pr]
}

fn bg_out(bg: [u8; 3]) -> [f64; 3] {
    to_out(bg.map(|c| f64::from(c) / 255.0))
}

/// Reference for a source at the output's size (identity geometry): each pixel's Y' with
/// its 2x2 block's chroma, through the source's matrix and range to BT.709 limited; output
/// chroma is the mean over the block.
fn reference_same_size(src: &VideoFrame) -> [Vec<f64>; 3] {
    let (w, h) = (src.width as usize, src.height as usize);
    let mut y_out = vec![0.0; w * h];
    let mut u_out = vec![0.0; w * h / 4];
    let mut v_out = vec![0.0; w * h / 4];
    for by in 0..h / 2 {
        for bx in 0..w / 2 {
            let cb = f64::from(src.planes[1].data[by * src.planes[1].stride + bx]);
            let cr = f64::from(src.planes[2].data[by * src.planes[2].stride + bx]);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (x, y) = (bx * 2 + dx, by * 2 + dy);
                let luma = f64::from(src.planes[0].data[y * src.planes[0].stride + x]);
                let out = to_out(to_rgb([luma, cb, cr], src.matrix, src.range));
                y_out[y * w + x] = out[0];
                u_out[by * w / 2 + bx] += out[1] / 4.0;
                v_out[by * w / 2 + bx] += out[2] / 4.0;
            }
        }
    }
    [y_out, u_out, v_out]
}

/// (max, mean) absolute difference of an output plane against reference values.
fn compare(plane: &Plane, reference: &[f64]) -> (f64, f64) {
    let mut max: f64 = 0.0;
    let mut sum = 0.0;
    let w = plane.width as usize;
    for y in 0..plane.height as usize {
        for x in 0..w {
            let got = f64::from(plane.data[y * plane.stride + x]);
            let d = (got - reference[y * w + x].clamp(0.0, 255.0)).abs();
            max = max.max(d);
            sum += d;
        }
    }
    (max, sum / f64::from(plane.width * plane.height))
}

fn at(p: &Plane, x: u32, y: u32) -> u8 {
    p.data[y as usize * p.stride + x as usize]
}

// ---- tests ------------------------------------------------------------------------------

#[test]
fn every_shader_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("shaders/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("shader text");
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        count += 1;
    }
    assert!(count >= 1, "no shaders found in {}", dir.display());
}

#[test]
fn colour_conversion_matches_reference_for_both_matrices_and_ranges() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = lavfi_frame(dir.path(), "testsrc2", 96, 64, "yuv420p");
    for matrix in [Matrix::Bt601, Matrix::Bt709] {
        for range in [Range::Limited, Range::Full] {
            let mut src = base.clone();
            src.matrix = matrix;
            src.range = range;
            let reference = reference_same_size(&src);
            let out = composite(
                &ctx,
                96,
                64,
                [0, 0, 0],
                &[
                    LayerInput {
                        frame: &src,
                        weight: 1.0,
                        fit: Fit::Contain,
                    },
                    LayerInput {
                        frame: &src,
                        weight: 0.0,
                        fit: Fit::Contain,
                    },
                ],
            );
            for (i, (plane, refp)) in out.planes.iter().zip(&reference).enumerate() {
                let (max, mean) = compare(plane, refp);
                assert!(max <= 1.0, "{matrix:?} {range:?} plane {i}: max diff {max}");
                assert!(
                    mean <= 0.5,
                    "{matrix:?} {range:?} plane {i}: mean diff {mean}"
                );
            }
        }
    }
}

#[test]
fn round_trip_yuv420p_stays_within_one_code_value() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    let src = lavfi_frame(dir.path(), "testsrc2", 128, 72, "yuv420p");

    // Through the GPU (a second layer at weight 0 forces the compute pass).
    let out = composite(
        &ctx,
        128,
        72,
        [0, 0, 0],
        &[
            LayerInput {
                frame: &src,
                weight: 1.0,
                fit: Fit::Fill,
            },
            LayerInput {
                frame: &src,
                weight: 0.0,
                fit: Fit::Fill,
            },
        ],
    );
    for (i, (a, b)) in out.planes.iter().zip(&src.planes).enumerate() {
        let reference: Vec<f64> = b.data.iter().map(|&v| f64::from(v)).collect();
        let (max, mean) = compare(a, &reference);
        assert!(
            mean <= 1.0 && max <= 1.0,
            "plane {i}: mean {mean} max {max}"
        );
    }

    // The passthrough is exact.
    let out = composite(
        &ctx,
        128,
        72,
        [0, 0, 0],
        &[LayerInput {
            frame: &src,
            weight: 1.0,
            fit: Fit::Contain,
        }],
    );
    assert_eq!(out.planes, src.planes);
}

#[test]
fn nv12_and_yuv444p_inputs_match_their_reference() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    let yuv420 = lavfi_frame(dir.path(), "testsrc2", 64, 48, "yuv420p");
    let nv12 = lavfi_frame(dir.path(), "testsrc2", 64, 48, "nv12");
    let yuv444 = lavfi_frame(dir.path(), "testsrc2", 64, 48, "yuv444p");
    let run = |f: &VideoFrame| {
        composite(
            &ctx,
            64,
            48,
            [0, 0, 0],
            &[
                LayerInput {
                    frame: f,
                    weight: 1.0,
                    fit: Fit::Fill,
                },
                LayerInput {
                    frame: f,
                    weight: 0.0,
                    fit: Fit::Fill,
                },
            ],
        )
    };

    // NV12 holds the same samples as yuv420p, interleaved: the same output exactly.
    assert_eq!(run(&nv12).planes, run(&yuv420).planes);

    // 4:4:4: Y' as it is, chroma the mean of each 2x2 block.
    let out = run(&yuv444);
    let y_ref: Vec<f64> = yuv444.planes[0]
        .data
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let block_mean = |p: &Plane| {
        let mut v = Vec::new();
        for by in 0..24u32 {
            for bx in 0..32u32 {
                let s: f64 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| f64::from(at(p, bx * 2 + dx, by * 2 + dy)))
                    .sum();
                v.push(s / 4.0);
            }
        }
        v
    };
    let refs = [
        y_ref,
        block_mean(&yuv444.planes[1]),
        block_mean(&yuv444.planes[2]),
    ];
    for (i, (plane, r)) in out.planes.iter().zip(&refs).enumerate() {
        let (max, mean) = compare(plane, r);
        assert!(
            max <= 1.0 && mean <= 0.5,
            "yuv444p plane {i}: mean {mean} max {max}"
        );
    }
}

/// Checks that exactly the rows/columns outside `rect` carry the background.
fn assert_bars(out: &VideoFrame, rect: [u32; 4], inside: u8, bar: u8, what: &str) {
    for y in 0..out.height {
        for x in 0..out.width {
            let within =
                x >= rect[0] && x < rect[0] + rect[2] && y >= rect[1] && y < rect[1] + rect[3];
            let want = if within { inside } else { bar };
            let got = at(&out.planes[0], x, y);
            assert!(
                got.abs_diff(want) <= 1,
                "{what}: Y at ({x},{y}) = {got}, want {want}"
            );
        }
    }
}

#[test]
fn fit_modes_place_bars_exactly() {
    let ctx = context();
    let white = [235, 128, 128];
    let bg = [0, 0, 0];
    let cases: [(u32, u32, Fit, [u32; 4]); 6] = [
        (128, 32, Fit::Contain, [0, 16, 64, 16]),
        (32, 64, Fit::Contain, [20, 0, 24, 48]),
        (64, 48, Fit::Contain, [0, 0, 64, 48]),
        (128, 32, Fit::Cover, [0, 0, 64, 48]),
        (32, 64, Fit::Cover, [0, 0, 64, 48]),
        (32, 64, Fit::Fill, [0, 0, 64, 48]),
    ];
    for (w, h, fit, rect) in cases {
        let src = solid(w, h, white);
        let out = composite(
            &ctx,
            64,
            48,
            bg,
            &[
                LayerInput {
                    frame: &src,
                    weight: 1.0,
                    fit,
                },
                LayerInput {
                    frame: &src,
                    weight: 0.0,
                    fit,
                },
            ],
        );
        assert_bars(&out, rect, 235, 16, &format!("{w}x{h} {fit:?}"));
    }
}

#[test]
fn cover_crops_the_centre() {
    // Left third black, middle white, right third black: cover into a square keeps white.
    let ctx = context();
    let mut src = solid(96, 32, [16, 128, 128]);
    for y in 0..32 {
        for x in 32..64 {
            src.planes[0].data[y * 96 + x] = 235;
        }
    }
    let out = composite(
        &ctx,
        32,
        32,
        [0, 0, 0],
        &[
            LayerInput {
                frame: &src,
                weight: 1.0,
                fit: Fit::Cover,
            },
            LayerInput {
                frame: &src,
                weight: 0.0,
                fit: Fit::Cover,
            },
        ],
    );
    assert_bars(&out, [0, 0, 32, 32], 235, 16, "cover 3:1 into 1:1");
}

#[test]
fn crossfade_red_to_blue_is_a_lerp_in_gamma_encoded_rgb() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    let red = lavfi_frame(dir.path(), "color=c=red", 32, 32, "yuv420p");
    let blue = lavfi_frame(dir.path(), "color=c=blue", 32, 32, "yuv420p");
    let rgb = |f: &VideoFrame| {
        let p = |i: usize| f64::from(f.planes[i].data[0]);
        to_rgb([p(0), p(1), p(2)], Matrix::Bt709, Range::Limited)
    };
    let (a, b) = (rgb(&red), rgb(&blue));
    for w in [0.0f32, 0.25, 0.5, 0.75, 1.0] {
        let out = composite(
            &ctx,
            32,
            32,
            [0, 0, 0],
            &[
                LayerInput {
                    frame: &red,
                    weight: 1.0 - w,
                    fit: Fit::Fill,
                },
                LayerInput {
                    frame: &blue,
                    weight: w,
                    fit: Fit::Fill,
                },
            ],
        );
        let wf = f64::from(w);
        let mix = [0, 1, 2].map(|i| a[i] * (1.0 - wf) + b[i] * wf);
        let want = to_out(mix);
        for (i, plane) in out.planes.iter().enumerate() {
            let got = f64::from(at(plane, 5, 5));
            assert!(
                (got - want[i]).abs() <= 1.0,
                "w {w} plane {i}: {got} vs {}",
                want[i]
            );
        }
    }
}

#[test]
fn alpha_png_composites_over_the_background() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("alpha.png");
    let make = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("color=c=red:s=32x32,format=rgba,geq=r=255:g=64:b=0:a='X*8'")
        .args(["-frames:v", "1"])
        .arg(&png)
        .status()
        .expect("ffmpeg");
    assert!(make.success());
    let raw = dir.path().join("alpha.rgba");
    let read = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&png)
        .args(["-pix_fmt", "rgba", "-f", "rawvideo"])
        .arg(&raw)
        .status()
        .expect("ffmpeg");
    assert!(read.success());
    let src = split_planes(&std::fs::read(&raw).expect("rgba"), 32, 32, "rgba");
    let bg = [0, 0, 255];
    let out = composite(
        &ctx,
        32,
        32,
        bg,
        &[LayerInput {
            frame: &src,
            weight: 1.0,
            fit: Fit::Fill,
        }],
    );
    for x in (1..32).step_by(2) {
        let px = &src.planes[0].data[x * 4..x * 4 + 4];
        let alpha = f64::from(px[3]) / 255.0;
        let rgb = [0, 1, 2]
            .map(|i| f64::from(px[i]) / 255.0 * alpha + f64::from(bg[i]) / 255.0 * (1.0 - alpha));
        let want = to_out(rgb)[0];
        let got = f64::from(at(&out.planes[0], x as u32, 7));
        assert!(
            (got - want).abs() <= 1.0,
            "x {x} alpha {alpha}: Y {got} vs {want}"
        );
    }
    // Fully transparent at the left edge: the background shows.
    assert!((f64::from(at(&out.planes[0], 0, 0)) - bg_out(bg)[0]).abs() <= 1.0);
}

fn stripes(w: u32, h: u32, vertical: bool) -> VideoFrame {
    let mut f = solid(w, h, [16, 128, 128]);
    for y in 0..h {
        for x in 0..w {
            let on = if vertical { x % 2 == 0 } else { y % 2 == 0 };
            if on {
                f.planes[0].data[(y * w + x) as usize] = 235;
            }
        }
    }
    f
}

#[test]
fn shrinking_fine_stripes_2x_and_4x_gives_flat_grey() {
    let ctx = context();
    for factor in [2u32, 4] {
        for vertical in [true, false] {
            let src = stripes(128, 64, vertical);
            let (w, h) = (128 / factor, 64 / factor);
            let out = composite(
                &ctx,
                w,
                h,
                [0, 0, 0],
                &[LayerInput {
                    frame: &src,
                    weight: 1.0,
                    fit: Fit::Fill,
                }],
            );
            let y = &out.planes[0];
            for yy in 0..h {
                for xx in 0..w {
                    let got = at(y, xx, yy);
                    assert!(
                        got.abs_diff(126) <= 3,
                        "{factor}x vertical={vertical}: Y at ({xx},{yy}) = {got}"
                    );
                }
            }
        }
    }
}

#[test]
fn rotation_and_sample_aspect_shape_the_display() {
    let ctx = context();
    // Stored 32x64 with its left half white; turned clockwise it shows 64x32, white on top.
    let mut src = solid(32, 64, [16, 128, 128]);
    for y in 0..64 {
        for x in 0..16 {
            src.planes[0].data[y * 32 + x] = 235;
        }
    }
    src.rotation = Rotation::Cw90;
    let out = composite(
        &ctx,
        64,
        32,
        [0, 0, 0],
        &[LayerInput {
            frame: &src,
            weight: 1.0,
            fit: Fit::Contain,
        }],
    );
    assert_bars(&out, [0, 0, 64, 16], 235, 16, "rotated 90");

    // Stored 32x32 with 2:1 pixels shows 64x32: contain fills a 64x32 output, no bars.
    let mut sar = solid(32, 32, [235, 128, 128]);
    sar.sample_aspect = (2, 1);
    let out = composite(
        &ctx,
        64,
        32,
        [0, 0, 0],
        &[LayerInput {
            frame: &sar,
            weight: 1.0,
            fit: Fit::Contain,
        }],
    );
    assert_bars(&out, [0, 0, 64, 32], 235, 16, "SAR 2:1");
}

#[test]
fn the_ring_returns_every_frame_in_order() {
    let ctx = context();
    let mut c = Compositor::new(&ctx, 32, 32, [0, 0, 0]).expect("compositor");
    let mut got = Vec::new();
    for i in 0..7u8 {
        let mut f = solid(48, 32, [16 + i * 20, 128, 128]);
        f.pts = f64::from(i);
        if let Some(out) = c
            .submit(&[LayerInput {
                frame: &f,
                weight: 1.0,
                fit: Fit::Fill,
            }])
            .expect("submit")
        {
            got.push(out);
        }
    }
    got.extend(c.flush().expect("flush"));
    assert_eq!(got.len(), 7);
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f.pts, i as f64);
        assert!(at(&f.planes[0], 10, 10).abs_diff(16 + i as u8 * 20) <= 1);
    }
    for f in got {
        c.recycle(f);
    }
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

#[test]
fn crossfade_matches_ffmpeg_xfade_fade_at_every_instant() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    let (w, h) = (64u32, 48u32);
    let a = lavfi_frame(dir.path(), "smptebars", w, h, "yuv420p");
    let b = lavfi_frame(dir.path(), "rgbtestsrc", w, h, "yuv420p");

    // FFmpeg: 2 s of each at 10 fps, a 1 s fade starting at 0.5 s, blended as yuv420p.
    let out = dir.path().join("xfade.yuv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("smptebars=s={w}x{h}:r=10:d=2"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("rgbtestsrc=s={w}x{h}:r=10:d=2"))
        .args(["-filter_complex"])
        .arg(concat!(
            "[0]format=yuv420p[a];[1]format=yuv420p[b];",
            "[a][b]xfade=transition=fade:duration=1:offset=0.5"
        ))
        .args(["-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let frames = std::fs::read(&out).expect("xfade frames");
    let size = (w * h * 3 / 2) as usize;

    let mut comp = Compositor::with_ring(&ctx, w, h, [0, 0, 0], 1).expect("compositor");
    for k in 5..15usize {
        let weight = ((k as f64 / 10.0 - 0.5) / 1.0) as f32;
        let got = comp
            .submit(&[
                LayerInput {
                    frame: &a,
                    weight: 1.0 - weight,
                    fit: Fit::Contain,
                },
                LayerInput {
                    frame: &b,
                    weight,
                    fit: Fit::Contain,
                },
            ])
            .expect("submit")
            .expect("ring of 1");
        let ours: Vec<u8> = got
            .planes
            .iter()
            .flat_map(|p| p.data.iter().copied())
            .collect();
        let theirs = &frames[k * size..(k + 1) * size];
        let db = psnr(&ours, theirs);
        assert!(
            db >= 35.0,
            "frame {k} (weight {weight}): PSNR {db:.1} dB against xfade"
        );
        comp.recycle(got);
    }
}

#[test]
fn bad_layers_are_refused_with_the_field_named() {
    let ctx = context();
    let mut c = Compositor::new(&ctx, 32, 32, [0, 0, 0]).expect("compositor");
    let mut short = solid(32, 32, [16, 128, 128]);
    short.planes[1].data.truncate(10);
    let err = c
        .submit(&[LayerInput {
            frame: &short,
            weight: 1.0,
            fit: Fit::Fill,
        }])
        .expect_err("a truncated chroma plane");
    assert!(err.to_string().starts_with("layers[0]: planes[1]"), "{err}");
    let ok = solid(32, 32, [16, 128, 128]);
    let err = c
        .submit(&[LayerInput {
            frame: &ok,
            weight: f32::NAN,
            fit: Fit::Fill,
        }])
        .expect_err("a NaN weight");
    assert!(err.to_string().starts_with("layers[0]: weight"), "{err}");
    assert!(
        Compositor::new(&ctx, 33, 32, [0, 0, 0]).is_err(),
        "odd width accepted"
    );
}

/// Two output-shaped frames crossfade in their planes (`shaders/blend_planes.wgsl`): the
/// result is the byte-wise lerp and agrees with the general sampling path, which the same
/// pictures take when given as NV12.
#[test]
fn plane_blend_equals_the_lerp_and_the_general_path() {
    let ctx = context();
    let dir = tempfile::tempdir().expect("temp dir");
    // 72 is not a multiple of the 8-pixel block: the padded rows must not leak.
    let (w, h) = (72u32, 46u32);
    let a = lavfi_frame(dir.path(), "testsrc2", w, h, "yuv420p");
    let b = lavfi_frame(dir.path(), "smptebars", w, h, "yuv420p");
    let a12 = lavfi_frame(dir.path(), "testsrc2", w, h, "nv12");
    let b12 = lavfi_frame(dir.path(), "smptebars", w, h, "nv12");

    for weight in [0.0f32, 0.3, 0.5, 1.0] {
        let layers = |a, b| {
            [
                LayerInput {
                    frame: a,
                    weight: 1.0 - weight,
                    fit: Fit::Contain,
                },
                LayerInput {
                    frame: b,
                    weight,
                    fit: Fit::Contain,
                },
            ]
        };
        let blended = composite(&ctx, w, h, [0, 0, 0], &layers(&a, &b));
        let general = composite(&ctx, w, h, [0, 0, 0], &layers(&a12, &b12));
        for (i, plane) in blended.planes.iter().enumerate() {
            let lerp: Vec<f64> = a.planes[i]
                .data
                .iter()
                .zip(&b.planes[i].data)
                .map(|(&x, &y)| {
                    f64::from(x) * f64::from(1.0 - weight) + f64::from(y) * f64::from(weight)
                })
                .collect();
            let (max, _) = compare(plane, &lerp);
            assert!(
                max <= 0.5 + 1e-3,
                "plane {i} at {weight}: {max} from the lerp"
            );
            let other: Vec<f64> = general.planes[i]
                .data
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let (max, mean) = compare(plane, &other);
            assert!(
                max <= 1.0 && mean <= 0.5,
                "plane {i} at {weight}: general path {max}/{mean}"
            );
        }
    }
}
