"""Argument checks of ``llmbook.tokenizer`` (hand-written: chapter 01, section 9, explains them).

The tokenizer's teaching cells call these as one-line guards. Each raises a ``TypeError`` (wrong
type) or a ``ValueError`` (wrong value) naming the argument, what was given and what is allowed.
The readers of Hugging Face files at the end raise a ``ValueError`` naming the file (and the line
of ``merges.txt``) for anything that is not what Hugging Face writes.
"""

from __future__ import annotations

import json
import numbers
import operator
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

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
    "check_word_vocab",
    "hf_tokenizer_files",
    "read_merges_txt",
    "read_tokenizer_json",
    "read_vocab_json",
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


def check_ids(ids: object, vocab: dict[int, object] | None = None) -> Iterator[int]:
    """Yield the items of ``ids`` (any iterable of integers) as ints; no bools, no strings.

    With ``vocab`` (a dict keyed by id), an id it lacks raises ``ValueError`` naming the id.
    """
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"ids must be an iterable of integers, got {type(ids).__name__}")
    for i in ids:
        if isinstance(i, bool):
            raise TypeError(f"ids must be integers, got bool ({i!r})")
        try:
            i = operator.index(i)  # Python, NumPy and 0-d tensor integers
        except TypeError:
            raise TypeError(f"ids must be integers, got {type(i).__name__}") from None
        if vocab is not None and i not in vocab:
            raise ValueError(f"id {i} is not in the vocabulary (ids 0..{max(vocab, default=-1)})")
        yield i


def check_word_vocab(vocab: object, unk_token: str) -> tuple[dict[str, int], dict[int, str]]:
    """Check a word-level ``{word: id}`` vocabulary that holds ``unk_token``; return a copy of it
    and its inverse ``{id: word}`` (two words may not share an id)."""
    if not isinstance(vocab, dict):
        raise TypeError(f"vocab must be a dict {{word: id}}, got {type(vocab).__name__}")
    if unk_token not in vocab:
        raise ValueError(f"unk_token {unk_token!r} must be in the vocabulary")
    inverse = {i: word for word, i in vocab.items()}
    if len(inverse) != len(vocab):
        raise ValueError("vocab maps two tokens to the same id")
    return dict(vocab), inverse


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


# ------------------------------------------------------------------ Hugging Face tokenizer files

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"the number {value!r}"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _expect(value: object, kind: type, path: Path, where: str, allowed: str):
    """``value`` if it is a ``kind`` (bools are no ints); else a ValueError naming the file."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{path}: {where} must be {allowed}, got {_json_type(value)}")
    return value


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} must be UTF-8 text: {error}") from None


def _read_json(path: Path) -> object:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} must be a JSON file, but is not valid JSON: {error}") from None


def _check_vocab(vocab: object, path: Path, where: str) -> dict[str, int]:
    _expect(vocab, dict, path, where, 'an object {"token": id, ...}')
    for token, i in vocab.items():
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < MAX_VOCAB_SIZE:
            raise ValueError(
                f"{path}: {where} maps {token!r} to {i!r}; ids must be integers in "
                f"0..{MAX_VOCAB_SIZE - 1}"
            )
    return vocab


def _check_merge(merge: object, path: Path, where: str) -> tuple[str, str]:
    parts = merge.split(" ") if isinstance(merge, str) else merge
    if (
        not isinstance(parts, list)
        or len(parts) != 2
        or not all(isinstance(p, str) and p for p in parts)
    ):
        raise ValueError(
            f'{path}: {where} is {merge!r:.60}; a merge must be two tokens, as "Ġ t" or ["Ġ", "t"]'
        )
    return parts[0], parts[1]


def hf_tokenizer_files(path: object) -> Path:
    """The folder ``path``, checked to hold ``tokenizer.json`` or ``vocab.json`` + ``merges.txt``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder (str or Path), got {type(path).__name__}")
    folder = Path(path)
    has_json = (folder / "tokenizer.json").is_file()
    if not has_json and not (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    ):
        what = "a file" if folder.is_file() else "a folder" if folder.is_dir() else "missing"
        raise FileNotFoundError(
            f"{folder} ({what}) must be a folder holding a Hugging Face tokenizer.json, or GPT-2's "
            "vocab.json and merges.txt"
        )
    return folder


def read_vocab_json(path: Path) -> dict[str, int]:
    """GPT-2's ``vocab.json``: an object ``{"token": id}``."""
    return _check_vocab(_read_json(path), path, "the file")


def read_merges_txt(path: Path) -> list[tuple[str, str]]:
    """GPT-2's ``merges.txt``: an optional ``#version`` line, then one ``left right`` merge a line."""
    merges = []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line or line.startswith("#version"):
            continue
        left, space, right = line.partition(" ")
        if not (left and space and right) or " " in right:
            raise ValueError(
                f"{path}, line {number}: {line!r:.60} is not a merge; each line must be two tokens "
                "separated by one space, such as 'Ġ t' (the first line may be '#version: ...')"
            )
        merges.append((left, right))
    return merges


def read_tokenizer_json(
    path: Path,
) -> tuple[dict[str, int], list[tuple[str, str]], dict[str, int], list[dict]]:
    """A BPE ``tokenizer.json``: its vocabulary, merges, added tokens and pre-tokenizer steps.

    Each step is an object; a step's ``pattern``, if present, is an object whose ``Regex``, if
    present, is a string.
    """
    spec = _expect(_read_json(path), dict, path, "the file", "a JSON object")
    model = _expect(spec.get("model"), dict, path, "'model'", 'an object with "type": "BPE"')
    if model.get("type") != "BPE":
        raise ValueError(
            f"{path}: 'model.type' is {model.get('type')!r}; only 'BPE' tokenizers can be read"
        )
    vocab = _check_vocab(model.get("vocab"), path, "'model.vocab'")
    listed = _expect(model.get("merges"), list, path, "'model.merges'", "an array of merges")
    merges = [_check_merge(m, path, f"'model.merges'[{k}]") for k, m in enumerate(listed)]
    added, tokens = {}, spec.get("added_tokens")
    tokens = _expect([] if tokens is None else tokens, list, path, "'added_tokens'", "an array")
    for k, token in enumerate(tokens):
        where = f"'added_tokens'[{k}]"
        _expect(token, dict, path, where, 'an object {"id": ..., "content": ...}')
        content = _expect(token.get("content"), str, path, f"{where}.content", "a string")
        added[content] = _check_vocab({content: token.get("id")}, path, f"{where}.id")[content]
    pre = spec.get("pre_tokenizer")
    steps = []
    if pre is not None:
        _expect(pre, dict, path, "'pre_tokenizer'", "an object or null")
        where = "'pre_tokenizer.pretokenizers'"
        steps = _expect(pre.get("pretokenizers", [pre]), list, path, where, "an array")
    for k, step in enumerate(steps):
        where = f"'pre_tokenizer' step {k}"
        _expect(step, dict, path, where, "an object")
        pattern = _expect(step.get("pattern", {}), dict, path, f"{where}.pattern", "an object")
        _expect(pattern.get("Regex", ""), str, path, f"{where}.pattern.Regex", "a string")
    return vocab, merges, added, steps
