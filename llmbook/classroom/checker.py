"""Checking a student's tasks of one chapter (hand-written; chapters 01-09's exercises).

``check`` returns a ``Result`` per task: passed, failed, not written yet, timed out or error.

For each task, a copy of the installed package gets that chapter's module with the student's
version of the task and the book's version of every other task, and the task's tests run in a
``pytest`` subprocess with a time limit, no network (sockets refused) and capped output files.
The plugin ``report.py`` says, for each failing test, where it failed and what came against
what was expected; a failed task's ``detail`` is one line (how many of its tests failed, then
its most telling failure: the task's patterns list those tests first), ``full`` the whole
report of each failure.
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
import time
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


def plural(n: int, word: str) -> str:
    """``"1 test"``, ``"3 tests"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class Result:
    """The outcome of one task: ``status`` is one of passed, failed, not written yet, timed
    out, error; ``detail`` is one line (which tests failed, where, and by how much); ``hint``
    the task's TASK line (for a task not written yet); ``full`` pytest's whole report of each
    failing test (``llmbook classroom check --verbose``)."""

    task: Task
    status: str
    detail: str = ""
    hint: str = ""
    full: str = ""

    def line(self) -> str:
        if self.status == PASSED:
            return f"{self.task.label:<40} {self.status} ({self.detail})"
        if self.status == NOT_WRITTEN and self.hint:
            return f"{self.task.label:<40} {self.status} (TASK: {self.hint})"
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


def test_ids(tests: Path, module: str, task: Task) -> list[str]:
    """Node ids (``file::name`` or ``file::Class::name``) of the test functions of a task.

    A pattern ``name*`` looks in ``tests/test_<module>.py``; ``test_hf.py::name*`` in that file."""
    chosen = []
    for pattern in task.tests:
        file, _, pattern = pattern.rpartition("::")
        path = tests / (file or f"test_{module}.py")
        if not path.is_file():
            continue
        chosen += [
            f"{path.name}::{name}"
            for name in test_names(path)
            if fnmatch.fnmatch(name.split("::")[-1], pattern)
        ]
    return list(dict.fromkeys(chosen))


def test_names(path: Path) -> list[str]:
    """The test functions of a test file: ``name`` or ``Class::name``."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)]
    return names


def stub_hint(node: ast.AST, task: Task) -> str | None:
    """The TASK line of the stub the function still raises before it could return, or None
    when the task has been written."""
    for statement in node.body:
        if isinstance(statement, ast.Raise) and isinstance(statement.exc, ast.Call):
            args = statement.exc.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                match = STUB_RE.match(args[0].value)
                if match and match.group(1) == task.id:
                    return args[0].value.partition("): ")[2].strip()
        if any(isinstance(n, (ast.Return, ast.Yield)) for n in ast.walk(statement)):
            return None
    return None


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
    deadline: float | None = None,
) -> list[Result]:
    """Check the tasks of ``chapter`` in ``notebook`` (default: the book's own notebook).

    ``book`` holds chapters/ and tests/ (the tests that are run); the book's version of each
    task comes from the installed ``llmbook`` package. ``timeout``: seconds per pytest run.
    ``tasks``: ids or names to check (default: all of the chapter's). ``deadline``: a
    ``time.monotonic()`` after which no test runs (a grader's time budget per student): a run
    is cut short at the deadline, and tasks not run by then are "timed out"."""
    import llmbook

    timeout = check_positive(timeout, "timeout")
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
    tests = book / "tests"
    if not (tests / f"test_{module}.py").is_file():
        raise ValueError(
            f"{str(tests / f'test_{module}.py')!r} not found: the book's tests/ are needed to check"
        )
    package = Path(llmbook.__file__).parent
    reference = (package / f"{module}.py").read_text(encoding="utf-8")
    notebook = book_nb if notebook is None else Path(notebook)
    if not notebook.is_file():
        return [Result(t, ERROR, f"notebook {str(notebook)!r} not found") for t in chosen]
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
        elif (hint := stub_hint(node, task)) is not None:
            results[task] = Result(task, NOT_WRITTEN, hint=hint)
        elif ast.dump(node) == ast.dump(theirs[task.name]):
            same.append(task)
        else:
            runs.append([task])
    if same:  # first: the book's code is quick to pass, and a hang later cannot starve it
        runs.insert(0, same)
    others = [t.name for t in TASKS if t.chapter == number and t.name in mine and t.name in theirs]
    with tempfile.TemporaryDirectory(prefix="llmbook-check-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(tests, tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (tmp / "site").mkdir()
        (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        shutil.copyfile(Path(__file__).with_name("report.py"), tmp / "site" / f"{PLUGIN}.py")
        for index, group in enumerate(runs):
            left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
            if left <= 0:
                why = "not run: the student's time budget had run out"
                results.update({t: Result(t, TIMED_OUT, why) for t in group})
                continue
            own = [t.name for t in group]
            text = swapped(student, reference, [n for n in others if n not in own])
            run_dir = tmp / f"run{index}"
            shutil.copytree(
                package, run_dir / "llmbook", ignore=shutil.ignore_patterns("__pycache__")
            )
            (run_dir / "llmbook" / f"{module}.py").write_text(text, encoding="utf-8")
            ids = {t: test_ids(tmp / "tests", module, t) for t in group}
            found = run_tests(tmp, run_dir, module, ids, left)
            if left < timeout:  # cut short by the deadline, not by the timeout
                for r in found.values():
                    if r.status == TIMED_OUT:
                        r.detail = f"its tests ran over the {left:.0f} s left of the time budget"
            results.update(found)
    return [results[t] for t in chosen]


def check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


PLUGIN = "llmbook_check_report"


def run_tests(tmp: Path, run_dir: Path, module: str, ids: dict[Task, list[str]], timeout: float):
    """Run the tests of some tasks in one pytest subprocess; a Result per task."""
    report = run_dir / "report.jsonl"
    nodes = sorted({f"tests/{n}" for names in ids.values() for n in names})
    command = [sys.executable, "-m", "pytest", *nodes, "-q", "-s", "-p", "no:cacheprovider"]
    command += ["-p", "no:nbval", "-p", PLUGIN, "-c", str(tmp / "pytest.ini")]
    command += ["--rootdir", str(tmp), "-W", "ignore"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(run_dir), str(tmp / "site")]),
        PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TMPDIR=str(run_dir),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        LLMBOOK_CHECK_REPORT=str(report),
        LLMBOOK_CHECK_TESTS=str(tmp / "tests"),
        LLMBOOK_CHECK_MODULE=str(run_dir / "llmbook" / f"{module}.py"),
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
    if not report.exists():
        tail = stderr_path.read_bytes()[-2000:].decode(errors="replace").strip().splitlines()
        why = tail[-1] if tail else f"pytest exited with status {process.returncode}"
        return {t: Result(t, ERROR, one_line(f"the check crashed: {why}")) for t in ids}
    return read_report(report, ids)


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


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_report(path: Path, ids: dict[Task, list[str]]) -> dict:
    """A Result per task from the plugin's report (``llmbook/classroom/report.py``)."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    broken = {r["collect_error"]: r for r in records if "collect_error" in r}
    outcomes: dict[str, dict[str, dict]] = {}  # test function -> {node id with params: record}
    for record in (r for r in records if "nodeid" in r):
        function = record["nodeid"].split("[")[0]
        tests = outcomes.setdefault(function, {})
        previous = tests.get(record["nodeid"])
        if previous is None or previous["outcome"] != "failed":  # a failure is kept
            tests[record["nodeid"]] = record
    results = {}
    for task, nodes in ids.items():
        files = {f"tests/{n.split('::')[0]}" for n in nodes}
        if broken.keys() & files:
            record = broken[sorted(broken.keys() & files)[0]]
            file = Path(record["collect_error"]).name
            detail = one_line(f"{file} does not import: {record['message']}")
            results[task] = Result(task, ERROR, detail, full=record.get("longrepr", ""))
            continue
        seen = [r for n in nodes for r in outcomes.get(f"tests/{n}", {}).values()]
        failures = [r for r in seen if r["outcome"] == "failed"]
        order = [f"tests/{n}" for n in nodes]  # the task's most telling tests first
        failures.sort(key=lambda r: order.index(r["nodeid"].split("[")[0]))
        passed = sum(r["outcome"] == "passed" for r in seen)
        skipped = len(seen) - passed - len(failures)
        if any(f"NotImplementedError: task {task.id} " in r.get("message", "") for r in failures):
            stub = next(r for r in failures if f"task {task.id} " in r.get("message", ""))
            hint = stub["message"].partition("): ")[2].strip()
            results[task] = Result(task, NOT_WRITTEN, hint=hint)
        elif failures:
            count = f"{len(failures)} of {plural(len(seen), 'test')} failed"
            full = "\n\n".join(f"{r['nodeid']}\n{r.get('longrepr', '')}" for r in failures)
            detail = one_line(f"{count}; {describe(failures[0])}")
            results[task] = Result(task, FAILED, detail, full=full)
        elif passed:
            extra = f", {skipped} skipped" if skipped else ""
            results[task] = Result(task, PASSED, plural(passed, "test") + extra)
        else:
            results[task] = Result(
                task,
                ERROR,
                "none of its tests ran"
                + (f" ({plural(skipped, 'test')} skipped)" if skipped else ""),
            )
    return results


UNINFORMATIVE = ("assert False", "assert not True")


def describe(record: dict) -> str:
    """One failing test in one line: its name and line, the statement, what came and what was
    expected (pytest's detail, or the plugin's description of two unequal tensors), and for a
    property test the input that fails."""
    name = record["nodeid"].split("::")[-1]
    head = f"{name} ({record['where']})" if record.get("where") else name
    if record.get("failures", 1) > 1:
        head += f", the first of {record['failures']} distinct failures"
    lines = [ln.strip() for ln in record.get("message", "").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("Use -v")]
    statement = one_line(record.get("statement") or "", 160)
    example = [one_line(record["example"], 160)] if record.get("example") else []
    if not lines or not lines[0].startswith("AssertionError"):
        where = f"in {record['code']}" if record.get("code") else statement and f"at `{statement}`"
        return f"{head}: " + "; ".join([*lines[:1], *([where] if where else []), *example])
    first = lines[0].removeprefix("AssertionError").lstrip(": ")
    lines = ([first] if first else []) + lines[1:]
    mismatch = record.get("mismatch")
    if mismatch:  # the tensors pytest shows truncated, described instead
        lines = [ln for ln in lines if not ln.startswith(("+", *UNINFORMATIVE))] + [mismatch]
    else:
        lines = [ln for ln in lines if ln not in UNINFORMATIVE]
        if len(lines) > 1 and lines[0].startswith("assert ") and "..." in lines[0]:
            lines = lines[1:]  # two truncated reprs: the lines after say where they differ
        wheres = [ln for ln in lines if ln.startswith("+")][:2]  # pytest's "+  where x = f(...)"
        lines = [ln for ln in lines if not ln.startswith("+")] + [one_line(w, 120) for w in wheres]
    return f"{head}: " + "; ".join(([f"`{statement}`"] if statement else []) + lines + example)
