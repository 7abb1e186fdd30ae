import pytest
import tiktoken

from llmbook import load_corpus


@pytest.fixture(scope="session")
def tiktoken_encoding():
    """Return a loader for tiktoken encodings that skips the test when the files cannot be had."""
    cache = {}

    def load(name: str):
        if name not in cache:
            try:
                cache[name] = tiktoken.get_encoding(name)
            except Exception as error:  # no network and no TIKTOKEN_CACHE_DIR holding the file
                cache[name] = error
        if isinstance(cache[name], Exception):
            pytest.skip(
                f"tiktoken encoding {name!r} unavailable (offline without TIKTOKEN_CACHE_DIR?): {cache[name]}"
            )
        return cache[name]

    return load


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """A text file of whole stories (about 20,000 characters) for the command-line tests."""
    text = load_corpus("stories")
    path = tmp_path_factory.mktemp("data") / "stories_part.txt"
    path.write_text(text[: text.index("<|endoftext|>", 20_000) + 14], encoding="utf-8")
    return path
