"""The generator of the book's own corpus, short children's stories (hand-written; chapter 02).

No chapter exports it; chapter 02 loads the result with ``llmbook.data.load_corpus("stories")``
and shows its statistics, and chapter 08 compares its losses with the corpus' entropy.

How a story is made
-------------------
A story is a plot (lost toy, stuck kite, broken toy, sad friend, a fear, sharing, an animal in
trouble, making something, learning a skill, getting lost) told in three or four paragraphs:
an opening that introduces a hero, a friend and a place, the problem, what the characters try
and how it ends, and a closing line. Every sentence comes from a small probabilistic grammar:
templates hold ``<rule>`` slots, expanded recursively from the weighted alternatives in
``GRAMMAR`` (a context-free grammar whose rules can be narrowed by the story, e.g. ``<spot>``
lists what exists at the story's place), and ``{var}`` slots filled from the story's state
(names, pronouns, the object). The lexicon (names, animals, places, objects, feelings, dialogue
lines) is written by hand in this file.

Randomness and its log-probability
----------------------------------
All randomness flows through one ``random.Random(seed)`` and one primitive, ``_Story.choose``,
which draws an index with integer weights using only ``Random.random()`` (whose sequence for an
integer seed is the same on every platform and Python version). Each draw adds
``log(weight / total)`` to the story's log-probability, so ``generate_story`` returns the text
and the exact log-probability of the *derivation* (the sequence of choices) that wrote it.

The text's own probability is the sum over every derivation that yields the same text, so
``log p(text) >= log p(derivation)``. The grammar is written to keep derivations unique (the
alternatives of a choice are distinct strings, and story state such as names and objects is
announced in the text before it is reused), but we do not prove that no two choice sequences
can ever meet on the same text. Therefore the corpus' ``nats_per_char`` (total ``-log p`` of the
derivations divided by characters) is, strictly, an *upper bound* on the entropy rate of the
text; for this grammar we expect it to be tight. A language model trained on the corpus cannot,
on average, go below the true entropy; comparing its loss with this figure (converted to nats per
token) tells how much of the learnable structure it has found.

The corpus file
---------------
``write_corpus()`` (run by ``tools/make_stories.py``) writes ``llmbook/stories/stories.txt.gz``
with gzip ``mtime=0`` and a fixed compression level, so the bytes are the same on every machine
that uses the standard zlib; ``stories.json`` beside it records the seed, the sizes and the total
log-probability. Documents are separated the way the TinyStories files separate theirs: each
story is followed by a line holding only ``<|endoftext|>`` (``SEPARATOR``), which GPT-2's
tokenizer maps to the single id 50256.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import io
import itertools
import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path

SEPARATOR = "<|endoftext|>"
DEFAULT_SEED = 2024
DEFAULT_MIN_CHARS = 1_100_000
CORPUS_DIR = Path(__file__).resolve().parent  # the files lie beside this module
CORPUS_FILE = CORPUS_DIR / "stories.txt.gz"
META_FILE = CORPUS_DIR / "stories.json"

# fmt: off
# --------------------------------------------------------------------------------------------
# Lexicon: characters
# --------------------------------------------------------------------------------------------

GIRL_NAMES = (
    "Lily", "Mia", "Emma", "Zoe", "Anna", "Lucy", "Sara", "Ella", "Ruby", "Rosa", "Nora", "Maya",
    "Amy", "Grace", "Hannah", "Ivy", "Jade", "Kate", "Lena", "Molly", "Nina", "Olive", "Poppy",
    "Sophie", "Tara", "Vera", "Wendy", "Yara", "Chloe", "Fiona", "Hazel", "Iris", "June", "Lola",
    "Mabel", "Nell", "Pearl", "Sadie", "Tess", "Bella", "Clara", "Dora", "Eva", "Freya", "Gemma",
    "Holly", "Amara", "Priya", "Mei", "Aisha", "Sofia", "Leila", "Noor", "Kiko", "Elsa", "Greta",
)
BOY_NAMES = (
    "Tom", "Ben", "Max", "Sam", "Leo", "Jack", "Finn", "Noah", "Owen", "Jake", "Luke", "Adam",
    "Eli", "Hugo", "Ivan", "Joe", "Kai", "Liam", "Milo", "Ned", "Oscar", "Pete", "Ray", "Theo",
    "Toby", "Will", "Zack", "Arlo", "Bruno", "Carl", "Dan", "Ezra", "Felix", "Gus", "Henry", "Ian",
    "Jonah", "Kofi", "Louis", "Marco", "Nico", "Omar", "Paul", "Raj", "Sid", "Tim", "Yusuf", "Wes",
    "Ravi", "Kenji", "Diego", "Ali", "Hiro", "Mateo",
)
ANIMAL_NAMES = (
    "Pip", "Bubbles", "Fluffy", "Nutmeg", "Pebble", "Biscuit", "Coco", "Dot", "Ginger", "Honey",
    "Jelly", "Maple", "Muffin", "Patch", "Pickles", "Puddle", "Rusty", "Sunny", "Tiny", "Whiskers",
    "Ziggy", "Button", "Clover", "Sprout", "Bramble", "Acorn", "Snowy", "Socks", "Toffee", "Bean",
)
ANIMALS = (
    "bunny", "fox", "bear", "mouse", "squirrel", "duck", "frog", "kitten", "puppy", "owl", "turtle",
    "hedgehog", "lamb", "pig", "goat", "deer", "bird", "pony", "otter", "raccoon", "badger",
    "chick", "beaver", "panda",
)
CHILD_KINDS = {"girl": ("girl",), "boy": ("boy",)}
GROWNUPS = (
    ("mom", "Mom", "she"), ("dad", "Dad", "he"), ("grandma", "Grandma", "she"),
    ("grandpa", "Grandpa", "he"), ("aunt", "Auntie", "she"), ("uncle", "Uncle", "he"),
)

# --------------------------------------------------------------------------------------------
# Lexicon: places and objects
# --------------------------------------------------------------------------------------------

# name, preposition, spots (where things hide or happen), activities, sights
PLACES = {
    "park": (
        "the park",
        "in",
        (
            "under the slide", "behind the big oak tree", "near the swings", "by the pond",
            "in the sandbox", "under a bench",
        ),
        ("play on the swings", "feed the ducks", "run on the grass", "play catch"),
        ("ducks on the pond", "children on the swings", "a dog chasing a stick"),
    ),
    "garden": (
        "the garden",
        "in",
        (
            "behind the roses", "under the apple tree", "by the fence", "in the vegetable patch",
            "near the little pond", "under a big leaf",
        ),
        ("pick flowers", "water the plants", "look for bugs", "plant seeds"),
        ("bees on the flowers", "a snail on a leaf", "red apples on the tree"),
    ),
    "forest": (
        "the forest",
        "in",
        (
            "behind a mossy log", "under a pile of leaves", "near the little stream",
            "beside a tall pine", "in a hollow tree", "under some ferns",
        ),
        ("pick berries", "look for mushrooms", "listen to the birds", "collect pinecones"),
        ("a deer between the trees", "mushrooms by a log", "a woodpecker on a trunk"),
    ),
    "beach": (
        "the beach",
        "at",
        (
            "behind a big rock", "in the soft sand", "near the waves", "under the blue umbrella",
            "by the tide pools", "next to the lifeguard tower",
        ),
        ("build a sandcastle", "look for shells", "splash in the waves", "fly a kite"),
        ("crabs in the tide pools", "boats far away", "seagulls over the water"),
    ),
    "farm": (
        "the farm",
        "on",
        (
            "behind the red barn", "in the hay", "by the chicken coop", "near the old tractor",
            "under the water trough", "by the pig pen",
        ),
        ("feed the chickens", "ride on the hay cart", "visit the cows", "pick corn"),
        ("cows in the field", "hens in the yard", "a horse by the gate"),
    ),
    "meadow": (
        "the meadow",
        "in",
        (
            "in the tall grass", "behind a hill", "under a wild rose bush", "near a big stone",
            "by the old well", "among the daisies",
        ),
        ("chase butterflies", "pick daisies", "roll down the hill", "have a picnic"),
        ("butterflies over the flowers", "rabbits in the grass", "clouds over the hill"),
    ),
    "lake": (
        "the lake",
        "by",
        (
            "under the wooden dock", "near the reeds", "behind a canoe", "on the muddy shore",
            "by the fishing hut", "beside a flat rock",
        ),
        ("skip stones", "watch the fish", "paddle a little boat", "dip their toes in the water"),
        ("swans on the water", "fish jumping up", "a heron in the reeds"),
    ),
    "playground": (
        "the playground",
        "at",
        (
            "under the climbing frame", "behind the seesaw", "in the tunnel",
            "by the water fountain", "near the merry-go-round", "under the monkey bars",
        ),
        ("climb the monkey bars", "go down the slide", "play tag", "spin on the merry-go-round"),
        ("kids on the seesaw", "a boy on the monkey bars", "a girl jumping rope"),
    ),
    "library": (
        "the library",
        "at",
        (
            "between two shelves", "under a reading chair", "behind the front desk",
            "in the story corner", "by the big window", "near the picture books",
        ),
        ("read picture books", "listen to story time", "find a book about dragons", "look at maps"),
        ("rows of colorful books", "a sleepy cat by the window", "a globe on a table"),
    ),
    "snowy hill": (
        "the snowy hill",
        "on",
        (
            "in a snowdrift", "behind a snowman", "under a pine tree", "by the sled path",
            "near the frozen pond", "at the bottom of the hill",
        ),
        ("ride a sled", "build a snowman", "make snow angels", "have a snowball fight"),
        ("children on sleds", "icicles on the trees", "a robin in the snow"),
    ),
    "backyard": (
        "the backyard",
        "in",
        (
            "under the porch", "behind the shed", "in the flower bed", "by the clothesline",
            "under the trampoline", "next to the birdhouse",
        ),
        ("jump on the trampoline", "play in the sprinkler", "build a fort", "blow bubbles"),
        ("birds at the feeder", "a cat on the fence", "washing on the line"),
    ),
    "zoo": (
        "the zoo",
        "at",
        (
            "by the penguin pool", "near the giraffe house", "under a picnic table",
            "behind the ice cream cart", "by the monkey cage", "next to the map board",
        ),
        ("see the lions", "watch the penguins", "ride the little train", "feed the goats"),
        ("monkeys swinging", "a giraffe eating leaves", "penguins diving"),
    ),
    "market": (
        "the market",
        "at",
        (
            "under the fruit stand", "behind a flower cart", "by the bread stall",
            "near the fish seller", "between two baskets", "under an awning",
        ),
        ("buy fresh bread", "look at the flowers", "taste some cheese", "choose apples"),
        ("piles of oranges", "a man selling balloons", "baskets of eggs"),
    ),
    "river": (
        "the river",
        "by",
        (
            "under the little bridge", "behind a willow tree", "between the stones",
            "near the ferry post", "on the grassy bank", "in the shallow water",
        ),
        ("float paper boats", "look for frogs", "catch tadpoles in a jar", "sit on the bridge"),
        ("ducks floating by", "a boat with a red sail", "dragonflies over the water"),
    ),
}

INDOORS = ("library",)  # no weather, no trees to get stuck in, no gate to get lost from

# the beloved object of each story (with a colour or another adjective in front)
OBJECTS = (
    "ball", "kite", "teddy bear", "toy boat", "doll", "toy car", "hat", "scarf", "book", "drum",
    "balloon", "toy robot", "wooden train", "umbrella", "necklace", "whistle", "paper crown",
    "blanket", "yo-yo", "jump rope", "marble", "toy horse", "bucket", "music box", "wagon",
)
COLORS = (
    "red", "blue", "yellow", "green", "pink", "purple", "orange", "white", "golden", "silver",
)
OBJ_ADJS = (
    "shiny", "soft", "striped", "spotted", "old", "new", "little", "big", "sparkly", "tiny",
)

# --------------------------------------------------------------------------------------------
# Grammar: weighted alternatives; "<rule>" expands a rule, "{var}" reads the story's state,
# "^" capitalises the next letter (sentence starts inside templates).
# --------------------------------------------------------------------------------------------

GRAMMAR: dict[str, tuple] = {
    "long_ago": ((3, "once upon a time"), "long ago", "a long time ago", "in a land far away"),
    "color": COLORS,
    "topic": (
        "dragons", "the moon", "their favorite colors", "what clouds are made of",
        "the biggest animal in the world", "what they wanted to be", "pirates",
        "the birthday party next week",
    ),
    "char_adj": (
        "little", "kind", "brave", "shy", "curious", "happy", "clever", "gentle", "cheerful",
        "silly", "tiny", "playful", "quiet", "friendly", "busy", "sleepy", "bouncy", "thoughtful",
        "cheeky", "polite",
    ),
    "home": (
        "in a small house by the sea", "in a cozy house with a green door",
        "in a village near the hills", "in a busy town", "in a little cottage in the woods",
        "on a quiet street full of trees", "in a tall house with a red roof", "near a big farm",
        "in a blue house by the river", "in a flat above a bakery",
        "in a yellow house at the end of the lane", "in a round house on a hill",
        "next to a big park", "in an old house with a crooked chimney",
    ),
    "loves": (
        "to sing songs", "to draw pictures", "to run fast", "to read stories", "to play outside",
        "to build towers of blocks", "to look at the stars", "to help in the kitchen",
        "to dance in the rain", "to count the clouds", "to collect pretty stones",
        "to make funny faces", "to jump in puddles", "to play hide and seek", "to watch the birds",
        "to ask lots of questions", "to climb trees", "to bake cookies", "to splash in the bath",
        "to tell jokes", "to play the drums", "to ride a scooter",
    ),
    "looks_child": (
        "big brown eyes", "curly red hair", "a gap in {h_his} smile", "freckles on {h_his} nose",
        "a very loud laugh", "two long braids", "a missing front tooth", "bright green boots",
    ),
    "looks_animal": (
        "soft brown fur", "a fluffy white tail", "long whiskers", "bright little eyes",
        "a spot on {h_his} back", "tiny pink paws", "big round ears", "a stripe down {h_his} nose",
    ),
    "asked": ((3, "asked"), "cried", "wondered"),
    "feel_good": ("happy", "glad", "excited", "proud", "joyful", "very happy", "delighted"),
    "feel_bad": ("sad", "worried", "upset", "unhappy", "very sad", "a little scared", "gloomy"),
    "feel_scared": ("scared", "afraid", "frightened", "nervous", "very scared"),
    "cry": (
        "began to cry", "felt tears in {h_his} eyes", "sat down and cried",
        "had a big lump in {h_his} throat", "sniffed sadly", "let out a sad sigh",
    ),
    "smile_plain": ("smiled", "laughed", "giggled", "grinned", "cheered", "jumped for joy"),
    "smile": (
        "smiled", "smiled a big smile", "laughed", "giggled", "grinned", "clapped {h_his} hands",
        "jumped up and down",
    ),
    "said": ((5, "said"), "called", "shouted", "whispered", "replied", "cried"),
    "sky": (
        "the sun was shining", "the sky was blue and clear", "soft white clouds drifted by",
        "a warm wind was blowing", "the leaves were rustling", "a rainbow hung over the hills",
        "the air smelled of flowers", "the birds were singing", "it was a little cloudy",
        "the grass was wet with dew",
    ),
    "look_verb": ("looked", "searched", "looked and looked", "hunted", "peeked"),
    "quickly": ("quickly", "slowly", "carefully", "bravely", "gently", "happily"),
    "together": ("together", "side by side", "hand in hand"),
    "evening": (
        "That night", "When the sun went down", "At bedtime", "That evening", "Later that day",
        "When they got home",
    ),
    "snack": (
        "apple slices", "cookies", "a warm muffin", "some grapes", "a banana", "a cheese sandwich",
        "strawberries", "a jam tart", "a cup of cocoa", "some crackers", "a pear", "popcorn",
        "carrot sticks", "a slice of bread with honey",
    ),
    "game": (
        "tag", "hide and seek", "catch", "hopscotch", "a guessing game", "leapfrog",
        "follow the leader", "a race to the fence",
    ),
    "song": (
        "a silly song", "a happy song", "a song about the moon", "a song about frogs",
        "a little tune", "a song about the sea",
    ),
    "thanks": (
        '"Thank you!"', '"Thank you so much!"', '"Thanks, you are the best!"',
        '"Thank you for helping me!"', '"You are a good friend!"',
    ),
    "end_line": (
        "The end.", "And they all lived happily.", "It was the best day ever.",
        "And that was a very good day.", "What a wonderful day it was.",
        "{H} never forgot that day.", "{H} went to sleep with a smile.",
        "{H} could not wait for the next adventure.", "That night {H} dreamed happy dreams.",
    ),
}

# Plot-specific lessons, said at the end.
MORALS = {
    "lost": (
        "It is always good to look carefully.", "Friends make every search easier.",
        "Keeping your things safe is a good idea.",
    ),
    "stuck": (
        "When you need help, it is good to ask.", "Patience and a good idea can fix a lot.",
        "Working together makes hard things easy.",
    ),
    "broken": (
        "Broken things can often be fixed with love and care.",
        "Being gentle with your toys keeps them safe.",
        "Sometimes a fixed thing is even more special.",
    ),
    "sad_friend": (
        "A little kindness can turn a sad day into a happy one.",
        "Good friends cheer each other up.", "Sharing a smile is a wonderful gift.",
    ),
    "fear": (
        "Things are often less scary when you look closely.",
        "Being brave does not mean you are never scared.",
        "It helps to talk about what scares you.",
    ),
    "share": (
        "Sharing makes playing more fun.", "Taking turns is fair and kind.",
        "Friends are more important than toys.",
    ),
    "animal": (
        "Helping others feels good inside.", "Even small friends need our help.",
        "Being kind to animals is always right.",
    ),
    "make": (
        "If at first you do not succeed, try again.", "Mistakes help us learn.",
        "Things made with love are the best gifts.",
    ),
    "skill": (
        "Practice helps you get better.", "Every expert was once a beginner.",
        "Falling down is part of learning.",
    ),
    "lost_way": (
        "It is good to know how to ask for help.", "Staying calm helps you find your way.",
        "Home is the best place of all.",
    ),
}

# fmt: on


class _Story:
    """One story being written: the random source, the running log-probability, the text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.logprob = 0.0
        self.ctx: dict[str, str] = {}
        self.rules: dict[str, tuple] = {}
        self.paragraphs: list[list[str]] = [[]]
        self.moral = ""

    # -- the only source of randomness ---------------------------------------------------------
    def choose(self, options: Sequence, weights: Sequence[int] | None = None):
        """Pick one option (uniformly, or by integer weights) and add log p(choice)."""
        n = len(options)
        if n == 0:
            raise ValueError("nothing to choose from")
        if n == 1:
            return options[0]
        if weights is None:
            index = int(self.rng.random() * n)
            self.logprob -= math.log(n)
            return options[index]
        cumulative = list(itertools.accumulate(weights))
        total = cumulative[-1]
        index = bisect.bisect_right(cumulative, self.rng.random() * total)
        self.logprob += math.log(weights[index] / total)
        return options[index]

    def sample(self, items: Sequence[str], k: int) -> list[str]:
        """Choose ``k`` distinct items, one uniform choice at a time."""
        pool, chosen = list(items), []
        for _ in range(k):
            item = self.choose(pool)
            pool.remove(item)
            chosen.append(item)
        return chosen

    def coin(self, p_true_num: int, p_den: int) -> bool:
        """A biased coin, True with probability p_true_num / p_den."""
        return self.choose((True, False), (p_true_num, p_den - p_true_num))

    # -- the grammar ---------------------------------------------------------------------------
    def expand(self, template: str) -> str:
        out = []
        for part in _split(template):
            if part.startswith("<") and part.endswith(">"):
                name = part[1:-1]
                alternatives = self.rules.get(name) or GRAMMAR[name]
                strings = [a[1] if isinstance(a, tuple) else a for a in alternatives]
                weights = [a[0] if isinstance(a, tuple) else 1 for a in alternatives]
                uniform = all(w == 1 for w in weights)
                out.append(self.expand(self.choose(strings, None if uniform else weights)))
            elif part.startswith("{") and part.endswith("}"):
                out.append(self.ctx[part[1:-1]])
            else:
                out.append(part)
        return "".join(out)

    def say(self, *templates: str) -> None:
        """Choose one of the templates, expand it, and add it as a sentence."""
        sentence = self.expand(self.choose(templates))
        self.paragraphs[-1].append(_finish(sentence))

    def say_some(self, k: int, *templates: str) -> None:
        """Add ``k`` sentences from distinct templates, in the order they were drawn."""
        for template in self.sample(templates, k):
            self.paragraphs[-1].append(_finish(self.expand(template)))

    def new_paragraph(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append([])

    def text(self) -> str:
        return "\n".join(" ".join(p) for p in self.paragraphs if p)


_TOKEN = re.compile(r"(<\w+>|\{\w+\})")
_SPLIT_CACHE: dict[str, list[str]] = {}


def _split(template: str) -> list[str]:
    parts = _SPLIT_CACHE.get(template)
    if parts is None:
        parts = [p for p in _TOKEN.split(template) if p]
        _SPLIT_CACHE[template] = parts
    return parts


_CARET = re.compile(r"\^([^A-Za-z]*)([A-Za-z])")
_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")


def _finish(sentence: str) -> str:
    """Capitalise the first letter and after each ^ marker; a -> an before a vowel."""
    sentence = _CARET.sub(lambda m: m.group(1) + m.group(2).upper(), sentence).replace("^", "")
    sentence = _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), sentence)
    for i, ch in enumerate(sentence):
        if ch.isalpha():
            return sentence[:i] + ch.upper() + sentence[i + 1 :]
    return sentence


# --------------------------------------------------------------------------------------------
# Characters and setting
# --------------------------------------------------------------------------------------------


def _pronouns(prefix: str, he: str) -> dict[str, str]:
    forms = {"he": ("he", "him", "his"), "she": ("she", "her", "her")}[he]
    return {
        f"{prefix}_he": forms[0],
        f"{prefix}_He": forms[0].capitalize(),
        f"{prefix}_him": forms[1],
        f"{prefix}_his": forms[2],
        f"{prefix}_His": forms[2].capitalize(),
    }


def _cast(s: _Story) -> None:
    """Choose the hero, a friend of the same kind (child or animal), a grown-up, an object."""
    ctx = s.ctx
    hero_is_child = s.coin(2, 3)
    if hero_is_child:
        sex = s.choose(("girl", "boy"))
        ctx["H"] = s.choose(GIRL_NAMES if sex == "girl" else BOY_NAMES)
        ctx["h_kind"] = s.choose(CHILD_KINDS[sex])
        ctx.update(_pronouns("h", "she" if sex == "girl" else "he"))
        fsex = s.choose(("girl", "boy"))
        names = [n for n in (GIRL_NAMES if fsex == "girl" else BOY_NAMES) if n != ctx["H"]]
        ctx["F"] = s.choose(names)
        ctx["f_kind"] = fsex
        ctx["hero_is_child"] = "yes"
        ctx.update(_pronouns("f", "she" if fsex == "girl" else "he"))
    else:
        ctx["h_kind"] = s.choose(ANIMALS)
        ctx["H"] = s.choose(ANIMAL_NAMES)
        ctx.update(_pronouns("h", s.choose(("he", "she"))))
        kinds = [k for k in ANIMALS if k != ctx["h_kind"]]
        ctx["f_kind"] = s.choose(kinds)
        ctx["F"] = s.choose([n for n in ANIMAL_NAMES if n != ctx["H"]])
        ctx.update(_pronouns("f", s.choose(("he", "she"))))
        ctx["hero_is_child"] = ""
    noun, call, he = s.choose(GROWNUPS)
    ctx["g_noun"], ctx["G"] = noun, call
    ctx.update(_pronouns("g", he))
    noun = s.choose(OBJECTS)
    ctx["obj_noun"] = noun
    adjective = s.choose(COLORS) if s.coin(2, 3) else s.choose(OBJ_ADJS)
    ctx["obj"] = f"{adjective} {noun}"
    key = s.choose(sorted(PLACES))
    name, prep, spots, activities, sights = PLACES[key]
    ctx["place"], ctx["at_place"], ctx["place_key"] = name, f"{prep} {name}", key
    ctx["place_noun"] = name.removeprefix("the ")
    s.rules["spot"] = spots
    s.rules["activity"] = activities
    s.rules["sight"] = sights


def _opening(s: _Story) -> None:
    s.say(
        "<long_ago>, there was a <char_adj> {h_kind} named {H}.",
        "<long_ago>, a <char_adj> {h_kind} called {H} lived <home>.",
        "{H} was a <char_adj> {h_kind} who lived <home>.",
        "there once was a <char_adj> {h_kind}. ^{h_His} name was {H}.",
        "this is a story about a <char_adj> {h_kind} named {H}.",
    )
    if s.coin(1, 2):
        looks = "<looks_child>" if s.ctx["hero_is_child"] else "<looks_animal>"
        s.say(f"{{h_He}} had {looks}.", f"^{{H}} was easy to spot, with {looks}.")
    s.say(
        "{h_He} loved <loves>.",
        "more than anything, {H} liked <loves>.",
        "every day, {H} wanted <loves>.",
        "{h_He} was always ready <loves>.",
    )
    s.say(
        "{h_He} had a {obj} that {h_he} loved very much.",
        "{h_His} favorite toy was a {obj}.",
        "{h_He} took {h_his} {obj} everywhere {h_he} went.",
        "{h_His} {g_noun} had given {h_him} a {obj}, and {h_he} loved it.",
    )
    if s.ctx["hero_is_child"]:
        s.say(
            "{h_His} best friend was a <char_adj> {f_kind} named {F}.",
            "{H} had a friend called {F}, a <char_adj> {f_kind} from school.",
            "{F}, a <char_adj> {f_kind} who lived next door, was {H}'s best friend.",
            "{H} and {F} had been best friends since they were babies.",
        )
    else:
        s.say(
            "{h_His} best friend was a <char_adj> {f_kind} named {F}.",
            "{H} had a friend called {F}, a <char_adj> {f_kind}.",
            "{F} the {f_kind} lived nearby, and {f_he} was {H}'s best friend.",
            "{H} and {F} the {f_kind} were best friends.",
        )


def _outing(s: _Story) -> None:
    s.new_paragraph()
    s.say(
        "one day, {H} and {F} went to {place} to <activity>.",
        "that morning, {H} asked {F} to come to {place} to <activity>.",
        "after breakfast, {H} and {F} ran to {place}. ^they wanted to <activity>.",
        "{H}'s {g_noun} took {H} and {F} to {place} so they could <activity>.",
    )
    if s.ctx["place_key"] in INDOORS:
        weather = (
            "inside it was warm and quiet, and they could see <sight>.",
            "when they got there, everyone was whispering.",
        )
    else:
        weather = ("<sky>, and they could see <sight>.", "when they got there, <sky>.")
    s.say_some(
        s.choose((0, 1, 2), (2, 3, 2)),
        *weather,
        "they saw <sight>. ^{H} <smile>.",
        "^{F} found a <color> feather <spot>.",
        "^they ate <snack> and talked about <topic>.",
        "first they played <game>.",
        '"^look!" <said> {F}, pointing at <sight>.',
        "^{H} hummed <song> as they walked.",
        "^{H} carried the {obj_noun}, and {F} carried a basket.",
    )


# --------------------------------------------------------------------------------------------
# Plots: each writes the problem, the attempts and the resolution
# --------------------------------------------------------------------------------------------


def _plot_lost(s: _Story) -> None:
    s.say(
        "^{H} put {h_his} {obj} down to <activity>.",
        "while they played, {H} dropped {h_his} {obj} somewhere.",
        "^{H} played so much that {h_he} forgot about {h_his} {obj}.",
    )
    s.say(
        "when {h_he} looked for it, the {obj_noun} was gone!",
        "later, {H} reached for {h_his} {obj_noun}, but it was not there.",
        '"^oh no! ^where is my {obj_noun}?" <asked> {H}.',
    )
    s.say("^{H} felt <feel_bad> and <cry>.", "^{H} was <feel_bad>.", "^{h_His} face turned sad.")
    s.new_paragraph()
    s.say(
        '"^do not worry, I will help you look," <said> {F}.',
        '"^let\'s look together," <said> {F}.',
        '"^we will find it," {F} promised.',
    )
    s.say_some(
        s.choose((1, 2, 3), (2, 3, 1)),
        "^they <look_verb> <spot>, but the {obj_noun} was not there.",
        "^first they looked <spot>. ^nothing!",
        "^{F} checked <spot>, but {f_he} found only a stick.",
        "^{H} looked <spot> and found a shiny button, but no {obj_noun}.",
    )
    ending = s.choose(("dog", "found", "helper", "bag"))
    if ending == "dog":
        s.say(
            "^then they saw a little dog wagging its tail. ^in its mouth was the {obj}!",
            "^suddenly a puppy ran up to them with the {obj_noun} in its mouth.",
        )
        s.say(
            "^the dog dropped the {obj_noun} at {H}'s feet. <thanks> <said> {H}, and patted the dog.",
            "^{H} laughed and the puppy gave the {obj_noun} back.",
        )
    elif ending == "found":
        s.say(
            '^at last {F} shouted, "^look! ^there it is, <spot>!"',
            "^finally {H} spotted something <spot>. ^it was the {obj}!",
        )
        s.say("^{H} hugged {F}. <thanks>", "^{H} held the {obj_noun} tight and <smile>.")
    elif ending == "helper":
        s.say(
            "^{H}'s {g_noun} came to help. ^{g_He} looked <spot> and found it at once.",
            '^a kind old man walked over. "^is this yours?" he asked, holding the {obj}.',
        )
        s.say("^{H} <smile>. <thanks>", "^{H} was so <feel_good> to have {h_his} {obj_noun} back.")
    else:
        s.say(
            "^then {H} turned around. ^the {obj_noun} was right behind {h_him}, where {h_he} had left it!",
            "^when {H} opened {h_his} bag, there was the {obj_noun}. ^it had been there the whole time!",
        )
        s.say("^{H} and {F} laughed and laughed.", "^they both giggled at the silly mistake.")
    s.moral = "lost"


def _plot_stuck(s: _Story) -> None:
    s.ctx["high"] = s.choose(
        (
            "the top of a tall tree",
            "a high branch",
            "the roof of a shed",
            "the top of a fence",
            "a tall lamp post",
        )
    )
    s.say(
        "^{H} threw {h_his} {obj} high into the air.",
        "^a big gust of wind took {H}'s {obj} up into the sky.",
        "^{F} tossed the {obj_noun} to {H}, but it flew too high.",
    )
    s.say("^it landed on {high} and got stuck!", "^the {obj_noun} got caught on {high}.")
    s.say(
        '^{H} was <feel_bad>. "^how will we get it down?" {h_he} asked.',
        '"^oh no!" <said> {H}. ^{h_He} felt <feel_bad>.',
    )
    s.new_paragraph()
    tries = s.choose((1, 2, 3), (3, 3, 1))
    for attempt in s.sample(("jump", "stick", "throw", "climb"), tries):
        s.ctx["_t"] = attempt
        if attempt == "jump":
            s.say(
                "^first {H} jumped as high as {h_he} could, but {h_he} was too small.",
                "^{F} jumped and jumped, but {f_he} could not reach it.",
            )
        elif attempt == "stick":
            s.say(
                "^then they found a long stick, but it was still too short.",
                "^{F} tried to poke it with a stick, but the stick broke.",
            )
        elif attempt == "throw":
            s.say(
                "^{H} threw a pinecone at it, but it missed.",
                "^they threw {F}'s hat at it, and now the hat was stuck too!",
            )
        else:
            s.say(
                '^{F} wanted to climb up, but {H} said, "^no, it is too high. ^it is not safe."',
                "^{H} tried to climb, but the branches were too thin.",
            )
    s.new_paragraph()
    helper = s.choose(("grownup", "animal", "wind", "idea"))
    if helper == "grownup":
        s.say(
            "^so they went to ask {H}'s {g_noun} for help.",
            '^just then {H}\'s {g_noun} came by. "^can you help us?" asked {H}.',
        )
        s.say(
            "^{g_He} got a ladder and climbed up <quickly>. ^soon the {obj_noun} was down.",
            "^{g_He} was tall, and with a long rake {g_he} pulled the {obj_noun} down.",
        )
    elif helper == "animal":
        s.ctx["beast"] = s.choose(
            (
                "a friendly squirrel",
                "a big crow",
                "a tall giraffe",
                "a kind monkey",
                "a busy woodpecker",
            )
        )
        s.say(
            '^then {beast} came along. "^I can help," it said.',
            "^up on the branch sat {beast}. ^{H} asked it for help.",
        )
        s.say(
            "^it nudged the {obj_noun}, and down it fell into {H}'s arms.",
            "^it gave the {obj_noun} a push, and the {obj_noun} dropped to the ground.",
        )
    elif helper == "wind":
        s.say(
            "^they waited and waited. ^then the wind blew hard, and the {obj_noun} fell down!",
            "^{H} and {F} sat under it and made a wish. ^a breeze came and shook it free.",
        )
    else:
        s.say(
            "^then {F} had an idea. ^they stood on the old bench, and {H} climbed on {F}'s back.",
            "^{H} had a clever idea. ^{h_He} fetched a long net from home and pulled the {obj_noun} down.",
        )
        s.say("^it worked! ^the {obj_noun} came down.", "^at last they got it!")
    s.say("^{H} <smile>. <thanks>", "^{H} and {F} cheered.", "^everyone was <feel_good>.")
    s.moral = "stuck"


def _plot_broken(s: _Story) -> None:
    s.say(
        "^{F} wanted to hold the {obj_noun}, and {H} let {f_him}.",
        "^{H} was playing with {h_his} {obj} when {h_he} tripped.",
        "^they played with the {obj_noun} too roughly.",
    )
    s.say(
        "^suddenly there was a loud crack. ^the {obj_noun} was broken!",
        "^the {obj_noun} fell on the ground and broke.",
        "^snap! ^a piece came off the {obj_noun}.",
    )
    s.say(
        "^{H} <cry>.",
        '^{H} was <feel_bad>. "^my {obj_noun}!" {h_he} cried.',
        '^{F} said, "^I am so sorry, {H}."',
    )
    s.new_paragraph()
    fix = s.choose(("glue", "make", "tailor"))
    if fix == "glue":
        s.say(
            "^{H} took the pieces home to {h_his} {g_noun}.",
            "^they carried the broken {obj_noun} to {H}'s {g_noun}.",
        )
        s.say(
            '"^let me see," <said> {G}. ^{g_He} got some glue and tape.',
            '^{H}\'s {g_noun} smiled. "^we can fix this," {g_he} said.',
        )
        s.say(
            "^{g_He} fixed it <quickly>, and soon the {obj_noun} was almost like new.",
            "^together they fixed the {obj_noun}. ^now it had a little scar, but it worked.",
        )
    elif fix == "make":
        s.say(
            '^{F} had an idea. "^let\'s make a new one together!"',
            '"^we can make a new {obj_noun}," <said> {F}.',
        )
        s.say(
            "^they used paper, string and paint. ^it took all afternoon.",
            "^they found a box, some buttons and glue, and worked hard.",
        )
        s.say(
            "^the new {obj_noun} was funny and bright. ^{H} loved it even more.",
            "^when it was done, {H} <smile>. ^it was the best {obj_noun} ever.",
        )
    else:
        s.say(
            "^{H}'s {g_noun} knew how to sew and fix things.",
            "^they asked the old toy maker in town for help.",
        )
        s.say(
            "^with a needle, a hammer and some patience, the {obj_noun} was fixed.",
            "^in a day the {obj_noun} was whole again, with a shiny new part.",
        )
    s.say(
        '^{H} hugged {F}. "^it is fine now," {h_he} said.',
        "^{H} felt <feel_good> again.",
        "^{H} promised to be gentle with it.",
    )
    s.moral = "broken"


def _plot_sad_friend(s: _Story) -> None:
    reason = s.choose(
        (
            "{f_his} grandma had moved far away",
            "nobody had picked {f_him} for the game",
            "{f_he} had dropped {f_his} ice cream",
            "{f_he} had lost {f_his} favorite sock",
            "{f_his} painting had gotten wet in the rain",
            "{f_he} missed {f_his} old home",
            "{f_he} had fallen and scraped {f_his} knee",
        )
    )
    s.ctx["reason"] = s.expand(reason)
    s.say(
        "^{F} sat all alone and looked <feel_bad>.",
        "^{H} noticed that {F} was quiet. ^{f_He} looked <feel_bad>.",
        "^{F} was not smiling today.",
    )
    s.say(
        '"^what is wrong?" asked {H}. ^{F} said that {reason}.',
        "^{H} asked {F} why {f_he} was sad. ^{F} told {h_him} that {reason}.",
        "^{H} sat next to {F}. ^{f_He} found out that {reason}.",
    )
    s.new_paragraph()
    s.say_some(
        s.choose((1, 2)),
        "^{H} shared {h_his} <snack> with {F}.",
        "^{H} sang <song> to make {F} laugh.",
        "^{H} drew a picture of the two of them and gave it to {F}.",
        '"^let\'s play <game>!" <said> {H}.',
        "^{H} let {F} hold the {obj}.",
        "^{H} made a funny face, and then another one.",
    )
    s.say(
        "^slowly {F} began to smile.",
        "^soon {F} was laughing.",
        "^{F} wiped {f_his} eyes and <smile_plain>.",
    )
    s.say(
        '"^you are the best friend ever," <said> {F}.',
        "<thanks> <said> {F}.",
        "^{F} felt much better, and so did {H}.",
    )
    s.moral = "sad_friend"


def _plot_fear(s: _Story) -> None:
    thing, truth = s.choose(
        (
            ("a strange noise in the bushes", "just a little hedgehog looking for food"),
            ("a big dark shadow", "only the shadow of a tree moving in the wind"),
            (
                "loud thunder in the sky",
                "the sound of rain clouds bumping, and it could not hurt them",
            ),
            ("a big barking dog", "a friendly dog who only wanted to play"),
            ("a scary face in the window", "a pumpkin that someone had carved"),
            ("a deep dark cave", "a small cave full of sleeping bats"),
            ("a howling sound", "the wind blowing through an old pipe"),
            ("something moving under the leaves", "a tiny frog hopping about"),
        )
    )
    s.ctx["thing"], s.ctx["truth"] = thing, truth
    s.say(
        "^suddenly {H} heard {thing}.",
        "^then {H} saw {thing}.",
        "^{H} stopped. ^there was {thing}!",
    )
    s.say(
        "^{h_He} felt <feel_scared> and hid behind {F}.",
        '^{H} was <feel_scared>. "^what is that?" {h_he} whispered.',
        "^{h_His} knees shook. ^{h_He} was <feel_scared>.",
    )
    s.new_paragraph()
    helper = s.choose(("friend", "grownup"))
    if helper == "friend":
        s.say(
            "\"^let's look together,\" <said> {F}, and took {H}'s hand.",
            '^{F} was <feel_scared> too, but {f_he} said, "^we can be brave together."',
        )
    else:
        s.say(
            "^{H}'s {g_noun} came and held {h_his} hand.",
            '^{H} ran to {h_his} {g_noun}. "^let\'s go and see," {g_he} said softly.',
        )
    s.say(
        "^they took a step closer, then another.",
        "^they tiptoed <quickly> to look.",
        "^{H} took a deep breath and looked.",
    )
    s.say("^it was {truth}!", "^it turned out to be {truth}.")
    s.say(
        '^{H} laughed. "^I was scared of that?" {h_he} said.',
        "^{H} felt silly, and then <feel_good>.",
        "^{H} was not scared any more.",
    )
    s.moral = "fear"


def _plot_share(s: _Story) -> None:
    s.say(
        "^{F} saw {H}'s {obj} and wanted to play with it too.",
        '^{F} asked, "^can I have a turn with your {obj_noun}?"',
    )
    s.say(
        '^but {H} held it tight. "^no, it is mine!" {h_he} said.',
        '"^no," <said> {H}. "^I want to play with it by myself."',
    )
    s.say("^{F} looked <feel_bad> and walked away.", "^{F} felt <feel_bad>. ^{f_He} sat alone.")
    s.new_paragraph()
    s.say(
        "^soon {H} noticed that playing alone was not much fun.",
        "^after a while, {H} felt lonely. ^the {obj_noun} was no fun without a friend.",
        '^{H}\'s {g_noun} said, "^toys are more fun when we share them."',
    )
    s.say(
        '^{H} walked over to {F}. "^I am sorry," {h_he} said. "^do you want a turn?"',
        '^{H} gave the {obj_noun} to {F}. "^here, you can go first."',
        '"^let\'s take turns," <said> {H}.',
    )
    s.say(
        "^{F} <smile_plain>. ^they took turns all afternoon.",
        "^they played <game> with the {obj_noun} <together>.",
        "^{F} was <feel_good>, and so was {H}.",
    )
    s.moral = "share"


def _plot_animal(s: _Story) -> None:
    creature, trouble, fix, goodbye = s.choose(
        (
            (
                "a baby bird",
                "had fallen out of its nest",
                "put it gently back in its nest",
                "chirped a happy song",
            ),
            (
                "a little kitten",
                "was stuck in a bush and could not get out",
                "moved the branches and lifted it out",
                "purred and rubbed against {H}'s leg",
            ),
            (
                "a turtle",
                "was lying on its back and could not turn over",
                "turned it the right way up",
                "slowly walked back to the water",
            ),
            (
                "a lost puppy",
                "was crying and had no one with it",
                "read the name on its collar and took it home to its family",
                "licked {H}'s face",
            ),
            (
                "a duckling",
                "could not find its mother",
                "walked with it along the water until they found the mother duck",
                "quacked and swam away",
            ),
            (
                "a butterfly",
                "was caught in a spider web",
                "carefully set it free",
                "fluttered around {H}'s head before flying off",
            ),
            (
                "a hungry squirrel",
                "could not find any nuts",
                "shared some of their snack with it",
                "flicked its tail and ran up a tree",
            ),
        )
    )
    s.ctx["creature"], s.ctx["trouble"], s.ctx["fix"] = creature, trouble, fix
    s.ctx["goodbye"] = s.expand(goodbye)
    s.say(
        "^near the path, {H} found {creature}.",
        "^{F} pointed at something <spot>. ^it was {creature}!",
        "^{H} heard a tiny sound. ^it was {creature}.",
    )
    s.say("^it {trouble}.", "^the poor thing {trouble}.")
    s.say(
        '"^we have to help it," <said> {H}.',
        "^{H} felt <feel_bad> for it.",
        '"^what can we do?" asked {F}.',
    )
    s.new_paragraph()
    if s.coin(1, 3):
        s.say(
            "^they asked {H}'s {g_noun}, who knew what to do.",
            "^{H}'s {g_noun} showed them how to be gentle.",
        )
    s.say("^{H} and {F} {fix}.", "^<together>, they {fix}.", "^very <quickly>, {H} {fix}.")
    s.say("^the animal {goodbye}.", "^then it {goodbye}.")
    s.say(
        "^{H} and {F} felt warm and <feel_good> inside.",
        "^{H} <smile>.",
        '^{F} said, "^we did it!"',
    )
    s.moral = "animal"


# fmt: off
# thing to make, what goes wrong, what they do differently, where it can be made ("home": after
# the outing, back at home; otherwise the places where it makes sense)
MAKE_THINGS = (
    (
        "a big cake for {G}", "the cake came out flat and burnt",
        "this time they watched the oven carefully", "home",
    ),
    (
        "a sandcastle with four towers", "a wave came and washed it away",
        "this time they built it far from the water", "beach",
    ),
    ("a birdhouse", "the roof kept falling off", "this time they used more nails", "home"),
    (
        "a painting of the {place_noun}", "the paint ran and the colors got muddy",
        "this time they let each color dry first", "home",
    ),
    (
        "a paper kite", "the kite tore in the wind", "this time they used strong paper and tape",
        "park meadow beach snowy hill backyard playground lake river farm",
    ),
    (
        "a garden of sunflowers", "the seeds did not grow", "this time they watered them every day",
        "garden backyard farm meadow",
    ),
    (
        "a card for {G}", "{H} spilled juice all over it", "this time they worked at a clean table",
        "home",
    ),
    (
        "a snowman as tall as {G}", "its head rolled off", "this time they packed the snow tight",
        "snowy hill",
    ),
    (
        "a dam of sticks and stones", "the water pushed it over",
        "this time they used bigger stones at the bottom", "river lake forest",
    ),
    (
        "a fort of branches", "it fell down in the wind",
        "this time they tied the branches with string", "forest backyard",
    ),
)
# fmt: on


def _plot_make(s: _Story) -> None:
    here = [t for t in MAKE_THINGS if t[3] == "home" or s.ctx["place_key"] in t[3].split(" ")]
    thing, problem, second, where = s.choose(here)
    if where == "home":
        s.say(
            "^when they got home, {H} had an idea.",
            "^back at home, {H} was bored.",
            "^after they came home, it started to rain.",
        )
    s.ctx["thing"], s.ctx["problem"] = s.expand(thing), s.expand(problem)
    s.ctx["second"] = second
    s.say(
        "^{H} wanted to make {thing}.",
        "^{H} and {F} decided to make {thing}.",
        '"^let\'s make {thing}!" <said> {H}.',
    )
    s.say(
        "^they worked hard all morning.",
        "^they got everything they needed and began.",
        "^{F} helped, and they worked <together>.",
    )
    s.say("^but {problem}.", "^oh no! ^{problem}.")
    s.say(
        '^{H} felt <feel_bad>. "^maybe we should give up," {h_he} said.',
        "^{H} <cry>.",
        "^{H} wanted to stop.",
    )
    s.new_paragraph()
    s.say(
        '"^let\'s try again," <said> {F}.',
        '^{H}\'s {g_noun} said, "^everyone makes mistakes. ^try again."',
        '^{F} gave {H} a hug. "^we can do it," {f_he} said.',
    )
    s.say("^so they started over, and {second}.", "^they tried once more, and {second}.")
    s.say(
        "^at last, {thing} was finished, and it was beautiful!",
        "^this time it worked, and they were very proud.",
    )
    s.say("^{H} was so <feel_good>.", "^everyone clapped.", "^{H} and {F} <smile_plain>.")
    s.moral = "make"


# fmt: off
# skill, how the first try goes wrong, where it can be practised ("" = anywhere)
SKILLS = (
    ("ride a bike", "{h_he} wobbled and fell over", "park playground backyard market"),
    ("swim", "{h_he} swallowed some water and coughed", "lake beach river"),
    ("tie {h_his} shoes", "the laces got all tangled", ""),
    ("whistle", "only air came out", ""),
    ("skate", "{h_his} feet slid out and {h_he} sat down hard", "snowy hill park"),
    ("climb the rope", "{h_his} hands slipped", "playground"),
    ("jump rope", "the rope caught {h_his} feet", "playground backyard park"),
    ("read a whole book", "the long words were too hard", "library"),
    ("milk a cow", "the cow stepped away and mooed", "farm"),
    ("throw a ball far", "the ball landed right behind {h_him}", "park beach meadow playground"),
    ("catch a fish", "the fish wiggled off the hook", "lake river"),
    ("do a cartwheel", "{h_he} landed in a heap", "meadow beach garden backyard"),
)
# fmt: on


def _plot_skill(s: _Story) -> None:
    here = [t for t in SKILLS if not t[2] or s.ctx["place_key"] in t[2].split(" ")]
    skill, fail, _ = s.choose(here)
    s.ctx["skill"], s.ctx["fail"] = s.expand(skill), s.expand(fail)
    s.say(
        "^{H} wanted to learn to {skill}.",
        "^{F} could {skill}, and {H} wanted to learn too.",
        "^today {H} was going to learn to {skill}.",
    )
    s.say("^{h_He} tried, but {fail}.", "^on the first try, {fail}.")
    s.say(
        '^{H} felt <feel_bad>. "^I will never learn," {h_he} said.',
        '^{H} frowned. "^it is too hard," {h_he} said.',
    )
    s.new_paragraph()
    s.say(
        '"^everyone falls at first," <said> {F}. "^keep trying!"',
        '^{H}\'s {g_noun} said, "^it took me a long time too. ^try a little every day."',
        "^{F} showed {H} how to do it, step by step.",
    )
    s.say(
        "^so {H} tried again, and again, and again.",
        "^every day, {H} practiced a little.",
        "^{H} did not give up.",
    )
    s.say("^then one day, {h_he} could {skill}!", "^at last {H} could {skill} all alone.")
    s.say(
        '"^I did it!" <said> {H}. ^{h_He} was so <feel_good>.',
        "^{F} cheered, and {H} <smile>.",
        "^{H} felt <feel_good> and strong.",
    )
    s.moral = "skill"


def _plot_lost_way(s: _Story) -> None:
    s.say(
        "^{H} wandered off to get a closer look at <sight>.",
        "^{H} chased a yellow butterfly far away.",
        "^{H} walked around a corner, and then another.",
    )
    s.say(
        "^when {h_he} looked up, {F} was gone. ^{H} was lost!",
        "^soon {H} did not know where {h_he} was.",
    )
    s.say("^{h_He} felt <feel_scared>.", "^{H} wanted to cry, but {h_he} took a deep breath.")
    s.new_paragraph()
    helper = s.choose(("owl", "lady", "landmark", "call"))
    if helper == "owl":
        s.say(
            '^a wise old owl looked down. "^are you lost?" it asked.',
            '^an old owl in a tree hooted. "^I can see far from up here," it said.',
        )
        s.say("^the owl showed {H} the way back.", "^it pointed the way with its wing.")
    elif helper == "lady":
        s.say(
            '^a kind lady with a dog saw {H}. "^can I help you?" she asked.',
            "^{H} remembered what {h_his} {g_noun} said: find a grown-up who works there.",
        )
        s.say("^she walked with {H} back to the gate.", "^they helped {H} find the path back.")
    elif helper == "landmark":
        s.say(
            "^then {H} saw something {h_he} had passed on the way in: <sight>!",
            "^{H} remembered the big oak tree near the gate.",
        )
        s.say(
            "^{h_He} followed the path back, step by step.",
            "^{h_He} walked <quickly> back the way {h_he} had come.",
        )
    else:
        s.say(
            '^{H} stood still and called, "{F}! ^where are you?"',
            "^{H} climbed on a rock and shouted {F}'s name as loud as {h_he} could.",
        )
        s.say("^{F} heard {h_him} and came running.", "^soon {h_he} heard {F} calling back.")
    s.say(
        "^{F} ran to {H} and gave {h_him} a big hug.",
        "^{H} was <feel_good> to see {F} again.",
        "^{H} found {F} waiting by the gate.",
    )
    s.say("^after that, {H} always stayed close.", '"^I will stay near you next time," <said> {H}.')
    s.moral = "lost_way"


PLOTS = {
    "lost": _plot_lost,
    "stuck": _plot_stuck,
    "broken": _plot_broken,
    "sad_friend": _plot_sad_friend,
    "fear": _plot_fear,
    "share": _plot_share,
    "animal": _plot_animal,
    "make": _plot_make,
    "skill": _plot_skill,
    "lost_way": _plot_lost_way,
}


def _ending(s: _Story) -> None:
    s.new_paragraph()
    kind = s.choose(("moral", "evening", "line", "moral_line"))
    if kind in ("moral", "moral_line"):
        s.ctx["moral"] = s.choose(MORALS[s.moral])
        s.say(
            "^{H} learned something that day. {moral}",
            "^from that day on, {H} knew: {moral}",
            "^{H} and {F} learned a lesson. {moral}",
        )
    if kind == "evening":
        s.say(
            "<evening>, {H} told {h_his} {g_noun} all about it.",
            "<evening>, {H} hugged {h_his} {obj_noun} and fell asleep.",
            "<evening>, {H} and {F} waved goodbye and went home.",
        )
    if kind in ("line", "moral_line", "evening"):
        s.say("<end_line>")


def generate_story(rng: random.Random) -> tuple[str, float]:
    """Write one story with ``rng``; return ``(text, logprob)``.

    ``logprob`` is the natural log of the probability of the choices made (see the module
    docstring: it is ``log p`` of the derivation, a lower bound on ``log p(text)``).
    The text has paragraphs separated by ``\\n`` and no trailing newline.
    """
    s = _Story(rng)
    _cast(s)
    _opening(s)
    _outing(s)
    indoors = s.ctx["place_key"] in INDOORS
    outdoor_only = ("stuck", "animal", "lost_way")
    PLOTS[s.choose([p for p in sorted(PLOTS) if not (indoors and p in outdoor_only)])](s)
    _ending(s)
    return s.text(), s.logprob


def generate_stories(n: int, seed: int = DEFAULT_SEED) -> list[tuple[str, float]]:
    """Return ``n`` stories ``(text, logprob)`` from one ``random.Random(seed)``."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n)]


def format_document(story: str) -> str:
    """A story as it appears in the corpus: the text, a newline, the separator line."""
    return f"{story}\n{SEPARATOR}\n"


def build_corpus(
    seed: int = DEFAULT_SEED, min_chars: int = DEFAULT_MIN_CHARS, progress: bool = False
) -> tuple[str, dict]:
    """Write stories until the corpus holds at least ``min_chars`` characters (with
    ``progress``, a progress bar counts them).

    Returns ``(text, meta)``; ``meta`` holds the seed, the counts and ``total_logprob`` (nats,
    summed over stories; the separators and newlines are deterministic and cost nothing), with
    ``nats_per_char`` and ``nats_per_word`` = ``-total_logprob`` divided by the corpus' characters
    and whitespace-separated words (separator lines not counted as words).
    """
    from llmbook.io.progress import progress_bar

    rng = random.Random(seed)
    parts, total, chars, n = [], 0.0, 0, 0
    with progress_bar(total=min_chars, enabled=progress, unit="char", unit_scale=True,
                      desc="writing stories") as bar:  # fmt: skip
        while chars < min_chars:
            story, logprob = generate_story(rng)
            doc = format_document(story)
            parts.append(doc)
            total += logprob
            chars += len(doc)
            n += 1
            bar.update(min(len(doc), min_chars - bar.n))
    text = "".join(parts)
    words = len(text.split()) - n  # the separator lines are not words
    meta = {
        "seed": seed,
        "min_chars": min_chars,
        "n_stories": n,
        "n_chars": len(text),
        "n_words": words,
        "total_logprob": total,
        "nats_per_char": -total / len(text),
        "nats_per_word": -total / words,
        "sha256_text": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    return text, meta


def gzip_bytes(text: str) -> bytes:
    """Compress deterministically: level 9, ``mtime=0``, no file name in the header."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as f:
        f.write(text.encode("utf-8"))
    return buffer.getvalue()


def write_corpus(
    directory: Path | str = CORPUS_DIR, seed: int = DEFAULT_SEED, min_chars: int = DEFAULT_MIN_CHARS
) -> dict:
    """Write ``stories.txt.gz`` and ``stories.json`` into ``directory``; return the metadata."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text, meta = build_corpus(seed, min_chars)
    (directory / CORPUS_FILE.name).write_bytes(gzip_bytes(text))
    (directory / META_FILE.name).write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return meta


def read_meta() -> dict:
    """The metadata of the shipped corpus (written by ``write_corpus``)."""
    return json.loads(META_FILE.read_text(encoding="utf-8"))
