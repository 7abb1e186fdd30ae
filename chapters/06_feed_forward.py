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
# # Chapter 06: The feed-forward network, normalisation and residuals
#
# Attention (chapters 4 and 5) lets positions exchange information: each token's vector becomes a
# weighted mix of the vectors before it. What it does not do is *think hard about one token*.
# That is the job of the second half of every transformer block, the **feed-forward network**
# (FFN, or MLP): a small two-layer network applied to each position on its own. It is simple, and it
# holds the largest share of the model's parameters. Around the two halves sit two more pieces that
# make a deep stack trainable at all: **normalisation** and **residual connections**.
#
# **What you will build**
#
# 1. The position-wise MLP (expand, activate, project back), with its parameters counted for
#    GPT-2 small: twice as many per block as attention.
# 2. The activations in use, ReLU, GELU (exact and tanh) and SiLU, from their formulas, plotted.
# 3. `FeedForward`, GPT-2's MLP, and `SwiGLU`, Llama's gated MLP, with the rule that sizes its
#    hidden layer (Llama-2-7B: 11008; Llama-3.1-8B: 14336, and why those differ).
# 4. `LayerNorm` and `RMSNorm`: what each computes, what each costs, where a block puts them.
# 5. Residual connections, with a measurement of the gradient reaching each layer of a deep
#    stack with and without them.
#
# The code this chapter exports lives in `llmbook.feedforward`: `FeedForward`, `SwiGLU`,
# `swiglu_hidden_size`, `LayerNorm` and `RMSNorm`. Chapter 7 assembles them with chapter 5's
# attention into the GPT-2 and Llama blocks. Each is checked against its PyTorch or Hugging Face
# counterpart.

# %%
#| default_exp feedforward

# %% [markdown]
# Cells that start with `#| export` go into the package. The seed is fixed so that every run of
# the notebook prints the same numbers.

# %%
#| export
import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.checks import check_bool, check_choice, check_int, check_positive_float

# %%
torch.manual_seed(0)
torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## 1. The position-wise MLP
#
# The FFN of a transformer block takes the vector $x$ of one position, of width
# $d_{\text{model}}$, through two linear maps with a non-linear function $\phi$ between them:
#
# $$\operatorname{FFN}(x) = \phi(x W_1 + b_1)\, W_2 + b_2, \qquad
#   W_1 \in \mathbb{R}^{d_{\text{model}} \times d_{\text{ff}}},\;
#   W_2 \in \mathbb{R}^{d_{\text{ff}} \times d_{\text{model}}}.$$
#
# The first map **expands** to a wider hidden layer ($d_{\text{ff}} = 4\,d_{\text{model}}$ in
# GPT-2: 768 -> 3072), $\phi$ **activates** each hidden number on its own, and the second map
# **projects back** to $d_{\text{model}}$, so the output can be added to the input. We call the
# two maps `up_proj` and `down_proj`, as Llama's code does. (The math writes $y = xW$ with $W$ of
# shape $(d_{\text{in}}, d_{\text{out}})$; `nn.Linear` stores the transpose,
# $(d_{\text{out}}, d_{\text{in}})$.)
#
# ```mermaid
# flowchart TD
#     x["x (B, T, d_model)"] -->|"up_proj"| h["h (B, T, d_ff)"]
#     h -->|"activation"| a["a (B, T, d_ff)"]
#     a -->|"down_proj"| y["y (B, T, d_model)"]
# ```
#
# **Position-wise** means that the same weights are applied to every position separately: the
# output at position $t$ depends on the input at position $t$ only. All mixing between positions
# happens in attention; the FFN works on what attention gathered. Here is the smallest version,
# on the first sentence of the book's corpus, tokenized with the book's tokenizer and embedded
# with a random table of width 64.

# %%
import matplotlib.pyplot as plt

from llmbook import load_corpus, load_tokenizer

tok = load_tokenizer("stories")
sentence = load_corpus("stories").split(". ")[0] + "."
ids = torch.tensor([tok.encode(sentence)])  # (B, T)
tokens = [tok.decode([i]) for i in ids[0].tolist()]
print(sentence)
print("ids", tuple(ids.shape), "vocabulary", tok.vocab_size)

d_model, d_ff = 64, 256
embedding = nn.Embedding(tok.vocab_size, d_model)  # an untrained table, as in chapter 3
x = embedding(ids).detach()  # (B, T, d_model)
print("x", tuple(x.shape))


# %%
class TinyMLP(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x):  # (B, T, d_model)
        h = self.up(x)  # (B, T, d_ff): expand
        a = F.gelu(h, approximate="tanh")  # (B, T, d_ff): activate, one number at a time
        return self.down(a)  # (B, T, d_model): project back


tiny = TinyMLP(d_model, d_ff)
with torch.no_grad():
    y = tiny(x)
    one_at_a_time = torch.stack([tiny(x[0, t]) for t in range(x.shape[1])])  # (T, d_model)
print("x", tuple(x.shape), "-> up", tuple(tiny.up(x).shape), "-> y", tuple(y.shape))
print("each position alone gives the same output:", torch.allclose(y[0], one_at_a_time, atol=1e-6))
assert torch.allclose(y[0], one_at_a_time, atol=1e-6)

# %% [markdown]
# So the FFN cannot tell where a token is or what is around it; it transforms whatever vector
# it is given. Reversing the sentence reverses the outputs and changes nothing else:

# %%
with torch.no_grad():
    reversed_out = tiny(x.flip(1))  # the positions in the opposite order
print("FFN(reversed x) == reversed FFN(x):", torch.allclose(reversed_out, y.flip(1), atol=1e-6))
assert torch.allclose(reversed_out, y.flip(1), atol=1e-6)


# %% [markdown]
# **Where the parameters are.** A linear map from $d_{\text{in}}$ to $d_{\text{out}}$ holds
# $d_{\text{in}} d_{\text{out}}$ weights and $d_{\text{out}}$ biases. GPT-2 small's MLP has two,
# $768 \times 3072$ and $3072 \times 768$; its attention has four $768 \times 768$ maps (query,
# key, value, output; GPT-2 stores the first three as one $768 \times 2304$ matrix, the same
# count). Add two LayerNorms per block (a gain and a bias each, section 5), the token and position
# tables (chapter 3) and a final LayerNorm, and the total must be GPT-2's published 124,439,808:


# %%
def linear_params(d_in, d_out, bias=True):
    return d_in * d_out + (d_out if bias else 0)


d, n_layers, vocab, context = 768, 12, 50257, 1024
gpt2_mlp = linear_params(d, 4 * d) + linear_params(4 * d, d)
gpt2_attn = 4 * linear_params(d, d)
gpt2_norms = 2 * (2 * d)  # two LayerNorms per block, weight and bias
gpt2_total = vocab * d + context * d + n_layers * (gpt2_mlp + gpt2_attn + gpt2_norms) + 2 * d
print(f"token table: {vocab * d:,}")
print(f"per block: MLP {gpt2_mlp:,}  attention {gpt2_attn:,}  ratio {gpt2_mlp / gpt2_attn:.2f}")
print(
    f"all 12 MLPs: {n_layers * gpt2_mlp:,} of {gpt2_total:,} = {n_layers * gpt2_mlp / gpt2_total:.1%}"
)
assert gpt2_total == 124_439_808 and gpt2_mlp == 4_722_432 and gpt2_attn == 2_362_368

# %% [markdown]
# Per block the MLP is twice the attention, and the twelve MLPs hold almost half of GPT-2 (most
# of the rest is the token table of 38,597,376 entries). For Llama the share is larger still
# (section 4). One reading of why so much capacity sits here (Geva et al., 2021, "Transformer
# feed-forward layers are key-value memories"): each column of $W_1$ is a *key* that a pattern
# in the input switches on, and the matching row of $W_2$ is the *value* written back when it
# does. Much of what a model knows about words and facts is stored in these matrices.
#
# ## 2. Activations: ReLU, GELU, SiLU
#
# Without $\phi$ the two maps would collapse into one: $(x W_1) W_2 = x (W_1 W_2)$, a single
# $d_{\text{model}} \times d_{\text{model}}$ matrix, and the expansion would buy nothing.

# %%
with torch.no_grad():
    W1, W2 = tiny.up.weight.T, tiny.down.weight.T  # (d_model, d_ff), (d_ff, d_model)
    two_maps = (x @ W1) @ W2  # no activation, no bias
    one_map = x @ (W1 @ W2)  # one (d_model, d_model) matrix
print(
    "W1 @ W2:",
    tuple((W1 @ W2).shape),
    " same output:",
    torch.allclose(two_maps, one_map, atol=1e-5),
)
assert torch.allclose(two_maps, one_map, atol=1e-5)


# %% [markdown]
# Four choices of $\phi$ are in use, written here with $\Phi$ the standard normal cumulative
# distribution and $\sigma$ the logistic sigmoid:
#
# - **ReLU** (original transformer): $\max(0, x)$. Cheap; its gradient is exactly 0 for $x < 0$.
# - **GELU** (BERT, GPT-2): $x\,\Phi(x) = \tfrac{x}{2}\bigl(1 + \operatorname{erf}(x/\sqrt2)\bigr)$,
#   the input weighted by how likely a standard normal is to lie below it. Smooth, and slightly
#   negative for $x < 0$.
# - **GELU, tanh form** (what GPT-2 was trained with, from a time when erf was slow on GPUs):
#   $\tfrac{x}{2}\bigl(1 + \tanh\bigl(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\bigr)\bigr)$.
# - **SiLU** or Swish (Llama, inside SwiGLU): $x\,\sigma(x)$.
#
# From the formulas, checked against PyTorch's:


# %%
def relu(x):
    return torch.clamp(x, min=0)


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def silu(x):
    return x * torch.sigmoid(x)


grid = torch.linspace(-5, 5, 1001)
for name, ours, theirs in [
    ("relu", relu, F.relu),
    ("gelu", gelu, F.gelu),
    ("gelu_tanh", gelu_tanh, lambda t: F.gelu(t, approximate="tanh")),
    ("silu", silu, F.silu),
]:
    assert torch.allclose(ours(grid), theirs(grid), atol=1e-6), name
print("all four equal to torch's within 1e-6")
tanh_error = (gelu(grid) - gelu_tanh(grid)).abs().max().item()
print("largest |GELU - GELU_tanh| on [-5, 5] between 1e-4 and 1e-3:", 1e-4 < tanh_error < 1e-3)
assert 1e-4 < tanh_error < 1e-3

# %% [markdown]
# The tanh form differs from the exact GELU by less than $10^{-3}$ (but more than $10^{-4}$), yet a
# model trained with one should run with the same one: chapter 7 builds small random models in
# GPT-2's format and checks their outputs against Hugging Face's GPT-2 code to $10^{-5}$, which only
# the tanh form passes (a real GPT-2 checkpoint loads the same way). The curves and their slopes
# (the slope is what backpropagation multiplies by):

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
z = torch.linspace(-4, 4, 401, requires_grad=True)
for name, fn, style in [
    ("ReLU", relu, "-"),
    ("GELU", gelu, "-"),
    ("GELU (tanh)", gelu_tanh, ":"),
    ("SiLU", silu, "--"),
]:
    out = fn(z)
    (slope,) = torch.autograd.grad(out.sum(), z)
    _ = axes[0].plot(z.detach(), out.detach(), style, label=name)
    _ = axes[1].plot(z.detach(), slope, style, label=name)
for ax, ylabel in zip(axes, ["phi(x)", "d phi / dx"]):
    ax.set_xlabel("x")
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend()
axes[0].set_title("activations")
axes[1].set_title("their slopes")
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# ReLU's slope jumps from 0 to 1; a unit whose input stays negative gets no gradient at all (a
# "dead" unit). GELU and SiLU bend smoothly, let a little negative signal through, and their
# slopes dip slightly below 0 and overshoot 1. The GELU curves lie on top of each other.
#
# ## 3. The exported `FeedForward`
#
# The library version is `TinyMLP` with the activation chosen by name and one-line guards on the
# arguments. The activations are PyTorch's modules, which compute exactly the formulas above,
# faster. It has no dropout of its own: GPT-2 drops out the MLP's output while training, and
# chapter 7's block does that for both of its branches, attention's output and the MLP's alike.


# %%
#| export
class FeedForward(nn.Module):
    """The position-wise MLP of GPT-2: ``down_proj(act(up_proj(x)))``.

    Args:
        d_model: width of the input and output vectors (GPT-2 small: 768).
        d_ff: width of the hidden layer (GPT-2: ``4 * d_model``).
        activation: one of ``"relu"``, ``"gelu"`` (exact), ``"gelu_tanh"`` (GPT-2), ``"silu"``.
        bias: whether both linear maps have a bias (GPT-2: True).

    No dropout here: the transformer block (chapter 7) drops out each branch's output.

    Shapes: ``(..., d_model) -> (..., d_model)``; ``up_proj.weight`` is ``(d_ff, d_model)``.
    """

    ACTIVATIONS = {  # name -> a new module
        "relu": lambda: nn.ReLU(),
        "gelu": lambda: nn.GELU(),  # exact, with erf
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # GPT-2
        "silu": lambda: nn.SiLU(),  # also called Swish
    }

    def __init__(
        self, d_model: int, d_ff: int, activation: str = "gelu_tanh", bias: bool = True
    ) -> None:
        super().__init__()
        self.d_model, self.d_ff = check_int(d_model, "d_model"), check_int(d_ff, "d_ff")
        self.activation = check_choice(activation, "activation", tuple(self.ACTIVATIONS))
        self.up_proj = nn.Linear(d_model, d_ff, bias=check_bool(bias, "bias"))
        self.act = self.ACTIVATIONS[activation]()
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., d_model) -> (..., d_model)``."""
        ### BEGIN SOLUTION
        # TASK: up_proj, then the activation, then down_proj
        return self.down_proj(self.act(self.up_proj(x)))
        ### END SOLUTION


# %% [markdown]
# With `TinyMLP`'s weights it gives `TinyMLP`'s output; with other activations it computes what
# their formulas say:

# %%
ffn = FeedForward(d_model, d_ff)
print(ffn)
renamed = {
    k.replace(".", "_proj."): v for k, v in tiny.state_dict().items()
}  # up.weight -> up_proj.weight
ffn.load_state_dict(renamed)
with torch.no_grad():
    print("equal to TinyMLP:", torch.allclose(ffn(x), y, atol=1e-6))
    assert torch.allclose(ffn(x), y, atol=1e-6)
    for name, formula in [("relu", relu), ("gelu", gelu), ("silu", silu)]:
        other = FeedForward(d_model, d_ff, activation=name)
        other.load_state_dict(ffn.state_dict())
        expected = other.down_proj(formula(other.up_proj(x)))
        assert torch.allclose(other(x), expected, atol=1e-6), name
print("relu, gelu, silu: equal to their formulas")

# %% [markdown]
# Built on PyTorch's `meta` device, a module has shapes but no memory, so even a large one costs
# nothing to build and count. GPT-2 small's MLP holds the 4,722,432 parameters counted above:

# %%
with torch.device("meta"):
    gpt2_ffn = FeedForward(768, 3072)
n_params = sum(p.numel() for p in gpt2_ffn.parameters())
print(f"FeedForward(768, 3072): {n_params:,} parameters")
assert n_params == gpt2_mlp

# %% [markdown]
# ## 4. The gated MLP: SwiGLU
#
# Llama, Mistral, Qwen and most recent models use a **gated** MLP (Shazeer, 2020, "GLU variants
# improve transformer"). Two maps expand $x$ side by side; one goes through SiLU and acts as a
# *gate*, multiplying the other elementwise, and a third map projects back:
#
# $$\operatorname{SwiGLU}(x) = \bigl(\operatorname{SiLU}(x W_{\text{gate}}) \odot x W_{\text{up}}\bigr)\, W_{\text{down}}.$$
#
# A hidden unit now fires when two patterns in the input agree, which the paper found trains to a
# better loss for the same compute. Llama uses no biases. The names are Hugging Face's
# `LlamaMLP` names, so that loading real weights later is a matter of matching names.
#
# ```mermaid
# flowchart TD
#     x["x (B, T, d_model)"] -->|"gate_proj"| g["gate (B, T, d_ff)"]
#     x -->|"up_proj"| u["up (B, T, d_ff)"]
#     g -->|"SiLU"| mul(("×"))
#     u --> mul
#     mul -->|"down_proj"| y["y (B, T, d_model)"]
# ```
#
# The smallest version is three maps and one line:

# %%
d_ff_gated = 176  # why 176 and not 256: the sizing rule below
gate = nn.Linear(d_model, d_ff_gated, bias=False)
up = nn.Linear(d_model, d_ff_gated, bias=False)
down = nn.Linear(d_ff_gated, d_model, bias=False)


def tiny_swiglu(x):  # (B, T, d_model)
    return down(F.silu(gate(x)) * up(x))  # (B, T, d_ff) * (B, T, d_ff) -> (B, T, d_model)


with torch.no_grad():
    y_gated = tiny_swiglu(x)
print("x", tuple(x.shape), "-> gate, up", tuple(gate(x).shape), "-> y", tuple(y_gated.shape))
assert y_gated.shape == x.shape

# %% [markdown]
# **How wide?** Three matrices of $d_{\text{model}} \times h$ hold as many parameters as the two
# of a plain MLP with $4\,d_{\text{model}}$ when $3h = 8\,d_{\text{model}}$, so the gated MLP
# uses $h = \tfrac{8}{3} d_{\text{model}}$, rounded up to a multiple of something hardware
# likes. Meta's reference code (`llama/model.py`) computes it from `4 * dim` with two knobs,
# `ffn_dim_multiplier` and `multiple_of`:


# %%
#| export
def swiglu_hidden_size(
    d_model: int, multiple_of: int = 256, ffn_dim_multiplier: float | None = None
) -> int:
    """Llama's hidden width for the gated MLP: 8/3 of ``d_model``, scaled, rounded up.

    Meta's rule: ``hidden = int(2 * 4 * d_model / 3)``; ``hidden = int(ffn_dim_multiplier *
    hidden)`` if a multiplier is given; then round up to a multiple of ``multiple_of``.
    Llama-2-7B: ``swiglu_hidden_size(4096) == 11008``; Llama-3.1-8B:
    ``swiglu_hidden_size(4096, 1024, 1.3) == 14336``.
    """
    ### BEGIN SOLUTION
    # TASK: int(8 * d_model / 3) (checked), times ffn_dim_multiplier if given, rounded up
    hidden = int(2 * 4 * check_int(d_model, "d_model") / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(check_positive_float(ffn_dim_multiplier, "ffn_dim_multiplier") * hidden)
    multiple_of = check_int(multiple_of, "multiple_of")
    return multiple_of * math.ceil(hidden / multiple_of)
    ### END SOLUTION


# %% [markdown]
# Llama-2-7B uses the plain rule. Llama-3.1-8B's 14336 is *not* $\tfrac83 \times 4096$ rounded:
# its configuration widens the layer by a multiplier of 1.3 and rounds to a multiple of 1024
# (Llama-3.2-1B: 1.5 and 256). Step by step:

# %%
print(f"8/3 x 4096 = {8 / 3 * 4096:.2f}")
print("Llama-2-7B   ", swiglu_hidden_size(4096), " (int(8 x 4096 / 3) = 10922, rounded up to 256s)")
hidden = int(2 * 4 * 4096 / 3)
scaled = int(1.3 * hidden)
print(
    f"Llama-3.1-8B  {hidden} x 1.3 -> {scaled} -> rounded up to 1024s -> {swiglu_hidden_size(4096, 1024, 1.3)}"
)
print("Llama-3.2-1B ", swiglu_hidden_size(2048, 256, 1.5))
print("our toy d_model = 64, multiple_of = 16:", swiglu_hidden_size(64, multiple_of=16))
assert swiglu_hidden_size(4096) == 11008 and swiglu_hidden_size(4096, 1024, 1.3) == 14336
assert swiglu_hidden_size(2048, 256, 1.5) == 8192 and swiglu_hidden_size(64, 16) == d_ff_gated


# %% [markdown]
# The exported module is the one line above with its guards:


# %%
#| export
class SwiGLU(nn.Module):
    """Llama's gated MLP: ``down_proj(silu(gate_proj(x)) * up_proj(x))``.

    Names and shapes match Hugging Face's ``LlamaMLP``: ``gate_proj`` and ``up_proj`` are
    ``nn.Linear(d_model, d_ff)``, ``down_proj`` is ``nn.Linear(d_ff, d_model)``.

    Args:
        d_model: width of the input and output vectors (Llama-3.1-8B: 4096).
        d_ff: hidden width, usually :func:`swiglu_hidden_size` (Llama-3.1-8B: 14336).
        bias: whether the three maps have biases (Llama: False).

    Shapes: ``(..., d_model) -> (..., d_model)``.
    """

    def __init__(self, d_model: int, d_ff: int, bias: bool = False) -> None:
        super().__init__()
        self.d_model, self.d_ff = check_int(d_model, "d_model"), check_int(d_ff, "d_ff")
        self.gate_proj = nn.Linear(d_model, d_ff, bias=check_bool(bias, "bias"))
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., d_model) -> (..., d_model)``."""
        ### BEGIN SOLUTION
        # TASK: down_proj of silu(gate_proj(x)) times up_proj(x)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        ### END SOLUTION


# %% [markdown]
# It agrees with the tiny version, and with Hugging Face's `LlamaMLP` given the same weights
# (the tests check more sizes, and GPT-2's MLP too):

# %%
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # transformers' import may warn about optional widgets
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

swiglu = SwiGLU(d_model, d_ff_gated)
swiglu.load_state_dict(
    {"gate_proj.weight": gate.weight, "up_proj.weight": up.weight, "down_proj.weight": down.weight}
)
hf_mlp = LlamaMLP(
    LlamaConfig(hidden_size=d_model, intermediate_size=d_ff_gated, num_attention_heads=4)
)
hf_mlp.load_state_dict(swiglu.state_dict())
with torch.no_grad():
    print("equal to the tiny version:", torch.allclose(swiglu(x), y_gated, atol=1e-6))
    print("equal to LlamaMLP:        ", torch.allclose(swiglu(x), hf_mlp(x), atol=1e-6))
    assert torch.allclose(swiglu(x), y_gated, atol=1e-6) and torch.allclose(
        swiglu(x), hf_mlp(x), atol=1e-6
    )

# %% [markdown]
# Now the Llama counts. Llama-2-7B: 32 layers, $d_{\text{model}} = 4096$, 32,000 tokens, four
# $4096 \times 4096$ attention maps, two RMSNorms per block (a gain each, section 5), and an
# *untied* output head: the last linear map, from $d_{\text{model}}$ to one logit per token, is a
# $32000 \times 4096$ matrix of its own. GPT-2 instead *ties* its head to the token table (uses the
# table as the head's weights, chapter 3's exercise 2), which is why GPT-2's total above counts the
# table once and Llama-2-7B's counts it twice. Llama-3.1-8B: 128,256 tokens, and grouped-query
# attention (chapter 5) with 8 key-value heads of 128, so its key and value maps are
# $4096 \times 1024$. The totals must be Meta's 6,738,415,616 and 8,030,261,248:

# %%
with torch.device("meta"):
    llama_mlps = {"Llama-2-7B": SwiGLU(4096, 11008), "Llama-3.1-8B": SwiGLU(4096, 14336)}
for name, vocab, kv_width, expected in [
    ("Llama-2-7B", 32000, 4096, 6_738_415_616),
    ("Llama-3.1-8B", 128256, 1024, 8_030_261_248),
]:
    mlp = sum(p.numel() for p in llama_mlps[name].parameters())
    attn = 2 * 4096 * 4096 + 2 * 4096 * kv_width  # q and o; k and v (narrower with GQA)
    total = 2 * vocab * 4096 + 32 * (mlp + attn + 2 * 4096) + 4096  # tables, blocks, final norm
    assert total == expected, (name, total)
    print(
        f"{name}: MLP {mlp:,} vs attention {attn:,} per block ({mlp / attn:.1f}x); "
        f"MLPs {32 * mlp / total:.1%} of {total:,}"
    )

# %% [markdown]
# In Llama-3.1-8B the MLPs hold more than two thirds of all parameters, 4.2 times the
# attention per block, because grouped-query attention shrank the key and value maps
# while the MLP grew.
#
# ## 5. Normalisation: LayerNorm and RMSNorm
#
# Each block adds its output to the vector it received (section 6), so the vectors travelling
# through a deep stack grow and drift in scale. Before each sublayer, a **normalisation** layer
# rescales each position's vector to a fixed size, so that attention and the MLP always see
# inputs of the same scale, whatever the depth.
#
# **LayerNorm** (GPT-2) subtracts the mean $\mu$ of the $d_{\text{model}}$ numbers of one
# position, divides by their standard deviation, and applies a learned gain $\gamma$ and bias
# $\beta$:
# $\operatorname{LayerNorm}(x) = \dfrac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot \gamma + \beta$,
# with $\mu$ and $\sigma^2$ (the biased variance, dividing by $d_{\text{model}}$) taken over the
# last axis.
#
# **RMSNorm** (Zhang and Sennrich, 2019; Llama) drops the mean and the bias and divides by the
# root mean square: $\operatorname{RMSNorm}(x) = \dfrac{x}{\sqrt{\operatorname{mean}(x^2) + \epsilon}} \odot \gamma$.
# The smallest versions, checked against PyTorch's:


# %%
def layer_norm_simple(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
    centred = x - mean
    variance = centred.pow(2).mean(dim=-1, keepdim=True)  # (B, T, 1), biased
    return centred * torch.rsqrt(variance + eps) * weight + bias


def rms_norm_simple(x, weight, eps=1e-5):
    mean_square = x.pow(2).mean(dim=-1, keepdim=True)  # (B, T, 1)
    return x * torch.rsqrt(mean_square + eps) * weight


gain, shift = torch.randn(d_model), torch.randn(d_model)
h = 20 * y  # the FFN outputs of section 1, made larger
assert torch.allclose(
    layer_norm_simple(h, gain, shift), F.layer_norm(h, (d_model,), gain, shift, 1e-5), atol=1e-5
)
assert torch.allclose(rms_norm_simple(h, gain), F.rms_norm(h, (d_model,), gain, 1e-5), atol=1e-5)
print("equal to F.layer_norm and F.rms_norm")

# %% [markdown]
# What they do to the running example, one token per row, with the gain at 1 and the bias at 0
# (their values at initialisation):

# %%
ones, zeros = torch.ones(d_model), torch.zeros(d_model)
ln_out, rms_out = layer_norm_simple(h, ones, zeros), rms_norm_simple(h, ones)


def stats(v):  # one token's vector (d_model,) -> |mean|, standard deviation, rms, max |entry|
    return [abs(v.mean()), v.std(correction=0), v.pow(2).mean().sqrt(), v.abs().max()]


print(f"{'':7}|{'input':^22}|{'LayerNorm':^15}|{'RMSNorm':^22}")
print(f"{'token':7}|{'|mean|':>7}{'std':>7}{'rms':>7} |{'|mean|':>7}{'std':>7} |", end="")
print(f"{'|mean|':>7}{'rms':>7}{'max|v|':>7}")
for t in range(4):
    a, b, c = stats(h[0, t]), stats(ln_out[0, t]), stats(rms_out[0, t])
    row = [a[0], a[1], a[2], None, b[0], b[1], None, c[0], c[2], c[3]]
    # 2 decimals: a third would be left to float32 rounding in one entry (rms of ' a': 4.35551)
    print(f"{tokens[t]!r:7}|" + "".join(" |" if v is None else f"{v:7.2f}" for v in row))
assert torch.allclose(rms_out.pow(2).mean(-1).sqrt(), torch.ones(1), atol=1e-3)
input_rms = h.pow(2).mean(-1).sqrt()
assert torch.allclose(rms_out.mean(-1), h.mean(-1) / input_rms, atol=1e-5)  # mean scaled, kept
assert (rms_out.abs() > 1).any()  # unit RMS, and yet entries above 1

# %% [markdown]
# LayerNorm gives every token mean 0 and standard deviation 1. RMSNorm gives every token a root mean
# square of 1 and does not centre it: the mean is divided by the RMS like every entry (`K`: 0.70 /
# 4.27 = 0.16), so it shrinks with the vector but is not removed. Neither bounds the values to
# $[-1, 1]$ (a common misstatement): a vector of 64 numbers with RMS 1 has entries above 1 whenever
# it is not perfectly flat, as the last column shows. What they fix is the *size of the whole
# vector* ($\lVert x \rVert = \sqrt{d_{\text{model}}}$ for RMSNorm), not the range of its entries.
#
# **The exported versions.** `LayerNorm` keeps the parameter names `weight` and `bias` (GPT-2's
# `ln_1.weight`, `ln_1.bias`) and calls PyTorch's fused kernel. `RMSNorm` follows Hugging
# Face's `LlamaRMSNorm` exactly: the statistics are computed in float32 even when the model runs
# in bfloat16, and the result is cast back before the gain is applied. The main reason is to
# match Hugging Face bit for bit, so that a checkpoint gives the outputs it was trained and
# evaluated with; the accuracy gained is small, as the measurement below shows.


# %%
#| export
class LayerNorm(nn.Module):
    """LayerNorm over the last axis: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    Args:
        d_model: width of the last axis.
        eps: added to the (biased) variance, ``> 0`` (GPT-2: 1e-5).
        bias: whether there is a learned ``bias`` (GPT-2: True); without it, ``bias`` is None.

    Shapes: ``(..., d_model) -> (..., d_model)``; ``weight`` (and ``bias``) ``(d_model,)``.
    """

    def __init__(self, d_model: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.d_model, self.eps = check_int(d_model, "d_model"), check_positive_float(eps, "eps")
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if check_bool(bias, "bias") else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.d_model,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps}, bias={self.bias is not None}"


# %% [markdown]
# `RMSNorm` writes out the steps of Hugging Face's `LlamaRMSNorm` in the same order, so that it
# rounds where that one does:


# %%
#| export
class RMSNorm(nn.Module):
    """RMSNorm over the last axis, as Llama: ``weight * (x / sqrt(mean(x**2) + eps))``.

    The normalisation runs in float32 and is cast back to the input's dtype before the gain is
    applied, exactly as Hugging Face's ``LlamaRMSNorm``. The output has root mean square 1
    (before the gain); it is not bounded to ``[-1, 1]``.

    Args:
        d_model: width of the last axis.
        eps: added to the mean square, ``> 0`` (Llama-2 and Llama-3 checkpoints: 1e-5;
            Hugging Face's default, and ours: 1e-6).

    Shapes: ``(..., d_model) -> (..., d_model)``; ``weight`` ``(d_model,)``.
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.d_model, self.eps = check_int(d_model, "d_model"), check_positive_float(eps, "eps")
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        # TASK: x / sqrt(mean(x^2) + eps) over the last axis in float32, cast back, times weight
        x_f32 = x.float()
        normed = x_f32 * torch.rsqrt(x_f32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps}"


# %% [markdown]
# Both agree with the simple versions and with PyTorch's `nn.LayerNorm` and `nn.RMSNorm` given
# the same weights.

# %%
ln, rms_norm = LayerNorm(d_model), RMSNorm(d_model, eps=1e-5)
torch_ln, torch_rms = nn.LayerNorm(d_model), nn.RMSNorm(d_model, eps=1e-5)
with torch.no_grad():
    for module in (ln, rms_norm, torch_ln, torch_rms):
        module.weight.copy_(gain)
    ln.bias.copy_(shift)
    torch_ln.bias.copy_(shift)
    assert torch.allclose(ln(h), torch_ln(h), atol=1e-5) and torch.allclose(
        ln(h), layer_norm_simple(h, gain, shift), atol=1e-5
    )
    assert torch.allclose(rms_norm(h), torch_rms(h), atol=1e-5) and torch.allclose(
        rms_norm(h), rms_norm_simple(h, gain), atol=1e-5
    )
    print("LayerNorm == nn.LayerNorm, RMSNorm == nn.RMSNorm: True")

# %% [markdown]
# In bfloat16 it reproduces `LlamaRMSNorm` bit for bit, which the all-bfloat16 version does not:

# %%
big = torch.randn(64, 4096, dtype=torch.float64) * 3  # 64 vectors of Llama's width
exact = rms_norm_simple(big, torch.ones(4096, dtype=torch.float64))
ours_bf16, hf_bf16 = RMSNorm(4096, eps=1e-5).bfloat16(), LlamaRMSNorm(4096, eps=1e-5).bfloat16()
with torch.no_grad():
    ours_out, hf_out = ours_bf16(big.bfloat16()), hf_bf16(big.bfloat16())
    naive = rms_norm_simple(big.bfloat16(), ours_bf16.weight)  # every step in bfloat16
print("dtype", ours_out.dtype, " equal to LlamaRMSNorm:", torch.equal(ours_out, hf_out))
differ = (naive != hf_out).float().mean().item()  # how many: it varies with the CPU's bf16 kernels
print("all-bfloat16 version: over 20% of entries differ:", differ > 0.2)
error = lambda t: (t.double() - exact).abs().mean().item()  # noqa: E731
worse = error(naive) > error(ours_out)
print(
    "mean error vs float64: ours under 0.002:",
    error(ours_out) < 0.002,
    "| all-bfloat16 larger:",
    worse,
)
print("all-bfloat16 error under twice ours:", error(naive) < 2 * error(ours_out))
assert torch.equal(ours_out, hf_out) and differ > 0.2 and worse and error(ours_out) < 0.002
assert error(naive) < 2 * error(ours_out)  # 1.3x with AVX2/AVX-512 kernels, 1.5x without

# %% [markdown]
# The float32 statistics buy little accuracy here: both versions start from an input rounded to
# bfloat16 and end by rounding to bfloat16, and those two roundings (each up to $2^{-8}$ of a
# value, about 0.4%: bfloat16 keeps 8 significant bits) are most of either error. What they buy
# is agreement: an all-bfloat16 norm changes a fifth or more of the entries, and those
# differences pass through every later layer of a model trained with the float32 version.

# %% [markdown]
# **The cost.** Written out op by op, RMSNorm does less: one reduction instead of two, no
# subtraction of the mean, no bias. Timing the two simple versions on a batch of 256 GPT-2-sized
# vectors (the numbers depend on the machine, so the notebook does not compare them on replay):


# %%
# NBVAL_IGNORE_OUTPUT
import time


def best_time(fn, *args, repeats=200):
    """The fastest of ``repeats`` calls, in microseconds (the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return 1e6 * min(times)


vectors, w768, b768 = torch.randn(4, 64, 768), torch.ones(768), torch.zeros(768)
with torch.no_grad():
    t_ln = best_time(layer_norm_simple, vectors, w768, b768)
    t_rms = best_time(rms_norm_simple, vectors, w768)
    t_ln_fused = best_time(F.layer_norm, vectors, (768,), w768, b768)
    t_rms_fused = best_time(F.rms_norm, vectors, (768,), w768)
print(f"written out: LayerNorm {t_ln:.0f} us, RMSNorm {t_rms:.0f} us, ratio {t_rms / t_ln:.2f}")
print(
    f"torch's kernels: F.layer_norm {t_ln_fused:.0f} us, F.rms_norm {t_rms_fused:.0f} us, ratio {t_rms_fused / t_ln_fused:.2f}"
)

# %% [markdown]
# Written out, RMSNorm takes about 0.6 of LayerNorm's time on the machine that ran this
# notebook. With fused kernels the gap shrinks or reverses: both read each vector once and write
# it once, and on this CPU PyTorch's `layer_norm` kernel is the more optimised of the two. Either
# way a normalisation is a small part of a block's time next to its matrix products. RMSNorm's
# authors found it trains as well as LayerNorm for less work, with one parameter vector fewer;
# Llama adopted it without giving another reason.
#
# **Where the norm goes.** The original transformer normalised *after* adding the residual,
# `x = norm(x + sublayer(x))` (post-norm). GPT-2 and every Llama normalise the *input* of each
# sublayer and leave the residual path untouched, `x = x + sublayer(norm(x))` (pre-norm), with
# one more norm after the last block. The residual path is then a clean sum from the embeddings
# to the head, which trains stably with less care over the learning-rate warm-up. The two
# arrangements of one sublayer, side by side:
#
# ```mermaid
# flowchart LR
#     subgraph post["post-norm (2017)"]
#         direction TB
#         a_in["x"] --> a_f["sublayer"]
#         a_in --> a_add(("+"))
#         a_f --> a_add
#         a_add --> a_norm["norm"]
#         a_norm --> a_out["next x"]
#     end
#     subgraph pre["pre-norm (GPT-2, Llama)"]
#         direction TB
#         b_in["x"] --> b_norm["norm"]
#         b_norm --> b_f["sublayer"]
#         b_in --> b_add(("+"))
#         b_f --> b_add
#         b_add --> b_out["next x"]
#     end
#     post ~~~ pre
# ```
#
# In post-norm every block's norm sits on the residual path itself; in pre-norm the path from
# input to output is additions only. A whole pre-norm block, as chapter 7 builds it:
#
# ```mermaid
# flowchart TB
#     xin["x (B, T, d_model)"] --> n1["norm_1<br/>LayerNorm or RMSNorm"]
#     n1 --> attn["attention (ch. 5)<br/>(B, T, d_model)"]
#     xin --> add1(("+"))
#     attn --> add1
#     add1 --> n2["norm_2<br/>LayerNorm or RMSNorm"]
#     n2 --> mlp["MLP: FeedForward or SwiGLU<br/>(B, T, d_model)"]
#     add1 --> add2(("+"))
#     mlp --> add2
#     add2 --> xout["x (B, T, d_model)<br/>to the next block"]
# ```
#
# The two arrows that bypass the sublayers are the **residual connections**, the last idea of
# this chapter.
#
# ## 6. Residual connections keep the gradient alive
#
# A residual connection adds a sublayer's input to its output: $x_{l+1} = x_l + f_l(x_l)$. Why it
# matters shows in the backward pass. Without it, the gradient reaching layer 1 of an $L$-layer
# stack is a product of the $L - 1$ Jacobians of the layers above it,
# $\partial f_L / \partial x \cdots \partial f_2 / \partial x$; if each shrinks vectors a
# little, the product shrinks exponentially with depth. With it, each
# factor is $I + \partial f_l / \partial x$: the identity always passes the gradient through, and
# the layers add to it rather than multiply it away.
#
# The measurement: 32 MLPs (`FeedForward(64, 256)`, PyTorch's default initialisation) stacked
# three ways, a plain stack `x = f(x)`, a residual stack `x = x + f(x)` and the pre-norm stack
# `x = x + f(norm(x))`. One backward pass of a mean-squared error against a random target, and
# the size of the gradient on each layer's `up_proj.weight`.


# %%
def gradient_per_layer(kind, n_layers=32, seed=0):
    """d loss / d up_proj.weight of each layer of a stack of FeedForward blocks."""
    torch.manual_seed(seed)
    layers = [FeedForward(d_model, d_ff) for _ in range(n_layers)]
    norms = [LayerNorm(d_model) for _ in range(n_layers)]
    h = torch.randn(8, 16, d_model)  # (B, T, d_model)
    for f, norm in zip(layers, norms):
        if kind == "plain":
            h = f(h)
        elif kind == "residual":
            h = h + f(h)
        else:  # "pre-norm residual"
            h = h + f(norm(h))
    loss = F.mse_loss(h, torch.randn_like(h))
    loss.backward()
    return [f.up_proj.weight.grad for f in layers]


kinds = ["plain", "residual", "pre-norm residual"]
grads = {kind: gradient_per_layer(kind) for kind in kinds}
# norms in float64: in float32 the squares of entries this small underflow to 0
norms = {kind: [g.double().norm().item() for g in grads[kind]] for kind in kinds}
first, ratio = grads["plain"][0], norms["plain"][0] / norms["plain"][-1]
vanished = 1e-26 < ratio < 1e-20
print("plain: layer 1's gradient norm between 1e-26 and 1e-20 of layer 32's:", vanished)
print("plain: every entry of layer 1's gradient non-zero:", bool((first != 0).all()))
print("plain: every entry of layer 1's gradient below 1e-25:", bool(first.abs().max() < 1e-25))
print("plain: its norm computed in float32:", first.norm().item())  # the squares underflow
for kind in kinds[1:]:  # the largest norm over the smallest, across the 32 layers
    spread = max(norms[kind]) / min(norms[kind])
    print(f"{kind}: every layer's norm within a factor 2 of every other's:", spread < 2)
    assert spread < 2
assert vanished and bool((first != 0).all()) and bool(first.abs().max() < 1e-25)
assert first.norm().item() == 0.0

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, ax = plt.subplots(figsize=(7, 3.8))
for kind, marker in zip(kinds, "o^s"):
    _ = ax.plot(range(1, 33), norms[kind], marker + "-", markersize=4, label=kind)
ax.set_yscale("log")
ax.set_xlabel("layer (1 = nearest the input)")
ax.set_ylabel("gradient norm of up_proj.weight")
ax.set_title("gradient reaching each of 32 stacked MLPs")
ax.legend()
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# In the plain stack the gradient shrinks by a roughly constant factor per layer (a straight
# line on the log scale): the first layer gets between $10^{-26}$ and $10^{-20}$ of what the last
# one gets (the figure shows about $10^{-23}$). The gradient vanishes without reaching zero: every
# entry of layer 1's gradient is non-zero, and all are below $10^{-25}$, so small that their
# squares fall below float32's smallest number and the float32 norm comes out as 0 (which is why
# the norms above are taken in float64). It is far too small to learn from: a step of learning
# rate times gradient of that size does not change a float32 weight at all. With residual
# connections every layer's gradient is within a factor 2 of every other's, and the pre-norm
# stack keeps it so while its norms hold every sublayer's input at unit scale. This is why a
# transformer can be 32 or 126 blocks deep.
#
# ## 7. From notebook to library
#
# The exported modules validate their arguments once, in the constructor, with one-line guards
# from `llmbook.checks`; `forward` does no checking of its own, so it costs nothing per call and
# `torch.compile` traces each module into one graph without breaks:

# %%
modules = {
    "FeedForward": FeedForward(d_model, d_ff),
    "SwiGLU": SwiGLU(d_model, d_ff_gated),
    "LayerNorm": LayerNorm(d_model),
    "RMSNorm": RMSNorm(d_model),
}
with torch.no_grad():
    for name, module in modules.items():
        compiled = torch.compile(module, fullgraph=True, backend="eager")
        assert torch.allclose(compiled(x), module(x), atol=1e-6), name
print("compiled with fullgraph=True:", ", ".join(modules))

# %% [markdown]
# A wrong argument gets a message that names it and says what is allowed:

# %% tags=["raises-exception"]
FeedForward(768, 3072, activation="swish")

# %% tags=["raises-exception"]
RMSNorm(4096, eps=-1e-5)

# %% [markdown]
# ## Summary
#
# - The FFN applies the same two-layer MLP to every position on its own: expand to
#   $d_{\text{ff}}$, activate elementwise, project back. It cannot see other positions; that is
#   attention's job.
# - It holds the largest share of the parameters: twice the attention per GPT-2 block
#   (4,722,432 vs 2,362,368), 45.5% of GPT-2 small, and more than two thirds (70.2%) of
#   Llama-3.1-8B.
# - Without the activation the two maps collapse into one. ReLU, GELU (exact or the tanh form
#   GPT-2 used) and SiLU are in use; a model must run with the one it was trained with.
# - SwiGLU gates one expansion with the SiLU of another, using three matrices, so its width is
#   $\tfrac83 d_{\text{model}}$ rounded: 11008 for Llama-2-7B. Llama-3.1-8B's 14336 comes from a
#   multiplier of 1.3 and rounding to 1024 (`swiglu_hidden_size(4096, 1024, 1.3)`).
# - LayerNorm centres and scales each vector and adds a bias; RMSNorm only divides by the root
#   mean square. Neither bounds values to $[-1, 1]$. Written out, RMSNorm took about 0.6 of
#   LayerNorm's time here; with fused kernels the gap narrows or reverses.
# - Pre-norm blocks, `x + f(norm(x))`, keep the residual path clean. Residual connections keep
#   the gradient at the same order in every layer; in a plain 32-layer stack it vanished (not to
#   zero, but to less than $10^{-20}$ of the last layer's at the first).
# - `llmbook.feedforward` exports `FeedForward`, `SwiGLU`, `swiglu_hidden_size`, `LayerNorm`
#   and `RMSNorm`, each equal to its PyTorch or Hugging Face counterpart.
#
# ## Exercises
#
# 1. **Where the parameters are.** For GPT-2 XL ($d_{\text{model}} = 1600$, 48 layers, 50,257
#    tokens, context 1024, head tied to the token table) and Llama-3.2-1B
#    ($d_{\text{model}} = 2048$, 16 layers, 32 query and 8 key-value heads of 64, MLP 8192,
#    128,256 tokens, head tied to the token table), compute the
#    fraction of all parameters in the MLPs. Check your totals against 1,557,611,200 and
#    1,235,814,400 by building the MLPs on the `meta` device.
# 2. **GeGLU.** Gemma uses the gated MLP with GELU (tanh form) in place of SiLU. Write it as a
#    subclass of `SwiGLU` that overrides `forward`, and check it against Hugging Face's
#    `LlamaMLP` built with `hidden_act="gelu_pytorch_tanh"`.
# 3. **LayerNorm is RMSNorm of the centred vector.** Show that `LayerNorm(d, bias=False)` gives
#    the same output as `RMSNorm(d)` applied to `x - x.mean(-1, keepdim=True)`, with the same
#    gain and eps. What does this say about the one thing RMSNorm leaves out?
# 4. **Post-norm in the deep stack.** Add `x = norm(x + f(x))` to the experiment of section 6.
#    Does the gradient still reach the first layer? How large is it compared with the
#    pre-norm stack, and how large is the output of each stack?
#
# Worked solutions: `chapters/solutions/06_feed_forward.ipynb`.
