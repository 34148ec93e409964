"""The engines that run the forward passes: Hugging Face transformers (forward hooks on the
decoder layers) and nnsight (a trace, locally or on NDIF with `remote=True`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .collect import Batch, CollectError, pad, reduce


@dataclass
class Loaded:
    """A model ready to collect from."""

    tokenizer: Any
    run_batch: Any
    n_layers: int
    d_model: int
    info: dict
    collector: dict


def _torch_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return "auto"
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise CollectError(f"--dtype {name!r}: expected float32, bfloat16, float16 or auto") from None


def _parts(model: Any) -> tuple[Any, Any, list[Any], Any]:
    """(decoder, input embedding, decoder layers, output head) of a causal LM, found by the
    attribute names of transformers' decoder-only models (so that the same lookup works on a
    plain module and on nnsight's wrapper of it)."""

    def first_attr(obj: Any, names: tuple[str, ...]) -> Any:
        for n in names:
            found = getattr(obj, n, None)
            if found is not None:
                return found
        return None

    head = first_attr(model, ("lm_head", "embed_out"))
    for path in ("model", "model.language_model", "transformer", "gpt_neox"):
        obj = model
        try:
            for name in path.split("."):
                obj = getattr(obj, name)
        except AttributeError:
            continue
        layers = first_attr(obj, ("layers", "h"))
        embed = first_attr(obj, ("embed_tokens", "wte", "embed_in"))
        if layers is not None and embed is not None and head is not None:
            return obj, embed, list(layers), head
    raise CollectError(
        f"{type(model).__name__}: cannot find the embedding, decoder layers and output head "
        "(looked for model.layers, model.language_model.layers, transformer.h, gpt_neox.layers)"
    )


def _block_input(args: tuple, kwargs: dict) -> Any:
    """The hidden states a decoder layer is called with (positionally or by name)."""
    return args[0] if args else kwargs["hidden_states"]


def _first(x: Any) -> Any:
    """A layer's hidden states: older transformers versions return a tuple."""
    return x[0] if isinstance(x, (tuple, list)) else x


def _softcap(logits: Any, config: Any) -> Any:
    cap = getattr(config, "final_logit_softcapping", None) or getattr(getattr(config, "text_config", None), "final_logit_softcapping", None)
    if cap:
        import torch

        return torch.tanh(logits / cap) * cap
    return logits


def _answer_logits(head: Any, config: Any, final: Any, lengths: list[int], answers: list[tuple[int, int]]) -> Any:
    """Logits of each row's two answer tokens at its last prompt position, from the final
    (normed) hidden states `[B, T, D]`: the head runs on B vectors, not B × T."""
    import torch

    last = torch.stack([final[i, n - 1] for i, n in enumerate(lengths)])
    logits = _softcap(head(last).float(), config)  # [B, V]
    idx = torch.tensor(answers, dtype=torch.long, device=logits.device)
    return logits.gather(1, idx)  # [B, 2]: aligned, misaligned


def load_hf(model_id: str, gguf_file: str | None, revision: str | None, dtype: str, device: str) -> tuple[Any, Any, dict]:
    """Loads a tokenizer and a causal LM with transformers (a hub id, a local folder, or a
    folder plus a GGUF file name, which transformers dequantises)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    if revision:
        kw["revision"] = revision
    tokenizer = AutoTokenizer.from_pretrained(model_id, **kw)
    device_map = None if device == "cpu" else device
    model = AutoModelForCausalLM.from_pretrained(model_id, dtype=_torch_dtype(dtype), device_map=device_map, **kw)
    model.eval()
    torch.set_grad_enabled(False)
    info: dict[str, Any] = {
        "id": model_id if not gguf_file else str(Path(model_id) / gguf_file),
        "revision": revision or getattr(model.config, "_commit_hash", None),
        "sha256": None,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "architecture": getattr(model.config, "model_type", type(model).__name__),
    }
    if gguf_file:
        from .collect import sha256_file

        info["sha256"] = sha256_file(Path(model_id) / gguf_file)
    return tokenizer, model, info


def pad_id(tokenizer: Any) -> int:
    for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if t is not None:
            return int(t)
    return 0


def transformers_backend(model_id: str, gguf_file: str | None, revision: str | None, dtype: str, device: str) -> Loaded:
    """Forward hooks on the embedding and on every decoder layer; each reduces its output to
    the readout at once, so a batch never holds every layer's full hidden states."""
    import torch

    tokenizer, model, info = load_hf(model_id, gguf_file, revision, dtype, device)
    decoder, embed, layers, head = _parts(model)
    state: dict[str, Any] = {}

    def hook(name: str):
        def f(_module: Any, _inputs: Any, output: Any) -> None:
            state["readouts"][name] = reduce(_first(output), state["spans"])

        return f

    def embed_hook(_module: Any, args: tuple, kwargs: dict) -> None:
        state["readouts"]["hook_embed"] = reduce(_block_input(args, kwargs), state["spans"])

    # `hook_embed` is what the first block reads: the embedding as the blocks see it (Gemma's
    # ×√d, applied in some versions inside the model's forward rather than the embedding
    # module, included), which is the engine's `hook_embed` and `blocks.0.hook_resid_pre`.
    layers[0].register_forward_pre_hook(embed_hook, with_kwargs=True)
    for i, layer in enumerate(layers):
        layer.register_forward_hook(hook(f"blocks.{i}.hook_resid_post"))
    dev = next(model.parameters()).device

    def run_batch(rows: list[list[int]], spans: list[tuple[int, int]], answers: list[tuple[int, int]]) -> Batch:
        ids, mask = pad(rows, pad_id(tokenizer))
        state["readouts"], state["spans"] = {}, spans
        with torch.no_grad():
            final = decoder(input_ids=ids.to(dev), attention_mask=mask.to(dev)).last_hidden_state
            logits = _answer_logits(head, model.config, final, [len(r) for r in rows], answers)
        return Batch(dict(state["readouts"]), logits)

    d_model = int(embed.weight.shape[1])
    collector = {"backend": "transformers", "remote": False}
    return Loaded(tokenizer, run_batch, len(layers), d_model, info, collector)


def nnsight_backend(model_id: str, gguf_file: str | None, revision: str | None, dtype: str, device: str, remote: bool) -> Loaded:
    """An nnsight trace that saves each hook's readout and the answer logits. With `remote`,
    the model is NDIF's (set `NDIF_API_KEY`, or `nnsight.CONFIG.set_default_api_key`): only
    the tokenizer and the model's shape are loaded here, and only readouts come back."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LanguageModel is deprecated in favour of a newer name
        import nnsight
        from nnsight import LanguageModel

        if remote:
            if gguf_file:
                raise CollectError("--remote runs a hub model on NDIF; a local GGUF file cannot be sent there")
            lm = LanguageModel(model_id, revision=revision) if revision else LanguageModel(model_id)
            tokenizer = lm.tokenizer
            info = {
                "id": model_id,
                "revision": revision or getattr(lm.config, "_commit_hash", None),
                "sha256": None,
                "dtype": str(getattr(lm.config, "torch_dtype", None) or getattr(lm.config, "dtype", "unknown")).removeprefix("torch."),
                "architecture": getattr(lm.config, "model_type", "unknown"),
            }
        else:
            tokenizer, model, info = load_hf(model_id, gguf_file, revision, dtype, device)
            lm = LanguageModel(model, tokenizer=tokenizer)
    decoder, embed, layers, head = _parts(lm)
    n_layers = len(layers)
    d_model = int(lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.text_config.hidden_size)
    config = lm.config

    def run_batch(rows: list[list[int]], spans: list[tuple[int, int]], answers: list[tuple[int, int]]) -> Batch:
        ids, mask = pad(rows, pad_id(tokenizer))
        lengths = [len(r) for r in rows]
        # Modules are read in the order the model runs them, as nnsight requires. The dict is
        # made and saved inside the trace: a remote trace returns only saved values.
        with lm.trace({"input_ids": ids, "attention_mask": mask}, remote=remote):
            saved = nnsight.save({})
            # What the first block reads (see the transformers backend).
            saved["hook_embed"] = reduce(layers[0].input, spans)
            for i, layer in enumerate(layers):
                saved[f"blocks.{i}.hook_resid_post"] = reduce(_first(layer.output), spans)
            out = head.output  # [B, T, V]
            last = torch.stack([out[i, n - 1] for i, n in enumerate(lengths)])
            idx = torch.tensor(answers, dtype=torch.long, device=last.device)
            saved["answer_logits"] = _softcap(last.float(), config).gather(1, idx)
        logits = saved.pop("answer_logits")
        return Batch({k: torch.as_tensor(v) for k, v in saved.items()}, torch.as_tensor(logits))

    collector = {"backend": "nnsight", "remote": remote}
    return Loaded(tokenizer, run_batch, n_layers, d_model, info, collector)
