#!/usr/bin/env bash
# Installs what Wisp's tests need on a Debian machine (idempotent) and fetches the default model.
set -euo pipefail
need_apt=()
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# Node (npm) runs the browser tests (playwright-core) and the demo server; binaryen comes from npm.
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
# Python venvs (the `wisp serve` tests run the official openai client from one).
python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup target add wasm32-unknown-unknown x86_64-pc-windows-msvc aarch64-apple-darwin >/dev/null 2>&1 || \
  rustup target add wasm32-unknown-unknown
python3 -c "import gguf, numpy" 2>/dev/null || python3 -m pip install --quiet gguf numpy
# The OpenAI client and jsonschema for tests/serve_openai.py, in a venv of their own.
VENV="${WISP_CACHE:-$HOME/.cache/wisp}/venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import openai, jsonschema" 2>/dev/null || "$VENV/bin/pip" install --quiet openai jsonschema
"$(dirname "$0")/fetch-model.sh" >/dev/null
"$(dirname "$0")/fetch-model.sh" smollm2 >/dev/null
