"""Collects a Hawthorne spec's readouts with Hugging Face transformers or nnsight.

Reads `prompts.jsonl` (written by `hawthorne prompts SPEC`), runs every prompt through the model
in batches, and writes the directory `hawthorne run SPEC --activations DIR` reads:

- `manifest.json`: spec hash, model, library versions, readout, hooks, each prompt's ids;
- `activations/{hook}.npy`: float32 `[n_prompts, d_model]`, the readout at each hook
  (`hook_embed`, as the first block reads it, and every `blocks.{i}.hook_resid_post`,
  TransformerLens's names);
- `answer_logits.npy`: float32 `[n_prompts, 2]`, the logits of the task's aligned and
  misaligned first answer tokens at the last prompt position.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

FORMAT = "hawthorne-activations"
PROMPTS_FORMAT = "hawthorne-prompts"
FORMAT_VERSION = 1
READOUTS = ("last", "mean_task", "mean_prompt")


class CollectError(Exception):
    """A problem with the inputs, stated so the user can fix it."""


@dataclass
class Prompts:
    header: dict
    lines: list[dict]


def read_prompts(path: str | os.PathLike) -> Prompts:
    """Reads and checks `prompts.jsonl`: a header line, then one prompt per line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CollectError(f"{path}:{n}: not JSON ({e})") from None
    if not rows or rows[0].get("format") != PROMPTS_FORMAT:
        raise CollectError(f"{path} does not start with a `{PROMPTS_FORMAT}` header line; write it with `hawthorne prompts SPEC --out {path}`")
    header, lines = rows[0], rows[1:]
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise CollectError(f"{path} has format version {header['format_version']}, newer than this collector's {FORMAT_VERSION}; update hawthorne-collect")
    if header.get("readout") not in READOUTS:
        raise CollectError(f"{path}: unknown readout {header.get('readout')!r}; expected one of {', '.join(READOUTS)}")
    if len(lines) != header.get("n_prompts"):
        raise CollectError(f"{path}: the header announces {header.get('n_prompts')} prompts, the file has {len(lines)} (truncated?)")
    for i, l in enumerate(lines):
        if l.get("index") != i:
            raise CollectError(f"{path}: line {i + 2} has index {l.get('index')}, expected {i}: the prompts are out of order")
    return Prompts(header, lines)


def chat_ids(tokenizer: Any, system: str, user: str) -> tuple[list[int], str]:
    """The prompt's token ids through the model's own chat template, ending where the answer
    starts, and which template was used (`model` or `plain`).

    An empty system text leaves the system turn out, so a template with a default system line
    (SmolLM2's) uses it, as Hawthorne's engine does. A template that refuses a system turn
    (some Gemma versions) gets the system text at the start of the user turn instead. A model
    without a template gets Hawthorne's plain format: `{system}\\n\\nUser: {user}\\nAssistant:`.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        try:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        except Exception:  # noqa: BLE001 - templates raise plain exceptions for a system turn
            if not system:
                raise
            merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
            ids = tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return [int(t) for t in ids], "model"
    text = (f"{system}\n\n" if system else "") + f"User: {user}\nAssistant:"
    return [int(t) for t in tokenizer(text)["input_ids"]], "plain"


def plain_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of text inside a prompt: no template, no BOS."""
    return [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]


def rfind(hay: Sequence[int], needle: Sequence[int]) -> int | None:
    """Start of the last occurrence of `needle` in `hay` (as the engine's contrast builder)."""
    n = len(needle)
    if n == 0 or n > len(hay):
        return None
    for i in range(len(hay) - n, -1, -1):
        if list(hay[i : i + n]) == list(needle):
            return i
    return None


@dataclass
class Prepared:
    """Every prompt tokenized, with its readout span and answer ids."""

    ids: list[list[int]]
    spans: list[tuple[int, int]]
    answers: list[tuple[int, int]]
    texts: dict[str, list[int]]
    template: str


def prepare(prompts: Prompts, tokenizer: Any, max_tokens: int | None = None) -> Prepared:
    """Tokenizes every prompt and finds its readout positions and answer tokens."""
    readout = prompts.header["readout"]
    texts = {t: plain_ids(tokenizer, t) for t in prompts.header.get("texts", [])}
    ids, spans, answers, templates = [], [], [], set()
    for l in prompts.lines:
        toks, template = chat_ids(tokenizer, l["system"], l["user"])
        templates.add(template)
        if not toks:
            raise CollectError(f"prompt {l['index']} ({l['framing']}, {l['task']}) tokenizes to nothing")
        if max_tokens and len(toks) > max_tokens:
            raise CollectError(f"prompt {l['index']} ({l['framing']}, {l['task']}) has {len(toks)} tokens, over the limit of {max_tokens} (the spec's `limits.max_prompt_tokens`, or --max-tokens)")
        if readout == "last":
            span = (len(toks) - 1, len(toks))
        elif readout == "mean_prompt":
            span = (0, len(toks))
        else:
            task = texts.get(l["task_text"]) or plain_ids(tokenizer, l["task_text"])
            s = rfind(toks, task)
            span = (s, s + len(task)) if s is not None else (len(toks) - 1, len(toks))
        a = texts.get(l["aligned"]) or plain_ids(tokenizer, l["aligned"])
        m = texts.get(l["misaligned"]) or plain_ids(tokenizer, l["misaligned"])
        if not a or not m or a[0] == m[0]:
            raise CollectError(f"task {l['task']}: the answers {l['aligned']!r} and {l['misaligned']!r} must start with different tokens")
        ids.append(toks)
        spans.append(span)
        answers.append((a[0], m[0]))
    return Prepared(ids, spans, answers, texts, "plain" if templates == {"plain"} else "model")


def batches(n: int, size: int) -> list[range]:
    return [range(s, min(s + size, n)) for s in range(0, n, max(1, size))]


def pad(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-padded input ids and attention mask: causal attention keeps every real position
    exact, and positions count from 0 in every row."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def reduce(hidden: Any, spans: list[tuple[int, int]]) -> Any:
    """`[B, T, D]` → `[B, D]`: the mean over each row's readout span, in float32."""
    import torch

    return torch.stack([hidden[i, s:e].float().mean(0) for i, (s, e) in enumerate(spans)])


@dataclass
class Batch:
    """What a backend returns for one batch: readouts per hook and answer logits."""

    readouts: dict[str, Any]
    answer_logits: Any


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions(backend: str) -> dict[str, str]:
    out = {"python": platform.python_version(), "hawthorne-collect": _own_version()}
    for mod in ["torch", "transformers", "numpy"] + (["nnsight"] if backend == "nnsight" else []):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is simply not listed
            pass
    return out


def _own_version() -> str:
    from . import __version__

    return __version__


@dataclass
class Writer:
    """Writes the directory: arrays filled batch by batch, then the manifest last (a directory
    without a manifest is visibly incomplete)."""

    out: Path
    n: int
    hooks: list[str]
    d: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.out / "activations").mkdir(parents=True, exist_ok=True)
        self.arrays = {h: np.zeros((self.n, self.d), dtype=np.float32) for h in self.hooks}
        self.logits = np.zeros((self.n, 2), dtype=np.float32)

    def put(self, rows: range, batch: Batch) -> None:
        for h in self.hooks:
            a = batch.readouts[h].detach().float().cpu().numpy()
            bad = ~np.isfinite(a).all(axis=1)
            if bad.any():
                i = rows[int(np.argmax(bad))]
                raise CollectError(f"prompt {i}: non-finite values at {h} (try --dtype float32)")
            self.arrays[h][rows.start : rows.stop] = a
        self.logits[rows.start : rows.stop] = batch.answer_logits.detach().float().cpu().numpy()

    def finish(self, manifest: dict) -> None:
        for h, a in self.arrays.items():
            np.save(self.out / "activations" / f"{h}.npy", a)
        np.save(self.out / "answer_logits.npy", self.logits)
        with open(self.out / "manifest.json", "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)


def collect(
    prompts: Prompts,
    tokenizer: Any,
    run_batch: Callable[[list[list[int]], list[tuple[int, int]], list[tuple[int, int]]], Batch],
    n_layers: int,
    d_model: int,
    out: Path,
    model_info: dict,
    collector: dict,
    batch_size: int = 8,
    max_tokens: int | None = None,
    progress: bool = True,
) -> Path:
    """Runs every prompt through `run_batch` and writes the directory `out`."""
    from tqdm import tqdm

    # The spec's own limit, unless the caller gave a tighter one: a prompt over it would be
    # refused by `hawthorne run` only after the (perhaps remote and costly) collection.
    limit = prompts.header.get("max_prompt_tokens")
    if limit and (not max_tokens or limit < max_tokens):
        max_tokens = limit
    prep = prepare(prompts, tokenizer, max_tokens)
    hooks = ["hook_embed"] + [f"blocks.{i}.hook_resid_post" for i in range(n_layers)]
    w = Writer(Path(out), len(prep.ids), hooks, d_model)
    for rows in tqdm(batches(len(prep.ids), batch_size), desc="collecting", unit="batch", disable=not progress, file=sys.stderr):
        b = run_batch([prep.ids[i] for i in rows], [prep.spans[i] for i in rows], [prep.answers[i] for i in rows])
        w.put(rows, b)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec_hash": prompts.header["spec_hash"],
        "model": {**model_info, "n_layers": n_layers, "d_model": d_model},
        "collector": collector,
        "chat_template": prep.template,
        "readout": prompts.header["readout"],
        "hooks": hooks,
        "prompts": [
            {"framing": l["framing"], "task": l["task"], "condition": l["condition"], "tokens": ids}
            for l, ids in zip(prompts.lines, prep.ids)
        ],
        "texts": prep.texts,
    }
    w.finish(manifest)
    return Path(out)
