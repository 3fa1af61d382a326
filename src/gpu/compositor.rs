//! The per-frame path: upload each layer's planes into pooled textures, run the one compute
//! pass of `shaders/composite_yuv.wgsl`, copy its planes into the next staging buffer of a
//! ring and hand back the oldest finished frame, so the GPU renders frame N+1 while frame N
//! is mapped and copied out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::blend::{PlaneBlend, is_output_shaped};
use super::colour::{Affine, apply, rgb_to_output, source_to_output};
use super::fit::{Placement, placement};
use super::{GpuContext, GpuError};
use crate::media::frame::{PixelLayout, Plane, Rotation, VideoFrame};
use crate::project::Fit;

/// One visible clip's frame on an output frame.
pub struct LayerInput<'a> {
    pub frame: &'a VideoFrame,
    /// Crossfade weight; the weights of a frame's layers sum to 1.
    pub weight: f32,
    pub fit: Fit,
}

/// Rust twin of `Layer` in `shaders/composite_yuv.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LayerUniform {
    pub m0: [f32; 4],
    pub m1: [f32; 4],
    pub m2: [f32; 4],
    pub origin: [f32; 2],
    pub dx: [f32; 2],
    pub dy: [f32; 2],
    pub chroma_scale: [f32; 2],
    pub weight: f32,
    pub kind: u32,
    pub luma_taps_x: u32,
    pub luma_taps_y: u32,
    pub chroma_taps_x: u32,
    pub chroma_taps_y: u32,
    pub enabled: u32,
    pub exact: u32,
}

/// Rust twin of `Frame` in `shaders/composite_yuv.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FrameUniform {
    pub layers: [LayerUniform; 2],
    pub background: [f32; 4],
    pub width: u32,
    pub height: u32,
    pub y_stride_words: u32,
    pub c_stride_words: u32,
    pub u_offset_words: u32,
    pub v_offset_words: u32,
    pub pad0: u32,
    pub pad1: u32,
}

const KIND_PLANAR: u32 = 0;
const KIND_NV12: u32 = 1;
const KIND_RGBA: u32 = 2;
/// Bilinear taps per axis at most: enough for an 16x shrink without aliasing.
const MAX_TAPS: u32 = 8;
/// Plane sets kept for reuse; the least recently used beyond this are dropped.
const POOL_SETS: usize = 6;
const WORKGROUP: u32 = 8;
const BLOCK_W: u32 = 8;
/// The ring size `Compositor::new` uses.
pub const DEFAULT_RING: usize = 3;

const SLOT_PENDING: u8 = 0;
const SLOT_MAPPED: u8 = 1;
const SLOT_FAILED: u8 = 2;

/// The textures of one uploaded frame shape, reused for every frame of that shape.
struct PlaneSet {
    id: u64,
    key: (PixelLayout, u32, u32),
    textures: Vec<wgpu::Texture>,
    views: [wgpu::TextureView; 3],
    last_used: u64,
}

/// Where the output planes lie in the storage and staging buffers (in bytes).
#[derive(Clone, Copy)]
pub(super) struct OutputLayout {
    pub(super) y_stride: usize,
    pub(super) c_stride: usize,
    pub(super) u_offset: usize,
    pub(super) v_offset: usize,
    pub(super) size: usize,
}

struct Slot {
    buffer: wgpu::Buffer,
    state: Arc<AtomicU8>,
}

enum Pending {
    Gpu {
        slot: usize,
        submission: wgpu::SubmissionIndex,
        pts: f64,
    },
    Ready(VideoFrame),
}

/// Composites output frames of one size and background; see the module docs of `gpu`.
pub struct Compositor {
    device: wgpu::Device,
    queue: wgpu::Queue,
    width: u32,
    height: u32,
    background: [f64; 3],
    pipeline: wgpu::ComputePipeline,
    bind_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    uniform: wgpu::Buffer,
    output: wgpu::Buffer,
    layout: OutputLayout,
    blend: PlaneBlend,
    blank: wgpu::TextureView,
    sets: Vec<PlaneSet>,
    next_set_id: u64,
    bind_groups: HashMap<(u64, u64), wgpu::BindGroup>,
    slots: Vec<Slot>,
    next_slot: usize,
    in_flight: VecDeque<Pending>,
    spare: Vec<VideoFrame>,
    frame_counter: u64,
}

impl Compositor {
    /// A compositor for `width` x `height` output (even sizes) with a ring of three staging
    /// buffers.
    pub fn new(
        ctx: &GpuContext,
        width: u32,
        height: u32,
        background: [u8; 3],
    ) -> Result<Compositor, GpuError> {
        Compositor::with_ring(ctx, width, height, background, DEFAULT_RING)
    }

    /// As [`Compositor::new`] with `ring` staging buffers (1 turns the overlap off).
    pub fn with_ring(
        ctx: &GpuContext,
        width: u32,
        height: u32,
        background: [u8; 3],
        ring: usize,
    ) -> Result<Compositor, GpuError> {
        let max = ctx.max_side();
        if width < 2
            || height < 2
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width > max
            || height > max
        {
            return Err(GpuError::OutputSize { width, height, max });
        }
        if ring == 0 {
            return Err(GpuError::Ring(ring));
        }
        let device = ctx.device.clone();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_layout = bind_group_layout(&device);
        let pipeline = compute_pipeline(&device, &bind_layout);
        let layout = output_layout(width, height);
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: layout.size as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let output = buffer(
            "output planes",
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        let slots = (0..ring)
            .map(|_| Slot {
                buffer: buffer(
                    "staging",
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                ),
                state: Arc::new(AtomicU8::new(SLOT_PENDING)),
            })
            .collect();
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("frame uniform"),
            size: std::mem::size_of::<FrameUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("bilinear"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let blank = plane_texture(&device, 1, 1, wgpu::TextureFormat::R8Unorm)
            .create_view(&Default::default());
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Validation(e.to_string()));
        }

        let bg = background.map(|c| f64::from(c) / 255.0);
        let blend = PlaneBlend::new(&device, layout, &output);
        Ok(Compositor {
            blend,
            device,
            queue: ctx.queue.clone(),
            width,
            height,
            background: apply(&rgb_to_output(), bg),
            pipeline,
            bind_layout,
            sampler,
            uniform,
            output,
            layout,
            blank,
            sets: Vec::new(),
            next_set_id: 0,
            bind_groups: HashMap::new(),
            slots,
            next_slot: 0,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            frame_counter: 0,
        })
    }

    /// Uploads and composites one output frame (layers bottom first, weights summing to 1)
    /// and starts its readback. Returns the oldest finished frame once the ring is full,
    /// else `None`. Allocates nothing in steady state.
    pub fn submit(&mut self, layers: &[LayerInput]) -> Result<Option<VideoFrame>, GpuError> {
        if layers.len() > 2 {
            return Err(GpuError::TooManyLayers(layers.len()));
        }
        for (index, layer) in layers.iter().enumerate() {
            if !(0.0..=1.0).contains(&layer.weight) {
                let reason = format!("weight {}: must be between 0 and 1", layer.weight);
                return Err(GpuError::Layer { index, reason });
            }
            check_frame(layer.frame).map_err(|reason| GpuError::Layer { index, reason })?;
        }
        self.frame_counter += 1;
        let pts = layers.last().map_or(0.0, |l| l.frame.pts);

        let pending = match layers {
            [only] if self.is_passthrough(only) => {
                let mut out = self.take_output();
                copy_planes(only.frame, &mut out);
                out.pts = pts;
                Pending::Ready(out)
            }
            _ if PlaneBlend::applies(layers, self.width, self.height) => {
                let mut encoder = self.device.create_command_encoder(&Default::default());
                self.blend.record(&self.queue, &mut encoder, layers);
                self.read_back(encoder, pts)
            }
            _ => self.encode(layers, pts),
        };
        self.in_flight.push_back(pending);
        if self.in_flight.len() >= self.slots.len() {
            return self.finish_oldest();
        }
        Ok(None)
    }

    /// Returns the frames still in flight, in order.
    pub fn flush(&mut self) -> Result<Vec<VideoFrame>, GpuError> {
        let mut out = Vec::with_capacity(self.in_flight.len());
        while let Some(frame) = self.finish_oldest()? {
            out.push(frame);
        }
        Ok(out)
    }

    /// Gives an output frame's buffers back for reuse.
    pub fn recycle(&mut self, frame: VideoFrame) {
        let fits = frame.width == self.width
            && frame.height == self.height
            && frame.layout == PixelLayout::Yuv420p
            && frame.planes.len() == 3;
        if fits && self.spare.len() < self.slots.len() + 2 {
            self.spare.push(frame);
        }
    }

    /// A frame that already is the output: one opaque layer at full weight, BT.709
    /// limited 4:2:0, the output's size, square pixels, no rotation.
    fn is_passthrough(&self, layer: &LayerInput) -> bool {
        layer.weight >= 1.0 - 1e-6 && is_output_shaped(layer.frame, self.width, self.height)
    }

    fn take_output(&mut self) -> VideoFrame {
        // Allocates only until the pool holds a frame per ring slot.
        self.spare
            .pop()
            .unwrap_or_else(|| VideoFrame::new_output(self.width, self.height))
    }

    /// Uploads the layers, records the pass and the copy into the next staging buffer.
    fn encode(&mut self, layers: &[LayerInput], pts: f64) -> Pending {
        let mut uniform = FrameUniform {
            width: self.width,
            height: self.height,
            y_stride_words: (self.layout.y_stride / 4) as u32,
            c_stride_words: (self.layout.c_stride / 4) as u32,
            u_offset_words: (self.layout.u_offset / 4) as u32,
            v_offset_words: (self.layout.v_offset / 4) as u32,
            ..Default::default()
        };
        let mut set_ids = [u64::MAX; 2];
        let mut covered = 0.0f32;
        for (i, layer) in layers.iter().enumerate() {
            let set = self.upload(layer.frame, set_ids[0]);
            set_ids[i] = self.sets[set].id;
            uniform.layers[i] = layer_uniform(layer, self.width, self.height);
            covered += uniform.layers[i].weight;
        }
        let bg = self.background.map(|v| v as f32);
        uniform.background = [bg[0], bg[1], bg[2], (1.0 - covered).max(0.0)];
        self.queue
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&uniform));
        self.ensure_bind_group(set_ids);

        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, self.bind_groups.get(&(set_ids[0], set_ids[1])), &[]);
            let blocks_x = self.width.div_ceil(BLOCK_W);
            let blocks_y = self.height / 2;
            pass.dispatch_workgroups(
                blocks_x.div_ceil(WORKGROUP),
                blocks_y.div_ceil(WORKGROUP),
                1,
            );
        }
        self.read_back(encoder, pts)
    }

    /// Copies the output planes into the next staging buffer, submits `encoder` and starts
    /// the mapping; the frame is finished in `finish_oldest`.
    fn read_back(&mut self, mut encoder: wgpu::CommandEncoder, pts: f64) -> Pending {
        let slot = self.next_slot;
        self.next_slot = (slot + 1) % self.slots.len();
        let staging = &self.slots[slot];
        encoder.copy_buffer_to_buffer(&self.output, 0, &staging.buffer, 0, None);
        let submission = self.queue.submit([encoder.finish()]);

        staging.state.store(SLOT_PENDING, Ordering::Release);
        let state = Arc::clone(&staging.state);
        staging
            .buffer
            .map_async(wgpu::MapMode::Read, .., move |result| {
                let s = if result.is_ok() {
                    SLOT_MAPPED
                } else {
                    SLOT_FAILED
                };
                state.store(s, Ordering::Release);
            });
        Pending::Gpu {
            slot,
            submission,
            pts,
        }
    }

    /// Waits for the oldest frame in flight and copies it out row by row.
    fn finish_oldest(&mut self) -> Result<Option<VideoFrame>, GpuError> {
        let (slot, submission, pts) = match self.in_flight.pop_front() {
            None => return Ok(None),
            Some(Pending::Ready(frame)) => return Ok(Some(frame)),
            Some(Pending::Gpu {
                slot,
                submission,
                pts,
            }) => (slot, submission, pts),
        };
        let wait = wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        };
        self.device
            .poll(wait)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let staging = &self.slots[slot];
        if staging.state.load(Ordering::Acquire) != SLOT_MAPPED {
            return Err(GpuError::Readback(format!(
                "staging buffer {slot} was not mapped"
            )));
        }

        let mut out = self
            .spare
            .pop()
            .unwrap_or_else(|| VideoFrame::new_output(self.width, self.height));
        {
            let view = staging
                .buffer
                .get_mapped_range(..)
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            let l = self.layout;
            let offsets = [
                (0, l.y_stride),
                (l.u_offset, l.c_stride),
                (l.v_offset, l.c_stride),
            ];
            for (plane, (offset, stride)) in out.planes.iter_mut().zip(offsets) {
                copy_rows(&view[offset..], stride, plane);
            }
        }
        staging.buffer.unmap();
        out.pts = pts;
        Ok(Some(out))
    }

    /// Uploads `frame`'s planes into a pooled set of its shape (not `busy`) and returns its
    /// index in `self.sets`.
    fn upload(&mut self, frame: &VideoFrame, busy: u64) -> usize {
        let key = (frame.layout, frame.width, frame.height);
        let found = self.sets.iter().position(|s| s.key == key && s.id != busy);
        let index = match found {
            Some(i) => i,
            None => self.new_set(key),
        };
        let set = &mut self.sets[index];
        set.last_used = self.frame_counter;
        for (texture, plane) in set.textures.iter().zip(&frame.planes) {
            let size = texture.size();
            self.queue.write_texture(
                texture.as_image_copy(),
                &plane.data,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(plane.stride as u32),
                    rows_per_image: Some(size.height),
                },
                size,
            );
        }
        index
    }

    /// Creates a plane set, dropping the least recently used one beyond the pool's size.
    fn new_set(&mut self, key: (PixelLayout, u32, u32)) -> usize {
        if self.sets.len() >= POOL_SETS
            && let Some(oldest) = (0..self.sets.len()).min_by_key(|&i| self.sets[i].last_used)
        {
            self.sets.swap_remove(oldest);
            self.bind_groups.clear();
        }
        let textures: Vec<wgpu::Texture> = plane_shapes(key.0, key.1, key.2)
            .into_iter()
            .map(|(w, h, format)| plane_texture(&self.device, w, h, format))
            .collect();
        let view = |i: usize| {
            textures.get(i).map_or_else(
                || self.blank.clone(),
                |t| t.create_view(&Default::default()),
            )
        };
        let views = [view(0), view(1), view(2)];
        self.next_set_id += 1;
        self.sets.push(PlaneSet {
            id: self.next_set_id,
            key,
            textures,
            views,
            last_used: self.frame_counter,
        });
        self.sets.len() - 1
    }

    fn ensure_bind_group(&mut self, ids: [u64; 2]) {
        if self.bind_groups.contains_key(&(ids[0], ids[1])) {
            return;
        }
        let views = |id: u64| self.sets.iter().find(|s| s.id == id).map(|s| &s.views);
        let blank = [&self.blank, &self.blank, &self.blank];
        let pick = |id| views(id).map_or(blank, |v| [&v[0], &v[1], &v[2]]);
        let (a, b) = (pick(ids[0]), pick(ids[1]));
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: self.uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::Sampler(&self.sampler),
            },
        ];
        for (i, view) in a.iter().chain(b.iter()).enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 2 + i as u32,
                resource: wgpu::BindingResource::TextureView(view),
            });
        }
        entries.push(wgpu::BindGroupEntry {
            binding: 8,
            resource: self.output.as_entire_binding(),
        });
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("composite"),
            layout: &self.bind_layout,
            entries: &entries,
        });
        self.bind_groups.insert((ids[0], ids[1]), group);
    }
}

/// Each plane's texture size and format for a frame shape.
fn plane_shapes(layout: PixelLayout, w: u32, h: u32) -> Vec<(u32, u32, wgpu::TextureFormat)> {
    use wgpu::TextureFormat::{R8Unorm, Rg8Unorm, Rgba8Unorm};
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match layout {
        PixelLayout::Yuv420p => vec![(w, h, R8Unorm), (cw, ch, R8Unorm), (cw, ch, R8Unorm)],
        PixelLayout::Yuv422p => vec![(w, h, R8Unorm), (cw, h, R8Unorm), (cw, h, R8Unorm)],
        PixelLayout::Yuv444p => vec![(w, h, R8Unorm), (w, h, R8Unorm), (w, h, R8Unorm)],
        PixelLayout::Nv12 => vec![(w, h, R8Unorm), (cw, ch, Rg8Unorm)],
        PixelLayout::Rgba => vec![(w, h, Rgba8Unorm)],
    }
}

fn bytes_per_pixel(format: wgpu::TextureFormat) -> usize {
    match format {
        wgpu::TextureFormat::Rg8Unorm => 2,
        wgpu::TextureFormat::Rgba8Unorm => 4,
        _ => 1,
    }
}

/// Checks that a frame's planes hold what its layout and size promise.
fn check_frame(frame: &VideoFrame) -> Result<(), String> {
    if frame.width == 0 || frame.height == 0 {
        return Err(format!(
            "frame size {}x{}: must be at least 1x1",
            frame.width, frame.height
        ));
    }
    let shapes = plane_shapes(frame.layout, frame.width, frame.height);
    if frame.planes.len() != shapes.len() {
        return Err(format!(
            "{:?} frame has {} planes, expected {}",
            frame.layout,
            frame.planes.len(),
            shapes.len()
        ));
    }
    for (i, (plane, (w, h, format))) in frame.planes.iter().zip(shapes).enumerate() {
        let row = w as usize * bytes_per_pixel(format);
        let need = plane.stride * (h as usize - 1) + row;
        if plane.stride < row || plane.data.len() < need || plane.stride > u32::MAX as usize {
            return Err(format!(
                "planes[{i}]: stride {} and {} bytes for {w}x{h}, need a stride >= {row} and \
                 >= {need} bytes",
                plane.stride,
                plane.data.len()
            ));
        }
    }
    Ok(())
}

fn plane_texture(
    device: &wgpu::Device,
    w: u32,
    h: u32,
    format: wgpu::TextureFormat,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("plane"),
        size: wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// Taps per axis so that each bilinear tap averages at most 2x2 texels.
fn taps(footprint: f64) -> u32 {
    ((footprint / 2.0 - 1e-6).ceil().max(1.0) as u32).min(MAX_TAPS)
}

fn affine_rows(m: &Affine) -> [[f32; 4]; 3] {
    m.map(|row| row.map(|v| v as f32))
}

fn layer_uniform(layer: &LayerInput, width: u32, height: u32) -> LayerUniform {
    let f = layer.frame;
    let p = placement(f, layer.fit, width, height);
    let (kind, m) = match f.layout {
        PixelLayout::Rgba => (KIND_RGBA, rgb_to_output()),
        PixelLayout::Nv12 => (KIND_NV12, source_to_output(f.matrix, f.range)),
        _ => (KIND_PLANAR, source_to_output(f.matrix, f.range)),
    };
    let (cw, ch) = match f.layout {
        PixelLayout::Yuv444p | PixelLayout::Rgba => (f.width, f.height),
        PixelLayout::Yuv422p => (f.width.div_ceil(2), f.height),
        PixelLayout::Yuv420p | PixelLayout::Nv12 => (f.width.div_ceil(2), f.height.div_ceil(2)),
    };
    let chroma_scale = [
        f.width as f32 / (cw as f32 * (f.width as f32 / cw as f32).round()),
        f.height as f32 / (ch as f32 * (f.height as f32 / ch as f32).round()),
    ];
    let (lx, ly) = p.footprint(f.width, f.height);
    let (cx, cy) = p.footprint(cw, ch);
    let [m0, m1, m2] = affine_rows(&m);
    let v2 = |v: [f64; 2]| [v[0] as f32, v[1] as f32];
    LayerUniform {
        m0,
        m1,
        m2,
        origin: v2(p.origin),
        dx: v2(p.dx),
        dy: v2(p.dy),
        chroma_scale,
        weight: layer.weight.clamp(0.0, 1.0),
        kind,
        luma_taps_x: taps(lx),
        luma_taps_y: taps(ly),
        chroma_taps_x: taps(2.0 * cx),
        chroma_taps_y: taps(2.0 * cy),
        enabled: 1,
        exact: 0,
    }
    .with_exact_path(f, &p)
}

impl LayerUniform {
    /// Switches to texel loads when the picture sits 1:1 at an even whole-pixel offset with
    /// 4:2:0 chroma: the filtered samples would return the texels exactly, at several times
    /// the cost on a software driver.
    fn with_exact_path(mut self, f: &VideoFrame, p: &Placement) -> LayerUniform {
        let whole = |v: f64| (v - v.round()).abs() < 1e-9 && (v.round() as i64) % 2 == 0;
        let one_to_one = f.rotation == Rotation::None
            && matches!(f.layout, PixelLayout::Yuv420p | PixelLayout::Nv12)
            && f.width.is_multiple_of(2)
            && f.height.is_multiple_of(2)
            && p.rect[2] == f64::from(f.width)
            && p.rect[3] == f64::from(f.height)
            && whole(p.rect[0])
            && whole(p.rect[1]);
        if one_to_one {
            self.exact = 1;
            self.origin = [p.rect[0] as f32, p.rect[1] as f32];
        }
        self
    }
}

/// Y rows padded to whole 8-pixel blocks, chroma rows to whole 4-sample words.
fn output_layout(width: u32, height: u32) -> OutputLayout {
    let blocks = width.div_ceil(BLOCK_W) as usize;
    let y_stride = blocks * 8;
    let c_stride = blocks * 4;
    let y_size = y_stride * height as usize;
    let c_size = c_stride * (height / 2) as usize;
    OutputLayout {
        y_stride,
        c_stride,
        u_offset: y_size,
        v_offset: y_size + c_size,
        size: y_size + 2 * c_size,
    }
}

/// Copies `plane.height` rows of `plane.width` bytes from padded `src` rows.
fn copy_rows(src: &[u8], stride: usize, plane: &mut Plane) {
    let w = plane.width as usize;
    for (dst, src) in plane
        .data
        .chunks_exact_mut(plane.stride)
        .zip(src.chunks(stride))
    {
        dst[..w].copy_from_slice(&src[..w]);
    }
}

/// The passthrough: a frame that already is the output, copied row by row.
fn copy_planes(src: &VideoFrame, out: &mut VideoFrame) {
    for (dst, src) in out.planes.iter_mut().zip(&src.planes) {
        let w = dst.width as usize;
        for (d, s) in dst
            .data
            .chunks_exact_mut(dst.stride)
            .zip(src.data.chunks(src.stride))
        {
            d[..w].copy_from_slice(&s[..w]);
        }
    }
}

fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    };
    let texture = wgpu::BindingType::Texture {
        sample_type: wgpu::TextureSampleType::Float { filterable: true },
        view_dimension: wgpu::TextureViewDimension::D2,
        multisampled: false,
    };
    let mut entries = vec![
        entry(
            0,
            wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
        ),
        entry(
            1,
            wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
        ),
    ];
    entries.extend((2..8).map(|b| entry(b, texture)));
    entries.push(entry(
        8,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
    ));
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("composite"),
        entries: &entries,
    })
}

fn compute_pipeline(
    device: &wgpu::Device,
    bind_layout: &wgpu::BindGroupLayout,
) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("composite_yuv.wgsl"),
        source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/composite_yuv.wgsl").into()),
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("composite"),
        bind_group_layouts: &[Some(bind_layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("composite"),
        layout: Some(&layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

// The render pipeline runs the compositor on its own thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Compositor>();
    send::<GpuContext>();
};
