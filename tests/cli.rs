//! The CLI answers every bad input with a clear message and a non-zero exit, never a panic, and
//! before loading a model where the input alone is wrong. Table-driven: each case runs the real
//! `wisp` binary and checks its exit status and the words of its message.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const WISP: &str = env!("CARGO_BIN_EXE_wisp");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn wisp(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(WISP)
        .args(args)
        .env("WISP_ADAPTER", "llvmpipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wisp starts");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wisp ends");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wisp-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d.join(name)
}

/// Runs each `(args, words)` case: it must fail (exit 1 or clap's 2, not a panic's 101 or a
/// signal) with every word in its message.
fn expect_failures(cases: &[(Vec<String>, Vec<&str>)]) {
    let mut failures = Vec::new();
    for (args, words) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = wisp(&a, "");
        let ok = matches!(r.code, Some(1) | Some(2))
            && words.iter().all(|w| r.stderr.contains(w))
            && !r.stderr.contains("panicked");
        eprintln!(
            "wisp {}: exit {:?}: {}",
            a.join(" "),
            r.code,
            r.stderr.trim()
        );
        if !ok {
            failures.push(format!(
                "wisp {}: exit {:?}, stderr {:?} (want {words:?})",
                a.join(" "),
                r.code,
                r.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn bad_options_and_files_are_refused_clearly() {
    let dir = tmp("a-directory");
    std::fs::create_dir_all(&dir).expect("dir");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf/tiny.gguf");
    let bytes = std::fs::read(&fixture).expect("fixture");
    let truncated = tmp("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let not_gguf = tmp("notes.txt");
    std::fs::write(&not_gguf, "just some text, not a model\n").expect("write");
    let missing = tmp("missing.gguf");
    let (dir, truncated, not_gguf, missing) = (
        dir.to_string_lossy().into_owned(),
        truncated.to_string_lossy().into_owned(),
        not_gguf.to_string_lossy().into_owned(),
        missing.to_string_lossy().into_owned(),
    );
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (s(&["run", "--ctx", "0", "-p", "x"]), vec!["--ctx", "0"]),
        (s(&["run", "-n", "0", "-p", "x"]), vec!["at least 1"]),
        (s(&["run", "-n", "-1", "-p", "x"]), vec!["at least 1"]),
        (
            s(&["run", "--temp", "-1", "-p", "x"]),
            vec!["--temp", "between 0 and 10"],
        ),
        (s(&["run", "--temp=nan", "-p", "x"]), vec!["--temp"]),
        (
            s(&["run", "--top-p", "2", "-p", "x"]),
            vec!["--top-p", "at most 1"],
        ),
        (s(&["run", "--min-p", "-0.5", "-p", "x"]), vec!["--min-p"]),
        (
            s(&["run", "--repeat-penalty", "0", "-p", "x"]),
            vec!["--repeat-penalty"],
        ),
        (s(&["chat", "--temp", "-2"]), vec!["--temp"]),
        (s(&["serve", "--ctx", "0"]), vec!["--ctx"]),
        (
            s(&["bench", "--precision", "turbo"]),
            vec!["--precision", "exact", "fast"],
        ),
        (
            s(&["run", "-p", "x", "--prompt-ids", "1,2"]),
            vec!["cannot be used with"],
        ),
        // The prompt is checked before the (here missing) model is opened.
        (s(&["run", "-m", &missing]), vec!["--prompt"]),
        (
            s(&["run", "--prompt-ids", "1,x", "-m", &missing]),
            vec!["'x' is not a token id"],
        ),
        (s(&["run", "-m", &dir, "-p", "x"]), vec!["is a directory"]),
        (s(&["info", "-m", &dir]), vec!["is a directory"]),
        (s(&["run", "-m", &missing, "-p", "x"]), vec!["No such file"]),
        (
            s(&["run", "-m", &truncated, "-p", "x"]),
            vec![&truncated, "incomplete download"],
        ),
        (
            s(&["info", "-m", &not_gguf]),
            vec![&not_gguf, "not a GGUF file"],
        ),
    ];
    expect_failures(&cases);
}

fn smollm2() -> Option<String> {
    let p = std::env::var_os("WISP_SMOLLM2_MODEL")
        .map(PathBuf::from)
        .or_else(|| {
            let c = std::env::var_os("WISP_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wisp"))
                })?;
            Some(c.join("SmolLM2-135M-Instruct.Q4_1.gguf"))
        })?;
    if p.is_file() {
        return Some(p.to_string_lossy().into_owned());
    }
    assert!(
        std::env::var_os("WISP_REQUIRE_MODELS").is_none(),
        "SmolLM2 is missing: run scripts/fetch-model.sh smollm2"
    );
    None
}

/// With a model: a prompt longer than the context is refused before generating; a reply that
/// reaches the context ends with finish_reason "length" and exit 0, its text clean; a chat turn
/// that does not fit is not sent, said, and the exit status says a message went unanswered; with
/// --context-shift the same conversation is answered.
#[test]
fn context_limits_are_reported_not_glued_on() {
    let _gpu = common::devices();
    let Some(model) = smollm2() else { return };
    let long_ids = (0..20)
        .map(|i| (1000 + i).to_string())
        .collect::<Vec<_>>()
        .join(",");
    expect_failures(&[(
        s(&["run", "-m", &model, "--prompt-ids", &long_ids, "--ctx", "8"]),
        vec!["the prompt has 20 tokens", "--ctx"],
    )]);

    let full = [
        "run",
        "-m",
        &model,
        "-p",
        "Once upon a time",
        "--ctx",
        "12",
        "-n",
        "32",
    ];
    let r = wisp(&[&full[..], &["--json"]].concat(), "");
    let last = r.stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_default();
    assert!(
        r.code == Some(0)
            && v["finish_reason"] == "length"
            && v["generated_tokens"].as_u64().is_some_and(|n| n < 32)
            && !r.stdout.contains("error"),
        "run into a full context: exit {:?}, stdout {:?}, stderr {:?}",
        r.code,
        r.stdout,
        r.stderr
    );
    let r = wisp(&full, "");
    assert!(
        r.code == Some(0) && r.stderr.contains("finish: length") && r.stderr.contains("--ctx"),
        "run into a full context, text mode: {:?} {:?}",
        r.code,
        r.stderr
    );

    let turns = "Hello there, how are you today?\nTell me about the weather on the moon, please.\nAnd on Mars?\n";
    let r = wisp(&["chat", "-m", &model, "--ctx", "64", "-n", "8"], turns);
    assert!(
        r.code == Some(1) && r.stderr.contains("not sent") && r.stderr.contains("not answered"),
        "chat without context shift: exit {:?}, stderr {:?}",
        r.code,
        r.stderr
    );
    let r = wisp(
        &[
            "chat",
            "-m",
            &model,
            "--ctx",
            "64",
            "-n",
            "8",
            "--context-shift",
        ],
        turns,
    );
    let replies = r.stderr.matches("generated").count();
    assert!(
        r.code == Some(0) && replies == 3,
        "chat with context shift answers all 3 turns: exit {:?}, {replies} replies, stderr {:?}",
        r.code,
        r.stderr
    );
}
