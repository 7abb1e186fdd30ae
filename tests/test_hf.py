"""Tests of llmbook.io.hf: Hugging Face checkpoints in and out, against transformers itself.

Offline: every checkpoint is a tiny random model that transformers builds and saves here. The
weights are drawn with a large std (norm gains around 1 +- 0.5, biases 0.5) and the norms get
an unusual eps (0.05), so a wrong GELU, a misread eps, a transposed weight or a wrong RoPE
scaling moves the logits far beyond the tolerance. Logits are compared in float32 within
atol=rtol=1e-5 (their scale is a few units).
"""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")

from llmbook.io.hf import config_from_hf, config_to_hf, load_hf, save_hf  # noqa: E402
from llmbook.model import DecoderLM, ModelConfig  # noqa: E402

SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def gpt2(**changes):
    settings = dict(
        vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=4, layer_norm_epsilon=0.05,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    return transformers.GPT2Config(**{**settings, **changes})


def llama(kind="LlamaConfig", **changes):
    settings = dict(
        vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        rms_norm_eps=0.05, rope_theta=500.0, tie_word_embeddings=False,
    )  # fmt: skip
    return getattr(transformers, kind)(**{**settings, **changes})


CASES = [
    pytest.param("GPT2LMHeadModel", gpt2(), id="gpt2-tied"),
    pytest.param("GPT2LMHeadModel", gpt2(tie_word_embeddings=False), id="gpt2-untied"),
    pytest.param("GPT2LMHeadModel", gpt2(activation_function="gelu"), id="gpt2-exact-gelu"),
    pytest.param("LlamaForCausalLM", llama(), id="llama-mha-untied"),
    pytest.param(
        "LlamaForCausalLM",
        llama(num_key_value_heads=2, tie_word_embeddings=True),
        id="llama-gqa-tied",
    ),
    pytest.param(
        "LlamaForCausalLM",
        llama(
            num_key_value_heads=1,
            rope_theta=500000.0,
            rope_scaling=SCALING,
            max_position_embeddings=16384,
        ),
        id="llama-mqa-llama3-scaling",
    ),  # fmt: skip
    pytest.param("LlamaForCausalLM", llama(attention_bias=True, mlp_bias=True), id="llama-biases"),
    pytest.param(
        "MistralForCausalLM",
        llama("MistralConfig", num_key_value_heads=2, sliding_window=None),
        id="mistral-gqa",
    ),  # fmt: skip
    pytest.param(
        "Qwen2ForCausalLM", llama("Qwen2Config", num_key_value_heads=2), id="qwen2-gqa-qkv-bias"
    ),
    pytest.param(
        "Qwen2ForCausalLM", llama("Qwen2Config", tie_word_embeddings=True), id="qwen2-tied"
    ),
]


def randomise(model, seed=0):
    """Weights far from their defaults: matrices std 0.3, biases std 0.5, norm gains 1 +- 0.5."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() == 1 and name.endswith("weight"):  # LayerNorm / RMSNorm gains
                p.copy_(1.0 + 0.5 * noise)
            else:
                p.copy_((0.5 if p.dim() == 1 else 0.3) * noise)
    return model


def reference(architecture, config, folder, **save_options):
    """A random transformers model of ``config``, saved to ``folder``."""
    model = randomise(getattr(transformers, architecture)(config)).eval()
    model.save_pretrained(folder, **save_options)
    return model


def ids_and_positions(config, vocab=97, T=11):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (2, T), generator=g)
    far = getattr(config, "max_position_embeddings", None) or config.n_positions
    start = 5000 if far > 5000 else far - T  # far positions make a wrong RoPE scaling show
    return ids, torch.arange(start, start + T).expand(2, T)


def hf_logits(model, ids, positions=None):
    with torch.no_grad():
        return model(input_ids=ids, position_ids=positions).logits


def assert_close(ours, theirs):
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("architecture, config", CASES)
def test_from_hf_equals_transformers(architecture, config, tmp_path):
    theirs = reference(architecture, config, tmp_path)
    ours = DecoderLM.from_hf(tmp_path)
    assert isinstance(ours, DecoderLM) and not ours.training
    assert all(p.is_contiguous() for p in ours.parameters())  # savable, e.g. by safetensors
    assert ours.config.tie_embeddings == (ours.lm_head.weight is ours.model.embed_tokens.weight)
    ids, positions = ids_and_positions(config)
    with torch.no_grad():
        assert_close(ours(ids), hf_logits(theirs, ids))
        assert_close(ours(ids, positions=positions), hf_logits(theirs, ids, positions))
    # the logits really depend on the weights: a model with others differs
    other = randomise(getattr(transformers, architecture)(config), seed=5).eval()
    assert not torch.allclose(hf_logits(other, ids), hf_logits(theirs, ids), atol=1e-3)


@pytest.mark.parametrize("architecture, config", CASES)
def test_save_hf_loads_in_transformers(architecture, config, tmp_path):
    theirs = reference(architecture, config, tmp_path / "in")
    ours = DecoderLM.from_hf(tmp_path / "in")
    ours.save_hf(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    # Mistral without a sliding window computes what Llama computes: saved as Llama
    assert type(again).__name__ == architecture.replace("Mistral", "Llama")
    ids, _ = ids_and_positions(config)
    with torch.no_grad():
        assert_close(hf_logits(again, ids), hf_logits(theirs, ids))
        assert_close(DecoderLM.from_hf(tmp_path / "out")(ids), ours(ids))


@pytest.mark.parametrize(
    "architecture, config",
    [
        pytest.param("GPT2LMHeadModel", gpt2(), id="gpt2"),
        pytest.param("LlamaForCausalLM", llama(num_key_value_heads=2), id="llama-gqa"),
    ],
)
def test_one_block_equals_transformers_layer(architecture, config, tmp_path):
    """Block by block, so a mismatch is found where it starts: our TransformerBlock against
    GPT2Block / LlamaDecoderLayer holding the same weights, on the same hidden states."""
    theirs = reference(architecture, config, tmp_path)
    ours = DecoderLM.from_hf(tmp_path)
    x = torch.randn(2, 11, 32, generator=torch.Generator().manual_seed(2))
    _, positions = ids_and_positions(config)
    with torch.no_grad():
        if architecture == "GPT2LMHeadModel":
            expected = theirs.transformer.h[1](x)
            got = ours.model.layers[1](x)
        else:  # RoPE: HF passes the rotary (cos, sin) into each layer; ours holds one rotary
            cos_sin = theirs.model.rotary_emb(x, positions)
            expected = theirs.model.layers[1](x, position_embeddings=cos_sin)
            got = ours.model.layers[1](x, positions)
    expected = expected[0] if isinstance(expected, tuple) else expected  # transformers 4.x
    assert_close(got, expected)
    assert not torch.allclose(got, ours.model.layers[0](x, positions), atol=1e-3)


@pytest.mark.parametrize(
    "architecture, config",
    [
        pytest.param("GPT2LMHeadModel", gpt2(), id="gpt2"),
        pytest.param("LlamaForCausalLM", llama(num_key_value_heads=2), id="llama"),
    ],
)
def test_sharded_checkpoint(architecture, config, tmp_path):
    theirs = reference(architecture, config, tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert not (tmp_path / "model.safetensors").exists()
    ids, _ = ids_and_positions(config)
    with torch.no_grad():
        assert_close(DecoderLM.from_hf(tmp_path)(ids), hf_logits(theirs, ids))


def test_gpt2_without_prefix_and_with_mask_buffers(tmp_path):
    """The original GPT-2 files name weights ``h.0.attn.c_attn.weight`` and carry mask buffers."""
    theirs = reference("GPT2LMHeadModel", gpt2(), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    renamed = {name.removeprefix("transformer."): t for name, t in tensors.items()}
    renamed["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    save_file(renamed, tmp_path / "model.safetensors")
    ids, _ = ids_and_positions(gpt2())
    with torch.no_grad():
        assert_close(DecoderLM.from_hf(tmp_path)(ids), hf_logits(theirs, ids))


def test_dtype_and_device(tmp_path):
    reference("LlamaForCausalLM", llama(), tmp_path)
    model = load_hf(tmp_path, DecoderLM, ModelConfig, dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model(torch.tensor([[1, 2, 3]])).dtype == torch.bfloat16


def test_both_config_spellings_agree():
    """transformers 4.x writes rope_theta/rope_scaling at the top, 5.x a rope_parameters dict."""
    common = dict(
        architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=128256,
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=131072, rms_norm_eps=1e-5,
        hidden_act="silu",
    )  # fmt: skip
    v4 = dict(common, rope_theta=500000.0, rope_scaling=dict(SCALING))
    v4_old = dict(
        v4,
        rope_scaling={**{k: v for k, v in SCALING.items() if k != "rope_type"}, "type": "llama3"},
    )
    v5 = dict(common, rope_parameters={**SCALING, "rope_theta": 500000.0})
    expected = ModelConfig.from_preset("llama-3.1-8b")
    assert config_from_hf(v4) == config_from_hf(v4_old) == config_from_hf(v5)
    assert ModelConfig(**config_from_hf(v4)) == expected
    assert ModelConfig(**config_from_hf(config_to_hf(expected))) == expected


@pytest.mark.parametrize("preset", ["gpt2", "llama-2-7b", "llama-3.2-1b", "stories-tiny"])
def test_presets_round_trip_through_config_json(preset):
    config = ModelConfig.from_preset(preset)
    assert ModelConfig(**config_from_hf(json.loads(json.dumps(config_to_hf(config))))) == config


def test_transformers_reads_our_config_json_as_the_real_one():
    hf = transformers.LlamaConfig(**config_to_hf(ModelConfig.from_preset("llama-3.2-1b")))
    assert (hf.hidden_size, hf.num_key_value_heads, hf.intermediate_size) == (2048, 8, 8192)
    assert hf.tie_word_embeddings is True


# ---------------------------------------------------------------- bad input, one row per case


def write_config(folder, **hf):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf))


def tamper(folder, change):
    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    save_file(tensors, folder / "model.safetensors")


def edit_config(folder, **changes):
    hf = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**hf, **changes}))


def _bad_llama(tmp_path, **config_changes):
    reference("LlamaForCausalLM", llama(), tmp_path)
    edit_config(tmp_path, **config_changes)


BAD_FOLDERS = [
    pytest.param(
        lambda p: p.mkdir(exist_ok=True), FileNotFoundError, "config.json", id="no-config"
    ),
    pytest.param(
        lambda p: write_config(p, architectures=["BertForMaskedLM"], model_type="bert"),
        ValueError,
        "architectures",
        id="unsupported-architecture",
    ),  # fmt: skip
    pytest.param(
        lambda p: write_config(p, **config_to_hf(ModelConfig.from_preset("stories-tiny"))),
        FileNotFoundError,
        "safetensors",
        id="no-weights",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(
            p, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}
        ),
        ValueError,
        "rope_scaling",
        id="yarn-rope-scaling",
    ),  # fmt: skip
    pytest.param(lambda p: _bad_llama(p, head_dim=16), ValueError, "head_dim", id="odd-head-dim"),
    pytest.param(
        lambda p: _bad_llama(p, hidden_act="gelu"), ValueError, "hidden_act", id="not-silu"
    ),
    pytest.param(
        lambda p: _bad_llama(p, attention_bias=True), ValueError, "mlp_bias", id="mixed-biases"
    ),
    pytest.param(
        lambda p: _bad_llama(p, vocab_size=98),
        ValueError,
        "model.embed_tokens.weight",
        id="shape-mismatch",
    ),  # fmt: skip
    pytest.param(
        lambda p: (
            _bad_llama(p),
            tamper(p, lambda t: t.pop("model.layers.1.mlp.up_proj.weight")),
        ),
        KeyError,
        "model.layers.1.mlp.up_proj.weight",
        id="missing-tensor",
    ),  # fmt: skip
    pytest.param(
        lambda p: (_bad_llama(p), tamper(p, lambda t: t.update(extra=torch.zeros(2)))),
        ValueError,
        "extra",
        id="unexpected-tensor",
    ),  # fmt: skip
    pytest.param(
        lambda p: (
            reference("GPT2LMHeadModel", gpt2(), p),
            edit_config(p, scale_attn_by_inverse_layer_idx=True),
        ),
        ValueError,
        "scale_attn_by_inverse_layer_idx",
        id="gpt2-layer-scaled-attention",
    ),  # fmt: skip
    pytest.param(
        lambda p: (
            reference("GPT2LMHeadModel", gpt2(), p),
            edit_config(p, activation_function="swish"),
        ),
        ValueError,
        "activation_function",
        id="gpt2-unknown-activation",
    ),  # fmt: skip
]


@pytest.mark.parametrize("make, error, words", BAD_FOLDERS)
def test_bad_checkpoints_name_the_key(make, error, words, tmp_path):
    make(tmp_path / "ckpt")
    with pytest.raises(error, match=words):
        DecoderLM.from_hf(tmp_path / "ckpt")


@pytest.mark.parametrize("preset", ["stories-tiny", "gpt2"])
def test_save_hf_writes_the_end_of_text_id(preset, tmp_path):
    """Unknown: null, so transformers does not assume its own defaults (GPT-2's 50256 is out of
    a 2,048-id vocabulary; Llama's 2 is a byte here); given: what generate stops at."""
    config = ModelConfig.from_preset(preset, vocab_size=2048, d_model=32, n_layers=1, n_heads=2)
    model = DecoderLM(config)
    save_hf(model, tmp_path / "unknown")
    assert transformers.AutoConfig.from_pretrained(tmp_path / "unknown").eos_token_id is None
    save_hf(model, tmp_path / "known", eos_token_id=2047)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "known")
    assert loaded.config.eos_token_id == loaded.config.bos_token_id == 2047
    assert loaded.generation_config.eos_token_id == 2047


BAD_SAVES = [
    pytest.param("not a model", TypeError, "DecoderLM", id="not-a-model"),
    pytest.param(
        dict(norm="layernorm", position="rope", mlp="gelu_tanh"),
        ValueError,
        "no Hugging Face twin",
        id="layernorm-with-rope",
    ),  # fmt: skip
    pytest.param(
        dict(norm="layernorm", position="learned", mlp="gelu_tanh", bias=True, n_kv_heads=2),
        ValueError,
        "no Hugging Face twin",
        id="gpt2-with-gqa",
    ),  # fmt: skip
    pytest.param(
        dict(eos_token_id=2048),
        ValueError,
        "eos_token_id must be < vocab_size 2048",
        id="eos-out-of-vocab",
    ),
    pytest.param(dict(eos_token_id=-1), ValueError, "eos_token_id must be >= 0", id="eos-negative"),
    pytest.param(dict(eos_token_id=3.0), TypeError, "eos_token_id must be an int", id="eos-float"),
]


@pytest.mark.parametrize("model, error, words", BAD_SAVES)
def test_bad_saves(model, error, words, tmp_path):
    eos_token_id = None
    if isinstance(model, dict):
        eos_token_id = model.pop("eos_token_id", None)
        model = DecoderLM(ModelConfig.from_preset("stories-tiny", **model))
    with pytest.raises(error, match=words):
        save_hf(model, tmp_path / "out", eos_token_id=eos_token_id)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- broken files name the file


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _sharded_llama(folder):
    reference("LlamaForCausalLM", llama(), folder, max_shard_size="20KB")
    return folder / "model.safetensors.index.json"


def _shard(folder, i):
    """The i-th shard of a sharded checkpoint in ``folder`` (its path)."""
    return sorted(folder.glob("model-*-of-*.safetensors"))[i]


def _edit_index(folder, change):
    index = _sharded_llama(folder)
    content = json.loads(index.read_text())
    change(content)
    index.write_text(json.dumps(content))


def _cut(folder, keep):
    """Keep the first ``keep`` bytes of model.safetensors (a negative ``keep``: drop as many)."""
    reference("LlamaForCausalLM", llama(), folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:keep])


def _garble_header(folder):
    reference("LlamaForCausalLM", llama(), folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[8:24] = b"#" * 16  # the JSON header starts at byte 8
    (folder / "model.safetensors").write_bytes(bytes(data))


BROKEN_FILES = [
    pytest.param(
        lambda p: _write(p / "config.json", '{"architectures": ["LlamaForCausalLM"],'),
        ValueError,
        r"config.json' is not valid JSON",
        id="config-invalid-json",
    ),  # fmt: skip
    pytest.param(
        lambda p: _write(p / "config.json", "[1, 2]"),
        ValueError,
        r"config.json' must hold a JSON object, got list",
        id="config-a-list",
    ),  # fmt: skip
    pytest.param(
        lambda p: _write(p / "config.json", '"LlamaForCausalLM"'),
        ValueError,
        r"config.json' must hold a JSON object, got str",
        id="config-a-string",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(p, hidden_size="32"),
        ValueError,
        r"config.json': config.json key 'hidden_size' must be an integer, got '32'",
        id="config-size-a-string",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(p, rms_norm_eps=None),
        ValueError,
        r"config.json': config.json key 'rms_norm_eps' must be a number, got None",
        id="config-eps-null",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(p, tie_word_embeddings="false"),
        ValueError,
        r"key 'tie_word_embeddings' must be true or false, got 'false'",
        id="config-tie-a-string",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(p, architectures="LlamaForCausalLM"),
        ValueError,
        r"config.json': config.json key 'architectures' must be a list of names",
        id="config-architectures-a-string",
    ),  # fmt: skip
    pytest.param(
        lambda p: (
            _bad_llama(p),
            _write(
                p / "config.json",
                json.dumps(
                    {
                        k: v
                        for k, v in json.loads((p / "config.json").read_text()).items()
                        if k != "intermediate_size"
                    }
                ),
            ),
        ),
        ValueError,
        r"config.json': config.json lacks the key 'intermediate_size' \(an integer\)",
        id="config-missing-key",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(p, num_attention_heads=0),
        ValueError,
        r"key 'num_attention_heads' must be >= 1, got 0",
        id="config-zero-heads",
    ),  # fmt: skip
    pytest.param(
        lambda p: _bad_llama(p, num_hidden_layers=-1),
        ValueError,
        r"config.json': n_layers must be >= 1, got -1 \(config.json keys: n_layers <- "
        r"'num_hidden_layers'\)",
        id="config-negative-layers",
    ),  # fmt: skip
    pytest.param(
        lambda p: (_sharded_llama(p), _write(p / "model.safetensors.index.json", "{weight_map")),
        ValueError,
        r"model.safetensors.index.json' is not valid JSON",
        id="index-invalid-json",
    ),  # fmt: skip
    pytest.param(
        lambda p: _edit_index(p, lambda c: c.pop("weight_map")),
        ValueError,
        r"index.json' must have a non-empty object 'weight_map' \(tensor name -> shard file\)",
        id="index-without-weight-map",
    ),  # fmt: skip
    pytest.param(
        lambda p: _edit_index(p, lambda c: c.update(weight_map=["model-00001-of-00002"])),
        ValueError,
        r"index.json' must have a non-empty object 'weight_map'",
        id="index-weight-map-a-list",
    ),  # fmt: skip
    pytest.param(
        lambda p: _edit_index(p, lambda c: c["weight_map"].update(x="../elsewhere.safetensors")),
        ValueError,
        r"index.json' lists the shard '../elsewhere.safetensors'; shards must be .safetensors "
        r"files in the same folder",
        id="index-shard-outside-the-folder",
    ),  # fmt: skip
    pytest.param(
        lambda p: (_sharded_llama(p), _shard(p, 1).unlink()),
        FileNotFoundError,
        r"index.json' lists 'model-00002-of-0000\d.safetensors', which .* lacks",
        id="index-shard-missing",
    ),  # fmt: skip
    pytest.param(
        lambda p: _cut(p, -100),
        ValueError,
        r"model.safetensors' is not a readable safetensors file \(truncated or corrupted\?\)",
        id="weights-truncated",
    ),  # fmt: skip
    pytest.param(
        lambda p: _cut(p, 5),
        ValueError,
        r"model.safetensors' is not a readable safetensors file",
        id="weights-cut-in-the-header",
    ),  # fmt: skip
    pytest.param(
        _garble_header,
        ValueError,
        r"model.safetensors' is not a readable safetensors file",
        id="weights-garbled-header",
    ),  # fmt: skip
    pytest.param(
        lambda p: (_sharded_llama(p), _write(_shard(p, 0), "not it")),
        ValueError,
        r"model-00001-of-0000\d.safetensors' is not a readable safetensors file",
        id="shard-garbled",
    ),  # fmt: skip
]


@pytest.mark.parametrize("make, error, words", BROKEN_FILES)
def test_broken_files_are_named(make, error, words, tmp_path):
    make(tmp_path / "ckpt")
    with pytest.raises(error, match=words):
        DecoderLM.from_hf(tmp_path / "ckpt")


BAD_LOAD_ARGUMENTS = [
    pytest.param(
        dict(dtype="bfloat16"),
        TypeError,
        r"dtype must be a torch.dtype such as torch.bfloat16, or None .*got str 'bfloat16'",
        id="dtype-a-string",
    ),  # fmt: skip
    pytest.param(
        dict(dtype=16),
        TypeError,
        r"dtype must be a torch.dtype .*got int 16",
        id="dtype-an-int",
    ),  # fmt: skip
    pytest.param(
        dict(dtype=torch.int64),
        ValueError,
        r"dtype must be a floating-point torch.dtype .*got torch.int64",
        id="dtype-integer",
    ),  # fmt: skip
    pytest.param(
        dict(path=3), TypeError, "path must be a str or os.PathLike folder, got int", id="path-int"
    ),
]


@pytest.mark.parametrize("arguments, error, words", BAD_LOAD_ARGUMENTS)
def test_bad_load_arguments(arguments, error, words, tmp_path):
    reference("LlamaForCausalLM", llama(), tmp_path)
    with pytest.raises(error, match=words):
        DecoderLM.from_hf(**{"path": tmp_path, **arguments})


# ---------------------------------------------------------------- saving leaves only the new model


def _stale_sharded(folder):
    reference("LlamaForCausalLM", llama(), folder, max_shard_size="20KB")


def _stale_bin(folder):
    """An older checkpoint in PyTorch's format (what save_pretrained wrote before safetensors)."""
    model = reference("GPT2LMHeadModel", gpt2(), folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")


@pytest.mark.parametrize(
    "make_stale, stale_names",
    [
        pytest.param(
            _stale_sharded,
            {"model.safetensors.index.json", "model-00001-of-00006.safetensors"},
            id="sharded-safetensors",
        ),  # fmt: skip
        pytest.param(_stale_bin, {"pytorch_model.bin"}, id="pytorch_model.bin"),
    ],
)
def test_save_hf_over_an_older_model_removes_its_weights(make_stale, stale_names, tmp_path):
    make_stale(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")  # not weights: stays
    before = {p.name for p in tmp_path.iterdir()}
    assert stale_names <= before and "generation_config.json" in before
    torch.manual_seed(3)
    ours = DecoderLM(ModelConfig.from_preset("stories-tiny", vocab_size=97)).eval()
    ours.save_hf(tmp_path, eos_token_id=96)
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    }
    ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        assert torch.equal(DecoderLM.from_hf(tmp_path)(ids), ours(ids))
        theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
        assert_close(hf_logits(theirs, ids), ours(ids))
    assert theirs.generation_config.eos_token_id == 96


def test_a_model_owns_its_config_through_save_and_load(tmp_path):
    """One ModelConfig for two models, edited for the second: the first still saves itself."""
    config = ModelConfig.from_preset("stories-tiny", vocab_size=97)
    first = DecoderLM(config).eval()
    config.n_layers, config.d_ff = 3, 96
    second = DecoderLM(config).eval()
    first.save_hf(tmp_path / "first")
    second.save_hf(tmp_path / "second")
    ids = torch.randint(0, 97, (2, 9))
    for model, name in ((first, "first"), (second, "second")):
        loaded = DecoderLM.from_hf(tmp_path / name)
        assert loaded.config == model.config
        with torch.no_grad():
            assert torch.equal(loaded(ids), model(ids))


def _dangling(tmp_path):
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    return tmp_path / "out"


def _a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    return tmp_path / "out"


def _edited_model(changes):
    model = DecoderLM(ModelConfig.from_preset("stories-tiny"))
    for name, value in changes.items():
        setattr(model.config, name, value)
    return model


BAD_SAVE_PLACES = [
    pytest.param(
        _dangling,
        None,
        FileNotFoundError,
        r"path '.*out' is a symbolic link to '.*nowhere', which does not exist",
        id="dangling-symlink",
    ),  # fmt: skip
    pytest.param(
        _a_file,
        None,
        NotADirectoryError,
        r"path '.*out' is a file; save_hf writes a folder",
        id="path-is-a-file",
    ),  # fmt: skip
    pytest.param(
        lambda p: 3,
        None,
        TypeError,
        "path must be a str or os.PathLike folder, got int",
        id="path-an-int",
    ),  # fmt: skip
    pytest.param(
        lambda p: p / "out",
        dict(n_layers=3),
        ValueError,
        r"model.config does not describe the model's weights \(was it edited after",
        id="model-config-edited-n_layers",
    ),  # fmt: skip
    pytest.param(
        lambda p: p / "out",
        dict(d_model=68),
        ValueError,
        r"model.config no longer describes a model: .*changed after .*d_model 64 -> 68",
        id="model-config-edited-invalid",
    ),  # fmt: skip
]


@pytest.mark.parametrize("make_path, edits, error, words", BAD_SAVE_PLACES)
def test_bad_save_places(make_path, edits, error, words, tmp_path):
    model = _edited_model(edits or {})
    path = make_path(tmp_path)
    with pytest.raises(error, match=words):
        model.save_hf(path)
    assert not (tmp_path / "out" / "model.safetensors").exists()


# ---------------------------------------------------------------- the book's shipped model: a checksum


def _flip_a_weight_byte(folder):
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside a tensor: the file still parses
    weights.write_bytes(bytes(data))


SHIPPED_DAMAGE = [
    pytest.param(
        _flip_a_weight_byte,
        ValueError,
        r"model.safetensors' is damaged: its SHA-256 is [0-9a-f]{64}, model.safetensors.sha256 "
        r"records [0-9a-f]{64}; reinstall llmbook",
        id="flipped-byte",
    ),  # fmt: skip
    pytest.param(
        lambda p: (p / "model.safetensors.sha256").unlink(),
        ValueError,
        r"model.safetensors.sha256' must hold one line '<64 hex digits>  model.safetensors'",
        id="no-checksum-file",
    ),  # fmt: skip
    pytest.param(
        lambda p: (p / "model.safetensors.sha256").write_text("e1cc8b  model.safetensors\n"),
        ValueError,
        r"model.safetensors.sha256' must hold one line '<64 hex digits>  model.safetensors'",
        id="garbled-checksum-file",
    ),  # fmt: skip
    pytest.param(
        lambda p: (p / "model.safetensors").unlink(),
        FileNotFoundError,
        r"model.safetensors' is missing; reinstall llmbook",
        id="no-weights",
    ),  # fmt: skip
]


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped stories model that load_model("stories") reads."""
    import shutil

    from llmbook import pretrained

    folder = tmp_path / "stories_model"
    shutil.copytree(pretrained.ASSETS / "stories_model", folder)
    monkeypatch.setitem(pretrained._MODELS, "stories", folder)
    return folder


def test_shipped_model_records_and_verifies_its_checksum(shipped_copy):
    from llmbook import load_model
    from llmbook.io.download import sha256_file

    digest = (shipped_copy / "model.safetensors.sha256").read_text().split()[0]
    assert digest == sha256_file(shipped_copy / "model.safetensors")
    assert digest in (shipped_copy / "README.md").read_text()
    assert load_model("stories").config.vocab_size == 2048


@pytest.mark.parametrize("damage, error, words", SHIPPED_DAMAGE)
def test_damaged_shipped_model_is_refused(damage, error, words, shipped_copy):
    from llmbook import load_model

    damage(shipped_copy)
    if damage is _flip_a_weight_byte:  # from_hf cannot tell: the file parses, other weights
        assert DecoderLM.from_hf(shipped_copy).config.vocab_size == 2048
    with pytest.raises(error, match=words):
        load_model("stories")
