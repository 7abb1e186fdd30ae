"""(Re)write the book's own corpus, ``llmbook/stories/stories.txt.gz`` and ``stories.json``.

    python tools/make_stories.py            # write the shipped files
    python tools/make_stories.py --check    # exit 1 if regenerating would change them

The generator is ``llmbook/stories/generator.py``; it is seeded, so the files come out byte for byte the
same on every machine (gzip is written with ``mtime=0`` and level 9).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmbook import stories  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            stories.write_corpus(tmp)
            for name in (stories.CORPUS_FILE.name, stories.META_FILE.name):
                fresh = (Path(tmp) / name).read_bytes()
                shipped = stories.CORPUS_DIR / name
                if not shipped.exists() or shipped.read_bytes() != fresh:
                    print(f"{shipped.relative_to(ROOT)} differs; run tools/make_stories.py")
                    return 1
        print("stories corpus is up to date")
        return 0
    meta = stories.write_corpus()
    print(
        f"wrote {stories.CORPUS_FILE.relative_to(ROOT)}: {meta['n_stories']} stories, "
        f"{meta['n_chars']:,} characters, {meta['nats_per_char']:.4f} nats/char"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
