#!/usr/bin/env python3
"""Writes a tiny chat model for soak tests: SmolLM2-Instruct's tokenizer and chat template (copied
from its GGUF) on a 2-layer llama with random weights (64 wide), so a chat turn costs
milliseconds instead of seconds on a software GPU while exercising every path of a real one:
template, prefix cache, sampling, interrupts. Its text is noise; it is for memory and
lifecycle tests, never for output quality.
Usage: gen_tiny_chat_gguf.py SMOLLM2_INSTRUCT_GGUF OUT"""
import sys

import gguf
import numpy as np

src, out = sys.argv[1], sys.argv[2]
r = gguf.GGUFReader(src)
e, ff, heads, kv_heads, layers = 64, 128, 4, 2, 2
vocab = len(r.fields["tokenizer.ggml.tokens"].contents())
w = gguf.GGUFWriter(out, "llama")
w.add_block_count(layers)
w.add_context_length(2048)
w.add_embedding_length(e)
w.add_feed_forward_length(ff)
w.add_head_count(heads)
w.add_head_count_kv(kv_heads)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_freq_base(10000.0)
w.add_vocab_size(vocab)
for key, f in r.fields.items():
    if not key.startswith("tokenizer."):
        continue
    v = f.contents()
    t = f.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        w.add_array(key, v)
    elif t == gguf.GGUFValueType.STRING:
        w.add_string(key, v)
    elif t == gguf.GGUFValueType.BOOL:
        w.add_bool(key, v)
    elif t == gguf.GGUFValueType.UINT32:
        w.add_uint32(key, v)
    elif t == gguf.GGUFValueType.INT32:
        w.add_int32(key, v)
    else:
        raise SystemExit(f"{key}: value type {t} not copied")
rng = np.random.default_rng(7)
mat = lambda rows, cols: (rng.standard_normal((rows, cols)) * 0.5 / np.sqrt(cols)).astype(np.float16)
ones = lambda n: np.ones(n, dtype=np.float32)
hd = e // heads
w.add_tensor("token_embd.weight", mat(vocab, e))
w.add_tensor("output_norm.weight", ones(e))
for i in range(layers):
    for name, t in [
        ("attn_norm", ones(e)), ("attn_q", mat(e, e)), ("attn_k", mat(kv_heads * hd, e)),
        ("attn_v", mat(kv_heads * hd, e)), ("attn_output", mat(e, e)), ("ffn_norm", ones(e)),
        ("ffn_gate", mat(ff, e)), ("ffn_up", mat(ff, e)), ("ffn_down", mat(e, ff)),
    ]:
        w.add_tensor(f"blk.{i}.{name}.weight", t)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
