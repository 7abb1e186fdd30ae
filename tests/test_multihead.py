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
    with pytest.raises(ValueError, match="Tk >= Tq"):
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


# ---------------------------------------------------------------- errors


def test_clear_errors():
    with pytest.raises(ValueError, match="d_model .*divisible by n_heads"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="n_heads .*divisible by n_kv_heads"):
        MultiHeadAttention(32, 4, n_kv_heads=3)
    with pytest.raises(ValueError, match="n_kv_heads must be >= 1"):
        MultiHeadAttention(32, 4, n_kv_heads=0)
    with pytest.raises(ValueError, match="n_heads must be >= 1"):
        MultiHeadAttention(32, 0)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(32, 4, dropout=1.5)
    with pytest.raises(ValueError, match="impl"):
        MultiHeadAttention(32, 4, impl="flash")
    with pytest.raises(TypeError, match="rope must be a RotaryEmbedding"):
        MultiHeadAttention(32, 4, rope=10000.0)
    with pytest.raises(ValueError, match="rope.head_dim"):
        MultiHeadAttention(32, 4, rope=RotaryEmbedding(16))
    with pytest.raises(ValueError, match="divisible by n_heads"):
        NaiveMultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="head_dim must be even"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="layout"):
        RotaryEmbedding(8, layout="meta")
    with pytest.raises(ValueError, match="base"):
        RotaryEmbedding(8, base=0.5)
    mha = MultiHeadAttention(32, 4, rope=RotaryEmbedding(8))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model=32\)"):
        mha(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model=32\), got \(5, 32\)"):
        mha.project(torch.randn(5, 32))
    q, k, v = mha.project(torch.randn(2, 5, 32))
    with pytest.raises(
        ValueError, match=r"k must have shape \(B, 4, T, head_dim=8\), got \(2, 2, 5, 8\)"
    ):
        mha.attend(q, k[:, :2], v)
    with pytest.raises(ValueError, match=r"q must have shape \(B, 4, T, head_dim=8\)"):
        mha.attend(q[..., :4], k, v)
    with pytest.raises(ValueError, match="one position per token.*T=5"):
        mha(torch.randn(2, 5, 32), torch.arange(3))
    with pytest.raises(ValueError, match="positions for 3 sequences, x has a batch of 2"):
        mha(torch.randn(2, 5, 32), torch.arange(5).expand(3, 5))
    with pytest.raises(TypeError, match="integer tensor"):
        mha(torch.randn(2, 5, 32), torch.arange(5.0))
    with pytest.raises(ValueError, match="does not split into n_heads=3"):
        interleaved_to_half(torch.randn(10, 4), 3)
    with pytest.raises(TypeError, match="NaiveMultiHeadAttention"):
        stack_heads(mha)


def test_max_positions_guard_and_no_limit():
    limited = RotaryEmbedding(8, max_positions=16)
    free = RotaryEmbedding(8)
    x = torch.randn(1, 2, 4, 8)
    assert torch.equal(limited(x, torch.arange(12, 16)), free(x, torch.arange(12, 16)))
    with pytest.raises(ValueError, match="beyond max_positions=16"):
        limited(x, torch.arange(13, 17))
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
    hf_rope = LlamaRotaryEmbedding(config)
    assert math.isclose(float(hf_rope.inv_freq[1]), base ** (-2 / 16), rel_tol=1e-6)
    torch.manual_seed(12)
    q, k = torch.randn(2, 4, 7, 16), torch.randn(2, 2, 7, 16)  # (B, H, T, D), (B, H_kv, T, D)
    position_ids = torch.stack([torch.arange(7), torch.arange(100, 107)])  # (B, T)
    cos, sin = hf_rope(q, position_ids)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos, sin)
    ours = RotaryEmbedding(16, base=base)
    assert close(ours(q, position_ids), q_hf, atol=1e-6)
    assert close(ours(k, position_ids), k_hf, atol=1e-6)


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
    cos, sin = LlamaRotaryEmbedding(config)(x, position_ids)
    mask = torch.full((9, 9), float("-inf")).triu(1).expand(2, 1, 9, 9)
    expected, _ = ref(x, position_embeddings=(cos, sin), attention_mask=mask)
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
    hf_rope = LlamaRotaryEmbedding(config)
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


def test_scaling_errors():
    with pytest.raises(ValueError, match="only scaling with rope_type 'llama3'"):
        RotaryEmbedding(8, scaling={"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ValueError, match="missing"):
        RotaryEmbedding(8, scaling={"rope_type": "llama3", "factor": 8.0})
    with pytest.raises(TypeError, match="scaling must be a dict"):
        RotaryEmbedding(8, scaling=8.0)
