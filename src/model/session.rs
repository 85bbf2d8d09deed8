//! What a server or a chat UI needs around [`generate`](super::generate::generate): reusing the
//! KV cache of the previous request for the longest shared token prefix, and fitting a
//! conversation into the context by dropping its oldest turns (context shift).

use super::chat::{encode_prompt, ChatTemplate, Message};
use super::forward::Model;
use super::tokenizer::Tokenizer;
use super::ModelError;

/// Keeps the cached positions `prompt` starts with and forgets the rest; returns how many
/// prompt tokens are cached. At least the last prompt token is always left to run, because its
/// logits are what the next token is drawn from.
pub fn reuse_prefix(model: &mut Model, prompt: &[u32]) -> usize {
    let shared = model
        .tokens()
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count();
    let keep = shared.min(prompt.len().saturating_sub(1));
    model.truncate(keep);
    keep
}

/// A conversation rendered for the model, after any context shift.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedPrompt {
    pub ids: Vec<u32>,
    /// Messages dropped from the front (after the system messages) to make room.
    pub dropped: usize,
}

/// Renders `messages` (with the assistant's turn opened) into prompt tokens that leave `reserve`
/// positions free in a context of `ctx`. With `shift`, a conversation that does not fit drops
/// its oldest messages after the leading system messages: as few as make it fit while most of
/// the prompt is still in the KV cache (`cached`, the tokens it holds), else enough that the
/// prompt takes at most half of what is left after `reserve`, as llama.cpp discards half its
/// context. The next turns then grow from the same start and reuse the cache instead of
/// shifting (and prefilling again) every turn. The last message is never dropped. Without
/// `shift`, or if even that does not fit, the error says how many positions are needed.
pub fn fit_messages(
    template: &ChatTemplate,
    tok: &Tokenizer,
    messages: &[Message],
    ctx: u32,
    reserve: u32,
    shift: bool,
    cached: &[u32],
) -> Result<FittedPrompt, ModelError> {
    let system = messages.iter().take_while(|m| m.role == "system").count();
    let render = |dropped: usize| -> Result<Vec<u32>, ModelError> {
        let kept: Vec<Message> = messages[..system]
            .iter()
            .chain(&messages[system + dropped..])
            .cloned()
            .collect();
        Ok(encode_prompt(tok, &template.render(&kept, true)?)?)
    };
    let ids = render(0)?;
    let needed = ids.len() as u64 + u64::from(reserve);
    if needed <= u64::from(ctx) {
        return Ok(FittedPrompt { ids, dropped: 0 });
    }
    if !shift {
        return Err(ModelError::ContextFull { needed, ctx });
    }
    let half = u64::from(ctx.saturating_sub(reserve) / 2);
    let mut fitting = None;
    for dropped in 1..messages.len().saturating_sub(system) {
        let ids = render(dropped)?;
        let len = ids.len() as u64;
        if len + u64::from(reserve) <= u64::from(ctx) {
            let shared = ids.iter().zip(cached).take_while(|(a, b)| a == b).count();
            let done = len <= half || 2 * shared as u64 >= len;
            fitting = Some(FittedPrompt { ids, dropped });
            if done {
                break;
            }
        }
    }
    fitting.ok_or(ModelError::ContextFull { needed, ctx })
}
