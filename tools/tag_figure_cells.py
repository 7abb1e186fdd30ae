"""Collapse the code of the chapter cells that only draw a figure, in JupyterLab and on the website.

A code cell is a figure cell when
  1. its outputs are images only: no printed text, no value, no error;
  2. it is drawing code, nothing the chapter goes on to use: not exported (`#| export`), no
     classroom task in it, and no later code cell reads a name it defines, except drawing
     helpers (functions named draw_*, show_*, plot_*);
  3. it has at least MIN_LINES lines of code (a shorter cell is not in the reader's way).
Such a cell gets the tag `hide-input` (Jupyter Book shows the figure and puts the code behind
a "Show code cell source" toggle) and `jupyter: {source_hidden: true}` (JupyterLab collapses the
input the same way), in both files of the jupytext pair: the notebook's cell metadata and the
`# %%` line of chapters/NN_topic.py. Nothing is executed and no output changes.

    python tools/tag_figure_cells.py                 # list the cells it would tag, and why
    python tools/tag_figure_cells.py --apply         # tag them
    python tools/tag_figure_cells.py chapters/01_tokenizer.ipynb --apply
"""

from __future__ import annotations

import argparse
import json
import re
import symtable
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIN_LINES = 8
HELPER = re.compile(r"^(draw|show|plot)_\w+$")
IMAGES = {"image/png", "image/jpeg", "image/svg+xml"}
MARKERS = re.compile(r"^\s*(#\|\s*export\b|### BEGIN SOLUTION)", re.M)
TAG, HIDDEN = "hide-input", {"source_hidden": True}


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def only_images(cell: dict) -> bool:
    outputs = cell.get("outputs", [])
    return bool(outputs) and all(
        o["output_type"] == "display_data" and IMAGES & o.get("data", {}).keys() for o in outputs
    )


def code_lines(text: str) -> int:
    return sum(
        1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


def names(text: str) -> tuple[set[str], set[str]] | None:
    """The names a cell defines at its top level, and the names it reads from the notebook's
    namespace (not defined by the cell itself); None when it is not plain Python (magics)."""
    try:
        table = symtable.symtable(text, "<cell>", "exec")
    except SyntaxError:
        return None
    top = table.get_symbols()
    bound = {s.get_name() for s in top if s.is_assigned() or s.is_imported()}
    read = {s.get_name() for s in top if s.is_referenced()}
    nested = list(table.get_children())
    while nested:  # functions, classes, lambdas and comprehensions read globals too
        child = nested.pop()
        read |= {s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()}
        nested += child.get_children()
    return bound, read - bound


def reason_to_keep(cells: list[dict], index: int) -> str | None:
    """Why cell `index` is not a figure cell, or None when it is one."""
    cell = cells[index]
    text = source(cell)
    if not only_images(cell):
        return "its outputs are not images only"
    if MARKERS.search(text):
        return "it is exported or holds a classroom task"
    if code_lines(text) < MIN_LINES:
        return f"fewer than {MIN_LINES} lines of code"
    own = names(text)
    if own is None:
        return "not plain Python"
    live = {name for name in own[0] if not HELPER.match(name)}
    for later in cells[index + 1 :]:
        if not live:
            break
        if later["cell_type"] != "code":
            continue
        found = names(source(later))
        if found is None:  # not plain Python: count every word in it as read
            found = set(), set(re.findall(r"\w+", source(later)))
        if used := live & found[1]:
            return f"a later cell uses {', '.join(sorted(used))}"
        live -= found[0]  # redefined: later reads are of the new value
    return None


def figure_cells(notebook: Path) -> list[int]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        i
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code" and reason_to_keep(cells, i) is None
    ]


def tagged(metadata: dict) -> dict:
    tags = metadata.get("tags", [])
    return {
        **metadata,
        "tags": tags if TAG in tags else [*tags, TAG],
        "jupyter": {**metadata.get("jupyter", {}), **HIDDEN},
    }


def tag_notebook(notebook: Path, indices: list[int]) -> None:
    import jupytext  # the executor's writer (tools/execute.py), so the file keeps its form

    nb = jupytext.read(notebook)
    for i in indices:
        nb.cells[i].metadata = tagged(nb.cells[i].metadata)
    jupytext.write(nb, notebook)


def tag_percent_script(script: Path, cells: list[dict], indices: list[int]) -> None:
    """Rewrite the `# %%` line of each cell in indices; the script's cells are the notebook's."""
    from jupytext.cell_metadata import metadata_to_text, text_to_metadata

    lines = script.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [n for n, line in enumerate(lines) if re.match(r"# %%( |$)", line)]
    if len(starts) != len(cells):
        raise SystemExit(
            f"{script}: {len(starts)} '# %%' cells, {len(cells)} in the notebook; sync the pair"
        )
    for i in indices:
        line = lines[starts[i]].rstrip("\n")
        if line.startswith("# %% [markdown]") or cells[i]["cell_type"] != "code":
            raise SystemExit(f"{script}: cell {i} is not the notebook's code cell; sync the pair")
        title, metadata = text_to_metadata(line[len("# %%") :].strip(), allow_title=True)
        lines[starts[i]] = "# %% " + metadata_to_text(title, tagged(metadata)) + "\n"
    script.write_text("".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="chapter notebooks (default: every chapters/NN_*.ipynb)",
    )
    parser.add_argument(
        "--apply", action="store_true", help="tag the cells (default: only list them)"
    )
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    for notebook in notebooks:
        if notebook.suffix != ".ipynb" or not notebook.is_file():
            parser.error(f"notebooks: {notebook} is not a notebook file (.ipynb)")
        script = notebook.with_suffix(".py")
        if args.apply and not script.is_file():
            parser.error(f"notebooks: {notebook} has no jupytext pair {script.name}")
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        indices = figure_cells(notebook)
        for i in indices:
            first = source(cells[i]).strip().splitlines()[0]
            done = TAG in cells[i]["metadata"].get("tags", [])
            print(f"{notebook.name} cell {i}: {first[:70]}{'  (tagged)' if done else ''}")
        todo = [i for i in indices if TAG not in cells[i]["metadata"].get("tags", [])]
        if args.apply and todo:
            tag_percent_script(script, cells, todo)
            tag_notebook(notebook, todo)
    if not args.apply:
        print("(nothing changed; --apply tags them)", file=sys.stderr)


if __name__ == "__main__":
    main()
