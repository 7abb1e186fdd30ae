"""llmbook.data: windows, loaders, splits, token files, corpora and their downloads."""

import hashlib
import http.server
import os
import socket
import threading
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook import data
from llmbook.data import (
    SlidingWindowDataset,
    TokenFile,
    corpus_statistics,
    create_dataloader,
    download,
    encode_text,
    load_corpus,
    read_token_file,
    token_dtype,
    train_val_split,
    write_token_file,
)

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
    for bad in (0, 1, -0.1, 1.5, True):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(list(range(10)), bad)
    with pytest.raises(ValueError, match="empty"):
        train_val_split([1], 0.5)


# ----------------------------------------------------------------------------- token files


def test_token_file_round_trip_uint16(tmp_path):
    ids = np.random.default_rng(0).integers(0, 50257, 10_000)
    path = write_token_file(tmp_path / "a.tok", ids)
    assert path.stat().st_size == 16 + 2 * len(ids)
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
    with pytest.raises(ValueError, match=">= 0"):
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


def test_random_windows(tmp_path):
    f = read_token_file(write_token_file(tmp_path / "d.tok", np.arange(5000)))
    x, y = f.random_windows(6, 32, generator=torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (6, 32) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y - x, torch.ones_like(x))  # consecutive ids: a true window
    x2, _ = f.random_windows(6, 32, generator=torch.Generator().manual_seed(3))
    x3, _ = f.random_windows(6, 32, generator=torch.Generator().manual_seed(4))
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    assert int(x.max()) < 5000 - 1
    with pytest.raises(ValueError, match="fewer than context_length"):
        f.random_windows(1, 5000)
    with pytest.raises(ValueError, match="batch_size"):
        f.random_windows(0, 8)


def test_random_windows_reach_both_ends(tmp_path):
    f = read_token_file(write_token_file(tmp_path / "e.tok", np.arange(12)))
    x, y = f.random_windows(400, 10, generator=torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == {0, 1}  # 12 tokens hold two windows of 10 + 1
    assert int(y.max()) == 11


def test_token_file_dataset_matches_in_memory(tmp_path):
    ids = np.random.default_rng(1).integers(0, 50000, 3000)
    f = read_token_file(write_token_file(tmp_path / "f.tok", ids))
    lazy, eager = f.dataset(64, 32), SlidingWindowDataset(torch.tensor(ids), 64, 32)
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
    for source in data.REMOTE_CORPORA.values():
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


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path / "here"))
    assert data.default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("LLMBOOK_CACHE")
    assert data.default_cache_dir().parts[-2:] == (".cache", "llmbook")


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.txt").write_bytes(b"To be, or not to be.\n" * 100)
    (root / "corrupt.txt").write_bytes(b"To be, or not to bee.\n" * 100)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verifies_and_keeps_a_good_file(server, tmp_path):
    url, root = server
    target = tmp_path / "cache" / "good.txt"
    download(f"{url}/good.txt", target, sha(root / "good.txt"))
    assert target.read_bytes() == (root / "good.txt").read_bytes()
    assert os.listdir(target.parent) == ["good.txt"]


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    url, root = server
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(f"{url}/corrupt.txt", cache / "good.txt", sha(root / "good.txt"))
    assert os.listdir(cache) == []


def test_failed_connection_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(ConnectionError, match="could not download"):
        download(f"http://127.0.0.1:{port}/x.txt", cache / "x.txt", "0" * 64, timeout=5)
    assert os.listdir(cache) == []


def test_truncated_transfer_leaves_no_file(tmp_path):
    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Truncating)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    cache = tmp_path / "cache"
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/f.txt"
        with pytest.raises(
            (ValueError, ConnectionError), match="checksum mismatch|could not download"
        ):
            download(url, cache / "f.txt", hashlib.sha256(b"x" * 1000).hexdigest(), timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert os.listdir(cache) == []


def test_missing_file_on_server_is_a_clear_error(server, tmp_path):
    url, _ = server
    with pytest.raises(ConnectionError, match="404"):
        download(f"{url}/nothing.txt", tmp_path / "n.txt", "0" * 64)
    assert not (tmp_path / "n.txt").exists()


def test_load_corpus_downloads_once_then_reads_the_cache(server, tmp_path, monkeypatch):
    url, root = server
    good = data.RemoteCorpus(f"{url}/good.txt", sha(root / "good.txt"), "toy.txt", 2100, "toy")
    monkeypatch.setitem(data.REMOTE_CORPORA, "toy", good)
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="download_missing=True"):
        load_corpus("toy", cache_dir=cache, download_missing=False)
    text = load_corpus("toy", cache_dir=cache)
    assert text == (root / "good.txt").read_text()
    (root / "good.txt").unlink()  # the server no longer has it: the cache answers
    assert load_corpus("toy", cache_dir=cache) == text
    monkeypatch.setenv("LLMBOOK_CACHE", str(cache))
    assert load_corpus("toy") == text
    (cache / "toy.txt").write_text("tampered")
    with pytest.raises(ValueError, match="expected SHA-256"):
        load_corpus("toy", cache_dir=cache)


def test_load_corpus_with_a_corrupt_server_file(server, tmp_path, monkeypatch):
    url, root = server
    bad = data.RemoteCorpus(f"{url}/corrupt.txt", sha(root / "good.txt"), "toy.txt", 2100, "toy")
    monkeypatch.setitem(data.REMOTE_CORPORA, "toy", bad)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_corpus("toy", cache_dir=cache)
    assert os.listdir(cache) == []
