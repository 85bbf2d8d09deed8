//! What a weight load costs on an adapter, apart from the arithmetic around it.
//!
//! `cargo run --release --example load_paths` (`WISP_ADAPTER=swiftshader` for SwiftShader;
//! default lavapipe). Nine kernels over the same 64 MiB, each timed best of 6:
//! - streaming: every invocation reads its own contiguous slice as `vec4<u32>` storage loads,
//!   as `u32` storage loads, and as `textureLoad`s of an `rgba32uint` texture;
//! - a Q8_0 matvec in the shape of the row kernel (one invocation per 8 rows, x shared by
//!   them, the quants two aligned vec4 loads per 32 values, as `gpu::buffer` repacks them),
//!   reading its weights from a storage buffer, from a texture, and not at all (the weight
//!   words are made up from the index: the arithmetic alone);
//! - the same three with x as 8-bit quants and `dot4I8Packed`, as at `fast` precision.
//!
//! The real kernels can read their weights from textures too (`gpu::WeightStore`); whether a
//! model's block types do is measured when it loads (`bench::FamilyProbe`), because this
//! example's gap does not carry over whole to the real row kernel.
//!
//! Mesa 22.3's lavapipe lowers a storage load to a loop over the SIMD lanes with a bounds check
//! per lane and component, so a load's cost grows with its components, not its bytes. This
//! example puts numbers on that: how far the matvec is from its own load-only and
//! arithmetic-only ceilings (ARCHITECTURE.md, "Where the software adapters' time goes").
use std::time::Instant;

mod common;

/// Invocations of the streaming kernels.
const STREAMERS: u32 = 2048;
/// Texels per texture row.
const TEX_W: u32 = wisp::gpu::TEX_WIDTH;
/// Row length of the matvec, in values.
const K: u32 = 2048;
/// Bytes of one repacked Q8_0 row of K values (K / 256 groups of 8 blocks, 272 bytes each).
const ROW_BYTES: u64 = (K as u64 / 256) * 272;

const SB: &str = "fn sb(w: u32) -> vec4<f32> {
    let v = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w));
    return vec4<f32>(v >> vec4<u32>(24u));
}
";

/// The streaming kernels' bodies: `ld4(i)` is vec4 word i of the data.
const STREAM: &str = "@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    var a = vec4<u32>(0u); var b = a; var c = a; var d = a;
    let s = g.x * SLICE;
    for (var j = 0u; j < SLICE; j += 4u) {
        a ^= ld4(s + j); b ^= ld4(s + j + 1u); c ^= ld4(s + j + 2u); d ^= ld4(s + j + 3u);
    }
    let r = a ^ b ^ c ^ d;
    Y[g.x] = r.x ^ r.y ^ r.z ^ r.w ^ EXTRA;
}
";

/// One invocation per 8 rows; per 32 values each row loads its d's vec4 and two vec4 of quants.
fn matvec_body(x8: bool) -> String {
    let mut s = String::from(
        "@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let r0 = g.x * 8u;
    let groups = K / 256u;
",
    );
    for r in 0..8 {
        s += &format!("    var acc{r} = vec4<f32>(0.0);\n");
    }
    s += "    for (var grp = 0u; grp < groups; grp++) {
        for (var j = 0u; j < 8u; j++) {
            let xo = (grp * 256u + j * 32u) / 4u;
";
    if x8 {
        s += "            let xa = bitcast<vec4<u32>>(X[grp * 16u + 2u * j]);\n";
        s += "            let xb = bitcast<vec4<u32>>(X[grp * 16u + 2u * j + 1u]);\n";
        s += "            let xs = X[grp * 8u + j].x;\n";
    } else {
        for i in 0..8 {
            s += &format!("            let x{i} = X[xo + {i}u];\n");
        }
    }
    for r in 0..8 {
        // Row r's d and the two vec4 of quants of piece j of group grp.
        s += &format!(
            "            {{
                let gi = ((r0 + {r}u) * groups + grp) * 17u;
                let dd = unpack2x16float(ld4(gi)[j / 2u]);
                let d = select(dd.x, dd.y, (j & 1u) == 1u);
                let a = ld4(gi + 1u + 2u * j);
                let c = ld4(gi + 2u + 2u * j);
"
        );
        s += &if x8 {
            format!(
                "                let t = dot4I8Packed(a.x, xa.x) + dot4I8Packed(a.y, xa.y) + dot4I8Packed(a.z, xa.z) + dot4I8Packed(a.w, xa.w)
                    + dot4I8Packed(c.x, xb.x) + dot4I8Packed(c.y, xb.y) + dot4I8Packed(c.z, xb.z) + dot4I8Packed(c.w, xb.w);
                acc{r}.x += d * xs * f32(t);
            }}
"
            )
        } else {
            format!(
                "                var t = acc{r};
                t += sb(a.x) * x0 + sb(a.y) * x1 + sb(a.z) * x2 + sb(a.w) * x3;
                t += sb(c.x) * x4 + sb(c.y) * x5 + sb(c.z) * x6 + sb(c.w) * x7;
                acc{r} = t * d;
            }}
"
            )
        };
    }
    s += "        }\n    }\n    var t = 0.0;\n";
    for r in 0..8 {
        s += &format!("    t += dot(acc{r}, vec4<f32>(1.0));\n");
    }
    s + "    Y[g.x] = bitcast<u32>(t) ^ EXTRA;\n}\n"
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Storage,
    StorageU32,
    Texture,
    None,
}

fn main() {
    pollster::block_on(run());
}

async fn run() {
    let bytes: u64 = 64 << 20;
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: bytes,
        max_buffer_size: bytes,
        ..Default::default()
    };
    let (adapter, device, queue) = common::open(limits, wgpu::Features::empty()).await;
    println!("adapter: {}", adapter.get_info().name);

    let data: Vec<u32> = (0..(bytes / 4) as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) & 0x3bff_7f7f)
        .collect();
    let storage = |size: u64| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let weights = storage(bytes);
    queue.write_buffer(&weights, 0, bytemuck::cast_slice(&data));
    // The engine's own weight texture (`gpu::WeightStore::Texture`): 8192 texels a row.
    let tex_h = (bytes / 16 / u64::from(TEX_W)) as u32;
    let texture = wisp::gpu::weight_texture(&device, None, tex_h);
    queue.write_texture(
        texture.as_image_copy(),
        bytemuck::cast_slice(&data),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(TEX_W * 16),
            rows_per_image: Some(tex_h),
        },
        texture.size(),
    );
    let view = texture.create_view(&Default::default());
    let x = storage(u64::from(K) * 4);
    queue.write_buffer(&x, 0, bytemuck::cast_slice(&vec![0.5f32; K as usize]));
    let rows = (bytes / ROW_BYTES) as u32 / 128 * 128;
    let sink = storage(u64::from(rows.max(STREAMERS)) * 4);
    let slice = (bytes / 16) as u32 / STREAMERS;

    let cases = [
        ("stream, storage vec4", false, Source::Storage),
        ("stream, storage u32", false, Source::StorageU32),
        ("stream, texture vec4", false, Source::Texture),
        ("Q8_0 matvec, storage", true, Source::Storage),
        ("Q8_0 matvec, texture", true, Source::Texture),
        ("Q8_0 matvec, no loads", true, Source::None),
        ("Q8_0 x8 matvec, storage", true, Source::Storage),
        ("Q8_0 x8 matvec, texture", true, Source::Texture),
        ("Q8_0 x8 matvec, no loads", true, Source::None),
    ];
    let mut gbs = Vec::new();
    for (ci, (name, matvec, source)) in cases.into_iter().enumerate() {
        let x8 = ci >= 6;
        let mut src = format!(
            "const SLICE: u32 = {slice}u;\nconst K: u32 = {K}u;\n\
             @group(0) @binding(0) var<storage, read_write> Y: array<u32>;\n\
             @group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;\n{SB}"
        );
        src += match source {
            Source::Storage | Source::None => {
                "@group(0) @binding(1) var<storage, read> S: array<vec4<u32>>;\n"
            }
            Source::StorageU32 => "@group(0) @binding(1) var<storage, read> S: array<u32>;\n",
            Source::Texture => "@group(0) @binding(2) var T: texture_2d<u32>;\n",
        };
        src += match source {
            Source::Storage => "fn ld4(i: u32) -> vec4<u32> { return S[i]; }\n",
            Source::StorageU32 => {
                "fn ld4(i: u32) -> vec4<u32> {\n    \
                 return vec4<u32>(S[4u * i], S[4u * i + 1u], S[4u * i + 2u], S[4u * i + 3u]);\n}\n"
            }
            Source::Texture => {
                "fn ld4(i: u32) -> vec4<u32> { return textureLoad(T, vec2<u32>(i % 8192u, i / 8192u), 0); }\n"
            }
            Source::None => {
                "fn ld4(i: u32) -> vec4<u32> { return vec4<u32>(i, i * 3u, i ^ 5u, i + 7u) & vec4<u32>(0x3bff7f7fu); }\n"
            }
        };
        let extra = match (matvec, source) {
            (_, Source::None) => "S[0].x",
            (_, Source::Texture) => "u32(X[0].x)",
            (false, _) => "u32(X[0].x)",
            (true, _) => "0u",
        };
        src += &if matvec {
            matvec_body(x8)
        } else {
            STREAM.into()
        }
        .replace("EXTRA", extra);
        let pipeline = common::compile(&device, Some(name), &src);
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: sink.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: x.as_entire_binding(),
            },
        ];
        entries.push(match source {
            Source::Texture => wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            _ => wgpu::BindGroupEntry {
                binding: 1,
                resource: weights.as_entire_binding(),
            },
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let groups = if matvec {
            rows / 8 / 16
        } else {
            STREAMERS / 64
        };
        let mut best = f64::INFINITY;
        for i in 0..7 {
            let mut enc = device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            let t = Instant::now();
            queue.submit([enc.finish()]);
            if let Err(e) = device.poll(wgpu::PollType::wait_indefinitely()) {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
            if i > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        let moved = if matvec {
            f64::from(rows) * ROW_BYTES as f64
        } else {
            bytes as f64
        };
        gbs.push(moved / best / 1e9);
        println!("{name:24} {:6.2} GB/s", moved / best / 1e9);
    }
    // Time per byte adds up: loads ≈ 1/storage − 1/no-loads.
    let loads = 1.0 / (1.0 / gbs[3] - 1.0 / gbs[5]);
    println!(
        "Q8_0 matvec: its storage loads alone would run at {loads:.2} GB/s, its arithmetic alone at {:.2} GB/s",
        gbs[5]
    );
}
