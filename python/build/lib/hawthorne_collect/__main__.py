"""Command line: `python -m hawthorne_collect PROMPTS --model ID --out DIR [options]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .collect import CollectError, collect, read_prompts, versions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hawthorne-collect",
        description="Run the prompts of a Hawthorne spec (from `hawthorne prompts SPEC`) through a model with transformers or nnsight "
        "and write the readouts that `hawthorne run SPEC --activations DIR` turns into a report.",
    )
    p.add_argument("prompts", help="prompts.jsonl written by `hawthorne prompts SPEC --out prompts.jsonl`")
    p.add_argument("--model", required=True, help="a hub id (meta-llama/Llama-3.1-8B-Instruct) or a local folder")
    p.add_argument("--gguf-file", help="a GGUF file inside --model's folder, loaded (dequantised) by transformers")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--out", required=True, help="the directory to write")
    p.add_argument("--backend", choices=["transformers", "nnsight"], default="transformers")
    p.add_argument("--remote", action="store_true", help="with --backend nnsight: run on NDIF (needs NDIF_API_KEY)")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16 or auto")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (transformers' device_map, across GPUs)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, help="refuse prompts longer than this many tokens")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        if a.remote and a.backend != "nnsight":
            raise CollectError("--remote needs --backend nnsight")
        if a.batch_size < 1:
            raise CollectError("--batch-size must be at least 1")
        prompts = read_prompts(a.prompts)
        from . import backends

        if a.backend == "transformers":
            loaded = backends.transformers_backend(a.model, a.gguf_file, a.revision, a.dtype, a.device)
        else:
            loaded = backends.nnsight_backend(a.model, a.gguf_file, a.revision, a.dtype, a.device, a.remote)
        collector = {**loaded.collector, "versions": versions(a.backend)}
        out = collect(
            prompts,
            loaded.tokenizer,
            loaded.run_batch,
            loaded.n_layers,
            loaded.d_model,
            Path(a.out),
            loaded.info,
            collector,
            batch_size=a.batch_size,
            max_tokens=a.max_tokens,
            progress=not a.quiet,
        )
    except CollectError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(prompts.lines)} prompts, {loaded.n_layers + 1} hooks → {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
