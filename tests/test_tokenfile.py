"""llmbook.io.tokenfile: the token-file format (count, checksum, dtype checks) and tokenize_file."""

import hashlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmbook.data import encode_text, load_corpus
from llmbook.io import tokenfile
from llmbook.io.tokenfile import (
    HEADER_SIZE,
    TokenFile,
    TokenFileWriter,
    read_token_file,
    tokenize_file,
    write_token_file,
)
from llmbook.pretrained import load_tokenizer

IDS = [5, 0, 2047, 300, 7, 65535]


def test_header_layout(tmp_path):
    path = write_token_file(tmp_path / "a.tok", IDS)
    raw = path.read_bytes()
    assert raw[:8] == b"LLMBTOK2" and raw[8:16] == b"uint16\0\0"
    assert int.from_bytes(raw[16:24], "little") == len(IDS)
    assert raw[24:56] == hashlib.sha256(np.array(IDS, dtype="<u2").tobytes()).digest()
    assert raw[56:64] == bytes(8) and len(raw) == HEADER_SIZE + 2 * len(IDS)
    assert np.frombuffer(raw[64:], dtype="<u2").tolist() == IDS
    f = read_token_file(path)
    assert f[:].tolist() == IDS and f.sha256 == raw[24:56].hex() and len(f) == 6


def test_writer_in_pieces_equals_one_write(tmp_path):
    with TokenFileWriter(tmp_path / "pieces.tok", "uint32") as writer:
        writer.write([1, 2])
        writer.write(np.array([3], dtype=np.int64))
        writer.write(iter([70_000, 4]))
        writer.write([])
    whole = write_token_file(tmp_path / "whole.tok", [1, 2, 3, 70_000, 4], dtype="uint32")
    assert (tmp_path / "pieces.tok").read_bytes() == whole.read_bytes()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_token_file(tmp_path / "keep.tok", IDS)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), TokenFileWriter(path, "uint16") as writer:
        writer.write([1, 2, 3])
        raise RuntimeError("disk full, say")
    with pytest.raises(ValueError, match="do not fit"), TokenFileWriter(path, "uint16") as writer:
        writer.write([1, 70_000])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["keep.tok"]


def test_verify_limit(tmp_path, monkeypatch):
    path = write_token_file(tmp_path / "big.tok", list(range(1000)))
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 10] ^= 0xFF  # damage one id in place: the size still matches
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="do not match the checksum"):
        TokenFile(path)  # small files are verified on open
    monkeypatch.setattr(tokenfile, "VERIFY_LIMIT", 100)
    f = TokenFile(path)  # too large to verify on every open: opens
    assert len(f) == 1000
    with pytest.raises(ValueError, match="do not match the checksum"):
        f.verify()
    with pytest.raises(ValueError, match="do not match the checksum"):
        TokenFile(path, verify=True)
    assert len(TokenFile(path, verify=False)) == 1000


# ----------------------------------------------------------------------------- damaged files


def _patched(raw: bytes, at: int, new: bytes) -> bytes:
    return raw[:at] + new + raw[at + len(new) :]


DAMAGE = [
    pytest.param(
        lambda raw: raw[:-2],
        {},
        "is cut short: the header says 6 ids of uint16",
        id="cut-by-one-id",
    ),
    pytest.param(lambda raw: raw[:-1], {}, "is cut short", id="cut-by-one-byte"),
    pytest.param(
        lambda raw: raw + b"\0\0",
        {},
        r"longer than its header says \(appended to\?\)",
        id="appended",
    ),
    pytest.param(lambda raw: raw[:30], {}, "the header is cut short", id="cut-inside-header"),
    pytest.param(
        lambda raw: _patched(raw, 8, b"uint8\0\0\0"),
        {},
        "longer than its header says",
        id="header-says-uint8-over-uint16",
    ),
    pytest.param(
        lambda raw: _patched(raw, 8, b"uint32\0\0"),
        {},
        "is cut short: the header says 6 ids of uint32",
        id="header-says-uint32-over-uint16",
    ),
    pytest.param(
        lambda raw: _patched(raw, 8, b"float32\0"),
        {},
        "unknown dtype 'float32' in the header",
        id="header-says-float32",
    ),
    pytest.param(
        lambda raw: _patched(raw, 8, b"int64\0\0\0"),
        {},
        "unknown dtype 'int64'",
        id="header-says-int64",
    ),
    pytest.param(
        lambda raw: _patched(raw, 8, "ü16".encode() + b"\0\0\0\0"),
        {},
        "dtype field is not ASCII",
        id="header-non-ascii",
    ),
    pytest.param(
        lambda raw: _patched(raw, 16, (7).to_bytes(8, "little")),
        {},
        "the header says 7 ids",
        id="header-count-wrong",
    ),
    pytest.param(
        lambda raw: _patched(raw, HEADER_SIZE, b"\xff"),
        {},
        "do not match the checksum",
        id="data-damaged",
    ),
    pytest.param(
        lambda raw: _patched(raw, 7, b"1"),
        {},
        "format b'1' is not supported",
        id="old-format-version",
    ),
    pytest.param(
        lambda raw: raw,
        {"dtype": "uint32"},
        "header says uint16, but dtype=uint32 was given",
        id="dtype-contradicts-header",
    ),
    pytest.param(
        lambda raw: raw,
        {"dtype": "float32"},
        "dtype must be one of uint8, uint16, uint32",
        id="dtype-float-over-header",
    ),
    pytest.param(
        lambda raw: raw[HEADER_SIZE:],
        {},
        "has no token-file header; pass dtype=",
        id="raw-without-dtype",
    ),
    pytest.param(
        lambda raw: raw[HEADER_SIZE:],
        {"dtype": "float32"},
        r"dtype must be one of .* got 'float32'",
        id="raw-float32",
    ),
    pytest.param(
        lambda raw: raw[HEADER_SIZE:],
        {"dtype": ">u2"},
        r"little-endian unsigned integers\), got '>u2'",
        id="raw-big-endian",
    ),
    pytest.param(lambda raw: raw[HEADER_SIZE:], {"dtype": "int64"}, "got 'int64'", id="raw-int64"),
    pytest.param(
        lambda raw: raw[HEADER_SIZE:], {"dtype": "banana"}, "got 'banana'", id="raw-unknown-dtype"
    ),
    pytest.param(
        lambda raw: raw[HEADER_SIZE:-1],
        {"dtype": "uint16"},
        "11 bytes of raw ids is not a multiple of 2",
        id="raw-odd-size",
    ),
    pytest.param(
        lambda raw: raw[HEADER_SIZE:],
        {"dtype": "uint16", "verify": True},
        "has no checksum to verify",
        id="raw-verify",
    ),
]


@pytest.mark.parametrize("damage, kwargs, message", DAMAGE)
def test_damaged_or_misread_files_are_refused_naming_the_path(tmp_path, damage, kwargs, message):
    good = write_token_file(tmp_path / "good.tok", IDS)
    path = tmp_path / "damaged.tok"
    path.write_bytes(damage(good.read_bytes()))
    with pytest.raises(ValueError, match=message) as error:
        TokenFile(path, **kwargs)
    assert str(path) in str(error.value)


BAD_WRITES = [
    pytest.param(
        lambda p: write_token_file(p, [1.5, 2.0]),
        TypeError,
        r"ids must hold ints, got float",
        id="write-float-ids",
    ),
    pytest.param(
        lambda p: write_token_file(p, np.array([1.0, 2.0])),
        TypeError,
        "dtype float64",
        id="write-float-array",
    ),
    pytest.param(lambda p: write_token_file(p, [1, -2]), ValueError, "got -2", id="write-negative"),
    pytest.param(
        lambda p: write_token_file(p, [2**32]),
        ValueError,
        "ids must be in 0..4,294,967,295",
        id="write-too-large",
    ),
    pytest.param(
        lambda p: write_token_file(p, [1, 70_000], dtype="uint16"),
        ValueError,
        "max id 70000 > 65535, the largest uint16",
        id="write-does-not-fit-uint16",
    ),
    pytest.param(
        lambda p: write_token_file(p, [256], dtype="uint8"),
        ValueError,
        "do not fit the file's dtype",
        id="write-does-not-fit-uint8",
    ),
    pytest.param(
        lambda p: write_token_file(p, [1], dtype="int64"),
        ValueError,
        "dtype must be one of",
        id="write-int64",
    ),
    pytest.param(
        lambda p: write_token_file(p, [1], dtype="float32"),
        ValueError,
        "dtype must be one of",
        id="write-float32",
    ),
    pytest.param(
        lambda p: write_token_file(p, [1], dtype=">u2"),
        ValueError,
        "little-endian",
        id="write-big-endian",
    ),
    pytest.param(
        lambda p: write_token_file(p, [1], dtype="banana"),
        ValueError,
        "got 'banana'",
        id="write-unknown-dtype",
    ),
    pytest.param(
        lambda p: write_token_file(None, [1]),
        TypeError,
        "path must be a str or a path, got NoneType",
        id="write-path-none",
    ),
    pytest.param(
        lambda p: TokenFile(123),
        TypeError,
        "path must be a str or a path, got int",
        id="open-path-int",
    ),
    pytest.param(
        lambda p: tokenfile.token_dtype(-1),
        ValueError,
        "max_id must be >= 0",
        id="token-dtype-negative",
    ),
    pytest.param(
        lambda p: tokenfile.token_dtype(2**32),
        ValueError,
        "does not fit in uint32",
        id="token-dtype-too-large",
    ),
]


@pytest.mark.parametrize("call, error, message", BAD_WRITES)
def test_bad_writes_get_a_clear_error_and_leave_nothing(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path / "x.tok")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- tokenize_file


class CharTokenizer:
    """Only encode(text): no special tokens, no encode_ordinary."""

    def encode(self, text):
        return [ord(c) for c in text]


class IterableTokenizer:
    """The book's tokenizer behind encode_iterable, recording the calls."""

    def __init__(self, bpe):
        self.bpe, self.calls, self.vocab_size = bpe, 0, bpe.vocab_size

    def encode(self, text, allowed_special="none_raise"):
        return self.bpe.encode(text, allowed_special=allowed_special)

    def encode_iterable(self, texts):
        self.calls += 1
        for text in texts:
            yield from self.bpe.encode_ordinary(text)


@pytest.fixture(scope="module")
def book():
    return load_tokenizer("stories")


def _tokenize(tmp_path, text, tokenizer, **kwargs):
    source = tmp_path / "in.txt"
    source.write_bytes(text.encode("utf-8"))
    return tokenize_file(source, tokenizer, tmp_path / "out.tok", progress=False, **kwargs)


def test_tokenize_file_equals_encoding_the_whole_text(tmp_path, book, tiktoken_encoding):
    text = load_corpus("stories")[:60_000]
    gpt2 = tiktoken_encoding("gpt2")
    for tokenizer in (book, gpt2, CharTokenizer()):
        f = _tokenize(tmp_path, text, tokenizer, chunk_chars=997)
        assert f[:].tolist() == encode_text(tokenizer, text)
    assert _tokenize(tmp_path, text, book).dtype == np.dtype("<u2")  # 2,048 ids
    assert _tokenize(tmp_path, text, CharTokenizer()).dtype == np.dtype("<u4")  # size unknown


def test_tokenize_file_uses_encode_iterable(tmp_path, book):
    text = load_corpus("stories")[:20_000]
    tokenizer = IterableTokenizer(book)
    f = _tokenize(tmp_path, text, tokenizer, chunk_chars=500)
    assert f[:].tolist() == encode_text(book, text)
    assert tokenizer.calls == text.count("<|endoftext|>") + 1  # once per document


def test_tokenize_file_without_a_separator(tmp_path, book):
    text = "one\n<|endoftext|>\ntwo"
    f = _tokenize(tmp_path, text, book, separator=None)
    assert f[:].tolist() == book.encode(text, allowed_special="none")
    assert 2047 not in f[:].tolist()


def test_tokenize_file_failure_leaves_no_token_file(tmp_path):
    class Broken:
        def encode(self, text):
            raise RuntimeError("tokenizer broke")

    with pytest.raises(RuntimeError, match="tokenizer broke"):
        _tokenize(tmp_path, "some text\nmore text\n" * 100, Broken(), chunk_chars=10)
    assert os.listdir(tmp_path) == ["in.txt"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        pytest.param(
            {"tokenizer": object()}, TypeError, "tokenizer must have an encode", id="no-encode"
        ),
        pytest.param(
            {"separator": ""},
            ValueError,
            "separator must be None or a non-empty str",
            id="empty-separator",
        ),
        pytest.param({"chunk_chars": 0}, ValueError, "chunk_chars must be >= 1", id="chunk-0"),
        pytest.param({"dtype": "float32"}, ValueError, "dtype must be one of", id="dtype-float"),
    ],
)
def test_tokenize_file_bad_arguments(tmp_path, book, kwargs, error, message):
    kwargs = {"tokenizer": book, **kwargs}
    source = tmp_path / "in.txt"
    source.write_text("hello\n", encoding="utf-8")
    with pytest.raises(error, match=message):
        tokenize_file(
            source, kwargs.pop("tokenizer"), tmp_path / "out.tok", progress=False, **kwargs
        )
    assert not (tmp_path / "out.tok").exists()


PIECES = [
    "a",
    "b",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    ".",
    "!",
    "é",
    "12",
    "<|endoftext|>",
    "'s",
    "/",  # o200k joins ".\n/" into one pre-token: a cut before "/" would change its ids
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=60), chunk_chars=st.integers(1, 12))
def test_cuts_never_change_the_ids(tmp_path, book, tiktoken_encoding, parts, chunk_chars):
    text = "".join(parts)
    tokenizers = [book]
    for name in ("gpt2", "cl100k_base", "o200k_base"):
        tokenizers.append(tiktoken_encoding(name))
    for tokenizer in tokenizers:
        f = _tokenize(tmp_path, text, tokenizer, chunk_chars=chunk_chars)
        assert f[:].tolist() == encode_text(tokenizer, text), (text, chunk_chars)


def test_no_cut_between_a_line_break_and_a_slash(tmp_path, tiktoken_encoding):
    """o200k's pattern joins punctuation, line breaks and "/" (".\\n/" is one pre-token), so a
    piece may not end after "\\n" when "/" follows: the ids would differ from the whole text's."""
    o200k = tiktoken_encoding("o200k_base")
    text = "Hello there.\n/usr/bin\n" * 200
    f = _tokenize(tmp_path, text, o200k, chunk_chars=100)
    assert f[:].tolist() == encode_text(o200k, text)
