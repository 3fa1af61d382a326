// Crossfade two frames that already are the output (BT.709 limited 4:2:0 at its size), in
// their Y'CbCr planes: every byte of the output is the lerp of the same byte of A and B.
// A lerp in gamma-encoded R'G'B' is the same lerp on Y'CbCr when both share a matrix, so
// this equals the general compositor's result at 1.5 bytes a pixel instead of sampling.

// Rust twin: `gpu::blend::BlendUniform`.
struct Blend {
    // Weight of B (the incoming clip); A gets 1 - weight.
    weight: f32,
    // 32-bit words in each of a, b and planes.
    words: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> blend: Blend;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> planes: array<u32>;

const WORDS_PER_INVOCATION: u32 = 4u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let first = id.x * WORDS_PER_INVOCATION;
    for (var i = first; i < min(first + WORDS_PER_INVOCATION, blend.words); i++) {
        let mixed = mix(unpack4x8unorm(a[i]), unpack4x8unorm(b[i]), blend.weight);
        planes[i] = pack4x8unorm(mixed);
    }
}
