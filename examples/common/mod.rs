//! What the measurement examples share: opening the adapter `WISP_ADAPTER` names, and compiling
//! a one-entry-point compute shader.

/// The first adapter whose name contains `WISP_ADAPTER` (default `llvmpipe`), opened with
/// `limits` and `features`; the process ends with a message when there is none or it refuses.
#[allow(dead_code)] // dispatch_cost opens the engine's own device
pub async fn open(
    limits: wgpu::Limits,
    features: wgpu::Features,
) -> (wgpu::Adapter, wgpu::Device, wgpu::Queue) {
    let want = std::env::var("WISP_ADAPTER").unwrap_or_else(|_| "llvmpipe".into());
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let Some(adapter) = instance
        .enumerate_adapters(wgpu::Backends::all())
        .await
        .into_iter()
        .find(|a| {
            a.get_info()
                .name
                .to_lowercase()
                .contains(&want.to_lowercase())
        })
    else {
        eprintln!("no adapter whose name contains {want:?}");
        std::process::exit(1);
    };
    match adapter
        .request_device(&wgpu::DeviceDescriptor {
            required_limits: limits,
            required_features: features,
            ..Default::default()
        })
        .await
    {
        Ok((device, queue)) => (adapter, device, queue),
        Err(e) => {
            eprintln!("cannot open {}: {e}", adapter.get_info().name);
            std::process::exit(1);
        }
    }
}

/// The compute pipeline of WGSL `src`'s `main`, with the layout derived from the shader.
pub fn compile(device: &wgpu::Device, label: Option<&str>, src: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}
