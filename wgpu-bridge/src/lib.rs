//! wgpu 0.16's API, exactly as far as wonnx 0.5.1 calls it, implemented on
//! current wgpu. Everything that did not change is re-exported; the items
//! defined here shadow the glob re-export. See README.md for why this exists
//! and when to delete it.

pub use wgpu_next::*;

use std::ops::Deref;
use std::sync::Arc;

/// 0.16's instance descriptor. The DX12 compiler choice has no effect here.
pub struct InstanceDescriptor {
    pub backends: Backends,
    pub dx12_shader_compiler: Dx12Compiler,
}

/// 0.16's DX12 shader compiler choice (ignored: we never run on DX12).
pub enum Dx12Compiler {
    Fxc,
}

pub struct Instance(wgpu_next::Instance);

impl Instance {
    pub fn new(desc: InstanceDescriptor) -> Self {
        let mut next = wgpu_next::InstanceDescriptor::new_without_display_handle();
        next.backends = desc.backends;
        Instance(wgpu_next::Instance::new(next))
    }
}

pub struct Adapter(wgpu_next::Adapter);

impl Adapter {
    /// 0.16's signature (the trace path is ignored). The device gets the
    /// adapter's own limits, so large models fit, and reports errors and
    /// device loss to [`bridge`] instead of panicking.
    pub async fn request_device(
        &self,
        desc: &DeviceDescriptor<'_>,
        _trace_path: Option<&std::path::Path>,
    ) -> Result<(Device, Queue), RequestDeviceError> {
        let desc = DeviceDescriptor { required_limits: self.0.limits(), ..desc.clone() };
        let (device, queue) = self.0.request_device(&desc).await?;
        device.on_uncaptured_error(Arc::new(|e: Error| bridge::record(format!("GPU error: {e}"))));
        device.set_device_lost_callback(|reason, message| {
            bridge::record(format!("GPU device lost ({reason:?}): {message}"));
        });
        Ok((Device(device), queue))
    }
}

/// The real device, with 0.16's versions of the methods whose signatures changed.
pub struct Device(wgpu_next::Device);

impl Deref for Device {
    type Target = wgpu_next::Device;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// 0.16's compute pipeline descriptor: `entry_point` is a plain `&str`.
pub struct ComputePipelineDescriptor<'a> {
    pub label: Label<'a>,
    pub layout: Option<&'a PipelineLayout>,
    pub module: &'a ShaderModule,
    pub entry_point: &'a str,
}

/// 0.16's `Maintain`.
pub enum Maintain {
    Wait,
    Poll,
}

impl Device {
    pub fn create_compute_pipeline(&self, desc: &ComputePipelineDescriptor<'_>) -> ComputePipeline {
        self.0.create_compute_pipeline(&wgpu_next::ComputePipelineDescriptor {
            label: desc.label,
            layout: desc.layout,
            module: desc.module,
            entry_point: Some(desc.entry_point),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    pub fn create_command_encoder(&self, desc: &CommandEncoderDescriptor<'_>) -> CommandEncoder {
        CommandEncoder(self.0.create_command_encoder(desc))
    }

    /// Returns whether the queue is empty; a polling error is recorded in [`bridge`].
    pub fn poll(&self, maintain: Maintain) -> bool {
        let poll = match maintain {
            Maintain::Wait => PollType::wait_indefinitely(),
            Maintain::Poll => PollType::Poll,
        };
        match self.0.poll(poll) {
            Ok(status) => status.is_queue_empty(),
            Err(e) => {
                bridge::record(format!("GPU poll failed: {e}"));
                false
            }
        }
    }
}

/// 0.16's compute pass descriptor (no timestamp writes).
pub struct ComputePassDescriptor<'a> {
    pub label: Label<'a>,
}

pub struct CommandEncoder(wgpu_next::CommandEncoder);

impl CommandEncoder {
    pub fn begin_compute_pass(&mut self, desc: &ComputePassDescriptor<'_>) -> ComputePass<'_> {
        self.0.begin_compute_pass(&wgpu_next::ComputePassDescriptor { label: desc.label, timestamp_writes: None })
    }

    pub fn finish(self) -> CommandBuffer {
        self.0.finish()
    }
}

pub mod util {
    //! 0.16's `wgpu::util` as wonnx uses it.
    pub use wgpu_next::util::*;

    use super::{Adapter, Backends, BufferAsyncError, BufferSlice, Device, Instance, Queue, Surface};

    /// `WGPU_BACKEND` (e.g. `vulkan`), when set.
    pub fn backend_bits_from_env() -> Option<Backends> {
        Backends::from_env()
    }

    /// The adapter named by `WGPU_ADAPTER_NAME`, else the default one; `None`
    /// when there is no usable adapter.
    pub async fn initialize_adapter_from_env_or_default(
        instance: &Instance,
        _backends: Backends,
        surface: Option<&Surface<'_>>,
    ) -> Option<Adapter> {
        wgpu_next::util::initialize_adapter_from_env_or_default(&instance.0, surface).await.ok().map(Adapter)
    }

    /// 0.16's `DownloadBuffer::read_buffer`, taking the bridge's [`Device`].
    pub struct DownloadBuffer;

    impl DownloadBuffer {
        pub fn read_buffer(
            device: &Device,
            queue: &Queue,
            buffer_slice: &BufferSlice<'_>,
            callback: impl FnOnce(Result<wgpu_next::util::DownloadBuffer, BufferAsyncError>) + Send + 'static,
        ) {
            wgpu_next::util::DownloadBuffer::read_buffer(&device.0, queue, buffer_slice, callback)
        }
    }
}

pub mod bridge {
    //! What the 0.16 API cannot say: is there a usable adapter, and did the
    //! device report errors or get lost since the last look.

    use std::sync::Mutex;

    static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

    pub(crate) fn record(message: String) {
        if let Ok(mut log) = LOG.lock() {
            log.push(message);
        }
    }

    /// Errors and device losses recorded since the last call, oldest first.
    pub fn take_errors() -> Vec<String> {
        LOG.lock().map(|mut log| std::mem::take(&mut *log)).unwrap_or_default()
    }

    /// The adapter wonnx would get.
    #[derive(Debug, Clone)]
    pub struct Adapter {
        /// E.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Mesa 23.2)".
        pub description: String,
        /// A CPU implementation of the API (llvmpipe, lavapipe, SwiftShader,
        /// WARP): the device type says so, or the name is a known one.
        pub software: bool,
    }

    /// Names of software rasterisers that may not report a CPU device type.
    const SOFTWARE: [&str; 6] = ["llvmpipe", "lavapipe", "swiftshader", "softpipe", "microsoft basic render", "warp"];

    /// The adapter wonnx would get (honouring `WGPU_BACKEND` and
    /// `WGPU_ADAPTER_NAME`), or why there is none. Call this before creating
    /// a wonnx session: wonnx panics when there is no adapter.
    pub async fn probe() -> Result<Adapter, String> {
        #[cfg(target_arch = "wasm32")]
        if !wgpu_next::util::is_browser_webgpu_supported().await {
            return Err("this browser exposes no WebGPU (navigator.gpu is missing or has no adapter)".into());
        }
        let backends = super::util::backend_bits_from_env().unwrap_or(super::Backends::PRIMARY);
        let instance = super::Instance::new(super::InstanceDescriptor { backends, dx12_shader_compiler: super::Dx12Compiler::Fxc });
        match wgpu_next::util::initialize_adapter_from_env_or_default(&instance.0, None).await {
            Ok(adapter) => {
                // Browsers hide the adapter's name; say at least which API it is.
                let info = adapter.get_info();
                let description = match (info.name.is_empty(), info.backend) {
                    (true, super::Backend::BrowserWebGpu) => "browser WebGPU adapter".to_string(),
                    (true, backend) => format!("{backend:?} adapter"),
                    (false, backend) => format!("{} ({backend:?}, {})", info.name, info.driver),
                };
                let name = info.name.to_lowercase();
                let software = info.device_type == super::DeviceType::Cpu || SOFTWARE.iter().any(|s| name.contains(s));
                Ok(Adapter { description, software })
            }
            Err(e) => Err(format!("no WebGPU adapter: {e}")),
        }
    }
}
