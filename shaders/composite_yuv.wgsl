// Composite up to two layers straight into BT.709 limited-range 4:2:0 planes, one pass.
//
// Each invocation owns an 8x2 block of output pixels (four 2x2 chroma blocks) so that it
// writes whole 32-bit words of every plane. Every layer's colour maths (source matrix and
// range to R'G'B', alpha over the background, R'G'B' to BT.709 limited) is folded on the CPU
// into one affine 3x4 matrix, so a pixel costs one matrix product; a crossfade is a weighted
// sum of the layers' Y'CbCr, which equals the weighted sum in gamma-encoded R'G'B'.

struct Layer {
    // Affine rows: out = rows * (a, b, c, 1), (a, b, c) = Y'CbCr or premultiplied R'G'B'.
    m0: vec4<f32>,
    m1: vec4<f32>,
    m2: vec4<f32>,
    // Output pixel position -> normalised stored coordinates: origin + x * dx + y * dy.
    origin: vec2<f32>,
    dx: vec2<f32>,
    dy: vec2<f32>,
    // Luma-normalised to chroma-normalised coordinates (differs from 1 at odd sizes).
    chroma_scale: vec2<f32>,
    weight: f32,
    kind: u32,
    luma_taps_x: u32,
    luma_taps_y: u32,
    chroma_taps_x: u32,
    chroma_taps_y: u32,
    enabled: u32,
    // 1: the stored picture sits 1:1 on the output at the even pixel offset `origin`, with
    // 4:2:0 chroma, so plain texel loads replace filtered samples.
    exact: u32,
}

// Rust twin: `gpu::compositor::FrameUniform`.
struct Frame {
    layers: array<Layer, 2>,
    // Background as BT.709 limited Y'CbCr (normalised codes); w = weight left to it.
    background: vec4<f32>,
    width: u32,
    height: u32,
    y_stride_words: u32,
    c_stride_words: u32,
    u_offset_words: u32,
    v_offset_words: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var bilinear: sampler;
@group(0) @binding(2) var a_plane0: texture_2d<f32>;
@group(0) @binding(3) var a_plane1: texture_2d<f32>;
@group(0) @binding(4) var a_plane2: texture_2d<f32>;
@group(0) @binding(5) var b_plane0: texture_2d<f32>;
@group(0) @binding(6) var b_plane1: texture_2d<f32>;
@group(0) @binding(7) var b_plane2: texture_2d<f32>;
@group(0) @binding(8) var<storage, read_write> planes: array<u32>;

const KIND_PLANAR: u32 = 0u;
const KIND_NV12: u32 = 1u;
const KIND_RGBA: u32 = 2u;
const BLOCK_W: u32 = 8u;
const BLOCK_H: u32 = 2u;

// Offsets of `n` taps spread evenly over `span` output pixels, centred on 0.
fn tap_offset(k: u32, n: u32, span: f32) -> f32 {
    return ((f32(k) + 0.5) / f32(n) - 0.5) * span;
}

fn stored_uv(layer: Layer, pos: vec2<f32>) -> vec2<f32> {
    return layer.origin + pos.x * layer.dx + pos.y * layer.dy;
}

// The block's Cb, Cr sampled at its centre with enough taps not to alias when shrinking.
fn block_chroma(layer: Layer, p1: texture_2d<f32>, p2: texture_2d<f32>, centre: vec2<f32>)
    -> vec2<f32> {
    if layer.exact != 0u {
        let t = max((vec2<i32>(centre) - vec2<i32>(layer.origin)) / 2, vec2<i32>(0));
        if layer.kind == KIND_NV12 {
            return textureLoad(p1, t, 0).rg;
        }
        return vec2<f32>(textureLoad(p1, t, 0).r, textureLoad(p2, t, 0).r);
    }
    var sum = vec2<f32>(0.0);
    for (var j = 0u; j < layer.chroma_taps_y; j++) {
        for (var i = 0u; i < layer.chroma_taps_x; i++) {
            let ox = tap_offset(i, layer.chroma_taps_x, 2.0);
            let oy = tap_offset(j, layer.chroma_taps_y, 2.0);
            let uv = stored_uv(layer, centre + vec2<f32>(ox, oy)) * layer.chroma_scale;
            if layer.kind == KIND_NV12 {
                sum += textureSampleLevel(p1, bilinear, uv, 0.0).rg;
            } else {
                sum += vec2<f32>(
                    textureSampleLevel(p1, bilinear, uv, 0.0).r,
                    textureSampleLevel(p2, bilinear, uv, 0.0).r,
                );
            }
        }
    }
    return sum / f32(layer.chroma_taps_x * layer.chroma_taps_y);
}

// Plane 0 at one pixel, averaged over the luma taps: (Y', 0, 0, 1) or premultiplied R'G'B'A.
fn pixel_sample(layer: Layer, p0: texture_2d<f32>, centre: vec2<f32>) -> vec4<f32> {
    var sum = vec4<f32>(0.0);
    for (var j = 0u; j < layer.luma_taps_y; j++) {
        for (var i = 0u; i < layer.luma_taps_x; i++) {
            let ox = tap_offset(i, layer.luma_taps_x, 1.0);
            let oy = tap_offset(j, layer.luma_taps_y, 1.0);
            let s = textureSampleLevel(p0, bilinear, stored_uv(layer, centre + vec2(ox, oy)), 0.0);
            if layer.kind == KIND_RGBA {
                sum += vec4<f32>(s.rgb * s.a, s.a);
            } else {
                sum += vec4<f32>(s.r, 0.0, 0.0, 1.0);
            }
        }
    }
    return sum / f32(layer.luma_taps_x * layer.luma_taps_y);
}

// One pixel of one layer over the background, as output Y'CbCr.
fn pixel_value(layer: Layer, p0: texture_2d<f32>, centre: vec2<f32>, chroma: vec2<f32>)
    -> vec3<f32> {
    var s: vec4<f32>;
    if layer.exact != 0u {
        let t = vec2<i32>(centre) - vec2<i32>(layer.origin);
        if any(t < vec2<i32>(0)) || any(t >= vec2<i32>(textureDimensions(p0))) {
            return frame.background.xyz;
        }
        s = vec4<f32>(textureLoad(p0, t, 0).r, 0.0, 0.0, 1.0);
    } else {
        let uv = stored_uv(layer, centre);
        if any(uv < vec2<f32>(0.0)) || any(uv > vec2<f32>(1.0)) {
            return frame.background.xyz;
        }
        s = pixel_sample(layer, p0, centre);
    }
    if layer.kind != KIND_RGBA {
        s = vec4<f32>(s.x, chroma, 1.0);
    }
    let v = vec3<f32>(dot(layer.m0.xyz, s.xyz), dot(layer.m1.xyz, s.xyz), dot(layer.m2.xyz, s.xyz));
    let offset = vec3<f32>(layer.m0.w, layer.m1.w, layer.m2.w);
    return v + offset * s.a + frame.background.xyz * (1.0 - s.a);
}

// A 2x2 block's four Y' (top left, top right, bottom left, bottom right) and its Cb, Cr.
// Plain values, no arrays: a software driver keeps them in registers.
struct Block {
    y: vec4<f32>,
    c: vec2<f32>,
}

fn layer_block(
    layer: Layer,
    p0: texture_2d<f32>,
    p1: texture_2d<f32>,
    p2: texture_2d<f32>,
    centre: vec2<f32>,
) -> Block {
    var chroma = vec2<f32>(0.5);
    if layer.kind != KIND_RGBA {
        chroma = block_chroma(layer, p1, p2, centre);
    }
    let v0 = pixel_value(layer, p0, centre + vec2<f32>(-0.5, -0.5), chroma);
    let v1 = pixel_value(layer, p0, centre + vec2<f32>(0.5, -0.5), chroma);
    let v2 = pixel_value(layer, p0, centre + vec2<f32>(-0.5, 0.5), chroma);
    let v3 = pixel_value(layer, p0, centre + vec2<f32>(0.5, 0.5), chroma);
    return Block(vec4<f32>(v0.x, v1.x, v2.x, v3.x), (v0.yz + v1.yz + v2.yz + v3.yz) * 0.25);
}

// The block with every layer weighted in; what the weights leave is background.
fn composite_block(centre: vec2<f32>) -> Block {
    let bg = frame.background;
    var acc = Block(vec4<f32>(bg.x * bg.w), bg.yz * bg.w);
    let a = frame.layers[0];
    if a.enabled != 0u {
        let v = layer_block(a, a_plane0, a_plane1, a_plane2, centre);
        acc.y += a.weight * v.y;
        acc.c += a.weight * v.c;
    }
    let b = frame.layers[1];
    if b.enabled != 0u {
        let v = layer_block(b, b_plane0, b_plane1, b_plane2, centre);
        acc.y += b.weight * v.y;
        acc.c += b.weight * v.c;
    }
    return acc;
}

fn pack_word(a: f32, b: f32, c: f32, d: f32) -> u32 {
    return pack4x8unorm(vec4<f32>(a, b, c, d));
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let origin = vec2<u32>(id.x * BLOCK_W, id.y * BLOCK_H);
    if origin.x >= frame.width || origin.y >= frame.height {
        return;
    }
    let o = vec2<f32>(origin) + vec2<f32>(1.0);
    let b0 = composite_block(o);
    let b1 = composite_block(o + vec2<f32>(2.0, 0.0));
    let b2 = composite_block(o + vec2<f32>(4.0, 0.0));
    let b3 = composite_block(o + vec2<f32>(6.0, 0.0));

    // Two rows of two Y words, then one U word and one V word.
    let top = origin.y * frame.y_stride_words + origin.x / 4u;
    let bottom = top + frame.y_stride_words;
    planes[top] = pack_word(b0.y.x, b0.y.y, b1.y.x, b1.y.y);
    planes[top + 1u] = pack_word(b2.y.x, b2.y.y, b3.y.x, b3.y.y);
    planes[bottom] = pack_word(b0.y.z, b0.y.w, b1.y.z, b1.y.w);
    planes[bottom + 1u] = pack_word(b2.y.z, b2.y.w, b3.y.z, b3.y.w);
    let c_index = (origin.y / 2u) * frame.c_stride_words + origin.x / 8u;
    planes[frame.u_offset_words + c_index] = pack_word(b0.c.x, b1.c.x, b2.c.x, b3.c.x);
    planes[frame.v_offset_words + c_index] = pack_word(b0.c.y, b1.c.y, b2.c.y, b3.c.y);
}
