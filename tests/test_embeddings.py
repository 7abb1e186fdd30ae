"""Tests of llmbook.embeddings (chapter 3): token and position embeddings."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook.checks import check_index_tensor
from llmbook.embeddings import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TokenEmbedding,
    sinusoidal_positions,
)

FAST = settings(max_examples=40, deadline=None)


def formula(p: int, j: int, d_model: int, base: float = 10000.0) -> float:
    """The paper's definition of one entry, in plain Python floats."""
    angle = p / base ** ((j - j % 2) / d_model)
    return math.sin(angle) if j % 2 == 0 else math.cos(angle)


def offset_matrix(k: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """Block-diagonal rotation M_k with PE[p + k] = PE[p] @ M_k (float64)."""
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(d_model // 2):
        b = k * base ** (-2 * i / d_model)
        m[2 * i, 2 * i], m[2 * i, 2 * i + 1] = math.cos(b), -math.sin(b)
        m[2 * i + 1, 2 * i], m[2 * i + 1, 2 * i + 1] = math.sin(b), math.cos(b)
    return m


# ---------------------------------------------------------------- TokenEmbedding


def test_token_embedding_is_an_nn_embedding_with_weight_key():
    emb = TokenEmbedding(11, 5)
    assert isinstance(emb, torch.nn.Embedding)
    assert list(emb.state_dict()) == ["weight"]
    assert emb.weight.shape == (11, 5)
    assert (emb.vocab_size, emb.d_model) == (11, 5)


@FAST
@given(
    vocab_size=st.integers(1, 40),
    d_model=st.integers(1, 9),
    data=st.data(),
)
def test_lookup_equals_one_hot_times_table(vocab_size, d_model, data):
    ids = data.draw(st.lists(st.integers(0, vocab_size - 1), min_size=1, max_size=12))
    emb = TokenEmbedding(vocab_size, d_model)
    ids_t = torch.tensor(ids)
    via_matmul = F.one_hot(ids_t, vocab_size).to(emb.weight.dtype) @ emb.weight
    assert torch.equal(emb(ids_t), via_matmul)
    assert torch.equal(emb(ids_t), emb.weight[ids_t])


@FAST
@given(data=st.data())
def test_gradient_only_on_used_rows_and_repeats_sum(data):
    vocab_size, d_model = 30, 4
    ids = data.draw(st.lists(st.integers(0, vocab_size - 1), min_size=1, max_size=15))
    torch.manual_seed(len(ids))
    emb = TokenEmbedding(vocab_size, d_model)
    ids_t = torch.tensor(ids)
    upstream = torch.randn(len(ids), d_model)
    (emb(ids_t) * upstream).sum().backward()  # d(loss)/d(out[t]) = upstream[t]
    expected = torch.zeros(vocab_size, d_model)
    expected.index_add_(0, ids_t, upstream)
    assert torch.allclose(emb.weight.grad, expected, atol=1e-6)
    used = sorted(set(ids))
    nonzero_rows = torch.nonzero(emb.weight.grad.abs().sum(dim=1)).flatten().tolist()
    assert set(nonzero_rows) <= set(used)
    unused = [i for i in range(vocab_size) if i not in used]
    assert torch.count_nonzero(emb.weight.grad[unused]) == 0


def test_same_output_and_gradient_as_nn_embedding():
    torch.manual_seed(0)
    ours = TokenEmbedding(50, 6)
    ref = torch.nn.Embedding(50, 6)
    ref.load_state_dict(ours.state_dict())
    ids = torch.randint(0, 50, (3, 7))
    upstream = torch.randn(3, 7, 6)
    out_ours, out_ref = ours(ids), ref(ids)
    assert torch.equal(out_ours, out_ref)
    (out_ours * upstream).sum().backward()
    (out_ref * upstream).sum().backward()
    assert torch.equal(ours.weight.grad, ref.weight.grad)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4)])
def test_token_embedding_shapes(shape):
    emb = TokenEmbedding(10, 4)
    ids = torch.randint(0, 10, shape)
    assert emb(ids).shape == (*shape, 4)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.int16, torch.uint8, torch.int8])
def test_any_integer_dtype_is_accepted(dtype):
    emb = TokenEmbedding(10, 3)
    ids = torch.tensor([1, 9, 0], dtype=dtype)
    assert torch.equal(emb(ids), emb.weight[[1, 9, 0]])


@pytest.mark.parametrize("bad", [10, 50257, -1])
def test_out_of_range_id_is_a_clear_value_error(bad):
    emb = TokenEmbedding(10, 3)
    with pytest.raises(ValueError, match=rf"ids contains {bad}, but vocab_size is 10.*\[0, 9\]"):
        emb(torch.tensor([[0, bad, 2]]))


@pytest.mark.parametrize(
    "bad",
    [torch.tensor([0.0, 1.0]), torch.tensor([True, False]), torch.tensor([1 + 0j])],
)
def test_non_integer_ids_are_a_type_error(bad):
    with pytest.raises(TypeError, match="ids must hold integers"):
        TokenEmbedding(10, 3)(bad)


def test_list_ids_are_a_type_error():
    with pytest.raises(TypeError, match=r"ids must be a torch.Tensor.*torch.tensor"):
        TokenEmbedding(10, 3)([1, 2])


def test_validate_false_skips_the_check():
    emb = TokenEmbedding(10, 3, validate=False)
    with pytest.raises(IndexError):  # torch's own error: our check is really off
        emb(torch.tensor([10]))


def test_empty_ids():
    emb = TokenEmbedding(10, 3)
    assert emb(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0, 3)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 4), ValueError, "vocab_size must be >= 1, got 0"),
        ((10, -2), ValueError, "d_model must be >= 1, got -2"),
        ((10.0, 4), TypeError, "vocab_size must be an int"),
        ((10, True), TypeError, "d_model must be an int"),
    ],
)
def test_token_embedding_constructor_errors(args, error, match):
    with pytest.raises(error, match=match):
        TokenEmbedding(*args)


def test_meta_device_gives_shapes_without_memory():
    emb = TokenEmbedding(50257, 768, device="meta")
    out = emb(torch.zeros(2, 1024, dtype=torch.long, device="meta"))
    assert out.shape == (2, 1024, 768) and out.device.type == "meta"
    assert emb.weight.numel() == 50257 * 768


def test_dtype_argument():
    emb = TokenEmbedding(10, 3, dtype=torch.float64)
    assert emb(torch.tensor([1])).dtype == torch.float64


def test_from_pretrained_copies_and_freezes():
    table = torch.randn(7, 3)
    frozen = TokenEmbedding.from_pretrained(table)
    assert torch.equal(frozen.weight, table) and not frozen.weight.requires_grad
    assert frozen.weight.data_ptr() != table.data_ptr()
    trainable = TokenEmbedding.from_pretrained(table, freeze=False)
    assert trainable.weight.requires_grad
    with pytest.raises(ValueError, match="ids contains 7"):
        frozen(torch.tensor([7]))
    assert torch.equal(
        TokenEmbedding.from_pretrained(table, validate=False)(torch.tensor([6])), table[[6]]
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_out_of_range_on_cuda_is_a_value_error_not_a_device_assert():
    emb = TokenEmbedding(10, 3, device="cuda")
    with pytest.raises(ValueError, match="ids contains 10"):
        emb(torch.tensor([1, 10], device="cuda"))
    assert emb(torch.tensor([1, 9], device="cuda")).shape == (2, 3)  # context still usable


# ---------------------------------------------------------------- LearnedPositionalEmbedding


def test_learned_positions_by_length_offset_and_tensor():
    pos = LearnedPositionalEmbedding(16, 4)
    assert list(pos.state_dict()) == ["weight"]
    assert (pos.context_length, pos.d_model) == (16, 4)
    assert torch.equal(pos(5), pos.weight[:5])
    assert torch.equal(pos(3, offset=13), pos.weight[13:16])
    assert torch.equal(pos(16), pos.weight)
    assert pos(0).shape == (0, 4)
    positions = torch.tensor([[0, 2], [15, 7]])
    assert torch.equal(pos(positions), pos.weight[positions])


def test_learned_positions_broadcast_with_token_embeddings():
    tok, pos = TokenEmbedding(100, 8), LearnedPositionalEmbedding(32, 8)
    ids = torch.randint(0, 100, (3, 10))
    h = tok(ids) + pos(ids.shape[1])
    assert h.shape == (3, 10, 8)
    assert torch.equal(h[2, 4], tok.weight[ids[2, 4]] + pos.weight[4])


@pytest.mark.parametrize(("length", "offset"), [(17, 0), (2, 15), (1, 16)])
def test_too_long_is_a_clear_error(length, offset):
    pos = LearnedPositionalEmbedding(16, 4)
    with pytest.raises(ValueError, match=r"context_length is 16.*crop the input"):
        pos(length, offset=offset)


def test_learned_positions_input_errors():
    pos = LearnedPositionalEmbedding(16, 4)
    with pytest.raises(ValueError, match="positions contains 16, but context_length is 16"):
        pos(torch.tensor([0, 16]))
    with pytest.raises(TypeError, match="positions must hold integers"):
        pos(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"positions \(a sequence length\) must be >= 0"):
        pos(-1)
    with pytest.raises(TypeError, match=r"positions \(a sequence length\) must be an int"):
        pos(2.0)
    with pytest.raises(ValueError, match="offset must be >= 0"):
        pos(2, offset=-1)
    with pytest.raises(ValueError, match="offset is only used when positions is a length"):
        pos(torch.tensor([1, 2]), offset=3)
    with pytest.raises(ValueError, match="context_length must be >= 1"):
        LearnedPositionalEmbedding(0, 4)


# ---------------------------------------------------------------- sinusoidal_positions


@pytest.mark.parametrize(
    ("n_positions", "d_model", "base"),
    [(1, 2, 10000.0), (7, 8, 10000.0), (50, 16, 10000.0), (20, 6, 500000.0), (9, 4, 100.0)],
)
def test_sinusoidal_matches_formula_entry_by_entry(n_positions, d_model, base):
    table = sinusoidal_positions(n_positions, d_model, base, dtype=torch.float64)
    assert table.shape == (n_positions, d_model)
    for p in range(n_positions):
        for j in range(d_model):
            assert table[p, j].item() == pytest.approx(formula(p, j, d_model, base), abs=1e-12)


@FAST
@given(p=st.integers(0, 20_000), half=st.integers(1, 16))
def test_sinusoidal_float32_is_accurate_at_large_positions(p, half):
    """Angles are computed in float64: float32 angles would be off by ~1e-3 at p ~ 2e4."""
    d_model = 2 * half
    row = sinusoidal_positions(p + 1, d_model)[p]
    expected = torch.tensor([formula(p, j, d_model) for j in range(d_model)])
    assert row.dtype == torch.float32
    assert torch.allclose(row, expected, atol=1e-6)


def test_sinusoidal_matches_xlm_reference():
    xlm = pytest.importorskip("transformers.models.xlm.modeling_xlm")
    out = torch.empty(64, 32)
    # before transformers 5.0 it fills `out` and returns None; later versions also return it
    xlm.create_sinusoidal_embeddings(n_pos=64, dim=32, out=out)
    assert torch.allclose(sinusoidal_positions(64, 32), out, atol=1e-6)


def test_sinusoidal_first_row_and_pair_norms():
    table = sinusoidal_positions(40, 12, dtype=torch.float64)
    assert torch.equal(table[0], torch.tensor([0.0, 1.0] * 6, dtype=torch.float64))
    pair_norms = table[:, 0::2] ** 2 + table[:, 1::2] ** 2
    assert torch.allclose(pair_norms, torch.ones_like(pair_norms))


@FAST
@given(p=st.integers(0, 300), k=st.integers(0, 300), half=st.integers(1, 16))
def test_relative_offset_is_a_fixed_rotation(p, k, half):
    d_model = 2 * half
    table = sinusoidal_positions(p + k + 1, d_model, dtype=torch.float64)
    m = offset_matrix(k, d_model)
    assert torch.allclose(table[p] @ m, table[p + k], atol=1e-9)
    assert torch.allclose(m.T @ m, torch.eye(d_model, dtype=torch.float64), atol=1e-12)


def test_offset_matrix_holds_for_all_positions_at_once():
    table = sinusoidal_positions(128, 16, dtype=torch.float64)
    for k in (1, 7, 64):
        assert torch.allclose(table[:-k] @ offset_matrix(k, 16), table[k:], atol=1e-9)
    # and not for the wrong offset: the property can fail
    assert not torch.allclose(table[:-7] @ offset_matrix(6, 16), table[7:], atol=1e-3)


@FAST
@given(p=st.integers(0, 500), q=st.integers(0, 500), k=st.integers(0, 200))
def test_dot_product_depends_only_on_distance(p, q, k):
    table = sinusoidal_positions(max(p, q) + k + 1, 16, dtype=torch.float64)
    expected = sum(math.cos(k * 10000 ** (-2 * i / 16)) for i in range(8))
    assert (table[p] @ table[p + k]).item() == pytest.approx(expected, abs=1e-9)
    assert (table[q] @ table[q + k]).item() == pytest.approx(expected, abs=1e-9)


def test_sinusoidal_dtype_device_and_empty():
    assert sinusoidal_positions(3, 4).dtype == torch.get_default_dtype()
    assert sinusoidal_positions(3, 4, dtype=torch.float64).dtype == torch.float64
    assert sinusoidal_positions(3, 4, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert sinusoidal_positions(3, 4, device="meta").device.type == "meta"
    assert sinusoidal_positions(0, 4).shape == (0, 4)


@pytest.mark.parametrize("d_model", [1, 3, 7, 769])
def test_odd_d_model_is_rejected_clearly(d_model):
    with pytest.raises(ValueError, match=rf"d_model must be even.*got {d_model}|must be >= 2"):
        sinusoidal_positions(4, d_model)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((-1, 4), ValueError, "n_positions must be >= 0"),
        ((4, 0), ValueError, "d_model must be >= 2"),
        ((4.0, 4), TypeError, "n_positions must be an int"),
        ((4, "8"), TypeError, "d_model must be an int"),
        ((4, 4, 0.0), ValueError, "base must be a finite number > 0, got 0.0"),
        ((4, 4, -10.0), ValueError, "base must be a finite number > 0"),
        ((4, 4, float("inf")), ValueError, "base must be a finite number > 0"),
        ((4, 4, float("nan")), ValueError, "base must be a finite number > 0"),
        ((4, 4, "10000"), TypeError, "base must be a float > 0, got str"),
    ],
)
def test_sinusoidal_argument_errors(args, error, match):
    with pytest.raises(error, match=match):
        sinusoidal_positions(*args)


# ---------------------------------------------------------------- SinusoidalPositionalEmbedding


def test_sinusoidal_module_is_a_buffer_not_a_parameter():
    mod = SinusoidalPositionalEmbedding(32, 8)
    assert list(mod.parameters()) == []
    assert mod.state_dict() == {}
    assert torch.equal(mod.pe, sinusoidal_positions(32, 8))
    assert torch.equal(mod(10), sinusoidal_positions(10, 8))
    assert torch.equal(mod(4, offset=28), sinusoidal_positions(32, 8)[28:])
    positions = torch.tensor([[3, 1], [0, 31]])
    assert torch.equal(mod(positions), mod.pe[positions])
    assert mod.to(torch.float64)(3).dtype == torch.float64


def test_sinusoidal_module_errors():
    mod = SinusoidalPositionalEmbedding(32, 8)
    with pytest.raises(ValueError, match="context_length is 32"):
        mod(33)
    with pytest.raises(ValueError, match="positions contains 32"):
        mod(torch.tensor([32]))
    with pytest.raises(ValueError, match="d_model must be even"):
        SinusoidalPositionalEmbedding(32, 7)


# ---------------------------------------------------------------- reference models


def test_gpt2_input_equals_wte_plus_wpe():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=97, n_positions=24, n_embd=16, n_layer=1, n_head=2, embd_pdrop=0.0
    )
    torch.manual_seed(0)
    ref = transformers.GPT2Model(config).eval()
    wte, wpe = TokenEmbedding(97, 16), LearnedPositionalEmbedding(24, 16)
    wte.load_state_dict(ref.wte.state_dict())  # same key: weight
    wpe.load_state_dict(ref.wpe.state_dict())
    ids = torch.randint(0, 97, (2, 10))
    with torch.no_grad():
        hidden = ref(ids, output_hidden_states=True).hidden_states[0]
        ours = wte(ids) + wpe(ids.shape[1])
    assert torch.allclose(ours, hidden, atol=1e-6)


def test_llama_input_is_the_token_embedding_alone():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    ref = transformers.LlamaModel(config).eval()
    embed_tokens = TokenEmbedding(97, 16)
    embed_tokens.load_state_dict(ref.embed_tokens.state_dict())
    ids = torch.randint(0, 97, (2, 10))
    with torch.no_grad():
        hidden = ref(ids, output_hidden_states=True).hidden_states[0]
        ours = embed_tokens(ids)  # no position vector: RoPE acts inside attention
    assert torch.allclose(ours, hidden, atol=1e-6)


# ---------------------------------------------------------------- bad input, one row per case


def _call(factory):
    return factory()


BAD_INPUTS = [
    # TokenEmbedding: construction
    pytest.param(
        lambda: TokenEmbedding(10, 3, dtype=torch.int64),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype.*torch.int64",
        id="tok-int-dtype",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3, dtype="float32"),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype.*'float32'",
        id="tok-str-dtype",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3, validate="no"),
        TypeError,
        r"validate must be True or False, got str",
        id="tok-validate-str",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3, validate=0),
        TypeError,
        r"validate must be True or False, got int",
        id="tok-validate-int",
    ),
    pytest.param(
        lambda: TokenEmbedding(None, 3),
        TypeError,
        r"vocab_size must be an int",
        id="tok-vocab-none",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 2.5), TypeError, r"d_model must be an int", id="tok-d-float"
    ),
    # TokenEmbedding: ids
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([0.0, 1.0])),
        TypeError,
        r"ids must hold integers .* got dtype torch.float32",
        id="tok-float-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([1.0], dtype=torch.float16)),
        TypeError,
        r"ids must hold integers .* torch.float16",
        id="tok-half-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([True])),
        TypeError,
        r"ids must hold integers .* torch.bool",
        id="tok-bool-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([1 + 0j])),
        TypeError,
        r"ids must hold integers .* torch.complex64",
        id="tok-complex-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)([1, 2]),
        TypeError,
        r"ids must be a torch.Tensor of integer ids, got list",
        id="tok-list-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(None),
        TypeError,
        r"ids must be a torch.Tensor of integer ids, got NoneType",
        id="tok-none-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(np.array([1, 2])),
        TypeError,
        r"ids must be a torch.Tensor of integer ids, got ndarray",
        id="tok-numpy-ids",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([[0, 10]])),
        ValueError,
        r"ids contains 10, but vocab_size is 10: every entry must lie in \[0, 9\]",
        id="tok-id-too-big",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([-1, 3])),
        ValueError,
        r"ids contains -1, but vocab_size is 10",
        id="tok-negative-id",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([2**40])),
        ValueError,
        r"ids contains 1099511627776, but vocab_size is 10",
        id="tok-huge-long-id",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([300], dtype=torch.int16)),
        ValueError,
        r"ids contains 300, but vocab_size is 10",
        id="tok-int16-id-too-big",
    ),
    pytest.param(
        lambda: TokenEmbedding(10, 3)(torch.tensor([2**63 + 5], dtype=torch.uint64)),
        ValueError,
        r"ids contains 9223372036854775813, but vocab_size is 10",
        id="tok-uint64-wraps",
    ),
    # TokenEmbedding.from_pretrained
    pytest.param(
        lambda: TokenEmbedding.from_pretrained(torch.randn(7)),
        TypeError,
        r"embeddings must be a 2-D tensor \(vocab_size, d_model\), got \(7,\)",
        id="pretrained-1d",
    ),
    pytest.param(
        lambda: TokenEmbedding.from_pretrained(torch.randn(2, 3, 4)),
        TypeError,
        r"embeddings must be a 2-D tensor .* got \(2, 3, 4\)",
        id="pretrained-3d",
    ),
    pytest.param(
        lambda: TokenEmbedding.from_pretrained([[1.0, 2.0]]),
        TypeError,
        r"embeddings must be a 2-D tensor .* got list",
        id="pretrained-list",
    ),
    pytest.param(
        lambda: TokenEmbedding.from_pretrained(torch.ones(3, 2, dtype=torch.long)),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype",
        id="pretrained-int-table",
    ),
    pytest.param(
        lambda: TokenEmbedding.from_pretrained(torch.ones(0, 2)),
        ValueError,
        r"vocab_size must be >= 1, got 0",
        id="pretrained-no-rows",
    ),
    # LearnedPositionalEmbedding
    pytest.param(
        lambda: LearnedPositionalEmbedding(4, 4, dtype=torch.int32),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype",
        id="learned-int-dtype",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(4, 4, validate=None),
        TypeError,
        r"validate must be True or False",
        id="learned-validate-none",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(4.0, 4),
        TypeError,
        r"context_length must be an int",
        id="learned-float-context",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(0, 4),
        ValueError,
        r"context_length must be >= 1, got 0",
        id="learned-zero-context",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(17),
        ValueError,
        r"a sequence of 17 tokens .* context_length is 16.*crop the input",
        id="learned-too-long",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(2, offset=15),
        ValueError,
        r"starting at position 15 needs positions up to 16",
        id="learned-offset-past-end",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(2, offset=-1),
        ValueError,
        r"offset must be >= 0, got -1",
        id="learned-negative-offset",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(2, offset=1.0),
        TypeError,
        r"offset must be an int, got float",
        id="learned-float-offset",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(2, offset=True),
        TypeError,
        r"offset must be an int, got bool",
        id="learned-bool-offset",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(-1),
        ValueError,
        r"positions \(a sequence length\) must be >= 0, got -1",
        id="learned-negative-length",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(2.0),
        TypeError,
        r"positions \(a sequence length\) must be an int, got float",
        id="learned-float-length",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(None),
        TypeError,
        r"positions \(a sequence length\) must be an int, got NoneType",
        id="learned-none-length",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(torch.tensor([0, 16])),
        ValueError,
        r"positions contains 16, but context_length is 16",
        id="learned-position-too-big",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(torch.tensor([0.0, 1.0])),
        TypeError,
        r"positions must hold integers",
        id="learned-float-positions",
    ),
    pytest.param(
        lambda: LearnedPositionalEmbedding(16, 4)(torch.tensor([1, 2]), offset=3),
        ValueError,
        r"offset is only used when positions is a length",
        id="learned-tensor-and-offset",
    ),
    # sinusoidal_positions and its module
    pytest.param(
        lambda: sinusoidal_positions(3, 4, dtype=torch.int64),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype.*torch.int64",
        id="sin-int-dtype",
    ),
    pytest.param(
        lambda: sinusoidal_positions(3, 4, dtype="float32"),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype",
        id="sin-str-dtype",
    ),
    pytest.param(
        lambda: sinusoidal_positions(3, 4, base=torch.tensor(100.0)),
        TypeError,
        r"base must be a float > 0, got Tensor",
        id="sin-tensor-base",
    ),
    pytest.param(
        lambda: sinusoidal_positions(3, 4, base=True),
        TypeError,
        r"base must be a float > 0, got bool",
        id="sin-bool-base",
    ),
    pytest.param(
        lambda: sinusoidal_positions(3, 5),
        ValueError,
        r"d_model must be even .* got 5; use 4 or 6",
        id="sin-odd-d",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(32, 7),
        ValueError,
        r"d_model must be even",
        id="sinmod-odd-d",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(0, 8),
        ValueError,
        r"context_length must be >= 1, got 0",
        id="sinmod-zero-context",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(4.0, 8),
        TypeError,
        r"context_length must be an int",
        id="sinmod-float-context",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(4, 8, dtype=torch.int32),
        TypeError,
        r"dtype must be None or a floating-point torch.dtype",
        id="sinmod-int-dtype",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(4, 8, base=float("nan")),
        ValueError,
        r"base must be a finite number > 0, got nan",
        id="sinmod-nan-base",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(4, 8, validate="yes"),
        TypeError,
        r"validate must be True or False",
        id="sinmod-validate-str",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(32, 8)(33),
        ValueError,
        r"context_length is 32",
        id="sinmod-too-long",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(32, 8)(torch.tensor([32])),
        ValueError,
        r"positions contains 32, but context_length is 32",
        id="sinmod-position-too-big",
    ),
    pytest.param(
        lambda: SinusoidalPositionalEmbedding(32, 8)(torch.tensor([1.5])),
        TypeError,
        r"positions must hold integers",
        id="sinmod-float-positions",
    ),
]


@pytest.mark.parametrize(("factory", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(factory, error, match):
    with pytest.raises(error, match=match):
        _call(factory)


def test_bad_input_table_size():
    assert len(BAD_INPUTS) >= 50


# ---------------------------------------------------------------- hot path and meta device


def test_validate_false_traces_as_one_graph():
    """Without the check the layer is nn.Embedding's forward alone: no graph break, no sync."""
    torch._dynamo.reset()
    emb = TokenEmbedding(50, 8, validate=False)
    compiled = torch.compile(emb, fullgraph=True, backend="eager")
    ids = torch.randint(0, 50, (2, 7))
    assert torch.equal(compiled(ids), emb.weight[ids])
    pos = LearnedPositionalEmbedding(16, 8, validate=False)
    compiled_pos = torch.compile(
        lambda ids: emb(ids) + pos(ids.shape[1]), fullgraph=True, backend="eager"
    )
    assert torch.equal(compiled_pos(ids), emb.weight[ids] + pos.weight[:7])


def test_validate_true_does_not_trace_as_one_graph():
    """The range check reads values back to Python: fullgraph=True must refuse it (the test can fail)."""
    torch._dynamo.reset()
    compiled = torch.compile(TokenEmbedding(50, 8), fullgraph=True, backend="eager")
    # torch._dynamo.exc.Unsupported or UserError, depending on the torch version
    with pytest.raises(
        torch._dynamo.exc.TorchDynamoException
    ):  # torch._dynamo.exc.Unsupported (its name varies across versions)
        compiled(torch.randint(0, 50, (2, 7)))


def test_validate_can_be_switched_after_construction():
    emb = TokenEmbedding(10, 3)
    emb.validate = False
    with pytest.raises(IndexError):  # torch's own error: the check is really off
        emb(torch.tensor([10]))


def test_check_index_tensor_is_the_guard_a_model_calls_once():
    ids = torch.tensor([[1, 2], [3, 4]], dtype=torch.int16)
    checked = check_index_tensor(ids, 5)
    assert checked.dtype == torch.long and torch.equal(checked, ids.long())
    same = torch.tensor([1, 2])
    assert check_index_tensor(same, 5) is same  # int64 comes back unchanged, no copy
    with pytest.raises(ValueError, match="ids contains 5, but vocab_size is 5"):
        check_index_tensor(torch.tensor([5]), 5)


def test_sinusoidal_module_on_meta_then_to_empty_and_reset():
    with torch.device("meta"):
        meta = SinusoidalPositionalEmbedding(64, 16)
    assert meta.pe.device.type == "meta"
    real = meta.to_empty(device="cpu")
    real.reset_parameters()
    fresh = SinusoidalPositionalEmbedding(64, 16)
    assert torch.equal(real.pe, fresh.pe)
    assert torch.equal(real(10, offset=5), fresh(10, offset=5))


def test_sinusoidal_reset_keeps_device_and_dtype():
    mod = SinusoidalPositionalEmbedding(8, 4).to(torch.float64)
    mod.pe.zero_()
    mod.reset_parameters()
    assert mod.pe.dtype == torch.float64
    assert torch.equal(mod.pe, sinusoidal_positions(8, 4, dtype=torch.float64))


def test_model_built_on_meta_then_reset_matches_shapes():
    with torch.device("meta"):
        layers = torch.nn.ModuleList(
            [
                TokenEmbedding(20, 8),
                LearnedPositionalEmbedding(16, 8),
                SinusoidalPositionalEmbedding(16, 8),
            ]
        )
    layers = layers.to_empty(device="cpu")
    for layer in layers:
        layer.reset_parameters()
    ids = torch.randint(0, 20, (2, 5))
    h = layers[0](ids) + layers[1](5) + layers[2](5)
    assert h.shape == (2, 5, 8) and torch.isfinite(h).all()
    assert torch.equal(layers[2].pe, sinusoidal_positions(16, 8))
