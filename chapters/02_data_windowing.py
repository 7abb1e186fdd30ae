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
# # Chapter 02: Data windowing
#
# A language model is trained on one task only: **given the tokens so far, predict the next
# one**. This chapter turns a long text into exactly that task, as batches of input/target
# windows that PyTorch can feed to a model.
#
# **What you will build** (exported to `llmbook.data`):
#
# - `load_corpus(name)`: the book's own corpus of children's stories, shipped inside the package
#   and loaded offline in a few milliseconds, and two real public corpora (Tiny Shakespeare and a
#   TinyStories sample) downloaded on request into a cache folder and verified by SHA-256;
# - `corpus_statistics(text)`: size, vocabulary, distinct word 3-grams and gzip ratio of a text;
# - `SlidingWindowDataset(ids, context_length, stride)`: input/target windows shifted by one token;
# - `create_dataloader(...)`: from a text and a tokenizer (or from ids) to shuffled batches;
# - `train_val_split(...)`: a split that does not cut a story in half;
# - `write_token_file`, `TokenFile`, `read_token_file`: token ids in a compact binary file,
#   memory-mapped, with random window sampling, for corpora larger than memory.
#
# We tokenize with GPT-2's tokenizer through `tiktoken` (50,257 ids); any object with
# `encode(text) -> list[int]` and `decode(ids) -> str`, such as chapter 01's `BPETokenizer`, works too.

# %%
#| default_exp data

# %%
import time

import matplotlib.pyplot as plt
import tiktoken
import torch

import llmbook.stories

torch.manual_seed(0)
tokenizer = tiktoken.get_encoding("gpt2")
print(tokenizer.n_vocab, tokenizer.eot_token)

# %% [markdown]
# ## 1. A corpus that is there on every machine
#
# To train anything we need text. Downloading it on every run is fragile (no internet on the
# train, a moved file, a changed file), so the book ships its own: about a megabyte of short,
# simple stories in the spirit of TinyStories (Eldan and Li, 2023), written by a seeded
# probabilistic grammar in `llmbook/stories.py`. The generator picks a hero (a child or an
# animal), a friend, a grown-up, a place and a beloved object from a hand-written lexicon, then
# one of ten plots (a lost toy, a kite stuck in a tree, a broken toy, a sad friend, a fear, a
# quarrel about sharing, an animal in trouble, making something, learning a skill, getting lost),
# and tells it in sentences drawn from weighted alternatives. The result is stored gzip-compressed
# inside the package, so loading it is a file read and a decompression.
#
# The corpus files are produced by `python tools/make_stories.py`; a test regenerates them and
# checks that the bytes are identical, so the corpus is the same on every machine and forever.
#
# Real corpora come on request: `load_corpus("tinyshakespeare")` and `load_corpus("tinystories")`
# download once into a cache folder (`~/.cache/llmbook`, or `$LLMBOOK_CACHE`, or the `cache_dir`
# argument), check the file's SHA-256 against the value written in the code, and only then move
# it into place. A broken or tampered download raises a clear error and leaves nothing behind.

# %%
#| export
import gzip
import hashlib
import http.client
import inspect
import os
import re
import tempfile
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from llmbook.checks import check_int
from llmbook.stories import CORPUS_FILE, SEPARATOR


@dataclass(frozen=True)
class RemoteCorpus:
    """A public text file we may download: where from, its SHA-256, its size in bytes."""

    url: str
    sha256: str
    filename: str
    size: int
    description: str


# Checksums found pinned in several independent projects (for Tiny Shakespeare, TensorFlow
# Datasets' url_checksums; for TinyStories-valid.txt, projects that pin the Hugging Face file).
REMOTE_CORPORA: dict[str, RemoteCorpus] = {
    "tinyshakespeare": RemoteCorpus(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        filename="tinyshakespeare.txt",
        size=1_115_394,
        description="Tiny Shakespeare (Karpathy's char-rnn), 1.1 MB of plays",
    ),
    "tinystories": RemoteCorpus(
        url="https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt",
        sha256="94e431816c4cce81ff71e4408ff8d3bda9a42e8d2663986697c3954288cb38b4",
        filename="TinyStories-valid.txt",
        size=19_447_282,
        description="the TinyStories validation file, 21,990 stories separated by <|endoftext|>, 19 MB",
    ),
}


def default_cache_dir() -> Path:
    """Where downloaded corpora live: ``$LLMBOOK_CACHE`` if set, else ``~/.cache/llmbook``."""
    env = os.environ.get("LLMBOOK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llmbook"


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, path: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``path``, keeping it only if its SHA-256 equals ``sha256``.

    The bytes go to a temporary file in the same folder, are hashed on the way, and the file is
    renamed to ``path`` only after the checksum matched, so ``path`` never holds a partial or
    corrupt file. Raises ``ConnectionError`` when the server cannot be reached or answers with an
    error, and ``ValueError`` on a checksum mismatch (the temporary file is deleted in both cases).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                raise ConnectionError(
                    f"could not download {url}: {error}. Check the network connection, "
                    f"or download the file by hand and save it as {path}"
                ) from error
        got = digest.hexdigest()
        if got != sha256.lower():
            raise ValueError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256}, got {got}; "
                "the download was discarded (the file on the server changed, or the transfer "
                "was corrupted)"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_corpus(
    name: str = "stories", cache_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> str:
    """Return a corpus as one string.

    ``"stories"``: the book's generated children's stories, shipped in the package (offline,
    about 1.1 MB, each story followed by a line ``<|endoftext|>``). ``"tinyshakespeare"`` and
    ``"tinystories"``: downloaded on first use into ``cache_dir`` (default
    ``default_cache_dir()``) and verified by SHA-256, then read from there.
    With ``download_missing=False`` a missing file raises ``FileNotFoundError`` instead.
    """
    if name == "stories":
        return gzip.decompress(CORPUS_FILE.read_bytes()).decode("utf-8")
    if name not in REMOTE_CORPORA:
        known = ", ".join(["stories", *sorted(REMOTE_CORPORA)])
        raise ValueError(f"unknown corpus name {name!r}; available: {known}")
    source = REMOTE_CORPORA[name]
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / source.filename
    if not path.exists():
        if not download_missing:
            raise FileNotFoundError(
                f"{path} does not exist; call load_corpus({name!r}) with download_missing=True "
                f"or save {source.url} there yourself"
            )
        download(source.url, path, source.sha256)
    elif sha256_file(path) != source.sha256:
        raise ValueError(
            f"{path} does not have the expected SHA-256 {source.sha256}; delete it and load again"
        )
    return path.read_text(encoding="utf-8")


def corpus_statistics(text: str) -> dict[str, float]:
    """Size and variety of a text.

    Words are runs of letters and apostrophes, lower-cased; ``<|endoftext|>`` separators are not
    words. Returns ``n_bytes`` (UTF-8), ``n_chars``, ``n_documents`` (separator-delimited, 1 if
    none), ``n_words``, ``vocabulary`` (distinct words), ``n_trigrams`` and ``distinct_trigrams``
    (word 3-grams), ``distinct_trigram_ratio`` and ``gzip_ratio`` (bytes / gzip level-9 bytes:
    the more repetitive a text, the higher).
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

# %% [markdown]
# Loading the stories takes milliseconds (the assert allows a slow laptop a generous margin):

# %%
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
text = load_corpus("stories")
seconds = time.perf_counter() - start
print(f"loaded {len(text):,} characters in {seconds * 1000:.0f} ms")
assert seconds < 1.0

# %% [markdown]
# Here is the first story, and the statistics of the whole corpus. Two numbers say how repetitive
# a text is. The share of word 3-grams ("she loved to", "loved to sing") that are distinct: a text
# made from one template repeated would have almost none. And the gzip ratio (bytes before and
# after compression): the more a text repeats itself, the better gzip does; ordinary English prose
# typically compresses two and a half to three and a half times.

# %%
print(text[: text.index("<|endoftext|>") + len("<|endoftext|>")])

# %%
stats = corpus_statistics(text)
for key, value in stats.items():
    print(f"{key:24s} {value:>12,.3f}" if isinstance(value, float) else f"{key:24s} {value:>12,}")
assert stats["n_bytes"] >= 1_000_000
assert stats["distinct_trigram_ratio"] > 0.2 and stats["vocabulary"] > 1000

# %% [markdown]
# About 55,000 distinct 3-grams and some 1,300 words: a small world, deliberately. The stories
# are more repetitive than human writing (their gzip ratio is higher), which is what makes them
# learnable by a small model on a laptop CPU in minutes, the job they have in chapter 08.

# %% [markdown]
# The generator also knows how likely each story was: every random choice it made (which
# hero, which plot, which of the alternative sentences, which word in a slot) has a probability,
# and their product is the probability of the story's derivation. `llmbook.stories` adds up the
# logarithms while it writes. Minus the total, divided by the number of characters, estimates the
# entropy rate of the source in nats per character: how much genuine surprise each character
# carries. Strictly it is an upper bound on the entropy of the *text*, because two different
# sequences of choices could in principle write the same words (the module's docstring says why
# we expect the bound to be tight). No model can do better on average than the true entropy, so
# this figure, divided by the number of GPT-2 tokens instead, is close to the floor for chapter
# 08's training loss in nats per token. The floor a real model meets is somewhat higher still: a
# model that reads windows of `context_length` tokens cannot see choices made before its window
# began (the hero's name, picked at the start of a story, when the window starts mid-story) and
# has to guess them again.

# %%
meta = llmbook.stories.read_meta()
ids = tokenizer.encode(text, allowed_special={"<|endoftext|>"})
print(f"stories: {meta['n_stories']:,}   tokens (GPT-2): {len(ids):,}   characters per token: {len(text) / len(ids):.2f}")
print(f"entropy of the generator: {meta['nats_per_char']:.3f} nats/char, {meta['nats_per_word']:.3f} nats/word, "
      f"{-meta['total_logprob'] / len(ids):.3f} nats/token")
print(f"an untrained model over 50,257 ids: ln(50257) = {np.log(50257):.3f} nats/token")
assert meta["n_chars"] == len(text) and meta["n_stories"] == stats["n_documents"]
assert -meta["total_logprob"] / len(ids) < 0.5 < np.log(50257)

# %% [markdown]
# Well under half a nat per token, against almost eleven for a model that guesses uniformly: most
# of what these stories say is predictable from what came before. That is the point of a corpus
# for a laptop, and also its limit; a model trained on it learns this small world, not English.

# %% [markdown]
# ## 2. Next-token prediction: inputs and targets shifted by one
#
# Take a run of token ids $x_1, x_2, \dots, x_{T+1}$. The model reads $x_1 \dots x_T$ and, at
# every position $t$, predicts the token that comes next, $x_{t+1}$. So one window of
# `context_length` $= T$ tokens holds $T$ prediction tasks at once, and its targets are simply the
# inputs shifted left by one:
#
#     inputs  = ids[i     : i + T]
#     targets = ids[i + 1 : i + T + 1]
#
# During training the model always sees the *true* previous tokens, never its own guesses; this
# is called *teacher forcing*, and it is what lets all $T$ positions be trained in parallel
# (chapter 04's causal mask makes sure position $t$ cannot peek at $x_{t+1}$).

# %%
sentence = "Once upon a time, there was a little girl named Lily."
window = tokenizer.encode(sentence)[:11]
inputs, targets = window[:-1], window[1:]
print("inputs: ", inputs)
print("targets:", targets)
assert inputs[1:] == targets[:-1]

# %%
print(f"{'what the model sees':>45s} | what it must predict")
for t in range(1, len(window)):
    print(f"{tokenizer.decode(window[:t])!r:>45} | {tokenizer.decode([window[t]])!r}")

# %% [markdown]
# ## 3. Sliding windows over a long stream of tokens
#
# A corpus is one long stream of ids. We cut it into windows of `context_length` tokens (plus
# the one extra token the targets need). The **stride** is how far the next window starts after
# the previous one:
#
# - `stride == context_length`: windows touch end to end; every token is a target exactly once
#   per epoch. This is the usual choice for pre-training.
# - `stride < context_length`: windows overlap; the same tokens are seen several times per epoch
#   (more samples, but more repetition, so a higher risk of over-fitting a small corpus).
# - `stride > context_length`: windows leave gaps; some tokens are never trained on.
#
# A window that would run past the end of the stream (the **last partial window**) has three
# honest treatments: drop it (the tail tokens are never targets), pad it (and tell the loss to
# ignore the padded targets; exercise 1), or shift it back so that it ends exactly at the last
# token (it overlaps its neighbour a little more). `SlidingWindowDataset` shifts it back by
# default (`cover_tail=True`), so that with `stride <= context_length` every token after the first
# is a target at least once; `cover_tail=False` drops it.

# %%
#| export
def _as_id_array(ids: object) -> torch.Tensor | np.ndarray:
    """A 1-D integer sequence as a LongTensor, or a NumPy array (memory maps stay lazy)."""
    if isinstance(ids, np.ndarray):
        array = ids
    elif isinstance(ids, torch.Tensor):
        array = ids.detach().cpu()
    elif isinstance(ids, (list, tuple, range)):
        array = torch.tensor(list(ids), dtype=torch.long) if len(ids) else torch.empty(0, dtype=torch.long)
    else:
        raise TypeError(
            f"ids must be a list of ints, a 1-D tensor or a 1-D NumPy array, got {type(ids).__name__}"
        )
    if array.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {tuple(array.shape)}")
    is_int = (
        np.issubdtype(array.dtype, np.integer)
        if isinstance(array, np.ndarray)
        else not (array.dtype.is_floating_point or array.dtype.is_complex or array.dtype == torch.bool)
    )
    if not is_int:
        raise TypeError(f"ids must hold integers, got dtype {array.dtype}")
    if isinstance(array, torch.Tensor) and array.dtype != torch.long:
        array = array.long()
    return array


class SlidingWindowDataset(Dataset):
    """Input/target windows over a stream of token ids, targets shifted by one.

    Item ``i`` is ``(inputs, targets)``, two LongTensors of shape ``(T,)`` with
    ``T = context_length``: ``inputs = ids[s : s + T]`` and ``targets = ids[s + 1 : s + T + 1]``,
    where window ``i`` starts at ``s = i * stride``. Windows start while they fit
    (``s + T + 1 <= len(ids)``); with ``cover_tail=True`` one more window, ending at the last
    token, is added when the regular ones leave tokens uncovered, so with
    ``stride <= context_length`` every token but the first is a target at least once.

    ``ids`` may be a list, a 1-D tensor or a 1-D NumPy array; a NumPy memory map is read lazily,
    one window at a time. ``stride`` defaults to ``context_length`` (no overlap).
    """

    def __init__(
        self,
        ids: Sequence[int] | torch.Tensor | np.ndarray,
        context_length: int,
        stride: int | None = None,
        cover_tail: bool = True,
    ) -> None:
        self.context_length = check_int(context_length, "context_length")
        self.stride = self.context_length if stride is None else check_int(stride, "stride")
        self.ids = _as_id_array(ids)
        n = len(self.ids)
        if n < self.context_length + 1:
            raise ValueError(
                f"ids too short for one window: {n} tokens, but context_length={self.context_length} "
                f"needs at least {self.context_length + 1} (inputs plus the one-token shift); "
                "use a longer text or a smaller context_length"
            )
        self.last_start = n - self.context_length - 1
        self.n_regular = self.last_start // self.stride + 1
        has_gap = (self.n_regular - 1) * self.stride != self.last_start
        self.n_windows = self.n_regular + int(cover_tail and has_gap)

    def __len__(self) -> int:
        return self.n_windows

    def start(self, index: int) -> int:
        """Position in ``ids`` where window ``index`` begins (negative indices count from the end)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self.n_windows
        if not 0 <= index < self.n_windows:
            raise IndexError(f"window index out of range for {self.n_windows} windows")
        return index * self.stride if index < self.n_regular else self.last_start

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.start(index)
        chunk = self.ids[s : s + self.context_length + 1]
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(chunk.astype(np.int64))
        return chunk[:-1], chunk[1:]

# %% [markdown]
# A toy stream of 23 "tokens" (the numbers 0 to 22 make the shift easy to see), windows of 8:

# %%
toy = list(range(23))
for stride in (8, 4):
    ds = SlidingWindowDataset(toy, context_length=8, stride=stride)
    print(f"stride {stride}: {len(ds)} windows starting at {[ds.start(i) for i in range(len(ds))]}")
x, y = SlidingWindowDataset(toy, context_length=8, stride=4)[1]
print("window 1 inputs: ", x.tolist())
print("window 1 targets:", y.tolist())
print("without the tail window:", len(SlidingWindowDataset(toy, 8, 8, cover_tail=False)), "windows")

# %% [markdown]
# With stride 8 the regular windows start at 0 and 8; their targets reach position 16, which
# leaves tokens 17 to 22 unused. The tail window starts at 23 - 8 - 1 = 14 and covers them.
# The picture shows the windows of stride 4 over the stream: each row is one window, the filled
# cells are its inputs and the outlined cell is the extra target at its end.

# %%
fig, ax = plt.subplots(figsize=(9, 2.6))
ds = SlidingWindowDataset(toy, context_length=8, stride=4)
for row in range(len(ds)):
    s = ds.start(row)
    y_pos = len(ds) - 1 - row
    _ = ax.barh(y_pos, 8, left=s, height=0.6, color=f"C{row}", alpha=0.6)
    _ = ax.barh(y_pos, 1, left=s + 8, height=0.6, fill=False, edgecolor=f"C{row}", hatch="//")
    label = f"window {row}" if row < ds.n_regular else f"window {row} (tail)"
    _ = ax.text(s - 0.3, y_pos, label, ha="right", va="center", fontsize=8)
_ = ax.set_xlim(-4, 24)
_ = ax.set_xticks(range(0, 24, 2))
_ = ax.set_yticks([])
_ = ax.set_xlabel("token position (context_length 8, stride 4; hatched: the last target)")
plt.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# Every target inside every window is the next token of its input, in every window:

# %%
stream = torch.tensor(ids[:5000])
ds = SlidingWindowDataset(stream, context_length=64, stride=48)
assert all(torch.equal(ds[i][0][1:], ds[i][1][:-1]) for i in range(len(ds)))
assert all(torch.equal(ds[i][1], stream[ds.start(i) + 1 : ds.start(i) + 65]) for i in range(len(ds)))
print(len(ds), "windows checked")

# %% [markdown]
# ### How the stride changes the number of samples and their overlap
#
# For a stream of $N$ tokens and windows of $T$, there are $\lfloor (N - T - 1)/s \rfloor + 1$
# regular windows for stride $s$. Each token is seen about $T/s$ times per epoch; consecutive
# windows share $\max(0, T - s)$ tokens. We measure it on the first 100,000 tokens of the stories,
# with the tail window left out so that gaps show:

# %%
stream = torch.tensor(ids[:100_000])
T = 256
print(f"{'stride':>6} {'windows':>8} {'overlap':>8} {'seen/token':>11} {'tokens never a target':>22}")
for stride in (32, 64, 128, 256, 384, 512):
    ds = SlidingWindowDataset(stream, T, stride, cover_tail=False)
    counts = torch.zeros(len(stream), dtype=torch.long)
    for i in range(len(ds)):
        counts[ds.start(i) + 1 : ds.start(i) + T + 1] += 1
    unseen = int((counts[1:] == 0).sum())
    overlap = max(0, T - stride) / T
    print(f"{stride:>6} {len(ds):>8} {overlap:>8.0%} {counts[1:].float().mean().item():>11.2f} {unseen:>22,}")
    assert len(ds) == (len(stream) - T - 1) // stride + 1

# %% [markdown]
# Halving the stride doubles the samples but not the information: with stride 32 each token is a
# target eight times per epoch. With a stride above the context length a third or half of the
# corpus is never trained on. Stride = context length is the sweet spot for pre-training; a smaller
# stride is a cheap form of data augmentation when text is scarce.
#
# ## 4. Document separators
#
# The corpus is many independent stories. We keep them in one stream and mark each end with the
# special token `<|endoftext|>`, which GPT-2's tokenizer maps to the single id 50256 (it must be
# allowed explicitly: by default tiktoken refuses special tokens found in text, so that user input
# cannot forge them). The model then learns two useful things: after 50256 a new story begins, and
# when a story is finished it should predict 50256, which chapter 09 uses to stop generating.

# %%
end = text.index("<|endoftext|>")
snippet = text[end - 30 : end + 40]
snippet_ids = tokenizer.encode(snippet, allowed_special={"<|endoftext|>"})
print(repr(snippet))
print(snippet_ids)
print([tokenizer.decode([i]) for i in snippet_ids])
assert snippet_ids.count(tokenizer.eot_token) == 1

# %% [markdown]
# Windows are cut without looking at the separators, so many windows hold the end of one story
# and the start of the next (a story is about 186 GPT-2 tokens long, so with 256 every window
# does). That is fine: the separator tells the model that what came before no longer matters,
# and attention learns to stop looking past it. (Some pipelines instead reset the
# attention mask at each separator, or pad each document to its own windows; exercise 2 counts what
# that costs.)

# %%
for T in (32, 64, 256):
    ds = SlidingWindowDataset(torch.tensor(ids), context_length=T)
    with_separator = sum(int((ds[i][0] == tokenizer.eot_token).any()) for i in range(len(ds)))
    print(f"context_length {T:>3}: {with_separator:>5} of {len(ds):>5} windows ({with_separator / len(ds):.0%}) span a story boundary")

# %% [markdown]
# ## 5. Train and validation split
#
# We hold out the last 10% of the corpus to measure how well a model does on text it has not
# trained on. Cutting at exactly 90% of the characters would split a story in two and leak its
# beginning into training; `train_val_split` moves the cut to the next document boundary.
# (Splitting tokens instead of text works the same way; for id sequences the cut is plain.)

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
    Raises ``ValueError`` if ``val_fraction`` is not strictly between 0 and 1 or a part is empty.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}")
    cut = int(len(data) * (1 - val_fraction))
    if isinstance(data, str) and separator and separator in data:

        def end_of_separator_line(found: int) -> int:
            end = found + len(separator)
            return end + 1 if data[end : end + 1] == "\n" else end

        found = data.find(separator, cut)
        if found == -1 or not data[end_of_separator_line(found) :].strip():
            found = data.rfind(separator, 0, cut)  # no document after the next boundary: go back
        if found == -1:
            raise ValueError(
                f"no document boundary ({separator!r}) leaves text on both sides of the split; "
                "the text holds a single document: split it yourself, or add documents"
            )
        cut = end_of_separator_line(found)
    train, val = data[:cut], data[cut:]
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"split leaves an empty part (train {len(train)}, val {len(val)} items); "
            "use more data or another val_fraction"
        )
    return train, val

# %%
train_text, val_text = train_val_split(text, val_fraction=0.1)
print(f"train: {len(train_text):,} characters, val: {len(val_text):,} characters ({len(val_text) / len(text):.1%})")
print("train ends:", repr(train_text[-30:]))
print("val starts:", repr(val_text[:40]))
assert train_text + val_text == text and train_text.endswith("<|endoftext|>\n")

# %% [markdown]
# ## 6. `Dataset` and `DataLoader`
#
# `SlidingWindowDataset` is a PyTorch `Dataset`: it has a length and returns item `i`. A
# `DataLoader` draws items, stacks `batch_size` of them into tensors of shape `(B, T)` and hands
# them out batch by batch. Its main options:
#
# - `shuffle=True` visits the windows in a new random order each epoch (consecutive windows are
#   neighbouring text; a model trained on them in order would see one story's worth of gradient at
#   a time). Pass a seeded `torch.Generator` and the order is reproducible.
# - `drop_last=True` drops a final smaller batch, so every batch has the same shape (helpful for
#   compiled models and for comparing losses). For validation, keep it (`drop_last=False`).
# - `num_workers` > 0 loads batches in background processes while the model computes; for
#   windows already in memory the work is tiny and 0 is fine.
#
# `create_dataloader` puts it together, from a text and a tokenizer or from ids.

# %%
#| export
def encode_text(tokenizer: object, text: str) -> list[int]:
    """Encode ``text`` with ``tokenizer``, letting ``<|endoftext|>`` through as a special token.

    Tokenizers whose ``encode`` takes ``allowed_special`` (tiktoken, chapter 01's
    ``BPETokenizer``) get ``allowed_special={"<|endoftext|>"}``; others get the text alone.
    """
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}")
    try:
        accepts = "allowed_special" in inspect.signature(tokenizer.encode).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        accepts = False
    if accepts and SEPARATOR in text:
        return list(tokenizer.encode(text, allowed_special={SEPARATOR}))
    return list(tokenizer.encode(text))


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
    Windows come from ``SlidingWindowDataset(ids, context_length, stride, cover_tail)``;
    ``stride`` defaults to ``context_length``. With ``seed`` the shuffling order is drawn from a
    ``torch.Generator`` seeded with it, so two loaders with the same seed give the same batches.
    """
    if isinstance(data, str):
        if tokenizer is None:
            raise TypeError("data is a text, so a tokenizer is needed: create_dataloader(text, tokenizer, ...)")
        ids = encode_text(tokenizer, data)
    else:
        ids = data
    batch_size = check_int(batch_size, "batch_size")
    check_int(num_workers, "num_workers", minimum=0)
    dataset = SlidingWindowDataset(ids, context_length, stride, cover_tail=cover_tail)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )

# %%
loader = create_dataloader(train_text[:20_000], tokenizer, context_length=16, batch_size=4, seed=123)
inputs, targets = next(iter(loader))
print("batches:", len(loader), " inputs:", tuple(inputs.shape), inputs.dtype, " targets:", tuple(targets.shape))
print(tokenizer.decode(inputs[0].tolist()))
print(tokenizer.decode(targets[0].tolist()))
assert torch.equal(inputs[:, 1:], targets[:, :-1])

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
# `drop_last` in numbers: 20,000 tokens make 624 windows of 32 (plus a tail window: 625);
# in batches of 8 that is 78 full batches and one of 1.

# %%
for drop_last in (True, False):
    loader = create_dataloader(ids[:20_000], context_length=32, batch_size=8, shuffle=False, drop_last=drop_last)
    print(f"drop_last={drop_last}: {len(loader.dataset)} windows, {len(loader)} batches, last batch {len(list(loader)[-1][0])}")

# %% [markdown]
# Bad arguments fail at the boundary with a message that says what to change:

# %% tags=["raises-exception"]
SlidingWindowDataset(ids[:100], context_length=0)

# %% tags=["raises-exception"]
create_dataloader("Once upon a time.", tokenizer, context_length=32)

# %% [markdown]
# ## 7. Corpora larger than memory: a memory-mapped token file
#
# Our corpus is 1.1 MB; real pre-training corpora are terabytes. The standard recipe
# (nanoGPT's `train.bin`, for example) is to tokenize once, write the ids to a flat binary file
# in the smallest unsigned integer type that holds the vocabulary, and memory-map it: the
# operating system pages in only the parts we read, so a file far larger than memory works.
#
# - GPT-2's 50,257 ids fit in `uint16` (at most 65,535): 2 bytes per token instead of the 8 of
#   a PyTorch `long`.
# - Llama-3's 128,256 ids do not; they need `uint32` (4 bytes).
#
# Our file starts with a 16-byte header (a magic string and the dtype name), so the reader knows
# the dtype without being told; `TokenFile(path, dtype=...)` also reads header-less files such as
# nanoGPT's. Training then samples windows at random positions instead of walking a dataset.

# %%
#| export
TOKEN_FILE_MAGIC = b"LLMBTOK1"
TOKEN_DTYPES = ("uint8", "uint16", "uint32")


def token_dtype(max_id: int) -> np.dtype:
    """The smallest of uint16 and uint32 that holds ids up to ``max_id``."""
    if max_id < 0:
        raise ValueError(f"token ids must be >= 0, got max id {max_id}")
    if max_id <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    if max_id <= np.iinfo(np.uint32).max:
        return np.dtype(np.uint32)
    raise ValueError(f"token id {max_id} does not fit in uint32")


def write_token_file(
    path: str | os.PathLike, ids: Sequence[int] | torch.Tensor | np.ndarray, dtype: str | np.dtype | None = None
) -> Path:
    """Write token ids to ``path``: a 16-byte header, then the ids as little-endian unsigned ints.

    ``dtype`` is ``"uint8"``, ``"uint16"`` or ``"uint32"``; by default the smallest of uint16 and
    uint32 that holds the largest id. Raises ``ValueError`` for negative ids or ids that do not
    fit the dtype. The file is written to a temporary name and renamed, so it is never half-written.
    """
    array = _as_id_array(ids)
    array = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    lo = int(array.min()) if array.size else 0
    hi = int(array.max()) if array.size else 0
    if lo < 0:
        raise ValueError(f"token ids must be >= 0, found {lo}")
    if dtype is None:
        dt = token_dtype(hi)
    else:
        dt = np.dtype(dtype)
        if dt.name not in TOKEN_DTYPES:
            raise ValueError(f"dtype must be one of {TOKEN_DTYPES}, got {dt.name}")
        if hi > np.iinfo(dt).max:
            raise ValueError(
                f"ids do not fit the file's dtype: max id {hi} > {np.iinfo(dt).max}, the largest "
                f"{dt.name}; use dtype='uint32' (or leave dtype=None to choose automatically)"
            )
    path = Path(path)
    header = TOKEN_FILE_MAGIC + dt.name.encode("ascii").ljust(8, b"\0")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(array.astype(dt.newbyteorder("<"), copy=False).tobytes())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


class TokenFile:
    """Token ids in a file, memory-mapped (read lazily by the operating system).

    ``TokenFile(path)`` reads a file written by ``write_token_file``; for a header-less file of
    raw ids (such as nanoGPT's ``train.bin``) pass its ``dtype``. ``len(f)`` is the number of
    tokens, ``f[i]`` / ``f[a:b]`` index the ids, ``f.ids`` is the NumPy memory map.
    """

    def __init__(self, path: str | os.PathLike, dtype: str | np.dtype | None = None) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            head = f.read(16)
        if head[:8] == TOKEN_FILE_MAGIC:
            name = head[8:16].rstrip(b"\0").decode("ascii")
            if name not in TOKEN_DTYPES:
                raise ValueError(f"{self.path}: unknown dtype {name!r} in header")
            if dtype is not None and np.dtype(dtype) != np.dtype(name):
                raise ValueError(
                    f"{self.path}: its header says {name}, but dtype={np.dtype(dtype).name} was given; "
                    "leave dtype=None for files written by write_token_file"
                )
            dt, offset = np.dtype(name), 16
        elif dtype is not None:
            dt, offset = np.dtype(dtype), 0
        else:
            raise ValueError(f"{self.path} has no token-file header; pass dtype= to read raw ids")
        self.dtype = dt.newbyteorder("<")
        n_bytes = self.path.stat().st_size - offset
        if n_bytes % self.dtype.itemsize:
            raise ValueError(f"{self.path}: {n_bytes} bytes of ids is not a multiple of {self.dtype.itemsize}")
        if n_bytes == 0:
            self.ids = np.empty(0, dtype=self.dtype)
        else:
            self.ids = np.memmap(self.path, dtype=self.dtype, mode="r", offset=offset)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        return self.ids[index]

    def random_windows(
        self,
        batch_size: int,
        context_length: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` windows at uniformly random starts: ``(inputs, targets)``, each ``(B, T)``.

        Starts are drawn with ``torch.randint(..., generator=generator)``, so a seeded generator
        gives the same batches every time. Targets are the inputs shifted by one token.
        """
        batch_size = check_int(batch_size, "batch_size")
        context_length = check_int(context_length, "context_length")
        if len(self) < context_length + 1:
            raise ValueError(
                f"{self.path} holds {len(self)} tokens, fewer than context_length + 1 = {context_length + 1}"
            )
        starts = torch.randint(0, len(self) - context_length, (batch_size,), generator=generator)
        rows = np.stack([self.ids[s : s + context_length + 1] for s in starts.tolist()])
        batch = torch.from_numpy(rows.astype(np.int64))  # (B, T + 1)
        inputs, targets = batch[:, :-1], batch[:, 1:]  # (B, T) each
        if device is not None:
            inputs, targets = inputs.to(device), targets.to(device)
        return inputs, targets

    def dataset(self, context_length: int, stride: int | None = None) -> SlidingWindowDataset:
        """A ``SlidingWindowDataset`` over the memory map (windows are read lazily)."""
        return SlidingWindowDataset(self.ids, context_length, stride)


def read_token_file(path: str | os.PathLike, dtype: str | np.dtype | None = None) -> TokenFile:
    """Open a token file as a memory-mapped ``TokenFile`` (see ``TokenFile``)."""
    return TokenFile(path, dtype)

# %%
print("GPT-2, largest id 50256:   ", token_dtype(50256))
print("Llama-3, largest id 128255:", token_dtype(128255))

workdir = tempfile.TemporaryDirectory()
path = Path(workdir.name) / "stories.tok"
write_token_file(path, ids)
tokens = read_token_file(path)
print(f"{len(tokens):,} tokens, dtype {tokens.dtype}, {path.stat().st_size:,} bytes on disk "
      f"(as int64 in memory: {len(ids) * 8:,} bytes)")
assert tokens.dtype == np.dtype("<u2") and path.stat().st_size == 16 + 2 * len(ids)
assert np.array_equal(tokens[:1000], ids[:1000]) and int(tokens[-1]) == ids[-1]

# %% [markdown]
# Random windows from the file, reproducible with a seeded generator:

# %%
generator = torch.Generator().manual_seed(42)
x, y = tokens.random_windows(batch_size=4, context_length=12, generator=generator)
print(tuple(x.shape), tuple(y.shape), x.dtype)
print(x[0].tolist())
print(y[0].tolist())
again = tokens.random_windows(4, 12, generator=torch.Generator().manual_seed(42))
assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x, again[0])

# %% [markdown]
# Random sampling and sliding windows are two ways to walk the same data. Sliding windows with
# a shuffled `DataLoader` visit every window once per epoch; random starts are simpler, need no
# index, and are what large-scale training loops (nanoGPT's `get_batch`) do, at the price of
# visiting some windows twice and others not at all in a given number of steps. A token file
# also gives a lazily-read `SlidingWindowDataset`:

# %%
lazy = tokens.dataset(context_length=64)
print(len(lazy), "windows;", torch.equal(lazy[5][0], SlidingWindowDataset(ids, 64)[5][0]))

# %% [markdown]
# A dtype that is too small is an error, not a silent wrap-around (70,000 would be stored as 4,464):

# %% tags=["raises-exception"]
write_token_file(Path(workdir.name) / "big.tok", [1, 2, 70_000], dtype="uint16")

# %%
workdir.cleanup()

# %% [markdown]
# ## Summary
#
# - Language modelling is next-token prediction. A window of `context_length` tokens gives
#   `context_length` tasks at once: targets are the inputs shifted left by one (teacher forcing).
# - Sliding windows cut a token stream into samples; the stride trades the number of samples
#   against repetition (stride < context length) or lost text (stride > context length). The last
#   partial window is dropped, padded, or shifted back; `SlidingWindowDataset` shifts it back so
#   that every token is a target when `stride <= context_length`.
# - Documents are joined in one stream with `<|endoftext|>` (GPT-2 id 50256) between them.
# - A `DataLoader` batches windows into `(B, T)` tensors; a seeded generator makes shuffling
#   reproducible; `drop_last` keeps shapes equal; workers load in the background.
# - Hold out a validation split at a document boundary.
# - Big corpora are tokenized once into a `uint16`/`uint32` file, memory-mapped, and sampled at
#   random positions.
# - The book's corpus of stories ships with the package; its generator knows the entropy of
#   what it writes, close to the floor for the training loss of chapter 08.
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
#    from a `TokenFile`, with a different but reproducible stream for each worker
#    (`torch.utils.data.get_worker_info()`). Check that two workers do not produce the same windows.
# 4. **Variety grows slowly.** Compute `distinct_trigram_ratio` and `vocabulary` for the first
#    10,000, 100,000 and 1,000,000 characters of the stories corpus and plot them. Why does the
#    ratio fall as the text grows, and why is it a poor measure for comparing corpora of
#    different sizes?
