//! `wisp`: the command-line front end (native only).

#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod bench_kernels;
#[cfg(not(target_arch = "wasm32"))]
mod chat;
#[cfg(not(target_arch = "wasm32"))]
mod check;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod dequant;
#[cfg(not(target_arch = "wasm32"))]
mod gpus;
#[cfg(not(target_arch = "wasm32"))]
mod info;
#[cfg(not(target_arch = "wasm32"))]
mod load;
#[cfg(not(target_arch = "wasm32"))]
mod logits;
#[cfg(not(target_arch = "wasm32"))]
mod run;
#[cfg(not(target_arch = "wasm32"))]
mod serve;
#[cfg(not(target_arch = "wasm32"))]
mod soak;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::FromArgMatches;
    quiet_vulkan_loader();
    let args = match cli::Cli::from_arg_matches(&cli::command().get_matches()) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    cli::set_verbose(args.verbose);
    // -v: Wisp's own info-level logs (RUST_LOG still decides when set).
    let level = if args.verbose {
        "warn,wisp=info"
    } else {
        "warn"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if !matches!(args.command, cli::Command::Serve(_)) {
        die_on_closed_stdout();
    }
    let result = match args.command {
        cli::Command::Gpus(a) => gpus::run(a),
        cli::Command::Info(a) => info::run(a),
        cli::Command::Dequant(a) => dequant::run(a),
        cli::Command::BenchKernels(a) => bench_kernels::run(a),
        cli::Command::Check(a) => check::run(a),
        cli::Command::Run(a) => run::run(a),
        cli::Command::Chat(a) => chat::run(a),
        cli::Command::Logits(a) => logits::run(a),
        cli::Command::Bench(a) => bench::run(a),
        cli::Command::Serve(a) => serve::run(a),
        cli::Command::Soak(a) => soak::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The Vulkan loader and Mesa warn on every run without a usable XDG_RUNTIME_DIR (containers,
/// su, CI): point it at a private directory, before any thread or GPU instance exists.
#[cfg(all(unix, not(target_arch = "wasm32")))]
fn quiet_vulkan_loader() {
    use std::os::unix::fs::PermissionsExt;
    let ok = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if ok {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("wisp-runtime-{user}"));
    let private = std::fs::Permissions::from_mode(0o700);
    if std::fs::create_dir_all(&dir).is_ok() && std::fs::set_permissions(&dir, private).is_ok() {
        // Edition 2021: set_var is safe; no other thread exists yet.
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

#[cfg(all(not(unix), not(target_arch = "wasm32")))]
fn quiet_vulkan_loader() {}

/// `wisp gpus | head -3`: a closed stdout ends the process quietly with SIGPIPE (status 141 in
/// a shell), as it does `cat` or `grep`, instead of `println!` panicking on EPIPE. Rust ignores
/// SIGPIPE by default; this restores the Unix default. Not for `serve`: hyper writes responses
/// with `writev`, which (unlike `send` with MSG_NOSIGNAL) raises SIGPIPE on a socket whose
/// client left, so there it stays ignored and a closed socket is an EPIPE error.
#[cfg(all(unix, not(target_arch = "wasm32")))]
fn die_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to its default; no handler runs our code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(all(not(unix), not(target_arch = "wasm32")))]
fn die_on_closed_stdout() {}

#[cfg(target_arch = "wasm32")]
fn main() {}
