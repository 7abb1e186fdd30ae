# Generated from chapters/03_embeddings.ipynb by tools/export.py; do not edit, edit the chapter.

import numbers

import torch
from torch import Tensor, nn

from llmbook.checks import check_int


def _check_index_tensor(ids: object, upper: int, name: str, upper_name: str) -> Tensor:
    """Check that ``ids`` is an integer tensor with every entry in ``[0, upper)``.

    Returns ``ids`` unchanged when it is int64 or int32 (the index types ``nn.Embedding``
    accepts), otherwise converted to int64. Tensors on the ``meta`` device carry no values and
    are only type-checked.
    """
    if not isinstance(ids, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of integer ids, got {type(ids).__name__}; "
            "wrap a list with torch.tensor(...)"
        )
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integers (torch.long or torch.int32), got dtype {ids.dtype}; "
            "token ids and positions are whole numbers, not vectors or probabilities"
        )
    if ids.dtype not in (torch.int64, torch.int32):
        ids = ids.long()  # e.g. uint16 ids read from a token file
    if ids.numel() > 0 and ids.device.type != "meta":
        low, high = torch.stack(torch.aminmax(ids)).tolist()  # one read-back for both
        if low < 0 or high >= upper:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains {bad}, but {upper_name} is {upper}: every entry must lie in "
                f"[0, {upper - 1}]"
            )
    return ids


class TokenEmbedding(nn.Embedding):
    """A learnable table of token vectors: row ``i`` of ``weight`` is the vector of token id ``i``.

    It is ``torch.nn.Embedding`` (same parameter name ``weight``, same initialisation N(0, 1),
    same gradients) plus a check of the ids at the boundary, so a wrong id gives a message naming
    the id and the vocabulary size instead of an index error deep inside torch.

    Args:
        vocab_size: number of rows, one per token id (GPT-2: 50,257).
        d_model: length of each vector (GPT-2 small: 768).
        validate: check every call's ids (integer dtype, ``0 <= id < vocab_size``). The range
            check reads two numbers back from the device; pass ``False`` to skip it.
        device, dtype: where and in which precision to create ``weight``.

    Shapes:
        ids ``(B, T)`` (any shape ``(*)``) of integers -> ``(B, T, d_model)`` (``(*, d_model)``).
        ``weight``: ``(vocab_size, d_model)``.
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
        vocab_size = check_int(vocab_size, "vocab_size")
        d_model = check_int(d_model, "d_model")
        super().__init__(vocab_size, d_model, device=device, dtype=dtype)
        self.validate = validate

    @property
    def vocab_size(self) -> int:
        """Number of rows of the table (``num_embeddings`` in ``nn.Embedding``)."""
        return self.num_embeddings

    @property
    def d_model(self) -> int:
        """Length of each vector (``embedding_dim`` in ``nn.Embedding``)."""
        return self.embedding_dim

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor, freeze: bool = True, *, validate: bool = True
    ) -> "TokenEmbedding":
        """Build the layer around a copy of ``embeddings`` ``(vocab_size, d_model)``.

        Like ``nn.Embedding.from_pretrained``, the table is frozen (``requires_grad=False``)
        unless ``freeze=False``.
        """
        if not isinstance(embeddings, Tensor) or embeddings.dim() != 2:
            got = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings)
            raise ValueError(
                f"embeddings must be a 2-D tensor (vocab_size, d_model), got {got}"
            )
        module = cls(
            embeddings.shape[0],
            embeddings.shape[1],
            validate=validate,
            device=embeddings.device,
            dtype=embeddings.dtype,
        )
        with torch.no_grad():
            module.weight.copy_(embeddings)
        module.weight.requires_grad_(not freeze)
        return module

    def forward(self, ids: Tensor) -> Tensor:
        """Look up the vectors of ``ids`` ``(*)``: returns ``(*, d_model)``."""
        if self.validate:
            ids = _check_index_tensor(ids, self.num_embeddings, "ids", "vocab_size")
        return super().forward(ids)


def _position_ids(
    positions: int | Tensor, offset: int, context_length: int, device: torch.device, validate: bool
) -> Tensor:
    """Turn a length ``T`` (with ``offset``) or a tensor of positions into checked position ids."""
    if isinstance(positions, Tensor):
        if offset != 0:
            raise ValueError(
                "offset is only used when positions is a length (an int); "
                f"got a positions tensor and offset={offset}: add the offset to the tensor instead"
            )
        if validate:
            positions = _check_index_tensor(positions, context_length, "positions", "context_length")
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

    Args:
        context_length: number of positions, ``0 .. context_length - 1`` (GPT-2: 1,024).
        d_model: length of each vector (GPT-2 small: 768).
        validate: check explicit position tensors (integers in ``[0, context_length)``).
        device, dtype: where and in which precision to create ``weight``.

    Call it with a length ``T`` (positions ``offset .. offset + T - 1``), which returns
    ``(T, d_model)`` and broadcasts against token embeddings ``(B, T, d_model)``, or with a tensor
    of positions ``(*)``, which returns ``(*, d_model)``. ``weight``: ``(context_length, d_model)``.
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
        super().__init__(context_length, d_model, device=device, dtype=dtype)
        self.validate = validate

    @property
    def context_length(self) -> int:
        """Number of positions the table has rows for (``num_embeddings``)."""
        return self.num_embeddings

    @property
    def d_model(self) -> int:
        """Length of each vector (``embedding_dim``)."""
        return self.embedding_dim

    def forward(self, positions: int | Tensor, offset: int = 0) -> Tensor:
        """Vectors of positions ``offset .. offset + T - 1`` ``(T, d_model)``, or of a tensor ``(*)``."""
        ids = _position_ids(positions, offset, self.num_embeddings, self.weight.device, self.validate)
        return super().forward(ids)


def sinusoidal_positions(
    n_positions: int,
    d_model: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """The fixed sinusoidal position table of "Attention Is All You Need".

    ``PE[p, 2i] = sin(p * w_i)`` and ``PE[p, 2i + 1] = cos(p * w_i)`` with
    ``w_i = base ** (-2i / d_model)``, for ``i = 0 .. d_model / 2 - 1``: the wavelengths
    ``2 pi / w_i`` grow geometrically from ``2 pi`` to just under ``base * 2 pi``.

    Args:
        n_positions: number of positions ``0 .. n_positions - 1`` (rows); 0 gives an empty table.
        d_model: vector length (columns); must be even, since sines and cosines come in pairs.
        base: sets the longest wavelength (10,000 in the paper); positive and finite.
        device, dtype: of the result (default: torch's default dtype). The angles are computed in
            float64 on the CPU, then converted.

    Returns:
        ``(n_positions, d_model)`` tensor.
    """
    n_positions = check_int(n_positions, "n_positions", minimum=0)
    d_model = check_int(d_model, "d_model", minimum=2)
    if d_model % 2:
        raise ValueError(
            f"d_model must be even for sinusoidal positions (each frequency fills a sin and a cos "
            f"column), got {d_model}; use {d_model - 1} or {d_model + 1}"
        )
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise TypeError(f"base must be a number, got {type(base).__name__}")
    if not 0 < base < float("inf"):
        raise ValueError(f"base must be positive and finite, got {base}")
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]              # (P, 1)
    omega = float(base) ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angle = position * omega                                                         # (P, d/2)
    table = torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)                 # (P, d/2, 2)
    table = table.reshape(n_positions, d_model)        # interleave: sin, cos, sin, cos, ...
    return table.to(device=device, dtype=dtype or torch.get_default_dtype())


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal position vectors, as a module with the same call as the learned one.

    The table ``sinusoidal_positions(context_length, d_model, base)`` is a buffer named ``pe``:
    it moves with ``.to(device)`` but is not a parameter (nothing to train) and is not saved in the
    state dict (it is recomputed from the formula).

    Args:
        context_length: number of precomputed positions.
        d_model: vector length, even.
        base: the wavelength base (10,000 in the paper).
        validate: check explicit position tensors.
        device, dtype: of the table.

    Call it with a length ``T`` (and ``offset``) for ``(T, d_model)``, or a tensor of positions
    ``(*)`` for ``(*, d_model)``.
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
        self.d_model = d_model
        self.base = base
        self.validate = validate
        pe = sinusoidal_positions(context_length, d_model, base, device=device, dtype=dtype)
        self.register_buffer("pe", pe, persistent=False)  # (context_length, d_model)

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
