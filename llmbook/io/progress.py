"""Progress bars alike in a terminal, in Jupyter and under test (hand-written; chapters 02, 08).

``tqdm.auto`` draws a widget in Jupyter and a line on stderr elsewhere. Two details make it
unreliable for a book whose notebooks are replayed: in Jupyter its widget class sets
``disable=False`` itself, so ``TQDM_DISABLE=1`` (which the book's executor and nbval set, so
stored outputs do not depend on timing) is ignored there; and without ipywidgets it warns on
import. :func:`progress_bar` honours ``TQDM_DISABLE`` everywhere and keeps the import quiet.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["progress_bar", "progress_disabled"]


def progress_disabled() -> bool:
    """True when the environment asks for no progress bars (``TQDM_DISABLE`` set and not 0)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A ``tqdm.auto`` bar, or a disabled one when ``enabled`` is False or TQDM_DISABLE is set."""
    with warnings.catch_warnings():  # in Jupyter without ipywidgets tqdm.auto warns, then uses text
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(iterable, disable=not enabled or progress_disabled(), **kwargs)
