# Generated from chapters/03_embeddings.ipynb by tools/export.py; do not edit, edit the chapter.

import torch
from torch import Tensor, nn

from llmbook.checks import (
    check_bool,
    check_float_dtype,
    check_index_tensor,
    check_int,
    check_positive_float,
)


class TokenEmbedding(nn.Embedding):
    """A learnable table of token vectors ``weight`` ``(vocab_size, d_model)``: ids ``(*)`` -> ``(*, d_model)``.

    ``torch.nn.Embedding`` (same ``weight``, init N(0, 1), gradients) that, if ``validate``, checks
    every call's ids (integers in ``[0, vocab_size)``, else an error naming the bad id). The check
    syncs with the device; ``validate=False`` skips it (then ``torch.compile`` traces the layer).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        *,
        validate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        vocab_size, d_model = check_int(vocab_size, "vocab_size"), check_int(d_model, "d_model")
        super().__init__(vocab_size, d_model, device=device, dtype=check_float_dtype(dtype))
        self.validate = check_bool(validate, "validate")

    vocab_size = property(lambda self: self.num_embeddings, doc="Rows: one per token id.")
    d_model = property(lambda self: self.embedding_dim, doc="Length of each vector.")

    def forward(self, ids: Tensor) -> Tensor:
        """Look up the vectors of ``ids`` ``(*)``: returns ``(*, d_model)``."""
        if self.validate:
            ids = check_index_tensor(ids, self.num_embeddings, "ids", "vocab_size")
        return super().forward(ids)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, *, validate: bool = True):
        """A layer holding a copy of ``embeddings`` ``(vocab_size, d_model)``, frozen unless ``freeze=False``."""
        shape = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else None
        if shape is None or len(shape) != 2:
            got = shape if shape is not None else type(embeddings).__name__
            raise TypeError(f"embeddings must be a 2-D tensor (vocab_size, d_model), got {got}")
        module = cls(*shape, validate=validate, device=embeddings.device, dtype=embeddings.dtype)
        module.weight.data.copy_(embeddings)
        return module.requires_grad_(not freeze)


def _position_ids(
    positions: int | Tensor, offset: int, context_length: int, device: torch.device, validate: bool
) -> Tensor:
    """Turn a length ``T`` (with ``offset``) or a tensor of positions into position ids."""
    if isinstance(positions, Tensor):
        if offset != 0:
            raise ValueError(
                "offset is only used when positions is a length (an int); "
                f"got a positions tensor and offset={offset}: add the offset to the tensor instead"
            )
        if validate:
            positions = check_index_tensor(positions, context_length, "positions", "context_length")
        return positions
    length = check_int(positions, "positions (a sequence length)", minimum=0)
    offset = check_int(offset, "offset", minimum=0)
    if offset + length > context_length:
        raise ValueError(
            f"a sequence of {length} tokens starting at position {offset} needs positions up to "
            f"{offset + length - 1}, but context_length is {context_length} (positions 0 to "
            f"{context_length - 1}); crop the input to its last {max(context_length - offset, 0)} "
            "tokens or use a model with a longer context_length"
        )
    return torch.arange(offset, offset + length, device=device)


class LearnedPositionalEmbedding(nn.Embedding):
    """A learnable table of position vectors (GPT-2's ``wpe``): row ``p`` is added at position ``p``.

    Call it with a length ``T`` (positions ``offset .. offset + T - 1``) for ``(T, d_model)``,
    which broadcasts against token vectors ``(B, T, d_model)``, or with a tensor of positions
    ``(*)`` for ``(*, d_model)``; ``validate`` checks such tensors (a device sync, as in
    ``TokenEmbedding``). ``weight``: ``(context_length, d_model)``.
    """

    def __init__(
        self,
        context_length: int,
        d_model: int,
        *,
        validate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        context_length = check_int(context_length, "context_length")
        d_model = check_int(d_model, "d_model")
        super().__init__(context_length, d_model, device=device, dtype=check_float_dtype(dtype))
        self.validate = check_bool(validate, "validate")

    context_length = property(lambda self: self.num_embeddings, doc="Positions with a row.")
    d_model = property(lambda self: self.embedding_dim, doc="Length of each vector.")

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(
            positions, offset, self.num_embeddings, self.weight.device, self.validate
        )
        return super().forward(ids)


def sinusoidal_positions(
    n_positions: int,
    d_model: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """The fixed sinusoidal position table of "Attention Is All You Need", ``(n_positions, d_model)``.

    ``PE[p, 2i] = sin(p * w_i)`` and ``PE[p, 2i + 1] = cos(p * w_i)`` with
    ``w_i = base ** (-2i / d_model)``: wavelengths from ``2 pi`` to just under ``base * 2 pi``.
    ``d_model`` must be even (sines and cosines come in pairs); ``n_positions`` may be 0. The
    angles are computed in float64 on the CPU, then converted to ``device`` and ``dtype``
    (default: torch's default dtype).
    """
    n_positions = check_int(n_positions, "n_positions", minimum=0)
    d_model = check_int(d_model, "d_model", minimum=2)
    if d_model % 2:
        raise ValueError(
            f"d_model must be even for sinusoidal positions (each frequency fills a sin and a cos "
            f"column), got {d_model}; use {d_model - 1} or {d_model + 1}"
        )
    base, dtype = check_positive_float(base, "base"), check_float_dtype(dtype)
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angle = position * omega  # (P, d/2)
    table = torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)  # (P, d/2, 2)
    table = table.reshape(n_positions, d_model)  # interleave: sin, cos, sin, cos, ...
    return table.to(device=device, dtype=dtype or torch.get_default_dtype())


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal position vectors, called like ``LearnedPositionalEmbedding``.

    The table ``sinusoidal_positions(context_length, d_model, base)`` is a non-persistent buffer
    ``pe`` ``(context_length, d_model)``. After ``to_empty()``, call ``reset_parameters()``.
    Call with a length ``T`` (and ``offset``) for ``(T, d_model)``, or positions ``(*)`` for
    ``(*, d_model)``; ``validate`` checks position tensors (a device sync).
    """

    def __init__(
        self,
        context_length: int,
        d_model: int,
        base: float = 10000.0,
        *,
        validate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.context_length = check_int(context_length, "context_length")
        pe = sinusoidal_positions(context_length, d_model, base, device=device, dtype=dtype)
        self.d_model, self.base = d_model, float(base)
        self.validate = check_bool(validate, "validate")
        self.register_buffer("pe", pe, persistent=False)  # (context_length, d_model)

    def reset_parameters(self) -> None:
        """Recompute the table in place, on its current device and dtype."""
        pe = self.pe
        table = sinusoidal_positions(self.context_length, self.d_model, self.base, dtype=pe.dtype)
        with torch.no_grad():
            pe.copy_(table)  # onto pe's device

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(positions, offset, self.context_length, self.pe.device, self.validate)
        return self.pe[ids]

    def extra_repr(self) -> str:
        return f"context_length={self.context_length}, d_model={self.d_model}, base={self.base}"


__all__ = [
    "TokenEmbedding",
    "LearnedPositionalEmbedding",
    "sinusoidal_positions",
    "SinusoidalPositionalEmbedding",
]
