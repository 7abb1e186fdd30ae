"""Argument checks of ``llmbook.model`` (hand-written: chapter 07, section 9, explains them).

``ModelConfig`` runs :func:`check_config` on construction, and ``DecoderLM`` again on its own
copy (a field may have been edited since); ``DecoderLM.forward`` runs :func:`check_inputs` once
per call, so the teaching cells stay on the model. Each raises a ``TypeError`` (wrong type) or a
``ValueError`` (wrong value) naming the field or argument, what was given and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref

import torch

from llmbook.checks import check_bool, check_dropout, check_int, check_positive_float

__all__ = [
    "MLPS",
    "NORMS",
    "POSITIONS",
    "check_attn_mask",
    "check_config",
    "check_id_batch",
    "check_ids",
    "check_inputs",
    "check_positions",
    "check_targets",
    "own_copy",
]

NORMS = ("rmsnorm", "layernorm")
MLPS = ("swiglu", "gelu_tanh", "gelu", "relu", "silu")  # "swiglu": gated; others: FeedForward
POSITIONS = ("rope", "learned")


def check_config(c, rope_class: type) -> None:
    """Raise a TypeError or ValueError, saying what to fix, unless ``c`` (a ``ModelConfig``)
    describes a model. ``rope_class`` is chapter 05's ``RotaryEmbedding``, passed in so that
    the checks import no chapter's module.

    A passing check remembers the values it saw; a later check of the same object that fails
    also says which fields were changed since (``config.d_model = 100`` after construction).
    """
    try:
        _check_fields(c, rope_class)
    except (TypeError, ValueError) as error:
        edits = _edits(c)
        if not edits:
            raise
        raise type(error)(
            f"{error} (fields changed after the ModelConfig was built: {edits})"
        ) from None
    _remember(c)


def own_copy(c, rope_class: type):
    """A deep copy of ``c`` for a model to own, after checking ``c`` again (a field may have been
    edited since it was built: the error then says which)."""
    check_config(c, rope_class)
    mine = copy.deepcopy(c)
    _remember(mine)
    return mine


# id(config) -> the field values its last passing check saw. Kept outside the object, so that
# vars(config) and dataclasses.asdict(config) hold the fields only; dropped with the object.
_CHECKED: dict[int, dict] = {}


def _remember(c) -> None:
    if id(c) not in _CHECKED:
        weakref.finalize(c, _CHECKED.pop, id(c), None)
    _CHECKED[id(c)] = _values(c)


def _values(c) -> dict:
    return {f.name: copy.deepcopy(getattr(c, f.name)) for f in dataclasses.fields(c)}


def _edits(c) -> str:
    before = _CHECKED.get(id(c))
    if before is None:
        return ""
    now = _values(c)
    return ", ".join(f"{k} {before[k]!r} -> {now[k]!r}" for k in now if now[k] != before[k])


def _check_fields(c, rope_class: type) -> None:
    for name in ("vocab_size", "context_length", "d_model", "n_layers", "n_heads", "n_kv_heads"):
        check_int(getattr(c, name), name)
    check_int(c.d_ff, "d_ff")
    for name in ("norm_eps", "init_std"):
        check_positive_float(getattr(c, name), name)
    for name in ("bias", "tie_embeddings"):
        check_bool(getattr(c, name), name)
    check_dropout(c.dropout)
    # fmt: off
    rules = [
        (c.d_model % c.n_heads == 0, f"d_model ({c.d_model}) must be divisible by n_heads "
         f"({c.n_heads}); choose n_heads among the divisors of {c.d_model}"),
        (c.n_heads % c.n_kv_heads == 0, f"n_heads ({c.n_heads}) must be divisible by n_kv_heads "
         f"({c.n_kv_heads}): each K/V head serves a whole group of query heads"),
        (c.norm in NORMS, f"norm must be one of {NORMS}, got {c.norm!r}"),
        (c.mlp in MLPS, f"mlp must be one of {MLPS}, got {c.mlp!r}"),
        (c.position in POSITIONS, f"position must be one of {POSITIONS}, got {c.position!r}"),
        (c.position == "rope" or c.rope_scaling is None,
         "rope_scaling is set but position is not 'rope'; set rope_scaling=None"),
        (c.qkv_bias is None or isinstance(c.qkv_bias, bool),
         f"qkv_bias must be None, True or False, got {c.qkv_bias!r}"),
    ]
    # fmt: on
    problems = [message for ok, message in rules if not ok]
    if c.position == "rope" and not problems:
        try:  # RotaryEmbedding checks head_dim (even), the base and the scaling dict
            rope_class(c.d_model // c.n_heads, base=c.rope_base, scaling=c.rope_scaling)
        except (TypeError, ValueError) as error:
            problems.append(f"position='rope': {error}")
    if problems:
        raise ValueError("invalid ModelConfig: " + "; ".join(problems))


_ID_DTYPES = (torch.int64, torch.int32)  # what nn.Embedding and indexing take


def check_ids(ids: object, name: str, upper: int, upper_name: str) -> None:
    """Raise unless ``ids`` is a ``torch.long`` (or ``torch.int32``) tensor with values in
    ``[0, upper)``. The range check reads two numbers from the device; it is skipped while
    ``torch.compile`` traces."""
    if not isinstance(ids, torch.Tensor) or ids.dtype not in _ID_DTYPES:
        got = f"dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be an integer tensor (torch.long or torch.int32), got {got}")
    if ids.numel() and not torch.compiler.is_compiling():
        low, high = (int(v) for v in torch.aminmax(ids))
        if low < 0 or high >= upper:
            raise ValueError(
                f"{name} must lie in [0, {upper - 1}] ({upper_name} is {upper}); got values "
                f"from {low} to {high}"
            )


def check_id_batch(ids: object, name: str, vocab_size: int) -> None:
    """Raise unless ``ids`` is a batch of token ids: an integer tensor ``(B, T)``, ``T >= 1``,
    values in ``[0, vocab_size)``."""
    check_ids(ids, name, vocab_size, "vocab_size")
    if ids.dim() != 2 or ids.shape[0] < 1 or ids.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (B, T), a batch of B sequences of T >= 1 token ids, got "
            f"{tuple(ids.shape)}; for one sequence, pass ids[None]"
        )


def check_targets(targets: object, ids: torch.Tensor, vocab_size: int) -> None:
    """Raise unless ``targets`` is a ``torch.long`` tensor of ``ids``' shape with values in
    ``[0, vocab_size)`` or ``-100`` (ignored)."""
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.int64:
        got = (
            f"dtype {targets.dtype}"
            if isinstance(targets, torch.Tensor)
            else type(targets).__name__
        )
        raise TypeError(f"targets must be a torch.long tensor of next-token ids, got {got}")
    if targets.shape != ids.shape:
        raise ValueError(
            f"targets must have the shape of ids, {tuple(ids.shape)}, got {tuple(targets.shape)}"
        )
    if targets.numel() and not torch.compiler.is_compiling():
        kept = targets[targets != -100]
        if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= vocab_size):
            raise ValueError(
                f"targets must lie in [0, {vocab_size - 1}] (vocab_size is {vocab_size}) or be "
                f"-100 (ignored); got values from {int(kept.min())} to {int(kept.max())}"
            )


def check_positions(positions: object, ids: torch.Tensor, context_length: int) -> None:
    """Raise unless ``positions`` is an integer tensor ``(T,)`` or ``(B or 1, T)`` for ``ids
    (B, T)``, with values in ``[0, context_length)``."""
    check_ids(positions, "positions", context_length, "context_length")
    B, T = ids.shape
    if positions.shape not in ((T,), (1, T), (B, T)):
        raise ValueError(
            f"positions must have shape (T,), (1, T) or (B, T) = ({B}, {T}) for ids of shape "
            f"{(B, T)}, got {tuple(positions.shape)}"
        )


def check_attn_mask(attn_mask: object, ids: torch.Tensor, cached: int = 0) -> None:
    """Raise unless ``attn_mask`` is a boolean tensor of four dimensions that broadcasts to
    ``(B, 1, T, cached + T)`` (True = may attend).

    Four dimensions and no fewer, so that a Hugging Face padding mask ``(B, T)`` cannot pass
    for a ``(Tq, Tk)`` mask when ``B == T``: pass it as ``mask[:, None, None, :]``.
    """
    if not isinstance(attn_mask, torch.Tensor) or attn_mask.dtype != torch.bool:
        got = (
            f"dtype {attn_mask.dtype}"
            if isinstance(attn_mask, torch.Tensor)
            else type(attn_mask).__name__
        )
        raise TypeError(f"attn_mask must be a boolean tensor (True = may attend), got {got}")
    B, T = ids.shape
    full = (B, 1, T, cached + T)
    if attn_mask.dim() != 4 or any(a not in (1, b) for a, b in zip(attn_mask.shape, full)):
        raise ValueError(
            f"attn_mask must have 4 dimensions and broadcast to (B, 1, T, cached + T) = {full}, "
            f"got shape {tuple(attn_mask.shape)}; a (B, T) padding mask (Hugging Face's "
            "attention_mask, True or 1 = a real token) is passed as mask[:, None, None, :].bool()"
        )


def check_inputs(config, ids, targets=None, positions=None, attn_mask=None, cached=0) -> None:
    """Raise unless these arguments of ``DecoderLM.forward`` fit a model of ``config`` with
    ``cached`` tokens already in its KV cache; each message names the argument."""
    check_id_batch(ids, "ids", config.vocab_size)
    if ids.shape[1] > config.context_length:
        raise ValueError(
            f"ids must have shape (B, T) with 1 <= T <= context_length={config.context_length}; "
            f"got {tuple(ids.shape)}"
        )
    if targets is not None:
        check_targets(targets, ids, config.vocab_size)
    if positions is not None:
        check_positions(positions, ids, config.context_length)
    if attn_mask is not None:
        check_attn_mask(attn_mask, ids, cached)
