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
# # Chapter 06 solutions: the feed-forward network, normalisation and residuals
#
# Solutions to the exercises at the end of `chapters/06_feed_forward.ipynb`. They use what the
# chapter exported to `llmbook.feedforward`.

# %%
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # transformers' import may warn about optional widgets
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

from llmbook.feedforward import FeedForward, LayerNorm, RMSNorm, SwiGLU

_ = torch.manual_seed(0)


# %% [markdown]
# ## Exercise 1: where the parameters are
#
# Count each part with a formula, and build the MLPs on the `meta` device (shapes, no memory) to
# check the MLP term. GPT-2 XL has biases everywhere and LayerNorms with a gain and a bias; its
# head is tied to the token table. Llama-3.2-1B has no biases, RMSNorms with a gain only,
# grouped-query attention (8 key-value heads of 64, so the key and value maps are
# $2048 \times 512$) and, unlike the larger Llamas, a head tied to the token table.


# %%
def count(mlp_module, d, n_layers, vocab, attn, norm_params, positions=0):
    """Total parameters of a decoder with a tied head, and the MLPs' part of it."""
    mlp = sum(p.numel() for p in mlp_module.parameters())
    block = attn + mlp + 2 * norm_params
    total = vocab * d + positions * d + n_layers * block + norm_params
    return total, n_layers * mlp


with torch.device("meta"):
    gpt2_xl_mlp, llama_1b_mlp = FeedForward(1600, 4 * 1600), SwiGLU(2048, 8192)
gpt2_xl = count(gpt2_xl_mlp, 1600, 48, 50257, 4 * (1600 * 1600 + 1600), 2 * 1600, positions=1024)
llama_1b = count(llama_1b_mlp, 2048, 16, 128256, 2 * 2048 * 2048 + 2 * 2048 * 512, 2048)
for name, (total, mlps) in [("GPT-2 XL", gpt2_xl), ("Llama-3.2-1B", llama_1b)]:
    print(f"{name:>12}: {total:,} parameters, MLPs {mlps:,} = {mlps / total:.1%}")
print(f"Llama-3.2-1B's token table: {128256 * 2048 / llama_1b[0]:.1%} of the model")
assert gpt2_xl[0] == 1_557_611_200 and llama_1b[0] == 1_235_814_400

# %% [markdown]
# In GPT-2 XL the MLPs hold about 63% of the model, more than in GPT-2 small (45.5%), because
# the blocks grow with $d^2$ while the token table grows with $d$. Llama-3.2-1B is small for a
# Llama and keeps a vocabulary of 128,256 tokens, so its token table is a fifth of the model and
# the MLPs hold less than in Llama-3.1-8B (70.2%).
#
# ## Exercise 2: GeGLU
#
# Only the gate's activation changes, so a subclass overrides `forward` and keeps the three
# projections and their names, which is what lets it load `LlamaMLP`'s weights unchanged.


# %%
class GeGLU(SwiGLU):
    """Gated MLP with GELU (tanh form) as the gate, as in Gemma."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.gelu(self.gate_proj(x), approximate="tanh")  # (..., d_ff)
        return self.down_proj(gate * self.up_proj(x))  # (..., d_model)


d_model, d_ff = 32, 88
geglu = GeGLU(d_model, d_ff)
config = LlamaConfig(
    hidden_size=d_model,
    intermediate_size=d_ff,
    hidden_act="gelu_pytorch_tanh",
    num_attention_heads=4,
)
hf = LlamaMLP(config)
hf.load_state_dict(geglu.state_dict())
x = 3 * torch.randn(2, 5, d_model)  # large inputs, so that a wrong activation would show
with torch.no_grad():
    difference = (geglu(x) - hf(x)).abs().max().item()
    swiglu_difference = (SwiGLU.forward(geglu, x) - hf(x)).abs().max().item()
print("GeGLU equals LlamaMLP(gelu_pytorch_tanh) within 1e-5:", difference < 1e-5)
print(f"SwiGLU with the same weights is far off: {swiglu_difference > 1e-2}")
assert difference < 1e-5 and swiglu_difference > 1e-2

# %% [markdown]
# ## Exercise 3: LayerNorm is RMSNorm of the centred vector
#
# LayerNorm's variance is the mean square of $x - \mu$, so
# $\operatorname{LayerNorm}(x) = (x - \mu) / \sqrt{\operatorname{mean}((x - \mu)^2) + \epsilon} \odot \gamma
# = \operatorname{RMSNorm}(x - \mu)$ when there is no bias and the gain and $\epsilon$ match.

# %%
d = 64
layer_norm, rms_norm = LayerNorm(d, eps=1e-5, bias=False), RMSNorm(d, eps=1e-5)
with torch.no_grad():
    gain = torch.randn(d)
    layer_norm.weight.copy_(gain)
    rms_norm.weight.copy_(gain)
    x = 4 * torch.randn(3, 7, d) + 2  # mean far from 0
    centred = x - x.mean(dim=-1, keepdim=True)
    same = torch.allclose(layer_norm(x), rms_norm(centred), atol=1e-5)
    differs_uncentred = not torch.allclose(layer_norm(x), rms_norm(x), atol=1e-2)
print("LayerNorm(x) == RMSNorm(x - mean):", same)
print("LayerNorm(x) != RMSNorm(x) when the mean is not 0:", differs_uncentred)
assert same and differs_uncentred

# %% [markdown]
# So RMSNorm is LayerNorm without the centring (and without the bias). It is no longer invariant
# to adding a constant to every entry of a vector, only to scaling it. Zhang and Sennrich (2019)
# argued that the scale invariance is what helps training; the centring costs a reduction and
# buys little, since the following linear layer can learn to ignore a shared offset.
#
# ## Exercise 4: post-norm in the deep stack
#
# The experiment of section 6 with a fourth stack, `x = norm(x + f(x))`, and the output size of
# each stack (root mean square of the final `x`). The printed lines are the bounds the cell
# asserts; the exact numbers are in the plot (they change in their last digits from one CPU to
# the next).


# %%
def gradient_per_layer(kind, n_layers=32, d_model=64, d_ff=256, seed=0):
    """Gradient norm on each layer's up_proj.weight, and the rms of the stack's output."""
    torch.manual_seed(seed)
    layers = [FeedForward(d_model, d_ff) for _ in range(n_layers)]
    norms = [LayerNorm(d_model) for _ in range(n_layers)]
    h = torch.randn(8, 16, d_model)  # (B, T, d_model)
    for f, norm in zip(layers, norms):
        if kind == "plain":
            h = f(h)
        elif kind == "residual":
            h = h + f(h)
        elif kind == "pre-norm residual":
            h = h + f(norm(h))
        else:  # "post-norm residual"
            h = norm(h + f(h))
    F.mse_loss(h, torch.randn_like(h)).backward()
    grads = [f.up_proj.weight.grad.double().norm().item() for f in layers]  # float64: no underflow
    return grads, h.pow(2).mean().sqrt().item()


kinds = ["plain", "residual", "pre-norm residual", "post-norm residual"]
results = {kind: gradient_per_layer(kind) for kind in kinds}
(plain, plain_rms), (_, res_rms) = results["plain"], results["residual"]
(pre, pre_rms), (post, post_rms) = results["pre-norm residual"], results["post-norm residual"]
checks = {
    "plain: layer 1 gets less than 1e-20 of layer 32's gradient": plain[0] < 1e-20 * plain[-1],
    "post-norm: every layer within a factor 2 of every other": max(post) / min(post) < 2,
    "post-norm: every layer's gradient under half the pre-norm one": all(
        a < 0.5 * b for a, b in zip(post, pre)
    ),
    "output rms: plain under 0.1": plain_rms < 0.1,
    "output rms: pre-norm between 1.2 and 1.8, residual above 1.8": 1.2 < pre_rms < 1.8 < res_rms,
    "output rms: post-norm within 0.01 of 1": abs(post_rms - 1) < 0.01,
}
for claim, holds in checks.items():
    print(f"{claim}: {holds}")
assert all(checks.values())

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
for (kind, (grads, _)), marker in zip(results.items(), "o^sv"):
    _ = ax.plot(range(1, 33), grads, marker + "-", markersize=4, label=kind)
ax.set_yscale("log")
ax.set_xlabel("layer (1 = nearest the input)")
ax.set_ylabel("gradient norm of up_proj.weight")
ax.set_title("32 stacked MLPs: four ways to connect them")
ax.legend()
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# The plain stack's first layer gets less than $10^{-20}$ of the last layer's gradient (about
# $10^{-23}$ in the plot): the gradient vanishes, though not to zero (every entry is non-zero, as
# section 6 of the chapter checks; measured in float32, the norm itself would underflow to 0).
#
# With the LayerNorm after each addition, the gradient still reaches the first layer (the
# residual path is there), but every norm divides the signal by the size of $x + f(x)$, so the
# gradient on the MLPs is a few times smaller than with pre-norm, at every depth (under half,
# asserted; about a third in the plot). In a real post-norm transformer the gradient is also
# largest near the output at initialisation (Xiong et al., 2020), which is why post-norm models
# needed a careful learning-rate warm-up. The pre-norm stack pays a different price: its output
# grows with depth (an rms between 1.2 and 1.8 after 32 blocks, from 1 at the input; without any
# norm, above 1.8), which is why GPT-2 and Llama put one more norm after the last block. The
# post-norm stack's output is a LayerNorm's, rms 1; the plain stack's shrinks towards 0.
