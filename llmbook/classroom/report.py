"""The pytest plugin of the classroom checker (hand-written; chapters 01-09's exercises).

``llmbook.classroom.checker`` copies this file into each test run (it imports nothing from
``llmbook``, so a student's module that does not import cannot break it) and loads it with
``-p llmbook_check_report``. For every test it writes one JSON line to the file named by
``LLMBOOK_CHECK_REPORT``: the outcome and, for a failure, what a student can act on:

- ``message``: the exception with pytest's assertion detail (``At index 3 diff: 5 != 6``,
  ``Obtained: 0.5 / Expected: 0.55 ± 5.5e-07``, ``Greatest absolute difference: ...``);
- ``where`` and ``statement``: the line of the test that failed and its source;
- ``code``: the last line of the student's module on the way (``LLMBOOK_CHECK_MODULE``);
- ``mismatch``: for ``assert torch.equal(a, b)`` and ``assert torch.allclose(a, b)`` (or
  ``not``), which pytest can only show as two truncated tensors: how many elements differ, the
  first differing index with both values, and the largest difference against the tolerance;
- ``longrepr``: pytest's whole report of the failure (``llmbook classroom check --verbose``).

Collection errors (a test file, or the student's module, that does not import) are written as
``{"collect_error": file, "message": ...}``.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import sys
import traceback
from pathlib import Path

import pytest

_comparisons: dict[tuple[str, int], tuple] = {}  # (file, line) of a call -> (name, args, kwargs)
_statements: dict[str, list[ast.stmt]] = {}


def _values(t, index):
    value = t[index].item() if t.dim() else t.item()
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _describe(name: str, a, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan=False) -> str:
    """Why ``torch.<name>(a, b)`` is False, in one line."""
    import torch

    a, b = torch.as_tensor(a).detach().cpu(), torch.as_tensor(b).detach().cpu()
    if name == "allclose":
        a, b = torch.broadcast_tensors(a, b) if a.shape != b.shape else (a, b)
    if a.shape != b.shape:
        return f"torch.{name}: shapes differ, {tuple(a.shape)} and {tuple(b.shape)}"
    kind = torch.complex128 if (a.is_complex() or b.is_complex()) else torch.float64
    x, y = a.to(kind), b.to(kind)
    diff = (x - y).abs()
    if name == "equal":
        bad = (x != y) | (x.isnan() | y.isnan())
    else:
        bad = diff > atol + rtol * y.abs()
        both_nan = x.isnan() & y.isnan()
        bad = (bad | x.isnan() | y.isnan()) & ~(both_nan if equal_nan else torch.zeros_like(bad))
        bad |= x.isinf() & y.isinf() & (x != y)
    if not bad.any():
        if name == "equal" and a.dtype != b.dtype:
            return f"torch.equal: same values but different dtypes, {a.dtype} and {b.dtype}"
        largest = f" (largest difference {float(diff.max()):.3g})" if diff.numel() else ""
        agree = "are equal" if name == "equal" else "agree within the tolerance"
        return f"torch.{name}: all {diff.numel()} elements {agree}{largest}"
    first = tuple(int(i) for i in bad.nonzero()[0]) if a.dim() else ()
    where = f"at index {first}" if first else "the value"
    finite = diff[bad & diff.isfinite()]
    largest = f"; largest difference {float(finite.max()):.3g}" if finite.numel() else ""
    allowed = f" (allowed: {atol:g} + {rtol:g} x |second|)" if name == "allclose" else ""
    return (
        f"torch.{name}: {int(bad.sum())} of {bad.numel()} elements differ, first {where}: "
        f"{_values(a, first)} and {_values(b, first)}{largest}{allowed}"
    )


def _wrap(torch, name: str) -> None:
    original = getattr(torch, name)

    @functools.wraps(original)
    def compare(*args, **kwargs):
        if not torch.compiler.is_compiling():
            caller = sys._getframe(1)
            key = (caller.f_code.co_filename, caller.f_lineno)
            _comparisons.pop(key, None)  # the latest call goes last
            _comparisons[key] = (name, args, kwargs)
        return original(*args, **kwargs)

    setattr(torch, name, compare)


def pytest_configure(config) -> None:
    try:
        import torch
    except ImportError:  # nothing to describe
        return

    for name in ("equal", "allclose"):
        _wrap(torch, name)


def _statement(path: str, line: int) -> ast.stmt | None:
    """The innermost statement of ``path`` around 1-based ``line``."""
    if path not in _statements:
        try:
            tree = ast.parse(Path(path).read_text(encoding="utf-8"))
            _statements[path] = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        except (OSError, SyntaxError, ValueError):
            _statements[path] = []
    around = [s for s in _statements[path] if s.lineno <= line <= (s.end_lineno or s.lineno)]
    return min(around, key=lambda s: (s.end_lineno or s.lineno) - s.lineno, default=None)


def _first_leaf(error: BaseException) -> tuple[BaseException, int]:
    """The first exception of an exception group (Hypothesis reports several failures as one
    group), and how many the group holds (1 for a plain exception)."""
    count = 1
    while isinstance(getattr(error, "exceptions", None), (list, tuple)) and error.exceptions:
        count = max(count, len(error.exceptions))
        error = error.exceptions[0]
    return error, count


def _failure(item, call) -> dict:
    tests = Path(os.environ.get("LLMBOOK_CHECK_TESTS", item.config.rootpath)).resolve()
    module = os.environ.get("LLMBOOK_CHECK_MODULE", "")
    error, count = _first_leaf(call.excinfo.value)
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    examples = ("Falsifying example", "Failing test case")  # Hypothesis: the input that fails
    notes = [n for n in getattr(error, "__notes__", []) if str(n).startswith(examples)]
    found: dict = {"message": message, "failures": count}
    if notes:
        lines = (line.split("  #")[0].split(" # ")[0] for line in str(notes[0]).splitlines())
        found["example"] = " ".join(" ".join(lines).split())  # without Hypothesis's comments
    frames = traceback.extract_tb(error.__traceback__)
    in_tests = [f for f in frames if Path(f.filename).resolve().is_relative_to(tests)]
    if in_tests:
        path, line = in_tests[-1].filename, in_tests[-1].lineno
        found["where"] = f"{Path(path).name}:{line}"
        statement = _statement(path, line)
        if statement is not None:
            found["statement"] = ast.get_source_segment(
                Path(path).read_text(encoding="utf-8"), statement
            )
            end = statement.end_lineno or statement.lineno
            close = [
                call
                for (file, at), call in _comparisons.items()
                if file == path and statement.lineno <= at <= end
            ]
            if close:
                name, args, kwargs = close[-1]
                try:
                    found["mismatch"] = _describe(name, *args, **kwargs)
                except Exception:  # a comparison we cannot describe: say nothing about it
                    pass
    mine = [f for f in frames if module and f.filename == module]
    if mine:
        found["code"] = f"{mine[-1].name}: {(mine[-1].line or '?').strip()}"
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "setup":
        _comparisons.clear()
    if not (report.failed or call.when == "call" or (call.when == "setup" and report.skipped)):
        return
    record = {"nodeid": item.nodeid, "outcome": report.outcome, "when": call.when}
    if report.failed and call.excinfo is not None:
        try:
            record |= _failure(item, call)
        except Exception as error:  # never lose the outcome to a reporting problem
            record["message"] = f"{call.excinfo.exconly()} (report: {error!r})"
        record["longrepr"] = str(report.longrepr)
    _write(record)


def pytest_collectreport(report) -> None:
    if report.failed:
        text = str(report.longrepr)
        errors = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
        message = (errors or [ln for ln in text.splitlines() if ln.strip()] or ["?"])[-1]
        _write({"collect_error": report.nodeid, "message": message, "longrepr": text})


def _write(record: dict) -> None:
    path = os.environ.get("LLMBOOK_CHECK_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
