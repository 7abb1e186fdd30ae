# Generated from chapters/07_decoder.ipynb by tools/export.py; do not edit, edit the chapter.

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.checks import check_int
from llmbook.checks.model import (  # noqa: F401 (MLPS, NORMS, POSITIONS: see below)
    MLPS,
    NORMS,
    POSITIONS,
    check_config,
    check_id_batch,
    check_inputs,
    own_copy,
)
from llmbook.embeddings import LearnedPositionalEmbedding, TokenEmbedding
from llmbook.feedforward import FeedForward, LayerNorm, RMSNorm, SwiGLU, swiglu_hidden_size
from llmbook.multihead import MultiHeadAttention, RotaryEmbedding

# Unused here, MLPS, NORMS and POSITIONS (the allowed values of ModelConfig.mlp, .norm and
# .position) are imported to be re-exported: llmbook.model lists them beside ModelConfig.


@dataclass
class ModelConfig:
    """What shapes a :class:`DecoderLM`; defaults: the kinds of Llama-2 and Llama-3.1-8B (RMSNorm,
    SwiGLU, RoPE, no biases, untied head). GPT-2: ``norm="layernorm", mlp="gelu_tanh",
    position="learned", bias=True, tie_embeddings=True``; ``qkv_bias`` overrides ``bias`` for
    q/k/v (Qwen2: True). Real models: :meth:`from_preset`. Checked (``n_kv_heads``, ``d_ff``
    filled in) on construction: to change a size, build a new one rather than edit it."""

    vocab_size: int = 2048
    context_length: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None  # None: n_heads (plain multi-head attention)
    d_ff: int | None = None  # None: 4 * d_model, or swiglu_hidden_size(d_model) for SwiGLU
    norm: str = "rmsnorm"
    norm_eps: float = 1e-5
    mlp: str = "swiglu"
    position: str = "rope"
    rope_base: float = 10000.0
    rope_scaling: dict | None = None  # Llama-3.1's {"rope_type": "llama3", ...}
    bias: bool = False  # biases in attention and MLP projections
    qkv_bias: bool | None = None
    tie_embeddings: bool = False
    dropout: float = 0.0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.d_ff is None and isinstance(self.d_model, int):  # Llama-2's 8/3 rule, or GPT-2's 4
            swiglu = self.mlp == "swiglu"
            self.d_ff = swiglu_hidden_size(self.d_model) if swiglu else 4 * self.d_model
        # the RoPE class is passed in because llmbook.checks, below the chapters, imports none
        check_config(self, RotaryEmbedding)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


# fmt: off
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
_LLAMA = dict(norm="rmsnorm", norm_eps=1e-5, mlp="swiglu", position="rope", bias=False)
_STORIES = dict(_LLAMA, vocab_size=2048, rope_base=10000.0)
PRESETS = {
    "stories-tiny": dict(_STORIES, context_length=64, d_model=64, n_layers=2, n_heads=4,
                         n_kv_heads=2, d_ff=128),
    "stories-small": dict(_STORIES, context_length=256, d_model=128, n_layers=4, n_heads=4,
                          n_kv_heads=2, d_ff=384),
    "stories-base": dict(_STORIES, context_length=512, d_model=256, n_layers=6, n_heads=8,
                         n_kv_heads=4, d_ff=768),
    "gpt2": dict(vocab_size=50257, context_length=1024, d_model=768, n_layers=12, n_heads=12,
                 d_ff=3072, norm="layernorm", norm_eps=1e-5, mlp="gelu_tanh", position="learned",
                 bias=True, tie_embeddings=True),
    "llama-2-7b": dict(_LLAMA, vocab_size=32000, context_length=4096, d_model=4096, n_layers=32,
                       n_heads=32, d_ff=11008),
    "llama-3.1-8b": dict(_LLAMA, vocab_size=128256, context_length=131072, d_model=4096,
                         n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, rope_base=500000.0,
                         rope_scaling=LLAMA3_SCALING),
    "llama-3.2-1b": dict(_LLAMA, vocab_size=128256, context_length=131072, d_model=2048,
                         n_layers=16, n_heads=32, n_kv_heads=8, d_ff=8192, rope_base=500000.0,
                         rope_scaling=dict(LLAMA3_SCALING, factor=32.0), tie_embeddings=True),
}
# fmt: on


def _from_preset(cls, name: str, **changes) -> ModelConfig:
    """The configuration ``PRESETS[name]``, with ``changes`` applied (e.g. ``n_layers=2``)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return cls(**{**copy.deepcopy(PRESETS[name]), **changes})  # never share a preset's dict


ModelConfig.from_preset = classmethod(_from_preset)


def make_norm(config: ModelConfig) -> nn.Module:
    """LayerNorm (GPT-2, with bias) or RMSNorm (Llama) of width ``d_model``."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.d_model, eps=config.norm_eps)
    return LayerNorm(config.d_model, eps=config.norm_eps)


def make_mlp(config: ModelConfig) -> nn.Module:
    """SwiGLU (Llama) or FeedForward with the activation named by ``config.mlp`` (GPT-2).
    Neither drops out: the block applies ``config.dropout`` to each branch's output."""
    if config.mlp == "swiglu":
        return SwiGLU(config.d_model, config.d_ff, bias=config.bias)
    return FeedForward(config.d_model, config.d_ff, activation=config.mlp, bias=config.bias)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``; ``(B, T, C) -> (B, T, C)``.

    Submodules (Hugging Face Llama's names): ``input_layernorm``, ``self_attn``
    (:class:`MultiHeadAttention`), ``post_attention_layernorm``, ``mlp``. ``rope`` is the
    :class:`RotaryEmbedding` shared by all blocks, or None (learned positions).
    """

    def __init__(self, config: ModelConfig, rope: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.input_layernorm = make_norm(config)
        self.self_attn = MultiHeadAttention(
            config.d_model,
            config.n_heads,
            config.n_kv_heads,
            dropout=config.dropout,
            bias=config.bias,
            rope=rope,
            qkv_bias=config.qkv_bias,
        )
        self.post_attention_layernorm = make_norm(config)
        self.mlp = make_mlp(config)
        self.dropout = nn.Dropout(config.dropout)  # on each branch's output, while training

    def forward(self, x, positions=None, attn_mask=None):
        """``x (B, T, C)`` -> ``(B, T, C)``. ``positions`` (``(T,)`` or ``(B, T)``, default
        ``0 .. T - 1``) rotate q and k; ``attn_mask`` (boolean, broadcast to ``(B, 1, T, T)``,
        True = may attend) joins the causal mask. Unchecked here: :meth:`DecoderLM.forward`
        checks once."""
        h = self.self_attn(self.input_layernorm(x), positions, attn_mask=attn_mask)
        x = x + self.dropout(h)  # (B, T, C)
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class Decoder(nn.Module):
    """Token ids ``(B, T)`` -> final hidden vectors ``(B, T, C)``: embed, blocks, final norm."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        C = config.d_model
        self.embed_tokens = TokenEmbedding(config.vocab_size, C, validate=False)
        self.embed_positions, self.rotary_emb = None, None
        if config.position == "learned":  # GPT-2: a vector per position, added
            T = config.context_length
            self.embed_positions = LearnedPositionalEmbedding(T, C, validate=False)
        else:  # Llama: nothing added; one RoPE shared by every block's attention
            self.rotary_emb = RotaryEmbedding(
                config.head_dim, base=config.rope_base, scaling=config.rope_scaling
            )
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(config, self.rotary_emb) for _ in range(config.n_layers)
        )
        self.norm = make_norm(config)

    def forward(self, ids, positions=None, attn_mask=None) -> torch.Tensor:
        """``ids (B, T)`` -> final hidden vectors ``(B, T, C)``, before the LM head.
        ``positions`` and ``attn_mask`` as in :meth:`TransformerBlock.forward`; unchecked here
        (:meth:`DecoderLM.forward` checks them)."""
        x = self.embed_tokens(ids)  # (B, T, C)
        if self.embed_positions is not None:
            x = x + self.embed_positions(ids.shape[1] if positions is None else positions)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, positions, attn_mask)  # (B, T, C)
        return self.norm(x)


def init_weights(model: nn.Module, std: float = 0.02, n_layers: int = 1) -> None:
    """nanoGPT's GPT-2 initialisation, in place: weights ``N(0, std^2)``, ``o_proj`` and
    ``down_proj`` ``N(0, (std / sqrt(2 n_layers))^2)`` (the GPT-2 paper's residual scaling),
    biases 0, norm gains 1. Also for Llama-style models (Hugging Face's Llama: ``N(0, std^2)``
    for every matrix)."""
    for name, p in model.named_parameters():  # a tied weight is visited once
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() == 1:  # LayerNorm / RMSNorm gain
            nn.init.ones_(p)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers))
        else:
            nn.init.normal_(p, 0.0, std)


class DecoderLM(nn.Module):
    """GPT-2 or Llama: ``model(ids (B, T))`` -> logits ``(B, T, V)``, or ``(logits, loss)``
    with ``targets``. It keeps its own copy of ``config`` (later edits of yours do not reach it).
    Hugging Face folders in and out: :meth:`from_hf`, :meth:`save_hf` (section 8)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        # Checked again (a field may have been edited since) and copied, since the caller's may be
        # shared or edited later; the RoPE class is passed in, as in ModelConfig.__post_init__.
        self.config = config = own_copy(config, RotaryEmbedding)
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        init_weights(self, config.init_std, config.n_layers)

    def forward(self, ids, targets=None, positions=None, attn_mask=None):
        """``ids (B, T)`` -> logits ``(B, T, V)``; with ``targets (B, T)`` (-100: ignored),
        ``(logits, loss)``. ``positions``: ``(T,)`` or ``(B, T)``; ``attn_mask``: boolean
        ``(B, 1, T, T)``, True = may attend (a ``(B, T)`` padding mask of 1/0 goes in as
        ``mask[:, None, None, :].bool()``). All checked, by ``check_inputs``."""
        check_inputs(self.config, ids, targets, positions, attn_mask)
        logits = self.lm_head(self.model(ids, positions, attn_mask))  # (B, T, V)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss


COMPONENTS = {  # the module that holds a parameter -> its component
    "embed_tokens": "token embedding",
    "embed_positions": "position embedding",
    **dict.fromkeys(("q_proj", "k_proj", "v_proj", "o_proj"), "attention"),
    **dict.fromkeys(("gate_proj", "up_proj", "down_proj"), "MLP"),
    **dict.fromkeys(("input_layernorm", "post_attention_layernorm", "norm"), "norms"),
    "lm_head": "LM head",
}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per component (:data:`COMPONENTS`' values) and ``"total"``. A parameter is
    placed by the whole name of the module that holds it (``q_proj`` in ``...q_proj.weight``:
    attention); a ValueError names any other (``score.weight``, ``...q_proj.lora_A.weight``)."""
    counts = dict.fromkeys(COMPONENTS.values(), 0)
    for name, p in model.named_parameters():  # shared (tied) parameters appear once
        module, _, kind = name.rpartition(".")  # "model.norm.weight": "model.norm", "weight"
        holder = module.rpartition(".")[2]  # the holding module's own name: "norm"
        if holder not in COMPONENTS or kind not in ("weight", "bias"):
            raise ValueError(
                f"parameter {name!r} is not a weight or bias of a module named one of "
                f"{sorted(COMPONENTS)}, so it belongs to no component"
            )
        counts[COMPONENTS[holder]] += p.numel()
    counts["total"] = sum(counts.values())
    return counts


@torch.no_grad()
def greedy_generate(model: DecoderLM, ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Append ``max_new_tokens`` argmax tokens to ``ids (B, T)``: ``(B, T + max_new_tokens)``.

    The model sees at most its last ``context_length`` tokens. Deterministic: no sampling.
    """
    if not isinstance(getattr(model, "config", None), ModelConfig):
        raise TypeError(f"model must be a DecoderLM, got {type(model).__name__}")
    check_id_batch(ids, "ids", model.config.vocab_size)
    check_int(max_new_tokens, "max_new_tokens", minimum=0)
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.config.context_length :])  # (B, T, V)
        next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        ids = torch.cat([ids, next_id], dim=1)
    model.train(was_training)
    return ids


def _from_hf(cls, path, dtype=None, device=None) -> DecoderLM:
    """Load a local Hugging Face folder (GPT-2, Llama, Mistral, Qwen2): :mod:`llmbook.io.hf`.
    It has no checksum to verify (``llmbook.load_model`` verifies the book's own model)."""
    from llmbook.io.hf import load_hf

    return load_hf(path, cls, ModelConfig, dtype=dtype, device=device)


def _save_hf(self, path, *, eos_token_id: int | None = None) -> None:
    """Write a folder ``transformers`` loads, removing older weights: :mod:`llmbook.io.hf`."""
    from llmbook.io.hf import save_hf

    save_hf(self, path, eos_token_id=eos_token_id)


DecoderLM.from_hf = classmethod(_from_hf)  # DecoderLM.from_hf(path) -> a model
DecoderLM.save_hf = _save_hf  # model.save_hf(path)


def default_device() -> torch.device:
    """``cuda`` if a GPU is available, else ``mps`` (Apple silicon), else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


__all__ = [
    "ModelConfig",
    "LLAMA3_SCALING",
    "PRESETS",
    "make_norm",
    "make_mlp",
    "TransformerBlock",
    "Decoder",
    "init_weights",
    "DecoderLM",
    "COMPONENTS",
    "parameter_counts",
    "greedy_generate",
    "default_device",
]
