"""The book's shipped artefacts: the tokenizer trained on the ``stories`` corpus (hand-written).

Chapter 01 trains this tokenizer and shows that it equals the shipped file; chapters 02-09 load
it with ``load_tokenizer("stories")``. ``python tools/make_tokenizer.py`` rebuilds the file.
"""

from __future__ import annotations

from pathlib import Path

from llmbook.tokenizer import BPETokenizer

__all__ = ["ASSETS", "STORIES_VOCAB_SIZE", "load_tokenizer"]

ASSETS = Path(__file__).resolve().parent / "assets"
STORIES_VOCAB_SIZE = 2048  # 256 bytes + 1,791 merges + <|endoftext|>
_TOKENIZERS = {"stories": ASSETS / "stories_tokenizer.txt"}


def load_tokenizer(name: str = "stories") -> BPETokenizer:
    """Load a tokenizer shipped with the package: ``"stories"`` (2,048 ids, chapter 01)."""
    if name not in _TOKENIZERS:
        raise ValueError(f"name must be one of {sorted(_TOKENIZERS)}, got {name!r}")
    return BPETokenizer.load(_TOKENIZERS[name])
