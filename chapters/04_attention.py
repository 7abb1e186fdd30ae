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
# # Chapter 04: Attention
#
# After chapter 3 every token has a vector, but each vector was looked up on its own: ` hat`
# gets the same vector in "the hat was gone" and in "he had a golden hat", and nothing in it says
# what came before. **Attention** is the step where positions exchange information. Every
# position builds a new vector as a weighted average of the vectors at the positions it may look
# at, and it computes the weights itself, from the data, fresh for every input.
#
# **What you will build**
#
# 1. Self-attention with no trainable weights on a sentence of the book's corpus, one step at a
#    time: scores as dot products, softmax to weights, a weighted sum; the attention matrix.
# 2. Queries, keys and values from three trainable projections, and what each role means.
# 3. Scaled dot-product attention, with a *measurement* of why the scores are divided by
#    $\sqrt{d_k}$, and the whole of attention as a function of four lines.
# 4. The causal mask, and a small training run that shows what goes wrong without it.
# 5. Dropout on the attention weights, batching, and a single-head `CausalSelfAttention` module,
#    checked against PyTorch's fused `scaled_dot_product_attention`.
#
# The code this chapter exports lives in `llmbook.attention`: `causal_mask`,
# `scaled_dot_product_attention` and `CausalSelfAttention`. Chapter 5 builds multi-head
# attention on top of them.

# %%
#| default_exp attention

# %% [markdown]
# Cells that start with `#| export` go into the package; they hold only imports, functions and
# classes. Everything else is demonstration. The seed is fixed so that every run of the notebook
# prints the same numbers.

# %%
#| export
import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.checks import check_attention_inputs, check_dropout, check_int, check_layer_input

# %%
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Self-attention without trainable weights
#
# The running example of the book: a sentence of the `stories` corpus, cut into tokens by the
# book's own tokenizer from chapter 1 (2,048 ids; GPT-2's has 50,257). Each id gets a vector from
# the embedding table of chapter 3 (`TokenEmbedding`). The table here is random, as it is in a
# model before training, and small, 8 numbers per token (GPT-2 small uses 768), so that we can
# look at the numbers.

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.patches import Patch

from llmbook import load_tokenizer
from llmbook.data import load_corpus
from llmbook.embeddings import LearnedPositionalEmbedding, TokenEmbedding

tok = load_tokenizer("stories")
sentence = "When he looked for it, the hat was gone!"
assert sentence in load_corpus("stories")  # a sentence of the book's corpus
ids = torch.tensor(tok.encode(sentence))  # (T,)
tokens = [tok.decode([i]) for i in ids.tolist()]
print("ids   ", tuple(ids.shape), ids.tolist())
print("tokens", tokens)

d_model = 8
embedding = TokenEmbedding(tok.vocab_size, d_model)  # chapter 3's table, random (untrained)
x = embedding(ids).detach()  # (T, d_model): one vector per token, no gradients needed here
print("table ", tuple(embedding.weight.shape), " x", tuple(x.shape))

# %% [markdown]
# Self-attention turns each vector $x_i$ into a **context vector** $z_i$ that mixes in
# information from the other positions. Take one position, the query ` hat` (position 7), and
# follow the three steps.
#
# **Step 1, scores.** How much should ` hat` look at position $j$? The simplest measure of how
# well two vectors match is their dot product: $s_{j} = x_{\text{hat}} \cdot x_j$, large when
# the vectors point the same way, negative when they point apart.

# %%
position = tokens.index(" hat")
query = x[position]  # (d_model,)
scores_hat = x @ query  # (T,): the dot product of the query with every token's vector
assert torch.allclose(scores_hat[2], torch.dot(x[2], query))  # one entry, written out
print(f"query: {tokens[position]!r} at position {position}")
for token, score in zip(tokens, scores_hat.tolist()):
    print(f"  {token!r:>9}  score {score:5.1f}")

# %% [markdown]
# ` hat` matches itself best, which is no surprise: a vector always points the same way as
# itself. The other scores are large or small by chance, because the table is untrained.
#
# **Step 2, weights.** Scores can be any real number; we want non-negative weights that sum to
# 1, so that the result is an average. Softmax does that, $w_j = e^{s_j} / \sum_{j'} e^{s_{j'}}$,
# and keeps the order of the scores: the best match gets the largest weight. Here the score of
# ` hat` with itself is so far above the others that it keeps nearly all the weight.

# %%
weights_hat = torch.softmax(scores_hat, dim=0)  # (T,)
by_hand = scores_hat.exp() / scores_hat.exp().sum()
assert torch.allclose(weights_hat, by_hand)
assert torch.isclose(weights_hat.sum(), torch.tensor(1.0))
print("weights", [round(value, 2) for value in weights_hat.tolist()])
print("sum    ", round(weights_hat.sum().item(), 4))

# %% [markdown]
# **Step 3, weighted sum.** The context vector of ` hat` is the average of all token vectors,
# each weighted by how well it matched: $z_{\text{hat}} = \sum_j w_j x_j$.

# %%
z_hat = weights_hat @ x  # (T,) @ (T, d_model) -> (d_model,)
assert torch.allclose(z_hat, sum(w * row for w, row in zip(weights_hat, x)))
print("z_hat", tuple(z_hat.shape))

# %% [markdown]
# Every position does the same, and matrix products do all of them at once: the scores of all
# pairs are $S = X X^\top$ (row $i$ holds query $i$'s scores against every position), softmax
# runs along each row to give the weights $A = \operatorname{softmax}(S)$, and $Z = A X$. (We
# call the weights $A$, not $W$: in this book $W$ is a learned matrix, as in $y = x W$.)

# %%
scores = x @ x.T  # (T, d_model) @ (d_model, T) -> (T, T)
weights = torch.softmax(scores, dim=-1)  # each row sums to 1
context = weights @ x  # (T, T) @ (T, d_model) -> (T, d_model)
assert torch.allclose(context[position], z_hat, atol=1e-6)
assert torch.allclose(weights.sum(dim=-1), torch.ones(len(tokens)))
print("scores", tuple(scores.shape), " weights", tuple(weights.shape), end="  ")
print("context", tuple(context.shape))


# %% [markdown]
# The weights form the **attention matrix**: row $i$ says where query position $i$ looks. A heat
# map shows it at a glance. The colour scale is logarithmic, so that a weight of 1 (a query that
# can see only itself) does not wash out the rest, and each cell carries its weight in percent.
# Weights below 1% are black (their cells read 0 after rounding); weights that are exactly 0
# (masked from section 4 on, or dropped in section 5) are grey.


# %% tags=["hide-input"] jupyter={"source_hidden": true}
def show_attention(weights, row_tokens, col_tokens, title, ax=None):
    """Heat map of a (T_query, T_key) weight matrix: log colour scale, percentages, 0 in grey."""
    ax = ax or plt.subplots(figsize=(6.5, 5.5))[1]
    w = weights.detach().numpy()
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey", under="black")
    norm = LogNorm(vmin=0.01, vmax=max(1.0, w.max()))  # dropout can push weights above 1
    image = ax.imshow(np.where(w > 0, w, np.nan), cmap=cmap, norm=norm)
    for (i, j), value in np.ndenumerate(w):
        if value > 0:
            colour = "black" if value > 0.2 else "white"
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=colour)
    label = lambda tokens: [f"{i} {t.replace(' ', '·')}" for i, t in enumerate(tokens)]  # noqa: E731
    ax.set_xticks(range(len(col_tokens)), label(col_tokens), rotation=90)
    ax.set_yticks(range(len(row_tokens)), label(row_tokens))
    ax.set(xlabel="key position j (looked at)", ylabel="query position i (looking)", title=title)
    plt.colorbar(image, ax=ax, fraction=0.046, extend="min", label="weight (log scale; % in cells)")
    return ax


_ = show_attention(weights, tokens, tokens, "softmax(X X^T): no trainable weights")
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# (A `·` marks a leading space.) The vectors are random, so the pattern means nothing yet, except
# for one thing: the diagonal is bright. A vector matches itself well, because
# $x_i \cdot x_i = \lVert x_i \rVert^2$ is positive and usually the largest score in its row, so
# each token mostly attends to itself. Also $S$ is symmetric: "hat looks at gone" scores the same
# as "gone looks at hat". Both are limitations of using the raw vectors. The next section removes
# them.

# %%
diagonal_wins = (scores.argmax(dim=-1) == torch.arange(len(tokens))).sum().item()
print(f"rows whose largest score is on the diagonal: {diagonal_wins} of {len(tokens)}")
print("scores symmetric:", torch.allclose(scores, scores.T))  # up to rounding, which varies by BLAS

# %% [markdown]
# ## 2. Queries, keys and values
#
# In the version above each vector plays three parts at once: it is the question a position
# asks, the label by which others find it, and the content it hands over. A transformer gives
# each part its own learned linear map. In this book's notation a linear map is $y = x W$, with
# $x$ a row vector and $W$ of shape $(d_{\text{in}}, d_{\text{out}})$:
#
# - the **query** $q_i = x_i W_q$: what position $i$ is looking for ("I am a verb; where is my
#   subject?");
# - the **key** $k_j = x_j W_k$: what position $j$ offers to be found by ("I am a noun");
# - the **value** $v_j = x_j W_v$: what position $j$ passes on when it is attended to.
#
# $W_q$ and $W_k$ have shape $(d_{\text{model}}, d_k)$ and $W_v$ shape $(d_{\text{model}}, d_v)$.
# The score becomes $q_i \cdot k_j = x_i W_q W_k^\top x_j^\top$: a learned similarity that need
# not be symmetric and need not favour the diagonal. It is the soft version of a dictionary
# lookup: compare the query with every key, and return a blend of the values, weighted by how
# well each key matched. The whole computation, with the shapes of our sentence
# ($T = 11$, $d_{\text{model}} = 8$, $d_k = d_v = 4$):
#
# ```mermaid
# flowchart TD
#     X["x (11, 8)"] --> Q["q = x W_q (11, 4)"]
#     X --> K["k = x W_k (11, 4)"]
#     X --> V["v = x W_v (11, 4)"]
#     Q --> S["scores (11, 11)"]
#     K --> S
#     S --> M["causal mask"]
#     M --> W["weights (11, 11)"]
#     W --> Z["z = weights v (11, 4)"]
#     V --> Z
# ```
#
# The scores are $q k^\top / \sqrt{d_k}$ (section 3 explains the $\sqrt{d_k}$), the causal mask
# puts $-\infty$ above the diagonal (section 4), and the weights are the softmax of each row, so
# every row sums to 1.
#
# The three maps are `nn.Linear` layers without bias (GPT-2 has biases, Llama does not; both
# work). `nn.Linear(d_in, d_out)` stores the transpose of our $W$: its `weight` has shape
# $(d_{\text{out}}, d_{\text{in}})$ and it computes `x @ weight.T`. So $W_q$ is
# `q_proj.weight.T`. Their output width $d_k$ (here 4) need not equal $d_{\text{model}}$.

# %%
d_k = 4
q_proj = nn.Linear(d_model, d_k, bias=False)  # stores weight (d_k, d_model) = W_q^T
k_proj = nn.Linear(d_model, d_k, bias=False)
v_proj = nn.Linear(d_model, d_k, bias=False)
W_q = q_proj.weight.detach().T  # (d_model, d_k): the W_q of y = x W
q, k, v = (proj(x).detach() for proj in (q_proj, k_proj, v_proj))  # each (T, d_k)
assert torch.allclose(q, x @ W_q)
print("W_q", tuple(W_q.shape), " q_proj.weight", tuple(q_proj.weight.shape))
print("q", tuple(q.shape), " k", tuple(k.shape), " v", tuple(v.shape))

qk_scores = q @ k.T  # (T, d_k) @ (d_k, T) -> (T, T)
print("scores symmetric:", torch.allclose(qk_scores, qk_scores.T))
diagonal_wins = (qk_scores.argmax(dim=-1) == torch.arange(len(tokens))).sum().item()
print(f"rows whose largest score is on the diagonal: {diagonal_wins} of {len(tokens)}")
assert not torch.allclose(qk_scores, qk_scores.T)

# %% [markdown]
# These projections are where attention learns: gradient descent adjusts $W_q$, $W_k$, $W_v$
# so that the right positions find each other. The gradient reaches them through the softmax,
# which is why the next section cares about how that softmax behaves.
#
# ## 3. Scaled dot-product attention: why divide by $\sqrt{d_k}$
#
# The attention of "Attention is all you need" is
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V.$$
#
# Why the $\sqrt{d_k}$? If the entries of $q$ and $k$ are independent with mean 0 and variance
# 1, then $q \cdot k = \sum_{m=1}^{d_k} q_m k_m$ is a sum of $d_k$ independent terms of variance
# 1, so its variance is $d_k$ and its typical size $\sqrt{d_k}$. Real heads use $d_k = 64$
# (GPT-2) or 128 (Llama 3 8B): scores of size 8 to 11 instead of 1. Softmax of large,
# spread-out scores puts nearly all the weight on the largest one (it *saturates* toward a
# one-hot vector), and a saturated softmax passes almost no gradient: the derivative of
# softmax, $\partial w_i / \partial s_j = w_i(\delta_{ij} - w_j)$, is close to 0 when every $w$
# is close to 0 or 1. Dividing by $\sqrt{d_k}$ brings the variance back to 1 at every width.
#
# Rather than take this on trust, we measure it. For growing $d_k$ we draw random queries and 16
# keys with unit-variance entries, and record, with and without the scaling:
# the variance of the scores, the largest softmax weight (1 means one-hot), and the size of the
# gradient that flows back through the softmax to the scores (for a random upstream gradient,
# as a loss would send).


# %%
def measure_softmax(d_k, n_trials=400, n_keys=16, scaled=True, seed=0):
    """Score variance, mean largest weight, median gradient norm through softmax, for one d_k."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n_trials, 1, d_k, generator=g)  # (N, 1, d_k): one query per trial
    k = torch.randn(n_trials, n_keys, d_k, generator=g)  # (N, n_keys, d_k)
    s = (q @ k.transpose(-2, -1)).squeeze(1)  # (N, n_keys)
    if scaled:
        s = s / math.sqrt(d_k)
    s.requires_grad_(True)
    w = torch.softmax(s, dim=-1)
    upstream = torch.randn(n_trials, n_keys, generator=g)  # dLoss/dw from later layers
    (grad,) = torch.autograd.grad(w, s, grad_outputs=upstream)
    return dict(
        variance=s.detach().var().item(),
        max_weight=w.detach().max(dim=-1).values.mean().item(),
        grad_norm=grad.norm(dim=-1).median().item(),
    )


d_ks = [1, 4, 16, 64, 256, 1024]
raw = [measure_softmax(d, scaled=False) for d in d_ks]
scaled = [measure_softmax(d, scaled=True) for d in d_ks]

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
panels = [
    ("variance", "variance of the scores", True),
    ("max_weight", "mean largest softmax weight", False),
    ("grad_norm", "median |d loss / d scores|", True),
]
for ax, (key, label, log_y) in zip(axes, panels):
    _ = ax.plot(d_ks, [r[key] for r in raw], "o-", label="q.k")
    _ = ax.plot(d_ks, [s[key] for s in scaled], "s-", label="q.k / sqrt(d_k)")
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel="d_k (width of queries and keys)", ylabel=label, title=label)
    ax.legend()
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# The plots say what the argument predicted. Without scaling (circles) the variance of the
# scores grows in step with $d_k$, the largest weight climbs toward 1, and the gradient
# collapses by orders of magnitude. With scaling (squares) all three stay close to their values
# at $d_k = 1$. The measured values differ in their last digits from one CPU to another, so the
# notebook prints the bounds it checks them against rather than the values themselves:

# %%
for d, r, s in zip(d_ks, raw, scaled):
    assert 0.8 < r["variance"] / d < 1.2, (d, r)  # var(q.k) grows like d_k
    assert 0.8 < s["variance"] < 1.2, (d, s)  # the scaled scores keep variance 1
    assert s["max_weight"] < 0.5, (d, s)  # the scaled softmax stays spread out
assert raw[-1]["max_weight"] > 0.9  # unscaled, d_k = 1024: nearly one-hot
assert raw[-1]["grad_norm"] < 0.01 * scaled[-1]["grad_norm"]  # ... and almost no gradient
print("at every d_k:  0.8 < var(q.k) / d_k < 1.2   and   0.8 < var(q.k / sqrt(d_k)) < 1.2")
print("at every d_k:  largest weight with scaling < 0.5")
print("d_k = 1024, unscaled:  largest weight > 0.9,  |grad| < 1% of the scaled |grad|")

# %% [markdown]
# So we scale. That is all of attention, and as a function it takes four lines: the width, the
# scores, the softmax, the weighted sum. Written with `k.transpose(-2, -1)` instead of `k.T`,
# it works for any number of leading (batch) axes. PyTorch's fused
# `torch.nn.functional.scaled_dot_product_attention` computes the same thing.


# %%
def simple_attention(q, k, v):
    """softmax(q k^T / sqrt(d_k)) v for q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v)."""
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., Tq, Tk)
    weights = torch.softmax(scores, dim=-1)  # each row sums to 1
    return weights @ v, weights  # (..., Tq, d_v) and (..., Tq, Tk)


attn_context, attn_weights = simple_attention(q, k, v)
print("weights", tuple(attn_weights.shape), " context", tuple(attn_context.shape))
reference = F.scaled_dot_product_attention(q, k, v)  # PyTorch's fused kernel
agree = torch.allclose(attn_context, reference, atol=1e-6)
print("equal to torch's scaled_dot_product_attention:", agree)
assert agree

# %% [markdown]
# ## 4. The causal mask
#
# A language model is trained to predict the next token (chapter 2). One window of $T$ tokens is
# $T$ prediction tasks at once: the output at position $t$ must predict token $t+1$. But in the
# attention above, position $t$ looks at *every* position, including $t+1$: the answer it is
# asked to predict is one of its inputs.
#
# First the mechanics. Change only the last token of the sentence and compare the outputs at the
# other positions.

# %%
changed_ids = ids.clone()
changed_ids[-1] = tok.encode(".")[0]  # "...the hat was gone!" -> "...the hat was gone."
x_changed = embedding(changed_ids).detach()


def project(x):  # (T, d_model) -> q, k, v, each (T, d_k)
    return q_proj(x).detach(), k_proj(x).detach(), v_proj(x).detach()


before, after = simple_attention(*project(x))[0], simple_attention(*project(x_changed))[0]
moved = (after - before).abs().amax(dim=-1)  # (T,): how far each position's output moved
print("change at each position:", [round(value, 2) for value in moved.tolist()])
assert (moved[:-1] > 0).all()  # every earlier position saw the future token

# %% [markdown]
# Every position moved, so the output at position 9 (whose job is to predict the `!`) depends
# on the `!`. The fix: position $i$ may look only at positions $j \le i$. Before the softmax we
# set every score above the diagonal to $-\infty$; since $e^{-\infty} = 0$, those weights are
# exactly 0, and the allowed weights of each row still sum to 1. Here is the score matrix of the
# first six tokens after masking:

# %% tags=["hide-input"] jupyter={"source_hidden": true}
n, kept_colour, masked_colour = 6, "#9bd39b", "#dddddd"
fig, ax = plt.subplots(figsize=(8, 5))
allowed = np.tril(np.ones((n, n), dtype=bool))  # True on and below the diagonal
_ = ax.imshow(allowed, cmap=ListedColormap([masked_colour, kept_colour]))
for i in range(n):
    for j in range(n):
        text, colour = (f"q{i}·k{j}", "black") if allowed[i, j] else ("−∞", "dimgrey")
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
labels = [f"{i} {t.replace(' ', '·')}" for i, t in enumerate(tokens[:n])]
ax.set_xticks(range(n), labels, rotation=45, ha="right")
ax.set_yticks(range(n), labels)
ax.set(
    xlabel="key position j", ylabel="query position i", title="masked scores: row i sees keys 0..i"
)
kept = Patch(color=kept_colour, label="j ≤ i: score kept")
masked = Patch(color=masked_colour, label="j > i: −∞, weight 0")
ax.legend(handles=[kept, masked], loc="upper left", bbox_to_anchor=(1.02, 1))
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# Position 0 may look only at itself, so its weight on itself is 1; the last position may look
# at everything. The mask is a boolean matrix, True where attention is allowed (the convention
# of PyTorch's `scaled_dot_product_attention`), the lower triangle. `causal_mask` builds it. It
# also handles more keys than queries, which chapter 9's KV cache needs; more on that below.


# %%
#| export
def causal_mask(
    n_queries: int, n_keys: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean mask ``(n_queries, n_keys)``: True where a query may attend to a key (torch's rule).

    The queries are the *last* ``n_queries`` of ``n_keys`` positions (bottom-right alignment):
    query ``i`` sits at position ``n_keys - n_queries + i`` and sees keys ``0`` up to there. With
    ``n_keys == n_queries`` (the default) this is the lower triangle; with more keys it is what a
    KV cache needs. (Torch's ``is_causal=True`` aligns the triangle top-left instead.)
    ``n_queries >= 1``; ``n_keys >= n_queries``; ``device`` is where to create the mask.
    """
    n_queries = check_int(n_queries, "n_queries")
    n_keys = n_queries if n_keys is None else check_int(n_keys, "n_keys", minimum=n_queries)
    ### BEGIN SOLUTION
    # TASK: the (n_queries, n_keys) bool mask, True on and below the diagonal ending bottom-right
    allowed = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return allowed.tril(diagonal=n_keys - n_queries)
    ### END SOLUTION


# %%
for row in causal_mask(5).int().tolist():
    print(row)


# %% [markdown]
# Applied to the scores of section 2, with the scaling of section 3:

# %%
mask = causal_mask(len(tokens))  # (T, T)
masked_scores = (qk_scores / math.sqrt(d_k)).masked_fill(~mask, float("-inf"))
causal_weights = torch.softmax(masked_scores, dim=-1)
assert (causal_weights[~mask] == 0).all()  # the future gets weight exactly 0
assert torch.allclose(causal_weights.sum(dim=-1), torch.ones(len(tokens)))
for row in causal_weights[:4, :5].tolist():
    print([round(value, 2) for value in row])
low, high = (f"{100 * value:.0f}%" for value in attn_weights.aminmax())
print(f"without the mask, every weight is between {low} and {high}")

fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
_ = show_attention(attn_weights, tokens, tokens, "no mask", ax=axes[0])
_ = show_attention(causal_weights, tokens, tokens, "causal mask", ax=axes[1])
plt.tight_layout()
plt.show()
plt.close("all")


# %% [markdown]
# Without the mask every row spreads its weight over all 11 keys, none of them dominant (the
# projections are random); with it, row $i$ spreads its weight over $i + 1$ keys, so the early
# rows hold the largest weights: 100% at row 0, about 50% at row 1, and so on. The grey triangle
# is the future.
#
# How much damage does attending to the future do? Let us train two tiny language models that
# differ only in the mask, on sequences of **random** tokens. The next token of a random sequence
# cannot be predicted: an honest model can do no better than the uniform guess, a cross-entropy
# of $\ln V$. A model that scores better than that must be reading the answer. The model: token
# and position embeddings (chapter 3), one attention layer whose output is added to its input
# (`x + attention(x)`, a *residual connection*; chapter 6 explains why), and a linear head to
# the vocabulary.


# %%
class TinyLM(nn.Module):
    """Embeddings, one attention layer (masked or not) with a residual, a linear head."""

    def __init__(self, vocab_size, context_length, d, causal):
        super().__init__()
        self.causal = causal
        self.tok = TokenEmbedding(vocab_size, d)  # chapter 3
        self.pos = LearnedPositionalEmbedding(context_length, d)
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.head = nn.Linear(d, vocab_size)

    def forward(self, ids):  # (B, T) -> logits (B, T, vocab_size)
        T = ids.shape[-1]
        x = self.tok(ids) + self.pos(torch.arange(T))  # (B, T, d)
        s = self.q(x) @ self.k(x).transpose(-2, -1) / math.sqrt(x.shape[-1])  # (B, T, T)
        if self.causal:
            s = s.masked_fill(~causal_mask(T), float("-inf"))
        return self.head(x + torch.softmax(s, dim=-1) @ self.v(x))


# %% [markdown]
# The experiment: 16 symbols, windows of 8 tokens drawn uniformly at random, 300 steps of Adam,
# once with the mask and once without; then the loss at each position on fresh random windows.

# %%
vocab_size, context_length = 16, 8
data = torch.Generator().manual_seed(1)


def random_batch(n):
    """n windows of random tokens: inputs (n, T) and targets (n, T) shifted by one."""
    ids = torch.randint(0, vocab_size, (n, context_length + 1), generator=data)
    return ids[:, :-1], ids[:, 1:]


per_position_loss = {}
for causal in (True, False):
    torch.manual_seed(0)
    model = TinyLM(vocab_size, context_length, d=32, causal=causal)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        inputs, targets = random_batch(64)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    inputs, targets = random_batch(2000)  # fresh random windows
    with torch.no_grad():
        losses = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), reduction="none")
    per_position_loss["causal" if causal else "no mask"] = losses.view(-1, context_length).mean(0)

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, ax = plt.subplots(figsize=(7, 3.6))
for (name, loss), marker in zip(per_position_loss.items(), "os"):
    _ = ax.plot(range(context_length), loss.tolist(), marker + "-", label=name)
_ = ax.axhline(math.log(vocab_size), color="grey", ls="--", label=f"uniform guess, ln {vocab_size}")
ax.set(xlabel="position t in the window", ylabel="loss at position t (nats)")
ax.set(title="loss on fresh random windows, after 300 steps")
ax.legend()
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# The masked model sits at $\ln 16 \approx 2.77$ at every position, as it must on random data.
# The unmasked model reaches a loss near 0 at positions 0 to 6: it learned to copy the token at
# position $t+1$, which tells it nothing about language. At the last position there is no
# $t+1$ in the window to copy, and its loss there is as bad as a guess, or worse. That last
# position is exactly the one that matters when generating text, where the next token does not
# exist yet. Training without the mask learns to cheat, and the cheat is useless at inference.

# %%
ln_v = math.log(vocab_size)
assert (per_position_loss["causal"] - ln_v).abs().max() < 0.1  # no better than guessing
assert (per_position_loss["no mask"][:-1] < 0.3).all()  # copies the answer from position t+1
assert per_position_loss["no mask"][-1] > ln_v - 0.1  # ... and has nothing to copy at the end
print(f"uniform guess: ln {vocab_size} = {ln_v:.2f}")
print("causal:  loss within 0.1 of ln 16 at every position")
print("no mask: loss < 0.3 at positions 0-6, loss > ln 16 - 0.1 at position 7")

# %% [markdown]
# With the mask, the earlier experiment comes out the other way: changing the last token changes
# only the output at the last position.


# %%
def masked_attention(x):  # (T, d_model) -> (T, d_k), causal
    q, k, v = project(x)
    s = (q @ k.T / math.sqrt(d_k)).masked_fill(~causal_mask(len(x)), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


moved = (masked_attention(x_changed) - masked_attention(x)).abs().amax(dim=-1)
print("change at each position:", [round(value, 2) for value in moved.tolist()])
assert (moved[:-1] == 0).all()

# %% [markdown]
# **The same mask at inference.** When a model generates text it runs on the prompt, predicts
# the token after the last position, appends it and runs again. Because of the mask, the output
# at position $t$ is the same whether the model sees only the first $t+1$ tokens or the whole
# window: training (all positions at once, masked) and generation (one more token at a time)
# compute the same thing. We keep the mask at inference for exactly that reason.

# %%
full = masked_attention(x)
for t in range(1, len(tokens) + 1):
    assert torch.allclose(masked_attention(x[:t]), full[:t], atol=1e-6)
print("the outputs on every prefix equal the first rows of the outputs on the whole sentence")

# %% [markdown]
# A KV cache (chapter 9) goes one step further: it keeps the keys and values of the positions
# already processed and computes queries only for the new ones. Then there are more keys than
# queries, and the queries are the *last* positions. `causal_mask(n_queries, n_keys)` aligns the
# triangle to the bottom-right corner for this. Careful: PyTorch's own `is_causal=True` aligns it
# to the top-left when the lengths differ, which would hide the newest keys from the newest
# queries; with a cache, pass an explicit mask.

# %%
print("causal_mask(3, 6): queries at positions 3, 4, 5")
for row in causal_mask(3, 6).int().tolist():
    print(row)
print("torch's is_causal with 3 queries and 6 keys (top-left)")
for row in torch.ones(3, 6, dtype=torch.bool).tril().int().tolist():
    print(row)
q_all, k_all, v_all = project(x)
s_new = (q_all[-3:] @ k_all.T / math.sqrt(d_k)).masked_fill(~causal_mask(3, len(x)), float("-inf"))
assert torch.allclose(torch.softmax(s_new, dim=-1) @ v_all, full[-3:], atol=1e-6)
print("3 new queries over all keys == last 3 rows of full causal attention:", True)

# %% [markdown]
# ## 5. Dropout on the attention weights
#
# Dropout (Srivastava et al., 2014) fights over-fitting by zeroing a random fraction $p$ of
# values during training, so that the network cannot rely on any single one. GPT-2 applies it to
# the attention weights (`attn_pdrop = 0.1` in its Hugging Face configuration): each query
# randomly ignores some of the positions it would have looked at. The values that survive are
# multiplied by $1/(1-p)$, so that every weight keeps its expected value and nothing needs
# rescaling at evaluation time, when dropout is switched off (`model.eval()`). Which values are
# dropped is random (and the random stream differs between PyTorch versions), so we look at
# statistics rather than at one mask.

# %%
dropout = nn.Dropout(p=0.5)
ones = torch.ones(1000, 1000)
torch.manual_seed(123)
dropped = dropout.train()(ones)
fraction_zeroed = (dropped == 0).float().mean().item()
print("train mode: fraction zeroed", round(fraction_zeroed, 2), end="  ")
print("values", dropped.unique().tolist())
print("eval mode: unchanged:", torch.equal(dropout.eval()(ones), ones))
assert abs(fraction_zeroed - 0.5) < 0.01  # a fraction p is zeroed ...
assert dropped.unique().tolist() == [0.0, 2.0]  # ... and the rest scaled by 1 / (1 - p) = 2

# %% [markdown]
# On attention weights this means a row no longer sums to exactly 1 in training, but it does on
# average. Averaged over many dropout masks, the dropped weights come back to the weights. The
# three panels: the causal weights, one dropped sample (its pattern differs from run to run),
# and the mean of 4,000 samples.

# %%
dropout.train()
torch.manual_seed(0)
samples = torch.stack([dropout(causal_weights) for _ in range(4000)])  # (4000, T, T)
mean_row_sum = samples.sum(dim=-1).mean().item()
close = torch.allclose(samples.mean(0), causal_weights, atol=0.05)
print("mean row sum over samples:", round(mean_row_sum, 1), " mean of samples ~ weights:", close)
assert abs(mean_row_sum - 1) < 0.02 and close
assert (samples[:, ~mask] == 0).all()  # dropout never revives a masked weight

fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
_ = show_attention(causal_weights, tokens, tokens, "causal weights", ax=axes[0])
_ = show_attention(samples[0], tokens, tokens, "one dropout sample, p = 0.5", ax=axes[1])
_ = show_attention(samples.mean(0), tokens, tokens, "mean of 4,000 samples", ax=axes[2])
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# In the sample, about half of the cells turned grey and the survivors show twice their weight (a
# weight of 50% becomes 100%); the mean of the samples is the left panel again. Modern large models
# (Llama among them) train with attention dropout 0; small models trained on little data still
# benefit.
#
# ## 6. Scaled dot-product attention as one function
#
# Everything so far fits in one function with the same arguments as PyTorch's
# `torch.nn.functional.scaled_dot_product_attention`: queries, keys and values with any leading
# (batch, head) axes; an optional mask, either boolean (True = may attend, as from `causal_mask`)
# or a float tensor added to the scores (0 where allowed, $-\infty$ where not, or any bias);
# dropout on the weights; `is_causal` as a shortcut for the causal mask; an optional scale. Ours
# can also return the weights, which the fused kernel never builds.
#
# We build it in two steps. The first is the mask, with one case that `simple_attention` never
# met: a query whose every key is masked would get
# $\operatorname{softmax}(-\infty, \dots, -\infty) = 0/0$, NaN. Padding on the left makes such
# queries (exercise 4). Like torch, we give such a *blind* query weights 0 and output 0. A small
# helper applies the mask to the scores and says which queries are blind; it sets their scores
# to 0, so that neither the softmax nor its gradient meets a 0/0.


# %%
#| export
def _apply_mask(
    scores: torch.Tensor, mask: torch.Tensor | None, is_causal: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The scores ``(..., Tq, Tk)`` masked, and ``blind`` ``(..., Tq, 1)``: True for a query
    that may see no key (its row of scores is set to 0). ``mask``: boolean (True = may attend,
    the others get ``-inf``) or float (added); ``is_causal``: torch's top-left triangle. Without
    a mask: the scores unchanged and ``blind=None``.
    """
    if is_causal:
        mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
    if mask is None:
        return scores, None
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))  # weight exactly 0 after softmax
    else:
        scores = scores + mask
    blind = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1): sees nothing
    return scores.masked_fill(blind, 0.0), blind  # no 0/0 = NaN, not even in the gradient


# %%
zero_scores = torch.zeros(2, 3)  # 2 queries, 3 keys
sees = torch.tensor([[True, True, False], [False, False, False]])  # query 1 may see no key
plain = torch.softmax(zero_scores.masked_fill(~sees, float("-inf")), dim=-1)
masked, blind = _apply_mask(zero_scores, sees, is_causal=False)
print("softmax of the -inf scores:", plain.tolist())
print("masked scores:", masked.tolist(), " blind:", blind.flatten().tolist())
assert plain[1].isnan().all() and not torch.softmax(masked, dim=-1).isnan().any()

# %% [markdown]
# The function is then `simple_attention` with the mask and dropout added: scale the scores,
# mask them, softmax, dropout, zero the weights of blind queries, weighted sum. Its first line
# checks the arguments (one call; the checks themselves are in the last section), so that a
# mistake gets a message naming the argument rather than a shape error from deep inside a matrix
# product.


# %%
#| export
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
    check: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q @ k^T * scale + mask) @ v``, step by step: torch's function, written out.

    q ``(..., Tq, D)``, k ``(..., Tk, D)``, v ``(..., Tk, Dv)``; leading axes broadcast. ``mask``
    (torch's ``attn_mask``): boolean, True = may attend, or float, added to the scores; it
    broadcasts to ``(..., Tq, Tk)``. ``is_causal``: torch's top-left triangle (with cached keys
    pass ``mask=causal_mask(Tq, Tk)``). ``scale``: default ``1/sqrt(D)``. Returns the output
    ``(..., Tq, Dv)`` (and the weights ``(..., Tq, Tk)``). A query that may see no key gets
    weights 0 and output 0, as in torch. ``check=False`` skips the argument checks.
    """
    if check:
        check_attention_inputs(q, k, v, mask, dropout_p, is_causal, scale)
    ### BEGIN SOLUTION
    # TASK: softmax(_apply_mask(q k^T * scale)) @ v; scale 1/sqrt(D); dropout_p; blind rows 0
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # 1. scores (..., Tq, Tk)
    scores, blind = _apply_mask(scores, mask, is_causal)  # 2. -inf where forbidden
    weights = torch.softmax(scores, dim=-1)  # 3. softmax over the keys: rows sum to 1
    if dropout_p > 0.0:  # 4. dropout on the weights (training only: the caller decides)
        weights = F.dropout(weights, p=dropout_p, training=True)
    if blind is not None:
        weights = weights.masked_fill(blind, 0.0)  # blind queries: weights 0, so output 0
    output = weights @ v  # 5. weighted sum of the values (..., Tq, Dv)
    return (output, weights) if return_weights else output
    ### END SOLUTION


# %% [markdown]
# It agrees with `simple_attention` when there is no mask, and with PyTorch's fused kernel with
# and without masks, with more keys than queries, and in float64 down to rounding error. (The
# fused kernel is the fast path that chapter 5 uses; ours is the one to read.)

# %%
g = torch.Generator().manual_seed(0)
Q, K, V = (torch.randn(2, 3, 6, 8, generator=g, dtype=torch.float64) for _ in range(3))
assert torch.allclose(
    scaled_dot_product_attention(Q, K, V), simple_attention(Q, K, V)[0], atol=1e-12
)
padding = torch.ones(2, 1, 6, 6, dtype=torch.bool)
padding[1, ..., 4:] = False  # the second sequence's last two positions are padding
bias = torch.randn(6, 6, dtype=torch.float64, generator=g)
checks = {  # name: (our keyword arguments, torch's)
    "no mask": ({}, {}),
    "is_causal": ({"is_causal": True}, {"is_causal": True}),
    "causal_mask": ({"mask": causal_mask(6)}, {"attn_mask": causal_mask(6)}),
    "additive mask": ({"mask": bias}, {"attn_mask": bias}),
    "boolean padding mask": ({"mask": padding}, {"attn_mask": padding}),
    "scale 0.05": ({"scale": 0.05}, {"scale": 0.05}),
}
for name, (ours_kwargs, torch_kwargs) in checks.items():
    ours = scaled_dot_product_attention(Q, K, V, **ours_kwargs)
    theirs = F.scaled_dot_product_attention(Q, K, V, **torch_kwargs)
    agree = torch.allclose(ours, theirs, atol=1e-12)
    print(f"{name:>22}: {tuple(ours.shape)} equal to torch: {agree}")
    assert agree

more_keys = scaled_dot_product_attention(Q[..., 4:, :], K, V, mask=causal_mask(2, 6))
theirs = F.scaled_dot_product_attention(Q[..., 4:, :], K, V, attn_mask=causal_mask(2, 6))
assert torch.allclose(more_keys, theirs, atol=1e-12)
assert torch.allclose(more_keys, scaled_dot_product_attention(Q, K, V, is_causal=True)[..., 4:, :])
print(f"{'2 queries, 6 keys':>22}: {tuple(more_keys.shape)} equal to torch: True")

# %% [markdown]
# ## 7. Batching
#
# Training feeds a batch of windows at once (chapter 2): token ids of shape $(B, T)$, vectors of
# shape $(B, T, d_{\text{model}})$. Nothing in the function needs to change. The matrix product
# `@` treats all axes but the last two as batch axes, `k.transpose(-2, -1)` swaps only the last
# two, softmax runs over the last axis, and the $(T, T)$ mask broadcasts over the batch. Here
# are two sentences of the corpus with the same number of tokens.

# %%
second = "This time it worked, and they were very proud."
batch_ids = torch.stack([ids, torch.tensor(tok.encode(second))])  # (B, T)
batch_tokens = [[tok.decode([i]) for i in row] for row in batch_ids.tolist()]
x_batch = embedding(batch_ids).detach()  # (B, T, d_model)
q_b, k_b, v_b = project(x_batch)  # each (B, T, d_k)
n_tokens = batch_ids.shape[1]
out_b, weights_b = scaled_dot_product_attention(
    q_b, k_b, v_b, mask=causal_mask(n_tokens), return_weights=True
)
print("ids", tuple(batch_ids.shape), "-> x", tuple(x_batch.shape), "-> q, k, v", tuple(q_b.shape))
print("weights", tuple(weights_b.shape), "-> output", tuple(out_b.shape))
for b in range(2):  # the same as running each sentence alone
    alone = scaled_dot_product_attention(q_b[b], k_b[b], v_b[b], mask=causal_mask(n_tokens))
    assert torch.allclose(out_b[b], alone, atol=1e-6)
print("batched == one sentence at a time:", True)

# %% [markdown]
# ## 8. A causal self-attention module
#
# Put the three projections and the masked attention together in an `nn.Module`. It is a single
# *head*: one set of queries, keys and values. Chapter 5 runs several heads side by side and adds
# an output projection. The projections are named `q_proj`, `k_proj`, `v_proj`, as in Hugging
# Face's Llama code, so that loading real weights later is a matter of matching names. Dropout
# is applied only in training mode, following `self.training`.
#
# The module checks its input `x` once, where a user calls in (a cheap check: type, shape, dtype,
# device, no pass over the data). The queries, keys and values it then builds fit each other by
# construction, so it calls the function with `check=False`. With as many queries as keys,
# `is_causal=True` is the same mask as `causal_mask(T)`.


# %%
#| export
class CausalSelfAttention(nn.Module):
    """Single-head causal self-attention: ``x (B, T, d_in) -> (B, T, d_out)``.

    ``q = x W_q``, ``k = x W_k``, ``v = x W_v`` with three ``nn.Linear(d_in, d_out)`` named
    ``q_proj``, ``k_proj``, ``v_proj`` (each stores ``W^T``), then causal
    :func:`scaled_dot_product_attention`. ``dropout`` (in ``[0, 1)``) acts on the attention
    weights in training mode. No output projection: that comes with several heads (chapter 5).
    """

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        self.d_in, self.d_out = check_int(d_in, "d_in"), check_int(d_out, "d_out")
        self.dropout_p = check_dropout(dropout)
        self.q_proj = nn.Linear(d_in, d_out, bias=bias)
        self.k_proj = nn.Linear(d_in, d_out, bias=bias)
        self.v_proj = nn.Linear(d_in, d_out, bias=bias)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, d_in)`` or ``(T, d_in)`` -> ``(B, T, d_out)``; and the weights ``(B, T, T)``."""
        check_layer_input(x, self.d_in, self.q_proj.weight)  # the boundary: one cheap check
        ### BEGIN SOLUTION
        # TASK: q, k, v projections of x, then causal attention (dropout in training only)
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # each (B, T, d_out)
        dropout_p = self.dropout_p if self.training else 0.0
        return scaled_dot_product_attention(
            q, k, v, dropout_p=dropout_p, is_causal=True, return_weights=return_weights, check=False
        )
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}, dropout={self.dropout_p}"


# %%
torch.manual_seed(0)
attention = CausalSelfAttention(d_in=d_model, d_out=4, dropout=0.1)
print(attention)
print("parameters:", sum(p.numel() for p in attention.parameters()))
attention.eval()
with torch.no_grad():
    out, w = attention(x_batch, return_weights=True)
print("x", tuple(x_batch.shape), "-> output", tuple(out.shape), " weights", tuple(w.shape))
assert (w[:, ~causal_mask(n_tokens)] == 0).all()

# %% [markdown]
# The module's output equals PyTorch's fused attention on the same projections, and in eval
# mode it is deterministic; in training mode dropout makes two calls differ unless the seed is
# the same.

# %%
with torch.no_grad():
    q_m, k_m, v_m = attention.q_proj(x_batch), attention.k_proj(x_batch), attention.v_proj(x_batch)
    reference = F.scaled_dot_product_attention(q_m, k_m, v_m, is_causal=True)
    print("equal to torch's fused attention:", torch.allclose(out, reference, atol=1e-6))
    assert torch.allclose(out, reference, atol=1e-6)
    print("eval: two calls equal:", torch.equal(attention(x_batch), attention(x_batch)))
    attention.train()
    torch.manual_seed(7)
    first = attention(x_batch)
    torch.manual_seed(7)
    print("train, same seed: equal:", torch.equal(first, attention(x_batch)))
    print("train, next call: equal:", torch.equal(first, attention(x_batch)))
attention.eval()

_ = show_attention(w[1], batch_tokens[1], batch_tokens[1], "CausalSelfAttention, sentence 2")
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# The weights are still those of an untrained model. Once the model is trained (chapter 8),
# heads learn patterns such as "look at the previous token" or "look at the noun this pronoun
# stands for"; chapter 5 draws several heads side by side.
#
# ## 9. From notebook to library
#
# The exported code calls two guards from `llmbook.checks`, a hand-written module of argument
# checks shared by every chapter:
#
# - `check_attention_inputs(q, k, v, mask, dropout_p, is_causal, scale)`, the first line of
#   `scaled_dot_product_attention`: q, k and v are floating tensors of one dtype, on one device,
#   of shapes that fit ($D$ of q and k, $T_k$ of k and v, broadcasting batch axes); the mask is
#   boolean or of q's dtype, on q's device, broadcasts to the scores, and does not come with
#   `is_causal`; `dropout_p` is in $[0, 1)$; `scale` is a finite number $> 0$.
# - `check_layer_input(x, d_in, weight)`, the first line of `CausalSelfAttention.forward`: `x`
#   is a floating tensor $(\dots, T, d_{\text{in}})$ with $T \ge 1$, on the device and of the
#   dtype of the layer's weights (any float dtype inside `torch.autocast`).
#
# Validation happens where a user calls in. A model that stacks many layers checks its input
# once, and the layers inside pass `check=False` to the function, as the module above does. Each
# mistake gets a `TypeError` or `ValueError` that names the argument, what was given and what is
# allowed:

# %%
meta_q = torch.empty(5, 8, device="meta")  # a tensor with a shape but no data
sdpa = scaled_dot_product_attention  # a short name for this table
bad_calls = {
    "q and k of different widths": lambda: sdpa(torch.randn(5, 8), *torch.randn(2, 5, 4)),
    "scale = nan": lambda: sdpa(*torch.randn(3, 5, 8), scale=float("nan")),
    "q on another device": lambda: sdpa(meta_q, *torch.randn(2, 5, 8)),
    "mask and is_causal": lambda: sdpa(*torch.randn(3, 5, 8), mask=causal_mask(5), is_causal=True),
    "token ids into the module": lambda: attention(batch_ids),
    "no positions (T = 0)": lambda: attention(torch.randn(2, 0, d_model)),
    "float64 input, float32 weights": lambda: attention(x_batch.double()),
}
for name, call in bad_calls.items():
    try:
        call()
    except (TypeError, ValueError) as error:
        print(f"{name}:\n    {type(error).__name__}: {error}")
    else:
        raise AssertionError(f"{name}: no error")

# %% [markdown]
# A mistake shows as a short traceback that ends in the message. A mask must fit the scores,
# here $(T_q, T_k) = (5, 5)$:

# %% tags=["raises-exception"]
scaled_dot_product_attention(*torch.randn(3, 2, 5, 8), mask=causal_mask(4))

# %% [markdown]
# ## Summary
#
# - Attention replaces each position's vector by a weighted average of the vectors of the
#   positions it may see. The weights are a softmax of scores, and the scores are dot products.
# - Queries, keys and values are three learned projections of the input, $q = x W_q$ with $W_q$
#   of shape $(d_{\text{model}}, d_k)$ (`nn.Linear` stores its transpose): the query says what a
#   position looks for, the key what it can be found by, the value what it hands over. They
#   make the similarity learnable and asymmetric.
# - The dot product of two $d_k$-dimensional vectors with unit-variance entries has variance
#   $d_k$. We measured it, and saw that without the $1/\sqrt{d_k}$ the softmax saturates toward
#   one-hot and the gradient through it vanishes; with it, all three stay put as $d_k$ grows.
#   Attention itself is four lines: `simple_attention`.
# - The causal mask puts $-\infty$ on the scores of future positions before softmax, so their
#   weights are exactly 0. Without it, a model trained on random tokens "predicted" them almost
#   perfectly by copying from position $t+1$, and failed where there is no $t+1$: at generation.
#   The same mask at inference makes the output on a prefix equal the output in training.
# - With a KV cache, queries are the last positions: `causal_mask(n_queries, n_keys)` aligns
#   bottom-right; torch's `is_causal` aligns top-left.
# - Dropout on the weights zeroes a fraction $p$ and scales the rest by $1/(1-p)$ in training
#   only; on average the weights are unchanged. Batching needs no change: every operation acts
#   on the last two axes.
# - `llmbook.attention` exports `causal_mask`, `scaled_dot_product_attention` (the readable
#   version, which agrees with PyTorch's fused kernel) and `CausalSelfAttention` (one head),
#   which checks its input once and skips the function's checks inside.
#
# ## Exercises
#
# 1. **Masking after the softmax.** Instead of $-\infty$ before the softmax, take the softmax of
#    the full scores, set the weights of future positions to 0, and divide each row by its sum.
#    Show that you get the same weights as `scaled_dot_product_attention(..., mask=causal_mask(T))`
#    and say why the $-\infty$ version is the one used in practice.
# 2. **Attention is order-blind.** Without a mask and without position embeddings, show that
#    permuting the input positions of `scaled_dot_product_attention` permutes its output rows in
#    the same way (it is permutation-equivariant). Does this still hold with the causal mask?
# 3. **Scale by $1/d_k$?** Repeat the measurement of section 3 with the scores divided by $d_k$
#    instead of $\sqrt{d_k}$. What happens to the variance of the scores and the largest
#    weight as $d_k$ grows, and why is that also a problem?
# 4. **A padding mask.** Batch the two sentences "When he looked for it, the hat was gone!" and
#    "Kai smiled." (book tokenizer) by padding the shorter with `<|endoftext|>` on the right.
#    Build one boolean mask of shape $(B, 1, T, T)$ (or $(B, T, T)$) that is causal *and* forbids
#    attending to padding keys, check it against `torch.nn.functional.scaled_dot_product_attention`,
#    and show that the outputs at the real positions of the short sentence equal those computed on
#    it alone. Then pad on the left: what changes?
# 5. **The size of the attention matrix.** How many bytes do the attention weights of one
#    sequence take in float32 for GPT-2 small (12 layers, 12 heads, context 1024), counting every
#    head of every layer, as training keeps them for the backward pass? And at a context of
#    8,192 and 131,072 tokens (Llama 3.1 8B: 32 layers, 32 query heads)? What does this suggest
#    about materialising the matrix, the subject of fused kernels in chapter 5?
#
# Worked solutions: `chapters/solutions/04_attention.ipynb`.
