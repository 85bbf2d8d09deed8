#!/usr/bin/env bash
# Builds the npm package `wisp-llm` into www/wisp-llm/: the wasm engine (cargo, wasm32), its JS
# bindings (wasm-bindgen --target web) and the optimized module (wasm-opt from npm's binaryen;
# Debian's binaryen 108 breaks wasm-bindgen output). Tools are cached in $WISP_CACHE/tools.
# Output: www/wisp-llm/dist/{wisp.js,wisp_bg.wasm,wisp.d.ts} next to the package's own
# index.js, worker.js and index.d.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${WISP_CACHE:-$HOME/.cache/wisp}"
TOOLS="$CACHE/tools"
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
if [ "$("$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$WBG_VERSION" ]; then
  # Notices go to stderr, so they show even when the output is piped through `tail`.
  echo "installing wasm-bindgen-cli $WBG_VERSION into $TOOLS (about 3 minutes)" >&2
  cargo install -q wasm-bindgen-cli --version "$WBG_VERSION" --root "$TOOLS"
fi
# axe-core: the accessibility audit of the demo page (www/tests/demo.mjs).
if [ ! -x "$TOOLS/node/node_modules/.bin/wasm-opt" ] || [ ! -d "$TOOLS/node/node_modules/playwright-core" ] ||
   [ ! -x "$TOOLS/node/node_modules/.bin/vite" ] || [ ! -f "$TOOLS/node/node_modules/axe-core/axe.min.js" ]; then
  echo "installing binaryen, playwright-core, vite and axe-core into $TOOLS/node (npm)" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" binaryen@132 playwright-core@1 vite@6 axe-core@4
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
echo "building the wasm engine (cargo, wasm32; a few minutes the first time)" >&2
cargo build --release --lib --target wasm32-unknown-unknown
OUT=www/wisp-llm/dist
rm -rf "$OUT" && mkdir -p "$OUT"
"$TOOLS/bin/wasm-bindgen" --target web --out-dir "$OUT" --out-name wisp \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/wisp.wasm"
"$TOOLS/node/node_modules/.bin/wasm-opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$OUT/wisp_bg.wasm" -o "$OUT/wisp_bg.wasm"
ls -l "$OUT"
echo "npm package: www/wisp-llm ($(du -sh "$OUT/wisp_bg.wasm" | cut -f1) wasm)"
