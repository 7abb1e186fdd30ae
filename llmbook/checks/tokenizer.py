"""Argument checks of ``llmbook.tokenizer`` (hand-written: chapter 01, section 9, explains them).

The tokenizer's teaching cells call these as one-line guards. Each raises a ``TypeError`` (wrong
type) or a ``ValueError`` (wrong value) naming the argument, what was given and what is allowed.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable, Iterator

import regex

__all__ = [
    "MAX_VOCAB_SIZE",
    "check_id",
    "check_ids",
    "check_merges",
    "check_pattern",
    "check_special_ids",
    "check_special_names",
    "check_text",
]

# Over 4 million ids, 16 times the largest vocabulary in use: a corrupt file or a wrong argument
# cannot make a tokenizer build a table of 10 million entries.
MAX_VOCAB_SIZE = 1 << 22


def check_text(text: object, name: str = "text") -> str:
    """Return ``text`` if it is a ``str``; raise ``TypeError`` otherwise (bytes included)."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def check_id(value: object, name: str) -> int:
    """Return ``value`` as an int id in ``0 .. MAX_VOCAB_SIZE - 1`` (bools are not ids)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must hold integer ids, got {type(value).__name__} ({value!r})")
    if not 0 <= value < MAX_VOCAB_SIZE:
        raise ValueError(f"{name} must hold ids in 0..{MAX_VOCAB_SIZE - 1}, got {value}")
    return int(value)


def check_ids(ids: object) -> Iterator[int]:
    """Yield the items of ``ids`` (any iterable of integers) as ints; no bools, no strings."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"ids must be an iterable of integers, got {type(ids).__name__}")
    for i in ids:
        if isinstance(i, bool):
            raise TypeError(f"ids must be integers, got bool ({i!r})")
        try:
            yield operator.index(i)  # Python, NumPy and 0-d tensor integers
        except TypeError:
            raise TypeError(f"ids must be integers, got {type(i).__name__}") from None


def check_pattern(pattern: object) -> regex.Pattern:
    """Compile a pre-split pattern with the ``regex`` package, or say why it cannot be."""
    if not isinstance(pattern, str):
        raise TypeError(
            f"pattern must be a str (a regular expression), got {type(pattern).__name__}"
        )
    try:
        return regex.compile(pattern)
    except regex.error as error:
        raise ValueError(
            f"pattern must be a valid regular expression, got {pattern!r}: {error}"
        ) from None


def check_merges(
    merges: object, byte_ids: object
) -> tuple[list[int], dict[tuple[int, int], int], dict[int, bytes]]:
    """Check a tokenizer's merges and byte ids; return them with the vocabulary they define.

    Merges are read in their order (the rank order): each must join two ids that are bytes or
    made by an earlier merge, and make an id not used before.
    """
    if not isinstance(merges, dict):
        raise TypeError(
            f"merges must be a dict {{(left_id, right_id): new_id}}, got {type(merges).__name__}"
        )
    if len(merges) >= MAX_VOCAB_SIZE:
        raise ValueError(
            f"merges must hold fewer than {MAX_VOCAB_SIZE:,} entries, got {len(merges):,}"
        )
    if byte_ids is None:
        byte_ids = list(range(256))
    elif isinstance(byte_ids, (str, bytes)) or not isinstance(byte_ids, Iterable):
        raise TypeError(f"byte_ids must be 256 integer ids, got {type(byte_ids).__name__}")
    else:
        byte_ids = [check_id(i, "byte_ids") for i in byte_ids]
    if len(byte_ids) != 256 or len(set(byte_ids)) != 256:
        raise ValueError("byte_ids must give 256 distinct ids, one per byte value")
    vocab = {i: bytes([b]) for b, i in enumerate(byte_ids)}
    checked = {}
    for pair, new_id in merges.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"merges keys must be pairs of ids (left, right), got {pair!r}")
        a, b, i = (check_id(x, "merges") for x in (*pair, new_id))
        if a not in vocab or b not in vocab:
            raise ValueError(f"merge ({a}, {b}) -> {i} uses an id defined by no earlier merge")
        if i in vocab:
            raise ValueError(f"id {i} is defined twice")
        vocab[i], checked[(a, b)] = vocab[a] + vocab[b], i
    return byte_ids, checked, vocab


def check_special_names(special_tokens: object) -> list[str]:
    """Return the special-token names as a list without repeats (a single ``str`` is refused)."""
    if isinstance(special_tokens, (str, bytes)) or not isinstance(special_tokens, Iterable):
        raise TypeError(
            "special_tokens must be a list of strings such as ['<|endoftext|>'], "
            f"got {type(special_tokens).__name__} {special_tokens!r}"
        )
    tokens = list(special_tokens)
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(
                f"special_tokens must hold strings, got {type(token).__name__} ({token!r})"
            )
        if not token:
            raise ValueError("special_tokens must be non-empty strings, got ''")
    return list(dict.fromkeys(tokens))


def check_special_ids(special_tokens: object, vocab: dict[int, bytes]) -> dict[str, int]:
    """Check a ``{token: id}`` dict: names are non-empty strings, ids new and distinct."""
    if special_tokens is None:
        return {}
    if not isinstance(special_tokens, dict):
        raise TypeError(
            f"special_tokens must be a dict {{token: id}}, got {type(special_tokens).__name__}"
        )
    check_special_names(list(special_tokens))
    ids = [check_id(i, "special_tokens") for i in special_tokens.values()]
    for token, i in zip(special_tokens, ids):
        if i in vocab:
            raise ValueError(f"special token {token!r} reuses id {i}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"special tokens must have distinct ids, got {special_tokens}")
    return dict(zip(special_tokens, ids))
