//! The cheap crossfade: when both layers of a frame already are the output (BT.709 limited
//! 4:2:0 at its size, upright, square pixels), they are uploaded as plain buffers laid out
//! like the output planes and blended byte by byte by `shaders/blend_planes.wgsl`. On a
//! software driver this costs a fraction of sampling textures, and it is the common
//! crossfade between two sources shot at the output's format.

use super::compositor::{LayerInput, OutputLayout};
use crate::media::frame::{Matrix, PixelLayout, Range, Rotation, VideoFrame};

/// Rust twin of `Blend` in `shaders/blend_planes.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlendUniform {
    pub weight: f32,
    pub words: u32,
    pub pad0: u32,
    pub pad1: u32,
}

const WORKGROUP: u32 = 64;
const WORDS_PER_INVOCATION: u32 = 4;

pub(super) struct PlaneBlend {
    pipeline: wgpu::ComputePipeline,
    uniform: wgpu::Buffer,
    inputs: [wgpu::Buffer; 2],
    group: wgpu::BindGroup,
    layout: OutputLayout,
}

impl PlaneBlend {
    pub(super) fn new(
        device: &wgpu::Device,
        layout: OutputLayout,
        output: &wgpu::Buffer,
    ) -> PlaneBlend {
        let buffer = |label, size, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let input_usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let inputs = [
            buffer("blend input a", layout.size as u64, input_usage),
            buffer("blend input b", layout.size as u64, input_usage),
        ];
        let uniform = buffer(
            "blend uniform",
            std::mem::size_of::<BlendUniform>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let bind_layout = bind_group_layout(device);
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("blend planes"),
            layout: &bind_layout,
            entries: &[
                entry(0, &uniform),
                entry(1, &inputs[0]),
                entry(2, &inputs[1]),
                entry(3, output),
            ],
        });
        PlaneBlend {
            pipeline: pipeline(device, &bind_layout),
            uniform,
            inputs,
            group,
            layout,
        }
    }

    /// True when every layer already is the output, so the byte-wise blend is exact.
    pub(super) fn applies(layers: &[LayerInput], width: u32, height: u32) -> bool {
        layers.len() == 2
            && layers
                .iter()
                .all(|l| is_output_shaped(l.frame, width, height))
    }

    /// Uploads both layers and records the blend into `encoder`, writing the output buffer.
    pub(super) fn record(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        layers: &[LayerInput],
    ) {
        for (input, layer) in self.inputs.iter().zip(layers) {
            self.upload(queue, input, layer.frame);
        }
        let words = (self.layout.size / 4) as u32;
        let weight = layers.get(1).map_or(0.0, |l| l.weight);
        let uniform = BlendUniform {
            weight,
            words,
            ..Default::default()
        };
        queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&uniform));

        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(words.div_ceil(WORKGROUP * WORDS_PER_INVOCATION), 1, 1);
    }

    /// Writes the frame's planes row by row into the buffer at the output's layout, through
    /// the queue's own staging memory (no copy of ours in between).
    fn upload(&self, queue: &wgpu::Queue, input: &wgpu::Buffer, frame: &VideoFrame) {
        let Some(size) = wgpu::BufferSize::new(self.layout.size as u64) else {
            return;
        };
        let Some(mut view) = queue.write_buffer_with(input, 0, size) else {
            return;
        };
        let l = self.layout;
        let targets = [
            (0, l.y_stride),
            (l.u_offset, l.c_stride),
            (l.v_offset, l.c_stride),
        ];
        for (plane, (offset, stride)) in frame.planes.iter().zip(targets) {
            let width = plane.width as usize;
            let rows = plane.data.chunks(plane.stride).take(plane.height as usize);
            for (row, src) in rows.enumerate() {
                let start = offset + row * stride;
                view.slice(start..start + width)
                    .copy_from_slice(&src[..width]);
            }
        }
    }
}

/// A frame that can be encoded as it is.
pub(super) fn is_output_shaped(f: &VideoFrame, width: u32, height: u32) -> bool {
    f.layout == PixelLayout::Yuv420p
        && f.matrix == Matrix::Bt709
        && f.range == Range::Limited
        && f.rotation == Rotation::None
        && f.width == width
        && f.height == height
        && f.display_size() == (f64::from(width), f64::from(height))
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let buffer = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let read = wgpu::BufferBindingType::Storage { read_only: true };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("blend planes"),
        entries: &[
            buffer(0, wgpu::BufferBindingType::Uniform),
            buffer(1, read),
            buffer(2, read),
            buffer(3, wgpu::BufferBindingType::Storage { read_only: false }),
        ],
    })
}

fn pipeline(device: &wgpu::Device, bind_layout: &wgpu::BindGroupLayout) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("blend_planes.wgsl"),
        source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/blend_planes.wgsl").into()),
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("blend planes"),
        bind_group_layouts: &[Some(bind_layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("blend planes"),
        layout: Some(&layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}
