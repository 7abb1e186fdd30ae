"""Grading a folder of submissions into a CSV (hand-written; chapters 01-09's exercises).

``grade(FOLDER)`` checks every ``FOLDER/<student>/<NN_topic>.ipynb`` with
:func:`llmbook.classroom.checker.check` and writes one row per student: for each task its
status and, in the column beside it, the reason (the failing test, where and by how much; the
time limit that ran out; the notebook that is missing), then the number of tasks passed.
Students are checked ``jobs`` at a time, each within its own time ``budget``, so a submission
that hangs costs only its own budget.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llmbook.classroom.checker import PASSED, Result, check, check_positive, plural
from llmbook.classroom.notebooks import chapter_of
from llmbook.classroom.tasks import TASKS
from llmbook.io.files import atomic_write

__all__ = ["MISSING", "grade"]

MISSING = "missing"
REASON = " (reason)"  # a task's reason column: "04.1 causal_mask (reason)"


def grade(
    folder: str | Path,
    book: str | Path = ".",
    out: str | Path | None = None,
    timeout: float = 300.0,
    jobs: int = 1,
    budget: float | None = None,
) -> list[dict]:
    """Check every ``FOLDER/<student>/<NN_topic>.ipynb``; write a CSV of student x task.

    Columns: ``student``; for each task ``<id> <name>`` (passed, failed, not written yet, timed
    out, error, missing) and ``<id> <name> (reason)`` (empty when passed); ``passed``, the
    number of tasks passed. ``out`` default: ``FOLDER/grades.csv``. ``timeout``: seconds per
    test run; ``jobs``: students checked at the same time; ``budget``: seconds all of one
    student's checks may take together (default: no limit but ``timeout`` per run). Returns the
    rows (dicts)."""
    folder = Path(folder)
    timeout = check_positive(timeout, "timeout")
    if budget is not None:
        budget = check_positive(budget, "budget")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1 (students checked at once), got {jobs!r}")
    students = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not students:
        raise ValueError(f"FOLDER {str(folder)!r} holds no <student>/ folders to grade")
    submitted = {
        s.name: {chapter_of(p): p for p in sorted(s.glob("[0-9][0-9]_*.ipynb"))} for s in students
    }
    chapters = sorted({c for subs in submitted.values() for c in subs} & {t.chapter for t in TASKS})
    if not chapters:
        raise ValueError(f"FOLDER {str(folder)!r} holds no notebook of a chapter with tasks")
    tasks = [t for t in TASKS if t.chapter in chapters]
    lock = threading.Lock()

    def grade_one(name: str) -> dict:
        row = {"student": name}
        start = time.monotonic()
        deadline = None if budget is None else start + budget
        for chapter in chapters:
            if chapter not in submitted[name]:
                why = f"no {chapter}_*.ipynb in {name}/"
                for task in (t for t in tasks if t.chapter == chapter):
                    row[task.label], row[task.label + REASON] = MISSING, why
                continue
            begun = time.monotonic()
            results = check(chapter, book, submitted[name][chapter], timeout, deadline=deadline)
            record(row, results)
            with lock:  # one student's lines together, whatever the others are doing
                for result in results:
                    print(f"{name} {result.line()}", flush=True)
                took = time.monotonic() - begun
                print(f"{name}: chapter {chapter} checked in {took:.1f} s", flush=True)
        row["passed"] = sum(row[t.label] == PASSED for t in tasks)
        return row

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(grade_one, submitted))
    columns = ["student"] + [c for t in tasks for c in (t.label, t.label + REASON)] + ["passed"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out = folder / "grades.csv" if out is None else Path(out)
    with atomic_write(out, "w", encoding="utf-8", newline="") as f:
        f.write(text.getvalue())
    print(f"graded {plural(len(rows), 'student')} -> {out}", flush=True)
    return rows


def record(row: dict, results: list[Result]) -> None:
    for result in results:
        reason = result.detail if result.status != PASSED else ""
        row[result.task.label], row[result.task.label + REASON] = result.status, reason
