#!/usr/bin/env python3
"""llama.cpp on the same GGUF and the same 128 prompt token ids: prefill and decode tok/s.

- prefill: one `llama_decode` of the 128 ids into an empty KV cache (batch 1, logits of the
  last token only, as our engine's prefill);
- decode: one `llama_decode` of a single token at position 128, over the 128 cached ones
  (the cache is cut back to 128 before every step, so each step sees the same cache).

Each is timed `--runs` times after a warm-up; the median is reported. One thread
(`n_threads = n_threads_batch = 1`), like our engine under RAYON_NUM_THREADS=1.

Prints one JSON object on stdout. Usage (from the repository root):
    python3 bench/llama_cpp.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
                               [--ids ids.json | --prompt bench/prompt.json] [--runs 7]
`--ids` is a JSON list of token ids (or an object with an `ids` list, as the engine's
`bench_native` example prints). Without it the prompt is tokenized here by llama.cpp and
cut to 128 tokens. Needs `pip install llama-cpp-python`.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

# This file is itself named llama_cpp.py: keep its folder off the import path so that
# `import llama_cpp` finds the bindings, not this script.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import llama_cpp  # noqa: E402
import llama_cpp.llama_cpp as llama_c  # noqa: E402
import numpy as np  # noqa: E402

ROOT = HERE.parent
PROMPT_TOKENS = 128

# llama.cpp's CPU backend repacks Q4_1/Q8_0 weights for AMX when the CPU reports AMX. On
# virtual machines that report AMX without enabling its tile state, `ldtilecfg` faults
# (SIGSEGV in llama_decode). Extra buffer types are turned off so the plain CPU kernels are
# used (see crates/model/tests/fixtures/llama_cpp/generate.py).
_default_model_params = llama_c.llama_model_default_params


def _model_params_without_extra_bufts():
    params = _default_model_params()
    params.use_extra_bufts = False
    return params


llama_c.llama_model_default_params = _model_params_without_extra_bufts


def chatml(system, user):
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--ids", help="JSON file with the prompt token ids")
    ap.add_argument("--prompt", default=str(ROOT / "bench" / "prompt.json"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--decode-runs", type=int, default=31)
    args = ap.parse_args()

    t0 = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=512,
        n_batch=PROMPT_TOKENS,
        n_ubatch=PROMPT_TOKENS,
        n_threads=1,
        n_threads_batch=1,
        logits_all=False,
        verbose=False,
    )
    load_ms = (time.perf_counter() - t0) * 1e3

    if args.ids:
        loaded = json.loads(Path(args.ids).read_text())
        ids = loaded["ids"] if isinstance(loaded, dict) else loaded
    else:
        p = json.loads(Path(args.prompt).read_text())
        ids = llm.tokenize(chatml(p["system"], p["user"]).encode(), add_bos=False, special=True)
    if len(ids) < PROMPT_TOKENS:
        sys.exit(f"the prompt has {len(ids)} tokens, fewer than {PROMPT_TOKENS}")
    ids = [int(i) for i in ids[:PROMPT_TOKENS]]

    def prefill():
        llm.reset()  # n_tokens = 0: `eval` drops every cached position before decoding
        t = time.perf_counter()
        llm.eval(ids)
        return time.perf_counter() - t

    prefill()  # warm-up
    prefill_s = [prefill() for _ in range(args.runs)]
    last = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
    next_token = int(last.argmax())

    def decode_step():
        llm.n_tokens = PROMPT_TOKENS  # `eval` drops cached positions >= 128 first
        t = time.perf_counter()
        llm.eval([next_token])
        return time.perf_counter() - t

    decode_step()  # warm-up
    decode_s = [decode_step() for _ in range(args.decode_runs)]

    prefill_med = statistics.median(prefill_s)
    decode_med = statistics.median(decode_s)
    print(json.dumps({
        "llama_cpp_python": llama_cpp.__version__,
        "model": args.model,
        "n_threads": 1,
        "prompt_tokens": PROMPT_TOKENS,
        "load_ms": load_ms,
        "next_token": next_token,
        "prefill_ms_runs": [s * 1e3 for s in prefill_s],
        "prefill_ms": prefill_med * 1e3,
        "prefill_tok_s": PROMPT_TOKENS / prefill_med,
        "decode_ms_runs": [s * 1e3 for s in decode_s],
        "decode_ms": decode_med * 1e3,
        "decode_tok_s": 1.0 / decode_med,
    }))


if __name__ == "__main__":
    main()
