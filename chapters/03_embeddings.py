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
# # Chapter 03: Embeddings
#
# A tokenizer turns text into integers (chapter 1) and the data pipeline cuts those integers into
# windows (chapter 2). A neural network, however, computes with vectors of real numbers. This chapter
# builds the first layer of the model: the one that turns each token id into a vector, and adds to it
# a second vector that says *where* in the sequence the token sits.
#
# ```mermaid
# flowchart TD
#     A["text"] -->|"tokenizer (chapter 1)"| B["ids (B, T)<br/>in 0..2047"]
#     B -->|"wte: a row per id"| C["token vectors<br/>(B, T, d_model)"]
#     P["positions 0..T-1"] -->|"wpe: a row per position"| D["position vectors<br/>(T, d_model)"]
#     C --> S(("+"))
#     D --> S
#     S --> H["h (B, T, d_model)<br/>input of the first block"]
# ```
#
# **What you will build** (exported to `llmbook.embeddings`):
#
# - `TokenEmbedding(vocab_size, d_model, validate=True)`: a learnable lookup table, one row per
#   token id, with clear errors for ids that are not integers or do not exist in the vocabulary
#   (and a switch to turn the check off where a model has already checked its ids);
# - `LearnedPositionalEmbedding(context_length, d_model)`: GPT-2's learned table of position vectors;
# - `sinusoidal_positions(n_positions, d_model)` and `SinusoidalPositionalEmbedding`: the fixed sine
#   and cosine pattern of "Attention Is All You Need".
#
# Along the way we check, with numbers, the claims usually made about embeddings: a lookup is the
# same as multiplying a one-hot vector by the table; training moves only the rows of tokens it sees;
# training gives the vectors a geometry in which tokens used alike are close; attention without
# position information cannot tell "dog bites man" from "man bites dog"; and sinusoidal positions
# let a model express "k tokens further on" as one fixed rotation.
#
# The running example is the book's own: the `stories` corpus and the tokenizer trained on it in
# chapter 1 (2,048 ids), with GPT-2's and Llama's sizes quoted beside.

# %%
#| default_exp embeddings
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from llmbook import encode_text, load_corpus, load_tokenizer

torch.manual_seed(0)
tok = load_tokenizer("stories")
V = tok.vocab_size
print("vocab_size", V)

# %% [markdown]
# ## 1. A token embedding is a lookup table
#
# The model keeps one vector of `d_model` numbers per entry of the vocabulary. Stacked, these vectors
# form a matrix of shape `(vocab_size, d_model)`; embedding token `i` means reading row `i`. The rows
# start random and are trained with the rest of the model.
#
# Real sizes: GPT-2 small has `vocab_size = 50,257` and `d_model = 768`, so its table holds
# 50,257 x 768 = 38.6 million numbers, almost a third of its 124 million parameters. Llama-2-7B has
# 32,000 x 4,096 = 131 million; Llama-3.1-8B 128,256 x 4,096 = 525 million (and, because its output
# layer is not tied to this table, another 525 million in the LM head; the small Llama-3.2 models,
# 1B and 3B, do tie the two). The book's
# tokenizer has 2,048 ids, so at GPT-2's width its table would be 2,048 x 768 = 1.6 million.

# %%
sizes = {"GPT-2 small": (50257, 768), "Llama-2-7B": (32000, 4096), "Llama-3.1-8B": (128256, 4096)}
sizes["book's ids at GPT-2's width"] = (V, 768)
for name, (rows, width) in sizes.items():
    print(f"{name:>28}: {rows:>7,} x {width:>5,} = {rows * width / 1e6:6.1f} million numbers")
print(f"GPT-2 small's table is {50257 * 768 / 124_439_808:.0%} of its 124,439,808 parameters")

# %% [markdown]
# The running prompt of the book, tokenized with the book's tokenizer:

# %%
prompt = "How do I cook tomato and egg stir-fry?"
ids = torch.tensor([tok.encode(prompt)])  # (B, T)
pieces = [tok.decode([i]) for i in ids[0].tolist()]
print("input_ids", tuple(ids.shape), ids.tolist())
print(pieces)

# %% [markdown]
# The smallest version of the layer is a random matrix and an indexing operation. Indexing a
# `(vocab_size, d_model)` table with a `(B, T)` tensor of ids gives `(B, T, d_model)`: one row per
# id, in the order of the ids.

# %%
d_model = 8
table = torch.randn(V, d_model)  # (vocab_size, d_model), one row per token id
x = table[ids]  # (B, T) ids -> (B, T, d_model) rows
print("table", tuple(table.shape), "| ids", tuple(ids.shape), "-> x", tuple(x.shape))
cook = pieces.index(" cook")
print(f"row of ' cook' (id {ids[0, cook].item()}):", [round(v, 4) for v in x[0, cook].tolist()])
assert x.shape == (1, len(pieces), d_model) and torch.equal(x[0, cook], table[ids[0, cook]])

# %% [markdown]
# In a picture: each id picks one row of the table, and the rows, in the order of the ids, are the
# output. (The table is drawn with its 2,048 rows squeezed; the coloured bands mark the rows read.)


# %% tags=["hide-input"] jupyter={"source_hidden": true}
def draw_lookup(ids_row, pieces, vocab_size, ax):
    """Draw ids -> rows of the table -> output (T, d_model) for one sequence."""
    T = len(ids_row)
    colours = plt.cm.tab10.colors
    ax.add_patch(plt.Rectangle((3.5, 0), 2, 10, fill=False, lw=1.5))  # the table
    for t, (i, piece) in enumerate(zip(ids_row, pieces)):
        y_in = 9.3 - t * 9 / T  # token box on the left
        y_row = 10 * (1 - (i + 0.5) / vocab_size)  # row i of the table
        c = colours[t % 10]
        ax.text(0.1, y_in, f"{piece!r} -> {i}", fontsize=8, va="center", color=c)
        ax.add_patch(plt.Rectangle((3.5, y_row - 0.06), 2, 0.12, color=c))
        ax.annotate("", (3.45, y_row), (2.4, y_in), arrowprops={"arrowstyle": "->", "color": c})
        ax.add_patch(plt.Rectangle((7.5, y_in - 0.2), 2, 0.4, color=c, alpha=0.8))
        ax.annotate("", (7.45, y_in), (5.55, y_row), arrowprops={"arrowstyle": "->", "color": c})
    ax.text(4.5, 10.3, f"table ({vocab_size}, d_model)", ha="center", fontsize=9)
    ax.text(5.6, 9.9, "row 0", fontsize=7)
    ax.text(5.6, 0.0, f"row {vocab_size - 1}", fontsize=7)
    ax.text(1.2, 10.3, f"ids (T = {T})", ha="center", fontsize=9)
    ax.text(8.5, 10.3, f"output ({T}, d_model)", ha="center", fontsize=9)
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.3, 10.8)
    ax.axis("off")


fig, ax = plt.subplots(figsize=(9, 5))
draw_lookup(ids[0, :8].tolist(), pieces[:8], V, ax)
_ = ax.set_title("an embedding lookup: each id reads one row of the table (first 8 tokens)")
plt.show()
plt.close(fig)

# %% [markdown]
# PyTorch's `nn.Embedding` is exactly this table. The exported layer subclasses it, so that the
# parameter is still called `weight` (the name checkpoints use: GPT-2's `wte.weight`, Llama's
# `embed_tokens.weight`), and adds one thing: a clear message at the boundary. Given an id outside
# the table, `nn.Embedding` fails with `IndexError: index out of range in self` on the CPU, and on
# a GPU with a device-side assertion that names neither the id nor the vocabulary size and leaves
# the CUDA context unusable. Our layer checks first, with one call to a guard from `llmbook.checks`.
#
# The check has a price: it reads the smallest and largest id back to the host (a device sync on a
# GPU, and a break in a `torch.compile` graph). So it is a switch, `validate`, on by default for
# someone who calls the layer directly; a model that checks its ids once where they come in
# (chapter 7) builds its table with `validate=False`, and then the forward is `nn.Embedding`'s
# alone. Section 8 measures the difference.

# %%
#| export
import torch
from torch import Tensor, nn

from llmbook.checks import (
    check_bool,
    check_float_dtype,
    check_index_tensor,
    check_int,
    check_positive_float,
)


# %%
#| export
class TokenEmbedding(nn.Embedding):
    """A learnable table of token vectors ``weight`` ``(vocab_size, d_model)``: ids ``(*)`` -> ``(*, d_model)``.

    ``torch.nn.Embedding`` (same ``weight``, init N(0, 1), gradients) that, if ``validate``, checks
    every call's ids (integers in ``[0, vocab_size)``, else an error naming the bad id). The check
    syncs with the device; ``validate=False`` skips it (then ``torch.compile`` traces the layer).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        *,
        validate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        vocab_size, d_model = check_int(vocab_size, "vocab_size"), check_int(d_model, "d_model")
        super().__init__(vocab_size, d_model, device=device, dtype=check_float_dtype(dtype))
        self.validate = check_bool(validate, "validate")

    vocab_size = property(lambda self: self.num_embeddings, doc="Rows: one per token id.")
    d_model = property(lambda self: self.embedding_dim, doc="Length of each vector.")

    def forward(self, ids: Tensor) -> Tensor:
        """Look up the vectors of ``ids`` ``(*)``: returns ``(*, d_model)``."""
        if self.validate:
            ids = check_index_tensor(ids, self.num_embeddings, "ids", "vocab_size")
        return super().forward(ids)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, *, validate: bool = True):
        """A layer holding a copy of ``embeddings`` ``(vocab_size, d_model)``, frozen unless ``freeze=False``."""
        shape = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else None
        if shape is None or len(shape) != 2:
            got = shape if shape is not None else type(embeddings).__name__
            raise TypeError(f"embeddings must be a 2-D tensor (vocab_size, d_model), got {got}")
        module = cls(*shape, validate=validate, device=embeddings.device, dtype=embeddings.dtype)
        module.weight.data.copy_(embeddings)
        return module.requires_grad_(not freeze)


# %% [markdown]
# The exported layer holding the same table as the smallest version gives the same vectors:

# %%
tok_emb = TokenEmbedding.from_pretrained(table, freeze=False)
print(
    "weight",
    tuple(tok_emb.weight.shape),
    "| input_ids",
    tuple(ids.shape),
    "-> embeddings",
    tuple(tok_emb(ids).shape),
)
print("same as table[ids]:", torch.equal(tok_emb(ids), table[ids]))
assert torch.equal(tok_emb(ids), table[ids])

# %% [markdown]
# Ids that cannot be in the table are stopped at the door, with the id and the limit in the message:

# %% tags=["raises-exception"]
tok_emb(torch.tensor([[15, V]]))  # V = 2048 is one past the last id

# %% tags=["raises-exception"]
tok_emb(torch.tensor([0.0, 1.0]))  # float "ids": probably embeddings passed by mistake

# %% [markdown]
# ### The lookup is a one-hot vector times the table
#
# Write token `i` as a one-hot vector: `vocab_size` zeros with a single 1 at position `i`.
# Multiplying that row vector by the table picks out row `i`, because every other row is multiplied
# by 0. So the embedding layer is a linear layer without bias whose input happens to be one-hot.
# The two computations are not merely close but *equal*: each output number is one table entry
# times 1 plus zeros.

# %%
one_hot = F.one_hot(ids, num_classes=V).float()  # (1, T, 2048)
via_matmul = one_hot @ tok_emb.weight  # (1, T, 2048) @ (2048, 8) -> (1, T, 8)
print("one_hot", tuple(one_hot.shape), "-> via_matmul", tuple(via_matmul.shape))
print("identical to the lookup:", torch.equal(via_matmul, tok_emb(ids)))
assert torch.equal(via_matmul, tok_emb(ids))

# %% [markdown]
# Equal, but not equally cheap. At GPT-2's size, for one window of 1,024 tokens, the one-hot matrix
# has 1,024 x 50,257 = 51 million entries (206 MB in float32), and the product does
# 1,024 x 50,257 x 768 = 39.5 billion multiply-adds to read 1,024 rows. The lookup reads the 1,024
# rows directly. That is why every framework implements the embedding as indexing, and why the
# one-hot picture is a way to *think* about it, not a way to run it.

# %%
T_gpt2, V_gpt2, d_gpt2 = 1024, 50257, 768
print(
    f"one-hot window: {T_gpt2 * V_gpt2:,} numbers = {T_gpt2 * V_gpt2 * 4 / 1e6:.0f} MB in float32"
)
print(
    f"matmul: {T_gpt2 * V_gpt2 * d_gpt2 / 1e9:.1f} billion multiply-adds; lookup: {T_gpt2:,} row reads"
)
print(f"GPT-2's vocabulary is {V_gpt2 / V:.1f} times the book's")

# %% [markdown]
# Measured on this machine with the book's vocabulary, for a window of 256 tokens and
# `d_model = 64` (the numbers vary from machine to machine; the ratio is large everywhere and
# grows with the vocabulary, which for GPT-2 is 24.5 times the book's).


# %%
# NBVAL_IGNORE_OUTPUT
def best_time(fn, repeat=5):
    """Fastest of `repeat` runs of fn(), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


window = torch.randint(0, V, (256,))
table64 = TokenEmbedding(V, 64)
with torch.no_grad():
    t_onehot = best_time(lambda: F.one_hot(window, V).float() @ table64.weight, repeat=20)
    t_lookup = best_time(lambda: table64(window), repeat=50)
print(f"one-hot matmul: {t_onehot * 1e6:.0f} us")
print(f"lookup:         {t_lookup * 1e6:.0f} us  ({t_onehot / t_lookup:.0f} times faster)")

# %% [markdown]
# ### The lookup is differentiable with respect to the table
#
# A common misreading of the one-hot picture is that the one-hot form is *needed* for training, as
# if indexing could not be differentiated. It can. The output row for token `i` *is* row `i` of the
# table, so the derivative of the loss with respect to that row is just the gradient arriving at that
# output position; rows of tokens that do not appear receive exactly zero. PyTorch's `nn.Embedding`
# computes this directly (a scatter-add of the incoming gradients into the used rows) without ever
# forming a one-hot matrix. One-hot times the table is an equivalent way to *write* the lookup, not
# a requirement for training.
#
# Let us check it on a small table. The sentence below uses the id of " the" twice.

# %%
small = TokenEmbedding(V, 4)
sentence = torch.tensor(tok.encode(" the cat sat on the mat"))  # (T,)
print("ids", sentence.tolist(), [tok.decode([i]) for i in sentence.tolist()])
out = small(sentence)  # (T, 4)
target = torch.randn(out.shape)  # any loss will do; here squared error to a random target
loss = ((out - target) ** 2).sum()
loss.backward()

grad = small.weight.grad  # (2048, 4), same shape as the table
rows_with_grad = torch.nonzero(grad.abs().sum(dim=1)).flatten().tolist()
print("grad", tuple(grad.shape), "non-zero rows:", rows_with_grad)
print(
    "distinct ids in the sentence:",
    sorted(set(sentence.tolist())),
    "| rows with zero gradient:",
    V - len(rows_with_grad),
)
assert rows_with_grad == sorted(set(sentence.tolist()))

# %% [markdown]
# Only the distinct ids of the sentence have a gradient; every other row has exactly zero. The row
# of " the", used twice, gets the *sum* of the gradients from its two positions, which is what the
# one-hot formulation gives too. Let us confirm the one-hot computation produces the same gradient:

# %%
table_copy = small.weight.detach().clone().requires_grad_(True)
out_onehot = F.one_hot(sentence, V).float() @ table_copy  # (T, 2048) @ (2048, 4)
((out_onehot - target) ** 2).sum().backward()
print("same gradient as the lookup:", torch.allclose(table_copy.grad, grad))
the_id = tok.encode(" the")[0]
at_the = (sentence == the_id).nonzero().flatten().tolist()  # the positions of " the"
both = 2 * (out - target).detach()[at_the].sum(dim=0)  # d(loss)/d(out) summed over them
print(
    f"' the' at positions {at_the}; its row's gradient is the sum over them:",
    torch.allclose(grad[the_id], both),
)
assert torch.allclose(table_copy.grad, grad) and torch.allclose(grad[the_id], both)

# %% [markdown]
# With plain gradient descent, one step therefore changes only the used rows:

# %%
before = small.weight.detach().clone()
with torch.no_grad():
    small.weight -= 0.1 * small.weight.grad  # one SGD step
changed = torch.nonzero((small.weight != before).any(dim=1)).flatten().tolist()
print("rows changed by one SGD step:", changed)
assert changed == rows_with_grad

# %% [markdown]
# Two caveats worth knowing. With AdamW, the optimizer used in chapter 8, a row can still move
# without a gradient in this step: weight decay shrinks every row, and the momentum left over from
# earlier steps keeps moving rows that were used before. And a token that never appears in the
# training data keeps its random initial vector (shrunk by weight decay): its row never gets a
# gradient at all, unless the same table also serves as the output layer (weight tying, exercise
# 2), where every row gets a gradient from the softmax over the whole vocabulary at every step.
#
# ## 2. The geometry of embeddings
#
# Each row is a point in a `d_model`-dimensional space. Two vectors point the same way when their
# *cosine similarity* is close to 1:
#
# $$\cos(u, v) = \frac{u \cdot v}{\lVert u \rVert\, \lVert v \rVert} \in [-1, 1].$$
#
# The *nearest neighbours* of a token are the tokens whose rows have the highest cosine similarity
# with its row. A freshly initialised table has no geometry to speak of: in many dimensions, random
# vectors are almost orthogonal, with cosines spread around 0 by about `1 / sqrt(d_model)`.


# %%
def cosine_matrix(table):
    """Cosine similarity between every pair of rows: (V, d) -> (V, V)."""
    unit = F.normalize(table, dim=-1)
    return unit @ unit.T


random_rows = torch.randn(1000, 64)
cos = cosine_matrix(random_rows)
off_diagonal = cos[~torch.eye(1000, dtype=torch.bool)]
print(
    "random 64-d vectors: |mean cosine| < 0.01:",
    bool(abs(off_diagonal.mean()) < 0.01),
    f"| std within 0.01 of 1/sqrt(64) = {1 / math.sqrt(64):.3f}:",
    bool(abs(off_diagonal.std() - 1 / 8) < 0.01),
)
assert abs(off_diagonal.mean()) < 0.01 and abs(off_diagonal.std() - 1 / 8) < 0.01

# %% [markdown]
# ### What training does to the geometry
#
# To watch a geometry appear, we train a tiny model for a few seconds on the book's corpus. The
# stories are written by a grammar (chapter 2) that fills the same slots with words of one kind: a
# child's name, an animal, a colour, a feeling, a place, a grown-up. Words of one kind therefore
# appear among the same neighbours, and a model that predicts neighbours from a token has every
# reason to give them similar vectors.
#
# The model is *skip-gram* (the idea behind word2vec): embed a token, then predict each token within
# two positions of it with a linear layer over the vocabulary. Its only parameters are the embedding
# table and that output layer. Every (token, neighbour) pair of the tokenized corpus is one
# training example:

# %%
corpus_ids = torch.tensor(encode_text(tok, load_corpus("stories")))  # chapter 2's encode_text
centres, contexts = [], []
for offset in (-2, -1, 1, 2):  # the neighbour `offset` positions away
    lo, hi = max(0, -offset), len(corpus_ids) - max(0, offset)
    centres.append(corpus_ids[lo:hi])
    contexts.append(corpus_ids[lo + offset : hi + offset])
centres, contexts = torch.cat(centres), torch.cat(contexts)
print("corpus tokens", len(corpus_ids), "| training pairs", tuple(centres.shape))
print(
    "e.g.",
    [
        (tok.decode([c]), tok.decode([t]))
        for c, t in zip(centres[3:6].tolist(), contexts[3:6].tolist())
    ],
)
assert len(centres) == 4 * len(corpus_ids) - 6

# %% [markdown]
# The words we will watch, six groups of single tokens of the book's tokenizer:

# %%
groups = {
    "animal": [" dog", " bear", " duck", " puppy", " owl", " kitten", " turtle", " goat"],
    "colour": [" red", " blue", " green", " yellow", " pink", " purple"],
    "feeling": [" happy", " sad", " scared", " proud", " worried", " excited"],
    "place": [" park", " garden", " beach", " forest", " school", " library"],
    "child": [" Lily", " Mia", " Emma", " Tom", " Ben", " Leo", " Sam"],
    "grown-up": [" mom", " dad", " grandma", " grandpa"],
}
member_ids = torch.tensor([tok.encode(w)[0] for g in groups.values() for w in g])
labels = torch.tensor([k for k, g in enumerate(groups.values()) for _ in g])
assert all(len(tok.encode(w)) == 1 for g in groups.values() for w in g)
print(len(member_ids), "words in", len(groups), "groups")

# %% [markdown]
# Before training, the loss (the cross-entropy of predicting the neighbour; chapter 8 explains it,
# here it only needs to go down) sits a little *above* $\ln V$, the loss of a uniform guess. The
# untrained model does not guess uniformly: its output layer gives random logits with a spread
# $\sigma$, and for random logits the average loss is about $\ln V + \sigma^2 / 2$ (the log-sum-exp
# of $V$ Gaussian numbers exceeds $\ln V$ by about $\sigma^2/2$, while the target's own logit averages 0).

# %%
torch.manual_seed(0)
emb = TokenEmbedding(V, 16)
head = torch.nn.Linear(16, V)
sample = torch.randint(0, len(centres), (50_000,), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    logits = head(emb(centres[sample]))  # (50000, 16) -> (50000, V)
    loss_before = F.cross_entropy(logits, contexts[sample]).item()
sigma = logits.std().item()
print(  # two decimals: the third could depend on the order of the sums (the CPU's kernels)
    f"untrained loss {loss_before:.2f} | ln V = {math.log(V):.2f} | logit spread {sigma:.2f}"
    f" | ln V + sigma^2/2 = {math.log(V) + sigma**2 / 2:.2f}"
)
assert abs(loss_before - (math.log(V) + sigma**2 / 2)) < 0.1 and loss_before > math.log(V)

# %% [markdown]
# Now train with Adam on random mini-batches of 1,024 pairs, 500 steps (several seconds on one CPU
# core), and measure the loss on the same sample of pairs after.

# %%
# NBVAL_IGNORE_OUTPUT
untrained = emb.weight.detach().clone()
optimizer = torch.optim.Adam([*emb.parameters(), *head.parameters()], lr=0.02)
batches = torch.Generator().manual_seed(0)
for _ in range(500):
    batch = torch.randint(0, len(centres), (1024,), generator=batches)  # 1,024 random pairs
    loss = F.cross_entropy(head(emb(centres[batch])), contexts[batch])  # logits (1024, V)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with torch.no_grad():
    loss_after = F.cross_entropy(head(emb(centres[sample])), contexts[sample]).item()
trained = emb.weight.detach().clone()
print(f"loss on the sample: before {loss_before:.3f}, after {loss_after:.3f}")
assert loss_after < loss_before - 2.0

# %% [markdown]
# The nearest neighbours of a few tokens in the whole vocabulary of 2,048, before and after. Before
# training they are arbitrary tokens; after, mostly tokens that fill the same slots in the stories
# (other family members next to " grandma", other names next to " Lily"), mixed with a few
# fragments of words. (The exact lists depend on the last bits of the arithmetic and can differ on
# your machine; the check after them asserts only what is robust.)


# %%
# NBVAL_IGNORE_OUTPUT
def neighbours(table, word, k=5):
    """The k tokens whose rows have the highest cosine similarity with `word`'s row."""
    i = tok.encode(word)[0]
    sims = F.normalize(table, dim=-1) @ F.normalize(table[i], dim=-1)
    sims[i] = -2.0  # not itself
    return [tok.decode([j]) for j in torch.topk(sims, k).indices.tolist()]


for w in [" grandma", " red", " park", " Lily", " sad"]:
    print(
        f"{w!r:>11} before: {neighbours(untrained, w)}\n{'':>11} after:  {neighbours(trained, w)}"
    )

# %% [markdown]
# Among the 37 group words, the closest other group word now belongs to the word's own group for
# almost all of them, where before training it was chance. And the average cosine between two
# words of one group has risen far above that of two words of different groups:

# %%
# NBVAL_IGNORE_OUTPUT
same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
different = labels[:, None] != labels[None, :]


def group_scores(table):
    """(share of words whose nearest group word is in their group, mean same-group cos, mean other cos)."""
    c = cosine_matrix(table[member_ids]).fill_diagonal_(-2.0)
    hits = (labels[c.argmax(dim=1)] == labels).float().mean().item()
    c.fill_diagonal_(1.0)
    return hits, c[same].mean().item(), c[different].mean().item()


scores = {name: group_scores(t) for name, t in [("before", untrained), ("after", trained)]}
for name, (hits, s, d) in scores.items():
    print(
        f"{name:>6} training: nearest in own group {hits:.0%}, cosine same group {s:.2f}, different {d:.2f}"
    )
assert scores["after"][0] > 0.75 and scores["before"][0] < 0.5
assert (
    scores["after"][1] > scores["after"][2] + 0.2
    and abs(scores["before"][1] - scores["before"][2]) < 0.15
)

# %% [markdown]
# A picture: the 37 group words projected onto the two main directions of variation (PCA) of each
# table. Before training the colours are mixed; after, most groups gather in clusters of their own
# (two directions cannot keep all six apart; the 16-dimensional cosines above do better).

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (name, t) in zip(axes, [("untrained", untrained), ("trained", trained)]):
    points = t[member_ids] - t[member_ids].mean(dim=0)  # (37, 16), centred
    _, _, v = torch.linalg.svd(points, full_matrices=False)
    xy = points @ v[:2].T  # (37, 2): the top 2 directions
    for k, g in enumerate(groups):
        _ = ax.scatter(xy[labels == k, 0], xy[labels == k, 1], label=g, s=30)
    _ = ax.set_xlabel("first principal direction")
    _ = ax.set_ylabel("second principal direction")
    _ = ax.set_title(f"{name} embeddings (PCA of 16 dimensions)")
_ = axes[1].legend(title="group", fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# Notice what "similar" means here: tokens used in the same places. Opposites such as " happy" and
# " sad" fill the same slots in the sentences, so they end up close; the geometry reflects usage, not
# meaning as a dictionary would give it:

# %%
# NBVAL_IGNORE_OUTPUT
happy, sad = tok.encode(" happy")[0], tok.encode(" sad")[0]
cos_happy_sad = {
    name: F.cosine_similarity(t[happy], t[sad], dim=0).item()
    for name, t in [("before", untrained), ("after", trained)]
}
print(
    f"cos(' happy', ' sad'): before {cos_happy_sad['before']:.2f}, after {cos_happy_sad['after']:.2f}"
)
print(f"mean cosine of two words of different groups after training: {scores['after'][2]:.2f}")
assert cos_happy_sad["after"] > scores["after"][2] + 0.1

# %% [markdown]
# A large language model learns its table the same way, only as a side effect of predicting the
# next token over billions of words.
#
# ## 3. Attention cannot see order
#
# The vectors from the table say *what* each token is, not *where* it is. Does the model need to be
# told? The layer that mixes information between tokens, attention (chapter 4), works with
# similarities between vectors. Here it is in its simplest form, with no trainable weights: each
# token's output is an average of all token vectors, weighted by the softmax of dot products.


# %%
def plain_self_attention(x):
    """Self-attention with no weights: x (T, d) -> (T, d). For this chapter only; see chapter 4."""
    scores = x @ x.T / math.sqrt(x.shape[-1])  # (T, T) similarity of every pair
    weights = torch.softmax(scores, dim=-1)  # (T, T) each row sums to 1
    return weights @ x  # (T, d) weighted averages


x = torch.randn(5, 8)
perm = torch.tensor([3, 0, 4, 1, 2])
out_of_permuted = plain_self_attention(x[perm])
permuted_out = plain_self_attention(x)[perm]
print(
    "attention(permuted input) == permuted attention(input):",
    torch.allclose(out_of_permuted, permuted_out, atol=1e-6),
)
assert torch.allclose(out_of_permuted, permuted_out, atol=1e-6)

# %% [markdown]
# Shuffling the input only shuffles the output: attention is *permutation-equivariant*. Each token's
# result depends on which tokens are present, not on their order. With real token ids:

# %%
a = torch.tensor(tok.encode(" dog bites man"))
b = torch.tensor(tok.encode(" man bites dog"))
print("ids", a.tolist(), "and", b.tolist(), [tok.decode([i]) for i in a.tolist()])
emb8 = TokenEmbedding(V, 8)
out_a, out_b = plain_self_attention(emb8(a)), plain_self_attention(emb8(b))
# ' dog' is the first token of the first sentence and the last of the second
print(
    "output for ' dog' identical in both sentences:", torch.allclose(out_a[0], out_b[-1], atol=1e-6)
)
assert torch.allclose(out_a[0], out_b[-1], atol=1e-6) and torch.allclose(
    out_a[-1], out_b[0], atol=1e-6
)

# %% [markdown]
# The model's picture of " dog" is the same whether the dog bites or is bitten. The fix is to add to
# each token's vector a vector that depends on its position, so that " dog" first and " dog" last
# are different inputs.
#
# (The causal mask of chapter 4, which lets token `t` see only tokens `0..t`, breaks the symmetry:
# token `t` sees `t + 1` tokens, so a model can in principle count its way to a position, and
# causal language models trained with no position information at all do learn some (Haviv et al.,
# 2022). Every model in this book still gives position information explicitly: it is cheap, it
# makes position available from the first layer on, and it is what GPT-2 and Llama do.)

# %%
positions = torch.randn(len(a), 8)  # any distinct vector per position will do for the demonstration
out_a = plain_self_attention(emb8(a) + positions)
out_b = plain_self_attention(emb8(b) + positions)
print(
    "with positions added, ' dog' differs between the sentences:",
    not torch.allclose(out_a[0], out_b[-1], atol=1e-3),
)
assert not torch.allclose(out_a[0], out_b[-1], atol=1e-3)

# %% [markdown]
# ## 4. Learned absolute positions (GPT-2)
#
# The simplest way to get one vector per position is a second lookup table, indexed by the position
# `0, 1, ..., context_length - 1` instead of the token id, trained like the first. GPT-2 does this:
# its `wpe` table is 1,024 x 768 (786,432 parameters) for GPT-2 small. The price is a hard limit: a
# position past `context_length - 1` has no row, so the model cannot read longer inputs, and the last
# rows are trained only on windows that are long enough to reach them. The smallest version:

# %%
context_length, T = 32, len(pieces)
wpe_table = torch.randn(context_length, d_model)  # (context_length, d_model)
places = wpe_table[torch.arange(T)]  # positions 0..T-1 -> (T, d_model)
h_small = table[ids] + places  # (B, T, d_model) + (T, d_model): broadcast over B
print("positions", T, "-> places", tuple(places.shape), "| h", tuple(h_small.shape))
assert torch.equal(h_small[0, 3], table[ids[0, 3]] + wpe_table[3])

# %% [markdown]
# The exported layer takes either a sequence length `T` (positions `0..T-1`, or `offset..offset+T-1`
# when a generation loop with a cache, chapter 9, continues a sequence) or an explicit tensor of
# positions. Turning the length into position ids, with a clear error when the table is too short,
# is a small function of its own:


# %%
#| export
def _position_ids(
    positions: int | Tensor, offset: int, context_length: int, device: torch.device, validate: bool
) -> Tensor:
    """Turn a length ``T`` (with ``offset``) or a tensor of positions into position ids."""
    if isinstance(positions, Tensor):
        if offset != 0:
            raise ValueError(
                "offset is only used when positions is a length (an int); "
                f"got a positions tensor and offset={offset}: add the offset to the tensor instead"
            )
        if validate:
            positions = check_index_tensor(positions, context_length, "positions", "context_length")
        return positions
    ### BEGIN SOLUTION
    # TASK: checked length and offset, ValueError past context_length, else the positions
    length = check_int(positions, "positions (a sequence length)", minimum=0)
    offset = check_int(offset, "offset", minimum=0)
    if offset + length > context_length:
        raise ValueError(
            f"a sequence of {length} tokens starting at position {offset} needs positions up to "
            f"{offset + length - 1}, but context_length is {context_length} (positions 0 to "
            f"{context_length - 1}); crop the input to its last {max(context_length - offset, 0)} "
            "tokens or use a model with a longer context_length"
        )
    return torch.arange(offset, offset + length, device=device)
    ### END SOLUTION


# %% [markdown]
# The layer itself is `nn.Embedding` again, called with positions instead of token ids:


# %%
#| export
class LearnedPositionalEmbedding(nn.Embedding):
    """A learnable table of position vectors (GPT-2's ``wpe``): row ``p`` is added at position ``p``.

    Call it with a length ``T`` (positions ``offset .. offset + T - 1``) for ``(T, d_model)``,
    which broadcasts against token vectors ``(B, T, d_model)``, or with a tensor of positions
    ``(*)`` for ``(*, d_model)``; ``validate`` checks such tensors (a device sync, as in
    ``TokenEmbedding``). ``weight``: ``(context_length, d_model)``.
    """

    def __init__(
        self,
        context_length: int,
        d_model: int,
        *,
        validate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        context_length = check_int(context_length, "context_length")
        d_model = check_int(d_model, "d_model")
        super().__init__(context_length, d_model, device=device, dtype=check_float_dtype(dtype))
        self.validate = check_bool(validate, "validate")

    context_length = property(lambda self: self.num_embeddings, doc="Positions with a row.")
    d_model = property(lambda self: self.embedding_dim, doc="Length of each vector.")

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(
            positions, offset, self.num_embeddings, self.weight.device, self.validate
        )
        return super().forward(ids)


# %% [markdown]
# Holding the same table, it gives the smallest version's vectors, by length, with an offset, or for
# a tensor of positions:

# %%
pos_emb = LearnedPositionalEmbedding(context_length, d_model)
pos_emb.load_state_dict({"weight": wpe_table})
print("weight", tuple(pos_emb.weight.shape))
print(
    "pos_emb(T)",
    tuple(pos_emb(T).shape),
    "| pos_emb(3, offset=12)",
    tuple(pos_emb(3, offset=12).shape),
    "| pos_emb(positions (2, 5))",
    tuple(pos_emb(torch.arange(10).reshape(2, 5)).shape),
)
assert torch.equal(pos_emb(T), places) and torch.equal(pos_emb(3, offset=12), wpe_table[12:15])

# %% [markdown]
# Asking for more positions than the table holds is an error that says what to do:

# %% tags=["raises-exception"]
pos_emb(context_length + 1)

# %% [markdown]
# ## 5. Sinusoidal positions ("Attention Is All You Need")
#
# The original transformer used a fixed table instead, computed by a formula, with nothing to learn.
# For position $p$ and dimension pair $i = 0, 1, \dots, d_{model}/2 - 1$:
#
# $$PE[p, 2i] = \sin\!\left(\frac{p}{10000^{2i/d_{model}}}\right), \qquad
#   PE[p, 2i+1] = \cos\!\left(\frac{p}{10000^{2i/d_{model}}}\right).$$
#
# Each pair of dimensions is a sine and a cosine of the same angle, turning at its own speed
# $\omega_i = 10000^{-2i/d_{model}}$ radians per position. The wavelengths $2\pi / \omega_i$ form a
# geometric series from $2\pi$ (pair 0, about six positions per turn) up to just under
# $10000 \cdot 2\pi$ (the last pair, which hardly moves over a thousand positions). Fast pairs
# distinguish neighbouring positions; slow ones tell the beginning of a long text from its end, like
# the hands of a clock. The smallest version, computed in float64:


# %%
def sinusoidal_small(n_positions, d_model, base=10000.0):
    """PE (n_positions, d_model): sin on even columns, cos on odd ones."""
    p = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(p * omega)  # (P, d/2)
    pe[:, 1::2] = torch.cos(p * omega)
    return pe


pe_small = sinusoidal_small(6, 8)
for p, row in enumerate(pe_small.tolist()):
    print(f"PE[{p}] =", [round(v, 4) for v in row])
by_formula = [
    [(math.sin if j % 2 == 0 else math.cos)(p / 10000 ** ((j - j % 2) / 8)) for j in range(8)]
    for p in range(6)
]
assert torch.allclose(pe_small, torch.tensor(by_formula, dtype=torch.float64), atol=1e-12)
print(
    "wavelengths (positions per turn) of the 4 pairs:",
    [round(2 * math.pi * 10000 ** (2 * i / 8), 1) for i in range(4)],
)

# %% [markdown]
# Row 0 is `[0, 1, 0, 1, ...]` (sin 0 and cos 0). The picture behind the numbers: each pair is a
# point on a unit circle (its sine and its cosine), and moving one position on turns pair $i$ by
# $\omega_i$. Here are the first 12 positions on the four circles of `d_model = 8`: pair 0 goes
# almost twice round, pair 3 has barely left its start.

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.8), layout="constrained")
angles = torch.linspace(0, 2 * math.pi, 200)
pe12 = sinusoidal_small(12, 8)
for i, ax in enumerate(axes):
    _ = ax.plot(torch.cos(angles), torch.sin(angles), color="lightgrey", lw=1)
    # x = cos (column 2i+1), y = sin (column 2i): the angle p * omega_i, counter-clockwise from (1, 0)
    dots = ax.scatter(
        pe12[:, 2 * i + 1], pe12[:, 2 * i], c=range(12), cmap="viridis", s=40, zorder=3
    )
    ax.set_aspect("equal")
    _ = ax.set_xlabel(f"PE[p, {2 * i + 1}] (cos)")
    _ = ax.set_ylabel(f"PE[p, {2 * i}] (sin)")
    _ = ax.set_title(f"pair {i}: {10000 ** (-2 * i / 8):.3g} rad per position", fontsize=9)
_ = fig.colorbar(dots, ax=list(axes), label="position p", shrink=0.8)
_ = fig.suptitle("sinusoidal positions as clock hands: one unit circle per pair (d_model = 8)")
plt.show()
plt.close(fig)

# %% [markdown]
# The exported version adds what a library needs: the same float64 angles (in float32,
# `p * omega` loses digits at large positions) converted to the requested dtype, and one-line
# guards. Sine and cosine need to come in pairs (section 5.2 shows why), so an odd `d_model` is
# rejected rather than silently padded or truncated.


# %%
#| export
def sinusoidal_positions(
    n_positions: int,
    d_model: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """The fixed sinusoidal position table of "Attention Is All You Need", ``(n_positions, d_model)``.

    ``PE[p, 2i] = sin(p * w_i)`` and ``PE[p, 2i + 1] = cos(p * w_i)`` with
    ``w_i = base ** (-2i / d_model)``: wavelengths from ``2 pi`` to just under ``base * 2 pi``.
    ``d_model`` must be even (sines and cosines come in pairs); ``n_positions`` may be 0. The
    angles are computed in float64 on the CPU, then converted to ``device`` and ``dtype``
    (default: torch's default dtype).
    """
    n_positions = check_int(n_positions, "n_positions", minimum=0)
    d_model = check_int(d_model, "d_model", minimum=2)
    if d_model % 2:
        raise ValueError(
            f"d_model must be even for sinusoidal positions (each frequency fills a sin and a cos "
            f"column), got {d_model}; use {d_model - 1} or {d_model + 1}"
        )
    base, dtype = check_positive_float(base, "base"), check_float_dtype(dtype)
    ### BEGIN SOLUTION
    # TASK: (n_positions, d_model): sin, cos of p * w_i interleaved, in float64, then dtype
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angle = position * omega  # (P, d/2)
    table = torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)  # (P, d/2, 2)
    table = table.reshape(n_positions, d_model)  # interleave: sin, cos, sin, cos, ...
    return table.to(device=device, dtype=dtype or torch.get_default_dtype())
    ### END SOLUTION


# %%
print(
    "agrees with the smallest version:",
    torch.equal(sinusoidal_positions(6, 8, dtype=torch.float64), pe_small),
)
assert torch.equal(sinusoidal_positions(6, 8, dtype=torch.float64), pe_small)
assert torch.allclose(sinusoidal_positions(3000, 64), sinusoidal_small(3000, 64).float(), atol=1e-6)

# %% [markdown]
# The whole pattern, for 100 positions of a 64-dimensional table:

# %% tags=["hide-input"] jupyter={"source_hidden": true}
pe = sinusoidal_positions(100, 64)
fig, ax = plt.subplots(figsize=(9, 4))
image = ax.imshow(pe.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, origin="lower")
_ = ax.set_xlabel("position p")
_ = ax.set_ylabel("dimension j")
_ = ax.set_title(
    "sinusoidal positions, d_model = 64: fast pairs at the bottom, slow ones at the top"
)
_ = fig.colorbar(image, ax=ax, label="PE[p, j]")
plt.show()
plt.close(fig)

# %% [markdown]
# ### 5.1 The SinusoidalPositionalEmbedding module
#
# The module keeps the table as a *buffer*: it follows `.to(device)` and `.to(dtype)` with the
# model, but it is not a parameter (nothing to train) and is not saved in the state dict (it is
# recomputed from the formula). One consequence: a model built on the `meta` device and then given
# real memory with `to_empty(device=...)` gets uninitialised memory for *every* tensor, parameters
# and buffers alike. PyTorch's convention is that each layer's `reset_parameters()` fills its
# tensors again; this module's refills the table.


# %%
#| export
class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal position vectors, called like ``LearnedPositionalEmbedding``.

    The table ``sinusoidal_positions(context_length, d_model, base)`` is a non-persistent buffer
    ``pe`` ``(context_length, d_model)``. After ``to_empty()``, call ``reset_parameters()``.
    Call with a length ``T`` (and ``offset``) for ``(T, d_model)``, or positions ``(*)`` for
    ``(*, d_model)``; ``validate`` checks position tensors (a device sync).
    """

    def __init__(
        self,
        context_length: int,
        d_model: int,
        base: float = 10000.0,
        *,
        validate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.context_length = check_int(context_length, "context_length")
        pe = sinusoidal_positions(context_length, d_model, base, device=device, dtype=dtype)
        self.d_model, self.base = d_model, float(base)
        self.validate = check_bool(validate, "validate")
        self.register_buffer("pe", pe, persistent=False)  # (context_length, d_model)

    def reset_parameters(self) -> None:
        """Recompute the table in place, on its current device and dtype."""
        pe = self.pe
        table = sinusoidal_positions(self.context_length, self.d_model, self.base, dtype=pe.dtype)
        with torch.no_grad():
            pe.copy_(table)  # onto pe's device

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(positions, offset, self.context_length, self.pe.device, self.validate)
        return self.pe[ids]

    def extra_repr(self) -> str:
        return f"context_length={self.context_length}, d_model={self.d_model}, base={self.base}"


# %%
sin_emb = SinusoidalPositionalEmbedding(context_length=32, d_model=8)
print(sin_emb)
print(
    "sin_emb(12)",
    tuple(sin_emb(12).shape),
    "| trainable parameters:",
    sum(p.numel() for p in sin_emb.parameters()),
)
assert torch.equal(sin_emb(6), pe_small.float())

# %% [markdown]
# ### 5.2 A fixed offset is a fixed rotation
#
# Why sine *and* cosine? Take one pair and write $a = \omega_i p$ and $b = \omega_i k$. Moving $k$
# positions further on changes the pair by the angle-addition formulas:
#
# $$\begin{pmatrix}\sin(a + b) & \cos(a + b)\end{pmatrix} =
#   \begin{pmatrix}\sin a & \cos a\end{pmatrix}
#   \begin{pmatrix}\cos b & -\sin b \\ \sin b & \cos b\end{pmatrix}.$$
#
# The matrix depends on the offset $k$ but not on the position $p$: on the circles of the picture
# above, every point of pair $i$ turns by the same angle $k\,\omega_i$. Putting one such 2 x 2
# rotation per pair on the diagonal of a `d_model x d_model` matrix $M_k$ gives
# $PE[p + k] = PE[p]\, M_k$ for *every* $p$: "k tokens later" is one linear map, which a layer of the
# model can learn once and apply anywhere. This is the property the paper gives as its reason for
# the design, and it needs the cosine: the sine of $a + b$ cannot be computed from the sine of $a$
# alone.


# %%
def offset_matrix(k, d_model, base=10000.0):
    """The block-diagonal M_k with PE[p + k] = PE[p] @ M_k: (d_model, d_model)."""
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(d_model // 2):
        b = k * base ** (-2 * i / d_model)
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(
            [[math.cos(b), -math.sin(b)], [math.sin(b), math.cos(b)]], dtype=torch.float64
        )
    return m


pe = sinusoidal_positions(64, 16, dtype=torch.float64)
for k in [1, 5, 20]:
    ok = torch.allclose(pe[k:], pe[:-k] @ offset_matrix(k, 16), atol=1e-12)
    print(f"PE[p + {k:>2}] == PE[p] @ M_{k} for all p in 0..{63 - k}: {ok}")
    assert ok

# %% [markdown]
# We can also let the data speak: find, by least squares, the single matrix that best maps every
# row `PE[p]` to `PE[p + 5]`. It is exactly the rotation above (and is orthogonal, as a rotation
# must be). We take `d_model = 8` and 1,000 positions, so that even the slowest pair turns through
# a good angle (1 radian); over only a few positions the slow pairs barely move, and many matrices
# would fit the data equally well.

# %%
pe8 = sinusoidal_positions(1000, 8, dtype=torch.float64)
fitted = torch.linalg.lstsq(pe8[:-5], pe8[5:]).solution  # (8, 8), one matrix for all p
print("least-squares map equals M_5:", torch.allclose(fitted, offset_matrix(5, 8), atol=1e-8))
print(
    "it is orthogonal:",
    torch.allclose(fitted.T @ fitted, torch.eye(8, dtype=torch.float64), atol=1e-8),
)
print(
    "upper-left block (pair 0, angle 5 rad):",
    [[round(v, 4) for v in row] for row in fitted[:2, :2].tolist()],
)
assert torch.allclose(fitted, offset_matrix(5, 8), atol=1e-8)

# %% [markdown]
# ### 5.3 Similarity depends on distance only
#
# A consequence: the dot product of two position vectors is
# $PE[p] \cdot PE[p+k] = \sum_i \big(\sin(\omega_i p)\sin(\omega_i(p+k)) + \cos(\omega_i p)\cos(\omega_i(p+k))\big) = \sum_i \cos(\omega_i k)$,
# which depends on the distance $k$ and not on where the two positions are. Checked for $k = 3$ at
# several places:

# %%
pe = sinusoidal_positions(1100, 64, dtype=torch.float64)
dots_at_distance_3 = [(pe[p] @ pe[p + 3]).item() for p in [0, 10, 100, 1000]]
print("PE[p] . PE[p+3] for p = 0, 10, 100, 1000:", [round(v, 4) for v in dots_at_distance_3])
print("sum_i cos(3 w_i):", round(sum(math.cos(3 * 10000 ** (-2 * i / 64)) for i in range(32)), 4))
assert max(dots_at_distance_3) - min(dots_at_distance_3) < 1e-9

# %% [markdown]
# Plotted against the distance, the similarity starts at `d_model / 2` (a vector with itself: every
# pair is a unit vector) and falls off, with ripples, as positions move apart: nearby positions look
# alike, far ones do not. The similarity is symmetric, so it does not say which of the two positions
# comes first; the rotation of section 5.2 does.

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, ax = plt.subplots(figsize=(8, 3.5))
for d in [16, 64, 256]:
    t = sinusoidal_positions(301, d, dtype=torch.float64)
    _ = ax.plot(range(301), (t[0] @ t.T / (d / 2)).numpy(), label=f"d_model = {d}")
_ = ax.set_xlabel("distance k between positions")
_ = ax.set_ylabel("PE[p] . PE[p+k] / (d_model/2)")
_ = ax.set_title("similarity of sinusoidal position vectors falls with distance")
_ = ax.legend()
plt.show()
plt.close(fig)

# %%
t = sinusoidal_positions(301, 64, dtype=torch.float64)
similarity = (t[0] @ t.T / 32).tolist()
print(
    "normalised similarity at distance 0, 1, 2, 5, 10, 50, 300:",
    [round(similarity[k], 2) for k in [0, 1, 2, 5, 10, 50, 300]],
)
assert (
    similarity[0] > similarity[1] > similarity[2] > similarity[5] > similarity[10] > similarity[50]
)

# %% [markdown]
# ## 6. Token + position: the input of the first block
#
# Both tables give vectors of the same length `d_model`, and the model simply *adds* them. A batch of
# ids `(B, T)` becomes token vectors `(B, T, d_model)`; the position vectors `(T, d_model)` are the
# same for every sequence of the batch and broadcast over `B`. GPT-2 then applies dropout
# (probability 0.1 in training) and hands the result to its first block. The original transformer
# also multiplied the token vectors by $\sqrt{d_{model}}$ before adding the sinusoidal table; GPT-2
# and Llama do not.

# %%
texts = [prompt, "Once upon a time there was a little cat"]
batch = torch.tensor([tok.encode(s)[:8] for s in texts])  # (B, T) = (2, 8)
wte = TokenEmbedding(V, 16)
wpe = LearnedPositionalEmbedding(context_length=32, d_model=16)
B, T = batch.shape
tokens = wte(batch)  # (B, T, d_model)
places = wpe(T)  # (T, d_model)
h = tokens + places  # (B, T, d_model): broadcast over the batch
print(
    "input_ids",
    tuple(batch.shape),
    "-> token vectors",
    tuple(tokens.shape),
    "+ position vectors",
    tuple(places.shape),
    "-> h",
    tuple(h.shape),
)
assert h.shape == (B, T, 16) and torch.equal(h[1, 3], wte.weight[batch[1, 3]] + wpe.weight[3])

# %% [markdown]
# The addition for the second sequence, drawn: row $t$ of each panel is one position, one column
# per dimension. Every row of `h` is its token's row plus its position's row; a token that occurs
# twice (" a" here) has the same token row both times, and different rows of `h`.

# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True, layout="constrained")
names = [tok.decode([i]) for i in batch[1].tolist()]
panels = [("wte(ids): what", tokens[1]), ("+ wpe(T): where", places), ("= h: what + where", h[1])]
for ax, (title, m) in zip(axes, panels):
    image = ax.imshow(m.detach(), cmap="RdBu", vmin=-3, vmax=3, aspect="auto")
    _ = ax.set_title(f"{title}  {tuple(m.shape)}")
    _ = ax.set_xlabel("dimension (d_model = 16)")
_ = axes[0].set_yticks(range(T), [f"{t}: {n!r}" for t, n in enumerate(names)])
_ = axes[0].set_ylabel("position t: token")
_ = fig.colorbar(image, ax=list(axes), label="value", shrink=0.8)
plt.show()
plt.close(fig)

# %% [markdown]
# The same two lines at the size of GPT-2 small, created on PyTorch's `meta` device: shapes and
# parameter counts without allocating memory.

# %%
wte_gpt2 = TokenEmbedding(50257, 768, device="meta")
wpe_gpt2 = LearnedPositionalEmbedding(1024, 768, device="meta")
h_gpt2 = wte_gpt2(torch.zeros(1, 1024, dtype=torch.long, device="meta")) + wpe_gpt2(1024)
print("GPT-2 small: h", tuple(h_gpt2.shape))
print(f"wte {tuple(wte_gpt2.weight.shape)}: {wte_gpt2.weight.numel():,} parameters")
print(f"wpe {tuple(wpe_gpt2.weight.shape)}: {wpe_gpt2.weight.numel():,} parameters")

# %% [markdown]
# ## 7. A preview of rotary embeddings (chapter 5)
#
# Llama adds **no** position vector to its embeddings: the output of `embed_tokens`, `(B, T, d_model)`,
# goes straight into the first block. Position enters inside every attention layer instead, through
# rotary position embeddings (RoPE): each query and key vector is cut into pairs of numbers, and the
# pair `i` of the vector at position `p` is rotated by the angle $p\,\omega_i$, with the same
# frequencies $\omega_i = \text{base}^{-2i/d}$ as the sinusoidal table, with $d$ the size of one
# attention head (Llama-2 uses base 10,000;
# Llama-3.1 uses 500,000, plus a rescaling of the lowest frequencies for its long context). Since
# rotating $q$ by $m\omega$ and $k$ by $n\omega$ changes their dot product only through the difference
# $(m - n)\omega$, the attention score between two tokens depends on their distance, not on where they
# are. One pair is enough to see it:


# %%
def rotate(v, angle):
    """Rotate a 2-vector by `angle` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([v[0] * c - v[1] * s, v[0] * s + v[1] * c], dtype=torch.float64)


q, k_vec, omega = (
    torch.tensor([1.0, 2.0], dtype=torch.float64),
    torch.tensor([0.5, -1.0], dtype=torch.float64),
    0.3,
)
scores = {
    (m, n): (rotate(q, m * omega) @ rotate(k_vec, n * omega)).item()
    for m, n in [(3, 1), (10, 8), (500, 498), (6, 0)]
}
for (m, n), s in scores.items():
    print(f"query at {m:>3}, key at {n:>3} (distance {m - n}): score {s:.4f}")
assert (
    abs(scores[(3, 1)] - scores[(500, 498)]) < 1e-9 and abs(scores[(3, 1)] - scores[(6, 0)]) > 0.1
)

# %% [markdown]
# Chapter 5 builds `RotaryEmbedding` for all pairs and heads, compares the two layouts in use, and
# applies it inside multi-head attention.
#
# ## 8. From notebook to library
#
# **What the id check costs.** `TokenEmbedding` checks the ids of every call unless built with
# `validate=False` (the attribute can also be changed later: `emb.validate = False`). The guard,
# `llmbook.checks.check_index_tensor(ids, vocab_size)`, is public, so that a model can call it once
# on the ids it is given and build its tables without the check, as chapter 7's model does. The
# difference per call, for a batch of 8 x 256 ids:

# %%
# NBVAL_IGNORE_OUTPUT
batch_ids = torch.randint(0, V, (8, 256))
checked, unchecked = TokenEmbedding(V, 64), TokenEmbedding(V, 64, validate=False)
unchecked.load_state_dict(checked.state_dict())
with torch.no_grad():
    t_checked = best_time(lambda: checked(batch_ids), repeat=200)
    t_unchecked = best_time(lambda: unchecked(batch_ids), repeat=200)
print(f"validate=True:  {t_checked * 1e6:.0f} us per call")
print(f"validate=False: {t_unchecked * 1e6:.0f} us per call (nn.Embedding's forward alone)")
assert torch.equal(checked(batch_ids), unchecked(batch_ids))

# %% [markdown]
# On a GPU the checked call also waits for the device (the two numbers it reads back), and
# `torch.compile(..., fullgraph=True)` cannot trace it; without the check it traces as one graph
# (the tests check both).
#
# **Building on the `meta` device.** Large models are often built on `meta` (no memory), then given
# memory with `to_empty(device=...)`, then initialised or loaded. `to_empty` leaves every tensor
# uninitialised, including the sinusoidal table, which no checkpoint holds; `reset_parameters()`,
# called on every layer that has one, fills it again:

# %%
with torch.device("meta"):
    layers = torch.nn.ModuleList([TokenEmbedding(V, 8), SinusoidalPositionalEmbedding(32, 8)])
layers = layers.to_empty(device="cpu")
for layer in layers:
    layer.reset_parameters()
print(
    "sinusoidal table after to_empty + reset_parameters equals the formula:",
    torch.equal(layers[1].pe, sinusoidal_positions(32, 8)),
)
assert torch.equal(layers[1](32), SinusoidalPositionalEmbedding(32, 8)(32))

# %% [markdown]
# ## Summary
#
# - A token embedding is a `(vocab_size, d_model)` table; embedding a token reads its row:
#   `(B, T)` ids -> `(B, T, d_model)`. The book's table has 2,048 rows, GPT-2's 50,257, Llama-3's
#   128,256. `TokenEmbedding` is `nn.Embedding` plus clear errors for bad ids, and
#   `validate=False` for models that check their ids once.
# - The lookup equals a one-hot vector times the table, exactly; but the lookup is what runs, and
#   it is differentiable with respect to the table: only the rows of the tokens in a batch receive a
#   gradient (repeated tokens sum theirs). One-hot is a way to write it, not a requirement.
# - Cosine similarity measures how alike two rows are. Random rows are nearly orthogonal; training
#   pulls tokens used in similar contexts together, as the skip-gram on the stories showed. An
#   untrained model's loss sits a little above $\ln V$, by about half the variance of its logits.
# - Attention without position information is permutation-equivariant: in "dog bites man" and
#   "man bites dog", " dog" gets the same output vector, only at another place in the sequence.
#   So position is added to the token vectors.
# - GPT-2 learns a `(context_length, d_model)` table of positions (1,024 x 768), which caps the
#   input length. The sinusoidal table is computed: sin on even and cos on odd dimensions, with
#   wavelengths from $2\pi$ to nearly $10000 \cdot 2\pi$; moving $k$ positions is a fixed rotation
#   $M_k$, and the similarity of two positions depends only on their distance.
# - The input to the first block is `h = wte(ids) + wpe(T)`: `(B, T)` -> `(B, T, d_model)`.
# - Llama adds no position vector; it rotates queries and keys inside attention (RoPE, chapter 5).
#
# ## Exercises
#
# 1. **Repeated tokens.** Embed the ids `[7, 3, 7, 7]` with a `TokenEmbedding(10, 4)`, take as loss
#    the sum of `out[t] . c[t]` for four random vectors `c[t]`, and predict `weight.grad[7]` before
#    you compute it. Check your prediction.
# 2. **Weight tying.** GPT-2 uses the token table a second time, as its output layer: the logits of a
#    hidden vector `h` are `h @ wte.weight.T`. Write a tiny module that does this with one
#    `TokenEmbedding`, check that the gradients of both uses land in the same tensor, and compute how
#    many of GPT-2 small's parameters tying saves.
# 3. **Odd `d_model`.** `sinusoidal_positions` rejects an odd `d_model`. Build the table an odd size
#    would give if we kept the first `d_model` columns of the next even size, and show that the
#    offset property of section 5.2 fails for it: no matrix maps `PE[p]` to `PE[p + k]` for all `p`.
# 4. **Base and length.** Compare `base = 10,000` with Llama-3.1's `500,000` for `d_model = 128`: the
#    longest wavelength, and the normalised similarity at distances 10, 100 and 1,000. Then show that
#    the sinusoidal formula gives vectors for positions beyond any table you built, while a
#    `LearnedPositionalEmbedding` cannot.
# 5. **Whole words, full batch.** Train a skip-gram like section 2's on whole words instead of
#    tokens: the words of the first 300,000 characters of `load_corpus("stories")` seen at least 10
#    times. Instead of mini-batches, show that the loss over *all* pairs depends only on the table
#    of pair counts `C[i, j]` (how often word `j` appears near word `i`), so that one step costs
#    `V x V` log-probabilities however long the text; train on that table, and print the nearest
#    neighbours of "mom", "said" and "sad" before and after.
