#!/usr/bin/env bash
# The main job on the default model (Gemma 3 270M Q4_K_M): its metadata, greedy generation of 32
# tokens for "Once upon a time" on the GPU, its speed (`wisp bench`: prefill, decode, % of the
# read roofline), then every tensor through the GPU kernels (dequantize and matvec) against the
# CPU reference, summed up per block type (`wisp check --tensors` lists every tensor). Ends with
# a short summary whose last line is `wisp check`'s verdict.
# Installs what it needs on first use (scripts/setup.sh). Extra arguments go to `wisp check`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
echo "building wisp (release; a few minutes the first time)" >&2
cargo build --release --bin wisp
export WISP_MODEL="$(scripts/fetch-model.sh)"
W=target/release/wisp
CHECK_LOG="$(mktemp)"
trap 'rm -f "$CHECK_LOG"' EXIT
$W info | sed -n '1,24p'
echo "…"
$W info | grep '^runs:'   # the load-time audit: every key and tensor used or harmless
$W run -p "Once upon a time" -n 32 --temp 0
# The details go to stderr; the result line (decode tok/s, % of the roofline) to stdout.
SPEED="$($W bench)"
echo "$SPEED"
$W check "$@" | tee "$CHECK_LOG"
NAME="$($W info | sed -n 's/^  general\.name = "\(.*\)"$/\1/p')"
echo
echo "== summary"
echo "model:  $(basename "$WISP_MODEL")${NAME:+ ($NAME)}"
echo "text:   32 tokens for \"Once upon a time\", greedy (printed above)"
echo "speed:  $SPEED"
tail -1 "$CHECK_LOG"
