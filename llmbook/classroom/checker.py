"""Checking a student's tasks of one chapter (hand-written; chapters 01-09's exercises).

``check`` returns a ``Result`` per task: passed, failed, not written yet, timed out or error.

For each task, a copy of the installed package gets that chapter's module with the student's
version of the task and the book's version of every other task, and the task's tests run in a
``pytest`` subprocess with a time limit, no network (sockets refused) and capped output files.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from llmbook.classroom.notebooks import (
    STUB_RE,
    chapter_of,
    default_exp,
    definitions,
    export_notebook,
)
from llmbook.classroom.tasks import TASKS, Task

__all__ = ["ERROR", "FAILED", "NOT_WRITTEN", "PASSED", "TIMED_OUT", "Result", "check"]

PASSED, FAILED, NOT_WRITTEN, TIMED_OUT, ERROR = (
    "passed",
    "failed",
    "not written yet",
    "timed out",
    "error",
)


@dataclass
class Result:
    """The outcome of one task: ``status`` is one of passed, failed, not written yet, timed
    out, error; ``detail`` is one line (the failing test and its message, say)."""

    task: Task
    status: str
    detail: str = ""

    def line(self) -> str:
        if self.status == PASSED:
            return f"{self.task.label:<40} {self.status} ({self.detail})"
        return f"{self.task.label:<40} {self.status}" + (f": {self.detail}" if self.detail else "")


OUTPUT_LIMIT = 64 * 2**20  # bytes a checked submission may write to any one file


SITECUSTOMIZE = '''\
"""No network while a submission is checked (written by llmbook.classroom.checker)."""
import socket


def _refuse(*args, **kwargs):
    raise OSError("network access is switched off while llmbook classroom checks a submission")


socket.socket.connect = socket.socket.connect_ex = _refuse
socket.create_connection = socket.getaddrinfo = _refuse
'''


def book_notebook(book: Path, chapter: str) -> Path:
    """The book's notebook of ``chapter`` ("4", "04", "04_attention" or a module name)."""
    notebooks = sorted(Path(book, "chapters").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ValueError(f"book {str(book)!r} has no chapters/NN_topic.ipynb; pass --book")
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if chapter.zfill(2) == path.name[:2] or chapter in (path.stem, default_exp(cells)):
            return path
    names = ", ".join(sorted({t.chapter for t in TASKS}))
    raise ValueError(
        f"chapter {chapter!r} not found in {str(book)!r}; chapters with tasks: {names}"
    )


def test_ids(test_file: Path, task: Task) -> list[str]:
    """Node ids (``file::name`` or ``file::Class::name``) of the test functions of a task."""
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)]
    chosen = [n for n in names if any(fnmatch.fnmatch(n.split("::")[-1], p) for p in task.tests)]
    return [f"{test_file.name}::{n}" for n in chosen]


def is_stub(node: ast.AST, task: Task) -> bool:
    """True when the function still raises its stub before it could return."""
    for statement in node.body:
        if isinstance(statement, ast.Raise) and isinstance(statement.exc, ast.Call):
            args = statement.exc.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                match = STUB_RE.match(args[0].value)
                if match and match.group(1) == task.id:
                    return True
        if any(isinstance(n, (ast.Return, ast.Yield)) for n in ast.walk(statement)):
            return False
    return False


def swapped(student: str, reference: str, names: list[str]) -> str:
    """The student's module with the functions ``names`` taken from the reference module."""
    lines = student.splitlines(keepends=True)
    mine, theirs = definitions(ast.parse(student)), definitions(ast.parse(reference))
    ref_lines = reference.splitlines(keepends=True)
    edits = []
    for name in names:
        node, ref = mine[name], theirs[name]
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        ref_start = min([ref.lineno] + [d.lineno for d in ref.decorator_list]) - 1
        text = textwrap.dedent("".join(ref_lines[ref_start : ref.end_lineno]))
        edits.append((start, node.end_lineno, textwrap.indent(text, " " * node.col_offset)))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines)


def check(
    chapter: str,
    book: str | Path = ".",
    notebook: str | Path | None = None,
    timeout: float = 300.0,
    tasks: list[str] | None = None,
) -> list[Result]:
    """Check the tasks of ``chapter`` in ``notebook`` (default: the book's own notebook).

    ``book`` holds chapters/ and tests/ (the tests that are run); the book's version of each
    task comes from the installed ``llmbook`` package. ``timeout``: seconds per pytest run.
    ``tasks``: ids or names to check (default: all of the chapter's)."""
    import llmbook

    book = Path(book)
    book_nb = book_notebook(book, str(chapter))
    number, module = (
        chapter_of(book_nb),
        default_exp(json.loads(book_nb.read_text(encoding="utf-8"))["cells"]),
    )
    chosen = [t for t in TASKS if t.chapter == number]
    if not chosen:
        raise ValueError(
            f"chapter {number} has no tasks yet; chapters with tasks: "
            + ", ".join(sorted({t.chapter for t in TASKS}))
        )
    if tasks:
        unknown = set(tasks) - {t.id for t in chosen} - {t.name for t in chosen}
        if unknown:
            raise ValueError(
                f"tasks {sorted(unknown)} are not tasks of chapter {number}; "
                f"its tasks: {', '.join(t.label for t in chosen)}"
            )
        chosen = [t for t in chosen if t.id in tasks or t.name in tasks]
    test_file = book / "tests" / f"test_{module}.py"
    if not test_file.is_file():
        raise ValueError(f"{str(test_file)!r} not found: the book's tests/ are needed to check")
    package = Path(llmbook.__file__).parent
    reference = (package / f"{module}.py").read_text(encoding="utf-8")
    notebook = book_nb if notebook is None else Path(notebook)
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        student = export_notebook(nb, f"chapters/{book_nb.name}")
        mine, theirs = definitions(ast.parse(student)), definitions(ast.parse(reference))
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, RecursionError) as error:
        detail = one_line(f"cannot read the exported code of {notebook}: {error!r}")
        return [Result(t, ERROR, detail) for t in chosen]

    results: dict[Task, Result] = {}
    runs: list[list[Task]] = []
    same: list[Task] = []
    for task in chosen:
        node = mine.get(task.name)
        if task.name not in theirs:
            results[task] = Result(task, ERROR, f"the installed llmbook has no {task.name}")
        elif node is None:
            results[task] = Result(task, FAILED, f"{task.name} is missing from the exported cells")
        elif is_stub(node, task):
            results[task] = Result(task, NOT_WRITTEN)
        elif ast.dump(node) == ast.dump(theirs[task.name]):
            same.append(task)
        else:
            runs.append([task])
    if same:
        runs.append(same)
    others = [t.name for t in TASKS if t.chapter == number and t.name in mine and t.name in theirs]
    with tempfile.TemporaryDirectory(prefix="llmbook-check-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(book / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (tmp / "site").mkdir()
        (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        for index, group in enumerate(runs):
            own = [t.name for t in group]
            text = swapped(student, reference, [n for n in others if n not in own])
            run_dir = tmp / f"run{index}"
            shutil.copytree(
                package, run_dir / "llmbook", ignore=shutil.ignore_patterns("__pycache__")
            )
            (run_dir / "llmbook" / f"{module}.py").write_text(text, encoding="utf-8")
            ids = {t: test_ids(tmp / "tests" / test_file.name, t) for t in group}
            results.update(run_tests(tmp, run_dir, ids, timeout))
    return [results[t] for t in chosen]


def run_tests(tmp: Path, run_dir: Path, ids: dict[Task, list[str]], timeout: float) -> dict:
    """Run the tests of some tasks in one pytest subprocess; a Result per task."""
    xml = run_dir / "junit.xml"
    nodes = sorted({f"tests/{n}" for names in ids.values() for n in names})
    command = [sys.executable, "-m", "pytest", *nodes, "-q", "-s", "-p", "no:cacheprovider"]
    command += ["-p", "no:nbval", "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp)]
    command += ["--junitxml", str(xml), "-o", "junit_logging=no", "-W", "ignore"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(run_dir), str(tmp / "site")]),
        PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TMPDIR=str(run_dir),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    limits = {}
    if os.name == "posix":
        limits = {"start_new_session": True, "preexec_fn": limit_output}
    stderr_path = run_dir / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            **limits,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            return {t: Result(t, TIMED_OUT, f"its tests ran over {timeout:g} s") for t in ids}
    if not xml.exists():
        tail = stderr_path.read_bytes()[-2000:].decode(errors="replace").strip().splitlines()
        why = tail[-1] if tail else f"pytest exited with status {process.returncode}"
        return {t: Result(t, ERROR, one_line(f"the check crashed: {why}")) for t in ids}
    return read_junit(xml, ids)


def limit_output() -> None:  # runs in the child before pytest starts (POSIX)
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


def stop(process: subprocess.Popen) -> None:
    """Kill a timed-out check and everything it started (its own process group on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.wait()


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_junit(xml: Path, ids: dict[Task, list[str]]) -> dict:
    """A Result per task from pytest's JUnit XML report."""
    cases = ET.parse(xml).getroot().iter("testcase")
    outcomes: dict[str, list[tuple[str, str]]] = {}  # test function -> [(kind, message)]
    broken = None
    for case in cases:
        name = case.get("name", "").split("[")[0]
        problems = [(c.tag, c.get("message", "")) for c in case if c.tag in ("failure", "error")]
        if not case.get("classname"):  # a collection error: the module did not import
            lines = [ln.strip() for ln in (case.findtext("error") or "").splitlines()]
            errors = [ln[1:] for ln in lines if ln.startswith("E ")] or [ln for ln in lines if ln]
            broken = one_line("the module does not import: " + (errors or ["?"])[-1].strip())
            continue
        kind = "skipped" if case.find("skipped") is not None else "passed"
        for tag, message in problems:
            kind = tag
            outcomes.setdefault(name, []).append((kind, f"{case.get('name')}: {message}"))
        if not problems:
            outcomes.setdefault(name, []).append((kind, ""))
    results = {}
    for task, nodes in ids.items():
        seen = [o for n in nodes for o in outcomes.get(n.split("::")[-1], [])]
        failures = [m for kind, m in seen if kind in ("failure", "error")]
        passed = sum(kind == "passed" for kind, _ in seen)
        if broken is not None:
            results[task] = Result(task, ERROR, broken)
        elif any(f"NotImplementedError: task {task.id} " in m for m in failures):
            results[task] = Result(task, NOT_WRITTEN)
        elif failures:
            more = f" (and {len(failures) - 1} more failing)" if len(failures) > 1 else ""
            results[task] = Result(task, FAILED, one_line(failures[0].splitlines()[0]) + more)
        elif passed:
            results[task] = Result(task, PASSED, f"{passed} tests")
        else:
            results[task] = Result(task, ERROR, "none of its tests ran")
    return results
