"""Training-run plumbing for ``llmbook.training`` (hand-written: chapter 08 teaches the ideas).

The history's lists, the Ctrl-C handler, the random states a checkpoint keeps, and safetensors'
rule that no two tensors share memory (a tied LM head is the embedding table: saved once, tied
again on load). The checks of what a user passes to ``TrainConfig`` and ``train`` are in
:mod:`llmbook.checks.training`.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import torch
from torch import nn

__all__ = [
    "catch_sigint",
    "load_weights",
    "new_history",
    "record",
    "rng_states",
    "set_rng_states",
    "unique_tensors",
]


def new_history() -> dict:
    """Empty lists to append to: one entry per step, one per evaluation, one per sample."""
    names = ("step", "loss", "lr", "tokens_per_s", "eval_step", "train_loss", "val_loss")
    return {**{name: [] for name in names}, "samples": [], "interrupted": False}


def record(history: dict, **values) -> None:
    for name, value in values.items():
        history[name].append(value)


@contextlib.contextmanager
def catch_sigint():
    """While inside, Ctrl-C (SIGINT) sets ``.requested`` instead of raising, so the loop can
    save and stop at the end of the step; a second Ctrl-C raises ``KeyboardInterrupt`` at once."""
    stop = type("Stop", (), {"requested": False})()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def rng_states() -> dict:
    """The random states a resumed run needs (torch CPU and CUDA; the data order is seeded)."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def unique_tensors(state_dict: dict) -> dict:
    """The state dict with each shared tensor once (a tied LM head is the embedding table), as
    safetensors requires; copies, so that nothing in the file aliases the live model."""
    seen, out = set(), {}
    for name, tensor in state_dict.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            out[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return out


def load_weights(model: nn.Module, tensors: dict) -> None:
    """Copy ``tensors`` into ``model``; the names must be exactly ``unique_tensors``' names."""
    expected = set(unique_tensors(model.state_dict()))
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.load_state_dict(tensors, strict=False)  # the tied duplicates are the only omissions
