"""nbval settings for replaying the chapters (and their solutions) under pytest.

Kernels inherit this process's environment. FIXED_ENV holds the settings tools/execute.py runs
under (one thread, fixed hash seed, no progress bars). OTHER_KERNELS gives every replay kernel
other floating-point kernels than the ones that wrote the stored outputs, at no cost in time:
on an AVX-512 CPU torch's AVX2 kernels (as on most laptops), and MKL's reproducible mode, which
on some CPUs rounds matrix-vector products differently. A printed digit that rounding decides (a
loss at many digits, a maximum difference) then fails the replay here, as on a reader's machine.
Variables already set win: e.g. MKL_CBWR=COMPATIBLE (other matrix products too, about a quarter
slower) or ATEN_CPU_CAPABILITY=default. LLMBOOK_REPLAY_THREADS sets the kernels' thread count
(default 1).
"""

import os

import pytest
import torch

FIXED_ENV = {
    "OMP_NUM_THREADS": os.environ.get("LLMBOOK_REPLAY_THREADS", "1"),
    "PYTHONHASHSEED": "0",
    "TQDM_DISABLE": "1",
}
os.environ.update(FIXED_ENV)


def other_kernels() -> dict[str, str]:
    """Variables that give a replay kernel other floating-point kernels than this machine's own."""
    env = {"MKL_CBWR": "AUTO"}  # MKL's reproducible mode (no effect without MKL)
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        env["ATEN_CPU_CAPABILITY"] = "avx2"  # torch's 256-bit kernels instead of its 512-bit ones
    return {name: os.environ.get(name, value) for name, value in env.items()}


OTHER_KERNELS = other_kernels()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    # A notebook's kernel starts in the setup of its first cell: only kernels get OTHER_KERNELS,
    # not the subprocesses of other tests, which may compare their results with this process's.
    saved = {name: os.environ.get(name) for name in OTHER_KERNELS}
    os.environ.update(OTHER_KERNELS)
    try:
        return (yield)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def pytest_collectstart(collector):
    # Warnings and progress bars go to stderr and vary between machines: never compare them.
    if collector.path is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_terminal_summary(terminalreporter):
    failed = terminalreporter.stats.get("failed", [])
    if any(report.nodeid.split("::")[0].endswith(".ipynb") for report in failed):
        settings = " ".join(f"{name}={value}" for name, value in OTHER_KERNELS.items())
        terminalreporter.write_line(
            f"The notebooks were replayed with {settings}, unlike tools/execute.py: a number that "
            "differs only in its last digits depends on the CPU. Print the bound it is asserted "
            "to meet, or round it to digits that no rounding error reaches."
        )
