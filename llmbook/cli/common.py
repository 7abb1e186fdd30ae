"""What the ``llmbook`` subcommands share (hand-written; for chapter 08's trainer and 09's sampler).

A run folder (``run.json``, which ``llmbook train`` writes and ``llmbook generate`` reads), the
model and the tokenizer a run names, and the error a mistake on the command line raises.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

__all__ = [
    "RUN_FILE",
    "CliError",
    "make_model",
    "make_tokenizer",
    "read_run",
    "write_text",
]


RUN_FILE = "run.json"  # what a run folder holds to say what it is (and to resume it)


class CliError(Exception):
    """A mistake in the command line: printed as ``llmbook: error: ...``, exit status 2."""


RUN_KEYS = ("model", "train", "tokenizer", "corpus", "text", "val_fraction", "prompt")


def read_run(out: Path) -> dict:
    """The settings in ``out/run.json``, or a ``CliError`` naming the file and what is wrong."""
    path = out / RUN_FILE
    if not path.is_file():
        raise CliError(f"{str(path)!r} not found; is {str(out)!r} the folder of a run?")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CliError(f"{str(path)!r} is not valid JSON ({error})") from None
    missing = [key for key in RUN_KEYS if key not in run] if isinstance(run, dict) else RUN_KEYS
    if missing or not isinstance(run["model"], dict) or not isinstance(run["train"], dict):
        raise CliError(
            f"{str(path)!r} is not the run.json of llmbook train: it needs the keys "
            f"{', '.join(RUN_KEYS)} (model and train as objects); missing {', '.join(missing)}"
        )
    return run


def make_model(fields: dict, seed: int = 0):
    import torch

    from llmbook.model import DecoderLM, ModelConfig

    names = {f.name for f in dataclasses.fields(ModelConfig)}
    torch.manual_seed(seed)  # the initial weights
    return DecoderLM(ModelConfig(**{k: v for k, v in fields.items() if k in names}))


def make_tokenizer(name: str):
    """The book's tokenizer (``stories``) or a tiktoken encoding by name."""
    from llmbook.pretrained import load_tokenizer

    if name == "stories":
        return load_tokenizer(name)
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError:
        raise CliError(
            f"--tokenizer {name!r} is unknown; use 'stories' or one of "
            f"{', '.join(tiktoken.list_encoding_names())}"
        ) from None


def write_text(path: Path, text: str) -> None:
    from llmbook.io.files import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
