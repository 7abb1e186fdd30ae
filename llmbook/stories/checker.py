"""Reads a generated story back into its parts and finds its contradictions (hand-written; chapter 10).

The generator (``generator.py``) writes every sentence from a *template*: literal text with
``<rule>`` slots (filled from ``GRAMMAR``) and ``{var}`` slots (filled from the story's state:
names, pronouns, the object, the place, the details of the plot). The checker runs it backwards.

Reading
-------
1. The text is cut into paragraphs (lines) and sentences. A sentence ends at ``.``, ``!`` or
   ``?`` (or at a closing quote right after one) when a space and then a capital letter or an
   opening quote follow, outside quotes.
2. The templates are read from the generator's own source (every string its story functions
   pass to ``say`` and ``say_some``, with the ``if`` branch each sits in), so that the checker
   cannot drift from the generator. Each is compiled into a regular expression: its literal
   text as the generator finishes it (a capital at the start and after ``^``, "a" before a
   vowel becomes "an"), each ``<rule>`` the alternation of its alternatives, each ``{var}``
   the alternation of every value the generator can give it, in a named group.
3. In each paragraph, a small dynamic program covers the most sentences it can with runs of
   consecutive sentences that one template matches exactly (a template may write up to three).
   A sentence is *grammatical* when it is covered.

``grammatical`` is exact: a run of sentences is grammatical if and only if it is a string that
one of the generator's templates writes for some value of each slot, every slot filled on its
own (so "Jelly asked Jelly to come" is grammatical: it has the form of a sentence the generator
writes; that one name fills two characters' slots is a contradiction, found next). Two limits:
a sentence counts only inside a whole template (the first sentence of a two-sentence template,
alone, is not grammatical), and a paragraph whose quotes do not pair up is cut into fewer
sentences (after an unpaired quote, the rest of the paragraph is one sentence).

Checking
--------
Every match says something about the story: its slot values ({H}=Lily, {h_his}=her,
{obj}=red ball, <spot>=under the slide) and the template itself (which plot it belongs to, and
the branch of the generator it sits in) become *facts*: (hero, name) is {Lily}, (hero,
pronoun) is {she}, (place, key) is {park}. A fact is the set of values it may still take;
each sentence, in reading order, narrows it. A *contradiction* is a sentence that would leave
a fact no value at all; it is reported (``Problem.fact`` names the fact), and the fact keeps its
earlier value, so every later sentence that contradicts it is reported too; counted
(``contradicted``, ``check_stories``), a fact contradicted in a story counts once. Where a run
of sentences matches several templates, the one with the fewest contradictions is taken. The kinds
(``KINDS``) are, by the fact that breaks: the characters' names (``name``: one name for two
characters; ``role``: a known character where the grammar only ever puts the other one;
``unannounced``: a name that no one introduced, or a character or the object that the opening
paragraph did not introduce), pronouns (``pronoun``), the characters' kinds, the grown-up and
the object (``changed``), the place (``place``) and the plot (``plot``: the plot or one of its
details changes). A story must also end (``ending``): its last paragraph is one of the
generator's four endings, the text is not cut off, and nothing follows an ending. Sentences
that no template writes are ``ungrammatical``.

Not checked: the order of the story's parts (opening, outing, plot, ending) beyond the ending;
that a template is used at most once; that an animal friend is of another kind than the hero;
anything inside an ungrammatical sentence. The generator never breaks any of these.
"""

from __future__ import annotations

import ast
import bisect
import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llmbook.stories import generator
from llmbook.stories.generator import (
    ANIMAL_NAMES,
    ANIMALS,
    BOY_NAMES,
    COLORS,
    GIRL_NAMES,
    GRAMMAR,
    GROWNUPS,
    INDOORS,
    MAKE_THINGS,
    MORALS,
    OBJ_ADJS,
    OBJECTS,
    PLACES,
    PLOTS,
    SKILLS,
)

__all__ = [
    "CONTRADICTIONS",
    "KINDS",
    "Character",
    "Problem",
    "Sentence",
    "StoryReading",
    "check_stories",
    "check_story",
    "contradicted",
    "grammatical_rate",
    "read_story",
    "split_sentences",
]

KINDS = {
    "name": 'one name used for two characters ("Jelly asked Jelly")',
    "pronoun": "a pronoun that does not match its character",
    "unannounced": "a character or the object that the opening paragraph did not introduce",
    "changed": "a character's kind, the grown-up or the object changes",
    "ending": "the story never ends: no ending, cut off, or it goes on after its ending",
    "role": "a character where the grammar only puts another one (the friend for the hero)",
    "place": "the place changes",
    "plot": "the plot, or one of its details, changes",
    "ungrammatical": "a sentence that no template of the grammar writes",
}
CONTRADICTIONS = ("name", "pronoun", "unannounced", "changed", "ending")
ENDINGS = {  # the generator's four endings (``_ending``): the kinds of the last paragraph's units
    ("moral",): "moral",
    ("evening", "line"): "evening",
    ("line",): "line",
    ("moral", "line"): "moral_line",
}

# --------------------------------------------------------------------------------------------
# What a reading returns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Character:
    """One character as the story presents it; None where the story does not say."""

    role: str  # "hero", "friend" or "grown-up"
    name: str | None  # "Lily"; for the grown-up, what the children call them: "Mom"
    kind: str | None  # "girl", "boy", an animal ("bunny"), or the grown-up's: "mom", "uncle"
    pronoun: str | None  # "he" or "she"


@dataclass(frozen=True)
class Sentence:
    index: int  # its place among the story's sentences
    paragraph: int
    start: int  # the offset of its first character in the text
    text: str
    template: str | None  # the generator's template that writes it (None: ungrammatical)

    @property
    def grammatical(self) -> bool:
        return self.template is not None


@dataclass(frozen=True)
class Problem:
    kind: str  # one of KINDS
    message: str
    sentence: int | None  # the index of the sentence (None: the story as a whole)
    offset: int  # where in the text: the offending word, or the sentence's start
    fact: str | None = None  # what it contradicts ("the hero's pronoun"); None: ungrammatical


@dataclass
class StoryReading:
    cast: list[Character]
    place: str | None  # "the park"
    objects: list[str]  # the object(s) the story names, in order: ["red ball"]
    plot: str | None  # one of the generator's PLOTS, None if the story does not settle it
    ending: str | None  # "moral", "evening", "line" or "moral_line"; None: it never ends
    sentences: list[Sentence]
    problems: list[Problem]

    @property
    def ends(self) -> bool:
        return self.ending is not None

    @property
    def ungrammatical(self) -> list[Sentence]:
        return [s for s in self.sentences if not s.grammatical]


# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------


# a space after . ! or ? (or after a closing quote right after one), before a capital or a quote
_BOUNDARY = re.compile(r'(?<=[.!?]) (?=[A-Z"])|(?<=[.!?]") (?=[A-Z"])')


def split_sentences(text: str) -> list[Sentence]:
    """The sentences of ``text``, paragraph by paragraph (blank lines are skipped). A sentence
    ends at a ``_BOUNDARY`` outside quotes (an even number of quotes before it in its line)."""
    sentences: list[Sentence] = []
    offset, paragraph = 0, 0
    for raw in text.split("\n"):
        line = raw.strip()
        if line:
            base, start = offset + raw.index(line), 0
            for boundary in _BOUNDARY.finditer(line):
                if line.count('"', 0, boundary.start()) % 2 == 0:
                    end = boundary.start()
                    sentences.append(
                        Sentence(len(sentences), paragraph, base + start, line[start:end], None)
                    )
                    start = end + 1
            sentences.append(Sentence(len(sentences), paragraph, base + start, line[start:], None))
            paragraph += 1
        offset += len(raw) + 1
    return sentences


# --------------------------------------------------------------------------------------------
# The grammar, read from the generator: templates, their branches, the values of every slot
# --------------------------------------------------------------------------------------------

_SOURCE = Path(generator.__file__)
_SECTIONS = {"_opening": "opening", "_outing": "outing", "_ending": "ending"} | {
    function.__name__: plot for plot, function in PLOTS.items()
}
_MAKE_COLUMNS = ("thing", "problem", "second", "where")  # as _plot_make unpacks MAKE_THINGS
_SKILL_COLUMNS = ("skill", "fail", "where")  # as _plot_skill unpacks SKILLS
_PLACE_RULES = {"spot": 2, "activity": 3, "sight": 4}  # the <rules> each place narrows


def _source_functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(_SOURCE.read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _detail_tables(functions) -> list[tuple[str, tuple[str, ...], list[tuple]]]:
    """Each plot's details as tables ``(plot, columns, rows)``: the literal tuples a plot
    function draws into the story's state (``thing, truth = s.choose((...))``), then the
    module's MAKE_THINGS and SKILLS."""
    tables = []
    for name, plot in _SECTIONS.items():
        if plot in ("opening", "outing", "ending"):
            continue
        nodes = list(ast.walk(functions[name]))
        stored = {  # the keys the function writes into s.ctx
            n.slice.value
            for n in nodes
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store)
        }
        for node in nodes:
            if not (isinstance(node, ast.Assign) and _is_call(node.value, "choose")):
                continue
            try:
                rows = ast.literal_eval(node.value.args[0])
            except ValueError:
                continue  # drawn from a table of the module (MAKE_THINGS, SKILLS)
            target = node.targets[0]
            targets = target.elts if isinstance(target, ast.Tuple) else [target]
            columns = tuple(t.id if isinstance(t, ast.Name) else t.slice.value for t in targets)
            if set(columns) <= stored:  # a detail of the story, not a branch to take
                rows = [row if isinstance(row, tuple) else (row,) for row in rows]
                tables.append((plot, columns, rows))
    tables.append(("make", _MAKE_COLUMNS, list(MAKE_THINGS)))
    tables.append(("skill", _SKILL_COLUMNS, list(SKILLS)))
    return tables


def _is_call(node, *methods: str) -> bool:
    """Is ``node`` a call of a method named one of ``methods`` (``s.choose(...)``)?"""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in methods
    )


def _branch_facts(test: ast.expr) -> tuple[dict, dict]:
    """The facts that hold in the two branches of one of the generator's ``if`` tests."""
    source = ast.unparse(test)
    if source == "s.ctx['hero_is_child']":
        return {("story", "children"): {"yes"}}, {("story", "children"): {"no"}}
    if source == "s.ctx['place_key'] in INDOORS":
        return {("place", "key"): set(INDOORS)}, {("place", "key"): set(PLACES) - set(INDOORS)}
    if source == "where == 'home'":  # _plot_make: a thing made at home
        home = {row for row in MAKE_THINGS if row[3] == "home"}
        return {("details", "make/thing"): home}, {
            ("details", "make/thing"): set(MAKE_THINGS) - home
        }
    return {}, {}  # a branch the checker does not need to tell apart


def _strings(node, facts: dict, names: dict) -> list[tuple[str, dict]]:
    """The strings an expression of the generator's source can be, each with its facts."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node.value, facts)]
    if isinstance(node, ast.Tuple):
        return [s for element in node.elts for s in _strings(element, facts, names)]
    if isinstance(node, ast.Starred):
        return _strings(node.value, facts, names)
    if isinstance(node, ast.Name):
        return [(text, facts | more) for text, more in names.get(node.id, [])]
    if isinstance(node, ast.IfExp):
        yes, no = _branch_facts(node.test)
        return _strings(node.body, facts | yes, names) + _strings(node.orelse, facts | no, names)
    if isinstance(node, ast.JoinedStr):  # f"{{h_He}} had {looks}." with looks a local name
        values = [v.value if isinstance(v, ast.FormattedValue) else v for v in node.values]
        pieces = [_strings(value, {}, names) for value in values]
        return [
            ("".join(text for text, _ in combo), facts | _merged_facts(more for _, more in combo))
            for combo in itertools.product(*pieces)
        ]
    return []


def _merged_facts(many) -> dict:
    """One dict of facts from several (none of the generator's f-strings sets one fact twice)."""
    merged: dict = {}
    for facts in many:
        merged.update(facts)
    return merged


def _walk(body, facts, names, found) -> None:
    """Collect ``(template, facts)`` from the ``say`` / ``say_some`` calls of a function body."""
    for node in body:
        if isinstance(node, ast.If):
            yes, no = _branch_facts(node.test)
            _walk(node.body, facts | yes, names, found)
            _walk(node.orelse, facts | no, names, found)
        elif isinstance(node, ast.For):
            _walk(node.body, facts, names, found)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            strings = _strings(node.value, facts, {})
            names.setdefault(node.targets[0].id, []).extend(strings)
        elif isinstance(node, ast.Expr) and _is_call(node.value, "say", "say_some"):
            call = node.value  # s.say(*templates) or s.say_some(k, *templates)
            arguments = call.args[1:] if call.func.attr == "say_some" else call.args
            templates = [s for a in arguments for s in _strings(a, facts, names)]
            if not templates:
                raise ValueError(f"generator.py line {node.lineno}: cannot read its templates")
            found.extend(templates)


def _read_templates(functions) -> dict[str, tuple[frozenset, dict]]:
    """Every template: the sections it is written in and the facts that hold wherever it is.
    A template written in several places keeps a fact only where all of them give it."""
    seen: dict[str, list[tuple[str, dict]]] = {}
    for name, section in _SECTIONS.items():
        found: list[tuple[str, dict]] = []
        _walk(functions[name].body, {}, {}, found)
        for template, facts in found:
            seen.setdefault(template, []).append((section, facts))
    templates = {}
    for template, places in seen.items():
        common = set.intersection(*(set(facts) for _, facts in places))
        facts = {key: set().union(*(f[key] for _, f in places)) for key in common}
        templates[template] = (frozenset(section for section, _ in places), facts)
    return templates


def _slot_values(tables) -> dict[str, list[str]]:
    """Every value each slot can take, keyed by the slot as templates write it."""
    pronouns = {"he": ("he", "she"), "He": ("He", "She"), "him": ("him", "her")}
    pronouns |= {"his": ("his", "her"), "His": ("His", "Her")}
    values = {
        f"<{rule}>": [a[1] if isinstance(a, tuple) else a for a in alts]
        for rule, alts in GRAMMAR.items()
    }
    for rule, index in _PLACE_RULES.items():
        values[f"<{rule}>"] = [item for place in PLACES.values() for item in place[index]]
    for role in "hfg":
        for form, forms in pronouns.items():
            values[f"{{{role}_{form}}}"] = list(forms)
    values["{H}"] = values["{F}"] = list(GIRL_NAMES + BOY_NAMES + ANIMAL_NAMES)
    values["{h_kind}"] = values["{f_kind}"] = ["girl", "boy", *ANIMALS]
    values["{G}"] = [call for _, call, _ in GROWNUPS]
    values["{g_noun}"] = [noun for noun, _, _ in GROWNUPS]
    values["{obj}"] = [f"{a} {noun}" for a in COLORS + OBJ_ADJS for noun in OBJECTS]
    values["{obj_noun}"] = list(OBJECTS)
    values["{place}"] = [place[0] for place in PLACES.values()]
    values["{place_noun}"] = [place[0].removeprefix("the ") for place in PLACES.values()]
    values["{moral}"] = [moral for morals in MORALS.values() for moral in morals]
    for _, columns, rows in tables:
        for i, column in enumerate(columns):
            if column != "where":  # where the detail can happen: no template writes it
                values.setdefault(f"{{{column}}}", []).extend(row[i] for row in rows)
    return {slot: list(dict.fromkeys(alts)) for slot, alts in values.items()}


# --------------------------------------------------------------------------------------------
# Templates as regular expressions
# --------------------------------------------------------------------------------------------

_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")  # the generator's "a" -> "an" (generator._finish)
_A_AT_END = re.compile(r"(^|[^A-Za-z])([Aa]) $")
_WORD = re.compile(r"[A-Za-z]+")


def _is_slot(part: str) -> bool:
    return (part[0], part[-1]) in (("<", ">"), ("{", "}"))


def _captured(slot: str) -> bool:
    """Slots whose values the checker reads back: every {var}, and the places' <rules>."""
    return slot[0] == "{" or slot[1:-1] in _PLACE_RULES


def _finish_literal(text: str, capital: bool) -> tuple[str, bool]:
    """A template's literal text as the generator finishes it: a capital letter after ``^``
    (and at the start: ``capital``), "a" -> "an" before a vowel. Returns the text and whether
    a capital is still owed to the next letter."""
    out = []
    for ch in text:
        if ch == "^":
            capital = True
        elif capital and ch.isalpha():
            out.append(ch.upper())
            capital = False
        else:
            out.append(ch)
    return _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), "".join(out)), capital


class _Compiler:
    """Turns one template into a regular expression; ``slots`` names each capture group's slot."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values
        self.slots: dict[str, str] = {}

    def pattern(self, template: str, capital: bool = True) -> str:
        parts = generator._split(template)
        out = []
        for i, part in enumerate(parts):
            if _is_slot(part):
                body = "|".join(self.pattern(value, capital) for value in self.values[part])
                if _captured(part):
                    group = f"g{len(self.slots)}"
                    self.slots[group] = part[1:-1]
                    out.append(f"(?P<{group}>{body})")
                else:
                    out.append(f"(?:{body})")
                capital = False
                continue
            text, capital = _finish_literal(part, capital)
            article = _A_AT_END.search(text)
            if article and i + 1 < len(parts):  # "a <slot>": "an" if the slot starts with a vowel
                if i > 0 and not article.group(1):
                    raise ValueError(f"cannot tell the article of {template!r}")
                a = article.group(2)
                out.append(re.escape(text[: article.start(2)]))
                out.append(f"(?:{a} (?![aeiou])|{a}n (?=[aeiou]))")
            else:
                out.append(re.escape(text))
        return "".join(out)


def _first_words(template: str, values: dict[str, list[str]]) -> set[str]:
    """The words a sentence written from ``template`` can begin with (capitalised)."""
    parts = generator._split(template)
    for i, part in enumerate(parts):
        head = "".join(parts[:i])
        if _is_slot(part):
            rest = "".join(parts[i + 1 :])
            return set().union(
                *(_first_words(head + value + rest, values) for value in values[part])
            )
        word = _WORD.search(head + part)
        if word and word.end() < len(head + part):  # a whole word
            return {word.group()[0].upper() + word.group()[1:]}
    word = _WORD.search("".join(parts))
    return {word.group()[0].upper() + word.group()[1:]} if word else {""}


def _expansions(template: str, values: dict[str, list[str]]) -> list[str]:
    """Every string a (small) template can be, its slots filled every way."""
    parts = generator._split(template)
    choices = [values[p] if _is_slot(p) else [p] for p in parts]
    out = []
    for combo in itertools.product(*choices):
        text = "".join(combo)
        out.extend(_expansions(text, values) if generator._TOKEN.search(text) else [text])
    return out


@dataclass(frozen=True)
class _Template:
    text: str
    sections: frozenset  # "opening", "outing", a plot's name, "ending"
    facts: tuple  # ((key, frozenset of values), ...): what the template itself says
    regex: re.Pattern
    slots: dict  # capture group -> slot name
    n_sentences: int

    @property
    def ending_part(self) -> str | None:
        """Which part of an ending the template writes ("moral", "evening", "line"), if any."""
        if "ending" not in self.sections:
            return None
        return (
            "moral" if "{moral}" in self.text else "evening" if "<evening>" in self.text else "line"
        )


class _Grammar:
    """The generator's templates, compiled, filed by (number of sentences, first word)."""

    def __init__(self) -> None:
        functions = _source_functions()
        self.tables = _detail_tables(functions)
        self.values = _slot_values(self.tables)
        outdoor = ast.literal_eval(
            next(
                node.value
                for node in ast.walk(functions["generate_story"])
                if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "outdoor_only"
            )
        )
        self.index: dict[tuple[int, str], list[_Template]] = {}
        for text, (sections, facts) in _read_templates(functions).items():
            facts = dict(facts)
            plots = sections & set(PLOTS)
            if plots == sections:  # written only in plots: the story has one of them
                facts[("plot", "name")] = set(plots)
                if plots <= set(outdoor):  # plots that never happen indoors
                    facts[("place", "key")] = set(PLACES) - set(INDOORS)
            compiler = _Compiler(self.values)
            regex = re.compile(compiler.pattern(text))
            example = generator._finish(_expansions_first(text, self.values))
            template = _Template(
                text,
                sections,
                tuple((key, frozenset(v)) for key, v in facts.items()),
                regex,
                compiler.slots,
                len(split_sentences(example)),
            )
            for word in _first_words(text, self.values):
                self.index.setdefault((template.n_sentences, word), []).append(template)
        self.longest = max(size for size, _ in self.index)  # the most sentences in a template
        self.canonical = self._canonical_values()
        self.details = self._detail_facts()

    def _canonical_values(self) -> dict[str, dict[str, str]]:
        """For each captured slot: the text a value can appear as -> the value."""
        canonical: dict[str, dict[str, str]] = {}
        for slot, alternatives in self.values.items():
            if not _captured(slot):
                continue
            table = canonical.setdefault(slot[1:-1], {})
            for value in alternatives:
                for text in _expansions(value, self.values):
                    text = _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), text)
                    table[text] = table[text[0].upper() + text[1:]] = value
        return canonical

    def _detail_facts(self) -> dict[tuple[str, str], list]:
        """(slot, value) -> the facts a detail of a plot gives: the plot, its row, its places."""
        details: dict[tuple[str, str], list] = {}
        for plot, columns, rows in self.tables:
            for i, column in enumerate(columns):
                if column == "where":
                    continue
                for value in {row[i] for row in rows}:
                    having = {row for row in rows if row[i] == value}
                    facts = [
                        (("plot", "name"), {plot}),
                        (("details", f"{plot}/{columns[0]}"), having),
                    ]
                    if "where" in columns:
                        where = columns.index("where")
                        places = set().union(*(_row_places(row[where]) for row in having))
                        facts.append((("place", "key"), places))
                    if (column, value) in details:
                        raise ValueError(f"{column} {value!r} is a detail of two plots")
                    details[(column, value)] = facts
        return details

    def matches(self, text: str, n_sentences: int) -> list[tuple[_Template, re.Match]]:
        """The templates that write exactly ``text`` (``n_sentences`` sentences)."""
        word = _WORD.search(text)
        candidates = self.index.get((n_sentences, word.group() if word else ""), [])
        return [(t, m) for t in candidates if (m := t.regex.fullmatch(text))]


def _row_places(where: str) -> set[str]:
    """The places a detail allows: "home" or "" -> anywhere, else the place keys among the
    words of ``where``, tested as the generator tests them (``key in where.split(" ")``, so
    a key of two words, "snowy hill", is never among them)."""
    if where in ("home", ""):
        return set(PLACES)
    return {key for key in PLACES if key in where.split(" ")}


def _expansions_first(template: str, values: dict[str, list[str]]) -> str:
    """The template with every slot filled by its first value: one sentence it writes."""
    parts = generator._split(template)
    text = "".join(values[p][0] if _is_slot(p) else p for p in parts)
    return _expansions_first(text, values) if generator._TOKEN.search(text) else text


@functools.cache
def _grammar() -> _Grammar:
    return _Grammar()


# --------------------------------------------------------------------------------------------
# Facts: what a slot's value says about the story
# --------------------------------------------------------------------------------------------

_ROLES = {"H": "hero", "F": "friend", "h": "hero", "f": "friend", "g": "grown-up"}
_SEX = {"he": "he", "him": "he", "his": "he", "she": "she", "her": "she"}
_GROWNUP = {noun: (call, he) for noun, call, he in GROWNUPS} | {
    call: (noun, he) for noun, call, he in GROWNUPS
}
_PLACE_OF = {place[0]: key for key, place in PLACES.items()} | {
    place[0].removeprefix("the "): key for key, place in PLACES.items()
}
_PLACE_OF_ITEM = {
    (rule, item): key
    for key, place in PLACES.items()
    for rule, i in _PLACE_RULES.items()
    for item in place[i]
}
_MORAL_OF = {moral: plot for plot, morals in MORALS.items() for moral in morals}


def _kind_facts(role: str, kind: str) -> list:
    """What a character's kind says: "girl", "boy", an animal, or "" (an animal, which one
    the name does not say)."""
    if kind in ("girl", "boy"):
        sex = "she" if kind == "girl" else "he"
        return [
            ((role, "kind"), {kind}),
            ((role, "pronoun"), {sex}),
            (("story", "children"), {"yes"}),
        ]
    return [
        ((role, "kind"), set(ANIMALS) if kind == "" else {kind}),
        (("story", "children"), {"no"}),
    ]


def _facts(slot: str, value: str) -> list[tuple[tuple[str, str], set]]:
    """The facts one slot's value gives: ``[((subject, attribute), allowed values), ...]``."""
    if slot in ("H", "F"):
        role = _ROLES[slot]
        kind = "girl" if value in GIRL_NAMES else "boy" if value in BOY_NAMES else ""
        return [((role, "name"), {value}), *_kind_facts(role, kind)]
    if slot in ("h_kind", "f_kind"):
        return _kind_facts(_ROLES[slot[0]], value)
    if slot[1:2] == "_" and slot[2:].lower() in _SEX:  # h_he, f_His, g_him, ...
        return [((_ROLES[slot[0]], "pronoun"), {_SEX[value.lower()]})]
    if slot in ("G", "g_noun"):
        noun = value if slot == "g_noun" else _GROWNUP[value][0]
        return [(("grown-up", "kind"), {noun}), (("grown-up", "pronoun"), {_GROWNUP[noun][1]})]
    if slot == "obj":
        return [(("object", "name"), {value}), (("object", "noun"), {value.split(" ", 1)[1]})]
    if slot == "obj_noun":
        return [(("object", "noun"), {value})]
    if slot in ("place", "place_noun"):
        return [(("place", "key"), {_PLACE_OF[value]})]
    if slot in _PLACE_RULES:
        return [(("place", "key"), {_PLACE_OF_ITEM[(slot, value)]})]
    if slot == "moral":
        return [(("plot", "name"), {_MORAL_OF[value]})]
    return _grammar().details[(slot, value)]


# --------------------------------------------------------------------------------------------
# Reading a story: what the facts are, and which sentences contradict them
# --------------------------------------------------------------------------------------------

_ANNOUNCED = {
    ("hero", "name"): "the hero",
    ("friend", "name"): "the friend",
    ("object", "noun"): "the object",
}
_OTHER = {"hero": "friend", "friend": "hero"}


def _kind_of_conflict(key: tuple[str, str]) -> str:
    """The kind of a contradiction of a fact other than a hero's or friend's name."""
    if key[1] == "pronoun":
        return "pronoun"
    return {"place": "place", "plot": "plot", "details": "plot"}.get(key[0], "changed")


_FACT_NAMES = {
    "object": "the object",
    "place": "the place",
    "plot": "the plot",
    "story": "children or animals",
}


def _fact_name(key: tuple[str, str]) -> str:
    """The fact a contradiction is about, in words (the object's name and noun are one fact)."""
    if key[0] in _FACT_NAMES:
        return _FACT_NAMES[key[0]]
    if key[0] == "details":
        plot, column = key[1].split("/")
        return f"the {plot} plot's {column}"
    return f"the {key[0]}'s {key[1]}"


def _show(key: tuple[str, str], values) -> str:
    """A fact's values in words."""
    if key[0] == "details":  # a row of a plot's table, by its first column, slots as "..."
        values = {re.sub(r"\{\w+\}", "...", row[0]) for row in values}
    elif key == ("place", "key"):
        values = {PLACES[k][0] for k in values}
    elif key == ("story", "children"):
        values = {"children" if v == "yes" else "animals" for v in values}
    elif key[1] == "kind" and set(values) == set(ANIMALS):
        return "an animal"
    return " or ".join(sorted(values))


class _Story:
    """The facts read so far: key -> (allowed values, the sentence that first set it)."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str], tuple[frozenset, int]] = {}
        self.mentions: list[tuple[str, str]] = []  # ("obj" or "obj_noun", value), in order

    def copy(self) -> _Story:
        other = _Story()
        other.facts, other.mentions = dict(self.facts), list(self.mentions)
        return other

    def name_of(self, role: str) -> str | None:
        values = self.facts.get((role, "name"), (frozenset(),))[0]
        return next(iter(values)) if len(values) == 1 else None

    def read(
        self, template: _Template, match: re.Match, sentences: list[Sentence]
    ) -> list[Problem]:
        """Add one unit's facts: the template's own, then the names in its slots, then every
        other slot value's, in text order. Return the contradictions. A slot value reports at
        most one, its first fact that contradicts the story; and where a name slot holds
        someone else, that role's other slots in the unit (its pronouns) are that someone's:
        they are not read."""
        first = sentences[0]
        starts = [s.start - first.start for s in sentences]
        # (order: template -1, names 0, others 1; offset in the unit; the text; its facts)
        statements = [(-1, 0, None, [fact]) for fact in template.facts]
        names_here: dict[str, set] = {}  # role -> the names its slots hold in this unit
        for group, slot in template.slots.items():
            at = match.start(group)
            if at < 0:
                continue  # the group's alternative was not taken
            surface = match.group(group)
            value = _grammar().canonical[slot][surface]
            if slot in ("H", "F"):
                names_here.setdefault(_ROLES[slot], set()).add(value)
            if slot in ("obj", "obj_noun"):
                self.mentions.append((slot, value))
            statements.append((slot not in ("H", "F"), at, surface, _facts(slot, value)))
        problems, reported, someone_else = [], set(), set()
        for _, at, surface, facts in sorted(statements, key=lambda s: s[:2]):
            if facts[0][0][0] in someone_else:
                continue
            where = first.index + bisect.bisect_right(starts, at) - 1
            for key, values in facts:
                found = self.narrow(
                    key, frozenset(values), surface, where, names_here, first.paragraph
                )
                if found:
                    if key[1] == "name" and key[0] in _OTHER:
                        someone_else.add(key[0])
                    if (found[0], _fact_name(key)) not in reported:  # once per unit
                        reported.add((found[0], _fact_name(key)))
                        problems.append(Problem(*found, where, first.start + at, _fact_name(key)))
                    break
        return problems

    def narrow(self, key, values, surface, where, names_here, paragraph):
        """Narrow one fact; return ``(kind, message)`` if that contradicts the story."""
        if key not in self.facts:
            other = _OTHER.get(key[0]) if key[1] == "name" else None
            if other and values == {self.name_of(other)}:  # not a name for this role
                return "name", f"{surface} names both the {key[0]} and the {other}"
            self.facts[key] = (values, where)
            if key in _ANNOUNCED and paragraph > 0:
                late = f"first appears in paragraph {paragraph + 1}, not in the opening"
                return "unannounced", f"{_ANNOUNCED[key]} ({surface}) {late}"
            return None
        old, since = self.facts[key]
        if old & values:
            self.facts[key] = (old & values, since)
            return None
        if key[0] in _OTHER and key[1] == "name":
            return self._name_problem(key[0], surface, names_here, since)
        if key[1] == "pronoun":
            who = " ".join(filter(None, ["the", key[0], self.name_of(key[0])]))
            return (
                "pronoun",
                f"{surface!r} for {who}, who is {_show(key, old)!r} since sentence {since}",
            )
        now, before = _show(key, values), _show(key, old)
        message = f"{_fact_name(key)}: {now} here, but {before} since sentence {since}"
        return _kind_of_conflict(key), message

    def _name_problem(self, role, name, names_here, since):
        """A hero's or friend's slot holds another name: the other's (in this unit too: one
        name for two; else a role swap), or a stranger's."""
        other, known = _OTHER[role], self.name_of(role)
        if name == self.name_of(other):
            if name in names_here.get(other, ()):
                return "name", f"{name} names both the {role} and the {other} here"
            return "role", f"{name} (the {other}) stands where the grammar has the {role}, {known}"
        introduced = f"the {role} is {known}, since sentence {since}"
        return "unannounced", f"{name} appears, but no one introduced {name} ({introduced})"

    def cast(self) -> list[Character]:
        cast = []
        for role in ("hero", "friend", "grown-up"):
            if not any(key[0] == role for key in self.facts):
                continue
            single = {
                attribute: next(iter(values)) if len(values) == 1 else None
                for (subject, attribute), (values, _) in self.facts.items()
                if subject == role
            }
            name, kind = single.get("name"), single.get("kind")
            if role == "grown-up" and kind:
                name = _GROWNUP[kind][0]
            cast.append(Character(role, name, kind, single.get("pronoun")))
        return cast

    def single(self, key) -> str | None:
        values = self.facts.get(key, (frozenset(),))[0]
        return next(iter(values)) if len(values) == 1 else None

    def objects(self) -> list[str]:
        named = [value for slot, value in self.mentions if slot == "obj"]
        nouns = {name.split(" ", 1)[1] for name in named}
        bare = [value for slot, value in self.mentions if slot == "obj_noun" and value not in nouns]
        return list(dict.fromkeys(named + bare))


def _units(sentences: list[Sentence]) -> list[tuple[int, int, list]]:
    """Cover one paragraph's sentences with template matches, as many sentences as possible
    (then as few units as possible). Returns ``(first, end, matches)`` for each covered run."""
    grammar, n = _grammar(), len(sentences)
    best = [(0, 0)] * (n + 1)  # (sentences covered, -units) of the first i sentences
    step: list = [None] * (n + 1)
    for end in range(1, n + 1):
        best[end], step[end] = best[end - 1], (end - 1, [])
        for size in range(1, min(grammar.longest, end) + 1):
            start = end - size
            score = (best[start][0] + size, best[start][1] - 1)
            if score > best[end]:
                found = grammar.matches(" ".join(s.text for s in sentences[start:end]), size)
                if found:
                    best[end], step[end] = score, (start, found)
    units, end = [], n
    while end > 0:
        start, found = step[end]
        if found:
            units.append((start, end, found))
        end = start
    return units[::-1]


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")


def read_story(text: str) -> StoryReading:
    """Read ``text`` (one story, paragraphs separated by newlines) back into its parts."""
    _check_text(text)
    sentences = split_sentences(text)
    story, problems = _Story(), []
    units: dict[int, tuple[int, _Template]] = {}  # sentence -> (its unit's first, template)
    for paragraph in sorted({s.paragraph for s in sentences}):
        mine = [s for s in sentences if s.paragraph == paragraph]
        for first, end, found in _units(mine):
            unit = mine[first:end]
            story, template, found_problems = _best_reading(story, found, unit)
            problems.extend(found_problems)
            for s in unit:
                units[s.index] = (unit[0].index, template)
    sentences = [
        Sentence(s.index, s.paragraph, s.start, s.text, units[s.index][1].text)
        if s.index in units
        else s
        for s in sentences
    ]
    for s in sentences:
        if not s.grammatical:
            message = f"no template writes {_clip(s.text)!r}"
            problems.append(Problem("ungrammatical", message, s.index, s.start))
    ending, ending_problems = _read_ending(sentences, units)
    problems.extend(ending_problems)
    problems.sort(key=lambda p: (p.offset, p.kind))
    place = story.single(("place", "key"))
    return StoryReading(
        cast=story.cast(),
        place=PLACES[place][0] if place else None,
        objects=story.objects(),
        plot=story.single(("plot", "name")),
        ending=ending,
        sentences=sentences,
        problems=problems,
    )


def _best_reading(story: _Story, found, unit: list[Sentence]):
    """Of the templates that write ``unit``, the reading with the fewest contradictions:
    returns the story with the unit's facts added, the template, and its problems."""
    best = None
    for template, match in found:
        trial = story.copy()
        problems = trial.read(template, match, unit)
        if best is None or len(problems) < len(best[2]):
            best = (trial, template, problems)
    return best


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_ending(sentences, units) -> tuple[str | None, list[Problem]]:
    """Which of the generator's endings the last paragraph is (None: none), and the problems."""
    if not sentences:
        return None, [Problem("ending", "the story is empty", None, 0, "the ending")]
    last = sentences[-1]
    if not re.search(r'[.!?]"?$', last.text):
        end = last.start + len(last.text)
        message = f"the story is cut off: {_clip(last.text)!r}"
        return None, [Problem("ending", message, last.index, end, "the ending")]
    problems = []
    for s in sentences:
        if s.paragraph < last.paragraph and s.index in units and units[s.index][1].ending_part:
            message = f"the story ends in paragraph {s.paragraph + 1}, then goes on"
            problems.append(Problem("ending", message, s.index, s.start, "the ending"))
            break
    closing = [s for s in sentences if s.paragraph == last.paragraph]
    parts = {}  # unit (its first sentence) -> the part of an ending it writes (None: not one)
    for s in closing:
        unit, template = units.get(s.index, (None, None))
        parts[unit] = template.ending_part if template else None
    ending = None if None in parts.values() else ENDINGS.get(tuple(parts.values()))
    if ending is None:
        message = "the last paragraph is not one of the generator's endings"
        problems.append(Problem("ending", message, last.index, closing[0].start, "the ending"))
    return ending, problems


def check_story(text: str) -> list[Problem]:
    """The contradictions and ungrammatical sentences of one story (``[]``: none)."""
    return read_story(text).problems


# --------------------------------------------------------------------------------------------
# Many stories
# --------------------------------------------------------------------------------------------


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        raise TypeError(
            f"texts must be an iterable of str (one per story), got {type(texts).__name__}"
        )
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
    if not texts:
        raise ValueError("texts must hold at least one story")
    return texts


def contradicted(problems: list[Problem]) -> Counter:
    """Per kind, how many facts one story contradicts: a fact counts once however many
    sentences contradict it (a place left for good is one change); each ungrammatical sentence
    counts once."""
    facts = {(p.kind, p.fact) for p in problems if p.fact is not None}
    return Counter(kind for kind, _ in facts) + Counter(p.kind for p in problems if p.fact is None)


def check_stories(texts: Iterable[str]) -> dict:
    """Read every story; return counts (JSON-ready): the stories, their sentences and how many
    are grammatical, and per kind of problem the facts contradicted (``contradicted``: each
    once per story), in all and per 100 stories; ``contradictions`` sums the CONTRADICTIONS."""
    texts = _check_texts(texts)
    counts, sentences, grammatical, with_contradictions = Counter(), 0, 0, 0
    for text in texts:
        reading = read_story(text)
        sentences += len(reading.sentences)
        grammatical += sum(s.grammatical for s in reading.sentences)
        found = contradicted(reading.problems)
        counts.update(found)
        with_contradictions += any(found[k] for k in CONTRADICTIONS)
    n = len(texts)
    contradictions = sum(counts[k] for k in CONTRADICTIONS)
    return {
        "stories": n,
        "sentences": sentences,
        "grammatical_sentences": grammatical,
        "grammatical_rate": grammatical / sentences if sentences else 0.0,
        "problems": {kind: counts[kind] for kind in KINDS},
        "per_100_stories": {kind: 100 * counts[kind] / n for kind in KINDS},
        "contradictions": contradictions,
        "contradictions_per_100_stories": 100 * contradictions / n,
        "stories_with_contradictions": with_contradictions,
    }


def grammatical_rate(texts: Iterable[str]) -> float:
    """The share of the stories' sentences that a template of the grammar writes exactly."""
    return check_stories(texts)["grammatical_rate"]
