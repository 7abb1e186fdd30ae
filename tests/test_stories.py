"""The book's generated corpus: byte-stable, well-formed, with exact derivation log-probabilities."""

import gzip
import hashlib
import json
import math
import random
import re
import zlib

import pytest

from llmbook.data import corpus_statistics, load_corpus
from llmbook.stories import generator as stories

# Pinned: changing the generator or its seed changes these, and every stored notebook output
# that shows the corpus; regenerate with `python tools/make_stories.py` and re-execute chapters.
SHIPPED_GZ_SHA256 = "fb740aec540909051b80cd4b4fee798118f9bad631dea11af4064deab1c912d6"


@pytest.fixture(scope="module")
def text():
    return load_corpus("stories")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stories")
    meta = stories.write_corpus(directory)
    return directory, meta


def test_shipped_file_is_pinned():
    digest = hashlib.sha256(stories.CORPUS_FILE.read_bytes()).hexdigest()
    assert digest == SHIPPED_GZ_SHA256, (
        "llmbook/stories/stories.txt.gz changed; if on purpose, update the pin"
    )


def test_text_matches_its_metadata(text):
    meta = stories.read_meta()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == meta["sha256_text"]
    assert len(text) == meta["n_chars"]
    assert text.count(stories.SEPARATOR) == meta["n_stories"]


def test_regenerating_gives_the_same_text_and_metadata(regenerated, text):
    directory, meta = regenerated
    fresh = gzip.decompress((directory / "stories.txt.gz").read_bytes()).decode("utf-8")
    assert fresh == text
    shipped = stories.read_meta()
    assert set(meta) == set(shipped)
    for key, value in shipped.items():
        if isinstance(value, float):
            assert meta[key] == pytest.approx(value, rel=1e-12, abs=0)
        else:
            assert meta[key] == value
    assert json.loads((directory / "stories.json").read_text()) == meta


@pytest.mark.skipif(
    "ng" in zlib.ZLIB_RUNTIME_VERSION.lower(),
    reason="zlib-ng compresses differently from zlib; the text itself is compared above",
)
def test_regenerating_gives_the_same_gzip_bytes(regenerated):
    directory, _ = regenerated
    assert (directory / "stories.txt.gz").read_bytes() == stories.CORPUS_FILE.read_bytes()


def test_gzip_header_has_no_time_or_name():
    data = stories.gzip_bytes("hello")
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[3] == 0  # no FNAME flag
    assert data[4:8] == b"\0\0\0\0"  # mtime 0
    assert gzip.decompress(data) == b"hello"


def test_corpus_is_big_and_varied(text):
    stats = corpus_statistics(text)
    assert stats["n_bytes"] >= 1_000_000
    assert stats["n_documents"] > 1000
    assert stats["vocabulary"] > 1000
    assert stats["distinct_trigrams"] > 40_000
    assert stats["distinct_trigram_ratio"] > 0.2
    assert 2.0 < stats["gzip_ratio"] < 7.0


def test_documents_are_well_formed(text):
    assert text.isascii()
    documents = text.split(stories.SEPARATOR + "\n")
    assert documents[-1] == ""
    for doc in documents[:-1]:
        assert doc.endswith("\n") and not doc.startswith("\n") and "\n\n" not in doc
        assert doc.strip()
    # no template leaks: slots, rule names or capitalisation markers
    assert not re.search(r"[<>{}^]", text.replace(stories.SEPARATOR, ""))
    # sentences start with a capital letter; "a" is "an" before a vowel
    assert not re.search(r"[.!?] [a-z]", text)
    assert not re.search(r"\b[Aa] [aeiouAEIOU]", text)
    assert not re.search(r"  ", text)
    assert not re.search(r"\b(\w+) \1\b", text)  # no "a little little boy"


def test_generation_is_deterministic_and_seeded():
    a = stories.generate_stories(20, seed=7)
    b = stories.generate_stories(20, seed=7)
    c = stories.generate_stories(20, seed=8)
    assert a == b
    assert [t for t, _ in a] != [t for t, _ in c]
    assert len({t for t, _ in a}) == 20


def test_logprob_of_a_uniform_and_a_weighted_choice():
    story = stories._Story(random.Random(0))
    word = story.expand("<feel_good>")
    assert word in stories.GRAMMAR["feel_good"]
    assert story.logprob == pytest.approx(-math.log(len(stories.GRAMMAR["feel_good"])))
    story = stories._Story(random.Random(0))
    verb = story.expand("<said>")
    weights = {
        alt[1] if isinstance(alt, tuple) else alt: alt[0] if isinstance(alt, tuple) else 1
        for alt in stories.GRAMMAR["said"]
    }
    assert story.logprob == pytest.approx(math.log(weights[verb] / sum(weights.values())))


def test_weighted_choice_follows_its_weights():
    story = stories._Story(random.Random(1))
    draws = [story.choose("abc", (1, 2, 7)) for _ in range(20_000)]
    for letter, p in zip("abc", (0.1, 0.2, 0.7)):
        assert abs(draws.count(letter) / len(draws) - p) < 0.015


def test_story_logprob_is_the_sum_of_its_choices(monkeypatch):
    recorded = []
    original = stories._Story.choose

    def recording(self, options, weights=None):
        before = self.logprob
        result = original(self, options, weights)
        recorded.append(self.logprob - before)
        return result

    monkeypatch.setattr(stories._Story, "choose", recording)
    text, logprob = stories.generate_story(random.Random(3))
    assert len(recorded) > 20 and all(step <= 0 for step in recorded)
    assert logprob == pytest.approx(sum(recorded))
    assert -400 < logprob < -20


def test_alternatives_are_distinct():
    # Distinct alternatives are what keeps one text to one derivation.
    for name, alternatives in stories.GRAMMAR.items():
        strings = [a[1] if isinstance(a, tuple) else a for a in alternatives]
        assert len(strings) == len(set(strings)), name
    for name, group in [
        ("GIRL_NAMES", stories.GIRL_NAMES),
        ("BOY_NAMES", stories.BOY_NAMES),
        ("ANIMAL_NAMES", stories.ANIMAL_NAMES),
        ("ANIMALS", stories.ANIMALS),
        ("COLORS + OBJ_ADJS", stories.COLORS + stories.OBJ_ADJS),
    ]:
        assert len(group) == len(set(group)), name
    names = stories.GIRL_NAMES + stories.BOY_NAMES + stories.ANIMAL_NAMES
    assert len(names) == len(set(names))


def test_entropy_figures_are_consistent(text):
    meta = stories.read_meta()
    assert meta["total_logprob"] < 0
    assert meta["nats_per_char"] == pytest.approx(-meta["total_logprob"] / len(text))
    words = len(text.split()) - text.count(stories.SEPARATOR)
    assert meta["nats_per_word"] == pytest.approx(-meta["total_logprob"] / words)
    assert 0.02 < meta["nats_per_char"] < 1.0


def test_generate_stories_rejects_bad_n():
    with pytest.raises(ValueError, match="n must be"):
        stories.generate_stories(-1)


# ------------------------------------------------------------------ fresh stories (issue 24)

from llmbook.stories import FRESH_SEED, fresh_stories, parse_size  # noqa: E402


def test_fresh_stories_are_pinned_and_the_same_on_every_machine():
    text, meta = fresh_stories("100K")
    assert meta["sha256_text"] == hashlib.sha256(text.encode()).hexdigest()
    assert meta["sha256_text"] == "4c95683687ff2eb99ff2aa4f96daf02dc486eb2e2c723b3f704b6144347b798a"
    assert (meta["seed"], meta["n_stories"], meta["n_chars"]) == (FRESH_SEED, 129, 100_651)
    assert math.isclose(meta["nats_per_char"], -meta["total_logprob"] / len(text))


def test_a_shorter_size_is_a_prefix_and_the_size_is_reached():
    short, _ = fresh_stories(20_000)
    long, meta = fresh_stories("50K")
    assert long.startswith(short) and len(short) >= 20_000 and len(long) >= 50_000
    assert long.count(stories.SEPARATOR) == meta["n_stories"] and long.endswith("\n")


def test_fresh_stories_share_no_story_with_the_shipped_corpus_or_the_test_seed(text):
    fresh = set(fresh_stories("200K")[0].split(stories.SEPARATOR))
    shipped = set(text.split(stories.SEPARATOR))
    test_set = {stories.format_document(s) for s, _ in stories.generate_stories(200, seed=2025)}
    assert FRESH_SEED not in (stories.DEFAULT_SEED, 2025)
    assert len(fresh & shipped) <= 2  # only the shortest stories can repeat by chance
    first = fresh_stories(1)[0]
    assert first not in shipped and first not in test_set


@pytest.mark.parametrize(
    "size, chars",
    [("30M", 30_000_000), ("500k", 500_000), ("1.5M", 1_500_000), (" 200000 ", 200_000), (7, 7)],
)
def test_parse_size(size, chars):
    assert parse_size(size) == chars


@pytest.mark.parametrize("size", ["", "M", "2X", "-5K", "1e6", "3G", 0, True, None, 1.5])
def test_parse_size_refuses_what_is_not_a_size(size):
    with pytest.raises(ValueError, match=r"size must be (a number of characters|between 1)"):
        parse_size(size)


def test_fresh_stories_refuse_a_bad_seed():
    with pytest.raises(TypeError, match="seed must be an int"):
        fresh_stories(10, seed="2026")
