"""Compare `wisp dequant` (GPU) with gguf-py's dequantize, bit for bit, for one tensor of each
type in a GGUF file (all tensors with --all). Prints one line per tensor and a closing summary."""
import subprocess, sys, tempfile, os
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

def main():
    wisp, model = sys.argv[1], sys.argv[2]
    every = "--all" in sys.argv
    reader = GGUFReader(model)
    seen, passed, failed = set(), 0, 0
    for t in reader.tensors:
        if not every and t.tensor_type in seen:
            continue
        seen.add(t.tensor_type)
        ref = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "t.f32")
            subprocess.run([wisp, "dequant", "-m", model, t.name, "-o", out], check=True, stderr=subprocess.DEVNULL)
            got = np.fromfile(out, dtype="<f4")
        same = got.shape == ref.shape and np.array_equal(got.view(np.uint32), ref.view(np.uint32))
        print(f"{t.name:32} {t.tensor_type.name:5} {ref.size:>10} values  {'bit-identical' if same else 'DIFFERENT'}")
        if same:
            passed += 1
        else:
            failed += 1
            if got.shape == ref.shape:
                bad = np.nonzero(got.view(np.uint32) != ref.view(np.uint32))[0]
                print(f"  {bad.size} differ, first at {bad[0]}: {got[bad[0]]!r} vs {ref[bad[0]]!r}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

main()
