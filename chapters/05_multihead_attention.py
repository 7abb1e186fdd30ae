# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
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
# that wants to look at the previous token *and* at the subject of the sentence *and* at the
# first token can only blend them into one average. **Multi-head attention** runs several small
# heads side by side, each with its own queries, keys and values, and lets an output projection
# mix what they found. Modern models add three refinements that this chapter builds too: fewer
# key/value heads than query heads (grouped-query attention), positions injected by *rotating*
# queries and keys (RoPE), and fused kernels that never store the $T \times T$ matrix.
#
# **What you will build**
#
# 1. A naive multi-head layer: a list of chapter 4's single heads, concatenated, then projected.
# 2. The efficient version in nanoGPT's size: one projection, a reshape to `(B, H, T, D)`, one
#    fused attention, merge the heads, output projection; shown equal to the naive one.
# 3. Grouped-query and multi-query attention, computed without copying keys and values, and the
#    key/value memory they save (Llama-3.1-8B at an 8k context: 1 GiB instead of 4 GiB).
# 4. Rotary position embeddings in four steps: the quarter turn of a pair, applying the
#    rotation, a module with a table of angles, and Llama 3.1's frequency scaling; the two
#    layouts in use (Meta's adjacent pairs, Hugging Face's split halves) and the permutation
#    between them.
# 5. The exported `MultiHeadAttention` used by GPT-2 and Llama style models in chapter 7, with
#    padding masks for batches of unequal sequences, and per-head attention pictures.
# 6. Fast attention: FlashAttention's idea (tiles and an online softmax) in a few lines, and
#    measured time and memory of naive and fused attention.
#
# The code this chapter exports lives in `llmbook.multihead`.

# %%
#| default_exp multihead

# %% [markdown]
# Cells that start with `#| export` go into the package. We build on chapter 4's
# `CausalSelfAttention` and its teaching `scaled_dot_product_attention`; the argument checks are
# one-line calls into `llmbook.checks` (section 9).

# %%
#| export
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

# %%
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Why several heads
#
# Attention weights are a probability distribution over the visible positions. In a sentence
# like "Ruby was a quiet girl who lived on a quiet street", the token ` street` may need the
# word before it (` quiet`), the subject (`Ruby`), and a summary of everything so far. A single
# head can put its weight on one of these, or smear it over all three; it cannot deliver three
# separate answers. With $H$ heads each position gets $H$ weighted averages, each of its own
# choosing, and the next layer gets them side by side.
#
# The arithmetic stays the same: instead of one head of width $C$ (the model width `d_model`), we
# run $H$ heads of width $D = C / H$ (`head_dim`), so the projections have the same size and the
# products $q k^\top$ and weights times $v$ cost $T^2 C$ multiply-adds either way. What grows is the
# number of $T \times T$ weight matrices: $H$ instead of one (section 8). GPT-2 small has $C = 768$
# and $H = 12$ heads of $D = 64$; Llama-3.1-8B has $C = 4096$ and $H = 32$ heads of $D = 128$. Our
# toy layers use $C = 12$ and $H = 3$ heads of $D = 4$, on the book's running example: a sentence of
# the `stories` corpus, tokenized by the book's tokenizer (2,048 ids) and embedded by a random
# table.

# %%
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from llmbook import load_tokenizer
from llmbook.data import load_corpus

tok = load_tokenizer("stories")
sentence = "Ruby was a quiet girl who lived on a quiet street full of trees."
assert sentence in load_corpus("stories")
ids = torch.tensor(tok.encode(sentence))  # (T,)
tokens = [tok.decode([i]) for i in ids.tolist()]
print("tokens", tokens)
print("vocabulary of the book's tokenizer:", tok.vocab_size, "ids")
embedding = nn.Embedding(tok.vocab_size, 12)  # a random (2048, 12) table, as before training
with torch.no_grad():
    x = embedding(ids)[None]  # (B, T, C) = (1, 16, 12)
print("x", tuple(x.shape))

# %% [markdown]
# ## 2. The naive version: a list of heads
#
# The most direct way to write this: make $H$ copies of chapter 4's `CausalSelfAttention`, each
# mapping $C \to D$, run them all, concatenate their outputs back to width $C$, and let one more
# linear layer, the **output projection** `o_proj`, mix the heads.


# %%
#| export
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


# %%
naive = NaiveMultiHeadAttention(d_model=12, n_heads=3)
print(naive)
with torch.no_grad():
    for h, head in enumerate(naive.heads):
        print(f"head {h} output", tuple(head(x).shape))
    print("concatenated  ", tuple(torch.cat([head(x) for head in naive.heads], dim=-1).shape))
    print("after o_proj  ", tuple(naive(x).shape))

# %% [markdown]
# It works, but it runs $3H$ small matrix products for the projections and $H$ separate
# attentions one after another, in a Python loop. On a GPU each small product is a separate
# kernel launch, too small to keep the hardware busy.
#
# ## 3. The efficient version: one projection, reshape, one batched attention
#
# The book writes a linear layer as $y = x W$ with $W$ of shape $(d_\text{in}, d_\text{out})$
# (`nn.Linear` stores the transpose, $(d_\text{out}, d_\text{in})$). Head $h$ computes
# $q^{(h)} = x W_q^{(h)}$ with $W_q^{(h)}$ of shape $(C, D)$. Put the $H$ matrices side by side,
# $W_q = [W_q^{(0)} \, W_q^{(1)} \cdots W_q^{(H-1)}]$ of shape $(C, HD) = (C, C)$: one product
# $x W_q$ gives every head's queries at once, head $h$ in columns $hD \ldots (h+1)D - 1$. In
# code, where each head's `weight` is stored as $(D, C)$, that is `torch.cat(..., dim=0)`.
# A `view` then splits the last axis into `(H, D)`, and a `transpose` moves the heads next to
# the batch axis, where batched matrix products treat them as more batch:
#
# | step | shape |
# |---|---|
# | input `x` | `(B, T, C)` |
# | `x @ W_q` (one big linear) | `(B, T, C)` |
# | `.view(B, T, H, D)` (split the last axis) | `(B, T, H, D)` |
# | `.transpose(1, 2)` (heads become a batch axis) | `(B, H, T, D)` |
# | attention, per batch and head | `(B, H, T, D)` |
# | `.transpose(1, 2).reshape(B, T, C)` (merge the heads) | `(B, T, C)` |
# | `o_proj` | `(B, T, C)` |
#
# The drawing follows one position's $C = 12$ features (colour = head) through the split and
# back:


# %% tags=["hide-input"] jupyter={"source_hidden": true}
def draw_features(ax, x0, y0, n, colours, label, width=0.5):
    """A row of n feature boxes starting at (x0, y0), coloured per feature."""
    for i in range(n):
        ax.add_patch(Rectangle((x0 + i * width, y0), width, 0.5, fc=colours[i], ec="black"))
    ax.text(x0 + n * width / 2, y0 + 0.75, label, ha="center", fontsize=9)


head_colours = ["tab:blue", "tab:orange", "tab:green"]
C_demo, H_demo, D_demo = 12, 3, 4
per_feature = [head_colours[i // D_demo] for i in range(C_demo)]
fig, ax = plt.subplots(figsize=(12, 2.6))
draw_features(ax, 0, 0, C_demo, per_feature, "q_proj(x)[b, t]: (C,) = 12 features")
for h in range(H_demo):  # (B, T, H, D) -> (B, H, T, D): each head is its own little sequence
    draw_features(ax, 8 + 2.6 * h, 0, D_demo, [head_colours[h]] * D_demo, f"head {h}: (D,)")
draw_features(ax, 16.5, 0, C_demo, per_feature, "merged: (C,) again")
for x_from, x_to, text in [
    (6.1, 7.9, "view (H, D)\ntranspose"),
    (15.5, 16.4, "transpose\nreshape"),
]:
    _ = ax.annotate("", (x_to, 0.25), (x_from, 0.25), arrowprops={"arrowstyle": "->"})
    ax.text((x_from + x_to) / 2, -0.55, text, ha="center", fontsize=8)
ax.set_xlim(-0.3, 22.8)
ax.set_ylim(-1.0, 1.2)
ax.axis("off")
ax.set_title("split into heads and merge back (colour = head; shapes of one position)")
plt.show()
plt.close(fig)

# %% [markdown]
# The whole efficient layer, at nanoGPT's size. It goes one step further: the three
# projections are one, $W_{qkv} = [W_q \, W_k \, W_v]$ of shape $(C, 3C)$, whose output is split
# in three. GPT-2's checkpoints store attention that way (one `c_attn` layer of width $3C$), as
# does PyTorch's `nn.MultiheadAttention` (`in_proj_weight`). The attention itself is PyTorch's
# fused `F.scaled_dot_product_attention` (section 8 says what "fused" buys).


# %%
class TinyMultiHeadAttention(nn.Module):
    """Causal multi-head attention as in nanoGPT: x (B, T, C) -> (B, T, C)."""

    def __init__(self, d_model, n_heads, bias=False):
        super().__init__()
        self.n_heads = n_heads
        self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # W_qkv = [W_q W_k W_v]
        self.o_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x):
        B, T, C = x.shape
        H, D = self.n_heads, C // self.n_heads
        q, k, v = self.qkv_proj(x).split(C, dim=-1)  # three (B, T, C)
        q = q.view(B, T, H, D).transpose(1, 2)  # (B, T, C) -> (B, T, H, D) -> (B, H, T, D)
        k = k.view(B, T, H, D).transpose(1, 2)
        v = v.view(B, T, H, D).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        out = out.transpose(1, 2).reshape(B, T, C)  # merge the heads: (B, T, H, D) -> (B, T, C)
        return self.o_proj(out)


# %% [markdown]
# To show it computes the same function as the naive list of heads, stack the heads' weights
# into its `qkv_proj` and copy `o_proj`:

# %%
tiny = TinyMultiHeadAttention(12, 3)
with torch.no_grad():
    stacked = {  # each (H * D, C) = (12, 12): head h in rows h*D .. (h+1)*D - 1
        name: torch.cat([getattr(head, name).weight for head in naive.heads], dim=0)
        for name in ("q_proj", "k_proj", "v_proj")
    }
    tiny.qkv_proj.weight.copy_(torch.cat(list(stacked.values()), dim=0))  # (3C, C) = (36, 12)
    tiny.o_proj.load_state_dict(naive.o_proj.state_dict())
    print(
        "stacked W_q^T",
        tuple(stacked["q_proj"].shape),
        " W_qkv^T",
        tuple(tiny.qkv_proj.weight.shape),
    )
    same = torch.allclose(tiny(x), naive(x), atol=1e-6)
print("TinyMultiHeadAttention == list of heads:", same)
assert same

# %% [markdown]
# The transpose before the merge matters: `out.reshape(B, T, C)` without it would run without
# error and mix up positions and heads. The `.transpose(1, 2)` makes the tensor non-contiguous,
# which is why the merge uses `reshape` (which copies when needed) rather than `view`.
#
# ## 4. Grouped-query and multi-query attention
#
# When a model generates text it keeps the keys and values of every past token of every layer
# (the **KV cache**, chapter 9), so that each new token only computes its own. That cache grows
# with the context and soon dominates the memory of inference. Queries are never cached.
#
# **Multi-query attention** (MQA, Shazeer 2019) keeps $H$ query heads but only one key head and
# one value head, shared by all query heads. **Grouped-query attention** (GQA, Ainslie et al.
# 2023) sits in between: $H_{kv}$ key/value heads, each shared by a group of $G = H / H_{kv}$
# query heads. Llama-3.1-8B has 32 query heads and 8 KV heads: groups of 4. What is shared is
# the *K and V projections* of a group (fewer columns in $W_k$ and $W_v$, fewer cached
# vectors); every query head keeps its own query projection. Query head $h$ reads K/V head
# $\lfloor h / G \rfloor$, the convention of Llama checkpoints:

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 3, figsize=(13, 2.6))
group_colours = plt.get_cmap("tab10").colors
for ax, (title, n_kv) in zip(
    axes, [("MHA: H_kv = H = 8", 8), ("GQA: H_kv = 2", 2), ("MQA: H_kv = 1", 1)]
):
    G = 8 // n_kv
    for h in range(8):  # query heads on top, each joined to the K/V head it reads
        ax.add_patch(Rectangle((h, 1.5), 0.8, 0.5, fc=group_colours[h // G], ec="black"))
        kv_x = (h // G) * G + G / 2 - 0.1  # K/V heads sit under the middle of their group
        _ = ax.plot([h + 0.4, kv_x], [1.5, 0.5], color=group_colours[h // G], lw=1)
    for j in range(n_kv):
        ax.add_patch(Rectangle((j * G + G / 2 - 0.5, 0), 0.8, 0.5, fc=group_colours[j], ec="black"))
    ax.text(-0.3, 1.75, "q", ha="right", va="center")
    ax.text(-0.3, 0.25, "k, v", ha="right", va="center")
    ax.set_xlim(-1.2, 8.2)
    ax.set_ylim(-0.2, 2.3)
    ax.set_title(f"{title}: groups of {G}")
    ax.axis("off")
plt.show()
plt.close(fig)

# %% [markdown]
# The simplest way to compute it: repeat each K/V head $G$ times so that there are $H$ of them
# again, then run ordinary multi-head attention. That is what the teaching path does:


# %%
#| export
def repeat_kv(x: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Share each K/V head with ``n_groups`` query heads, by copying it.

    ``x (B, H_kv, T, D) -> (B, H_kv * n_groups, T, D)``; query head ``h`` is served by K/V head
    ``h // n_groups`` (the convention of Llama checkpoints). ``n_groups == 1`` returns ``x``.
    """
    check_int(n_groups, "n_groups")
    ### BEGIN SOLUTION
    # TASK: x itself if n_groups == 1, else each K/V head copied n_groups times in a row (dim 1)
    return x if n_groups == 1 else x.repeat_interleave(n_groups, dim=1)
    ### END SOLUTION


# %%
kv = torch.arange(2.0).view(1, 2, 1, 1).expand(1, 2, 3, 1)  # 2 KV heads holding 0 and 1, T = 3
shared = repeat_kv(kv, 3)  # 6 query heads, groups of 3
print("kv heads", tuple(kv.shape), "->", tuple(shared.shape))
print("K/V head seen by query heads 0..5:", shared[0, :, 0, 0].int().tolist())

# %% [markdown]
# `repeat_interleave` copies: for Llama-3.1-8B's groups of 4 it writes four times the keys and
# values, every layer, every step. PyTorch 2.5 and later can share the heads inside the fused
# kernel instead: `F.scaled_dot_product_attention(..., enable_gqa=True)` takes `k` and `v` with
# $H_{kv}$ heads as they are. The exported layer uses it (exercise 2 builds the same thing from
# strided views); the results agree:

# %%
q_g = torch.randn(2, 8, 10, 16)  # (B, H, T, D): 8 query heads
k_g, v_g = torch.randn(2, 2, 2, 10, 16).unbind(0)  # (B, H_kv, T, D): 2 K/V heads
copied = F.scaled_dot_product_attention(q_g, repeat_kv(k_g, 4), repeat_kv(v_g, 4), is_causal=True)
in_kernel = F.scaled_dot_product_attention(q_g, k_g, v_g, is_causal=True, enable_gqa=True)
print("repeat_kv then attention == enable_gqa:", torch.allclose(copied, in_kernel, atol=1e-6))
print("bytes of K copied by repeat_kv:", repeat_kv(k_g, 4).nbytes, "instead of", k_g.nbytes)
assert torch.allclose(copied, in_kernel, atol=1e-6)

# %% [markdown]
# How much does GQA save? Per token and per layer the cache holds one key and one value vector
# for each KV head: $2 \cdot H_{kv} \cdot D$ numbers. For Llama-3.1-8B (32 layers, $D = 128$)
# in bfloat16 (2 bytes) at a context of 8,192 tokens:
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
    f"{'attention':<14}{'KV heads':>9}{'per token':>12}{'8,192 tokens':>14}{'131,072 tokens':>16}"
)
for name, n_kv in [("MHA", 32), ("GQA (Llama)", 8), ("MQA", 1)]:
    per_token = kv_cache_bytes(32, n_kv, 128, 1)
    at_8k = kv_cache_bytes(32, n_kv, 128, 8192) / GiB
    at_128k = kv_cache_bytes(32, n_kv, 128, 131072) / GiB
    print(f"{name:<14}{n_kv:>9}{per_token // 1024:>8} KiB{at_8k:>10.3f} GiB{at_128k:>12.1f} GiB")
assert kv_cache_bytes(32, 8, 128, 8192) == 1 * GiB
assert kv_cache_bytes(32, 32, 128, 8192) == 4 * GiB
print(f"for comparison, the weights: 8.03B parameters in bf16 = {8.03e9 * 2 / GiB:.1f} GiB")

# %% [markdown]
# At Llama-3.1's full context of 131,072 tokens, GQA's cache is 16 GiB per sequence, more than the
# model's own weights (15.0 GiB); with full MHA it would be 64 GiB. GQA also shrinks the
# projections: $W_k$ and $W_v$ are $4096 \times 1024$ instead of $4096 \times 4096$ in each layer.
# The price is some quality, which the GQA paper found small when the groups are not too large.

# %% [markdown]
# ## 5. Rotary position embeddings (RoPE)
#
# Attention itself is blind to order (chapter 3): apart from what the causal mask lets each position
# see, shuffling the earlier tokens changes nothing (exercise 3). GPT-2 adds a learned position
# vector to each token embedding before the first block. Llama adds nothing to the embeddings;
# instead, inside every attention layer, it **rotates** each query and key by an angle proportional
# to its position. We build it in four steps: the quarter turn of a pair, applying the rotation, a
# module that keeps a table of angles, and Llama 3.1's frequency scaling.
#
# ### 5.1 Pairs and the quarter turn
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
# turns every pair $(a, b)$ into $(-b, a)$, a quarter turn. Which features form a pair is a
# convention, and both are in use:
#
# - **interleaved** (Meta's original Llama code): pair $i$ is features $(2i, 2i+1)$;
# - **half** (Hugging Face's `rotate_half`, GPT-NeoX): pair $i$ is features $(i, i + D/2)$.

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(2, 1, figsize=(8, 2.8))
pair_colours = plt.get_cmap("tab10").colors
for ax, (layout, pair_of) in zip(
    axes, [("interleaved (Meta)", lambda f: f // 2), ("half (Hugging Face)", lambda f: f % 4)]
):
    for f in range(8):  # D = 8 features, 4 pairs; colour = pair
        ax.add_patch(Rectangle((f, 0), 0.9, 0.9, fc=pair_colours[pair_of(f)], ec="black"))
        ax.text(f + 0.45, 0.45, str(f), ha="center", va="center", color="white")
    for i in range(4):  # an arc above the two features of each pair
        a, b = [f for f in range(8) if pair_of(f) == i]
        _ = ax.annotate(
            "",
            (b + 0.45, 0.95),
            (a + 0.45, 0.95),
            arrowprops={
                "arrowstyle": "-",
                "connectionstyle": "arc3,rad=-0.4",
                "color": pair_colours[i],
            },
        )
    ax.text(-0.3, 0.45, layout, ha="right", va="center")
    ax.set_xlim(-4.2, 8.1)
    ax.set_ylim(-0.1, 2.1)
    ax.axis("off")
axes[0].set_title("which features form a pair (D = 8, colour = pair i, features numbered)")
plt.show()
plt.close(fig)


# %%
#| export
ROPE_LAYOUTS = ("half", "interleaved")


def rotate_pairs(x: torch.Tensor, layout: str = "half") -> torch.Tensor:
    """Turn every rotary pair ``(a, b)`` of the last axis into ``(-b, a)``: a quarter turn.

    ``x (..., D)`` with ``D`` even. ``"half"`` (Hugging Face's ``rotate_half``): pair ``i`` is
    ``(x[i], x[i + D/2])``; ``"interleaved"`` (Meta's release): ``(x[2i], x[2i + 1])``.
    """
    check_choice(layout, "layout", ROPE_LAYOUTS)
    check_rope_input(x)  # floating, even last axis
    ### BEGIN SOLUTION
    # TASK: each pair (a, b) -> (-b, a); pairs are the two halves ("half") or neighbours
    if layout == "half":
        a, b = x.chunk(2, dim=-1)  # (..., D/2) each
        return torch.cat((-b, a), dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]  # (..., D/2) each
    return torch.stack((-b, a), dim=-1).flatten(-2)  # (..., D/2, 2) -> (..., D)
    ### END SOLUTION


# %%
features = torch.arange(1.0, 9.0)  # D = 8
print("x                   ", features.int().tolist())
for layout in ROPE_LAYOUTS:
    print(f"rotate_pairs {layout:<12}", rotate_pairs(features, layout).int().tolist())
assert torch.equal(rotate_pairs(rotate_pairs(features)), -features)  # two quarter turns

# %% [markdown]
# ### 5.2 Applying the rotation
#
# With the cosines and sines of every position's angles laid out like the features (each
# angle twice, at the two features of its pair), the rotation is one line. They are computed in
# float32 and cast to the dtype of the queries only here, as Hugging Face does: a bfloat16
# model then rotates by accurate angles, rounded once.


# %%
#| export
def apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, layout: str = "half"
) -> torch.Tensor:
    """Rotate the pairs of ``x``: ``x * cos + rotate_pairs(x) * sin``, same shape and dtype.

    ``x``: queries or keys ``(B, H, T, D)`` (or ``(..., T, D)``). ``cos``, ``sin``: ``(T, D)``
    shared by the batch, or ``(B, T, D)`` per sequence, in ``layout`` (as
    :meth:`RotaryEmbedding.cos_sin` returns them).
    """
    check_cos_sin(x, cos, sin)
    ### BEGIN SOLUTION
    # TASK: x * cos + rotate_pairs(x) * sin, in x's dtype; (B, T, D) angles serve every head
    if x.dim() == 4 and cos.dim() == 3:  # (B, T, D) -> (B, 1, T, D): same angles for every head
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_pairs(x, layout) * sin
    ### END SOLUTION


# %% [markdown]
# Take one pair $(1, 0)$ and rotate it to positions $0, 1, \ldots, 7$ with $D = 8$ and base
# 10,000: pair 0 ($\theta_0 = 1$ radian per position) goes round the circle, pair 1
# ($\theta_1 = 0.1$) creeps, pair 3 ($\theta_3 = 0.001$) hardly moves. The length never changes.

# %%
theta = 10000.0 ** (-torch.arange(0, 8, 2) / 8)  # (D/2,) = (4,)
positions8 = torch.arange(8)
angles8 = (positions8[:, None] * theta).repeat_interleave(2, dim=-1)  # (T, D), interleaved
unit = torch.tensor([1.0, 0.0] * 4).expand(8, 8)  # every pair is (1, 0), at 8 positions
rotated = apply_rope(unit, angles8.cos(), angles8.sin(), "interleaved")
print("theta_i:", [round(t, 4) for t in theta.tolist()])
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for ax, pair in zip(axes, [0, 1, 3]):
    circle = torch.linspace(0, 2 * math.pi, 100)
    _ = ax.plot(circle.cos(), circle.sin(), color="lightgray")
    dots = ax.scatter(rotated[:, 2 * pair], rotated[:, 2 * pair + 1], c=positions8, cmap="viridis")
    ax.set_title(f"pair {pair}: {theta[pair]:.3g} rad / position")
    ax.set_aspect("equal")
    ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), xlabel="feature a (first of the pair)")
axes[0].set_ylabel("feature b (second of the pair)")
fig.colorbar(dots, ax=axes, label="position m")
plt.show()
plt.close(fig)
assert torch.allclose(rotated.norm(dim=-1), unit.norm(dim=-1))

# %% [markdown]
# Why rotating encodes *relative* position: a query rotated by $m\theta$ dotted with a key
# rotated by $n\theta$ equals the unrotated query dotted with the key rotated by $(n - m)\theta$,
# because $R(m\theta)^\top R(n\theta) = R((n-m)\theta)$. Only the offset $n - m$ survives.
# Numerically, with one query and one key vector of $D = 16$:

# %%
theta16 = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
q_vec, k_vec = torch.randn(2, 16, dtype=torch.float64).unbind(0)


def rope_score(m, n):
    """q rotated to position m, dotted with k rotated to position n (half layout)."""
    angle_m, angle_n = (torch.cat([p * theta16] * 2) for p in (m, n))
    q_m = apply_rope(q_vec[None], angle_m.cos()[None], angle_m.sin()[None])
    k_n = apply_rope(k_vec[None], angle_n.cos()[None], angle_n.sin()[None])
    return float((q_m * k_n).sum())


print(f"{'m':>6}{'n':>6}{'n - m':>7}{'score':>9}")
for m, n in [(5, 2), (105, 102), (1005, 1002), (5, 3), (105, 103), (5, 5), (2000, 2000)]:
    print(f"{m:>6}{n:>6}{n - m:>7}{rope_score(m, n):>9.3f}")
assert abs(rope_score(5, 2) - rope_score(1005, 1002)) < 1e-9
assert abs(rope_score(5, 2) - rope_score(5, 3)) > 1e-2

# %% [markdown]
# ### 5.3 The module: a table of angles, computed once
#
# Every layer of a model rotates its queries and keys by the same angles, so a
# `RotaryEmbedding` keeps the cosines and sines of positions $0, 1, \ldots, n-1$ in a float32
# table, built the first time they are needed on a device and grown (at least doubled) when a
# longer sequence comes. One instance can serve all layers of a model. The table is not a
# parameter nor a buffer: it never enters `state_dict`, `model.to(torch.bfloat16)` cannot round
# it, and on a new device (or after building a model on the `meta` device and `to_empty()`) it
# is simply built again. Other positions, such as the new tokens of a KV cache or the rows of a
# left-padded batch, come with their own `positions` tensor; `cos_sin` computes their angles with
# the same formula.


# %%
#| export
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


# %% [markdown]
# `RotaryEmbedding` adds the table and the rotation itself:


# %%
#| export
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


# %% [markdown]
# The module rotates like the hand-made angles above, the table is built once and then only
# sliced (the same storage comes back), and positions given explicitly get the same numbers:

# %%
rope8 = RotaryEmbedding(8, layout="interleaved")
print(rope8)
print("same rotation as by hand:", torch.allclose(rope8(unit), rotated, atol=1e-6))
cos_a, _ = rope8.table(8)
cos_b, _ = rope8.table(100)
print(
    "table rows built:",
    rope8._tables[torch.device("cpu")][0].shape[0],
    "| same storage:",
    cos_a.data_ptr() == cos_b.data_ptr(),
)
cos_c, _ = rope8.cos_sin(torch.arange(40, 48))  # (T,) positions 40..47, computed
print("cos_sin(40..47) == table rows 40..47:", torch.allclose(cos_c, cos_b[40:48], atol=1e-6))
assert torch.allclose(rope8(unit), rotated, atol=1e-6) and cos_a.data_ptr() == cos_b.data_ptr()
assert torch.allclose(cos_c, cos_b[40:48], atol=1e-6)

# %% [markdown]
# Rotations keep lengths, so RoPE changes the *angle* between a query and a key, never their
# norms; position 0 is not rotated at all:

# %%
rope16 = RotaryEmbedding(16)
x4 = torch.randn(2, 4, 10, 16)  # (B, H, T, D)
x4_rot = rope16(x4)
norm_change = float((x4_rot.norm(dim=-1) - x4.norm(dim=-1)).abs().max())  # float32 rounding
print("largest change of any norm below 1e-5:", norm_change < 1e-5)
print("position 0 unchanged:                 ", torch.allclose(x4_rot[..., 0, :], x4[..., 0, :]))
assert norm_change < 1e-5

# %% [markdown]
# **The base.** The wavelength of pair $i$, the number of positions for one full turn, is
# $2\pi / \theta_i = 2\pi \cdot \text{base}^{2i/D}$. The fastest pair always turns once every
# $2\pi \approx 6.3$ positions; the slowest, with $D = 128$, turns much more slowly at base
# 500,000 (Llama-3, context 8,192) than at base 10,000 (Llama-2, context 4,096):

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.2))
for base, label in [(10000.0, "base 10,000 (Llama-2)"), (500000.0, "base 500,000 (Llama-3.x)")]:
    wavelengths = 2 * math.pi / RotaryEmbedding(128, base=base).inv_freq()
    _ = ax.semilogy(wavelengths, label=label)
    longest = round(float(wavelengths[-1]), -3)  # float32: its last digits may vary by CPU
    print(f"{label:<26} wavelengths {float(wavelengths[0]):.2f} ... about {longest:,.0f}")
_ = ax.axhline(8192, color="gray", linestyle=":", label="8,192 positions (Llama-3 context)")
ax.set_xlabel("pair i (head_dim 128)")
ax.set_ylabel("wavelength (positions)")
_ = ax.legend()
plt.show()
plt.close(fig)

# %% [markdown]
# What a larger base does to the scores: take a key equal to the query. Rotated $\Delta$
# positions apart, their score is $\sum_i |\text{pair}_i|^2 \cos(\Delta\theta_i)$; averaged over
# random directions every pair carries the same share, so the expected score, relative to
# $\Delta = 0$, is the mean of $\cos(\Delta\theta_i)$ over the pairs. It is largest at offset 0
# and falls, with ripples, as tokens move apart; with base 500,000 it falls more slowly, so
# tokens far apart can still match:

# %%
offsets = torch.logspace(0, 17, 400, base=2.0)  # 1 .. 131,072 positions
fig, ax = plt.subplots(figsize=(7.5, 3.2))
for base in (10000.0, 500000.0):
    inv_freq = RotaryEmbedding(128, base=base).inv_freq().double()
    similarity = torch.cos(offsets.double()[:, None] * inv_freq).mean(dim=-1)
    _ = ax.semilogx(offsets, similarity, label=f"base {base:,.0f}")
    at_1k = float(torch.cos(1024 * inv_freq).mean())
    print(
        f"base {base:>9,.0f}: expected score of a key equal to the query, 1,024 apart: {at_1k:.2f}"
    )
ax.set_xlabel("offset between query and key (positions)")
ax.set_ylabel("mean of cos(offset * theta_i)")
_ = ax.legend()
plt.show()
plt.close(fig)
slow, fast = (
    float(torch.cos(1024 * RotaryEmbedding(128, base=b).inv_freq()).mean()) for b in (5e5, 1e4)
)
assert slow > fast + 0.2

# %% [markdown]
# ### 5.4 Llama 3.1's frequency scaling
#
# Llama-3.1 stretched its context from the 8,192 tokens of pre-training to 131,072. To keep the
# slow pairs from meeting angles they never saw in training, it divides their frequencies by 8
# (pairs with wavelengths above 8,192 positions), keeps the fast pairs (wavelengths below 2,048)
# as they are, and interpolates in between. `RotaryEmbedding(..., scaling={...})` takes the
# same dictionary as the `rope_scaling` entry of the model's Hugging Face `config.json`.


# %%
#| export
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
eight = torch.isclose(ratio, torch.tensor(8.0))
print(
    "pairs unchanged:",
    int((ratio == 1).sum()),
    "| 8 times slower:",
    int(eight.sum()),
    "| in between:",
    int(((ratio > 1) & ~eight).sum()),
)
assert float(ratio.min()) == 1.0 and math.isclose(float(ratio.max()), 8.0, rel_tol=1e-5)
fig, ax = plt.subplots(figsize=(7.5, 3.2))
_ = ax.semilogy(2 * math.pi / plain, label="Llama-3 (base 500,000)")
_ = ax.semilogy(2 * math.pi / scaled, "--", label="Llama-3.1 (base 500,000, llama3 scaling)")
_ = ax.axhline(8192, color="gray", linestyle=":", label="8,192: slower above (x 8)")
_ = ax.axhline(2048, color="gray", linestyle="-.", label="2,048: unchanged below")
ax.set_xlabel("pair i (head_dim 128)")
ax.set_ylabel("wavelength (positions)")
_ = ax.legend(fontsize=8)
plt.show()
plt.close(fig)

# %% [markdown]
# ### 5.5 Two layouts, one permutation
#
# Meta's release pairs adjacent features $(2i, 2i+1)$; Hugging Face's code pairs feature $i$
# with feature $i + D/2$. The rotation is the same, only the *order of the features* differs.
# Reorder a vector in Meta's layout with the permutation
# $[0, 2, 4, \ldots, D-2, 1, 3, \ldots, D-1]$ and pair $i$ lands at positions $(i, i + D/2)$.
# So rotating in one layout then permuting equals permuting then rotating in the other. For a
# checkpoint, the permutation is applied to the rows of the stored $W_q^\top$ and $W_k^\top$
# (the output features of `q_proj` and `k_proj`), head by head:


# %%
#| export
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


# %%
perm = rope_permutation(8)
print("permutation for D = 8:", perm.tolist())
x8 = torch.randn(5, 8)  # five positions, one head
rotate_then_permute = RotaryEmbedding(8, layout="interleaved")(x8)[:, perm]
permute_then_rotate = RotaryEmbedding(8, layout="half")(x8[:, perm])
print("same result:", torch.allclose(rotate_then_permute, permute_then_rotate, atol=1e-6))
assert torch.allclose(rotate_then_permute, permute_then_rotate, atol=1e-6)

# %% [markdown]
# A dot product does not care about the order of features, as long as query and key use the
# same order. So a checkpoint in Meta's layout runs with Hugging Face's `rotate_half` once the
# rows of `q_proj` and `k_proj` are permuted head by head (`interleaved_to_half`), which is what
# Hugging Face's Llama conversion script does. `v_proj` and `o_proj` stay as they are.
# Section 6 checks this on a whole layer.

# %% [markdown]
# ## 6. The exported `MultiHeadAttention`
#
# Everything comes together in one layer that chapter 7 stacks into GPT-2 and Llama models.
# Its projections are named `q_proj`, `k_proj`, `v_proj`, `o_proj`, as in the Hugging Face
# Llama checkpoints (Meta's own checkpoints say `wq`, `wk`, `wv`, `wo`, and GPT-2's a fused
# `c_attn`), so that loading Hugging Face weights is a table of names. It keeps the three input
# projections apart, because with GQA they do not even have the same width. The forward pass has
# two public steps, so that a KV cache (chapter 9) can sit between them. `project` runs the
# three projections, splits each into heads (`view`, `transpose`, as in section 3) and, in a
# layer with RoPE, rotates `q` and `k` (never `v`); `attend` runs the attention (mask, fused
# kernel, `enable_gqa`), merges the heads (`transpose`, `reshape`) and applies `o_proj`:
#
# ```mermaid
# flowchart TD
#     X["x (B, T, C)"]
#     subgraph project
#         Q["q (B, H, T, D)"] --> RQ["RoPE on q"]
#         KV["k, v (B, H_kv, T, D)"] --> RK["RoPE on k"]
#     end
#     subgraph attend
#         A["causal_attention"] --> M["merge heads"]
#         M --> O["o_proj"]
#     end
#     X --> Q
#     X --> KV
#     RK --> C["KV cache (chapter 9)"]
#     RQ --> A
#     C --> A
#     O --> Y["out (B, T, C)"]
# ```
#
# First the attention itself, as a function. It takes a boolean `attn_mask` beside the causal
# rule: a batch of sequences of unequal length is padded on the left (so that every sequence
# ends at the last column, where generation continues), and the padding positions must be
# neither attended to nor, as queries, turned into NaN (a query that may see no key would get
# softmax of nothing, $0/0$). With more keys than queries (a KV cache) the causal triangle is
# aligned bottom-right: the queries are the *last* $T_q$ of $T_k$ positions.


# %%
#| export
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


# %% [markdown]
# The mask for a batch of two sequences, the second shorter by three tokens and padded on the
# left: `attn_mask` marks its real tokens, the causal triangle is combined with it (AND), and the
# three padding queries are blind.

# %%
lengths = [8, 5]
keys_real = torch.tensor([[i >= 8 - n for i in range(8)] for n in lengths])  # (B, Tk) left-padded
attn_mask = keys_real[:, None, None, :]  # (B, 1, 1, Tk): broadcasts over heads and queries
combined = torch.ones(8, 8, dtype=torch.bool).tril() & attn_mask  # (B, 1, Tq, Tk)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for b, ax in enumerate(axes):
    image = ax.imshow(combined[b, 0].int(), cmap="Greens", vmin=0, vmax=1)
    ax.set(
        title=f"sequence {b}: {lengths[b]} real tokens",
        xlabel="key position",
        ylabel="query position",
    )
    ax.set_xticks(range(8))
    ax.set_yticks(range(8))
fig.colorbar(image, ax=axes, ticks=[0, 1], label="1 = may attend")
plt.show()
plt.close(fig)
print(
    "queries of sequence 1 that see no key:", (~combined[1, 0].any(-1)).nonzero().flatten().tolist()
)

# %% [markdown]
# Now the layer, in three short classes, one for each box of the diagram and one that joins
# them. The first owns the four projections and the first step, `project`. The argument checks
# are one-line calls into `llmbook.checks`; they compare shapes and dtypes only, never values, so
# they cost no device synchronisation and `torch.compile` traces through them (section 9).


# %%
#| export
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
        ### BEGIN SOLUTION
        # TASK: B, T of x; q (B, H, T, D), k and v (B, H_kv, T, D): x projected, cut into heads
        (B, T, _), D = x.shape, self.head_dim
        q = self.q_proj(x).view(B, T, self.n_heads, D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, D).transpose(1, 2)  # (B, H_kv, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, D).transpose(1, 2)
        ### END SOLUTION
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


# %% [markdown]
# The second step takes heads however they were made: straight from `project`, or, with a KV
# cache (chapter 9), keys and values of earlier tokens kept from before, so that `q` has fewer
# positions than `k` and `v`. It runs `causal_attention`, puts the heads side by side again
# (the merge of section 3) and applies `o_proj`. Its two settings, `dropout` (on the attention
# weights, in training mode only) and `impl`, are the constructor's business in the last class;
# here they have their defaults.


# %%
#| export
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


# %% [markdown]
# The layer itself takes every argument, documents and checks them, and its `forward` is the
# two steps in a row:


# %%
#| export
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


# %% [markdown]
# Turning the naive layer of section 2 into this one is the stacking of section 3, written once:


# %%
#| export
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


# %%
mha = stack_heads(naive)
print(mha)
with torch.no_grad():
    out_naive, out_tiny, out_fused = naive(x), tiny(x), mha(x)
    mha.impl = "naive"
    out_teaching = mha(x)
    mha.impl = "fused"
checks = {
    "list of heads == MultiHeadAttention (fused)": torch.allclose(out_naive, out_fused, atol=1e-6),
    "TinyMultiHeadAttention == MultiHeadAttention": torch.allclose(out_tiny, out_fused, atol=1e-6),
    "fused path == teaching path (impl='naive')  ": torch.allclose(
        out_fused, out_teaching, atol=1e-6
    ),
}
for claim, holds in checks.items():
    print(claim, holds)
assert all(checks.values())

# %% [markdown]
# ### Padded batches
#
# Two sentences of the corpus of different lengths, in one batch: the shorter one is padded on
# the left with id 0 (any id would do), `attn_mask` hides the padding keys, and `positions`
# restarts at 0 at each sentence's first real token. RoPE would see the same relative offsets
# without the restart (left padding shifts every real token by the same amount); restarting keeps
# the absolute angles identical too, as Hugging Face does, so the outputs match the unpadded run
# to rounding, and it is what learned absolute positions (GPT-2) need. The real tokens' outputs
# then equal those of the sentence run alone, and the padding rows are 0 (no bias in `o_proj`),
# not NaN:

# %%
pair = ["Kai and Ray had been best friends since they were babies.", "Kai smiled."]
pair_ids = [tok.encode(s) for s in pair]
T_pad = max(len(p) for p in pair_ids)
n_pad = T_pad - len(pair_ids[1])
batch_ids = torch.tensor([[0] * (T_pad - len(p)) + p for p in pair_ids])  # (B, T) left-padded
real = torch.tensor([[i >= T_pad - len(p) for i in range(T_pad)] for p in pair_ids])  # (B, T)
positions_pad = (real.cumsum(dim=-1) - 1).clamp(min=0)  # (B, T): 0 at each first real token
rope_layer = MultiHeadAttention(12, 3, n_kv_heads=1, rope=RotaryEmbedding(4))
with torch.no_grad():
    out_pad = rope_layer(embedding(batch_ids), positions_pad, attn_mask=real[:, None, None, :])
    alone = rope_layer(embedding(torch.tensor(pair_ids[1]))[None])  # the short one on its own
print("batch", tuple(batch_ids.shape), "| real tokens per row:", real.sum(-1).tolist())
print("positions of row 1:", positions_pad[1].tolist())
same = torch.allclose(out_pad[1, n_pad:], alone[0], atol=1e-6)
print("short sentence, padded == alone:", same)
print("padding rows are exactly 0:", bool((out_pad[1, :n_pad] == 0).all()))
assert same and bool((out_pad[1, :n_pad] == 0).all()) and bool(torch.isfinite(out_pad).all())

# %% [markdown]
# ### A Llama-style layer, and real sizes
#
# A toy layer with GQA and RoPE: 8 query heads, 2 KV heads, $D = 8$. `project` shows the
# shapes before attention; the keys and values have only 2 heads.

# %%
llama_like = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8, base=500000.0))
print(llama_like)
x64 = torch.randn(2, 10, 64)  # (B, T, C)
with torch.no_grad():
    q, k, v = llama_like.project(x64)
    out = llama_like(x64)
print("q", tuple(q.shape), " k", tuple(k.shape), " v", tuple(v.shape), " out", tuple(out.shape))
print("parameters:", {name: p.numel() for name, p in llama_like.named_parameters()})
print("state_dict keys:", list(llama_like.state_dict()))  # no RoPE entries

# %% [markdown]
# The same class at GPT-2 small's and Llama-3.1-8B's sizes: Llama-3.1-8B with its RoPE (base
# 500,000 and the llama3 scaling of section 5.4; without the scaling it would be Llama-3-8B's
# RoPE). The Llama layer is built on PyTorch's `meta` device, which records shapes without
# allocating memory, so we count its parameters without 168 MB of random numbers.


# %%
def count(module):
    return sum(p.numel() for p in module.parameters())


gpt2_attn = MultiHeadAttention(768, 12, bias=True)
print(gpt2_attn)
print(
    f"GPT-2 small attention: {count(gpt2_attn):,} parameters per layer, {12 * count(gpt2_attn):,} in 12"
)
llama31_rope = RotaryEmbedding(128, base=500000.0, scaling=llama31_scaling)
with torch.device("meta"):
    llama_attn = MultiHeadAttention(4096, 32, n_kv_heads=8, rope=llama31_rope)
    llama_mha = MultiHeadAttention(4096, 32)  # the same layer without GQA, for comparison
print(llama_attn)
print(f"Llama-3.1-8B attention: {count(llama_attn):,} per layer, {32 * count(llama_attn):,} in 32")
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
# `q_proj` and `k_proj` rows were permuted with `interleaved_to_half` (`k_proj` has
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
# some to earlier occurrences of the current token. Olsson et al. (2022) traced in-context
# copying to "induction heads", which work with a previous-token head in an earlier layer to
# attend to the token that *followed* an earlier occurrence of the current one (after "... Harry
# Potter ... Harry", look at "Potter"). We have no trained model yet, so we build four such
# heads **by hand** in one `MultiHeadAttention`, on the sentence of section 1: the input of each
# position is the concatenation of a random vector for its token id (16 features, the same for
# the same id) and a one-hot position (16 features); each head's $W_q$ and $W_k$ pick what it
# compares.
#
# | head | query of position $i$ | key of position $j$ | large score when |
# |---|---|---|---|
# | 0 previous token | one-hot of $i - 1$ | one-hot of $j$ | $j = i - 1$ |
# | 1 first token | the constant $e_0$ | $e_0$ only at $j = 0$ | $j = 0$ |
# | 2 same token | token vector of $i$ | token vector of $j$ | same token id |
# | 3 average | zero | anything | every visible position alike |

# %%
T_s = len(tokens)  # 16 tokens of "Ruby was a quiet girl ..."
token_vectors = F.normalize(torch.randn(tok.vocab_size, 16), dim=-1)  # one unit vector per id
inputs = torch.zeros(1, T_s, 64)  # (B, T, C): features 0-15 token, 16-31 position, rest 0
inputs[0, :, :16] = token_vectors[ids]
inputs[0, :, 16 : 16 + T_s] = torch.eye(T_s)
heads_layer = MultiHeadAttention(64, 4)  # 4 heads of D = 16
sharp = 40.0  # scores of 40 / sqrt(16) = 10 make the softmax nearly one-hot
with torch.no_grad():
    Wq = torch.zeros(4, 16, 64)  # (head, D, C): head h's rows of the stored W_q^T
    Wk = torch.zeros(4, 16, 64)
    for p in range(1, 16):
        Wq[0, p - 1, 16 + p] = sharp  # head 0: query of position p is one-hot(p - 1)
    for p in range(16):
        Wk[0, p, 16 + p] = 1.0  #          key of position p is one-hot(p)
    Wq[1, 0, 16:32] = sharp  # head 1: every query is e_0
    Wk[1, 0, 16] = 1.0  #                only position 0 has a key along e_0
    Wq[2, :, :16] = sharp * torch.eye(16)  # head 2: compare token vectors
    Wk[2, :, :16] = torch.eye(16)
    # head 3: query zero, so every visible key scores 0 and gets the same weight
    heads_layer.q_proj.weight.copy_(Wq.reshape(64, 64))
    heads_layer.k_proj.weight.copy_(Wk.reshape(64, 64))
    _, head_weights = heads_layer(inputs, return_weights=True)  # (1, 4, T, T)
print("weights", tuple(head_weights.shape))


# %% tags=["hide-input"] jupyter={"source_hidden": true}
def show_heads(weights, titles, labels, figsize):
    """One heat map per head: queries down, keys across, a shared colorbar."""
    fig, axes = plt.subplots(1, len(titles), figsize=figsize)
    for h, ax in enumerate(axes):
        image = ax.imshow(weights[h], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels if h == 0 else [], fontsize=7)
        ax.set_xlabel("key (attended position)")
        ax.set_title(titles[h], fontsize=10)
    axes[0].set_ylabel("query (attending position)")
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    plt.show()
    plt.close(fig)


titles = ["head 0: previous token", "head 1: first token", "head 2: same token", "head 3: average"]
show_heads(head_weights[0], titles, tokens, (17, 4.6))

# %%
street = tokens.index(" street")  # the second ' quiet' sits just before it
print(f"query {tokens[street]!r} (position {street}), largest weight per head:")
for h in range(4):
    j = int(head_weights[0, h, street].argmax())
    print(
        f"  head {h}: position {j} ({tokens[j]!r}) with weight {float(head_weights[0, h, street, j]):.2f}"
    )
first_quiet, second_quiet = tokens.index(" quiet"), street - 1
print(
    f"head 2, query {tokens[second_quiet]!r}: weights on positions {first_quiet} and {second_quiet}:",
    [round(float(head_weights[0, 2, second_quiet, j]), 2) for j in (first_quiet, second_quiet)],
)
assert int(head_weights[0, 0, street].argmax()) == street - 1
assert int(head_weights[0, 1, street].argmax()) == 0
assert float(head_weights[0, 2, second_quiet, [first_quiet, second_quiet]].sum()) > 0.99

# %% [markdown]
# Each head found a different relation in the same sentence, and `o_proj` receives all four
# answers side by side. In a trained model nobody writes these weights: gradient descent finds
# heads like these because they help predict the next token. A freshly initialised layer, in
# contrast, spreads its weights without any pattern (small random scores), as the first four
# heads of a random GPT-2-sized layer show on random inputs:

# %%
random_layer = MultiHeadAttention(768, 12, bias=True)
with torch.no_grad():
    _, random_weights = random_layer(torch.randn(1, T_s, 768), return_weights=True)
show_heads(
    random_weights[0, :4],
    [f"random head {h}" for h in range(4)],
    [str(i) for i in range(T_s)],
    (15, 4.2),
)
uniform = torch.ones(T_s, T_s).tril() / torch.arange(1, T_s + 1)[:, None]
distance = float((random_weights[0] - uniform).abs().max())
print("largest distance from the uniform causal average:", round(distance, 1))
assert distance < 0.5

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
    nodes = {
        n for n in graph_nodes(layer(x_graph)) if "Attention" in n or n.startswith(attention_steps)
    }
    print(f"{impl}: {sorted(nodes)}")
assert "SoftmaxBackward0" in graph_nodes(layer(x_graph))  # the naive path builds the softmax
layer.impl = "fused"
assert "SoftmaxBackward0" not in graph_nodes(layer(x_graph))  # the fused one never does

# %% [markdown]
# ### Measured: naive vs fused, time and memory
#
# We time forward plus backward of the attention alone (batch 1, 4 heads of $D = 16$) on this
# CPU, for growing $T$, three ways: the fused kernel; a **minimal naive** version, four plain
# lines of matmul, mask, softmax, matmul with no checks; and chapter 4's teaching function, which
# adds argument checks and the guard against fully masked rows. Comparing the fused kernel with
# the teaching function alone would overstate what fusion buys. For memory we count the bytes of
# the tensors autograd keeps for the backward pass (PyTorch's `saved_tensors_hooks`): in training
# these activations grow with $T$ and set the peak. Timings depend on the machine, so the cell's
# output is not compared on replay and only the memory, which does not, is asserted.


# %%
def minimal_attention(q, k, v):
    """Plain causal attention, no checks: softmax(q k^T / sqrt(D), future masked) v."""
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def saved_for_backward_bytes(forward):
    """Bytes of the distinct tensors autograd saves for the backward pass of forward()."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(storages.values())


attention_fns = {
    "minimal": minimal_attention,
    "teaching": lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
    "fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
}

# %%
# NBVAL_IGNORE_OUTPUT
import time

lengths = [64, 128, 256, 512, 1024]
seconds = {name: [] for name in attention_fns}
saved = {name: [] for name in attention_fns}
for T_bench in lengths:
    qkv = [torch.randn(1, 4, T_bench, 16, requires_grad=True) for _ in range(3)]
    runs = {name: [] for name in attention_fns}
    for _ in range(10):  # the three alternate, so that a busy machine slows them alike
        for name, fn in attention_fns.items():
            start = time.perf_counter()
            fn(*qkv).sum().backward()
            runs[name].append(time.perf_counter() - start)
    for name, fn in attention_fns.items():
        seconds[name].append(min(runs[name][1:]))  # fastest of 9 after a warm-up: least disturbed
        saved[name].append(saved_for_backward_bytes(lambda fn=fn, qkv=qkv: fn(*qkv)))
print(
    f"{'T':>6}{'fused ms':>10}{'minimal/fused':>15}{'teaching/fused':>16}"
    f"{'minimal MiB':>13}{'teaching MiB':>14}{'fused MiB':>11}"
)
for i, T_bench in enumerate(lengths):
    tf, tm, tt = (seconds[n][i] for n in ("fused", "minimal", "teaching"))
    print(
        f"{T_bench:>6}{1e3 * tf:>10.2f}{tm / tf:>15.1f}{tt / tf:>16.1f}"
        f"{saved['minimal'][i] / 2**20:>13.2f}{saved['teaching'][i] / 2**20:>14.2f}"
        f"{saved['fused'][i] / 2**20:>11.2f}"
    )
# the naive path keeps at least the (B, H, T, T) float32 weights: 4 * 1024 * 1024 * 4 bytes
assert saved["minimal"][-1] >= 4 * 1024 * 1024 * 4 > 4 * saved["fused"][-1]
assert saved["teaching"][-1] > 1.5 * saved["minimal"][-1]  # the guard keeps more, see below

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 3.6))
for name, style in (("minimal", "o-"), ("teaching", "^-"), ("fused", "s-")):
    _ = ax_t.loglog(lengths, [1e3 * t for t in seconds[name]], style, label=name)
    _ = ax_m.loglog(lengths, [m / 2**20 for m in saved[name]], style, label=name)
ax_t.set(title="forward + backward time", ylabel="ms")
ax_m.set(title="tensors kept for the backward pass", ylabel="MiB")
for ax in (ax_t, ax_m):
    ax.set_xlabel("sequence length T")
    _ = ax.legend()
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# On a log-log plot the naive memory climbs with slope 2 (the $T \times T$ weights) while the
# fused path climbs with slope 1 (only `q`, `k`, `v` and the output, all $T \times D$). The
# teaching function keeps about twice as much as the minimal one (its guard against fully masked
# rows makes extra passes over the $T \times T$ scores, and the masked copy of the weights is a
# second $T \times T$ tensor for autograd to keep) and is no faster, though on a busy machine the
# two times can swap places in a single run. So the fair baseline for what fusion buys is the
# minimal version. On the machine that ran this notebook the fused kernel beat it at long
# sequences (the table; timings vary from run to run), and above all it keeps a fraction of the
# memory, on any machine. `benchmarks/attention.py` repeats these measurements at larger sizes,
# compares `enable_gqa` with `repeat_kv`, and times the whole layer against Hugging Face's
# `LlamaAttention` with the same weights; run `python benchmarks/attention.py` to see the ratios
# on your machine.
#
# ## 9. From notebook to library
#
# The layer is used by chapters 7 to 9 as a library, so it checks its arguments where a user
# calls in, with clear messages, and does so without reading any tensor's values (which on a
# GPU would wait for the device). The checks live in `llmbook.checks` (`check_heads`,
# `check_rope_base`, `check_llama3_scaling`, `check_positions`, `check_qkv`, ...), so each
# appears above as one line. A few of the errors they turn into messages, which otherwise
# would be silent garbage or a traceback from deep inside torch:

# %% tags=["raises-exception"]
RotaryEmbedding(128, base=float("nan"))

# %% tags=["raises-exception"]
RotaryEmbedding(128, scaling={**llama31_scaling, "factor": float("nan")})

# %% tags=["raises-exception"]
rope_layer(embedding(batch_ids), positions_pad.float())

# %% [markdown]
# Because the checks look only at shapes and dtypes, and the table of angles is grown from the
# sequence length (a shape), `torch.compile` traces the whole layer into one graph, with no
# break. The test suite checks it with `fullgraph=True`, which fails on any break:

# %%
compiled = torch.compile(llama_like, fullgraph=True, backend="eager")
with torch.no_grad():
    same = torch.allclose(compiled(x64), llama_like(x64), atol=1e-6)
print("compiled (one graph) == eager:", same)
assert same

# %% [markdown]
# The tests in `tests/test_multihead.py` compare the layer with PyTorch's `nn.MultiheadAttention`
# and with Hugging Face's `LlamaAttention` and rotary embedding (float32 and bfloat16, with
# the Llama 3.1 scaling), and try each bad input of a table, one row per case.
#
# ## Summary
#
# - Multi-head attention runs $H$ heads of width $D = C/H$ side by side, concatenates their
#   outputs and mixes them with an output projection; its projections and matrix products cost
#   what one head of width $C$ costs.
# - The naive list of heads and the efficient layer (one projection, `view` to `(B, T, H, D)`,
#   `transpose` to `(B, H, T, D)`, one batched attention, merge, `o_proj`) are the same
#   function: the big weight matrices are the heads' matrices side by side.
# - Grouped-query attention shares each key/value head among a group of query heads
#   (multi-query: one K/V head for all). It shrinks $W_k$, $W_v$ and above all the KV cache:
#   Llama-3.1-8B at 8k tokens needs 1 GiB per sequence in bf16 instead of 4 GiB. The fused
#   kernel shares the heads in place (`enable_gqa=True`); `repeat_kv` copies them.
# - RoPE rotates pairs of query and key features by position-dependent angles
#   ($\theta_i = \text{base}^{-2i/D}$); lengths are preserved and scores depend only on the
#   offset between positions. Llama-2 uses base 10,000, Llama-3.x 500,000, and Llama-3.1 also
#   slows its low-frequency pairs by up to 8 times (the "llama3" scaling). Meta's adjacent-pairs
#   layout and Hugging Face's split-halves layout differ by a per-head permutation of the rows
#   of `q_proj` and `k_proj`, which leaves every score unchanged.
# - The exported `MultiHeadAttention(d_model, n_heads, n_kv_heads, dropout, bias, rope, impl,
#   qkv_bias)` serves GPT-2 (bias, no RoPE) and Llama (GQA, RoPE, no bias); `project` and
#   `attend` let a KV cache sit in between, and `attn_mask` handles left-padded batches.
# - FlashAttention's idea, an online softmax over tiles, computes exact attention without the
#   $T \times T$ matrix: memory grows with $T$ instead of $T^2$, and fewer bytes move.
#
# ## Exercises
#
# 1. **KV cache budget.** Llama-2-7B has 32 layers, 32 heads of 128 and no GQA; Llama-3.1-8B
#    has 8 KV heads. How many bytes does each need per token in bf16? With 40 GiB of GPU memory
#    left for the cache, how many tokens (summed over all sequences in a batch) fit for each?
# 2. **GQA without copies, by hand.** Compute grouped-query attention without `repeat_kv` and
#    without `enable_gqa`: split the query heads into groups, `q.view(B, H_kv, G, T, D)`, and
#    give the keys and values a group axis with `unsqueeze` and `expand`. Check that the
#    expanded keys share storage with the originals (a stride of 0) and that the result equals
#    `MultiHeadAttention`'s output. Why can't the keys simply be made a `(B, H, T, D)` view?
# 3. **Shifting a whole sequence.** Show with a `MultiHeadAttention` that has RoPE that passing
#    `positions = torch.arange(T) + 1000` instead of the default leaves the output unchanged (up
#    to float rounding). Then show that a layer without RoPE (and with no position embedding
#    before it) gives the same output at the last position when the earlier tokens are
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
