# Generated from chapters/04_attention.ipynb by tools/export.py; do not edit, edit the chapter.

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.checks import check_attention_inputs, check_dropout, check_int, check_layer_input


def causal_mask(
    n_queries: int, n_keys: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean mask ``(n_queries, n_keys)``: True where a query may attend to a key (torch's rule).

    The queries are the *last* ``n_queries`` of ``n_keys`` positions (bottom-right alignment):
    query ``i`` sits at position ``n_keys - n_queries + i`` and sees keys ``0`` up to there. With
    ``n_keys == n_queries`` (the default) this is the lower triangle; with more keys it is what a
    KV cache needs. (Torch's ``is_causal=True`` aligns the triangle top-left instead.)
    ``n_queries >= 1``; ``n_keys >= n_queries``; ``device`` is where to create the mask.
    """
    n_queries = check_int(n_queries, "n_queries")
    n_keys = n_queries if n_keys is None else check_int(n_keys, "n_keys", minimum=n_queries)
    allowed = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return allowed.tril(diagonal=n_keys - n_queries)


def _apply_mask(
    scores: torch.Tensor, mask: torch.Tensor | None, is_causal: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The scores ``(..., Tq, Tk)`` masked, and ``blind`` ``(..., Tq, 1)``: True for a query
    that may see no key (its row of scores is set to 0). ``mask``: boolean (True = may attend,
    the others get ``-inf``) or float (added); ``is_causal``: torch's top-left triangle. Without
    a mask: the scores unchanged and ``blind=None``.
    """
    if is_causal:
        mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
    if mask is None:
        return scores, None
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))  # weight exactly 0 after softmax
    else:
        scores = scores + mask
    blind = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1): sees nothing
    return scores.masked_fill(blind, 0.0), blind  # no 0/0 = NaN, not even in the gradient


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
    check: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q @ k^T * scale + mask) @ v``, step by step: torch's function, written out.

    q ``(..., Tq, D)``, k ``(..., Tk, D)``, v ``(..., Tk, Dv)``; leading axes broadcast. ``mask``
    (torch's ``attn_mask``): boolean, True = may attend, or float, added to the scores; it
    broadcasts to ``(..., Tq, Tk)``. ``is_causal``: torch's top-left triangle (with cached keys
    pass ``mask=causal_mask(Tq, Tk)``). ``scale``: default ``1/sqrt(D)``. Returns the output
    ``(..., Tq, Dv)`` (and the weights ``(..., Tq, Tk)``). A query that may see no key gets
    weights 0 and output 0, as in torch. ``check=False`` skips the argument checks.
    """
    if check:
        check_attention_inputs(q, k, v, mask, dropout_p, is_causal, scale)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # 1. scores (..., Tq, Tk)
    scores, blind = _apply_mask(scores, mask, is_causal)  # 2. -inf where forbidden
    weights = torch.softmax(scores, dim=-1)  # 3. softmax over the keys: rows sum to 1
    if dropout_p > 0.0:  # 4. dropout on the weights (training only: the caller decides)
        weights = F.dropout(weights, p=dropout_p, training=True)
    if blind is not None:
        weights = weights.masked_fill(blind, 0.0)  # blind queries: weights 0, so output 0
    output = weights @ v  # 5. weighted sum of the values (..., Tq, Dv)
    return (output, weights) if return_weights else output


class CausalSelfAttention(nn.Module):
    """Single-head causal self-attention: ``x (B, T, d_in) -> (B, T, d_out)``.

    ``q = x W_q``, ``k = x W_k``, ``v = x W_v`` with three ``nn.Linear(d_in, d_out)`` named
    ``q_proj``, ``k_proj``, ``v_proj`` (each stores ``W^T``), then causal
    :func:`scaled_dot_product_attention`. ``dropout`` (in ``[0, 1)``) acts on the attention
    weights in training mode. No output projection: that comes with several heads (chapter 5).
    """

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        self.d_in, self.d_out = check_int(d_in, "d_in"), check_int(d_out, "d_out")
        self.dropout_p = check_dropout(dropout)
        self.q_proj = nn.Linear(d_in, d_out, bias=bias)
        self.k_proj = nn.Linear(d_in, d_out, bias=bias)
        self.v_proj = nn.Linear(d_in, d_out, bias=bias)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, d_in)`` or ``(T, d_in)`` -> ``(B, T, d_out)``; and the weights ``(B, T, T)``."""
        check_layer_input(x, self.d_in, self.q_proj.weight)  # the boundary: one cheap check
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # each (B, T, d_out)
        dropout_p = self.dropout_p if self.training else 0.0
        return scaled_dot_product_attention(
            q, k, v, dropout_p=dropout_p, is_causal=True, return_weights=return_weights, check=False
        )

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}, dropout={self.dropout_p}"


__all__ = ["causal_mask", "scaled_dot_product_attention", "CausalSelfAttention"]
