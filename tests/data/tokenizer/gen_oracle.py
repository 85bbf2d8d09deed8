#!/usr/bin/env python3
"""Writes llama.cpp's own tokenizations of a corpus, for tests/tokenizer.rs to compare against.

llama.cpp's source comes from the PyPI sdist of llama-cpp-python (vendor/llama.cpp, commit 0c1e570),
built with cmake and ninja from PyPI (`pip install cmake ninja`; about 7 minutes on 2 cores);
oracle.cpp (beside this file) prints what libllama says. With WISP=/path/to/wisp:
    pip download --no-deps --no-binary=llama-cpp-python llama-cpp-python==0.3.36 && tar xzf llama_cpp_python-0.3.36.tar.gz
    cd llama_cpp_python-0.3.36/vendor/llama.cpp
    cmake -S . -B build -G Ninja -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF
    cmake --build build --target llama
    g++ -O2 -std=c++17 $WISP/tests/data/tokenizer/oracle.cpp -I include -I ggml/include \
        -L build/bin -lllama -lggml -lggml-base -o oracle
    LD_LIBRARY_PATH=build/bin python3 $WISP/tests/data/tokenizer/gen_oracle.py ./oracle "$($WISP/scripts/fetch-model.sh)" gemma3
    LD_LIBRARY_PATH=build/bin python3 $WISP/tests/data/tokenizer/gen_oracle.py ./oracle "$($WISP/scripts/fetch-model.sh smollm2)" smollm2
    for pre in gpt-2 llama-bpe qwen2; do   # SmolLM2's vocabulary under other pre-tokenizers (needs gguf-py)
      LD_LIBRARY_PATH=build/bin python3 $WISP/tests/data/tokenizer/gen_oracle.py ./oracle "$($WISP/scripts/fetch-model.sh smollm2)" smollm2-$pre $pre
    done
    # Gemma 3's vocabulary with SentencePiece's default add_space_prefix (true): the key dropped
    LD_LIBRARY_PATH=build/bin python3 $WISP/tests/data/tokenizer/gen_oracle.py ./oracle "$($WISP/scripts/fetch-model.sh)" gemma3-space-prefix -tokenizer.ggml.add_space_prefix
Output: tests/data/tokenizer/<name>.json. With a fourth argument the model's metadata is copied
(no tensors): a pre-tokenizer name replaces tokenizer.ggml.pre and drops tokenizer.ggml.add_bos_token;
-KEY drops KEY.
"""
import json
import os
import subprocess
import sys
import tempfile

CORPUS = [
    "Once upon a time", "Hello world", "Hello, world!", "", " leading space", "trailing space ",
    "  a\n\n\tb   ", " ", "  ", "\n", "   \n\n  ", " " * 40, "\n" * 40, "\t" * 35,
    "\r\n", "\t\tindented", "a\u00a0b", "\u3000wide", "a\u200bb",
    "café naïve résumé", "Ünïcödé", "e\u0301", "中文字符测试", "日本語のテキスト", "한국어 텍스트",
    "Привет мир", "مرحبا بالعالم", "🙂😀🫠🤖👍🏽", "👨\u200d👩\u200d👧\u200d👦", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\U0010ffff\ue000", "▁ and Ġ as text", "<0x41> literal",
    'fn main() { println!("hi"); }', "def f(x):\n    return x**2\n",
    "<html><body><b>bold</b> <i>it</i></body></html>", "a</s>b<s>c", "<table><tr><td>1</td></tr></table>",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<bos>text", "<eos>", "<pad><unk><mask>",
    "<unused0><unused99>", "[multimodal]", "<start_of_image>",
    "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<|endoftext|>", "<reponame>x<file_sep>", "<|im_start|><|im_start|>",
    "12345", "3.14159", "1,000,000", "2024-01-01", "don't you're I'm we've they'll he'd It's", "DON'T",
    "' '", "hello . world , what ? yes !", "a ' b", "the the the the", "a" * 45, "ab" * 20,
    "The quick brown fox jumps over the lazy dog. " * 3,
    "In 1492, Columbus sailed the ocean blue; he didn't find India (he found the Americas)!",
    "it 's we 've I 'm they 're you 'll he 'd ' x", "wait ... what ?! no , yes .", "x\r\n\r\ny 1234567",
]


def variant(model, change, dst):
    """A tensorless copy of model's metadata, changed as the module doc says."""
    import gguf
    r = gguf.GGUFReader(model)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for name, field in r.fields.items():
        dropped = ([change[1:]] if change.startswith("-")
                   else ["tokenizer.ggml.pre", "tokenizer.ggml.add_bos_token"])
        if name.startswith("GGUF.") or name == "general.architecture" or name in dropped:
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_array(name, field.contents())
        else:
            w.add_key_value(name, field.contents(), vtype)
    if not change.startswith("-"):
        w.add_string("tokenizer.ggml.pre", change)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def ids(rest):
    return [int(x) for x in rest.split()]


def main():
    oracle, model, name = sys.argv[1:4]
    if len(sys.argv) > 4:
        tmp = os.path.join(tempfile.mkdtemp(), "vocab.gguf")
        variant(model, sys.argv[4], tmp)
        model = tmp
    with tempfile.NamedTemporaryFile("w", suffix=".hex", delete=False) as f:
        for text in CORPUS:
            f.write(text.encode().hex() + "\n")
    out = subprocess.run([oracle, model, f.name], check=True, capture_output=True, text=True).stdout
    os.unlink(f.name)
    result = {"source": "llama.cpp 0c1e570 (vendored in PyPI llama-cpp-python 0.3.36), vocab_only, "
                        + os.path.basename(sys.argv[2]) + (" changed: " + sys.argv[4] if len(sys.argv) > 4 else ""),
              "cases": []}
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("n_vocab", "bos", "eos", "eot"):
            result[key] = int(rest)
        elif key == "add_bos":
            result[key] = rest == "1"
        elif key == "pieces_fnv1a64":
            result[key] = rest
        elif key == "eog":
            result[key] = ids(rest)
        elif key == "text":
            result["cases"].append({"text": bytes.fromhex(rest).decode()})
        elif key.startswith("ids"):
            result["cases"][-1][key] = ids(rest)
        elif key.startswith("decoded"):
            result["cases"][-1][key] = bytes.fromhex(rest).decode("utf-8", errors="replace")
    dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".json")
    cases = result.pop("cases")
    with open(dst, "w", encoding="utf-8") as f:
        # One case a line: reviewable diffs.
        head = json.dumps(result, ensure_ascii=False, indent=1)[:-2]
        body = ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases)
        f.write(head + ',\n "cases": [\n' + body + "\n]}\n")
    print(dst, len(cases), "cases")


if __name__ == "__main__":
    main()
