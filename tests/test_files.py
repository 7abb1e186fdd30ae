"""llmbook.io.files.atomic_write: a reader sees the old file or the whole new one, never a part."""

import os
import threading

import pytest

from llmbook.io.files import atomic_write


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_bytes_and_text(tmp_path):
    with atomic_write(tmp_path / "a.bin") as f:
        f.write(b"\x00\x01")
    with atomic_write(tmp_path / "a.txt", "w", encoding="utf-8") as f:
        f.write("héllo")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert leftovers(tmp_path) == []


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target, "w") as f:
            f.write("new, half written")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_a_planted_symlink_at_the_old_fixed_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.txt.tmp").symlink_to(victim)
    with atomic_write(tmp_path / "out.txt", "w") as f:
        f.write("data")
    assert victim.read_text() == "precious"
    assert (tmp_path / "out.txt").read_text() == "data"


def test_a_symlink_target_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link.txt"
    link.symlink_to(victim)
    with atomic_write(link, "w") as f:
        f.write("data")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "data"


def test_concurrent_writers_never_leave_a_mixed_file(tmp_path):
    target = tmp_path / "shared.txt"
    payloads = [str(i) * 200_000 for i in range(8)]

    def save(text):
        for _ in range(5):
            with atomic_write(target, "w") as f:
                f.write(text)

    threads = [threading.Thread(target=save, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text() in payloads
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "path, mode, error",
    [
        pytest.param(".", "wb", IsADirectoryError, id="path-is-a-folder"),
        pytest.param("x.txt", "a", ValueError, id="append-mode"),
        pytest.param("x.txt", "r", ValueError, id="read-mode"),
        pytest.param("missing/x.txt", "wb", FileNotFoundError, id="missing-folder"),
    ],
)
def test_bad_arguments(tmp_path, path, mode, error):
    with pytest.raises(error):
        with atomic_write(tmp_path / path, mode):
            pass
    assert leftovers(tmp_path) == []


def test_new_file_gets_ordinary_permissions(tmp_path):
    # mkstemp creates files readable by the owner only; a saved tokenizer or checkpoint should
    # be as readable as any file the user writes.
    with atomic_write(tmp_path / "p.txt", "w") as f:
        f.write("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o666 & ~umask
