"""``llmbook eval``: a model's report card on test stories (hand-written; chapter 10's evaluation).

    llmbook eval --model stories --out eval_stories

Writes ``OUT/eval.json`` (``llmbook.evaluation.evaluate_model``'s report, with the command that
made it) and ``OUT/eval.png`` (its figure, ``plot_report``), and prints the card in a few lines.
The numbers are the same on every run on one machine (fixed seeds); torch, matplotlib and the
model are imported when the command runs, so ``llmbook --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from llmbook.cli.common import CliError, write_text
from llmbook.cli.generate import load_for_generation, resolve_device

__all__ = ["REPORT_FILE", "FIGURE_FILE", "add_eval", "run_eval"]

REPORT_FILE, FIGURE_FILE = "eval.json", "eval.png"


def add_eval(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="a model's report card: test loss against the floor, its stories judged",
        description="Score a model on test stories nobody trains or chooses on (the "
        "generator's seed 2025): its loss against the floor (strided, and story by story "
        "against the generator's exact log-probability), and the stories it samples as the "
        "story checker judges them beside as many test stories: contradictions, grammatical "
        f"sentences, distinct n-grams, length. Writes OUT/{REPORT_FILE} and OUT/{FIGURE_FILE}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        default="stories",
        help="'stories' (the book's model), a Hugging Face folder (config.json + "
        "model.safetensors) or the --out folder of an llmbook train run",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="'stories' or a tiktoken encoding name (e.g. gpt2); default: the model's own",
    )
    p.add_argument("--out", type=Path, required=True, help="the folder to write the report into")
    p.add_argument(
        "--test-chars",
        default="500K",
        help="how much test text to score, in characters: 500K, 100K, 2M, 50000",
    )
    p.add_argument("--samples", type=int, default=200, help="how many stories to sample and judge")
    p.add_argument("--seed", type=int, default=0, help="the seed of the samples' draws")
    p.add_argument(
        "--temperature", type=float, default=1.0, help="of the samples (1: the model's own)"
    )
    p.add_argument("--stride", type=int, default=64, help="of the strided test loss (chapter 8)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    p.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps"
    )
    p.set_defaults(func=run_eval)


def check_options(args: argparse.Namespace) -> int:
    """Check the options that need no model; return ``--test-chars`` in characters."""
    from llmbook.stories import parse_size

    for option, value in [("--samples", args.samples), ("--stride", args.stride),
                          ("--batch-size", args.batch_size)]:  # fmt: skip
        if value < 1:
            raise CliError(f"{option} must be at least 1, got {value}")
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    if not args.temperature > 0 or args.temperature == float("inf"):
        raise CliError(
            f"--temperature must be a number > 0 (1: the model's own), got {args.temperature}"
        )
    if args.out.exists() and not args.out.is_dir():
        raise CliError(
            f"--out {str(args.out)!r} is a file; give a folder (it is created if missing)"
        )
    return parse_size(args.test_chars, "--test-chars")


def run_eval(args: argparse.Namespace) -> int:
    test_chars = check_options(args)
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    from llmbook.evaluation import evaluate_model, plot_report, report_lines
    from llmbook.io.files import atomic_write

    device = resolve_device(args.device)
    model, tokenizer, _ = load_for_generation(args.model, args.tokenizer)
    model = model.to(device).eval()
    if args.stride > model.config.context_length:
        raise CliError(
            f"--stride must be at most the model's context_length, "
            f"{model.config.context_length}, got {args.stride}"
        )
    start = time.perf_counter()
    report = evaluate_model(
        model, tokenizer, test_chars=test_chars, n_samples=args.samples, sample_seed=args.seed,
        temperature=args.temperature, stride=args.stride, batch_size=args.batch_size,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    report = {"command": shlex.join(["llmbook", *args.argv]), "model_name": args.model,
              "tokenizer": args.tokenizer, **report}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / REPORT_FILE, json.dumps(report, indent=1) + "\n")
    fig = plot_report(report, f"llmbook eval --model {args.model}")
    with atomic_write(args.out / FIGURE_FILE, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    print("\n".join(report_lines(report)))
    print(f"wrote {args.out / REPORT_FILE} and {args.out / FIGURE_FILE} "
          f"in {time.perf_counter() - start:.0f} s", file=sys.stderr)  # fmt: skip
    return 0
