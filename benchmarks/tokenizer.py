"""Benchmark llmbook.tokenizer: BPE training time, and pure-Python vs tiktoken encoding speed.

    python benchmarks/tokenizer.py                     # 1 MB of the stories corpus, 4,096 tokens
    python benchmarks/tokenizer.py --text stdlib       # 1 MB of Python's standard library source
    python benchmarks/tokenizer.py --text my.txt --megabytes 2 --vocab-size 8192

The stories use a small vocabulary: their training runs out of repeated pairs at about 2,700
tokens. To time a full run to 4,096 tokens, use a more varied text such as ``--text stdlib``
(the ``.py`` files of the running Python's standard library, in sorted order).

Speeds are reported against tiktoken measured in the same run, so the ratio is what to compare
between machines. Nothing here is asserted; the tests check correctness, this measures speed.
"""

import argparse
import platform
import sysconfig
import time
from pathlib import Path

import torch

from llmbook.tokenizer import BPETokenizer


def best_of(repeats: int, function, *args) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def stdlib_text(n_bytes: int) -> str:
    """About ``n_bytes`` of Python source from the standard library: varied, always available."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for path in sorted(root.glob("*.py")):
        part = path.read_text(encoding="utf-8", errors="ignore")
        parts.append(part)
        total += len(part.encode("utf-8"))
        if total >= n_bytes:
            break
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--text",
        default="stories",
        help="'stories' (the book's corpus, default), 'stdlib' (Python source), or a UTF-8 file",
    )
    parser.add_argument(
        "--megabytes", type=float, default=1.0, help="how much of the text to train on"
    )
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    if args.text == "stories":
        from llmbook.data import load_corpus

        text = load_corpus("stories")
    elif args.text == "stdlib":
        text = stdlib_text(int(args.megabytes * 1_000_000))
    else:
        with open(args.text, encoding="utf-8") as handle:
            text = handle.read()
    data = text.encode("utf-8")[: int(args.megabytes * 1_000_000)]
    text = data.decode("utf-8", errors="ignore")
    n_bytes = len(text.encode("utf-8"))
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    )
    print(f"text: {n_bytes:,} bytes")

    start = time.perf_counter()
    tokenizer = BPETokenizer.train(text, args.vocab_size, special_tokens=["<|endoftext|>"])
    train_seconds = time.perf_counter() - start
    print(f"train to {tokenizer.vocab_size:,} tokens: {train_seconds:.2f} s")
    if tokenizer.vocab_size < args.vocab_size:
        print(f"  (stopped early: no pair occurs twice; try --text stdlib for {args.vocab_size:,})")

    fast = tokenizer.to_tiktoken()
    sample = text[:500_000]
    sample_bytes = len(sample.encode("utf-8"))

    def pure_python_cold(s):  # a fresh tokenizer: its chunk cache starts empty
        BPETokenizer(tokenizer.merges, tokenizer.pattern, tokenizer.special_tokens).encode(
            s, allowed_special="all"
        )

    tiktoken_seconds = best_of(
        args.repeats, lambda s: fast.encode(s, allowed_special="all"), sample
    )
    rows = [  # (encoder, seconds, seconds of tiktoken with the same vocabulary)
        (
            "trained, pure Python, cold cache",
            best_of(args.repeats, pure_python_cold, sample),
            tiktoken_seconds,
        ),
        (
            "trained, pure Python, warm cache",
            best_of(args.repeats, tokenizer.encode, sample, "all"),
            tiktoken_seconds,
        ),
        ("trained, tiktoken (to_tiktoken)", tiktoken_seconds, tiktoken_seconds),
    ]
    try:  # the same comparison with a production vocabulary
        import tiktoken

        cl100k = tiktoken.get_encoding("cl100k_base")
    except Exception as error:  # offline without TIKTOKEN_CACHE_DIR
        print(f"(cl100k_base rows skipped: {error})")
    else:
        rebuilt = BPETokenizer.from_tiktoken(cl100k)

        def rebuilt_cold(s):
            BPETokenizer(
                rebuilt.merges, rebuilt.pattern, rebuilt.special_tokens, rebuilt.byte_ids
            ).encode(s, allowed_special="all")

        reference = best_of(args.repeats, lambda s: cl100k.encode(s, allowed_special="all"), sample)
        rows += [
            (
                "cl100k_base, pure Python, cold",
                best_of(args.repeats, rebuilt_cold, sample),
                reference,
            ),
            ("cl100k_base, tiktoken", reference, reference),
        ]
    print(f"\nencode {sample_bytes:,} bytes (best of {args.repeats})")
    print(f"{'encoder':34} {'seconds':>8} {'MB/s':>7} {'x tiktoken':>11}")
    for name, seconds, reference in rows:
        print(
            f"{name:34} {seconds:8.3f} {sample_bytes / seconds / 1e6:7.2f} {seconds / reference:11.1f}"
        )


if __name__ == "__main__":
    main()
