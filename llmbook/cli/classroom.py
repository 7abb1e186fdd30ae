"""``llmbook classroom student | check | grade`` (hand-written; the exercises of chapters 01-09).

The work is done in :mod:`llmbook.classroom`; this module reads the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbook.classroom import FAILED, NOT_WRITTEN, PASSED, TASKS, check, grade, write_student_copy

__all__ = ["add_classroom"]


def add_classroom(subparsers) -> None:
    p = subparsers.add_parser(
        "classroom",
        help="student copies, checks and grading of the book's exercises",
        description="Teach with the book: write a student copy with the marked code taken out, "
        "check a student's chapter against its tests, grade a folder of submissions.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = sub.add_parser("student", help="write a student copy of the book")
    s.add_argument("out_dir", type=Path, help="new folder for the student copy")
    s.add_argument("--book", type=Path, default=Path("."), help="the book (with chapters/)")
    s.set_defaults(func=run_student)
    c = sub.add_parser("check", help="check your tasks of one chapter (run in your copy)")
    c.add_argument("chapter", help="chapter number (04) or name (04_attention, attention)")
    c.add_argument("--book", type=Path, default=Path("."), help="your copy (chapters/, tests/)")
    c.add_argument(
        "--notebook",
        type=Path,
        default=None,
        help="notebook to check (default: the chapter's notebook in --book)",
    )
    c.add_argument("--task", action="append", default=None, help="only this task (id or name)")
    c.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    c.set_defaults(func=run_check)
    g = sub.add_parser("grade", help="grade FOLDER/<student>/<NN_topic>.ipynb into a CSV")
    g.add_argument("folder", type=Path, help="one sub-folder per student")
    g.add_argument("--book", type=Path, default=Path("."), help="the book whose tests/ grade")
    g.add_argument("--out", type=Path, default=None, help="CSV to write (FOLDER/grades.csv)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    g.set_defaults(func=run_grade)


def run_student(args: argparse.Namespace) -> int:
    written = write_student_copy(args.book, args.out_dir)
    n_tasks = len(
        {(t.chapter, t.name) for t in TASKS if any(p.name[:2] == t.chapter for p in written)}
    )
    print(f"wrote a student copy of {len(written)} notebooks ({n_tasks} tasks) to {args.out_dir}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    results = check(args.chapter, args.book, args.notebook, args.timeout, args.task)
    for result in results:
        print(result.line(), flush=True)
    counts = {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, NOT_WRITTEN)}
    print(f"{len(results)} tasks: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0 if counts[PASSED] == len(results) else 1


def run_grade(args: argparse.Namespace) -> int:
    rows = grade(args.folder, args.book, args.out, args.timeout)
    print(f"graded {len(rows)} students -> {args.out or Path(args.folder) / 'grades.csv'}")
    return 0
