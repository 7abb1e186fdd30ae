"""Hugging Face checkpoints in and out of :class:`llmbook.DecoderLM` (hand-written; chapter 07).

Chapter 07 shows what this module does; it lives outside the chapter because it is plumbing:
file formats, two spellings of the same config, and tables of weight names. It imports no
chapter's module: the model and config classes are passed in, so the imports run one way.

    model = DecoderLM.from_hf("path/to/folder")   # = load_hf(path, DecoderLM, ModelConfig)
    model.save_hf("path/to/out")                   # = save_hf(model, path)

A folder holds ``config.json`` and the weights as ``model.safetensors``, or as shards
``model-00001-of-0000N.safetensors`` listed in ``model.safetensors.index.json``. Supported:

- ``GPT2LMHeadModel``: learned positions, LayerNorm, tanh GELU, biases everywhere, tied head.
  Its ``Conv1D`` layers store weights as ``(d_in, d_out)``, the transpose of ``nn.Linear``'s,
  and its ``c_attn`` holds q, k and v side by side: the table says which to transpose and split.
- ``LlamaForCausalLM``, ``MistralForCausalLM``, ``Qwen2ForCausalLM``: RoPE (with Llama-3.1's
  ``llama3`` frequency scaling), RMSNorm, SwiGLU, grouped-query attention, tied or untied head;
  Qwen2 adds biases to q, k and v. The book's module names are Hugging Face Llama's, so their
  table is the identity.

``config.json`` is read in both spellings: transformers 4.x (``rope_theta`` and ``rope_scaling``
at the top level) and 5.x (``rope_parameters``). It is written in the 4.x spelling, which both
read. Weights keep the checkpoint's dtype unless ``dtype`` is given.

A broken folder is an error that names the file: invalid JSON, a key of the wrong type, a
truncated or garbled safetensors file, a shard the index lists but the folder lacks. A folder
carries no checksum, so weights whose bytes were flipped but whose file still parses load as
other weights; only the book's own shipped model is verified (``llmbook.load_model``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from llmbook.checks import check_int
from llmbook.io.files import atomic_write

__all__ = [
    "ARCHITECTURES",
    "config_from_hf",
    "config_to_hf",
    "hf_to_llmbook",
    "llmbook_to_hf",
    "load_hf",
    "read_json",
    "read_safetensors",
    "save_hf",
]

ARCHITECTURES = ("GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")
_MODEL_TYPES = {"gpt2": 0, "llama": 1, "mistral": 2, "qwen2": 3}
_GELU = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
_LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")

# ---------------------------------------------------------------- config.json <-> ModelConfig


def architecture_of(hf: dict) -> str:
    """The one supported architecture named by a ``config.json`` (``architectures`` or ``model_type``)."""
    names = hf.get("architectures") or []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"config.json key 'architectures' must be a list of names, got {names!r}")
    model_type = hf.get("model_type")
    if not names and isinstance(model_type, str) and model_type in _MODEL_TYPES:
        names = [ARCHITECTURES[_MODEL_TYPES[model_type]]]
    supported = [name for name in names if name in ARCHITECTURES]
    if not supported:
        raise ValueError(
            f"config.json key 'architectures' is {names or None} (model_type "
            f"{model_type!r}); supported: {ARCHITECTURES}"
        )
    return supported[0]


_REQUIRED = object()
_KINDS = {int: "an integer", float: "a number", bool: "true or false"}


def _get(hf: dict, key: str, kind: type, default: object = _REQUIRED):
    """``hf[key]`` (or ``default`` when absent), checked to be of ``kind``: int, float or bool
    (null only where the default is None)."""
    if key not in hf and default is _REQUIRED:
        raise ValueError(f"config.json lacks the key {key!r} ({_KINDS[kind]})")
    value = hf.get(key, default)
    if value is None and default is None:
        return None
    numbers = (int, float) if kind is float else int
    ok = isinstance(value, bool) if kind is bool else isinstance(value, numbers)
    ok = ok and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise ValueError(f"config.json key {key!r} must be {_KINDS[kind]}, got {value!r}")
    return float(value) if kind is float else value


def _require(hf: dict, key: str, allowed: object, default: object = None) -> None:
    value = hf.get(key, default)
    if value != allowed:
        raise ValueError(f"config.json key {key!r} is {value!r}; llmbook supports only {allowed!r}")


def _rope(hf: dict) -> tuple[float, dict | None]:
    """RoPE base and scaling from either spelling: 4.x ``rope_theta``/``rope_scaling``, 5.x ``rope_parameters``."""
    for key in ("rope_parameters", "rope_scaling"):
        if not isinstance(hf.get(key) or {}, dict):
            raise ValueError(f"config.json key {key!r} must be an object or null, got {hf[key]!r}")
    parameters = dict(hf.get("rope_parameters") or {})
    base = _get(hf, "rope_theta", float, parameters.pop("rope_theta", 10000.0))
    scaling = dict(hf.get("rope_scaling") or parameters)
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return base, None
    if kind != "llama3":
        raise ValueError(
            f"config.json key 'rope_scaling' has rope_type {kind!r}; llmbook supports only "
            "'default' and 'llama3'"
        )
    missing = [key for key in _LLAMA3_KEYS if key not in scaling]
    if missing:
        raise ValueError(f"config.json key 'rope_scaling' (llama3) lacks {missing}")
    return base, {"rope_type": "llama3", **{key: scaling[key] for key in _LLAMA3_KEYS}}


def config_from_hf(hf: dict) -> dict:
    """The fields of a :class:`~llmbook.model.ModelConfig` (a plain dict, for
    ``ModelConfig(**fields)``) from the dict of a Hugging Face ``config.json``."""
    if not isinstance(hf, dict):
        raise TypeError(f"hf must be the dict of a config.json, got {type(hf).__name__}")
    architecture = architecture_of(hf)
    if architecture == "GPT2LMHeadModel":
        _require(hf, "scale_attn_weights", True, True)
        _require(hf, "scale_attn_by_inverse_layer_idx", False, False)
        _require(hf, "add_cross_attention", False, False)
        activation = hf.get("activation_function", "gelu_new")
        if activation not in _GELU:
            raise ValueError(
                f"config.json key 'activation_function' is {activation!r}; supported: {sorted(_GELU)}"
            )
        d_model = _get(hf, "n_embd", int, 768)
        return dict(
            vocab_size=_get(hf, "vocab_size", int, 50257),
            context_length=_get(hf, "n_positions", int, 1024),
            d_model=d_model,
            n_layers=_get(hf, "n_layer", int, 12),
            n_heads=_get(hf, "n_head", int, 12),
            d_ff=_get(hf, "n_inner", int, None) or 4 * d_model,
            norm="layernorm",
            norm_eps=_get(hf, "layer_norm_epsilon", float, 1e-5),
            mlp=_GELU[activation],
            position="learned",
            bias=True,
            tie_embeddings=_get(hf, "tie_word_embeddings", bool, True),
        )
    _require(hf, "hidden_act", "silu", "silu")
    d_model, n_heads = _get(hf, "hidden_size", int), _get(hf, "num_attention_heads", int)
    if n_heads < 1:
        raise ValueError(f"config.json key 'num_attention_heads' must be >= 1, got {n_heads}")
    if _get(hf, "head_dim", int, None) not in (None, d_model // n_heads):
        raise ValueError(
            f"config.json key 'head_dim' is {hf['head_dim']}; llmbook needs head_dim = "
            f"hidden_size // num_attention_heads = {d_model // n_heads}"
        )
    bias = _get(hf, "attention_bias", bool, False)
    if _get(hf, "mlp_bias", bool, False) != bias:
        raise ValueError(
            "config.json keys 'attention_bias' and 'mlp_bias' differ; llmbook has one 'bias' for both"
        )
    context = _get(hf, "max_position_embeddings", int, 2048)
    use_window = _get(hf, "use_sliding_window", bool, True)
    window = _get(hf, "sliding_window", int, None) if use_window else None
    if window:  # within the window, sliding-window attention is plain causal attention
        context = min(context, window)
    base, scaling = _rope(hf)
    return dict(
        vocab_size=_get(hf, "vocab_size", int),
        context_length=context,
        d_model=d_model,
        n_layers=_get(hf, "num_hidden_layers", int),
        n_heads=n_heads,
        n_kv_heads=_get(hf, "num_key_value_heads", int, None) or n_heads,
        d_ff=_get(hf, "intermediate_size", int),
        norm="rmsnorm",
        norm_eps=_get(hf, "rms_norm_eps", float, 1e-6),
        mlp="swiglu",
        position="rope",
        rope_base=base,
        rope_scaling=scaling,
        bias=bias,
        qkv_bias=True if architecture == "Qwen2ForCausalLM" else None,
        tie_embeddings=_get(hf, "tie_word_embeddings", bool, False),
    )


# The config.json key each ModelConfig size comes from, to name it in an error.
_HF_KEYS = {
    "gpt2": dict(vocab_size="vocab_size", context_length="n_positions", d_model="n_embd",
                 n_layers="n_layer", n_heads="n_head", d_ff="n_inner",
                 norm_eps="layer_norm_epsilon"),
    "llama": dict(vocab_size="vocab_size", context_length="max_position_embeddings",
                  d_model="hidden_size", n_layers="num_hidden_layers",
                  n_heads="num_attention_heads", n_kv_heads="num_key_value_heads",
                  d_ff="intermediate_size", norm_eps="rms_norm_eps", rope_base="rope_theta",
                  rope_scaling="rope_scaling"),
}  # fmt: skip


def _architecture_for(config) -> str:
    """The Hugging Face class that computes the same function as a model of this config."""
    gpt2 = dict(norm="layernorm", position="learned", bias=True)
    llama = dict(norm="rmsnorm", position="rope", mlp="swiglu")
    if all(getattr(config, key) == value for key, value in gpt2.items()):
        if config.mlp in ("gelu_tanh", "gelu", "relu") and config.qkv_bias in (None, True):
            if config.n_kv_heads == config.n_heads:
                return "GPT2LMHeadModel"
    elif all(getattr(config, key) == value for key, value in llama.items()):
        if config.qkv_bias is None or config.qkv_bias == config.bias:
            return "LlamaForCausalLM"
        if config.qkv_bias and not config.bias:
            return "Qwen2ForCausalLM"
    raise ValueError(
        "this ModelConfig has no Hugging Face twin: save_hf writes GPT-2 (norm='layernorm', "
        "position='learned', bias=True, a plain MLP, n_kv_heads == n_heads) or Llama/Qwen2 "
        f"(norm='rmsnorm', position='rope', mlp='swiglu'); got {config}"
    )


def config_to_hf(
    config, dtype: torch.dtype = torch.float32, eos_token_id: int | None = None
) -> dict:
    """The ``config.json`` dict (transformers 4.x spelling, read by 4.x and 5.x) of a ModelConfig.

    ``eos_token_id`` (also written as ``bos_token_id``, as GPT-2 does) is the tokenizer's
    end-of-text id. It is written even when unknown, as null: transformers' defaults (50256 for
    GPT-2; 1 and 2 for Llama) belong to other vocabularies.
    """
    architecture = _architecture_for(config)
    if eos_token_id is not None and check_int(eos_token_id, "eos_token_id", 0) >= config.vocab_size:
        raise ValueError(
            f"eos_token_id must be < vocab_size {config.vocab_size}, got {eos_token_id}"
        )
    common = {
        "architectures": [architecture],
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "bos_token_id": eos_token_id,
        "eos_token_id": eos_token_id,
    }
    if architecture == "GPT2LMHeadModel":
        activation = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[config.mlp]
        return {
            **common,
            "model_type": "gpt2",
            "n_positions": config.context_length,
            "n_embd": config.d_model,
            "n_layer": config.n_layers,
            "n_head": config.n_heads,
            "n_inner": config.d_ff,
            "activation_function": activation,
            "layer_norm_epsilon": config.norm_eps,
            **dict.fromkeys(("resid_pdrop", "embd_pdrop", "attn_pdrop"), config.dropout),
        }
    hf = {
        **common,
        "model_type": "llama" if architecture == "LlamaForCausalLM" else "qwen2",
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.context_length,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_base,
        "rope_scaling": dict(config.rope_scaling) if config.rope_scaling else None,
        "attention_dropout": config.dropout,
    }
    if architecture == "LlamaForCausalLM":
        hf.update(attention_bias=config.bias, mlp_bias=config.bias)
    else:
        hf.update(use_sliding_window=False, sliding_window=None)
    return hf


# ---------------------------------------------------------------- weight names: the tables

# GPT-2, per layer: our name -> (Hugging Face name, transpose?, which third of c_attn or None)
GPT2_LAYER_KEYS = {
    "input_layernorm.weight": ("ln_1.weight", False, None),
    "input_layernorm.bias": ("ln_1.bias", False, None),
    "self_attn.q_proj.weight": ("attn.c_attn.weight", True, 0),
    "self_attn.k_proj.weight": ("attn.c_attn.weight", True, 1),
    "self_attn.v_proj.weight": ("attn.c_attn.weight", True, 2),
    "self_attn.q_proj.bias": ("attn.c_attn.bias", False, 0),
    "self_attn.k_proj.bias": ("attn.c_attn.bias", False, 1),
    "self_attn.v_proj.bias": ("attn.c_attn.bias", False, 2),
    "self_attn.o_proj.weight": ("attn.c_proj.weight", True, None),
    "self_attn.o_proj.bias": ("attn.c_proj.bias", False, None),
    "post_attention_layernorm.weight": ("ln_2.weight", False, None),
    "post_attention_layernorm.bias": ("ln_2.bias", False, None),
    "mlp.up_proj.weight": ("mlp.c_fc.weight", True, None),
    "mlp.up_proj.bias": ("mlp.c_fc.bias", False, None),
    "mlp.down_proj.weight": ("mlp.c_proj.weight", True, None),
    "mlp.down_proj.bias": ("mlp.c_proj.bias", False, None),
}
GPT2_KEYS = {
    "model.embed_tokens.weight": ("transformer.wte.weight", False, None),
    "model.embed_positions.weight": ("transformer.wpe.weight", False, None),
    "model.norm.weight": ("transformer.ln_f.weight", False, None),
    "model.norm.bias": ("transformer.ln_f.bias", False, None),
    "lm_head.weight": ("lm_head.weight", False, None),
}
# Buffers some checkpoints carry that hold no weights (masks, RoPE frequencies).
_IGNORED = re.compile(r"(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$")


def _hf_name(name: str, architecture: str) -> tuple[str, bool, int | None]:
    """Hugging Face name, transpose flag and c_attn third of one of our parameter names."""
    if architecture != "GPT2LMHeadModel":
        return name, False, None  # the book uses Hugging Face Llama's names
    if name in GPT2_KEYS:
        return GPT2_KEYS[name]
    layer, rest = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", name).groups()
    hf_name, transpose, third = GPT2_LAYER_KEYS[rest]
    return f"transformer.h.{layer}.{hf_name}", transpose, third


def _normalise_names(tensors: dict, architecture: str) -> dict:
    """Add the prefix a base-model checkpoint lacks (``h.0...`` -> ``transformer.h.0...``)."""
    prefix = "transformer." if architecture == "GPT2LMHeadModel" else "model."
    tensors = {name: t for name, t in tensors.items() if not _IGNORED.search(name)}
    if any(name.startswith(prefix) for name in tensors):
        return tensors
    return {name if name == "lm_head.weight" else prefix + name: t for name, t in tensors.items()}


def hf_to_llmbook(tensors: dict, model, architecture: str) -> dict:
    """Our state dict from a Hugging Face one, checked against ``model``'s names and shapes."""
    tensors = _normalise_names(tensors, architecture)
    ours, used = {}, set()
    for name, target in model.state_dict().items():
        hf_name, transpose, third = _hf_name(name, architecture)
        if name == "lm_head.weight" and model.config.tie_embeddings:
            hf_name = _hf_name("model.embed_tokens.weight", architecture)[0]
        if hf_name not in tensors:
            raise KeyError(f"the checkpoint has no tensor {hf_name!r} (for llmbook's {name!r})")
        value = tensors[hf_name]
        used.add(hf_name)
        if third is not None:  # c_attn holds q | k | v along its last axis
            if value.shape[-1] % 3:
                raise ValueError(f"{hf_name!r} of shape {tuple(value.shape)} does not split in 3")
            value = value.chunk(3, dim=-1)[third]
        value = (value.t() if transpose else value).contiguous()  # own storage, row-major
        if value.shape != target.shape:
            raise ValueError(
                f"tensor {hf_name!r} has shape {tuple(value.shape)}, llmbook's {name!r} needs "
                f"{tuple(target.shape)}: config.json and the weights disagree"
            )
        ours[name] = value
    unused = sorted(set(tensors) - used)
    if unused and not (model.config.tie_embeddings and unused == ["lm_head.weight"]):
        raise ValueError(f"the checkpoint has tensors llmbook does not use: {unused[:5]}")
    return ours


def llmbook_to_hf(model) -> dict:
    """Hugging Face state dict (contiguous CPU tensors, no shared ones) of a DecoderLM."""
    architecture = _architecture_for(model.config)
    parts: dict[str, list] = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_embeddings:
            continue  # the same tensor as the token embedding; safetensors refuses duplicates
        hf_name, transpose, third = _hf_name(name, architecture)
        value = value.detach().to("cpu")
        parts.setdefault(hf_name, []).append((third or 0, value.t() if transpose else value))
    return {
        hf_name: torch.cat([v for _, v in sorted(pieces, key=lambda p: p[0])], dim=-1).contiguous()
        for hf_name, pieces in parts.items()
    }


# ---------------------------------------------------------------- files


def read_json(path: Path) -> dict:
    """The object in a JSON file; a ValueError naming the file if it is not one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(value).__name__}")
    return value


def _shards(index: Path) -> list[str]:
    """The shard file names a ``model.safetensors.index.json`` lists, checked."""
    weight_map = read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(
            f"{str(index)!r} must have a non-empty object 'weight_map' (tensor name -> shard "
            f"file), got {weight_map!r:.80}"
        )
    shards = sorted(set(map(str, weight_map.values())))
    for shard in shards:
        if not shard.endswith(".safetensors") or Path(shard).name != shard:
            raise ValueError(
                f"{str(index)!r} lists the shard {shard!r}; shards must be .safetensors files "
                "in the same folder"
            )
    return shards


def read_safetensors(path: str | os.PathLike) -> dict:
    """All tensors of a folder: ``model.safetensors``, or the shards its index file lists."""
    folder = Path(path)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = _shards(index)
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    else:
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise FileNotFoundError(
            f"{str(folder)!r} holds no model.safetensors nor model.safetensors.index.json "
            f"(found {found[:8]}); llmbook reads safetensors only"
        )
    tensors = {}
    for shard in shards:
        file = folder / shard
        if not file.is_file():
            raise FileNotFoundError(f"{str(index)!r} lists {shard!r}, which {str(folder)!r} lacks")
        try:
            tensors.update(load_file(file, device="cpu"))
        except SafetensorError as error:
            raise ValueError(
                f"{str(file)!r} is not a readable safetensors file (truncated or corrupted?): "
                f"{error}"
            ) from None
    return tensors


def load_hf(
    path: str | os.PathLike,
    model_class: type,
    config_class: type,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
):
    """A ``model_class`` (:class:`~llmbook.model.DecoderLM`) of a ``config_class``
    (:class:`~llmbook.model.ModelConfig`) with the weights of a local Hugging Face folder.

    ``DecoderLM.from_hf(path)`` calls this with its own classes. ``dtype``: cast the weights
    (default: keep the checkpoint's); ``device``: where to put the model (default CPU). Download
    a model from the Hub first, e.g. ``huggingface_hub.snapshot_download("openai-community/gpt2")``,
    and pass the folder.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike folder, got {type(path).__name__}")
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"dtype must be a torch.dtype such as torch.bfloat16, or None (keep the checkpoint's), "
            f"got {type(dtype).__name__} {dtype!r}"
        )
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating-point torch.dtype (torch.float32, torch.bfloat16, "
            f"torch.float16), got {dtype}"
        )
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} has no config.json: pass the folder of a Hugging Face checkpoint "
            "(e.g. from huggingface_hub.snapshot_download)"
        )
    file = folder / "config.json"
    hf = read_json(file)
    try:
        architecture = architecture_of(hf)
        config = config_class(**config_from_hf(hf))
    except (TypeError, ValueError) as error:
        keys = _HF_KEYS["gpt2" if hf.get("n_embd") or hf.get("model_type") == "gpt2" else "llama"]
        named = [f"{field} <- {key!r}" for field, key in keys.items() if field in str(error)]
        where = f" (config.json keys: {', '.join(named)})" if named else ""
        raise type(error)(f"{str(file)!r}: {error}{where}") from None
    with torch.device("meta"):  # the shapes only: no memory, no random init
        model = model_class(config)
    state = hf_to_llmbook(read_safetensors(folder), model, architecture)
    if dtype is not None:
        state = {name: t.to(dtype) for name, t in state.items()}
    model.load_state_dict(state, assign=True)
    _rebuild_after_meta(model)
    return model.to(device or "cpu").eval()


def _rebuild_after_meta(model) -> None:
    """Finish a model built on ``meta`` and loaded with ``assign=True``: tie the head again
    (assigning gave it a Parameter of its own). RoPE's tables are no buffers: built on first use."""
    if model.config.tie_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight


# Files through which a Hugging Face loader could read weights other than ours: shards and their
# index, and the other formats (PyTorch, TensorFlow, Flax); and the generation settings of the
# model that was there (transformers prefers them to config.json's end-of-text id).
_STALE = re.compile(
    r"(model|pytorch_model|tf_model|flax_model)(-\d+-of-\d+)?\.(safetensors|bin|h5|msgpack)"
    r"(\.index\.json)?|generation_config\.json"
)


def save_hf(model, path: str | os.PathLike, *, eos_token_id: int | None = None) -> None:
    """Write ``model`` as a Hugging Face folder: ``config.json`` and ``model.safetensors``.

    ``transformers.AutoModelForCausalLM.from_pretrained(path)`` loads it. ``eos_token_id``: the
    tokenizer's end-of-text id, which ``generate`` stops at (see ``config_to_hf``).

    The folder then holds exactly this model: weight files of an earlier save that a loader
    could read instead (``model.safetensors.index.json`` and its ``model-0000x-of-0000y``
    shards, ``pytorch_model*.bin``, ``tf_model*.h5``, ``flax_model*.msgpack``) and its
    ``generation_config.json`` are **removed**, as ``transformers``' ``save_pretrained`` removes
    stale shards; other files (a tokenizer, a README) stay. The stale files go first, then each
    file is written atomically (a temporary file, then a rename), so an interrupted save leaves
    an error on load, never the old weights under the new name. ``model.config`` must still
    describe the weights (a field edited after the model was built is refused).
    """
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise TypeError(
            f"model must be a DecoderLM (a torch.nn.Module with a ModelConfig as .config), "
            f"got {type(model).__name__}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike folder, got {type(path).__name__}")
    _check_config_fits(model)
    tensors = llmbook_to_hf(model)  # fails before anything is written if there is no twin
    dtype = next(iter(tensors.values())).dtype
    hf_config = config_to_hf(model.config, dtype, eos_token_id)  # checked before writing
    text = json.dumps(hf_config, indent=2, sort_keys=True) + "\n"
    folder = Path(path)
    if folder.is_symlink() and not folder.exists():
        raise FileNotFoundError(
            f"path {str(folder)!r} is a symbolic link to {os.readlink(folder)!r}, which does not "
            "exist; create that folder or pass another path"
        )
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            f"path {str(folder)!r} is a file; save_hf writes a folder (config.json, "
            "model.safetensors): pass a new or existing folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    stale = [
        p for p in folder.iterdir() if _STALE.fullmatch(p.name) and p.name != "model.safetensors"
    ]
    for file in sorted(stale, key=lambda p: not p.name.endswith(".index.json")):  # index first
        file.unlink()
    with atomic_write(folder / "model.safetensors", "wb") as file:
        file.write(safetensors_bytes(tensors, metadata={"format": "pt"}))
    with atomic_write(folder / "config.json", "w", encoding="utf-8") as file:
        file.write(text)


def _check_config_fits(model) -> None:
    """Raise unless ``model.config`` still builds a model of ``model``'s parameter shapes."""
    try:
        with torch.device("meta"):  # shapes only; re-checks the config
            twin = type(model)(model.config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model.config no longer describes a model: {error}") from None
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    theirs = {name: tuple(t.shape) for name, t in twin.state_dict().items()}
    if ours != theirs:
        differ = sorted(set(ours.items()) ^ set(theirs.items()))[:3]
        raise ValueError(
            "model.config does not describe the model's weights (was it edited after the model "
            f"was built?); they differ in {differ}: build a new model from the config instead"
        )
