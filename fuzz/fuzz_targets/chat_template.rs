//! Chat templates from model files are untrusted: arbitrary template sources and messages
//! compile and render, or fail with an error, within the template fuel (bounded work: no
//! hang), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp::model::chat::{ChatTemplate, Message, TemplateSource};

fuzz_target!(|data: &[u8]| {
    // Template, then messages separated by 0xFF, each "role\0content".
    let mut parts = data.split(|&b| b == 0xFF);
    let template = String::from_utf8_lossy(parts.next().unwrap_or(b"")).into_owned();
    let messages: Vec<Message> = parts
        .take(16)
        .map(|m| {
            let mut rc = m.splitn(2, |&b| b == 0);
            let role = ["system", "user", "assistant"][rc.next().map_or(0, |r| r.len() % 3)];
            let content = String::from_utf8_lossy(rc.next().unwrap_or(b""));
            Message::new(role, &content)
        })
        .collect();
    if let Ok(t) = ChatTemplate::new(template, TemplateSource::Model, "<s>".into(), "</s>".into()) {
        let _ = t.render(&messages, true);
        let _ = t.render(&messages, false);
    }
});
