//! `wisp dequant`: one tensor dequantized on the GPU, written as raw little-endian f32.

use std::io::Write;

use wisp::gguf::GgufFile;
use wisp::gpu::{Gpu, GpuOptions, GpuWeight};
use wisp::ops::dequant;

use crate::cli::DequantArgs;

pub fn run(args: DequantArgs) -> Result<(), Box<dyn std::error::Error>> {
    let path = args.model.path()?;
    let file = GgufFile::open(&path)?;
    let (t, data) = file.tensor_by_name(&args.tensor)?;
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?;
    eprintln!(
        "{} ({} {:?}) on {} [{:?}]",
        t.name, t.ty, t.dims, gpu.caps.adapter.name, gpu.caps.tier
    );
    let w = GpuWeight::upload(&gpu, &t.name, t.ty, t.row_len(), t.rows(), data)?;
    // Write to a temporary name and rename at the end, so a failure never leaves a partial file.
    let tmp = args.out.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut io_err: Option<std::io::Error> = None;
    pollster::block_on(dequant::dequantize_each(&gpu, &w, |_, vals| {
        if io_err.is_none() {
            if let Err(e) = out.write_all(bytemuck::cast_slice(vals)) {
                io_err = Some(e);
            }
        }
        Ok(())
    }))?;
    if let Some(e) = io_err {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &args.out)?;
    eprintln!("wrote {} values to {}", t.n_elements, args.out.display());
    Ok(())
}
