#!/usr/bin/env bash
# wasm-bindgen-test in headless Chromium (chromedriver): the IndexedDB store and the JS option
# formats, inside a dedicated worker (tests/web.rs). Needs scripts/build-web.sh's tools.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${WISP_CACHE:-$HOME/.cache/wisp}/tools"
[ -x "$TOOLS/bin/wasm-bindgen-test-runner" ] || scripts/build-web.sh >/dev/null
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$TOOLS/bin/wasm-bindgen-test-runner" \
  cargo test --release --target wasm32-unknown-unknown --test web
