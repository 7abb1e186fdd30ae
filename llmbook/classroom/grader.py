"""Grading a folder of submissions into a CSV (hand-written; chapters 01-09's exercises).

``grade(FOLDER)`` checks every ``FOLDER/<student>/<NN_topic>.ipynb`` with
:func:`llmbook.classroom.checker.check` and writes one row per student, one column per task.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from llmbook.classroom.checker import PASSED, check
from llmbook.classroom.notebooks import chapter_of
from llmbook.classroom.tasks import TASKS
from llmbook.io.files import atomic_write

__all__ = ["grade"]


def grade(
    folder: str | Path,
    book: str | Path = ".",
    out: str | Path | None = None,
    timeout: float = 300.0,
) -> list[dict]:
    """Check every ``FOLDER/<student>/<NN_topic>.ipynb``; write a CSV of student x task.

    Each cell is a status (passed, failed, not written yet, timed out, error, missing); the
    ``passed`` column counts passed tasks. Returns the rows (dicts). ``out`` default:
    ``FOLDER/grades.csv``."""
    folder = Path(folder)
    students = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not students:
        raise ValueError(f"FOLDER {str(folder)!r} holds no <student>/ folders to grade")
    submitted = {
        s.name: {chapter_of(p): p for p in sorted(s.glob("[0-9][0-9]_*.ipynb"))} for s in students
    }
    chapters = sorted({c for subs in submitted.values() for c in subs} & {t.chapter for t in TASKS})
    if not chapters:
        raise ValueError(f"FOLDER {str(folder)!r} holds no notebook of a chapter with tasks")
    columns = [t.label for t in TASKS if t.chapter in chapters]
    rows = []
    for name, subs in submitted.items():
        row = {"student": name} | dict.fromkeys(columns, "missing")
        for chapter in chapters:
            if chapter not in subs:
                continue
            start = time.monotonic()
            results = check(chapter, book, subs[chapter], timeout)
            for result in results:
                row[result.task.label] = result.status
                print(f"{name} {result.line()}", flush=True)
            print(
                f"{name}: chapter {chapter} checked in {time.monotonic() - start:.1f} s", flush=True
            )
        row["passed"] = sum(row[c] == PASSED for c in columns)
        rows.append(row)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["student", *columns, "passed"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out = folder / "grades.csv" if out is None else Path(out)
    with atomic_write(out, "w", encoding="utf-8", newline="") as f:
        f.write(text.getvalue())
    return rows
