#!/usr/bin/env python3
"""Quantised copies of the benchmark model, made by llama.cpp's own quantiser.

From `models/SmolLM2-135M-Instruct.Q4_1.gguf` this writes
`target/bench/SmolLM2-135M-Instruct.Q8_0.gguf` and `...Q4_K_M.gguf` with
`llama_model_quantize` (default parameters, `allow_requantize = True`: the source is
already quantised, so each copy is a requantisation of the Q4_1 values, not of the
original weights). A copy is kept when its sidecar `<copy>.json` records the same source
sha256 and the copy's own sha256 still matches.

K-quants need rows that are a multiple of 256; SmolLM2's width is 576, so llama.cpp
falls back to other types for most Q4_K_M tensors. The tensor type counts printed for
each file show what was actually written.

Prints one JSON object on stdout (paths, sizes, sha256s, tensor type counts). Usage (from
the repository root):
    python3 bench/quantize.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
                              [--out-dir target/bench] [--types Q8_0 Q4_K_M]
Needs `pip install llama-cpp-python`.
"""

import argparse
import hashlib
import json
import struct
import sys
import time
from pathlib import Path

# bench/ holds a script named llama_cpp.py: keep this folder off the import path so that
# `import llama_cpp` finds the bindings.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import llama_cpp  # noqa: E402
import llama_cpp.llama_cpp as llama_c  # noqa: E402

ROOT = HERE.parent

FTYPES = {
    "Q8_0": llama_c.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q4_K_M": llama_c.LLAMA_FTYPE_MOSTLY_Q4_K_M,
}

# ggml_type ids (ggml.h) → names, for the tensor type counts.
GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
    16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
    22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
    29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_types(path):
    """Counts of each tensor type in a GGUF file (reads the header only)."""
    with open(path, "rb") as f:
        def read(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def skip_string():
            f.seek(read("Q"), 1)

        # Value sizes of the fixed-size GGUF metadata types; 8 = string, 9 = array.
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

        def skip_value(t):
            if t == 8:
                skip_string()
            elif t == 9:
                item, n = read("I"), read("Q")
                if item in sizes:
                    f.seek(sizes[item] * n, 1)
                else:
                    for _ in range(n):
                        skip_value(item)
            else:
                f.seek(sizes[t], 1)

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        read("I")  # version
        n_tensors, n_kv = read("Q"), read("Q")
        for _ in range(n_kv):
            skip_string()
            skip_value(read("I"))
        counts = {}
        for _ in range(n_tensors):
            skip_string()
            f.seek(8 * read("I"), 1)  # dimensions
            name = GGML_TYPES.get(read("I"), "unknown")
            read("Q")  # offset
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))


def describe(path):
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256(path),
            "tensor_types": tensor_types(path)}


def quantize(src, dst, ftype):
    params = llama_c.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    tmp = dst.with_name(dst.name + ".part")
    rc = llama_c.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0:
        tmp.unlink(missing_ok=True)
        sys.exit(f"llama_model_quantize failed with {rc} for {dst}")
    tmp.replace(dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out-dir", default=str(ROOT / "target" / "bench"))
    ap.add_argument("--types", nargs="+", default=list(FTYPES), choices=list(FTYPES))
    args = ap.parse_args()

    src = Path(args.model)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = describe(src)
    # "SmolLM2-135M-Instruct.Q4_1" → "SmolLM2-135M-Instruct"
    base = src.stem.rsplit(".", 1)[0] if "." in src.stem else src.stem

    copies = {}
    for name in args.types:
        dst = out_dir / f"{base}.{name}.gguf"
        sidecar = dst.with_name(dst.name + ".json")
        recorded = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        reused = (dst.exists() and recorded.get("source_sha256") == source["sha256"]
                  and recorded.get("sha256") == sha256(dst))
        quantize_ms = recorded.get("quantize_ms")
        if not reused:
            print(f"quantising {src.name} to {name}: {dst}", file=sys.stderr)
            t = time.perf_counter()
            quantize(src, dst, FTYPES[name])
            quantize_ms = (time.perf_counter() - t) * 1e3
        copy = describe(dst)
        if not reused:
            sidecar.write_text(json.dumps({
                "source": source["path"], "source_sha256": source["sha256"], "ftype": name,
                "sha256": copy["sha256"], "quantize_ms": quantize_ms,
                "llama_cpp_python": llama_cpp.__version__,
            }, indent=2) + "\n")
        copies[name] = {**copy, "reused": reused, "quantize_ms": quantize_ms}

    print(json.dumps({"llama_cpp_python": llama_cpp.__version__, "source": source, "copies": copies}))


if __name__ == "__main__":
    main()
