# Generated from chapters/02_data_windowing.ipynb by tools/export.py; do not edit, edit the chapter.

import gzip
import inspect
import os
import re
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from llmbook.checks import check_fraction, check_int, check_token_ids
from llmbook.io.download import REMOTE_CORPORA, corpus_path

# Token files live in the hand-written llmbook/io/tokenfile.py (section 9); re-exported here.
from llmbook.io.tokenfile import TokenFile as TokenFile
from llmbook.io.tokenfile import read_token_file as read_token_file
from llmbook.io.tokenfile import tokenize_file as tokenize_file
from llmbook.io.tokenfile import write_token_file as write_token_file
from llmbook.stories import CORPUS_FILE, SEPARATOR


def load_corpus(
    name: str = "stories", cache_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> str:
    """Return a corpus as one string.

    ``"stories"``: the book's generated children's stories, shipped in the package (offline,
    about 1.1 MB, each story followed by a line ``<|endoftext|>``). ``"tinyshakespeare"`` and
    ``"tinystories"``: downloaded on first use into ``cache_dir`` (default ``$LLMBOOK_CACHE`` or
    ``~/.cache/llmbook``) and verified by SHA-256 (``llmbook.io.download.corpus_path``); with
    ``download_missing=False`` a missing file raises ``FileNotFoundError`` instead.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a str such as 'stories', got {type(name).__name__} ({name!r})"
        )
    if name == "stories":
        return gzip.decompress(CORPUS_FILE.read_bytes()).decode("utf-8")
    if name not in REMOTE_CORPORA:
        known = ", ".join(["stories", *sorted(REMOTE_CORPORA)])
        raise ValueError(f"unknown corpus name {name!r}; available: {known}")
    return corpus_path(name, cache_dir, download_missing).read_text(encoding="utf-8")


def corpus_statistics(text: str) -> dict[str, float]:
    """Size and variety of a text.

    Words are runs of letters and apostrophes, lower-cased; ``<|endoftext|>`` separators are not
    words. Returns ``n_bytes`` (UTF-8), ``n_chars``, ``n_documents`` (separator-delimited, 1 if
    none), ``n_words``, ``vocabulary`` (distinct words), ``n_trigrams`` and ``distinct_trigrams``
    (word 3-grams), ``distinct_trigram_ratio`` and ``gzip_ratio`` (bytes / gzip level-9 bytes).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    data = text.encode("utf-8")
    documents = [d for d in text.split(SEPARATOR) if d.strip()]
    words = re.findall(r"[a-z']+", text.replace(SEPARATOR, " ").lower())
    trigrams = Counter(zip(words, words[1:], words[2:]))
    n_trigrams = max(len(words) - 2, 0)
    return {
        "n_bytes": len(data),
        "n_chars": len(text),
        "n_documents": max(len(documents), 1),
        "n_words": len(words),
        "vocabulary": len(set(words)),
        "n_trigrams": n_trigrams,
        "distinct_trigrams": len(trigrams),
        "distinct_trigram_ratio": len(trigrams) / n_trigrams if n_trigrams else 0.0,
        "gzip_ratio": len(data) / len(zlib.compress(data, 9)) if data else 0.0,
    }


def encode_text(tokenizer: object, text: str) -> list[int]:
    """Encode ``text`` with ``tokenizer``, letting ``<|endoftext|>`` through as a special token.

    Tokenizers whose ``encode`` takes ``allowed_special`` (tiktoken, chapter 01's
    ``BPETokenizer``) get ``allowed_special={"<|endoftext|>"}``; others get the text alone.
    """
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(
            f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}"
        )
    try:
        accepts = "allowed_special" in inspect.signature(tokenizer.encode).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        accepts = False
    if accepts and SEPARATOR in text:
        return list(tokenizer.encode(text, allowed_special={SEPARATOR}))
    return list(tokenizer.encode(text))


class WindowStarts:
    """Where the windows of ``context_length + 1`` tokens start in a stream of ``n_tokens`` ids.

    Regular window ``i`` starts at ``i * stride`` (``stride`` defaults to ``context_length`` = T)
    while ``start + T + 1 <= n_tokens``. With ``cover_tail=True`` one more window, starting at
    ``last_start = n_tokens - T - 1`` and so ending at the last token, covers the tokens the
    regular windows leave over. ``len()`` is the number of windows, ``start(i)`` where one begins.
    """

    def __init__(
        self, n_tokens: int, context_length: int, stride: int | None = None, cover_tail: bool = True
    ):
        n_tokens = check_int(n_tokens, "n_tokens", minimum=0)
        self.context_length = T = check_int(context_length, "context_length")
        self.stride = T if stride is None else check_int(stride, "stride")
        if n_tokens < T + 1:
            raise ValueError(
                f"ids too short for one window: {n_tokens} tokens, but context_length={T} "
                f"needs at least {T + 1} (inputs plus the one-token shift)"
            )
        self.last_start = n_tokens - T - 1
        self.n_regular = self.last_start // self.stride + 1  # starts 0, stride, ... <= last_start
        has_gap = (self.n_regular - 1) * self.stride != self.last_start
        self.n_windows = self.n_regular + int(bool(cover_tail) and has_gap)

    def __len__(self) -> int:
        return self.n_windows

    def start(self, index: int) -> int:
        """Where window ``index`` begins (negative indices count from the end)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        i = index + self.n_windows if index < 0 else int(index)
        if not 0 <= i < self.n_windows:
            raise IndexError(f"window index {index} out of range for {self.n_windows} windows")
        return i * self.stride if i < self.n_regular else self.last_start


class SlidingWindowDataset(WindowStarts, Dataset):
    """Input/target windows over a stream of token ids, targets shifted by one token.

    Window ``i`` starts at ``s = self.start(i)`` (``WindowStarts``: every ``stride`` tokens, plus
    the tail window if ``cover_tail``); item ``i`` is ``(ids[s : s + T], ids[s + 1 : s + T + 1])``,
    two LongTensors of shape ``(T,)``. ``ids``: a list of ints, a 1-D integer tensor or array, or
    a ``TokenFile`` (memory maps are read one window at a time).
    """

    def __init__(
        self, ids, context_length: int, stride: int | None = None, cover_tail: bool = True
    ):
        self.ids = check_token_ids(ids.ids if isinstance(ids, TokenFile) else ids)
        super().__init__(len(self.ids), context_length, stride, cover_tail)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.start(index)
        chunk = self.ids[s : s + self.context_length + 1]  # (T + 1,)
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(chunk.astype(np.int64))
        return chunk[:-1], chunk[1:]


def train_val_split(
    data: str | Sequence[int] | torch.Tensor | np.ndarray,
    val_fraction: float = 0.1,
    separator: str = SEPARATOR,
) -> tuple:
    """Split ``data`` into ``(train, val)``: the first ``1 - val_fraction`` of it, and the rest.

    For a ``str`` containing ``separator``, the cut moves forward to the end of the next
    separator line (or, when no document follows that one, back to the end of the previous
    one), so no document is split between the two parts. Other sequences (lists, tensors,
    arrays of ids) are cut at ``int(len(data) * (1 - val_fraction))``.
    """
    if not isinstance(data, (str, Sequence, torch.Tensor, np.ndarray)):
        raise TypeError(f"data must be a str or a sequence of ids, got {type(data).__name__}")
    cut = int(len(data) * (1 - check_fraction(val_fraction, "val_fraction")))
    if isinstance(data, str) and separator and separator in data:

        def end_of_separator_line(found: int) -> int:
            end = found + len(separator)
            return end + 1 if data[end : end + 1] == "\n" else end

        found = data.find(separator, cut)
        if found == -1 or not data[end_of_separator_line(found) :].strip():
            found = data.rfind(separator, 0, cut)  # no document after the next boundary: go back
        if found == -1:
            raise ValueError(
                f"no document boundary ({separator!r}) leaves text on both sides of the split: "
                "the text holds a single document"
            )
        cut = end_of_separator_line(found)
    train, val = data[:cut], data[cut:]
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"split leaves an empty part (train {len(train)}, val {len(val)} items)")
    return train, val


def create_dataloader(
    data: str | Sequence[int] | torch.Tensor | np.ndarray,
    tokenizer: object | None = None,
    context_length: int = 256,
    stride: int | None = None,
    batch_size: int = 8,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    seed: int | None = None,
    cover_tail: bool = True,
) -> DataLoader:
    """A ``DataLoader`` of ``(inputs, targets)`` batches, each a LongTensor of shape ``(B, T)``.

    ``data`` is a text (then ``tokenizer`` is required, see ``encode_text``) or token ids.
    Windows come from ``SlidingWindowDataset(ids, context_length, stride, cover_tail)``. With
    ``seed`` (an int >= 0) the shuffling order is drawn from a ``torch.Generator`` seeded with
    it, so two loaders with the same seed give the same batches.
    """
    if isinstance(data, str) and tokenizer is None:
        raise TypeError(
            "data is a text, so a tokenizer is needed: create_dataloader(text, tokenizer, ...)"
        )
    ids = encode_text(tokenizer, data) if isinstance(data, str) else data
    batch_size = check_int(batch_size, "batch_size")
    num_workers = check_int(num_workers, "num_workers", minimum=0)
    generator = (
        None if seed is None else torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    )
    dataset = SlidingWindowDataset(ids, context_length, stride, cover_tail=cover_tail)
    return DataLoader(
        dataset,
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )


def random_batch(
    data: Sequence[int] | torch.Tensor | np.ndarray | TokenFile,
    batch_size: int,
    context_length: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows at uniformly random starts: ``(x, y)``, LongTensors of shape ``(B, T)``.

    ``data``: token ids in memory (a list, or faster, a 1-D tensor or array) or a ``TokenFile``
    (read lazily). Starts are drawn with ``torch.randint(..., generator=generator)``, so a seeded
    generator gives the same batch from ids in memory and from the same ids in a file. ``y`` is
    ``x`` shifted by one token. ``device``: where to put ``x`` and ``y`` (default: the CPU).
    """
    ids = check_token_ids(
        data.ids if isinstance(data, TokenFile) else data, "data", check_values=False
    )
    B, T = check_int(batch_size, "batch_size"), check_int(context_length, "context_length")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if len(ids) < T + 1:
        raise ValueError(f"data holds {len(ids)} tokens, fewer than context_length + 1 = {T + 1}")
    starts = torch.randint(0, len(ids) - T, (B,), generator=generator)  # (B,)
    if isinstance(ids, torch.Tensor):
        batch = ids[starts[:, None] + torch.arange(T + 1)]  # (B, T + 1)
    else:
        batch = torch.from_numpy(
            np.stack([ids[s : s + T + 1] for s in starts.tolist()]).astype(np.int64)
        )
    x, y = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()  # (B, T) each
    return (x, y) if device is None else (x.to(device), y.to(device))


__all__ = [
    "load_corpus",
    "corpus_statistics",
    "encode_text",
    "WindowStarts",
    "SlidingWindowDataset",
    "train_val_split",
    "create_dataloader",
    "random_batch",
]
