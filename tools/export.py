"""Export the book's code into the ``llmbook`` package.

Each chapter notebook ``chapters/NN_topic.ipynb`` names its module once with a line
``#| default_exp <module>`` and marks the cells that belong in it with ``#| export`` as
their first line (the nbdev convention). This script writes ``llmbook/<module>.py`` from
those cells, in order, under a header that names the chapter.

    python tools/export.py           # regenerate every generated module
    python tools/export.py --check   # exit 1 if any module is out of date, missing or stale

Lines that mark a student's task for the classroom edition (``### BEGIN SOLUTION``, a
``# TASK: ...`` line right after it, ``### END SOLUTION``; see ``llmbook/classroom/``) are
left out, so the markers never reach the package.

Only the standard library is used, so the check runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
PACKAGE = ROOT / "llmbook"
HEADER = "# Generated from {chapter} by tools/export.py; do not edit, edit the chapter.\n"
HEADER_RE = re.compile(r"^# Generated from (\S+) by tools/export\.py;")
DEFAULT_EXP = re.compile(r"^#\|\s*default_exp\s+([A-Za-z_][A-Za-z0-9_]*)\s*$")
EXPORT = re.compile(r"^#\|\s*export\s*$")
BEGIN, END, TASK = "### BEGIN SOLUTION", "### END SOLUTION", "# TASK:"


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def exported_module(notebook: Path) -> tuple[str, str] | None:
    """Return ``(module_name, module_text)`` for a chapter, or None if it exports nothing."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    module, blocks = None, []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        lines = cell_source(cell).splitlines()
        for line in lines:
            match = DEFAULT_EXP.match(line.strip())
            if match:
                if module is not None and module != match.group(1):
                    raise SystemExit(
                        f"{notebook}: two default_exp lines ({module}, {match.group(1)})"
                    )
                module = match.group(1)
        if lines and EXPORT.match(lines[0].strip()):
            blocks.append("\n".join(without_markers(lines[1:], notebook)).strip("\n"))
    if not blocks:
        return None
    if module is None:
        raise SystemExit(f"{notebook}: has '#| export' cells but no '#| default_exp <module>' line")
    chapter = notebook.relative_to(ROOT).as_posix()
    body = "\n\n\n".join(blocks)
    names = public_names(body, chapter)
    all_line = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]\n"
    if len(all_line) > 100:
        all_line = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]\n"
    return module, HEADER.format(chapter=chapter) + "\n" + body + "\n\n\n" + all_line


def without_markers(lines: list[str], notebook: Path) -> list[str]:
    """The lines less the classroom markers, which must pair up and name their task."""
    kept, inside, previous = [], False, ""
    for line in lines:
        text = line.strip()
        if text == BEGIN or text == END:
            if inside == (text == BEGIN):
                raise SystemExit(f"{notebook}: {text!r} {'inside' if inside else 'outside'} a task")
            inside = text == BEGIN
        elif previous == BEGIN:
            if not text.startswith(TASK):
                raise SystemExit(f"{notebook}: {BEGIN!r} must be followed by a '{TASK} ...' line")
        else:
            kept.append(line)
        previous = text
    if inside:
        raise SystemExit(f"{notebook}: {BEGIN!r} without {END!r}")
    return kept


def public_names(body: str, chapter: str) -> list[str]:
    """Names a reader may import: top-level classes, functions and constants without a leading _."""
    try:
        tree = ast.parse(body)
    except SyntaxError as error:
        raise SystemExit(f"{chapter}: exported code does not parse: {error}") from error
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    return [n for n in names if not n.startswith("_")]


def expected_modules() -> dict[Path, str]:
    modules: dict[Path, str] = {}
    for notebook in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")):
        exported = exported_module(notebook)
        if exported is None:
            continue
        name, text = exported
        path = PACKAGE / f"{name}.py"
        if path in modules:
            raise SystemExit(f"two chapters export to {path.relative_to(ROOT)}")
        modules[path] = text
    return modules


def generated_modules() -> set[Path]:
    """Modules in the package that carry the generated header (hand-written ones do not)."""
    found = set()
    for path in PACKAGE.glob("*.py"):
        with path.open(encoding="utf-8") as handle:
            if HEADER_RE.match(handle.readline()):
                found.add(path)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)

    expected = expected_modules()
    stale = generated_modules() - set(expected)
    problems = []
    for path, text in expected.items():
        rel = path.relative_to(ROOT)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if current is not None and not HEADER_RE.match(current):
            problems.append(
                f"{rel}: hand-written (no generated header); rename the chapter's module or the file"
            )
            continue
        if args.check:
            problems.append(f"{rel}: {'missing' if current is None else 'out of date'}")
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    for path in sorted(stale):
        rel = path.relative_to(ROOT)
        if args.check:
            problems.append(f"{rel}: stale (its chapter no longer exports it)")
        else:
            path.unlink()
            print(f"removed {rel}")
    if problems:
        print(
            "The package differs from the chapters; run `python tools/export.py`:", file=sys.stderr
        )
        print("\n".join("  " + p for p in problems), file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(expected)} generated modules match their chapters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
