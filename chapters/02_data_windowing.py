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
# # Chapter 02: Data windowing
#
# A language model is trained on one task only: **given the tokens so far, predict the next
# one**. This chapter turns a long text into exactly that task, as batches of input/target
# windows that PyTorch can feed to a model.
#
# **What you will build** (exported to `llmbook.data`):
#
# - `load_corpus(name)`: the book's corpus of children's stories, shipped inside the package;
# - `encode_text(tokenizer, text)`: ids of a text, with `<|endoftext|>` between documents;
# - `SlidingWindowDataset(ids, context_length, stride)`: input/target windows shifted by one token
#   (where they start, `WindowStarts`, is a small class of its own);
# - `create_dataloader(...)`: from a text and a tokenizer (or from ids) to shuffled `(B, T)` batches;
# - `train_val_split(...)`: a split that does not cut a story in half;
# - `random_batch(data, batch_size, context_length)`: windows at random places, from ids in
#   memory or from a memory-mapped token file, for corpora larger than memory.
#
# We tokenize with the book's own tokenizer, trained on these stories in chapter 01 (2,048 ids),
# and quote GPT-2's (50,257 ids) beside it. The whole pipeline, section by section:
#
# ```mermaid
# flowchart TD
#     C["text (§1)<br/>load_corpus"] --> SP["train and val text (§6)<br/>train_val_split"]
#     SP --> E["ids (§2)<br/>encode_text"]
#     E --> W["(x, y) windows (§3-5)<br/>SlidingWindowDataset"]
#     W --> L["x, y: (B, T) (§7)<br/>DataLoader"]
#     E --> F["token file on disk (§9)<br/>write_token_file"]
#     E --> R["x, y: (B, T) (§8)<br/>random_batch"]
#     F --> R
# ```
#
# Each box names what comes out and the section (§) that builds it, then the function that makes it.

# %%
#| default_exp data

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from llmbook import load_tokenizer

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. A corpus that is there on every machine
#
# To train anything we need text. Downloading it on every run is fragile (no internet on the
# train, a moved file, a changed file), so the book ships its own: about a megabyte of short,
# simple stories in the spirit of TinyStories (Eldan and Li, 2023), written by a seeded
# probabilistic grammar in `llmbook/stories/generator.py` and stored gzip-compressed inside the package.
# Stories are separated by a line holding `<|endoftext|>`, the way the TinyStories files do it.
#
# `load_corpus("stories")` reads it. (Two real public corpora, `"tinyshakespeare"` and
# `"tinystories"`, are downloaded on request into a cache folder and checked against a pinned
# SHA-256; that plumbing lives in `llmbook/io/download.py`, see the last section.)

# %%
#| export
import gzip
import inspect
import os
import re
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from llmbook.checks import check_fraction, check_int, check_token_ids
from llmbook.io.download import REMOTE_CORPORA, corpus_path

# Token files live in the hand-written llmbook/io/tokenfile.py (section 9); re-exported here.
from llmbook.io.tokenfile import TokenFile as TokenFile
from llmbook.io.tokenfile import read_token_file as read_token_file
from llmbook.io.tokenfile import tokenize_file as tokenize_file
from llmbook.io.tokenfile import write_token_file as write_token_file
from llmbook.stories import CORPUS_FILE, SEPARATOR


# %%
#| export
def load_corpus(
    name: str = "stories", cache_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> str:
    """Return a corpus as one string.

    ``"stories"``: the book's generated children's stories, shipped in the package (offline,
    about 1.1 MB, each story followed by a line ``<|endoftext|>``). ``"tinyshakespeare"`` and
    ``"tinystories"``: downloaded on first use into ``cache_dir`` (default ``$LLMBOOK_CACHE`` or
    ``~/.cache/llmbook``) and verified by SHA-256 (``llmbook.io.download.corpus_path``); with
    ``download_missing=False`` a missing file raises ``FileNotFoundError`` instead.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a str such as 'stories', got {type(name).__name__} ({name!r})"
        )
    if name == "stories":
        return gzip.decompress(CORPUS_FILE.read_bytes()).decode("utf-8")
    if name not in REMOTE_CORPORA:
        known = ", ".join(["stories", *sorted(REMOTE_CORPORA)])
        raise ValueError(f"unknown corpus name {name!r}; available: {known}")
    return corpus_path(name, cache_dir, download_missing).read_text(encoding="utf-8")


# %%
text = load_corpus("stories")
first_story = text[: text.index("<|endoftext|>") + len("<|endoftext|>")]
print(f"{len(text):,} characters; the first story:\n")
print(first_story)

# %% [markdown]
# How big a world is that? `corpus_statistics` counts words (runs of letters, lower-cased),
# distinct words, and word 3-grams ("she loved to", "loved to sing"), and measures how well gzip
# compresses the text: the more a text repeats itself, the higher that ratio.


# %%
#| export
def corpus_statistics(text: str) -> dict[str, float]:
    """Size and variety of a text.

    Words are runs of letters and apostrophes, lower-cased; ``<|endoftext|>`` separators are not
    words. Returns ``n_bytes`` (UTF-8), ``n_chars``, ``n_documents`` (separator-delimited, 1 if
    none), ``n_words``, ``vocabulary`` (distinct words), ``n_trigrams`` and ``distinct_trigrams``
    (word 3-grams), ``distinct_trigram_ratio`` and ``gzip_ratio`` (bytes / gzip level-9 bytes).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    data = text.encode("utf-8")
    documents = [d for d in text.split(SEPARATOR) if d.strip()]
    words = re.findall(r"[a-z']+", text.replace(SEPARATOR, " ").lower())
    trigrams = Counter(zip(words, words[1:], words[2:]))
    n_trigrams = max(len(words) - 2, 0)
    return {
        "n_bytes": len(data),
        "n_chars": len(text),
        "n_documents": max(len(documents), 1),
        "n_words": len(words),
        "vocabulary": len(set(words)),
        "n_trigrams": n_trigrams,
        "distinct_trigrams": len(trigrams),
        "distinct_trigram_ratio": len(trigrams) / n_trigrams if n_trigrams else 0.0,
        "gzip_ratio": len(data) / len(zlib.compress(data, 9)) if data else 0.0,
    }


# %%
stats = corpus_statistics(text)
for key, value in stats.items():
    print(f"{key:24s} {value:>12,.3f}" if isinstance(value, float) else f"{key:24s} {value:>12,}")
assert stats["n_bytes"] >= 1_000_000 and stats["vocabulary"] > 1000

# %% [markdown]
# 55,979 distinct 3-grams, 27% of all 3-grams, and a vocabulary of 1,309 words: a small world,
# deliberately. The stories repeat themselves far more than human writing does (gzip shrinks
# them 4.8 times), which is what makes them learnable by a small model on a laptop CPU in
# minutes, the job they have in chapter 08. (Exercise 4 shows why such ratios depend on the size
# of the text they are measured on.)

# %% [markdown]
# ## 2. From text to ids: the book's tokenizer
#
# Chapter 01 trained a byte-level BPE tokenizer on these stories: 256 byte ids, 1,791 merges and
# one special token, `<|endoftext|>`, 2,048 ids in all. The package ships it, and
# `load_tokenizer("stories")` loads it. A special token must be allowed explicitly when encoding
# (by default tiktoken and our `BPETokenizer` refuse special-token text, so that user input cannot
# forge one); `encode_text` does that for the document separator, and works with any tokenizer
# that has an `encode(text)` method.


# %%
#| export
def encode_text(tokenizer: object, text: str) -> list[int]:
    """Encode ``text`` with ``tokenizer``, letting ``<|endoftext|>`` through as a special token.

    Tokenizers whose ``encode`` takes ``allowed_special`` (tiktoken, chapter 01's
    ``BPETokenizer``) get ``allowed_special={"<|endoftext|>"}``; others get the text alone.
    """
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(
            f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}"
        )
    try:
        accepts = "allowed_special" in inspect.signature(tokenizer.encode).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        accepts = False
    if accepts and SEPARATOR in text:
        return list(tokenizer.encode(text, allowed_special={SEPARATOR}))
    return list(tokenizer.encode(text))


# %%
import tiktoken

tok = load_tokenizer("stories")
eot = tok.special_tokens["<|endoftext|>"]
ids = encode_text(tok, text)
gpt2_ids = encode_text(tiktoken.get_encoding("gpt2"), text)
print(
    f"book tokenizer: {tok.vocab_size:,} ids, {len(ids):,} tokens, {len(text) / len(ids):.2f} characters per token"
)
print(
    f"GPT-2:         {50257:,} ids, {len(gpt2_ids):,} tokens, {len(text) / len(gpt2_ids):.2f} characters per token"
)
print("<|endoftext|> is id", eot, "and occurs", ids.count(eot), "times")
assert tok.vocab_size == 2048 and ids.count(eot) == stats["n_documents"]

# %% [markdown]
# The book's tokenizer cuts the corpus into 262,049 tokens, GPT-2's into 270,545: with 2,048 ids
# instead of 50,257 it needs slightly *fewer*, because its 1,791 merges were learned on
# exactly these stories, while most of GPT-2's ids are words that never occur here. A
# small vocabulary keeps the model small too (chapter 03's embedding table has one row per id).

# %% [markdown]
# ## 3. Next-token prediction: inputs and targets shifted by one
#
# Take a run of token ids $x_1, x_2, \dots, x_{T+1}$. The model reads $x_1 \dots x_T$ and, at
# every position $t$, predicts the token that comes next, $x_{t+1}$. So one window of
# `context_length` $= T$ tokens holds $T$ prediction tasks at once, and its targets are the
# inputs shifted left by one:
#
#     inputs  = ids[i     : i + T]
#     targets = ids[i + 1 : i + T + 1]
#
# During training the model always sees the *true* previous tokens, never its own guesses; this
# is called *teacher forcing*, and it is what lets all $T$ positions be trained in parallel
# (chapter 04's causal mask makes sure position $t$ cannot peek at $x_{t+1}$).

# %%
window = ids[:11]
inputs, targets = window[:-1], window[1:]
print("inputs: ", inputs)
print("targets:", targets)
assert inputs[1:] == targets[:-1]
print(f"\n{'what the model sees':>48s} | what it must predict")
for t in range(1, len(window)):
    print(f"{tok.decode(window[:t])!r:>48} | {tok.decode([window[t]])!r}")

# %% [markdown]
# ## 4. Sliding windows over a long stream of tokens
#
# A corpus is one long stream of ids. We cut it into windows of `context_length` tokens (plus
# the one extra token the targets need). The **stride** is how far the next window starts after
# the previous one:
#
# - `stride == context_length`: windows touch end to end; each token after the first is a target
#   once per epoch (the usual choice for pre-training; the tail window below adds a few repeats).
# - `stride < context_length`: windows overlap by `context_length - stride` tokens; the same
#   tokens are seen several times per epoch (more samples, but more repetition, so a higher risk
#   of over-fitting a small corpus).
# - `stride > context_length`: windows leave gaps; some tokens are never trained on.
#
# A window that would run past the end of the stream (the **last partial window**) has three
# honest treatments: drop it (the tail tokens are never targets), pad it (and tell the loss to
# ignore the padded targets; exercise 1), or shift it back so that it ends exactly at the last
# token (it then overlaps its neighbour more than the others do). The picture shows a stream of
# 23 tokens, windows of 8 and stride 6, with the tail window shifted back:


# %%
def draw_windows(ax, n, T, stride):
    """A stream of n tokens and its windows: inputs filled, targets hatched; returns the starts."""
    regular = list(range(0, n - T, stride))
    starts = regular + ([n - T - 1] if regular[-1] + T < n - 1 else [])
    for p in range(n):
        _ = ax.add_patch(plt.Rectangle((p, len(starts)), 1, 0.8, fill=False))
        _ = ax.text(p + 0.5, len(starts) + 0.4, str(p), ha="center", va="center", fontsize=8)
    for row, s in enumerate(starts):
        y, colour = len(starts) - 1 - row, f"C{row}"
        _ = ax.add_patch(plt.Rectangle((s, y), T, 0.8, color=colour, alpha=0.5))
        _ = ax.add_patch(
            plt.Rectangle((s + 1, y + 0.05), T, 0.7, fill=False, hatch="//", ec=colour)
        )
        name = "tail window" if row >= len(regular) else f"window {row}"
        _ = ax.text(s - 0.2, y + 0.4, f"{name} (start {s})", ha="right", va="center", fontsize=8)
    for y, end, label in ((-0.4, T, f"context_length = {T}"), (-1.2, stride, f"stride = {stride}")):
        _ = ax.annotate("", (end, y), (0, y), arrowprops=dict(arrowstyle="<->"))
        _ = ax.text(end + 0.3, y, label, va="center", fontsize=8)
    return starts


# %%
fig, ax = plt.subplots(figsize=(11, 3.6))
starts = draw_windows(ax, n=23, T=8, stride=6)
inputs_key = plt.Rectangle((0, 0), 1, 1, color="C0", alpha=0.5)
targets_key = plt.Rectangle((0, 0), 1, 1, fill=False, hatch="//")
labels = ["inputs: context_length tokens", "targets: the inputs shifted by one"]
_ = ax.legend(
    [inputs_key, targets_key],
    labels,
    loc="upper left",
    bbox_to_anchor=(0, -0.22),
    ncol=2,
    fontsize=8,
)
_ = ax.set(xlim=(-9, 24), ylim=(-1.7, len(starts) + 1), yticks=[], xticks=range(0, 24, 2))
_ = ax.set(
    xlabel="token position in the stream",
    title="Windows of 8 tokens, stride 6: neighbours overlap by 8 - 6 = 2",
)
plt.tight_layout()
plt.show()
plt.close(fig)
print("window starts:", starts)

# %% [markdown]
# The smallest dataset that does this is a PyTorch `Dataset` with a length and an item: the
# starts, and two slices per window.


# %%
class TinyWindows(Dataset):
    def __init__(self, ids, context_length, stride):
        self.ids, self.T = torch.tensor(ids), context_length
        self.starts = list(range(0, len(ids) - context_length, stride))  # s + T + 1 <= len(ids)

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        s = self.starts[i]
        return self.ids[s : s + self.T], self.ids[s + 1 : s + self.T + 1]


tiny = TinyWindows(list(range(23)), context_length=8, stride=6)
x, y = tiny[1]
print(len(tiny), "windows;", "window 1:", x.tolist(), "->", y.tolist(), tuple(x.shape))
assert torch.equal(x[1:], y[:-1]) and tiny.starts == [0, 6, 12]

# %% [markdown]
# The exported `SlidingWindowDataset` is the same idea with three additions: it checks its
# arguments (one-line guards from `llmbook.checks`: ids must be integers, never silently
# truncated floats), it computes a window's start instead of storing a list (a corpus of a billion
# tokens would need a long list), and with `cover_tail=True` (the default) it adds the tail window
# when the regular windows leave tokens uncovered. It also accepts a NumPy array or a memory-mapped
# token file (section 9) and reads those one window at a time.
#
# We build it in two steps. Where the windows start depends only on the length of the stream, not
# on the ids in it, so that arithmetic is a small class of its own, `WindowStarts`: the regular
# starts `0, stride, 2 * stride, ...` while a whole window of `T + 1` tokens fits, and, if they
# leave tokens at the end, one more start, `last_start = n_tokens - T - 1`, whose window ends
# exactly at the last token.


# %%
#| export
class WindowStarts:
    """Where the windows of ``context_length + 1`` tokens start in a stream of ``n_tokens`` ids.

    Regular window ``i`` starts at ``i * stride`` (``stride`` defaults to ``context_length`` = T)
    while ``start + T + 1 <= n_tokens``. With ``cover_tail=True`` one more window, starting at
    ``last_start = n_tokens - T - 1`` and so ending at the last token, covers the tokens the
    regular windows leave over. ``len()`` is the number of windows, ``start(i)`` where one begins.
    """

    def __init__(
        self, n_tokens: int, context_length: int, stride: int | None = None, cover_tail: bool = True
    ):
        n_tokens = check_int(n_tokens, "n_tokens", minimum=0)
        self.context_length = T = check_int(context_length, "context_length")
        self.stride = T if stride is None else check_int(stride, "stride")
        if n_tokens < T + 1:
            raise ValueError(
                f"ids too short for one window: {n_tokens} tokens, but context_length={T} "
                f"needs at least {T + 1} (inputs plus the one-token shift)"
            )
        self.last_start = n_tokens - T - 1
        self.n_regular = self.last_start // self.stride + 1  # starts 0, stride, ... <= last_start
        has_gap = (self.n_regular - 1) * self.stride != self.last_start
        self.n_windows = self.n_regular + int(bool(cover_tail) and has_gap)

    def __len__(self) -> int:
        return self.n_windows

    def start(self, index: int) -> int:
        """Where window ``index`` begins (negative indices count from the end)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        i = index + self.n_windows if index < 0 else int(index)
        if not 0 <= i < self.n_windows:
            raise IndexError(f"window index {index} out of range for {self.n_windows} windows")
        return i * self.stride if i < self.n_regular else self.last_start


# %% [markdown]
# The picture's stream, 23 tokens in windows of 8 with stride 6, has regular starts 0, 6 and 12
# (a window at 18 would need tokens up to 26), and the tail start 23 - 8 - 1 = 14:

# %%
starts_23 = WindowStarts(23, context_length=8, stride=6)
print(len(starts_23), "windows, starting at", [starts_23.start(i) for i in range(len(starts_23))])
assert [starts_23.start(i) for i in range(len(starts_23))] == starts  # the picture's starts

# %% [markdown]
# The dataset adds the ids: it checks them, hands their length to `WindowStarts`, and cuts window
# `i` as `TinyWindows` does, `T + 1` ids from `start(i)`, read one window at a time whether the ids
# are a tensor in memory or a memory-mapped file.


# %%
#| export
class SlidingWindowDataset(WindowStarts, Dataset):
    """Input/target windows over a stream of token ids, targets shifted by one token.

    Window ``i`` starts at ``s = self.start(i)`` (``WindowStarts``: every ``stride`` tokens, plus
    the tail window if ``cover_tail``); item ``i`` is ``(ids[s : s + T], ids[s + 1 : s + T + 1])``,
    two LongTensors of shape ``(T,)``. ``ids``: a list of ints, a 1-D integer tensor or array, or
    a ``TokenFile`` (memory maps are read one window at a time).
    """

    def __init__(
        self, ids, context_length: int, stride: int | None = None, cover_tail: bool = True
    ):
        self.ids = check_token_ids(ids.ids if isinstance(ids, TokenFile) else ids)
        super().__init__(len(self.ids), context_length, stride, cover_tail)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        # TASK: the T + 1 ids from self.start(index), int64, as (inputs, targets shifted by one)
        s = self.start(index)
        chunk = self.ids[s : s + self.context_length + 1]  # (T + 1,)
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(chunk.astype(np.int64))
        return chunk[:-1], chunk[1:]
        ### END SOLUTION


# %% [markdown]
# It agrees with `TinyWindows` window for window, and adds the tail window (start 14), whose
# targets include tokens 21 and 22, which no regular window reaches:

# %%
ds = SlidingWindowDataset(list(range(23)), context_length=8, stride=6)
print(len(ds), "windows starting at", [ds.start(i) for i in range(len(ds))])
print(
    "without the tail window:", len(SlidingWindowDataset(list(range(23)), 8, 6, cover_tail=False))
)
assert all(
    torch.equal(ds[i][0], tiny[i][0]) and torch.equal(ds[i][1], tiny[i][1])
    for i in range(len(tiny))
)

stream = torch.tensor(ids[:5000])
big, small = SlidingWindowDataset(stream, 64, 48, cover_tail=False), TinyWindows(ids[:5000], 64, 48)
assert len(big) == len(small) and all(torch.equal(big[i][1], small[i][1]) for i in range(len(big)))
print(len(big), "windows of 64 tokens agree on the stories too")

# %% [markdown]
# ### How the stride changes the number of samples and their overlap
#
# For a stream of $N$ tokens and windows of $T$, there are $\lfloor (N - T - 1)/s \rfloor + 1$
# regular windows for stride $s$. Each token is seen about $T/s$ times per epoch; consecutive
# windows share $\max(0, T - s)$ tokens. We count, on the first 100,000 tokens of the stories,
# how often each token is a target, with the tail window left out so that gaps show, and we
# split the tokens that are never a target into those inside the stream (gaps between windows)
# and those at its end (after the last regular window, where the tail window would go).

# %%
stream = torch.tensor(ids[:100_000])
T = 256
print(
    f"{'stride':>6} {'windows':>7} {'overlap':>7} {'seen/token':>10} {'last start':>10}   never a target: in gaps, at the end"
)
for stride in (32, 64, 128, 256, 384, 512):
    ds = SlidingWindowDataset(stream, T, stride, cover_tail=False)
    counts = torch.zeros(len(stream), dtype=torch.long)  # how often each token is a target
    for i in range(len(ds)):
        counts[ds.start(i) + 1 : ds.start(i) + T + 1] += 1
    last = ds.start(len(ds) - 1)
    in_gaps, at_end = int((counts[1 : last + T + 1] == 0).sum()), len(stream) - 1 - (last + T)
    mean = counts[1:].float().mean().item()
    print(
        f"{stride:>6} {len(ds):>7} {max(0, T - stride) / T:>7.0%} {mean:>10.2f} {last:>10,} {in_gaps:>18,} {at_end:>10,}"
    )
    assert len(ds) == (len(stream) - T - 1) // stride + 1 and in_gaps + at_end == int(
        (counts[1:] == 0).sum()
    )

# %% [markdown]
# Halving the stride doubles the samples but not the information: with stride 32 each token is a
# target eight times per epoch. With a stride above the context length, windows leave gaps, and a
# third or half of the stream is never trained on. Stride = context length is the usual choice for
# pre-training; a smaller stride is a cheap form of data augmentation when text is scarce.
#
# The last column is the end of the stream. Regular windows stop where the next one would run
# past the last token, so the tokens after the last regular window's targets are never targets.
# For strides 32, 64 and 128 the last regular window starts at 99,712 (a multiple of all three),
# its targets end at position 99,968, and the 31 tokens at positions 99,969 to 99,999 are left
# over; for stride 256 it starts at 99,584 and 159 are left. Covering them is the tail window's
# job (`cover_tail=True`, left out of this table). And whatever the stride, token 0 is never a
# target: nothing comes before it to predict it from (the counts above start at token 1).

# %% [markdown]
# ## 5. Document separators
#
# The corpus is many independent stories, kept in one stream with `<|endoftext|>` (id 2,047 in
# the book's tokenizer) at the end of each. The model then learns two useful
# things: after the separator a new story begins, and when a story is finished it should predict
# the separator, which chapter 09 uses to stop generating.

# %%
end = text.index("<|endoftext|>")
snippet_ids = encode_text(tok, text[end - 30 : end + 40])
print(snippet_ids)
print([tok.decode([i]) for i in snippet_ids])
assert snippet_ids.count(eot) == 1

# %% [markdown]
# Windows are cut without looking at the separators, so many windows hold the end of one story
# and the start of the next. That is fine: the separator tells the model that a new story begins.
# Attention can still look back past it into the previous story; the model can learn to give that
# text little weight (it does not help predict the new story), but nothing forces it to. (Some
# pipelines therefore mask attention at each separator, *document masking*, so that no token sees
# another document; others pad each document to its own windows; exercise 2 counts what that
# costs.)

# %%
lengths = np.diff([-1] + [i for i, t in enumerate(ids) if t == eot])
print(
    f"a story is {lengths.mean():.0f} tokens long on average ({lengths.min()} to {lengths.max()})"
)
for T in (32, 64, 256):
    ds = SlidingWindowDataset(torch.tensor(ids), context_length=T)
    spans = sum(int((ds[i][0] == eot).any()) for i in range(len(ds)))
    print(
        f"context_length {T:>3}: {spans:>5} of {len(ds):>5} windows ({spans / len(ds):.0%}) span a story boundary"
    )

# %% [markdown]
# At `context_length` 256, longer than an average story, every window holds a separator: for the
# context lengths models train with, crossing from one document into the next is the rule, not
# the exception.

# %% [markdown]
# ## 6. Train and validation split
#
# We hold out the last 10% of the corpus to measure how well a model does on text it has not
# trained on. Cutting at exactly 90% of the characters would split a story in two and leak its
# beginning into training; `train_val_split` moves the cut to the next document boundary.
# (For id sequences the cut is plain.)


# %%
#| export
def train_val_split(
    data: str | Sequence[int] | torch.Tensor | np.ndarray,
    val_fraction: float = 0.1,
    separator: str = SEPARATOR,
) -> tuple:
    """Split ``data`` into ``(train, val)``: the first ``1 - val_fraction`` of it, and the rest.

    For a ``str`` containing ``separator``, the cut moves forward to the end of the next
    separator line (or, when no document follows that one, back to the end of the previous
    one), so no document is split between the two parts. Other sequences (lists, tensors,
    arrays of ids) are cut at ``int(len(data) * (1 - val_fraction))``.
    """
    if not isinstance(data, (str, Sequence, torch.Tensor, np.ndarray)):
        raise TypeError(f"data must be a str or a sequence of ids, got {type(data).__name__}")
    cut = int(len(data) * (1 - check_fraction(val_fraction, "val_fraction")))
    if isinstance(data, str) and separator and separator in data:

        def end_of_separator_line(found: int) -> int:
            end = found + len(separator)
            return end + 1 if data[end : end + 1] == "\n" else end

        found = data.find(separator, cut)
        if found == -1 or not data[end_of_separator_line(found) :].strip():
            found = data.rfind(separator, 0, cut)  # no document after the next boundary: go back
        if found == -1:
            raise ValueError(
                f"no document boundary ({separator!r}) leaves text on both sides of the split: "
                "the text holds a single document"
            )
        cut = end_of_separator_line(found)
    train, val = data[:cut], data[cut:]
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"split leaves an empty part (train {len(train)}, val {len(val)} items)")
    return train, val


# %%
train_text, val_text = train_val_split(text, val_fraction=0.1)
print(
    f"train: {len(train_text):,} characters, val: {len(val_text):,} ({len(val_text) / len(text):.1%})"
)
print("train ends:", repr(train_text[-30:]))
print("val starts:", repr(val_text[:40]))
assert train_text + val_text == text and train_text.endswith("<|endoftext|>\n")

# %% [markdown]
# ## 7. `Dataset` and `DataLoader`
#
# `SlidingWindowDataset` is a PyTorch `Dataset`: it has a length and returns item `i`. A
# `DataLoader` draws items, stacks `batch_size` of them into tensors of shape `(B, T)` and hands
# them out batch by batch. Its main options:
#
# - `shuffle=True` visits the windows in a new random order each epoch (consecutive windows are
#   neighbouring text; a model trained on them in order would see one story's worth of gradient at
#   a time). Pass a seeded `torch.Generator` and the order is reproducible.
# - `drop_last=True` drops a final smaller batch, so every batch has the same shape (helpful for
#   compiled models and for comparing losses). For validation, keep the last batch
#   (`drop_last=False`), so that every window is scored.
# - `num_workers` > 0 loads batches in background processes while the model computes; for
#   windows already in memory the work is tiny and 0 is fine.
#
# `create_dataloader` puts it together, from a text and a tokenizer or from ids.


# %%
#| export
def create_dataloader(
    data: str | Sequence[int] | torch.Tensor | np.ndarray,
    tokenizer: object | None = None,
    context_length: int = 256,
    stride: int | None = None,
    batch_size: int = 8,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    seed: int | None = None,
    cover_tail: bool = True,
) -> DataLoader:
    """A ``DataLoader`` of ``(inputs, targets)`` batches, each a LongTensor of shape ``(B, T)``.

    ``data`` is a text (then ``tokenizer`` is required, see ``encode_text``) or token ids.
    Windows come from ``SlidingWindowDataset(ids, context_length, stride, cover_tail)``. With
    ``seed`` (an int >= 0) the shuffling order is drawn from a ``torch.Generator`` seeded with
    it, so two loaders with the same seed give the same batches.
    """
    if isinstance(data, str) and tokenizer is None:
        raise TypeError(
            "data is a text, so a tokenizer is needed: create_dataloader(text, tokenizer, ...)"
        )
    ids = encode_text(tokenizer, data) if isinstance(data, str) else data
    batch_size = check_int(batch_size, "batch_size")
    num_workers = check_int(num_workers, "num_workers", minimum=0)
    generator = (
        None if seed is None else torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    )
    dataset = SlidingWindowDataset(ids, context_length, stride, cover_tail=cover_tail)
    return DataLoader(
        dataset,
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )


# %%
loader = create_dataloader(train_text, tok, context_length=8, batch_size=4, seed=123)
x, y = next(iter(loader))
print("batches:", len(loader), " x:", tuple(x.shape), x.dtype, " y:", tuple(y.shape))
print(x[0].tolist(), "->", y[0].tolist())
assert torch.equal(x[:, 1:], y[:, :-1])

# %% [markdown]
# The batch as a picture: each row `b` is one window, each column `t` one position. At position
# `t` the model has seen `x[b, :t+1]` and must predict `y[b, t]`, which is `x[b, t+1]`: the same
# token one column to the left. Colours follow the tokens, so the shift shows as colours moving
# one step left from the left grid to the right one.


# %%
def draw_grid(ax, grid, offset, decode, title):
    """One (B, T) grid of decoded tokens; colour k marks the token at start + k in the stream."""
    B, T = grid.shape
    for b in range(B):
        for t in range(T):
            label = decode([grid[b, t].item()]).replace("<|endoftext|>", "EOT")
            label = label.replace(" ", "·").replace("\n", "\\n")
            label = label if len(label) <= 8 else label[:7] + "…"  # long tokens would overflow
            _ = ax.add_patch(
                plt.Rectangle((t, B - 1 - b), 1, 1, color=plt.cm.Pastel1(t + offset), ec="white")
            )
            _ = ax.text(t + 0.5, B - 0.5 - b, label, ha="center", va="center", fontsize=6.5)
    _ = ax.set(
        xlim=(0, T),
        ylim=(0, B),
        title=title,
        xlabel="position t ('·' = space, EOT = <|endoftext|>)",
    )
    _ = ax.set_xticks(np.arange(T) + 0.5, range(T))
    _ = ax.set_yticks(np.arange(B) + 0.5, [f"b = {b}" for b in reversed(range(B))])


# %% tags=["hide-input"] jupyter={"source_hidden": true}
fig, axes = plt.subplots(1, 2, figsize=(15, 3.2), gridspec_kw={"wspace": 0.25})
draw_grid(axes[0], x, 0, tok.decode, "x: what the model sees")
draw_grid(axes[1], y, 1, tok.decode, "y: what it must predict, y[b, t] = x[b, t + 1]")
_ = axes[0].set_ylabel("row b of the batch")
colours = plt.matplotlib.colors.ListedColormap([plt.cm.Pastel1(k) for k in range(9)])
bar = fig.colorbar(
    plt.cm.ScalarMappable(plt.Normalize(-0.5, 8.5), colours), ax=axes, ticks=range(9)
)
_ = bar.set_label("k: the token at start + k\nin the stream")
plt.show()
plt.close(fig)

# %% [markdown]
# Same seed, same order; another seed, another order; and the order does not depend on how many
# worker processes load the batches.
#
# One practical point about workers. On macOS and Windows, Python starts worker processes with
# *spawn*: a fresh interpreter that re-imports the dataset's class by its module and name. A class
# defined in a notebook lives in the notebook's `__main__`, which the new process cannot import,
# so the workers die with `Can't get attribute 'SlidingWindowDataset' on <module '__main__'>`.
# (Linux has long used *fork*, which copies the running notebook, so there it happens to work;
# from Python 3.14 Linux defaults to *forkserver*, which behaves like spawn here.) The cure is to
# define datasets in a module, one more reason the book exports its code: below we call the same
# `create_dataloader`, imported from `llmbook.data`, so that it works everywhere.

# %%
import llmbook.data


def first_batches(seed, num_workers=0, n=3):
    loader = llmbook.data.create_dataloader(
        ids[:20_000], context_length=32, batch_size=8, seed=seed, num_workers=num_workers
    )
    return [x for x, _ in list(loader)[:n]]


a, b, c, d = first_batches(1), first_batches(1), first_batches(2), first_batches(1, num_workers=2)
print("same seed:", all(torch.equal(p, q) for p, q in zip(a, b)))
print("other seed:", all(torch.equal(p, q) for p, q in zip(a, c)))
print("two workers:", all(torch.equal(p, q) for p, q in zip(a, d)))
assert all(torch.equal(p, q) for p, q in zip(a, b)) and all(torch.equal(p, q) for p, q in zip(a, d))
assert not all(torch.equal(p, q) for p, q in zip(a, c))

# %% [markdown]
# `drop_last` in numbers: 20,000 tokens make 624 regular windows of 32 plus a tail window, 625;
# in batches of 8 that is 78 full batches and one of 1. `drop_last=True` drops that last batch,
# so the 625th window is not seen in this epoch (with shuffling, a different one each epoch).

# %%
for drop_last in (True, False):
    loader = create_dataloader(
        ids[:20_000], context_length=32, batch_size=8, shuffle=False, drop_last=drop_last
    )
    sizes, ds = [len(x) for x, _ in loader], loader.dataset
    print(
        f"drop_last={drop_last}: {ds.n_regular} regular + {len(ds) - ds.n_regular} tail = "
        f"{len(ds)} windows, {len(loader)} batches, last batch {sizes[-1]}"
    )

# %% [markdown]
# Bad arguments fail at the boundary with a message that says what to change. Ids that are not
# integers are refused rather than truncated (`1.5` would otherwise become token 1):

# %% tags=["raises-exception"]
SlidingWindowDataset([1.5, 2.7, 3.9, 4.2], context_length=2)

# %% tags=["raises-exception"]
SlidingWindowDataset(ids[:100], context_length=0)

# %% tags=["raises-exception"]
create_dataloader("Once upon a time.", tok, context_length=32)

# %% [markdown]
# ## 8. Random batches
#
# Sliding windows with a shuffled `DataLoader` visit every window once per epoch. Large-scale
# training loops (nanoGPT's `get_batch`) do something simpler: at every step, draw `batch_size`
# start positions uniformly at random and cut a window of `T + 1` tokens at each. No dataset,
# no epochs, no index; the price is that in a given number of steps some windows are drawn twice
# and others not at all. `random_batch` does this for ids in memory and, unchanged, for a token
# file on disk (section 9); chapter 08 trains with it.


# %%
#| export
def random_batch(
    data: Sequence[int] | torch.Tensor | np.ndarray | TokenFile,
    batch_size: int,
    context_length: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows at uniformly random starts: ``(x, y)``, LongTensors of shape ``(B, T)``.

    ``data``: token ids in memory (a list, or faster, a 1-D tensor or array) or a ``TokenFile``
    (read lazily). Starts are drawn with ``torch.randint(..., generator=generator)``, so a seeded
    generator gives the same batch from ids in memory and from the same ids in a file. ``y`` is
    ``x`` shifted by one token. ``device``: where to put ``x`` and ``y`` (default: the CPU).
    """
    ids = check_token_ids(
        data.ids if isinstance(data, TokenFile) else data, "data", check_values=False
    )
    B, T = check_int(batch_size, "batch_size"), check_int(context_length, "context_length")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if len(ids) < T + 1:
        raise ValueError(f"data holds {len(ids)} tokens, fewer than context_length + 1 = {T + 1}")
    ### BEGIN SOLUTION
    # TASK: B random starts (torch.randint, generator), (B, T + 1) windows, x, y on device
    starts = torch.randint(0, len(ids) - T, (B,), generator=generator)  # (B,)
    if isinstance(ids, torch.Tensor):
        batch = ids[starts[:, None] + torch.arange(T + 1)]  # (B, T + 1)
    else:
        batch = torch.from_numpy(
            np.stack([ids[s : s + T + 1] for s in starts.tolist()]).astype(np.int64)
        )
    x, y = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()  # (B, T) each
    return (x, y) if device is None else (x.to(device), y.to(device))
    ### END SOLUTION


# %%
ids_t = torch.tensor(ids)
x, y = random_batch(
    ids_t, batch_size=4, context_length=12, generator=torch.Generator().manual_seed(42)
)
print(tuple(x.shape), tuple(y.shape), x.dtype)
print(x[0].tolist(), "->", y[0].tolist())
again, _ = random_batch(ids_t, 4, 12, generator=torch.Generator().manual_seed(42))
assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x, again)
all_windows = ids_t.unfold(0, 13, 1)  # (N - 12, 13): every window of 12 + 1 tokens
rows = torch.cat([x, y[:, -1:]], dim=1)  # (4, 13)
assert all((all_windows == row).all(dim=1).any() for row in rows)  # each row is a true window

# %% [markdown]
# ## 9. Corpora larger than memory: a memory-mapped token file
#
# Our corpus is 1.1 MB; real pre-training corpora are terabytes. The standard recipe
# (nanoGPT's `train.bin`, for example) is to tokenize once, write the ids to a flat binary file
# in the smallest unsigned integer type that holds the vocabulary, and memory-map it: the
# operating system reads only the pages a batch touches, so a file far larger than memory works.
#
# - The book's 2,048 ids and GPT-2's 50,257 fit in `uint16` (at most 65,535): 2 bytes per token
#   instead of the 8 of a PyTorch `long`.
# - Llama 3's 128,256 ids do not; they need `uint32` (4 bytes).
#
# The smallest version is two NumPy calls, and `random_batch` takes the memory map as it is:

# %%
workdir = tempfile.TemporaryDirectory()
raw_path = Path(workdir.name) / "stories.bin"
np.array(ids, dtype=np.uint16).tofile(raw_path)  # 2 bytes per id, no header
mapped = np.memmap(raw_path, dtype=np.uint16, mode="r")  # nothing is read yet
print(
    f"{len(mapped):,} ids, {raw_path.stat().st_size:,} bytes on disk (as int64 in memory: {len(ids) * 8:,})"
)
x_file, y_file = random_batch(mapped, 4, 12, generator=torch.Generator().manual_seed(42))
assert torch.equal(x_file, x) and torch.equal(y_file, y)  # same seed, same batch as from memory

# %% [markdown]
# A raw file has two weaknesses: the reader must be told the dtype (read `uint32` ids as `uint16`
# and every id is garbage), and nothing tells a file that was cut short, by a full disk or an
# interrupted copy, from a complete one. The library's token files (`llmbook/io/tokenfile.py`) put a
# 64-byte header in front of the ids: the dtype, the number of ids and a SHA-256 of the ids, so
# `read_token_file` knows the dtype, refuses a file whose size disagrees with its count, and
# checks the data. `write_token_file` chooses the dtype from the largest id and writes atomically
# (a temporary file, then a rename), so a crash never leaves half a file under the real name.
# A `TokenFile` goes wherever ids go: into `random_batch` and `SlidingWindowDataset`.

# %%
from llmbook.io.tokenfile import token_dtype

print(
    "book tokenizer, largest id 2047:",
    token_dtype(2047),
    "  Llama 3, largest id 128255:",
    token_dtype(128255),
)
path = write_token_file(Path(workdir.name) / "stories.tok", ids)
tokens = read_token_file(path)
print(
    f"{len(tokens):,} ids of {tokens.dtype.name} in {path.stat().st_size:,} bytes (64 of them the header)"
)
assert path.stat().st_size == 64 + 2 * len(ids) and np.array_equal(tokens[:], ids)
x_tok, _ = random_batch(tokens, 4, 12, generator=torch.Generator().manual_seed(42))
lazy = SlidingWindowDataset(tokens, context_length=64)
print(
    "random_batch agrees:",
    torch.equal(x_tok, x),
    "  windows agree:",
    torch.equal(lazy[5][1], SlidingWindowDataset(ids, 64)[5][1]),
)
assert torch.equal(x_tok, x) and torch.equal(lazy[5][1], SlidingWindowDataset(ids, 64)[5][1])

# %% [markdown]
# ## 10. From notebook to library
#
# The teaching cells above call a few hand-written helpers whose details would have buried the
# ideas; here is what they do.
#
# **Token files** (`llmbook/io/tokenfile.py`). The layout, little-endian throughout:
#
# | bytes | holds |
# |---|---|
# | 0-7 | `LLMBTOK2`, the format's magic and version |
# | 8-15 | dtype name in ASCII (`uint8`, `uint16` or `uint32`), padded with zero bytes |
# | 16-23 | number of ids, uint64 |
# | 24-55 | SHA-256 of the id bytes |
# | 56-63 | reserved (zeros; the ids start 64-byte aligned) |
# | 64- | the ids |
#
# Opening a file always compares its size with the count (cheap, whatever the size), so a file cut
# short or appended to is refused with an error naming it; the checksum is verified on open for
# files of up to 256 MiB of ids and on request (`verify=True`) for larger ones, whose every page
# would otherwise be read at each open. A header naming an unknown dtype, a damaged (non-ASCII)
# header, a big-endian or floating dtype are errors too. Here a copy loses its last 100 bytes
# (the message names the file; we print it with the temporary folder left out):

# %%
from llmbook.io.tokenfile import VERIFY_LIMIT

assert VERIFY_LIMIT == 256 * 2**20  # bytes of ids: checksummed on every open up to this size
cut = Path(workdir.name) / "cut.tok"
_ = cut.write_bytes(path.read_bytes()[:-100])
try:
    read_token_file(cut)
    raise AssertionError("a file cut short must be refused")
except ValueError as error:
    print("ValueError:", str(error).replace(str(cut), "cut.tok"))

# %% [markdown]
# **Tokenizing a file larger than memory.** `tokenize_file(text_path, tokenizer, token_path)`
# reads the text a chunk at a time (2**20 characters by default) with a progress bar, encodes it
# and appends the ids to a token file, so memory stays bounded. It cuts the text only where the
# cut cannot change the ids: after a `<|endoftext|>`, or after a line break between two visible
# characters. The GPT-4 pattern, which the book's tokenizer uses, does join such a line break to
# the punctuation before it (`".\n"` is one chunk, and one token, as the cell below shows); the cut
# is safe because neither it nor GPT-2's pattern ever joins the line break to the character after
# it. So the file holds exactly the ids of encoding the whole text at once. Each `<|endoftext|>`
# becomes its special id; other special-token text is encoded as ordinary text. Tokenizers with
# an `encode_iterable` method are given the text that way, others piece by piece.

# %%
print([tok.decode([i]) for i in tok.encode("The end.\nOnce")])
assert tok.encode("The end.\n") + tok.encode("Once") == tok.encode("The end.\nOnce")
assert len(tok.encode(".\n")) == 1

# %%
text_path = Path(workdir.name) / "stories.txt"
text_path.write_text(text, encoding="utf-8")
streamed = tokenize_file(text_path, tok, Path(workdir.name) / "streamed.tok", chunk_chars=50_000)
print(f"{len(streamed):,} ids; identical to encode_text: {np.array_equal(streamed[:], ids)}")
assert np.array_equal(streamed[:], ids)
workdir.cleanup()

# %% [markdown]
# **Downloads** (`llmbook/io/download.py`). `load_corpus("tinyshakespeare")` and
# `load_corpus("tinystories")` download their file once into a cache folder (`~/.cache/llmbook`,
# or `$LLMBOOK_CACHE`, or the `cache_dir` argument). The bytes go to a temporary file, hashed on
# the way, and are renamed into place only when the SHA-256 equals the value pinned in the code.
# The transfer is bounded three ways: a timeout for each read (a silent server), an overall
# deadline (a server that drips a byte at a time, each within the timeout), and the file's known
# size (a server that sends too much is cut off). A failure leaves no file behind. The tests check
# each case against a local web server, never the internet.

# %%
for name, source in REMOTE_CORPORA.items():
    print(
        f"{name:16s} {source.size:>11,} bytes  sha256 {source.sha256[:16]}...  {source.description}"
    )

# %% [markdown]
# ## Summary
#
# - Language modelling is next-token prediction. A window of `context_length` tokens gives
#   `context_length` tasks at once: targets are the inputs shifted left by one (teacher forcing).
# - Sliding windows cut a token stream into samples; the stride trades the number of samples
#   against repetition (stride < context length) or lost text (stride > context length).
#   The first token of the stream is never a target (nothing comes before it to predict it
#   from). The last partial window is dropped, padded, or shifted back; `SlidingWindowDataset`
#   shifts it back, so with `stride <= context_length` every token after the first is a target
#   at least once per epoch: with stride = context length, once, except the few that the shifted-back
#   tail window covers a second time.
# - Documents are joined in one stream with `<|endoftext|>` (id 2,047 in the book's tokenizer)
#   between them.
# - A `DataLoader` batches windows into `(B, T)` tensors; a seeded generator makes shuffling
#   reproducible; `drop_last` keeps shapes equal; workers load in the background.
# - Hold out a validation split at a document boundary.
# - `random_batch` draws windows at random starts, from ids in memory or from a token file.
# - Big corpora are tokenized once (`tokenize_file`) into a `uint16`/`uint32` file whose header
#   holds the dtype, the count and a checksum, memory-mapped, and sampled at random positions.
#
# ## Exercises
#
# 1. **Pad the last window.** Write a dataset that, instead of shifting the last partial window
#    back, pads it on the right and marks padded targets with `-100`. Check that
#    `torch.nn.functional.cross_entropy(..., ignore_index=-100)` ignores them.
# 2. **One document per window.** Build windows that never cross `<|endoftext|>` (each story cut
#    into its own windows, the last one padded). How many windows and how many padded positions
#    does that give for the stories corpus with `context_length=128`, compared with packing?
# 3. **Random windows in a `DataLoader`.** Write an `IterableDataset` that yields random windows
#    from a `TokenFile` (with `random_batch`), with a different but reproducible stream for each
#    worker (`torch.utils.data.get_worker_info()`). Check that two workers do not produce the same
#    windows.
# 4. **Variety grows slowly.** Compute `distinct_trigram_ratio` and `vocabulary` for the first
#    10,000, 100,000 and 1,000,000 characters of the stories corpus and plot them. Why does the
#    ratio fall as the text grows, and why is it a poor measure for comparing corpora of
#    different sizes?
