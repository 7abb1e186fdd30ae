"""nbval settings for replaying the chapters (and their solutions) under pytest.

Kernels inherit this process's environment, so the variables below make every replay use
the same conditions the stored outputs were produced under (see tools/execute.py).
"""

import os

os.environ.update(OMP_NUM_THREADS="1", PYTHONHASHSEED="0", TQDM_DISABLE="1")


def pytest_collectstart(collector):
    # Warnings and progress bars go to stderr and vary between machines: never compare them.
    if collector.path is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)
