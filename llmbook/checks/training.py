"""Argument checks of ``llmbook.training`` (hand-written: chapter 08, section 15, shows them).

What a user passes to ``TrainConfig`` and ``train``, and the folder ``load_checkpoint`` reads.
Each raises a ``TypeError`` (wrong type) or a ``ValueError`` (wrong value) naming the field or
argument, what was given and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llmbook.checks import check_int

__all__ = ["as_ids", "check_checkpoint_folder", "check_train_args", "check_train_config"]


_PRECISIONS = ("auto", "float32", "bfloat16")


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
    check_int(config.seed, "seed", minimum=0)
    for name in ("lr", "min_lr", "weight_decay", "grad_clip"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if config.min_lr > config.lr:
        raise ValueError(f"min_lr must be <= lr, got min_lr={config.min_lr}, lr={config.lr}")
    if len(config.betas) != 2 or not all(0 <= b < 1 for b in config.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {config.betas!r}")
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


def check_train_args(model, train_data, val_data, config, resume):
    """Check what ``train`` was given; return ``(train_data, val_data)`` as id sequences."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if type(config).__name__ != "TrainConfig":  # llmbook.training's, or the chapter's own
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if resume and config.out_dir is None:
        raise ValueError("resume=True needs config.out_dir, the folder holding the checkpoints")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if config.batch_size % (world_size * config.grad_accum_steps):
        raise ValueError(
            f"batch_size ({config.batch_size}) must be a multiple of processes x "
            f"grad_accum_steps ({world_size} x {config.grad_accum_steps})"
        )
    return tuple(
        as_ids(d, name, config.context_length)
        for d, name in ((train_data, "train_data"), (val_data, "val_data"))
    )


def as_ids(data, name, context_length):
    data = getattr(data, "ids", data)  # a TokenFile (chapter 2) is read through its memory map
    if isinstance(data, (list, tuple)):
        data = torch.tensor(data, dtype=torch.long)
    if not isinstance(data, (torch.Tensor, np.ndarray)):
        raise TypeError(
            f"{name} must be a 1-D tensor, numpy array, TokenFile or list of ids, "
            f"got {type(data).__name__}"
        )
    if getattr(data, "ndim", 1) != 1 or len(data) <= context_length:
        raise ValueError(
            f"{name} must be 1-D with more than context_length={context_length} "
            f"ids, got shape {tuple(np.shape(data))}"
        )
    return data


def check_checkpoint_folder(folder: Path) -> None:
    for name in ("model.safetensors", "state.pt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{str(folder / name)!r} not found: not a checkpoint folder "
                "written by save_checkpoint"
            )
