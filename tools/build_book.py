"""Build the book as a static website (Jupyter Book 1) without executing any notebook.

    pip install -e ".[book]"
    python tools/build_book.py            # -> book/_build/html/index.html
    python -m http.server -d book/_build/html 8000    # then open http://127.0.0.1:8000

The site is the README (front page), every chapter in order and the worked solutions. The
table of contents is generated from the files present (chapters/NN_*.ipynb,
chapters/solutions/NN_*.ipynb), so a new chapter appears as soon as its notebook exists.
Everything is staged in <output>/_build/src/ (the sources stay untouched), then built with
`jupyter-book build -W -n --keep-going`: any warning fails the build.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


def front_page(src: Path) -> str:
    """The README, with links to folders pointed at the folder's generated index page."""

    def folder_link(match: re.Match) -> str:
        target = match.group(2)
        if "://" in target or not target.endswith("/"):
            return match.group(0)
        if not (src / target / "index.md").exists():
            raise SystemExit(f"README links to {target!r}, which the website has no page for")
        return f"]({match.group(1)}{target}index.md)"

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
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


def stage(src: Path) -> None:
    """Write the book's sources into src/: copies and generated pages, nothing executed."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "chapters" / "solutions").mkdir(parents=True)
    for path in [*chapters(), *solutions()]:
        # copy2 keeps modification times, so Sphinx re-reads only notebooks that changed.
        shutil.copy2(path, src / path.relative_to(ROOT))
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if not {"kernelspec", "language_info"} & notebook["metadata"].keys():
            # Not executed yet (jupytext wrote it without a kernel): highlight it as Python.
            notebook["metadata"]["kernelspec"] = PYTHON3
            (src / path.relative_to(ROOT)).write_text(json.dumps(notebook), encoding="utf-8")
    for path in (ROOT / "chapters").rglob("*"):
        if path.suffix.lower() in ASSETS and ".ipynb_checkpoints" not in path.parts:
            (src / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / path.relative_to(ROOT))
    shutil.copy2(BOOK / "_config.yml", src / "_config.yml")
    shutil.copytree(BOOK / "vendor", src / "_vendor")
    (src / "_toc.yml").write_text(table_of_contents(), encoding="utf-8")
    (src / "chapters" / "solutions" / "index.md").write_text(solutions_index(), encoding="utf-8")
    (src / "index.md").write_text(front_page(src), encoding="utf-8")


def build(output: Path, fresh: bool = False) -> Path:
    """Stage and build the site under output/_build/; return the folder holding index.html."""
    output = output.resolve()
    src = output / "_build" / "src"
    stage(src)
    command = [
        *(sys.executable, "-c", "from jupyter_book.cli.main import main; main()"),
        *("build", str(src), "--path-output", str(output), "--builder", "html"),
        *("-W", "-n", "--keep-going", *(["--all"] if fresh else [])),
    ]
    subprocess.run(command, cwd=ROOT, check=True)
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
