#!/usr/bin/env python3
"""Writes a tiny llama GGUF that Wisp must refuse by name (for the browser's will-it-run test):
a mixture-of-experts key and an unimplemented RoPE scaling type. Usage: gen_refused_gguf.py OUT"""
import sys

import gguf
import numpy as np

out = sys.argv[1]
e, ff, vocab = 32, 64, 16
w = gguf.GGUFWriter(out, "llama")
w.add_block_count(1)
w.add_context_length(64)
w.add_embedding_length(e)
w.add_feed_forward_length(ff)
w.add_head_count(2)
w.add_layer_norm_rms_eps(1e-6)
w.add_uint32("llama.expert_count", 8)
w.add_string("llama.rope.scaling.type", "longrope")
z = lambda *shape: np.zeros(shape, dtype=np.float32)
w.add_tensor("token_embd.weight", z(vocab, e))
w.add_tensor("output_norm.weight", z(e))
for name, shape in [
    ("attn_norm", (e,)), ("attn_q", (e, e)), ("attn_k", (e, e)), ("attn_v", (e, e)),
    ("attn_output", (e, e)), ("ffn_norm", (e,)), ("ffn_gate", (ff, e)), ("ffn_up", (ff, e)),
    ("ffn_down", (e, ff)),
]:
    w.add_tensor(f"blk.0.{name}.weight", z(*shape))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
