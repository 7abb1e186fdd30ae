"""Tests of llmbook.model (chapter 07): ModelConfig, TransformerBlock, DecoderLM."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmbook.model import (
    PRESETS,
    DecoderLM,
    ModelConfig,
    TransformerBlock,
    default_device,
    greedy_generate,
    init_weights,
    parameter_counts,
)

GPT2_STYLE = dict(norm="layernorm", mlp="gelu_tanh", position="learned", bias=True)


def tiny(**changes):
    torch.manual_seed(0)
    return DecoderLM(ModelConfig.from_preset("stories-tiny", **changes)).eval()


# ---------------------------------------------------------------- configuration

BAD_CONFIGS = [
    pytest.param(
        dict(d_model=100, n_heads=3), ValueError, "divisible by n_heads", id="d_model%n_heads"
    ),
    pytest.param(
        dict(n_heads=4, n_kv_heads=3), ValueError, "divisible by n_kv_heads", id="n_heads%n_kv"
    ),
    pytest.param(
        dict(n_heads=4, n_kv_heads=8), ValueError, "divisible by n_kv_heads", id="kv>heads"
    ),
    pytest.param(dict(norm="batchnorm"), ValueError, "norm must be one of", id="norm-kind"),
    pytest.param(dict(mlp="tanh"), ValueError, "mlp must be one of", id="mlp-kind"),
    pytest.param(dict(position="alibi"), ValueError, "position must be one of", id="position-kind"),
    pytest.param(dict(d_model=96, n_heads=32), ValueError, "even", id="odd-head-dim-with-rope"),
    pytest.param(
        dict(position="learned", rope_scaling={"rope_type": "llama3"}),
        ValueError,
        "rope_scaling=None",
        id="scaling-without-rope",
    ),  # fmt: skip
    pytest.param(dict(rope_scaling={"rope_type": "yarn"}), ValueError, "llama3", id="yarn-scaling"),
    pytest.param(dict(rope_scaling="llama3"), ValueError, "dict", id="scaling-not-a-dict"),
    pytest.param(dict(rope_base=1.0), ValueError, "base", id="rope-base-1"),
    pytest.param(dict(vocab_size=0), ValueError, "vocab_size", id="vocab-0"),
    pytest.param(dict(vocab_size=2048.0), TypeError, "vocab_size", id="vocab-float"),
    pytest.param(dict(context_length=-1), ValueError, "context_length", id="context-negative"),
    pytest.param(dict(n_layers=True), TypeError, "n_layers", id="n_layers-bool"),
    pytest.param(dict(d_ff=0), ValueError, "d_ff", id="d_ff-0"),
    pytest.param(dict(n_kv_heads="2"), TypeError, "n_kv_heads", id="n_kv_heads-str"),
    pytest.param(dict(norm_eps=0.0), ValueError, "norm_eps", id="eps-0"),
    pytest.param(dict(norm_eps="1e-5"), TypeError, "norm_eps", id="eps-str"),
    pytest.param(dict(init_std=-0.02), ValueError, "init_std", id="init-std-negative"),
    pytest.param(dict(dropout=1.0), ValueError, "dropout", id="dropout-1"),
    pytest.param(dict(bias=1), TypeError, "bias", id="bias-int"),
    pytest.param(dict(tie_embeddings="yes"), TypeError, "tie_embeddings", id="tie-str"),
    pytest.param(dict(qkv_bias=0), ValueError, "qkv_bias", id="qkv-bias-int"),
]


@pytest.mark.parametrize("changes, error, words", BAD_CONFIGS)
def test_bad_configs_say_what_to_fix(changes, error, words):
    with pytest.raises(error, match=words):
        ModelConfig.from_preset("stories-tiny", **changes)


def test_unknown_preset():
    with pytest.raises(ValueError, match="stories-tiny"):
        ModelConfig.from_preset("gpt5")


def test_defaults_filled_in():
    config = ModelConfig(d_model=64, n_heads=4)
    assert config.n_kv_heads == 4 and config.head_dim == 16
    assert config.d_ff == 256  # swiglu_hidden_size(64): 8/3 * 64 rounded up to 256
    assert ModelConfig(d_model=64, n_heads=4, **GPT2_STYLE).d_ff == 256  # 4 * d_model


def test_presets_are_not_shared():
    a = ModelConfig.from_preset("llama-3.1-8b")
    a.rope_scaling["factor"] = 2.0
    assert ModelConfig.from_preset("llama-3.1-8b").rope_scaling["factor"] == 8.0
    assert PRESETS["llama-3.1-8b"]["rope_scaling"]["factor"] == 8.0


# ---------------------------------------------------------------- sizes on the meta device


@pytest.mark.parametrize(
    "name, total",
    [
        ("gpt2", 124_439_808),
        ("llama-2-7b", 6_738_415_616),
        ("llama-3.1-8b", 8_030_261_248),
        ("llama-3.2-1b", 1_235_814_400),
    ],
)
def test_real_parameter_counts_on_meta(name, total):
    with torch.device("meta"):
        model = DecoderLM(ModelConfig.from_preset(name))
    counts = parameter_counts(model)
    assert counts["total"] == total == sum(p.numel() for p in model.parameters())
    assert sum(v for k, v in counts.items() if k != "total") == total
    config = model.config
    assert counts["LM head"] == (0 if config.tie_embeddings else config.vocab_size * config.d_model)


def test_llama_31_components():
    with torch.device("meta"):
        counts = parameter_counts(DecoderLM(ModelConfig.from_preset("llama-3.1-8b")))
    assert counts["LM head"] == 4096 * 128256 == 525_336_576
    assert counts["attention"] == 32 * (4096 * 4096 * 2 + 4096 * 1024 * 2)
    assert counts["MLP"] == 32 * 3 * 4096 * 14336
    assert counts["position embedding"] == 0


def test_stories_presets_fit_the_book_tokenizer():
    for name in ("stories-tiny", "stories-small", "stories-base"):
        config = ModelConfig.from_preset(name)
        assert (
            config.vocab_size == 2048
            and config.position == "rope"
            and config.n_kv_heads < config.n_heads
        )


# ---------------------------------------------------------------- forward pass


@pytest.mark.parametrize("style", [{}, GPT2_STYLE], ids=["llama", "gpt2"])
def test_forward_shapes_and_loss(style):
    model = tiny(**style)
    ids = torch.randint(0, 2048, (3, 17))
    targets = torch.randint(0, 2048, (3, 17))
    logits = model(ids)
    assert logits.shape == (3, 17, 2048) and logits.dtype == torch.float32
    logits2, loss = model(ids, targets)
    assert torch.equal(logits, logits2)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 2048), targets.reshape(-1)))
    targets[0, :5] = -100  # ignored positions
    _, loss = model(ids, targets)
    keep = targets.reshape(-1) != -100
    assert torch.allclose(
        loss, F.cross_entropy(logits.reshape(-1, 2048)[keep], targets.reshape(-1)[keep])
    )


def test_causal():
    model = tiny()
    ids = torch.randint(0, 2048, (1, 12))
    changed = ids.clone()
    changed[0, 8] = (ids[0, 8] + 1) % 2048
    a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:], atol=1e-4)


@pytest.mark.parametrize("style", [{}, GPT2_STYLE], ids=["llama", "gpt2"])
def test_explicit_positions(style):
    model = tiny(**style)
    ids = torch.randint(0, 2048, (2, 9))
    assert torch.allclose(model(ids, positions=torch.arange(9)), model(ids), atol=1e-6)
    shifted = model(ids, positions=torch.arange(9).expand(2, 9) + 20)
    # RoPE sees relative positions only: a shift changes nothing; learned positions change
    assert torch.allclose(shifted, model(ids), atol=1e-5) == (style == {})
    gap = torch.cat([torch.arange(4), torch.arange(10, 15)])  # e.g. after left padding
    assert not torch.allclose(model(ids, positions=gap), model(ids), atol=1e-4)


def test_untrained_loss_near_ln_vocab():
    model = DecoderLM(ModelConfig.from_preset("stories-small"))
    ids = torch.randint(0, 2048, (4, 64))
    _, loss = model(ids, torch.randint(0, 2048, (4, 64)))
    assert abs(loss.item() - math.log(2048)) < 0.05


def test_block_keeps_shape():
    block = TransformerBlock(ModelConfig.from_preset("stories-tiny"))
    x = torch.randn(2, 5, 64)
    assert block(x).shape == x.shape


def test_the_forwards_are_plain():
    """Chapter 7's forwards take what chapter 7 teaches; the KV cache is chapter 9's
    (``llmbook.generation.forward_with_cache``), not an argument carried here."""
    import inspect

    from llmbook.model import Decoder

    def arguments(method):
        return list(inspect.signature(method).parameters)[1:]

    assert arguments(DecoderLM.forward) == ["ids", "targets", "positions", "attn_mask"]
    assert arguments(Decoder.forward) == ["ids", "positions", "attn_mask"]
    assert arguments(TransformerBlock.forward) == ["x", "positions", "attn_mask"]
    with pytest.raises(TypeError, match="kv_cache"):
        tiny()(torch.tensor([[1, 2]]), kv_cache=None)


# ---------------------------------------------------------------- bad input at the boundary

IDS = torch.tensor([[1, 2, 3]])
SQUARE = torch.randint(0, 2048, (4, 4))  # B == T: a (B, T) mask also has the shape (Tq, Tk)

# One row per bad input: the error's type, and words that name the argument and what is allowed.
BAD_CALLS = [
    pytest.param(
        lambda m: m(torch.zeros(1, 65, dtype=torch.long)),
        ValueError,
        r"ids must have shape \(B, T\) with 1 <= T <= context_length=64",
        id="too-long",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(torch.zeros(1, 0, dtype=torch.long)),
        ValueError,
        r"ids must have shape \(B, T\).*T >= 1",
        id="empty",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(torch.zeros(4, dtype=torch.long)),
        ValueError,
        r"ids must have shape \(B, T\).*ids\[None\]",
        id="1-d",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(torch.zeros(1, 4)), TypeError, "ids must be an integer tensor", id="float-ids"
    ),
    pytest.param(
        lambda m: m(torch.zeros(1, 4, dtype=torch.bool)),
        TypeError,
        r"ids must be an integer tensor \(torch.long or torch.int32\), got dtype torch.bool",
        id="bool-ids",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(torch.zeros(1, 4, dtype=torch.uint8)),
        TypeError,
        r"ids must be an integer tensor \(torch.long or torch.int32\), got dtype torch.uint8",
        id="uint8-ids",
    ),  # fmt: skip
    pytest.param(lambda m: m([[1, 2, 3]]), TypeError, "ids must be .*got list", id="list-ids"),
    pytest.param(
        lambda m: m(torch.tensor([[1, 2048]])),
        ValueError,
        r"ids must lie in \[0, 2047\] \(vocab_size is 2048\)",
        id="id-too-big",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(torch.tensor([[1, -1]])), ValueError, "ids must lie in .* from -1", id="id<0"
    ),
    pytest.param(
        lambda m: m(IDS, torch.tensor([1, 2, 3])),
        ValueError,
        r"targets must have the shape of ids, \(1, 3\)",
        id="targets-shape",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(IDS, IDS.float()),
        TypeError,
        "targets must be a torch.long tensor",
        id="targets-float",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(IDS, torch.tensor([[1, 2, 2048]])),
        ValueError,
        r"targets must lie in \[0, 2047\] .* or be -100",
        id="targets-too-big",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(IDS, positions=torch.tensor([0, 1, 64])),
        ValueError,
        r"positions must lie in \[0, 63\] \(context_length is 64\)",
        id="position-too-big",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(IDS, positions=torch.tensor([0.0, 1.0, 2.0])),
        TypeError,
        "positions must be an integer tensor",
        id="float-positions",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(IDS, positions=torch.arange(4)),
        ValueError,
        r"positions must have shape \(T,\), \(1, T\) or \(B, T\)",
        id="positions-length",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(SQUARE, attn_mask=torch.ones(4, 4, dtype=torch.bool)),
        ValueError,
        r"attn_mask must have 4 dimensions .*\(4, 1, 4, 4\).*mask\[:, None, None, :\]",
        id="hf-padding-mask-B==T",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(SQUARE, attn_mask=torch.ones(4, 1, 1, 4)),
        TypeError,
        "attn_mask must be a boolean tensor",
        id="float-mask",
    ),  # fmt: skip
    pytest.param(
        lambda m: m(SQUARE, attn_mask=torch.ones(4, 1, 1, 5, dtype=torch.bool)),
        ValueError,
        r"attn_mask must have 4 dimensions and broadcast to .*\(4, 1, 4, 4\)",
        id="mask-too-many-keys",
    ),  # fmt: skip
    pytest.param(lambda m: DecoderLM({"d_model": 64}), TypeError, "ModelConfig", id="dict-config"),
    pytest.param(
        lambda m: greedy_generate(m, IDS, -1),
        ValueError,
        "max_new_tokens must be >= 0",
        id="greedy-negative",
    ),  # fmt: skip
    pytest.param(
        lambda m: greedy_generate(m, torch.tensor([1, 2, 3]), 2),
        ValueError,
        r"ids must have shape \(B, T\)",
        id="greedy-1-d-ids",
    ),  # fmt: skip
    pytest.param(
        lambda m: greedy_generate(m, torch.tensor([[1, 2048]]), 2),
        ValueError,
        r"ids must lie in \[0, 2047\]",
        id="greedy-id-too-big",
    ),  # fmt: skip
    pytest.param(
        lambda m: greedy_generate(m, [[1, 2]], 2),
        TypeError,
        "ids must be an integer tensor",
        id="greedy-list-ids",
    ),  # fmt: skip
    pytest.param(
        lambda m: greedy_generate(m.model, IDS, 2),
        TypeError,
        "model must be a DecoderLM, got Decoder",
        id="greedy-not-a-model",
    ),  # fmt: skip
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_input_is_stopped_at_the_boundary(call, error, words):
    with pytest.raises(error, match=words):
        call(tiny())


# ---------------------------------------------------------------- a model owns its config

EDITED_CONFIGS = [
    pytest.param(
        dict(d_model=102),
        ValueError,
        r"d_model \(102\) must be divisible by n_heads.*changed after.*d_model 64 -> 102",
        id="d_model-not-divisible",
    ),  # fmt: skip
    pytest.param(
        dict(d_model=68),
        ValueError,
        r"head_dim.*even.*changed after the ModelConfig was built: d_model 64 -> 68",
        id="odd-head-dim-not-blamed-on-rope-alone",
    ),  # fmt: skip
    pytest.param(
        dict(n_kv_heads=3),
        ValueError,
        r"divisible by n_kv_heads \(3\).*n_kv_heads 2 -> 3",
        id="n_kv_heads",
    ),  # fmt: skip
    pytest.param(
        dict(n_layers="2"),
        TypeError,
        r"n_layers must be an int.*n_layers 2 -> '2'",
        id="n_layers-str",
    ),
    pytest.param(
        dict(norm="batchnorm"),
        ValueError,
        r"norm must be one of.*norm 'rmsnorm' -> 'batchnorm'",
        id="norm-kind",
    ),  # fmt: skip
]


@pytest.mark.parametrize("edits, error, words", EDITED_CONFIGS)
def test_config_edited_after_construction_says_what_changed(edits, error, words):
    config = ModelConfig.from_preset("stories-tiny")
    for name, value in edits.items():
        setattr(config, name, value)
    with pytest.raises(error, match=words):
        DecoderLM(config)


def test_a_model_owns_its_config():
    config = ModelConfig.from_preset("stories-tiny")
    first = DecoderLM(config)
    config.n_layers, config.d_ff = 3, 96  # edited for a second model: valid, and no one's but its
    second = DecoderLM(config)
    assert first.config is not config and first.config.n_layers == 2 and first.config.d_ff == 128
    assert len(first.model.layers) == 2 and len(second.model.layers) == 3
    assert second.config == config and second.config is not config
    assert ModelConfig(**vars(first.config)) == first.config  # vars() holds the fields only


# ---------------------------------------------------------------- weights


def test_tied_weights_are_shared():
    model = tiny(tie_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    with torch.no_grad():
        model.model.embed_tokens.weight[5].fill_(1.0)
    assert torch.all(model.lm_head.weight[5] == 1.0)
    ids = torch.randint(0, 2048, (1, 8))
    model(ids, ids)[1].backward()
    assert model.lm_head.weight.grad is model.model.embed_tokens.weight.grad
    untied = tiny()
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    assert parameter_counts(untied)["total"] - parameter_counts(model)["total"] == 2048 * 64


def test_one_rope_shared_by_all_blocks():
    model = tiny()
    ropes = {id(layer.self_attn.rope) for layer in model.model.layers}
    assert ropes == {id(model.model.rotary_emb)}
    assert not any("rope" in name or "rotary" in name for name in model.state_dict())


def test_init_std():
    torch.manual_seed(0)
    config = ModelConfig.from_preset("stories-base", n_layers=8)
    model = DecoderLM(config)
    named = dict(model.named_parameters())
    residual = 0.02 / math.sqrt(2 * 8)
    for name, p in named.items():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            assert abs(p.std().item() - residual) < 0.1 * residual, name
        elif p.dim() == 2:
            assert abs(p.std().item() - 0.02) < 0.002, name
            assert abs(p.mean().item()) < 0.002, name
        else:
            assert torch.all(p == 1.0), name  # RMSNorm gains
    gpt = DecoderLM(ModelConfig.from_preset("stories-tiny", **GPT2_STYLE))
    biases = [p for n, p in gpt.named_parameters() if n.endswith("bias") and "norm" not in n]
    assert biases and all(torch.all(b == 0) for b in biases)


def _add_lora_a(model):  # a LoRA-style adapter inside attention, named as peft names it
    model.model.layers[0].self_attn.q_proj.lora_A = nn.Linear(64, 4, bias=False)


def _add_score(model):  # a classifier head beside the LM head
    model.score = nn.Linear(64, 2, bias=False)


def _add_top_level(model):
    model.scale = nn.Parameter(torch.ones(3))


def _add_odd_kind(model):  # a known module, but a parameter that is no weight or bias
    model.model.norm.shift = nn.Parameter(torch.zeros(64))


UNPLACEABLE = [
    pytest.param(_add_lora_a, "model.layers.0.self_attn.q_proj.lora_A.weight", id="lora-in-attn"),
    pytest.param(_add_score, "score.weight", id="classifier-head"),
    pytest.param(_add_top_level, "scale", id="top-level"),
    pytest.param(_add_odd_kind, "model.norm.shift", id="not-weight-or-bias"),
]


@pytest.mark.parametrize("add, name", UNPLACEABLE)
def test_parameter_counts_names_a_parameter_it_cannot_place(add, name):
    """Placed by the whole name of the module holding a parameter, never by a substring: an
    adapter inside ``self_attn`` is not counted as attention."""
    model = tiny()
    add(model)
    with pytest.raises(ValueError) as error:
        parameter_counts(model)
    message = str(error.value)
    assert f"parameter {name!r}" in message and "belongs to no component" in message
    assert "'q_proj'" in message and "'input_layernorm'" in message  # what is allowed


def test_parameter_counts_places_every_parameter_of_each_kind():
    for style in ({}, GPT2_STYLE, dict(qkv_bias=True)):
        model = tiny(**style)
        counts = parameter_counts(model)
        assert counts["total"] == sum(p.numel() for p in model.parameters())
        assert counts["norms"] == sum(
            p.numel() for n, p in model.named_parameters() if "layernorm" in n or "model.norm" in n
        )


def test_residual_dropout_is_the_blocks_not_the_mlps():
    """Dropout on each branch's output is the block's; the MLPs hold none of their own."""
    for style in ({}, GPT2_STYLE):
        block = DecoderLM(ModelConfig.from_preset("stories-tiny", dropout=0.1, **style))
        block = block.model.layers[0]
        active = [n for n, m in block.named_modules() if isinstance(m, nn.Dropout) and m.p > 0]
        assert "dropout" in active and not any(n.startswith("mlp") for n in active)


def test_init_weights_reinitialises():
    model = tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    init_weights(model, std=0.5, n_layers=2)
    assert abs(model.model.embed_tokens.weight.std().item() - 0.5) < 0.05


# ---------------------------------------------------------------- generation, compile, device


def test_greedy_generation_is_deterministic_argmax():
    model = tiny()
    ids = torch.tensor([[5, 6, 7]])
    out = greedy_generate(model, ids, 10)
    assert out.shape == (1, 13) and torch.equal(out[:, :3], ids)
    assert torch.equal(out, greedy_generate(model, ids, 10))
    logits = model(out[:, :-1])
    assert torch.equal(logits[0, 2:].argmax(-1), out[0, 3:])  # each new token is the argmax
    assert greedy_generate(model, ids, 0).shape == (1, 3)


def test_padding_mask_with_batch_equal_to_length():
    """B == T: the (B, T) padding mask, passed as (B, 1, 1, T), masks keys; the same tensor
    passed bare (a (Tq, Tk) mask to attention) is refused above."""
    model = tiny()
    ids = torch.randint(1, 2048, (4, 4))
    real = torch.ones(4, 4, dtype=torch.bool)
    real[0, :2] = real[1, :1] = False  # left padding of rows 0 and 1
    positions = (real.cumsum(-1) - 1).clamp(min=0)
    batch = model(ids, positions=positions, attn_mask=real[:, None, None, :])
    for row in range(4):
        alone = model(ids[row, real[row]][None])
        assert torch.allclose(batch[row, real[row]], alone[0], atol=1e-5)


def test_greedy_crops_to_context_and_restores_mode():
    model = tiny()
    model.train()
    out = greedy_generate(model, torch.randint(0, 2048, (2, 60)), 10)
    assert out.shape == (2, 70) and model.training


@pytest.mark.parametrize("style", [{}, GPT2_STYLE], ids=["llama", "gpt2"])
def test_compile_fullgraph(style):
    torch._dynamo.reset()
    model = tiny(**style)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    ids = torch.randint(0, 2048, (2, 10))
    with torch.no_grad():
        logits, loss = compiled(ids, ids)
        assert torch.allclose(logits, model(ids), atol=1e-6)


def test_default_device():
    device = default_device()
    assert isinstance(device, torch.device) and device.type in ("cuda", "mps", "cpu")
    assert torch.zeros(1, device=device).device.type == device.type


def test_dtype_follows_the_model():
    model = tiny().to(torch.bfloat16)
    assert model(torch.tensor([[1, 2, 3]])).dtype == torch.bfloat16
