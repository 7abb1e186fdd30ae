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
# # Chapter 03: Embeddings
#
# A tokenizer turns text into integers (chapter 1) and the data pipeline cuts those integers into
# windows (chapter 2). A neural network, however, computes with vectors of real numbers. This chapter
# builds the first layer of the model: the one that turns each token id into a vector, and adds to it
# a second vector that says *where* in the sequence the token sits.
#
# **What you will build** (exported to `llmbook.embeddings`):
#
# - `TokenEmbedding(vocab_size, d_model)`: a learnable lookup table, one row per token id, with clear
#   errors for ids that are not integers or do not exist in the vocabulary;
# - `LearnedPositionalEmbedding(context_length, d_model)`: GPT-2's learned table of position vectors;
# - `sinusoidal_positions(n_positions, d_model)` and `SinusoidalPositionalEmbedding`: the fixed sine
#   and cosine pattern of "Attention Is All You Need".
#
# Along the way we check, with numbers, the claims usually made about embeddings: a lookup is the
# same as multiplying a one-hot vector by the table; training moves only the rows of tokens it sees;
# training gives the vectors a geometry in which similar words are close; attention without position
# information cannot tell "dog bites man" from "man bites dog"; and sinusoidal positions let a model
# express "k tokens further on" as one fixed rotation.

# %%
#| default_exp embeddings
import math
import random
import re

import matplotlib.pyplot as plt
import tiktoken
import torch
import torch.nn.functional as F

torch.manual_seed(0)
random.seed(0)
torch.set_printoptions(precision=4, sci_mode=False)
enc = tiktoken.get_encoding("gpt2")  # offline through TIKTOKEN_CACHE_DIR, see chapter 1

# %% [markdown]
# ## 1. A token embedding is a lookup table
#
# The model keeps one vector of `d_model` numbers per entry of the vocabulary. Stacked, these vectors
# form a matrix of shape `(vocab_size, d_model)`; embedding token `i` means reading row `i`. The rows
# start random and are trained with the rest of the model.
#
# Real sizes: GPT-2 small has `vocab_size = 50,257` and `d_model = 768`, so its table holds
# 50,257 x 768 = 38.6 million numbers, almost a third of its 124 million parameters. Llama-2-7B has
# 32,000 x 4,096 = 131 million; Llama-3.1-8B 128,256 x 4,096 = 525 million (and, because Llama does
# not tie its output layer to this table, another 525 million in the LM head).
#
# Here is the running example of the book, tokenized with GPT-2's tokenizer:

# %%
prompt = "How do I cook tomato and egg stir-fry?"
ids = torch.tensor([enc.encode(prompt)])  # (B, T) = (1, 12)
print("input_ids", tuple(ids.shape), ids.tolist())
print([enc.decode([i]) for i in ids[0].tolist()])

# %% [markdown]
# PyTorch's `nn.Embedding` is exactly this table. We subclass it, so that the parameter is still called
# `weight` (the name checkpoints use: GPT-2's `wte.weight`, Llama's `embed_tokens.weight`), and add
# the one thing it lacks: a clear message at the boundary. Given an id outside the table,
# `nn.Embedding` fails with `IndexError: index out of range in self` on the CPU, and on a GPU with a
# device-side assertion that names neither the id nor the vocabulary size and leaves the CUDA context
# unusable. Our layer checks first. The check reads the smallest and largest id back to the host
# (one synchronisation per call on a GPU); `validate=False` turns it off for code that has already
# checked its data.

# %%
#| export
import numbers

import torch
from torch import Tensor, nn

from llmbook.checks import check_int


def _check_index_tensor(ids: object, upper: int, name: str, upper_name: str) -> Tensor:
    """Check that ``ids`` is an integer tensor with every entry in ``[0, upper)``.

    Returns ``ids`` unchanged when it is int64 or int32 (the index types ``nn.Embedding``
    accepts), otherwise converted to int64. Tensors on the ``meta`` device carry no values and
    are only type-checked.
    """
    if not isinstance(ids, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of integer ids, got {type(ids).__name__}; "
            "wrap a list with torch.tensor(...)"
        )
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integers (torch.long or torch.int32), got dtype {ids.dtype}; "
            "token ids and positions are whole numbers, not vectors or probabilities"
        )
    if ids.dtype not in (torch.int64, torch.int32):
        ids = ids.long()  # e.g. uint16 ids read from a token file
    if ids.numel() > 0 and ids.device.type != "meta":
        low, high = torch.stack(torch.aminmax(ids)).tolist()  # one read-back for both
        if low < 0 or high >= upper:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains {bad}, but {upper_name} is {upper}: every entry must lie in "
                f"[0, {upper - 1}]"
            )
    return ids


class TokenEmbedding(nn.Embedding):
    """A learnable table of token vectors: row ``i`` of ``weight`` is the vector of token id ``i``.

    It is ``torch.nn.Embedding`` (same parameter name ``weight``, same initialisation N(0, 1),
    same gradients) plus a check of the ids at the boundary, so a wrong id gives a message naming
    the id and the vocabulary size instead of an index error deep inside torch.

    Args:
        vocab_size: number of rows, one per token id (GPT-2: 50,257).
        d_model: length of each vector (GPT-2 small: 768).
        validate: check every call's ids (integer dtype, ``0 <= id < vocab_size``). The range
            check reads two numbers back from the device; pass ``False`` to skip it.
        device, dtype: where and in which precision to create ``weight``.

    Shapes:
        ids ``(B, T)`` (any shape ``(*)``) of integers -> ``(B, T, d_model)`` (``(*, d_model)``).
        ``weight``: ``(vocab_size, d_model)``.
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
        vocab_size = check_int(vocab_size, "vocab_size")
        d_model = check_int(d_model, "d_model")
        super().__init__(vocab_size, d_model, device=device, dtype=dtype)
        self.validate = validate

    @property
    def vocab_size(self) -> int:
        """Number of rows of the table (``num_embeddings`` in ``nn.Embedding``)."""
        return self.num_embeddings

    @property
    def d_model(self) -> int:
        """Length of each vector (``embedding_dim`` in ``nn.Embedding``)."""
        return self.embedding_dim

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor, freeze: bool = True, *, validate: bool = True
    ) -> "TokenEmbedding":
        """Build the layer around a copy of ``embeddings`` ``(vocab_size, d_model)``.

        Like ``nn.Embedding.from_pretrained``, the table is frozen (``requires_grad=False``)
        unless ``freeze=False``.
        """
        if not isinstance(embeddings, Tensor) or embeddings.dim() != 2:
            got = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings)
            raise ValueError(
                f"embeddings must be a 2-D tensor (vocab_size, d_model), got {got}"
            )
        module = cls(
            embeddings.shape[0],
            embeddings.shape[1],
            validate=validate,
            device=embeddings.device,
            dtype=embeddings.dtype,
        )
        with torch.no_grad():
            module.weight.copy_(embeddings)
        module.weight.requires_grad_(not freeze)
        return module

    def forward(self, ids: Tensor) -> Tensor:
        """Look up the vectors of ``ids`` ``(*)``: returns ``(*, d_model)``."""
        if self.validate:
            ids = _check_index_tensor(ids, self.num_embeddings, "ids", "vocab_size")
        return super().forward(ids)


# %% [markdown]
# A toy table for the whole GPT-2 vocabulary, with vectors of only 8 numbers so we can print them:

# %%
d_model = 8
tok_emb = TokenEmbedding(enc.n_vocab, d_model)
x = tok_emb(ids)
print("weight", tuple(tok_emb.weight.shape))
print("input_ids", tuple(ids.shape), "-> embeddings", tuple(x.shape))
print("vector of ' tomato' (id 24240):", x[0, 4].detach())
assert torch.equal(x[0, 4], tok_emb.weight[24240])  # the lookup is just reading row 24240

# %% [markdown]
# Ids that cannot be in the table are stopped at the door, with the id and the limit in the message:

# %% tags=["raises-exception"]
tok_emb(torch.tensor([[15496, 50257]]))  # 50257 is one past GPT-2's last id

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
one_hot = F.one_hot(ids, num_classes=enc.n_vocab).float()  # (1, 12, 50257)
via_matmul = one_hot @ tok_emb.weight                      # (1, 12, 50257) @ (50257, 8) -> (1, 12, 8)
print("one_hot", tuple(one_hot.shape), "-> via_matmul", tuple(via_matmul.shape))
print("identical to the lookup:", torch.equal(via_matmul, tok_emb(ids)))
assert torch.equal(via_matmul, tok_emb(ids))

# %% [markdown]
# Equal, but not equally cheap. For one GPT-2 window of 1,024 tokens the one-hot matrix has
# 1,024 x 50,257 = 51 million entries (206 MB in float32), and the product does 1,024 x 50,257 x 768
# = 40 billion multiply-adds to read 1,024 rows. The lookup reads the 1,024 rows directly. That is
# why every framework implements the embedding as indexing, and why the one-hot picture is a way to
# *think* about it, not a way to run it.

# %%
T_gpt2, V_gpt2, d_gpt2 = 1024, 50257, 768
print(f"one-hot window: {T_gpt2 * V_gpt2:,} numbers = {T_gpt2 * V_gpt2 * 4 / 1e6:.0f} MB in float32")
print(f"matmul: {T_gpt2 * V_gpt2 * d_gpt2 / 1e9:.1f} billion multiply-adds; lookup: {T_gpt2:,} row reads")

# %% [markdown]
# Measured on this machine, for a window of 256 tokens and `d_model = 64` (the numbers vary from
# machine to machine; the ratio is large everywhere). The last line is the price of our id check,
# against calling `nn.Embedding`'s function directly.

# %%
# NBVAL_IGNORE_OUTPUT
import time


def best_time(fn, repeat=5):
    """Fastest of `repeat` runs of fn(), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


window = torch.randint(0, enc.n_vocab, (256,))
table64 = TokenEmbedding(enc.n_vocab, 64)
with torch.no_grad():
    t_onehot = best_time(lambda: F.one_hot(window, enc.n_vocab).float() @ table64.weight)
    t_lookup = best_time(lambda: table64(window), repeat=50)
    t_plain = best_time(lambda: F.embedding(window, table64.weight), repeat=50)
print(f"one-hot matmul: {t_onehot * 1e3:.1f} ms")
print(f"lookup:         {t_lookup * 1e6:.0f} us  ({t_onehot / t_lookup:.0f} times faster)")
print(f"lookup without the id check: {t_plain * 1e6:.0f} us")
assert t_onehot > 5 * t_lookup

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
# Let us check it on a small table. The sentence below uses the id of "the" twice.

# %%
small = TokenEmbedding(enc.n_vocab, 4)
sentence = torch.tensor(enc.encode(" the cat sat on the mat"))  # (T,) = (6,)
print("ids", sentence.tolist())
out = small(sentence)                  # (6, 4)
target = torch.randn(out.shape)        # any loss will do; here squared error to a random target
loss = ((out - target) ** 2).sum()
loss.backward()

grad = small.weight.grad               # (50257, 4), same shape as the table
rows_with_grad = torch.nonzero(grad.abs().sum(dim=1)).flatten().tolist()
print("grad", tuple(grad.shape), "non-zero rows:", rows_with_grad)
print("distinct ids in the sentence:", sorted(set(sentence.tolist())))
assert rows_with_grad == sorted(set(sentence.tolist()))

# %% [markdown]
# Only the five distinct ids of the sentence have a gradient; the other 50,252 rows have exactly
# zero. The row of " the", used twice, gets the *sum* of the gradients from its two positions, which
# is what the one-hot formulation gives too. Let us confirm the one-hot computation produces the same
# gradient:

# %%
table = small.weight.detach().clone().requires_grad_(True)
out_onehot = F.one_hot(sentence, enc.n_vocab).float() @ table    # (6, 50257) @ (50257, 4)
((out_onehot - target) ** 2).sum().backward()
print("same gradient as the lookup:", torch.allclose(table.grad, grad))
the_id = enc.encode(" the")[0]
two_positions = 2 * (out - target).detach()[[0, 4]].sum(dim=0)  # d(loss)/d(out) at both " the"
print("' the' row gradient equals the sum over its two positions:", torch.allclose(grad[the_id], two_positions))
assert torch.allclose(table.grad, grad) and torch.allclose(grad[the_id], two_positions)

# %% [markdown]
# With plain gradient descent, one step therefore changes only the used rows:

# %%
before = small.weight.detach().clone()
with torch.no_grad():
    small.weight -= 0.1 * small.weight.grad          # one SGD step
changed = torch.nonzero((small.weight != before).any(dim=1)).flatten().tolist()
print("rows changed by one SGD step:", changed)
assert changed == rows_with_grad

# %% [markdown]
# Two caveats worth knowing. With AdamW, the optimizer used in chapter 8, a row can still move
# without a gradient in this step: weight decay shrinks every row, and the momentum left over from
# earlier steps keeps moving rows that were used before. And a token that never appears in the
# training data keeps its random initial vector (shrunk by weight decay): its row never gets a
# gradient at all.
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
print("random 64-d vectors: |mean cosine| < 0.01:", bool(abs(off_diagonal.mean()) < 0.01),
      f"| std {off_diagonal.std():.2f} (1/sqrt(64) = {1 / math.sqrt(64):.3f})")
assert abs(off_diagonal.mean()) < 0.01 and abs(off_diagonal.std() - 1 / 8) < 0.01

# %% [markdown]
# ### What training does to the geometry
#
# To watch a geometry appear, we train a tiny model for a few seconds. The text is written here: a
# small grammar of sentences about animals, people, foods, places, colours and feelings. Words of the
# same group are interchangeable in the grammar, so they appear among the same neighbours, and a
# model that predicts neighbours from a word has every reason to give them similar vectors.
#
# The model is *skip-gram* (the idea behind word2vec): embed a word, then predict each word within
# two positions of it with a linear layer over the vocabulary. Its only parameters are the embedding
# table and that output layer. We tokenize by whole words to make the neighbours readable.

# %%
groups = {
    "animal": ["cat", "dog", "bird", "fish", "rabbit", "horse", "duck", "mouse"],
    "person": ["mom", "dad", "tom", "lily", "ben", "sara", "grandma", "teacher"],
    "food": ["apple", "cake", "bread", "soup", "cookie", "banana", "pie", "cheese"],
    "place": ["park", "garden", "kitchen", "forest", "school", "beach", "house", "river"],
    "colour": ["red", "blue", "green", "yellow", "pink", "purple", "grey", "brown"],
    "feeling": ["happy", "sad", "tired", "scared", "angry", "proud", "hungry", "sleepy"],
}
templates = [
    "the {animal} ran to the {place} .",
    "{person} ate the {colour} {food} in the {place} .",
    "{person} saw a {colour} {animal} near the {place} .",
    "the {animal} was {feeling} because it wanted some {food} .",
    "{person} felt {feeling} after the {food} .",
    "{person} and the {animal} went to the {place} together .",
    "the {food} was {colour} and {person} was {feeling} .",
    "one day {person} found a {colour} {food} in the {place} .",
]
rng = random.Random(0)
sentences = []
for _ in range(3000):
    template = rng.choice(templates)
    sentences.append(re.sub(r"\{(\w+)\}", lambda m: rng.choice(groups[m.group(1)]), template))
print(sentences[:3])

words = sorted({w for s in sentences for w in s.split()})
word_to_id = {w: i for i, w in enumerate(words)}
group_of = {w: g for g, members in groups.items() for w in members}
print("sentences:", len(sentences), "words:", sum(len(s.split()) for s in sentences), "vocabulary:", len(words))

# %% [markdown]
# Every (word, neighbour) pair within a window of two positions becomes one training example:

# %%
centres, contexts = [], []
for s in sentences:
    sid = [word_to_id[w] for w in s.split()]
    for i, c in enumerate(sid):
        for j in range(max(0, i - 2), min(len(sid), i + 3)):
            if j != i:
                centres.append(c)
                contexts.append(sid[j])
centres, contexts = torch.tensor(centres), torch.tensor(contexts)
print("training pairs", tuple(centres.shape), "e.g.", [(words[c], words[t]) for c, t in zip(centres[:3].tolist(), contexts[:3].tolist())])

# %% [markdown]
# The untrained table first. The neighbours of a few words are an arbitrary mix:

# %%
torch.manual_seed(0)
emb = TokenEmbedding(len(words), 16)
head = torch.nn.Linear(16, len(words))
probes = ["cat", "cake", "red", "happy", "park", "lily"]


def neighbours(table, word, k=3):
    """The k words whose rows have the highest cosine similarity with `word`'s row."""
    sims = cosine_matrix(table)[word_to_id[word]]
    sims[word_to_id[word]] = -2.0  # not itself
    top = torch.topk(sims, k)
    return [(words[i], round(s, 2)) for i, s in zip(top.indices.tolist(), top.values.tolist())]


untrained = emb.weight.detach().clone()
for w in probes:
    print(f"{w:>6}: {neighbours(untrained, w)}")

# %% [markdown]
# Now train with Adam on random mini-batches of 512 pairs, 400 steps (a couple of seconds on one CPU
# core). The loss is the cross-entropy of predicting the neighbour (chapter 8 explains it; here it
# only needs to go down); we measure it on all pairs before and after.

# %%
# NBVAL_IGNORE_OUTPUT
def loss_on_all_pairs():
    with torch.no_grad():
        return F.cross_entropy(head(emb(centres)), contexts).item()


optimizer = torch.optim.Adam([*emb.parameters(), *head.parameters()], lr=0.05)
batches = torch.Generator().manual_seed(0)
loss_before = loss_on_all_pairs()
for _ in range(400):
    batch = torch.randint(0, len(centres), (512,), generator=batches)  # 512 random pairs
    logits = head(emb(centres[batch]))                                 # (512, 16) -> (512, V)
    loss = F.cross_entropy(logits, contexts[batch])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
loss_after = loss_on_all_pairs()
print(f"loss on all pairs: before {loss_before:.3f}, after {loss_after:.3f} (uniform guessing: ln {len(words)} = {math.log(len(words)):.3f})")
assert loss_after < loss_before - 1.0

# %% [markdown]
# After training, the nearest neighbours of each word are words of its own group. (Within a group
# the words are interchangeable, so their order is a matter of noise and can differ on your machine;
# the check below asserts only what is robust.)

# %%
# NBVAL_IGNORE_OUTPUT
trained = emb.weight.detach().clone()
for w in probes:
    print(f"{w:>6}: {neighbours(trained, w)}")

# %%
own_group_before = [all(group_of.get(n) == group_of[w] for n, _ in neighbours(untrained, w)) for w in probes]
own_group_after = [all(group_of.get(n) == group_of[w] for n, _ in neighbours(trained, w)) for w in probes]
print("top-3 neighbours all in the word's own group, before training:", own_group_before)
print("top-3 neighbours all in the word's own group, after training: ", own_group_after)
assert all(own_group_after) and not any(own_group_before)

# %% [markdown]
# Notice what "similar" means here: words used in the same places. Opposites such as "happy" and
# "sad" fill the same slots in the sentences, so they end up close; the geometry reflects usage, not
# meaning as a dictionary would give it.
#
# The same story in one number: the average cosine between two words of the same group, against two
# words of different groups.

# %%
# NBVAL_IGNORE_OUTPUT
member_ids = torch.tensor([word_to_id[w] for g in groups.values() for w in g])
labels = torch.tensor([k for k, g in enumerate(groups.values()) for _ in g])
same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
different = labels[:, None] != labels[None, :]
for name, table in [("before", untrained), ("after", trained)]:
    c = cosine_matrix(table[member_ids])
    print(f"{name:>6} training: same group {c[same].mean():.2f}, different groups {c[different].mean():.2f}")
c_before, c_after = cosine_matrix(untrained[member_ids]), cosine_matrix(trained[member_ids])
assert abs(c_before[same].mean() - c_before[different].mean()) < 0.15
assert c_after[same].mean() > c_after[different].mean() + 0.5

# %% [markdown]
# A picture: the 48 group words projected onto the two main directions of variation (PCA) of each
# table. Before training the colours are mixed; after, each group is a tight cluster.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (name, table) in zip(axes, [("untrained", untrained), ("trained", trained)]):
    points = table[member_ids] - table[member_ids].mean(dim=0)
    _, _, v = torch.linalg.svd(points, full_matrices=False)
    xy = points @ v[:2].T                                            # (48, 2)
    for k, g in enumerate(groups):
        sel = labels == k
        _ = ax.scatter(xy[sel, 0], xy[sel, 1], label=g, s=25)
        for (px, py), w in zip(xy[sel].tolist(), groups[g][:3]):
            _ = ax.annotate(w, (px, py), fontsize=7)
    _ = ax.set_title(f"{name} embeddings (PCA of 16 dimensions)")
_ = axes[1].legend(fontsize=8, loc="best")
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# A large language model learns its table the same way, only as a side effect of predicting the
# next token over billions of words: tokens used in similar contexts end up with similar rows.
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
    scores = x @ x.T / math.sqrt(x.shape[-1])     # (T, T) similarity of every pair
    weights = torch.softmax(scores, dim=-1)        # (T, T) each row sums to 1
    return weights @ x                             # (T, d) weighted averages


x = torch.randn(5, 8)
perm = torch.tensor([3, 0, 4, 1, 2])
out_of_permuted = plain_self_attention(x[perm])
permuted_out = plain_self_attention(x)[perm]
print("attention(permuted input) == permuted attention(input):", torch.allclose(out_of_permuted, permuted_out, atol=1e-6))
assert torch.allclose(out_of_permuted, permuted_out, atol=1e-6)

# %% [markdown]
# Shuffling the input only shuffles the output: attention is *permutation-equivariant*. Each token's
# result depends on which tokens are present, not on their order. With real token ids:

# %%
a = torch.tensor(enc.encode(" dog bites man"))
b = torch.tensor(enc.encode(" man bites dog"))
print("ids", a.tolist(), "and", b.tolist())
emb8 = TokenEmbedding(enc.n_vocab, 8)
out_a, out_b = plain_self_attention(emb8(a)), plain_self_attention(emb8(b))
# ' dog' is token 0 in the first sentence and token 2 in the second
print("output for ' dog' identical in both sentences:", torch.allclose(out_a[0], out_b[2], atol=1e-6))
assert torch.allclose(out_a[0], out_b[2], atol=1e-6) and torch.allclose(out_a[2], out_b[0], atol=1e-6)

# %% [markdown]
# The model's picture of " dog" is the same whether the dog bites or is bitten. The fix is to add to
# each token's vector a vector that depends on its position, so that " dog" at position 0 and " dog"
# at position 2 are different inputs.
#
# (The causal mask of chapter 4, which lets token `t` see only tokens `0..t`, does break the symmetry
# a little: a model can, in principle, count how many tokens it sees. Every model in this book still
# gives position information explicitly: it is cheap, and it is what GPT-2 and Llama do.)

# %%
positions = torch.randn(3, 8)  # any distinct vector per position will do for the demonstration
out_a = plain_self_attention(emb8(a) + positions)
out_b = plain_self_attention(emb8(b) + positions)
print("with positions added, ' dog' differs between the sentences:", not torch.allclose(out_a[0], out_b[2], atol=1e-3))
assert not torch.allclose(out_a[0], out_b[2], atol=1e-3)

# %% [markdown]
# ## 4. Learned absolute positions (GPT-2)
#
# The simplest way to get one vector per position is a second lookup table, indexed by the position
# `0, 1, ..., context_length - 1` instead of the token id, trained like the first. GPT-2 does this:
# its `wpe` table is 1,024 x 768 (786,432 parameters) for GPT-2 small. The price is a hard limit: a
# position past `context_length - 1` has no row, so the model cannot read longer inputs, and the last
# rows are trained only on windows that are long enough to reach them.
#
# Our layer takes either a sequence length `T` (positions `0..T-1`, or `offset..offset+T-1` when a
# generation loop with a cache, chapter 9, continues a sequence) or an explicit tensor of positions.

# %%
#| export
def _position_ids(
    positions: int | Tensor, offset: int, context_length: int, device: torch.device, validate: bool
) -> Tensor:
    """Turn a length ``T`` (with ``offset``) or a tensor of positions into checked position ids."""
    if isinstance(positions, Tensor):
        if offset != 0:
            raise ValueError(
                "offset is only used when positions is a length (an int); "
                f"got a positions tensor and offset={offset}: add the offset to the tensor instead"
            )
        if validate:
            positions = _check_index_tensor(positions, context_length, "positions", "context_length")
        return positions
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


class LearnedPositionalEmbedding(nn.Embedding):
    """A learnable table of position vectors (GPT-2's ``wpe``): row ``p`` is added at position ``p``.

    Args:
        context_length: number of positions, ``0 .. context_length - 1`` (GPT-2: 1,024).
        d_model: length of each vector (GPT-2 small: 768).
        validate: check explicit position tensors (integers in ``[0, context_length)``).
        device, dtype: where and in which precision to create ``weight``.

    Call it with a length ``T`` (positions ``offset .. offset + T - 1``), which returns
    ``(T, d_model)`` and broadcasts against token embeddings ``(B, T, d_model)``, or with a tensor
    of positions ``(*)``, which returns ``(*, d_model)``. ``weight``: ``(context_length, d_model)``.
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
        super().__init__(context_length, d_model, device=device, dtype=dtype)
        self.validate = validate

    @property
    def context_length(self) -> int:
        """Number of positions the table has rows for (``num_embeddings``)."""
        return self.num_embeddings

    @property
    def d_model(self) -> int:
        """Length of each vector (``embedding_dim``)."""
        return self.embedding_dim

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(positions, offset, self.num_embeddings, self.weight.device, self.validate)
        return super().forward(ids)


# %%
pos_emb = LearnedPositionalEmbedding(context_length=16, d_model=8)
print("weight", tuple(pos_emb.weight.shape))
print("pos_emb(12)", tuple(pos_emb(12).shape))
print("pos_emb(3, offset=12)", tuple(pos_emb(3, offset=12).shape))
print("pos_emb(positions (2, 5))", tuple(pos_emb(torch.arange(10).reshape(2, 5)).shape))
assert torch.equal(pos_emb(3, offset=12), pos_emb.weight[12:15])

# %% [markdown]
# Asking for more positions than the table holds is an error that says what to do:

# %% tags=["raises-exception"]
pos_emb(20)

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
# the hands of a clock.
#
# Sine and cosine need to come in pairs (section 5.2 shows why), so `d_model` must be even; an odd
# `d_model` is rejected rather than silently padded or truncated. We compute the angles in float64,
# because in float32 `p * omega` loses digits at large positions, and only then convert.

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
    """The fixed sinusoidal position table of "Attention Is All You Need".

    ``PE[p, 2i] = sin(p * w_i)`` and ``PE[p, 2i + 1] = cos(p * w_i)`` with
    ``w_i = base ** (-2i / d_model)``, for ``i = 0 .. d_model / 2 - 1``: the wavelengths
    ``2 pi / w_i`` grow geometrically from ``2 pi`` to just under ``base * 2 pi``.

    Args:
        n_positions: number of positions ``0 .. n_positions - 1`` (rows); 0 gives an empty table.
        d_model: vector length (columns); must be even, since sines and cosines come in pairs.
        base: sets the longest wavelength (10,000 in the paper); positive and finite.
        device, dtype: of the result (default: torch's default dtype). The angles are computed in
            float64 on the CPU, then converted.

    Returns:
        ``(n_positions, d_model)`` tensor.
    """
    n_positions = check_int(n_positions, "n_positions", minimum=0)
    d_model = check_int(d_model, "d_model", minimum=2)
    if d_model % 2:
        raise ValueError(
            f"d_model must be even for sinusoidal positions (each frequency fills a sin and a cos "
            f"column), got {d_model}; use {d_model - 1} or {d_model + 1}"
        )
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise TypeError(f"base must be a number, got {type(base).__name__}")
    if not 0 < base < float("inf"):
        raise ValueError(f"base must be positive and finite, got {base}")
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]              # (P, 1)
    omega = float(base) ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angle = position * omega                                                         # (P, d/2)
    table = torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)                 # (P, d/2, 2)
    table = table.reshape(n_positions, d_model)        # interleave: sin, cos, sin, cos, ...
    return table.to(device=device, dtype=dtype or torch.get_default_dtype())


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal position vectors, as a module with the same call as the learned one.

    The table ``sinusoidal_positions(context_length, d_model, base)`` is a buffer named ``pe``:
    it moves with ``.to(device)`` but is not a parameter (nothing to train) and is not saved in the
    state dict (it is recomputed from the formula).

    Args:
        context_length: number of precomputed positions.
        d_model: vector length, even.
        base: the wavelength base (10,000 in the paper).
        validate: check explicit position tensors.
        device, dtype: of the table.

    Call it with a length ``T`` (and ``offset``) for ``(T, d_model)``, or a tensor of positions
    ``(*)`` for ``(*, d_model)``.
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
        self.d_model = d_model
        self.base = base
        self.validate = validate
        pe = sinusoidal_positions(context_length, d_model, base, device=device, dtype=dtype)
        self.register_buffer("pe", pe, persistent=False)  # (context_length, d_model)

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(positions, offset, self.context_length, self.pe.device, self.validate)
        return self.pe[ids]

    def extra_repr(self) -> str:
        return f"context_length={self.context_length}, d_model={self.d_model}, base={self.base}"


# %% [markdown]
# The table for 6 positions and `d_model = 8`, and a check of every entry against the formula
# written with Python's own `math.sin` and `math.cos`:

# %%
pe = sinusoidal_positions(6, 8)
print(pe)
by_formula = torch.tensor([
    [(math.sin if j % 2 == 0 else math.cos)(p / 10000 ** ((j - j % 2) / 8)) for j in range(8)]
    for p in range(6)
])
print("matches the formula everywhere:", torch.allclose(pe, by_formula, atol=1e-6))
assert torch.allclose(pe, by_formula, atol=1e-6)
wavelengths = [2 * math.pi * 10000 ** (2 * i / 8) for i in range(4)]
print("wavelengths (positions per turn) of the 4 pairs:", [round(w, 1) for w in wavelengths])

# %% [markdown]
# Row 0 is `[0, 1, 0, 1, ...]` (sin 0 and cos 0). Along a row, the pairs turn more and more slowly.
# The whole pattern, for 100 positions of a 64-dimensional table:

# %%
pe = sinusoidal_positions(100, 64)
fig, ax = plt.subplots(figsize=(9, 4))
image = ax.imshow(pe.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, origin="lower")
_ = ax.set_xlabel("position p")
_ = ax.set_ylabel("dimension j")
_ = ax.set_title("sinusoidal positions, d_model = 64: fast pairs at the bottom, slow ones at the top")
_ = fig.colorbar(image, ax=ax)
plt.show()
plt.close(fig)

# %% [markdown]
# ### 5.1 The SinusoidalPositionalEmbedding module
#
# The module wraps the same table as a non-trainable buffer and is called like the learned one:

# %%
sin_emb = SinusoidalPositionalEmbedding(context_length=16, d_model=8)
print(sin_emb)
print("sin_emb(12)", tuple(sin_emb(12).shape), "trainable parameters:", sum(p.numel() for p in sin_emb.parameters()))
assert torch.equal(sin_emb(6), sinusoidal_positions(6, 8))

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
# The matrix depends on the offset $k$ but not on the position $p$. Putting one such 2 x 2
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
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor(
            [[math.cos(b), -math.sin(b)], [math.sin(b), math.cos(b)]], dtype=torch.float64)
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
fitted = torch.linalg.lstsq(pe8[:-5], pe8[5:]).solution        # (8, 8), one matrix for all p
print("least-squares map equals M_5:", torch.allclose(fitted, offset_matrix(5, 8), atol=1e-8))
print("it is orthogonal:", torch.allclose(fitted.T @ fitted, torch.eye(8, dtype=torch.float64), atol=1e-8))
print("upper-left block (pair 0, angle 5 rad):", fitted[:2, :2].round(decimals=4))
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

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
for d in [16, 64, 256]:
    table = sinusoidal_positions(301, d, dtype=torch.float64)
    _ = ax.plot(range(301), (table[0] @ table.T / (d / 2)).numpy(), label=f"d_model = {d}")
_ = ax.set_xlabel("distance k between positions")
_ = ax.set_ylabel("PE[p] . PE[p+k] / (d_model/2)")
_ = ax.set_title("similarity of sinusoidal position vectors falls with distance")
_ = ax.legend()
plt.show()
plt.close(fig)

# %%
table = sinusoidal_positions(301, 64, dtype=torch.float64)
similarity = (table[0] @ table.T / 32).tolist()
print("normalised similarity at distance 0, 1, 2, 5, 10, 50, 300:", [round(similarity[k], 2) for k in [0, 1, 2, 5, 10, 50, 300]])
assert similarity[0] > similarity[1] > similarity[2] > similarity[5] > similarity[10] > similarity[50]

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
texts = ["How do I cook tomato and egg stir-fry?", "Once upon a time there was a little cat"]
batch = torch.tensor([enc.encode(t)[:8] for t in texts])             # (B, T) = (2, 8)
wte = TokenEmbedding(enc.n_vocab, 16)
wpe = LearnedPositionalEmbedding(context_length=32, d_model=16)
B, T = batch.shape
tokens = wte(batch)                     # (B, T, d_model)
places = wpe(T)                         # (T, d_model)
h = tokens + places                     # (B, T, d_model): broadcast over the batch
print("input_ids", tuple(batch.shape), "-> token vectors", tuple(tokens.shape), "+ position vectors", tuple(places.shape), "-> h", tuple(h.shape))
assert h.shape == (B, T, 16) and torch.equal(h[1, 3], wte.weight[batch[1, 3]] + wpe.weight[3])

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


q, k_vec, omega = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([0.5, -1.0], dtype=torch.float64), 0.3
scores = {(m, n): (rotate(q, m * omega) @ rotate(k_vec, n * omega)).item() for m, n in [(3, 1), (10, 8), (500, 498), (6, 0)]}
for (m, n), s in scores.items():
    print(f"query at {m:>3}, key at {n:>3} (distance {m - n}): score {s:.4f}")
assert abs(scores[(3, 1)] - scores[(500, 498)]) < 1e-9 and abs(scores[(3, 1)] - scores[(6, 0)]) > 0.1

# %% [markdown]
# Chapter 5 builds `RotaryEmbedding` for all pairs and heads, compares the two layouts in use, and
# applies it inside multi-head attention.
#
# ## Summary
#
# - A token embedding is a `(vocab_size, d_model)` table; embedding a token reads its row.
#   `TokenEmbedding` is `nn.Embedding` plus clear errors for bad ids.
# - The lookup equals a one-hot vector times the table, exactly; but the lookup is what runs, and
#   it is differentiable with respect to the table: only the rows of the tokens in a batch receive a
#   gradient (repeated tokens sum theirs). One-hot is a way to write it, not a requirement.
# - Cosine similarity measures how alike two rows are. Random rows are nearly orthogonal; training
#   pulls tokens used in similar contexts together, as the skip-gram demo showed.
# - Attention without position information is permutation-equivariant: "dog bites man" and
#   "man bites dog" give the same vectors. So position is added to the token vectors.
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
# 5. **A real corpus.** Train the skip-gram of section 2 on the first 300,000 characters of chapter
#    2's corpus, `llmbook.data.load_corpus("stories")`, keeping words seen at least 10 times.
#    Instead of mini-batches, show that the loss over *all* pairs depends only on the table of pair
#    counts `C[i, j]` (how often word `j` appears near word `i`), so that one step costs `V x V`
#    log-probabilities however long the text; train on that table, and print the nearest
#    neighbours of "mom", "said" and "sad" before and after.
