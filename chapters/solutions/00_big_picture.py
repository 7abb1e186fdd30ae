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
# # Chapter 00 solutions: the big picture
#
# Solutions to the exercises at the end of `chapters/00_big_picture.ipynb`. Like the chapter,
# they only import from `llmbook`.

# %%
import torch
import torch.nn.functional as F

from llmbook import (
    DecoderLM,
    ModelConfig,
    generate,
    greedy_generate,
    load_model,
    load_tokenizer,
    parameter_counts,
)
from llmbook.generation import kv_cache_bytes

torch.manual_seed(0)
tok = load_tokenizer("stories")
EOT = tok.special_tokens["<|endoftext|>"]
model = load_model("stories")  # the book's trained model (chapters 8 and 10)
ids = torch.tensor([tok.encode("Once upon a time, a")])  # (1, T)
big = ModelConfig.from_preset("llama-3.1-8b")

# %% [markdown]
# ## Exercise 1: count Llama-3.1-8B by hand
#
# With $V = 128{,}256$, $C = 4096$, $N = 32$, $H = 32$ query heads and $H_{kv} = 8$ key/value
# heads of $D = 128$, and $d_{ff} = 14336$ (no biases anywhere):
#
# - token table: $V C$; head (not tied): $V C$;
# - attention per block: `q_proj` $C \cdot HD$, `k_proj` and `v_proj` $C \cdot H_{kv}D$ each,
#   `o_proj` $HD \cdot C$;
# - MLP per block: three matrices of $C \cdot d_{ff}$;
# - norms: two gains of $C$ per block, and the final norm's $C$.

# %%
V, C, N, D = big.vocab_size, big.d_model, big.n_layers, big.head_dim
H, H_kv, d_ff = big.n_heads, big.n_kv_heads, big.d_ff
attention = C * H * D + 2 * C * H_kv * D + H * D * C
mlp = 3 * C * d_ff
block = attention + mlp + 2 * C
total = V * C + N * block + C + V * C
print(f"attention per block {attention:>13,}")
print(f"MLP per block       {mlp:>13,}")
print(f"one block           {block:>13,}")
print(f"total               {total:>13,}")
with torch.device("meta"):
    counted = parameter_counts(DecoderLM(big))
assert total == counted["total"] == 8_030_261_248
assert N * mlp == counted["MLP"] and N * attention == counted["attention"]

# %% [markdown]
# The MLPs hold 32 x 176,160,768 = 5.6 billion of the 8.0 billion parameters; attention is small
# because grouped-query attention makes `k_proj` and `v_proj` a quarter of `q_proj`.
#
# ## Exercise 2: tensor parallelism on paper
#
# "GPU" $r$ of 2 holds hidden units $r \cdot d_{ff}/2$ to $(r+1) \cdot d_{ff}/2$. In the
# book's notation $y = x W$, with $W$ of shape $(d_\text{in}, d_\text{out})$, those are columns of
# $W$ for `gate_proj` and `up_proj` (column parallel: a slice of the outputs), as the exercise
# says, and rows of $W$ for `down_proj` (row parallel: a slice of the inputs). `nn.Linear`
# stores $W^\top$, of shape $(d_\text{out}, d_\text{in})$, so the code below slices the same
# numbers as rows of `gate_proj.weight` and `up_proj.weight` and columns of
# `down_proj.weight`: the same thing. Each GPU computes a full-width partial output; the
# all-reduce sums them.

# %%
mlp0 = model.model.layers[0].mlp
x = torch.randn(1, 4, model.config.d_model)
tp_size, half = 2, model.config.d_ff // 2
with torch.no_grad():
    partials = []
    for r in range(tp_size):
        rows = slice(r * half, (r + 1) * half)  # this GPU's hidden units
        gate = x @ mlp0.gate_proj.weight[rows].T  # (1, T, d_ff / 2)
        up = x @ mlp0.up_proj.weight[rows].T
        partials.append((F.silu(gate) * up) @ mlp0.down_proj.weight[:, rows].T)  # (1, T, C)
    print("each partial output", tuple(partials[0].shape))
    print("sum equals mlp(x):", torch.allclose(sum(partials), mlp0(x), atol=1e-6))
    assert torch.allclose(sum(partials), mlp0(x), atol=1e-6)

# %% [markdown]
# The gate and the up projection must be split the same way because SwiGLU multiplies them unit
# by unit: hidden unit $j$ is $\operatorname{silu}(g_j) \cdot u_j$. If a GPU held $g_j$ and
# another $u_j$, they would have to exchange them before the product. Split alike, each GPU
# computes its units alone, and the only communication in the MLP is the one sum at the end.
# (That is why engines fuse them as `gate_up_proj` and shard the fused matrix so each GPU gets
# matching halves of both.)
#
# ## Exercise 3: the KV cache's budget
#
# Each block stores, per token, a key and a value for each of its $H_{kv}$ K/V heads, $D$
# numbers each: $2 \cdot N \cdot H_{kv} \cdot D$ numbers per token, 2 bytes each in bfloat16.

# %%
per_token = 2 * N * H_kv * D * 2
conversation = 8192 * per_token
no_gqa = 8192 * 2 * N * H * D * 2  # every query head with its own K/V head
print(f"per token: {per_token:,} bytes = {per_token // 1024} KiB")
print(f"8,192 tokens: {conversation:,} bytes = {conversation / 2**30:.2f} GiB")
print(f"without GQA:  {no_gqa:,} bytes = {no_gqa / 2**30:.2f} GiB")
assert per_token == kv_cache_bytes(big) and conversation == kv_cache_bytes(big, n_tokens=8192)
assert no_gqa == 4 * conversation

# %% [markdown]
# One long conversation takes 1 GiB beside the 16 GB of bfloat16 weights, and a server holds
# many at once. Without GQA it would be four times as much ($H / H_{kv} = 32 / 8$).
#
# ## Exercise 4: greedy is temperature zero
#
# The loop of section 5 with `argmax` in place of the draw:


# %%
@torch.no_grad()
def greedy_loop(ids, n):
    for _ in range(n):
        last = model(ids[:, -model.config.context_length :])[:, -1]  # (1, V)
        ids = torch.cat([ids, last.argmax(-1, keepdim=True)], dim=1)  # (1, T + 1)
    return ids


loop = greedy_loop(ids, 20)[0].tolist()
print(
    "loop == generate(temperature=0):", loop == generate(model, ids[0].tolist(), 20, temperature=0)
)
print("loop == greedy_generate:        ", loop == greedy_generate(model, ids, 20)[0].tolist())
print(repr(tok.decode(loop)))
assert loop == generate(model, ids[0].tolist(), 20, temperature=0)
assert loop == greedy_generate(model, ids, 20)[0].tolist()
assert tok.decode(loop).startswith("Once upon a time, a happy boy called Marco")  # quoted below

# %% [markdown]
# Greedy decoding has no randomness: it takes the most likely token at each step, so the prompt
# always continues with the same story (here a happy boy called Marco). Three seeds of the
# chapter's sampler (temperature 0.8, top-50) give three different continuations:

# %%
texts = []
for seed in range(3):
    g = torch.Generator().manual_seed(seed)
    out = generate(model, ids[0].tolist(), 20, temperature=0.8, top_k=50, stop=EOT, generator=g)
    print(seed, repr(tok.decode(out)))
    texts.append(tok.decode(out))
assert len(set(texts)) == 3  # three different continuations
