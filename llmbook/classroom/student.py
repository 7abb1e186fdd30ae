"""The student copy of the book (hand-written; chapters 01-09's exercises).

``write_student_copy(book, out)`` writes a folder that stands on its own:

- ``chapters/NN_topic.ipynb``: the book's notebooks, each task replaced by its stub and the
  outputs cleared (not the chapters' ``.py`` twins, which hold the solutions, nor the worked
  solutions, nor the replay settings ``chapters/conftest.py``);
- ``tests/``: the book's tests of the package (not those of the book itself: its notebooks,
  website, layout and this classroom), and ``tests/test_your_tasks.py``, one test per task that
  passes once ``llmbook classroom check`` passes the task;
- ``pytest.ini`` and ``conftest.py``: ``python -m pytest`` runs ``tests/`` and skips, with a
  reason, a test that needs a file only the teacher's book has (``pyproject.toml``, ``tools/``);
- ``README.md``: the student's own (install the book's package, work, check), not the book's.

On an untouched copy ``python -m pytest`` therefore fails exactly the tasks, one test each.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

from llmbook.classroom.notebooks import chapter_of, student_notebook
from llmbook.classroom.tasks import TASKS
from llmbook.io.files import atomic_write

__all__ = ["TEACHER_TESTS", "write_student_copy"]

# Tests of the book itself rather than of the package: they read files a student copy has not.
TEACHER_TESTS = {
    "test_project.py",  # pyproject.toml, README.md, ruff over the sources
    "test_notebooks.py",  # the chapters' .py twins, stored outputs, solutions
    "test_layout.py",  # the package's source tree
    "test_book.py",  # the website, book/
    "test_classroom.py",  # the markers in the book's notebooks, tools/export.py
}

PYTEST_INI = """\
[pytest]
testpaths = tests
addopts = -p no:cacheprovider
filterwarnings = ignore::DeprecationWarning:jupyter_client.*
"""

CONFTEST = '''\
"""Written by `llmbook classroom student`: a few of the book's tests read files that only the
teacher's copy of the book has (its pyproject.toml, tools/, the package's sources); here they are
skipped, with the file they need as the reason, instead of failing."""

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def base_path(base, function, local):
    """The folder a path expression starts from, when it is one of this copy's (ROOT, or
    something built from __file__); else None."""
    base = local.get(base.id, base) if isinstance(base, ast.Name) else base
    text = ast.unparse(base)
    if isinstance(base, ast.Name):
        value = function.__globals__.get(base.id)
    elif "__file__" in text:
        try:
            value = eval(text, {"Path": Path, **function.__globals__})  # Path(__file__).parent
        except Exception:
            return None
    else:
        return None
    return Path(value).resolve() if isinstance(value, (str, Path)) else None


def missing(function):
    """A path under this copy that the test builds (``ROOT / "tools" / ...``) and that is not
    here, or None."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    local = {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        parts, base = [], node
        while (
            isinstance(base, ast.BinOp)
            and isinstance(base.op, ast.Div)
            and isinstance(base.right, ast.Constant)
            and isinstance(base.right.value, str)
        ):
            parts.insert(0, base.right.value)
            base = base.left
        start = base_path(base, function, local) if parts else None
        if start is not None and start.is_relative_to(HERE) and not start.joinpath(*parts).exists():
            return start.joinpath(*parts).relative_to(HERE).as_posix()
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = missing(getattr(item, "function", None))
        if path:
            reason = f"needs {path} of the teacher's book; a student copy has none"
            item.add_marker(pytest.mark.skip(reason=reason))
'''

YOUR_TASKS = '''\
"""Your tasks, one test each (written by `llmbook classroom student`): a task's test passes
once `llmbook classroom check` passes it, and its message is the check's line for the task."""

import functools
from pathlib import Path

import pytest

from llmbook.classroom import PASSED, TASKS, check

COPY = Path(__file__).resolve().parent.parent
CHAPTERS = {{p.name[:2] for p in (COPY / "chapters").glob("[0-9][0-9]_*.ipynb")}}
CHAPTERS &= set({chapters!r})


@functools.cache
def results(chapter: str) -> dict:
    return {{r.task.id: r for r in check(chapter, COPY)}}


@pytest.mark.parametrize(
    "task", [t for t in TASKS if t.chapter in CHAPTERS], ids=lambda t: f"{{t.id}}-{{t.name}}"
)
def test_task(task):
    result = results(task.chapter)[task.id]
    if result.status != PASSED:
        pytest.fail("\\n".join(filter(None, [result.line(), result.full])), pytrace=False)
'''

README = """\
# Build a large language model from scratch: your copy of the book

This folder is your copy of *llmbook*, a textbook you run: numbered Jupyter notebooks that
build a decoder-only language model of the GPT-2 and Llama kind, from raw text to sampled text.
In this copy some of the book's code is yours to write: {n_tasks} tasks over chapters
{first} to {last}. Each one is a function or method whose body raises

```python
raise NotImplementedError("task 04.1 (causal_mask): <one line saying what to write>")
```

until you replace that line with your code. A notebook runs top to bottom until the first task
you have not written, and the error names it.

## Install

With Python 3.10 or newer, in this folder:

```bash
python -m venv .venv && . .venv/bin/activate
pip install torch --index-url https://download.pytorch.org/whl/cpu
pip install "{install}"
```

The second line installs PyTorch's CPU build (leave it out on a machine with an NVIDIA GPU); the
third installs the book's package, `llmbook`, which the notebooks import from chapter to
chapter and which holds the command that checks your work (if your teacher gave you another
line for it, such as a wheel file, use theirs). This folder is not a package: there is nothing
here to `pip install`; work in it. On Windows, activate with `.venv\\Scripts\\activate`.

## Work

```bash
jupyter lab chapters
```

Start with chapter 00, the big picture, then read 01 to 09 in order. Each chapter explains
before it codes; write each task where its `raise NotImplementedError(...)` stands, run the
cells after it (they print shapes and check claims with `assert`), and save the notebook.

## Check your work

```bash
llmbook classroom check 04                      # one line per task of chapter 4
llmbook classroom check 04 --task 04.2 -v       # one task, with the whole report of a failure
```

The check reads your saved notebook, takes your code of each task and runs the book's tests that
cover it, with the book's version of the chapter's other tasks, so one mistake costs one task.
Each task is `passed`, `failed` (the first failing test, the line of the test, and what came
against what was expected), `not written yet` (with the task's hint), `timed out` or `error`
(the notebook does not parse, or its code does not import). `--timeout` sets the seconds each
test run may take (default 300).

## The tests

```bash
python -m pytest
```

runs the book's tests of the package in `tests/` (they test the book's own code, installed
with `llmbook`, and pass) and `tests/test_your_tasks.py`: one test per task, which fails until
`llmbook classroom check` passes that task. On a fresh copy, therefore, only the task tests
fail. A few of the book's tests need files this copy does not have; they are skipped, and say
why (`conftest.py`).

**Offline?** Chapter 01 uses OpenAI's tokenizers through `tiktoken`, which downloads its
encoding files once; with no internet, ask your teacher for a filled cache folder and
`export TIKTOKEN_CACHE_DIR=/path/to/that/folder`.
"""


def default_install() -> str:
    """``llmbook[dev]==<installed version>``, the book's package as the copy was written from."""
    try:
        return f"llmbook[dev]=={metadata.version('llmbook')}"
    except metadata.PackageNotFoundError:
        return "llmbook[dev]"


def write_student_copy(book: Path, out: Path, install: str | None = None) -> list[Path]:
    """Write the student copy of ``book`` (a folder with chapters/ and tests/) to ``out``.

    ``install``: the pip requirement the copy's README gives for the book's package (default:
    ``llmbook[dev]==<the installed version>``). Returns the notebooks written."""
    book, out = Path(book), Path(out)
    chapters = book / "chapters"
    if not chapters.is_dir():
        raise ValueError(f"book {str(book)!r} has no chapters/ folder; pass --book")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"OUT_DIR {str(out)!r} is not empty; choose a new folder")
    if out.resolve().is_relative_to(book.resolve()):
        raise ValueError(f"OUT_DIR {str(out)!r} lies inside the book; choose a folder outside it")
    if install is not None and (not isinstance(install, str) or not install.strip()):
        raise ValueError(f"install must be a pip requirement (a non-empty str), got {install!r}")
    written = []
    skip = {"solutions", ".ipynb_checkpoints", "__pycache__", ".hypothesis"}
    sources = [*sorted(chapters.rglob("*")), *sorted(book.glob("tests/**/*"))]
    for path in sources:
        rel = path.relative_to(book)
        if not path.is_file() or skip & set(rel.parts):
            continue
        if rel.parts[0] == "chapters" and re.match(r"(\d\d_.*|conftest)\.py$", path.name):
            continue  # a chapter's jupytext source (it holds the solutions); replay settings
        if rel.parts[0] == "tests" and rel.name in TEACHER_TESTS:
            continue
        if rel.parts[0] == "chapters" and path.suffix == ".ipynb":
            notebook = json.loads(path.read_text(encoding="utf-8"))
            notebook = student_notebook(notebook, chapter_of(path), rel.as_posix())
            data = (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n").encode()
            written.append(out / rel)
        else:
            data = path.read_bytes()
        write(out / rel, data)
    chapters_with_tasks = sorted({p.name[:2] for p in written} & {t.chapter for t in TASKS})
    tasks = [t for t in TASKS if t.chapter in chapters_with_tasks]
    readme = README.format(
        n_tasks=len(tasks),
        first=chapters_with_tasks[0] if tasks else "-",
        last=chapters_with_tasks[-1] if tasks else "-",
        install=install or default_install(),
    )
    write(out / "README.md", readme.encode())
    write(out / "pytest.ini", PYTEST_INI.encode())
    write(out / "conftest.py", CONFTEST.encode())
    your_tasks = YOUR_TASKS.format(chapters=chapters_with_tasks)
    write(out / "tests" / "test_your_tasks.py", your_tasks.encode())
    return written


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(data)
