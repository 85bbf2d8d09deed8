//! What one dispatch costs on an adapter apart from its work: N tiny dispatches (W workgroups
//! of 64 invocations each writing a word) in one compute pass, one submit, timed best of 5.
//! `cargo run --release --example dispatch_cost` (`WISP_ADAPTER=swiftshader` for SwiftShader).
use std::time::Instant;

fn main() {
    pollster::block_on(run());
}

async fn run() {
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
    let (device, queue) = match adapter.request_device(&Default::default()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot open {}: {e}", adapter.get_info().name);
            std::process::exit(1);
        }
    };
    println!("adapter: {}", adapter.get_info().name);
    let src = "@group(0) @binding(0) var<storage, read_write> Y: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { Y[g.x] = Y[g.x] + 1u; }";
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64 * 4 * 64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: buf.as_entire_binding(),
        }],
    });
    for wgs in [1u32, 8, 64] {
        for n in [1u32, 100, 400] {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                let mut enc = device.create_command_encoder(&Default::default());
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&pipeline);
                    pass.set_bind_group(0, &bg, &[]);
                    for _ in 0..n {
                        pass.dispatch_workgroups(wgs, 1, 1);
                    }
                }
                queue.submit([enc.finish()]);
                device.poll(wgpu::PollType::wait_indefinitely()).ok();
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{n:>4} dispatches of {wgs:>2} workgroups: {:8.3} ms, {:7.1} µs per dispatch",
                best * 1e3,
                best * 1e6 / f64::from(n)
            );
        }
    }
}
