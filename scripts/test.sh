#!/usr/bin/env bash
# Runs every test: unit and integration tests (GPU kernels on lavapipe and SwiftShader, every tier,
# both kernel families, forced small bindings; attention, norms, RoPE, activations, argmax;
# GGUF parser; CPU dequant vs gguf-py fixtures; tokenizer vs llama.cpp; Gemma 3 and SmolLM2
# golden runs against llama.cpp and exact float64 logits), then
# the default model through the GPU on both adapters and with a 16 MiB binding limit, and the CLI's
# GPU dequant against gguf-py's own dequantize; a short soak (memory stays flat); `wisp serve`
# against the official openai client;
# then the npm package in headless Chromium
# (download, resume, corruption, greedy tokens vs llama.cpp, memory, every screen of the demo page,
# the README's quick-start page, device loss;
# two pages sharing one store, cut downloads, a chat soak).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
T0=$(date +%s)
part() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }
MODEL="$(scripts/fetch-model.sh)"
export WISP_MODEL="$MODEL"
export WISP_SMOLLM2_MODEL="$(scripts/fetch-model.sh smollm2)"
# GPU tests never skip: both software adapters must be present; model tests need their models.
export WISP_TEST_ADAPTERS="${WISP_TEST_ADAPTERS:-llvmpipe,swiftshader}"
export WISP_REQUIRE_MODELS=1

part "cargo test (GPU kernels, models, goldens; long tests print progress)"
cargo test --release

cargo build --release --bin wisp
W=target/release/wisp
part "default model on lavapipe (every tensor: GPU dequant bit-exact, matvec within the f32 bound)"
WISP_ADAPTER=llvmpipe $W check | tail -1
part "default model on SwiftShader, T0, every weight in a texture"
WISP_ADAPTER=swiftshader WISP_WEIGHTS=texture $W check | tail -1
part "default model on lavapipe, 16 MiB binding limit, cooperative kernels, tier T0"
WISP_ADAPTER=llvmpipe WISP_MAX_BINDING=16M WISP_KERNELS=workgroup WISP_TIER=0 $W check | tail -1
if [ "$(grep -o 'mesa25' <<<"$VK_ICD_FILENAMES")" ] && [ -f "$WISP_SYSTEM_LVP_ICD" ]; then
  # The project's lavapipe is Mesa 25's (scripts/env.sh); the system's Mesa 22.3 stays correct too.
  part "the system's Mesa 22.3 lavapipe: every tensor of the default model, and the golden runs"
  VK_ICD_FILENAMES="$WISP_SYSTEM_LVP_ICD" WISP_ADAPTER=llvmpipe $W gpus | sed -n 1p
  VK_ICD_FILENAMES="$WISP_SYSTEM_LVP_ICD" WISP_ADAPTER=llvmpipe $W check | tail -1
  VK_ICD_FILENAMES="$WISP_SYSTEM_LVP_ICD" WISP_TEST_ADAPTERS=llvmpipe cargo test --release -q --test oracle
fi
part "wisp dequant (GPU) against gguf-py's dequantize, one tensor of each type"
"$WISP_PY" scripts/compare_dequant.py "$W" "$MODEL"
part "soak: 500 chat turns in one process (resets, stopped replies, context shifts, JSON output); memory stays flat"
# A tiny random-weight model with SmolLM2-Instruct's tokenizer and chat template: every path of
# a real chat at milliseconds per turn. `wisp soak -m MODEL` soaks a real model (README).
TINY_CHAT="$(dirname "$WISP_SMOLLM2_MODEL")/wisp-test-tiny-chat.gguf"
[ -f "$TINY_CHAT" ] || "$WISP_PY" scripts/gen_tiny_chat_gguf.py "$WISP_SMOLLM2_MODEL" "$TINY_CHAT"
WISP_ADAPTER=llvmpipe $W soak -m "$TINY_CHAT" -n 500 | tail -1
part "wisp serve with the official openai client (SmolLM2 on lavapipe)"
"$WISP_PY" tests/serve_openai.py "$W" "$WISP_SMOLLM2_MODEL"
part "browser: the npm package in headless Chromium on SwiftShader"
scripts/build-web.sh | tail -1
scripts/test-wasm.sh
node www/tests/protocol.mjs
node www/tests/api.mjs
node www/tests/browser.mjs
node www/tests/demo.mjs
node www/tests/quickstart.mjs   # the README's page, from an npm-packed tarball
part "browser: two pages loading one model, 10 cut downloads, a 200-turn chat soak"
node www/tests/store.mjs
node www/tests/soak.mjs -n 200
part "all tests passed"
