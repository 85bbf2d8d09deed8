//! `wisp gpus`: every adapter this machine offers, with the capabilities Wisp plans with.

use serde_json::json;
use wisp::gpu::{Gpu, GpuOptions};

use crate::cli::GpusArgs;

pub fn run(args: GpusArgs) -> Result<(), Box<dyn std::error::Error>> {
    let opts = GpuOptions::from_env()?;
    let mut out = Vec::new();
    for adapter in pollster::block_on(Gpu::adapters()) {
        let name = adapter.get_info().name;
        let gpu = match pollster::block_on(Gpu::from_adapter(adapter, &opts)) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        let c = &gpu.caps;
        if args.json {
            out.push(json!({
                "name": c.adapter.name, "backend": c.adapter.backend, "device_type": c.adapter.device_type,
                "driver": c.adapter.driver, "driver_info": c.adapter.driver_info, "tier": format!("{:?}", c.tier),
                "tier_label": crate::load::tier_label(c), "shader_f16": c.shader_f16, "subgroups": c.subgroups,
                "subgroup_min_size": c.subgroup_min_size, "subgroup_max_size": c.subgroup_max_size,
                "max_storage_binding": c.adapter_max_binding, "planned_binding": c.max_binding,
                "max_buffer_size": c.max_buffer_size, "max_workgroup_storage": c.max_workgroup_storage,
                "max_invocations": c.max_invocations, "max_storage_buffers_per_stage": c.max_storage_buffers_per_stage,
                "kernel_family": c.family.name(), "software": c.is_software,
            }));
        } else {
            println!(
                "{} ({}, {}, driver {} {})",
                c.adapter.name,
                c.adapter.backend,
                c.adapter.device_type,
                c.adapter.driver,
                c.adapter.driver_info
            );
            println!("  tier {}", crate::load::tier_label(c));
            println!(
                "  storage binding {} MiB (planning with {} MiB), buffer {} MiB, workgroup storage {} KiB, {} invocations, {} storage buffers per stage",
                c.adapter_max_binding >> 20,
                c.max_binding >> 20,
                c.max_buffer_size >> 20,
                c.max_workgroup_storage >> 10,
                c.max_invocations,
                c.max_storage_buffers_per_stage
            );
            println!(
                "  kernel family: {}{}",
                c.family.name(),
                if c.is_software {
                    " (software adapter)"
                } else {
                    ""
                }
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
