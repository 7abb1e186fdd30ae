"""Tests of llmbook.feedforward (chapter 06): each module against its PyTorch or Hugging Face
counterpart with the same weights, Llama's hidden-size rule, and error messages."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, LlamaConfig
from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

from llmbook.feedforward import FeedForward, LayerNorm, RMSNorm, SwiGLU, swiglu_hidden_size

TOL = dict(atol=1e-5, rtol=1e-5)


def randomise(module, std=1.0, seed=0):
    """Give every parameter random values with a std large enough that a wrong formula shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


def inputs(*shape, std=1.0, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * std).to(dtype)


# ---------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(2, 5, 32), (7, 32), (2, 3, 4, 32)])
def test_layer_norm_matches_torch(bias, shape):
    ours = randomise(LayerNorm(32, eps=1e-5, bias=bias))
    theirs = nn.LayerNorm(32, eps=1e-5, bias=bias)
    theirs.load_state_dict(ours.state_dict())
    x = inputs(*shape, std=3.0) + 2.0  # a mean far from 0, so a missing centring would show
    torch.testing.assert_close(ours(x), theirs(x), **TOL)
    assert (ours.bias is None) == (not bias)


def test_layer_norm_eps_is_used():
    x = inputs(4, 16, std=1e-3)  # variance ~1e-6: eps matters
    torch.testing.assert_close(LayerNorm(16, eps=1e-2)(x), nn.LayerNorm(16, eps=1e-2)(x), **TOL)
    assert not torch.allclose(LayerNorm(16, eps=1e-2)(x), LayerNorm(16, eps=1e-6)(x), atol=1e-2)


@pytest.mark.parametrize("eps", [1e-6, 1e-5, 1e-2])
def test_rms_norm_matches_torch(eps):
    ours = randomise(RMSNorm(32, eps=eps))
    theirs = nn.RMSNorm(32, eps=eps)
    theirs.load_state_dict(ours.state_dict())
    x = inputs(2, 5, 32, std=0.1)  # small inputs, so eps 1e-2 changes the result
    torch.testing.assert_close(ours(x), theirs(x), **TOL)


@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_rms_norm_matches_llama_float32(eps):
    ours = randomise(RMSNorm(32, eps=eps))
    theirs = LlamaRMSNorm(32, eps=eps)
    theirs.load_state_dict(ours.state_dict())
    x = inputs(3, 7, 32, std=4.0)
    torch.testing.assert_close(ours(x), theirs(x), **TOL)


def test_rms_norm_matches_llama_bfloat16_exactly():
    ours = randomise(RMSNorm(64, eps=1e-5)).bfloat16()
    theirs = LlamaRMSNorm(64, eps=1e-5).bfloat16()
    theirs.load_state_dict(ours.state_dict())
    x = inputs(4, 9, 64, std=3.0, dtype=torch.bfloat16)
    out = ours(x)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, theirs(x))  # same float32 statistics, same cast, same order
    # ... which an all-bfloat16 computation does not reproduce
    naive = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * ours.weight
    assert not torch.equal(naive, out)


def test_rms_norm_unit_rms_and_not_bounded():
    x = inputs(8, 10, 64, std=5.0)
    out = RMSNorm(64)(x)  # gain 1 at initialisation
    torch.testing.assert_close(out.pow(2).mean(-1).sqrt(), torch.ones(8, 10), **TOL)
    assert out.shape == x.shape
    assert out.abs().max() > 1.5  # unit RMS does NOT mean values in [-1, 1]


def test_layer_norm_zero_mean_unit_std():
    out = LayerNorm(64)(inputs(5, 64, std=7.0) + 3.0)
    torch.testing.assert_close(out.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(-1, correction=0), torch.ones(5), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------- FeedForward

REFERENCE_ACTIVATIONS = {
    "relu": F.relu,
    "gelu": lambda t: F.gelu(t, approximate="none"),
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "silu": nn.SiLU(),
}


@pytest.mark.parametrize("activation", sorted(REFERENCE_ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False])
def test_feed_forward_matches_reference(activation, bias):
    ffn = randomise(FeedForward(16, 40, activation=activation, bias=bias), std=0.5).eval()
    x = inputs(2, 6, 16)
    act = REFERENCE_ACTIVATIONS[activation]
    expected = F.linear(
        act(F.linear(x, ffn.up_proj.weight, ffn.up_proj.bias)),
        ffn.down_proj.weight,
        ffn.down_proj.bias,
    )
    torch.testing.assert_close(ffn(x), expected, **TOL)
    assert ffn(x).shape == (2, 6, 16)


def test_activations_are_told_apart():
    # The reference test above would not notice a swapped activation unless they differ here.
    x = inputs(2, 6, 16)
    outputs = {}
    for name in REFERENCE_ACTIVATIONS:
        outputs[name] = randomise(FeedForward(16, 40, activation=name), std=0.5)(x)
    names = sorted(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert (outputs[a] - outputs[b]).abs().max() > 1e-3, (a, b)


@pytest.mark.parametrize(
    "activation, hf_name, equal",
    [("gelu_tanh", "gelu_new", True), ("gelu", "gelu_new", False), ("gelu", "gelu", True)],
)
def test_feed_forward_matches_gpt2_mlp(activation, hf_name, equal):
    d_model, d_ff = 32, 128
    config = GPT2Config(n_embd=d_model, n_layer=1, n_head=4, activation_function=hf_name)
    hf = randomise(GPT2MLP(d_ff, config), std=1.0).eval()
    with torch.no_grad():  # std 1 into the activation (where GELUs differ), outputs of order 1
        hf.c_proj.weight /= math.sqrt(d_ff)
    ours = FeedForward(d_model, d_ff, activation=activation).eval()
    with torch.no_grad():  # GPT-2's Conv1D stores (d_in, d_out): nn.Linear stores the transpose
        ours.up_proj.weight.copy_(hf.c_fc.weight.T)
        ours.up_proj.bias.copy_(hf.c_fc.bias)
        ours.down_proj.weight.copy_(hf.c_proj.weight.T)
        ours.down_proj.bias.copy_(hf.c_proj.bias)
        x = inputs(2, 5, d_model)
        assert torch.allclose(ours(x), hf(hidden_states=x), **TOL) == equal


def test_feed_forward_names_and_shapes():
    ffn = FeedForward(8, 32)
    assert sorted(ffn.state_dict()) == [
        "down_proj.bias",
        "down_proj.weight",
        "up_proj.bias",
        "up_proj.weight",
    ]
    assert ffn.up_proj.weight.shape == (32, 8) and ffn.down_proj.weight.shape == (8, 32)
    assert sorted(FeedForward(8, 32, bias=False).state_dict()) == [
        "down_proj.weight",
        "up_proj.weight",
    ]
    for shape in [(8,), (3, 8), (2, 3, 4, 8)]:
        assert ffn(torch.randn(shape)).shape == shape


def test_gpt2_small_mlp_parameter_count():
    with torch.device("meta"):
        ffn = FeedForward(768, 3072)
    assert sum(p.numel() for p in ffn.parameters()) == 2 * 768 * 3072 + 3072 + 768 == 4_722_432


# ---------------------------------------------------------------------------- SwiGLU


@pytest.mark.parametrize("d_model, d_ff", [(32, 88), (16, 48), (8, 8)])
def test_swiglu_matches_llama_mlp(d_model, d_ff):
    config = LlamaConfig(
        hidden_size=d_model, intermediate_size=d_ff, hidden_act="silu", num_attention_heads=4
    )
    hf = randomise(LlamaMLP(config), std=1.0)
    ours = SwiGLU(d_model, d_ff)
    ours.load_state_dict(hf.state_dict())  # same names: gate_proj, up_proj, down_proj
    x = inputs(2, 5, d_model)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x), **TOL)
        # a wrong activation would show at this scale
        wrong = ours.down_proj(F.gelu(ours.gate_proj(x)) * ours.up_proj(x))
        assert not torch.allclose(wrong, hf(x), **TOL)


def test_swiglu_formula_with_bias():
    swiglu = randomise(SwiGLU(12, 20, bias=True), std=0.5)
    x = inputs(3, 12)
    gate = F.linear(x, swiglu.gate_proj.weight, swiglu.gate_proj.bias)
    up = F.linear(x, swiglu.up_proj.weight, swiglu.up_proj.bias)
    expected = F.linear(F.silu(gate) * up, swiglu.down_proj.weight, swiglu.down_proj.bias)
    torch.testing.assert_close(swiglu(x), expected, **TOL)
    assert sorted(SwiGLU(12, 20).state_dict()) == [
        "down_proj.weight",
        "gate_proj.weight",
        "up_proj.weight",
    ]


@pytest.mark.parametrize(
    "d_ff, expected",
    [(11008, 135_266_304), (14336, 176_160_768)],
    ids=["llama-2-7b", "llama-3.1-8b"],
)
def test_llama_mlp_parameter_counts(d_ff, expected):
    with torch.device("meta"):
        swiglu = SwiGLU(4096, d_ff)
    assert sum(p.numel() for p in swiglu.parameters()) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param((4096,), 11008, id="llama-2-7b"),
        pytest.param((5120,), 13824, id="llama-2-13b"),
        pytest.param((8192, 4096, 1.3), 28672, id="llama-2-70b"),
        pytest.param((4096, 1024, 1.3), 14336, id="llama-3.1-8b"),
        pytest.param((2048, 256, 1.5), 8192, id="llama-3.2-1b"),
        pytest.param((3072, 256, 1.0), 8192, id="llama-3.2-3b"),
        pytest.param((64, 16), 176, id="book-toy"),
    ],
)
def test_swiglu_hidden_size(args, expected):
    assert swiglu_hidden_size(*args) == expected


def test_swiglu_hidden_size_is_meta_rule():
    for d_model in range(1, 600, 7):
        for multiple_of in (1, 8, 256):
            hidden = int(2 * 4 * d_model / 3)
            expected = multiple_of * math.ceil(hidden / multiple_of)
            assert swiglu_hidden_size(d_model, multiple_of) == expected
    assert 8 / 3 * 4096 < 11008 < 14336  # 14336 is not 8/3 x 4096 rounded up to 256
    assert swiglu_hidden_size(4096, 256) != 14336


# ---------------------------------------------------------------------------- errors


BAD_ARGUMENTS = [  # (constructor, args, kwargs, error, message), one row per case
    pytest.param(
        FeedForward, ("64", 256), {}, TypeError, "d_model must be an int", id="ffn-d_model-str"
    ),
    pytest.param(
        FeedForward, (64.0, 256), {}, TypeError, "d_model must be an int", id="ffn-d_model-float"
    ),
    pytest.param(
        FeedForward, (True, 256), {}, TypeError, "d_model must be an int", id="ffn-d_model-bool"
    ),
    pytest.param(
        FeedForward, (0, 256), {}, ValueError, "d_model must be >= 1, got 0", id="ffn-d_model-0"
    ),
    pytest.param(
        FeedForward, (64, -1), {}, ValueError, "d_ff must be >= 1, got -1", id="ffn-d_ff-negative"
    ),
    pytest.param(FeedForward, (64, None), {}, TypeError, "d_ff must be an int", id="ffn-d_ff-none"),
    pytest.param(
        FeedForward,
        (64, 256),
        {"activation": "swish"},
        ValueError,
        "one of 'relu', 'gelu', 'gelu_tanh', 'silu'; got 'swish'",
        id="ffn-activation-unknown",
    ),
    pytest.param(
        FeedForward,
        (64, 256),
        {"activation": "GELU"},
        ValueError,
        "activation must be one of",
        id="ffn-activation-case",
    ),
    pytest.param(
        FeedForward,
        (64, 256),
        {"activation": nn.GELU()},
        ValueError,
        "activation must be one of",
        id="ffn-activation-module",
    ),
    pytest.param(
        FeedForward,
        (64, 256),
        {"bias": "yes"},
        TypeError,
        "bias must be True or False",
        id="ffn-bias-str",
    ),
    pytest.param(  # the block drops out each branch's output; the MLP has no dropout of its own
        FeedForward,
        (64, 256),
        {"dropout": 0.1},
        TypeError,
        "unexpected keyword argument 'dropout'",
        id="ffn-no-dropout-argument",
    ),
    pytest.param(
        SwiGLU, (0, 88), {}, ValueError, "d_model must be >= 1, got 0", id="swiglu-d_model-0"
    ),
    pytest.param(SwiGLU, (32, 88.5), {}, TypeError, "d_ff must be an int", id="swiglu-d_ff-float"),
    pytest.param(
        SwiGLU, (32, 88), {"bias": 1}, TypeError, "bias must be True or False", id="swiglu-bias-int"
    ),
    pytest.param(
        LayerNorm, (0,), {}, ValueError, "d_model must be >= 1, got 0", id="layernorm-d_model-0"
    ),
    pytest.param(
        LayerNorm,
        (32,),
        {"eps": -1e-5},
        ValueError,
        "eps must be a finite number > 0, got -1e-05",
        id="layernorm-eps-negative",
    ),
    pytest.param(
        LayerNorm,
        (32,),
        {"eps": 0},
        ValueError,
        "eps must be a finite number > 0, got 0",
        id="layernorm-eps-zero",
    ),
    pytest.param(
        LayerNorm,
        (32,),
        {"eps": "1e-5"},
        TypeError,
        "eps must be a float > 0, got str",
        id="layernorm-eps-str",
    ),
    pytest.param(
        LayerNorm,
        (32,),
        {"bias": None},
        TypeError,
        "bias must be True or False",
        id="layernorm-bias-none",
    ),
    pytest.param(
        RMSNorm, ("32",), {}, TypeError, "d_model must be an int", id="rmsnorm-d_model-str"
    ),
    pytest.param(
        RMSNorm,
        (32,),
        {"eps": -1e-6},
        ValueError,
        "eps must be a finite number > 0",
        id="rmsnorm-eps-negative",
    ),
    pytest.param(
        RMSNorm,
        (32,),
        {"eps": float("nan")},
        ValueError,
        "eps must be a finite number > 0, got nan",
        id="rmsnorm-eps-nan",
    ),
    pytest.param(
        swiglu_hidden_size, (0,), {}, ValueError, "d_model must be >= 1", id="hidden-d_model-0"
    ),
    pytest.param(
        swiglu_hidden_size,
        (4096.0,),
        {},
        TypeError,
        "d_model must be an int",
        id="hidden-d_model-float",
    ),
    pytest.param(
        swiglu_hidden_size,
        (4096, 0),
        {},
        ValueError,
        "multiple_of must be >= 1",
        id="hidden-multiple_of-0",
    ),
    pytest.param(
        swiglu_hidden_size,
        (4096, 2.5),
        {},
        TypeError,
        "multiple_of must be an int",
        id="hidden-multiple_of-float",
    ),
    pytest.param(
        swiglu_hidden_size,
        (4096, 1024, -1.3),
        {},
        ValueError,
        "ffn_dim_multiplier must be a finite number > 0",
        id="hidden-multiplier-negative",
    ),
    pytest.param(
        swiglu_hidden_size,
        (4096, 1024, "1.3"),
        {},
        TypeError,
        "ffn_dim_multiplier must be a float > 0",
        id="hidden-multiplier-str",
    ),
]


@pytest.mark.parametrize("make, args, kwargs, error, message", BAD_ARGUMENTS)
def test_bad_arguments(make, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        make(*args, **kwargs)


# ---------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize(
    "make",
    [
        lambda: FeedForward(16, 40),
        lambda: FeedForward(16, 40, activation="gelu", bias=False),
        lambda: SwiGLU(16, 40),
        lambda: LayerNorm(16),
        lambda: LayerNorm(16, bias=False),
        lambda: RMSNorm(16),
    ],
    ids=[
        "feedforward",
        "feedforward-gelu-nobias",
        "swiglu",
        "layernorm",
        "layernorm-nobias",
        "rmsnorm",
    ],
)
def test_compiles_without_graph_breaks(make):
    torch.compiler.reset()
    module = randomise(make(), std=0.5).eval()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    x = inputs(2, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), module(x), **TOL)


def test_gradients_reach_every_parameter():
    for module in (FeedForward(8, 16), SwiGLU(8, 16), LayerNorm(8), RMSNorm(8)):
        randomise(module, std=0.5)(inputs(3, 8)).pow(2).sum().backward()
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (type(module).__name__, name)
