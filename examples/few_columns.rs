//! What a weight pass over a few columns of x costs against one column, on one adapter: the
//! measurement behind speculative decoding's verify pass (issue 26's few-column kernel).
//!
//! `cargo run --release --example few_columns [K]` (`WISP_ADAPTER=swiftshader` for SwiftShader;
//! default lavapipe; K defaults to 640, Gemma 3's head). Every variant reads the same 64 MiB of
//! Q8_0 with rows interleaved by eight (as `gpu::ROWS8` stores them: block b of 8 adjacent rows
//! side by side, in groups of 8 blocks: their 8 d, then 8 × 32 quants) with x shared by subgroup
//! broadcasts, exact precision (f32 x, each block dequantized once and used for every column).
//! What varies: the columns C (1, 2, 4, 8) and the rows per lane R (1, 2, 4). Printed: the time
//! of the C-column pass over the 1-column pass with the same R, and the GB/s of weights read.
//! A C-column pass that costs C times one column gains nothing over C decode steps.
use std::time::Instant;

mod common;

/// The kernel: Y[c · rows + row] = W[row] · X[c] for C columns of K values.
fn source(k: u32, rows_per_lane: u32, cols: u32) -> String {
    let nb = k / 32;
    let mut s = format!(
        "const NB: u32 = {nb}u;\nconst K4: u32 = {}u;\n\
         @group(0) @binding(0) var<storage, read_write> Y: array<f32>;\n\
         @group(0) @binding(1) var<storage, read> W4: array<vec4<u32>>;\n\
         @group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;\n\
         struct P_ {{ rows: u32 }}\n@group(0) @binding(3) var<uniform> P: P_;\n\
         fn sb(w: u32) -> vec4<f32> {{
    return vec4<f32>((vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}}
fn dof(blk: u32) -> f32 {{
    let v = W4[(blk >> 3u) * 17u];
    let j = (blk & 7u) >> 1u;
    let h = unpack2x16float(select(select(v.x, v.y, j == 1u), select(v.z, v.w, j == 3u), j >= 2u));
    return select(h.x, h.y, (blk & 1u) == 1u);
}}
@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {{
    let o0 = (g.x / 8u) * {rows_per_lane}u;
    let l = g.x & 7u;
",
        k / 4
    );
    for r in 0..rows_per_lane {
        for c in 0..cols {
            s += &format!("    var acc_{r}_{c} = 0.0;\n");
        }
    }
    s += "    for (var b = 0u; b < NB; b++) {\n";
    for r in 0..rows_per_lane {
        // Block b of row (o0 + r)·8 + l, dequantized once: 8 vec4 of quants times its d.
        s += &format!(
            "        let blk{r} = (min(o0 + {r}u, P.rows / 8u - 1u) * NB + b) * 8u + l;
        let q{r} = (blk{r} >> 3u) * 17u + 1u + 2u * (blk{r} & 7u);
        let a{r} = W4[q{r}];
        let c{r} = W4[q{r} + 1u];
        let d{r} = dof(blk{r});
        let w{r}_0 = sb(a{r}.x); let w{r}_1 = sb(a{r}.y); let w{r}_2 = sb(a{r}.z); let w{r}_3 = sb(a{r}.w);
        let w{r}_4 = sb(c{r}.x); let w{r}_5 = sb(c{r}.y); let w{r}_6 = sb(c{r}.z); let w{r}_7 = sb(c{r}.w);
"
        );
    }
    for c in 0..cols {
        // Column c's piece b of x: one load per lane, 8 broadcasts.
        s += &format!("        {{\n        let xm = X[{c}u * K4 + b * 8u + (sl & 7u)];\n");
        for i in 0..8 {
            s += &format!("        let x{i} = subgroupBroadcast(xm, {i}u);\n");
        }
        for r in 0..rows_per_lane {
            s += &format!(
                "        acc_{r}_{c} += d{r} * dot(w{r}_0 * x0 + w{r}_1 * x1 + w{r}_2 * x2 + w{r}_3 * x3 + w{r}_4 * x4 + w{r}_5 * x5 + w{r}_6 * x6 + w{r}_7 * x7, vec4<f32>(1.0));\n"
            );
        }
        s += "        }\n";
    }
    s += "    }\n";
    for r in 0..rows_per_lane {
        s += &format!("    let row{r} = (o0 + {r}u) * 8u + l;\n    if (row{r} < P.rows) {{\n");
        for c in 0..cols {
            s += &format!("        Y[{c}u * P.rows + row{r}] = acc_{r}_{c};\n");
        }
        s += "    }\n";
    }
    s + "}\n"
}

fn main() {
    pollster::block_on(run());
}

async fn run() {
    let k: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(640);
    assert!(k.is_multiple_of(32), "K must be a multiple of 32");
    let bytes: u64 = 64 << 20;
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: bytes,
        max_buffer_size: bytes,
        ..Default::default()
    };
    let (adapter, device, queue) = common::open(limits, wgpu::Features::SUBGROUP).await;
    let info = adapter.get_info();
    println!("adapter: {} ({}), K = {k}", info.name, info.driver_info);
    let row_bytes = u64::from(k / 32) * 34;
    let rows = (bytes / row_bytes) as u32 / 1024 * 1024;
    let data: Vec<u32> = (0..(bytes / 4) as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) & 0x3bff_7f7f)
        .collect();
    let buffer = |size: u64, usage: wgpu::BufferUsages| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let st = wgpu::BufferUsages::STORAGE;
    let weights = buffer(bytes, st);
    queue.write_buffer(&weights, 0, bytemuck::cast_slice(&data));
    let x = buffer(u64::from(k) * 4 * 8, st);
    queue.write_buffer(&x, 0, bytemuck::cast_slice(&vec![0.5f32; k as usize * 8]));
    let y = buffer(u64::from(rows) * 4 * 8, st);
    let p = buffer(16, wgpu::BufferUsages::UNIFORM);
    queue.write_buffer(&p, 0, bytemuck::cast_slice(&[rows, 0, 0, 0]));
    let time = |pipeline: &wgpu::ComputePipeline, groups: u32| {
        let entries: Vec<_> = [&y, &weights, &x, &p]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut best = f64::INFINITY;
        for i in 0..6 {
            let mut enc = device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            let t = Instant::now();
            queue.submit([enc.finish()]);
            if let Err(e) = device.poll(wgpu::PollType::wait_indefinitely()) {
                eprintln!("{e}");
                std::process::exit(1);
            }
            if i > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        best
    };
    let moved = f64::from(rows) * row_bytes as f64;
    for r in [1u32, 2, 4] {
        let mut one = None;
        for c in [1u32, 2, 4, 8] {
            let pipeline = common::compile(&device, None, &source(k, r, c));
            let groups = (rows.div_ceil(8 * r) * 8).div_ceil(16);
            let s = time(&pipeline, groups);
            let base = *one.get_or_insert(s);
            println!(
                "{r} rows per lane, {c} columns: {:7.2} ms, {:5.2}× one column, {:5.2} GB/s",
                s * 1e3,
                s / base,
                moved / s / 1e9
            );
        }
    }
}
