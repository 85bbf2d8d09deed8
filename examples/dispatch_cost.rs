//! What one dispatch costs on an adapter apart from its work: N tiny dispatches (W workgroups
//! of 64 invocations each writing a word) in one compute pass, one submit, timed best of 5.
//! `WISP_ADAPTER=llvmpipe cargo run --release --example dispatch_cost` (or `swiftshader`).
use std::time::Instant;

mod common;

fn main() {
    pollster::block_on(run());
}

async fn run() {
    // The engine's own adapter choice (`WISP_ADAPTER`, default: the best adapter there is).
    let opts = match wisp::gpu::GpuOptions::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let gpu = match wisp::gpu::Gpu::new(&opts).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let (device, queue) = (&gpu.device, &gpu.queue);
    println!("adapter: {}", gpu.caps.adapter.name);
    let src = "@group(0) @binding(0) var<storage, read_write> Y: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { Y[g.x] = Y[g.x] + 1u; }";
    let pipeline = common::compile(device, None, src);
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
