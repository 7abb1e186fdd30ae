"""Training-run plumbing for ``llmbook.training`` (hand-written: chapter 08 teaches the ideas).

The history's lists, the Ctrl-C handler, the random states a checkpoint keeps, and safetensors'
rule that no two tensors share memory (a tied LM head is the embedding table: saved once, tied
again on load). Then what keeps a run folder safe:

- **Checksums.** ``save_checkpoint`` ends with :func:`write_checksums`: ``sha256.json`` holds the
  SHA-256 of ``model.safetensors`` and ``state.pt``, and :func:`verify_checkpoint` checks both
  before anything is loaded. A flipped byte, a truncated file or an edited state is one
  :class:`CheckpointError` naming the file, never other weights. (A Hugging Face folder made
  elsewhere carries no such record: ``from_hf`` can only check its structure.)
- **One trainer per folder.** :func:`claim_out_dir` locks ``out_dir/.lock`` with ``fcntl.flock``
  (``msvcrt.locking`` on Windows), a lock the operating system drops when the process dies, so a
  killed run never leaves it behind; a second process gets :class:`RunFolderBusyError`. The lock
  is taken again, without blocking, by the process that holds it (``llmbook train`` holds it
  around ``train``). Holding it, the trainer removes the temporary files (``.latest.*.tmp``, ...)
  a killed run left, refuses a fresh run where another run's checkpoints are, and checks a
  resume before touching the model: the newest checkpoint verified, its state complete, its
  settings compatible (``llmbook.checks.training.check_resume_config``).
- **Clean-up that keeps the new checkpoint.** :func:`prune_checkpoints` orders the step folders
  by their number, keeps the one just written and the newest older ones, and removes folders
  of later steps (left by a run that was resumed from an earlier checkpoint).
- **No NaN checkpoints.** :func:`check_finite_weights` refuses to save weights holding NaN or
  inf, and :func:`last_good_note` names the newest checkpoint whose weights verify and are
  finite.

The checks of what a user passes to ``TrainConfig`` and ``train`` are in
:mod:`llmbook.checks.training`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import weakref
from pathlib import Path

import torch
from torch import nn

from llmbook.checks.training import check_resume_config
from llmbook.io.files import atomic_write

__all__ = [
    "CHECKSUM_FILE",
    "LOCK_FILE",
    "CheckpointError",
    "RunFolderBusyError",
    "catch_sigint",
    "check_finite_weights",
    "checkpoint_step",
    "claim_out_dir",
    "last_good_checkpoint",
    "last_good_note",
    "load_weights",
    "lock_run_folder",
    "new_history",
    "prune_checkpoints",
    "read_latest",
    "read_state",
    "record",
    "remove_stray_temporaries",
    "rng_states",
    "set_rng_states",
    "unique_tensors",
    "verify_checkpoint",
    "write_checksums",
]

CHECKSUM_FILE = "sha256.json"  # written last: a step folder holding it is a complete checkpoint
LOCK_FILE = ".lock"  # in out_dir: locked by the one process that trains into the folder
_FILES = ("model.safetensors", "state.pt")
_STEP = re.compile(r"step_(\d+)")


class CheckpointError(ValueError):
    """A checkpoint that is damaged, incomplete or edited; the message names the file."""


class RunFolderBusyError(RuntimeError):
    """Another process is training into the folder (it holds the folder's lock)."""


_STEP_LISTS = ("step", "loss", "lr", "tokens_per_s", "grad_norm")  # one entry per step
_EVAL_LISTS = ("eval_step", "train_loss", "val_loss")  # one entry per evaluation


def new_history(saved: dict | None = None) -> dict:
    """Empty lists to append to: one entry per step, one per evaluation, one per sample. Given
    ``saved``, a history read back from a checkpoint, return it with every list it lacks added
    empty (a history saved by an older llmbook has no ``grad_norm``), so a resume can go on."""
    lists = {name: [] for name in _STEP_LISTS + _EVAL_LISTS}
    return {**lists, "samples": [], "interrupted": False, **(saved or {})}


def record(history: dict, **values) -> None:
    for name, value in values.items():
        history[name].append(value)


@contextlib.contextmanager
def catch_sigint():
    """While inside, Ctrl-C (SIGINT) sets ``.requested`` instead of raising, so the loop can
    finish the step, save and stop. A second Ctrl-C does not break into that save: it prints
    how to quit at once (SIGQUIT, Ctrl-\\, or kill: the newest checkpoint stays whole, since every
    file is written atomically) and the save goes on."""
    stop = type("Stop", (), {"requested": False})()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if stop.requested:
            note = (
                "\nstopping: finishing this step and saving its checkpoint (Ctrl-\\ or kill "
                "quits at once; the newest checkpoint stays whole)\n"
            )
            with contextlib.suppress(OSError):
                os.write(2, note.encode())  # not print: it may have been interrupted mid-write
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


# ----------------------------------------------------------------------------- checksums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: Path) -> None:
    """Write ``folder/sha256.json``: the SHA-256 of the checkpoint's two files, read back from
    disk. Written last (atomically), it marks the folder as a complete checkpoint."""
    sums = {name: _sha256(folder / name) for name in _FILES}
    with atomic_write(folder / CHECKSUM_FILE, "w", encoding="utf-8") as f:
        f.write(json.dumps(sums, indent=1) + "\n")


def verify_checkpoint(folder) -> None:
    """Raise unless ``folder`` holds a complete checkpoint whose files match ``sha256.json``:
    ``FileNotFoundError`` if it is no checkpoint at all, ``CheckpointError`` (naming the file)
    if it is incomplete, damaged or edited."""
    folder = Path(folder)
    present = [name for name in (*_FILES, CHECKSUM_FILE) if (folder / name).is_file()]
    if not present:
        raise FileNotFoundError(
            f"{str(folder)!r} holds no model.safetensors, state.pt or {CHECKSUM_FILE}: not a "
            "checkpoint folder written by save_checkpoint"
        )
    for name in _FILES:
        if name not in present:
            raise CheckpointError(
                f"{str(folder / name)!r} is missing: the checkpoint is incomplete or damaged"
            )
    sums_path = folder / CHECKSUM_FILE
    if CHECKSUM_FILE not in present:
        raise CheckpointError(
            f"{str(sums_path)!r} is missing: the checkpoint is incomplete (the process stopped "
            "while saving it) or was written by an older llmbook, so it cannot be verified"
        )
    try:
        sums = json.loads(sums_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{str(sums_path)!r} is not valid JSON ({error})") from None
    if not isinstance(sums, dict) or not all(isinstance(sums.get(n), str) for n in _FILES):
        raise CheckpointError(
            f"{str(sums_path)!r} must map model.safetensors and state.pt to SHA-256 hex "
            f"digests, got {sums!r:.200}"
        )
    for name in _FILES:
        if _sha256(folder / name) != sums[name]:
            raise CheckpointError(
                f"{str(folder / name)!r} does not match its SHA-256 in {CHECKSUM_FILE}: the file "
                "is damaged (truncated, or bytes changed) or was edited; resume from an older "
                "checkpoint or start again"
            )


_STATE_TYPES = {"step": int, "history": dict, "rng": dict, "config": dict}


def read_state(folder: Path, map_location="cpu") -> dict:
    """The verified ``state.pt`` of a checkpoint written by the trainer, with the keys a resume
    reads checked (``CheckpointError`` naming the file otherwise)."""
    verify_checkpoint(folder)
    path = folder / "state.pt"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as error:  # verified bytes that do not load: a newer or foreign format
        raise CheckpointError(f"{str(path)!r} cannot be read: {error}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r} holds a {type(state).__name__}, not a dict")
    for key, kind in _STATE_TYPES.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise CheckpointError(
                f"{str(path)!r}: {key!r} must be {'an int' if kind is int else 'a dict'}, got "
                f"{type(state.get(key)).__name__}: not a checkpoint written by train()"
            )
    if not isinstance(state["rng"].get("torch"), torch.Tensor):
        raise CheckpointError(f"{str(path)!r}: rng['torch'] (torch's random state) is missing")
    return state


# ----------------------------------------------------------------------------- the folders


def checkpoint_step(folder: Path) -> int | None:
    """The step of a ``step_NNNNNNN`` folder, or None for any other name."""
    match = _STEP.fullmatch(folder.name)
    return int(match.group(1)) if match else None


def _step_folders(root: Path) -> list[Path]:
    """The ``step_*`` folders under ``root``, ordered by their step (not by name)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def read_latest(path: Path) -> Path:
    """The checkpoint folder that ``checkpoints/latest`` names, checked to exist."""
    try:
        name = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        name = "<not UTF-8 text>"
    if checkpoint_step(Path(name)) is None or Path(name).name != name:
        raise CheckpointError(
            f"{str(path)!r} must hold the name of a checkpoint folder such as step_0000100, "
            f"but holds {name!r}; write the name of the newest step_* folder into it"
        )
    folder = path.parent / name
    if not folder.is_dir():
        raise CheckpointError(
            f"{str(path)!r} names {name}, which does not exist; write the name of an existing "
            "step_* folder into it"
        )
    return folder


def prune_checkpoints(root: Path, keep: int, current: Path) -> None:
    """Keep ``current`` (the checkpoint just written) and the ``keep - 1`` newest before it;
    remove the other step folders, later ones included (left by a run that was resumed from an
    earlier checkpoint: a future that did not happen)."""
    step = checkpoint_step(current)
    older = [p for p in _step_folders(root) if checkpoint_step(p) < step]
    later = [p for p in _step_folders(root) if checkpoint_step(p) > step]
    for old in older[: max(0, len(older) - (keep - 1))] + later:
        shutil.rmtree(old)


def remove_stray_temporaries(out_dir: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.XXXX.tmp``) that a killed process left in a run
    folder; call only while holding its lock (no one else is writing). Returns them."""
    folders = [
        out_dir,
        out_dir / "model",
        out_dir / "checkpoints",
        *_step_folders(out_dir / "checkpoints"),
    ]
    stray = [p for d in folders if d.is_dir() for p in d.glob(".*.tmp") if p.is_file()]
    for path in stray:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stray


def _has_checkpoints(root: Path) -> bool:
    return (root / "latest").exists() or any(
        (p / CHECKSUM_FILE).exists() for p in _step_folders(root)
    )


# ----------------------------------------------------------------------------- NaN


def check_finite_weights(model: nn.Module, step: int, out_dir) -> None:
    """Raise ``FloatingPointError`` if a floating-point weight of ``model`` holds NaN or inf:
    such weights are never saved as a checkpoint."""
    tensors = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
    finite = torch.stack([t.isfinite().all() for _, t in tensors]).cpu()
    if not bool(finite.all()):
        bad = [n for (n, _), ok in zip(tensors, finite.tolist()) if not ok]
        raise FloatingPointError(
            f"after step {step} the weights hold NaN or inf ({', '.join(bad[:3])}): no "
            f"checkpoint was written; {last_good_note(out_dir)}"
        )


def last_good_checkpoint(out_dir) -> Path | None:
    """The newest checkpoint under ``out_dir`` (up to the one ``latest`` names) that verifies
    and whose weights are all finite; None if there is none."""
    from safetensors.torch import load_file

    if out_dir is None:
        return None
    root = Path(out_dir) / "checkpoints"
    folders = _step_folders(root)
    with contextlib.suppress(OSError, CheckpointError):
        newest = checkpoint_step(read_latest(root / "latest"))
        folders = [p for p in folders if checkpoint_step(p) <= newest]
    for folder in reversed(folders):
        try:
            verify_checkpoint(folder)
            tensors = load_file(folder / "model.safetensors")
        except Exception:  # damaged or incomplete: look at the one before
            continue
        if all(t.isfinite().all() for t in tensors.values() if t.is_floating_point()):
            return folder
    return None


def last_good_note(out_dir) -> str:
    """Where to go back to, for an error message: the last good checkpoint, or why none."""
    if out_dir is None:
        return "no checkpoints are kept (out_dir=None)"
    folder = last_good_checkpoint(out_dir)
    if folder is None:
        return f"{str(out_dir)!r} holds no checkpoint with finite weights"
    return f"the last good checkpoint is {folder}"


# ----------------------------------------------------------------------------- one owner

_HELD: dict[str, list] = {}  # real path of a locked folder -> [file descriptor, claims]


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            owner = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:  # Windows: the locked byte cannot be read
            owner = ""
        os.close(fd)
        who = f" (pid {owner})" if owner.isdigit() else ""
        raise RunFolderBusyError(
            f"{str(path.parent)!r} is in use by another training process{who}: one trainer per "
            "folder. Wait for it to finish, stop it, or choose another folder"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return fd


def _release(key: str) -> None:
    entry = _HELD[key]
    entry[1] -= 1
    if entry[1] == 0:
        del _HELD[key]
        os.close(entry[0])  # closing the descriptor drops the lock


class lock_run_folder:  # noqa: N801 (used like a function: with lock_run_folder(out): ...)
    """Hold the lock of run folder ``folder`` (created if needed) from now until ``release()``
    or the end of a ``with`` block (or until the object is garbage-collected, or the process
    dies). Raises :class:`RunFolderBusyError` if another process holds it; this process may
    take it again (nested claims count)."""

    def __init__(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(folder)
        if key not in _HELD:
            _HELD[key] = [_lock(folder / LOCK_FILE), 0]
        _HELD[key][1] += 1
        self._release = weakref.finalize(self, _release, key)

    def release(self) -> None:
        self._release()  # runs once, however often it is called

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_out_dir(config, resume: bool, is_main: bool = True):
    """Make ``config.out_dir`` this run's, before the model is touched; returns the lock (a
    context manager: ``with`` it around the loop). The main process locks the folder and
    removes stray temporary files. Every process checks: a fresh run (``resume=False``) is
    refused where complete checkpoints are (another run's, or this run's: resume it, or use an
    empty folder); a resume needs a verified newest checkpoint whose settings allow ``config``
    (``check_resume_config``) and whose step is at most ``config.max_steps``."""
    if config.out_dir is None:
        return contextlib.nullcontext()
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir {str(out)!r} is a file; give a folder for the run")
    lock = lock_run_folder(out) if is_main else None
    try:
        if is_main:
            remove_stray_temporaries(out)
        root = out / "checkpoints"
        if resume:
            _check_resumable(root, config)
        elif _has_checkpoints(root):
            raise FileExistsError(
                f"out_dir {str(out)!r} already holds checkpoints of a run; pass resume=True to "
                "continue it, or give an empty (or new) folder: a fresh run never mixes its "
                "checkpoints with another run's"
            )
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock if lock is not None else contextlib.nullcontext()


def _check_resumable(root: Path, config) -> None:
    if not (root / "latest").exists():
        raise FileNotFoundError(
            f"no checkpoint to resume from in {str(config.out_dir)!r} ({root / 'latest'} not "
            "found); train with resume=False to start from step 0"
        )
    folder = read_latest(root / "latest")
    state = read_state(folder)
    check_resume_config(state["config"], config, str(folder))
    if state["step"] > config.max_steps:
        raise ValueError(
            f"max_steps={config.max_steps} is below the {state['step']} steps already done "
            f"(checkpoint {folder}); give max_steps >= {state['step']}"
        )
