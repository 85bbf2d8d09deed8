//! `wisp chat`: an interactive conversation with the model's chat template. Each turn renders
//! the whole conversation, but only the tokens after what the KV cache already holds are run.

use std::io::{BufRead, IsTerminal, Write};

use wisp::model::chat::{ChatTemplate, Message, TemplateSource};
use wisp::model::generate::{generate_full, GenParams};
use wisp::model::session::{fit_messages, reuse_prefix};

use crate::cli::ChatArgs;
use crate::load::load_with_draft;

pub fn run(mut args: ChatArgs) -> Result<(), Box<dyn std::error::Error>> {
    args.model.prefer_chat_model("chat");
    let mut m = load_with_draft(&args.model, args.ctx, args.precision.get(), &args.draft)?;
    let template = ChatTemplate::for_model(&m.tokenizer)?;
    let base_hint = "it is probably a base model, not instruction-tuned: replies may not follow \
                     the conversation (scripts/fetch-model.sh smollm2 fetches an instruction-tuned one)";
    match template.source() {
        TemplateSource::Model => {}
        TemplateSource::Gemma => {
            eprintln!("the model has no chat template, so {base_hint}; using Gemma's turn format")
        }
        TemplateSource::Plain => eprintln!(
            "the model has no chat template, so {base_hint}; using a plain User:/Assistant: transcript"
        ),
    }
    let mut unanswered = 0usize;
    let mut stop = args.stop.clone();
    if template.source() == TemplateSource::Plain {
        stop.push("\nUser:".into());
    }
    let params = GenParams {
        max_tokens: args.n,
        sampler: args.sample.sampler(),
        stop,
        top_logits: 0,
        logprobs: None,
        draft: args.draft.config(),
    };
    let mut messages = Vec::new();
    if let Some(s) = &args.system {
        messages.push(Message::new("system", s));
    }
    let system_len = messages.len();
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("type a message; /reset forgets the conversation, /exit or Ctrl-D quits");
    }
    let mut stdout = std::io::stdout();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages.retain(|msg: &Message| msg.role == "system");
                m.model.reset();
                eprintln!("(conversation forgotten)");
                continue;
            }
            _ => {}
        }
        if !interactive {
            // A piped conversation's transcript shows each message before its reply.
            println!("> {line}");
        }
        messages.push(Message::new("user", line));
        // With --context-shift the oldest turns make room for the reply (up to half the context).
        let reserve = if args.context_shift {
            (args.n as u32).min(args.ctx / 2).max(1)
        } else {
            1
        };
        let fitted = fit_messages(
            &template,
            &m.tokenizer,
            &messages,
            args.ctx,
            reserve,
            args.context_shift,
            m.model.tokens(),
        );
        let fitted = match fitted {
            Ok(f) => f,
            Err(wisp::model::ModelError::ContextFull { needed, ctx }) => {
                messages.pop();
                unanswered += 1;
                eprintln!(
                    "this message does not fit: the conversation needs {needed} positions and the \
                     context holds {ctx}; it was not sent (use --context-shift to drop the oldest \
                     turns, /reset to start over, or a larger --ctx)"
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if fitted.dropped > 0 {
            messages.drain(system_len..system_len + fitted.dropped);
            eprintln!(
                "(context shift: dropped the {} oldest messages)",
                fitted.dropped
            );
        }
        let ids = fitted.ids;
        // Reuse the cached prefix; at least one token must run to get logits.
        let keep = reuse_prefix(&mut m.model, &ids);
        let result = pollster::block_on(generate_full(
            &mut m.model,
            &m.gpu,
            &m.tokenizer,
            &ids[keep..],
            &params,
            None,
            m.draft.as_mut(),
            &mut |t| {
                print!("{}", t.text);
                stdout.flush().is_ok()
            },
        ));
        match result {
            Ok(stats) => {
                println!("{}", stats.tail);
                let drafting = if params.draft.is_some() {
                    format!(
                        ", drafted {} accepted {} ({:.2} tokens per pass)",
                        stats.drafted,
                        stats.accepted,
                        stats.tokens_per_pass()
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "[{} cached + {} new prompt tokens, {} generated, {:.0} ms to first token, {:.2} tok/s{drafting}, {}]",
                    keep,
                    ids.len() - keep,
                    stats.generated.len(),
                    stats.ttft_s * 1e3,
                    stats.decode_tok_s(),
                    stats.finish.reason()
                );
                messages.push(Message::new("assistant", &stats.text));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if unanswered > 0 {
        return Err(format!(
            "{unanswered} message(s) did not fit the context and were not answered"
        )
        .into());
    }
    Ok(())
}
