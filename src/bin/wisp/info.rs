//! `wisp info`: metadata and tensor table of any GGUF file.

use serde_json::{json, Value};
use wisp::gguf::{GgufFile, MetaArray, MetaValue};

use crate::cli::InfoArgs;

const SHOW: usize = 6;

/// The first few elements of an array as JSON values.
fn array_head(a: &MetaArray, n: usize) -> Vec<Value> {
    fn take<T: Clone + Into<Value>>(v: &[T], n: usize) -> Vec<Value> {
        v.iter().take(n).cloned().map(Into::into).collect()
    }
    match a {
        MetaArray::U8(v) => take(v, n),
        MetaArray::I8(v) => take(v, n),
        MetaArray::U16(v) => take(v, n),
        MetaArray::I16(v) => take(v, n),
        MetaArray::U32(v) => take(v, n),
        MetaArray::I32(v) => take(v, n),
        MetaArray::U64(v) => take(v, n),
        MetaArray::I64(v) => take(v, n),
        MetaArray::F32(v) => take(v, n),
        MetaArray::F64(v) => take(v, n),
        MetaArray::Bool(v) => take(v, n),
        MetaArray::String(v) => take(v, n),
        MetaArray::Array(v) => v.iter().take(n).map(|a| array_json(a, SHOW)).collect(),
    }
}

fn array_json(a: &MetaArray, n: usize) -> Value {
    json!({"len": a.len(), "head": array_head(a, n)})
}

fn value_json(v: &MetaValue) -> Value {
    match v {
        MetaValue::U8(x) => json!(x),
        MetaValue::I8(x) => json!(x),
        MetaValue::U16(x) => json!(x),
        MetaValue::I16(x) => json!(x),
        MetaValue::U32(x) => json!(x),
        MetaValue::I32(x) => json!(x),
        MetaValue::U64(x) => json!(x),
        MetaValue::I64(x) => json!(x),
        MetaValue::F32(x) => json!(x),
        MetaValue::F64(x) => json!(x),
        MetaValue::Bool(x) => json!(x),
        MetaValue::String(x) => json!(x),
        MetaValue::Array(a) => array_json(a, SHOW),
    }
}

fn value_text(v: &MetaValue) -> String {
    match v {
        MetaValue::String(s) if s.chars().count() > 80 => {
            format!(
                "{:?}… ({} bytes)",
                s.chars().take(77).collect::<String>(),
                s.len()
            )
        }
        MetaValue::String(s) => format!("{s:?}"),
        MetaValue::Array(a) => {
            let head: Vec<String> = array_head(a, SHOW).iter().map(|v| v.to_string()).collect();
            let more = if a.len() > SHOW { ", …" } else { "" };
            format!("[{} items] [{}{more}]", a.len(), head.join(", "))
        }
        other => value_json(other).to_string(),
    }
}

pub fn run(args: InfoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let path = args.model.path()?;
    let file = GgufFile::open(&path)?;
    let g = file.gguf();
    if args.json {
        let meta: serde_json::Map<String, Value> = g
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        let tensors: Vec<Value> = g
            .tensors
            .iter()
            .map(|t| json!({"name": t.name, "type": t.ty.to_string(), "shape": t.dims, "bytes": t.n_bytes, "offset": t.offset}))
            .collect();
        let (runs, reasons) = will_it_run(g);
        let doc = json!({
            "path": path.display().to_string(),
            "runs": runs,
            "refused": reasons,
            "version": g.version,
            "alignment": g.alignment,
            "data_offset": g.data_offset,
            "metadata": meta,
            "tensors": tensors,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "{}: GGUF v{}, {} metadata keys, {} tensors, data at byte {}",
        path.display(),
        g.version,
        g.metadata.len(),
        g.tensors.len(),
        g.data_offset
    );
    println!("\nmetadata:");
    for (k, v) in &g.metadata {
        println!("  {k} = {}", value_text(v));
    }
    println!(
        "\n{:<40} {:<6} {:<20} {:>12}",
        "tensor", "type", "shape", "bytes"
    );
    let mut total = 0u64;
    let mut by_type: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
    for t in &g.tensors {
        let shape = crate::cli::shape(&t.dims);
        println!(
            "{:<40} {:<6} {:<20} {:>12}",
            t.name,
            t.ty.to_string(),
            shape,
            t.n_bytes
        );
        total += t.n_bytes;
        let e = by_type.entry(t.ty.to_string()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    println!("\n{} tensors, {} bytes of weights", g.tensors.len(), total);
    for (ty, (n, bytes)) in by_type {
        println!("  {ty:<6} {n:>4} tensors {bytes:>12} bytes");
    }
    match will_it_run(g) {
        (true, _) => println!(
            "\nruns: yes ({}; every metadata key and tensor is used or makes no difference)",
            g.architecture().unwrap_or("?")
        ),
        (false, reasons) => {
            println!("\nruns: no");
            for r in reasons {
                println!("  {r}");
            }
        }
    }
    Ok(())
}

/// The load-time audit, from the header alone: whether Wisp computes this model exactly, and
/// every reason it would refuse it.
fn will_it_run(g: &wisp::gguf::Gguf) -> (bool, Vec<String>) {
    use wisp::model::config::{Config, ConfigError};
    match Config::from_gguf(g) {
        Ok(_) => (true, Vec::new()),
        Err(ConfigError::Refused(list)) => (false, list.iter().map(|r| r.to_string()).collect()),
        Err(e) => (false, vec![e.to_string()]),
    }
}
