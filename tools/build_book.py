"""Build the book as a static website (Jupyter Book 1) without executing any notebook.

    pip install -e ".[book]"
    python tools/build_book.py            # -> book/_build/html/index.html
    python -m http.server -d book/_build/html 8000    # then open http://127.0.0.1:8000

The site is the README (front page), every chapter in order and the worked solutions. The
table of contents is generated from the files present (chapters/NN_*.ipynb,
chapters/solutions/NN_*.ipynb), so a new chapter appears as soon as its notebook exists.
Everything is staged in <output>/_build/src/ (the sources stay untouched), then built with
`jupyter-book build -W -n --keep-going`: any warning fails the build.

Staging prepares the copies for readers of the website (the notebooks keep everything):
- the export and classroom markers (`#| export`, `#| default_exp`, `### BEGIN SOLUTION`,
  `# TASK: ...`, `### END SOLUTION`) are taken out of the code; an exported cell is tagged
  `export` instead (book/static/llmbook.css labels it), and a cell left empty is dropped;
- a cell that JupyterLab shows collapsed (`jupyter.source_hidden`) is tagged `hide-input`, so
  the site too shows its output with its code behind a toggle (tools/tag_figure_cells.py);
- a chapter's mentions of `chapters/solutions/NN_topic.ipynb` become links to that page, and
  a chapter with exercises that names no solutions gets a link after its exercises;
- the README's section on building the website is left out of the front page.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

from export import BEGIN, DEFAULT_EXP, END, EXPORT, TASK  # tools/export.py: the same markers

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
PYTHON3 = {"display_name": "Python 3", "language": "python", "name": "python3"}
ASSETS = {".png", ".jpg", ".jpeg", ".gif", ".svg"}  # files a markdown cell may show


def chapters() -> list[Path]:
    """The chapter notebooks, in order."""
    return sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def solutions() -> list[Path]:
    return sorted((ROOT / "chapters" / "solutions").glob("[0-9][0-9]_*.ipynb"))


def first_heading(notebook: Path) -> str:
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown" and (
            match := re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
        ):
            return match.group(1).strip()
    return notebook.stem


def solutions_index() -> str:
    lines = [
        "# Worked solutions",
        "",
        "Each chapter ends with exercises; these notebooks work them, with their outputs.",
        "",
    ]
    lines += [f"- [{first_heading(nb)}]({nb.name})" for nb in solutions()]
    return "\n".join(lines) + "\n"


def front_page(files: dict[str, bytes]) -> str:
    """The README less its sections about the website, with links to folders pointed at the
    folder's generated index page."""

    def folder_link(match: re.Match) -> str:
        target = match.group(2)
        if "://" in target or not target.endswith("/"):
            return match.group(0)
        if f"{target}index.md" not in files:
            raise SystemExit(f"README links to {target!r}, which the website has no page for")
        return f"]({match.group(1)}{target}index.md)"

    readme = without_sections((ROOT / "README.md").read_text(encoding="utf-8"), SITE_ONLY_DROPS)
    return re.sub(r"\]\((<?)([^)\s>]+)>?\)", folder_link, readme)


def table_of_contents() -> str:
    lines = ["format: jb-book", "root: index", "parts:", "  - caption: Chapters", "    chapters:"]
    lines += [f"      - file: chapters/{nb.stem}" for nb in chapters()]
    if solutions():
        lines += [
            "  - caption: Solutions",
            "    chapters:",
            "      - file: chapters/solutions/index",
        ]
        lines += ["        sections:"]
        lines += [f"          - file: chapters/solutions/{nb.stem}" for nb in solutions()]
    return "\n".join(lines) + "\n"


SOLUTION_MENTION = re.compile(r"`?chapters/solutions/([0-9]{2}_\w+)\.ipynb`?")
EXERCISES = re.compile(r"^##\s+Exercises\s*$", re.M)
SECTION = re.compile(r"^#{1,2}\s", re.M)  # a heading of level 1 or 2 ends the exercises
SITE_ONLY_DROPS = ["Read it as a website"]  # README sections about building this very site


def text(cell: dict) -> str:
    return "".join(cell["source"])


def is_marker(line: str) -> bool:
    line = line.strip()
    return (
        bool(EXPORT.match(line) or DEFAULT_EXP.match(line))
        or line in (BEGIN, END)
        or (line.startswith(TASK))
    )


def for_readers(notebook: dict) -> dict:
    """The notebook as the website shows it: code without markers, tags the site acts on."""
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            lines = text(cell).splitlines(keepends=True)
            tags = list(cell["metadata"].get("tags", []))
            if lines and EXPORT.match(lines[0].strip()):
                tags.append("export")
            if cell["metadata"].get("jupyter", {}).get("source_hidden"):
                tags.append("hide-input")
            source = "".join(line for line in lines if not is_marker(line)).strip("\n")
            if not source.strip() and not cell.get("outputs"):
                continue  # e.g. the cell that held only `#| default_exp <module>`
            metadata = {**cell["metadata"], "tags": sorted(set(tags))}
            cell = {**cell, "source": source, "metadata": metadata}
        cells.append(cell)
    return {**notebook, "cells": cells}


@cache
def solution_titles() -> dict[str, str]:
    return {nb.stem: first_heading(nb) for nb in solutions()}


def link_solutions(notebook: dict, chapter: Path) -> dict:
    """Turn `chapters/solutions/NN_topic.ipynb` into links; add one after exercises naming none."""
    titles = solution_titles()

    def link(match: re.Match) -> str:
        if match.group(1) not in titles:
            raise SystemExit(f"{chapter.name} names {match.group(0)}, which does not exist")
        return f"[{titles[match.group(1)]}](solutions/{match.group(1)}.ipynb)"

    cells = [
        {**c, "source": SOLUTION_MENTION.sub(link, text(c))} if c["cell_type"] == "markdown" else c
        for c in notebook["cells"]
    ]
    markdown = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    exercises = [i for i in markdown if EXERCISES.search(text(cells[i]))]
    named = any(SOLUTION_MENTION.search(text(c)) for c in notebook["cells"])
    if exercises and not named and chapter.stem in titles:
        after = [i for i in markdown if i > exercises[0] and SECTION.search(text(cells[i]))]
        title = titles[chapter.stem]
        cells.insert(
            after[0] if after else len(cells),
            {
                "cell_type": "markdown",
                "id": "llmbook-solutions-link",
                "metadata": {},
                "source": f"Worked solutions: [{title}](solutions/{chapter.stem}.ipynb).",
            },
        )
    return {**notebook, "cells": cells}


def staged_notebook(path: Path) -> bytes:
    notebook = for_readers(json.loads(path.read_text(encoding="utf-8")))
    if path.parent.name == "chapters":
        notebook = link_solutions(notebook, path)
    if not {"kernelspec", "language_info"} & notebook["metadata"].keys():
        # Not executed yet (jupytext wrote it without a kernel): highlight it as Python.
        notebook["metadata"]["kernelspec"] = PYTHON3
    return json.dumps(notebook, ensure_ascii=False).encode()


def without_sections(markdown: str, titles: list[str]) -> str:
    """The markdown less the level-2 sections with these titles (up to the next level-2 heading)."""
    for title in titles:
        pattern = re.compile(rf"^## {re.escape(title)}\s*\n.*?(?=^## |\Z)", re.M | re.S)
        if not pattern.search(markdown):
            raise SystemExit(f"README has no section {title!r} to leave out of the website")
        markdown = pattern.sub("", markdown)
    return markdown


def staged_files() -> dict[str, bytes]:
    """Every file of the book's sources, by path relative to src/: copies and generated pages."""
    files = {}
    for path in [*chapters(), *solutions()]:
        files[path.relative_to(ROOT).as_posix()] = staged_notebook(path)
    for path in (ROOT / "chapters").rglob("*"):
        if path.suffix.lower() in ASSETS and ".ipynb_checkpoints" not in path.parts:
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for path in (BOOK / "images").glob("*"):  # pictures the README shows (the front page)
        if path.suffix.lower() in ASSETS:
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for folder, target in [(BOOK / "vendor", "_vendor"), (BOOK / "static", "_book")]:
        for path in folder.rglob("*"):
            if path.is_file():
                files[f"{target}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    files["_config.yml"] = (BOOK / "_config.yml").read_bytes()
    files["_search_scorer.js"] = (BOOK / "search_scorer.js").read_bytes()
    files["_toc.yml"] = table_of_contents().encode()
    files["chapters/solutions/index.md"] = solutions_index().encode()
    return files


STATIC = ("_book/", "_vendor/", "_search_scorer.js")  # copied or read by Sphinx, never parsed


def stage(src: Path) -> set[str]:
    """Write the book's sources into src/, nothing executed; return the names written. Only
    files whose content changed are written (and files no longer staged removed), so Sphinx
    re-reads only those pages."""
    files = staged_files()
    files["index.md"] = front_page(files).encode()
    for path in sorted(src.rglob("*"), reverse=True) if src.exists() else []:
        name = path.relative_to(src).as_posix()
        if path.is_file() and name not in files:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    written = set()
    for name, data in files.items():
        path = src / name
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.add(name)
    return written


def build(output: Path, fresh: bool = False) -> Path:
    """Stage and build the site under output/_build/; return the folder holding index.html."""
    output = output.resolve()
    src = output / "_build" / "src"
    written = stage(src)
    # Sphinx copies static files only when some page is out of date: rebuild all when one changed.
    fresh = fresh or any(name.startswith(STATIC) for name in written)
    command = [
        *(sys.executable, "-c", "from jupyter_book.cli.main import main; main()"),
        *("build", str(src), "--path-output", str(output), "--builder", "html"),
        *("-W", "-n", "--keep-going", *(["--all"] if fresh else [])),
    ]
    # cwd: Sphinx reads html_search_scorer relative to the working folder (no conf.py here).
    subprocess.run(command, cwd=src, check=True)
    return output / "_build" / "html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--path-output",
        type=Path,
        default=BOOK,
        help="the site goes to PATH/_build/html (default: book)",
    )
    parser.add_argument(
        "--all", action="store_true", help="rebuild every page, not only changed ones"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        html = build(args.path_output, fresh=args.all)
    except subprocess.CalledProcessError as error:
        sys.exit(f"the book did not build (exit status {error.returncode}); see the warnings above")
    print(f"built in {time.perf_counter() - start:.0f} s: {html / 'index.html'}")


if __name__ == "__main__":
    main()
