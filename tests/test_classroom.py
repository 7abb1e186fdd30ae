"""Tests of the classroom edition (llmbook/classroom/): the markers, the student copy, ``check``
and ``grade``. Checks run pytest in subprocesses, so only chapters 04 and 06 are checked here."""

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmbook import classroom
from llmbook.classroom import ERROR, FAILED, NOT_WRITTEN, PASSED, TASKS, TIMED_OUT, notebooks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import export  # noqa: E402  (tools/export.py)

MARKED = sorted({t.chapter for t in TASKS})


def book_notebook(chapter: str) -> Path:
    return next((ROOT / "chapters").glob(f"{chapter}_*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def sources(notebook: dict) -> list[str]:
    return [notebooks.cell_source(c) for c in notebook["cells"] if c["cell_type"] == "code"]


def edited(chapter: str, changes: dict[str, str], path: Path) -> Path:
    """A copy of the book's notebook with exported lines changed (a student's mistake)."""
    notebook = load(book_notebook(chapter))
    for old, new in changes.items():
        hits = 0
        for cell in notebook["cells"]:
            text = notebooks.cell_source(cell)
            if text.startswith("#| export") and old in text:
                cell["source"], hits = text.replace(old, new), hits + 1
        assert hits == 1, old
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("classroom") / "student"
    classroom.write_student_copy(ROOT, out)
    return out


# ---------------------------------------------------------------------------- the markers


@pytest.mark.parametrize("chapter", MARKED)
def test_export_ignores_the_markers(chapter):
    """classroom's exporter writes what tools/export.py writes, which is the package's module."""
    path = book_notebook(chapter)
    module, text = export.exported_module(path)
    assert "BEGIN SOLUTION" in path.read_text(encoding="utf-8")
    assert text == (ROOT / "llmbook" / f"{module}.py").read_text(encoding="utf-8")
    assert notebooks.export_notebook(load(path), f"chapters/{path.name}") == text
    assert "SOLUTION" not in text and "# TASK:" not in text


@pytest.mark.parametrize("chapter", MARKED)
def test_tasks_table_matches_the_marked_regions(chapter):
    """TASKS lists each chapter's regions in order, and each test pattern names real tests."""
    notebook = student = classroom.student_notebook(load(book_notebook(chapter)), chapter)
    found = re.findall(
        r'raise NotImplementedError\("task (\d\d\.\d+) \((\S+)\): ', "\n".join(sources(student))
    )
    assert found == [(t.id, t.name) for t in TASKS if t.chapter == chapter]
    module = notebooks.default_exp(notebook["cells"])
    test_file = ROOT / "tests" / f"test_{module}.py"
    for task in (t for t in TASKS if t.chapter == chapter):
        for pattern in task.tests:
            assert classroom.checker.test_ids(
                test_file, classroom.Task(chapter, task.name, (pattern,))
            ), f"{task.label}: no test in {test_file.name} matches {pattern!r}"


BAD_MARKERS = [
    pytest.param(
        ["### BEGIN SOLUTION", "x = 1", "### END SOLUTION"], "must be followed", id="no-task"
    ),
    pytest.param(["### END SOLUTION"], "outside a task", id="end-alone"),
    pytest.param(["### BEGIN SOLUTION", "# TASK: a", "x = 1"], "without", id="no-end"),
    pytest.param(
        ["### BEGIN SOLUTION", "# TASK: a", "### BEGIN SOLUTION", "# TASK: b", "### END SOLUTION"],
        "inside a task",
        id="nested",
    ),
    pytest.param(["### BEGIN SOLUTION"], "must be followed|without", id="begin-last-line"),
]


@pytest.mark.parametrize("lines, message", BAD_MARKERS)
def test_bad_markers_are_refused_by_both_exporters(lines, message):
    with pytest.raises(ValueError, match=message):
        notebooks.regions(lines, "cell")
    with pytest.raises(SystemExit, match=message):
        export.without_markers(lines, Path("chapter.ipynb"))


def test_region_outside_a_listed_function_is_refused():
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "source": "#| export\ndef helper():\n    ### BEGIN SOLUTION\n    # TASK: x\n"
                "    return 1\n    ### END SOLUTION\n",
            }
        ]
    }
    with pytest.raises(ValueError, match="'helper' that TASKS does not list"):
        classroom.student_notebook(notebook, "04")


# ---------------------------------------------------------------------------- student


def test_student_copy_holds_no_solution_line(student_copy):
    """No line of a region that the book does not also show elsewhere reaches the copy."""
    book_text = {c: sources(load(book_notebook(c))) for c in MARKED}
    solution, shown = set(), set()
    for cells in book_text.values():
        for text in cells:
            lines = text.splitlines()
            inside = set()
            for begin, end, _ in notebooks.regions(lines, "cell"):
                inside |= set(range(begin, end + 1))
            for index, line in enumerate(lines):
                (solution if index in inside else shown).add(line.strip())
    markers = {notebooks.BEGIN, notebooks.END}
    secret = {line for line in solution - shown - markers if len(line) > 3}
    assert len(secret) >= 20
    for path in student_copy.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".py", ".md", ".cfg"):
            text = path.read_text(encoding="utf-8")
            lines = {line.strip() for line in text.splitlines()}
            if path.suffix == ".ipynb":
                lines = {ln.strip() for src in sources(json.loads(text)) for ln in src.splitlines()}
            assert not secret & lines, f"{path}: {sorted(secret & lines)[:3]}"
            assert path.suffix != ".ipynb" or "BEGIN SOLUTION" not in text


def test_student_copy_keeps_everything_else(student_copy):
    assert not (student_copy / "chapters" / "solutions").exists()
    assert not list((student_copy / "chapters").glob("[0-9][0-9]_*.py")), (
        "jupytext twins hold solutions"
    )
    assert (student_copy / "README.md").is_file() and (
        student_copy / "tests" / "conftest.py"
    ).is_file()
    for chapter in MARKED:
        book, copy = (
            load(book_notebook(chapter)),
            load(student_copy / "chapters" / book_notebook(chapter).name),
        )
        assert len(copy["cells"]) == len(book["cells"])
        for ours, theirs in zip(copy["cells"], book["cells"]):
            assert ours["cell_type"] == theirs["cell_type"]
            if ours["cell_type"] == "markdown":
                assert ours["source"] == theirs["source"]
            else:
                assert ours["outputs"] == [] and ours["execution_count"] is None
        stubs = sum(text.count('raise NotImplementedError("task ') for text in sources(copy))
        assert stubs == sum(t.chapter == chapter for t in TASKS)


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(
            lambda tmp: (tmp / "empty", tmp / "out"), "no chapters/ folder", id="no-chapters"
        ),
        pytest.param(
            lambda tmp: (ROOT, ROOT / "chapters" / "x"), "lies inside the book", id="inside"
        ),
        pytest.param(lambda tmp: (ROOT, tmp), "is not empty", id="not-empty"),
    ],
)
def test_student_copy_errors(tmp_path, make, message):
    (tmp_path / "empty").mkdir()
    book, out = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        classroom.write_student_copy(book, out)


def test_student_notebook_runs_until_the_first_task(student_copy):
    nbclient = pytest.importorskip("nbclient")
    path = student_copy / "chapters" / book_notebook("06").name
    notebook = pytest.importorskip("nbformat").read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError) as error:
        client.execute()
    assert error.value.ename == "NotImplementedError"
    assert error.value.evalue.startswith("task 06.1 (FeedForward.forward): up_proj")


# ---------------------------------------------------------------------------- check


def test_check_untouched_student_copy_reports_not_written(student_copy):
    for chapter in MARKED:
        results = classroom.check(chapter, student_copy)
        assert [r.status for r in results] == [NOT_WRITTEN] * sum(
            t.chapter == chapter for t in TASKS
        )
    command = [
        sys.executable,
        "-m",
        "llmbook.cli",
        "classroom",
        "check",
        "04",
        "--book",
        str(student_copy),
    ]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines() == [
        "04.1 causal_mask                         not written yet",
        "04.2 scaled_dot_product_attention        not written yet",
        "04.3 CausalSelfAttention.forward         not written yet",
        "3 tasks: 0 passed, 0 failed, 3 not written yet",
    ]


def test_check_the_book_passes_every_task():
    results = classroom.check("06", ROOT)
    assert [r.status for r in results] == [PASSED] * 4, [r.line() for r in results]


MISTAKES = [
    pytest.param(
        "04",
        {"scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale": "scale = 1.0"},
        "04.2",
        id="attention-without-scale",  # CausalSelfAttention, which calls it, still passes
    ),
    pytest.param(
        "02",
        {
            "chunk = self.ids[s : s + self.context_length + 1]": (
                "chunk = self.ids[s : s + self.context_length + 2]"
            ),
            "return chunk[:-1], chunk[1:]": "return chunk[:-2], chunk[2:]",
        },
        "02.1",
        id="window-shifted-by-two",
    ),
]


@pytest.mark.parametrize("chapter, changes, wrong", MISTAKES)
def test_a_wrong_implementation_fails_only_its_own_task(tmp_path, chapter, changes, wrong):
    path = edited(chapter, changes, tmp_path / book_notebook(chapter).name)
    results = {r.task.id: r for r in classroom.check(chapter, ROOT, path)}
    expected = {t.id: FAILED if t.id == wrong else PASSED for t in TASKS if t.chapter == chapter}
    assert {k: r.status for k, r in results.items()} == expected, [
        r.line() for r in results.values()
    ]
    assert results[wrong].detail and "\n" not in results[wrong].detail


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param("not json", "cannot read the exported code", id="not-json"),
        pytest.param(
            '{"cells": [{"cell_type": "code", "source": "#| export\\ndef f(:"}]}',
            "cannot read the exported code",
            id="syntax-error",
        ),
        pytest.param('{"cells": []}', "missing from the exported cells", id="no-code"),
    ],
)
def test_a_broken_notebook_costs_only_its_check(tmp_path, content, message):
    path = tmp_path / "04_attention.ipynb"
    path.write_text(content, encoding="utf-8")
    results = classroom.check("04", ROOT, path)
    assert len(results) == 3 and all(r.status in (ERROR, FAILED) for r in results)
    assert all(message in r.detail for r in results)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"chapter": "42"}, "chapter '42' not found", id="unknown-chapter"),
        pytest.param({"chapter": "no-tasks"}, "has no tasks", id="no-tasks"),
        pytest.param(
            {"chapter": "04", "tasks": ["04.9"]}, "not tasks of chapter 04", id="unknown-task"
        ),
        pytest.param({"chapter": "04", "book": "/nonexistent"}, "has no chapters", id="no-book"),
    ],
)
def test_check_errors(kwargs, message):
    if kwargs["chapter"] == "no-tasks":
        free = [p.name[:2] for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")]
        free = [c for c in free if c not in MARKED]
        if not free:
            pytest.skip("every chapter has tasks")
        kwargs = {"chapter": free[0]}
    with pytest.raises(ValueError, match=message):
        classroom.check(**{"book": ROOT, **kwargs})


# ---------------------------------------------------------------------------- grade


def test_grade_three_submissions(tmp_path, student_copy):
    """Correct, untouched and an infinite (printing) loop: the loop costs only its own task."""
    folder = tmp_path / "submissions"
    for name in ("ada", "bob", "cy"):
        (folder / name).mkdir(parents=True)
    name = book_notebook("04").name
    (folder / "ada" / name).write_bytes(book_notebook("04").read_bytes())
    (folder / "bob" / name).write_bytes((student_copy / "chapters" / name).read_bytes())
    loop = "while True:\n        print('x' * 1000)"
    edited(
        "04",
        {"allowed = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)": loop},
        folder / "cy" / name,
    )
    start = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "llmbook.cli",
        "classroom",
        "grade",
        str(folder),
        "--book",
        str(ROOT),
        "--timeout",
        "90",
        "--out",
        str(tmp_path / "grades.csv"),
    ]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert time.monotonic() - start < 400
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [
        "student",
        "04.1 causal_mask",
        "04.2 scaled_dot_product_attention",
        "04.3 CausalSelfAttention.forward",
        "passed",
    ]
    assert rows == [
        header,
        ["ada", PASSED, PASSED, PASSED, "3"],
        ["bob", NOT_WRITTEN, NOT_WRITTEN, NOT_WRITTEN, "0"],
        ["cy", TIMED_OUT, PASSED, PASSED, "2"],
    ]


def test_grade_errors(tmp_path):
    with pytest.raises(ValueError, match="holds no <student>/ folders"):
        classroom.grade(tmp_path, ROOT)
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="no notebook of a chapter with tasks"):
        classroom.grade(tmp_path, ROOT)
