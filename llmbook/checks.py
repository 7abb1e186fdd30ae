"""Argument checks shared by every chapter's module (hand-written: no chapter teaches them).

Bad input gets one kind of error everywhere: a ``TypeError`` when the type is wrong, a
``ValueError`` when the value is out of range, each naming the argument, what was given and
what is allowed.
"""

import numbers

__all__ = ["check_int", "check_dropout"]


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum`` (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_dropout(value: object, name: str = "dropout") -> float:
    """Return ``value`` as a float, or raise if it is not a probability in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__} ({value!r})")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)
