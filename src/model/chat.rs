//! Chat templates: the model's `tokenizer.chat_template` (Jinja) rendered with `minijinja`, with
//! the Python string methods Hugging Face templates call (`.strip()`, `.startswith()`, …).
//! Models without a template get a built-in one: Gemma's turn format when the vocabulary has its
//! turn tokens, otherwise a plain "User:/Assistant:" transcript.

use serde::Serialize;

use super::tokenizer::Tokenizer;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// Errors rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the model's chat template does not compile: {0}")]
    Compile(String),
    #[error("the chat template failed to render this conversation: {0}")]
    Render(String),
}

/// Instructions a template may run per rendering (minijinja's fuel).
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// Gemma's turn format (the Gemma 3 instruction models' template, for base models without one).
const GEMMA_TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}<start_of_turn>\
{% if m.role == 'assistant' %}model{% else %}{{ m.role }}{% endif %}\n{{ m.content | trim }}<end_of_turn>\n\
{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

/// A plain transcript for models with neither a template nor known turn tokens.
const PLAIN_TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}\
{% if m.role == 'system' %}{{ m.content }}\n\n{% elif m.role == 'user' %}User: {{ m.content }}\n\
{% else %}Assistant: {{ m.content }}\n{% endif %}{% endfor %}\
{% if add_generation_prompt %}Assistant:{% endif %}";

/// Where a template came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` of the GGUF.
    Model,
    /// Built in: Gemma turns.
    Gemma,
    /// Built in: a plain transcript.
    Plain,
}

/// A compiled chat template with the model's BOS/EOS texts.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    source: TemplateSource,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// The template of the model behind `tok`, or a built-in one when it has none.
    pub fn for_model(tok: &Tokenizer) -> Result<ChatTemplate, ChatError> {
        let (text, source) = match tok.chat_template() {
            Some(t) => (t.to_string(), TemplateSource::Model),
            None if tok.token_to_id("<start_of_turn>").is_some()
                && tok.token_to_id("<end_of_turn>").is_some() =>
            {
                (GEMMA_TEMPLATE.to_string(), TemplateSource::Gemma)
            }
            None => (PLAIN_TEMPLATE.to_string(), TemplateSource::Plain),
        };
        let text_of = |id: Option<u32>| {
            id.and_then(|i| tok.token_text(i))
                .unwrap_or_default()
                .to_string()
        };
        ChatTemplate::new(text, source, text_of(tok.bos()), text_of(tok.eos()))
    }

    /// Compiles `template`; `bos`/`eos` are the texts the template sees as `bos_token`/`eos_token`.
    pub fn new(
        template: String,
        source: TemplateSource,
        bos: String,
        eos: String,
    ) -> Result<ChatTemplate, ChatError> {
        let mut env = minijinja::Environment::new();
        // Hugging Face templates are Python Jinja: whitespace is kept as written, and they call
        // Python string methods and `raise_exception`.
        env.set_keep_trailing_newline(true);
        // A template comes from the model file: bound its work (real templates use a few
        // thousand units for a long conversation) so a hostile one fails instead of hanging.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<(), minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", template)
            .map_err(|e| ChatError::Compile(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            source,
            bos,
            eos,
        })
    }

    /// Where this template came from.
    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// The conversation as the model's prompt text; with `add_generation_prompt` it ends where
    /// the assistant's reply begins.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let t = self
            .env
            .get_template("chat")
            .map_err(|e| ChatError::Render(e.to_string()))?;
        t.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| ChatError::Render(e.to_string()))
    }
}

/// Tokens of a rendered conversation: BOS is added only when the model asks for it and the
/// template did not already write it.
pub fn encode_prompt(
    tok: &Tokenizer,
    text: &str,
) -> Result<Vec<u32>, super::tokenizer::TokenizerError> {
    let mut ids = tok.encode(text, false)?;
    if tok.add_bos() {
        if let Some(bos) = tok.bos() {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_chatml_template() {
        let t = ChatTemplate::new(
            SMOL.into(),
            TemplateSource::Model,
            String::new(),
            String::new(),
        )
        .expect("compiles");
        let s = t
            .render(&[Message::new("user", "Hi")], true)
            .expect("renders");
        assert_eq!(
            s,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn gemma_builtin_and_python_methods() {
        let t = ChatTemplate::new(
            GEMMA_TEMPLATE.into(),
            TemplateSource::Gemma,
            "<bos>".into(),
            "<eos>".into(),
        )
        .expect("compiles");
        let msgs = [
            Message::new("user", " Hello "),
            Message::new("assistant", "Hi."),
            Message::new("user", "Bye"),
        ];
        assert_eq!(
            t.render(&msgs, true).expect("renders"),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi.<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        let py = ChatTemplate::new(
            "{{ messages[0].content.strip().upper() }}{% if messages[0].content.startswith(' ') %}!{% endif %}".into(),
            TemplateSource::Model,
            String::new(),
            String::new(),
        )
        .expect("compiles");
        assert_eq!(py.render(&msgs, false).expect("renders"), "HELLO!");
    }

    /// The chat templates Phi-3.5-mini-instruct and Gemma 2 instruct GGUFs carry
    /// (`tokenizer.chat_template`), rendered as their Python originals render them.
    const PHI35: &str = "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";
    const GEMMA2: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

    #[test]
    fn phi3_and_gemma2_templates() {
        let phi = ChatTemplate::new(
            PHI35.into(),
            TemplateSource::Model,
            "<s>".into(),
            "<|endoftext|>".into(),
        )
        .expect("compiles");
        let msgs = [
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
            Message::new("assistant", "Hello."),
            Message::new("user", "Bye"),
        ];
        assert_eq!(
            phi.render(&msgs, true).expect("renders"),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n"
        );
        assert_eq!(
            phi.render(&msgs[1..2], false).expect("renders"),
            "<|user|>\nHi<|end|>\n<|endoftext|>"
        );
        let gemma = ChatTemplate::new(
            GEMMA2.into(),
            TemplateSource::Model,
            "<bos>".into(),
            "<eos>".into(),
        )
        .expect("compiles");
        assert_eq!(
            gemma.render(&msgs[1..], true).expect("renders"),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        // Its own refusals come through as errors that carry the template's message.
        let e = gemma.render(&msgs, true).expect_err("system role");
        assert!(e.to_string().contains("System role not supported"), "{e}");
        let e = gemma.render(&msgs[2..], true).expect_err("order");
        assert!(e.to_string().contains("must alternate"), "{e}");
    }

    #[test]
    fn errors_name_the_problem() {
        let bad = ChatTemplate::new(
            "{% for %}".into(),
            TemplateSource::Model,
            String::new(),
            String::new(),
        );
        assert!(matches!(bad, Err(ChatError::Compile(_))));
        let raises = ChatTemplate::new(
            "{{ raise_exception('roles must alternate') }}".into(),
            TemplateSource::Model,
            String::new(),
            String::new(),
        )
        .expect("compiles");
        let err = raises.render(&[], true).expect_err("raises");
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }
}
