# Generated from chapters/05_multihead_attention.ipynb by tools/export.py; do not edit, edit the chapter.

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention
from llmbook.checks import check_dropout, check_int


class NaiveMultiHeadAttention(nn.Module):
    """Multi-head attention as a list of single heads: the readable version, for teaching.

    Each of the ``n_heads`` heads is chapter 4's ``CausalSelfAttention(d_model, head_dim)`` with
    ``head_dim = d_model // n_heads``; their outputs ``(B, T, head_dim)`` are concatenated to
    ``(B, T, d_model)`` and mixed by ``o_proj``. :func:`stack_heads` turns it into the equivalent
    :class:`MultiHeadAttention`.

    Args:
        d_model: width ``C`` of the input and output; must be divisible by ``n_heads``.
        n_heads: number of heads ``H``.
        dropout: dropout on each head's attention weights (training mode only).
        bias: whether the projections have biases.
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = False
    ) -> None:
        super().__init__()
        check_int(d_model, "d_model")
        check_int(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.dropout, self.bias = float(dropout), bias
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
    """Share each K/V head with ``n_groups`` query heads.

    ``x (B, H_kv, T, D) -> (B, H_kv * n_groups, T, D)``; query head ``h`` is served by K/V head
    ``h // n_groups`` (the convention of Llama checkpoints). ``n_groups == 1`` returns ``x``.
    """
    if n_groups == 1:
        return x
    return x.repeat_interleave(n_groups, dim=1)


ROPE_LAYOUTS = ("half", "interleaved")


def _check_layout(layout: str) -> None:
    if layout not in ROPE_LAYOUTS:
        raise ValueError(f"layout must be one of {ROPE_LAYOUTS}, got {layout!r}")


def rotate_pairs(x: torch.Tensor, layout: str = "half") -> torch.Tensor:
    """Turn every rotary pair ``(a, b)`` of the last axis into ``(-b, a)``: a quarter turn.

    ``x`` has shape ``(..., D)`` with ``D`` even. In the ``"half"`` layout (Hugging Face's
    ``rotate_half``) pair ``i`` is ``(x[i], x[i + D/2])``; in the ``"interleaved"`` layout (Meta's
    release) it is ``(x[2i], x[2i + 1])``. Returns a tensor of the same shape.
    """
    _check_layout(layout)
    if layout == "half":
        a, b = x.chunk(2, dim=-1)  # (..., D/2) each
        return torch.cat((-b, a), dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]  # (..., D/2) each
    return torch.stack((-b, a), dim=-1).flatten(-2)  # (..., D/2, 2) -> (..., D)


def apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, layout: str = "half"
) -> torch.Tensor:
    """Rotate the pairs of ``x`` by the angles whose cosines and sines are given.

    Args:
        x: queries or keys, ``(B, H, T, D)`` (or any ``(..., T, D)``).
        cos, sin: ``(T, D)`` shared by the batch, or ``(B, T, D)`` per sequence, in the same
            ``layout`` as ``x`` (as :meth:`RotaryEmbedding.cos_sin` returns them).
        layout: ``"half"`` or ``"interleaved"``, see :func:`rotate_pairs`.

    Returns:
        ``x * cos + rotate_pairs(x) * sin``, same shape and dtype as ``x``.
    """
    if cos.shape != sin.shape:
        raise ValueError(
            f"cos and sin must have the same shape, got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    if cos.dim() < 2 or cos.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"cos/sin of shape {tuple(cos.shape)} do not fit x of shape {tuple(x.shape)}: "
            "their last two axes must be (T, D) of x"
        )
    if x.dim() == 4 and cos.dim() == 3:  # (B, T, D) -> (B, 1, T, D): same angles for every head
        if cos.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"cos/sin hold positions for {cos.shape[0]} sequences, x has a batch of {x.shape[0]}"
            )
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_pairs(x, layout) * sin


LLAMA3_SCALING_KEYS = (
    "factor",
    "low_freq_factor",
    "high_freq_factor",
    "original_max_position_embeddings",
)


def _check_llama3_scaling(scaling: dict) -> dict:
    if not isinstance(scaling, dict):
        raise TypeError(f"scaling must be a dict or None, got {type(scaling).__name__}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind != "llama3":
        raise ValueError(f"only scaling with rope_type 'llama3' is implemented, got {kind!r}")
    missing = [key for key in LLAMA3_SCALING_KEYS if key not in scaling]
    if missing:
        raise ValueError(f"llama3 scaling needs the keys {LLAMA3_SCALING_KEYS}; missing {missing}")
    values = {key: scaling[key] for key in LLAMA3_SCALING_KEYS}
    if not values["high_freq_factor"] > values["low_freq_factor"] > 0 or values["factor"] <= 0:
        raise ValueError(
            f"llama3 scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0, got {values}"
        )
    return values


def llama3_scaled_inv_freq(
    inv_freq: torch.Tensor,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: int,
) -> torch.Tensor:
    """Llama-3.1's RoPE frequency scaling, which stretched an 8k training context to 128k.

    Pairs whose wavelength ``2 pi / inv_freq`` is shorter than
    ``original_max_position_embeddings / high_freq_factor`` keep their frequency; pairs longer
    than ``original_max_position_embeddings / low_freq_factor`` turn ``factor`` times slower;
    those in between are interpolated smoothly. ``inv_freq`` has shape ``(D/2,)``.
    """
    context = original_max_position_embeddings
    wavelength = 2 * math.pi / inv_freq
    slow = torch.where(wavelength > context / low_freq_factor, inv_freq / factor, inv_freq)
    smooth = (context / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * slow / factor + smooth * slow
    medium = ~(wavelength < context / high_freq_factor) & ~(wavelength > context / low_freq_factor)
    return torch.where(medium, smoothed, slow)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) for one head size.

    Pair ``i`` of a query or key at position ``m`` is rotated by the angle ``m * base**(-2i/D)``.
    The module has no parameters and no cached tables: angles are computed in float32 from the
    positions it is given, so a KV cache can pass the absolute positions of new tokens
    (e.g. ``torch.arange(100, 103)``) and a model cast to bfloat16 keeps exact angles.

    Args:
        head_dim: ``D``, the size of one head; must be even.
        base: the wavelength base (10,000 for GPT-NeoX and Llama-2, 500,000 for Llama-3.x).
        max_positions: if given, positions ``>= max_positions`` raise a ValueError (a guard for
            models used beyond the context they were trained for); ``None`` means no limit.
        layout: ``"half"`` (Hugging Face) or ``"interleaved"`` (Meta), see :func:`rotate_pairs`.
        scaling: None for plain RoPE, or Llama-3.1's frequency scaling as in its Hugging Face
            config: ``{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}``
            (see :func:`llama3_scaled_inv_freq`).
    """

    def __init__(
        self,
        head_dim: int,
        base: float = 10000.0,
        max_positions: int | None = None,
        layout: str = "half",
        scaling: dict | None = None,
    ) -> None:
        super().__init__()
        check_int(head_dim, "head_dim")
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE (it rotates pairs), got {head_dim}")
        if isinstance(base, bool) or not isinstance(base, (int, float)) or base <= 1:
            raise ValueError(f"base must be a number > 1, got {base!r}")
        if max_positions is not None:
            check_int(max_positions, "max_positions")
        _check_layout(layout)
        if scaling is not None:
            scaling = _check_llama3_scaling(scaling)
        self.head_dim, self.base = head_dim, float(base)
        self.max_positions, self.layout, self.scaling = max_positions, layout, scaling

    def extra_repr(self) -> str:
        scaled = ", scaling='llama3'" if self.scaling else ""
        return f"head_dim={self.head_dim}, base={self.base:g}, layout={self.layout!r}{scaled}"

    def inv_freq(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Angle per position of each pair, ``base**(-2i/D)`` (then scaled, if asked): float32 ``(D/2,)``."""
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device)
        inv_freq = 1.0 / (self.base ** (exponents / self.head_dim))
        if self.scaling is not None:
            inv_freq = llama3_scaled_inv_freq(inv_freq, **self.scaling)
        return inv_freq

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosines and sines for integer ``positions`` of shape ``(T,)`` or ``(B, T)``.

        Returns two float32 tensors of shape ``(*positions.shape, D)`` in this module's layout.
        """
        if not isinstance(positions, torch.Tensor) or positions.is_floating_point():
            raise TypeError(f"positions must be an integer tensor, got {positions!r:.60}")
        if positions.dim() not in (1, 2):
            raise ValueError(
                f"positions must have shape (T,) or (B, T), got {tuple(positions.shape)}"
            )
        if self.max_positions is not None and positions.numel():
            largest = int(positions.max())
            if largest >= self.max_positions:
                raise ValueError(
                    f"position {largest} is beyond max_positions={self.max_positions}; pass "
                    "smaller positions or build the RotaryEmbedding with a larger max_positions"
                )
        angles = positions.to(torch.float32)[..., None] * self.inv_freq(positions.device)
        if self.layout == "half":  # pair i sits at features i and i + D/2
            angles = torch.cat((angles, angles), dim=-1)  # (..., T, D)
        else:  # pair i sits at features 2i and 2i + 1
            angles = angles.repeat_interleave(2, dim=-1)  # (..., T, D)
        return angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Rotate ``x`` of shape ``(B, H, T, D)`` (or ``(..., T, D)``) to its positions.

        ``positions``: integer tensor ``(T,)`` or ``(B, T)``; ``None`` means ``0 .. T-1``.
        """
        if x.shape[-1] != self.head_dim:
            raise ValueError(
                f"x has last axis {x.shape[-1]}, this RotaryEmbedding has head_dim={self.head_dim}"
            )
        if positions is None:
            positions = torch.arange(x.shape[-2], device=x.device)
        cos, sin = self.cos_sin(positions)
        return apply_rope(x, cos, sin, self.layout)


def rope_permutation(head_dim: int) -> torch.Tensor:
    """Indices that reorder one head's features from the interleaved layout to the half layout.

    For a vector ``x`` laid out in Meta's adjacent pairs, ``x[rope_permutation(D)]`` holds the
    same pairs in Hugging Face's split halves: ``[0, 2, 4, ..., D-2, 1, 3, ..., D-1]``.
    """
    check_int(head_dim, "head_dim")
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE (it rotates pairs), got {head_dim}")
    return torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))


def _rows_per_head(weight: torch.Tensor, n_heads: int) -> int:
    check_int(n_heads, "n_heads")
    if weight.dim() not in (1, 2) or weight.shape[0] % n_heads:
        raise ValueError(
            f"weight of shape {tuple(weight.shape)} does not split into n_heads={n_heads} heads: "
            "pass a (n_heads * D, d_in) weight or (n_heads * D,) bias and the number of heads of "
            "this projection (n_kv_heads for k_proj)"
        )
    return weight.shape[0] // n_heads


def interleaved_to_half(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Permute the rows of a q or k projection from Meta's RoPE layout to Hugging Face's.

    ``weight`` is ``(n_heads * D, d_in)`` (a Linear weight) or ``(n_heads * D,)`` (its bias);
    ``n_heads`` is the number of heads of *this* projection (``n_kv_heads`` for ``k_proj``).
    Scores are unchanged when q and k are both permuted and the layout is switched.
    """
    head_dim = _rows_per_head(weight, n_heads)
    per_head = weight.reshape(n_heads, head_dim, *weight.shape[1:])  # (H, D, ...)
    return per_head[:, rope_permutation(head_dim)].reshape(weight.shape)


def half_to_interleaved(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of :func:`interleaved_to_half`: Hugging Face's layout back to Meta's."""
    head_dim = _rows_per_head(weight, n_heads)
    per_head = weight.reshape(n_heads, head_dim, *weight.shape[1:])  # (H, D, ...)
    return per_head[:, torch.argsort(rope_permutation(head_dim))].reshape(weight.shape)


ATTENTION_IMPLS = ("fused", "naive")


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention with optional grouped-query K/V heads and RoPE.

    GPT-2 style: ``MultiHeadAttention(768, 12, bias=True)``. Llama style:
    ``MultiHeadAttention(4096, 32, n_kv_heads=8, rope=RotaryEmbedding(128, base=500000.0))``.

    Args:
        d_model: width ``C`` of the residual stream; ``head_dim = d_model // n_heads``.
        n_heads: number of query heads ``H``; must divide ``d_model``.
        n_kv_heads: number of key/value heads ``H_kv`` (default ``n_heads``: plain multi-head
            attention; ``1``: multi-query attention); must divide ``n_heads``.
        dropout: dropout probability on the attention weights, in training mode only.
        bias: whether the four projections have biases (GPT-2: yes; Llama: no).
        rope: a :class:`RotaryEmbedding` with ``head_dim`` features applied to queries and keys,
            or None (no rotation: positions come from elsewhere, as in GPT-2).
        impl: ``"fused"`` (default, ``torch.nn.functional.scaled_dot_product_attention``) or
            ``"naive"`` (chapter 4's teaching function, which materialises the ``T x T`` weights).

    Attributes:
        q_proj: ``nn.Linear(d_model, n_heads * head_dim)``.
        k_proj, v_proj: ``nn.Linear(d_model, n_kv_heads * head_dim)``.
        o_proj: ``nn.Linear(n_heads * head_dim, d_model)``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        dropout: float = 0.0,
        bias: bool = False,
        rope: RotaryEmbedding | None = None,
        impl: str = "fused",
    ) -> None:
        super().__init__()
        check_int(d_model, "d_model")
        check_int(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by n_heads ({n_heads}); "
                f"choose n_heads among the divisors of {d_model}"
            )
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        check_int(n_kv_heads, "n_kv_heads")
        if n_heads % n_kv_heads:
            raise ValueError(
                f"n_heads ({n_heads}) must be divisible by n_kv_heads ({n_kv_heads}): each K/V "
                "head serves a whole group of query heads"
            )
        check_dropout(dropout)
        head_dim = d_model // n_heads
        if rope is not None and not isinstance(rope, RotaryEmbedding):
            raise TypeError(f"rope must be a RotaryEmbedding or None, got {type(rope).__name__}")
        if rope is not None and rope.head_dim != head_dim:
            raise ValueError(
                f"rope.head_dim ({rope.head_dim}) must equal d_model // n_heads ({head_dim})"
            )
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim, self.dropout, self.impl = head_dim, float(dropout), impl
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=bias)
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=bias)
        self.rope = rope

    def extra_repr(self) -> str:
        return (
            f"n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}, head_dim={self.head_dim}, "
            f"impl={self.impl!r}"
        )

    def project(
        self, x: torch.Tensor, positions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of ``x (B, T, C)``, split into heads, RoPE applied.

        Returns ``q (B, H, T, D)``, ``k (B, H_kv, T, D)``, ``v (B, H_kv, T, D)``. ``positions``
        (integer ``(T,)`` or ``(B, T)``, default ``0 .. T-1``) only matters when ``rope`` is set.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}"
            )
        B, T, _ = x.shape
        # (B, T, C) -> (B, T, H, D) -> (B, H, T, D); keys and values have H_kv heads
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.rope is not None:
            if positions is None:
                positions = torch.arange(T, device=x.device)
            elif not isinstance(positions, torch.Tensor) or positions.shape[-1] != T:
                got = tuple(positions.shape) if isinstance(positions, torch.Tensor) else positions
                raise ValueError(
                    f"positions must hold one position per token, shape (T,) or (B, T) with "
                    f"T={T}, got {got!r:.60}"
                )
            cos, sin = self.rope.cos_sin(positions.to(x.device))  # (T, D) or (B, T, D)
            q = apply_rope(q, cos, sin, self.rope.layout)
            k = apply_rope(k, cos, sin, self.rope.layout)
        return q, k, v

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Causal attention of ``q (B, H, Tq, D)`` over ``k, v (B, H_kv, Tk, D)``, then ``o_proj``.

        With ``Tk > Tq`` (keys cached from earlier steps) query ``i`` sits at position
        ``Tk - Tq + i`` and sees keys ``0 .. Tk - Tq + i``. Returns ``(B, Tq, C)``, and also the
        weights ``(B, H, Tq, Tk)`` when ``return_weights`` (which always takes the naive path).
        """
        heads_of = {"q": (self.n_heads, q), "k": (self.n_kv_heads, k), "v": (self.n_kv_heads, v)}
        for name, (heads, t) in heads_of.items():  # a clear error before any reshape
            if t.dim() != 4 or t.shape[1] != heads or t.shape[-1] != self.head_dim:
                raise ValueError(
                    f"{name} must have shape (B, {heads}, T, head_dim={self.head_dim}), "
                    f"got {tuple(t.shape)}"
                )
        B, _, Tq, _ = q.shape
        Tk = k.shape[-2]
        if Tk < Tq:
            raise ValueError(f"got {Tq} queries but {Tk} keys; causal attention needs Tk >= Tq")
        groups = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)  # (B, H, Tk, D)
        dropout_p = self.dropout if self.training else 0.0
        is_causal = Tq == Tk and Tq > 1  # the plain lower triangle
        mask = None if is_causal or Tq == 1 else causal_mask(Tq, Tk, device=q.device)  # (Tq, Tk)
        weights = None
        if return_weights or self.impl == "naive":
            out, weights = scaled_dot_product_attention(
                q, k, v, mask=mask, dropout_p=dropout_p, is_causal=is_causal, return_weights=True
            )
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal
            )
        out = out.transpose(1, 2).reshape(B, Tq, self.n_heads * self.head_dim)  # (B, Tq, C)
        out = self.o_proj(out)
        return (out, weights) if return_weights else out

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Causal self-attention: ``x (B, T, C) -> (B, T, C)``.

        ``positions`` (integer ``(T,)`` or ``(B, T)``) are passed to RoPE, ignored without RoPE.
        With ``return_weights`` also returns the attention weights ``(B, H, T, T)``.
        """
        q, k, v = self.project(x, positions)  # checks x
        return self.attend(q, k, v, return_weights=return_weights)


@torch.no_grad()
def stack_heads(naive: NaiveMultiHeadAttention) -> MultiHeadAttention:
    """The :class:`MultiHeadAttention` computing the same function as a naive list of heads.

    Head ``h``'s ``(D, C)`` projection matrices become rows ``h*D .. (h+1)*D - 1`` of the big
    ``(C, C)`` ones; ``o_proj`` is copied as is. The result lives on the same device and dtype.
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
    "LLAMA3_SCALING_KEYS",
    "llama3_scaled_inv_freq",
    "RotaryEmbedding",
    "rope_permutation",
    "interleaved_to_half",
    "half_to_interleaved",
    "ATTENTION_IMPLS",
    "MultiHeadAttention",
    "stack_heads",
]
