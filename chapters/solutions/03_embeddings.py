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
# # Chapter 03 solutions: embeddings
#
# Worked solutions to the exercises at the end of `chapters/03_embeddings.ipynb`. Each uses the
# package built in the chapter, `llmbook.embeddings`.

# %%
import collections
import math
import re

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from llmbook.data import load_corpus
from llmbook.embeddings import LearnedPositionalEmbedding, TokenEmbedding, sinusoidal_positions

torch.manual_seed(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## Exercise 1: repeated tokens
#
# With loss $L = \sum_t \text{out}[t] \cdot c[t]$, the gradient arriving at output position $t$ is
# $c[t]$. Output $t$ is row `ids[t]` of the table, so the gradient of row 7 is the sum of $c[t]$ over
# the positions holding 7: $c[0] + c[2] + c[3]$. Row 3 gets $c[1]$, and every other row gets 0.

# %%
emb = TokenEmbedding(10, 4)
ids = torch.tensor([7, 3, 7, 7])
c = torch.randn(4, 4)
loss = (emb(ids) * c).sum()
loss.backward()

prediction = torch.zeros(10, 4)
prediction[7] = c[0] + c[2] + c[3]
prediction[3] = c[1]
print("row 7 gradient:    ", [round(v, 4) for v in emb.weight.grad[7].tolist()])
print("c[0] + c[2] + c[3]:", [round(v, 4) for v in prediction[7].tolist()])
print("whole gradient as predicted:", torch.allclose(emb.weight.grad, prediction))
assert torch.allclose(emb.weight.grad, prediction)

# %% [markdown]
# ## Exercise 2: weight tying
#
# One table, two uses: rows are read at the input (`wte(ids)`), and the whole table is multiplied
# by the hidden vectors at the output (`h @ wte.weight.T`, one logit per vocabulary entry). Autograd
# adds the gradients of both uses into the one `weight.grad`. We check that by comparing with two
# separate, identical copies of the table: the tied gradient is the sum of theirs.


# %%
class TiedToy(torch.nn.Module):
    """Embedding, a stand-in for the blocks, and an output layer that reuses the embedding table."""

    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.wte = TokenEmbedding(vocab_size, d_model)
        self.mix = torch.nn.Linear(d_model, d_model)  # stands for the transformer blocks

    def forward(self, ids):  # (B, T) -> (B, T, vocab_size)
        h = self.mix(self.wte(ids))  # (B, T, d_model)
        return h @ self.wte.weight.T  # (B, T, d_model) @ (d_model, V)


torch.manual_seed(1)
model = TiedToy(20, 6)
ids = torch.randint(0, 20, (2, 5))
targets = torch.randint(0, 20, (2, 5))
loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
loss.backward()
print("parameters:", [(name, tuple(p.shape)) for name, p in model.named_parameters()])

# the same computation with two separate copies of the table
table_in = model.wte.weight.detach().clone().requires_grad_(True)
table_out = model.wte.weight.detach().clone().requires_grad_(True)
h = model.mix(table_in[ids])
loss_untied = torch.nn.functional.cross_entropy((h @ table_out.T).flatten(0, 1), targets.flatten())
loss_untied.backward()
print(
    "tied grad == input-use grad + output-use grad:",
    torch.allclose(model.wte.weight.grad, table_in.grad + table_out.grad, atol=1e-6),
)
assert torch.allclose(model.wte.weight.grad, table_in.grad + table_out.grad, atol=1e-6)

# %% [markdown]
# GPT-2 small, counted by hand (12 blocks; each block: two LayerNorms, the fused q/k/v projection
# 768 -> 2304, the output projection, and the 768 -> 3072 -> 768 MLP, all with biases):

# %%
d, V, T, L, ff = 768, 50257, 1024, 12, 3072
block = 2 * (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d)
tied = V * d + T * d + L * block + 2 * d  # wte + wpe + blocks + final LayerNorm
untied = tied + V * d  # a separate LM head (GPT-2 has no head bias)
print(f"GPT-2 small, tied:   {tied:,} parameters")
print(f"GPT-2 small, untied: {untied:,} parameters")
print(f"tying saves {V * d:,} = {V * d / untied:.1%} of the untied count")
assert tied == 124_439_808

# %% [markdown]
# The same number from Hugging Face's implementation, built on the `meta` device (no memory, no
# download). GPT-2's configuration ties `lm_head.weight` to `transformer.wte.weight`; whether a
# model built on `meta` is already tied differs between transformers versions (5.0.0 does not tie
# it there), so we count every parameter except the head, whose weights are the table's:

# %%
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # transformers' import may warn about optional widgets
    import transformers

with torch.device("meta"):
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config())
hf_count = sum(p.numel() for name, p in hf.named_parameters() if not name.startswith("lm_head."))
print("GPT-2's configuration ties the head to the table:", hf.config.tie_word_embeddings)
print(f"transformers count without the (tied) head: {hf_count:,}")
assert hf_count == tied

# %% [markdown]
# ## Exercise 3: why `d_model` must be even
#
# Keep the first 7 columns of the 8-column table: the last column, `sin(w_3 p)`, has lost its partner
# `cos(w_3 p)`. Moving by `k` turns that column into `sin(w_3 p) cos(w_3 k) + cos(w_3 p) sin(w_3 k)`,
# which needs the missing cosine. We fit, by least squares, the best single matrix mapping `PE[p]` to
# `PE[p + k]` over all positions, and look at how far it misses. To make the effect large we use
# `base = 100` (so the unpaired column turns quickly enough) and `k = 50`.


# %%
def best_map_error(table, k):
    """Largest error of the best linear map PE[p] -> PE[p + k] (least squares over all p)."""
    fitted = torch.linalg.lstsq(table[:-k], table[k:]).solution
    return (table[:-k] @ fitted - table[k:]).abs().max().item()


even = sinusoidal_positions(2000, 8, base=100.0, dtype=torch.float64)
odd = even[:, :7]  # what "d_model = 7" would have to mean
errors = {
    "d_model = 8": best_map_error(even, 50),
    "d_model = 7 (truncated)": best_map_error(odd, 50),
}
print("best linear map exists for d_model = 8:", errors["d_model = 8"] < 1e-9)
print("best linear map exists for d_model = 7:", errors["d_model = 7 (truncated)"] < 1e-9)
assert errors["d_model = 8"] < 1e-9 and errors["d_model = 7 (truncated)"] > 1e-2

# %% [markdown]
# The paired table is mapped exactly; the truncated one cannot be, whatever matrix we choose.
# Padding instead (the pairs of `d_model - 1` columns, then a column of zeros) would keep the
# rotation, since zero maps to zero, but that column would carry no position signal at all. Either
# way an odd size silently loses something, so `sinusoidal_positions` refuses, and says which even
# sizes are near:

# %% tags=["raises-exception"]
sinusoidal_positions(10, 7)

# %% [markdown]
# ## Exercise 4: base and length
#
# The longest wavelength is $2\pi \cdot \text{base}^{(d-2)/d}$. A larger base slows every pair except
# the first, so far-apart positions stay more alike:

# %%
d_model = 128
for base in [10_000.0, 500_000.0]:
    longest = 2 * math.pi * base ** ((d_model - 2) / d_model)
    table = sinusoidal_positions(1001, d_model, base=base, dtype=torch.float64)
    sim = (table[0] @ table.T / (d_model / 2)).tolist()
    print(
        f"base {base:>9,.0f}: longest wavelength {longest:>12,.0f} positions; "
        f"similarity at 10, 100, 1000: {[round(sim[k], 2) for k in (10, 100, 1000)]}"
    )

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
for base in [10_000.0, 500_000.0]:
    table = sinusoidal_positions(4001, d_model, base=base, dtype=torch.float64)
    _ = ax.plot((table[0] @ table.T / (d_model / 2)).numpy(), label=f"base {base:,.0f}")
_ = ax.set_xlabel("distance k")
_ = ax.set_ylabel("normalised PE[p] . PE[p+k]")
_ = ax.set_title("d_model = 128: a larger base keeps distant positions similar longer")
_ = ax.legend()
plt.show()
plt.close(fig)

# %% [markdown]
# The formula has no last position: a sinusoidal table of any length can be computed, and its rows
# beyond 1,024 satisfy the same offset and similarity rules as the first ones.

# %%
long_table = sinusoidal_positions(5000, d_model, dtype=torch.float64)
near_start = long_table[0] @ long_table[3]
far_out = long_table[4500] @ long_table[4503]
print("rows beyond 1024 exist:", tuple(long_table[1024:].shape))
print("PE[0] . PE[3] == PE[4500] . PE[4503]:", abs(near_start - far_out).item() < 1e-9)
assert abs(near_start - far_out).item() < 1e-9

# %% [markdown]
# A learned table has exactly `context_length` rows and nothing beyond:

# %% tags=["raises-exception"]
wpe = LearnedPositionalEmbedding(1024, d_model)
wpe(2000)

# %% [markdown]
# Having vectors for position 2,000 is not the same as a model that *uses* them well: a model
# trained only on windows of 1,024 tokens has never seen the larger rotations of the slow pairs, and
# in practice sinusoidal models extrapolate poorly. Rotary embeddings (chapter 5), which make
# attention scores depend only on the distance between tokens, extrapolate poorly too (Press et al.,
# 2022, measured both past the training length). Long-context models instead train on long windows
# and adapt the frequencies to them: Llama-3.1 pairs its larger base with a rescaling of the slowest
# pairs.

# %% [markdown]
# ## Exercise 5: whole words, full batch
#
# Section 2 of the chapter trained on pairs of tokens of the book's tokenizer; here the units are
# whole words. We keep the words of the first 300,000 characters of the corpus that occur at least 10 times;
# rarer words, and the story separator (`<|endoftext|>`, which the word pattern would read as a
# word "endoftext"), are left as gaps: pairs that involve them are skipped.

# %%
# NBVAL_IGNORE_OUTPUT
text = load_corpus("stories")[:300_000].lower()
tokens = re.findall(r"[a-z']+", text)
counts = collections.Counter(tokens)
vocab = sorted(w for w, n in counts.items() if n >= 10 and w != "endoftext")
word_id = {w: i for i, w in enumerate(vocab)}
ids = torch.tensor([word_id.get(w, -1) for w in tokens])  # -1: a gap
V = len(vocab)
print("words:", len(tokens), "kept vocabulary:", V)
assert len(tokens) > 40_000 and 200 < V < 5_000

# %% [markdown]
# The full-batch loss is the average, over all N (centre, context) pairs, of $-\log p(\text{context}
# \mid \text{centre})$. The model's prediction depends only on the centre word, so pairs with the
# same two words contribute the same term, and the sum can be grouped by word pair:
#
# $$L = -\frac{1}{N} \sum_{\text{pairs}} \log p(j \mid i) = -\frac{1}{N} \sum_{i, j} C[i, j]\, \log p(j \mid i).$$
#
# So we need the `V x V` count table once, and each step computes `V x V` log-probabilities instead
# of `N x V`.

# %%
# NBVAL_IGNORE_OUTPUT
C = torch.zeros(V, V)
centres, contexts = [], []
for offset in (-2, -1, 1, 2):  # window of two on each side
    a = ids[max(0, -offset) : len(ids) - max(0, offset)]  # centre words
    b = ids[max(0, offset) : len(ids) - max(0, -offset)]  # the word `offset` positions away
    keep = (a >= 0) & (b >= 0)
    C.index_put_((a[keep], b[keep]), torch.ones(int(keep.sum())), accumulate=True)
    centres.append(a[keep])
    contexts.append(b[keep])
centres, contexts = torch.cat(centres), torch.cat(contexts)
N = len(centres)
print("pairs N:", N, "count table:", tuple(C.shape), "sum of counts:", int(C.sum()))
assert int(C.sum()) == N

torch.manual_seed(0)
emb = TokenEmbedding(V, 32)
head = torch.nn.Linear(32, V)
with torch.no_grad():
    log_p = F.log_softmax(head(emb(torch.arange(V))), dim=-1)  # (V, V): log p(j | i)
    loss_counts = -(C * log_p).sum() / N
    loss_pairs = (
        sum(  # the slow way, pair by pair, in chunks of 20,000 pairs: (20000, V) logits
            F.cross_entropy(
                head(emb(centres[i : i + 20_000])), contexts[i : i + 20_000], reduction="sum"
            )
            for i in range(0, N, 20_000)
        )
        / N
    )
print("same loss both ways:", torch.allclose(loss_counts, loss_pairs, rtol=1e-4))
assert torch.allclose(loss_counts, loss_pairs, rtol=1e-4)

# %% [markdown]
# Train on the counts, and compare the neighbours before and after:


# %%
def top_neighbours(table, word, k=5):
    unit = F.normalize(table, dim=-1)
    sims = unit @ unit[word_id[word]]
    sims[word_id[word]] = -2.0
    return [vocab[i] for i in torch.topk(sims, k).indices.tolist()]


untrained = emb.weight.detach().clone()
optimizer = torch.optim.Adam([*emb.parameters(), *head.parameters()], lr=0.05)
for _ in range(150):
    log_p = F.log_softmax(head(emb(torch.arange(V))), dim=-1)
    loss = -(C * log_p).sum() / N
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
trained = emb.weight.detach().clone()

# %%
# NBVAL_IGNORE_OUTPUT
print(f"loss: {loss_counts.item():.3f} -> {loss.item():.3f}")
for w in ["mom", "said", "sad"]:
    print(f"{w:>5} before: {top_neighbours(untrained, w)}")
    print(f"{w:>5} after:  {top_neighbours(trained, w)}")

# %% [markdown]
# Family words gather around "mom", speech verbs around "said", feelings around "sad". The check
# below is deliberately loose (a few related words among the top five), because the exact order
# depends on the last bits of the arithmetic:

# %%
related = {
    "mom": set("dad mother father grandma grandpa aunt uncle mum granny sister brother".split()),
    "said": set(
        "whispered replied cried shouted asked called yelled answered laughed giggled".split()
    ),
    "sad": set("unhappy worried gloomy upset lonely scared afraid grumpy cross angry".split()),
}
hits_before = {w: len(related[w] & set(top_neighbours(untrained, w))) for w in related}
hits_after = {w: len(related[w] & set(top_neighbours(trained, w))) for w in related}
print(
    "at least 2 related words in the top 5 after training:",
    all(n >= 2 for n in hits_after.values()),
)
print("more related words after than before:", sum(hits_after.values()) > sum(hits_before.values()))
assert all(n >= 2 for n in hits_after.values())
assert sum(hits_after.values()) > sum(hits_before.values())
