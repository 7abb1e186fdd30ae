"""Downloading public corpora safely (hand-written: chapter 02 uses it, no chapter teaches it).

``llmbook.data.load_corpus("tinyshakespeare")`` and ``load_corpus("tinystories")`` call
:func:`corpus_path`, which downloads the file once into a cache folder with :func:`download`.
A download is kept only when its SHA-256 equals the value pinned in :data:`REMOTE_CORPORA`,
and it is bounded three ways: a per-read ``timeout`` (a silent server), an overall ``deadline``
(a server that drips one byte at a time, each within the timeout), and ``max_bytes`` (a server
that sends more than the file's known size). The bytes go through
:func:`llmbook.io.files.atomic_write`, so a failed or rejected download leaves no file behind.
"""

from __future__ import annotations

import hashlib
import http.client
import numbers
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from llmbook.io.files import atomic_write

__all__ = [
    "REMOTE_CORPORA",
    "RemoteCorpus",
    "corpus_path",
    "default_cache_dir",
    "download",
    "sha256_file",
]

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


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


class _TooSlow(Exception):
    """The transfer ran past its deadline."""


def _check_seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number of seconds, got {type(value).__name__} ({value!r})"
        )
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def download(
    url: str,
    path: str | os.PathLike,
    sha256: str,
    timeout: float = 60.0,
    deadline: float = 1800.0,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``path``, keeping it only if its SHA-256 equals ``sha256``.

    ``timeout`` bounds each wait for the server (connecting, each read); ``deadline`` bounds the
    whole transfer in seconds (checked after every read, so the call returns within about
    ``deadline + timeout``); ``max_bytes``, when given, is the most the file may hold (a larger
    ``Content-Length`` is refused before reading, and reading stops as soon as more arrives).
    Arguments are checked before anything is fetched. Raises ``ConnectionError`` when the server
    cannot be reached, answers with an error or is too slow, and ``ValueError`` on a checksum
    mismatch or an oversized response; ``path`` is then left as it was, with no partial file.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must be an http:// or https:// address, got {url!r}")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be the file's SHA-256 as 64 hex digits, got {sha256!r}")
    timeout, deadline = _check_seconds(timeout, "timeout"), _check_seconds(deadline, "deadline")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
    ):
        raise ValueError(f"max_bytes must be None or an int >= 1, got {max_bytes!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    digest, received = hashlib.sha256(), 0
    try:
        with (
            atomic_write(path, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            length = response.headers.get("Content-Length")
            if (
                max_bytes is not None
                and length is not None
                and length.isdigit()
                and int(length) > max_bytes
            ):
                raise ValueError(
                    f"{url} announces {int(length):,} bytes, more than the expected {max_bytes:,}"
                )
            # read1 returns what one read of the socket gives, so the deadline is checked often
            while chunk := response.read1(1 << 16):
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise ValueError(
                        f"{url} sent more than the expected {max_bytes:,} bytes; download discarded"
                    )
                if time.monotonic() - start > deadline:
                    raise _TooSlow(f"{received:,} bytes after {deadline:g} s, past the deadline")
                digest.update(chunk)
                out.write(chunk)
            got = digest.hexdigest()
            if got != sha256.lower():
                raise ValueError(
                    f"checksum mismatch for {url}: expected SHA-256 {sha256}, got {got}; the download "
                    "was discarded (the file on the server changed, or the transfer was corrupted)"
                )
    except (_TooSlow, urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise ConnectionError(
            f"could not download {url}: {error}. Check the network connection (or pass a larger "
            f"deadline), or download the file by hand and save it as {path}"
        ) from error
    return path


def corpus_path(
    name: str, cache_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> Path:
    """The cached file of ``REMOTE_CORPORA[name]``, downloaded first when it is missing.

    A file already in the cache is checked against its pinned SHA-256 (a ``ValueError`` asks
    to delete it); with ``download_missing=False`` a missing file raises ``FileNotFoundError``.
    """
    if name not in REMOTE_CORPORA:
        raise ValueError(
            f"unknown remote corpus {name!r}; available: {', '.join(sorted(REMOTE_CORPORA))}"
        )
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be None, a str or a path, got {type(cache_dir).__name__}")
    source = REMOTE_CORPORA[name]
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / source.filename
    if not path.exists():
        if not download_missing:
            raise FileNotFoundError(
                f"{path} does not exist; call load_corpus({name!r}) with download_missing=True "
                f"or save {source.url} there yourself"
            )
        download(source.url, path, source.sha256, max_bytes=source.size)
    elif sha256_file(path) != source.sha256:
        raise ValueError(
            f"{path} does not have the expected SHA-256 {source.sha256}; delete it and load again"
        )
    return path
