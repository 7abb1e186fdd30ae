"""Fresh stories at any size: training text written on demand (hand-written; chapter 10).

The shipped corpus is 1.1 MB, but the generator writes several megabytes of stories a second,
so a run that wants 100 MB of text asks for it by name instead of downloading it:
``fresh-stories:100M`` is the stories of seed ``FRESH_SEED``, in order, until the text holds
100 million characters. The same name gives the same text on every machine (the generator
draws only ``Random.random()`` from an integer seed), and a shorter size is a prefix of a longer
one, so runs of different lengths read the same stories in the same order.

The book keeps its seeds apart: 2024 wrote the shipped corpus, 2025 the test set nobody trains
or chooses on (chapter 8), and 2026 (``FRESH_SEED``) writes fresh training stories.
"""

from __future__ import annotations

import re

from llmbook.stories.generator import build_corpus

__all__ = [
    "FRESH_PREFIX",
    "FRESH_SEED",
    "MAX_FRESH_CHARS",
    "fresh_stories",
    "is_fresh_name",
    "parse_size",
]

FRESH_PREFIX = "fresh-stories:"
FRESH_SEED = 2026
MAX_FRESH_CHARS = 2_000_000_000  # 2 GB of text, held in memory with its ids: the sane limit
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([KMG]?)", re.IGNORECASE)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_size(size: str | int, arg: str = "size") -> int:
    """Characters in a size such as ``"30M"``, ``"500K"``, ``"1.5M"`` or ``"200000"`` (powers
    of 1000). ``arg`` names the argument in the error."""
    if isinstance(size, int) and not isinstance(size, bool):
        chars = size
    elif isinstance(size, str) and (match := _SIZE.fullmatch(size.strip())):
        chars = round(float(match[1]) * _UNITS[match[2].upper()])
    else:
        raise ValueError(
            f"{arg} must be a number of characters such as 30M, 500K, 1.5M or 200000, got {size!r}"
        )
    if not 1 <= chars <= MAX_FRESH_CHARS:
        raise ValueError(
            f"{arg} must be between 1 and {MAX_FRESH_CHARS:,} characters, got {chars:,}"
        )
    return chars


def is_fresh_name(name) -> bool:
    """Whether ``name`` asks for fresh stories (``fresh-stories:SIZE``)."""
    return isinstance(name, str) and name.startswith(FRESH_PREFIX)


def fresh_stories(
    size: str | int, seed: int = FRESH_SEED, progress: bool = False
) -> tuple[str, dict]:
    """Stories of ``seed``, in corpus form (each followed by a separator line), until the text
    holds at least ``size`` characters (``parse_size``): ``build_corpus`` with another seed and
    size. Returns ``(text, meta)``; ``meta`` holds the seed, ``n_stories``, ``n_chars``, the
    stories' summed log-probability (``total_logprob``, nats), ``nats_per_char`` (the floor of
    this text) and the text's SHA-256."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
    return build_corpus(seed, parse_size(size), progress=progress)
