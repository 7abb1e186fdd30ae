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
# # Chapter 02 solutions: data windowing
#
# Solutions to the exercises at the end of `chapters/02_data_windowing.ipynb`. They use the
# package the chapter exported (`llmbook.data`) and the book's tokenizer (2,048 ids).

# %%
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from llmbook import load_tokenizer
from llmbook.data import (
    SlidingWindowDataset,
    corpus_statistics,
    encode_text,
    load_corpus,
    write_token_file,
)

_ = torch.manual_seed(0)
tokenizer = load_tokenizer("stories")
text = load_corpus("stories")
ids = encode_text(tokenizer, text)
print(len(ids), "tokens")

# %% [markdown]
# ## Exercise 1: pad the last window
#
# Windows start at `0, stride, 2 * stride, ...` for as long as at least one target is left
# (`start + 1 < len(ids)`). A window that runs past the end is padded on the right: the inputs
# with any valid id (it does not matter which: every position whose target is padding is ignored
# by the loss, and causal attention keeps real positions from looking at later padded ones), the
# targets with `-100`, PyTorch's default `ignore_index`.

# %%
IGNORE = -100


class PaddedWindowDataset(Dataset):
    """Windows of ``context_length``; the last one padded (inputs with pad_id, targets with -100)."""

    def __init__(self, ids, context_length, stride=None, pad_id=0):
        self.ids = torch.as_tensor(ids, dtype=torch.long)
        self.T = context_length
        self.stride = stride or context_length
        self.pad_id = pad_id
        self.starts = list(range(0, len(self.ids) - 1, self.stride))

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        s = self.starts[i]
        x = self.ids[s : s + self.T]
        y = self.ids[s + 1 : s + self.T + 1]
        x = F.pad(x, (0, self.T - len(x)), value=self.pad_id)
        y = F.pad(y, (0, self.T - len(y)), value=IGNORE)
        return x, y


toy = PaddedWindowDataset(list(range(23)), context_length=8)
for i in range(len(toy)):
    print(toy[i][0].tolist(), toy[i][1].tolist())

# %% [markdown]
# Every token after the first is a target exactly once (stride = context length), and the loss
# over a padded window equals the loss over its real positions only:

# %%
targets = torch.cat([toy[i][1] for i in range(len(toy))])
print(sorted(targets[targets != IGNORE].tolist()) == list(range(1, 23)))

x, y = toy[len(toy) - 1]
logits = torch.randn(8, 30)  # a fake model's output for the last window: (T, vocab)
padded_loss = F.cross_entropy(logits, y, ignore_index=IGNORE)
real = y != IGNORE
real_loss = F.cross_entropy(logits[real], y[real])
print(int(real.sum()), "real targets;", torch.allclose(padded_loss, real_loss))
assert torch.allclose(padded_loss, real_loss)

# %% [markdown]
# ## Exercise 2: one document per window
#
# Split the id stream after every `<|endoftext|>` (id 2,047), so each story keeps its separator
# as its last target, then cut each story into padded windows of its own.

# %%
eot = tokenizer.special_tokens["<|endoftext|>"]
T = 128
ids_t = torch.tensor(ids)
ends = (ids_t == eot).nonzero().flatten().tolist()
documents, start = [], 0
for end in ends:
    # the newline after the separator belongs to the next story's start
    documents.append(ids[start : end + 1])
    start = end + 1
if tokenizer.decode(ids[start:]).strip():  # anything after the last separator but a newline
    documents.append(ids[start:])

n_windows = n_padded = 0
for doc in documents:
    per_doc = PaddedWindowDataset(doc, T)
    n_windows += len(per_doc)
    n_padded += sum(int((per_doc[i][1] == IGNORE).sum()) for i in range(len(per_doc)))

packed = SlidingWindowDataset(ids, T)
lengths = [len(d) for d in documents]
print(
    f"{len(documents)} stories, {min(lengths)} to {max(lengths)} tokens, mean {np.mean(lengths):.1f}"
)
print(f"packed:       {len(packed):>5} windows, no padding")
print(
    f"one per doc:  {n_windows:>5} windows, {n_padded:,} padded targets "
    f"({n_padded / (n_windows * T):.0%} of all positions wasted)"
)
assert n_windows > 1.3 * len(packed) and n_padded / (n_windows * T) > 0.25

# %% [markdown]
# With stories of 180 tokens on average and windows of 128, most stories need two windows and
# the second is mostly padding: per-document windows cost 2,905 windows instead of 2,048 (over 40%
# more) for the same text, and 30% of all positions hold padding. Packing, with the separator
# telling the model where a story ends, wastes nothing; that is why pre-training packs.

# %% [markdown]
# ## Exercise 3: random windows in a `DataLoader`, one stream per worker
#
# An `IterableDataset` produces its own items; with `num_workers > 0` each worker process runs
# its own copy of `__iter__`, so each must seed its own generator differently (from the worker
# id) or every worker would yield the same windows. The token file is opened inside `__iter__`,
# so each worker has its own memory map.
#
# The workers must also be able to find the class. Up to Python 3.13, Linux *forks* them from the
# running notebook, so there a notebook class happens to work; but macOS and Windows *spawn* fresh
# interpreters that import the class by module and name, Linux does the same with *forkserver*
# from Python 3.14, and a class defined in a notebook cannot be imported that way (chapter 02,
# section 7). So we write
# the class into a small module file and import it from there, which works with every start
# method; in a project it would simply live in your own package.

# %%
workdir = tempfile.TemporaryDirectory()
module_source = '''
import torch
from torch.utils.data import IterableDataset, get_worker_info

from llmbook.data import random_batch, read_token_file


class RandomWindows(IterableDataset):
    """windows_per_worker random windows from a token file, a different stream in each worker."""

    def __init__(self, path, context_length, windows_per_worker, seed):
        self.path, self.T, self.n, self.seed = path, context_length, windows_per_worker, seed

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        generator = torch.Generator().manual_seed(self.seed * 1000 + worker)
        tokens = read_token_file(self.path)  # opened here: one memory map per worker
        for _ in range(self.n):
            x, y = random_batch(tokens, 1, self.T, generator=generator)
            yield x[0], y[0]
'''
(Path(workdir.name) / "random_windows.py").write_text(module_source)
sys.path.insert(0, workdir.name)  # spawned workers receive the parent's sys.path
from random_windows import RandomWindows

path = write_token_file(Path(workdir.name) / "stories.tok", ids)


def windows(num_workers, seed=0):
    loader = DataLoader(RandomWindows(path, 32, 20, seed), batch_size=4, num_workers=num_workers)
    return torch.cat([x for x, _ in loader])


two, again = windows(num_workers=2), windows(num_workers=2)
print(tuple(two.shape), "windows from 2 workers")
distinct = {tuple(row.tolist()) for row in two}
print("all distinct:", len(distinct) == len(two))
print("reproducible:", torch.equal(two, again))
assert len(distinct) == len(two) and torch.equal(two, again)
sys.path.remove(workdir.name)
workdir.cleanup()

# %% [markdown]
# (Without the worker id in the seed, the two workers would produce identical batches: try
# `manual_seed(self.seed)` and the `all distinct` check fails.)
#
# ## Exercise 4: variety grows slowly
#
# We measure the statistics of growing prefixes of the corpus.

# %%
sizes = [10_000, 30_000, 100_000, 300_000, 1_000_000]
# cut each prefix at a space, so that no word is cut in two (a half word would count as a new one)
rows = [corpus_statistics(text[: text.rindex(" ", 0, n)]) for n in sizes]
print(f"{'characters':>10} {'words':>8} {'vocabulary':>10} {'distinct 3-grams':>16} {'ratio':>6}")
for n, r in zip(sizes, rows):
    print(
        f"{n:>10,} {r['n_words']:>8,} {r['vocabulary']:>10,} {r['distinct_trigrams']:>16,} {r['distinct_trigram_ratio']:>6.3f}"
    )
assert rows[0]["distinct_trigram_ratio"] > rows[-1]["distinct_trigram_ratio"]

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
_ = axes[0].semilogx(sizes, [r["vocabulary"] for r in rows], marker="o", label="stories")
_ = axes[0].set(xlabel="characters (log scale)", ylabel="vocabulary (distinct words)")
_ = axes[1].semilogx(
    sizes, [r["distinct_trigram_ratio"] for r in rows], marker="o", label="stories"
)
_ = axes[1].set(xlabel="characters (log scale)", ylabel="distinct 3-grams / 3-grams")
_ = axes[0].legend(), axes[1].legend()
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# The vocabulary saturates quickly (the lexicon is finite, and even in natural text new words
# become rarer as a text grows: Heaps' law), while the number of 3-grams grows linearly with the
# text. Every new 3-gram that repeats an old one adds to the denominator but not the numerator,
# so the ratio falls with size in *any* corpus. Comparing the ratio of a 10 KB text with that of a
# 1 MB text says more about their sizes than their variety. Compare corpora at equal size (the
# same number of words, e.g. a sample of 100,000 from each). A compression ratio has the same
# problem, only milder: a compressor also finds more to reuse in a longer text.
