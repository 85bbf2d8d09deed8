#!/usr/bin/env bash
# The main job on the default model (Gemma 3 270M Q4_K_M): its metadata, greedy generation of 32
# tokens for "Once upon a time" on the GPU, its speed (`wisp bench`: prefill, decode, % of the
# read roofline), then every tensor through the GPU kernels (dequantize and matvec) against the
# CPU reference.
# Installs what it needs on first use (scripts/setup.sh). Extra arguments go to `wisp check`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
echo "building wisp (release; a few minutes the first time)" >&2
cargo build --release --bin wisp
export WISP_MODEL="$(scripts/fetch-model.sh)"
target/release/wisp info | sed -n '1,24p'
echo "…"
target/release/wisp info | grep '^runs:'   # the load-time audit: every key and tensor used or harmless
target/release/wisp run -p "Once upon a time" -n 32 --temp 0
target/release/wisp bench
target/release/wisp check "$@"
