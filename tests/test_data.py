"""llmbook.data: windows, loaders, splits, random batches, corpora, and its bad-input table.

Token-file format details are tested in tests/test_tokenfile.py, downloads in tests/test_download.py.
"""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook import data
from llmbook.data import (
    SlidingWindowDataset,
    TokenFile,
    WindowStarts,
    corpus_statistics,
    create_dataloader,
    encode_text,
    load_corpus,
    random_batch,
    read_token_file,
    train_val_split,
    write_token_file,
)
from llmbook.io.tokenfile import token_dtype

# ----------------------------------------------------------------------------- windows


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 300),
    context_length=st.integers(1, 40),
    stride=st.integers(1, 50),
    cover_tail=st.booleans(),
)
def test_windows_are_slices_shifted_by_one(n, context_length, stride, cover_tail):
    if n < context_length + 1:
        return
    ids = torch.randint(0, 1000, (n,), generator=torch.Generator().manual_seed(n))
    ds = SlidingWindowDataset(ids, context_length, stride, cover_tail=cover_tail)
    regular = (n - context_length - 1) // stride + 1
    tail = cover_tail and (regular - 1) * stride != n - context_length - 1
    assert len(ds) == regular + int(tail)
    for i in range(len(ds)):
        x, y = ds[i]
        s = ds.start(i)
        assert x.shape == y.shape == (context_length,)
        assert x.dtype == y.dtype == torch.long
        assert torch.equal(x, ids[s : s + context_length])
        assert torch.equal(y, ids[s + 1 : s + context_length + 1])
        assert torch.equal(x[1:], y[:-1])


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 400), context_length=st.integers(1, 40), data_=st.data())
def test_every_token_is_covered_when_stride_at_most_context_length(n, context_length, data_):
    if n < context_length + 1:
        return
    stride = data_.draw(st.integers(1, context_length))
    ds = SlidingWindowDataset(list(range(n)), context_length, stride)
    seen_as_input, seen_as_target = set(), set()
    for i in range(len(ds)):
        x, y = ds[i]
        seen_as_input.update(x.tolist())
        seen_as_target.update(y.tolist())
    assert seen_as_target == set(range(1, n))
    assert seen_as_input == set(range(0, n - 1))


def test_stride_larger_than_context_leaves_gaps():
    ds = SlidingWindowDataset(list(range(100)), context_length=10, stride=20, cover_tail=False)
    targets = {t for i in range(len(ds)) for t in ds[i][1].tolist()}
    assert len(targets) < 99
    assert len(ds) == (100 - 10 - 1) // 20 + 1


def test_window_counts_on_a_known_case():
    toy = list(range(23))
    assert [SlidingWindowDataset(toy, 8, 8).start(i) for i in range(3)] == [0, 8, 14]
    assert len(SlidingWindowDataset(toy, 8, 8, cover_tail=False)) == 2
    assert len(SlidingWindowDataset(list(range(17)), 8, 8)) == 2  # 0 and 8 end exactly at 16
    assert len(SlidingWindowDataset(list(range(9)), 8)) == 1
    assert SlidingWindowDataset(toy, 8).stride == 8  # stride defaults to context_length


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 300), T=st.integers(1, 40), stride=st.integers(1, 50), tail=st.booleans())
def test_window_starts_need_only_the_length(n, T, stride, tail):
    """WindowStarts(n, ...) is the dataset's arithmetic without ids: same count, same starts."""
    if n < T + 1:
        with pytest.raises(ValueError, match=f"{n} tokens, but context_length={T}"):
            WindowStarts(n, T, stride, tail)
        return
    starts = WindowStarts(n, T, stride, cover_tail=tail)
    ds = SlidingWindowDataset(list(range(n)), T, stride, cover_tail=tail)
    assert len(starts) == len(ds) and [starts.start(i) for i in range(len(ds))] == [
        ds.start(i) for i in range(len(ds))
    ]
    regular = list(range(0, n - T, stride))  # every start s with s + T + 1 <= n
    expected = regular + ([n - T - 1] if tail and regular[-1] != n - T - 1 else [])
    assert [starts.start(i) for i in range(len(starts))] == expected


def test_window_starts_bad_length():
    with pytest.raises(ValueError, match="n_tokens must be >= 0"):
        WindowStarts(-1, 4)
    with pytest.raises(TypeError, match="n_tokens must be an int"):
        WindowStarts(10.0, 4)


def test_indexing():
    ds = SlidingWindowDataset(list(range(50)), 10, 5)
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(IndexError):
        ds[-len(ds) - 1]
    with pytest.raises(TypeError):
        ds[1.0]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"context_length": 0}, ValueError, "context_length must be >= 1"),
        ({"context_length": -3}, ValueError, "context_length must be >= 1"),
        ({"context_length": 4, "stride": 0}, ValueError, "stride must be >= 1"),
        ({"context_length": 4, "stride": -1}, ValueError, "stride must be >= 1"),
        ({"context_length": 4.0}, TypeError, "context_length must be an int"),
        ({"context_length": True}, TypeError, "context_length must be an int"),
        ({"context_length": 4, "stride": 2.5}, TypeError, "stride must be an int"),
        ({"context_length": 10}, ValueError, "too short for one window"),
    ],
)
def test_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        SlidingWindowDataset(list(range(10)), **kwargs)


def test_bad_ids():
    with pytest.raises(ValueError, match="1-D"):
        SlidingWindowDataset(torch.zeros(3, 4, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="integers"):
        SlidingWindowDataset(torch.zeros(10), 2)
    with pytest.raises(TypeError, match="ids must be"):
        SlidingWindowDataset("some text", 2)


def test_numpy_and_memmap_ids_give_long_tensors(tmp_path):
    ids = np.arange(40, dtype=np.uint16)
    ds = SlidingWindowDataset(ids, 8, 4)
    x, y = ds[2]
    assert x.dtype == torch.long and torch.equal(x, torch.arange(8, 16))
    assert torch.equal(y, torch.arange(9, 17))


# ----------------------------------------------------------------------------- loaders


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_dataloader_shapes_and_shift():
    loader = create_dataloader(list(range(1000)), context_length=16, batch_size=4, seed=0)
    for x, y in loader:
        assert x.shape == y.shape == (4, 16)
        assert torch.equal(x[:, 1:], y[:, :-1])
        assert torch.equal(y - x, torch.ones_like(x))


def test_shuffling_is_deterministic_with_a_seed():
    ids = list(range(2000))

    def loader(**kwargs):
        return create_dataloader(ids, context_length=8, batch_size=4, drop_last=False, **kwargs)

    a, b, c = batches(loader(seed=5)), batches(loader(seed=5)), batches(loader(seed=6))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(a, c))
    ordered = batches(loader(shuffle=False))
    assert ordered[0][0][0, 0] == 0 and ordered[1][0][0, 0] == 32
    # shuffled, the batches hold every window once
    starts = sorted(int(x[i, 0]) for x, _ in a for i in range(len(x)))
    assert starts == sorted(int(x[i, 0]) for x, _ in ordered for i in range(len(x)))


def test_workers_do_not_change_the_batches():
    ids = list(range(600))
    a = batches(create_dataloader(ids, context_length=8, batch_size=4, seed=1))
    b = batches(create_dataloader(ids, context_length=8, batch_size=4, seed=1, num_workers=1))
    assert len(a) == len(b) and all(torch.equal(p[0], q[0]) for p, q in zip(a, b))


def test_drop_last():
    ids = list(range(20_000))
    keep = create_dataloader(ids, context_length=32, batch_size=8, shuffle=False, drop_last=False)
    drop = create_dataloader(ids, context_length=32, batch_size=8, shuffle=False, drop_last=True)
    n = len(keep.dataset)
    assert len(drop) == n // 8 and len(keep) == -(-n // 8)
    assert all(len(x) == 8 for x, _ in drop)


def test_dataloader_from_text_with_tiktoken(tiktoken_encoding):
    enc = tiktoken_encoding("gpt2")
    text = "Once upon a time there was a cat.\n<|endoftext|>\nThe dog ran home fast.\n" * 20
    loader = create_dataloader(text, enc, context_length=16, batch_size=2, shuffle=False)
    all_ids = torch.cat([x[:, 0] for x, _ in loader])
    assert len(all_ids) > 0
    ids = encode_text(enc, text)
    assert ids.count(50256) == 20
    assert torch.equal(loader.dataset.ids, torch.tensor(ids))


class CharTokenizer:
    """A tokenizer without allowed_special: encode(text) only."""

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))


def test_dataloader_from_text_with_any_tokenizer():
    text = "hello world, <|endoftext|> bye" * 5
    loader = create_dataloader(text, CharTokenizer(), context_length=10, batch_size=3)
    x, y = next(iter(loader))
    assert x.shape == (3, 10)
    assert len(loader.dataset.ids) == len(text)


def test_dataloader_from_text_with_the_books_bpe_tokenizer():
    from llmbook.tokenizer import BPETokenizer

    text = "The cat sat on the mat.\n<|endoftext|>\nThe dog sat on the log.\n<|endoftext|>\n" * 10
    bpe = BPETokenizer.train(text, 300, special_tokens=["<|endoftext|>"])
    ids = encode_text(bpe, text)
    eot = bpe.special_tokens["<|endoftext|>"]
    assert ids.count(eot) == 20  # the separator is one special id, not its characters
    assert bpe.decode(ids) == text
    loader = create_dataloader(text, bpe, context_length=8, batch_size=2, shuffle=False)
    assert torch.equal(loader.dataset.ids, torch.tensor(ids))


def test_dataloader_passes_stride_and_cover_tail():
    ids = list(range(100))
    loader = create_dataloader(ids, context_length=10, stride=5, batch_size=1, shuffle=False)
    assert loader.dataset.stride == 5
    assert [int(x[0, 0]) for x, _ in loader] == [*range(0, 90, 5), 89]
    no_tail = create_dataloader(ids, context_length=10, stride=20, batch_size=1, cover_tail=False)
    assert len(no_tail.dataset) == (100 - 10 - 1) // 20 + 1
    with pytest.raises(ValueError, match="stride must be >= 1"):
        create_dataloader(ids, context_length=10, stride=0)


def test_dataloader_errors():
    with pytest.raises(TypeError, match="tokenizer is needed"):
        create_dataloader("some text")
    with pytest.raises(ValueError, match="too short"):
        create_dataloader("short", CharTokenizer(), context_length=32)
    with pytest.raises(ValueError, match="batch_size"):
        create_dataloader(list(range(100)), context_length=4, batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        create_dataloader(list(range(100)), context_length=4, num_workers=-1)
    with pytest.raises(TypeError, match="encode"):
        encode_text(object(), "text")


# ----------------------------------------------------------------------------- splits


def test_split_keeps_documents_whole():
    docs = [f"story number {i} " * (i % 7 + 1) for i in range(50)]
    text = "".join(f"{d}\n<|endoftext|>\n" for d in docs)
    train, val = train_val_split(text, 0.1)
    assert train + val == text
    assert train.endswith("<|endoftext|>\n")
    assert val.startswith("story number")
    assert 0.05 < len(val) / len(text) < 0.15


def test_split_moves_back_when_no_boundary_follows_the_cut():
    # the last story is long, so 90% falls inside it: the cut goes back to the boundary before
    text = "short one\n<|endoftext|>\n" + "a very long last story " * 20 + "\n<|endoftext|>\n"
    train, val = train_val_split(text, 0.1)
    assert train == "short one\n<|endoftext|>\n"
    assert train + val == text
    with pytest.raises(ValueError, match="single document"):
        train_val_split("only one story here\n<|endoftext|>\n", 0.1)


def test_split_of_ids_and_errors():
    train, val = train_val_split(list(range(100)), 0.2)
    assert train == list(range(80)) and val == list(range(80, 100))
    t, v = train_val_split(torch.arange(10), 0.3)
    assert len(t) == 7 and len(v) == 3
    for good in (0.5, np.float64(0.5), np.float32(0.5)):  # NumPy floats are floats
        assert train_val_split(list(range(10)), good) == (list(range(5)), list(range(5, 10)))
    with pytest.raises(ValueError, match="empty"):
        train_val_split([1], 0.5)


# ----------------------------------------------------------------------------- token files


def test_token_file_round_trip_uint16(tmp_path):
    ids = np.random.default_rng(0).integers(0, 50257, 10_000)
    path = write_token_file(tmp_path / "a.tok", ids)
    assert path.stat().st_size == 64 + 2 * len(ids)
    f = read_token_file(path)
    assert isinstance(f, TokenFile) and f.dtype == np.dtype("<u2") and len(f) == len(ids)
    assert np.array_equal(f[:], ids)
    assert isinstance(f.ids, np.memmap)


def test_token_file_uint32_when_needed(tmp_path):
    ids = [0, 128255, 70_000, 5]
    f = read_token_file(write_token_file(tmp_path / "b.tok", torch.tensor(ids)))
    assert f.dtype == np.dtype("<u4") and f[:].tolist() == ids
    assert token_dtype(65535) == np.uint16 and token_dtype(65536) == np.uint32


def test_ids_that_do_not_fit_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="do not fit the file's dtype"):
        write_token_file(tmp_path / "c.tok", [1, 70_000], dtype="uint16")
    with pytest.raises(ValueError, match="do not fit the file's dtype"):
        write_token_file(tmp_path / "c.tok", [256], dtype="uint8")
    with pytest.raises(ValueError, match="must be in 0..4,294,967,295, got -2"):
        write_token_file(tmp_path / "c.tok", [1, -2])
    with pytest.raises(ValueError, match="dtype must be one of"):
        write_token_file(tmp_path / "c.tok", [1], dtype="int64")
    with pytest.raises(ValueError, match="does not fit in uint32"):
        token_dtype(2**32)
    assert os.listdir(tmp_path) == []  # nothing half-written left behind


def test_raw_files_and_bad_headers(tmp_path):
    raw = tmp_path / "train.bin"
    np.arange(100, dtype=np.uint16).tofile(raw)
    f = TokenFile(raw, dtype=np.uint16)
    assert f[:].tolist() == list(range(100))
    with pytest.raises(ValueError, match="no token-file header"):
        TokenFile(raw)
    empty = read_token_file(write_token_file(tmp_path / "empty.tok", []))
    assert len(empty) == 0
    written = write_token_file(tmp_path / "small.tok", [1, 2, 3])  # uint16 in its header
    assert TokenFile(written, dtype="uint16")[:].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="header says uint16, but dtype=uint32 was given"):
        TokenFile(written, dtype="uint32")


def test_random_batch_from_a_token_file(tmp_path):
    f = read_token_file(write_token_file(tmp_path / "d.tok", np.arange(5000)))
    x, y = random_batch(f, 6, 32, generator=torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (6, 32) and x.dtype == y.dtype == torch.long
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y - x, torch.ones_like(x))  # consecutive ids: a true window
    x2, _ = random_batch(f, 6, 32, generator=torch.Generator().manual_seed(3))
    x3, _ = random_batch(f, 6, 32, generator=torch.Generator().manual_seed(4))
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    assert int(x.max()) < 5000 - 1
    with pytest.raises(ValueError, match="fewer than context_length"):
        random_batch(f, 1, 5000)


def test_random_batch_is_one_function_for_memory_and_files(tmp_path):
    ids = np.random.default_rng(2).integers(0, 2048, 3000)
    path = write_token_file(tmp_path / "g.tok", ids)
    raw = tmp_path / "g.bin"
    ids.astype(np.uint16).tofile(raw)
    sources = [
        ids.tolist(),
        torch.tensor(ids),
        ids,
        ids.astype(np.uint16),
        np.memmap(raw, dtype=np.uint16, mode="r"),
        read_token_file(path),
        TokenFile(raw, dtype="uint16"),
    ]
    batches = [random_batch(s, 5, 16, generator=torch.Generator().manual_seed(9)) for s in sources]
    for x, y in batches:
        assert torch.equal(x, batches[0][0]) and torch.equal(y, batches[0][1])
    # each row is the window of the stream that starts where torch.randint says
    starts = torch.randint(0, 3000 - 16, (5,), generator=torch.Generator().manual_seed(9))
    for row, s in zip(batches[0][0], starts.tolist()):
        assert row.tolist() == ids[s : s + 16].tolist()
    x, _ = random_batch(torch.tensor(ids), 2, 8, device="cpu")
    assert x.device.type == "cpu"


def test_random_batch_reaches_both_ends(tmp_path):
    f = read_token_file(write_token_file(tmp_path / "e.tok", np.arange(12)))
    x, y = random_batch(f, 400, 10, generator=torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == {0, 1}  # 12 tokens hold two windows of 10 + 1
    assert int(y.max()) == 11


def test_token_file_windows_match_in_memory(tmp_path):
    ids = np.random.default_rng(1).integers(0, 50000, 3000)
    f = read_token_file(write_token_file(tmp_path / "f.tok", ids))
    lazy, eager = SlidingWindowDataset(f, 64, 32), SlidingWindowDataset(torch.tensor(ids), 64, 32)
    assert isinstance(lazy.ids, np.memmap)  # read one window at a time
    assert len(lazy) == len(eager)
    for i in (0, 7, len(eager) - 1):
        assert torch.equal(lazy[i][0], eager[i][0]) and torch.equal(lazy[i][1], eager[i][1])


# ----------------------------------------------------------------------------- corpora


def test_stories_load_offline():
    text = load_corpus("stories")
    assert len(text.encode("utf-8")) >= 1_000_000
    assert text.startswith("Once") or text[0].isupper()
    assert text.endswith("<|endoftext|>\n")


def test_unknown_corpus():
    with pytest.raises(ValueError, match="available: stories, tinyshakespeare, tinystories"):
        load_corpus("wikipedia")


def test_remote_corpora_are_pinned():
    for source in data.REMOTE_CORPORA.values():  # imported from llmbook.io.download
        assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0
        assert source.url.startswith("https://")
        assert source.size > 0


def test_corpus_statistics_on_a_small_text():
    stats = corpus_statistics("the cat sat. the cat sat.<|endoftext|>the dog")
    assert stats["n_words"] == 8 and stats["vocabulary"] == 4
    assert stats["n_documents"] == 2
    assert stats["n_trigrams"] == 6
    assert stats["distinct_trigrams"] == 4  # "the cat sat" and "cat sat the" twice
    with pytest.raises(TypeError):
        corpus_statistics(b"bytes")


def test_load_corpus_goes_through_llmbook_download(monkeypatch, tmp_path):
    seen = {}

    def fake_corpus_path(name, cache_dir, download_missing):
        seen.update(name=name, cache_dir=cache_dir, download_missing=download_missing)
        path = tmp_path / "x.txt"
        path.write_text("to be", encoding="utf-8")
        return path

    monkeypatch.setattr(data, "corpus_path", fake_corpus_path)
    assert load_corpus("tinyshakespeare", cache_dir=tmp_path, download_missing=False) == "to be"
    assert seen == {"name": "tinyshakespeare", "cache_dir": tmp_path, "download_missing": False}


# ----------------------------------------------------------------------------- bad input, one row each

IDS = list(range(100))
HUGE = np.array([2**63 + 5, 1, 2], dtype=np.uint64)  # wraps to a negative int64


class NoEncode:
    pass


BAD_INPUTS = [
    # SlidingWindowDataset: ids
    pytest.param(
        lambda: SlidingWindowDataset([1.5, 2.7, 3.9, 4.2], 2),
        TypeError,
        r"ids must hold ints, got float \(1.5\)",
        id="window-float-list",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(np.array([1.5, 2.5, 3.5]), 2),
        TypeError,
        "ids must hold integers, got an array of dtype float64",
        id="window-float-array",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(torch.zeros(10), 2),
        TypeError,
        "ids must hold integers, got a tensor of dtype torch.float32",
        id="window-float-tensor",
    ),
    pytest.param(
        lambda: SlidingWindowDataset([True, False, True], 2),
        TypeError,
        "ids must hold ints, got bool",
        id="window-bool-list",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(torch.ones(5, dtype=torch.bool), 2),
        TypeError,
        "dtype torch.bool",
        id="window-bool-tensor",
    ),
    pytest.param(
        lambda: SlidingWindowDataset("some text", 2),
        TypeError,
        "ids must be a list of ints",
        id="window-str",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(["a", "b", "c"], 2),
        TypeError,
        r"ids must hold ints, got str \('a'\)",
        id="window-str-list",
    ),
    pytest.param(
        lambda: SlidingWindowDataset([[1, 2], [3, 4]], 2),
        TypeError,
        "ids must hold ints, got list",
        id="window-nested-list",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(None, 2), TypeError, "got NoneType", id="window-none"
    ),
    pytest.param(lambda: SlidingWindowDataset({1: 2}, 2), TypeError, "got dict", id="window-dict"),
    pytest.param(
        lambda: SlidingWindowDataset([1, 10**20, 3], 2),
        ValueError,
        "ids must be in 0..4,294,967,295, got 100,000,000,000,000,000,000",
        id="window-huge-python-int",
    ),
    pytest.param(
        lambda: SlidingWindowDataset([-1, 2, 3], 2), ValueError, "got -1", id="window-negative-list"
    ),
    pytest.param(
        lambda: SlidingWindowDataset(torch.tensor([1, 2**40, 3]), 2),
        ValueError,
        "got 1,099,511,627,776",
        id="window-huge-tensor",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(torch.tensor([1, -5, 3]), 2),
        ValueError,
        "got -5",
        id="window-negative-tensor",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(HUGE, 2),
        ValueError,
        "got 9,223,372,036,854,775,813",
        id="window-uint64-array-wraps",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(torch.from_numpy(HUGE), 2),
        ValueError,
        "got 9,223,372,036,854,775,813",
        id="window-uint64-tensor-wraps",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(torch.zeros(3, 4, dtype=torch.long), 2),
        ValueError,
        r"ids must be 1-D, got shape \(3, 4\)",
        id="window-2d",
    ),
    # SlidingWindowDataset: sizes
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], 0),
        ValueError,
        "context_length must be >= 1",
        id="window-context-0",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], -3),
        ValueError,
        "context_length must be >= 1",
        id="window-context-negative",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], 4.0),
        TypeError,
        "context_length must be an int",
        id="window-context-float",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], True),
        TypeError,
        "context_length must be an int",
        id="window-context-bool",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], 4, 0),
        ValueError,
        "stride must be >= 1",
        id="window-stride-0",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], 4, 2.5),
        TypeError,
        "stride must be an int",
        id="window-stride-float",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS[:10], 10),
        ValueError,
        "too short for one window",
        id="window-too-short",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS, 10)[1.0],
        TypeError,
        "index must be an int",
        id="window-index-float",
    ),
    pytest.param(
        lambda: SlidingWindowDataset(IDS, 10)[10],
        IndexError,
        "out of range for 10 windows",
        id="window-index-past-end",
    ),
    # load_corpus
    pytest.param(
        lambda: load_corpus(["x"]),
        TypeError,
        r"name must be a str such as 'stories', got list \(\['x'\]\)",
        id="corpus-list",
    ),
    pytest.param(lambda: load_corpus(None), TypeError, "name must be a str", id="corpus-none"),
    pytest.param(
        lambda: load_corpus("wikipedia"),
        ValueError,
        "available: stories, tinyshakespeare, tinystories",
        id="corpus-unknown",
    ),
    pytest.param(
        lambda: load_corpus("tinyshakespeare", cache_dir=123),
        TypeError,
        "cache_dir must be None, a str or a path",
        id="corpus-cache-dir-int",
    ),
    # train_val_split
    pytest.param(
        lambda: train_val_split(None),
        TypeError,
        "data must be a str or a sequence of ids, got NoneType",
        id="split-none",
    ),
    pytest.param(lambda: train_val_split(12345), TypeError, "got int", id="split-int"),
    pytest.param(
        lambda: train_val_split(IDS, "0.1"),
        TypeError,
        "val_fraction must be a float strictly between 0 and 1, got str",
        id="split-fraction-str",
    ),
    pytest.param(
        lambda: train_val_split(IDS, None),
        TypeError,
        "val_fraction must be a float",
        id="split-fraction-none",
    ),
    pytest.param(
        lambda: train_val_split(IDS, True),
        TypeError,
        "val_fraction must be a float",
        id="split-fraction-bool",
    ),
    pytest.param(
        lambda: train_val_split(IDS, 0),
        ValueError,
        "val_fraction must be strictly between 0 and 1, got 0",
        id="split-fraction-0",
    ),
    pytest.param(
        lambda: train_val_split(IDS, 1),
        ValueError,
        "strictly between 0 and 1, got 1",
        id="split-fraction-1",
    ),
    pytest.param(
        lambda: train_val_split(IDS, -0.1), ValueError, "got -0.1", id="split-fraction-negative"
    ),
    pytest.param(
        lambda: train_val_split(IDS, math.nan), ValueError, "got nan", id="split-fraction-nan"
    ),
    pytest.param(
        lambda: train_val_split(IDS, np.float64(1.5)),
        ValueError,
        "strictly between 0 and 1",
        id="split-fraction-numpy-1.5",
    ),
    pytest.param(
        lambda: train_val_split([1], 0.5), ValueError, "empty part", id="split-empty-part"
    ),
    pytest.param(
        lambda: train_val_split("one story\n<|endoftext|>\n", 0.1),
        ValueError,
        "no document boundary",
        id="split-single-document",
    ),
    # create_dataloader
    pytest.param(
        lambda: create_dataloader(IDS, context_length=4, seed="abc"),
        TypeError,
        r"seed must be an int, got str \('abc'\)",
        id="loader-seed-str",
    ),
    pytest.param(
        lambda: create_dataloader(IDS, context_length=4, seed=1.5),
        TypeError,
        "seed must be an int",
        id="loader-seed-float",
    ),
    pytest.param(
        lambda: create_dataloader(IDS, context_length=4, seed=-1),
        ValueError,
        "seed must be >= 0",
        id="loader-seed-negative",
    ),
    pytest.param(
        lambda: create_dataloader("some text"),
        TypeError,
        "tokenizer is needed",
        id="loader-text-without-tokenizer",
    ),
    pytest.param(
        lambda: create_dataloader("some text", NoEncode()),
        TypeError,
        "tokenizer must have an encode",
        id="loader-tokenizer-without-encode",
    ),
    pytest.param(
        lambda: create_dataloader(IDS, context_length=4, batch_size=0),
        ValueError,
        "batch_size must be >= 1",
        id="loader-batch-0",
    ),
    pytest.param(
        lambda: create_dataloader(IDS, context_length=4, num_workers=-1),
        ValueError,
        "num_workers must be >= 0",
        id="loader-workers-negative",
    ),
    pytest.param(
        lambda: create_dataloader([0.5] * 10, context_length=4),
        TypeError,
        "ids must hold ints",
        id="loader-float-ids",
    ),
    # random_batch
    pytest.param(
        lambda: random_batch("abc", 2, 4), TypeError, "data must be a list of ints", id="batch-str"
    ),
    pytest.param(
        lambda: random_batch(torch.rand(100), 2, 4),
        TypeError,
        "data must hold integers",
        id="batch-float-tensor",
    ),
    pytest.param(
        lambda: random_batch([1.5] * 100, 2, 4),
        TypeError,
        "data must hold ints",
        id="batch-float-list",
    ),
    pytest.param(
        lambda: random_batch(HUGE, 1, 1), ValueError, "data must be in 0..", id="batch-uint64-wraps"
    ),
    pytest.param(
        lambda: random_batch(torch.zeros(2, 50, dtype=torch.long), 2, 4),
        ValueError,
        "data must be 1-D",
        id="batch-2d",
    ),
    pytest.param(
        lambda: random_batch(IDS, 0, 4), ValueError, "batch_size must be >= 1", id="batch-size-0"
    ),
    pytest.param(
        lambda: random_batch(IDS, 2, "8"),
        TypeError,
        "context_length must be an int",
        id="batch-context-str",
    ),
    pytest.param(
        lambda: random_batch(IDS, 2, 100),
        ValueError,
        "fewer than context_length \\+ 1 = 101",
        id="batch-too-short",
    ),
    pytest.param(
        lambda: random_batch(IDS, 2, 4, generator=42),
        TypeError,
        "generator must be a torch.Generator",
        id="batch-generator-int",
    ),
    # encode_text and corpus_statistics
    pytest.param(
        lambda: encode_text(NoEncode(), "text"),
        TypeError,
        "tokenizer must have an encode",
        id="encode-no-encode",
    ),
    pytest.param(
        lambda: corpus_statistics(b"bytes"),
        TypeError,
        "text must be a str, got bytes",
        id="statistics-bytes",
    ),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
