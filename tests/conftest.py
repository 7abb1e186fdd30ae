import pytest
import tiktoken


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
