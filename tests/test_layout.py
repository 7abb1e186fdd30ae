"""The package's layout shows the book: chapter modules in front, the plumbing in rooms below.

Read from the source with ``ast`` (every import counts, also those inside functions):

- no import cycles among llmbook's modules;
- layers: the support rooms (``llmbook.checks``, ``llmbook.io``, ``llmbook.stories``) import no
  chapter module and nothing of the top layer; a chapter's module imports only earlier
  chapters' modules and the support rooms; the top layer (``llmbook``, ``pretrained``, ``cli``,
  ``classroom``) may import anything; every module belongs to one of the three;
- headers: each generated module names its chapter; each hand-written module's docstring says
  in its first line what it is for and which chapter it serves.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmbook"
GENERATED = re.compile(r"^# Generated from chapters/(\d\d)_\w+\.ipynb by tools/export\.py;")
SUPPORT = ("llmbook.checks", "llmbook.io", "llmbook.stories")
TOP = ("llmbook", "llmbook.pretrained", "llmbook.cli", "llmbook.classroom")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def chapter_of(name: str) -> int | None:
    """The chapter number of a generated module (from its header), or None if hand-written."""
    with MODULES[name].open(encoding="utf-8") as handle:
        match = GENERATED.match(handle.readline())
    return int(match.group(1)) if match else None


def in_room(name: str, rooms: tuple[str, ...]) -> bool:
    return any(name == room or name.startswith(room + ".") for room in rooms)


def imports(name: str) -> set[str]:
    """The llmbook modules that ``name`` imports anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from its package, up level - 1 more
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:  # `from llmbook.x import y` imports module llmbook.x.y if any
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m.split(".")[0] == "llmbook" and m != name}


IMPORTS = {name: imports(name) for name in MODULES}
GRAPH = {name: {m for m in found if m in MODULES} for name, found in IMPORTS.items()}


def test_every_import_names_a_module_of_the_package():
    """A lazy import of a moved module fails only when its function runs: catch it here."""
    missing = {name: sorted(found - set(MODULES)) for name, found in IMPORTS.items()}
    assert not {name: found for name, found in missing.items() if found}


def test_the_graph_is_read():
    """Guards the reader: it must see the edges we know of, lazy ones included."""
    assert "llmbook.checks" in GRAPH["llmbook.attention"]
    assert "llmbook.io.hf" in GRAPH["llmbook.model"]  # inside DecoderLM.from_hf
    assert "llmbook.training" in GRAPH["llmbook.cli.train"]  # inside run_train
    exporting = {int(p.name[:2]) for p in (PACKAGE.parent / "chapters").glob("[0-9][0-9]_*.ipynb")
                 if "#| default_exp" in p.read_text(encoding="utf-8")}  # fmt: skip
    assert {chapter_of(m) for m in MODULES} - {None} == exporting and exporting >= set(range(1, 10))


def test_no_import_cycles():
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in sorted(GRAPH[name]):
            if state.get(other) == "open":
                cycle = path[path.index(other) :] + [other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, path + [other])
        state[name] = "done"

    for name in MODULES:
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers(name):
    chapter = chapter_of(name)
    if chapter is not None:
        for other in GRAPH[name]:
            earlier = chapter_of(other) is not None and chapter_of(other) < chapter
            assert earlier or in_room(other, SUPPORT), (
                f"{name} (chapter {chapter:02}) imports {other}: a chapter's module may import "
                "only earlier chapters' modules and the support rooms " + ", ".join(SUPPORT)
            )
    elif in_room(name, SUPPORT):
        for other in GRAPH[name]:
            assert in_room(other, SUPPORT), (
                f"{name} (a support room) imports {other}: pass what it needs as an argument"
            )
    else:
        assert name in TOP or in_room(name, TOP[2:]), (
            f"{name} is neither a chapter's module, nor in a support room {SUPPORT}, nor in "
            f"the top layer {TOP}: put it where it belongs"
        )


@pytest.mark.parametrize("name", sorted(n for n in MODULES if chapter_of(n) is None))
def test_hand_written_modules_say_what_they_are_for(name):
    docstring = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8")))
    assert docstring, f"{name} has no docstring"
    first = docstring.splitlines()[0]
    assert re.search(r"\bchapters? \d\d", first), (
        f"{name}: the docstring's first line must say which chapter it serves ('chapter NN'), "
        f"got {first!r}"
    )
    assert "hand-written" in first, f"{name}: the first line must say it is hand-written"
