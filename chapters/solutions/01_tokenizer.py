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
# # Chapter 01 solutions: the tokenizer
#
# Worked solutions to the exercises at the end of `chapters/01_tokenizer.ipynb`. Each one uses
# the package the chapter exported, `llmbook.tokenizer`, and the book's corpus from chapter 02.

# %%
import matplotlib.pyplot as plt
import tiktoken

from llmbook.data import load_corpus
from llmbook.tokenizer import (
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    ByteBPE,
    SimpleTokenizer,
    merge_pair,
    pair_counts,
)

stories = load_corpus("stories")
recipe = (
    "How do I cook tomato and egg stir-fry? Beat three eggs with a pinch of salt. "
    "Cut two tomatoes into wedges. Fry the eggs in hot oil until they just set, then take them out. "
    "Fry the tomatoes until they are soft and juicy, add a little sugar, and return the eggs. "
    "Stir, taste, and serve it hot with rice. The eggs should be soft, the tomatoes sweet and sour."
)

# %% [markdown]
# ## Exercise 1: unknown words
#
# Encode the last 20,000 characters of the stories and count how many ids are `<|unk|>`. The
# test text comes from the end of the corpus, so it is not part of the first 100,000 characters
# used to build the second vocabulary.

# %%
test_text = stories[-20_000:]


def unknown_fraction(tokenizer: SimpleTokenizer, text: str) -> float:
    unk = tokenizer.str_to_int["<|unk|>"]
    ids = tokenizer.encode(text)
    return sum(i == unk for i in ids) / len(ids)


for name, source in [("recipe", recipe), ("100k chars of stories", stories[:100_000])]:
    tok = SimpleTokenizer.from_text(source)
    print(
        f"vocabulary from {name:22} {len(tok):5} words, unknown: {unknown_fraction(tok, test_text):.1%}"
    )

# %% [markdown]
# Built from the recipe, most of the words of a story are unknown. Built from 100,000
# characters of stories it covers almost everything, because the stories use a small
# children's vocabulary; but it never reaches zero, and any new name or misspelling would be
# lost. A byte-level BPE tokenizer has no unknown tokens at all.
#
# ## Exercise 2: merges by hand
#
# `abababcab` is bytes `a b a b a b c a b`. Pair counts: `ab` 4, `ba` 2, `bc` 1, `ca` 1, so
# merge 1 is `ab` -> 256, giving `256 256 256 c 256`. Now `(256, 256)` is counted twice (the
# overlapping pairs at positions 0-1 and 1-2: counts include overlaps, as `aa` in `aaa` did in
# the chapter), so merge 2 is `(256, 256)` -> 257, although only one of the two can be
# replaced: left to right gives `257 256 c 256`. Every pair now occurs once: there is **no
# third merge**. The trainers stop when the most frequent pair occurs only once: a token for it
# would stand for one spot of the training text, not for a pattern that repeats.

# %%
ids = list(b"abababcab")
print(pair_counts(ids).most_common(2))
ids = merge_pair(ids, (97, 98), 256)
print(ids, pair_counts(ids).most_common(1))
ids = merge_pair(ids, (256, 256), 257)
print(ids, max(pair_counts(ids).values()))
tok = ByteBPE.train("abababcab", vocab_size=259)
print(tok.merges)
assert tok.merges == {(97, 98): 256, (256, 256): 257}
assert tok.encode("abababcab") == [257, 256, 99, 256]

# %% [markdown]
# ## Exercise 3: what pre-splitting buys
#
# Train two 512-token vocabularies on the same 50,000 characters: one pre-split with the
# GPT-4 pattern, one on the raw text (the pattern `[\s\S]+` keeps each document in one piece,
# so each merge rewrites whole stories instead of short words: that run takes several seconds).

# %%
train_text, held_out = stories[:50_000], stories[50_000:100_000]
split = BPETokenizer.train(
    train_text, 512, special_tokens=["<|endoftext|>"], pattern=GPT4_SPLIT_PATTERN
)
raw = BPETokenizer.train(train_text, 512, special_tokens=["<|endoftext|>"], pattern=r"[\s\S]+")


def inner_space_tokens(tokenizer: BPETokenizer) -> list[str]:
    pieces = [
        tokenizer.vocab[i].decode("utf-8", errors="replace") for i in tokenizer.merges.values()
    ]
    return [p for p in pieces if " " in p.strip(" ") and p.strip()]


held_bytes = len(held_out.encode("utf-8"))
ratios = {}
for name, tok in [("GPT-4 pre-split", split), ("no pre-split", raw)]:
    inner = inner_space_tokens(tok)
    ratios[name] = held_bytes / len(tok.encode(held_out, allowed_special="all"))
    print(
        f"{name:16} tokens with an inner space: {len(inner):3}   bytes/token on held-out: {ratios[name]:.2f}"
    )
print("examples without pre-split:", sorted(inner_space_tokens(raw), key=len)[-5:])
assert not inner_space_tokens(split) and len(inner_space_tokens(raw)) > 10
assert ratios["no pre-split"] < ratios["GPT-4 pre-split"]

# %% [markdown]
# Without pre-splitting, merges cross word boundaries (`" to the "`, `"wanted to "`): part of
# the vocabulary goes to phrases instead of reusable words, the same word gets different tokens
# depending on its neighbours, and held-out text is compressed no better (here slightly worse).
# With pre-splitting no token holds a space inside: merges stay within words.
#
# ## Exercise 4: vocabulary size and compression

# %%
train_text, held_out = stories[:800_000], stories[800_000:900_000]
held_bytes = len(held_out.encode("utf-8"))
big = BPETokenizer.train(train_text, 4096, special_tokens=["<|endoftext|>"])
largest = 256 + len(big.merges)  # training stopped here: no pair occurs twice any more
print(big, "-> at most", largest, "bytes + merges (+ <|endoftext|> =", largest + 1, "ids)")
sizes = [300, 500, 1000, 2000, largest]
ratios = []
for size in sizes:
    # The first k merges of a larger run are exactly the merges of a run with k merges.
    merges = {pair: i for pair, i in big.merges.items() if i < size}
    tok = BPETokenizer(merges, big.pattern)
    ratios.append(held_bytes / len(tok.encode(held_out, allowed_special="none")))
print([(s, round(r, 2)) for s, r in zip(sizes, ratios)])
assert ratios == sorted(ratios) and 2000 < largest < 4096
fig, ax = plt.subplots(figsize=(6, 3))
_ = ax.plot(sizes, ratios, marker="o", label="held-out stories")
_ = ax.annotate(
    "no pair repeats any more",
    (largest, ratios[-1]),
    xytext=(-40, -30),
    textcoords="offset points",
    arrowprops=dict(arrowstyle="->"),
)
_ = ax.set_xticks(sizes)
_ = ax.set_xlabel("vocabulary size (bytes + merges)")
_ = ax.set_ylabel("bytes per token (held-out)")
_ = ax.legend()
plt.show()
plt.close(fig)

# %% [markdown]
# Compression rises steeply up to about 2,000 tokens (by then the common words of the stories
# are single tokens), then only a little: the last point is the whole vocabulary training could
# learn from 800,000 characters (printed above; asking for 4,096 gives no more), and its extra
# merges only add rare words. The book's tokenizer stops at 2,048 ids for that reason. On a
# small-vocabulary corpus like this one the returns diminish early; real tokenizers use
# 50k-200k tokens because web text has a far larger vocabulary and many languages. The cost of
# a bigger vocabulary is a bigger embedding table and LM head (chapter 07).
#
# ## Exercise 5: where did `" tomato"` come from?

# %%
cl100k = BPETokenizer.from_tiktoken(tiktoken.get_encoding("cl100k_base"))
made_of = {new: pair for pair, new in cl100k.merges.items()}


def merge_tree(tokenizer: BPETokenizer, token_id: int, depth: int = 0) -> None:
    print("    " * depth + f"{token_id:6} {tokenizer.vocab[token_id]!r}")
    if token_id in made_of:
        for part in made_of[token_id]:
            merge_tree(tokenizer, part, depth + 1)


(tomato,) = cl100k.encode(" tomato")
merge_tree(cl100k, tomato)
assert cl100k.decode([tomato]) == " tomato" and tomato in made_of

# %% [markdown]
# Each line is a token and its id; the two lines indented below it are the tokens it was merged
# from, down to single bytes. The chapter draws the same kind of tree for the book's tokenizer
# (section 7).
