"""What the ``llmbook`` subcommands share (hand-written; for chapter 08's trainer and 09's sampler).

A run folder (``run.json``, which ``llmbook train`` writes and ``llmbook generate`` reads), the
model and the tokenizer a run names, and the error a mistake on the command line raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import json
from pathlib import Path

__all__ = [
    "RUN_FILE",
    "CliError",
    "frozen_imports",
    "make_model",
    "make_tokenizer",
    "read_run",
    "write_text",
]


RUN_FILE = "run.json"  # what a run folder holds to say what it is (and to resume it)


class CliError(Exception):
    """A mistake in the command line: printed as ``llmbook: error: ...``, exit status 2."""


# The JSON types each key of run.json may hold (null: None); runs of older llmbooks lack the
# optional keys.
RUN_KEYS = {
    "model": ("object",),
    "train": ("object",),
    "tokenizer": ("string",),
    "corpus": ("string", "null"),
    "text": ("string", "null"),
    "val_fraction": ("number",),
    "prompt": ("string",),
}
OPTIONAL_KEYS = {"text_sha256": ("string",), "model_preset": ("string",), "command": ("string",)}


def read_run(out: Path) -> dict:
    """The settings in ``out/run.json``, or a ``CliError`` naming the file and what is wrong
    (not found, not JSON, keys missing or values of the wrong type), in one line."""
    path = out / RUN_FILE
    if not path.is_file():
        raise CliError(f"{str(path)!r} not found; is {str(out)!r} the folder of a run?")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CliError(f"{str(path)!r} is not valid JSON ({error})") from None
    if not isinstance(run, dict):
        raise CliError(
            f"{str(path)!r} is not the run.json of llmbook train: it holds {described(run)}, "
            f"not an object with the keys {', '.join(RUN_KEYS)}"
        )
    missing = [key for key in RUN_KEYS if key not in run]
    problems = [f"it lacks {', '.join(missing)}"] if missing else []
    for key, allowed in {**RUN_KEYS, **OPTIONAL_KEYS}.items():
        if key in run and json_type(run[key]) not in allowed:
            wanted = " or ".join(f"{article(t)}{t}" for t in allowed)
            problems.append(f'"{key}" must be {wanted}, not {described(run[key])}')
    if not missing and (run["corpus"] is None) == (run["text"] is None):
        problems.append('one of "corpus" and "text" must be a string, the other null')
    if problems:
        raise CliError(f"{str(path)!r} is not the run.json of llmbook train: {'; '.join(problems)}")
    return run


def json_type(value: object) -> str:
    """The JSON type of a value that ``json.loads`` returned."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    types = {int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return types[type(value)]


def article(name: str) -> str:
    return "" if name in ("null", "true", "false") else "an " if name[0] in "aeiou" else "a "


def described(value: object) -> str:
    """``a number (5)``: the JSON type, and the value if it is short."""
    kind, text = json_type(value), json.dumps(value)
    return f"{article(kind)}{kind}" + (f" ({text})" if len(text) <= 40 and kind != text else "")


@contextlib.contextmanager
def frozen_imports(*modules: str):
    """Import ``modules``, then keep the garbage collector off every object alive so far
    (``gc.freeze``) until the block ends. torch's import leaves ~170,000 of them, alive to the
    end of the process, and a full collection would walk them all: 0.1 s of CPU in an
    ``llmbook generate`` of 1.8 s. Nothing is frozen if something else froze objects already."""
    for name in modules:
        importlib.import_module(name)
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # back where they were: in a longer process (tests), collected as before


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
