"""What the benchmarks share: interleaved rounds timed on two clocks, medians with their spread,
the machine's facts and noise, Markdown tables to quote, and the JSON record of a run.

A benchmark runs its contenders in **rounds**: one run of each in turn, so a change of load on
a shared machine hits them alike. Each run is timed on the wall clock and on the process's CPU
clock. With one torch thread the CPU clock is the one to read (time the process was not running,
because another process was, is not counted); with several threads it would add them up, so
the wall clock is used. A ratio is taken **within each round** and reported as the median over
the rounds with its range, ``1.12 (1.05-1.18)``; the JSON file keeps every sample.

How noisy the machine was: the load average at the start and the end of the run (against the
number of CPUs), and the wall / CPU time of the timed runs (1.00: the process ran all the time
it was timed; 1.5: it waited a third of it).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def machine() -> dict:
    """Facts of this machine and process that a figure depends on."""
    facts = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    if "transformers" in sys.modules:
        facts["transformers"] = sys.modules["transformers"].__version__
    return facts


class Run:
    """One benchmark run: its clock, its timed samples, its tables; ``save()`` writes the JSON.

    ``run.rounds({"ours": f, "theirs": g}, repeats, warmup)`` times them; ``run.table(...)``
    prints a Markdown table and keeps it for the JSON file."""

    def __init__(self, name: str, quick: bool = False) -> None:
        self.name = name + ("-quick" if quick else "")
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_start = load_average()
        self.clock = "cpu" if torch.get_num_threads() == 1 else "wall"
        self.tables: list[dict] = []
        self.samples: dict[str, dict] = {}
        self.notes: list[str] = []
        self.wall_over_cpu: list[float] = []

    def header(self, what: str) -> None:
        facts = machine()
        print(
            f"{what}\n{facts['cpu']}, {facts['logical_cpus']} logical CPUs, torch {facts['torch']}"
            f" with {facts['torch_threads']} thread(s); times on the {self.clock} clock"
            f"{' (of this process)' if self.clock == 'cpu' else ''}; "
            f"load average {self.load_start} at the start"
        )

    def stopwatch(self) -> Callable[[], float]:
        """Start timing: ``stop = run.stopwatch(); ...; seconds = stop()`` (this run's clock)."""
        wall, cpu = time.perf_counter(), time.process_time()

        def stop() -> float:
            w, c = time.perf_counter() - wall, time.process_time() - cpu
            self.wall_over_cpu.append(w / c if c > 0 else 1.0)
            return c if self.clock == "cpu" else w

        return stop

    def time(self, fn: Callable[[], object]) -> float:
        """Seconds of one call of ``fn``, on this run's clock."""
        stop = self.stopwatch()
        fn()
        return stop()

    def rounds(self, steps: dict, repeats: int, warmup: int = 1, key: str | None = None) -> dict:
        """Run ``steps`` (name -> callable) in ``repeats`` rounds after ``warmup`` untimed ones;
        the seconds of each, ``{name: [s_1, ..., s_repeats]}`` (kept under ``key`` for the JSON)."""
        for _ in range(warmup):
            for step in steps.values():
                step()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(repeats):
            for name, step in steps.items():
                times[name].append(self.time(step))
        if key is not None:
            self.samples[key] = times
        return times

    def matmul_peak(self, n: int, tries: int = 3) -> float:
        """Float32 FLOP/s of the best of ``tries`` ``(n, n) @ (n, n)`` products (``2 n^3``
        FLOPs each), on this run's clock: the machine's peak, as measured in this round."""
        a, b = torch.randn(n, n), torch.randn(n, n)
        return 2 * n**3 / min(self.time(lambda: a @ b) for _ in range(tries))

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        """Print a Markdown table (a title line, then the table) and keep it for the JSON."""
        self.tables.append({"title": title, "columns": columns, "rows": rows})
        print(f"\n{title}\n")
        print(markdown(columns, rows))

    def noise(self) -> dict:
        """How noisy the machine was during this run: load averages and wall / CPU time."""
        ratios = self.wall_over_cpu or [1.0]
        facts = {"load_average_start": self.load_start, "load_average_end": load_average()}
        facts["wall_over_cpu"] = spread(ratios)
        facts["text"] = (
            f"machine noise: load average {self.load_start} -> {facts['load_average_end']} on "
            f"{os.cpu_count()} CPUs; wall / CPU time of the {len(ratios)} timed runs: median "
            f"{statistics.median(ratios):.2f}, max {max(ratios):.2f}"
        )
        return facts

    def save(self, extra: dict | None = None) -> Path:
        """Print the noise line and write ``benchmarks/results/<name>.json``; return its path."""
        noise = self.noise()
        print(f"\n{noise['text']}")
        record = {
            "benchmark": self.name,
            "command": command(),
            "date": self.started.isoformat(timespec="seconds"),
            "seconds": round(
                (datetime.datetime.now(datetime.timezone.utc) - self.started).total_seconds(), 1
            ),
            "machine": machine(),
            "clock": self.clock,
            "noise": noise,
            "tables": self.tables,
            "notes": self.notes,
            "samples": self.samples,
            **(extra or {}),
        }
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"recorded in {path.relative_to(RESULTS.parent.parent)}")
        return path


def command() -> str:
    """The command line that ran this benchmark, with its ``OMP_NUM_THREADS``."""
    threads = os.environ.get("OMP_NUM_THREADS")
    line = shlex.join(["python", *sys.argv])
    return f"OMP_NUM_THREADS={threads} {line}" if threads else line


def spread(values: list[float]) -> dict:
    """Median, quartiles and range of ``values``."""
    values = sorted(values)
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return {
        "median": statistics.median(values),
        "q1": q1,
        "q3": q3,
        "min": values[0],
        "max": values[-1],
        "n": len(values),
    }


def per_round(numerator: list[float], denominator: list[float]) -> list[float]:
    """The ratio in each round: ``numerator[i] / denominator[i]``."""
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def cell(values: list[float], digits: int = 2, suffix: str = "") -> str:
    """``median (min-max)`` of ``values``, e.g. ``1.12x (1.05-1.18)``."""
    s = spread(values)
    f = f"{{:.{digits}f}}"
    median, low, high = (f.format(s[k]) for k in ("median", "min", "max"))
    return f"{median}{suffix} ({low}-{high})" if len(values) > 1 else f"{median}{suffix}"


def percent(values: list[float]) -> str:
    """``median (min-max)`` of fractions, as percentages: ``78% (71-83)``."""
    s = spread([100 * v for v in values])
    return f"{s['median']:.0f}% ({s['min']:.0f}-{s['max']:.0f})"


def markdown(columns: list[str], rows: list[list]) -> str:
    """A Markdown table; numbers right-aligned, text left-aligned, cells padded to line up."""
    text = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(col)), *(len(r[i]) for r in text)) for i, col in enumerate(columns)]
    numeric = [all(_numeric(r[i]) for r in text) if text else False for i in range(len(columns))]

    def line(cells):
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if n else ("-" * (w + 2))
            for w, n in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line([str(c) for c in columns]), rule, *(line(r) for r in text)])


def _numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] in "-.") and not text.startswith("--")
