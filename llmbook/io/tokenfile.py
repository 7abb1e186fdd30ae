"""Token ids on disk: a compact binary file, memory-mapped (hand-written; chapter 02 uses it).

A corpus is tokenized once and its ids are stored as little-endian unsigned integers in the
smallest type that holds the vocabulary (``uint16`` up to 65,535 ids, ``uint32`` beyond), then
memory-mapped, so the operating system reads only the pages a batch touches.

The format (version 2) is a 64-byte header followed by the ids::

    bytes  0-7    b"LLMBTOK2"                 magic (a file of this format, version 2)
    bytes  8-15   b"uint16\\0\\0"               dtype name, ASCII, padded with NUL bytes
    bytes 16-23   count                       number of ids, uint64 little-endian
    bytes 24-55   SHA-256 of the id bytes      checksum of everything after the header
    bytes 56-63   zeros                        reserved (the ids start 64-byte aligned)
    bytes 64-     count ids                   little-endian, ``itemsize`` bytes each

Opening a file always checks that its size is exactly ``64 + count * itemsize``, so a file cut
short or appended to raises a ``ValueError`` naming it (a cheap check, whatever the size). The
checksum is verified on open for files of up to ``VERIFY_LIMIT`` bytes of ids (about a
quarter of a second); larger ones are verified with ``TokenFile(path, verify=True)`` or
``token_file.verify()``, since reading a file of many gigabytes on every open would defeat the
memory map. Header-less files of raw ids (nanoGPT's ``train.bin``) open with an explicit
``dtype``; they carry no count, so only a size that is not a multiple of the item size is caught.

Files are written through :func:`llmbook.io.files.atomic_write`: a reader sees the old file or the
whole new one, never part of either. A memory map has one hazard: if its file is cut short on disk
while it is open (``truncate``, a copy over it in place), reading a page past the new end kills
the process with SIGBUS, which Python cannot catch. ``TokenFile[...]`` therefore checks the
file's size before every read and raises a ``ValueError`` instead; ``TokenFile.ids``, the raw
memory map, does not. Replacing the file (a rename, as ``atomic_write`` does) is safe: the map
keeps the old file's bytes. :func:`tokenize_file` turns a large text file into a token
file with bounded memory and a progress bar.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from llmbook.checks import check_int, check_token_ids
from llmbook.io.files import atomic_write
from llmbook.io.progress import progress_bar
from llmbook.stories import SEPARATOR

__all__ = [
    "HEADER_SIZE",
    "TOKEN_DTYPES",
    "TOKEN_FILE_MAGIC",
    "VERIFY_LIMIT",
    "TokenFile",
    "TokenFileWriter",
    "read_token_file",
    "token_dtype",
    "tokenize_file",
    "write_token_file",
]

TOKEN_FILE_MAGIC = b"LLMBTOK2"
HEADER_SIZE = 64
TOKEN_DTYPES = ("uint8", "uint16", "uint32")
VERIFY_LIMIT = 256 * 2**20  # bytes of ids checked against the checksum on every open


def token_dtype(max_id: int) -> np.dtype:
    """The smallest of uint16 and uint32 that holds ids up to ``max_id``."""
    max_id = check_int(max_id, "max_id", minimum=0)
    if max_id <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    if max_id <= np.iinfo(np.uint32).max:
        return np.dtype(np.uint32)
    raise ValueError(f"token id {max_id} does not fit in uint32")


def _id_dtype(dtype: object, where: str = "") -> np.dtype:
    """``dtype`` as a little-endian NumPy dtype, if it is one of ``TOKEN_DTYPES``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in TOKEN_DTYPES or dt.byteorder == ">":
        raise ValueError(
            f"{where}dtype must be one of {', '.join(TOKEN_DTYPES)} (little-endian unsigned "
            f"integers), got {dtype!r}"
        )
    return dt.newbyteorder("<")


def _header(dtype: np.dtype, count: int, sha256: bytes) -> bytes:
    name = dtype.name.encode("ascii").ljust(8, b"\0")
    header = TOKEN_FILE_MAGIC + name + count.to_bytes(8, "little") + sha256
    return header.ljust(HEADER_SIZE, b"\0")


class TokenFileWriter:
    """Write a token file in pieces: ``with TokenFileWriter(path, "uint16") as w: w.write(ids)``.

    The ids go to a temporary file beside ``path``; leaving the ``with`` block fills in the
    header (count and checksum) and renames the file onto ``path``. If the block raises,
    ``path`` is left as it was and the temporary file is removed.
    """

    def __init__(self, path: str | os.PathLike, dtype: str | np.dtype) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        self.path = Path(path)
        self.dtype = _id_dtype(dtype)
        self.count = 0
        self._digest = hashlib.sha256()
        self._max = int(np.iinfo(self.dtype).max)

    def __enter__(self) -> TokenFileWriter:
        self._context = atomic_write(self.path, "wb")
        self._file = self._context.__enter__()
        self._file.write(bytes(HEADER_SIZE))  # a placeholder until the count is known
        return self

    def write(self, ids: Iterable[int] | torch.Tensor | np.ndarray) -> None:
        """Append ids (a list, a 1-D tensor or array); each must fit the file's dtype."""
        array = check_token_ids(list(ids) if isinstance(ids, Iterator) else ids)
        array = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        if array.size and int(array.max()) > self._max:
            raise ValueError(
                f"ids do not fit the file's dtype: max id {int(array.max())} > {self._max}, the "
                f"largest {self.dtype.name}; use dtype='uint32' (or dtype=None to choose automatically)"
            )
        data = array.astype(self.dtype, copy=False).tobytes()
        self._digest.update(data)
        self._file.write(data)
        self.count += array.size

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self._file.seek(0)
                self._file.write(_header(self.dtype, self.count, self._digest.digest()))
            except BaseException as error:
                self._context.__exit__(type(error), error, error.__traceback__)
                raise
        return bool(self._context.__exit__(exc_type, exc, tb))


def write_token_file(
    path: str | os.PathLike,
    ids: Iterable[int] | torch.Tensor | np.ndarray,
    dtype: str | np.dtype | None = None,
) -> Path:
    """Write token ids to ``path`` (the format in this module's docstring); return the path.

    ``dtype`` is ``"uint8"``, ``"uint16"`` or ``"uint32"``; by default the smallest of uint16
    and uint32 that holds the largest id. Raises ``TypeError`` for ids that are not integers and
    ``ValueError`` for negative ids or ids that do not fit the dtype; nothing is written then.
    """
    array = check_token_ids(ids)
    if dtype is None:
        dtype = token_dtype(int(array.max()) if len(array) else 0)
    with TokenFileWriter(path, dtype) as writer:
        writer.write(array)
    return writer.path


class TokenFile:
    """Token ids in a file, memory-mapped (read lazily by the operating system).

    ``TokenFile(path)`` opens a file written by ``write_token_file`` and checks its size against
    the count in its header, and its checksum when ``verify`` says so (``None``: for files of up
    to ``VERIFY_LIMIT`` bytes of ids). For a header-less file of raw ids (nanoGPT's
    ``train.bin``) pass its ``dtype``. ``len(f)`` is the number of ids, ``f[i]`` and ``f[a:b]``
    index them, ``f.ids`` is the NumPy memory map (uint16 or uint32; ``SlidingWindowDataset``
    and ``random_batch`` accept the ``TokenFile`` itself). ``f[...]`` first checks that the file
    on disk has not been cut short since it was opened (a ``ValueError`` naming it, where reading
    the memory map would kill the process with SIGBUS); ``f.ids`` reads without that check.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        dtype: str | np.dtype | None = None,
        verify: bool | None = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        self.path = Path(path)
        with open(self.path, "rb") as f:
            head = f.read(HEADER_SIZE)
        stat = self.path.stat()
        size = stat.st_size
        self._opened = (stat.st_dev, stat.st_ino, size)  # what __getitem__ checks before reading
        if head[:8] == TOKEN_FILE_MAGIC:
            self.dtype, self.sha256 = self._read_header(head, size, dtype)
            offset = HEADER_SIZE
        elif head[:7] == TOKEN_FILE_MAGIC[:7]:
            raise ValueError(
                f"{self.path}: token-file format {head[7:8]!r} is not supported; write it again"
            )
        elif dtype is not None:
            self.dtype, self.sha256, offset = _id_dtype(dtype, f"{self.path}: "), None, 0
            if size % self.dtype.itemsize:
                raise ValueError(
                    f"{self.path}: {size} bytes of raw ids is not a multiple of {self.dtype.itemsize}"
                )
        else:
            raise ValueError(f"{self.path} has no token-file header; pass dtype= to read raw ids")
        if size == offset:
            self.ids = np.empty(0, dtype=self.dtype)
        else:
            self.ids = np.memmap(self.path, dtype=self.dtype, mode="r", offset=offset)
        if verify is None:
            verify = self.sha256 is not None and size - offset <= VERIFY_LIMIT
        if verify:
            self.verify()

    def _read_header(self, head: bytes, size: int, dtype: object) -> tuple[np.dtype, str]:
        if len(head) < HEADER_SIZE:
            raise ValueError(
                f"{self.path}: the header is cut short ({len(head)} of {HEADER_SIZE} bytes)"
            )
        raw = head[8:16].rstrip(b"\0")
        if not raw.isascii():
            raise ValueError(
                f"{self.path}: the header's dtype field is not ASCII ({raw!r}); the file is damaged"
            )
        name = raw.decode("ascii")
        if name not in TOKEN_DTYPES:
            raise ValueError(
                f"{self.path}: unknown dtype {name!r} in the header; known: {', '.join(TOKEN_DTYPES)}"
            )
        if dtype is not None and _id_dtype(dtype, f"{self.path}: ") != np.dtype(name).newbyteorder(
            "<"
        ):
            raise ValueError(
                f"{self.path}: its header says {name}, but dtype={np.dtype(dtype).name} was given; "
                "leave dtype=None for files written by write_token_file"
            )
        dt = np.dtype(name).newbyteorder("<")
        count = int.from_bytes(head[16:24], "little")
        expected = HEADER_SIZE + count * dt.itemsize
        if size != expected:
            what = "cut short" if size < expected else "longer than its header says (appended to?)"
            raise ValueError(
                f"{self.path} is {what}: the header says {count:,} ids of {name}, "
                f"{expected:,} bytes in all, but the file holds {size:,} bytes"
            )
        return dt, head[24:56].hex()

    def verify(self) -> None:
        """Raise ``ValueError`` unless the ids match the checksum in the header (reads the file)."""
        if self.sha256 is None:
            raise ValueError(
                f"{self.path} is a raw file without a header: it has no checksum to verify"
            )
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            f.seek(HEADER_SIZE)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != self.sha256:
            raise ValueError(
                f"{self.path}: the ids do not match the checksum in the header; the file is damaged"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        self.check_size()
        return self.ids[index]

    def check_size(self) -> None:
        """Raise ``ValueError`` if the file was cut short on disk since it was opened: reading
        the memory map past the new end would kill the process (SIGBUS). A file replaced by
        another (renamed over it) is fine: the map keeps the bytes of the one it opened."""
        try:
            stat = os.stat(self.path)
        except OSError:  # deleted: the map keeps the opened file alive
            return
        device, inode, size = self._opened
        if (stat.st_dev, stat.st_ino) == (device, inode) and stat.st_size < size:
            raise ValueError(
                f"{self.path} was cut short on disk since it was opened ({stat.st_size:,} of "
                f"{size:,} bytes): reading it would crash the process (SIGBUS); write the file "
                "again and reopen it"
            )

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, {len(self):,} ids of {self.dtype.name})"


def read_token_file(
    path: str | os.PathLike, dtype: str | np.dtype | None = None, verify: bool | None = None
) -> TokenFile:
    """Open a token file as a memory-mapped ``TokenFile`` (see ``TokenFile``)."""
    return TokenFile(path, dtype, verify)


# ----------------------------------------------------------------------------- tokenize_file

# A line break between two visible characters. The GPT-4 (cl100k) pattern, which the book's
# tokenizer uses, joins such a "\n" to the punctuation before it (".\n" is one pre-token, and one
# token of the book's tokenizer), but neither it nor GPT-2's pattern joins it to the character
# after it, so text cut after the "\n" encodes exactly as the whole text does. o200k's pattern
# also lets a run of punctuation take the line breaks and "/" after it (".\n/" is one pre-token),
# so no cut is made where "/" follows.
_SAFE_CUT = re.compile(r"\S\n(?=[^\s/])")


def _pieces(file, chunk_chars: int, separator: str | None, bar) -> Iterator[str]:
    """The text of ``file`` in pieces cut after a separator or at a safe line break."""
    pending = ""
    while block := file.read(chunk_chars):
        bar.update(len(block.encode("utf-8")))
        pending += block
        cut = pending.rfind(separator) + len(separator) if separator and separator in pending else 0
        line_breaks = list(_SAFE_CUT.finditer(pending, max(cut - 1, 0)))
        if line_breaks:
            cut = max(cut, line_breaks[-1].end())
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _segments(pieces: Iterable[str], separator: str | None) -> Iterator[str | None]:
    """Split pieces at the separator: text segments, and ``None`` where a separator stood."""
    for piece in pieces:
        for i, part in enumerate(piece.split(separator) if separator else [piece]):
            if i:
                yield None
            if part:
                yield part


def _takes_allowed_special(method) -> bool:
    try:
        return "allowed_special" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _separator_ids(tokenizer: object, separator: str) -> list[int]:
    if _takes_allowed_special(tokenizer.encode):
        return list(tokenizer.encode(separator, allowed_special={separator}))
    return list(tokenizer.encode(separator))


def _vocab_size(tokenizer: object) -> int | None:
    for attribute in ("n_vocab", "vocab_size"):
        value = getattr(tokenizer, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def tokenize_file(
    text_path: str | os.PathLike,
    tokenizer: object,
    token_path: str | os.PathLike,
    separator: str | None = SEPARATOR,
    dtype: str | np.dtype | None = None,
    chunk_chars: int = 1 << 20,
    progress: bool = True,
) -> TokenFile:
    """Tokenize a UTF-8 text file straight into a token file; return it opened as a ``TokenFile``.

    The text is read ``chunk_chars`` characters at a time and encoded in pieces, so memory stays
    at a few times ``chunk_chars`` (plus the longest stretch of text without a place to cut).
    Pieces are cut only where the cut cannot change the ids: after a ``separator`` or at a line
    break between two visible characters, so the file holds exactly the ids of
    ``llmbook.data.encode_text(tokenizer, whole_text)``. Each ``separator`` (default
    ``<|endoftext|>``, the document separator) becomes its special id when the tokenizer's
    ``encode`` takes ``allowed_special`` (tiktoken, ``BPETokenizer``); any other special-token
    text is encoded as ordinary text. Text between separators goes through the tokenizer's
    ``encode_iterable`` when it has one (with ``allowed_special="none"`` if it takes that
    argument), else ``encode_ordinary`` (tiktoken, ``BPETokenizer``),
    else ``encode``. ``separator=None`` treats the separator as ordinary text too.

    ``dtype`` defaults to the smallest that holds the tokenizer's vocabulary (``n_vocab`` or
    ``vocab_size``), else uint32. ``progress`` shows a ``tqdm`` bar over the bytes read.
    """
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(
            f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}"
        )
    if separator is not None and (not isinstance(separator, str) or not separator):
        raise ValueError(f"separator must be None or a non-empty str, got {separator!r}")
    chunk_chars = check_int(chunk_chars, "chunk_chars")
    text_path = Path(text_path)
    if dtype is None:
        vocab_size = _vocab_size(tokenizer)
        dtype = token_dtype(vocab_size - 1) if vocab_size else np.dtype(np.uint32)
    encode_many = getattr(tokenizer, "encode_iterable", None)
    if encode_many is not None and _takes_allowed_special(encode_many):
        encode_many = functools.partial(encode_many, allowed_special="none")  # text, never special
    encode_one = getattr(tokenizer, "encode_ordinary", None) or tokenizer.encode
    separator_ids = _separator_ids(tokenizer, separator) if separator else []
    total = text_path.stat().st_size
    bar = progress_bar(
        total=total, unit="B", unit_scale=True, desc=text_path.name, enabled=progress
    )
    with (
        open(text_path, encoding="utf-8", newline="") as file,
        bar,
        TokenFileWriter(token_path, dtype) as writer,
    ):
        segments = _segments(_pieces(file, chunk_chars, separator, bar), separator)
        for is_text, group in itertools.groupby(segments, key=lambda s: s is not None):
            if not is_text:
                for _ in group:
                    writer.write(separator_ids)
            elif encode_many is not None:
                ids = iter(encode_many(group))
                while batch := list(itertools.islice(ids, 1 << 20)):
                    writer.write(batch)
            else:
                for text in group:
                    writer.write(encode_one(text))
    return TokenFile(token_path)
