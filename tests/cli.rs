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

/// The tiny chat model's path (tests/common: made from SmolLM2 when missing), once the adapters
/// the tests require are known to be present; None when it cannot be made (said on stderr).
fn tiny_model() -> Option<String> {
    drop(common::devices());
    common::tiny_chat_model().map(|p| p.to_string_lossy().into_owned())
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

/// `wisp --help` lists the user commands under the first heading and the developer tools under
/// the second; each command's own help still works both ways.
#[test]
fn help_lists_user_commands_before_developer_tools() {
    let r = wisp(&["--help"], "");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = |heading: &str| {
        lines
            .iter()
            .position(|l| *l == heading)
            .unwrap_or_else(|| panic!("no {heading:?} in {}", r.stdout))
    };
    let (user, dev, options) = (at("Commands:"), at("Developer tools:"), at("Options:"));
    assert!(user < dev && dev < options, "{}", r.stdout);
    let listed = |from: usize, to: usize| -> Vec<&str> {
        lines[from + 1..to]
            .iter()
            .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
            .collect()
    };
    assert_eq!(
        listed(user, dev),
        ["run", "chat", "serve", "info", "gpus", "bench", "help"]
    );
    assert_eq!(
        listed(dev, options),
        ["dequant", "check", "bench-kernels", "logits", "soak"]
    );
    assert!(r.stdout.contains("-v, --verbose"), "{}", r.stdout);
    for args in [
        &["help", "serve"][..],
        &["serve", "--help"],
        &["help", "check"],
    ] {
        let r = wisp(args, "");
        let usage = format!(
            "Usage: wisp {}",
            args.iter().find(|a| **a != "help").unwrap_or(&"")
        );
        assert!(
            r.code == Some(0) && r.stdout.contains(&usage),
            "wisp {args:?}: {:?} {}",
            r.code,
            r.stdout
        );
    }
}

/// The adapters' tiers in words that match what Wisp uses: SwiftShader has subgroups (4 lanes,
/// used to share loads) but no shader-f16, so it is T0 with subgroups; lavapipe is T2.
#[test]
fn gpus_labels_tiers_truly() {
    let r = wisp(&["gpus", "--json"], "");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let list: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("gpus --json");
    let expected = [
        ("llvmpipe", "T2", "T2 (shader-f16, subgroups of 8)"),
        (
            "swiftshader",
            "T0",
            "T0 (no shader-f16), with subgroups of 4 for shared loads",
        ),
    ];
    let required = std::env::var("WISP_TEST_ADAPTERS").unwrap_or_default();
    let mut checked = 0;
    for (name, tier, label) in expected {
        let found = list.iter().find(|a| {
            a["name"]
                .as_str()
                .is_some_and(|n| n.to_lowercase().contains(name))
        });
        let Some(a) = found else {
            assert!(
                !required.to_lowercase().contains(name),
                "WISP_TEST_ADAPTERS names {name}, but wisp gpus lists {list:?}"
            );
            eprintln!("{name} is not present: its tier label is not checked");
            continue;
        };
        assert_eq!(a["tier"], tier, "{a}");
        assert_eq!(a["tier_label"], label, "{a}");
        checked += 1;
    }
    assert!(
        checked > 0,
        "neither llvmpipe nor SwiftShader is present: {list:?}"
    );
    let text = wisp(&["gpus"], "");
    for a in &list {
        let label = a["tier_label"].as_str().unwrap_or("?");
        assert!(
            text.stdout.contains(&format!("  tier {label}\n")),
            "{label} not in {}",
            text.stdout
        );
    }
}

/// Whether the process was ended by SIGPIPE.
fn by_sigpipe(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGPIPE)
}

/// A closed stdout (`wisp gpus | head -1`) ends the command quietly by SIGPIPE, as it does
/// `cat` (status 141 in a shell), never with a panic.
#[test]
fn closed_stdout_ends_quietly() {
    use std::io::BufRead;
    let _gpu = common::devices();
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf/tiny.gguf");
    let tiny = tiny.to_string_lossy();
    for args in [&["gpus"][..], &["info", "-m", &tiny]] {
        // Read the first line, then close: the rest may have been written already (exit 0)
        // or not (SIGPIPE).
        let mut child = Command::new(WISP)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wisp starts");
        let mut first = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out)
                .read_line(&mut first)
                .expect("first line");
        }
        let out = child.wait_with_output().expect("wisp ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !first.is_empty()
                && !stderr.contains("panicked")
                && (out.status.success() || by_sigpipe(&out.status)),
            "wisp {args:?} | head -1: {:?}, first line {first:?}, stderr {stderr}",
            out.status
        );
        // Closed before anything is written: the first write ends it, by SIGPIPE.
        let mut child = Command::new(WISP)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wisp starts");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wisp ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            by_sigpipe(&out.status) && !stderr.contains("panicked"),
            "wisp {args:?} > closed pipe: {:?}, stderr {stderr}",
            out.status
        );
    }
}

/// `wisp check` prints one line per block type by default and every tensor with --tensors;
/// its last line keeps the format scripts/test.sh reads.
#[test]
fn check_sums_up_per_block_type() {
    let Some(tiny) = tiny_model() else {
        return;
    };
    let r = wisp(&["check", "-m", &tiny], "");
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("checked 20 tensors in ")
            && last.ends_with("matvec within the f32 bound (ratio ≤ 1): all passed"),
        "{last}"
    );
    let types: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("type "))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "checked")
        .collect();
    assert_eq!(types, ["F16", "F32"], "{}", r.stdout);
    let f16 = lines.iter().find(|l| l.starts_with("F16 ")).unwrap_or(&"");
    assert!(
        f16.split_whitespace().nth(1) == Some("15") && f16.contains(" ok "),
        "{f16}"
    );
    assert!(!r.stdout.contains("blk.0.attn_q.weight"), "{}", r.stdout);
    let r = wisp(&["check", "-m", &tiny, "--tensors"], "");
    assert!(
        r.code == Some(0)
            && r.stdout.contains("blk.0.attn_q.weight")
            && r.stdout.contains("\nchecked 20 tensors"),
        "{}",
        r.stdout
    );
}

/// Piped into `wisp chat`, each message is echoed as `> message` before its reply, so the
/// transcript reads as a conversation.
#[test]
fn piped_chat_echoes_each_message() {
    let Some(tiny) = tiny_model() else {
        return;
    };
    let r = wisp(
        &["chat", "-m", &tiny, "-n", "4", "--temp", "0"],
        "Hello there\nHow are you?\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let second = lines.iter().position(|l| *l == "> How are you?");
    assert!(
        lines.first() == Some(&"> Hello there") && second.is_some_and(|i| i > 1),
        "{:?}",
        r.stdout
    );
    let i = second.unwrap_or(0);
    let reply1 = lines[1..i].join("\n");
    let reply2 = lines[i + 1..].join("\n");
    assert!(
        !reply1.trim().is_empty()
            && !reply2.trim().is_empty()
            && r.stderr.matches(" generated").count() == 2,
        "replies {reply1:?} and {reply2:?}, stderr {}",
        r.stderr
    );
}

/// A `wisp serve` started on a free port (`--port 0`), its stderr collected as it comes.
struct Server {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: String,
    /// The start-up line.
    startup: String,
    /// `127.0.0.1:PORT`, from the start-up line.
    addr: String,
}

impl Server {
    /// Starts `wisp serve ARGS --port 0` and waits for its start-up line.
    fn start(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Server {
        use std::io::BufRead;
        let mut cmd = Command::new(WISP);
        cmd.arg("serve").args(args).args(["--port", "0"]);
        cmd.env("WISP_ADAPTER", "llvmpipe");
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in unset {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wisp serve starts");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            lines,
            stderr: String::new(),
            startup: String::new(),
            addr: String::new(),
        };
        while let Some(line) = server.next_line() {
            if line.contains("listening on") {
                server.addr = line
                    .split("http://")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .unwrap_or("")
                    .to_string();
                server.startup = line;
                return server;
            }
        }
        let status = server.child.wait();
        panic!("wisp serve did not start ({status:?}): {}", server.stderr);
    }

    /// The next stderr line (`None` once the process closed it); kept in `stderr`.
    fn next_line(&mut self) -> Option<String> {
        // A bound so a hung server fails the test instead of hanging it.
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(300))
            .ok()?;
        self.stderr.push_str(&line);
        self.stderr.push('\n');
        Some(line)
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, which has not been waited for yet.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill {sig}");
    }

    /// Waits for the exit (bounded: a server that does not stop is killed and fails the test);
    /// returns its status and all of its stderr.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        while self.next_line().is_some() {}
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.stderr);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("wisp serve did not stop: {}", self.stderr);
    }

    /// Sends a streamed completion request and reads its first event; returns the connection
    /// and what was read so far.
    fn stream(&self, max_tokens: u32) -> (std::io::BufReader<std::net::TcpStream>, String) {
        use std::io::{BufRead, Write};
        let body = format!(
            r#"{{"prompt": "Hello", "max_tokens": {max_tokens}, "temperature": 0, "stream": true}}"#
        );
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(300)))
            .expect("timeout");
        write!(
            s,
            "POST /v1/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("request sent");
        let mut r = std::io::BufReader::new(s);
        let mut seen = String::new();
        while !seen.contains("data: {") {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("the stream ended before its first event: {seen}");
            }
            seen.push_str(&line);
        }
        (r, seen)
    }
}

/// The rest of a response, until the server closes the connection.
fn rest(mut r: std::io::BufReader<std::net::TcpStream>, mut seen: String) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    seen.push_str(&String::from_utf8_lossy(&buf));
    seen
}

/// `wisp serve` names the model, adapter, context and precision when it starts; SIGTERM stops
/// it: the request in flight finishes, then "stopped" and exit 0. A second signal while it
/// waits cuts the request in flight: its stream ends without `[DONE]`, and that is said.
#[test]
fn serve_says_what_it_serves_and_stops_on_sigterm() {
    let Some(tiny) = tiny_model() else {
        return;
    };
    let server = Server::start(&["-m", &tiny, "--ctx", "2048"], &[], &[]);
    let want = "wisp serve: wisp-test-tiny-chat on llvmpipe";
    for part in [want, "(Vulkan, T2)", "context 2048", "exact precision"] {
        assert!(
            server.startup.contains(part),
            "{part:?} not in {:?}",
            server.startup
        );
    }
    assert!(
        server.addr.starts_with("127.0.0.1:") && !server.addr.ends_with(":0"),
        "{}",
        server.startup
    );
    let (conn, seen) = server.stream(16);
    server.signal(libc::SIGTERM);
    let reply = rest(conn, seen);
    let (status, stderr) = server.wait();
    assert!(
        reply.contains("data: [DONE]"),
        "the request in flight finishes: {reply}"
    );
    assert!(
        status.code() == Some(0) && stderr.contains("wisp serve: stopped\n"),
        "{status:?}: {stderr}"
    );

    // The tiny model greedily runs to max_tokens (no end-of-text), seconds of work here.
    let server = Server::start(&["-m", &tiny, "--ctx", "2048"], &[], &[]);
    let (conn, seen) = server.stream(1500);
    server.signal(libc::SIGTERM);
    server.signal(libc::SIGINT);
    let reply = rest(conn, seen);
    let (status, stderr) = server.wait();
    assert!(!reply.contains("[DONE]"), "the request was cut: {reply}");
    assert!(
        status.code() == Some(0)
            && stderr.contains("wisp serve: stopped (1 request in flight was cut)"),
        "{status:?}: {stderr}"
    );
}

/// Without -m or $WISP_MODEL, `wisp serve` serves the instruction-tuned model of the cache, as
/// `wisp chat` does, and says so; the first run on an adapter says it measures the GPU, once,
/// in words (the numbers are for -v).
#[test]
fn serve_defaults_to_the_instruct_model() {
    let Some(tiny) = tiny_model() else {
        return;
    };
    let cache = tmp("cache-serve-default");
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(&cache).expect("cache dir");
    std::os::unix::fs::symlink(&tiny, cache.join("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("symlink");
    let cache_env = cache.to_string_lossy().into_owned();
    let env = [("WISP_CACHE", cache_env.as_str())];
    let server = Server::start(&["--ctx", "256"], &env, &["WISP_MODEL", "WISP_KERNELS"]);
    assert!(
        server
            .stderr
            .contains("serve: using SmolLM2-135M-Instruct.Q4_1.gguf (instruction-tuned")
            && server
                .startup
                .starts_with("wisp serve: SmolLM2-135M-Instruct.Q4_1 on llvmpipe"),
        "{}",
        server.stderr
    );
    assert!(
        server
            .stderr
            .contains("measuring this GPU once (a few seconds); kept for next time")
            && !server.stderr.contains("kernel families"),
        "{}",
        server.stderr
    );
    server.signal(libc::SIGTERM);
    let (status, stderr) = server.wait();
    assert!(
        status.code() == Some(0) && stderr.contains("wisp serve: stopped"),
        "{status:?}: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

/// With no adapter at all (no Vulkan driver here), a model command fails with one line that
/// says what is missing and how to get a software adapter, not a bare "no adapter found".
#[test]
fn no_adapter_says_what_to_install() {
    let out = Command::new(WISP)
        .args([
            "run",
            "-m",
            "tests/data/gguf/tiny.gguf",
            "-p",
            "hi",
            "-n",
            "1",
        ])
        .env("VK_ICD_FILENAMES", "/nonexistent/wisp-no-driver.json")
        .env("WGPU_BACKEND", "vulkan")
        .env_remove("WISP_ADAPTER")
        .output()
        .expect("wisp runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1)
            && stderr.contains("no WebGPU adapter found: no Vulkan, Metal or DX12 driver")
            && stderr.contains("mesa-vulkan-drivers")
            && !stderr.contains("panicked"),
        "{:?}: {stderr}",
        out.status
    );
}
