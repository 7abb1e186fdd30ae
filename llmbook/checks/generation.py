"""Argument checks of ``llmbook.generation`` (hand-written: chapter 09, section 9, explains them).

``generate`` and ``stream_generate`` check every argument once, before the first step, with
:func:`check_prompts`, :func:`check_sampling` and :func:`check_stop`; nothing is checked inside
the generation loop. ``forward_with_cache`` checks its arguments and the cache against the model
(:func:`check_cached_forward`), ``next_token_logits`` its own (:func:`check_next_token_args`).
``KVCache`` checks its sizes (:func:`check_cache_sizes`) and each write that a caller makes with
``update`` (:func:`check_cache_update`). Each check raises a ``TypeError`` (wrong type) or a
``ValueError`` (wrong value) naming the argument, what was given and what is allowed.
"""

from __future__ import annotations

import torch

from llmbook.checks import check_int, check_optional_int, check_positive_float
from llmbook.checks.model import check_id_batch, check_inputs

__all__ = [
    "as_prompts",
    "check_cache_sizes",
    "check_cache_update",
    "check_cached_forward",
    "check_kv_cache",
    "check_model",
    "check_messages",
    "check_next_token_args",
    "check_prompts",
    "check_range",
    "check_sampling",
    "check_stop",
    "tokenizer_size",
]


def as_prompts(prompt_ids) -> tuple[list[list[int]], bool]:
    """``(prompts as lists of ints, True if one prompt was given)``; raises on anything else."""
    if isinstance(prompt_ids, torch.Tensor):
        if prompt_ids.dim() not in (1, 2) or prompt_ids.is_floating_point():
            raise TypeError(
                "prompt_ids must be a 1-D or 2-D integer tensor, got dtype "
                f"{prompt_ids.dtype} and shape {tuple(prompt_ids.shape)}"
            )
        prompt_ids = prompt_ids.tolist()
    if not isinstance(prompt_ids, list | tuple) or len(prompt_ids) == 0:
        raise ValueError(
            f"prompt_ids must be a non-empty list of ids (or of lists of ids), got {prompt_ids!r:.60}"
        )
    single = not isinstance(prompt_ids[0], list | tuple)
    prompts = [list(prompt_ids)] if single else [list(p) for p in prompt_ids]
    for p in prompts:
        if any(isinstance(i, bool) or not isinstance(i, int) for i in p):
            raise TypeError(f"prompt ids must be ints, got {p!r:.60}")
        if not p:
            raise ValueError("every prompt needs at least one token, got an empty prompt")
    return prompts, single


def check_model(model) -> None:
    """Raise unless ``model`` looks like a ``DecoderLM``: ``config``, ``model`` (the decoder)
    and ``lm_head``."""
    if not all(hasattr(model, a) for a in ("config", "model", "lm_head")):
        raise TypeError(f"model must be a DecoderLM, got {type(model).__name__}")


def check_prompts(model, prompt_ids, max_new_tokens, pad_id=0, crop=True):
    """Check the model, the prompts (ids in the model's vocabulary), ``max_new_tokens``,
    ``pad_id`` and whether the text fits the context; return ``as_prompts(prompt_ids)``."""
    check_model(model)
    prompts, single = as_prompts(prompt_ids)
    check_int(max_new_tokens, "max_new_tokens", minimum=0)
    V, window = model.config.vocab_size, model.config.context_length
    if max(max(p) for p in prompts) >= V or min(min(p) for p in prompts) < 0:
        raise ValueError(f"prompt ids must lie in [0, {V - 1}] (the model's vocab_size is {V})")
    check_int(pad_id, "pad_id", minimum=0)
    if pad_id >= V:
        raise ValueError(
            f"pad_id must be an id of the model's vocabulary, in [0, {V - 1}] (the model never "
            f"sees it; any id will do), got {pad_id}"
        )
    if not isinstance(crop, bool):
        raise TypeError(f"crop must be True or False, got {type(crop).__name__} ({crop!r})")
    longest = max(len(p) for p in prompts)
    if not crop and longest + max_new_tokens > window:
        raise ValueError(
            f"a prompt of {longest} tokens + max_new_tokens={max_new_tokens} does not fit the "
            f"context of {window} tokens; shorten it, or pass crop=True to keep the last {window}"
        )
    return prompts, single


def check_range(value, name: str, low: float, high: float, low_open: bool = True) -> None:
    """Raise unless ``value`` is a number in ``(low, high]`` (``low_open``) or ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    finite = value == value and value not in (float("inf"), float("-inf"))
    if not finite or not (low < value <= high if low_open else low <= value <= high):
        if high == float("inf"):
            allowed = f"{'>' if low_open else '>='} {low} and finite"
        else:
            allowed = f"in {'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def check_sampling(temperature, top_k, top_p, min_p, repetition_penalty, generator) -> None:
    """Check the filters' settings (section 2 of chapter 9) and the random generator."""
    check_range(temperature, "temperature", 0, float("inf"), low_open=False)
    check_optional_int(top_k, "top_k")
    if top_p is not None:
        check_range(top_p, "top_p", 0.0, 1.0)
    if min_p is not None:
        check_range(min_p, "min_p", 0.0, 1.0, low_open=False)
    if repetition_penalty is not None:
        check_positive_float(repetition_penalty, "repetition_penalty")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def tokenizer_size(tokenizer) -> int | None:
    """The number of ids of ``tokenizer`` (its largest id + 1): tiktoken's ``n_vocab``, the
    book's ``vocab_size``; None if it has neither."""
    size = getattr(tokenizer, "n_vocab", None)
    return getattr(tokenizer, "vocab_size", None) if size is None else size


def check_stop(stop, tokenizer, vocab_size: int) -> None:
    """Raise unless ``stop`` is None, an id, a string, or a list of ids, strings, id lists, with
    every id in ``[0, vocab_size)``, and ``tokenizer`` (needed by strings) fits the model."""
    size = tokenizer_size(tokenizer)
    if size is not None and size > vocab_size:
        raise ValueError(
            f"tokenizer has {size:,} ids but the model's vocab_size is {vocab_size:,}: its ids "
            f"must lie in [0, {vocab_size - 1}]; give the tokenizer the model was trained with"
        )
    items = [] if stop is None else [stop] if isinstance(stop, int | str) else stop
    if not isinstance(items, list | tuple):
        raise TypeError(
            f"stop must be an id, a string or a list of them, got {type(stop).__name__}"
        )
    for s in items:
        seq = [s] if isinstance(s, int) else s
        if isinstance(s, str):
            if not s or tokenizer is None:
                raise ValueError(f"stop string {s!r} needs a tokenizer= (and must not be empty)")
        elif (
            not isinstance(seq, list | tuple)
            or not seq
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in seq)
        ):
            raise TypeError(f"stop items must be ids, strings or non-empty lists of ids, got {s!r}")
        elif not all(0 <= i < vocab_size for i in seq):
            raise ValueError(
                f"stop ids must lie in [0, {vocab_size - 1}] (the model's vocab_size is "
                f"{vocab_size}), got {s!r}: the model could never write it"
            )


def check_messages(messages) -> None:
    """Raise unless ``messages`` is a list of ``{"role": str, "content": str}`` dicts."""
    fields = ("role", "content")
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and all(isinstance(m.get(f), str) for f in fields) for m in messages
    ):
        raise TypeError(
            f'messages must be a list of {{"role": str, "content": str}}, got {messages!r:.60}'
        )


# ---------------------------------------------------------------------------- the KV cache


def check_cache_sizes(n_layers, batch_size, n_kv_heads, max_len, head_dim) -> None:
    """Raise unless every size of a ``KVCache`` is an int >= 1."""
    sizes = dict(n_layers=n_layers, batch_size=batch_size, n_kv_heads=n_kv_heads)
    for name, value in {**sizes, "max_len": max_len, "head_dim": head_dim}.items():
        check_int(value, f"KVCache {name}", minimum=1)


def _cache_shape(cache) -> str:
    B, H, _, D = cache.k[0].shape
    return (
        f"{len(cache.k)} layers, batch_size {B}, {H} K/V heads of head_dim {D}, {cache.k[0].dtype}"
    )


def check_cache_update(cache, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise unless ``k, v (B, H_kv, T, D)`` fit ``cache``: a layer it has, its batch size, K/V
    heads, head_dim, dtype and device, and room for ``T`` more positions."""
    if not 0 <= layer < len(cache.k):
        raise ValueError(
            f"the KV cache has {len(cache.k)} layers, the model wrote to layer {layer}: build "
            f"the cache for this model (KVCache.for_model(model, batch_size))"
        )
    for name, t in (("k", k), ("v", v)):
        _check_fits(cache, name, tuple(t.shape), t.dtype, t.device)
    _check_room(cache, k.shape[2])


def _check_fits(cache, name: str, shape: tuple, dtype, device) -> None:
    expected = cache.k[0]
    same = len(shape) == 4 and shape[:2] == expected.shape[:2] and shape[3] == expected.shape[3]
    if not same or dtype != expected.dtype or device != expected.device:
        raise ValueError(
            f"the KV cache was built for {_cache_shape(cache)} on {expected.device}; the "
            f"model gave {name} of shape {shape} ({dtype} on {device}): build "
            "it for this model and batch (KVCache.for_model(model, batch_size))"
        )


def _check_room(cache, n: int) -> None:
    if cache.length + n > cache.max_len:
        raise ValueError(f"the KV cache holds {cache.max_len} positions; {cache.length + n} needed")


def check_kv_cache(cache, config, ids: torch.Tensor) -> None:
    """Raise unless ``cache`` was built for a model of ``config`` (a ModelConfig) and a batch of
    ``ids (B, T)``: the same number of layers, K/V heads, head_dim and batch size."""
    if not all(hasattr(cache, a) for a in ("k", "v", "length", "max_len", "update")):
        raise TypeError(f"kv_cache must be a KVCache, got {type(cache).__name__}")
    B, H, _, D = cache.k[0].shape
    want = (config.n_layers, ids.shape[0], config.n_kv_heads, config.head_dim)
    if (len(cache.k), B, H, D) != want:
        raise ValueError(
            f"kv_cache was built for {_cache_shape(cache)}; this model and batch need "
            f"{want[0]} layers, batch_size {want[1]}, {want[2]} K/V heads of head_dim "
            f"{want[3]}: use KVCache.for_model(model, batch_size)"
        )


def _check_cache_for(cache, model, ids: torch.Tensor) -> None:
    """``check_kv_cache``, then the dtype and device of the keys the model will write."""
    c = model.config
    check_kv_cache(cache, c, ids)
    weight = model.lm_head.weight
    k_shape = (ids.shape[0], c.n_kv_heads, ids.shape[1], c.head_dim)
    _check_fits(cache, "k", k_shape, weight.dtype, weight.device)


def check_cached_forward(model, ids, kv_cache, positions=None, attn_mask=None) -> None:
    """Raise unless ``forward_with_cache(model, ids, kv_cache, positions, attn_mask)`` can run:
    ``model`` a DecoderLM in evaluation mode (or without dropout), ``ids``, ``positions`` and
    ``attn_mask`` as ``model(ids, ...)`` takes them (positions default to ``length .. length +
    T - 1``, the mask covers ``length + T`` keys), and ``kv_cache`` built for this model and
    batch, with room for ``T`` more positions."""
    check_model(model)
    check_id_batch(ids, "ids", model.config.vocab_size)  # the cache check needs B and T
    _check_cache_for(kv_cache, model, ids)
    cached, T = kv_cache.length, ids.shape[1]
    _check_room(kv_cache, T)
    if positions is None:  # the positions the model will take
        positions = cached + torch.arange(T, device=ids.device)
    check_inputs(model.config, ids, None, positions, attn_mask, cached)
    if model.training and model.config.dropout > 0:
        raise ValueError(
            f"forward_with_cache runs the model as in evaluation mode, without its dropout "
            f"({model.config.dropout}); call model.eval() first (a cache serves generation)"
        )


def check_next_token_args(model, ids, mask, cache=None) -> None:
    """Raise unless ``next_token_logits(model, ids, mask, cache)`` can run: ``ids (B, T)`` ids
    of the model's vocabulary, ``mask`` a boolean ``(B, T)`` (True at real tokens), and
    ``cache`` None or built for this model and batch, holding fewer than ``T`` positions."""
    check_model(model)
    check_id_batch(ids, "ids", model.config.vocab_size)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != ids.shape:
        got = (
            f"dtype {mask.dtype}, shape {tuple(mask.shape)}"
            if isinstance(mask, torch.Tensor)
            else type(mask).__name__
        )
        raise TypeError(
            f"mask must be a boolean tensor of the shape of ids, {tuple(ids.shape)} (True at "
            f"real tokens), got {got}"
        )
    if cache is not None:
        _check_cache_for(cache, model, ids)
        if cache.length >= ids.shape[1]:
            raise ValueError(
                f"cache already holds {cache.length} positions and ids has {ids.shape[1]}: "
                "ids must be the whole text so far, of which the cache holds the first tokens"
            )
