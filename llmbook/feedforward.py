# Generated from chapters/06_feed_forward.ipynb by tools/export.py; do not edit, edit the chapter.

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.checks import check_bool, check_choice, check_int, check_positive_float


class FeedForward(nn.Module):
    """The position-wise MLP of GPT-2: ``down_proj(act(up_proj(x)))``.

    Args:
        d_model: width of the input and output vectors (GPT-2 small: 768).
        d_ff: width of the hidden layer (GPT-2: ``4 * d_model``).
        activation: one of ``"relu"``, ``"gelu"`` (exact), ``"gelu_tanh"`` (GPT-2), ``"silu"``.
        bias: whether both linear maps have a bias (GPT-2: True).

    No dropout here: the transformer block (chapter 7) drops out each branch's output.

    Shapes: ``(..., d_model) -> (..., d_model)``; ``up_proj.weight`` is ``(d_ff, d_model)``.
    """

    ACTIVATIONS = {  # name -> a new module
        "relu": lambda: nn.ReLU(),
        "gelu": lambda: nn.GELU(),  # exact, with erf
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # GPT-2
        "silu": lambda: nn.SiLU(),  # also called Swish
    }

    def __init__(
        self, d_model: int, d_ff: int, activation: str = "gelu_tanh", bias: bool = True
    ) -> None:
        super().__init__()
        self.d_model, self.d_ff = check_int(d_model, "d_model"), check_int(d_ff, "d_ff")
        self.activation = check_choice(activation, "activation", tuple(self.ACTIVATIONS))
        self.up_proj = nn.Linear(d_model, d_ff, bias=check_bool(bias, "bias"))
        self.act = self.ACTIVATIONS[activation]()
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., d_model) -> (..., d_model)``."""
        return self.down_proj(self.act(self.up_proj(x)))


def swiglu_hidden_size(
    d_model: int, multiple_of: int = 256, ffn_dim_multiplier: float | None = None
) -> int:
    """Llama's hidden width for the gated MLP: 8/3 of ``d_model``, scaled, rounded up.

    Meta's rule: ``hidden = int(2 * 4 * d_model / 3)``; ``hidden = int(ffn_dim_multiplier *
    hidden)`` if a multiplier is given; then round up to a multiple of ``multiple_of``.
    Llama-2-7B: ``swiglu_hidden_size(4096) == 11008``; Llama-3.1-8B:
    ``swiglu_hidden_size(4096, 1024, 1.3) == 14336``.
    """
    hidden = int(2 * 4 * check_int(d_model, "d_model") / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(check_positive_float(ffn_dim_multiplier, "ffn_dim_multiplier") * hidden)
    multiple_of = check_int(multiple_of, "multiple_of")
    return multiple_of * math.ceil(hidden / multiple_of)


class SwiGLU(nn.Module):
    """Llama's gated MLP: ``down_proj(silu(gate_proj(x)) * up_proj(x))``.

    Names and shapes match Hugging Face's ``LlamaMLP``: ``gate_proj`` and ``up_proj`` are
    ``nn.Linear(d_model, d_ff)``, ``down_proj`` is ``nn.Linear(d_ff, d_model)``.

    Args:
        d_model: width of the input and output vectors (Llama-3.1-8B: 4096).
        d_ff: hidden width, usually :func:`swiglu_hidden_size` (Llama-3.1-8B: 14336).
        bias: whether the three maps have biases (Llama: False).

    Shapes: ``(..., d_model) -> (..., d_model)``.
    """

    def __init__(self, d_model: int, d_ff: int, bias: bool = False) -> None:
        super().__init__()
        self.d_model, self.d_ff = check_int(d_model, "d_model"), check_int(d_ff, "d_ff")
        self.gate_proj = nn.Linear(d_model, d_ff, bias=check_bool(bias, "bias"))
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., d_model) -> (..., d_model)``."""
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LayerNorm(nn.Module):
    """LayerNorm over the last axis: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    Args:
        d_model: width of the last axis.
        eps: added to the (biased) variance, ``> 0`` (GPT-2: 1e-5).
        bias: whether there is a learned ``bias`` (GPT-2: True); without it, ``bias`` is None.

    Shapes: ``(..., d_model) -> (..., d_model)``; ``weight`` (and ``bias``) ``(d_model,)``.
    """

    def __init__(self, d_model: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.d_model, self.eps = check_int(d_model, "d_model"), check_positive_float(eps, "eps")
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if check_bool(bias, "bias") else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.d_model,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps}, bias={self.bias is not None}"


class RMSNorm(nn.Module):
    """RMSNorm over the last axis, as Llama: ``weight * (x / sqrt(mean(x**2) + eps))``.

    The normalisation runs in float32 and is cast back to the input's dtype before the gain is
    applied, exactly as Hugging Face's ``LlamaRMSNorm``. The output has root mean square 1
    (before the gain); it is not bounded to ``[-1, 1]``.

    Args:
        d_model: width of the last axis.
        eps: added to the mean square, ``> 0`` (Llama-2 and Llama-3 checkpoints: 1e-5;
            Hugging Face's default, and ours: 1e-6).

    Shapes: ``(..., d_model) -> (..., d_model)``; ``weight`` ``(d_model,)``.
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.d_model, self.eps = check_int(d_model, "d_model"), check_positive_float(eps, "eps")
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_f32 = x.float()
        normed = x_f32 * torch.rsqrt(x_f32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps}"


__all__ = ["FeedForward", "swiglu_hidden_size", "SwiGLU", "LayerNorm", "RMSNorm"]
