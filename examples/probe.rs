// Temporary: time WGSL read shapes on the current adapter.
use wgpu::util::DeviceExt;
fn main() {
    let src_path = std::env::args().nth(1).unwrap();
    let wgs: u32 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(256);
    let src = std::fs::read_to_string(src_path).unwrap();
    let gpu = pollster::block_on(wisp::gpu::Gpu::new(&wisp::gpu::GpuOptions::from_env().unwrap())).unwrap();
    let bytes: u64 = 128 << 20;
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 >> 3) as u8).collect();
    let buf = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: &data, usage: wgpu::BufferUsages::STORAGE });
    let out = gpu.storage("o", 1 << 24);
    let desc = wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.into()) };
    let m = if std::env::var("UNCHECKED").is_ok() { unsafe { gpu.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) } } else { gpu.device.create_shader_module(desc) };
    let p = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor { label: None, layout: None, module: &m, entry_point: Some("main"), compilation_options: Default::default(), cache: None });
    let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &p.get_bind_group_layout(0), entries: &[
        wgpu::BindGroupEntry { binding: 1, resource: buf.as_entire_binding() },
        wgpu::BindGroupEntry { binding: 3, resource: out.as_entire_binding() }] });
    let mut best = 1e9f64;
    for _ in 0..6 {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        { let mut pass = enc.begin_compute_pass(&Default::default()); pass.set_pipeline(&p); pass.set_bind_group(0, &bg, &[]); pass.dispatch_workgroups(wgs, 1, 1); }
        let t = std::time::Instant::now();
        gpu.queue.submit([enc.finish()]); gpu.wait().unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{:.2} GB/s ({:.1} ms)", bytes as f64 / best / 1e9, best * 1e3);
}
