"""Tests of llmbook.attention (chapter 04): the teaching attention against torch's fused kernel,
causality as a property, dropout behaviour and error messages."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention

ATOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def qkv(batch=(2, 3), n_queries=5, n_keys=5, d=8, d_v=6, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, n_queries, d, generator=g, dtype=dtype)
    k = torch.randn(*batch, n_keys, d, generator=g, dtype=dtype)
    v = torch.randn(*batch, n_keys, d_v, generator=g, dtype=dtype)
    return q, k, v


# ---------------------------------------------------------------------------- causal_mask


def test_causal_mask_square_is_lower_triangle():
    expected = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    mask = causal_mask(4)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)


def test_causal_mask_more_keys_is_bottom_right_aligned():
    # Two new queries after three cached keys: absolute positions 3 and 4.
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(2, 5), expected)
    # One query (generation step) may see every key.
    assert causal_mask(1, 7).all()


@given(st.integers(1, 12), st.integers(0, 12))
def test_causal_mask_rule(n_queries, extra):
    n_keys = n_queries + extra
    mask = causal_mask(n_queries, n_keys)
    assert mask.shape == (n_queries, n_keys)
    for i in range(n_queries):
        position = n_keys - n_queries + i
        for j in range(n_keys):
            assert bool(mask[i, j]) == (j <= position)


def test_causal_mask_differs_from_torch_is_causal_when_lengths_differ():
    # torch's is_causal aligns the triangle top-left: with Tq < Tk the last query would not see
    # the last keys. A KV cache needs bottom-right alignment, which causal_mask gives.
    top_left = torch.ones(2, 5, dtype=torch.bool).tril()
    assert not torch.equal(causal_mask(2, 5), top_left)
    assert torch.equal(causal_mask(5, 5), torch.ones(5, 5, dtype=torch.bool).tril())


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((0,), ValueError, "n_queries must be >= 1"),
        ((-1,), ValueError, "n_queries must be >= 1"),
        ((3, 2), ValueError, "n_keys must be >= 3, got 2"),
        ((2.0,), TypeError, "n_queries must be an int"),
        ((True,), TypeError, "n_queries must be an int"),
        ((2, "5"), TypeError, "n_keys must be an int"),
    ],
)
def test_causal_mask_errors(args, error, message):
    with pytest.raises(error, match=message):
        causal_mask(*args)


# ---------------------------------------------------------------------------- against torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_without_mask(dtype):
    q, k, v = qkv(n_queries=4, n_keys=7, dtype=dtype)
    ours = scaled_dot_product_attention(q, k, v)
    theirs = F.scaled_dot_product_attention(q, k, v)
    assert ours.shape == (2, 3, 4, 6)
    torch.testing.assert_close(ours, theirs, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_is_causal(dtype):
    q, k, v = qkv(dtype=dtype)
    ours = scaled_dot_product_attention(q, k, v, is_causal=True)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, theirs, atol=ATOL[dtype], rtol=0)
    # ... and is_causal is the same as the explicit mask when Tq == Tk.
    explicit = scaled_dot_product_attention(q, k, v, mask=causal_mask(5))
    torch.testing.assert_close(ours, explicit, atol=0, rtol=0)


@pytest.mark.parametrize("n_queries, n_keys", [(3, 7), (7, 3), (1, 4)])
def test_is_causal_follows_torch_top_left_alignment(n_queries, n_keys):
    q, k, v = qkv(n_queries=n_queries, n_keys=n_keys)
    ours = scaled_dot_product_attention(q, k, v, is_causal=True)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_more_keys_than_queries_with_explicit_causal_mask(dtype):
    q, k, v = qkv(n_queries=3, n_keys=8, dtype=dtype)
    mask = causal_mask(3, 8)
    ours = scaled_dot_product_attention(q, k, v, mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, theirs, atol=ATOL[dtype], rtol=0)


def test_more_keys_than_queries_equals_last_rows_of_full_attention():
    # What a KV cache relies on: the last 3 queries over all 8 keys, with causal_mask(3, 8),
    # give the last 3 rows of causal attention over the full sequence.
    q, k, v = qkv(n_queries=8, n_keys=8)
    full = scaled_dot_product_attention(q, k, v, mask=causal_mask(8))
    last = scaled_dot_product_attention(q[..., 5:, :], k, v, mask=causal_mask(3, 8))
    torch.testing.assert_close(last, full[..., 5:, :], atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_with_boolean_mask(dtype):
    q, k, v = qkv(n_queries=4, n_keys=6, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 1, 4, 6, generator=g) > 0.4  # broadcast over the second axis
    mask[..., 0] = True  # every query may attend somewhere
    ours = scaled_dot_product_attention(q, k, v, mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, theirs, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_with_additive_mask(dtype):
    q, k, v = qkv(n_queries=4, n_keys=6, dtype=dtype)
    g = torch.Generator().manual_seed(2)
    bias = torch.randn(4, 6, generator=g, dtype=dtype)  # e.g. a relative-position bias
    bias[0, 3:] = float("-inf")
    ours = scaled_dot_product_attention(q, k, v, mask=bias)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(ours, theirs, atol=ATOL[dtype], rtol=0)


def test_additive_minus_inf_equals_boolean_mask():
    q, k, v = qkv()
    boolean = causal_mask(5)
    additive = torch.zeros(5, 5).masked_fill(~boolean, float("-inf"))
    a = scaled_dot_product_attention(q, k, v, mask=boolean)
    b = scaled_dot_product_attention(q, k, v, mask=additive)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_matches_torch_with_custom_scale():
    q, k, v = qkv()
    ours = scaled_dot_product_attention(q, k, v, scale=0.05, is_causal=True)
    theirs = F.scaled_dot_product_attention(q, k, v, scale=0.05, is_causal=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch", [(), (3,), (2, 3), (2, 1, 4)])
def test_leading_shapes(batch):
    q, k, v = qkv(batch=batch, n_queries=4, n_keys=4)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    assert out.shape == (*batch, 4, 6)
    assert weights.shape == (*batch, 4, 4)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=0
    )


def test_batch_axes_broadcast():
    q, _, _ = qkv(batch=(2, 3))
    _, k, v = qkv(batch=(1, 3), seed=1)  # shared keys and values across the first axis
    ours = scaled_dot_product_attention(q, k, v)
    expected = scaled_dot_product_attention(q, k.expand(2, 3, 5, 8), v.expand(2, 3, 5, 6))
    torch.testing.assert_close(ours, expected, atol=0, rtol=0)


def test_fully_masked_row_gives_zeros_like_torch():
    q, k, v = qkv(batch=(2,), n_queries=3, n_keys=4)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert not out.isnan().any()
    assert torch.equal(weights[:, 1], torch.zeros(2, 4))
    assert torch.equal(out[:, 1], torch.zeros(2, 6))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_fully_masked_row_has_finite_gradients_equal_to_torch():
    # softmax of a row of -inf is 0/0: neither the output nor the gradient may become NaN.
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k, v = (torch.randn(2, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    k.requires_grad_(True)
    v.requires_grad_(True)
    mask = torch.ones(3, 4, dtype=torch.bool).tril(1)
    mask[2] = False
    ours = torch.autograd.grad(scaled_dot_product_attention(q, k, v, mask=mask).sum(), (q, k, v))
    theirs = torch.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum(), (q, k, v)
    )
    for name, a, b in zip("qkv", ours, theirs):
        assert torch.isfinite(a).all(), name
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------- weights


@settings(deadline=None, max_examples=40)
@given(
    n_queries=st.integers(1, 6),
    extra=st.integers(0, 4),
    d=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    causal=st.booleans(),
)
def test_weights_rows_sum_to_one_and_future_is_exactly_zero(n_queries, extra, d, seed, causal):
    n_keys = n_queries + extra
    q, k, v = qkv(batch=(2,), n_queries=n_queries, n_keys=n_keys, d=d, seed=seed)
    mask = causal_mask(n_queries, n_keys) if causal else None
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, n_queries))
    assert (weights >= 0).all()
    if causal:
        assert (weights[:, ~causal_mask(n_queries, n_keys)] == 0).all()
    torch.testing.assert_close(out, weights @ v)


def test_weights_are_softmax_of_scaled_scores():
    q, k, v = qkv(dtype=torch.float64)
    _, weights = scaled_dot_product_attention(q, k, v, return_weights=True)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(weights, expected, atol=1e-14, rtol=0)


# ---------------------------------------------------------------------------- causality


@settings(deadline=None, max_examples=30)
@given(
    n_tokens=st.integers(2, 10),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_causal_self_attention_never_looks_ahead(n_tokens, data, seed):
    """Changing tokens at positions > t never changes the output at positions <= t."""
    torch.manual_seed(seed)
    vocab, d_in = 20, 8
    embed = torch.nn.Embedding(vocab, d_in)
    attention = CausalSelfAttention(d_in, 6).eval()
    ids = torch.tensor(
        data.draw(st.lists(st.integers(0, vocab - 1), min_size=n_tokens, max_size=n_tokens))
    )
    t = data.draw(st.integers(0, n_tokens - 2))
    changed = ids.clone()
    changed[t + 1 :] = torch.tensor(
        data.draw(
            st.lists(
                st.integers(0, vocab - 1), min_size=n_tokens - t - 1, max_size=n_tokens - t - 1
            )
        )
    )
    with torch.no_grad():
        before = attention(embed(ids)[None])
        after = attention(embed(changed)[None])
    assert torch.equal(before[:, : t + 1], after[:, : t + 1])


def test_without_the_mask_the_future_leaks():
    # The property above can fail: attention without a mask does look ahead.
    torch.manual_seed(0)
    q, k, v = qkv(batch=(1,), n_queries=6, n_keys=6)
    v2 = v.clone()
    v2[:, 5] += 1.0  # change only the last position
    k2 = k.clone()
    k2[:, 5] += 1.0
    unmasked = scaled_dot_product_attention(q, k, v) - scaled_dot_product_attention(q, k2, v2)
    masked = scaled_dot_product_attention(q, k, v, mask=causal_mask(6)) - (
        scaled_dot_product_attention(q, k2, v2, mask=causal_mask(6))
    )
    assert unmasked[:, :5].abs().max() > 1e-3
    assert torch.equal(masked[:, :5], torch.zeros(1, 5, 6))


def test_prefix_gives_the_same_outputs_as_the_full_sequence():
    # The mask used in training is the one inference needs: the output at position t is the
    # same whether the model sees the first t+1 tokens or the whole sequence.
    torch.manual_seed(0)
    attention = CausalSelfAttention(8, 4).eval()
    x = torch.randn(2, 7, 8)
    full = attention(x)
    for t in range(1, 8):
        torch.testing.assert_close(attention(x[:, :t]), full[:, :t], atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------- the module


def test_module_shapes_attributes_and_repr():
    attention = CausalSelfAttention(16, 8, dropout=0.1, bias=True)
    assert isinstance(attention.q_proj, torch.nn.Linear)
    assert attention.k_proj.weight.shape == (8, 16)
    assert attention.v_proj.bias is not None
    assert CausalSelfAttention(16, 8).q_proj.bias is None
    x = torch.randn(3, 5, 16)
    out, weights = attention.eval()(x, return_weights=True)
    assert out.shape == (3, 5, 8)
    assert weights.shape == (3, 5, 5)
    assert "d_in=16, d_out=8, dropout=0.1" in repr(attention)
    assert sum(p.numel() for p in attention.parameters()) == 3 * (16 * 8 + 8)


def test_module_matches_torch_fused_attention_and_backward():
    torch.manual_seed(0)
    attention = CausalSelfAttention(12, 6, bias=True).double()
    x = torch.randn(2, 9, 12, dtype=torch.float64, requires_grad=True)
    out = attention(x)
    q, k, v = attention.q_proj(x), attention.k_proj(x), attention.v_proj(x)
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, reference, atol=1e-12, rtol=0)
    (grad_ours,) = torch.autograd.grad(out.square().sum(), x)
    (grad_ref,) = torch.autograd.grad(reference.square().sum(), x)
    torch.testing.assert_close(grad_ours, grad_ref, atol=1e-10, rtol=0)


def test_module_accepts_unbatched_input():
    torch.manual_seed(0)
    attention = CausalSelfAttention(4, 3)
    x = torch.randn(6, 4)
    torch.testing.assert_close(attention(x), attention(x[None])[0])


# ---------------------------------------------------------------------------- dropout


def test_dropout_zero_equals_no_dropout():
    q, k, v = qkv()
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=True),
        scaled_dot_product_attention(q, k, v, is_causal=True),
        atol=0,
        rtol=0,
    )


def test_dropout_zeroes_weights_and_rescales_the_rest():
    q, k, v = qkv(batch=(4, 8), n_queries=16, n_keys=16)
    _, clean = scaled_dot_product_attention(q, k, v, return_weights=True)
    torch.manual_seed(0)
    out, dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.25, return_weights=True)
    kept = dropped != 0
    assert 0.2 < 1 - kept.float().mean().item() < 0.3  # about a quarter dropped
    torch.testing.assert_close(dropped[kept], clean[kept] / 0.75)
    torch.testing.assert_close(out, dropped @ v)


def test_dropout_is_reproducible_with_a_seed():
    q, k, v = qkv()
    torch.manual_seed(123)
    a = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(123)
    b = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    c = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert torch.equal(a, b)
    assert not torch.equal(b, c)


def test_module_dropout_only_in_training_mode():
    torch.manual_seed(0)
    attention = CausalSelfAttention(8, 8, dropout=0.5)
    x = torch.randn(2, 10, 8)
    attention.eval()
    eval_1, eval_2 = attention(x), attention(x)
    assert torch.equal(eval_1, eval_2)
    no_dropout = CausalSelfAttention(8, 8)
    no_dropout.load_state_dict(attention.state_dict())
    assert torch.equal(eval_1, no_dropout(x))
    attention.train()
    torch.manual_seed(1)
    train_1 = attention(x)
    torch.manual_seed(1)
    train_2 = attention(x)
    assert torch.equal(train_1, train_2)
    assert not torch.allclose(train_1, eval_1)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, error, message",
    [
        pytest.param(lambda q, k, v: (q, k[..., :5], v), ValueError, "same head dimension", id="D"),
        pytest.param(
            lambda q, k, v: (q, k, v[..., :4, :]), ValueError, "same number of positions", id="Tk"
        ),
        pytest.param(
            lambda q, k, v: (q[0, 0, 0], k, v),
            ValueError,
            r"q must have shape \(\.\.\., T, D\)",
            id="1d",
        ),
        pytest.param(
            lambda q, k, v: (q.tolist(), k, v), TypeError, "q must be a torch.Tensor", id="list"
        ),
        pytest.param(
            lambda q, k, v: (q, None, v), TypeError, "k must be a torch.Tensor", id="None"
        ),
        pytest.param(lambda q, k, v: (q, k.double(), v), TypeError, "share a dtype", id="dtypes"),
        pytest.param(lambda q, k, v: (q.long(), k, v), TypeError, "floating-point", id="long"),
        pytest.param(lambda q, k, v: (q, k, v.bool()), TypeError, "floating-point", id="bool"),
        pytest.param(lambda q, k, v: (q[:, :2], k, v), ValueError, "batch", id="batch"),
        pytest.param(
            lambda q, k, v: (q.to("meta"), k, v),
            ValueError,
            "q, k and v must be on one device, got meta, cpu and cpu",
            id="meta-q",
        ),
        pytest.param(
            lambda q, k, v: (q, k, v.to("meta")), ValueError, "on one device", id="meta-v"
        ),
    ],
)
def test_input_errors(change, error, message):
    q, k, v = change(*qkv())
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize(
    "mask, error, message",
    [
        (torch.ones(5, 4, dtype=torch.bool), ValueError, "does not broadcast"),
        (torch.ones(4, 2, 3, 5, 5, dtype=torch.bool), ValueError, "does not broadcast"),
        (torch.ones(5, 5, dtype=torch.long), TypeError, "boolean"),
        (torch.zeros(5, 5, dtype=torch.float64), TypeError, "dtype"),
        ([[True] * 5] * 5, TypeError, "mask must be a torch.Tensor"),
        (
            torch.ones(5, 5, dtype=torch.bool, device="meta"),
            ValueError,
            "mask must be on q's device",
        ),
    ],
)
def test_mask_errors(mask, error, message):
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(*qkv(), mask=mask)


def test_mask_and_is_causal_together_is_an_error():
    with pytest.raises(ValueError, match="not both"):
        scaled_dot_product_attention(*qkv(), mask=causal_mask(5), is_causal=True)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_p_out_of_range(p):
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\)"):
        scaled_dot_product_attention(*qkv(), dropout_p=p)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        CausalSelfAttention(4, 4, dropout=p)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(d_in=0, d_out=4), ValueError, "d_in must be >= 1"),
        (dict(d_in=4, d_out=-2), ValueError, "d_out must be >= 1"),
        (dict(d_in=4.0, d_out=4), TypeError, "d_in must be an int"),
        (dict(d_in=4, d_out=4, dropout="0.1"), TypeError, "dropout must be a float"),
    ],
)
def test_module_construction_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        CausalSelfAttention(**kwargs)


@pytest.mark.parametrize(
    "x, error, message",
    [
        pytest.param(
            torch.randn(2, 5, 7),
            ValueError,
            r"x must have shape \(B, T, d_in=8\), got \(2, 5, 7\)",
            id="width",
        ),
        pytest.param(torch.randn(8), ValueError, r"x must have shape \(B, T, d_in=8\)", id="1d"),
        pytest.param([[0.0] * 8], TypeError, "x must be a torch.Tensor, got list", id="list"),
        pytest.param(
            torch.zeros(2, 5, dtype=torch.long),
            TypeError,
            "token ids go through an embedding",
            id="ids",
        ),
        pytest.param(torch.zeros(2, 5, 8, dtype=torch.long), TypeError, "torch.int64", id="long"),
        pytest.param(
            torch.zeros(2, 0, 8), ValueError, r"at least one position \(T >= 1\)", id="T=0"
        ),
        pytest.param(torch.zeros(0, 8), ValueError, r"T >= 1", id="T=0-unbatched"),
        pytest.param(
            torch.zeros(2, 5, 8, dtype=torch.float64),
            TypeError,
            "x has dtype torch.float64 but the layer's weights have dtype torch.float32",
            id="float64",
        ),
        pytest.param(
            torch.zeros(2, 5, 8, dtype=torch.bfloat16), TypeError, "torch.bfloat16", id="bfloat16"
        ),
        pytest.param(
            torch.empty(2, 5, 8, device="meta"),
            ValueError,
            "x is on meta but the layer's weights are on cpu",
            id="device",
        ),
    ],
)
def test_module_input_errors(x, error, message):
    attention = CausalSelfAttention(8, 4)
    with pytest.raises(error, match=message):
        attention(x)


@pytest.mark.parametrize(
    "scale, error, message",
    [
        pytest.param(float("nan"), ValueError, "scale must be a finite number > 0", id="nan"),
        pytest.param(float("inf"), ValueError, "got inf", id="inf"),
        pytest.param(-float("inf"), ValueError, "got -inf", id="-inf"),
        pytest.param(0.0, ValueError, "got 0.0", id="zero"),
        pytest.param(-0.5, ValueError, "got -0.5", id="negative"),
        pytest.param("0.5", TypeError, "scale must be a number or None, got str", id="str"),
        pytest.param(True, TypeError, "got bool", id="bool"),
        pytest.param(torch.tensor(0.5), TypeError, "got Tensor", id="tensor"),
    ],
)
def test_scale_errors(scale, error, message):
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(*qkv(), scale=scale)


@pytest.mark.parametrize("is_causal", [1, "yes", None])
def test_is_causal_must_be_a_bool(is_causal):
    with pytest.raises(TypeError, match="is_causal must be a bool"):
        scaled_dot_product_attention(*qkv(), is_causal=is_causal)


@pytest.mark.parametrize("n_queries, n_keys", [(0, 4), (3, 0), (0, 0)])
def test_empty_queries_or_keys_match_torch(n_queries, n_keys):
    q, k, v = qkv(n_queries=n_queries, n_keys=n_keys)
    ours = scaled_dot_product_attention(q, k, v)
    theirs = F.scaled_dot_product_attention(q, k, v)
    assert ours.shape == theirs.shape == (2, 3, n_queries, 6)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_module_works_in_the_dtype_of_its_weights(dtype):
    torch.manual_seed(0)
    attention = CausalSelfAttention(8, 4).to(dtype)
    x = torch.randn(2, 5, 8, dtype=dtype)
    out = attention(x)
    assert out.dtype == dtype
    reference = F.scaled_dot_product_attention(
        attention.q_proj(x), attention.k_proj(x), attention.v_proj(x), is_causal=True
    )
    tolerance = 1e-12 if dtype == torch.float64 else 2e-2
    torch.testing.assert_close(out, reference, atol=tolerance, rtol=tolerance)


def test_module_accepts_other_float_dtypes_under_autocast():
    torch.manual_seed(0)
    attention = CausalSelfAttention(8, 4)  # float32 weights
    x = torch.randn(2, 5, 8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(x)
    assert out.shape == (2, 5, 4)
    assert torch.isfinite(out.float()).all()


def test_check_false_gives_the_same_result():
    q, k, v = qkv()
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, mask=causal_mask(5), check=False),
        scaled_dot_product_attention(q, k, v, mask=causal_mask(5)),
        atol=0,
        rtol=0,
    )


def test_module_forward_validates_x_only(monkeypatch):
    # The module checks x at its boundary and skips the function's argument checks per call.
    import llmbook.attention as attention_module

    def fail(*args, **kwargs):
        raise AssertionError("check_attention_inputs called on the module's hot path")

    monkeypatch.setattr(attention_module, "check_attention_inputs", fail)
    out = CausalSelfAttention(8, 4)(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 4)
    with pytest.raises(AssertionError, match="hot path"):
        attention_module.scaled_dot_product_attention(*qkv())


def test_causal_mask_device_and_module_follow_the_input():
    assert causal_mask(3, 4, device="meta").device.type == "meta"
    attention = CausalSelfAttention(4, 2).to(device="meta")
    assert attention(torch.empty(2, 3, 4, device="meta")).device.type == "meta"
