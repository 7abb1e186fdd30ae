"""The ``llmbook`` command line (hand-written; it drives chapter 08's trainer, 09's sampler).

    llmbook train --model stories-small --corpus stories --out runs/stories
    llmbook generate "Once upon a time" --temperature 0.8 --seed 1
    llmbook eval --model stories --out eval_stories
    llmbook classroom student OUT_DIR

One module per subcommand: ``train.py``, ``generate.py``, ``classroom.py``, ``eval.py``; what
they share (the run folder, the model and tokenizer a run names, ``CliError``) is in
``common.py``. Each module has one ``add_<name>(subparsers)`` function that defines the
subcommand's options and sets ``func`` to the function that runs it (returning the exit
status); ``COMMANDS`` lists them, so a new subcommand is one more module and one more entry.
Building the parser imports no torch (each command imports what it needs when it runs), so
``llmbook --help`` is quick; ``tests/test_cli.py`` checks it.

A mistake is one line on stderr, never a traceback: a ``CliError`` or a library check's
``TypeError``/``ValueError`` (exit status 2), a file that cannot be read or written (1).
"""

from __future__ import annotations

import argparse
import sys

from llmbook.cli.classroom import add_classroom
from llmbook.cli.common import CliError
from llmbook.cli.eval import add_eval
from llmbook.cli.generate import add_generate
from llmbook.cli.train import add_train

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = [add_train, add_classroom, add_generate, add_eval]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmbook", description="Train (and use) the models of the llmbook textbook."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``llmbook`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except CliError as error:
        parser.exit(2, f"llmbook {args.command}: error: {error}\n")
    except (TypeError, ValueError) as error:  # a bad option value caught by the library's checks
        parser.exit(2, f"llmbook {args.command}: error: {error}\n")
    except OSError as error:  # a file or folder that cannot be read or written: its name, why
        parser.exit(1, f"llmbook {args.command}: error: {error}\n")
    except FloatingPointError as error:
        parser.exit(1, f"llmbook {args.command}: {error}\n")
