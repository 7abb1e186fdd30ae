"""Check that the versions the project declares are the versions it works on.

    pip install nox uv
    nox -s oldest    # Python 3.10 with every direct dependency at its declared floor
    nox -s newest    # the newest Python with the newest release of everything

Each session builds a fresh environment with uv and runs the README's test command in it. They
download several GB (a CUDA build of torch from PyPI) and take a while, so CI does not run them;
run both whenever a floor in pyproject.toml changes. `oldest` resolves with uv's
``--resolution lowest-direct``: each dependency we name is installed at exactly its floor, so a
floor that does not work fails here rather than on a reader's machine.
"""

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["oldest", "newest"]

OLDEST_PYTHON, NEWEST_PYTHON = "3.10", "3.13"


def _run_suite(session: nox.Session) -> None:
    session.run(
        "python",
        "-c",
        "import torch, transformers; print(torch.__version__, transformers.__version__)",
    )
    env = {}
    cache = os.path.join(os.path.dirname(__file__), "..", "shared", "tiktoken_cache")
    if os.path.isdir(cache) and "TIKTOKEN_CACHE_DIR" not in os.environ:
        env["TIKTOKEN_CACHE_DIR"] = os.path.abspath(cache)
    session.run("python", "-m", "pytest", *session.posargs, env=env)


@nox.session(python=OLDEST_PYTHON)
def oldest(session: nox.Session) -> None:
    """The declared floors: Python 3.10 and every direct dependency at its lowest version."""
    session.install("--resolution", "lowest-direct", "-e", ".[dev,book]")
    _run_suite(session)


@nox.session(python=NEWEST_PYTHON)
def newest(session: nox.Session) -> None:
    """The newest releases of everything, on the newest Python the project declares."""
    session.install("--resolution", "highest", "-e", ".[dev,book]")
    _run_suite(session)
