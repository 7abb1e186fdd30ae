"""Tests of llmbook.checks, the argument checks every chapter module shares."""

import numpy as np
import pytest

from llmbook.checks import check_dropout, check_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint16(9)])
def test_check_int_accepts_integers(value):
    assert check_int(value, "n") == int(value) and type(check_int(value, "n")) is int


@pytest.mark.parametrize("value", [2.0, "3", None, True, np.float32(2)])
def test_check_int_rejects_other_types(value):
    with pytest.raises(TypeError, match=r"n must be an int, got"):
        check_int(value, "n")


def test_check_int_minimum():
    assert check_int(0, "offset", minimum=0) == 0
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        check_int(0, "n")
    with pytest.raises(ValueError, match=r"d_model must be >= 2, got 1"):
        check_int(1, "d_model", minimum=2)


def test_check_dropout():
    assert check_dropout(0) == 0.0 and check_dropout(0.5) == 0.5
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\), got"):
            check_dropout(bad, "dropout_p")
    for bad in ("0.1", True, None):
        with pytest.raises(TypeError, match=r"dropout must be a float in \[0, 1\)"):
            check_dropout(bad)
