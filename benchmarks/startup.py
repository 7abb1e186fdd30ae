"""Cold start: ``llmbook generate`` end to end, and ``load_model``, against ``import torch``.

    OMP_NUM_THREADS=1 python benchmarks/startup.py           # 9 rounds
    OMP_NUM_THREADS=1 python benchmarks/startup.py --quick   # 3 rounds
    python benchmarks/startup.py --other /tmp/old   # also another llmbook: /tmp/old/llmbook/

Each command runs in a fresh Python process, one of each per round (so a change of load on a
shared machine hits them alike), after one untimed round; a process is timed on the wall clock
and by the CPU time it used (user + system, from ``getrusage``), which on a loaded machine does
not count the time it waited for a CPU. The reference is ``python -c "import torch"``: what any
program that uses torch pays first. The ratio to it is taken in each round and reported as the
median over the rounds with its range (harness.py).

The commands run with ``OMP_NUM_THREADS`` as given (1 by default) and with Python writing its
bytecode caches (``PYTHONDONTWRITEBYTECODE`` removed, as in a normal installation; a process
that compiles llmbook's sources on every start would measure the compiler). Output: a Markdown
table, and ``benchmarks/results/startup[-other][-quick].json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import Run, cell, per_round, spread

PROMPT = "Once upon a time"


def commands(other: Path | None) -> dict[str, tuple[list[str], dict]]:
    """Label -> (argv, environment changes); the first is the reference. With ``other``, the
    ``llmbook generate`` of the package in ``other/llmbook`` too (first on ``PYTHONPATH``)."""
    python = sys.executable
    script = Path(python).with_name("llmbook")
    llmbook = [str(script)] if script.exists() else [python, "-m", "llmbook.cli"]
    if not script.exists() and shutil.which("llmbook"):
        llmbook = [shutil.which("llmbook")]
    generate = ["generate", PROMPT, "--max-new-tokens", "50", "--seed", "1", "--device", "cpu"]
    load = "from llmbook import load_model; load_model()"
    found = {
        'python -c "import torch"': ([python, "-c", "import torch"], {}),
        f'python -c "{load}"': ([python, "-c", load], {}),
        f"llmbook {shlex.join(generate)}": ([*llmbook, *generate], {}),
        "llmbook --help": ([*llmbook, "--help"], {}),
    }
    if other is not None:
        argv = [python, "-m", "llmbook.cli", *generate]
        found[f"the same, llmbook of {other}"] = (argv, {"PYTHONPATH": str(other)})
    return found


def run_once(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # from "/", so that the current folder (first on sys.path) holds no llmbook of its own
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd="/")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"{argv} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument(
        "--threads",
        default=os.environ.get("OMP_NUM_THREADS", "1"),
        help="OMP_NUM_THREADS of the commands (default: this one's, else 1)",
    )
    parser.add_argument("--other", type=Path, default=None,
                        help="a folder holding another version of the package (OTHER/llmbook/), "
                             "e.g. of the last commit: its llmbook generate is timed too")  # fmt: skip
    args = parser.parse_args()
    if args.other is not None and not (args.other / "llmbook" / "__init__.py").is_file():
        parser.error(f"--other {str(args.other)!r} must hold a package llmbook/ (__init__.py)")
    repeats = 3 if args.quick else args.repeats
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    run = Run("startup" if args.other is None else "startup-other", args.quick)
    run.header(f"cold start, each command a fresh process, OMP_NUM_THREADS={args.threads}")
    cmds = commands(args.other and args.other.resolve())
    for argv, changes in cmds.values():  # warm-up: the file cache, the bytecode caches
        run_once(argv, {**env, **changes})
    wall: dict[str, list[float]] = {label: [] for label in cmds}
    cpu: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(repeats):
        for label, (argv, changes) in cmds.items():
            w, c = run_once(argv, {**env, **changes})
            wall[label].append(w)
            cpu[label].append(c)
            run.wall_over_cpu.append(w / c if c > 0 else 1.0)
    run.samples = {"wall": wall, "cpu": cpu, "argv": cmds}
    reference = next(iter(cmds))
    rows = [
        [
            label,
            f"{spread(cpu[label])['median']:.2f}",
            cell(per_round(cpu[label], cpu[reference]), suffix="x"),
            f"{spread(wall[label])['median']:.2f}",
            cell(per_round(wall[label], wall[reference]), suffix="x"),
        ]
        for label in cmds
    ]
    run.table(
        f"seconds per process (medians over {repeats} rounds) and the ratio to "
        f"{reference} in the same round: median (min-max)",
        ["command", "CPU s", "CPU / import torch", "wall s", "wall / import torch"],
        rows,
    )
    run.save({"threads": str(args.threads)})


if __name__ == "__main__":
    main()
