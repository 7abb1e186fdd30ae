# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 05: Multi-head attention
#
# Chapter 4 built one attention head: every position computes one set of weights over the
# positions it may see and takes one weighted average. One softmax has to choose: a position
# that wants to look at the previous word *and* at the subject of the sentence *and* at the
# first token can only blend them into one average. **Multi-head attention** runs several small
# heads side by side, each with its own queries, keys and values, and lets an output projection
# mix what they found. Modern models add three refinements that this chapter builds too: fewer
# key/value heads than query heads (grouped-query attention), positions injected by *rotating*
# queries and keys (RoPE), and fused kernels that never store the $T \times T$ matrix.
#
# **What you will build**
#
# 1. A naive multi-head layer: a list of chapter 4's single heads, concatenated, then projected.
# 2. The efficient version: one projection per role, a reshape to `(B, H, T, D)`, one batched
#    attention, merge the heads, output projection; shown equal to the naive one by copying weights.
# 3. Grouped-query and multi-query attention, and the key/value memory they save
#    (Llama-3.1-8B at an 8k context: 1 GiB instead of 4 GiB per sequence).
# 4. Rotary position embeddings: the rotation of pairs, a numerical check that $q \cdot k$
#    depends only on the relative offset, the base, and the two layouts in use (Meta's adjacent
#    pairs, Hugging Face's split halves) with the permutation that maps one onto the other.
# 5. The exported `MultiHeadAttention`, used by both GPT-2 style and Llama style models, its
#    module tree and parameter counts at real sizes, and per-head attention pictures.
# 6. Fast attention: PyTorch's fused kernel, FlashAttention's idea (tiles and an online softmax)
#    in a few lines of torch, and measured time and memory of the naive and fused paths.
#
# The code this chapter exports lives in `llmbook.multihead`.

# %%
#| default_exp multihead

# %% [markdown]
# Cells that start with `#| export` go into the package. We build on chapter 4's
# `CausalSelfAttention`, `causal_mask` and teaching `scaled_dot_product_attention`.

# %%
#| export
import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention
from llmbook.checks import check_dropout, check_int

# %%
torch.manual_seed(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. Why several heads
#
# Attention weights are a probability distribution over the visible positions. Take the
# sentence "the cat sat on the mat": the word *sat* may need its subject (*cat*), the word just
# before it, and a summary of everything so far. A single head can put its weight on one of
# these, or smear it over all three; it cannot deliver three separate answers. With $H$ heads
# each position gets $H$ weighted averages, each of its own choosing, and the next layer gets
# them side by side.
#
# The cost stays the same: instead of one head of width $C$ (the model width `d_model`), we run
# $H$ heads of width $D = C / H$ (`head_dim`). GPT-2 small has $C = 768$ and $H = 12$ heads of
# $D = 64$; Llama-3.1-8B has $C = 4096$ and $H = 32$ heads of $D = 128$.
#
# ## 2. The naive version: a list of heads
#
# The most direct way to write this: make $H$ copies of chapter 4's `CausalSelfAttention`, each
# mapping $C \to D$, run them all, concatenate their outputs back to width $C$, and let one more
# linear layer, the **output projection** `o_proj`, mix the heads.


# %%
#| export
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


# %% [markdown]
# A toy layer with $C = 12$ and $H = 3$ heads of $D = 4$, on a batch of two sequences of six
# positions:

# %%
naive = NaiveMultiHeadAttention(d_model=12, n_heads=3)
print(naive)
x = torch.randn(2, 6, 12)  # (B, T, C)
for h, head in enumerate(naive.heads):
    print(f"head {h} output", tuple(head(x).shape))
print("concatenated     ", tuple(torch.cat([head(x) for head in naive.heads], dim=-1).shape))
print("after o_proj     ", tuple(naive(x).shape))

# %% [markdown]
# It works, but it runs $3H$ small matrix products for the projections and $H$ separate
# attentions one after another, in a Python loop. On a GPU each small product is a separate
# kernel launch, too small to keep the hardware busy.
#
# ## 3. The efficient version: one projection, reshape, one batched attention
#
# Look at what the heads' query projections do together. Head $h$ computes
# $q^{(h)} = x W_q^{(h)\top}$ with $W_q^{(h)}$ of shape $(D, C)$. Stack the $H$ matrices on top
# of each other into one $(HD, C) = (C, C)$ matrix: one product with it gives all heads'
# queries at once, side by side in the last axis, head $h$ in columns $hD \ldots (h+1)D - 1$.
# A `view` then splits that axis into `(H, D)`, and a `transpose` moves the heads next to the
# batch axis, where batched matrix products treat them as more batch:
#
# | step | shape |
# |---|---|
# | input `x` | `(B, T, C)` |
# | `q_proj(x)` (one big linear) | `(B, T, C)` |
# | `.view(B, T, H, D)` (split the last axis) | `(B, T, H, D)` |
# | `.transpose(1, 2)` (heads become a batch axis) | `(B, H, T, D)` |
# | scores `q @ k.transpose(-2, -1)` | `(B, H, T, T)` |
# | weights @ `v` | `(B, H, T, D)` |
# | `.transpose(1, 2).reshape(B, T, C)` (merge the heads) | `(B, T, C)` |
# | `o_proj` | `(B, T, C)` |
#
# Here it is by hand, with the three big matrices built by stacking the naive layer's weights.

# %%
B, T, C, H = 2, 6, 12, 3
D = C // H
W_q = torch.cat([head.q_proj.weight for head in naive.heads], dim=0)  # (H*D, C) = (12, 12)
W_k = torch.cat([head.k_proj.weight for head in naive.heads], dim=0)
W_v = torch.cat([head.v_proj.weight for head in naive.heads], dim=0)
print("stacked W_q", tuple(W_q.shape))

with torch.no_grad():
    q = (x @ W_q.T).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    k = (x @ W_k.T).view(B, T, H, D).transpose(1, 2)
    v = (x @ W_v.T).view(B, T, H, D).transpose(1, 2)
    print("q, k, v    ", tuple(q.shape))
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)  # (B, H, T, T)
    scores = scores.masked_fill(~causal_mask(T), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    heads_out = weights @ v  # (B, H, T, D)
    print("weights    ", tuple(weights.shape), " per head output", tuple(heads_out.shape))
    merged = heads_out.transpose(1, 2).reshape(B, T, C)  # (B, T, H, D) -> (B, T, C)
    by_hand = naive.o_proj(merged)
    print("output     ", tuple(by_hand.shape))
    print("equal to the naive layer:", torch.allclose(by_hand, naive(x), atol=1e-6))
assert torch.allclose(by_hand, naive(x), atol=1e-6)

# %% [markdown]
# The transpose before the merge matters: `heads_out.reshape(B, T, C)` without it would run
# without error and mix up positions and heads. The `.transpose(1, 2)` makes the tensor
# non-contiguous, which is why the merge uses `reshape` (which copies when needed) rather than
# `view`.
#
# One step further, the three projections can be one: stack $W_q$, $W_k$, $W_v$ into a single
# $(3C, C)$ matrix, do one matrix product and split its output in three. GPT-2's checkpoints
# store attention that way (one `c_attn` layer of width $3C$), as does PyTorch's
# `nn.MultiheadAttention` (`in_proj_weight`). Llama's checkpoints keep `q_proj`, `k_proj`,
# `v_proj` separate, and so does our exported class: the result is the same, and with
# grouped-query attention (next section) the three outputs do not even have the same width.

# %%
W_qkv = torch.cat([W_q, W_k, W_v], dim=0)  # (3C, C) = (36, 12)
with torch.no_grad():
    q_f, k_f, v_f = (x @ W_qkv.T).split(C, dim=-1)  # (B, T, 3C) -> three (B, T, C)
    print("fused W_qkv", tuple(W_qkv.shape), "-> q, k, v", tuple(q_f.shape))
    same = all(
        torch.allclose(fused, x @ W.T, atol=1e-6)
        for fused, W in ((q_f, W_q), (k_f, W_k), (v_f, W_v))
    )
print("one (3C, C) product == three (C, C) products:", same)
assert same

# %% [markdown]
# ## 4. Grouped-query and multi-query attention
#
# When a model generates text it keeps the keys and values of every past token of every layer
# (the **KV cache**, chapter 9), so that each new token only computes its own. That cache grows
# with the context and soon dominates the memory of inference. Queries are never cached.
#
# **Multi-query attention** (MQA, Shazeer 2019) keeps $H$ query heads but only one key head and
# one value head, shared by all query heads. **Grouped-query attention** (GQA, Ainslie et al.
# 2023) sits in between: $H_{kv}$ key/value heads, each shared by a group of $H / H_{kv}$ query
# heads. Llama-3.1-8B has 32 query heads and 8 KV heads: groups of 4. What is shared is the
# *K and V projections* of a group (fewer rows in `k_proj` and `v_proj`, fewer cached vectors);
# every query head keeps its own query projection, and nothing about the LM head is involved.
#
# In code, the $H_{kv}$ key heads are repeated so that query head $h$ meets key/value head
# $\lfloor h / (H/H_{kv}) \rfloor$, the convention of Llama checkpoints:


# %%
#| export
def repeat_kv(x: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Share each K/V head with ``n_groups`` query heads.

    ``x (B, H_kv, T, D) -> (B, H_kv * n_groups, T, D)``; query head ``h`` is served by K/V head
    ``h // n_groups`` (the convention of Llama checkpoints). ``n_groups == 1`` returns ``x``.
    """
    if n_groups == 1:
        return x
    return x.repeat_interleave(n_groups, dim=1)


# %%
kv = torch.arange(2.0).view(1, 2, 1, 1).expand(1, 2, 3, 1)  # 2 KV heads holding 0 and 1, T = 3
shared = repeat_kv(kv, 3)  # 6 query heads, groups of 3
print("kv heads", tuple(kv.shape), "->", tuple(shared.shape))
print("K/V head seen by query heads 0..5:", shared[0, :, 0, 0].int().tolist())

# %% [markdown]
# `repeat_interleave` copies, which is fine for a teaching model; the fused kernels used in
# production index the shared head instead (exercise 2 computes GQA without the copy).
#
# How much does it save? Per token and per layer the cache holds one key and one value vector
# for each KV head: $2 \cdot H_{kv} \cdot D$ numbers. For Llama-3.1-8B (32 layers,
# $D = 128$) in bfloat16 (2 bytes) at a context of 8,192 tokens:
#
# $$2 \times 32 \text{ layers} \times 8 \text{ heads} \times 128 \times 8192 \text{ tokens}
#   \times 2 \text{ bytes} = 2^{30} \text{ bytes} = 1 \text{ GiB per sequence},$$
#
# where full multi-head attention (32 KV heads) would need 4 GiB, and MQA 128 MiB.


# %%
def kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, bytes_per_number=2, batch=1):
    """Bytes of a KV cache: keys and values for every layer, KV head and token."""
    return 2 * n_layers * n_kv_heads * head_dim * n_tokens * bytes_per_number * batch


GiB = 2**30
print("Llama-3.1-8B, bf16, one sequence")
print(
    f"{'attention':<16}{'KV heads':>9}{'per token':>12}{'8,192 tokens':>14}{'131,072 tokens':>16}"
)
for name, n_kv in [("MHA", 32), ("GQA (Llama)", 8), ("MQA", 1)]:
    per_token = kv_cache_bytes(32, n_kv, 128, 1)
    at_8k = kv_cache_bytes(32, n_kv, 128, 8192) / GiB
    at_128k = kv_cache_bytes(32, n_kv, 128, 131072) / GiB
    print(f"{name:<16}{n_kv:>9}{per_token // 1024:>8} KiB{at_8k:>10.3f} GiB{at_128k:>12.1f} GiB")
assert kv_cache_bytes(32, 8, 128, 8192) == 1 * GiB
assert kv_cache_bytes(32, 32, 128, 8192) == 4 * GiB

# %% [markdown]
# At Llama-3.1's full context of 131,072 tokens, GQA's cache is 16 GiB per sequence, more
# than the model's own weights (8.03B parameters in bf16: 15 GiB); with full MHA it would be
# 64 GiB.
# GQA also shrinks the projections: `k_proj` and `v_proj` are $4096 \times 1024$ instead of
# $4096 \times 4096$ in each layer. The price is some quality, which the GQA paper found small
# when the groups are not too large.
#
# ## 5. Rotary position embeddings (RoPE)
#
# Attention itself is blind to order (chapter 3). GPT-2 adds a learned position vector to each
# token embedding before the first block. Llama adds nothing to the embeddings; instead, inside
# every attention layer, it **rotates** each query and key by an angle proportional to its
# position (Su et al. 2021).
#
# Split a head's $D$ features into $D/2$ pairs. Pair $i$ is treated as a point in the plane and
# rotated, at position $m$, by the angle $m\,\theta_i$ with $\theta_i = \text{base}^{-2i/D}$:
#
# $$\begin{pmatrix} a' \\ b' \end{pmatrix} =
#   \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
#   \begin{pmatrix} a \\ b \end{pmatrix} = \cos(m\theta_i) \begin{pmatrix} a \\ b \end{pmatrix}
#   + \sin(m\theta_i) \begin{pmatrix} -b \\ a \end{pmatrix}.$$
#
# The last form is how code writes it: `x * cos + rotate_pairs(x) * sin`, where `rotate_pairs`
# turns every pair $(a, b)$ into $(-b, a)$ (a quarter turn). Pair 0 turns by 1 radian per
# position; the last pair barely moves. Why this encodes *relative* position: a rotation by
# $m\theta$ followed by the dot product with a key rotated by $n\theta$ equals the dot product of
# the unrotated query with the key rotated by $(n - m)\theta$, because
# $R(m\theta)^\top R(n\theta) = R((n-m)\theta)$. Only the offset $n - m$ survives.
#
# Which features form a pair is a convention, and both are in use:
#
# - **interleaved** (Meta's original Llama code): pair $i$ is features $(2i, 2i+1)$;
# - **half** (Hugging Face's `rotate_half`, GPT-NeoX): pair $i$ is features $(i, i + D/2)$.

# %%
#| export
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


# %% [markdown]
# ### The rotation, drawn
#
# Take one pair $(1, 0)$ and rotate it to positions $0, 1, \ldots, 7$ with a head of $D = 8$
# and base 10,000: pair 0 ($\theta_0 = 1$ radian per position) goes round the circle, pair 1
# ($\theta_1 = 0.1$) creeps, pair 3 ($\theta_3 = 0.001$) hardly moves. The length never changes.

# %%
import matplotlib.pyplot as plt

rope8 = RotaryEmbedding(8, base=10000.0, layout="interleaved")
print("theta_i:", [round(t, 4) for t in rope8.inv_freq().tolist()])
unit = torch.tensor([1.0, 0.0] * 4)  # every pair is (1, 0)
positions = torch.arange(8)
rotated = rope8(unit.expand(8, 8), positions)  # (T=8, D=8): row m is the vector at position m
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, pair in zip(axes, [0, 1, 3]):
    a, b = rotated[:, 2 * pair], rotated[:, 2 * pair + 1]
    circle = torch.linspace(0, 2 * math.pi, 100)
    _ = ax.plot(circle.cos(), circle.sin(), color="lightgray")
    _ = ax.scatter(a, b, c=positions, cmap="viridis")
    for m in range(8):
        _ = ax.annotate(str(m), (float(a[m]) * 1.12, float(b[m]) * 1.12), ha="center", va="center")
    ax.set_title(f"pair {pair}: theta = {rope8.inv_freq()[pair]:.3g} rad / position")
    ax.set_aspect("equal")
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
plt.tight_layout()
plt.show()
plt.close(fig)
assert torch.allclose(rotated.norm(dim=-1), unit.norm().expand(8))

# %% [markdown]
# ### Scores depend only on the offset
#
# Take one query vector and one key vector, rotate them to positions $m$ and $n$, and take the
# dot product. Moving both positions by the same amount leaves the score unchanged; changing
# the offset changes it.

# %%
rope = RotaryEmbedding(16, base=10000.0)
q_vec, k_vec = torch.randn(2, 16, dtype=torch.float64).unbind(0)


def rope_score(m, n):
    """q rotated to position m, dotted with k rotated to position n."""
    q_m = rope(q_vec.view(1, 16), torch.tensor([m]))
    k_n = rope(k_vec.view(1, 16), torch.tensor([n]))
    return float((q_m * k_n).sum())


print(f"{'m':>6}{'n':>6}{'n - m':>7}{'score':>9}")
for m, n in [(5, 2), (105, 102), (1005, 1002), (5, 3), (105, 103), (5, 5), (2000, 2000)]:
    print(f"{m:>6}{n:>6}{n - m:>7}{rope_score(m, n):>9.3f}")
assert abs(rope_score(5, 2) - rope_score(1005, 1002)) < 1e-3
assert abs(rope_score(5, 2) - rope_score(5, 3)) > 1e-2
print("plain q.k (both at position 0):", round(float(q_vec @ k_vec), 3))

# %% [markdown]
# The same two vectors get a different score at every offset. Below: the score of this query
# and key as a function of the offset $n - m$, for base 10,000 and 500,000. With many slowly
# turning pairs, the score at large offsets drifts rather than repeating: the low-frequency
# pairs have wavelengths far longer than any offset we look at.

# %%
offsets = torch.arange(-256, 1)
fig, ax = plt.subplots(figsize=(8, 3))
for base in (10000.0, 500000.0):
    r = RotaryEmbedding(16, base=base)
    qs = r(q_vec.expand(len(offsets), 16), torch.full((len(offsets),), 256))  # query at m = 256
    ks = r(k_vec.expand(len(offsets), 16), offsets + 256)  # keys at n = 0 .. 256
    _ = ax.plot(offsets, (qs * ks).sum(-1), label=f"base {base:,.0f}")
ax.set_xlabel("key position - query position  (n - m)")
ax.set_ylabel("q . k after RoPE")
_ = ax.legend()
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# Rotations keep lengths, so RoPE changes the *angle* between a query and a key, never their
# norms:

# %%
x4 = torch.randn(2, 4, 10, 16)  # (B, H, T, D)
x4_rot = rope(x4, torch.arange(10))
print(
    "max change of any norm:", round(float((x4_rot.norm(dim=-1) - x4.norm(dim=-1)).abs().max()), 4)
)
print("position 0 unchanged:  ", torch.allclose(x4_rot[..., 0, :], x4[..., 0, :]))
assert torch.allclose(x4_rot.norm(dim=-1), x4.norm(dim=-1), atol=1e-5)

# %% [markdown]
# ### The base
#
# The wavelength of pair $i$, the number of positions for one full turn, is
# $2\pi / \theta_i = 2\pi \cdot \text{base}^{2i/D}$. The fastest pair always turns once every
# $2\pi \approx 6.3$ positions; the slowest, with $D = 128$, turns once every ~54,000 positions
# at base 10,000 (Llama-2, context 4,096) and every ~2.6 million at base 500,000 (Llama-3,
# context 8,192, extended to 131,072 in Llama-3.1). A larger base gives more pairs whose
# angle stays small over the whole context, which helps at long range.

# %%
fig, ax = plt.subplots(figsize=(7, 3))
for base, label in [(10000.0, "base 10,000 (Llama-2)"), (500000.0, "base 500,000 (Llama-3.x)")]:
    wavelengths = 2 * math.pi / RotaryEmbedding(128, base=base).inv_freq()
    _ = ax.semilogy(wavelengths, label=label)
    print(f"{label:<26} wavelengths {float(wavelengths[0]):.2f} ... {float(wavelengths[-1]):,.0f}")
ax.axhline(8192, color="gray", linestyle=":")
ax.set_xlabel("pair i (head_dim 128)")
ax.set_ylabel("wavelength (positions)")
_ = ax.legend()
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# Llama-3.1 goes one step further: its context was stretched from the 8,192 tokens of
# pre-training to 131,072, and to keep the slow pairs from seeing angles they never met in
# training, it divides their frequencies by 8 (pairs with wavelengths above 8,192 positions),
# keeps the fast pairs (wavelengths below 2,048) as they are, and interpolates in between.
# `RotaryEmbedding(..., scaling={...})` takes the same dictionary as the model's Hugging Face
# configuration:

# %%
llama31_scaling = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
plain = RotaryEmbedding(128, base=500000.0).inv_freq()
scaled = RotaryEmbedding(128, base=500000.0, scaling=llama31_scaling).inv_freq()
ratio = plain / scaled
print("pairs unchanged:        ", int((ratio == 1).sum()))
print("pairs 8 times slower:   ", int(torch.isclose(ratio, torch.tensor(8.0)).sum()))
print(
    "pairs in between:       ", int(((ratio > 1) & ~torch.isclose(ratio, torch.tensor(8.0))).sum())
)
assert float(ratio.min()) == 1.0 and math.isclose(float(ratio.max()), 8.0, rel_tol=1e-5)

# %% [markdown]
# ### Two layouts, one permutation
#
# Meta's release pairs adjacent features $(2i, 2i+1)$; Hugging Face's code pairs feature $i$
# with feature $i + D/2$. The rotation is the same, only the *order of the features* differs.
# Reorder a vector in Meta's layout with the permutation
# $[0, 2, 4, \ldots, D-2, 1, 3, \ldots, D-1]$ and pair $i$ lands at positions $(i, i + D/2)$.
# So rotating in one layout then permuting equals permuting then rotating in the other:


# %%
#| export
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


# %%
perm = rope_permutation(8)
print("permutation for D = 8:", perm.tolist())
rope_meta = RotaryEmbedding(8, layout="interleaved")
rope_hf = RotaryEmbedding(8, layout="half")
x8 = torch.randn(5, 8)  # five positions, one head
rotate_then_permute = rope_meta(x8, torch.arange(5))[:, perm]
permute_then_rotate = rope_hf(x8[:, perm], torch.arange(5))
print("same result:", torch.allclose(rotate_then_permute, permute_then_rotate, atol=1e-6))
assert torch.allclose(rotate_then_permute, permute_then_rotate, atol=1e-6)

# %% [markdown]
# A dot product does not care about the order of features, as long as query and key use the
# same order. So a checkpoint in Meta's layout runs with Hugging Face's `rotate_half` once the
# rows of $W_q$ and $W_k$ are permuted head by head (`interleaved_to_half`), which is what
# Hugging Face's Llama conversion script does. $W_v$ and $W_o$ stay as they are. Section 6
# checks this on a whole layer.
#
# ## 6. The exported `MultiHeadAttention`
#
# Everything comes together in one class. Its projections are named `q_proj`, `k_proj`,
# `v_proj`, `o_proj`, exactly as in Llama checkpoints, so loading weights (chapter 7) is a table
# of names. The same class serves both families:
#
# - GPT-2: `MultiHeadAttention(768, 12, bias=True)`, no RoPE (positions were added to the
#   embeddings), as many KV heads as query heads;
# - Llama-3.1-8B: `MultiHeadAttention(4096, 32, n_kv_heads=8, rope=RotaryEmbedding(128, base=500000.0))`,
#   no biases.
#
# The forward pass is split in two public steps so that a KV cache (chapter 9) can sit between
# them: `project` (queries, keys, values, RoPE at the given positions) and `attend` (attention
# over possibly more keys than queries, merge, output projection). By default `attend` calls
# PyTorch's fused `torch.nn.functional.scaled_dot_product_attention` (section 8);
# `impl="naive"` uses chapter 4's teaching function instead, and `return_weights=True` returns
# the attention weights, which only the naive path has.

# %%
#| export
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


# %% [markdown]
# Turning the naive layer of section 2 into this one is the stacking of section 3, written once:


# %%
#| export
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


# %%
mha = stack_heads(naive)
print(mha)
with torch.no_grad():
    out_naive, out_fused = naive(x), mha(x)
    mha.impl = "naive"
    out_teaching = mha(x)
    mha.impl = "fused"
print(
    "naive list of heads == MultiHeadAttention (fused):",
    torch.allclose(out_naive, out_fused, atol=1e-6),
)
print(
    "fused path == teaching path:                     ",
    torch.allclose(out_fused, out_teaching, atol=1e-6),
)
assert torch.allclose(out_naive, out_fused, atol=1e-6)
assert torch.allclose(out_fused, out_teaching, atol=1e-6)

# %% [markdown]
# A Llama-style toy layer with GQA and RoPE: 8 query heads, 2 KV heads, $D = 8$. `project`
# shows the shapes before attention; note the keys and values have only 2 heads.

# %%
llama_like = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8, base=500000.0))
print(llama_like)
x64 = torch.randn(2, 10, 64)  # (B, T, C)
with torch.no_grad():
    q, k, v = llama_like.project(x64)
    out = llama_like(x64)
print("q", tuple(q.shape), " k", tuple(k.shape), " v", tuple(v.shape), " out", tuple(out.shape))
print("parameters:", {name: p.numel() for name, p in llama_like.named_parameters()})

# %% [markdown]
# ### Real sizes
#
# The same class at GPT-2 small's and Llama-3.1-8B's sizes. The Llama layer is built on PyTorch's
# `meta` device, which records shapes without allocating memory, so we can count its parameters
# without 168 MB of random numbers.


# %%
def count(module):
    return sum(p.numel() for p in module.parameters())


gpt2_attn = MultiHeadAttention(768, 12, bias=True)
print(gpt2_attn)
print(
    f"GPT-2 small attention: {count(gpt2_attn):,} parameters per layer, "
    f"{12 * count(gpt2_attn):,} in 12 layers"
)
with torch.device("meta"):
    llama_attn = MultiHeadAttention(
        4096, 32, n_kv_heads=8, rope=RotaryEmbedding(128, base=500000.0)
    )
    llama_mha = MultiHeadAttention(4096, 32)  # the same layer without GQA, for comparison
print(llama_attn)
print(
    f"Llama-3.1-8B attention: {count(llama_attn):,} parameters per layer, "
    f"{32 * count(llama_attn):,} in 32 layers"
)
print(f"without GQA it would be {count(llama_mha):,} per layer")
assert count(gpt2_attn) == 4 * 768 * 768 + 4 * 768
assert count(llama_attn) == 2 * 4096 * 4096 + 2 * 4096 * 1024

# %% [markdown]
# So attention is about 1.34B of Llama-3.1-8B's 8.03B parameters; most of the rest sits in the
# feed-forward networks (chapter 6).
#
# ### Both RoPE layouts on a whole layer
#
# A layer with Meta's interleaved RoPE, and a copy with Hugging Face's half layout whose
# `q_proj` and `k_proj` rows were permuted with `interleaved_to_half` (note `k_proj` has
# `n_kv_heads` heads): the attention weights and outputs agree. Without the permutation they
# do not.

# %%
meta_layer = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8, layout="interleaved"))
hf_layer = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8, layout="half"))
state = meta_layer.state_dict()
state["q_proj.weight"] = interleaved_to_half(state["q_proj.weight"], n_heads=8)
state["k_proj.weight"] = interleaved_to_half(state["k_proj.weight"], n_heads=2)
hf_layer.load_state_dict(state)
with torch.no_grad():
    out_meta, w_meta = meta_layer(x64, return_weights=True)
    out_hf, w_hf = hf_layer(x64, return_weights=True)
    print("same attention weights:", torch.allclose(w_meta, w_hf, atol=1e-6))
    print("same outputs:          ", torch.allclose(out_meta, out_hf, atol=1e-6))
    hf_layer.load_state_dict(meta_layer.state_dict())  # forget the permutation
    print("without permuting:     ", torch.allclose(meta_layer(x64), hf_layer(x64), atol=1e-6))
assert torch.allclose(w_meta, w_hf, atol=1e-6)

# %% [markdown]
# Bad sizes are refused when the layer is built, with a message that says what to change:

# %% tags=["raises-exception"]
MultiHeadAttention(4096, 32, n_kv_heads=5)

# %% tags=["raises-exception"]
MultiHeadAttention(768, 10)

# %% [markdown]
# ## 7. What the heads look at
#
# Attention weights of a *trained* model show heads that specialise: in GPT-2 some heads attend
# to the previous token, some to the first token (a "resting place" when nothing is relevant),
# some to earlier occurrences of the current word. Olsson et al. (2022) traced in-context
# copying to "induction heads", which work with a previous-token head in an earlier layer to
# attend to the token that *followed* an earlier occurrence of the current one (after "... Harry
# Potter ... Harry", look at "Potter"). We have no trained model yet, so we build four
# such heads **by hand** in one `MultiHeadAttention`, with no training: the input of each
# position is the concatenation of a random word vector (16 features, the same for the same
# word) and a one-hot position (16 features); each head's $W_q$ and $W_k$ pick what it compares.
#
# | head | query of position $i$ | key of position $j$ | large score when |
# |---|---|---|---|
# | 0 previous token | one-hot of $i - 1$ | one-hot of $j$ | $j = i - 1$ |
# | 1 first token | the constant $e_0$ | $e_0$ only at $j = 0$ | $j = 0$ |
# | 2 same word | word vector of $i$ | word vector of $j$ | same word |
# | 3 average | zero | anything | every visible position alike |

# %%
words = "the cat sat on the mat and the cat slept".split()
T_words = len(words)
vocab = sorted(set(words))
word_vectors = F.normalize(torch.randn(len(vocab), 16), dim=-1)  # one random unit vector per word
inputs = torch.zeros(1, T_words, 64)  # (B, T, C): features 0-15 word, 16-31 position, rest 0
for i, w in enumerate(words):
    inputs[0, i, :16] = word_vectors[vocab.index(w)]
    inputs[0, i, 16 + i] = 1.0

heads_layer = MultiHeadAttention(64, 4)  # 4 heads of D = 16
sharp = 40.0  # scores of c / sqrt(16) = 10 make the softmax nearly one-hot
with torch.no_grad():
    Wq = torch.zeros(4, 16, 64)  # (head, D, C): row r of head h's query projection
    Wk = torch.zeros(4, 16, 64)
    for p in range(1, 16):
        Wq[0, p - 1, 16 + p] = sharp  # head 0: query of position p is one-hot(p - 1)
    for p in range(16):
        Wk[0, p, 16 + p] = 1.0  #          key of position p is one-hot(p)
    Wq[1, 0, 16:32] = sharp  # head 1: every query is e_0
    Wk[1, 0, 16] = 1.0  #                only position 0 has a key along e_0
    Wq[2, :, :16] = sharp * torch.eye(16)  # head 2: compare word vectors
    Wk[2, :, :16] = torch.eye(16)
    # head 3: query zero, so every visible key scores 0 and gets the same weight
    heads_layer.q_proj.weight.copy_(Wq.reshape(64, 64))
    heads_layer.k_proj.weight.copy_(Wk.reshape(64, 64))
    _, head_weights = heads_layer(inputs, return_weights=True)  # (1, 4, T, T)
print("weights", tuple(head_weights.shape))

titles = ["head 0: previous token", "head 1: first token", "head 2: same word", "head 3: average"]
fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
for h, ax in enumerate(axes):
    _ = ax.imshow(head_weights[0, h], cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(T_words), words, rotation=90)
    ax.set_yticks(range(T_words), words)
    ax.set_title(titles[h])
axes[0].set_ylabel("query (attending position)")
plt.tight_layout()
plt.show()
plt.close(fig)

# %%
print("query 'slept' (position 9), largest weight per head:")
for h in range(4):
    j = int(head_weights[0, h, 9].argmax())
    print(
        f"  head {h}: position {j} ({words[j]!r}) with weight {float(head_weights[0, h, 9, j]):.2f}"
    )
assert int(head_weights[0, 0, 9].argmax()) == 8 and int(head_weights[0, 1, 9].argmax()) == 0
assert int(head_weights[0, 2, 8].argmax()) in (1, 8)  # 'cat' attends to a 'cat'

# %% [markdown]
# Each head found a different relation in the same sentence, and `o_proj` receives all four
# answers side by side. In a trained model nobody writes these weights: gradient descent finds
# heads like these because they help predict the next token. A freshly initialised layer, in
# contrast, spreads its weights without any pattern (small random scores), as the grid below
# shows for the first four heads of a random GPT-2-sized layer on random inputs:

# %%
random_layer = MultiHeadAttention(768, 12, bias=True)
with torch.no_grad():
    _, random_weights = random_layer(torch.randn(1, T_words, 768), return_weights=True)
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for h, ax in enumerate(axes):
    _ = ax.imshow(random_weights[0, h], cmap="Blues", vmin=0, vmax=1)
    ax.set_title(f"random head {h}")
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()
plt.close(fig)
uniform = torch.ones(T_words, T_words).tril() / torch.arange(1, T_words + 1)[:, None]
print(
    "largest distance from the uniform causal average:",
    round(float((random_weights[0] - uniform).abs().max()), 1),
)

# %% [markdown]
# ## 8. Fast attention: fused kernels and FlashAttention's idea
#
# The teaching path computes the whole score matrix `(B, H, T, T)`, writes it to memory, reads
# it back for the softmax, writes the weights, reads them back for the product with `v`, and
# keeps them for the backward pass. For GPT-2 small at its 1,024-token context that is 12 heads
# $\times$ 1,024 $\times$ 1,024 floats = 48 MiB per layer and sequence in float32; it grows with
# $T^2$. Moving those bytes, not the arithmetic, is what makes attention slow on a GPU.
#
# **FlashAttention** (Dao et al. 2022) computes exactly the same result without ever storing
# the $T \times T$ matrix. It walks over the keys in blocks and keeps, for each query, three
# running quantities: the largest score seen so far $m$, the softmax denominator $\ell$ relative
# to that maximum, and the weighted sum of values $o$ (also relative to $m$). When a new block
# brings a larger maximum, the old sums are rescaled by $e^{m_\text{old} - m_\text{new}}$. This
# is the **online softmax**. First on one row of numbers:

# %%
row = torch.randn(20, dtype=torch.float64) * 3
running_max, running_sum = float("-inf"), 0.0
for block in row.split(6):  # blocks of 6, 6, 6, 2 numbers
    new_max = max(running_max, float(block.max()))
    rescale = math.exp(running_max - new_max)  # shrink the old sum to the new maximum
    running_sum = running_sum * rescale + float((block - new_max).exp().sum())
    running_max = new_max
online = (row - running_max).exp() / running_sum
print("online softmax == softmax:", torch.allclose(online, torch.softmax(row, dim=0)))
assert torch.allclose(online, torch.softmax(row, dim=0))

# %% [markdown]
# The same bookkeeping for attention, over blocks of keys. Only a `(Tq, block)` slab of scores
# exists at any time. (The real kernel also splits the queries into blocks, keeps every tile in
# the GPU's fast on-chip memory, and in the backward pass recomputes the scores instead of
# storing them.)


# %%
def tiled_attention(q, k, v, block=16, causal=True):
    """Attention over blocks of keys with an online softmax: never builds the (Tq, Tk) matrix.

    q (..., T, D), k (..., T, D), v (..., T, Dv) -> (..., T, Dv); same positions for q and k.
    """
    T, scale = q.shape[-2], 1.0 / math.sqrt(q.shape[-1])
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)  # running max   (..., T, 1)
    l = torch.zeros(*q.shape[:-1], 1, dtype=q.dtype)  # running denominator           (..., T, 1)
    o = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype)  # running numerator   (..., T, Dv)
    for start in range(0, k.shape[-2], block):
        s = q @ k[..., start : start + block, :].transpose(-2, -1) * scale  # (..., T, block)
        if causal:
            key_pos = torch.arange(start, start + s.shape[-1])
            s = s.masked_fill(key_pos[None, :] > torch.arange(T)[:, None], float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        p = torch.exp(s - m_new)  # (..., T, block), masked entries are exp(-inf) = 0
        rescale = torch.exp(m - m_new)  # shrink the old sums to the new maximum
        l = l * rescale + p.sum(dim=-1, keepdim=True)
        o = o * rescale + p @ v[..., start : start + block, :]
        m = m_new
    return o / l


qt, kt, vt = torch.randn(3, 2, 4, 100, 16).unbind(0)  # (B, H, T, D) each, T = 100
tiled = tiled_attention(qt, kt, vt, block=16)
reference = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
print("tiled online-softmax attention == torch:", torch.allclose(tiled, reference, atol=1e-5))
assert torch.allclose(tiled, reference, atol=1e-5)

# %% [markdown]
# PyTorch ships such kernels behind one function, `torch.nn.functional.scaled_dot_product_attention`,
# which `MultiHeadAttention` calls by default. It picks an implementation for the hardware:
# FlashAttention or a memory-efficient kernel on GPUs, a fused flash-style kernel on CPUs, and
# a plain "math" version as the fallback. With `is_causal=True` it can also skip the blocks
# above the diagonal. Which one ran is recorded in the autograd graph: the node that will
# compute the gradient of the attention names the kernel. On a CPU the fused path shows one
# `ScaledDotProductFlashAttentionForCpuBackward0` node, where the teaching path shows its
# separate steps (matrix products, masking, softmax):


# %%
# NBVAL_IGNORE_OUTPUT
def graph_nodes(output):
    """Names of the autograd nodes that produced ``output``, walking back to the inputs."""
    names, stack, seen = [], [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(node.name())
        stack.extend(parent for parent, _ in node.next_functions)
    return names


layer = MultiHeadAttention(64, 4)
x_graph = torch.randn(1, 32, 64)
attention_steps = ("Softmax", "MaskedFill", "Bmm")  # the nodes of the attention itself
for impl in ("fused", "naive"):
    layer.impl = impl
    nodes = graph_nodes(layer(x_graph))
    nodes = {name for name in nodes if "Attention" in name or name.startswith(attention_steps)}
    print(f"{impl}: {sorted(nodes)}")
assert "SoftmaxBackward0" in graph_nodes(layer(x_graph))  # the naive path builds the softmax
layer.impl = "fused"
assert "SoftmaxBackward0" not in graph_nodes(layer(x_graph))  # the fused one never does

# %% [markdown]
# ### Measured: naive vs fused, time and memory
#
# We time forward plus backward of one `MultiHeadAttention` layer ($C = 64$, 4 heads, batch 1)
# on this CPU with `impl="naive"` and with the default fused path, for growing $T$. For memory
# we count the bytes of every tensor autograd keeps for the backward pass, through PyTorch's
# `saved_tensors_hooks`: in training these activations are what grows with $T$ and sets the
# peak. (On a GPU, `torch.cuda.max_memory_allocated()` reports the peak directly.) Timings
# depend on the machine, so the cell's output is not compared when the notebook is replayed;
# the assertions allow for noise.

# %%
# NBVAL_IGNORE_OUTPUT
import time


def saved_for_backward_bytes(forward):
    """Bytes of the distinct tensors autograd saves for the backward pass of forward()."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(storages.values())


def median_seconds(step, repeats=5):
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


lengths = [64, 128, 256, 512, 1024]
results = {"naive": ([], []), "fused": ([], [])}
for T_bench in lengths:
    layer = MultiHeadAttention(64, 4)
    x_bench = torch.randn(1, T_bench, 64, requires_grad=True)
    for impl in ("naive", "fused"):
        layer.impl = impl

        def step(layer=layer, x_bench=x_bench):
            layer(x_bench).sum().backward()

        results[impl][0].append(median_seconds(step))
        results[impl][1].append(saved_for_backward_bytes(step))
print(f"{'T':>6}{'naive ms':>10}{'fused ms':>10}{'ratio':>7}{'naive MiB':>11}{'fused MiB':>11}")
for i, T_bench in enumerate(lengths):
    (tn, mn), (tf, mf) = [(results[impl][0][i], results[impl][1][i]) for impl in ("naive", "fused")]
    print(
        f"{T_bench:>6}{1e3 * tn:>10.2f}{1e3 * tf:>10.2f}{tn / tf:>7.1f}{mn / 2**20:>11.2f}{mf / 2**20:>11.2f}"
    )
assert results["fused"][0][-1] < results["naive"][0][-1]  # faster at T = 1024
# the naive path keeps at least the (B, H, T, T) float32 weights: 4 * 1024 * 1024 * 4 bytes
assert results["naive"][1][-1] >= 4 * 1024 * 1024 * 4 > 4 * results["fused"][1][-1]

# %%
fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 3.6))
for impl, style in (("naive", "o-"), ("fused", "s-")):
    _ = ax_t.loglog(lengths, [1e3 * t for t in results[impl][0]], style, label=impl)
    _ = ax_m.loglog(lengths, [m / 2**20 for m in results[impl][1]], style, label=impl)
ax_t.set_title("forward + backward time")
ax_t.set_ylabel("ms")
ax_m.set_title("memory saved for backward")
ax_m.set_ylabel("MiB")
for ax in (ax_t, ax_m):
    ax.set_xlabel("sequence length T")
    _ = ax.legend()
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# On a log-log plot the naive memory climbs with slope 2 (the $T \times T$ weights) while the
# fused path climbs with slope 1 (only `q`, `k`, `v` and the output, all $T \times D$).
# `benchmarks/attention.py` repeats the timing at larger sizes and up to $T = 2048$; run
# `python benchmarks/attention.py` to see the ratios on your machine.
#
# ## Summary
#
# - Multi-head attention runs $H$ heads of width $D = C/H$ side by side, concatenates their
#   outputs and mixes them with an output projection; it costs what one head of width $C$ costs.
# - The naive list of heads and the efficient layer (one projection per role, `view` to
#   `(B, T, H, D)`, `transpose` to `(B, H, T, D)`, one batched attention, merge, `o_proj`) are
#   the same function: the big weight matrices are the heads' matrices stacked.
# - Grouped-query attention shares each key/value head among a group of query heads
#   (multi-query: one K/V head for all). It shrinks `k_proj`, `v_proj` and above all the KV
#   cache: Llama-3.1-8B at 8k tokens needs 1 GiB per sequence in bf16 instead of 4 GiB.
# - RoPE rotates pairs of query and key features by position-dependent angles
#   ($\theta_i = \text{base}^{-2i/D}$); lengths are preserved and scores depend only on the
#   offset between positions. Llama-2 uses base 10,000, Llama-3.x 500,000. Meta's adjacent-pairs
#   layout and Hugging Face's split-halves layout differ by a per-head permutation of the rows
#   of $W_q$ and $W_k$, which leaves every score unchanged. Llama-3.1 also slows its
#   low-frequency pairs down (the "llama3" scaling) to reach a 128k context.
# - The exported `MultiHeadAttention(d_model, n_heads, n_kv_heads, dropout, bias, rope)` serves
#   GPT-2 (bias, no RoPE) and Llama (GQA, RoPE, no bias); its default path is PyTorch's fused
#   `scaled_dot_product_attention`.
# - FlashAttention's idea, an online softmax over tiles, computes exact attention without the
#   $T \times T$ matrix: memory grows with $T$ instead of $T^2$, and fewer bytes move.
#
# ## Exercises
#
# 1. **KV cache budget.** Llama-2-7B has 32 layers, 32 heads of 128 and no GQA; Llama-3.1-8B
#    has 8 KV heads. How many bytes does each need per token in bf16? With 40 GiB of GPU memory
#    left for the cache, how many tokens (summed over all sequences in a batch) fit for each?
# 2. **GQA without copies.** `repeat_kv` copies the keys and values. Compute grouped-query
#    attention without any copy: split the query heads into groups, `q.view(B, H_kv, G, T, D)`,
#    and give the keys and values a group axis with `unsqueeze` and `expand`. Check that the
#    expanded keys share storage with the originals (a stride of 0) and that the result equals
#    `MultiHeadAttention`'s output. Why can't the keys simply be made a `(B, H, T, D)` view?
# 3. **Shifting a whole sequence.** Show with a `MultiHeadAttention` that has RoPE that passing
#    `positions = torch.arange(T) + 1000` instead of `torch.arange(T)` leaves the output
#    unchanged (up to float rounding). Then show that a layer without RoPE (and with no position
#    embedding before it) gives the same output at the last position when the earlier tokens are
#    shuffled, while the RoPE layer does not: only the causal mask tells it anything about order.
#    Why does RoPE's shift invariance make it attractive for a KV cache?
# 4. **Skipping masked blocks.** Extend `tiled_attention` so that with `causal=True` it also
#    splits the *queries* into blocks and skips every (query block, key block) pair that lies
#    entirely above the diagonal. Check the result against `F.scaled_dot_product_attention(...,
#    is_causal=True)` and count how many of the blocks it skips for $T = 128$ and blocks of 16.
# 5. **Converting a GQA checkpoint.** Build a `MultiHeadAttention(64, 8, n_kv_heads=2,
#    rope=RotaryEmbedding(8, layout="interleaved"))`, convert its weights to the half layout
#    with `interleaved_to_half`, but (a classic bug) pass `n_heads=8` for `k_proj` too. Why is
#    no error raised, and what happens to the outputs? Then convert correctly (`n_heads=2` for
#    `k_proj`) and compare. Which check would have caught the bug?
#
# Worked solutions: `chapters/solutions/05_multihead_attention.ipynb`.
