//! `wisp logits`: the logits after the last prompt token, as raw little-endian f32.

use wisp::model::forward::{Output, Want};

use crate::cli::LogitsArgs;
use crate::load::load;

pub fn run(args: LogitsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut m = load(&args.model, args.ctx, args.precision.get())?;
    let prompt = args.prompt.tokens(&m.tokenizer)?;
    let Output::Logits(l) = pollster::block_on(m.model.forward(&m.gpu, &prompt, Want::Logits))?
    else {
        return Err("the forward pass returned no logits".into());
    };
    let bytes: Vec<u8> = l.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&args.out, bytes)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let best = wisp::model::sampler::argmax(&l);
    eprintln!(
        "{} logits after {} prompt tokens written to {} (argmax {best}, {:.4})",
        l.len(),
        prompt.len(),
        args.out.display(),
        l[best as usize]
    );
    Ok(())
}
