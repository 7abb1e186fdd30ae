# Generated from chapters/02_data_windowing.ipynb by tools/export.py; do not edit, edit the chapter.

import gzip
import hashlib
import http.client
import inspect
import os
import re
import tempfile
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from llmbook.checks import check_int
from llmbook.stories import CORPUS_FILE, SEPARATOR


@dataclass(frozen=True)
class RemoteCorpus:
    """A public text file we may download: where from, its SHA-256, its size in bytes."""

    url: str
    sha256: str
    filename: str
    size: int
    description: str


# Checksums found pinned in several independent projects (for Tiny Shakespeare, TensorFlow
# Datasets' url_checksums; for TinyStories-valid.txt, projects that pin the Hugging Face file).
REMOTE_CORPORA: dict[str, RemoteCorpus] = {
    "tinyshakespeare": RemoteCorpus(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        filename="tinyshakespeare.txt",
        size=1_115_394,
        description="Tiny Shakespeare (Karpathy's char-rnn), 1.1 MB of plays",
    ),
    "tinystories": RemoteCorpus(
        url="https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt",
        sha256="94e431816c4cce81ff71e4408ff8d3bda9a42e8d2663986697c3954288cb38b4",
        filename="TinyStories-valid.txt",
        size=19_447_282,
        description="the TinyStories validation file, 21,990 stories separated by <|endoftext|>, 19 MB",
    ),
}


def default_cache_dir() -> Path:
    """Where downloaded corpora live: ``$LLMBOOK_CACHE`` if set, else ``~/.cache/llmbook``."""
    env = os.environ.get("LLMBOOK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llmbook"


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, path: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``path``, keeping it only if its SHA-256 equals ``sha256``.

    The bytes go to a temporary file in the same folder, are hashed on the way, and the file is
    renamed to ``path`` only after the checksum matched, so ``path`` never holds a partial or
    corrupt file. Raises ``ConnectionError`` when the server cannot be reached or answers with an
    error, and ``ValueError`` on a checksum mismatch (the temporary file is deleted in both cases).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                raise ConnectionError(
                    f"could not download {url}: {error}. Check the network connection, "
                    f"or download the file by hand and save it as {path}"
                ) from error
        got = digest.hexdigest()
        if got != sha256.lower():
            raise ValueError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256}, got {got}; "
                "the download was discarded (the file on the server changed, or the transfer "
                "was corrupted)"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_corpus(
    name: str = "stories", cache_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> str:
    """Return a corpus as one string.

    ``"stories"``: the book's generated children's stories, shipped in the package (offline,
    about 1.1 MB, each story followed by a line ``<|endoftext|>``). ``"tinyshakespeare"`` and
    ``"tinystories"``: downloaded on first use into ``cache_dir`` (default
    ``default_cache_dir()``) and verified by SHA-256, then read from there.
    With ``download_missing=False`` a missing file raises ``FileNotFoundError`` instead.
    """
    if name == "stories":
        return gzip.decompress(CORPUS_FILE.read_bytes()).decode("utf-8")
    if name not in REMOTE_CORPORA:
        known = ", ".join(["stories", *sorted(REMOTE_CORPORA)])
        raise ValueError(f"unknown corpus name {name!r}; available: {known}")
    source = REMOTE_CORPORA[name]
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / source.filename
    if not path.exists():
        if not download_missing:
            raise FileNotFoundError(
                f"{path} does not exist; call load_corpus({name!r}) with download_missing=True "
                f"or save {source.url} there yourself"
            )
        download(source.url, path, source.sha256)
    elif sha256_file(path) != source.sha256:
        raise ValueError(
            f"{path} does not have the expected SHA-256 {source.sha256}; delete it and load again"
        )
    return path.read_text(encoding="utf-8")


def corpus_statistics(text: str) -> dict[str, float]:
    """Size and variety of a text.

    Words are runs of letters and apostrophes, lower-cased; ``<|endoftext|>`` separators are not
    words. Returns ``n_bytes`` (UTF-8), ``n_chars``, ``n_documents`` (separator-delimited, 1 if
    none), ``n_words``, ``vocabulary`` (distinct words), ``n_trigrams`` and ``distinct_trigrams``
    (word 3-grams), ``distinct_trigram_ratio`` and ``gzip_ratio`` (bytes / gzip level-9 bytes:
    the more repetitive a text, the higher).
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


def _as_id_array(ids: object) -> torch.Tensor | np.ndarray:
    """A 1-D integer sequence as a LongTensor, or a NumPy array (memory maps stay lazy)."""
    if isinstance(ids, np.ndarray):
        array = ids
    elif isinstance(ids, torch.Tensor):
        array = ids.detach().cpu()
    elif isinstance(ids, (list, tuple, range)):
        array = torch.tensor(list(ids), dtype=torch.long) if len(ids) else torch.empty(0, dtype=torch.long)
    else:
        raise TypeError(
            f"ids must be a list of ints, a 1-D tensor or a 1-D NumPy array, got {type(ids).__name__}"
        )
    if array.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {tuple(array.shape)}")
    is_int = (
        np.issubdtype(array.dtype, np.integer)
        if isinstance(array, np.ndarray)
        else not (array.dtype.is_floating_point or array.dtype.is_complex or array.dtype == torch.bool)
    )
    if not is_int:
        raise TypeError(f"ids must hold integers, got dtype {array.dtype}")
    if isinstance(array, torch.Tensor) and array.dtype != torch.long:
        array = array.long()
    return array


class SlidingWindowDataset(Dataset):
    """Input/target windows over a stream of token ids, targets shifted by one.

    Item ``i`` is ``(inputs, targets)``, two LongTensors of shape ``(T,)`` with
    ``T = context_length``: ``inputs = ids[s : s + T]`` and ``targets = ids[s + 1 : s + T + 1]``,
    where window ``i`` starts at ``s = i * stride``. Windows start while they fit
    (``s + T + 1 <= len(ids)``); with ``cover_tail=True`` one more window, ending at the last
    token, is added when the regular ones leave tokens uncovered, so with
    ``stride <= context_length`` every token but the first is a target at least once.

    ``ids`` may be a list, a 1-D tensor or a 1-D NumPy array; a NumPy memory map is read lazily,
    one window at a time. ``stride`` defaults to ``context_length`` (no overlap).
    """

    def __init__(
        self,
        ids: Sequence[int] | torch.Tensor | np.ndarray,
        context_length: int,
        stride: int | None = None,
        cover_tail: bool = True,
    ) -> None:
        self.context_length = check_int(context_length, "context_length")
        self.stride = self.context_length if stride is None else check_int(stride, "stride")
        self.ids = _as_id_array(ids)
        n = len(self.ids)
        if n < self.context_length + 1:
            raise ValueError(
                f"ids too short for one window: {n} tokens, but context_length={self.context_length} "
                f"needs at least {self.context_length + 1} (inputs plus the one-token shift); "
                "use a longer text or a smaller context_length"
            )
        self.last_start = n - self.context_length - 1
        self.n_regular = self.last_start // self.stride + 1
        has_gap = (self.n_regular - 1) * self.stride != self.last_start
        self.n_windows = self.n_regular + int(cover_tail and has_gap)

    def __len__(self) -> int:
        return self.n_windows

    def start(self, index: int) -> int:
        """Position in ``ids`` where window ``index`` begins (negative indices count from the end)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self.n_windows
        if not 0 <= index < self.n_windows:
            raise IndexError(f"window index out of range for {self.n_windows} windows")
        return index * self.stride if index < self.n_regular else self.last_start

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.start(index)
        chunk = self.ids[s : s + self.context_length + 1]
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
    Raises ``ValueError`` if ``val_fraction`` is not strictly between 0 and 1 or a part is empty.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}")
    cut = int(len(data) * (1 - val_fraction))
    if isinstance(data, str) and separator and separator in data:

        def end_of_separator_line(found: int) -> int:
            end = found + len(separator)
            return end + 1 if data[end : end + 1] == "\n" else end

        found = data.find(separator, cut)
        if found == -1 or not data[end_of_separator_line(found) :].strip():
            found = data.rfind(separator, 0, cut)  # no document after the next boundary: go back
        if found == -1:
            raise ValueError(
                f"no document boundary ({separator!r}) leaves text on both sides of the split; "
                "the text holds a single document: split it yourself, or add documents"
            )
        cut = end_of_separator_line(found)
    train, val = data[:cut], data[cut:]
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"split leaves an empty part (train {len(train)}, val {len(val)} items); "
            "use more data or another val_fraction"
        )
    return train, val


def encode_text(tokenizer: object, text: str) -> list[int]:
    """Encode ``text`` with ``tokenizer``, letting ``<|endoftext|>`` through as a special token.

    Tokenizers whose ``encode`` takes ``allowed_special`` (tiktoken, chapter 01's
    ``BPETokenizer``) get ``allowed_special={"<|endoftext|>"}``; others get the text alone.
    """
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}")
    try:
        accepts = "allowed_special" in inspect.signature(tokenizer.encode).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        accepts = False
    if accepts and SEPARATOR in text:
        return list(tokenizer.encode(text, allowed_special={SEPARATOR}))
    return list(tokenizer.encode(text))


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
    Windows come from ``SlidingWindowDataset(ids, context_length, stride, cover_tail)``;
    ``stride`` defaults to ``context_length``. With ``seed`` the shuffling order is drawn from a
    ``torch.Generator`` seeded with it, so two loaders with the same seed give the same batches.
    """
    if isinstance(data, str):
        if tokenizer is None:
            raise TypeError("data is a text, so a tokenizer is needed: create_dataloader(text, tokenizer, ...)")
        ids = encode_text(tokenizer, data)
    else:
        ids = data
    batch_size = check_int(batch_size, "batch_size")
    check_int(num_workers, "num_workers", minimum=0)
    dataset = SlidingWindowDataset(ids, context_length, stride, cover_tail=cover_tail)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )


TOKEN_FILE_MAGIC = b"LLMBTOK1"
TOKEN_DTYPES = ("uint8", "uint16", "uint32")


def token_dtype(max_id: int) -> np.dtype:
    """The smallest of uint16 and uint32 that holds ids up to ``max_id``."""
    if max_id < 0:
        raise ValueError(f"token ids must be >= 0, got max id {max_id}")
    if max_id <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    if max_id <= np.iinfo(np.uint32).max:
        return np.dtype(np.uint32)
    raise ValueError(f"token id {max_id} does not fit in uint32")


def write_token_file(
    path: str | os.PathLike, ids: Sequence[int] | torch.Tensor | np.ndarray, dtype: str | np.dtype | None = None
) -> Path:
    """Write token ids to ``path``: a 16-byte header, then the ids as little-endian unsigned ints.

    ``dtype`` is ``"uint8"``, ``"uint16"`` or ``"uint32"``; by default the smallest of uint16 and
    uint32 that holds the largest id. Raises ``ValueError`` for negative ids or ids that do not
    fit the dtype. The file is written to a temporary name and renamed, so it is never half-written.
    """
    array = _as_id_array(ids)
    array = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    lo = int(array.min()) if array.size else 0
    hi = int(array.max()) if array.size else 0
    if lo < 0:
        raise ValueError(f"token ids must be >= 0, found {lo}")
    if dtype is None:
        dt = token_dtype(hi)
    else:
        dt = np.dtype(dtype)
        if dt.name not in TOKEN_DTYPES:
            raise ValueError(f"dtype must be one of {TOKEN_DTYPES}, got {dt.name}")
        if hi > np.iinfo(dt).max:
            raise ValueError(
                f"ids do not fit the file's dtype: max id {hi} > {np.iinfo(dt).max}, the largest "
                f"{dt.name}; use dtype='uint32' (or leave dtype=None to choose automatically)"
            )
    path = Path(path)
    header = TOKEN_FILE_MAGIC + dt.name.encode("ascii").ljust(8, b"\0")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(array.astype(dt.newbyteorder("<"), copy=False).tobytes())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


class TokenFile:
    """Token ids in a file, memory-mapped (read lazily by the operating system).

    ``TokenFile(path)`` reads a file written by ``write_token_file``; for a header-less file of
    raw ids (such as nanoGPT's ``train.bin``) pass its ``dtype``. ``len(f)`` is the number of
    tokens, ``f[i]`` / ``f[a:b]`` index the ids, ``f.ids`` is the NumPy memory map.
    """

    def __init__(self, path: str | os.PathLike, dtype: str | np.dtype | None = None) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            head = f.read(16)
        if head[:8] == TOKEN_FILE_MAGIC:
            name = head[8:16].rstrip(b"\0").decode("ascii")
            if name not in TOKEN_DTYPES:
                raise ValueError(f"{self.path}: unknown dtype {name!r} in header")
            if dtype is not None and np.dtype(dtype) != np.dtype(name):
                raise ValueError(
                    f"{self.path}: its header says {name}, but dtype={np.dtype(dtype).name} was given; "
                    "leave dtype=None for files written by write_token_file"
                )
            dt, offset = np.dtype(name), 16
        elif dtype is not None:
            dt, offset = np.dtype(dtype), 0
        else:
            raise ValueError(f"{self.path} has no token-file header; pass dtype= to read raw ids")
        self.dtype = dt.newbyteorder("<")
        n_bytes = self.path.stat().st_size - offset
        if n_bytes % self.dtype.itemsize:
            raise ValueError(f"{self.path}: {n_bytes} bytes of ids is not a multiple of {self.dtype.itemsize}")
        if n_bytes == 0:
            self.ids = np.empty(0, dtype=self.dtype)
        else:
            self.ids = np.memmap(self.path, dtype=self.dtype, mode="r", offset=offset)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        return self.ids[index]

    def random_windows(
        self,
        batch_size: int,
        context_length: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` windows at uniformly random starts: ``(inputs, targets)``, each ``(B, T)``.

        Starts are drawn with ``torch.randint(..., generator=generator)``, so a seeded generator
        gives the same batches every time. Targets are the inputs shifted by one token.
        """
        batch_size = check_int(batch_size, "batch_size")
        context_length = check_int(context_length, "context_length")
        if len(self) < context_length + 1:
            raise ValueError(
                f"{self.path} holds {len(self)} tokens, fewer than context_length + 1 = {context_length + 1}"
            )
        starts = torch.randint(0, len(self) - context_length, (batch_size,), generator=generator)
        rows = np.stack([self.ids[s : s + context_length + 1] for s in starts.tolist()])
        batch = torch.from_numpy(rows.astype(np.int64))  # (B, T + 1)
        inputs, targets = batch[:, :-1], batch[:, 1:]  # (B, T) each
        if device is not None:
            inputs, targets = inputs.to(device), targets.to(device)
        return inputs, targets

    def dataset(self, context_length: int, stride: int | None = None) -> SlidingWindowDataset:
        """A ``SlidingWindowDataset`` over the memory map (windows are read lazily)."""
        return SlidingWindowDataset(self.ids, context_length, stride)


def read_token_file(path: str | os.PathLike, dtype: str | np.dtype | None = None) -> TokenFile:
    """Open a token file as a memory-mapped ``TokenFile`` (see ``TokenFile``)."""
    return TokenFile(path, dtype)


__all__ = [
    "RemoteCorpus",
    "REMOTE_CORPORA",
    "default_cache_dir",
    "sha256_file",
    "download",
    "load_corpus",
    "corpus_statistics",
    "SlidingWindowDataset",
    "train_val_split",
    "encode_text",
    "create_dataloader",
    "TOKEN_FILE_MAGIC",
    "TOKEN_DTYPES",
    "token_dtype",
    "write_token_file",
    "TokenFile",
    "read_token_file",
]
