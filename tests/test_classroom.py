"""Tests of the classroom edition (llmbook/classroom/): the markers, the student copy, ``check``
(with bugs planted in copies of the book's notebooks: each must fail its own task, and the
message must say what is wrong) and ``grade``. Checks run pytest in subprocesses."""

import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch

from llmbook import classroom
from llmbook.classroom import (
    ERROR,
    FAILED,
    NOT_WRITTEN,
    PASSED,
    TASKS,
    TIMED_OUT,
    notebooks,
    report,
)
from llmbook.classroom.checker import describe
from llmbook.classroom.student import TEACHER_TESTS

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
    for task in (t for t in TASKS if t.chapter == chapter):
        for pattern in task.tests:
            single = classroom.Task(chapter, task.name, (pattern,))
            assert classroom.checker.test_ids(ROOT / "tests", module, single), (
                f"{task.label}: no test matches {pattern!r} (in tests/test_{module}.py unless "
                "the pattern names its file)"
            )
        assert len(classroom.checker.test_ids(ROOT / "tests", module, task)) >= 2, (
            f"{task.label}: one test only"
        )


# Loaded by the pytest run below (-p): keeps the tests named in LLMBOOK_TESTS, runs no other.
SELECT_PLUGIN = """\
import os


def pytest_collection_modifyitems(config, items):
    chosen = set(os.environ["LLMBOOK_TESTS"].split())
    keep = [i for i in items if i.nodeid.partition("[")[0].removeprefix("tests/") in chosen]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
"""


@pytest.mark.slow
@pytest.mark.parametrize("task", [pytest.param(t, id=t.label) for t in TASKS])
def test_each_test_pattern_of_a_task_fails_without_the_task(task, tmp_path):
    """With the task's region left as the student copy has it (its stub) and every other task
    written, each of its patterns has a failing test: a pattern whose tests all pass cannot tell
    an answer from none (a greedy test for the sampler, checks that run before the region)."""
    import llmbook

    path = book_notebook(task.chapter)
    module = notebooks.default_exp(load(path)["cells"])
    stubbed = notebooks.export_notebook(
        classroom.student_notebook(load(path), task.chapter), f"chapters/{path.name}"
    )
    package = Path(llmbook.__file__).parent
    reference = (package / f"{module}.py").read_text(encoding="utf-8")
    others = [t.name for t in TASKS if t.chapter == task.chapter and t != task]
    shutil.copytree(package, tmp_path / "llmbook", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "llmbook" / f"{module}.py").write_text(
        classroom.checker.swapped(stubbed, reference, others), encoding="utf-8"
    )
    (tmp_path / "llmbook_select.py").write_text(SELECT_PLUGIN, encoding="utf-8")
    ids = {
        pattern: classroom.checker.test_ids(
            ROOT / "tests", module, classroom.Task(task.chapter, task.name, (pattern,))
        )
        for pattern in task.tests
    }
    chosen = {i for found in ids.values() for i in found}
    report = tmp_path / "report.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    command += ["-p", "llmbook_select", "--continue-on-collection-errors", f"--junitxml={report}"]
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not the book's options
    command += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(ROOT)]
    command += sorted({str(ROOT / "tests" / i.partition("::")[0]) for i in chosen})  # see plugin
    env = {**os.environ, "LLMBOOK_TESTS": " ".join(chosen)}
    # Run in tmp_path, which `python -m` puts first on sys.path: its llmbook is the stubbed one.
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    failed = set()
    for case in ElementTree.parse(report).iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is None:
            continue
        where = case.get("classname").split(".")  # tests.test_x[.Class]; "" if x did not import
        if where == [""]:  # its top calls the task (a tokenizer trained there): all its tests fail
            assert f"NotImplementedError: task {task.id} " in problem.text, problem.text[-3000:]
            file = case.get("name").rpartition(".")[2] + ".py"
            failed |= {i for i in chosen if i.startswith(f"{file}::")}
        else:
            _, file, *classes = where
            failed.add("::".join([f"{file}.py", *classes, case.get("name").partition("[")[0]]))
    dead = [p for p, found in ids.items() if not failed & set(found)]
    assert not dead, f"{task.label}: every test of {dead} passes without {task.name} written"


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
    assert not list((student_copy / "chapters").glob("*.py")), "twins hold solutions"
    kept = {p.name for p in (ROOT / "tests").iterdir() if p.is_file()} - TEACHER_TESTS
    copied = {p.name for p in (student_copy / "tests").iterdir() if p.is_file()}
    assert copied == kept | {"test_your_tasks.py"}
    for name in kept:
        assert (student_copy / "tests" / name).read_bytes() == (ROOT / "tests" / name).read_bytes()
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


def test_student_copy_readme_stands_on_its_own(student_copy):
    """The copy's own README: install what it has, work, check; nothing about solutions."""
    readme = (student_copy / "README.md").read_text(encoding="utf-8")
    assert readme != (ROOT / "README.md").read_text(encoding="utf-8")
    assert "solution" not in readme.lower() and "pyproject" not in readme
    assert 'pip install "llmbook[dev]' in readme and "pip install -e" not in readme
    assert "llmbook classroom check 04" in readme and "python -m pytest" in readme
    assert f"{len(TASKS)} tasks over chapters 01 to 09" in " ".join(readme.split())
    out = student_copy.parent / "other"
    classroom.write_student_copy(ROOT, out, install="llmbook-0.1.0-py3-none-any.whl[dev]")
    assert 'pip install "llmbook-0.1.0-py3-none-any.whl[dev]"' in (out / "README.md").read_text()


@pytest.mark.slow
def test_student_copy_suite_fails_only_the_tasks(student_copy):
    """`python -m pytest` in an untouched copy: every file collects, the tests that read files
    of the teacher's book are skipped with a reason, and only the task tests fail."""

    def run(*args):
        command = [sys.executable, "-m", "pytest", *args, "-q", "-rfs", "-p", "no:randomly"]
        return subprocess.run(
            command, cwd=student_copy, capture_output=True, text=True, timeout=900
        )

    collected = run("--collect-only")
    assert collected.returncode == 0, collected.stdout[-3000:]
    assert "error" not in collected.stdout.lower().split("collected")[-1]
    # The tests that read files beside them (ROOT, __file__) or name a file of the book: run.
    chosen = ["tests/test_your_tasks.py"]
    for path in sorted((student_copy / "tests").glob("test_*.py")):
        if path.name == "test_your_tasks.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                text = ast.get_source_segment(path.read_text(encoding="utf-8"), node)
                if re.search(r"ROOT|__file__|\"(pyproject\.toml|tools|chapters)\b", text):
                    chosen.append(f"tests/{path.name}::{node.name}")
    assert len(chosen) >= 3, chosen
    shown = run(*chosen)
    failed = re.findall(r"^FAILED (\S+)", shown.stdout, re.M)
    assert sorted(failed) == sorted(
        f"tests/test_your_tasks.py::test_task[{t.id}-{t.name}]" for t in TASKS
    ), shown.stdout[-3000:]
    assert "not written yet (TASK: " in shown.stdout
    skipped = re.findall(r"^SKIPPED .*", shown.stdout, re.M)
    assert skipped and all("of the teacher's book" in line for line in skipped), skipped


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
    lines = shown.stdout.splitlines()
    assert lines[-1] == "3 tasks: 0 passed, 0 failed, 3 not written yet"
    for line, name in zip(lines, ["causal_mask", "scaled_dot_product_attention", "CausalSel"]):
        assert re.match(rf"04\.\d {name}\S* +not written yet \(TASK: \S.{{10,}}\)$", line), line
    book = "\n".join(sources(load(book_notebook("04"))))
    hint = re.search(r"# TASK: (.*)", book).group(1).strip()
    assert lines[0].endswith(f"(TASK: {hint})")


def test_check_the_book_passes_every_task():
    results = classroom.check("06", ROOT)
    assert [r.status for r in results] == [PASSED] * 4, [r.line() for r in results]


# Realistic bugs, each planted in a copy of the book's notebook: (chapter, {old: new}, the task
# that must fail and no other, what its message must say). A regular expression.
MISTAKES = [
    pytest.param(
        "01",
        {
            "specials = sorted(specials, key=len, reverse=True)  # longest first, so no prefix wins": (
                "specials = list(specials)"
            )
        },
        "01.4",
        r"test_split_specials_keeps_the_longest_special_whole.*At index 1 diff: "
        r"'<\|im\|>' != '<\|im\|>!'",
        id="specials-not-longest-first",
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
        r"`assert torch\.equal\(y, .*torch\.equal: \d+ of \d+ elements differ, first at index "
        r"\(\d+,\): \d+ and \d+.*Failing test case",
        id="window-shifted-by-two",
    ),
    pytest.param(
        "02",
        {
            "starts = torch.randint(0, len(ids) - T, (B,), generator=generator)  # (B,)": (
                "starts = torch.randint(0, len(ids) - T - 1, (B,), generator=generator)"
            )
        },
        "02.2",
        r"test_random_batch_\w+ \(test_\w+\.py:\d+\): .*(Extra items|counts|\[0, 1\])",
        id="random-batch-never-the-last-window",
    ),
    pytest.param(
        "04",
        {"scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale": "scale = 1.0"},
        "04.2",
        r"of \d+ tests failed; test_\w+.*(Greatest absolute difference|elements differ)",
        id="attention-without-scale",  # CausalSelfAttention, which calls it, still passes
    ),
    pytest.param(
        "07",
        {"        return self.norm(x)\n": "        return x\n"},
        "07.1",
        r"test_decoder_output_is_the_final_norm_of_the_last_block\[llama\] "
        r"\(test_tasks_model\.py:\d+\).*Greatest absolute difference",
        id="decoder-without-final-norm",
    ),
    pytest.param(
        "08",
        {
            "m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)  # bias correction": (
                "m_hat, v_hat = m, v"
            )
        },
        "08.2",
        r"AdamW drifted from torch\.optim\.AdamW; torch\.allclose: \d+ of \d+ elements differ, "
        r"first at index \(0, 0\): \S+ and \S+; largest difference \S+ \(allowed: 1e-06",
        id="adamw-without-bias-correction",
    ),
    pytest.param(
        "08",
        {"return lr * (step + 1) / warmup_steps": "return lr * step / warmup_steps"},
        "08.3",
        r"Obtained: 0\.0; Expected: 0\.1",
        id="warm-up-starting-at-zero",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("chapter, changes, wrong, message", MISTAKES)
def test_a_planted_bug_fails_only_its_own_task_and_says_what_is_wrong(
    tmp_path, chapter, changes, wrong, message
):
    path = edited(chapter, changes, tmp_path / book_notebook(chapter).name)
    results = {r.task.id: r for r in classroom.check(chapter, ROOT, path)}
    expected = {t.id: FAILED if t.id == wrong else PASSED for t in TASKS if t.chapter == chapter}
    assert {k: r.status for k, r in results.items()} == expected, [
        r.line() for r in results.values()
    ]
    detail = results[wrong].detail
    assert "\n" not in detail and re.search(message, detail), detail
    assert "assert False" not in detail
    assert re.search(r"^\d+ of \d+ tests? failed; ", detail), detail
    assert "E   " in results[wrong].full and "def test_" in results[wrong].full


def test_random_batch_is_checked_by_its_behaviour_not_its_random_stream(tmp_path):
    """Another correct way to draw the starts (another stream of numbers) passes 02.2."""
    changes = {
        "starts = torch.randint(0, len(ids) - T, (B,), generator=generator)  # (B,)": (
            "starts = (torch.rand(B, generator=generator) * (len(ids) - T)).long()"
        )
    }
    path = edited("02", changes, tmp_path / book_notebook("02").name)
    results = classroom.check("02", ROOT, path, tasks=["02.2"])
    assert [r.status for r in results] == [PASSED], [r.line() for r in results]


# ---------------------------------------------------------------------------- messages

COMPARISONS = [
    pytest.param(
        "equal",
        (torch.arange(6.0), torch.arange(6.0).index_fill(0, torch.tensor([4]), 9.0)),
        {},
        "torch.equal: 1 of 6 elements differ, first at index (4,): 4 and 9; largest difference 5",
        id="equal",
    ),
    pytest.param(
        "allclose",
        (torch.zeros(2, 3), torch.tensor([[0.0, 0, 0], [0, 2e-3, 0]])),
        {"atol": 1e-3},
        "torch.allclose: 1 of 6 elements differ, first at index (1, 1): 0 and 0.002; "
        "largest difference 0.002 (allowed: 0.001 + 1e-05 x |second|)",
        id="allclose",
    ),
    pytest.param(
        "equal",
        (torch.zeros(2, 3), torch.zeros(3, 2)),
        {},
        "torch.equal: shapes differ, (2, 3) and (3, 2)",
        id="shapes",
    ),
    pytest.param(
        "equal",
        (torch.zeros(3), torch.zeros(3)),
        {},
        "torch.equal: all 3 elements are equal (largest difference 0)",
        id="equal-for-not",
    ),
]


@pytest.mark.parametrize("name, args, kwargs, expected", COMPARISONS)
def test_unequal_tensors_are_described(name, args, kwargs, expected):
    assert report._describe(name, *args, **kwargs) == expected


def test_a_failure_is_described_in_one_line():
    record = {
        "nodeid": "tests/test_x.py::test_lists[a]",
        "where": "test_x.py:7",
        "statement": "assert got == want",
        "message": "AssertionError: assert [0, 1, 2, ...] == [0, 1, 2, ...]\n  \n"
        "  At index 57 diff: 57 != 3\n  Use -v to get more diff",
    }
    assert describe(record) == (
        "test_lists[a] (test_x.py:7): `assert got == want`; At index 57 diff: 57 != 3"
    )
    record = {
        "nodeid": "tests/test_x.py::test_index",
        "where": "test_x.py:9",
        "message": "IndexError: index 5 is out of bounds",
        "code": "merge_pair: out.append(ids[i + 1])",
    }
    assert describe(record) == (
        "test_index (test_x.py:9): IndexError: index 5 is out of bounds; "
        "in merge_pair: out.append(ids[i + 1])"
    )


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


def cli(*args, timeout=600):
    command = [sys.executable, "-m", "llmbook.cli", "classroom", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_check_a_missing_notebook_is_reported_once_and_counted(tmp_path):
    shown = cli("check", "04", "--book", ROOT, "--notebook", tmp_path / "nothere.ipynb")
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines() == [
        f"error: notebook {str(tmp_path / 'nothere.ipynb')!r} not found (3 tasks not checked)",
        "3 tasks: 0 passed, 0 failed, 3 not checked (error)",
    ]


@pytest.mark.slow
def test_check_counts_in_the_singular_and_verbose_prints_the_whole_failure(tmp_path):
    shown = cli("check", "06", "--book", ROOT, "--task", "06.2")
    assert shown.returncode == 0, shown.stderr
    line, summary = shown.stdout.splitlines()
    assert re.fullmatch(r"06\.2 swiglu_hidden_size +passed \((1 test|[2-9]\d* tests)\)", line)
    assert summary == "1 task: 1 passed, 0 failed"
    path = edited(
        "04",
        {"scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale": ("scale = 1.0")},
        tmp_path / book_notebook("04").name,
    )
    short = cli("check", "04", "--book", ROOT, "--notebook", path, "--task", "04.2")
    full = cli("check", "04", "--book", ROOT, "--notebook", path, "--task", "04.2", "-v")
    assert short.returncode == full.returncode == 1
    assert (
        short.stdout.splitlines()[-1] == "(--verbose prints the whole report of each failing test)"
    )
    assert "E   " not in short.stdout and len(short.stdout.splitlines()) == 3
    assert full.stdout.startswith(short.stdout.splitlines()[0])
    assert full.stdout.count("E   ") >= 2 and "def test_" in full.stdout


@pytest.mark.slow
def test_grade_in_parallel_with_reasons_and_a_budget_per_student(tmp_path, student_copy):
    """Correct, untouched and an infinite (printing) loop, three at a time: the loop costs only
    its own student's budget (20 s), not the per-run timeout (300 s)."""
    folder = tmp_path / "submissions"
    for name in ("ada", "bob", "cy", "dee"):
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
    (folder / "dee" / "notes.txt").write_text("no notebook")
    start = time.monotonic()
    shown = cli("grade", folder, "--book", ROOT, "--timeout", 300, "--budget", 20, "-j", 3,
                "--out", tmp_path / "grades.csv")  # fmt: skip
    took = time.monotonic() - start
    assert shown.returncode == 0, shown.stderr
    assert took < 200, f"{took:.0f} s"
    assert shown.stdout.splitlines()[-1] == f"graded 4 students -> {tmp_path / 'grades.csv'}"
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = ["04.1 causal_mask", "04.2 scaled_dot_product_attention"]
    labels.append("04.3 CausalSelfAttention.forward")
    assert list(rows[0]) == [
        "student",
        *[c for t in labels for c in (t, t + " (reason)")],
        "passed",
    ]
    table = {r["student"]: ([r[t] for t in labels], r["passed"]) for r in rows}
    assert table == {
        "ada": ([PASSED] * 3, "3"),
        "bob": ([NOT_WRITTEN] * 3, "0"),
        "cy": ([TIMED_OUT, PASSED, PASSED], "2"),
        "dee": (["missing"] * 3, "0"),
    }
    reasons = {r["student"]: r["04.1 causal_mask (reason)"] for r in rows}
    assert reasons["ada"] == reasons["bob"] == ""
    assert re.fullmatch(r"its tests ran over the \d+ s left of the time budget", reasons["cy"])
    assert reasons["dee"] == "no 04_*.ipynb in dee/"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"jobs": 0}, "jobs must be an int >= 1", id="jobs-0"),
        pytest.param({"jobs": 2.0}, "jobs must be an int >= 1", id="jobs-float"),
        pytest.param({"budget": -1}, "budget must be a number of seconds > 0", id="budget"),
        pytest.param({"timeout": 0}, "timeout must be a number of seconds > 0", id="timeout"),
    ],
)
def test_grade_bad_options(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classroom.grade(tmp_path, ROOT, **kwargs)


def test_grade_errors(tmp_path):
    with pytest.raises(ValueError, match="holds no <student>/ folders"):
        classroom.grade(tmp_path, ROOT)
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="no notebook of a chapter with tasks"):
        classroom.grade(tmp_path, ROOT)
