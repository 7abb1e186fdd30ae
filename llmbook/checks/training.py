"""Argument checks of ``llmbook.training`` (hand-written: chapter 08, section 15, shows them).

What a user passes to ``TrainConfig`` and ``train``, the device a run asks for, and the settings
a resumed run may change. Each raises a ``TypeError`` (wrong type) or a ``ValueError`` (wrong
value) naming the field or argument, what was given and what is allowed.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os

import numpy as np
import torch
from torch import nn

from llmbook.checks import check_bool, check_int, check_token_ids

__all__ = [
    "RESUMABLE_FIELDS",
    "SEED_LIMIT",
    "as_ids",
    "check_device",
    "check_resume_config",
    "check_train_args",
    "check_train_config",
]


_PRECISIONS = ("auto", "float32", "bfloat16")
_WINDOWS = ("random", "once")
SEED_LIMIT = 2**32  # step_generator folds seed and step into the 32 bits of a torch generator

# The fields of a TrainConfig that a resumed run may change: how long it runs, how it reports,
# where it keeps its checkpoints, and how each step is computed (device, precision, compile,
# micro-batches: the same steps, up to the order of float additions). The others (batch size,
# context length, learning rates, warm-up, decay, betas, clipping, seed) decide which steps are
# taken: changing them would make a different run.
RESUMABLE_FIELDS = (
    "max_steps",
    "eval_interval",
    "eval_batches",
    "keep_checkpoints",
    "sample_tokens",
    "out_dir",
    "device",
    "precision",
    "compile",
    "grad_accum_steps",
)


def check_train_config(config) -> None:
    """Raise a clear error for the first field of a ``TrainConfig`` that is out of range."""
    for name in (
        "max_steps",
        "batch_size",
        "context_length",
        "grad_accum_steps",
        "eval_interval",
        "eval_batches",
        "keep_checkpoints",
        "sample_tokens",
    ):
        check_int(getattr(config, name), name, minimum=0 if name == "sample_tokens" else 1)
    check_int(config.warmup_steps, "warmup_steps", minimum=0)
    for name in ("seed", "max_steps"):
        if check_int(getattr(config, name), name, minimum=0) >= SEED_LIMIT:
            raise ValueError(
                f"{name} must be below 2**32 = {SEED_LIMIT:,} (torch generators keep 32 bits of a seed; "
                f"step_generator folds seed and step into them), got {getattr(config, name):,}"
            )
    for name in ("lr", "min_lr", "weight_decay", "grad_clip"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a float, got {type(value).__name__} ({value!r})")
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0 and finite, got {value!r}")
    if config.min_lr > config.lr:
        raise ValueError(f"min_lr must be <= lr, got min_lr={config.min_lr}, lr={config.lr}")
    betas = config.betas
    if (
        not isinstance(betas, (tuple, list))
        or len(betas) != 2
        or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in betas)
    ):
        raise TypeError(
            f"betas must be a pair of floats in [0, 1) such as (0.9, 0.95), got {betas!r}"
        )
    if not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    if config.batch_size % config.grad_accum_steps:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be a multiple of "
            f"grad_accum_steps ({config.grad_accum_steps})"
        )
    if config.precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {config.precision!r}")
    if not isinstance(config.device, str):
        raise TypeError(
            f"device must be a str such as 'auto', 'cpu' or 'cuda', got {config.device!r}"
        )
    check_bool(config.compile, "compile")
    if config.windows not in _WINDOWS:
        raise ValueError(
            f"windows must be 'random' (windows anywhere) or 'once' (each window once per "
            f"pass), got {config.windows!r}"
        )
    out_dir = config.out_dir
    if out_dir is not None and (
        isinstance(out_dir, bytes) or not isinstance(out_dir, (str, os.PathLike))
    ):
        raise TypeError(
            f"out_dir must be None or a folder path (str or pathlib.Path), got "
            f"{type(out_dir).__name__} ({out_dir!r})"
        )


def check_device(name: str, arg: str = "device") -> None:
    """Raise unless ``name`` is ``"auto"`` or a device that exists here (``arg`` names it)."""
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"{arg} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {name!r}"
        ) from None
    here = ["cpu"]
    if torch.cuda.is_available():
        here += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        here.append("mps")
    index_ok = device.index is None or (
        device.type == "cuda" and device.index < torch.cuda.device_count()
    )
    if device.type not in here or not index_ok:
        raise ValueError(f"{arg} {name!r} is not available on this machine; available: "
                         f"{', '.join(['auto', *here])}")  # fmt: skip


def check_train_args(model, train_data, val_data, config, resume):
    """Check what ``train`` was given; return ``(train_data, val_data)`` as id sequences."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            "model must be a torch.nn.Module whose forward(ids, targets) returns (logits, "
            f"loss), such as llmbook.model.DecoderLM; got {type(model).__name__}"
        )
    check_forward(model)
    if type(config).__name__ != "TrainConfig":  # llmbook.training's, or the chapter's own
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_train_config(config)  # again: a field may have been changed since construction
    check_bool(resume, "resume")
    if resume and config.out_dir is None:
        raise ValueError("resume=True needs config.out_dir, the folder holding the checkpoints")
    check_device(config.device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if config.batch_size % (world_size * config.grad_accum_steps):
        raise ValueError(
            f"batch_size ({config.batch_size}) must be a multiple of processes x "
            f"grad_accum_steps ({world_size} x {config.grad_accum_steps})"
        )
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    return tuple(
        as_ids(d, name, config.context_length, vocab_size)
        for d, name in ((train_data, "train_data"), (val_data, "val_data"))
    )


def check_forward(model: nn.Module) -> None:
    """The trainer calls ``model(ids, targets)`` and optimizes its parameters: check both."""
    try:
        inspect.signature(model.forward).bind(None, None)
    except TypeError:
        raise TypeError(
            f"model must take (ids, targets) and return (logits, loss), such as "
            f"llmbook.model.DecoderLM; {type(model).__name__}.forward"
            f"{inspect.signature(model.forward)} does not take two arguments"
        ) from None
    except ValueError:  # no signature to read (a C extension): leave it to the first step
        pass
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model ({type(model).__name__}) has no trainable parameters")


def as_ids(data, name, context_length, vocab_size=None):
    """``data`` checked as 1-D integer token ids (floats and bools are refused, never
    truncated). A ``TokenFile`` is returned as it is, so every read goes through its size
    check; tensors and arrays as given (``get_batch`` turns each batch into int64)."""
    is_token_file = hasattr(data, "ids") and hasattr(data, "path")
    if isinstance(data, (list, tuple, range)):
        data = check_token_ids(data, name)  # a LongTensor
    elif is_token_file:
        check_token_ids(data.ids, name, check_values=False)
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        checked = check_token_ids(data, name, check_values=not isinstance(data, np.memmap))
        if isinstance(data, torch.Tensor) and data.dtype in (
            torch.uint16,
            torch.uint32,
            torch.uint64,
        ):
            data = checked  # int64: torch indexes these unsigned types poorly
    else:
        raise TypeError(
            f"{name} must be a 1-D tensor, numpy array, TokenFile or list of ids, "
            f"got {type(data).__name__}"
        )
    if getattr(data, "ndim", 1) != 1 or len(data) <= context_length:
        raise ValueError(
            f"{name} must be 1-D with more than context_length={context_length} "
            f"ids, got shape {tuple(np.shape(data.ids if is_token_file else data))}"
        )
    in_memory = isinstance(data, torch.Tensor) or (
        isinstance(data, np.ndarray) and not isinstance(data, np.memmap)
    )
    if vocab_size is not None and in_memory and int(data.max()) >= vocab_size:
        raise ValueError(
            f"{name} holds id {int(data.max())}, but the model's vocab_size is {vocab_size}: "
            f"ids must be in 0..{vocab_size - 1} (was the text encoded with another tokenizer?)"
        )
    return data


def check_resume_config(saved: dict, config, where: str) -> None:
    """Raise unless ``config`` may continue the run whose checkpoint (in ``where``) was written
    with the settings ``saved``: only ``RESUMABLE_FIELDS`` may differ."""
    if not isinstance(saved, dict):
        raise ValueError(f"{where}: the saved config is not a dict: not a checkpoint of train()")
    changed = []
    for name, value in vars(config).items():
        if name in RESUMABLE_FIELDS or name not in saved:
            continue
        old = saved[name]
        old, value = (tuple(old), tuple(value)) if name == "betas" else (old, value)
        if old != value:
            changed.append(f"{name}={value!r} (the run's: {old!r})")
    if changed:
        raise ValueError(
            f"resume=True cannot change {', '.join(changed)}: these decide which steps are "
            f"taken, so the result would be neither run (checkpoint: {where}). A resumed run may "
            f"change {', '.join(RESUMABLE_FIELDS)}; for other settings start a new run in "
            "another out_dir"
        )
