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
# # Chapter 07 solutions: the full decoder
#
# Each solution uses the package built in chapter 7 (`llmbook.model`, and `llmbook.io.hf` for the
# config reader) and checks its answer with an `assert`.

# %%
import math

import torch

from llmbook.io.hf import config_from_hf
from llmbook.model import DecoderLM, ModelConfig, parameter_counts

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Llama-2-13B
#
# Same kinds as Llama-2-7B (RMSNorm, SwiGLU, RoPE, one K/V head per query head, untied head),
# larger sizes. On the meta device the model takes no memory:

# %%
llama13 = ModelConfig.from_preset("llama-2-7b", d_model=5120, n_layers=40, n_heads=40, d_ff=13824)
with torch.device("meta"):
    counts = parameter_counts(DecoderLM(llama13))
for part, n in counts.items():
    print(f"{part:20} {n:>15,}")
assert counts["total"] == 13_015_864_320
assert counts["attention"] == 40 * 4 * 5120 * 5120 and counts["MLP"] == 40 * 3 * 5120 * 13824

# %% [markdown]
# 13.0B parameters, two thirds of them in the MLPs; the embedding and the head are 164M each,
# about 1.3% of the model apiece.
#
# ## 2. Mistral-7B from its config
#
# The `config.json` of Mistral-7B-v0.1, as a dict. `config_from_hf` reads it like a Llama
# config; the sliding window of 4,096 positions becomes the context length, because within the
# window sliding-window attention is plain causal attention.

# %%
mistral = {
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "vocab_size": 32000,
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 32768,
    "sliding_window": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "hidden_act": "silu", "tie_word_embeddings": False,
}  # fmt: skip
config = ModelConfig(**config_from_hf(mistral))
print("context_length", config.context_length, "| n_kv_heads", config.n_kv_heads)
totals = {}
for name, n_kv_heads in (("GQA, 8 K/V heads", 8), ("MHA, 32 K/V heads", 32)):
    with torch.device("meta"):
        model = DecoderLM(ModelConfig(**{**vars(config), "n_kv_heads": n_kv_heads}))
    totals[name] = parameter_counts(model)["total"]
    print(f"{name:18} {totals[name]:>15,}")
assert totals["GQA, 8 K/V heads"] == 7_241_732_096
assert totals["MHA, 32 K/V heads"] - totals["GQA, 8 K/V heads"] == 32 * 2 * 4096 * (4096 - 1024)

# %% [markdown]
# 7.24B parameters; plain multi-head attention would add $32 \times 2 \times 4096 \times 3072$
# = 805M to the K and V projections (and four times the KV cache, chapter 9).
#
# ## 3. Tie the head
#
# Tying removes the head's own $V \times C$ matrix:

# %%
untied = DecoderLM(ModelConfig.from_preset("stories-small"))
tied = DecoderLM(ModelConfig.from_preset("stories-small", tie_embeddings=True))
total = parameter_counts(untied)["total"]
saved = total - parameter_counts(tied)["total"]
print(f"saved {saved:,} of {total:,} = {saved / total:.1%}")
assert saved == 2048 * 128
ids = torch.randint(0, 2048, (8, 64))
with torch.no_grad():
    _, loss = tied(ids, torch.randint(0, 2048, (8, 64)))
print("untrained tied loss", round(loss.item(), 2), "| ln 2048 =", round(math.log(2048), 3))
assert abs(loss.item() - math.log(2048)) < 0.05

# %% [markdown]
# A fifth of this small model is its head: for small models tying is a large saving (GPT-2 and
# Llama-3.2-1B tie for the same reason). With std 0.02 the tied head still starts at $\ln V$.
#
# ## 4. Why scale the residual projections?
#
# Two 24-block models with the same weights except `o_proj` and `down_proj`: one as
# `init_weights` leaves them (std $0.02/\sqrt{48}$), one with std 0.02. We follow the standard
# deviation of the residual stream through the blocks.


# %%
def stream_stds(model, ids):
    with torch.no_grad():
        x = model.model.embed_tokens(ids)
        stds = [x.std().item()]
        for layer in model.model.layers:
            x = layer(x)
            stds.append(x.std().item())
    return stds


config = ModelConfig.from_preset("stories-small", n_layers=24)
torch.manual_seed(0)
scaled = DecoderLM(config)
unscaled = DecoderLM(config)
unscaled.load_state_dict(scaled.state_dict())
with torch.no_grad():
    for name, p in unscaled.named_parameters():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            p.normal_(0.0, 0.02)
ids = torch.randint(0, 2048, (4, 64))
a, b = stream_stds(scaled, ids), stream_stds(unscaled, ids)
for i in (0, 6, 12, 18, 24):
    print(f"after {i:2} blocks: scaled {a[i]:.4f}   unscaled {b[i]:.4f}")
assert a[24] < 1.5 * a[0] and b[24] > 5 * b[0]

# %% [markdown]
# The stream starts at the embedding's std of 0.02. Every block adds two branch outputs to it.
# With std-0.02 output projections these additions are about as large as the stream itself, and
# over 24 blocks it grows elevenfold (to 0.22); with the $1/\sqrt{2L}$ scaling ($L = 24$
# blocks) the sum of the $2L$ branches stays the size of about one, and the stream grows by a
# third (to 0.027).
#
# ## 5. The count by formula
#
# Per block: attention has $C \cdot H D$ (q), $2 \cdot C \cdot H_{kv} D$ (k, v) and $H D \cdot C$
# (o) weights, plus biases where the config has them; the MLP $3 C d_{ff}$ (SwiGLU) or
# $2 C d_{ff}$ (plain, with biases $d_{ff} + C$); two norms of $C$ (LayerNorm: $2C$). Then the
# embedding $V C$, learned positions $T C$, the final norm and an untied head $V C$.


# %%
def count_by_formula(c: ModelConfig) -> int:
    C, D, kv = c.d_model, c.head_dim, c.n_kv_heads
    norm = 2 * C if c.norm == "layernorm" else C
    qkv_bias = c.bias if c.qkv_bias is None else c.qkv_bias
    attention = C * c.n_heads * D + 2 * C * kv * D + c.n_heads * D * C
    attention += qkv_bias * (c.n_heads + 2 * kv) * D + c.bias * C
    if c.mlp == "swiglu":
        mlp = 3 * C * c.d_ff + c.bias * (2 * c.d_ff + C)
    else:
        mlp = 2 * C * c.d_ff + c.bias * (c.d_ff + C)
    block = attention + mlp + 2 * norm
    embeddings = c.vocab_size * C + (c.context_length * C if c.position == "learned" else 0)
    head = 0 if c.tie_embeddings else c.vocab_size * C
    return embeddings + c.n_layers * block + norm + head


for name in ("stories-small", "gpt2", "llama-2-7b", "llama-3.1-8b", "llama-3.2-1b"):
    config = ModelConfig.from_preset(name)
    with torch.device("meta"):
        counted = parameter_counts(DecoderLM(config))["total"]
    print(f"{name:14} formula {count_by_formula(config):>14,}   meta {counted:>14,}")
    assert count_by_formula(config) == counted
