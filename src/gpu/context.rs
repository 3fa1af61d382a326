//! The headless device. Rule: a real GPU when one is present (discrete first, then
//! integrated), else any adapter the instance offers, which on a machine without a GPU is
//! Mesa's llvmpipe through Vulkan (lavapipe) or GL. `WGPU_BACKEND` (e.g. `vulkan`, `gl`)
//! limits the backends searched; without it the primary backends (Vulkan, Metal, DX12) are
//! searched first and GL only when they offer nothing, so a machine without EGL drivers
//! does not log GL's failure on every start.

use super::GpuError;

/// A wgpu device and queue with the adapter they came from.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
}

impl GpuContext {
    /// Opens the device by the rule above and logs the adapter once (info).
    pub fn new() -> Result<GpuContext, GpuError> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
        let explicit = std::env::var_os("WGPU_BACKEND").is_some();
        let backends = desc.backends;
        let adapter = if explicit {
            None
        } else {
            find_adapter(wgpu::Backends::PRIMARY)
        }
        .or_else(|| find_adapter(backends))
        .ok_or_else(|| GpuError::NoAdapter {
            backends: format!("{backends:?}"),
        })?;
        let info = adapter.get_info();

        let request = wgpu::DeviceDescriptor {
            label: Some("render-node"),
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&request)).map_err(|e| GpuError::Device {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(adapter = %info.name, backend = ?info.backend,
            kind = ?info.device_type, "GPU adapter chosen");
        Ok(GpuContext {
            device,
            queue,
            adapter: info,
        })
    }

    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub fn adapter_name(&self) -> String {
        self.adapter.name.clone()
    }

    /// The largest texture side the device accepts.
    pub(crate) fn max_side(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }
}

/// The best adapter among `backends`, by [`pick_adapter`].
fn find_adapter(backends: wgpu::Backends) -> Option<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    pick_adapter(pollster::block_on(instance.enumerate_adapters(backends)))
}

/// Discrete GPU, then integrated, then virtual, then anything (CPU adapters last); among
/// equals, the instance's order (Vulkan before GL).
fn pick_adapter(adapters: Vec<wgpu::Adapter>) -> Option<wgpu::Adapter> {
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    adapters
        .into_iter()
        .enumerate()
        .min_by_key(|(i, a)| (rank(a), *i))
        .map(|(_, a)| a)
}
