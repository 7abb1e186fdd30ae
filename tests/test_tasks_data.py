"""Tests the classroom checker needs for chapter 02's tasks (llmbook/classroom/tasks.py maps
them): ``random_batch`` by its behaviour (true windows, shifted by one, uniform starts that reach
both ends, reproducible with a seeded generator, one answer for every kind of data), not by the
exact random stream of the book's version."""

import numpy as np
import pytest
import torch

from llmbook.data import TokenFile, random_batch, read_token_file, write_token_file


def is_window_of(row: torch.Tensor, ids: np.ndarray) -> bool:
    start = int(np.flatnonzero(ids == int(row[0]))[0]) if (ids == int(row[0])).any() else -1
    return start >= 0 and ids[start : start + len(row)].tolist() == row.tolist()


def test_random_batch_rows_are_windows_shifted_by_one():
    ids = np.random.default_rng(0).permutation(1000)  # distinct ids: a row's start is findable
    x, y = random_batch(torch.tensor(ids), 8, 24, generator=torch.Generator().manual_seed(5))
    assert x.shape == y.shape == (8, 24) and x.dtype == y.dtype == torch.long
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(x[:, 1:], y[:, :-1]), "y must be x shifted left by one token"
    for row_x, row_y in zip(x, y):
        assert is_window_of(torch.cat([row_x, row_y[-1:]]), ids), "a row is not a window of data"


def test_random_batch_starts_are_uniform_and_reach_both_ends():
    """20 tokens hold 16 windows of 4 + 1; 4,000 draws give each start about 250 times."""
    x, _ = random_batch(np.arange(20), 4000, 4, generator=torch.Generator().manual_seed(0))
    counts = np.bincount(x[:, 0].numpy(), minlength=20)
    assert counts[16:].sum() == 0, "a window may not run past the end of the data"
    assert counts[:16].min() >= 150 and counts[:16].max() <= 350, counts[:16].tolist()


def test_random_batch_is_reproducible_with_a_generator():
    ids = torch.arange(5000)
    a = random_batch(ids, 6, 32, generator=torch.Generator().manual_seed(3))
    b = random_batch(ids, 6, 32, generator=torch.Generator().manual_seed(3))
    c = random_batch(ids, 6, 32, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]), "another seed must give another batch"
    torch.manual_seed(0)
    d = random_batch(ids, 6, 32)  # no generator: torch's global one
    torch.manual_seed(0)
    assert torch.equal(d[0], random_batch(ids, 6, 32)[0])


@pytest.mark.parametrize("kind", ["list", "tensor", "int64", "uint16", "memmap", "tokenfile"])
def test_random_batch_same_batch_from_every_kind_of_data(tmp_path, kind):
    ids = np.random.default_rng(2).integers(0, 2048, 3000)
    raw = tmp_path / "g.bin"
    ids.astype(np.uint16).tofile(raw)
    source = {
        "list": lambda: ids.tolist(),
        "tensor": lambda: torch.tensor(ids),
        "int64": lambda: ids,
        "uint16": lambda: ids.astype(np.uint16),
        "memmap": lambda: np.memmap(raw, dtype=np.uint16, mode="r"),
        "tokenfile": lambda: read_token_file(write_token_file(tmp_path / "g.tok", ids)),
    }[kind]()
    expected = random_batch(torch.tensor(ids), 5, 16, generator=torch.Generator().manual_seed(9))
    got = random_batch(source, 5, 16, generator=torch.Generator().manual_seed(9))
    assert got[0].dtype == torch.long and got[0].device.type == "cpu"
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert isinstance(TokenFile(raw, dtype="uint16").ids, np.memmap)


def test_random_batch_device_and_shortest_data():
    x, y = random_batch(torch.arange(5), 3, 4, device="cpu")  # exactly one window
    assert x.device.type == "cpu" and x.tolist() == [[0, 1, 2, 3]] * 3
    assert y.tolist() == [[1, 2, 3, 4]] * 3
