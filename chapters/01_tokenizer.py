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
# # Chapter 01: The tokenizer
#
# A language model never sees text. It sees a sequence of integers, **token ids**, and it
# predicts the next integer. The tokenizer is the two-way bridge: `encode` turns text into ids
# before the model, `decode` turns the ids the model produces back into text.
#
# **What you will build**
#
# 1. `SimpleTokenizer`: a word-level tokenizer, and the reason it is not enough (unknown words).
# 2. A tour of Unicode and UTF-8: why every text is a sequence of bytes, and why a tokenizer that
#    starts from bytes never meets an unknown symbol.
# 3. Byte-pair encoding (BPE) from scratch: training, encoding by merge rank, decoding.
# 4. Regex pre-splitting (the GPT-2 and GPT-4 patterns) and special tokens that are never merged.
# 5. `BPETokenizer`: a fast trainer, a readable file format, and exact compatibility with OpenAI's
#    production tokenizers through `tiktoken` (same ids, to the last token).
#
# Everything in a cell that starts with `#| export` becomes part of `llmbook.tokenizer`;
# the rest of the chapter explains and checks it.

# %%
#| default_exp tokenizer

# %%
import random
import time

import matplotlib.pyplot as plt
import tiktoken
import torch

random.seed(0)
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Why integers?
#
# A neural network computes with numbers. The first layer of a language model is an **embedding
# table**: a matrix with one row per token of the vocabulary (chapter 03). A token id is simply
# the index of a row. So the tokenizer must cut text into pieces from a fixed, finite
# **vocabulary** and give each piece its number.
#
# How big should the pieces be?
#
# | unit | vocabulary | sequence length | problem |
# |---|---|---|---|
# | characters | small (~100 for English, ~150,000 for all of Unicode) | long | the model must learn spelling, and long sequences are expensive |
# | words | huge (every form of every word, names, typos) | short | any word not seen in training is **out of vocabulary** |
# | subwords | chosen (e.g. 50,257 for GPT-2, 128,256 for Llama 3) | in between | none of the above: frequent words are one token, rare ones a few |
#
# Every modern LLM uses subwords. We get there in three steps, starting with words.
#
# ## 2. A word-level tokenizer
#
# Split the text on whitespace and punctuation, collect the distinct pieces, sort them, and
# number them. That is the whole vocabulary.

# %%
recipe = (
    "How do I cook tomato and egg stir-fry? Beat three eggs with a pinch of salt. "
    "Cut two tomatoes into wedges. Fry the eggs in hot oil until they just set, then take them out. "
    "Fry the tomatoes until they are soft and juicy, add a little sugar, and return the eggs. "
    "Stir, taste, and serve it hot with rice. The eggs should be soft, the tomatoes sweet and sour."
)
print(len(recipe), "characters")

# %% [markdown]
# The split keeps punctuation marks as tokens of their own (so `soft,` and `soft` are the same
# word) and drops whitespace. Capitalisation is kept: `The` and `the` are different tokens.

# %%
#| export
"""Tokenizers: turning text into integer ids and back (chapter 01 of llmbook)."""

import heapq
import json
import operator
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import regex


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text

# %%
#| export
class SimpleTokenizer:
    """A word-level tokenizer: words and punctuation marks are the tokens.

    Words missing from the vocabulary become ``<|unk|>``: encoding never fails, but what the
    unknown word was is lost. ``decode`` joins words with spaces, so exact whitespace is lost too.
    """

    SPLIT = regex.compile(r'([,.:;?_!"()\']|--|\s)')

    def __init__(self, vocab: dict[str, int], unk_token: str = "<|unk|>"):
        if unk_token not in vocab:
            raise ValueError(f"unk_token {unk_token!r} must be in the vocabulary")
        self.str_to_int = dict(vocab)
        self.int_to_str = {i: s for s, i in vocab.items()}
        if len(self.int_to_str) != len(self.str_to_int):
            raise ValueError("vocab maps two tokens to the same id")
        self.unk_token = unk_token

    @classmethod
    def split(cls, text: str) -> list[str]:
        """Split text into words and punctuation marks, dropping whitespace."""
        return [piece for piece in cls.SPLIT.split(_check_text(text)) if piece.strip()]

    @classmethod
    def from_text(
        cls, text: str, special_tokens: Iterable[str] = ("<|endoftext|>", "<|unk|>")
    ) -> "SimpleTokenizer":
        """Number the distinct words of ``text`` in sorted order, then append the special tokens."""
        special_tokens = list(special_tokens)
        if "<|unk|>" not in special_tokens:
            raise ValueError(f"special_tokens must include '<|unk|>', got {special_tokens}")
        words = sorted(set(cls.split(text)) - set(special_tokens))
        return cls({token: i for i, token in enumerate(words + special_tokens)})

    def __len__(self) -> int:
        return len(self.str_to_int)

    def encode(self, text: str) -> list[int]:
        """Split ``text`` into words and punctuation and map each to its id (``<|unk|>`` if unknown)."""
        unk = self.str_to_int[self.unk_token]
        return [self.str_to_int.get(word, unk) for word in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Join the words of ``ids`` with single spaces, then pull punctuation back onto the words."""
        words = []
        for i in ids:
            if i not in self.int_to_str:
                raise ValueError(f"id {i!r} is not in the vocabulary (ids 0..{len(self) - 1})")
            words.append(self.int_to_str[i])
        return regex.sub(r'\s+([,.:;?!"()\'])', r"\1", " ".join(words))

# %%
words = SimpleTokenizer.split(recipe)
print(len(words), "tokens:", words[:12])
simple = SimpleTokenizer.from_text(recipe)
print("vocabulary size:", len(simple))
print(sorted(simple.str_to_int.items(), key=lambda item: item[1])[:8])

# %%
ids = simple.encode("Beat the eggs, then serve the tomatoes.")
print(ids)
print(simple.decode(ids))
assert simple.decode(ids) == "Beat the eggs, then serve the tomatoes."

# %% [markdown]
# The round trip works for a sentence made of known words (and `decode` puts the punctuation
# back against the words). Now words the recipe never used:

# %%
ids = simple.encode("Fry the onions until golden.")
print(ids)
print(simple.decode(ids))
assert simple.decode(ids) == "Fry the <|unk|> until <|unk|>."
assert simple.encode("fry") == [simple.str_to_int["<|unk|>"]]  # only "Fry" is in the vocabulary

# %% [markdown]
# `onions` and `golden` became `<|unk|>`, the **unknown token**: without it, `encode` would
# fail with a `KeyError`; with it, the information is simply gone. Even a known word in another
# form is lost: the recipe only has `Fry` with a capital, so `fry` is unknown too. No vocabulary
# built from a finite text covers every name, typo, number or language a user will type.
#
# ### Special tokens
#
# `<|unk|>` is one of the **special tokens**: strings that are not text but signals for the
# model. The other one here, `<|endoftext|>`, separates documents when many are concatenated
# into one training stream (chapter 02), so the model learns where one text ends. Other
# tokenizers use BOS/EOS (beginning/end of sequence, e.g. Llama's `<|begin_of_text|>`) and a
# padding token to fill batches of unequal length. Special tokens get ids of their own and
# must never be produced by ordinary text by accident (section 6).

# %%
doc_a, doc_b = "Beat the eggs.", "Cut the tomatoes."
ids = simple.encode(doc_a + " <|endoftext|> " + doc_b)
print(ids)
assert simple.str_to_int["<|endoftext|>"] in ids

# %% [markdown]
# ## 3. Unicode and UTF-8: text is bytes
#
# To escape the unknown-word problem, start from the smallest units every text is made of.
# A Python `str` is a sequence of Unicode **code points** (numbers up to 0x10FFFF, about
# 150,000 of them assigned). Files and networks carry **bytes**; UTF-8 encodes each code point
# as 1 to 4 bytes: ASCII letters take one byte, most European accents two, Chinese characters
# three, emoji four, and some emoji are several code points glued together.

# %%
for text in ["egg", "œuf", "今晚月色真美", "🍅", "👨‍👩‍👧"]:
    data = text.encode("utf-8")
    points = [f"U+{ord(c):04X}" for c in text]
    print(f"{text!r:10} {len(text):2} code points {len(data):3} bytes  {points}")
    print(" " * 11, list(data))

# %% [markdown]
# "今晚月色真美" ("the moon is beautiful tonight") is 6 code points and 18 bytes; the family
# emoji is 5 code points (man, zero-width joiner, woman, joiner, girl) and 18 bytes. Every byte
# is one of only 256 values. A tokenizer whose base vocabulary is the 256 bytes can therefore
# encode **any** string, in any language, with no `<|unk|>`: in the worst case a rare symbol
# becomes several byte tokens. Decoding concatenates the bytes and decodes them as UTF-8.
#
# The price is length: one token per byte makes sequences long (18 tokens for 6 Chinese
# characters). The fix is to **merge** frequent byte sequences into new tokens.

# %%
languages = {
    "English": "How do I cook tomato and egg stir-fry?",
    "Spanish": "¿Cómo se cocina el huevo revuelto con tomate?",
    "Russian": "Как приготовить яичницу с помидорами?",
    "Chinese": "如何做西红柿炒鸡蛋？",
    "Emoji": "🍅🥚🍳🔥😋",
}
ratios = {name: len(text.encode("utf-8")) / len(text) for name, text in languages.items()}
for name, ratio in ratios.items():
    print(f"{name:8} {ratio:.2f} bytes per character")
fig, ax = plt.subplots(figsize=(6, 2.5))
_ = ax.bar(list(ratios), list(ratios.values()), color="tab:orange")
_ = ax.set_ylabel("UTF-8 bytes per character")
_ = ax.set_title("The same question, in bytes")
plt.show()
plt.close(fig)

# %% [markdown]
# ## 4. Byte-pair encoding from scratch
#
# Byte-pair encoding (Gage 1994; Sennrich et al. 2016 for NLP; byte-level in GPT-2) learns the
# merges from a training text:
#
# 1. Write the text as bytes: a list of ids 0..255.
# 2. Count every **adjacent pair** of ids.
# 3. Give the most frequent pair a new id (256, then 257, ...) and replace every occurrence.
# 4. Repeat until the vocabulary has the size you asked for.
#
# The list of merges, in order, *is* the trained tokenizer. Two small functions do the work:

# %%
#| export
def pair_counts(ids: list[int]) -> Counter:
    """Count each adjacent pair of ``ids``: ``[1, 2, 1, 2]`` -> ``{(1, 2): 2, (2, 1): 1}``."""
    return Counter(zip(ids, ids[1:]))


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out

# %% [markdown]
# The classic example from Wikipedia's BPE article, `aaabdaaabac`. The pair `aa` (97, 97)
# occurs four times (overlaps count: `aaa` holds two), so it becomes token 256:

# %%
ids = list(b"aaabdaaabac")
counts = pair_counts(ids)
print(ids)
print(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:4])
print(merge_pair(ids, (97, 97), 256))

# %% [markdown]
# The naive trainer repeats count-and-merge. When two pairs are equally frequent we take the
# smaller pair, so training is deterministic (Python's `max` over a dict would depend on
# insertion order).

# %%
def train_naive(text: str, n_merges: int) -> dict[tuple[int, int], int]:
    """Learn ``n_merges`` merges from the bytes of ``text``: pair -> new id, in order."""
    ids = list(text.encode("utf-8"))
    merges = {}
    for step in range(n_merges):
        counts = pair_counts(ids)
        if not counts or max(counts.values()) < 2:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))  # most frequent, then smallest
        merges[pair] = 256 + step
        ids = merge_pair(ids, pair, 256 + step)
    return merges


merges = train_naive("aaabdaaabac", 3)
print(merges)

# %% [markdown]
# 256 = `aa`, 257 = `ab`, 258 = 256 + 257 = `aaab`; the text becomes `XdXac`, as in Wikipedia.
#
# **Encoding** a new text replays the merges **in the order they were learned**: among the
# pairs present, merge the one with the lowest new id first, until no learned pair is left.
# **Decoding** looks up the bytes of each id (a merged id's bytes are its two parts' bytes
# concatenated) and decodes the UTF-8.

# %%
def encode_naive(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge_pair(ids, pair, merges[pair])
    return ids


def vocab_of(merges: dict[tuple[int, int], int]) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), i in merges.items():  # dicts keep insertion order: the order of learning
        vocab[i] = vocab[a] + vocab[b]
    return vocab


def decode_naive(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    vocab = vocab_of(merges)
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


ids = encode_naive("aaabdaaabac", merges)
print(ids, repr(decode_naive(ids, merges)))
assert ids == [258, 100, 258, 97, 99]

# %% [markdown]
# Now train on the recipe with 40 merges and look at what was learned. Frequent fragments of
# English (`e `, `the`, ` to`, ...) and of this text (`egg`, `tomato`) become tokens.

# %%
merges = train_naive(recipe, 40)
vocab = vocab_of(merges)
print([vocab[i] for i in list(merges.values())[:20]])
ids = encode_naive(recipe, merges)
print(len(recipe.encode("utf-8")), "bytes ->", len(ids), "tokens")
assert decode_naive(ids, merges) == recipe

# %% [markdown]
# Decoding uses `errors="replace"`: a model can emit ids whose bytes are not valid UTF-8
# (half of a Chinese character), and decoding must still return something. Encoding never
# produces such a sequence from a valid string, so `decode(encode(s)) == s` always holds.
#
# How does the number of tokens fall as the vocabulary grows? Each merge can only shorten the
# text, and the first merges help most:

# %%
sizes, lengths = [], []
many = train_naive(recipe, 120)
for n in range(0, 121, 10):
    subset = dict(list(many.items())[:n])
    sizes.append(256 + n)
    lengths.append(len(encode_naive(recipe, subset)))
print(list(zip(sizes, lengths)))
assert lengths == sorted(lengths, reverse=True)
fig, ax = plt.subplots(figsize=(6, 2.8))
_ = ax.plot(sizes, lengths, marker="o")
_ = ax.set_xlabel("vocabulary size (256 bytes + merges)")
_ = ax.set_ylabel("tokens for the recipe")
_ = ax.set_title("Each merge shortens the text")
plt.show()
plt.close(fig)

# %% [markdown]
# The curve goes flat after about 60 merges: by then no pair occurs twice in this short text,
# so there is nothing left worth merging and training stops. Real tokenizers train on a large
# and varied corpus, where frequent pairs never run out.
#
# ## 5. Regex pre-splitting: merges that respect word boundaries
#
# Trained on raw bytes, BPE happily merges across word boundaries and punctuation:
# `dog.`, `dog!` and `dog?` would become three unrelated tokens, and pieces like `e t` waste
# vocabulary. GPT-2 therefore first **splits the text into chunks** with a regular expression
# (letters, numbers, punctuation and whitespace apart, a leading space kept with the word)
# and runs BPE inside each chunk only. GPT-4's `cl100k_base` refined the pattern:
# case-insensitive contractions, numbers cut into groups of at most three digits, newlines
# kept apart. `\p{L}` (any letter) and `\p{N}` (any number) need the `regex` package, not
# Python's `re`.

# %%
#| export
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)

# %%
import regex

sample = "I'LL cook 12345 eggs!!  Don't\n\n    stir... 今晚月色真美 🍅🍅"
for name, pattern in [("GPT-2", GPT2_SPLIT_PATTERN), ("GPT-4", GPT4_SPLIT_PATTERN)]:
    print(name, regex.findall(pattern, sample))
assert "".join(regex.findall(GPT4_SPLIT_PATTERN, sample)) == sample  # nothing is lost

# %% [markdown]
# Differences to spot: GPT-2 cuts `'LL` only in lower case and keeps `12345` whole; GPT-4
# keeps `'LL` as a contraction and cuts numbers as `123`, `45`. In both, the chunks put
# together give back the text exactly, so pre-splitting loses nothing.
#
# These are the patterns as OpenAI published them. tiktoken's copies read a little differently:
# possessive quantifiers (`\p{L}++`), which make matching faster without changing the chunks,
# and, since tiktoken 0.9, an extra `\s++$` that keeps whitespace at the very end of a text in
# one chunk (the GPT-4 pattern alone would cut a final `"\n\t"` in two). The tests check that
# our patterns and tiktoken's cut every text the same way except at such an ending;
# `from_tiktoken` (section 7) takes tiktoken's own pattern, so its ids match in every case.
#
# Training now counts pairs inside each chunk. Identical chunks (`" the"` appears thousands of
# times) are counted once with their frequency, which is also what makes training fast.

# %% [markdown]
# ## 6. Training fast: update the counts, don't recount
#
# The naive trainer recounts every pair of the whole text after each merge: for a 1 MB text
# and 4,000 merges that is billions of steps. But a merge changes only the chunks that contain
# the merged pair, so only their pairs' counts change. The fast trainer keeps
#
# - `counts`: pair -> occurrences, weighted by chunk frequency;
# - `where`: pair -> the distinct chunks that contain it;
# - a heap of `(-count, pair)` to find the most frequent pair in logarithmic time (an entry
#   whose count has changed since it was pushed is stale and skipped when popped).
#
# After a merge, each chunk that held the pair subtracts its old pairs and adds its new ones.
# The tie-break (most frequent, then smallest pair) is the same as the naive trainer's, so the
# two learn identical merges; we check that below.

# %%
#| export
def _train_merges(chunks: Counter, n_merges: int) -> list[tuple[int, int]]:
    """Learn up to ``n_merges`` merges from pre-split chunks (bytes -> frequency).

    The pair counts are updated incrementally: a merge only touches the distinct chunks that
    contain the pair, so each step costs time proportional to those chunks, not to the text.
    Ties between equally frequent pairs go to the smallest pair, so training is deterministic.
    """
    words = [list(chunk) for chunk in chunks]
    freqs = list(chunks.values())
    counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = {}
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            counts[pair] += freq
            where.setdefault(pair, set()).add(w)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:
            continue  # a stale entry: the count changed after it was pushed
        if -neg < 2:
            break  # merging a pair that occurs once compresses nothing
        new_id = 256 + len(merges)
        merges.append(pair)
        touched: Counter = Counter()
        for w in where.pop(pair):
            ids, freq = words[w], freqs[w]
            for p in zip(ids, ids[1:]):
                touched[p] -= freq
            ids = words[w] = merge_pair(ids, pair, new_id)
            for p in zip(ids, ids[1:]):
                touched[p] += freq
                where.setdefault(p, set()).add(w)
        for p, change in touched.items():
            if change:
                counts[p] += change
                if counts[p] > 0:
                    heapq.heappush(heap, (-counts[p], p))
                else:
                    del counts[p]
        counts.pop(pair, None)
    return merges

# %% [markdown]
# ### Special tokens are never merged
#
# A training corpus made of many documents has `<|endoftext|>` between them. That string must
# become exactly one id, never bytes merged with the neighbouring words. So the text is first
# cut around the special tokens; they are set aside and only the pieces between them are
# pre-split and trained on. The same cut happens when encoding. When the user's text contains
# a special-token string that was not explicitly allowed, we refuse, as tiktoken does: text
# typed by a user (or scraped from the web) must not be able to inject an end-of-text signal.
#
# The helpers below do the cutting and, for the next section, recover a merge from a
# production vocabulary, and name our file format.

# %%
#| export
FILE_MAGIC = "llmbook-bpe v1"


def _split_specials(text: str, specials: Iterable[str]) -> list[str]:
    """Split ``text`` around occurrences of the special tokens, keeping them as separate pieces."""
    specials = sorted(specials, key=len, reverse=True)  # longest first, so no prefix wins
    if not specials:
        return [text]
    pattern = "(" + "|".join(regex.escape(s) for s in specials) + ")"
    return [piece for piece in regex.split(pattern, text) if piece]


def _bpe_split(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Merge the bytes of ``token`` by rank, using only ranks below ``max_rank``."""
    parts = [bytes([b]) for b in token]
    while True:
        best, best_rank = None, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best is None:
            return parts
        parts[best : best + 2] = [parts[best] + parts[best + 1]]

# %% [markdown]
# ### The exported tokenizer
#
# `BPETokenizer` puts it all together. Its state is small and explicit: the regex pattern,
# the id of each of the 256 bytes (`byte_ids`; the identity for tokenizers trained here, a
# permutation for OpenAI's), the merges (pair -> new id), and the special tokens. Encoding
# splits out allowed special tokens, pre-splits with the regex, and merges inside each chunk
# by lowest id first. Chunks repeat a lot (`" the"`), so their encodings are cached.

# %%
#| export
class BPETokenizer:
    """A byte-level byte-pair-encoding tokenizer with regex pre-splitting and special tokens.

    Ids of the 256 single bytes come first (``byte_ids``), then one id per merge, then the
    special tokens. The merge that produces the smallest id is applied first when encoding,
    which is the rule tiktoken uses, so a tokenizer rebuilt with ``from_tiktoken`` gives
    exactly tiktoken's ids.
    """

    def __init__(
        self,
        merges: dict[tuple[int, int], int],
        pattern: str = GPT4_SPLIT_PATTERN,
        special_tokens: dict[str, int] | None = None,
        byte_ids: list[int] | None = None,
    ):
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        if len(self.byte_ids) != 256 or len(set(self.byte_ids)) != 256:
            raise ValueError("byte_ids must give 256 distinct ids, one per byte value")
        self.merges = dict(merges)
        self.pattern = pattern
        self.special_tokens = dict(special_tokens or {})
        for token in self.special_tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"special tokens must be non-empty strings, got {token!r}")
        self.vocab: dict[int, bytes] = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for (a, b), i in sorted(self.merges.items(), key=lambda item: item[1]):
            if a not in self.vocab or b not in self.vocab:
                raise ValueError(f"merge ({a}, {b}) -> {i} uses an id defined by no earlier merge")
            if i in self.vocab:
                raise ValueError(f"id {i} is defined twice")
            self.vocab[i] = self.vocab[a] + self.vocab[b]
        for token, i in self.special_tokens.items():
            if i in self.vocab:
                raise ValueError(f"special token {token!r} reuses id {i}")
        if len(set(self.special_tokens.values())) != len(self.special_tokens):
            raise ValueError(f"special tokens must have distinct ids, got {self.special_tokens}")
        try:
            self._compiled = regex.compile(pattern)
        except (regex.error, TypeError) as error:
            raise ValueError(f"pattern must be a valid regular expression, got {pattern!r}: {error}") from None
        self._specials_by_id = {i: s.encode("utf-8") for s, i in self.special_tokens.items()}
        self._cache: dict[bytes, list[int]] = {}

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Iterable[str] = (),
        pattern: str = GPT4_SPLIT_PATTERN,
    ) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        Special tokens found in ``text`` separate it and are never merged. Training stops early
        (with a smaller vocabulary) when no pair occurs twice any more.
        """
        _check_text(text)
        special_tokens = list(dict.fromkeys(special_tokens))
        for token in special_tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"special_tokens must be non-empty strings, got {token!r}")
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            raise ValueError(
                f"vocab_size must be an int >= 256 + {len(special_tokens)} (bytes + special tokens), got {vocab_size!r}"
            )
        compiled = regex.compile(pattern)
        chunks: Counter = Counter()
        for piece in _split_specials(text, special_tokens):
            if piece not in special_tokens:
                chunks.update(c.encode("utf-8") for c in compiled.findall(piece))
        merges = _train_merges(chunks, vocab_size - 256 - len(special_tokens))
        merge_ids = {pair: 256 + i for i, pair in enumerate(merges)}
        first_special = 256 + len(merges)
        specials = {s: first_special + i for i, s in enumerate(special_tokens)}
        return cls(merge_ids, pattern, specials)

    # -- encoding and decoding -----------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, i.e. one more than the largest id."""
        return 1 + max(list(self.vocab) + list(self._specials_by_id))

    def __len__(self) -> int:
        return self.vocab_size

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = [self.byte_ids[b] for b in chunk]
        while len(ids) >= 2:
            # The mergeable pair whose merge has the lowest rank (id) goes first.
            pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token strings as ordinary text."""
        ids: list[int] = []
        for chunk in self._compiled.findall(_check_text(text)):
            ids.extend(self._encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode(self, text: str, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Encode ``text`` into ids.

        ``allowed_special`` says what to do with special-token strings found in the text:
        ``"all"`` or a set of names encode them (those named) as their special ids; ``"none"``
        encodes every one as ordinary text; with ``"none_raise"`` (the default) or a set, a
        special token that is not allowed raises ``ValueError``, as tiktoken does by default.
        """
        _check_text(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special in ("none", "none_raise"):
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset)):
            unknown = sorted(allowed_special - set(self.special_tokens))
            if unknown:
                raise ValueError(f"allowed_special names tokens this tokenizer lacks: {unknown}")
            allowed = set(allowed_special)
        else:
            raise ValueError(f"allowed_special must be 'all', 'none', 'none_raise' or a set, got {allowed_special!r}")
        if allowed_special != "none":
            found = sorted(s for s in self.special_tokens if s not in allowed and s in text)
            if found:
                raise ValueError(
                    f"text contains special token {found[0]!r}. Pass allowed_special={{{found[0]!r}}} "
                    "(or 'all') to encode it as a special token, or allowed_special='none' to encode it "
                    "as ordinary text"
                )
        ids: list[int] = []
        for piece in _split_specials(text, allowed):
            if piece in allowed:
                ids.append(self.special_tokens[piece])
            else:
                ids.extend(self.encode_ordinary(piece))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenate the bytes of ``ids`` (any iterable of integers, e.g. a list or a 1-d tensor)."""
        out = []
        for i in ids:
            try:
                i = operator.index(i)  # accepts Python, NumPy and 0-d tensor integers
            except TypeError:
                raise TypeError(f"ids must be integers, got {type(i).__name__}") from None
            piece = self.vocab.get(i)
            if piece is None:
                piece = self._specials_by_id.get(i)
                if piece is None:
                    raise ValueError(f"id {i} is not in the vocabulary (ids 0..{self.vocab_size - 1})")
            out.append(piece)
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """Decode ids to text; byte sequences that are not valid UTF-8 become U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # -- saving and loading ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the tokenizer as readable text: the pattern, the byte ids, one merge per line, specials.

        The file is written to a temporary name and renamed, so a crash never leaves half a file.
        """
        lines = [FILE_MAGIC, f"pattern {json.dumps(self.pattern)}"]
        if self.byte_ids != list(range(256)):
            lines.append("bytes " + " ".join(map(str, self.byte_ids)))
        lines.append(f"merges {len(self.merges)}")
        for (a, b), i in sorted(self.merges.items(), key=lambda item: item[1]):
            lines.append(f"{a} {b} {i}  # {self.vocab[i]!r}")
        for token, i in sorted(self.special_tokens.items(), key=lambda item: item[1]):
            lines.append(f"special {i} {json.dumps(token)}")
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """Read a file written by ``save``; anything else raises ``ValueError`` naming the line."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not an llmbook BPE file (not UTF-8 text)") from None
        if not lines or lines[0] != FILE_MAGIC:
            raise ValueError(f"{path} is not an llmbook BPE file (first line should be {FILE_MAGIC!r})")
        pattern, byte_ids, merges, specials, n_merges = None, None, {}, {}, None
        for number, line in enumerate(lines[1:], start=2):
            try:
                line = line.strip()
                if not line:
                    continue
                key, _, rest = line.partition(" ")
                if key.isdigit():  # a merge line: "left right new_id  # the bytes it makes"
                    line = line.split("#", 1)[0]
                if key == "pattern":
                    pattern = json.loads(rest)
                    if not isinstance(pattern, str):
                        raise ValueError("the pattern must be a JSON string")
                elif key == "bytes":
                    byte_ids = [int(x) for x in rest.split()]
                elif key == "merges":
                    n_merges = int(rest)
                elif key == "special":
                    i, token = rest.split(" ", 1)
                    token = json.loads(token)
                    if not isinstance(token, str):
                        raise ValueError("a special token must be a JSON string")
                    specials[token] = int(i)
                else:
                    a, b, i = (int(x) for x in line.split())
                    merges[(a, b)] = i
            except ValueError:
                raise ValueError(f"{path}, line {number}: cannot read {line[:60]!r}") from None
        if pattern is None or n_merges != len(merges):
            raise ValueError(f"{path} is incomplete: pattern or merges missing (truncated file?)")
        try:
            return cls(merges, pattern, specials, byte_ids)
        except ValueError as error:
            raise ValueError(f"{path} is not a consistent tokenizer: {error}") from None

    # -- production tokenizers -------------------------------------------------------------------
    @classmethod
    def from_tiktoken(cls, encoding) -> "BPETokenizer":
        """Rebuild the merge table of a tiktoken encoding (an ``Encoding`` or its name).

        tiktoken stores only each token's bytes and rank. The merge that made a token is found
        by running BPE on its bytes with only the lower ranks allowed: that stops at exactly
        two parts, the pair that was merged.
        """
        import tiktoken

        if isinstance(encoding, str):
            encoding = tiktoken.get_encoding(encoding)
        ranks: dict[bytes, int] = encoding._mergeable_ranks
        byte_ids = [ranks[bytes([b])] for b in range(256)]
        merges = {}
        for token, rank in ranks.items():
            if len(token) < 2:
                continue
            parts = _bpe_split(ranks, token, max_rank=rank)
            if len(parts) != 2:
                raise ValueError(f"token {token!r} (rank {rank}) is not the merge of two earlier tokens")
            merges[(ranks[parts[0]], ranks[parts[1]])] = rank
        return cls(merges, encoding._pat_str, dict(encoding._special_tokens), byte_ids)

    def to_tiktoken(self, name: str = "llmbook"):
        """Return a ``tiktoken.Encoding`` with this tokenizer's merges: the same ids, encoded faster."""
        import tiktoken

        ranks = {piece: i for i, piece in self.vocab.items()}
        if len(ranks) != len(self.vocab):
            raise ValueError("two ids share the same bytes; tiktoken needs one rank per byte string")
        return tiktoken.Encoding(name, pat_str=self.pattern, mergeable_ranks=ranks, special_tokens=self.special_tokens)

    def __repr__(self) -> str:
        specials = len(self.special_tokens)
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, specials={specials})"

# %% [markdown]
# First, the fast trainer and the naive one agree, merge for merge (without pre-splitting, so
# the naive trainer sees the same chunks: we pass a pattern that keeps the text in one piece):

# %%
whole_text = r"[\s\S]+"
fast = BPETokenizer.train(recipe, 256 + 60, pattern=whole_text)
assert fast.merges == train_naive(recipe, 60)
assert fast.encode(recipe) == encode_naive(recipe, train_naive(recipe, 60))
print(fast)

# %% [markdown]
# Now a real training run. The book's own corpus (chapter 02) is a megabyte of short
# children's stories separated by `<|endoftext|>`. We ask for a 4,096-token vocabulary, with
# the GPT-4 pattern and the end-of-text special token.

# %%
from llmbook.data import load_corpus

stories = load_corpus("stories")
print(f"{len(stories):,} characters, {len(stories.encode('utf-8')):,} bytes")
print(stories[:300])

# %%
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
tokenizer = BPETokenizer.train(stories, vocab_size=4096, special_tokens=["<|endoftext|>"])
seconds = time.perf_counter() - start
print(f"trained {tokenizer} in {seconds:.1f} s")
assert seconds < 120

# %%
print(tokenizer)
chunks = {c for part in stories.split("<|endoftext|>") for c in regex.findall(GPT4_SPLIT_PATTERN, part)}
print(f"{len(chunks):,} distinct chunks in the corpus")
whole = sum(len(tokenizer.encode(c)) == 1 for c in chunks)
print(f"{whole:,} of them are now a single token")
learned = [tokenizer.vocab[i] for i in range(256, 256 + 24)]
print("first merges:", learned)
print("longest tokens:", sorted(tokenizer.vocab.values(), key=lambda b: (-len(b), b))[:6])
ids = tokenizer.encode(stories, allowed_special="all")
print(f"{len(stories.encode('utf-8')) / len(ids):.2f} bytes per token on the training text")
assert tokenizer.decode(ids) == stories

# %% [markdown]
# Training stopped before 4,096: children's stories use a small vocabulary, and once (almost)
# every distinct chunk is a single token, no pair occurs twice any more, so there is nothing left
# to merge. A web-scale corpus never runs out: GPT-2 stopped at 50,000 merges by choice.
#
# The end-of-text token has the last id and is one token; the same string in text that did not
# allow it is refused, unless the caller explicitly asks to treat it as ordinary text:

# %%
eot = tokenizer.special_tokens["<|endoftext|>"]
print("<|endoftext|> =", eot)
print(tokenizer.encode("The end.<|endoftext|>Once", allowed_special={"<|endoftext|>"}))
print(tokenizer.encode("The end.<|endoftext|>Once", allowed_special="none"))

# %% tags=["raises-exception"]
tokenizer.encode("The end.<|endoftext|>Once")

# %% [markdown]
# Bad input gets an error that names the problem, not a crash deep inside:

# %% tags=["raises-exception"]
tokenizer.decode([5, 4096])

# %% tags=["raises-exception"]
BPETokenizer.train("too small", vocab_size=200)

# %% [markdown]
# Byte-level means no unknown tokens, whatever the script: the stories are English, yet Chinese
# and emoji encode (as bytes, mostly unmerged) and decode exactly.

# %%
for text in ["The little dog was happy.", "今晚月色真美", "🍅👨‍👩‍👧"]:
    ids = tokenizer.encode(text)
    print(f"{text!r:30} {len(text.encode('utf-8')):3} bytes -> {len(ids):3} tokens")
    assert tokenizer.decode(ids) == text

# %% [markdown]
# ### Saving and loading
#
# The file is plain text: the pattern, then one merge per line (`left right -> new id`, with the
# bytes it makes as a comment), then the special tokens. You can read it, diff it and check it
# into git. It is written to a temporary file and renamed, so a crash never leaves half a file.

# %%
from pathlib import Path
from tempfile import TemporaryDirectory

with TemporaryDirectory() as folder:
    path = Path(folder) / "stories.bpe"
    tokenizer.save(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    print("\n".join(lines[:3] + lines[100:104] + lines[-2:]))
    reloaded = BPETokenizer.load(path)
assert reloaded.merges == tokenizer.merges and reloaded.special_tokens == tokenizer.special_tokens
assert reloaded.encode(stories[:5000], allowed_special="all") == tokenizer.encode(stories[:5000], allowed_special="all")

# %% [markdown]
# ## 7. Production tokenizers: tiktoken
#
# OpenAI's tokenizers are byte-level BPE exactly like ours, with much larger vocabularies
# trained on much more text. `tiktoken` ships them (it downloads each file once and caches it;
# offline, set `TIKTOKEN_CACHE_DIR`, see the README):
#
# | encoding | used by | vocabulary | pre-split pattern |
# |---|---|---|---|
# | `gpt2` | GPT-2, GPT-3 | 50,257 | GPT-2 |
# | `cl100k_base` | GPT-3.5, GPT-4 | 100,277 | GPT-4 |
# | `o200k_base` | GPT-4o | 200,019 | multilingual, case-aware |
#
# The same text gives different ids and lengths in each:

# %%
encodings = {name: tiktoken.get_encoding(name) for name in ["gpt2", "cl100k_base", "o200k_base"]}
question = "How do I cook tomato and egg stir-fry?"
for name, enc in encodings.items():
    ids = enc.encode(question)
    print(f"{name:12} {len(ids):2} tokens {ids}")
    print(" " * 15, [enc.decode([i]) for i in ids])

# %% [markdown]
# tiktoken stores each token as its bytes and a **rank**; the rank is also the id, and its
# encoder merges, among adjacent parts, the pair whose concatenation has the lowest rank. That
# is our "lowest id first" rule. What tiktoken does not store is *which two tokens* made each
# token; `BPETokenizer.from_tiktoken` recovers it by running BPE on the token's bytes with only
# lower ranks allowed, which stops at exactly two parts. With the merges recovered, our
# pure-Python encoder gives **exactly** tiktoken's ids:

# %%
multilingual = (
    "How do I cook tomato and egg stir-fry?\n"
    "¿Cómo se cocina el huevo revuelto con tomate? Как приготовить яичницу с помидорами?\n"
    "如何做西红柿炒鸡蛋？今晚月色真美。\n"
    "def cook(eggs: int = 3) -> str:\n    return f'{eggs} eggs'  # 🍳🍅👨‍👩‍👧\n"
    "   spaces    and\ttabs\r\n\n\nI'LL DON'T 1234567 3.14159"
)
ours = {}
for name, enc in encodings.items():
    ours[name] = BPETokenizer.from_tiktoken(enc)
    same = ours[name].encode(multilingual) == enc.encode(multilingual)
    print(f"{name:12} vocab {ours[name].vocab_size:,}  identical ids: {same}")
    assert same

# %% [markdown]
# Why do lengths differ so much between languages? Each tokenizer's merges follow the
# frequencies of its training data, which is mostly English. A larger, more multilingual
# vocabulary (o200k) spends more merges on other scripts. **Bytes per token** measures the
# compression: more is better (shorter sequences, cheaper and longer contexts).

# %%
samples = dict(languages)
samples["Code"] = "def cook(eggs: int = 3) -> str:\n    return f'{eggs} eggs'\n"
names = list(encodings)
table = {lang: [len(text.encode("utf-8")) / len(encodings[n].encode(text)) for n in names] for lang, text in samples.items()}
print(f"{'':8}" + "".join(f"{n:>13}" for n in names))
for lang, row in table.items():
    print(f"{lang:8}" + "".join(f"{r:13.2f}" for r in row))
assert table["Chinese"][0] < 1.2 < 2.5 < table["Chinese"][2]  # gpt2: ~1 byte per token; o200k: ~1 character
assert table["Russian"][2] > 3 * table["Russian"][0]
fig, ax = plt.subplots(figsize=(7, 3))
width = 0.27
for j, name in enumerate(names):
    _ = ax.bar([i + (j - 1) * width for i in range(len(table))], [row[j] for row in table.values()], width, label=name)
_ = ax.set_xticks(range(len(table)), list(table))
_ = ax.set_ylabel("UTF-8 bytes per token")
_ = ax.legend()
_ = ax.set_title("Compression by language: higher is better")
plt.show()
plt.close(fig)

# %% [markdown]
# The other direction: `to_tiktoken()` hands the merges of a tokenizer trained here to tiktoken,
# whose encoder is written in Rust. The ids are identical, and we keep the pure-Python encoder
# for understanding and the fast one for work.

# %%
fast_tokenizer = tokenizer.to_tiktoken()
part = stories[:200_000]
assert fast_tokenizer.encode(part, allowed_special="all") == tokenizer.encode(part, allowed_special="all")
assert fast_tokenizer.encode(multilingual) == tokenizer.encode(multilingual)
print("identical ids on", f"{len(part):,}", "characters and on the multilingual text")

# %%
# NBVAL_IGNORE_OUTPUT
def throughput(encode, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encode(text)
        best = min(best, time.perf_counter() - start)
    return len(text.encode("utf-8")) / best / 1e6


def pure_python(text: str) -> list[int]:
    fresh = BPETokenizer(tokenizer.merges, tokenizer.pattern, tokenizer.special_tokens)  # empty cache
    return fresh.encode(text, allowed_special="all")


python_speed = throughput(pure_python, part)
tiktoken_speed = throughput(lambda text: fast_tokenizer.encode(text, allowed_special="all"), part)
print(f"pure Python: {python_speed:.2f} MB/s   tiktoken: {tiktoken_speed:.1f} MB/s   "
      f"({tiktoken_speed / python_speed:.0f}x)")
assert tiktoken_speed > python_speed

# %% [markdown]
# On this 2-core machine, `benchmarks/tokenizer.py` measured (see the README for the table):
# training on 1 MB of text (Python source code) to 4,096 tokens takes 2.5 to 5 seconds with the
# incremental trainer; on the stories it stops at about 2,700 tokens after about a second.
# tiktoken encodes 2 to 6 times faster than our pure-Python loop, less than you might expect
# because our encoder caches each distinct chunk and real text repeats its words a lot (the
# stories have only 1,441 distinct chunks). Without that cache, or on text with many distinct
# chunks, the gap grows. The pure-Python encoder is for understanding; for large amounts of
# training data, use `to_tiktoken()`.
#
# ## Summary
#
# - Models read integer ids; a tokenizer maps text to ids (`encode`) and back (`decode`) through
#   a fixed vocabulary. Word-level vocabularies fail on unseen words (`<|unk|>` loses them).
# - Text is Unicode code points, stored as UTF-8 bytes (1 to 4 per code point). Starting from the
#   256 byte values, a tokenizer can encode any string: no unknown tokens, ever.
# - Byte-pair encoding learns merges of the most frequent adjacent pair, repeatedly; encoding
#   replays them in order (lowest id first), decoding concatenates bytes.
# - A regex pre-split (GPT-2, GPT-4 patterns) keeps merges inside words, numbers and punctuation
#   runs; special tokens such as `<|endoftext|>` are cut out first, never merged, and refused in
#   ordinary text unless allowed.
# - Training is fast when pair counts are updated for the affected chunks only.
# - `BPETokenizer.from_tiktoken` rebuilds OpenAI's merges and reproduces tiktoken's ids exactly;
#   `to_tiktoken` hands our merges to tiktoken's fast encoder, with identical ids.
# - Compression depends on the language and on the text a tokenizer was trained on: GPT-2 spends
#   about one token per byte of Chinese, while o200k's larger, multilingual vocabulary fits a
#   whole Chinese character (3 bytes) into a token and over three times as many bytes of Russian
#   as GPT-2 does.
#
# In `llmbook`: `from llmbook import SimpleTokenizer, BPETokenizer`.
#
# ## Exercises
#
# Worked solutions are in `chapters/solutions/01_tokenizer.ipynb`.
#
# 1. **Unknown words.** Build a `SimpleTokenizer` from the recipe and compute the fraction of
#    `<|unk|>` tokens when it encodes the first 20,000 characters of the stories corpus. How does
#    the fraction change when the vocabulary is built from the first 100,000 characters of the
#    corpus instead?
# 2. **Hand-merged.** Without running the code, write down the merges (at most three) the naive
#    trainer learns on `"abababcab"` and the resulting ids; then check with `train_naive`, or
#    with `BPETokenizer.train(..., pattern=r"[\s\S]+")`, which learns the same merges.
# 3. **What pre-splitting buys.** Train two 512-token vocabularies on the first 50,000
#    characters of the stories, one with `GPT4_SPLIT_PATTERN` and one with no pre-splitting
#    (`pattern=r"[\s\S]+"`; this one is slower, since every merge rewrites whole stories).
#    Count the learned tokens that contain a space *inside* them (not only at the start) and
#    compare the bytes per token on the next 50,000 characters.
# 4. **Vocabulary size and compression.** Train vocabularies of 300, 500, 1,000, 2,000 and 4,000
#    tokens on the stories and plot bytes per token on held-out stories against vocabulary size.
#    Where does adding merges stop paying off?
# 5. **Where did `egg` come from?** For the `cl100k_base` tokenizer rebuilt with `from_tiktoken`,
#    write a function that prints the full merge tree of a token (e.g. `" tomato"`) down to bytes.
