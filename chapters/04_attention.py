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
# # Chapter 04: Attention
#
# After chapter 3 every token has a vector, but each vector was looked up on its own: ` cook`
# gets the same vector in "cook an egg" and in "the cook smiled", and nothing in it says what
# came before. **Attention** is the step where positions exchange information. Every position
# builds a new vector as a weighted average of the vectors at the positions it may look at, and
# it computes the weights itself, from the data, fresh for every input.
#
# **What you will build**
#
# 1. Self-attention with no trainable weights on a real sentence, one step at a time: scores as
#    dot products, softmax to weights, a weighted sum; the attention matrix as a heat map.
# 2. Queries, keys and values from three trainable projections, and what each role means.
# 3. Scaled dot-product attention, with a *measurement* of why the scores are divided by
#    $\sqrt{d_k}$: the variance of the scores, the saturation of softmax, the vanishing gradient.
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
from torch import nn

from llmbook.checks import check_dropout, check_int

# %%
torch.manual_seed(0)
torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## 1. Self-attention without trainable weights
#
# Take the running example of the book, a question one might ask a chat model, and turn it into
# token ids with GPT-2's tokenizer (chapter 1). Then give each id a vector with the embedding
# table of chapter 3 (`TokenEmbedding`, an `nn.Embedding` that checks its ids). The table here
# is random, as it is in a model before training, and small (8 numbers per token) so that we can
# look at the numbers.

# %%
import matplotlib.pyplot as plt
import tiktoken
import torch.nn.functional as F

from llmbook.embeddings import LearnedPositionalEmbedding, TokenEmbedding

tokenizer = tiktoken.get_encoding("gpt2")
sentence = "How do I cook tomato and egg stir-fry?"
ids = torch.tensor(tokenizer.encode(sentence))
tokens = [tokenizer.decode([i]) for i in ids.tolist()]
print("ids   ", tuple(ids.shape), ids.tolist())
print("tokens", tokens)

d_model = 8
embedding = TokenEmbedding(tokenizer.n_vocab, d_model)  # chapter 3's table (50257, 8), seeded
x = embedding(ids).detach()  # (T, d_model): one vector per token, no gradients needed here
print("x     ", tuple(x.shape))

# %% [markdown]
# Self-attention turns each vector $x_i$ into a **context vector** $z_i$ that mixes in
# information from the other positions. Take one position, the query ` egg` (position 6), and
# follow the three steps.
#
# **Step 1, scores.** How much should ` egg` look at position $j$? The simplest measure of how
# well two vectors match is their dot product: $s_{j} = x_{\text{egg}} \cdot x_j$, large when
# the vectors point the same way, negative when they point apart.

# %%
position = tokens.index(" egg")
query = x[position]  # (d_model,)
scores_egg = x @ query  # (T,): the dot product of the query with every token's vector
assert torch.allclose(scores_egg[2], torch.dot(x[2], query))  # one entry, written out
print(f"query: {tokens[position]!r} at position {position}")
for token, score in zip(tokens, scores_egg.tolist()):
    print(f"  {token!r:>9}  score {score:7.2f}")

# %% [markdown]
# ` egg` matches itself best, which is no surprise: a vector always points the same way as
# itself. The other scores are large or small by chance, because the table is untrained.
#
# **Step 2, weights.** Scores can be any real number; we want non-negative weights that sum to
# 1, so that the result is an average. Softmax does that, $w_j = e^{s_j} / \sum_{j'} e^{s_{j'}}$,
# and keeps the order of the scores: the best match gets the largest weight.

# %%
weights_egg = torch.softmax(scores_egg, dim=0)  # (T,)
by_hand = scores_egg.exp() / scores_egg.exp().sum()
assert torch.allclose(weights_egg, by_hand)
assert torch.isclose(weights_egg.sum(), torch.tensor(1.0))
print("weights", [round(value, 2) for value in weights_egg.tolist()])
print("sum    ", round(weights_egg.sum().item(), 4))

# %% [markdown]
# **Step 3, weighted sum.** The context vector of ` egg` is the average of all token vectors,
# each weighted by how well it matched: $z_{\text{egg}} = \sum_j w_j x_j$.

# %%
z_egg = weights_egg @ x  # (T,) @ (T, d_model) -> (d_model,)
assert torch.allclose(z_egg, sum(w * row for w, row in zip(weights_egg, x)))
print("z_egg", tuple(z_egg.shape))

# %% [markdown]
# Every position does the same, and matrix products do all of them at once: the scores of all
# pairs are $S = X X^\top$ (row $i$ holds query $i$'s scores against every position), softmax
# runs along each row, and $Z = W X$.

# %%
scores = x @ x.T  # (T, d_model) @ (d_model, T) -> (T, T)
weights = torch.softmax(scores, dim=-1)  # each row sums to 1
context = weights @ x  # (T, T) @ (T, d_model) -> (T, d_model)
assert torch.allclose(context[position], z_egg, atol=1e-6)
assert torch.allclose(weights.sum(dim=-1), torch.ones(len(tokens)))
print("scores", tuple(scores.shape), " weights", tuple(weights.shape), " context", tuple(context.shape))


# %% [markdown]
# The weights form the **attention matrix**: row $i$ says where position $i$ looks. A heat map
# with the tokens on both axes shows it at a glance.

# %%
def show_attention(weights, row_tokens, col_tokens, title, ax=None):
    """Draw a (T_query, T_key) matrix of attention weights with token labels."""
    ax = ax or plt.subplots(figsize=(5.5, 4.5))[1]
    image = ax.imshow(weights.detach(), cmap="viridis", vmin=0.0)
    label = lambda token: token.replace(" ", "·")  # noqa: E731  (· marks a leading space)
    ax.set_xticks(range(len(col_tokens)), [label(t) for t in col_tokens], rotation=90)
    ax.set_yticks(range(len(row_tokens)), [label(t) for t in row_tokens])
    ax.set_xlabel("key (position looked at)")
    ax.set_ylabel("query (position looking)")
    ax.set_title(title)
    plt.colorbar(image, ax=ax, fraction=0.046)
    return ax


_ = show_attention(weights, tokens, tokens, "softmax(X X^T): no trainable weights")
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# The vectors are random, so the pattern means nothing yet, except for one thing: the diagonal is
# bright. A vector matches itself well, because $x_i \cdot x_i = \lVert x_i \rVert^2$ is
# positive and usually the largest score in its row, so each token mostly attends to itself. Also
# $S$ is symmetric: "egg looks at tomato" scores the same as "tomato looks at egg". Both are
# limitations of using the raw vectors. The next section removes them.

# %%
diagonal_wins = (scores.argmax(dim=-1) == torch.arange(len(tokens))).sum().item()
print(f"rows whose largest score is on the diagonal: {diagonal_wins} of {len(tokens)}")
print("scores symmetric:", torch.equal(scores, scores.T))

# %% [markdown]
# ## 2. Queries, keys and values
#
# In the version above each vector plays three parts at once: it is the question a position
# asks, the label by which others find it, and the content it hands over. A transformer gives
# each part its own learned linear map:
#
# - the **query** $q_i = x_i W_q$: what position $i$ is looking for ("I am a noun; where is my
#   adjective?");
# - the **key** $k_j = x_j W_k$: what position $j$ offers to be found by ("I am an adjective");
# - the **value** $v_j = x_j W_v$: what position $j$ passes on when it is attended to.
#
# The score becomes $q_i \cdot k_j = x_i W_q W_k^\top x_j^\top$: a learned similarity that need
# not be symmetric and need not favour the diagonal. It is the soft version of a dictionary
# lookup: compare the query with every key, and return a blend of the values, weighted by how
# well each key matched. The three maps are `nn.Linear` layers without bias (GPT-2 has biases,
# Llama does not; both work). Their output width $d_k$ (here 4) need not equal $d_{\text{model}}$.

# %%
d_k = 4
W_q = nn.Linear(d_model, d_k, bias=False)  # weight (d_k, d_model); x @ W_q.weight.T
W_k = nn.Linear(d_model, d_k, bias=False)
W_v = nn.Linear(d_model, d_k, bias=False)
q, k, v = W_q(x), W_k(x), W_v(x)  # each (T, d_k)
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
# (GPT-2) or 128 (Llama-3.1-8B): scores of size 8 to 11 instead of 1. Softmax of large,
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
# NBVAL_IGNORE_OUTPUT
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
print(f"{'d_k':>5} | {'var(q.k)':>9} {'max w':>6} {'|grad|':>8} | {'var(q.k/sqrt d)':>15} {'max w':>6} {'|grad|':>8}")
for d, r, s in zip(d_ks, raw, scaled):
    print(
        f"{d:>5} | {r['variance']:9.1f} {r['max_weight']:6.3f} {r['grad_norm']:8.1e} | "
        f"{s['variance']:15.2f} {s['max_weight']:6.3f} {s['grad_norm']:8.1e}"
    )

# %% [markdown]
# The table (its numbers depend a little on the machine, so the notebook does not compare them
# on replay) says what the argument predicted, and the asserts below check it: without scaling
# the variance of the scores equals $d_k$, the largest weight climbs to nearly 1, and the gradient
# collapses by orders of magnitude; with scaling all three stay where they were at $d_k = 1$.

# %%
for d, r, s in zip(d_ks, raw, scaled):
    assert 0.8 < r["variance"] / d < 1.2, (d, r)  # var(q.k) grows like d_k
    assert 0.8 < s["variance"] < 1.2, (d, s)  # the scaled scores keep variance 1
    assert s["max_weight"] < 0.5, (d, s)  # the scaled softmax stays spread out
assert raw[-1]["max_weight"] > 0.9  # unscaled, d_k = 1024: nearly one-hot
assert raw[-1]["grad_norm"] < 0.01 * scaled[-1]["grad_norm"]  # ... and almost no gradient
print("checked: variance ~ d_k unscaled, ~1 scaled; unscaled softmax saturates; its gradient vanishes")

# %%
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
    ax.set_xlabel("d_k")
    ax.set_title(label)
    ax.legend()
plt.tight_layout()
plt.show()
plt.close("all")

# %% [markdown]
# So we scale. With the projections of section 2, the weights of scaled dot-product attention:

# %%
attn_weights = torch.softmax(qk_scores / math.sqrt(d_k), dim=-1)  # (T, T)
attn_context = attn_weights @ v  # (T, T) @ (T, d_k) -> (T, d_k)
print("weights", tuple(attn_weights.shape), " context", tuple(attn_context.shape))

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
changed_ids[-1] = tokenizer.encode("!")[0]  # "...stir-fry?" -> "...stir-fry!"
x_changed = embedding(changed_ids).detach()


def unmasked_attention(x):
    q, k, v = W_q(x), W_k(x), W_v(x)
    return torch.softmax(q @ k.T / math.sqrt(d_k), dim=-1) @ v  # (T, d_k)


moved = (unmasked_attention(x_changed) - unmasked_attention(x)).abs().amax(dim=-1)  # (T,)
print("change at each position:", [round(value, 3) for value in moved.tolist()])
assert (moved[:-1] > 0).all()  # every earlier position saw the future token

# %% [markdown]
# Every position moved, so the output at position 10 (whose job is to predict the `?`) depends
# on the `?`. How much damage does that do? Let us train two tiny language models that differ
# only in the mask, on sequences of **random** tokens. The next token of a random sequence cannot
# be predicted: an honest model can do no better than the uniform guess, a cross-entropy of
# $\ln V$. A model that scores better than that must be reading the answer.
#
# The model: token and position embeddings, one attention layer with a residual connection, a
# linear head to the vocabulary. The causal mask comes from `causal_mask`, which we write now:
# a boolean matrix, True where attention is allowed (the convention of PyTorch's
# `scaled_dot_product_attention`), the lower triangle. It also handles more keys than queries,
# which chapter 9's KV cache needs; more on that below.

# %%
#| export
def causal_mask(
    n_queries: int, n_keys: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean causal mask of shape ``(n_queries, n_keys)``: True where a query may attend to a key.

    True means "allowed", the convention of ``torch.nn.functional.scaled_dot_product_attention``.
    The queries are the *last* ``n_queries`` positions of a sequence of ``n_keys`` positions
    (bottom-right alignment): query ``i`` sits at absolute position ``n_keys - n_queries + i`` and
    may attend to keys ``0 .. n_keys - n_queries + i``. With ``n_keys == n_queries`` (the default)
    this is the lower triangle; with more keys than queries it is what a KV cache needs, where new
    queries come after the cached keys. (Torch's own ``is_causal=True`` aligns the triangle to the
    top-left instead, which differs when ``n_queries != n_keys``.)

    Args:
        n_queries: number of query positions, ``>= 1``.
        n_keys: number of key positions, ``>= n_queries``; defaults to ``n_queries``.
        device: where to create the mask (default: torch's default device).

    Returns:
        A ``torch.bool`` tensor of shape ``(n_queries, n_keys)``.
    """
    n_queries = check_int(n_queries, "n_queries")
    n_keys = n_queries if n_keys is None else check_int(n_keys, "n_keys")
    if n_keys < n_queries:
        raise ValueError(
            f"n_keys must be >= n_queries (queries are the last n_queries of the n_keys positions), "
            f"got n_queries={n_queries}, n_keys={n_keys}"
        )
    allowed = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return allowed.tril(diagonal=n_keys - n_queries)

# %%
print(causal_mask(5).int())


# %% [markdown]
# To apply it, we set the scores of forbidden pairs to $-\infty$ **before** the softmax. Since
# $e^{-\infty} = 0$, their weights are exactly 0, and the allowed weights still sum to 1.

# %%
mask = causal_mask(len(tokens))  # (T, T)
masked_scores = (qk_scores / math.sqrt(d_k)).masked_fill(~mask, float("-inf"))
causal_weights = torch.softmax(masked_scores, dim=-1)
assert (causal_weights[~mask] == 0).all()  # the future gets weight exactly 0
assert torch.allclose(causal_weights.sum(dim=-1), torch.ones(len(tokens)))
print(causal_weights[:4, :5].detach())

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
_ = show_attention(attn_weights, tokens, tokens, "no mask", ax=axes[0])
_ = show_attention(causal_weights, tokens, tokens, "causal mask", ax=axes[1])
plt.tight_layout()
plt.show()
plt.close("all")


# %% [markdown]
# (The two panels have their own colour scales: without the mask every weight is near 1/12.)
#
# Now the experiment: 16 symbols, windows of 8 tokens drawn uniformly at random, 300 steps of
# Adam, once with the mask and once without.

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

# %%
# NBVAL_IGNORE_OUTPUT
print(f"uniform guess: ln {vocab_size} = {math.log(vocab_size):.2f}")
for name, loss in per_position_loss.items():
    print(f"{name:>8}: mean {loss.mean():.2f}   per position {[round(value, 2) for value in loss.tolist()]}")

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
print("checked: the unmasked model reads the answer; the masked one cannot")

# %% [markdown]
# With the mask, the earlier experiment comes out the other way: changing the last token changes
# only the output at the last position.

# %%
def masked_attention(x):
    q, k, v = W_q(x), W_k(x), W_v(x)
    s = (q @ k.T / math.sqrt(d_k)).masked_fill(~causal_mask(len(x)), float("-inf"))
    return torch.softmax(s, dim=-1) @ v  # (T, d_k)


moved = (masked_attention(x_changed) - masked_attention(x)).abs().amax(dim=-1)
print("change at each position:", [round(value, 3) for value in moved.tolist()])
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
print(causal_mask(3, 6).int())
print("torch's is_causal with 3 queries and 6 keys (top-left)")
print(torch.ones(3, 6, dtype=torch.bool).tril().int())
last_three = masked_attention(x)[-3:]
q_new, k_all, v_all = W_q(x[-3:]), W_k(x), W_v(x)
s_new = (q_new @ k_all.T / math.sqrt(d_k)).masked_fill(~causal_mask(3, len(x)), float("-inf"))
assert torch.allclose(torch.softmax(s_new, dim=-1) @ v_all, last_three, atol=1e-6)
print("3 new queries over all keys == last 3 rows of full causal attention:", True)

# %% [markdown]
# ## 5. Dropout on the attention weights
#
# Dropout (Srivastava et al., 2014) fights over-fitting by zeroing a random fraction $p$ of
# values during training, so that the network cannot rely on any single one. GPT-2 applies it to
# the attention weights: each query randomly ignores some of the positions it would have looked
# at. The values that survive are multiplied by $1/(1-p)$, so that every weight keeps its
# expected value and nothing needs rescaling at evaluation time, when dropout is switched off
# (`model.eval()`).

# %%
dropout = nn.Dropout(p=0.5)
ones = torch.ones(4, 6)
torch.manual_seed(123)
print("train mode: about half zeroed, the rest scaled by 1 / (1 - 0.5) = 2")
print(dropout.train()(ones))
print("eval mode: unchanged")
print(dropout.eval()(ones))
assert torch.equal(dropout.eval()(ones), ones)

# %% [markdown]
# On attention weights this means a row no longer sums to exactly 1 in training, but it does on
# average. Averaged over many dropout masks, the dropped weights come back to the weights.

# %%
dropout.train()
torch.manual_seed(0)
samples = torch.stack([dropout(causal_weights) for _ in range(4000)])  # (4000, T, T)
print("row sums of one sample:", [round(value, 2) for value in samples[0].sum(dim=-1)[:6].tolist()])
print("max |mean of samples - weights|:", round((samples.mean(0) - causal_weights).abs().max().item(), 2))
assert torch.allclose(samples.mean(0), causal_weights, atol=0.05)
assert (samples[:, ~mask] == 0).all()  # dropout never revives a masked weight

# %% [markdown]
# Modern large models (Llama among them) train with attention dropout 0; small models trained on
# little data still benefit from it.
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
# First a helper that checks the arguments, so that a mistake gets a message naming the argument
# rather than a shape error from deep inside a matrix product.

# %%
#| export
def _check_attention_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float,
    is_causal: bool,
) -> None:
    """Raise a clear ``TypeError``/``ValueError`` for arguments attention cannot use."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same head dimension (last axis), got q {tuple(q.shape)} "
            f"and k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions (axis -2), got k {tuple(k.shape)} "
            f"and v {tuple(v.shape)}"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) axes of q, k and v must broadcast, got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)} and v {tuple(v.shape)}"
        ) from None
    check_dropout(dropout_p, "dropout_p")
    if mask is None:
        return
    if is_causal:
        raise ValueError("pass either mask or is_causal=True, not both (as in torch)")
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and mask.dtype != q.dtype:
        raise TypeError(
            f"mask must be boolean (True = attend) or have q's dtype {q.dtype} (added to the "
            f"scores), got dtype {mask.dtype}"
        )
    scores_shape = (*batch, q.shape[-2], k.shape[-2])
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == torch.Size(scores_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"(..., Tq, Tk) = {scores_shape}"
        )

# %% [markdown]
# Then the function itself: the five steps of this chapter, in order.

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
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention written out step by step: ``softmax(q @ k^T * scale + mask) @ v``.

    The teaching version of ``torch.nn.functional.scaled_dot_product_attention``, with the same
    arguments and semantics (``mask`` plays the part of torch's ``attn_mask``). It materialises
    the ``(Tq, Tk)`` matrix of weights, so it can return it; the fused kernel does not.

    Args:
        q: queries, shape ``(..., Tq, D)``.
        k: keys, shape ``(..., Tk, D)``.
        v: values, shape ``(..., Tk, Dv)``. The leading axes ``...`` of q, k, v broadcast.
        mask: ``None``; a boolean tensor where True means "may attend" and False sets the score
            to ``-inf`` (see :func:`causal_mask`); or a float tensor of q's dtype added to the
            scores. Either must broadcast to ``(..., Tq, Tk)``.
        dropout_p: probability of zeroing each attention weight, in ``[0, 1)``; the kept weights
            are scaled by ``1 / (1 - dropout_p)``. Applied whenever ``dropout_p > 0`` (as in
            torch): a module passes 0 in eval mode.
        is_causal: apply a causal mask aligned to the top-left corner, exactly as torch's
            ``is_causal`` does: query ``i`` sees keys ``0..i``. That is right when ``Tq == Tk``;
            when queries come after cached keys (``Tq < Tk``) pass ``mask=causal_mask(Tq, Tk)``.
        scale: factor applied to the scores; default ``1 / sqrt(D)``.
        return_weights: also return the attention weights (after dropout).

    Returns:
        The output, shape ``(..., Tq, Dv)``; and if ``return_weights``, the weights, shape
        ``(..., Tq, Tk)``, whose rows sum to 1 (without dropout). A query whose every key is masked
        gets weights 0 and output 0, as in torch, instead of 0/0 = NaN.
    """
    _check_attention_inputs(q, k, v, mask, dropout_p, is_causal)
    n_queries, n_keys = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])

    # 1. Scores: how well each query matches each key.          (..., Tq, D) @ (..., D, Tk)
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)

    # 2. Mask: forbidden positions get -inf, so softmax gives them weight exactly 0.
    if is_causal:
        mask = torch.ones(n_queries, n_keys, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask

    # A query whose every key is masked would get softmax(-inf, ..., -inf) = 0/0 = NaN. Like
    # torch, we give it weights 0 and output 0: its scores become 0 here (no NaN, not even in the
    # gradient), and its output row is zeroed at the end.
    if mask is not None:
        nothing_allowed = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
        scores = scores.masked_fill(nothing_allowed, 0.0)

    # 3. Softmax over the keys: each row becomes a probability distribution.
    weights = torch.softmax(scores, dim=-1)  # (..., Tq, Tk)

    # 4. Dropout on the weights (training only; the caller decides by passing dropout_p).
    if dropout_p > 0.0:
        weights = torch.nn.functional.dropout(weights, p=dropout_p, training=True)

    # 5. Output: for each query, the weighted sum of the values.  (..., Tq, Tk) @ (..., Tk, Dv)
    output = weights @ v  # (..., Tq, Dv)
    if mask is not None:  # the queries that may see nothing: output 0 (and weights 0 if asked)
        output = output.masked_fill(nothing_allowed, 0.0)
        if return_weights:
            weights = weights.masked_fill(nothing_allowed, 0.0)
    return (output, weights) if return_weights else output

# %% [markdown]
# It agrees with PyTorch's fused kernel, with and without masks, with more keys than queries,
# and in float64 down to rounding error. (The fused kernel is the fast path that chapter 5 uses;
# ours is the one to read.)

# %%
g = torch.Generator().manual_seed(0)
Q, K, V = (torch.randn(2, 3, 6, 8, generator=g, dtype=torch.float64) for _ in range(3))
padding = torch.ones(2, 1, 6, 6, dtype=torch.bool)
padding[1, ..., 4:] = False  # the second sequence's last two positions are padding
checks = {
    "no mask": ({}, {}),
    "is_causal": ({"is_causal": True}, {"is_causal": True}),
    "causal_mask": ({"mask": causal_mask(6)}, {"attn_mask": causal_mask(6)}),
    "additive mask": ({"mask": torch.randn(6, 6, dtype=torch.float64)}, None),
    "boolean padding mask": ({"mask": padding}, {"attn_mask": padding}),
}
for name, (ours_kwargs, torch_kwargs) in checks.items():
    torch_kwargs = {"attn_mask": ours_kwargs["mask"]} if torch_kwargs is None else torch_kwargs
    ours = scaled_dot_product_attention(Q, K, V, **ours_kwargs)
    theirs = F.scaled_dot_product_attention(Q, K, V, **torch_kwargs)
    print(f"{name:>22}: {tuple(ours.shape)} equal to torch: {torch.allclose(ours, theirs, atol=1e-12)}")
    assert torch.allclose(ours, theirs, atol=1e-12)

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
# are two sentences of 12 tokens each.

# %%
second = "Fry the egg, then add the tomato and salt."
batch_ids = torch.stack([ids, torch.tensor(tokenizer.encode(second))])  # (B, T)
batch_tokens = [[tokenizer.decode([i]) for i in row] for row in batch_ids.tolist()]
x_batch = embedding(batch_ids).detach()  # (B, T, d_model)
q_b, k_b, v_b = W_q(x_batch), W_k(x_batch), W_v(x_batch)  # each (B, T, d_k)
out_b, weights_b = scaled_dot_product_attention(
    q_b, k_b, v_b, mask=causal_mask(batch_ids.shape[1]), return_weights=True
)
print("ids", tuple(batch_ids.shape), "-> x", tuple(x_batch.shape), "-> q, k, v", tuple(q_b.shape))
print("weights", tuple(weights_b.shape), "-> output", tuple(out_b.shape))
for b in range(2):  # the same as running each sentence alone
    alone = scaled_dot_product_attention(q_b[b], k_b[b], v_b[b], mask=causal_mask(12))
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

# %%
#| export
class CausalSelfAttention(nn.Module):
    """Single-head causal self-attention: each position attends to itself and earlier positions.

    Three linear maps turn the input ``x (B, T, d_in)`` into queries, keys and values of width
    ``d_out``; :func:`scaled_dot_product_attention` with :func:`causal_mask` mixes the values.
    There is no output projection: that comes with several heads (chapter 5).

    Args:
        d_in: width of the input vectors, ``>= 1``.
        d_out: width of queries, keys, values and of the output, ``>= 1``.
        dropout: dropout probability on the attention weights in training mode, in ``[0, 1)``.
        bias: whether the three projections have a bias.

    Attributes:
        q_proj, k_proj, v_proj: the ``nn.Linear(d_in, d_out)`` projections.
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
        """Attend causally over the positions of ``x``.

        Args:
            x: input of shape ``(B, T, d_in)`` (any number of leading axes works).
            return_weights: also return the attention weights ``(B, T, T)``.

        Returns:
            ``(B, T, d_out)``, and the weights if ``return_weights``.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[-1] != self.d_in:
            raise ValueError(f"x must have shape (B, T, d_in={self.d_in}), got {tuple(x.shape)}")
        n_tokens = x.shape[-2]
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # each (B, T, d_out)
        return scaled_dot_product_attention(
            q,
            k,
            v,
            mask=causal_mask(n_tokens, device=x.device),  # (T, T), broadcast over B
            dropout_p=self.dropout_p if self.training else 0.0,
            return_weights=return_weights,
        )

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
assert (w[:, ~causal_mask(12)] == 0).all()

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
# heads learn patterns such as "look at the previous token" or "look at the noun this adjective
# belongs to"; chapter 5 draws several heads side by side.
#
# Mistakes get a message that names the argument. Queries and keys of different widths cannot be
# compared:

# %% tags=["raises-exception"]
scaled_dot_product_attention(torch.randn(2, 5, 8), torch.randn(2, 5, 4), torch.randn(2, 5, 4))

# %% [markdown]
# and a mask must fit the scores, here $(T_q, T_k) = (5, 5)$:

# %% tags=["raises-exception"]
scaled_dot_product_attention(*torch.randn(3, 2, 5, 8), mask=causal_mask(4))

# %% [markdown]
# ## Summary
#
# - Attention replaces each position's vector by a weighted average of the vectors of the
#   positions it may see. The weights are a softmax of scores, and the scores are dot products.
# - Queries, keys and values are three learned projections of the input: the query says what a
#   position looks for, the key what it can be found by, the value what it hands over. They
#   make the similarity learnable and asymmetric.
# - The dot product of two $d_k$-dimensional vectors with unit-variance entries has variance
#   $d_k$. We measured it, and saw that without the $1/\sqrt{d_k}$ the softmax saturates toward
#   one-hot and the gradient through it vanishes; with it, all three stay put as $d_k$ grows.
# - The causal mask puts $-\infty$ on the scores of future positions before softmax, so their
#   weights are exactly 0. Without it, a model trained on random tokens "predicted" them almost
#   perfectly by copying from position $t+1$, and failed where there is no $t+1$: at generation.
#   The same mask at inference makes the output on a prefix equal the output in training.
# - With a KV cache, queries are the last positions: `causal_mask(n_queries, n_keys)` aligns
#   bottom-right; torch's `is_causal` aligns top-left.
# - Dropout on the weights zeroes a fraction $p$ and scales the rest by $1/(1-p)$ in training
#   only. Batching needs no change: every operation acts on the last two axes.
# - `llmbook.attention` exports `causal_mask`, `scaled_dot_product_attention` (the readable
#   version, which agrees with PyTorch's fused kernel) and `CausalSelfAttention` (one head).
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
# 4. **A padding mask.** Batch the two sentences "How do I cook tomato and egg stir-fry?" and
#    "Beat two eggs." by padding the shorter with `<|endoftext|>` on the right. Build one boolean
#    mask of shape $(B, 1, T, T)$ (or $(B, T, T)$) that is causal *and* forbids attending to
#    padding keys, check it against `torch.nn.functional.scaled_dot_product_attention`, and show
#    that the outputs at the real positions of the short sentence equal those computed on it
#    alone.
# 5. **The size of the attention matrix.** How many bytes do the attention weights of one
#    sequence take in float32 for GPT-2 small (12 layers, 12 heads, context 1024), counting every
#    head of every layer, as training keeps them for the backward pass? And at a context of
#    8,192 and 131,072 tokens (Llama-3.1-8B: 32 layers, 32 query heads)? What does this suggest
#    about materialising the matrix, the subject of fused kernels in chapter 5?
#
# Worked solutions: `chapters/solutions/04_attention.ipynb`.
