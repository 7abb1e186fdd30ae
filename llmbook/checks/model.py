"""Argument checks of ``llmbook.model`` (hand-written: chapter 07, section 9, explains them).

``ModelConfig`` runs :func:`check_config` on construction and ``DecoderLM.forward`` runs
:func:`check_ids` once per call, so the teaching cells stay on the model. Each raises a
``TypeError`` (wrong type) or a ``ValueError`` (wrong value) naming the field or argument, what
was given and what is allowed.
"""

from __future__ import annotations

import torch

from llmbook.checks import check_bool, check_dropout, check_int, check_positive_float

__all__ = ["MLPS", "NORMS", "POSITIONS", "check_config", "check_ids"]

NORMS = ("rmsnorm", "layernorm")
MLPS = ("swiglu", "gelu_tanh", "gelu", "relu", "silu")  # "swiglu": gated; others: FeedForward
POSITIONS = ("rope", "learned")


def check_config(c, rope_class: type) -> None:
    """Raise a TypeError or ValueError, saying what to fix, unless ``c`` (a ``ModelConfig``)
    describes a model. ``rope_class`` is chapter 05's ``RotaryEmbedding``, passed in so that
    the checks import no chapter's module."""
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


def check_ids(ids: object, name: str, upper: int, upper_name: str) -> None:
    """Raise unless ``ids`` is an integer tensor with values in ``[0, upper)``. The range check
    reads two numbers from the device; it is skipped while ``torch.compile`` traces."""
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dtype == torch.bool:
        got = f"dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be an integer tensor (torch.long), got {got}")
    if ids.is_complex():
        raise TypeError(f"{name} must be an integer tensor (torch.long), got dtype {ids.dtype}")
    if ids.numel() and not torch.compiler.is_compiling():
        low, high = (int(v) for v in torch.aminmax(ids))
        if low < 0 or high >= upper:
            raise ValueError(
                f"{name} must lie in [0, {upper - 1}] ({upper_name} is {upper}); got values "
                f"from {low} to {high}"
            )
