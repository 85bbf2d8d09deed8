#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer, nightly Rust): each target for SECONDS (default 600), with a
# corpus seeded from real files (the GGUF fixtures, the cached models' headers and vocabularies,
# real chat templates, text). Crashes, timeouts (10 s per input) and running out of memory
# (2 GiB) all fail; what libFuzzer found is left in fuzz/artifacts/TARGET/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   WISP_FUZZ_SANITIZER=none builds without AddressSanitizer (CI's short runs: a quicker build;
#   the fuzz crate uses the library without its GPU stack either way).
#   targets: gguf_parse stream_parser tokenizer_vocab tokenizer_bytes chat_template sampler
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-600}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(gguf_parse stream_parser tokenizer_vocab tokenizer_bytes chat_template sampler)
SAN="${WISP_FUZZ_SANITIZER:-address}"
CACHE="${WISP_CACHE:-$HOME/.cache/wisp}"
TOOLS="$CACHE/tools"
# The fuzz builds (nightly, instrumented) are kept in the cache: a fresh clone rebuilds only Wisp.
FUZZ_TARGET="$CACHE/fuzz-target"
export PATH="$TOOLS/bin:$PATH"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain (cargo-fuzz needs it)" >&2
  rustup toolchain install nightly --profile minimal >&2
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz into $TOOLS (a few minutes)" >&2
  cargo install -q cargo-fuzz --root "$TOOLS"
fi

# Seeds from real files.
C=fuzz/corpus
for t in gguf_parse stream_parser tokenizer_vocab tokenizer_bytes chat_template sampler; do mkdir -p "$C/$t"; done
for f in tests/data/gguf/*.gguf; do
  cp "$f" "$C/gguf_parse/"
  { printf '\007'; cat "$f"; } > "$C/stream_parser/$(basename "$f")"
done
for m in "$CACHE"/*.gguf; do
  [ -f "$m" ] || continue
  # A header's first 256 KiB (the metadata start and part of the vocabulary).
  head -c 262144 "$m" > "$C/gguf_parse/$(basename "$m").head"
  { printf '\023'; head -c 65536 "$m"; } > "$C/stream_parser/$(basename "$m").head"
done
printf '%s' "{% for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}" > "$C/chat_template/chatml"
printf '%s\377user\000Hi there\377assistant\000Hello!' \
  "{{ bos_token }}{% for m in messages %}<start_of_turn>{% if m.role == 'assistant' %}model{% else %}{{ m.role }}{% endif %}
{{ m.content | trim }}<end_of_turn>
{% endfor %}{% if add_generation_prompt %}<start_of_turn>model
{% endif %}" > "$C/chat_template/gemma"
printf '%s' "{% for i in range(100) %}{% for j in range(100) %}{{ i * j }}{% endfor %}{% endfor %}" > "$C/chat_template/loops"
head -c 4096 README.md > "$C/tokenizer_bytes/readme"
printf 'Hello, world! 你好 ¿Qué tal? 🙂 <start_of_turn> \t\n  x' > "$C/tokenizer_bytes/mixed"
printf '\001\002\003\007<unk>\377<s>\377</s>\377\342\226\201\377a\377b\377ab\377\342\226\201a\376abba ab' > "$C/tokenizer_vocab/spm"
printf '\000\005\003\001hello\377world\377he\377ll\377o\377\304\240w\376hello world' > "$C/tokenizer_vocab/bpe"
head -c 4096 /dev/urandom > "$C/sampler/random" 2>/dev/null || printf '%04096d' 0 > "$C/sampler/random"

status=0
mkdir -p fuzz/logs
for t in "${TARGETS[@]}"; do
  echo "fuzz: building $t (nightly, sanitizer: $SAN)" >&2
  (cd fuzz && cargo +nightly fuzz build -O -s "$SAN" --target-dir "$FUZZ_TARGET" "$t")
  echo "fuzz: $t for ${SECS} s" >&2
  t0=$(date +%s)
  set +e
  (cd fuzz && cargo +nightly fuzz run -O -s "$SAN" --target-dir "$FUZZ_TARGET" "$t" "corpus/$t" -- \
      -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) > "fuzz/logs/$t.log" 2>&1
  rc=$?
  set -e
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|panicked|Done [0-9]+ runs' "fuzz/logs/$t.log" >&2 || true
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc; log fuzz/logs/$t.log, inputs in fuzz/artifacts/$t)" >&2
    status=1
  fi
  echo "fuzz: $t done in $(( $(date +%s) - t0 )) s" >&2
done
exit $status
