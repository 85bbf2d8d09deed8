//! Shapes of a Q8_0 matvec over short rows, timed on one adapter: the measurement behind the
//! head kernel's shape (Gemma 3's tied output is 262,144 rows of K = 640, SmolLM2's 49,152 of
//! K = 576).
//!
//! `cargo run --release --example short_rows [K]` (`WISP_ADAPTER=swiftshader` for SwiftShader;
//! default lavapipe). Every variant reads the same 64 MiB of Q8_0 in the layout `gpu::buffer`
//! uploads (groups of 8 blocks: their 8 d, then 8 × 32 quants), with x in f32 (`exact`) or as
//! 8-bit quants (`fast`), and is timed best of 6 against a streaming read of the same bytes.
//! What varies: rows per invocation, how x reaches the lanes (a load that is the same for every
//! lane, or a subgroup broadcast), how each block's d is loaded, and how the lanes split a row
//! (one lane per row, or several lanes per row reduced through the subgroup).
use std::time::Instant;

mod common;

const SB: &str = "fn sb(w: u32) -> vec4<f32> {
    return vec4<f32>((vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}
";

#[derive(Clone, Copy, Debug)]
enum XMode {
    /// Every lane loads x itself (the same address on every lane).
    Uniform,
    /// Lane l loads word l % 8 of a piece, subgroupBroadcast hands the rest out.
    Broadcast,
}

#[derive(Clone, Copy, Debug)]
enum DMode {
    /// The d of a block as one u32 load and a select.
    Word,
    /// The group's 8 d as one vec4 load per block (what the engine's row kernel does through
    /// `half_at` on `WH`, roughly).
    Vec4,
}

#[derive(Clone, Copy)]
struct Variant {
    /// Rows per invocation (one lane per row), or rows per lane group (cooperative).
    rows: u32,
    /// Lanes per row: 1 (each lane its own rows) or 8 (the subgroup splits a row's blocks).
    lanes: u32,
    x: XMode,
    d: DMode,
    fast: bool,
}

impl Variant {
    fn name(&self) -> String {
        format!(
            "{} rows {:2} lanes {} x {:9} d {:4}",
            if self.fast { "fast " } else { "exact" },
            self.rows,
            self.lanes,
            format!("{:?}", self.x),
            format!("{:?}", self.d)
        )
    }

    /// The kernel: Y[row] = W[row]·x over `rows` rows of K values.
    fn source(&self, k: u32) -> String {
        let nb = k / 32;
        let mut s = format!(
            "const K: u32 = {k}u;\nconst NB: u32 = {nb}u;\nconst R: u32 = {}u;\n\
             @group(0) @binding(0) var<storage, read_write> Y: array<f32>;\n\
             @group(0) @binding(1) var<storage, read> W4: array<vec4<u32>>;\n\
             @group(0) @binding(2) var<storage, read> W: array<u32>;\n\
             @group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;\n\
             @group(0) @binding(4) var<storage, read> XQ: array<vec4<u32>>;\n\
             @group(0) @binding(5) var<storage, read> XS: array<f32>;\n\
             struct P_ {{ rows: u32 }}\n@group(0) @binding(6) var<uniform> P: P_;\n{SB}",
            self.rows
        );
        s += match self.d {
            DMode::Word => {
                "fn dof(blk: u32) -> f32 {
    let w = W[(blk >> 3u) * 68u + ((blk & 7u) >> 1u)];
    let h = unpack2x16float(w);
    return select(h.x, h.y, (blk & 1u) == 1u);
}
"
            }
            DMode::Vec4 => {
                "fn dof(blk: u32) -> f32 {
    let v = W4[(blk >> 3u) * 17u];
    let j = (blk & 7u) >> 1u;
    let h = unpack2x16float(select(select(v.x, v.y, j == 1u), select(v.z, v.w, j == 3u), j >= 2u));
    return select(h.x, h.y, (blk & 1u) == 1u);
}
"
            }
        };
        // The per-(row, block) product.
        let dot = if self.fast {
            "            {
                let q = (blk >> 3u) * 17u + 1u + 2u * (blk & 7u);
                let a = W4[q];
                let c = W4[q + 1u];
                let t = dot4I8Packed(a.x, xa.x) + dot4I8Packed(a.y, xa.y) + dot4I8Packed(a.z, xa.z) + dot4I8Packed(a.w, xa.w)
                    + dot4I8Packed(c.x, xb.x) + dot4I8Packed(c.y, xb.y) + dot4I8Packed(c.z, xb.z) + dot4I8Packed(c.w, xb.w);
                acc[r] += dof(blk) * (xs * f32(t));
            }
"
        } else {
            "            {
                let q = (blk >> 3u) * 17u + 1u + 2u * (blk & 7u);
                let a = W4[q];
                let c = W4[q + 1u];
                var t = sb(a.x) * x0 + sb(a.y) * x1 + sb(a.z) * x2 + sb(a.w) * x3;
                t += sb(c.x) * x4 + sb(c.y) * x5 + sb(c.z) * x6 + sb(c.w) * x7;
                acc[r] += dof(blk) * dot(t, vec4<f32>(1.0));
            }
"
        };
        let load_x = |piece: &str| -> String {
            match (self.fast, self.x) {
                (false, XMode::Uniform) => (0..8)
                    .map(|i| format!("        let x{i} = X[{piece} * 8u + {i}u];\n"))
                    .collect(),
                (false, XMode::Broadcast) => {
                    let mut t = format!("        let xm = X[{piece} * 8u + (sl & 7u)];\n");
                    for i in 0..8 {
                        t += &format!("        let x{i} = subgroupBroadcast(xm, {i}u);\n");
                    }
                    t
                }
                (true, XMode::Uniform) => format!(
                    "        let xa = XQ[2u * {piece}];\n        let xb = XQ[2u * {piece} + 1u];\n        let xs = XS[{piece}];\n"
                ),
                (true, XMode::Broadcast) => format!(
                    "        let xm = XQ[2u * {piece} + (sl & 1u)];\n        let xa = subgroupBroadcast(xm, 0u);\n        let xb = subgroupBroadcast(xm, 1u);\n        let xs = XS[{piece}];\n"
                ),
            }
        };
        // The three shapes differ in which rows and blocks a lane takes, and how a row's sum is
        // written:
        // - lanes 0: rows interleaved by eight at upload (the group of 8 blocks at (octet o,
        //   block b) holds block b of rows 8o..8o+7), so the 8 lanes of a subgroup, each on its
        //   own row, read 8 adjacent blocks; lane l of lane group g takes rows 8R·g + 8r + l;
        // - lanes 1: each lane R consecutive rows in GGUF's order;
        // - lanes 8: 8 lanes per row, lane l takes blocks l, l + 8, …; the subgroup sums.
        let (prologue, blocks, blk, write) = match self.lanes {
            0 => (
                "let o0 = (g.x / 8u) * R;\n    let l = g.x & 7u;",
                "var b = 0u; b < NB; b++",
                "(min(o0 + r, P.rows / 8u - 1u) * NB + b) * 8u + l",
                "let row = (o0 + r) * 8u + l;\n        if (row < P.rows) { Y[row] = acc[r]; }",
            ),
            1 => (
                "let r0 = g.x * R;",
                "var b = 0u; b < NB; b++",
                "min(r0 + r, P.rows - 1u) * NB + b",
                "if (r0 + r < P.rows) { Y[r0 + r] = acc[r]; }",
            ),
            _ => (
                "let r0 = (g.x / 8u) * R;\n    let l = g.x & 7u;",
                "var b = l; b < NB; b += 8u",
                "min(r0 + r, P.rows - 1u) * NB + b",
                "let t = subgroupAdd(acc[r]);\n        if (l == 0u && r0 + r < P.rows) { Y[r0 + r] = t; }",
            ),
        };
        s += &format!(
            "@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {{
    {prologue}
    var acc: array<f32, R>;
    for ({blocks}) {{
{}        for (var r = 0u; r < R; r++) {{
            let blk = {blk};
{dot}        }}
    }}
    for (var r = 0u; r < R; r++) {{
        {write}
    }}
    KEEP
}}
",
            load_x("b")
        );
        // Every binding stays in the layout, used or not.
        s.replace(
            "KEEP",
            "if (P.rows == 0xffffffffu) { Y[0] = X[0].x + f32(XQ[0].x + W[0] + W4[0].x) + XS[0]; }",
        )
    }
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
        max_storage_buffers_per_shader_stage: 8,
        ..Default::default()
    };
    let (adapter, device, queue) = common::open(limits, wgpu::Features::SUBGROUP).await;
    let info = adapter.get_info();
    println!("adapter: {} ({}), K = {k}", info.name, info.driver_info);
    let nb = k / 32;
    let row_bytes = u64::from(nb) * 34;
    let rows = ((bytes - 4096) / row_bytes) as u32 / 1024 * 1024;
    let data: Vec<u32> = (0..(bytes / 4) as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) & 0x3bff_7f7f)
        .collect();
    let storage = |size: u64, usage: wgpu::BufferUsages| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let st = wgpu::BufferUsages::STORAGE;
    let weights = storage(bytes, st);
    queue.write_buffer(&weights, 0, bytemuck::cast_slice(&data));
    let x = storage(u64::from(k) * 4, st);
    queue.write_buffer(&x, 0, bytemuck::cast_slice(&vec![0.5f32; k as usize]));
    let xq = storage(u64::from(k), st);
    queue.write_buffer(&xq, 0, &vec![3u8; k as usize]);
    let xs = storage(u64::from(nb) * 4, st);
    queue.write_buffer(&xs, 0, bytemuck::cast_slice(&vec![0.25f32; nb as usize]));
    let y = storage(u64::from(rows) * 4, st);
    let p = storage(16, wgpu::BufferUsages::UNIFORM);
    queue.write_buffer(&p, 0, bytemuck::cast_slice(&[rows, 0, 0, 0]));

    let time = |pipeline: &wgpu::ComputePipeline, groups: u32| {
        let layout = pipeline.get_bind_group_layout(0);
        let bufs = [&y, &weights, &weights, &x, &xq, &xs, &p];
        let entries: Vec<_> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let mut best = f64::INFINITY;
        for i in 0..7 {
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
    let compile = |src: String| common::compile(&device, None, &src);
    // The roofline: every invocation streams its own contiguous slice of the same bytes.
    let stream = compile(format!(
        "@group(0) @binding(0) var<storage, read_write> Y: array<f32>;
@group(0) @binding(1) var<storage, read> W4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> XQ: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> XS: array<f32>;
struct P_ {{ rows: u32 }}
@group(0) @binding(6) var<uniform> P: P_;
const SLICE: u32 = {}u;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {{
    var a = vec4<u32>(0u); var b = a; var c = a; var d = a;
    let s = g.x * SLICE;
    for (var j = 0u; j < SLICE; j += 4u) {{
        a ^= W4[s + j]; b ^= W4[s + j + 1u]; c ^= W4[s + j + 2u]; d ^= W4[s + j + 3u];
    }}
    let r = a ^ b ^ c ^ d;
    Y[g.x] = f32(r.x ^ r.y ^ r.z ^ r.w) + X[0].x + f32(XQ[0].x) + XS[0] + f32(W[0] + P.rows);
}}
",
        bytes / 16 / 2048
    ));
    let roof = bytes as f64 / time(&stream, 2048 / 64) / 1e9;
    println!("streaming read: {roof:.2} GB/s");
    let moved = f64::from(rows) * row_bytes as f64;
    let mut variants = Vec::new();
    for fast in [false, true] {
        for (rows, lanes) in [(32, 1), (4, 8), (2, 0), (4, 0), (8, 0), (16, 0)] {
            for x in [XMode::Uniform, XMode::Broadcast] {
                for d in [DMode::Word, DMode::Vec4] {
                    variants.push(Variant {
                        rows,
                        lanes,
                        x,
                        d,
                        fast,
                    });
                }
            }
        }
    }
    let only = std::env::var("ONLY").ok();
    for v in variants {
        let name = v.name();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let t0 = Instant::now();
        let pipeline = compile(v.source(k));
        let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
        let invocations = if v.lanes == 0 {
            rows.div_ceil(8 * v.rows) * 8
        } else {
            rows.div_ceil(v.rows) * v.lanes
        };
        let s = time(&pipeline, invocations.div_ceil(16));
        let gbs = moved / s / 1e9;
        println!(
            "{name}  {gbs:6.2} GB/s  {:5.1}% of the read  (compile {compile_ms:.0} ms)",
            100.0 * gbs / roof
        );
    }
}
