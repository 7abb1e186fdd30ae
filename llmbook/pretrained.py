"""The book's shipped tokenizer and model (hand-written; chapter 01 trains one, chapter 08 the other).

``load_tokenizer("stories")``: the tokenizer trained on the ``stories`` corpus;
``load_model("stories")``: the book's model, trained on fresh stories from the generator
(chapter 10); ``load_model("stories-corpus")``: the same shape trained on the shipped corpus
alone (chapter 08's sweep chose it; the book shipped it until chapter 10).

Chapter 01 trains the tokenizer and shows that it equals the shipped file; chapters 02-09 load
it with ``load_tokenizer("stories")``. ``python tools/make_tokenizer.py`` rebuilds the file.
Chapter 08's ``llmbook train`` trained both models; each folder (``assets/stories_model/``,
``assets/stories_corpus_model/``) holds its Hugging Face ``config.json``, ``model.safetensors``, and a
README with the command that rebuilds it and its scores. ``model.safetensors.sha256``
records the weights' SHA-256 (``sha256sum`` format), and ``load_model`` verifies it on every
load, so a flipped byte is an error naming the file rather than other weights.
"""

from __future__ import annotations

import re
from pathlib import Path

from llmbook.io.download import sha256_file
from llmbook.tokenizer import BPETokenizer

__all__ = [
    "ASSETS",
    "SHIPPED_MODELS",
    "STORIES_VOCAB_SIZE",
    "load_model",
    "load_tokenizer",
    "verify_weights",
]

ASSETS = Path(__file__).resolve().parent / "assets"
STORIES_VOCAB_SIZE = 2048  # 256 bytes + 1,791 merges + <|endoftext|>
_TOKENIZERS = {"stories": ASSETS / "stories_tokenizer.txt"}
_MODELS = {"stories": ASSETS / "stories_model", "stories-corpus": ASSETS / "stories_corpus_model"}
SHIPPED_MODELS = tuple(_MODELS)  # the names load_model knows


def load_tokenizer(name: str = "stories") -> BPETokenizer:
    """Load a tokenizer shipped with the package: ``"stories"`` (2,048 ids, chapter 01)."""
    if name not in _TOKENIZERS:
        raise ValueError(f"name must be one of {sorted(_TOKENIZERS)}, got {name!r}")
    return BPETokenizer.load(_TOKENIZERS[name])


def load_model(name: str = "stories", device=None):
    """Load a model shipped with the package, in evaluation mode: ``"stories"`` (the book's
    Llama-style model, trained on fresh stories, chapter 10) or ``"stories-corpus"`` (the same
    shape trained on the shipped corpus, chapter 08); both use the ``"stories"`` tokenizer."""
    from llmbook.io.meta import skip_meta_init
    from llmbook.model import DecoderLM

    if name not in _MODELS:
        raise ValueError(f"name must be one of {sorted(_MODELS)}, got {name!r}")
    verify_weights(_MODELS[name])
    with skip_meta_init():  # from_hf builds the model on meta: its initialisers would be wasted
        return DecoderLM.from_hf(_MODELS[name], device=device).eval()


def verify_weights(folder: Path) -> None:
    """Raise a ValueError naming the file unless ``folder/model.safetensors`` has the SHA-256
    that ``folder/model.safetensors.sha256`` records (one ``sha256sum`` line)."""
    weights, record = folder / "model.safetensors", folder / "model.safetensors.sha256"
    line = record.read_text(encoding="ascii", errors="replace").strip() if record.is_file() else ""
    match = re.fullmatch(r"([0-9a-f]{64}) [ *]model\.safetensors", line)
    if not match:
        raise ValueError(
            f"{str(record)!r} must hold one line '<64 hex digits>  model.safetensors' (the "
            f"output of sha256sum), got {line[:100]!r}; reinstall llmbook"
        )
    if not weights.is_file():
        raise FileNotFoundError(f"{str(weights)!r} is missing; reinstall llmbook")
    got = sha256_file(weights)
    if got != match.group(1):
        raise ValueError(
            f"{str(weights)!r} is damaged: its SHA-256 is {got}, {record.name} records "
            f"{match.group(1)}; reinstall llmbook (or rebuild it with the command in README.md)"
        )
