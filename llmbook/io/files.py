"""Writing files so that nothing is lost (hand-written; chapters 01, 02, 07 and 08 save with it).

Every file the package writes (tokenizers, token files, downloads, checkpoints, weights) goes
through :func:`atomic_write`: the bytes go to a fresh temporary file in the same folder, are
flushed to disk, and only then renamed over the target. A reader therefore sees either the old
file or the whole new one, never half of either, even if the process is killed mid-write or two
processes save to the same path at once. The temporary name is unique and created exclusively
(``O_EXCL``), so a symlink planted at a predictable name cannot redirect the write, and it is
removed when the write fails (disk full, an exception in the caller's code).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success, move it onto ``path``.

    ``mode`` is ``"wb"`` or ``"w"`` (text; pass ``encoding=...`` and ``newline=...`` as to
    :func:`open`). If the ``with`` block raises, ``path`` is left as it was and the temporary
    file is deleted.

    >>> with atomic_write("out.txt", "w", encoding="utf-8") as f:  # doctest: +SKIP
    ...     f.write("hello")
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a directory; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _mode_for(path))
        with open(fd, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _mode_for(path: Path) -> int:
    """The permissions the file would get from a plain ``open``: mkstemp's are owner-only."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux tells without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
