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
# # Chapter 07: The full decoder
#
# Chapters 3 to 6 built the parts: token and position embeddings, multi-head attention with
# RoPE and grouped-query heads, the feed-forward network, LayerNorm and RMSNorm, residual
# connections. This chapter assembles them into a **decoder-only language model**: token ids in,
# one vector of `vocab_size` logits per position out. We build GPT-2 first, then see that Llama
# is the same skeleton with a few parts swapped, so one configuration object describes both.
#
# **What you will build**
#
# 1. The **transformer block**: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
# 2. The smallest GPT in about 20 lines, run on the book's running example with every shape.
# 3. `ModelConfig`, one validated dataclass for GPT-2 and Llama, with presets: the book's own
#    small models for the `stories` corpus, GPT-2, Llama-2-7B, Llama-3.1-8B and Llama-3.2-1B.
# 4. `TransformerBlock` and `DecoderLM`, the exported model, whose module names are Hugging
#    Face Llama's, so `print(model)` reads like the Llama printout and loading weights is a table.
# 5. Parameters counted by component for the real architectures, built on the `meta` device
#    (no memory, no download): GPT-2 124M, Llama-2-7B 6.74B, Llama-3.1-8B 8.03B, Llama-3.2-1B 1.24B.
# 6. Initialisation, the loss of an untrained model (about $\ln V$) and its gibberish.
# 7. Hugging Face checkpoints in and out: the same logits as `transformers`, to 1e-5.
#
# The code this chapter exports lives in `llmbook.model`.

# %%
#| default_exp model

# %% [markdown]
# Cells that start with `#| export` go into the package. We build on chapter 3's embeddings,
# chapter 5's `MultiHeadAttention` and `RotaryEmbedding`, and chapter 6's MLPs and norms. The
# marker lines in three exported cells (nbgrader's begin- and end-of-solution pair around a
# `# TASK:` line) mark the tasks of the classroom edition, where a student writes the lines
# between them (the README's "Teaching with llmbook" explains); the package leaves them out.

# %%
#| export
import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.checks import check_int
from llmbook.checks.model import (  # noqa: F401 (MLPS, NORMS, POSITIONS: see below)
    MLPS,
    NORMS,
    POSITIONS,
    check_config,
    check_id_batch,
    check_inputs,
    own_copy,
)
from llmbook.embeddings import LearnedPositionalEmbedding, TokenEmbedding
from llmbook.feedforward import FeedForward, LayerNorm, RMSNorm, SwiGLU, swiglu_hidden_size
from llmbook.multihead import MultiHeadAttention, RotaryEmbedding

# Unused here, MLPS, NORMS and POSITIONS (the allowed values of ModelConfig.mlp, .norm and
# .position) are imported to be re-exported: llmbook.model lists them beside ModelConfig.

# %%
torch.manual_seed(0)
from llmbook import load_corpus, load_tokenizer  # the book's corpus and tokenizer

tok = load_tokenizer("stories")
prompt = "How do I cook tomato and egg stir-fry?"
ids = torch.tensor([tok.encode(prompt)])  # (B, T) = (1, number of tokens)
print("vocab_size", tok.vocab_size, "| prompt ids", tuple(ids.shape), ids[0].tolist())

# %% [markdown]
# ## 1. The transformer block
#
# A block takes the **residual stream** `x` of shape `(B, T, C)` (batch, positions, `d_model`)
# and returns a tensor of the same shape, so blocks stack. It has two branches, each reading a
# normalised copy of the stream and *adding* its result back:
#
# $$x \leftarrow x + \mathrm{Attention}(\mathrm{Norm}_1(x)), \qquad
#   x \leftarrow x + \mathrm{MLP}(\mathrm{Norm}_2(x)).$$
#
# Attention moves information between positions; the MLP works on each position alone. This is
# the **pre-norm** placement of GPT-2 and Llama: the norm sits on the branch, never on the
# stream itself, so the stream is a plain sum of every branch's output. Backward, each `+`
# passes its incoming gradient on twice: once straight down the stream (the derivative of
# $x + f(x)$ is $I + f'(x)$) and once through its branch. The straight path multiplies by no
# weight, so a share of the loss's gradient reaches the first block however deep the stack;
# the branches add their own terms to it, so what arrives is not the same gradient, but it
# cannot vanish through the stack (chapter 6 measured the stack with and without the residual
# path). The original Transformer normalised *after* the addition (post-norm,
# $x \leftarrow \mathrm{Norm}(x + f(x))$): then every block puts a norm's Jacobian on the
# stream itself, no straight path is left, and it needed a careful warm-up to train.
#
# ```mermaid
# flowchart TB
#     x0["x (B, T, C)"] --> n1["input_layernorm"]
#     n1 --> a["self_attn<br/>q/k/v/o_proj, causal"]
#     x0 --> p1(("+"))
#     a --> p1
#     p1 --> n2["post_attention_layernorm"]
#     n2 --> m["mlp<br/>FeedForward or SwiGLU"]
#     p1 --> p2(("+"))
#     m --> p2
#     p2 --> x2["x (B, T, C) to the next block"]
# ```
#
# The smallest version, GPT-2 style, with chapter 6's `nn.LayerNorm`-equivalent and MLP. We name
# the parts as Hugging Face's Llama does (`input_layernorm`, `self_attn`, ...), so that the
# state dicts of this chapter's models all line up (a module's `state_dict()` maps the dotted
# name of each parameter, such as `self_attn.q_proj.weight`, to its tensor; saving and loading
# weights go through it).


# %%
class TinyBlock(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.input_layernorm = LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.post_attention_layernorm = LayerNorm(d_model)
        self.mlp = FeedForward(d_model, 4 * d_model)  # GELU (tanh), biases

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


block = TinyBlock(d_model=64, n_heads=4)
x = torch.randn(2, 10, 64)
print("block in ", tuple(x.shape), "-> out", tuple(block(x).shape))
assert block(x).shape == x.shape

# %% [markdown]
# ## 2. The smallest GPT
#
# A GPT is: look up a vector per token and add a vector per position (chapter 3), run $L$ blocks,
# normalise once more (`norm`, GPT-2's `ln_f`), and map each position's vector to `vocab_size`
# scores with the **LM head**, a linear map $C \to V$. GPT-2 **ties** the head to the token
# embedding: the same $(V, C)$ matrix turns ids into vectors and vectors into scores, which saves
# $V \times C$ parameters (38.6M of GPT-2's 124M).


# %%
class TinyGPT(nn.Module):
    def __init__(self, vocab_size, context_length, d_model, n_heads, n_layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        self.embed_positions = nn.Embedding(context_length, d_model)
        self.layers = nn.ModuleList(TinyBlock(d_model, n_heads) for _ in range(n_layers))
        self.norm = LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.embed_tokens.weight  # tied

    def forward(self, ids):  # (B, T) -> (B, T, V)
        positions = torch.arange(ids.shape[1])
        x = self.embed_tokens(ids) + self.embed_positions(positions)  # (B, T, C)
        for layer in self.layers:
            x = layer(x)  # (B, T, C), unchanged shape
        return self.lm_head(self.norm(x))  # (B, T, V)


tiny = TinyGPT(vocab_size=2048, context_length=64, d_model=64, n_heads=4, n_layers=2)
logits = tiny(ids)
print("ids", tuple(ids.shape), "-> logits", tuple(logits.shape))
assert logits.shape == (1, ids.shape[1], tok.vocab_size)

# %% [markdown]
# Every position gets a full distribution over the next token; to continue the prompt we only
# need the last one, `logits[:, -1]`, of shape `(1, V)`. During training every position counts:
# position $t$ is asked to predict token $t + 1$, so one sequence of $T$ tokens gives $T$
# predictions at once (chapter 8).
#
# ## 3. Llama: the same skeleton, parts swapped
#
# Llama keeps this skeleton and swaps parts that chapters 5 and 6 built. Three swaps hold for
# every Llama; the MLP's width and the last two rows differ between the versions, so the table
# names the one it means (the numbers are printed from the presets below):
#
# | part | GPT-2 | Llama |
# |---|---|---|
# | positions | a learned vector added to each token's vector | none added: RoPE rotates q and k inside attention |
# | norm | LayerNorm (mean and variance, gain and bias) | RMSNorm (root mean square, gain only) |
# | MLP | `FeedForward`: up, GELU, down ($d_{ff} = 4C$) | `SwiGLU`: gate, up, down; $d_{ff} = 2.69C$ in Llama-2-7B (the 8/3 rule), $3.5C$ in Llama-3.1-8B (the same rule, times 1.3), $4C$ in Llama-3.2-1B |
# | attention | one K/V head per query head, biases | no biases; Llama-2-7B keeps one K/V head per query head, Llama 3 uses 8 K/V heads (for 32 query heads in 3.1-8B and 3.2-1B) |
# | LM head | tied to the token embedding | its own matrix in Llama-2-7B and Llama-3.1-8B; Llama-3.2-1B ties it again |
#
# Grouped-query attention shares each K/V *projection* among a group of query heads; it has
# nothing to do with the LM head. In the diagram, Llama means Llama-3.1-8B:
#
# ```mermaid
# flowchart TB
#     subgraph G["GPT-2"]
#         direction TB
#         g1["ids (B, T)"] --> g2["embed_tokens<br/>+ embed_positions"]
#         g2 --> g3["L blocks:<br/>LayerNorm, attention<br/>LayerNorm, GELU MLP"]
#         g3 --> g4["LayerNorm"]
#         g4 --> g5["lm_head<br/>= embed_tokens"]
#     end
#     subgraph L["Llama-3.1-8B"]
#         direction TB
#         l1["ids (B, T)"] --> l2["embed_tokens"]
#         l2 --> l3["L blocks:<br/>RMSNorm, GQA + RoPE<br/>RMSNorm, SwiGLU"]
#         l3 --> l4["RMSNorm"]
#         l4 --> l5["lm_head<br/>(own matrix)"]
#     end
# ```
#
# So one configuration object can describe both: each swapped part is a field (`norm`, `mlp`,
# `position`, `n_kv_heads`, `tie_embeddings`), and the sizes are the rest. `d_ff` and
# `n_kv_heads` have defaults that depend on other fields (`4 * d_model` for a plain MLP,
# chapter 6's 8/3 rule for SwiGLU; `n_heads`), so they are filled in after construction. The
# last line of `__post_init__` checks the whole configuration (`check_config`, section 9), so a
# bad one never reaches a layer.


# %%
#| export
@dataclass
class ModelConfig:
    """What shapes a :class:`DecoderLM`; defaults: the kinds of Llama-2 and Llama-3.1-8B (RMSNorm,
    SwiGLU, RoPE, no biases, untied head). GPT-2: ``norm="layernorm", mlp="gelu_tanh",
    position="learned", bias=True, tie_embeddings=True``; ``qkv_bias`` overrides ``bias`` for
    q/k/v (Qwen2: True). Real models: :meth:`from_preset`. Checked (``n_kv_heads``, ``d_ff``
    filled in) on construction: to change a size, build a new one rather than edit it."""

    vocab_size: int = 2048
    context_length: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None  # None: n_heads (plain multi-head attention)
    d_ff: int | None = None  # None: 4 * d_model, or swiglu_hidden_size(d_model) for SwiGLU
    norm: str = "rmsnorm"
    norm_eps: float = 1e-5
    mlp: str = "swiglu"
    position: str = "rope"
    rope_base: float = 10000.0
    rope_scaling: dict | None = None  # Llama-3.1's {"rope_type": "llama3", ...}
    bias: bool = False  # biases in attention and MLP projections
    qkv_bias: bool | None = None
    tie_embeddings: bool = False
    dropout: float = 0.0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.d_ff is None and isinstance(self.d_model, int):  # Llama-2's 8/3 rule, or GPT-2's 4
            swiglu = self.mlp == "swiglu"
            self.d_ff = swiglu_hidden_size(self.d_model) if swiglu else 4 * self.d_model
        # the RoPE class is passed in because llmbook.checks, below the chapters, imports none
        check_config(self, RotaryEmbedding)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


# %% [markdown]
# The presets: the book's own Llama-style models for the `stories` corpus (vocabulary 2,048,
# chapter 8 trains them), and four real architectures with the numbers from their published
# `config.json` files. The `llama3` RoPE scaling (chapter 5: factor 8, applied to the low
# frequencies only), together with Meta's long-context training, takes Llama-3.1's 8k context
# to 128k; Llama-3.2-1B uses the same rule with factor 32. `ModelConfig.from_preset(name,
# **changes)` reads the table; it is a method of `ModelConfig`, written here beside the table
# and attached to the class afterwards (what nbdev's `@patch` does), so each cell stays short.

# %%
#| export
# fmt: off
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
_LLAMA = dict(norm="rmsnorm", norm_eps=1e-5, mlp="swiglu", position="rope", bias=False)
_STORIES = dict(_LLAMA, vocab_size=2048, rope_base=10000.0)
PRESETS = {
    "stories-tiny": dict(_STORIES, context_length=64, d_model=64, n_layers=2, n_heads=4,
                         n_kv_heads=2, d_ff=128),
    "stories-small": dict(_STORIES, context_length=256, d_model=128, n_layers=4, n_heads=4,
                          n_kv_heads=2, d_ff=384),
    "stories-base": dict(_STORIES, context_length=512, d_model=256, n_layers=6, n_heads=8,
                         n_kv_heads=4, d_ff=768),
    "gpt2": dict(vocab_size=50257, context_length=1024, d_model=768, n_layers=12, n_heads=12,
                 d_ff=3072, norm="layernorm", norm_eps=1e-5, mlp="gelu_tanh", position="learned",
                 bias=True, tie_embeddings=True),
    "llama-2-7b": dict(_LLAMA, vocab_size=32000, context_length=4096, d_model=4096, n_layers=32,
                       n_heads=32, d_ff=11008),
    "llama-3.1-8b": dict(_LLAMA, vocab_size=128256, context_length=131072, d_model=4096,
                         n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, rope_base=500000.0,
                         rope_scaling=LLAMA3_SCALING),
    "llama-3.2-1b": dict(_LLAMA, vocab_size=128256, context_length=131072, d_model=2048,
                         n_layers=16, n_heads=32, n_kv_heads=8, d_ff=8192, rope_base=500000.0,
                         rope_scaling=dict(LLAMA3_SCALING, factor=32.0), tie_embeddings=True),
}
# fmt: on


def _from_preset(cls, name: str, **changes) -> ModelConfig:
    """The configuration ``PRESETS[name]``, with ``changes`` applied (e.g. ``n_layers=2``)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return cls(**{**copy.deepcopy(PRESETS[name]), **changes})  # never share a preset's dict


ModelConfig.from_preset = classmethod(_from_preset)


# %% [markdown]
# The real architectures side by side. Llama-2-7B's $d_{ff}$ of 11,008 is chapter 6's rule,
# $8/3 \cdot 4096$ rounded up to a multiple of 256; Llama-3.1-8B's 14,336 is the same rule with
# Meta's `ffn_dim_multiplier` of 1.3, rounded up to a multiple of 1,024 (the last asserts check
# both with chapter 6's `swiglu_hidden_size`).

# %%
REAL = ("gpt2", "llama-2-7b", "llama-3.1-8b", "llama-3.2-1b")
real = {name: ModelConfig.from_preset(name) for name in REAL}
print(f"{'':15}" + "".join(f"{name:>14}" for name in real))
fields = "vocab_size d_model n_layers n_heads n_kv_heads d_ff norm mlp position bias tie_embeddings"
for field in fields.split():
    print(f"{field:15}" + "".join(f"{getattr(c, field)!s:>14}" for c in real.values()))
print(f"{'d_ff / d_model':15}" + "".join(f"{c.d_ff / c.d_model:>14.2f}" for c in real.values()))
assert real["llama-2-7b"].n_kv_heads == real["llama-2-7b"].n_heads  # no GQA in Llama-2-7B
assert real["llama-3.2-1b"].tie_embeddings and not real["llama-3.1-8b"].tie_embeddings
assert swiglu_hidden_size(4096) == 11008  # Llama-2's 8/3 rule, rounded up to a multiple of 256
assert swiglu_hidden_size(4096, multiple_of=1024, ffn_dim_multiplier=1.3) == 14336  # Llama-3.1

# %% [markdown]
# ## 4. The exported model
#
# Two small factories turn the `norm` and `mlp` fields into chapter 6's modules.


# %%
#| export
def make_norm(config: ModelConfig) -> nn.Module:
    """LayerNorm (GPT-2, with bias) or RMSNorm (Llama) of width ``d_model``."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.d_model, eps=config.norm_eps)
    return LayerNorm(config.d_model, eps=config.norm_eps)


def make_mlp(config: ModelConfig) -> nn.Module:
    """SwiGLU (Llama) or FeedForward with the activation named by ``config.mlp`` (GPT-2).
    Neither drops out: the block applies ``config.dropout`` to each branch's output."""
    if config.mlp == "swiglu":
        return SwiGLU(config.d_model, config.d_ff, bias=config.bias)
    return FeedForward(config.d_model, config.d_ff, activation=config.mlp, bias=config.bias)


# %% [markdown]
# The block is then section 1's, with the parts chosen by the configuration, and its `forward`
# adds three things: optional `positions` and an `attn_mask`, passed on to attention (chapter 9
# needs both for batches of prompts of different lengths), and the residual dropout that
# training may switch on, applied to each branch's output before it is added to the stream.
# Every block receives the *same* `RotaryEmbedding` object (it holds no weights), so a printed
# model shows that one object several times: as `rotary_emb` of the decoder and as `rope`
# inside every attention block.


# %%
#| export
class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``; ``(B, T, C) -> (B, T, C)``.

    Submodules (Hugging Face Llama's names): ``input_layernorm``, ``self_attn``
    (:class:`MultiHeadAttention`), ``post_attention_layernorm``, ``mlp``. ``rope`` is the
    :class:`RotaryEmbedding` shared by all blocks, or None (learned positions).
    """

    def __init__(self, config: ModelConfig, rope: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.input_layernorm = make_norm(config)
        self.self_attn = MultiHeadAttention(
            config.d_model,
            config.n_heads,
            config.n_kv_heads,
            dropout=config.dropout,
            bias=config.bias,
            rope=rope,
            qkv_bias=config.qkv_bias,
        )
        self.post_attention_layernorm = make_norm(config)
        self.mlp = make_mlp(config)
        self.dropout = nn.Dropout(config.dropout)  # on each branch's output, while training

    def forward(self, x, positions=None, attn_mask=None):
        """``x (B, T, C)`` -> ``(B, T, C)``. ``positions`` (``(T,)`` or ``(B, T)``, default
        ``0 .. T - 1``) rotate q and k; ``attn_mask`` (boolean, broadcast to ``(B, 1, T, T)``,
        True = may attend) joins the causal mask. Unchecked here: :meth:`DecoderLM.forward`
        checks once."""
        h = self.self_attn(self.input_layernorm(x), positions, attn_mask=attn_mask)
        x = x + self.dropout(h)  # (B, T, C)
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


# %% [markdown]
# The model in two layers, as in Hugging Face: `Decoder` turns ids into final hidden vectors
# (embeddings, blocks, final norm), and `DecoderLM` adds the LM head and the loss. Its
# submodules are therefore `model.embed_tokens`, `model.layers.0.self_attn.q_proj`, ...,
# `lm_head`: exactly the names in a Llama checkpoint.


# %%
#| export
class Decoder(nn.Module):
    """Token ids ``(B, T)`` -> final hidden vectors ``(B, T, C)``: embed, blocks, final norm."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        C = config.d_model
        self.embed_tokens = TokenEmbedding(config.vocab_size, C, validate=False)
        self.embed_positions, self.rotary_emb = None, None
        if config.position == "learned":  # GPT-2: a vector per position, added
            T = config.context_length
            self.embed_positions = LearnedPositionalEmbedding(T, C, validate=False)
        else:  # Llama: nothing added; one RoPE shared by every block's attention
            self.rotary_emb = RotaryEmbedding(
                config.head_dim, base=config.rope_base, scaling=config.rope_scaling
            )
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(config, self.rotary_emb) for _ in range(config.n_layers)
        )
        self.norm = make_norm(config)

    def forward(self, ids, positions=None, attn_mask=None) -> torch.Tensor:
        """``ids (B, T)`` -> final hidden vectors ``(B, T, C)``, before the LM head.
        ``positions`` and ``attn_mask`` as in :meth:`TransformerBlock.forward`; unchecked here
        (:meth:`DecoderLM.forward` checks them)."""
        ### BEGIN SOLUTION
        # TASK: embed (+ learned positions if any), dropout, every layer, final norm
        x = self.embed_tokens(ids)  # (B, T, C)
        if self.embed_positions is not None:
            x = x + self.embed_positions(ids.shape[1] if positions is None else positions)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, positions, attn_mask)  # (B, T, C)
        return self.norm(x)
        ### END SOLUTION


# %% [markdown]
# **Initialisation.** PyTorch's defaults are not GPT-2's: `nn.Embedding` draws
# $\mathcal{N}(0, 1)$, and a tied head would then produce logits of size $\sqrt{C}$. OpenAI's
# released GPT-2 code draws the weights from $\mathcal{N}(0, 0.02^2)$ and the position embeddings
# from $\mathcal{N}(0, 0.01^2)$, biases zero, norm gains one. The GPT-2 paper adds that the
# layers writing into the residual stream start scaled by $1/\sqrt{N}$ for $N$ residual layers.
# A model of $L$ blocks has $N = 2L$ of them (each block adds two branch outputs to the stream,
# whose variance would otherwise grow with depth), so nanoGPT (and Hugging Face's GPT-2) draw
# `o_proj` and `down_proj` (GPT-2's two `c_proj`) with std $0.02 / \sqrt{2L}$. `init_weights`
# below follows nanoGPT: std 0.02 for every matrix and embedding (the position embeddings too),
# and the scaled projections. It applies the same scaling to the Llama-style models; Hugging
# Face's `LlamaPreTrainedModel._init_weights` does not (std 0.02, `initializer_range`, for
# every matrix), which matters only for training from scratch, not for loaded weights.


# %%
#| export
def init_weights(model: nn.Module, std: float = 0.02, n_layers: int = 1) -> None:
    """nanoGPT's GPT-2 initialisation, in place: weights ``N(0, std^2)``, ``o_proj`` and
    ``down_proj`` ``N(0, (std / sqrt(2 n_layers))^2)`` (the GPT-2 paper's residual scaling),
    biases 0, norm gains 1. Also for Llama-style models (Hugging Face's Llama: ``N(0, std^2)``
    for every matrix)."""
    ### BEGIN SOLUTION
    # TASK: biases 0, 1-d gains 1, o_proj/down_proj ~ N(0, std/sqrt(2 n_layers)), others ~ N(0, std)
    for name, p in model.named_parameters():  # a tied weight is visited once
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() == 1:  # LayerNorm / RMSNorm gain
            nn.init.ones_(p)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers))
        else:
            nn.init.normal_(p, 0.0, std)
    ### END SOLUTION


# %% [markdown]
# `DecoderLM` checks its input once, at the boundary (type, shape, `context_length`, id range),
# and no layer checks it again. With `targets` it also returns the mean cross-entropy over all
# $B \times T$ positions (positions whose target is `-100` are skipped: padding).


# %%
#| export
class DecoderLM(nn.Module):
    """GPT-2 or Llama: ``model(ids (B, T))`` -> logits ``(B, T, V)``, or ``(logits, loss)``
    with ``targets``. It keeps its own copy of ``config`` (later edits of yours do not reach it).
    Hugging Face folders in and out: :meth:`from_hf`, :meth:`save_hf` (section 8)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        # Checked again (a field may have been edited since) and copied, since the caller's may be
        # shared or edited later; the RoPE class is passed in, as in ModelConfig.__post_init__.
        self.config = config = own_copy(config, RotaryEmbedding)
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        init_weights(self, config.init_std, config.n_layers)

    def forward(self, ids, targets=None, positions=None, attn_mask=None):
        """``ids (B, T)`` -> logits ``(B, T, V)``; with ``targets (B, T)`` (-100: ignored),
        ``(logits, loss)``. ``positions``: ``(T,)`` or ``(B, T)``; ``attn_mask``: boolean
        ``(B, 1, T, T)``, True = may attend (a ``(B, T)`` padding mask of 1/0 goes in as
        ``mask[:, None, None, :].bool()``). All checked, by ``check_inputs``."""
        check_inputs(self.config, ids, targets, positions, attn_mask)
        logits = self.lm_head(self.model(ids, positions, attn_mask))  # (B, T, V)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss


# %% [markdown]
# First, it is section 2's TinyGPT: a GPT-2 style configuration of the same sizes, TinyGPT's
# weights copied in by name (the names agree but for the `model.` prefix), and the same logits.

# %%
tiny_config = ModelConfig(
    vocab_size=2048,
    context_length=64,
    d_model=64,
    n_layers=2,
    n_heads=4,
    norm="layernorm",
    mlp="gelu_tanh",
    position="learned",
    bias=True,
    tie_embeddings=True,
)
gpt = DecoderLM(tiny_config)
state = {("" if k.startswith("lm_head") else "model.") + k: v for k, v in tiny.state_dict().items()}
print(gpt.load_state_dict(state))
print("same logits as TinyGPT:", torch.allclose(gpt(ids), tiny(ids), atol=1e-6))
assert torch.allclose(gpt(ids), tiny(ids), atol=1e-6)

# %% [markdown]
# Now the Llama-style model of the book, `stories-small`, printed. Read it as the Llama-3.1-8B
# printout: an embedding, a list of identical blocks (attention with q/k/v/o projections and a
# rotary embedding, a gated MLP with gate/up/down projections, two RMSNorms), a final norm, a
# head. Note `k_proj` and `v_proj` are half as wide as `q_proj`: 2 K/V heads for 4 query heads.
# The `(rotary_emb)` line under the decoder and the `(rope)` line in each attention block are
# one and the same `RotaryEmbedding` object, printed wherever it is referenced; it holds no
# weights, so nothing is counted twice.

# %%
model = DecoderLM(ModelConfig.from_preset("stories-small"))
print(model)
assert all(layer.self_attn.rope is model.model.rotary_emb for layer in model.model.layers)

# %% [markdown]
# ## 5. Shapes through the whole forward pass
#
# ```mermaid
# flowchart TB
#     a["input_ids (1, T)"] --> b["embed_tokens (1, T, C)"]
#     b --> c["L blocks (1, T, C)"]
#     c --> d["norm (1, T, C)"]
#     d --> e["lm_head (1, T, V)"]
#     e --> f["last position (1, V)"]
#     f --> g["softmax (1, V)"]
#     g --> h["next id (1, 1)"]
#     h -->|"append: (1, T + 1)"| a
# ```
#
# The running example through `stories-small` ($C = 128$, 4 blocks, $V = 2{,}048$), one stage at
# a time. Llama-3.1-8B goes through the same stages with $C = 4096$, 32 blocks and
# $V = 128{,}256$:

# %%
with torch.no_grad():
    x = model.model.embed_tokens(ids)
    print("input_ids          ", tuple(ids.shape))
    print("embed_tokens       ", tuple(x.shape))
    for i, layer in enumerate(model.model.layers):
        x = layer(x)  # (1, T, C)
        print(f"after block {i}      ", tuple(x.shape))
    x = model.model.norm(x)
    logits = model.lm_head(x)
    probs = logits[:, -1].softmax(dim=-1)
    next_id = probs.argmax(dim=-1, keepdim=True)
    print("norm               ", tuple(x.shape))
    print("logits             ", tuple(logits.shape))
    print("last position probs", tuple(probs.shape), "sum", round(probs.sum().item(), 4))
    print("next id            ", tuple(next_id.shape))
assert torch.allclose(logits, model(ids), atol=1e-6)
assert next_id.item() == model(ids)[0, -1].argmax().item()

# %% [markdown]
# Softmax is applied to the `vocab_size` logits of the last position, never to the hidden
# vector. Stepping through by hand, block by block, gave the same logits as `model(ids)`.
# Which id comes next we leave unprinted: in an untrained model the logits are nearly equal, so
# the top one can change with the last bits of the random weights (section 7 looks at the text
# such a model writes).
#
# ## 6. Counting parameters, and the memory they take
#
# Where the parameters live follows from the shapes. Per block, attention holds
# $C \cdot (H + 2H_{kv}) D + H D \cdot C$ weights and a SwiGLU MLP $3 C \cdot d_{ff}$; the
# embedding and the head $V \cdot C$ each. `parameter_counts` groups a model's parameters by the
# module that holds them: the part of the dotted name before `.weight` or `.bias`, matched
# whole (`model.layers.0.self_attn.q_proj.weight` is held by `q_proj`: attention). A tied head
# is counted once, with the embedding.

# %%
#| export
COMPONENTS = {  # the module that holds a parameter -> its component
    "embed_tokens": "token embedding",
    "embed_positions": "position embedding",
    **dict.fromkeys(("q_proj", "k_proj", "v_proj", "o_proj"), "attention"),
    **dict.fromkeys(("gate_proj", "up_proj", "down_proj"), "MLP"),
    **dict.fromkeys(("input_layernorm", "post_attention_layernorm", "norm"), "norms"),
    "lm_head": "LM head",
}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per component (:data:`COMPONENTS`' values) and ``"total"``. A parameter is
    placed by the whole name of the module that holds it (``q_proj`` in ``...q_proj.weight``:
    attention); a ValueError names any other (``score.weight``, ``...q_proj.lora_A.weight``)."""
    counts = dict.fromkeys(COMPONENTS.values(), 0)
    for name, p in model.named_parameters():  # shared (tied) parameters appear once
        module, _, kind = name.rpartition(".")  # "model.norm.weight": "model.norm", "weight"
        holder = module.rpartition(".")[2]  # the holding module's own name: "norm"
        if holder not in COMPONENTS or kind not in ("weight", "bias"):
            raise ValueError(
                f"parameter {name!r} is not a weight or bias of a module named one of "
                f"{sorted(COMPONENTS)}, so it belongs to no component"
            )
        counts[COMPONENTS[holder]] += p.numel()
    counts["total"] = sum(counts.values())
    return counts


# %% [markdown]
# A real architecture is too large to build in memory here (Llama-3.1-8B takes about 30 GiB in
# float32), but PyTorch's **`meta` device** creates tensors that have a shape and a dtype and no
# storage: the model is built without memory for its weights, and every count is exact.

# %%
rows = {}
for name in ("gpt2", "llama-2-7b", "llama-3.1-8b", "llama-3.2-1b", "stories-small"):
    with torch.device("meta"):
        rows[name] = parameter_counts(DecoderLM(ModelConfig.from_preset(name)))
print(f"{'':16}" + "".join(f"{name:>15}" for name in rows))
for part in rows["gpt2"]:
    print(f"{part:16}" + "".join(f"{counts[part]:>15,}" for counts in rows.values()))
assert rows["gpt2"]["total"] == 124_439_808
assert rows["llama-2-7b"]["total"] == 6_738_415_616
assert rows["llama-3.1-8b"]["total"] == 8_030_261_248
assert rows["llama-3.2-1b"]["total"] == 1_235_814_400

# %% [markdown]
# These are the counts of the published checkpoints. The LM head of Llama-3.1-8B is
# $4096 \times 128{,}256$; its share of the whole, and the memory each model takes for its
# weights alone (4 bytes a parameter in float32, 2 in bfloat16; training needs several times
# more for gradients and optimizer state, chapter 8):

# %%
head = rows["llama-3.1-8b"]["LM head"]
print(f"Llama-3.1-8B LM head: {head:,} = {head / rows['llama-3.1-8b']['total']:.1%} of the model")
assert head == 4096 * 128256
for name, counts in rows.items():
    fp32, bf16 = counts["total"] * 4 / 2**20, counts["total"] * 2 / 2**20
    print(f"{name:14} fp32 {fp32:>9,.0f} MiB   bf16 {bf16:>9,.0f} MiB")

# %% [markdown]
# The same counts as shares of each model, one bar per preset:

# %% tags=["hide-input"] jupyter={"source_hidden": true}
import matplotlib.pyplot as plt

parts = [part for part in rows["gpt2"] if part != "total"]


def short(n):  # 6,738,415,616 -> "6.74B", 124,439,808 -> "124M"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


labels = [f"{name} ({short(counts['total'])})" for name, counts in rows.items()]
fig, ax = plt.subplots(figsize=(9, 3.4))
left = [0.0] * len(rows)
for part in parts:
    shares = [100 * counts[part] / counts["total"] for counts in rows.values()]
    ax.barh(labels, shares, left=left, label=part)
    left = [a + b for a, b in zip(left, shares)]
ax.invert_yaxis()
ax.set_xlabel("share of the parameters (%)")
ax.set_xlim(0, 100)
ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22))
ax.set_title("Where the parameters are, by component")
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# Most of a large model is its blocks, and most of a block is its MLP; for the small `stories`
# models the embedding and head take a much larger share, because $V \cdot C$ shrinks more
# slowly than $L \cdot C^2$. `parameter_counts` raises for a parameter it cannot place rather
# than count it silently under a wrong part: a classifier head (`score.weight`), or a LoRA
# adapter's `model.layers.0.self_attn.q_proj.lora_A.weight`, which sits inside attention but is
# held by `lora_A`. Chapter 11 adds adapters, and will need a component of their own.
#
# ## 7. An untrained model: its initialisation, its loss, its text
#
# `DecoderLM` ran `init_weights` on construction. The standard deviations it left in the
# matrices, and the norms' gains, which all start at 1 (so their standard deviation is 0):

# %%
named = dict(model.named_parameters())
for name in (
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.0.self_attn.o_proj.weight",
    "model.layers.0.mlp.down_proj.weight",
):
    print(f"{name:42} std {named[name].std().item():.3f}")
gain = named["model.layers.0.input_layernorm.weight"]
print(f"{'model.layers.0.input_layernorm.weight':42} every gain {gain.unique().tolist()}")
print("0.02 / sqrt(2 * 4) =", round(0.02 / math.sqrt(8), 4))
assert torch.equal(gain, torch.ones(128))
o_proj_std = named["model.layers.0.self_attn.o_proj.weight"].std().item()
assert abs(o_proj_std - 0.02 / math.sqrt(8)) < 0.0005

# %% [markdown]
# With weights this small the logits are all close to zero, so the model spreads its
# probability almost evenly over the $V$ tokens, and the cross-entropy of any target is about
# $-\ln(1/V) = \ln V$. We measure it on real text from the corpus: windows of 64 tokens, each
# position predicting the next token.

# %%
text_ids = torch.tensor(tok.encode(load_corpus("stories")[:20000], allowed_special="all"))
starts = torch.arange(0, 8 * 64, 64)
x = torch.stack([text_ids[s : s + 64] for s in starts])  # (8, 64)
y = torch.stack([text_ids[s + 1 : s + 65] for s in starts])  # (8, 64): the next tokens
with torch.no_grad():
    logits, loss = model(x, y)
print("x", tuple(x.shape), "| y", tuple(y.shape), "| logits", tuple(logits.shape))
print("loss", round(loss.item(), 2), "| ln(vocab_size)", round(math.log(2048), 3))
assert abs(loss.item() - math.log(2048)) < 0.05
assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 2048), y.reshape(-1)))

# %% [markdown]
# TinyGPT of section 2 kept PyTorch's default initialisation: its tied head multiplies the
# normalised hidden vectors by $\mathcal{N}(0, 1)$ embeddings, so its logits have a standard
# deviation of about $\sqrt{C} = 8$ instead of nearly 0, and its untrained loss is far above
# $\ln V$: it is confidently wrong before it has seen anything, and training first has to undo
# that.

# %%
with torch.no_grad():
    tiny_logits, logits = tiny(x), model(x)
    tiny_loss = F.cross_entropy(tiny_logits.reshape(-1, 2048), y.reshape(-1))
print(
    "logits std: TinyGPT",
    round(tiny_logits.std().item(), 1),
    "| DecoderLM",
    round(logits.std().item(), 2),
)
print("TinyGPT, default init: loss", round(tiny_loss.item(), 1))
assert 6 < tiny_logits.std() < 11 and logits.std() < 0.5 and tiny_loss > 2 * math.log(2048)

# %% [markdown]
# An untrained model still generates: **greedy decoding** appends the most probable next token
# and repeats (chapter 9 adds sampling, a KV cache and stopping rules). Since nothing was
# learned, the text is noise, and that is the motivation for chapter 8.


# %%
#| export
@torch.no_grad()
def greedy_generate(model: DecoderLM, ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Append ``max_new_tokens`` argmax tokens to ``ids (B, T)``: ``(B, T + max_new_tokens)``.

    The model sees at most its last ``context_length`` tokens. Deterministic: no sampling.
    """
    if not isinstance(getattr(model, "config", None), ModelConfig):
        raise TypeError(f"model must be a DecoderLM, got {type(model).__name__}")
    check_id_batch(ids, "ids", model.config.vocab_size)
    check_int(max_new_tokens, "max_new_tokens", minimum=0)
    was_training = model.training
    model.eval()
    ### BEGIN SOLUTION
    # TASK: max_new_tokens times: model on the last context_length ids, append the last argmax
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.config.context_length :])  # (B, T, V)
        next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        ids = torch.cat([ids, next_id], dim=1)
    ### END SOLUTION
    model.train(was_training)
    return ids


# %%
out = greedy_generate(model, ids, max_new_tokens=20)
print("ids", tuple(ids.shape), "-> out", tuple(out.shape))
assert out.shape == (1, ids.shape[1] + 20) and torch.equal(out[:, : ids.shape[1]], ids)
assert torch.equal(out, greedy_generate(model, ids, max_new_tokens=20))  # no sampling

# %% [markdown]
# The 20 new tokens as text. Which tokens an untrained model picks is decided by logits that
# are nearly equal, so the last bits of its random weights, which can differ on another CPU,
# may change them: this output is stored, but not compared when the notebook is replayed.

# %%
# NBVAL_IGNORE_OUTPUT
new_ids = out[0, ids.shape[1] :].tolist()
print(repr(tok.decode(new_ids)))
assert len(new_ids) == 20 and all(0 <= i < tok.vocab_size for i in new_ids)

# %% [markdown]
# Word pieces from the stories' vocabulary in no order, often ending in one piece repeated over
# and over: always taking the top token easily falls into a loop, one reason chapter 9 samples.
#
# If the text holds `�` marks, they are not a bug of `decode`. The tokenizer is byte-level
# (chapter 1): a token is a run of UTF-8 bytes, and its first 256 ids are the single bytes,
# including 128 to 255, which in UTF-8 are never a character on their own (most are parts of a
# character of several bytes; a few, such as 0xC0 and 0xFF, never occur at all). The `stories`
# corpus is plain ASCII, so those ids never occur in it, and a trained model gives them almost
# no probability; an untrained one gives them as much as any other token. `decode` replaces
# bytes that form no character with U+FFFD, `�`: id 151, the byte 0x97, alone; and the three
# bytes of the em dash, each alone and then together:

# %%
print(151, tok.decode_bytes([151]), repr(tok.decode([151])))
dash = [226, 128, 148]  # the UTF-8 bytes E2 80 94 of "\u2014"
print(dash, [tok.decode([i]) for i in dash], "together:", repr(tok.decode(dash)))
assert tok.decode([151]) == "\ufffd" and tok.decode(dash) == "\u2014"
assert all(tok.decode([i]) == "\ufffd" for i in range(128, 256))  # no upper byte is a character
assert load_corpus("stories").isascii()  # and the corpus holds none of them

# %% [markdown]
# ## 8. Hugging Face checkpoints in and out
#
# A Hugging Face model folder holds `config.json` and the weights in safetensors files. Because
# our module names are Hugging Face Llama's, loading a Llama-family checkpoint is the identity
# table; GPT-2's needs a real table (its `Conv1D` layers store weights transposed, and one
# `c_attn` holds q, k and v side by side). The tables and file formats live in the hand-written
# module `llmbook.io.hf`, which reads and writes both families, plus Qwen2 (Llama with q/k/v
# biases) and Mistral (its context is capped at its 4,096-token sliding window, within which
# sliding-window attention is plain causal attention), sharded or not. `DecoderLM` reaches
# it through two methods, attached to the class here, beside the section that explains them:


# %%
#| export
def _from_hf(cls, path, dtype=None, device=None) -> DecoderLM:
    """Load a local Hugging Face folder (GPT-2, Llama, Mistral, Qwen2): :mod:`llmbook.io.hf`.
    It has no checksum to verify (``llmbook.load_model`` verifies the book's own model)."""
    from llmbook.io.hf import load_hf

    return load_hf(path, cls, ModelConfig, dtype=dtype, device=device)


def _save_hf(self, path, *, eos_token_id: int | None = None) -> None:
    """Write a folder ``transformers`` loads, removing older weights: :mod:`llmbook.io.hf`."""
    from llmbook.io.hf import save_hf

    save_hf(self, path, eos_token_id=eos_token_id)


DecoderLM.from_hf = classmethod(_from_hf)  # DecoderLM.from_hf(path) -> a model
DecoderLM.save_hf = _save_hf  # model.save_hf(path)


# %% [markdown]
# Offline, we let `transformers` create a tiny random Llama with grouped-query attention and
# Llama-3.1's RoPE scaling, save it, load it into a `DecoderLM`, and compare the logits.

# %%
import tempfile
from pathlib import Path

import transformers

transformers.utils.logging.disable_progress_bar()  # no progress bars in the stored outputs
hf_config = transformers.LlamaConfig(
    vocab_size=2048,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=16384,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    rope_scaling=LLAMA3_SCALING,
)
torch.manual_seed(0)
reference = transformers.LlamaForCausalLM(hf_config).eval()
folder = Path(tempfile.mkdtemp())
reference.save_pretrained(folder / "llama")
print(sorted(p.name for p in (folder / "llama").iterdir()))

# %%
loaded = DecoderLM.from_hf(folder / "llama")
print(loaded.config)
with torch.no_grad():
    ours, theirs = loaded(ids), reference(input_ids=ids).logits
same = torch.allclose(ours, theirs, atol=1e-5)
print("logits", tuple(ours.shape), "| equal to transformers' within 1e-5:", same)
assert torch.allclose(ours, theirs, atol=1e-5)

# %% [markdown]
# And back: `save_hf` writes a folder that `transformers` loads as a `LlamaForCausalLM`.

# %%
loaded.save_hf(folder / "ours")
again = transformers.AutoModelForCausalLM.from_pretrained(folder / "ours").eval()
with torch.no_grad():
    same = torch.allclose(again(input_ids=ids).logits, theirs, atol=1e-5)
print(type(again).__name__, sorted(p.name for p in (folder / "ours").iterdir()), same)
assert same

# %% [markdown]
# The GPT-2 family goes through the real table. Its `Conv1D` stores a weight as the math writes
# it, `(d_in, d_out)`, where `nn.Linear` stores `(d_out, d_in)`; and `c_attn` is q, k and v side
# by side, so it is three times as wide. `from_hf` transposes and splits; the logits agree:

# %%
sizes = dict(vocab_size=2048, n_positions=64, n_embd=64, n_layer=2, n_head=4)
gpt2_hf = transformers.GPT2Config(**sizes, bos_token_id=2047, eos_token_id=2047)  # <|endoftext|>
reference = transformers.GPT2LMHeadModel(gpt2_hf).eval()
reference.save_pretrained(folder / "gpt2")
loaded = DecoderLM.from_hf(folder / "gpt2")
c_attn, q_proj = reference.transformer.h[0].attn.c_attn, loaded.model.layers[0].self_attn.q_proj
print("c_attn.weight", tuple(c_attn.weight.shape), "-> q_proj.weight", tuple(q_proj.weight.shape))
print(
    "norm", loaded.config.norm, "| mlp", loaded.config.mlp, "| tied", loaded.config.tie_embeddings
)
with torch.no_grad():
    same = torch.allclose(loaded(ids), reference(input_ids=ids).logits, atol=1e-5)
print("logits equal to transformers' within 1e-5:", same)
assert same and torch.equal(q_proj.weight, c_attn.weight[:, :64].T)

# %% [markdown]
# Online, the real models load with the same call. `huggingface_hub` downloads a folder once
# into its cache:
#
# ```python
# from huggingface_hub import snapshot_download
# files = ["*.json", "*.safetensors", "merges.txt"]  # config, weights, tokenizer; nothing else
# gpt2 = DecoderLM.from_hf(snapshot_download("openai-community/gpt2", allow_patterns=files))
# llama = DecoderLM.from_hf(                       # gated: accept the licence on the Hub first
#     snapshot_download("meta-llama/Llama-3.2-1B", allow_patterns=files,
#                       ignore_patterns=["original/*"]),
#     dtype=torch.bfloat16,
# )
# ```
#
# Without `allow_patterns` the download takes every file of the repository: GPT-2's holds its
# weights in several formats (PyTorch, TensorFlow, TFLite, Flax, Rust, ONNX), about 6 GB of
# files by the Hub's file list for `openai-community/gpt2` (not measured here, since this
# notebook runs offline), and Llama's `original/` folder repeats the weights in Meta's own
# `.pth` format.
#
# GPT-2 then predicts with the weights OpenAI trained, through the code of this book, and its
# logits should agree with `transformers`' within 1e-5, as `tests/test_hf.py` checks on random
# models of every supported kind. Its tokenizer is not the book's: use
# `tiktoken.get_encoding("gpt2")`.
#
# ## 9. From notebook to library
#
# What the exported model adds for users of the package. First, bad input is stopped at the
# boundary with a message that says what to do. The checks live in the hand-written module
# `llmbook.checks.model`, so that the cells above stay on the model: `check_config` (which
# `ModelConfig.__post_init__` calls) holds a table of rules, each with its fix, and reports
# every broken rule at once; `check_inputs` (which `DecoderLM.forward` calls) checks the type,
# shape and range of `ids`, `targets` and `positions`, and the shape of `attn_mask`. A model
# also keeps its own copy of its configuration, checked again when the model is built: two
# models built from one `ModelConfig` that was edited in between stay independent, and an edit
# that breaks it is reported with the fields that changed. A configuration that cannot work:

# %% tags=["raises-exception"]
ModelConfig(d_model=100, n_heads=3, n_kv_heads=2)

# %% [markdown]
# A sequence longer than the context the model was built for (its learned positions, or the
# RoPE range it was trained on, end there):

# %% tags=["raises-exception"]
model(torch.zeros(1, 300, dtype=torch.long))

# %% [markdown]
# An id outside the vocabulary (here, from GPT-2's tokenizer, whose ids go up to 50,256):

# %% tags=["raises-exception"]
model(torch.tensor([[15496, 11, 995]]))

# %% [markdown]
# A padding mask as Hugging Face writes it (its `attention_mask`, `(B, T)` with 1, or True, for
# a real token), given as it is. With `B == T` it would broadcast as a `(Tq, Tk)` mask and hide
# the wrong keys, so `attn_mask` has one convention with no look-alike: four dimensions,
# `(B, 1, T, Tk)`.

# %% tags=["raises-exception"]
model(torch.ones(4, 4, dtype=torch.long), attn_mask=torch.ones(4, 4, dtype=torch.bool))

# %% [markdown]
# These checks run once per call of `model(...)`, in `DecoderLM.forward`, and in no layer. The
# id range check reads two numbers back from the device; under `torch.compile` it is skipped, so
# the whole forward pass compiles into one graph (`fullgraph=True` fails on any break). The
# cheap `eager` backend only traces, which is enough to check:

# %%
compiled = torch.compile(model, fullgraph=True, backend="eager")
with torch.no_grad():
    print("compiled == eager:", torch.allclose(compiled(ids), model(ids), atol=1e-6))

# %% [markdown]
# Last, a helper that picks the fastest device available, for chapters 8 and 9; the model
# itself never hard-codes one (`model.to(device)` moves it, and every tensor it creates follows
# its input's device).


# %%
#| export
def default_device() -> torch.device:
    """``cuda`` if a GPU is available, else ``mps`` (Apple silicon), else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# %% [markdown]
# ## Summary
#
# - A **block** is two residual branches, `x + attn(norm(x))` and `x + mlp(norm(x))`; its
#   input and output are `(B, T, C)`, so $L$ of them stack.
# - A **decoder-only LM** is: token embedding (plus learned positions for GPT-2), $L$ blocks, a
#   final norm, an LM head $C \to V$. Logits `(B, T, V)`: a next-token distribution per position.
# - **Llama = GPT-2 with parts swapped**: RMSNorm, RoPE instead of added positions, SwiGLU
#   (2.69, 3.5 or 4 times $C$ wide in Llama-2-7B, Llama-3.1-8B, Llama-3.2-1B), no biases;
#   Llama-3.1-8B also groups its K/V heads and unties its head, while Llama-2-7B has one K/V
#   head per query head and Llama-3.2-1B ties its head. One `ModelConfig` describes them all,
#   validated once, and each model keeps its own copy.
# - Parameters counted exactly on the `meta` device: GPT-2 124,439,808; Llama-2-7B
#   6,738,415,616; Llama-3.1-8B 8,030,261,248 (its head, $4096 \times 128{,}256$, is 6.5%);
#   Llama-3.2-1B 1,235,814,400.
# - **Initialisation** $\mathcal{N}(0, 0.02^2)$ with residual projections scaled by
#   $1/\sqrt{2L}$ for $L$ blocks (the GPT-2 paper's $1/\sqrt{N}$ for its $N = 2L$ residual
#   layers, as nanoGPT writes it; Hugging Face's Llama does not scale) gives an untrained loss
#   of about $\ln V$ ($\ln 2048 = 7.625$) and gibberish greedy text.
# - Module names equal Hugging Face Llama's, so checkpoints load by table: `DecoderLM.from_hf`
#   and `save_hf` match `transformers`' logits to 1e-5.
#
# ## Exercises
#
# 1. **Llama-2-13B.** Its `config.json` says: $C = 5120$, 40 layers, 40 heads, FFN 13824, vocab
#    32,000, untied head. Build it on the meta device and count its parameters by component.
# 2. **Mistral-7B from its config.** Mistral-7B-v0.1 is Llama with 8 K/V heads for 32 query
#    heads, FFN 14336, vocab 32,000, and a sliding window of 4,096 positions. Turn its
#    `config.json` (as a dict) into `ModelConfig` fields with `llmbook.io.hf.config_from_hf`,
#    and count its parameters. How many would it have with plain multi-head attention?
# 3. **Tie the head.** How many parameters does tying save for `stories-small`, and what share
#    of the model is that? Check that the loss of an untrained tied model is also about $\ln V$.
# 4. **Why scale the residual projections?** Build a 24-block `stories-small` model twice, once
#    with `init_weights` as is and once with `o_proj` and `down_proj` drawn with std 0.02 too.
#    Compare the standard deviation of the residual stream after each block.
# 5. **The count by formula.** Write `count_by_formula(config)` that computes the number of
#    parameters from the fields of a `ModelConfig` alone (biases, LayerNorm's two vectors, tied
#    heads and learned positions included), and check it against `parameter_counts` on the meta
#    device for every preset.
#
# Worked solutions: `chapters/solutions/07_decoder.ipynb`.
