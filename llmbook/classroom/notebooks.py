"""The classroom's notebooks: task markers, export, student copies (hand-written; chapters 01-09).

A marked region (``### BEGIN SOLUTION``, a ``# TASK:`` line, ``### END SOLUTION``) lies inside
one function or method of a chapter's exported cells. A student notebook replaces each region
with a stub that raises ``NotImplementedError`` (``student.py`` writes the whole student copy);
the export reads a notebook as ``tools/export.py``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from llmbook.classroom.tasks import TASKS, Task

__all__ = ["export_notebook", "student_notebook"]


BEGIN, END, TASK = "### BEGIN SOLUTION", "### END SOLUTION", "# TASK:"


STUB = 'raise NotImplementedError("task {id} ({name}): {text}")'


STUB_RE = re.compile(r"^task (\d\d\.\d+) \(")


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def regions(lines: list[str], where: str) -> list[tuple[int, int, str]]:
    """``(begin, end, task_text)`` line indices of each marked region of a cell."""
    found, begin = [], None
    for index, line in enumerate(lines):
        text = line.strip()
        if text == BEGIN:
            if begin is not None:
                raise ValueError(f"{where}: {BEGIN!r} inside a task")
            nxt = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if not nxt.startswith(TASK):
                raise ValueError(f"{where}: {BEGIN!r} must be followed by a '{TASK} ...' line")
            begin = index
        elif text == END:
            if begin is None:
                raise ValueError(f"{where}: {END!r} outside a task")
            task_text = lines[begin + 1].strip()[len(TASK) :].strip()
            found.append((begin, index, task_text))
            begin = None
    if begin is not None:
        raise ValueError(f"{where}: {BEGIN!r} without {END!r}")
    return found


def without_markers(lines: list[str], where: str) -> list[str]:
    """A cell's lines less the marker lines (what tools/export.py does)."""
    drop = set()
    for begin, end, _ in regions(lines, where):
        drop |= {begin, begin + 1, end}
    return [line for index, line in enumerate(lines) if index not in drop]


def default_exp(cells: list[dict]) -> str | None:
    for cell in cells:
        for line in cell_source(cell).splitlines():
            match = re.match(r"^#\|\s*default_exp\s+([A-Za-z_]\w*)\s*$", line.strip())
            if cell.get("cell_type") == "code" and match:
                return match.group(1)
    return None


def export_notebook(notebook: dict, chapter: str) -> str:
    """The module text tools/export.py writes for a notebook (``chapter``: its path in the book)."""
    blocks = []
    for number, cell in enumerate(notebook["cells"]):
        lines = cell_source(cell).splitlines()
        if cell.get("cell_type") == "code" and lines and re.match(r"^#\|\s*export\s*$", lines[0]):
            kept = without_markers(lines[1:], f"{chapter} cell {number}")
            blocks.append("\n".join(kept).strip("\n"))
    body = "\n\n\n".join(blocks)
    names = []
    for node in ast.parse(body).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    names = [n for n in names if not n.startswith("_")]
    all_line = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]\n"
    if len(all_line) > 100:
        all_line = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]\n"
    header = f"# Generated from {chapter} by tools/export.py; do not edit, edit the chapter.\n"
    return header + "\n" + body + "\n\n\n" + all_line


def definitions(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level functions and classes' methods by qualified name (``Class.method``)."""
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item
    return found


def enclosing(tree: ast.Module, line: int) -> str | None:
    """The qualified name of the function or method around 1-based ``line``."""
    for name, node in definitions(tree).items():
        if node.lineno <= line <= node.end_lineno:
            return name
    return None


def chapter_of(path: Path) -> str:
    return path.name[:2]


def student_notebook(notebook: dict, chapter: str, where: str = "") -> dict:
    """A copy of a chapter notebook with every marked region replaced by its stub, outputs cleared."""
    notebook = json.loads(json.dumps(notebook))
    for number, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
        lines = cell_source(cell).split("\n")
        found = regions(lines, f"{where} cell {number}")
        if not found:
            continue
        tree = ast.parse(cell_source(cell))
        for begin, end, text in reversed(found):
            name = enclosing(tree, begin + 1)
            task = find_task(chapter, name, f"{where} cell {number} line {begin + 1}")
            indent = re.match(r"\s*", lines[begin]).group(0)
            stub = STUB.format(id=task.id, name=task.name, text=text.replace('"', "'"))
            lines[begin : end + 1] = [indent + stub]
        source = "\n".join(lines)
        cell["source"] = source.splitlines(keepends=True)
    return notebook


def find_task(chapter: str, name: str | None, where: str) -> Task:
    for task in TASKS:
        if task.chapter == chapter and task.name == name:
            return task
    raise ValueError(
        f"{where}: a marked region in {name or 'no function'!r} that TASKS does not list; "
        "add it to TASKS in llmbook/classroom/tasks.py (a region lies inside a function or method)"
    )
