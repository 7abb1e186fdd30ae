"""Argument checks shared by the modules of chapters 01-09 (hand-written: no chapter teaches them).

The checks that serve one chapter's module only live beside this file: ``tokenizer.py``
(chapter 01), ``model.py`` (07), ``training.py`` (08) and ``generation.py`` (09).
Bad input gets one kind of error everywhere: a ``TypeError`` when the type is wrong, a
``ValueError`` when the value is out of range, each naming the argument, what was given and
what is allowed.
"""

import math
import numbers

import torch

__all__ = [
    "check_int",
    "check_dropout",
    "check_attention_inputs",
    "check_layer_input",
    "check_token_ids",
    "check_fraction",
    "check_index_tensor",
    "check_float_dtype",
    "MAX_TOKEN_ID",
]


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum`` (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_dropout(value: object, name: str = "dropout") -> float:
    """Return ``value`` as a float, or raise if it is not a probability in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__} ({value!r})")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_attention_inputs(
    q: object,
    k: object,
    v: object,
    mask: object = None,
    dropout_p: object = 0.0,
    is_causal: object = False,
    scale: object = None,
) -> None:
    """Raise unless the arguments suit ``llmbook.attention.scaled_dot_product_attention``.

    ``q (..., Tq, D)``, ``k (..., Tk, D)``, ``v (..., Tk, Dv)``: floating tensors of one dtype
    on one device whose leading axes broadcast. ``mask``: None, or a boolean tensor or one of
    q's dtype, on q's device, that broadcasts to ``(..., Tq, Tk)``; not with ``is_causal``.
    ``dropout_p`` in ``[0, 1)``; ``is_causal`` a bool; ``scale`` None or a finite number > 0.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(
            f"q, k and v must be on one device, got {q.device}, {k.device} and {v.device}"
        )
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
    if not isinstance(is_causal, bool):
        raise TypeError(f"is_causal must be a bool, got {type(is_causal).__name__}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            raise TypeError(f"scale must be a number or None, got {type(scale).__name__}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0 (None: 1/sqrt(D)), got {scale}")
    if mask is not None:
        _check_mask(mask, q, (*batch, q.shape[-2], k.shape[-2]), is_causal)


def _check_mask(mask: object, q: torch.Tensor, scores_shape: tuple, is_causal: bool) -> None:
    if is_causal:
        raise ValueError("pass either mask or is_causal=True, not both (as in torch)")
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and mask.dtype != q.dtype:
        raise TypeError(
            f"mask must be boolean (True = attend) or have q's dtype {q.dtype} (added to the "
            f"scores), got dtype {mask.dtype}"
        )
    if mask.device != q.device:
        raise ValueError(f"mask must be on q's device {q.device}, got {mask.device}")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == torch.Size(scores_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"(..., Tq, Tk) = {scores_shape}"
        )


def check_layer_input(
    x: object, width: int, weight: torch.Tensor, name: str = "x", width_name: str = "d_in"
) -> None:
    """Raise unless ``x`` can enter a layer whose input projection has ``weight``.

    Cheap enough for every forward call (no device sync): ``x`` must be a floating tensor of
    shape ``(..., T, width)`` with ``T >= 1``, on ``weight``'s device, and of ``weight``'s dtype
    (any float dtype inside ``torch.autocast``, which casts for the layer).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (token ids go through an embedding "
            f"first), got dtype {x.dtype}"
        )
    if x.dim() < 2 or x.shape[-1] != width:
        raise ValueError(
            f"{name} must have shape (B, T, {width_name}={width}), got {tuple(x.shape)}"
        )
    if x.shape[-2] == 0:
        raise ValueError(f"{name} must have at least one position (T >= 1), got {tuple(x.shape)}")
    if x.device != weight.device:
        raise ValueError(
            f"{name} is on {x.device} but the layer's weights are on {weight.device}; "
            f"move one of them with .to(device)"
        )
    if x.dtype != weight.dtype and not _autocasting(x.device.type):
        raise TypeError(
            f"{name} has dtype {x.dtype} but the layer's weights have dtype {weight.dtype}; "
            f"convert one of them with .to(dtype)"
        )


def _autocasting(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device type autocast does not know (e.g. "meta")
        return False


def check_positive_float(value: object, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number ``> 0`` (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float > 0, got {type(value).__name__} ({value!r})")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_choice(value: object, name: str, choices: tuple | list) -> object:
    """Return ``value``, or raise a ``ValueError`` listing ``choices`` if it is not one of them."""
    if not isinstance(value, (str, int, float)) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(value: object, name: str) -> bool:
    """Return ``value``, or raise a ``TypeError`` if it is not a bool (``0``/``1`` are not)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} ({value!r})")
    return value


MAX_TOKEN_ID = 2**32 - 1  # the largest id a uint32 token file holds; far above any vocabulary


def check_token_ids(ids: object, name: str = "ids", check_values: bool = True):
    """Return token ids as a 1-D LongTensor, or as the NumPy array given (memory maps stay lazy).

    Accepts a list, tuple or range of ints, a 1-D integer tensor or a 1-D integer NumPy array.
    Raises ``TypeError`` for anything else (floats, bools, strings: never truncated) and
    ``ValueError`` for other shapes or ids outside ``0..MAX_TOKEN_ID``. ``check_values=False``
    skips the scan of the values of tensors and arrays (for ids already checked once); arrays
    of uint8/16/32 need no scan, and uint64 (which would wrap negative in int64) is always scanned.
    """
    import numpy as np

    if isinstance(ids, (list, tuple, range)):
        bad = [x for x in ids if isinstance(x, bool) or not isinstance(x, numbers.Integral)][:1]
        if bad:
            raise TypeError(f"{name} must hold ints, got {type(bad[0]).__name__} ({bad[0]!r})")
        lo, hi = (min(ids), max(ids)) if len(ids) else (0, 0)
        if lo < 0 or hi > MAX_TOKEN_ID:
            raise ValueError(f"{name} must be in 0..{MAX_TOKEN_ID:,}, got {lo if lo < 0 else hi:,}")
        return torch.tensor([int(x) for x in ids], dtype=torch.long)
    if isinstance(ids, torch.Tensor):
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got a tensor of dtype {ids.dtype}")
        array = ids.detach().cpu()
        if array.dtype in (
            torch.uint16,
            torch.uint32,
            torch.uint64,
        ):  # torch lacks min/max for these
            array = array.numpy()
    elif isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got an array of dtype {ids.dtype}")
        array = ids
    else:
        raise TypeError(
            f"{name} must be a list of ints, a 1-D integer tensor or a 1-D integer NumPy array, "
            f"got {type(ids).__name__}"
        )
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(array.shape)}")
    small = array.dtype in (torch.uint8,) or (
        isinstance(array, np.ndarray) and array.dtype.kind == "u" and array.itemsize <= 4
    )
    if len(array) and not small and (check_values or array.dtype == np.uint64):
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > MAX_TOKEN_ID:
            raise ValueError(f"{name} must be in 0..{MAX_TOKEN_ID:,}, got {lo if lo < 0 else hi:,}")
    if isinstance(ids, np.ndarray):
        return ids
    return (
        torch.from_numpy(array.astype(np.int64)) if isinstance(array, np.ndarray) else array.long()
    )


def check_fraction(value: object, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a float strictly between 0 and 1, got {type(value).__name__} ({value!r})"
        )
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return float(value)


def check_index_tensor(
    ids: object, upper: int, name: str = "ids", upper_name: str = "vocab_size"
) -> torch.Tensor:
    """Return ``ids`` as an index tensor for a table of ``upper`` rows, or raise.

    ``ids`` must be an integer tensor of any shape with every entry in ``[0, upper)``. int64 and
    int32 come back unchanged (the index types ``nn.Embedding`` takes), other integer dtypes as
    int64. The range check reads the smallest and largest entry back to the host (a device sync
    on a GPU, and a graph break under ``torch.compile``): call it once where ids enter a model,
    not in every layer. Tensors on the ``meta`` device carry no values and are only type-checked.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of integer ids, got {type(ids).__name__}; "
            "wrap a list with torch.tensor(...)"
        )
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integers (torch.long or torch.int32), got dtype {ids.dtype}; "
            "token ids and positions are whole numbers, not vectors or probabilities"
        )
    unsigned64 = ids.dtype == torch.uint64
    if ids.dtype not in (torch.int64, torch.int32):
        ids = ids.long()  # e.g. uint16 ids read from a token file; uint64 >= 2**63 wrap negative
    if ids.numel() > 0 and ids.device.type != "meta":
        low, high = torch.stack(torch.aminmax(ids)).tolist()  # one read-back for both
        if low < 0 or high >= upper:
            bad = (low + 2**64 if unsigned64 else low) if low < 0 else high
            raise ValueError(
                f"{name} contains {bad}, but {upper_name} is {upper}: every entry must lie in "
                f"[0, {upper - 1}]"
            )
    return ids


def check_float_dtype(dtype: object, name: str = "dtype") -> "torch.dtype | None":
    """Return ``dtype``, or raise a ``TypeError`` unless it is None or a floating torch.dtype."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(
            f"{name} must be None or a floating-point torch.dtype (e.g. torch.float32, "
            f"torch.bfloat16), got {dtype!r}"
        )
    return dtype


# ---- chapter 05 (llmbook.multihead): multi-head attention and rotary embeddings


def check_heads(d_model: object, n_heads: object, n_kv_heads: object) -> int:
    """Return ``head_dim = d_model // n_heads``, or raise unless the head counts divide evenly."""
    (
        check_int(d_model, "d_model"),
        check_int(n_heads, "n_heads"),
        check_int(n_kv_heads, "n_kv_heads"),
    )
    if d_model % n_heads:
        raise ValueError(
            f"d_model ({d_model}) must be divisible by n_heads ({n_heads}); "
            f"choose n_heads among the divisors of {d_model}"
        )
    if n_heads % n_kv_heads:
        raise ValueError(
            f"n_heads ({n_heads}) must be divisible by n_kv_heads ({n_kv_heads}): each K/V "
            "head serves a whole group of query heads"
        )
    return d_model // n_heads


def check_even(value: object, name: str) -> int:
    """Return ``value``, or raise unless it is an even int ``>= 2`` (RoPE rotates pairs)."""
    if check_int(value, name) % 2:
        raise ValueError(f"{name} must be even for RoPE (it rotates pairs), got {value}")
    return value


def check_rope_base(base: object) -> float:
    """Return ``base`` as a float, or raise unless it is a finite number ``> 1``."""
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise TypeError(f"base must be a number > 1, got {type(base).__name__} ({base!r})")
    if not (math.isfinite(base) and base > 1):
        raise ValueError(f"base must be a finite number > 1, got {base}")
    return float(base)


LLAMA3_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor")


def check_llama3_scaling(scaling: object) -> dict:
    """Return the four numbers of Llama-3.1's RoPE scaling (a Hugging Face ``rope_scaling``
    dict), or raise unless ``rope_type`` is ``"llama3"`` and every number is finite and valid."""
    if not isinstance(scaling, dict):
        raise TypeError(f"scaling must be a dict or None, got {type(scaling).__name__}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind != "llama3":
        raise ValueError(f"only scaling with rope_type 'llama3' is implemented, got {kind!r}")
    keys = (*LLAMA3_SCALING_KEYS, "original_max_position_embeddings")
    missing = [key for key in keys if key not in scaling]
    if missing:
        raise ValueError(f"llama3 scaling needs the keys {keys}; missing {missing}")
    values = {key: check_positive_float(scaling[key], f"scaling[{key!r}]") for key in keys[:3]}
    values[keys[3]] = check_int(scaling[keys[3]], f"scaling[{keys[3]!r}]")
    if not values["high_freq_factor"] > values["low_freq_factor"]:
        raise ValueError(f"llama3 scaling needs high_freq_factor > low_freq_factor, got {values}")
    return values


def check_rope_input(x: object, head_dim: int | None = None) -> None:
    """Raise unless ``x`` is a floating tensor ``(..., D)`` with ``D`` even; with ``head_dim``
    (RotaryEmbedding's call) also ``(..., T, D)`` with ``D == head_dim``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (queries or keys), got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] % 2:
        raise ValueError(
            f"x must have an even last axis (RoPE rotates pairs), got {tuple(x.shape)}"
        )
    if head_dim is not None and x.dim() < 2:  # RotaryEmbedding reads T from x.shape[-2]
        raise ValueError(
            f"x must be (..., T, D): positions along its second-to-last axis, pairs along its "
            f"last; got shape {tuple(x.shape)}"
        )
    if head_dim is not None and x.shape[-1] != head_dim:
        raise ValueError(f"x has last axis {x.shape[-1]}, the RotaryEmbedding head_dim={head_dim}")


def check_cos_sin(x: torch.Tensor, cos: object, sin: object) -> None:
    """Raise unless ``cos`` and ``sin`` are ``(T, D)`` or ``(B, T, D)`` tensors fitting ``x``."""
    for name, t in (("cos", cos), ("sin", sin)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {_describe(t)}")
    if cos.shape != sin.shape or cos.dim() not in (2, 3) or cos.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"cos/sin of shapes {tuple(cos.shape)}, {tuple(sin.shape)} do not fit x of shape "
            f"{tuple(x.shape)}: they must be (T, D) or (B, T, D) with the (T, D) of x"
        )
    if x.dim() == 4 and cos.dim() == 3 and cos.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"cos/sin hold positions for {cos.shape[0]} sequences, x has a batch of {x.shape[0]}"
        )


def check_positions(
    positions: object,
    batch: int | None = None,
    length: int | None = None,
    max_positions: int | None = None,
) -> torch.Tensor:
    """Return ``positions``, or raise unless it is an integer tensor ``(T,)`` or ``(B, T)``
    (fitting ``batch`` and ``length`` when given). With ``max_positions`` also checks the
    values, which reads them back (a device sync): skipped under ``torch.compile``."""
    if not isinstance(positions, torch.Tensor) or not _is_integer(positions):
        got = _describe(positions)
        raise TypeError(f"positions must be an integer tensor (torch.long), got {got}")
    if positions.dim() not in (1, 2) or (length is not None and positions.shape[-1] != length):
        raise ValueError(
            f"positions must hold one position per token, shape (T,) or (B, T)"
            f"{'' if length is None else f' with T={length}'}, got {tuple(positions.shape)}"
        )
    if batch is not None and positions.dim() == 2 and positions.shape[0] not in (1, batch):
        raise ValueError(f"positions for {positions.shape[0]} sequences, x has a batch of {batch}")
    if max_positions is not None and positions.numel() and not torch.compiler.is_compiling():
        low, high = torch.stack(torch.aminmax(positions)).tolist()
        if low < 0 or high >= max_positions:
            raise ValueError(
                f"positions must lie in [0, max_positions={max_positions}), got {low}..{high}; "
                "build the RotaryEmbedding with a larger max_positions"
            )
    return positions


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    return type(value).__name__


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def check_qkv(
    q: object,
    k: object,
    v: object,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    attn_mask: object = None,
) -> None:
    """Raise unless ``q (B, n_heads, Tq, D)``, ``k, v (B, n_kv_heads, Tk, D)`` with ``1 <= Tq <=
    Tk`` and ``attn_mask`` (None or boolean) broadcasts to ``(B, 1, Tq, Tk)``."""
    for name, t, heads in (("q", q, n_heads), ("k", k, n_kv_heads), ("v", v, n_kv_heads)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] != heads or t.shape[-1] != head_dim:
            raise ValueError(
                f"{name} must have shape (B, {heads}, T, head_dim={head_dim}), got {tuple(t.shape)}"
            )
    if k.shape != v.shape or k.shape[0] != q.shape[0]:
        raise ValueError(
            f"k and v must have one shape and q's batch, got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    Tq, Tk = q.shape[-2], k.shape[-2]
    if not 1 <= Tq <= Tk:
        raise ValueError(f"got {Tq} queries and {Tk} keys; causal attention needs 1 <= Tq <= Tk")
    if attn_mask is not None:
        if not isinstance(attn_mask, torch.Tensor) or attn_mask.dtype != torch.bool:
            raise TypeError(
                f"attn_mask must be a boolean tensor (True = may attend), got {_describe(attn_mask)}"
            )
        shape = (q.shape[0], 1, Tq, Tk)
        if attn_mask.dim() > 4 or any(
            a not in (1, b) for a, b in zip(attn_mask.shape[::-1], shape[::-1])
        ):
            raise ValueError(
                f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to "
                f"(B, 1, Tq, Tk) = {shape}"
            )


def check_sequence_batch(x: object, width: int, weight: torch.Tensor) -> None:
    """Raise unless ``x`` is a ``(B, T, width)`` batch that a layer with ``weight`` accepts
    (see :func:`check_layer_input`: floating, ``T >= 1``, weight's device and dtype)."""
    check_layer_input(x, width, weight, width_name="d_model")
    if x.dim() != 3:
        raise ValueError(f"x must have shape (B, T, d_model={width}), got {tuple(x.shape)}")


def check_optional_int(value: object, name: str, minimum: int = 1) -> int | None:
    """Return ``value``: None, or an int ``>= minimum`` (see :func:`check_int`)."""
    return None if value is None else check_int(value, name, minimum)


def check_length(n: int, max_positions: int | None) -> int:
    """Return ``n``, or raise if a sequence of ``n`` positions goes beyond ``max_positions``."""
    if max_positions is not None and n > max_positions:
        raise ValueError(
            f"a sequence of {n} positions goes beyond max_positions={max_positions}; build the "
            "RotaryEmbedding with a larger max_positions (or None: no limit)"
        )
    return n


def check_rope_module(rope: object, head_dim: int, rope_class: type) -> object:
    """Return ``rope``: None, or a ``rope_class`` instance whose ``head_dim`` is ``head_dim``."""
    if rope is not None and not isinstance(rope, rope_class):
        raise TypeError(f"rope must be a {rope_class.__name__} or None, got {type(rope).__name__}")
    if rope is not None and rope.head_dim != head_dim:
        raise ValueError(
            f"rope.head_dim ({rope.head_dim}) must equal d_model // n_heads ({head_dim})"
        )
    return rope


def check_head_rows(weight: object, n_heads: int) -> None:
    """Raise unless ``weight`` is a ``(n_heads * D, d_in)`` weight or ``(n_heads * D,)`` bias."""
    check_int(n_heads, "n_heads")
    if (
        not isinstance(weight, torch.Tensor)
        or weight.dim() not in (1, 2)
        or weight.shape[0] % n_heads
    ):
        raise ValueError(
            f"weight of shape {getattr(weight, 'shape', weight)!r:.60} does not split into "
            f"n_heads={n_heads} heads: pass a (n_heads * D, d_in) weight or (n_heads * D,) bias "
            "and the number of heads of this projection (n_kv_heads for k_proj)"
        )
