"""``llmbook classroom student | check | grade`` (hand-written; the exercises of chapters 01-09).

The work is done in :mod:`llmbook.classroom`; this module reads the command line and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbook.classroom import (
    ERROR,
    FAILED,
    NOT_WRITTEN,
    PASSED,
    TASKS,
    TIMED_OUT,
    check,
    grade,
    write_student_copy,
)
from llmbook.classroom.checker import plural

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
    s.add_argument(
        "--install",
        default=None,
        metavar="REQUIREMENT",
        help="what the copy's README tells students to pip install to get the book's package, "
        "e.g. a wheel you hand out or 'llmbook[dev] @ git+https://...' (default: the "
        "installed llmbook's name and version with the dev extra)",
    )
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
    c.add_argument(
        "-v", "--verbose", action="store_true", help="print pytest's whole report of each failure"
    )
    c.set_defaults(func=run_check)
    g = sub.add_parser("grade", help="grade FOLDER/<student>/<NN_topic>.ipynb into a CSV")
    g.add_argument("folder", type=Path, help="one sub-folder per student")
    g.add_argument("--book", type=Path, default=Path("."), help="the book whose tests/ grade")
    g.add_argument("--out", type=Path, default=None, help="CSV to write (FOLDER/grades.csv)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    g.add_argument(
        "-j", "--jobs", type=int, default=1, help="students checked at the same time (default 1)"
    )
    g.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds all of one student's checks may take together; what is not checked by "
        "then is 'timed out' (default: no limit but --timeout per test run)",
    )
    g.set_defaults(func=run_grade)


def run_student(args: argparse.Namespace) -> int:
    written = write_student_copy(args.book, args.out_dir, install=args.install)
    n_tasks = len(
        {(t.chapter, t.name) for t in TASKS if any(p.name[:2] == t.chapter for p in written)}
    )
    print(
        f"wrote a student copy of {plural(len(written), 'notebook')} "
        f"({plural(n_tasks, 'task')}) to {args.out_dir}"
    )
    return 0


COUNTED = {
    PASSED: "passed",
    FAILED: "failed",
    NOT_WRITTEN: "not written yet",
    TIMED_OUT: "timed out",
    ERROR: "not checked (error)",
}


def run_check(args: argparse.Namespace) -> int:
    results = check(args.chapter, args.book, args.notebook, args.timeout, args.task)
    shared = {r.detail for r in results}
    if len(results) > 1 and all(r.status == ERROR for r in results) and len(shared) == 1:
        # the notebook itself is missing or unreadable: say it once, not once per task
        print(f"error: {shared.pop()} ({plural(len(results), 'task')} not checked)", flush=True)
    else:
        for result in results:
            print(result.line(), flush=True)
            if args.verbose and result.full:
                print(result.full.rstrip() + "\n", flush=True)
    counts = [(sum(r.status == s for r in results), words) for s, words in COUNTED.items()]
    shown = [f"{n} {words}" for n, words in counts if n or words in ("passed", "failed")]
    print(f"{plural(len(results), 'task')}: " + ", ".join(shown))
    if not args.verbose and any(r.full for r in results):
        print("(--verbose prints the whole report of each failing test)")
    return 0 if all(r.status == PASSED for r in results) else 1


def run_grade(args: argparse.Namespace) -> int:
    grade(args.folder, args.book, args.out, args.timeout, args.jobs, args.budget)
    return 0
