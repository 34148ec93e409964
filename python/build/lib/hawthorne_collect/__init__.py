"""Collect residual-stream readouts for a Hawthorne experiment spec with Hugging Face
transformers or nnsight (locally, or on NDIF with `remote=True`).

    hawthorne prompts SPEC --out prompts.jsonl
    python -m hawthorne_collect prompts.jsonl --model HuggingFaceTB/SmolLM2-135M-Instruct --out acts/
    hawthorne run SPEC --activations acts/ --out report/
"""

__version__ = "0.1.0"

from .collect import CollectError, collect, read_prompts  # noqa: E402,F401
