# Generated from chapters/04_attention.ipynb by tools/export.py; do not edit, edit the chapter.

import math

import torch
from torch import nn

from llmbook.checks import check_dropout, check_int


def causal_mask(
    n_queries: int, n_keys: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean causal mask of shape ``(n_queries, n_keys)``: True where a query may attend to a key.

    True means "allowed", the convention of ``torch.nn.functional.scaled_dot_product_attention``.
    The queries are the *last* ``n_queries`` positions of a sequence of ``n_keys`` positions
    (bottom-right alignment): query ``i`` sits at absolute position ``n_keys - n_queries + i`` and
    may attend to keys ``0 .. n_keys - n_queries + i``. With ``n_keys == n_queries`` (the default)
    this is the lower triangle; with more keys than queries it is what a KV cache needs, where new
    queries come after the cached keys. (Torch's own ``is_causal=True`` aligns the triangle to the
    top-left instead, which differs when ``n_queries != n_keys``.)

    Args:
        n_queries: number of query positions, ``>= 1``.
        n_keys: number of key positions, ``>= n_queries``; defaults to ``n_queries``.
        device: where to create the mask (default: torch's default device).

    Returns:
        A ``torch.bool`` tensor of shape ``(n_queries, n_keys)``.
    """
    n_queries = check_int(n_queries, "n_queries")
    n_keys = n_queries if n_keys is None else check_int(n_keys, "n_keys")
    if n_keys < n_queries:
        raise ValueError(
            f"n_keys must be >= n_queries (queries are the last n_queries of the n_keys positions), "
            f"got n_queries={n_queries}, n_keys={n_keys}"
        )
    allowed = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return allowed.tril(diagonal=n_keys - n_queries)


def _check_attention_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float,
    is_causal: bool,
) -> None:
    """Raise a clear ``TypeError``/``ValueError`` for arguments attention cannot use."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same head dimension (last axis), got q {tuple(q.shape)} "
            f"and k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions (axis -2), got k {tuple(k.shape)} "
            f"and v {tuple(v.shape)}"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) axes of q, k and v must broadcast, got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)} and v {tuple(v.shape)}"
        ) from None
    check_dropout(dropout_p, "dropout_p")
    if mask is None:
        return
    if is_causal:
        raise ValueError("pass either mask or is_causal=True, not both (as in torch)")
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and mask.dtype != q.dtype:
        raise TypeError(
            f"mask must be boolean (True = attend) or have q's dtype {q.dtype} (added to the "
            f"scores), got dtype {mask.dtype}"
        )
    scores_shape = (*batch, q.shape[-2], k.shape[-2])
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == torch.Size(scores_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"(..., Tq, Tk) = {scores_shape}"
        )


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention written out step by step: ``softmax(q @ k^T * scale + mask) @ v``.

    The teaching version of ``torch.nn.functional.scaled_dot_product_attention``, with the same
    arguments and semantics (``mask`` plays the part of torch's ``attn_mask``). It materialises
    the ``(Tq, Tk)`` matrix of weights, so it can return it; the fused kernel does not.

    Args:
        q: queries, shape ``(..., Tq, D)``.
        k: keys, shape ``(..., Tk, D)``.
        v: values, shape ``(..., Tk, Dv)``. The leading axes ``...`` of q, k, v broadcast.
        mask: ``None``; a boolean tensor where True means "may attend" and False sets the score
            to ``-inf`` (see :func:`causal_mask`); or a float tensor of q's dtype added to the
            scores. Either must broadcast to ``(..., Tq, Tk)``.
        dropout_p: probability of zeroing each attention weight, in ``[0, 1)``; the kept weights
            are scaled by ``1 / (1 - dropout_p)``. Applied whenever ``dropout_p > 0`` (as in
            torch): a module passes 0 in eval mode.
        is_causal: apply a causal mask aligned to the top-left corner, exactly as torch's
            ``is_causal`` does: query ``i`` sees keys ``0..i``. That is right when ``Tq == Tk``;
            when queries come after cached keys (``Tq < Tk``) pass ``mask=causal_mask(Tq, Tk)``.
        scale: factor applied to the scores; default ``1 / sqrt(D)``.
        return_weights: also return the attention weights (after dropout).

    Returns:
        The output, shape ``(..., Tq, Dv)``; and if ``return_weights``, the weights, shape
        ``(..., Tq, Tk)``, whose rows sum to 1 (without dropout). A query whose every key is masked
        gets weights 0 and output 0, as in torch, instead of 0/0 = NaN.
    """
    _check_attention_inputs(q, k, v, mask, dropout_p, is_causal)
    n_queries, n_keys = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])

    # 1. Scores: how well each query matches each key.          (..., Tq, D) @ (..., D, Tk)
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)

    # 2. Mask: forbidden positions get -inf, so softmax gives them weight exactly 0.
    if is_causal:
        mask = torch.ones(n_queries, n_keys, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask

    # A query whose every key is masked would get softmax(-inf, ..., -inf) = 0/0 = NaN. Like
    # torch, we give it weights 0 and output 0: its scores become 0 here (no NaN, not even in the
    # gradient), and its output row is zeroed at the end.
    if mask is not None:
        nothing_allowed = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., Tq, 1)
        scores = scores.masked_fill(nothing_allowed, 0.0)

    # 3. Softmax over the keys: each row becomes a probability distribution.
    weights = torch.softmax(scores, dim=-1)  # (..., Tq, Tk)

    # 4. Dropout on the weights (training only; the caller decides by passing dropout_p).
    if dropout_p > 0.0:
        weights = torch.nn.functional.dropout(weights, p=dropout_p, training=True)

    # 5. Output: for each query, the weighted sum of the values.  (..., Tq, Tk) @ (..., Tk, Dv)
    output = weights @ v  # (..., Tq, Dv)
    if mask is not None:  # the queries that may see nothing: output 0 (and weights 0 if asked)
        output = output.masked_fill(nothing_allowed, 0.0)
        if return_weights:
            weights = weights.masked_fill(nothing_allowed, 0.0)
    return (output, weights) if return_weights else output


class CausalSelfAttention(nn.Module):
    """Single-head causal self-attention: each position attends to itself and earlier positions.

    Three linear maps turn the input ``x (B, T, d_in)`` into queries, keys and values of width
    ``d_out``; :func:`scaled_dot_product_attention` with :func:`causal_mask` mixes the values.
    There is no output projection: that comes with several heads (chapter 5).

    Args:
        d_in: width of the input vectors, ``>= 1``.
        d_out: width of queries, keys, values and of the output, ``>= 1``.
        dropout: dropout probability on the attention weights in training mode, in ``[0, 1)``.
        bias: whether the three projections have a bias.

    Attributes:
        q_proj, k_proj, v_proj: the ``nn.Linear(d_in, d_out)`` projections.
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
        """Attend causally over the positions of ``x``.

        Args:
            x: input of shape ``(B, T, d_in)`` (any number of leading axes works).
            return_weights: also return the attention weights ``(B, T, T)``.

        Returns:
            ``(B, T, d_out)``, and the weights if ``return_weights``.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[-1] != self.d_in:
            raise ValueError(f"x must have shape (B, T, d_in={self.d_in}), got {tuple(x.shape)}")
        n_tokens = x.shape[-2]
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # each (B, T, d_out)
        return scaled_dot_product_attention(
            q,
            k,
            v,
            mask=causal_mask(n_tokens, device=x.device),  # (T, T), broadcast over B
            dropout_p=self.dropout_p if self.training else 0.0,
            return_weights=return_weights,
        )

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}, dropout={self.dropout_p}"


__all__ = ["causal_mask", "scaled_dot_product_attention", "CausalSelfAttention"]
