"""The book's own corpus, ``stories`` (hand-written; chapter 02 loads it, chapter 08 measures it).

``checker.py`` reads a story back into its parts and finds its contradictions (chapter 10).
``fresh.py`` writes fresh stories at any size for training (``fresh-stories:30M``).
``generator.py`` writes the stories from a seeded grammar; ``stories.txt.gz`` and
``stories.json`` beside it are the shipped corpus and its statistics, which
``python tools/make_stories.py`` rewrites. The generator's public names are re-exported here.
"""

from llmbook.stories.checker import (
    CONTRADICTIONS,
    KINDS,
    Problem,
    StoryReading,
    check_stories,
    check_story,
    grammatical_rate,
    read_story,
)
from llmbook.stories.fresh import (
    FRESH_PREFIX,
    FRESH_SEED,
    MAX_FRESH_CHARS,
    fresh_stories,
    is_fresh_name,
    parse_size,
)
from llmbook.stories.generator import (
    CORPUS_DIR,
    CORPUS_FILE,
    DEFAULT_MIN_CHARS,
    DEFAULT_SEED,
    META_FILE,
    SEPARATOR,
    build_corpus,
    format_document,
    generate_stories,
    generate_story,
    gzip_bytes,
    read_meta,
    write_corpus,
)

__all__ = [
    "CONTRADICTIONS",
    "KINDS",
    "Problem",
    "StoryReading",
    "check_stories",
    "check_story",
    "grammatical_rate",
    "read_story",
    "FRESH_PREFIX",
    "FRESH_SEED",
    "MAX_FRESH_CHARS",
    "fresh_stories",
    "is_fresh_name",
    "parse_size",
    "CORPUS_DIR",
    "CORPUS_FILE",
    "DEFAULT_MIN_CHARS",
    "DEFAULT_SEED",
    "META_FILE",
    "SEPARATOR",
    "build_corpus",
    "format_document",
    "generate_stories",
    "generate_story",
    "gzip_bytes",
    "read_meta",
    "write_corpus",
]
