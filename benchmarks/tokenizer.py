"""Tokenizer speed, as ratios measured in one run: BPE training, the book's pure-Python encoder
against tiktoken with the same merges, cl100k_base rebuilt against tiktoken, building a 100k-merge
tokenizer, and streaming (``encode_iterable``) against encoding the whole text.

    OMP_NUM_THREADS=1 python benchmarks/tokenizer.py                 # the stories corpus
    OMP_NUM_THREADS=1 python benchmarks/tokenizer.py --text stdlib   # Python's standard library
    OMP_NUM_THREADS=1 python benchmarks/tokenizer.py --text my.txt --megabytes 2 --vocab-size 8192
    OMP_NUM_THREADS=1 python benchmarks/tokenizer.py --quick         # fewer rounds

1. Training to ``--vocab-size`` on ``--megabytes`` of the text. The stories use a small
   vocabulary: their training runs out of repeated pairs at about 2,700 tokens; for a full run
   to 4,096 tokens use a more varied text such as ``--text stdlib`` (the ``.py`` files of the
   running Python's standard library, in sorted order).
2. Encoding the first 500 kB (``--sample-kb``): the trained tokenizer in pure Python with an
   empty chunk cache (a fresh tokenizer each round, built before the clock starts) and with a
   warm one, and tiktoken with the same merges (``to_tiktoken``); ``cl100k_base`` rebuilt with
   ``from_tiktoken`` (empty cache) and tiktoken's own ``cl100k_base``. Only ``encode`` is timed.
   Ratio: each / tiktoken with the same vocabulary.
3. Building ``cl100k_base``'s 100k-merge tokenizer from tables already in memory:
   ``BPETokenizer(merges, ...)`` (checks every merge, builds the rank table) against
   ``tiktoken.Encoding(...)`` from the same ranks; and ``from_tiktoken``, which also recovers
   the merges from tiktoken's ranks (no tiktoken counterpart).
4. Streaming: ``encode_iterable`` over the lines of ``--stream-megabytes`` (the text repeated
   to that size) against ``encode`` of the whole text, both with a warm chunk cache; the ids are
   checked to be identical first. Ratio: encode_iterable / encode.

Within a table the compared steps run alternately (one run of each per round), so a change of
load on a shared machine hits them alike; times are medians of ``--repeats`` rounds after one
untimed round, each ratio is taken within each round and reported as the median over the rounds
with its range (``harness.py``; the CPU clock with one thread). Output: Markdown tables, and
``benchmarks/results/tokenizer[-quick].json``. Nothing here is asserted; the tests check
correctness, this measures speed.
"""

from __future__ import annotations

import argparse
import sysconfig
from collections.abc import Callable
from pathlib import Path

from harness import Run, cell, per_round, spread

from llmbook.tokenizer import BPETokenizer


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


def load_text(name: str, n_bytes: int) -> str:
    if name == "stories":
        from llmbook.data import load_corpus

        text = load_corpus("stories")
    elif name == "stdlib":
        text = stdlib_text(n_bytes)
    else:
        text = Path(name).read_text(encoding="utf-8")
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")


def rounds_with_setup(
    run: Run, steps: dict[str, tuple[Callable, Callable]], repeats: int, key: str
) -> dict[str, list[float]]:
    """Like ``run.rounds``, for steps ``name -> (setup, step)``: each round calls ``setup()``
    untimed, then times ``step(what setup returned)``. One untimed round first."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(1 + repeats):
        for name, (setup, step) in steps.items():
            prepared = setup()
            seconds = run.time(lambda step=step, prepared=prepared: step(prepared))
            if r:
                times[name].append(seconds)
    run.samples[key] = times
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--text", default="stories", help="'stories' (default), 'stdlib', or a UTF-8 file"
    )
    parser.add_argument("--megabytes", type=float, default=1.0, help="text to train on")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--sample-kb", type=int, default=500, help="text to encode (table 2)")
    parser.add_argument("--stream-megabytes", type=float, default=5.0, help="text to stream")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 MB streamed")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    stream_mb = 1.0 if args.quick else args.stream_megabytes

    run = Run("tokenizer", args.quick)
    run.header("tokenizer: training, encoding against tiktoken, building, streaming")
    text = load_text(args.text, int(args.megabytes * 1_000_000))
    n_bytes = len(text.encode("utf-8"))

    # 1. training
    def train() -> BPETokenizer:
        return BPETokenizer.train(text, args.vocab_size, special_tokens=["<|endoftext|>"])

    tokenizer = train()
    train_seconds = run.rounds({"train": train}, min(repeats, 3), warmup=0, key="train")["train"]
    stopped = "" if tokenizer.vocab_size >= args.vocab_size else " (no pair repeats any more)"
    run.table(
        f"1. BPE training on {n_bytes:,} bytes of {args.text}",
        ["vocabulary", "seconds"],
        [[f"{tokenizer.vocab_size:,} ids{stopped}", cell(train_seconds, 2)]],
    )

    # 2. encoding against tiktoken
    sample = text[: args.sample_kb * 1000]
    sample_mb = len(sample.encode("utf-8")) / 1e6
    fast = tokenizer.to_tiktoken()
    assert fast.encode(sample, allowed_special="all") == tokenizer.encode(sample, "all")

    def fresh(tok: BPETokenizer) -> Callable[[], BPETokenizer]:  # same merges, empty cache
        return lambda: BPETokenizer(tok.merges, tok.pattern, tok.special_tokens, tok.byte_ids)

    def encode(tok) -> list[int]:
        return tok.encode(sample, allowed_special="all")

    steps = {  # name -> (setup, not timed; the timed step), and the row the ratio divides by
        "trained, pure Python, empty cache": (fresh(tokenizer), encode),
        "trained, pure Python, warm cache": (lambda: tokenizer, encode),
        "trained, tiktoken (to_tiktoken)": (lambda: fast, encode),
    }
    reference = dict.fromkeys(steps, "trained, tiktoken (to_tiktoken)")
    cl100k = None
    try:  # the same comparison with a production vocabulary
        import tiktoken

        cl100k = tiktoken.get_encoding("cl100k_base")
    except Exception as error:  # offline without TIKTOKEN_CACHE_DIR
        run.notes.append(f"cl100k_base rows skipped: {error}")
        print(f"(cl100k_base rows skipped: {error})")
    if cl100k is not None:
        rebuilt = BPETokenizer.from_tiktoken(cl100k)
        assert encode(rebuilt) == encode(cl100k)
        for name, setup in [
            ("cl100k_base rebuilt, pure Python, empty cache", fresh(rebuilt)),
            ("cl100k_base, tiktoken", lambda: cl100k),
        ]:
            steps[name], reference[name] = (setup, encode), "cl100k_base, tiktoken"
    times = rounds_with_setup(run, steps, repeats, key="encode")
    rows = []
    for name, seconds in times.items():
        median = spread(seconds)["median"]
        ratio = cell(per_round(seconds, times[reference[name]]), 1, "x")
        rows.append([name, f"{1000 * median:.0f}", f"{sample_mb / median:.2f}", ratio])
    run.table(
        f"2. encode {sample_mb * 1e3:,.0f} kB of {args.text} (encode only)",
        ["encoder", "ms", "MB/s", "x tiktoken, same vocabulary"],
        rows,
    )

    # 3. building a 100k-merge tokenizer
    if cl100k is not None:
        ranks, specials = cl100k._mergeable_ranks, cl100k._special_tokens
        build = run.rounds(
            {
                "ours": lambda: BPETokenizer(
                    rebuilt.merges, rebuilt.pattern, rebuilt.special_tokens, rebuilt.byte_ids
                ),
                "tiktoken": lambda: tiktoken.Encoding(
                    "cl100k_copy",
                    pat_str=cl100k._pat_str,
                    mergeable_ranks=ranks,
                    special_tokens=specials,
                ),
                "from_tiktoken": lambda: BPETokenizer.from_tiktoken(cl100k),
            },
            repeats,
            key="build",
        )
        rows = [
            ["BPETokenizer(merges, ...)", "ours", 3, 1],
            ["tiktoken.Encoding(ranks, ...)", "tiktoken", 3, 1],
            ["BPETokenizer.from_tiktoken (recovers the merges too)", "from_tiktoken", 2, 0],
        ]
        run.table(
            "3. build cl100k_base (100,000 merges) from tables in memory",
            ["what", "seconds", "x tiktoken.Encoding"],
            [
                [what, cell(build[k], d), cell(per_round(build[k], build["tiktoken"]), r, "x")]
                for what, k, d, r in rows
            ],
        )

    # 4. streaming against the whole text
    whole = (text * (1 + int(stream_mb * 1e6) // max(n_bytes, 1)))[: int(stream_mb * 1e6)]
    lines = whole.splitlines(keepends=True)
    assert list(tokenizer.encode_iterable(lines, "all")) == tokenizer.encode(whole, "all")
    stream = run.rounds(
        {
            "encode": lambda: tokenizer.encode(whole, allowed_special="all"),
            "encode_iterable": lambda: list(tokenizer.encode_iterable(lines, "all")),
        },
        repeats,
        key="stream",
    )
    run.table(
        f"4. {len(whole.encode('utf-8')) / 1e6:.1f} MB of {args.text} ({len(lines):,} lines), "
        "warm cache: streamed by lines against the whole text",
        ["encoder", "seconds", "x encode"],
        [
            ["encode(text)", cell(stream["encode"], 3), "1.00x"],
            [
                "encode_iterable(lines)",
                cell(stream["encode_iterable"], 3),
                cell(per_round(stream["encode_iterable"], stream["encode"]), 2, "x"),
            ],
        ],
    )
    run.save()


if __name__ == "__main__":
    main()
