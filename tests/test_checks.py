"""Tests of llmbook.checks, the argument checks every chapter module shares."""

import numpy as np
import pytest
import torch

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


# ---------------------------------------------------------------------------- added for chapter 06

from llmbook.checks import check_bool, check_choice, check_positive_float  # noqa: E402


def test_check_positive_float():
    assert check_positive_float(1e-5, "eps") == 1e-5 and check_positive_float(2, "eps") == 2.0
    assert type(check_positive_float(np.float32(0.5), "eps")) is float


@pytest.mark.parametrize(
    "value, error, message",
    [
        pytest.param(0.0, ValueError, r"eps must be a finite number > 0, got 0.0", id="zero"),
        pytest.param(
            -1e-6, ValueError, r"eps must be a finite number > 0, got -1e-06", id="negative"
        ),
        pytest.param(
            float("nan"), ValueError, r"eps must be a finite number > 0, got nan", id="nan"
        ),
        pytest.param(
            float("inf"), ValueError, r"eps must be a finite number > 0, got inf", id="inf"
        ),
        pytest.param("1e-5", TypeError, r"eps must be a float > 0, got str", id="string"),
        pytest.param(True, TypeError, r"eps must be a float > 0, got bool", id="bool"),
        pytest.param(None, TypeError, r"eps must be a float > 0, got NoneType", id="none"),
    ],
)
def test_check_positive_float_rejects(value, error, message):
    with pytest.raises(error, match=message):
        check_positive_float(value, "eps")


def test_check_choice():
    assert check_choice("gelu", "activation", ("relu", "gelu")) == "gelu"
    for bad in ("GELU", "swish", None, ["gelu"], 3):
        with pytest.raises(ValueError, match=r"activation must be one of 'relu', 'gelu'; got"):
            check_choice(bad, "activation", ("relu", "gelu"))


def test_check_bool():
    assert check_bool(True, "bias") is True and check_bool(False, "bias") is False
    for bad in (0, 1, "yes", None):
        with pytest.raises(TypeError, match=r"bias must be True or False, got"):
            check_bool(bad, "bias")


# ---------------------------------------------------------------------------- attention inputs


def test_check_attention_inputs_accepts_valid_arguments():
    import torch

    from llmbook.checks import check_attention_inputs

    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(1, 6, 3)
    mask = torch.ones(4, 6, dtype=torch.bool)
    assert check_attention_inputs(q, k, v) is None
    assert check_attention_inputs(q, k, v, mask, dropout_p=0.1, scale=0.5) is None
    assert check_attention_inputs(q, k, v, torch.zeros(2, 1, 6), is_causal=False) is None


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        pytest.param(
            {"dropout_p": 1.0}, ValueError, r"dropout_p must be in \[0, 1\)", id="dropout"
        ),
        pytest.param({"scale": float("nan")}, ValueError, "scale must be a finite", id="nan"),
        pytest.param({"is_causal": 0}, TypeError, "is_causal must be a bool, got int", id="causal"),
        pytest.param(
            {"mask": np.ones((4, 6), dtype=bool)}, TypeError, "mask must be a torch.Tensor", id="np"
        ),
    ],
)
def test_check_attention_inputs_errors(kwargs, error, message):
    import torch

    from llmbook.checks import check_attention_inputs

    with pytest.raises(error, match=message):
        check_attention_inputs(torch.randn(4, 8), torch.randn(6, 8), torch.randn(6, 3), **kwargs)


def test_check_layer_input_names_the_argument_and_width():
    import torch

    from llmbook.checks import check_layer_input

    weight = torch.zeros(4, 32)
    check_layer_input(torch.zeros(2, 3, 32), 32, weight)  # fits: no error
    with pytest.raises(ValueError, match=r"h must have shape \(B, T, d_model=32\), got \(3, 16\)"):
        check_layer_input(torch.zeros(3, 16), 32, weight, name="h", width_name="d_model")
    # a dtype mismatch on a device autocast does not know is still a TypeError, not a crash
    with pytest.raises(TypeError, match="x has dtype torch.float64"):
        check_layer_input(
            torch.empty(2, 3, 32, device="meta", dtype=torch.float64), 32, weight.to("meta")
        )


# ---------------------------------------------------------------- check_index_tensor, check_float_dtype


def test_check_index_tensor_accepts_and_converts():
    import torch

    from llmbook.checks import check_index_tensor

    ids = torch.tensor([[0, 4], [2, 1]])
    assert check_index_tensor(ids, 5) is ids  # int64: unchanged, no copy
    ids32 = ids.int()
    assert check_index_tensor(ids32, 5) is ids32  # int32: nn.Embedding takes it as is
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.uint16, torch.uint32):
        out = check_index_tensor(ids.to(dtype), 5)
        assert out.dtype == torch.long and torch.equal(out, ids)
    assert check_index_tensor(torch.zeros(0, dtype=torch.long), 5).shape == (0,)
    meta = torch.zeros(3, dtype=torch.long, device="meta")
    assert check_index_tensor(meta, 5) is meta  # no values to read on meta: type check only


@pytest.mark.parametrize(
    "make, error, message",
    [
        pytest.param(
            lambda t: [1, 2], TypeError, r"pos must be a torch.Tensor .* got list", id="list"
        ),
        pytest.param(
            lambda t: t.tensor([1.0]),
            TypeError,
            r"pos must hold integers .*torch.float32",
            id="float",
        ),
        pytest.param(
            lambda t: t.tensor([True]), TypeError, r"pos must hold integers .*torch.bool", id="bool"
        ),
        pytest.param(
            lambda t: t.tensor([5]),
            ValueError,
            r"pos contains 5, but n is 5: .*\[0, 4\]",
            id="high",
        ),
        pytest.param(
            lambda t: t.tensor([-2]), ValueError, r"pos contains -2, but n is 5", id="negative"
        ),
        pytest.param(
            lambda t: t.tensor([2**64 - 1], dtype=t.uint64),
            ValueError,
            r"pos contains 18446744073709551615, but n is 5",
            id="uint64-above-int64",
        ),
    ],
)
def test_check_index_tensor_rejects(make, error, message):
    import torch

    from llmbook.checks import check_index_tensor

    with pytest.raises(error, match=message):
        check_index_tensor(make(torch), 5, "pos", "n")


def test_check_float_dtype():
    import torch

    from llmbook.checks import check_float_dtype

    for ok in (None, torch.float32, torch.float64, torch.bfloat16, torch.float16):
        assert check_float_dtype(ok) is ok
    for bad in (torch.int64, torch.bool, torch.complex64, "float32", float, 32):
        with pytest.raises(TypeError, match=r"dtype must be None or a floating-point torch.dtype"):
            check_float_dtype(bad)


# ----------------------------------------------------------------------------- token ids (chapter 02)


@pytest.mark.parametrize(
    "ids, expected",
    [
        pytest.param([3, 0, 7], [3, 0, 7], id="list"),
        pytest.param((3, 0), [3, 0], id="tuple"),
        pytest.param(range(4), [0, 1, 2, 3], id="range"),
        pytest.param([np.int64(5), np.uint16(6)], [5, 6], id="numpy-scalars"),
        pytest.param([], [], id="empty"),
        pytest.param([2**32 - 1], [2**32 - 1], id="largest"),
    ],
)
def test_check_token_ids_turns_sequences_into_long_tensors(ids, expected):
    import torch

    from llmbook.checks import check_token_ids

    out = check_token_ids(ids)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.long and out.tolist() == expected


def test_check_token_ids_keeps_arrays_and_converts_tensors():
    import torch

    from llmbook.checks import check_token_ids

    array = np.arange(5, dtype=np.uint16)
    assert check_token_ids(array) is array  # memory maps stay lazy
    assert check_token_ids(torch.arange(4, dtype=torch.int32)).dtype == torch.long
    assert check_token_ids(torch.arange(4, dtype=torch.uint8)).tolist() == [0, 1, 2, 3]
    big = torch.tensor([1, -1])
    assert check_token_ids(big, check_values=False) is not None  # the scan can be skipped...
    with pytest.raises(ValueError, match="wraps|0..4,294,967,295"):  # ...but never for uint64
        check_token_ids(np.array([2**63], dtype=np.uint64), check_values=False)


@pytest.mark.parametrize(
    "ids, error, message",
    [
        pytest.param(
            [1.5, 2.7], TypeError, r"tokens must hold ints, got float \(1.5\)", id="float-list"
        ),
        pytest.param([1, True], TypeError, "got bool", id="bool-in-list"),
        pytest.param(["a"], TypeError, "got str", id="str-list"),
        pytest.param("abc", TypeError, "tokens must be a list of ints, .* got str", id="str"),
        pytest.param(np.zeros(3), TypeError, "array of dtype float64", id="float-array"),
        pytest.param(
            np.array([1, 2], dtype=np.uint64) - 3,
            ValueError,
            "got 18,446,744,073,709,551,615",
            id="uint64-wrapped",
        ),
        pytest.param(
            [2**32],
            ValueError,
            "tokens must be in 0..4,294,967,295, got 4,294,967,296",
            id="too-large",
        ),
        pytest.param([-1], ValueError, "got -1", id="negative"),
        pytest.param(
            np.zeros((2, 2), dtype=np.int64),
            ValueError,
            r"tokens must be 1-D, got shape \(2, 2\)",
            id="2d",
        ),
    ],
)
def test_check_token_ids_errors(ids, error, message):
    from llmbook.checks import check_token_ids

    with pytest.raises(error, match=message):
        check_token_ids(ids, "tokens")


def test_check_fraction():
    from llmbook.checks import check_fraction

    assert (
        check_fraction(np.float64(0.25), "f") == 0.25
        and check_fraction(np.float32(0.5), "f") == 0.5
    )
    for bad in (0, 1, -0.5, 2.0, float("nan")):
        with pytest.raises(ValueError, match="f must be strictly between 0 and 1"):
            check_fraction(bad, "f")
    for bad in ("0.5", None, True):
        with pytest.raises(TypeError, match="f must be a float strictly between 0 and 1"):
            check_fraction(bad, "f")


def test_chapter_05_checks():
    from llmbook.checks import check_heads, check_length, check_optional_int, check_rope_base

    assert check_heads(64, 8, 2) == 8
    assert check_rope_base(500000) == 500000.0
    assert check_optional_int(None, "n") is None and check_optional_int(3, "n") == 3
    assert check_length(10, None) == 10 and check_length(10, 10) == 10
    for bad in (float("nan"), float("inf"), 1.0):
        with pytest.raises(ValueError, match="base must be a finite number > 1"):
            check_rope_base(bad)
    with pytest.raises(ValueError, match="beyond max_positions=9"):
        check_length(10, 9)


class _Rope:
    head_dim = 8


@pytest.mark.parametrize(
    "call, error, match",
    [
        pytest.param(
            lambda: _check_rope_module(10000.0, 8),
            TypeError,
            "rope must be a _Rope",
            id="rope-float",
        ),
        pytest.param(
            lambda: _check_rope_module(_Rope(), 16),
            ValueError,
            r"rope.head_dim \(8\)",
            id="rope-head-dim",
        ),
        pytest.param(
            lambda: _check_head_rows(np.zeros((12, 4)), 3),
            ValueError,
            "does not split",
            id="rows-numpy",
        ),
        pytest.param(
            lambda: _check_head_rows(torch.zeros(10, 4), 3),
            ValueError,
            "n_heads=3",
            id="rows-indivisible",
        ),
        pytest.param(
            lambda: _check_head_rows(torch.zeros(2, 6, 4), 2),
            ValueError,
            "does not split",
            id="rows-3d",
        ),
        pytest.param(
            lambda: _check_head_rows(torch.zeros(12, 4), 0),
            ValueError,
            "n_heads must be >= 1",
            id="rows-heads-0",
        ),
        pytest.param(
            lambda: _check_head_rows(torch.zeros(12, 4), 3.0),
            TypeError,
            "n_heads must be an int",
            id="rows-heads-float",
        ),
    ],
)
def test_chapter_05_layer_checks_reject(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_chapter_05_layer_checks_accept():
    rope = _Rope()
    assert _check_rope_module(None, 8) is None and _check_rope_module(rope, 8) is rope
    _check_head_rows(torch.zeros(12, 4), 3)
    _check_head_rows(torch.zeros(12), 3)


def _check_rope_module(rope, head_dim):
    from llmbook.checks import check_rope_module

    return check_rope_module(rope, head_dim, _Rope)


def _check_head_rows(weight, n_heads):
    from llmbook.checks import check_head_rows

    check_head_rows(weight, n_heads)
