"""The story checker (llmbook.stories.checker, chapter 10): silent on every story the generator
writes, loud on each kind of planted error, exact about which sentences the grammar writes."""

import random
import re

import pytest

from llmbook.data import load_corpus
from llmbook.stories import SEPARATOR, checker, generate_stories
from llmbook.stories import generator as stories
from llmbook.stories.checker import (
    CONTRADICTIONS,
    ENDINGS,
    KINDS,
    check_stories,
    check_story,
    grammatical_rate,
    read_story,
    split_sentences,
)


@pytest.fixture(scope="module")
def corpus():
    documents = load_corpus("stories").split(f"\n{SEPARATOR}\n")
    assert documents[-1] == ""
    return documents[:-1]


@pytest.fixture(scope="module")
def fresh():
    return [text for text, _ in generate_stories(300, seed=4321)]


def kinds(text):
    return [p.kind for p in check_story(text)]


def paragraphs(text):
    return text.split("\n")


def find(texts, condition):
    """The first (text, reading) whose reading meets ``condition``; fails if there is none."""
    for text in texts:
        reading = read_story(text)
        if condition(text, reading):
            return text, reading
    pytest.fail("no story of the sample fits the test")


def names(reading):
    return reading.cast[0].name, reading.cast[1].name


# ------------------------------------------------------------------ silent on the generator


def test_every_corpus_story_reads_without_a_problem(corpus):
    report = check_stories(corpus)
    assert report["stories"] == len(corpus) > 1000
    assert report["problems"] == dict.fromkeys(KINDS, 0)
    assert report["grammatical_sentences"] == report["sentences"] > 15 * len(corpus)
    assert report["grammatical_rate"] == 1.0
    assert report["contradictions"] == report["stories_with_contradictions"] == 0


@pytest.mark.parametrize("seed", [1, 77])
def test_fresh_stories_read_without_a_problem(seed):
    texts = [text for text, _ in generate_stories(1000, seed=seed)]
    problems = [(i, p) for i, text in enumerate(texts) for p in check_story(text)]
    assert problems == []


def test_a_reading_finds_the_generators_own_state(monkeypatch):
    states = []
    ending = stories._ending

    def recording(s):
        ending(s)
        states.append((dict(s.ctx), s.moral))

    monkeypatch.setattr(stories, "_ending", recording)
    texts = [text for text, _ in generate_stories(200, seed=9)]
    known_pronouns = 0
    for text, (ctx, plot) in zip(texts, states, strict=True):
        reading = read_story(text)
        hero, friend = reading.cast[:2]
        assert (hero.role, hero.name, hero.kind) == ("hero", ctx["H"], ctx["h_kind"])
        assert (friend.role, friend.name) == ("friend", ctx["F"])
        assert friend.kind in (None, ctx["f_kind"])
        for character, prefix in ((hero, "h"), (friend, "f")):
            assert character.pronoun in (None, ctx[f"{prefix}_he"])
            known_pronouns += character.pronoun is not None
        for grownup in reading.cast[2:]:
            assert (grownup.name, grownup.kind) == (ctx["G"], ctx["g_noun"])
            assert grownup.pronoun == ctx["g_he"]
        assert reading.place == ctx["place"]
        assert reading.objects == [ctx["obj"]]
        assert reading.plot == plot
        assert reading.ends and reading.ending in ENDINGS.values()
    assert known_pronouns > 300  # most pronouns are read: child names and he/she in the text


def test_sentences_carry_their_offsets_and_templates(fresh):
    text = fresh[0]
    reading = read_story(text)
    assert [s.index for s in reading.sentences] == list(range(len(reading.sentences)))
    for s in reading.sentences:
        assert text[s.start : s.start + len(s.text)] == s.text
        assert s.grammatical and s.template
    assert [s.paragraph for s in reading.sentences][-1] == len(paragraphs(text)) - 1


# ------------------------------------------------------------------ planted errors, one kind each


def test_one_name_for_two_characters(fresh):
    """ "Jelly asked Jelly": the friend's name replaced by the hero's in one sentence."""
    text, reading = find(fresh, lambda t, r: f"{r.cast[0].name} asked {r.cast[1].name} " in t)
    hero, friend = names(reading)
    planted = text.replace(f"{hero} asked {friend} ", f"{hero} asked {hero} ")
    problems = check_story(planted)
    assert [p.kind for p in problems] == ["name"]
    assert hero in problems[0].message and "both" in problems[0].message
    assert planted[problems[0].offset :].startswith(f"{hero} to come")


def test_a_friend_introduced_with_the_heros_name(fresh):
    text, reading = find(fresh, lambda t, r: r.cast[1].name in paragraphs(t)[0])
    hero, friend = names(reading)
    planted = text.replace(friend, hero)  # everywhere: the story now has two Lilys
    assert "name" in kinds(planted)


def test_a_pronoun_that_does_not_match_its_character(fresh):
    text, reading = find(
        fresh, lambda t, r: r.cast[0].kind == "boy" and "\nHe " not in t and ". He loved " in t
    )
    planted = text.replace(". He loved ", ". She loved ", 1)
    problems = check_story(planted)
    assert [p.kind for p in problems] == ["pronoun"]
    assert planted[problems[0].offset :].startswith("She loved")
    assert reading.cast[0].name in problems[0].message


def test_the_grown_ups_pronoun(fresh):
    text, reading = find(
        fresh, lambda t, r: r.cast[-1].pronoun == "she" and "She got a ladder" in t
    )
    assert kinds(text.replace("She got a ladder", "He got a ladder")) == ["pronoun"]


def test_a_stranger_mid_story(fresh):
    """A new name where the friend was: the character appears unannounced."""
    text, reading = find(
        fresh, lambda t, r: r.cast[1].kind == "girl" and r.cast[1].name in paragraphs(t)[2]
    )
    hero, friend = names(reading)
    stranger = next(n for n in stories.GIRL_NAMES if n not in (hero, friend))
    parts = paragraphs(text)
    parts[2] = parts[2].replace(friend, stranger, 1)
    planted = "\n".join(parts)
    problems = check_story(planted)
    assert [p.kind for p in problems] == ["unannounced"]
    assert stranger in problems[0].message
    assert planted[problems[0].offset :].startswith(stranger)


def test_a_friend_the_opening_does_not_introduce(fresh):
    text, reading = find(fresh, lambda t, r: r.sentences[3].paragraph == 0)
    opening = split_sentences(paragraphs(text)[0])
    friend = reading.cast[1].name
    kept = [s.text for s in opening if friend not in s.text]
    planted = "\n".join([" ".join(kept), *paragraphs(text)[1:]])
    problems = check_story(planted)
    assert [p.kind for p in problems] == ["unannounced"]
    assert friend in problems[0].message and "opening" in problems[0].message


def test_the_object_changes(fresh):
    text, reading = find(fresh, lambda t, r: r.objects[0] in "\n".join(paragraphs(t)[1:]))
    adjective, noun = reading.objects[0].split(" ", 1)
    other = "blue" if adjective != "blue" else "green"
    parts = paragraphs(text)
    planted = "\n".join(
        [parts[0], *(p.replace(reading.objects[0], f"{other} {noun}") for p in parts[1:])]
    )
    problems = check_story(planted)
    assert {p.kind for p in problems} == {"changed"}
    assert f"{other} {noun}" in problems[0].message
    assert read_story(planted).objects == [reading.objects[0], f"{other} {noun}"]


def test_a_name_that_does_not_fit_the_kind(fresh):
    text, reading = find(
        fresh,
        lambda t, r: t.startswith("Once upon a time, there was a") and r.cast[0].kind == "girl",
    )
    planted = text.replace(" girl named ", " boy named ", 1)
    problems = check_story(planted)  # "a boy named Lily": the name is read first, then "boy"
    assert [(p.kind, p.sentence, p.fact) for p in problems] == [("changed", 0, "the hero's kind")]
    assert planted[problems[0].offset :].startswith("boy named")


def test_the_place_changes(fresh):
    text, reading = find(fresh, lambda t, r: r.place == "the park" and "went to the park to" in t)
    planted = text.replace("went to the park to", "went to the library to")
    problems = check_story(planted)  # the library here, the park's swings and slide after
    assert {p.kind for p in problems} == {"place"} and len(problems) > 1
    first = read_story(planted).sentences[problems[0].sentence]
    assert "went to the library to" in first.text  # the park's activity in the same sentence
    assert first.start < problems[0].offset < first.start + len(first.text)
    assert check_stories([planted])["per_100_stories"]["place"] == 100.0


def test_the_plot_changes(fresh):
    """A sentence of a fear story, told with this cast, inside a lost-toy story."""
    text, reading = find(fresh, lambda t, r: r.plot == "lost")
    other, other_reading = find(fresh, lambda t, r: r.plot == "fear")
    line = next(
        s.text for s in other_reading.sentences if s.text.startswith(("It was ", "It turned out"))
    )
    parts = paragraphs(text)
    parts[2] += " " + line
    problems = check_story("\n".join(parts))
    assert [(p.kind, p.fact) for p in problems] == [("plot", "the plot")]
    assert "fear" in problems[0].message and "lost" in problems[0].message


def test_the_friend_where_only_the_hero_goes(fresh):
    text, reading = find(
        fresh, lambda t, r: r.plot == "skill" and f"{r.cast[0].name} wanted to learn to " in t
    )
    hero, friend = names(reading)
    planted = text.replace(f"{hero} wanted to learn to ", f"{friend} wanted to learn to ")
    assert kinds(planted) == ["role"]


def test_a_story_without_its_ending(fresh):
    text = fresh[0]
    problems = check_story("\n".join(paragraphs(text)[:-1]))
    assert [p.kind for p in problems] == ["ending"]
    assert read_story("\n".join(paragraphs(text)[:-1])).ending is None


def test_a_story_cut_off_mid_sentence(fresh):
    text = fresh[1]
    planted = text[: len(text) - 7]
    reading = read_story(planted)
    assert {p.kind for p in reading.problems} == {"ending", "ungrammatical"}
    assert reading.problems[-1].kind == "ending" and "cut off" in reading.problems[-1].message
    assert reading.problems[-1].offset == len(planted) and not reading.ends


def test_a_story_that_goes_on_after_its_ending(fresh):
    text = fresh[2]
    planted = text + "\n" + paragraphs(text)[1]
    problems = check_story(planted)
    assert [p.kind for p in problems] == ["ending", "ending"]
    assert "then goes on" in problems[0].message
    assert check_stories([planted])["problems"]["ending"] == 1  # one fact: the ending


def test_a_garbled_sentence(fresh):
    text = fresh[3]
    reading = read_story(text)
    target = reading.sentences[6]
    words = target.text.split(" ")
    words[1], words[2] = words[2], words[1]
    planted = text.replace(target.text, " ".join(words))
    problems = check_story(planted)
    assert [(p.kind, p.sentence, p.offset) for p in problems] == [
        ("ungrammatical", 6, target.start)
    ]
    n = len(reading.sentences)
    assert grammatical_rate([planted]) == (n - 1) / n


# ------------------------------------------------------------------ what "grammatical" means


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (" an orange ", " a orange "),  # the generator writes "an" before a vowel...
        (" a red ", " an red "),  # ...and only there
    ],
)
def test_articles_are_exact(fresh, good, bad):
    text, _ = find(fresh, lambda t, r: good in paragraphs(t)[0])
    assert kinds(text.replace(good, bad, 1)) == ["ungrammatical"]


def test_capitals_are_exact(fresh):
    text = fresh[4]
    second = read_story(text).sentences[1]
    planted = text[: second.start] + second.text[0].lower() + text[second.start + 1 :]
    assert kinds(planted) == ["ungrammatical"]


def test_half_of_a_two_sentence_template_is_not_grammatical(fresh):
    text, reading = find(fresh, lambda t, r: t.startswith("There once was a"))
    first, second = reading.sentences[:2]
    assert first.template == second.template  # one template writes both
    planted = text.replace(" " + second.text, "", 1)
    assert kinds(planted) == ["ungrammatical"]


def test_a_grammatical_sentence_from_another_story_is_a_contradiction(fresh):
    """Jelly asked Jelly has the form of a sentence the grammar writes: it is grammatical."""
    text, reading = find(fresh, lambda t, r: f"{r.cast[0].name} asked {r.cast[1].name} " in t)
    hero, friend = names(reading)
    planted = text.replace(f"{hero} asked {friend} ", f"{hero} asked {hero} ")
    assert all(s.grammatical for s in read_story(planted).sentences)


def test_every_template_filled_any_way_is_grammatical():
    """Each template with its slots filled at random (each on its own, as no story would):
    the checker reads every sentence it writes as grammatical, in as many sentences as the
    template writes."""
    grammar, rng = checker._grammar(), random.Random(0)
    templates = {t.text: t for group in grammar.index.values() for t in group}
    assert len(templates) > 250

    def fill(text):
        parts = stories._split(text)
        out = "".join(rng.choice(grammar.values[p]) if checker._is_slot(p) else p for p in parts)
        return fill(out) if stories._TOKEN.search(out) else out

    for text, template in templates.items():
        for _ in range(10):
            written = stories._finish(fill(text))
            sentences = read_story(written).sentences
            assert len(sentences) == template.n_sentences, written
            assert all(s.grammatical for s in sentences), written


def test_sentences_split_outside_quotes():
    text = 'Tom said, "Oh no! Where is it?" He looked. "Look!" said Ben, pointing.\nThe end.'
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        'Tom said, "Oh no! Where is it?"',
        "He looked.",
        '"Look!" said Ben, pointing.',
        "The end.",
    ]
    assert [s.paragraph for s in sentences] == [0, 0, 0, 1]
    assert all(text[s.start : s.start + len(s.text)] == s.text for s in sentences)


# ------------------------------------------------------------------ many stories, bad input


def test_check_stories_counts_per_kind(fresh):
    clean, cut = fresh[5], "\n".join(paragraphs(fresh[6])[:-1])
    report = check_stories([clean, cut, clean, clean])
    assert report["stories"] == 4
    assert report["problems"]["ending"] == 1 and sum(report["problems"].values()) == 1
    assert report["per_100_stories"]["ending"] == 25.0
    assert report["contradictions"] == 1 and report["contradictions_per_100_stories"] == 25.0
    assert report["stories_with_contradictions"] == 1
    assert set(report["problems"]) == set(KINDS) and set(CONTRADICTIONS) <= set(KINDS)
    assert grammatical_rate([clean, cut]) == 1.0


def test_an_empty_story_never_ends():
    reading = read_story("")
    assert reading.sentences == [] and not reading.ends
    assert [p.kind for p in reading.problems] == ["ending"]


@pytest.mark.parametrize("function", [read_story, check_story])
def test_text_must_be_a_str(function):
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        function(b"Once upon a time")


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        ("Once upon a time.", TypeError, "texts must be an iterable of str"),
        (3, TypeError, "texts must be an iterable of str"),
        (["The end.", None], TypeError, r"texts\[1\] must be a str"),
        ([], ValueError, "at least one story"),
    ],
)
def test_texts_must_be_stories(texts, error, message):
    for function in (check_stories, grammatical_rate):
        with pytest.raises(error, match=message):
            function(texts)


def test_templates_are_read_from_the_generator():
    """The checker reads every template of the generator's source, with its branch facts."""
    grammar = checker._grammar()
    templates = {t.text: t for group in grammar.index.values() for t in group}
    assert "<end_line>" in templates and templates["<end_line>"].ending_part == "line"
    looks = templates["{h_He} had <looks_child>."]
    assert dict(looks.facts)[("story", "children")] == {"yes"}
    inside = templates["inside it was warm and quiet, and they could see <sight>."]
    assert dict(inside.facts)[("place", "key")] == set(stories.INDOORS)
    assert dict(templates["^it {trouble}."].facts)[("plot", "name")] == {"animal"}
    assert re.search(r"\{\w+\}", " ".join(templates))  # slots kept as the generator wrote them
