# Generated from chapters/05_multihead_attention.ipynb by tools/export.py; do not edit, edit the chapter.

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.attention import CausalSelfAttention, scaled_dot_product_attention
from llmbook.checks import (
    check_bool,
    check_choice,
    check_cos_sin,
    check_dropout,
    check_even,
    check_head_rows,
    check_heads,
    check_int,
    check_length,
    check_llama3_scaling,
    check_optional_int,
    check_positions,
    check_qkv,
    check_rope_base,
    check_rope_input,
    check_rope_module,
    check_sequence_batch,
)


class NaiveMultiHeadAttention(nn.Module):
    """Multi-head attention as a list of single heads: the readable version, for teaching.

    Head ``h`` is chapter 4's ``CausalSelfAttention(d_model, head_dim)`` with ``head_dim =
    d_model // n_heads``; the heads' outputs ``(B, T, head_dim)`` are concatenated to
    ``(B, T, d_model)`` and mixed by ``o_proj``. :func:`stack_heads` turns it into the
    equivalent :class:`MultiHeadAttention`.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.head_dim = check_heads(d_model, n_heads, n_heads)
        self.d_model, self.n_heads = d_model, n_heads
        self.dropout, self.bias = check_dropout(dropout), check_bool(bias, "bias")
        self.heads = nn.ModuleList(
            CausalSelfAttention(d_model, self.head_dim, dropout=dropout, bias=bias)
            for _ in range(n_heads)
        )
        self.o_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, T, C) -> (B, T, C)``: run every head, concatenate, project."""
        outputs = [head(x) for head in self.heads]  # H tensors of shape (B, T, D)
        return self.o_proj(torch.cat(outputs, dim=-1))  # (B, T, H * D) = (B, T, C)


def repeat_kv(x: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Share each K/V head with ``n_groups`` query heads, by copying it.

    ``x (B, H_kv, T, D) -> (B, H_kv * n_groups, T, D)``; query head ``h`` is served by K/V head
    ``h // n_groups`` (the convention of Llama checkpoints). ``n_groups == 1`` returns ``x``.
    """
    check_int(n_groups, "n_groups")
    return x if n_groups == 1 else x.repeat_interleave(n_groups, dim=1)


ROPE_LAYOUTS = ("half", "interleaved")


def rotate_pairs(x: torch.Tensor, layout: str = "half") -> torch.Tensor:
    """Turn every rotary pair ``(a, b)`` of the last axis into ``(-b, a)``: a quarter turn.

    ``x (..., D)`` with ``D`` even. ``"half"`` (Hugging Face's ``rotate_half``): pair ``i`` is
    ``(x[i], x[i + D/2])``; ``"interleaved"`` (Meta's release): ``(x[2i], x[2i + 1])``.
    """
    check_choice(layout, "layout", ROPE_LAYOUTS)
    check_rope_input(x)  # floating, even last axis
    if layout == "half":
        a, b = x.chunk(2, dim=-1)  # (..., D/2) each
        return torch.cat((-b, a), dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]  # (..., D/2) each
    return torch.stack((-b, a), dim=-1).flatten(-2)  # (..., D/2, 2) -> (..., D)


def apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, layout: str = "half"
) -> torch.Tensor:
    """Rotate the pairs of ``x``: ``x * cos + rotate_pairs(x) * sin``, same shape and dtype.

    ``x``: queries or keys ``(B, H, T, D)`` (or ``(..., T, D)``). ``cos``, ``sin``: ``(T, D)``
    shared by the batch, or ``(B, T, D)`` per sequence, in ``layout`` (as
    :meth:`RotaryEmbedding.cos_sin` returns them).
    """
    check_cos_sin(x, cos, sin)
    if x.dim() == 4 and cos.dim() == 3:  # (B, T, D) -> (B, 1, T, D): same angles for every head
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_pairs(x, layout) * sin


class RotaryAngles(nn.Module):
    """The angles of RoPE: pair ``i`` at position ``m`` turns by ``m * base**(-2i/D)``.

    Args:
        head_dim: ``D``, even. base: 10,000 (GPT-NeoX, Llama-2) or 500,000 (Llama-3.x).
        max_positions: None (no limit), or positions ``>= max_positions`` raise a ValueError.
        layout: ``"half"`` (Hugging Face) or ``"interleaved"`` (Meta), see :func:`rotate_pairs`.
        scaling: None, or Llama-3.1's ``rope_scaling`` dict, see :func:`llama3_scaled_inv_freq`.
    """

    def __init__(self, head_dim, base=10000.0, max_positions=None, layout="half", scaling=None):
        super().__init__()
        self.head_dim, self.base = check_even(head_dim, "head_dim"), check_rope_base(base)
        self.layout = check_choice(layout, "layout", ROPE_LAYOUTS)
        self.max_positions = check_optional_int(max_positions, "max_positions")
        self.scaling = None if scaling is None else check_llama3_scaling(scaling)
        self._tables = {}  # device -> (cos, sin) of positions 0 .. n-1: see RotaryEmbedding

    def inv_freq(self, device=None) -> torch.Tensor:
        """Angle per position of each pair, ``base**(-2i/D)`` (scaled if asked): float32 ``(D/2,)``."""
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device)
        inv_freq = 1.0 / self.base ** (exponents / self.head_dim)
        if self.scaling is not None:
            inv_freq = llama3_scaled_inv_freq(inv_freq, **self.scaling)
        return inv_freq

    def angles(self, positions: torch.Tensor) -> torch.Tensor:
        """Angles of integer ``positions (...)``, each twice, laid out like the features: ``(..., D)``."""
        angles = positions.to(torch.float32)[..., None] * self.inv_freq(positions.device)
        if self.layout == "half":  # pair i sits at features i and i + D/2
            return torch.cat((angles, angles), dim=-1)
        return angles.repeat_interleave(2, dim=-1)  # pair i sits at features 2i and 2i + 1

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosines and sines for integer ``positions`` ``(T,)`` or ``(B, T)``: float32 ``(..., D)``."""
        angles = self.angles(check_positions(positions, max_positions=self.max_positions))
        return angles.cos(), angles.sin()

    def extra_repr(self) -> str:
        scaled = ", scaling='llama3'" if self.scaling else ""
        return f"head_dim={self.head_dim}, base={self.base:g}, layout={self.layout!r}{scaled}"


class RotaryEmbedding(RotaryAngles):
    """Rotary position embedding (RoPE), arguments as for :class:`RotaryAngles`.

    Cosines and sines of positions ``0 .. n-1`` are kept per device in a float32 table, built
    once and grown when a longer sequence comes; one instance may serve all layers of a model.
    The table is not a buffer: never saved, never cast, rebuilt on a new device.
    """

    def table(self, n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosines and sines of positions ``0 .. n-1`` from the table: float32 ``(n, D)`` each."""
        device = torch.device("cpu" if device is None else device)
        check_length(n, self.max_positions)
        cos, sin = self._tables.get(device, (None, None))
        if cos is None or cos.shape[0] < n:  # build or grow (at least double: growth is rare)
            old = 0 if cos is None else cos.shape[0]
            size = max(2 * old, 256)
            size = n if n > size else size  # not max(n, ...): torch 2.5's compiler refuses it
            angles = self.angles(torch.arange(size, device=device))
            cos, sin = self._tables[device] = angles.cos(), angles.sin()
        return cos[:n], sin[:n]

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Rotate ``x (B, H, T, D)`` (or ``(..., T, D)``) to ``positions`` (default ``0 .. T-1``)."""
        check_rope_input(x, self.head_dim)
        if positions is None:
            cos, sin = self.table(x.shape[-2], x.device)
        else:
            cos, sin = self.cos_sin(positions.to(x.device))
        return apply_rope(x, cos, sin, self.layout)


def llama3_scaled_inv_freq(
    inv_freq: torch.Tensor,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: int,
) -> torch.Tensor:
    """Llama-3.1's RoPE frequency scaling, which stretched an 8k training context to 128k.

    Pairs whose wavelength ``2 pi / inv_freq`` is below ``original_max_position_embeddings /
    high_freq_factor`` keep their frequency; those above ``original_max_position_embeddings /
    low_freq_factor`` turn ``factor`` times slower; those in between are interpolated.
    ``inv_freq`` has shape ``(D/2,)``.
    """
    context = original_max_position_embeddings
    wavelength = 2 * math.pi / inv_freq
    slow = torch.where(wavelength > context / low_freq_factor, inv_freq / factor, inv_freq)
    smooth = (context / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * slow / factor + smooth * slow
    medium = ~(wavelength < context / high_freq_factor) & ~(wavelength > context / low_freq_factor)
    return torch.where(medium, smoothed, slow)


def rope_permutation(head_dim: int) -> torch.Tensor:
    """Indices that reorder one head's features from the interleaved layout to the half layout:
    ``[0, 2, 4, ..., D-2, 1, 3, ..., D-1]`` (``x[rope_permutation(D)]``)."""
    check_even(head_dim, "head_dim")
    return torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))


def _permute_heads(weight: torch.Tensor, n_heads: int, order: torch.Tensor) -> torch.Tensor:
    check_head_rows(weight, n_heads)  # (n_heads * D, d_in) or (n_heads * D,)
    per_head = weight.reshape(n_heads, -1, *weight.shape[1:])  # (H, D, ...)
    return per_head[:, order(per_head.shape[1])].reshape(weight.shape)


def interleaved_to_half(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Permute the rows of a ``q_proj``/``k_proj`` weight ``(n_heads * D, d_in)`` or bias from
    Meta's RoPE layout to Hugging Face's; ``n_heads`` of *this* projection (``n_kv_heads``
    for ``k_proj``). Scores are unchanged when q and k are both permuted and the layout switched."""
    return _permute_heads(weight, n_heads, rope_permutation)


def half_to_interleaved(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of :func:`interleaved_to_half`: Hugging Face's layout back to Meta's."""
    return _permute_heads(weight, n_heads, lambda D: torch.argsort(rope_permutation(D)))


ATTENTION_IMPLS = ("fused", "naive")


def causal_attention(q, k, v, attn_mask=None, dropout_p=0.0, impl="fused", return_weights=False):
    """Causal attention of ``q (B, H, Tq, D)`` over ``k, v (B, H_kv, Tk, D)``: ``(B, H, Tq, D)``.

    Query ``i`` sits at position ``Tk - Tq + i`` and sees keys ``0 .. Tk - Tq + i`` that
    ``attn_mask`` (boolean, broadcastable to ``(B, 1, Tq, Tk)``, True = may attend) allows; a
    query left with no key (padding) gets output 0. ``"fused"``: torch's kernel, K/V heads
    shared in place (``enable_gqa``). ``"naive"`` (or ``return_weights``): K/V heads copied by
    :func:`repeat_kv`, chapter 4's function, weights ``(B, H, Tq, Tk)`` returned too.
    """
    Tq, Tk = q.shape[-2], k.shape[-2]
    mask, seen, is_causal = None, None, False
    if attn_mask is not None or 1 < Tq < Tk:
        mask = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(Tk - Tq)  # (Tq, Tk)
        if attn_mask is not None:
            mask = mask & attn_mask  # (B, 1, Tq, Tk)
            seen = mask.any(dim=-1, keepdim=True)  # (B, 1, Tq, 1): False for a blind query
            mask = mask | ~seen  # a blind query may see all (no 0/0 = NaN); zeroed below
    elif Tq > 1:  # Tq == Tk: the plain lower triangle, which the kernel builds itself
        is_causal = True
    weights = None
    if impl == "naive" or return_weights:
        G = q.shape[1] // k.shape[1]
        out, weights = scaled_dot_product_attention(
            q, repeat_kv(k, G), repeat_kv(v, G), mask, dropout_p, is_causal, return_weights=True
        )
    else:
        gqa = q.shape[1] != k.shape[1]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal, enable_gqa=gqa
        )
    if seen is not None:
        out = out.masked_fill(~seen, 0.0)
        weights = None if weights is None else weights.masked_fill(~seen, 0.0)
    return (out, weights) if return_weights else out


class MultiHeadProjections(nn.Module):
    """``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` of multi-head attention (Hugging Face's
    Llama names), and :meth:`project`; arguments as for :class:`MultiHeadAttention`."""

    def __init__(self, d_model, n_heads, n_kv_heads=None, bias=False, rope=None, qkv_bias=None):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        D = self.head_dim = check_heads(d_model, n_heads, n_kv_heads)
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        qkv_bias = check_bool(bias if qkv_bias is None else qkv_bias, "qkv_bias")
        self.q_proj = nn.Linear(d_model, n_heads * D, bias=qkv_bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * D, bias=qkv_bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * D, bias=qkv_bias)
        self.o_proj = nn.Linear(n_heads * D, d_model, bias=check_bool(bias, "bias"))
        self.rope = check_rope_module(rope, D, RotaryEmbedding)

    def project(self, x, positions=None):
        """``x (B, T, C)`` -> ``q (B, H, T, D)``, ``k, v (B, H_kv, T, D)``; RoPE (if any) at
        ``positions``: integer ``(T,)`` or ``(B, T)``, default ``0 .. T-1``."""
        check_sequence_batch(x, self.d_model, self.q_proj.weight)
        (B, T, _), D = x.shape, self.head_dim
        q = self.q_proj(x).view(B, T, self.n_heads, D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, D).transpose(1, 2)  # (B, H_kv, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, D).transpose(1, 2)
        if self.rope is not None:
            if positions is None:  # 0 .. T-1: rows of the table
                cos, sin = self.rope.table(T, x.device)
            else:
                cos, sin = self.rope.cos_sin(check_positions(positions, B, T).to(x.device))
            q = apply_rope(q, cos, sin, self.rope.layout)
            k = apply_rope(k, cos, sin, self.rope.layout)
        return q, k, v

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}, head_dim={self.head_dim}"


class MultiHeadAttend(MultiHeadProjections):
    """:class:`MultiHeadProjections` and the second step, :meth:`attend`; ``dropout`` and
    ``impl`` are set by :class:`MultiHeadAttention`'s constructor."""

    dropout, impl = 0.0, "fused"

    def attend(self, q, k, v, attn_mask=None, return_weights=False):
        """:func:`causal_attention` of ``q (B, H, Tq, D)`` over ``k, v (B, H_kv, Tk, D)``, heads
        merged, ``o_proj``: ``(B, Tq, C)``; with ``return_weights`` also ``(B, H, Tq, Tk)``."""
        check_qkv(q, k, v, self.n_heads, self.n_kv_heads, self.head_dim, attn_mask)
        dropout_p = self.dropout if self.training else 0.0
        result = causal_attention(q, k, v, attn_mask, dropout_p, self.impl, return_weights)
        out, weights = result if return_weights else (result, None)
        B, _, Tq, _ = q.shape
        out = out.transpose(1, 2).reshape(B, Tq, self.n_heads * self.head_dim)  # merge the heads
        out = self.o_proj(out)  # (B, Tq, C)
        return (out, weights) if return_weights else out


class MultiHeadAttention(MultiHeadAttend):
    """Causal multi-head self-attention, with grouped-query K/V heads and RoPE when asked.

    GPT-2: ``(768, 12, bias=True)``; Llama-3.1-8B: ``(4096, 32, n_kv_heads=8, rope=...)``;
    Qwen2 (biases on q, k, v, none on o_proj): ``bias=False, qkv_bias=True``.

    Args:
        d_model: width ``C``, divisible by ``n_heads``; ``head_dim = d_model // n_heads``.
        n_heads: query heads ``H``; n_kv_heads: K/V heads dividing ``H`` (default ``H``, 1: MQA).
        dropout: on the attention weights, in training mode. bias: on all four projections;
            qkv_bias: on q, k, v (None: same as ``bias``).
        rope: a :class:`RotaryEmbedding` of ``head_dim`` (one may serve all layers), or None.
        impl: ``"fused"`` (torch's kernel) or ``"naive"`` (chapter 4's, ``T x T`` weights).
    """

    def __init__(
        self,
        d_model,
        n_heads,
        n_kv_heads=None,
        dropout=0.0,
        bias=False,
        rope=None,
        impl="fused",
        qkv_bias=None,
    ):
        super().__init__(d_model, n_heads, n_kv_heads, bias, rope, qkv_bias)
        self.dropout = check_dropout(dropout)
        self.impl = check_choice(impl, "impl", ATTENTION_IMPLS)

    def forward(self, x, positions=None, attn_mask=None, return_weights=False):
        """Causal self-attention ``x (B, T, C) -> (B, T, C)``: :meth:`project`, :meth:`attend`."""
        q, k, v = self.project(x, positions)
        return self.attend(q, k, v, attn_mask, return_weights)


@torch.no_grad()
def stack_heads(naive: NaiveMultiHeadAttention) -> MultiHeadAttention:
    """The :class:`MultiHeadAttention` computing the same function as a naive list of heads.

    Head ``h``'s stored ``(D, C)`` weights become rows ``h*D .. (h+1)*D - 1`` of the big
    ``(C, C)`` ones; ``o_proj`` is copied as is. The result has the device and dtype of ``naive``.
    """
    if not isinstance(naive, NaiveMultiHeadAttention):
        raise TypeError(f"naive must be a NaiveMultiHeadAttention, got {type(naive).__name__}")
    mha = MultiHeadAttention(naive.d_model, naive.n_heads, dropout=naive.dropout, bias=naive.bias)
    mha.to(device=naive.o_proj.weight.device, dtype=naive.o_proj.weight.dtype)
    for name in ("q_proj", "k_proj", "v_proj"):
        target = getattr(mha, name)
        target.weight.copy_(torch.cat([getattr(h, name).weight for h in naive.heads], dim=0))
        if naive.bias:
            target.bias.copy_(torch.cat([getattr(h, name).bias for h in naive.heads], dim=0))
    mha.o_proj.load_state_dict(naive.o_proj.state_dict())
    return mha


__all__ = [
    "NaiveMultiHeadAttention",
    "repeat_kv",
    "ROPE_LAYOUTS",
    "rotate_pairs",
    "apply_rope",
    "RotaryAngles",
    "RotaryEmbedding",
    "llama3_scaled_inv_freq",
    "rope_permutation",
    "interleaved_to_half",
    "half_to_interleaved",
    "ATTENTION_IMPLS",
    "causal_attention",
    "MultiHeadProjections",
    "MultiHeadAttend",
    "MultiHeadAttention",
    "stack_heads",
]
