"""Tests the classroom checker needs for chapter 01's tasks (llmbook/classroom/tasks.py maps
them): ``_split_specials`` when one special token begins another, so that only longest-first
matching keeps the longer one whole, whatever order the specials are given in."""

import pytest

from llmbook.tokenizer import BPETokenizer, _split_specials

SHORT, LONG = "<|im|>", "<|im|>!"
TEXT = "The cat sat on the mat. " * 40


@pytest.mark.parametrize(
    "specials", [[SHORT, LONG], [LONG, SHORT]], ids=["short-first", "long-first"]
)
def test_split_specials_keeps_the_longest_special_whole(specials):
    """One special token is a prefix of another: the text's "<|im|>!" is one piece."""
    assert _split_specials("a<|im|>!b<|im|>c", specials) == ["a", LONG, "b", SHORT, "c"]
    assert _split_specials("<|im|>!<|im|><|im|>!", specials) == [LONG, SHORT, LONG]


def test_split_specials_pieces():
    """Non-empty pieces, specials kept, regex characters taken literally, text rebuilt whole."""
    assert _split_specials("no specials here", []) == ["no specials here"]
    assert _split_specials("no specials here", ["<|x|>"]) == ["no specials here"]
    assert _split_specials("<|x|>", ["<|x|>"]) == ["<|x|>"]
    assert _split_specials("<|x|><|x|>ab", ["<|x|>"]) == ["<|x|>", "<|x|>", "ab"]
    assert _split_specials("axb a.b", ["a.b"]) == ["axb ", "a.b"]  # "." is not a wildcard
    text = "x[*]y(+)z[*]"
    pieces = _split_specials(text, iter(["[*]", "(+)"]))  # any iterable of specials
    assert pieces == ["x", "[*]", "y", "(+)", "z", "[*]"] and "".join(pieces) == text


@pytest.mark.parametrize(
    "specials", [[SHORT, LONG], [LONG, SHORT]], ids=["short-first", "long-first"]
)
def test_encode_takes_the_longest_special_token(specials):
    tok = BPETokenizer.train(TEXT, 300, special_tokens=specials)
    short, long = tok.special_tokens[SHORT], tok.special_tokens[LONG]
    ids = tok.encode("a<|im|>!b<|im|>c", allowed_special="all")
    assert ids.count(long) == 1 and ids.count(short) == 1, ids
    assert ids.index(long) < ids.index(short)
    assert tok.decode(ids) == "a<|im|>!b<|im|>c"
