"""Build a chapter: sync the jupytext pair, execute the notebook in place, re-export the package.

    python tools/execute.py chapters/01_tokenizer.py [more chapters or solutions ...]

The percent-format ``.py`` is the text we edit. This script reads it, runs every cell top to
bottom in a fresh ``python3`` kernel on the CPU under fixed settings, and writes both files of
the pair from the executed notebook, so they cannot drift. Then it runs ``tools/export.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
# The settings chapters/conftest.py gives nbval too; the replay also swaps in other floating-point
# kernels (see there), so that a stored digit which depends on them fails the replay.
FIXED_ENV = {
    "OMP_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "TQDM_DISABLE": "1",
    "CUDA_VISIBLE_DEVICES": "",
}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def build(source: Path, timeout: int) -> None:
    py, ipynb = source.with_suffix(".py"), source.with_suffix(".ipynb")
    if not py.exists():
        raise SystemExit(f"{py} not found: a chapter is edited as its percent-format .py file")
    notebook = jupytext.read(py)
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"c{index:03d}"  # stable ids keep diffs of the .ipynb small
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(py.parent)}},
    )
    client.execute()
    jupytext.write(notebook, ipynb)
    jupytext.write(notebook, py, fmt="py:percent")
    print(f"executed {ipynb.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("chapters", nargs="+", type=Path, help="chapter .py (or .ipynb) files")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    args = parser.parse_args()
    os.environ.update(FIXED_ENV)
    for chapter in args.chapters:
        build(chapter.resolve(), args.timeout)
    return subprocess.call([sys.executable, str(ROOT / "tools" / "export.py")])


if __name__ == "__main__":
    sys.exit(main())
