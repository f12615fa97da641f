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
        // Timestamp queries cost nothing until a pass asks for them
        // ([`bridge::time_passes`]), so ask for them wherever they exist.
        let timestamps = self.0.features() & Features::TIMESTAMP_QUERY;
        let desc = DeviceDescriptor {
            required_limits: self.0.limits(),
            required_features: desc.required_features | timestamps,
            ..desc.clone()
        };
        let (device, queue) = self.0.request_device(&desc).await?;
        device.on_uncaptured_error(Arc::new(|e: Error| bridge::record(format!("GPU error: {e}"))));
        device.set_device_lost_callback(|reason, message| {
            bridge::record(format!("GPU device lost ({reason:?}): {message}"));
        });
        let timestamp_period = (!timestamps.is_empty()).then(|| queue.get_timestamp_period());
        Ok((Device { inner: device, timestamp_period }, queue))
    }
}

/// The real device, with 0.16's versions of the methods whose signatures changed.
pub struct Device {
    inner: wgpu_next::Device,
    /// Nanoseconds per timestamp tick, where the device has timestamp queries.
    timestamp_period: Option<f32>,
}

impl Deref for Device {
    type Target = wgpu_next::Device;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A compute pipeline and its label (wonnx labels each with its node's
/// name), which [`bridge::take_pass_times`] reports.
pub struct ComputePipeline {
    inner: wgpu_next::ComputePipeline,
    label: String,
}

impl Deref for ComputePipeline {
    type Target = wgpu_next::ComputePipeline;
    fn deref(&self) -> &Self::Target {
        &self.inner
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
        let inner = self.inner.create_compute_pipeline(&wgpu_next::ComputePipelineDescriptor {
            label: desc.label,
            layout: desc.layout,
            module: desc.module,
            entry_point: Some(desc.entry_point),
            compilation_options: Default::default(),
            cache: None,
        });
        ComputePipeline { inner, label: desc.label.unwrap_or_default().to_string() }
    }

    /// An encoder whose compute passes are timed while [`bridge::time_passes`]
    /// is on and the device has timestamp queries.
    pub fn create_command_encoder(&self, desc: &CommandEncoderDescriptor<'_>) -> CommandEncoder {
        let timer = match self.timestamp_period {
            Some(period) if bridge::timing() => Some(bridge::PassTimer::new(&self.inner, period)),
            _ => None,
        };
        CommandEncoder { inner: self.inner.create_command_encoder(desc), timer }
    }

    /// Returns whether the queue is empty; a polling error is recorded in [`bridge`].
    pub fn poll(&self, maintain: Maintain) -> bool {
        let poll = match maintain {
            Maintain::Wait => PollType::wait_indefinitely(),
            Maintain::Poll => PollType::Poll,
        };
        match self.inner.poll(poll) {
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

pub struct CommandEncoder {
    inner: wgpu_next::CommandEncoder,
    timer: Option<bridge::PassTimer>,
}

impl CommandEncoder {
    pub fn begin_compute_pass(&mut self, desc: &ComputePassDescriptor<'_>) -> ComputePass<'_> {
        let CommandEncoder { inner, timer } = self;
        let record = timer.as_mut().and_then(|t| t.next_pass());
        let timestamp_writes = record.as_ref().map(|(query_set, index, _)| ComputePassTimestampWrites {
            query_set,
            beginning_of_pass_write_index: Some(*index),
            end_of_pass_write_index: Some(index + 1),
        });
        let pass = inner.begin_compute_pass(&wgpu_next::ComputePassDescriptor { label: desc.label, timestamp_writes });
        ComputePass { inner: pass, record: record.map(|(_, _, record)| record) }
    }

    pub fn finish(mut self) -> CommandBuffer {
        if let Some(timer) = self.timer.take() {
            timer.resolve(&mut self.inner);
        }
        self.inner.finish()
    }
}

/// 0.16's compute pass, which notes what each timed pass ran.
pub struct ComputePass<'a> {
    inner: wgpu_next::ComputePass<'a>,
    record: Option<&'a mut bridge::PassTime>,
}

impl ComputePass<'_> {
    pub fn set_pipeline(&mut self, pipeline: &ComputePipeline) {
        if let Some(record) = self.record.as_mut() {
            record.label.clone_from(&pipeline.label);
        }
        self.inner.set_pipeline(&pipeline.inner);
    }

    pub fn set_bind_group(&mut self, index: u32, bind_group: &BindGroup, offsets: &[DynamicOffset]) {
        self.inner.set_bind_group(index, bind_group, offsets);
    }

    pub fn dispatch_workgroups(&mut self, x: u32, y: u32, z: u32) {
        if let Some(record) = self.record.as_mut() {
            record.workgroups = [x, y, z];
        }
        self.inner.dispatch_workgroups(x, y, z);
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
            wgpu_next::util::DownloadBuffer::read_buffer(&device.inner, queue, buffer_slice, callback)
        }
    }
}

pub mod bridge {
    //! What the 0.16 API cannot say: is there a usable adapter, did the
    //! device report errors or get lost since the last look, and how long
    //! each compute pass took on the device.

    use std::sync::atomic::{AtomicBool, Ordering};
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

    static TIMING: AtomicBool = AtomicBool::new(false);
    static TIMED: Mutex<Vec<TimedSubmission>> = Mutex::new(Vec::new());

    /// Times every compute pass of the command encoders created from now on
    /// (a device timestamp at each pass's start and end), until turned off;
    /// [`take_pass_times`] reads the times. Devices without timestamp
    /// queries are not timed. Turning it off forgets times not yet taken.
    pub fn time_passes(on: bool) {
        TIMING.store(on, Ordering::SeqCst);
        if !on {
            if let Ok(mut timed) = TIMED.lock() {
                timed.clear();
            }
        }
    }

    pub(crate) fn timing() -> bool {
        TIMING.load(Ordering::SeqCst)
    }

    /// One timed compute pass: its pipeline's label, its workgroup counts,
    /// and the device time between its start and end.
    #[derive(Debug, Clone, Default)]
    pub struct PassTime {
        pub label: String,
        pub workgroups: [u32; 3],
        pub ms: f64,
    }

    /// The most passes one encoder times (two timestamps each fill a query set).
    const MAX_PASSES: u32 = wgpu_next::QUERY_SET_MAX_QUERIES / 2;

    /// The timestamps of one command encoder's passes.
    pub(crate) struct PassTimer {
        device: wgpu_next::Device,
        period_ns: f32,
        query_set: Option<wgpu_next::QuerySet>,
        passes: Vec<PassTime>,
    }

    /// A finished encoder's timestamps, copied to a buffer the CPU can read
    /// once the queue has run it.
    struct TimedSubmission {
        /// Polled natively until the read-back is mapped (the browser maps it by itself).
        #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
        device: wgpu_next::Device,
        period_ns: f32,
        readback: wgpu_next::Buffer,
        passes: Vec<PassTime>,
    }

    impl PassTimer {
        pub(crate) fn new(device: &wgpu_next::Device, period_ns: f32) -> Self {
            PassTimer { device: device.clone(), period_ns, query_set: None, passes: Vec::new() }
        }

        /// The query set, the first of the two query indices, and the record
        /// of the next pass; `None` once the query set is full.
        pub(crate) fn next_pass(&mut self) -> Option<(&wgpu_next::QuerySet, u32, &mut PassTime)> {
            let index = self.passes.len() as u32;
            if index >= MAX_PASSES {
                return None;
            }
            let device = &self.device;
            let query_set = self.query_set.get_or_insert_with(|| {
                device.create_query_set(&wgpu_next::QuerySetDescriptor {
                    label: Some("mriscreen pass timing"),
                    ty: wgpu_next::QueryType::Timestamp,
                    count: 2 * MAX_PASSES,
                })
            });
            self.passes.push(PassTime::default());
            Some((query_set, 2 * index, self.passes.last_mut()?))
        }

        /// Resolves the timestamps at the end of `encoder`'s commands.
        pub(crate) fn resolve(self, encoder: &mut wgpu_next::CommandEncoder) {
            let Some(query_set) = &self.query_set else { return };
            let count = 2 * self.passes.len() as u32;
            let bytes = u64::from(count) * 8;
            let buffer = |usage| {
                self.device.create_buffer(&wgpu_next::BufferDescriptor {
                    label: Some("mriscreen pass timing"),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let resolved = buffer(wgpu_next::BufferUsages::QUERY_RESOLVE | wgpu_next::BufferUsages::COPY_SRC);
            let readback = buffer(wgpu_next::BufferUsages::MAP_READ | wgpu_next::BufferUsages::COPY_DST);
            encoder.resolve_query_set(query_set, 0..count, &resolved, 0);
            encoder.copy_buffer_to_buffer(&resolved, 0, &readback, 0, bytes);
            let timed = TimedSubmission { device: self.device, period_ns: self.period_ns, readback, passes: self.passes };
            if let Ok(mut all) = TIMED.lock() {
                all.push(timed);
            }
        }
    }

    /// The passes timed since the last call, in the order they were
    /// encoded. Call it after the queue has run them (e.g. after reading
    /// the results back).
    pub async fn take_pass_times() -> Result<Vec<PassTime>, String> {
        let timed = TIMED.lock().map(|mut t| std::mem::take(&mut *t)).map_err(|_| "pass timing lock poisoned".to_string())?;
        let mut out = Vec::new();
        for t in timed {
            let (send, receive) = futures_channel::oneshot::channel();
            t.readback.slice(..).map_async(wgpu_next::MapMode::Read, move |r| {
                let _ = send.send(r);
            });
            #[cfg(not(target_arch = "wasm32"))]
            t.device.poll(wgpu_next::PollType::wait_indefinitely()).map_err(|e| format!("GPU poll failed: {e}"))?;
            receive.await.map_err(|_| "the timestamp read was dropped".to_string())?.map_err(|e| format!("could not read the timestamps: {e}"))?;
            {
                let view = t.readback.slice(..).get_mapped_range().map_err(|e| format!("could not read the timestamps: {e:?}"))?;
                let ticks: Vec<u64> = view.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
                for (mut pass, pair) in t.passes.into_iter().zip(ticks.chunks_exact(2)) {
                    pass.ms = pair[1].saturating_sub(pair[0]) as f64 * f64::from(t.period_ns) / 1e6;
                    out.push(pass);
                }
            }
            t.readback.unmap();
        }
        Ok(out)
    }
}
