"""Tests of llmbook.multihead (chapter 05): multi-head attention, GQA/MQA and rotary embeddings."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook.multihead import (
    MultiHeadAttention,
    NaiveMultiHeadAttention,
    RotaryEmbedding,
    apply_rope,
    causal_attention,
    half_to_interleaved,
    interleaved_to_half,
    repeat_kv,
    rope_permutation,
    rotate_pairs,
    stack_heads,
)

LAYOUTS = ["half", "interleaved"]


def close(a, b, atol=1e-5):
    return torch.allclose(a, b, atol=atol, rtol=1e-4)


# ---------------------------------------------------------------- naive wrapper vs efficient


@pytest.mark.parametrize("bias", [False, True])
def test_naive_equals_efficient(bias):
    torch.manual_seed(0)
    naive = NaiveMultiHeadAttention(24, 3, bias=bias)
    mha = stack_heads(naive)
    x = torch.randn(2, 9, 24, requires_grad=True)
    out_naive, out_mha = naive(x), mha(x)
    assert out_mha.shape == (2, 9, 24)
    assert close(out_naive, out_mha)
    # the gradients agree too: stacking the heads' weights is the same function
    (g_naive,) = torch.autograd.grad(out_naive.square().sum(), x)
    (g_mha,) = torch.autograd.grad(out_mha.square().sum(), x)
    assert close(g_naive, g_mha, atol=1e-4)


def test_naive_differs_when_a_head_is_changed():
    torch.manual_seed(0)
    naive = NaiveMultiHeadAttention(16, 4)
    mha = stack_heads(naive)
    with torch.no_grad():
        naive.heads[2].v_proj.weight.add_(0.5)
    x = torch.randn(1, 5, 16)
    assert not close(naive(x), mha(x))


@pytest.mark.parametrize("n_kv_heads", [6, 3, 2, 1])
def test_fused_equals_naive_path(n_kv_heads):
    torch.manual_seed(1)
    rope = RotaryEmbedding(8, base=500000.0)
    fused = MultiHeadAttention(48, 6, n_kv_heads=n_kv_heads, rope=rope)
    naive = MultiHeadAttention(48, 6, n_kv_heads=n_kv_heads, rope=rope, impl="naive")
    naive.load_state_dict(fused.state_dict())
    x = torch.randn(3, 11, 48)
    positions = torch.arange(40, 51)
    assert close(fused(x, positions), naive(x, positions))
    out, weights = fused(x, return_weights=True)
    assert close(out, fused(x))
    assert weights.shape == (3, 6, 11, 11)
    assert close(weights.sum(-1), torch.ones(3, 6, 11))
    assert torch.all(weights.triu(1) == 0)


def _saved_for_backward_bytes(layer, x):
    """Bytes of the distinct storages autograd keeps for the backward pass of layer(x)."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x).sum()
    return sum(storages.values())


def test_default_is_the_fused_kernel(monkeypatch):
    """The exported default calls torch's fused attention and never stores the (T, T) weights."""
    torch.manual_seed(14)
    layer = MultiHeadAttention(32, 4)
    assert layer.impl == "fused"
    calls = []
    fused = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs.get("is_causal"))
        return fused(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    layer(torch.randn(1, 5, 32))
    assert calls == [True]
    monkeypatch.undo()
    # memory kept for backward: the naive path holds the (B, H, T, T) float32 weights, the
    # fused path only tensors of size T x D: less than one head's (T, T) matrix
    T = 512
    x = torch.randn(1, T, 32, requires_grad=True)
    fused_bytes = _saved_for_backward_bytes(layer, x)
    layer.impl = "naive"
    naive_bytes = _saved_for_backward_bytes(layer, x)
    assert naive_bytes >= 4 * T * T * 4
    assert fused_bytes < T * T * 4


# ---------------------------------------------------------------- GQA / MQA


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("use_rope", [False, True])
def test_gqa_equals_mha_with_repeated_kv_projections(n_kv_heads, use_rope):
    """A GQA layer is an MHA layer whose K/V projections repeat each K/V head for its group."""
    torch.manual_seed(2)
    d_model, n_heads, head_dim = 32, 4, 8
    rope = RotaryEmbedding(head_dim) if use_rope else None
    gqa = MultiHeadAttention(d_model, n_heads, n_kv_heads=n_kv_heads, bias=True, rope=rope)
    mha = MultiHeadAttention(d_model, n_heads, bias=True, rope=rope)
    groups = n_heads // n_kv_heads
    with torch.no_grad():
        mha.q_proj.load_state_dict(gqa.q_proj.state_dict())
        mha.o_proj.load_state_dict(gqa.o_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            source, target = getattr(gqa, name), getattr(mha, name)
            w = source.weight.view(n_kv_heads, head_dim, d_model).repeat_interleave(groups, dim=0)
            target.weight.copy_(w.reshape(n_heads * head_dim, d_model))
            b = source.bias.view(n_kv_heads, head_dim).repeat_interleave(groups, dim=0)
            target.bias.copy_(b.reshape(-1))
    x = torch.randn(2, 7, d_model)
    assert close(gqa(x), mha(x))
    n_params = sum(p.numel() for p in gqa.parameters())
    assert n_params == 2 * (d_model * d_model + d_model) + 2 * n_kv_heads * head_dim * (d_model + 1)


def test_plain_mha_matches_a_manual_computation():
    """n_kv_heads == n_heads: every head has its own K/V; compare with an explicit loop over heads."""
    torch.manual_seed(3)
    mha = MultiHeadAttention(20, 5, n_kv_heads=5)
    x = torch.randn(2, 6, 20)
    q, k, v = mha.q_proj(x), mha.k_proj(x), mha.v_proj(x)
    heads = []
    for h in range(5):
        s = slice(4 * h, 4 * h + 4)
        heads.append(
            F.scaled_dot_product_attention(q[..., s], k[..., s], v[..., s], is_causal=True)
        )
    assert close(mha(x), mha.o_proj(torch.cat(heads, dim=-1)))


def test_mqa_matches_a_manual_computation():
    torch.manual_seed(4)
    mqa = MultiHeadAttention(24, 6, n_kv_heads=1)
    assert mqa.k_proj.weight.shape == (4, 24) and mqa.v_proj.weight.shape == (4, 24)
    x = torch.randn(2, 5, 24)
    q = mqa.q_proj(x).view(2, 5, 6, 4).transpose(1, 2)  # (B, H, T, D)
    k = mqa.k_proj(x).unsqueeze(1).expand(2, 6, 5, 4)  # one K head seen by all six query heads
    v = mqa.v_proj(x).unsqueeze(1).expand(2, 6, 5, 4)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 5, 24)
    assert close(mqa(x), mqa.o_proj(out))


def test_repeat_kv_maps_query_head_to_its_group():
    kv = torch.arange(2 * 3).float().view(1, 2, 3, 1)  # (B, H_kv=2, T=3, D=1)
    rep = repeat_kv(kv, 3)
    assert rep.shape == (1, 6, 3, 1)
    for h in range(6):
        assert torch.equal(rep[:, h], kv[:, h // 3])
    assert repeat_kv(kv, 1) is kv


# ---------------------------------------------------------------- against torch.nn.MultiheadAttention


@pytest.mark.parametrize("bias", [False, True])
def test_equals_torch_multihead_attention(bias):
    torch.manual_seed(5)
    d_model, n_heads, T = 32, 4, 10
    ours = MultiHeadAttention(d_model, n_heads, bias=bias)
    ref = torch.nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        ref.out_proj.weight.copy_(ours.o_proj.weight)
        if bias:
            ref.in_proj_bias.copy_(
                torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias])
            )
            ref.out_proj.bias.copy_(ours.o_proj.bias)
    x = torch.randn(3, T, d_model)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # nn.MultiheadAttention: True = masked out
    expected, _ = ref(x, x, x, attn_mask=future, need_weights=False)
    assert close(ours(x), expected)
    ours.impl = "naive"
    assert close(ours(x), expected)


# ---------------------------------------------------------------- causality and caching


@pytest.mark.parametrize("impl", ["fused", "naive"])
def test_causal_future_tokens_do_not_change_the_past(impl):
    torch.manual_seed(6)
    mha = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8), impl=impl)
    x = torch.randn(2, 9, 32)
    y = x.clone()
    y[:, 5:] = torch.randn(2, 4, 32)
    out_x, out_y = mha(x), mha(y)
    assert close(out_x[:, :5], out_y[:, :5])
    assert not close(out_x[:, 5:], out_y[:, 5:])


@pytest.mark.parametrize("impl", ["fused", "naive"])
def test_attend_with_more_keys_than_queries(impl):
    """What a KV cache does: the last queries over all keys give the last rows of the full output."""
    torch.manual_seed(7)
    mha = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8), impl=impl)
    x = torch.randn(2, 8, 32)
    full = mha(x)
    q, k, v = mha.project(x)
    for n_new in (1, 3):
        assert close(mha.attend(q[:, :, -n_new:], k, v), full[:, -n_new:])
    # new tokens projected on their own, with explicit positions, match as well
    q_new, _, _ = mha.project(x[:, -3:], positions=torch.arange(5, 8))
    assert close(mha.attend(q_new, k, v), full[:, -3:])
    with pytest.raises(ValueError, match="1 <= Tq <= Tk"):
        mha.attend(q, k[:, :, :3], v[:, :, :3])


def test_dropout_only_in_training_and_dtype_kept():
    torch.manual_seed(8)
    mha = MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(1, 6, 16)
    mha.eval()
    assert torch.equal(mha(x), mha(x))
    mha.train()
    assert not close(mha(x), mha.eval()(x))
    half = MultiHeadAttention(16, 2, rope=RotaryEmbedding(8)).to(torch.bfloat16)
    assert half(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_positions_per_sequence():
    """(B, T) positions: each sequence of the batch may start at its own offset."""
    torch.manual_seed(9)
    mha = MultiHeadAttention(16, 2, rope=RotaryEmbedding(8))
    x = torch.randn(2, 4, 16)
    positions = torch.stack([torch.arange(0, 4), torch.arange(10, 14)])
    both = mha(x, positions)
    assert close(both[0], mha(x[:1], torch.arange(0, 4))[0])
    assert close(both[1], mha(x[1:], torch.arange(10, 14))[0])


# ---------------------------------------------------------------- max_positions


def test_max_positions_guard_and_no_limit():
    limited = RotaryEmbedding(8, max_positions=16)
    free = RotaryEmbedding(8)
    x = torch.randn(1, 2, 4, 8)
    assert torch.equal(limited(x, torch.arange(12, 16)), free(x, torch.arange(12, 16)))
    with pytest.raises(
        ValueError, match=r"positions must lie in \[0, max_positions=16\), got 13..16"
    ):
        limited(x, torch.arange(13, 17))
    with pytest.raises(ValueError, match="17 positions goes beyond max_positions=16"):
        limited(torch.randn(1, 2, 17, 8))
    # without a limit, far positions are computed on the fly, exactly as the formula says
    cos, sin = free.cos_sin(torch.tensor([100_000]))
    angles = 100_000 * free.inv_freq()
    assert close(cos[0], torch.cat([angles, angles]).cos(), atol=1e-6)
    assert close(sin[0], torch.cat([angles, angles]).sin(), atol=1e-6)


# ---------------------------------------------------------------- rotary embeddings


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    layout=st.sampled_from(LAYOUTS),
    start=st.integers(0, 10_000),
    seed=st.integers(0, 2**16),
)
def test_rope_preserves_norms(layout, start, seed):
    torch.manual_seed(seed)
    rope = RotaryEmbedding(16, layout=layout)
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    rotated = rope(x, torch.arange(start, start + 5))
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-9)
    assert not torch.allclose(rotated[..., 1:, :], x[..., 1:, :])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    layout=st.sampled_from(LAYOUTS),
    m=st.integers(0, 2000),
    n=st.integers(0, 2000),
    shift=st.integers(-2000, 2000),
    base=st.sampled_from([10000.0, 500000.0]),
)
def test_rope_scores_depend_only_on_the_offset(layout, m, n, shift, base):
    torch.manual_seed(m * 7919 + n)
    rope = RotaryEmbedding(32, base=base, layout=layout)
    q, k = torch.randn(2, 32, dtype=torch.float64).unbind(0)

    def score(pq, pk):
        rq = rope(q.view(1, 32), torch.tensor([pq]))
        rk = rope(k.view(1, 32), torch.tensor([pk]))
        return (rq * rk).sum()

    # angles are computed in float32: allow for their rounding (about 4e-4 rad at position 6000)
    tolerance = 1e-3 * float(q.norm() * k.norm())
    assert math.isclose(score(m, n), score(m + shift + 2000, n + shift + 2000), abs_tol=tolerance)


def test_rope_at_position_zero_is_identity_and_scores_change_with_offset():
    rope = RotaryEmbedding(8)
    x = torch.randn(3, 8)
    assert torch.equal(rope(x[:1], torch.tensor([0])), x[:1])
    q, k = torch.randn(2, 1, 8).unbind(0)
    scores = [float((rope(q, torch.tensor([d])) * k).sum()) for d in range(4)]
    assert len({round(s, 4) for s in scores}) == 4


def test_rotate_pairs_is_a_quarter_turn():
    x = torch.arange(1.0, 7.0)  # (6,)
    assert rotate_pairs(x, "half").tolist() == [-4.0, -5.0, -6.0, 1.0, 2.0, 3.0]
    assert rotate_pairs(x, "interleaved").tolist() == [-2.0, 1.0, -4.0, 3.0, -6.0, 5.0]
    for layout in LAYOUTS:  # four quarter turns are the identity
        y = x
        for _ in range(4):
            y = rotate_pairs(y, layout)
        assert torch.equal(y, x)


def test_layouts_agree_after_permutation():
    torch.manual_seed(10)
    perm = rope_permutation(8)
    assert perm.tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    half, inter = RotaryEmbedding(8, layout="half"), RotaryEmbedding(8, layout="interleaved")
    x = torch.randn(2, 3, 6, 8)
    positions = torch.arange(3, 9)
    assert close(inter(x, positions)[..., perm], half(x[..., perm], positions))
    w = torch.randn(3 * 8, 5)
    assert torch.equal(half_to_interleaved(interleaved_to_half(w, 3), 3), w)


@pytest.mark.parametrize("base", [10000.0, 500000.0])
def test_interleaved_layout_equals_complex_multiplication(base):
    """Meta's formulation: adjacent pairs are complex numbers, multiplied by e^(i m theta)."""
    torch.manual_seed(15)
    D, T = 16, 9
    x = torch.randn(2, 3, T, D, dtype=torch.float64)
    positions = torch.arange(50, 50 + T)
    theta = 1.0 / base ** (torch.arange(0, D, 2, dtype=torch.float64) / D)  # (D/2,)
    rotation = torch.polar(
        torch.ones(T, D // 2, dtype=torch.float64), torch.outer(positions.double(), theta)
    )
    as_complex = torch.view_as_complex(x.reshape(2, 3, T, D // 2, 2))  # (B, H, T, D/2)
    expected = torch.view_as_real(as_complex * rotation).flatten(-2)  # (B, H, T, D)
    ours = RotaryEmbedding(D, base=base, layout="interleaved")(x, positions)
    # our angles are float32 (as in Hugging Face's code): allow for their rounding
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_models_in_both_layouts_agree_after_permuting_q_k_rows(n_kv_heads):
    """Meta-layout weights + interleaved RoPE == permuted weights + half RoPE (scores unchanged)."""
    torch.manual_seed(11)
    meta = MultiHeadAttention(
        32, 4, n_kv_heads=n_kv_heads, rope=RotaryEmbedding(8, layout="interleaved"), bias=True
    )
    hf = MultiHeadAttention(32, 4, n_kv_heads=n_kv_heads, rope=RotaryEmbedding(8), bias=True)
    state = meta.state_dict()
    for name, heads in (("q_proj", 4), ("k_proj", n_kv_heads)):
        for kind in ("weight", "bias"):
            key = f"{name}.{kind}"
            state[key] = interleaved_to_half(state[key], heads)
    hf.load_state_dict(state)
    x = torch.randn(2, 7, 32)
    _, w_meta = meta(x, return_weights=True)
    _, w_hf = hf(x, return_weights=True)
    assert close(w_meta, w_hf)
    assert close(meta(x), hf(x))
    # without the permutation the two layouts disagree
    hf.load_state_dict(meta.state_dict())
    assert not close(meta(x), hf(x))


def test_apply_rope_shapes_and_errors():
    rope = RotaryEmbedding(4)
    x = torch.randn(2, 3, 5, 4)
    cos, sin = rope.cos_sin(torch.arange(5))
    assert cos.shape == (5, 4) and cos.dtype == torch.float32
    assert apply_rope(x, cos, sin).shape == x.shape
    cos_b, sin_b = rope.cos_sin(torch.arange(5).expand(2, 5))
    assert close(apply_rope(x, cos_b, sin_b), apply_rope(x, cos, sin))
    with pytest.raises(ValueError, match="do not fit"):
        apply_rope(x, cos[:4], sin[:4])


@pytest.mark.parametrize("base", [10000.0, 500000.0])
def test_rope_equals_hugging_face_llama(base):
    try:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import (
            LlamaRotaryEmbedding,
            apply_rotary_pos_emb,
        )
    except Exception as error:  # pragma: no cover - transformers missing or incompatible
        pytest.skip(f"transformers unavailable: {error}")
    config = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=base,
    )
    hf_rope = LlamaRotaryEmbedding(config=config)
    assert math.isclose(float(hf_rope.inv_freq[1]), base ** (-2 / 16), rel_tol=1e-6)
    torch.manual_seed(12)
    q, k = torch.randn(2, 4, 7, 16), torch.randn(2, 2, 7, 16)  # (B, H, T, D), (B, H_kv, T, D)
    position_ids = torch.stack([torch.arange(7), torch.arange(100, 107)])  # (B, T)
    cos, sin = hf_rope(q, position_ids)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos, sin)
    ours = RotaryEmbedding(16, base=base)
    assert close(ours(q, position_ids), q_hf, atol=1e-6)
    assert close(ours(k, position_ids), k_hf, atol=1e-6)


def hf_causal_mask(x: torch.Tensor) -> torch.Tensor:
    """The additive (B, 1, T, T) causal mask Hugging Face's attention layers take.

    Passed explicitly (with outputs taken by index) so that the reference tests mean the same on
    every transformers release: before 4.48 a bare ``LlamaAttention`` is the eager class, which
    applies no causal mask of its own, and it returns three values instead of two.
    """
    B, T = x.shape[:2]
    return torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1).expand(B, 1, T, T)


def test_attention_equals_hugging_face_llama_attention():
    try:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import (
            LlamaAttention,
            LlamaRotaryEmbedding,
        )
    except Exception as error:  # pragma: no cover
        pytest.skip(f"transformers unavailable: {error}")
    config = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rope_theta=500000.0,
        attention_bias=False,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(13)
    ref = LlamaAttention(config, layer_idx=0).eval()
    ours = MultiHeadAttention(64, 4, n_kv_heads=2, rope=RotaryEmbedding(16, base=500000.0))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 9, 64)
    position_ids = torch.arange(9).expand(2, 9)
    cos, sin = LlamaRotaryEmbedding(config=config)(x, position_ids)
    expected = ref(x, position_embeddings=(cos, sin), attention_mask=hf_causal_mask(x))[0]
    assert close(ours(x), expected)


LLAMA31_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def test_llama3_scaling_equals_hugging_face():
    try:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    except Exception as error:  # pragma: no cover
        pytest.skip(f"transformers unavailable: {error}")
    config = LlamaConfig(
        hidden_size=256,
        num_attention_heads=2,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rope_scaling=dict(LLAMA31_SCALING),
    )
    hf_rope = LlamaRotaryEmbedding(config=config)
    ours = RotaryEmbedding(128, base=500000.0, scaling=LLAMA31_SCALING)
    assert torch.allclose(ours.inv_freq(), hf_rope.inv_freq, rtol=1e-6, atol=0)
    plain = RotaryEmbedding(128, base=500000.0).inv_freq()
    assert not torch.allclose(ours.inv_freq(), plain)  # the scaling does something
    assert torch.equal(ours.inv_freq()[:10], plain[:10])  # ... but not to the fast pairs
    position_ids = torch.tensor([[0, 1, 4000, 9000, 100_000]])
    x = torch.randn(1, 5, 128)
    cos, sin = hf_rope(x, position_ids)
    our_cos, our_sin = ours.cos_sin(position_ids)
    assert torch.allclose(our_cos, cos, atol=1e-5) and torch.allclose(our_sin, sin, atol=1e-5)


# ---------------------------------------------------------------- fast paths and the library API


def test_fused_path_shares_kv_heads_with_enable_gqa(monkeypatch):
    """GQA in the fused path passes the H_kv heads to torch's kernel as they are (no copy)."""
    torch.manual_seed(16)
    layer = MultiHeadAttention(32, 8, n_kv_heads=2)
    seen = []
    fused = F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append((q.shape[1], k.shape[1], kwargs.get("enable_gqa")))
        return fused(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    x = torch.randn(2, 5, 32)
    out = layer(x)
    monkeypatch.undo()
    assert seen == [(8, 2, True)]
    layer.impl = "naive"  # the teaching path copies with repeat_kv and agrees
    assert close(out, layer(x))


def test_rope_table_is_built_once_and_shared(monkeypatch):
    """One RotaryEmbedding shared by layers computes its angles once for all layers and calls."""
    torch.manual_seed(17)
    rope = RotaryEmbedding(8)
    layers = [MultiHeadAttention(32, 4, rope=rope) for _ in range(3)]
    calls = []
    angles = rope.angles
    monkeypatch.setattr(rope, "angles", lambda p: calls.append(p.shape) or angles(p))
    x = torch.randn(2, 10, 32)
    for _ in range(2):
        for layer in layers:
            x = layer(x)
    assert calls == [(256,)]  # one table of 256 rows, built on the first call
    rope.table(300)  # a longer sequence grows it, at least doubling
    assert calls[-1] == (512,)
    cos, _ = rope.table(10)
    assert cos.dtype == torch.float32 and cos.data_ptr() == rope.table(20)[0].data_ptr()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_table_equals_positions_computed_on_the_fly(layout):
    rope = RotaryEmbedding(16, base=500000.0, layout=layout, scaling=dict(LLAMA31_SCALING))
    cos_t, sin_t = rope.table(50)
    cos_p, sin_p = rope.cos_sin(torch.arange(50).expand(3, 50))  # (B, T) positions
    assert cos_p.shape == (3, 50, 16)
    assert torch.equal(cos_p[1], cos_t) and torch.equal(sin_p[2], sin_t)


def test_rope_survives_to_dtype_meta_and_state_dict():
    torch.manual_seed(18)
    reference = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8, base=500000.0))
    assert sorted(reference.state_dict()) == [f"{n}_proj.weight" for n in "koqv"]
    with torch.device("meta"):
        built = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8, base=500000.0))
    built.to_empty(device="cpu")
    built.load_state_dict(reference.state_dict())
    x = torch.randn(2, 7, 32)
    assert torch.equal(built(x), reference(x))
    half = reference.to(torch.bfloat16)  # the table stays float32; cos/sin are cast when used
    out = half(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert all(c.dtype == torch.float32 for c, _ in half.rope._tables.values())


def test_compiles_without_graph_breaks():
    """fullgraph=True fails on any graph break: no value-dependent Python checks in forward."""
    torch.manual_seed(19)
    layer = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8)).eval()
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    x = torch.randn(2, 6, 32)
    positions = torch.arange(6).expand(2, 6) + torch.tensor([[0], [3]])
    mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    mask[1, ..., :2] = False
    with torch.no_grad():
        assert close(compiled(x), layer(x))
        assert close(compiled(x, positions, mask), layer(x, positions, mask))
        longer = torch.randn(1, 300, 32)  # grows the table inside the compiled call
        assert close(compiled(longer), layer(longer))


def _left_padded(lengths, T, d_model, seed):
    torch.manual_seed(seed)
    real = torch.tensor([[i >= T - n for i in range(T)] for n in lengths])  # (B, T)
    x = torch.randn(len(lengths), T, d_model)
    positions = (real.cumsum(-1) - 1).clamp(min=0)
    return x, real, positions


@pytest.mark.parametrize("impl", ["fused", "naive"])
def test_left_padding_equals_each_sequence_alone(impl):
    layer = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8), impl=impl)
    x, real, positions = _left_padded([7, 4, 1], 7, 32, seed=20)
    x.requires_grad_(True)
    out = layer(x, positions, attn_mask=real[:, None, None, :])
    for b, n in enumerate([7, 4, 1]):
        alone = layer(x[b : b + 1, 7 - n :])
        assert close(out[b, 7 - n :], alone[0])
        assert torch.equal(out[b, : 7 - n], torch.zeros(7 - n, 32))  # padding queries: 0
    out.sum().backward()  # no NaN in the gradients either
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("impl", ["fused", "naive"])
def test_attn_mask_with_cached_keys_is_bottom_right_aligned(impl):
    """Tq < Tk with a padding mask: the same as slicing the last queries of the full output."""
    layer = MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8), impl=impl)
    x, real, positions = _left_padded([8, 5], 8, 32, seed=21)
    mask = real[:, None, None, :]
    full = layer(x, positions, attn_mask=mask)
    q, k, v = layer.project(x, positions)
    assert close(layer.attend(q[:, :, -3:], k, v, attn_mask=mask), full[:, -3:])
    out, weights = layer.attend(q[:, :, -3:], k, v, attn_mask=mask, return_weights=True)
    assert torch.all(weights[1, :, :, :3] == 0)  # padding keys get no weight
    assert close(weights.sum(-1), torch.ones(2, 4, 3))


def test_causal_attention_blind_queries_get_zero_not_nan():
    q, k, v = torch.randn(3, 1, 2, 4, 8).unbind(0)
    nothing = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    for impl in ("fused", "naive"):
        assert torch.equal(causal_attention(q, k, v, nothing, impl=impl), torch.zeros(1, 2, 4, 8))


def test_qkv_bias_equals_hugging_face_qwen2_attention():
    """Qwen2-style: biases on q, k, v, none on o_proj (bias=False, qkv_bias=True)."""
    try:
        from transformers import Qwen2Config
        from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2RotaryEmbedding
    except Exception as error:  # pragma: no cover
        pytest.skip(f"transformers unavailable: {error}")
    config = Qwen2Config(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rope_theta=1000000.0,
        use_sliding_window=False,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(22)
    ref = Qwen2Attention(config, layer_idx=0).eval()
    ours = MultiHeadAttention(
        64, 4, n_kv_heads=2, bias=False, qkv_bias=True, rope=RotaryEmbedding(16, base=1e6)
    )
    assert ours.q_proj.bias is not None and ours.o_proj.bias is None
    ours.load_state_dict(ref.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 9, 64)
    cos, sin = Qwen2RotaryEmbedding(config=config)(x, torch.arange(9).expand(2, 9))
    expected = ref(x, position_embeddings=(cos, sin), attention_mask=hf_causal_mask(x))[0]
    assert close(ours(x), expected)


def test_bfloat16_matches_hugging_face_llama_attention():
    """Cast to bf16, RoPE table kept in float32 and cos/sin cast when applied, as HF does."""
    try:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding
    except Exception as error:  # pragma: no cover
        pytest.skip(f"transformers unavailable: {error}")
    config = LlamaConfig(
        hidden_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rope_scaling=dict(LLAMA31_SCALING),
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(23)
    ref = LlamaAttention(config, layer_idx=0).eval()
    rope = RotaryEmbedding(32, base=500000.0, scaling=dict(LLAMA31_SCALING))
    ours = MultiHeadAttention(128, 4, n_kv_heads=2, rope=rope)
    ours.load_state_dict(ref.state_dict())
    ref, ours = ref.to(torch.bfloat16), ours.to(torch.bfloat16)
    x = torch.randn(2, 12, 128).to(torch.bfloat16)
    position_ids = torch.arange(5000, 5012).expand(2, 12)  # far positions: angles matter
    cos, sin = LlamaRotaryEmbedding(config=config)(x, position_ids)  # float32 math, cast to bf16
    expected = ref(x, position_embeddings=(cos, sin), attention_mask=hf_causal_mask(x))[0]
    got = ours(x, position_ids)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=2e-2)


# ---------------------------------------------------------------- bad input: one row per case


def _layer():
    return MultiHeadAttention(32, 4, n_kv_heads=2, rope=RotaryEmbedding(8, max_positions=64))


def _qkv():
    return _layer().project(torch.randn(2, 5, 32))


LLAMA3 = dict(LLAMA31_SCALING)
BAD_INPUTS = [
    # RotaryEmbedding(...)
    (
        lambda: RotaryEmbedding(8, base=float("nan")),
        ValueError,
        "base must be a finite",
        "base-nan",
    ),
    (
        lambda: RotaryEmbedding(8, base=float("inf")),
        ValueError,
        "base must be a finite",
        "base-inf",
    ),
    (
        lambda: RotaryEmbedding(8, base=0.5),
        ValueError,
        "base must be a finite number > 1",
        "base-small",
    ),
    (lambda: RotaryEmbedding(8, base="1e4"), TypeError, "base must be a number", "base-str"),
    (lambda: RotaryEmbedding(8, base=True), TypeError, "base must be a number", "base-bool"),
    (lambda: RotaryEmbedding(7), ValueError, "head_dim must be even", "head-dim-odd"),
    (lambda: RotaryEmbedding(0), ValueError, "head_dim must be >= 1", "head-dim-zero"),
    (lambda: RotaryEmbedding(8.0), TypeError, "head_dim must be an int", "head-dim-float"),
    (lambda: RotaryEmbedding(8, layout="meta"), ValueError, "layout must be one of", "layout"),
    (
        lambda: RotaryEmbedding(8, max_positions=0),
        ValueError,
        "max_positions must be >= 1",
        "max-pos-0",
    ),
    (
        lambda: RotaryEmbedding(8, max_positions=1.5),
        TypeError,
        "max_positions must be an int",
        "max-pos-float",
    ),
    (lambda: RotaryEmbedding(8, scaling=8.0), TypeError, "scaling must be a dict", "scaling-float"),
    (
        lambda: RotaryEmbedding(8, scaling={"rope_type": "yarn", "factor": 4.0}),
        ValueError,
        "only scaling with rope_type 'llama3'",
        "scaling-yarn",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={"rope_type": "llama3", "factor": 8.0}),
        ValueError,
        "missing",
        "scaling-missing",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={**LLAMA3, "factor": float("nan")}),
        ValueError,
        r"scaling\['factor'\] must be a finite",
        "scaling-factor-nan",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={**LLAMA3, "factor": float("inf")}),
        ValueError,
        r"scaling\['factor'\] must be a finite",
        "scaling-factor-inf",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={**LLAMA3, "factor": -8.0}),
        ValueError,
        r"scaling\['factor'\]",
        "scaling-factor-negative",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={**LLAMA3, "low_freq_factor": float("nan")}),
        ValueError,
        "low_freq_factor",
        "scaling-low-nan",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={**LLAMA3, "low_freq_factor": 4.0}),
        ValueError,
        "high_freq_factor > low_freq_factor",
        "scaling-low-eq-high",
    ),
    (
        lambda: RotaryEmbedding(8, scaling={**LLAMA3, "original_max_position_embeddings": 8192.5}),
        TypeError,
        "original_max_position_embeddings",
        "scaling-context-float",
    ),
    # rotating
    (
        lambda: RotaryEmbedding(8)(torch.arange(16).view(2, 8)),
        TypeError,
        "x must be a floating-point tensor",
        "rope-int-x",
    ),
    (
        lambda: RotaryEmbedding(8)(torch.randn(2, 6)),
        ValueError,
        "x has last axis 6",
        "rope-wrong-dim",
    ),
    (lambda: RotaryEmbedding(8)([[1.0] * 8]), TypeError, "x must be a torch.Tensor", "rope-list-x"),
    (
        lambda: RotaryEmbedding(4)(torch.randn(4)),
        ValueError,
        r"x must be \(\.\.\., T, D\).*got shape \(4,\)",
        "rope-1d-x",
    ),
    (
        lambda: RotaryEmbedding(8)(torch.randn(3, 8), torch.arange(3.0)),
        TypeError,
        "positions must be an integer tensor",
        "positions-float",
    ),
    (
        lambda: RotaryEmbedding(8)(torch.randn(3, 8), torch.zeros(3, dtype=torch.bool)),
        TypeError,
        "positions must be an integer tensor",
        "positions-bool",
    ),
    (
        lambda: RotaryEmbedding(8).cos_sin(torch.zeros(1, 2, 3, dtype=torch.long)),
        ValueError,
        r"shape \(T,\) or \(B, T\)",
        "positions-3d",
    ),
    (
        lambda: RotaryEmbedding(8).cos_sin([0, 1]),
        TypeError,
        "positions must be an integer tensor",
        "positions-list",
    ),
    (
        lambda: RotaryEmbedding(8, max_positions=4).cos_sin(torch.tensor([-1, 0])),
        ValueError,
        "positions must lie in",
        "positions-negative",
    ),
    (
        lambda: rotate_pairs(torch.randn(2, 5), "half"),
        ValueError,
        "even last axis",
        "rotate-odd-half",
    ),
    (
        lambda: rotate_pairs(torch.randn(2, 5), "interleaved"),
        ValueError,
        "even last axis",
        "rotate-odd-interleaved",
    ),
    (
        lambda: rotate_pairs(torch.randn(2, 4), "meta"),
        ValueError,
        "layout must be one of",
        "rotate-layout",
    ),
    (
        lambda: apply_rope(torch.randn(2, 5, 4), torch.ones(4, 4), torch.ones(4, 4)),
        ValueError,
        "do not fit",
        "apply-rope-short-cos",
    ),
    (
        lambda: apply_rope(torch.randn(2, 1, 5, 4), torch.ones(3, 5, 4), torch.ones(3, 5, 4)),
        ValueError,
        "positions for 3 sequences",
        "apply-rope-batch",
    ),
    (
        lambda: apply_rope(torch.randn(5, 4), torch.ones(5, 4, dtype=torch.long), torch.ones(5, 4)),
        TypeError,
        "cos must be a floating-point",
        "apply-rope-int-cos",
    ),
    (lambda: rope_permutation(5), ValueError, "head_dim must be even", "permutation-odd"),
    (
        lambda: repeat_kv(torch.randn(1, 2, 3, 4), 0),
        ValueError,
        "n_groups must be >= 1",
        "repeat-kv-0",
    ),
    (
        lambda: repeat_kv(torch.randn(1, 2, 3, 4), 1.5),
        TypeError,
        "n_groups must be an int",
        "repeat-kv-float",
    ),
    # MultiHeadAttention(...)
    (
        lambda: MultiHeadAttention(30, 4),
        ValueError,
        "d_model .*divisible by n_heads",
        "d-model-heads",
    ),
    (
        lambda: MultiHeadAttention(32, 4, n_kv_heads=3),
        ValueError,
        "n_heads .*divisible by n_kv_heads",
        "heads-kv-heads",
    ),
    (
        lambda: MultiHeadAttention(32, 4, n_kv_heads=0),
        ValueError,
        "n_kv_heads must be >= 1",
        "kv-heads-0",
    ),
    (lambda: MultiHeadAttention(32, 0), ValueError, "n_heads must be >= 1", "heads-0"),
    (lambda: MultiHeadAttention(32.0, 4), TypeError, "d_model must be an int", "d-model-float"),
    (lambda: MultiHeadAttention(32, 4, dropout=1.5), ValueError, "dropout", "dropout"),
    (lambda: MultiHeadAttention(32, 4, impl="flash"), ValueError, "impl must be one of", "impl"),
    (
        lambda: MultiHeadAttention(32, 4, rope=10000.0),
        TypeError,
        "rope must be a RotaryEmbedding",
        "rope-float",
    ),
    (
        lambda: MultiHeadAttention(32, 4, rope=RotaryEmbedding(16)),
        ValueError,
        "rope.head_dim",
        "rope-head-dim",
    ),
    (
        lambda: MultiHeadAttention(32, 4, bias="yes"),
        TypeError,
        "bias must be True or False",
        "bias-str",
    ),
    (
        lambda: MultiHeadAttention(32, 4, qkv_bias=1),
        TypeError,
        "qkv_bias must be True or False",
        "qkv-bias-int",
    ),
    (lambda: NaiveMultiHeadAttention(30, 4), ValueError, "divisible by n_heads", "naive-heads"),
    (
        lambda: NaiveMultiHeadAttention(32, 4, bias=None),
        TypeError,
        "bias must be True or False",
        "naive-bias",
    ),
    # forward / project
    (
        lambda: _layer()(torch.randn(2, 5, 16)),
        ValueError,
        r"x must have shape \(B, T, d_model=32\)",
        "x-width",
    ),
    (
        lambda: _layer()(torch.randn(5, 32)),
        ValueError,
        r"x must have shape \(B, T, d_model=32\), got \(5, 32\)",
        "x-2d",
    ),
    (
        lambda: _layer()(torch.randn(2, 0, 32)),
        ValueError,
        r"at least one position \(T >= 1\)",
        "x-empty",
    ),
    (
        lambda: _layer()(torch.ones(2, 5, 32, dtype=torch.long)),
        TypeError,
        "x must be a floating-point tensor",
        "x-long",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32, dtype=torch.float64)),
        TypeError,
        "dtype torch.float64 but the layer's weights",
        "x-float64",
    ),
    (lambda: _layer()([[0.0] * 32]), TypeError, "x must be a torch.Tensor", "x-list"),
    (
        lambda: _layer()(torch.randn(2, 70, 32)),
        ValueError,
        "70 positions goes beyond max_positions=64",
        "x-too-long",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), torch.arange(3)),
        ValueError,
        "one position per token.*T=5",
        "positions-length",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), torch.arange(5).expand(3, 5)),
        ValueError,
        "positions for 3 sequences, x has a batch of 2",
        "positions-batch",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), torch.arange(5.0)),
        TypeError,
        "positions must be an integer tensor",
        "positions-float-layer",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), torch.arange(60, 65)),
        ValueError,
        "positions must lie in",
        "positions-beyond-max",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), attn_mask=torch.ones(2, 1, 5, 5)),
        TypeError,
        "attn_mask must be a boolean tensor",
        "mask-float",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), attn_mask=torch.ones(3, 1, 5, 5, dtype=torch.bool)),
        ValueError,
        "does not broadcast",
        "mask-batch",
    ),
    (
        lambda: _layer()(torch.randn(2, 5, 32), attn_mask=torch.ones(5, 4, dtype=torch.bool)),
        ValueError,
        "does not broadcast",
        "mask-keys",
    ),
    # attend
    (
        lambda: _layer().attend(_qkv()[0], _qkv()[1][:, :1], _qkv()[2]),
        ValueError,
        r"k must have shape \(B, 2, T, head_dim=8\), got \(2, 1, 5, 8\)",
        "attend-k-heads",
    ),
    (
        lambda: _layer().attend(_qkv()[0][..., :4], *_qkv()[1:]),
        ValueError,
        r"q must have shape \(B, 4, T, head_dim=8\)",
        "attend-q-dim",
    ),
    (
        lambda: _layer().attend(_qkv()[0], _qkv()[1][:, :, :3], _qkv()[2][:, :, :3]),
        ValueError,
        "1 <= Tq <= Tk",
        "attend-fewer-keys",
    ),
    (
        lambda: _layer().attend(_qkv()[0], _qkv()[1], _qkv()[2][:, :, :4]),
        ValueError,
        "k and v must have one shape",
        "attend-kv-mismatch",
    ),
    # converters
    (
        lambda: interleaved_to_half(torch.randn(10, 4), 3),
        ValueError,
        "does not split into n_heads=3",
        "convert-heads",
    ),
    (
        lambda: interleaved_to_half(torch.randn(12, 4), 0),
        ValueError,
        "n_heads must be >= 1",
        "convert-heads-0",
    ),
    (lambda: stack_heads(_layer()), TypeError, "NaiveMultiHeadAttention", "stack-heads-type"),
]


@pytest.mark.parametrize(
    "call, error, message", [pytest.param(*row[:3], id=row[3]) for row in BAD_INPUTS]
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
