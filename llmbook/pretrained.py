"""The book's shipped tokenizer and model (hand-written; chapter 01 trains one, chapter 08 the other).

``load_tokenizer("stories")``: the tokenizer trained on the ``stories`` corpus;
``load_model("stories")``: the model trained on it.

Chapter 01 trains the tokenizer and shows that it equals the shipped file; chapters 02-09 load
it with ``load_tokenizer("stories")``. ``python tools/make_tokenizer.py`` rebuilds the file.
Chapter 08's ``llmbook train`` trained the model; ``load_model("stories")`` loads it (the folder
``assets/stories_model/`` holds its Hugging Face ``config.json``, ``model.safetensors``, and a
README with the command that rebuilds it and its validation loss).
"""

from __future__ import annotations

from pathlib import Path

from llmbook.tokenizer import BPETokenizer

__all__ = ["ASSETS", "STORIES_VOCAB_SIZE", "load_model", "load_tokenizer"]

ASSETS = Path(__file__).resolve().parent / "assets"
STORIES_VOCAB_SIZE = 2048  # 256 bytes + 1,791 merges + <|endoftext|>
_TOKENIZERS = {"stories": ASSETS / "stories_tokenizer.txt"}
_MODELS = {"stories": ASSETS / "stories_model"}


def load_tokenizer(name: str = "stories") -> BPETokenizer:
    """Load a tokenizer shipped with the package: ``"stories"`` (2,048 ids, chapter 01)."""
    if name not in _TOKENIZERS:
        raise ValueError(f"name must be one of {sorted(_TOKENIZERS)}, got {name!r}")
    return BPETokenizer.load(_TOKENIZERS[name])


def load_model(name: str = "stories", device=None):
    """Load a model shipped with the package, in evaluation mode: ``"stories"`` (chapter 08's
    Llama-style model trained on the book's corpus with the ``"stories"`` tokenizer)."""
    from llmbook.model import DecoderLM

    if name not in _MODELS:
        raise ValueError(f"name must be one of {sorted(_MODELS)}, got {name!r}")
    return DecoderLM.from_hf(_MODELS[name], device=device).eval()
