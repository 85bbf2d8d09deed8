//! `wisp chat`: an interactive conversation with the model's chat template. Each turn renders
//! the whole conversation, but only the tokens after what the KV cache already holds are run.

use std::io::{BufRead, IsTerminal, Write};

use wisp::model::chat::{encode_prompt, ChatTemplate, Message, TemplateSource};
use wisp::model::generate::{generate, GenParams};

use crate::cli::ChatArgs;
use crate::load::load;

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

pub fn run(args: ChatArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut m = load(&args.model, args.ctx, args.precision.get())?;
    let template = ChatTemplate::for_model(&m.tokenizer)?;
    match template.source() {
        TemplateSource::Model => {}
        TemplateSource::Gemma => {
            eprintln!("the model has no chat template: using Gemma's turn format")
        }
        TemplateSource::Plain => {
            eprintln!("the model has no chat template: using a plain User:/Assistant: transcript")
        }
    }
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
    };
    let mut messages = Vec::new();
    if let Some(s) = &args.system {
        messages.push(Message::new("system", s));
    }
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
        messages.push(Message::new("user", line));
        let text = template.render(&messages, true)?;
        let ids = encode_prompt(&m.tokenizer, &text)?;
        // Reuse the cached prefix; at least one token must run to get logits.
        let keep = common_prefix(m.model.tokens(), &ids).min(ids.len() - 1);
        m.model.truncate(keep);
        let result = pollster::block_on(generate(
            &mut m.model,
            &m.gpu,
            &m.tokenizer,
            &ids[keep..],
            &params,
            &mut |t| {
                print!("{}", t.text);
                stdout.flush().is_ok()
            },
        ));
        match result {
            Ok(stats) => {
                println!("{}", stats.tail);
                eprintln!(
                    "[{} cached + {} new prompt tokens, {} generated, {:.0} ms to first token, {:.2} tok/s, {}]",
                    keep,
                    ids.len() - keep,
                    stats.generated.len(),
                    stats.ttft_s * 1e3,
                    stats.decode_tok_s(),
                    stats.finish.reason()
                );
                messages.push(Message::new("assistant", &stats.text));
            }
            Err(wisp::model::ModelError::ContextFull { needed, ctx }) => {
                eprintln!(
                    "\nthe conversation needs {needed} positions and the context holds {ctx}: \
                     starting over (raise --ctx to keep longer conversations)"
                );
                messages.retain(|msg| msg.role == "system");
                m.model.reset();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
