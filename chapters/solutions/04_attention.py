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
# # Chapter 04 solutions: attention
#
# Solutions to the exercises at the end of `chapters/04_attention.ipynb`. They use the functions
# the chapter exported to `llmbook.attention`.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from llmbook import load_tokenizer
from llmbook.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention

_ = torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: masking after the softmax
#
# Take the softmax of all the scores, zero the future, and renormalise each row so that it sums
# to 1 again. For a row $i$ with allowed set $A$, the result is
# $e^{s_j} / \sum_{j' \in A} e^{s_{j'}}$ for $j \in A$: the common factor $\sum_{\text{all}}$
# cancels, which is exactly the softmax over $A$ alone, the same as putting $-\infty$ on the
# forbidden scores.

# %%
T, d = 6, 8
q, k, v = torch.randn(3, T, d).unbind(0)  # each (T, d)
scores = q @ k.T / math.sqrt(d)  # (T, T)

after = torch.softmax(scores, dim=-1) * causal_mask(T)  # zero the future ...
after = after / after.sum(dim=-1, keepdim=True)  # ... and renormalise the rows
_, before = scaled_dot_product_attention(q, k, v, mask=causal_mask(T), return_weights=True)
print("same weights:", torch.allclose(after, before, atol=1e-6))
assert torch.allclose(after, before, atol=1e-6)

# %% [markdown]
# Why $-\infty$ before the softmax is the one used: it is one pass instead of three (softmax,
# multiply, divide), the masked positions never enter the sum, and it is numerically safe. After
# the softmax, a large score at a *forbidden* position can swamp the allowed ones: their
# exponentials underflow to 0, and the renormalisation divides 0 by 0.

# %%
big = scores.clone()
big[0, 5] = 200.0  # a very large score at a position query 0 may not see
after = torch.softmax(big, dim=-1) * causal_mask(T)
after = after / after.sum(dim=-1, keepdim=True)
_, before = scaled_dot_product_attention(q, k, v, mask=causal_mask(T), return_weights=True)
print("mask after softmax, row 0:", [round(value, 3) for value in after[0].tolist()])
print("-inf before softmax, row 0:", [round(value, 3) for value in before[0].tolist()])
assert after[0].isnan().all() and not before.isnan().any()

# %% [markdown]
# ## Exercise 2: attention is order-blind
#
# Without a mask, output row $i$ depends on query $i$ and on the *set* of (key, value) pairs,
# not on their order. Permuting the inputs therefore permutes the outputs in the same way:
# $f(PX) = P f(X)$.

# %%
layer = CausalSelfAttention(d, 4).eval()
x = torch.randn(T, d)
perm = torch.tensor([3, 0, 5, 1, 4, 2])  # any permutation of the T = 6 positions


def unmasked(x):
    return scaled_dot_product_attention(layer.q_proj(x), layer.k_proj(x), layer.v_proj(x))


with torch.no_grad():
    equivariant = torch.allclose(unmasked(x[perm]), unmasked(x)[perm], atol=1e-6)
    causal_equivariant = torch.allclose(layer(x[perm]), layer(x)[perm], atol=1e-6)
print("perm", perm.tolist())
print("no mask:     f(x[perm]) == f(x)[perm]:", equivariant)
print("causal mask: f(x[perm]) == f(x)[perm]:", causal_equivariant)
assert equivariant and not causal_equivariant

# %% [markdown]
# With the causal mask the set of visible positions depends on the order (position 0 sees only
# itself), so the equivalence breaks. But the mask does not make attention aware of order either:
# the output at position $t$ depends on the token at $t$ and on the *set* of tokens before it, not
# on their arrangement. Shuffling the first five tokens leaves the output at the sixth unchanged,
# so "dog bites man today" and "man bites dog today" look the same from "today". That is why
# position information (chapter 3, and RoPE in chapter 5) is still needed.

# %%
shuffled = torch.tensor([2, 4, 0, 3, 1, 5])  # shuffle the first five, keep the last in place
with torch.no_grad():
    same_last = torch.allclose(layer(x[shuffled])[-1], layer(x)[-1], atol=1e-6)
print("order of earlier tokens", shuffled.tolist(), "-> last output unchanged:", same_last)
assert same_last


# %% [markdown]
# ## Exercise 3: scaling by $1/d_k$
#
# With unit-variance entries, $\operatorname{Var}(q \cdot k / d_k) = d_k / d_k^2 = 1/d_k$: the
# scores shrink toward 0 as $d_k$ grows, and softmax of nearly equal scores is nearly uniform
# (largest weight $\to 1/16$ with 16 keys). Softmax does not saturate, so the gradient into the
# scores stays healthy, but attention cannot focus: to express the same preference, the product
# of the query's and the key's sizes would have to grow like $\sqrt{d_k}$ (each like
# $d_k^{1/4}$), and the gradient reaching the projections through
# $\partial s / \partial q = k / d_k$ shrinks like $1/\sqrt{d_k}$. Only $1/\sqrt{d_k}$ keeps
# the scores at the same spread at every width.


# %%
def score_stats(d_k, divide_by, n_trials=400, n_keys=16, seed=0):
    """Variance of the scores and mean largest softmax weight, scores divided by divide_by."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n_trials, 1, d_k, generator=g)  # (N, 1, d_k)
    k = torch.randn(n_trials, n_keys, d_k, generator=g)  # (N, n_keys, d_k)
    s = (q @ k.transpose(-2, -1)).squeeze(1) / divide_by  # (N, n_keys)
    return s.var().item(), torch.softmax(s, dim=-1).max(dim=-1).values.mean().item()


d_ks = [1, 4, 16, 64, 256, 1024]
by_sqrt = [score_stats(d_k, math.sqrt(d_k)) for d_k in d_ks]  # (variance, largest weight)
by_d = [score_stats(d_k, d_k) for d_k in d_ks]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for i, (ax, label) in enumerate(zip(axes, ["variance of the scores", "mean largest weight"])):
    _ = ax.plot(d_ks, [stat[i] for stat in by_sqrt], "o-", label="q.k / sqrt(d_k)")
    _ = ax.plot(d_ks, [stat[i] for stat in by_d], "s-", label="q.k / d_k")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="d_k (width of queries and keys)", ylabel=label, title=label)
axes[0].set_yscale("log")
_ = axes[1].axhline(1 / 16, color="grey", ls="--", label="uniform over 16 keys, 1/16")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# The measured values differ in their last digits from one CPU to another, so we print the
# bounds they are checked against:

# %%
for d_k, (sqrt_var, sqrt_max), (lin_var, lin_max) in zip(d_ks, by_sqrt, by_d):
    assert 0.8 < sqrt_var < 1.2 and sqrt_max < 0.5  # /sqrt(d_k): the same spread at every width
    assert 0.8 < lin_var * d_k < 1.2  # /d_k: variance 1 / d_k
    assert lin_max < sqrt_max + 1e-6  # /d_k: never sharper than /sqrt(d_k)
assert by_d[-1][1] < 1 / 16 + 0.01  # d_k = 1024: practically uniform weights
print("/sqrt(d_k), every d_k:  0.8 < variance < 1.2,  largest weight < 0.5")
print("/d_k, every d_k:        0.8 < variance x d_k < 1.2,  largest weight <= that of /sqrt(d_k)")
print("/d_k, d_k = 1024:       largest weight < 1/16 + 0.01 (uniform: 1/16)")


# %% [markdown]
# ## Exercise 4: a padding mask
#
# Sentences of different lengths are batched by padding the short ones to a common length $T$
# with a filler token. The padding keys must never be attended to: the combined mask allows
# query $i$ to see key $j$ when $j \le i$ (causal) **and** key $j$ is real (padding). With a
# boolean "is real" array of shape $(B, T)$, that is
# `causal_mask(T) & is_real[:, None, :]`, of shape $(B, T, T)$.

# %%
tok = load_tokenizer("stories")  # the book's tokenizer, 2,048 ids
texts = ["When he looked for it, the hat was gone!", "Kai smiled."]
encoded = [tok.encode(t) for t in texts]
T = max(len(e) for e in encoded)
pad = tok.special_tokens["<|endoftext|>"]  # the last id, 2047
print("lengths", [len(e) for e in encoded], "-> T", T, " pad id", pad)

embedding = torch.nn.Embedding(tok.vocab_size, 8)
layer = CausalSelfAttention(8, 4).eval()


def attend(x, mask):  # x (B, T, 8) -> (B, T, 4), the layer's projections with our own mask
    return scaled_dot_product_attention(
        layer.q_proj(x), layer.k_proj(x), layer.v_proj(x), mask=mask
    )


# %% [markdown]
# The check, for padding on either side: the combined mask against torch, the short sentence's
# real positions against the sentence alone, and the same with the causal mask only.


# %%
def check_padding(side):
    rows = [
        e + [pad] * (T - len(e)) if side == "right" else [pad] * (T - len(e)) + e for e in encoded
    ]
    ids = torch.tensor(rows)  # (B, T)
    is_real = torch.tensor([[i != pad for i in row] for row in rows])  # (B, T)
    mask = causal_mask(T) & is_real[:, None, :]  # (T, T) & (B, 1, T) -> (B, T, T)
    with torch.no_grad():
        x = embedding(ids)  # (B, T, 8)
        ours = attend(x, mask)
        theirs = F.scaled_dot_product_attention(
            layer.q_proj(x), layer.k_proj(x), layer.v_proj(x), attn_mask=mask
        )
        short = encoded[1]
        alone = attend(embedding(torch.tensor([short])), causal_mask(len(short)))[0]
        real_rows = ours[1][is_real[1]]  # the short sentence's real positions
        causal_only = attend(x, causal_mask(T))[1][is_real[1]]
    print(f"{side} padding: ids[1] = {ids[1].tolist()}")
    print("  equal to torch:", torch.allclose(ours, theirs, atol=1e-6))
    print("  real positions equal the sentence alone:", torch.allclose(real_rows, alone, atol=1e-6))
    print("  ... also with the causal mask alone:", torch.allclose(causal_only, alone, atol=1e-6))
    print("  outputs at the padding positions all 0:", bool((ours[1][~is_real[1]] == 0).all()))
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(real_rows, alone, atol=1e-6)
    return causal_only, alone


_ = check_padding("right")
causal_only, alone = check_padding("left")
assert not torch.allclose(causal_only, alone, atol=1e-6)

# %% [markdown]
# With padding on the **right**, the causal mask alone already hides the padding from the real
# tokens, because padding comes after them; the padding mask changes only the outputs at padding
# positions, which the loss ignores anyway. With padding on the **left** (usual for batched
# generation, so that every sequence ends at the same position), real tokens come after the
# padding and would attend to it: the padding mask is needed. The padding queries then have
# no key they may attend to at all (each sees only padding before it); our function, like torch's,
# returns zeros for such rows rather than NaN. (Here no position embeddings were added; with them,
# left padding also shifts the positions, which a real model must account for.)
#
# ## Exercise 5: the size of the attention matrix
#
# Each head of each layer builds a $T \times T$ matrix of weights, which training keeps for the
# backward pass: softmax's backward needs its output, not the scores before it, and the product
# with $V$ needs the weights it multiplied. With dropout it keeps the dropout mask too, and the
# product then multiplies the dropped weights, so those are kept beside softmax's output. The
# sizes below are for one matrix; the check after them counts what autograd really saves.


# %%
def attention_matrix_bytes(n_layers, n_heads, context_length, bytes_per_value=4):
    return n_layers * n_heads * context_length**2 * bytes_per_value


sizes = {
    "GPT-2 small, T = 1,024": attention_matrix_bytes(12, 12, 1024),
    "Llama-3.1-8B, T = 8,192": attention_matrix_bytes(32, 32, 8192),
    "Llama-3.1-8B, T = 131,072": attention_matrix_bytes(32, 32, 131072),
}
for name, n_bytes in sizes.items():
    print(f"{name:>26}: {n_bytes:>20,} bytes = {n_bytes / 2**30:11,.2f} GiB")

weights = scaled_dot_product_attention(*torch.randn(3, 1, 12, 1024, 64), return_weights=True)[1]
assert weights.numel() * weights.element_size() == attention_matrix_bytes(1, 12, 1024)
assert sizes["GPT-2 small, T = 1,024"] == 12 * 12 * 1024 * 1024 * 4


# %% [markdown]
# What autograd actually keeps, counted with `saved_tensors_hooks`: every saved tensor of the
# full $(B, H, T, T)$ shape, for one call without and one with dropout.


# %%
def saved_attention_matrices(dropout_p, B=1, H=2, T=64, D=8):
    """How many distinct (B, H, T, T) tensors autograd saves for one attention call."""
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    storages = set()

    def pack(t):
        if t.numel() == B * H * T * T and t.shape[-2:] == (T, T):
            storages.add(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
    return len(storages)


plain, dropped = saved_attention_matrices(0.0), saved_attention_matrices(0.1)
print("T x T matrices kept for backward, without dropout:", plain, " with dropout:", dropped)
assert dropped == plain + 1

# %% [markdown]
# Kept are softmax's output and the weights that the product with $V$ multiplies (a separate
# copy here, made by the step that zeroes the rows of blind queries; with dropout, the dropped
# weights), plus dropout's mask. A training step that builds the matrix therefore keeps two or
# three of them per head, and the sizes above, for one, are a lower bound: about 0.56 GiB per
# sequence for GPT-2 small, 256 GiB at 8k for Llama-3.1-8B and 64 TiB at its full 128k context,
# per sequence, in float32 (half that in bfloat16). The cost grows with $T^2$: at long contexts
# far beyond the memory of any GPU. Fused attention kernels (FlashAttention, chapter 5) never
# store the matrix: they walk over the keys in tiles, keep a running maximum and a running sum
# for the softmax, and accumulate the output directly, so memory grows like $T$; the backward
# pass recomputes the tiles instead of reading them back.
