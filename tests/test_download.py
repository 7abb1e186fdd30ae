"""llmbook.io.download: pinned corpora fetched once, checked, bounded in time and size (local server only)."""

import hashlib
import http.server
import math
import os
import socket
import threading
import time
from functools import partial

import pytest

from llmbook.data import load_corpus
from llmbook.io import download as download_module
from llmbook.io.download import corpus_path, download


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMBOOK_CACHE", str(tmp_path / "here"))
    assert download_module.default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("LLMBOOK_CACHE")
    assert download_module.default_cache_dir().parts[-2:] == (".cache", "llmbook")


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
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
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
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
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
    good = download_module.RemoteCorpus(
        f"{url}/good.txt", sha(root / "good.txt"), "toy.txt", 2100, "toy"
    )
    monkeypatch.setitem(download_module.REMOTE_CORPORA, "toy", good)
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
    bad = download_module.RemoteCorpus(
        f"{url}/corrupt.txt", sha(root / "good.txt"), "toy.txt", 2200, "toy"
    )
    monkeypatch.setitem(download_module.REMOTE_CORPORA, "toy", bad)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_corpus("toy", cache_dir=cache)
    assert os.listdir(cache) == []


# ----------------------------------------------------------------------------- slow and oversized servers


class Counting(http.server.BaseHTTPRequestHandler):
    """Answers GET by the path: /drip (a byte every 0.1 s), /big (with Content-Length), /big-stream
    (no Content-Length, so the size is known only while reading), anything else: 200 bytes."""

    requests = 0

    def do_GET(self):
        type(self).requests += 1
        try:
            self.send_response(200)
            if self.path == "/big-stream":
                self.end_headers()
                for _ in range(50):
                    self.wfile.write(b"y" * 1000)
                return
            size = 5000 if self.path == "/big" else 1000 if self.path == "/drip" else 200
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.path == "/drip":
                for _ in range(size):  # each byte within any sensible per-read timeout
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self.wfile.write(b"z" * size)
        except OSError:  # the client gave up: stop quietly
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def odd_server():
    Counting.requests = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_slow_drip_hits_the_deadline(odd_server, tmp_path):
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="past the deadline"):
        download(f"{odd_server}/drip", tmp_path / "d.txt", "0" * 64, timeout=2, deadline=0.5)
    assert time.monotonic() - start < 10  # the drip alone would take 100 s
    assert os.listdir(tmp_path) == []


def test_an_announced_oversized_file_is_refused(odd_server, tmp_path):
    with pytest.raises(ValueError, match="announces 5,000 bytes, more than the expected 1,000"):
        download(f"{odd_server}/big", tmp_path / "b.txt", "0" * 64, max_bytes=1000)
    assert os.listdir(tmp_path) == []


def test_reading_stops_past_the_expected_size(odd_server, tmp_path):
    with pytest.raises(ValueError, match="sent more than the expected 1,000 bytes"):
        download(f"{odd_server}/big-stream", tmp_path / "b.txt", "0" * 64, max_bytes=1000)
    assert os.listdir(tmp_path) == []


def test_exact_size_is_accepted(odd_server, tmp_path):
    good = hashlib.sha256(b"z" * 200).hexdigest()
    path = download(f"{odd_server}/small", tmp_path / "s.txt", good, max_bytes=200)
    assert path.read_bytes() == b"z" * 200


def test_load_corpus_passes_the_known_size(server, tmp_path, monkeypatch):
    url, root = server
    small = download_module.RemoteCorpus(
        f"{url}/good.txt", sha(root / "good.txt"), "toy.txt", 100, "toy"
    )
    monkeypatch.setitem(download_module.REMOTE_CORPORA, "toy", small)  # 2,100 bytes on the server
    with pytest.raises(ValueError, match="more than the expected 100"):
        load_corpus("toy", cache_dir=tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []


BAD_DOWNLOADS = [
    pytest.param(
        {"sha256": None},
        ValueError,
        "sha256 must be the file's SHA-256 as 64 hex digits, got None",
        id="sha256-none",
    ),
    pytest.param({"sha256": "abc"}, ValueError, "64 hex digits, got 'abc'", id="sha256-short"),
    pytest.param({"sha256": "g" * 64}, ValueError, "64 hex digits", id="sha256-not-hex"),
    pytest.param(
        {"url": "ftp://example.org/x"},
        ValueError,
        "url must be an http:// or https:// address",
        id="url-ftp",
    ),
    pytest.param({"url": None}, ValueError, "url must be an http", id="url-none"),
    pytest.param(
        {"timeout": 0},
        ValueError,
        "timeout must be a finite number of seconds > 0, got 0",
        id="timeout-0",
    ),
    pytest.param(
        {"timeout": "5"},
        TypeError,
        "timeout must be a number of seconds, got str",
        id="timeout-str",
    ),
    pytest.param(
        {"timeout": math.nan}, ValueError, "timeout must be a finite number", id="timeout-nan"
    ),
    pytest.param(
        {"deadline": math.inf}, ValueError, "deadline must be a finite number", id="deadline-inf"
    ),
    pytest.param(
        {"deadline": -1},
        ValueError,
        "deadline must be a finite number of seconds > 0",
        id="deadline-negative",
    ),
    pytest.param(
        {"max_bytes": 0}, ValueError, "max_bytes must be None or an int >= 1", id="max-bytes-0"
    ),
    pytest.param(
        {"max_bytes": 1.5}, ValueError, "max_bytes must be None or an int", id="max-bytes-float"
    ),
    pytest.param(
        {"max_bytes": True}, ValueError, "max_bytes must be None or an int", id="max-bytes-bool"
    ),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_DOWNLOADS)
def test_bad_arguments_fail_before_downloading(odd_server, tmp_path, kwargs, error, message):
    arguments = {
        "url": f"{odd_server}/small",
        "path": tmp_path / "x.txt",
        "sha256": "0" * 64,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        download(**arguments)
    assert Counting.requests == 0 and os.listdir(tmp_path) == []


def test_corpus_path_errors(tmp_path):
    with pytest.raises(
        ValueError, match="unknown remote corpus 'stories'; available: tinyshakespeare, tinystories"
    ):
        corpus_path("stories")
    with pytest.raises(TypeError, match="cache_dir must be None, a str or a path, got int"):
        corpus_path("tinystories", cache_dir=123)
    with pytest.raises(FileNotFoundError, match="download_missing=True"):
        corpus_path("tinystories", cache_dir=tmp_path, download_missing=False)
