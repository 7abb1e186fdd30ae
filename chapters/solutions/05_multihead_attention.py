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
# # Chapter 05 solutions: multi-head attention
#
# Each solution uses the package built in chapter 5 (`llmbook.multihead`) and checks its
# answer with an `assert`.

# %%
import math

import torch
import torch.nn.functional as F

from llmbook.multihead import MultiHeadAttention, RotaryEmbedding, interleaved_to_half

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. KV cache budget
#
# Per token and per layer the cache holds a key and a value vector of `head_dim` numbers for
# every KV head: $2 \cdot n_\text{layers} \cdot H_{kv} \cdot D$ numbers per token, 2 bytes each
# in bf16.


# %%
def kv_bytes_per_token(n_layers, n_kv_heads, head_dim, bytes_per_number=2):
    return 2 * n_layers * n_kv_heads * head_dim * bytes_per_number


budget = 40 * 2**30
for name, n_kv in [("Llama-2-7B (MHA, 32 KV heads)", 32), ("Llama-3.1-8B (GQA, 8 KV heads)", 8)]:
    per_token = kv_bytes_per_token(32, n_kv, 128)
    print(
        f"{name:<32} {per_token:>9,} bytes = {per_token // 1024} KiB per token, "
        f"{budget // per_token:>7,} tokens in 40 GiB"
    )
assert kv_bytes_per_token(32, 32, 128) == 512 * 1024
assert budget // kv_bytes_per_token(32, 8, 128) == 4 * (budget // kv_bytes_per_token(32, 32, 128))

# %% [markdown]
# Llama-3.1-8B fits four times as many tokens in the same memory: 327,680 tokens, e.g. 40
# sequences of 8,192 tokens, against 10 for Llama-2-7B. (Llama-2-70B already used GQA with 8
# KV heads for the same reason.)
#
# ## 2. GQA without copies, by hand
#
# A `(B, H, T, D)` tensor cannot be a view of the `(B, H_kv, T, D)` keys: merging a head axis
# with a stride-0 group axis has no single stride, so `reshape` would copy. The way around is to
# reshape the *queries* instead: split their head axis into `(H_kv, G)` (a view, since it only
# splits an axis) and give the keys and values a group axis of size `G` with `expand`, which
# repeats by setting the stride to 0. Attention then runs over the batch axes `(B, H_kv, G)`.


# %%
def gqa_attention_no_copy(q, k, v):
    """q (B, H, T, D); k, v (B, H_kv, T, D) -> (B, H, T, D), without repeating k and v."""
    B, H, T, D = q.shape
    H_kv = k.shape[1]
    G = H // H_kv
    q5 = q.view(B, H_kv, G, T, D)  # query head h = g_kv * G + g, as in repeat_kv
    k5 = k.unsqueeze(2).expand(B, H_kv, G, T, D)  # stride 0 along the group axis
    v5 = v.unsqueeze(2).expand(B, H_kv, G, T, D)
    out = F.scaled_dot_product_attention(q5, k5, v5, is_causal=True)  # (B, H_kv, G, T, D)
    return out.view(B, H, T, D), k5


layer = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8))
x = torch.randn(2, 10, 64)
with torch.no_grad():
    q, k, v = layer.project(x)
    out, k5 = gqa_attention_no_copy(q, k, v)
    mine = layer.o_proj(out.transpose(1, 2).reshape(2, 10, 64))
print("expanded keys", tuple(k5.shape), "strides", k5.stride())
print("shares the keys' storage:", k5.data_ptr() == k.data_ptr())
print("equals MultiHeadAttention:", torch.allclose(mine, layer(x), atol=1e-6))
assert k5.stride()[2] == 0 and k5.data_ptr() == k.data_ptr()
assert torch.allclose(mine, layer(x), atol=1e-6)

# %% [markdown]
# PyTorch 2.5 and later do the same inside the fused kernel with
# `scaled_dot_product_attention(..., enable_gqa=True)`, which the exported layer uses.
#
# ## 3. Shifting a whole sequence
#
# RoPE scores depend only on offsets, so adding the same number to every position changes
# nothing (up to the float32 rounding of large angles):

# %%
rope_layer = MultiHeadAttention(32, 4, rope=RotaryEmbedding(8))
x = torch.randn(1, 12, 32)
with torch.no_grad():
    at_zero = rope_layer(x, torch.arange(12))
    at_1000 = rope_layer(x, torch.arange(12) + 1000)
difference = float((at_zero - at_1000).abs().max())
print("shifting every position by 1000 changes the output by less than 1e-4:", difference < 1e-4)
assert difference < 1e-4

# %% [markdown]
# Without RoPE (and with no position embedding added before the layer), the output at the last
# position is a softmax-weighted sum over a *set* of earlier tokens: shuffling those tokens does
# not change it. Only the causal mask carries order, by deciding which tokens are in each set.
# With RoPE the same shuffle changes the output.

# %%
plain_layer = MultiHeadAttention(32, 4)
shuffle = torch.cat([torch.randperm(11), torch.tensor([11])])  # shuffle all but the last token
with torch.no_grad():
    plain_same = torch.allclose(plain_layer(x)[:, -1], plain_layer(x[:, shuffle])[:, -1], atol=1e-6)
    rope_same = torch.allclose(rope_layer(x)[:, -1], rope_layer(x[:, shuffle])[:, -1], atol=1e-6)
print("no RoPE: last output unchanged by the shuffle:", plain_same)
print("RoPE:    last output unchanged by the shuffle:", rope_same)
assert plain_same and not rope_same

# %% [markdown]
# Why this suits a KV cache: a key is rotated once, at its absolute position, when it is
# computed, and never changes afterwards, while every later query still sees it at the right
# relative distance. (So far a cache of GPT-2's keys, with learned absolute positions, is just as
# good.) The difference shows when the text outgrows the context and the cache must drop its
# oldest tokens (a sliding window, which Mistral was trained with): with RoPE the kept keys stay
# valid as they are, since every score depends only on the offset between query and key, and the
# offsets inside the window are those the model was trained on, whatever the absolute positions
# have grown to. With learned absolute positions a position past the table does not exist, so the
# window would have to be renumbered from 0 and every cached key and value computed again.
#
# ## 4. Skipping masked blocks
#
# Split queries and keys into blocks. A (query block, key block) pair whose first key comes
# after the last query of the block is entirely in the future: skip it. Blocks on the diagonal
# still need the element-wise mask.


# %%
def tiled_causal_attention(q, k, v, block=16):
    """Causal attention over (query block, key block) tiles: (output, tiles computed, tiles)."""
    T, scale = q.shape[-2], 1.0 / math.sqrt(q.shape[-1])
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    computed = total = 0
    for q0 in range(0, T, block):
        qb = q[..., q0 : q0 + block, :]
        q_pos = torch.arange(q0, q0 + qb.shape[-2])
        m = torch.full((*qb.shape[:-1], 1), float("-inf"), dtype=q.dtype)
        l = torch.zeros(*qb.shape[:-1], 1, dtype=q.dtype)
        o = torch.zeros(*qb.shape[:-1], v.shape[-1], dtype=q.dtype)
        for k0 in range(0, T, block):
            total += 1
            if k0 > q_pos[-1]:  # every key of this block is after every query: skip it
                continue
            computed += 1
            s = qb @ k[..., k0 : k0 + block, :].transpose(-2, -1) * scale
            k_pos = torch.arange(k0, k0 + s.shape[-1])
            s = s.masked_fill(k_pos[None, :] > q_pos[:, None], float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            p = torch.exp(s - m_new)
            rescale = torch.exp(m - m_new)
            l = l * rescale + p.sum(dim=-1, keepdim=True)
            o = o * rescale + p @ v[..., k0 : k0 + block, :]
            m = m_new
        out[..., q0 : q0 + block, :] = o / l
    return out, computed, total


q, k, v = torch.randn(3, 2, 4, 128, 16).unbind(0)
out, computed, total = tiled_causal_attention(q, k, v, block=16)
reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print(f"tiles computed {computed} of {total}, skipped {total - computed}")
print("equals torch:", torch.allclose(out, reference, atol=1e-5))
assert (computed, total) == (36, 64) and torch.allclose(out, reference, atol=1e-5)

# %% [markdown]
# With $n = 8$ blocks per axis, $n(n-1)/2 = 28$ of the 64 tiles lie above the diagonal:
# causal attention needs a little more than half the work of full attention, which is what
# fused kernels gain from `is_causal=True`.
#
# ## 5. Converting a GQA checkpoint
#
# `k_proj` of this layer has 2 heads of 8 rows (16 rows). Passing `n_heads=8` splits those 16
# rows into 8 "heads" of 2 rows; the permutation of a 2-row head is `[0, 1]`, the identity. So
# no error is raised (16 is divisible by 8) and `k_proj` is silently left unpermuted: queries
# are in the half layout, keys still interleaved, and the scores are wrong.

# %%
meta = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8, layout="interleaved"))
hf = MultiHeadAttention(64, 8, n_kv_heads=2, rope=RotaryEmbedding(8, layout="half"))
x = torch.randn(2, 10, 64)


def convert(state, k_heads):
    state = dict(state)
    state["q_proj.weight"] = interleaved_to_half(state["q_proj.weight"], n_heads=8)
    state["k_proj.weight"] = interleaved_to_half(state["k_proj.weight"], n_heads=k_heads)
    return state


with torch.no_grad():
    hf.load_state_dict(convert(meta.state_dict(), k_heads=8))  # the bug
    buggy = torch.allclose(meta(x), hf(x), atol=1e-6)
    k_unchanged = torch.equal(hf.k_proj.weight, meta.k_proj.weight)
    hf.load_state_dict(convert(meta.state_dict(), k_heads=2))  # the fix: n_kv_heads
    fixed = torch.allclose(meta(x), hf(x), atol=1e-6)
print("with n_heads=8 for k_proj: outputs equal:", buggy, "| k_proj left unchanged:", k_unchanged)
print("with n_heads=2 for k_proj: outputs equal:", fixed)
assert not buggy and k_unchanged and fixed

# %% [markdown]
# Two checks catch the bug: comparing the converted layer's output with the original on a
# random input (the test in `tests/test_multihead.py` does exactly this), or asserting that the
# rows per head equal the model's `head_dim` before permuting:

# %%
rows, heads_given = meta.k_proj.weight.shape[0], 8
print(f"rows per head: {rows // heads_given}, model head_dim: {meta.head_dim}")
assert rows // heads_given != meta.head_dim  # this check would have flagged the bug
