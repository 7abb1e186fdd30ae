"""(Re)build the book's shipped tokenizer, ``llmbook/assets/stories_tokenizer.txt``.

    python tools/make_tokenizer.py            # train on the stories corpus and write the file
    python tools/make_tokenizer.py --check    # exit 1 if a fresh training would change the file

Chapter 01 trains exactly this tokenizer (``BPETokenizer.train(load_corpus("stories"),
vocab_size=2048, special_tokens=["<|endoftext|>"])``) and shows that it equals the shipped one.
Training is deterministic, so the file comes out byte for byte the same on every machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmbook.data import load_corpus  # noqa: E402
from llmbook.pretrained import ASSETS, STORIES_VOCAB_SIZE  # noqa: E402
from llmbook.tokenizer import BPETokenizer  # noqa: E402

TARGET = ASSETS / "stories_tokenizer.txt"


def train() -> BPETokenizer:
    """The book's tokenizer, trained from scratch on the stories corpus."""
    text = load_corpus("stories")
    return BPETokenizer.train(text, STORIES_VOCAB_SIZE, special_tokens=["<|endoftext|>"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    tokenizer = train()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / TARGET.name
            tokenizer.save(fresh)
            if not TARGET.exists() or TARGET.read_bytes() != fresh.read_bytes():
                print(f"{TARGET.relative_to(ROOT)} differs; run tools/make_tokenizer.py")
                return 1
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    tokenizer.save(TARGET)
    print(f"wrote {TARGET.relative_to(ROOT)}: {tokenizer}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
