# Generated from chapters/08_training.ipynb by tools/export.py; do not edit, edit the chapter.

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # tqdm.write: print a line without breaking the progress bar

from llmbook.checks import check_int, check_token_ids
from llmbook.checks.training import check_train_args, check_train_config
from llmbook.data import encode_text
from llmbook.io.files import atomic_write
from llmbook.io.progress import progress_bar
from llmbook.io.runs import (
    catch_sigint,
    check_finite_weights,
    claim_out_dir,
    last_good_note,
    load_weights,
    new_history,
    prune_checkpoints,
    read_latest,
    record,
    rng_states,
    set_rng_states,
    unique_tensors,
    verify_checkpoint,
    write_checksums,
)
from llmbook.model import default_device


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log softmax(logits)[target]`` over all positions (the teaching version).

    ``logits`` is ``(N, V)`` or ``(B, T, V)``; ``targets`` holds ids, ``(N,)`` or ``(B, T)``.
    ``log sum_v exp(z_v)`` is computed as ``m + log sum_v exp(z_v - m)`` with ``m = max_v z_v``,
    so no exponential can overflow.
    """
    logits = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
    targets = targets.reshape(-1)  # (B*T,)
    m = logits.max(dim=-1, keepdim=True).values  # (B*T, 1)
    log_z = (m + (logits - m).exp().sum(dim=-1, keepdim=True).log()).squeeze(-1)  # (B*T,)
    return (log_z - logits.gather(1, targets[:, None]).squeeze(1)).mean()


class AdamW(torch.optim.Optimizer):
    """AdamW written from its update rule (Loshchilov and Hutter, 2019); the teaching version.

    For each parameter ``p`` with gradient ``g``, at step ``t``: decay the weight, then move it
    along the bias-corrected running mean of the gradient divided by its running RMS.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v, g = state["t"], state["m"], state["v"], p.grad
                p.mul_(1 - lr * group["weight_decay"])  # decoupled weight decay
                m.mul_(beta1).add_(g, alpha=1 - beta1)  # m = b1 m + (1 - b1) g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v = b2 v + (1 - b2) g^2
                m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)  # bias correction
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer groups: matrices (``dim >= 2``: linear weights, embedding tables) decay;
    vectors (norm gains, biases) do not."""
    params = [p for p in model.parameters() if p.requires_grad]  # tied weights counted once
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def lr_schedule(step: int, *, lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Learning rate at ``step`` (counted from 0): linear warm-up to ``lr`` over
    ``warmup_steps``, then half a cosine down to ``min_lr`` at ``max_steps``, then ``min_lr``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    """Scale all gradients together so that their joint L2 norm is at most ``max_norm``; return
    the norm before clipping (the teaching version of ``torch.nn.utils.clip_grad_norm_``)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.stack([g.norm() for g in grads]).norm()  # sqrt of the sum of all squares
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # 1 when already small enough
    for g in grads:
        g.mul_(scale)
    return total


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for ``(seed, step)``, both folded into the 32 bits torch keeps."""
    return torch.Generator().manual_seed((seed * 0x9E3779B1 + step) % 2**32)


def batch_starts(
    n_tokens: int, context_length: int, batch_size: int, seed: int, step: int, windows="random"
):
    """Start offsets ``(batch_size,)`` of the windows of one step: a function of ``(seed,
    step)`` alone, so a resumed run draws exactly the batches it would have drawn. ``windows``:
    ``"random"`` (anywhere) or ``"once"`` (the non-overlapping windows, each once per pass)."""
    if windows == "random":
        generator = step_generator(seed, step)
        return torch.randint(0, n_tokens - context_length, (batch_size,), generator=generator)
    n_windows = (n_tokens - 1) // context_length  # a window needs T + 1 ids (inputs, targets)
    slots = torch.arange(step * batch_size, (step + 1) * batch_size)  # places in the reading
    passes = slots // n_windows  # a batch may straddle the end of one pass and the next
    starts = torch.empty(batch_size, dtype=torch.long)
    for p in passes.unique().tolist():
        order = torch.randperm(n_windows, generator=step_generator(seed, 2**31 + p))  # pass p
        here = passes == p
        starts[here] = order[slots[here] % n_windows] * context_length
    return starts


def get_batch(data, starts: torch.Tensor, context_length: int):
    """Inputs and targets ``(B, T)`` (targets shifted by one) from the windows of a 1-D id
    sequence (tensor or numpy array, e.g. a memory-mapped token file) starting at ``starts``."""
    index = starts[:, None] + torch.arange(context_length + 1)  # (B, T + 1)
    if isinstance(data, torch.Tensor):
        windows = data[index].long()
    else:
        windows = torch.from_numpy(np.asarray(data[index.numpy()], dtype=np.int64))
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def evaluate(model, data, *, context_length, batch_size=8, n_batches=10, seed=0) -> float:
    """Mean loss of ``model`` over ``n_batches`` random windows of ``data``: the same windows on
    every call (fixed ``seed``), so the numbers of one run are comparable over time."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    losses = []
    for i in range(n_batches):
        starts = batch_starts(len(data), context_length, batch_size, seed, i)
        x, y = get_batch(data, starts, context_length)
        losses.append(model(x.to(device), y.to(device))[1].float())
    model.train(was_training)
    return torch.stack(losses).mean().item()


@dataclass
class TrainConfig:
    """Everything that decides a training run (validated on construction)."""

    max_steps: int = 1000  # optimizer steps
    batch_size: int = 16  # sequences per optimizer step, over all processes and micro-steps
    context_length: int = 128  # tokens per sequence
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3  # peak learning rate, reached after the warm-up
    min_lr: float = 1e-4  # learning rate at the end of the cosine decay
    warmup_steps: int = 50
    weight_decay: float = 0.1  # on matrices only (param_groups)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # maximum gradient norm; 0 turns clipping off
    eval_interval: int = 100  # steps between evaluations (and checkpoints)
    eval_batches: int = 10  # batches per evaluation
    out_dir: str | None = None  # where checkpoints go; None keeps nothing on disk
    keep_checkpoints: int = 2  # newest checkpoints kept in out_dir
    seed: int = 0  # data order and dropout
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    precision: str = "auto"  # "float32", "bfloat16" (autocast); "auto": bfloat16 on CUDA only
    compile: bool = False  # torch.compile the model (worth it on a GPU)
    sample_tokens: int = 32  # tokens sampled (greedy) at each evaluation when a tokenizer is given
    windows: str = "random"  # "random" windows, or "once": each window of the text once per pass

    def __post_init__(self):
        check_train_config(self)


@dataclass
class Run:
    """Where and how this process trains: device, autocast dtype, its place among processes.
    This base class is the single-process case; ``DistributedRun`` (section 14) adds DDP."""

    device: torch.device
    dtype: torch.dtype | None = None  # autocast dtype; None for plain float32
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def wrap(self, model: nn.Module, config) -> nn.Module:
        return torch.compile(model) if config.compile else model

    def progress_bar(self, start: int, max_steps: int, progress: bool):
        """tqdm.auto: a widget in Jupyter, a line on stderr in a terminal; main process only
        (``llmbook.io.progress.progress_bar`` also honours TQDM_DISABLE=1 in Jupyter)."""
        show = progress and self.is_main
        return progress_bar(range(start, max_steps), enabled=show, initial=start, total=max_steps)

    def no_sync(self, model, last: bool):
        return contextlib.nullcontext()  # one process: nothing to synchronise

    def reduce(self, loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
        return loss.item(), stop

    def gather_rng_states(self) -> list[dict]:
        return [rng_states()]  # one per process, in rank order: what a checkpoint keeps

    def close(self) -> None:
        pass


def start_run(config: TrainConfig) -> Run:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), join the process group, and
    pick the device and the autocast dtype."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(config.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    precision = config.precision
    if precision == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bfloat16" if bf16 else "float32"
    dtype = torch.bfloat16 if precision == "bfloat16" else None
    if world_size == 1:
        return Run(device, dtype)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedRun(device, dtype, rank, world_size)


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: chapter 7's ``default_device()`` (CUDA, then MPS, then CPU); else ``name``."""
    return default_device() if name == "auto" else torch.device(name)


def train_step(model, optimizer, data, step: int, config: TrainConfig, run):
    """One optimizer step on the global batch of ``step``: this process takes its share of the
    windows, in ``grad_accum_steps`` micro-batches. Returns 0-d tensors ``(mean loss, gradient
    norm before clipping)``."""
    accum, T = config.grad_accum_steps, config.context_length
    starts = batch_starts(len(data), T, config.batch_size, config.seed, step, config.windows)
    share = config.batch_size // run.world_size  # this process's windows
    starts = starts[run.rank * share : (run.rank + 1) * share]
    micro = share // accum
    total = torch.zeros((), device=run.device)
    for i in range(accum):
        x, y = get_batch(data, starts[i * micro : (i + 1) * micro], T)
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        last = i == accum - 1  # DDP averages gradients over processes on the last micro-step
        with run.no_sync(model, last), run.autocast():
            _, loss = model(x, y)
        (loss / accum).backward()
        total += loss.detach().float() / accum
    max_norm = config.grad_clip if config.grad_clip > 0 else math.inf  # inf: measure, no clip
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, grad_norm


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device):
    """torch's AdamW with the two weight-decay groups; fused on CUDA and CPU: the whole update of
    a tensor in one pass (batched across tensors on CUDA)."""
    groups = param_groups(model, config.weight_decay)
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused)


def set_lr(optimizer, step: int, config: TrainConfig) -> float:
    lr = lr_schedule(
        step,
        lr=config.lr,
        min_lr=config.min_lr,
        warmup_steps=config.warmup_steps,
        max_steps=config.max_steps,
    )
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def train(model, train_data, val_data, config: TrainConfig, *, tokenizer=None, prompt="\n",
          resume: bool = False, callback=None, progress: bool = True) -> dict:  # fmt: skip
    """Train ``model`` (``model(ids, targets) -> (logits, loss)``) on 1-D id sequences; return
    the history. ``resume=True`` continues from the newest checkpoint in ``config.out_dir``."""
    data = check_train_args(model, train_data, val_data, config, resume)  # (train, val)
    run = start_run(config)
    owner = claim_out_dir(config, resume, run.is_main)  # one trainer per out_dir; checks
    raw = model.to(run.device)
    optimizer = make_optimizer(raw, config, run.device)
    torch.manual_seed(config.seed + run.rank)  # dropout; the data order has its own seed
    start, history = 0, new_history()
    if resume:  # weights, optimizer, this process's RNG state, step and history
        start, history = resume_from(config.out_dir, raw, optimizer, run.device, run.rank)
    model = run.wrap(raw, config)
    with owner, catch_sigint() as stop, run.progress_bar(start, config.max_steps, progress) as bar:
        for step in bar:
            lr = set_lr(optimizer, step, config)
            t0 = time.perf_counter()
            loss, grad_norm = train_step(model, optimizer, data[0], step, config, run)
            loss, stopping = run.reduce(loss, stop.requested)  # the mean over processes
            check_finite(loss, step, config)
            seconds = time.perf_counter() - t0
            log_step(bar, history, config, step, loss, lr, seconds, grad_norm.item())
            done = step + 1
            if done % config.eval_interval == 0 or done == config.max_steps or stopping:
                eval_and_save(raw, optimizer, data, config, run, history, done, (tokenizer, prompt))
            if callback is not None:
                callback(done, history)
            if stopping:
                history["interrupted"] = True
                tqdm.write(f"interrupted after step {done}")
                break
    run.close()
    return history


def log_step(bar, history: dict, config, step, loss, lr, seconds, grad_norm):
    """Append the step to the history; show loss, learning rate and tokens/s on the bar."""
    tokens_per_s = config.batch_size * config.context_length / seconds
    # grad_norm: measured before clipping, on the averaged gradients (the same on every process)
    record(history, step=step, loss=loss, lr=lr, tokens_per_s=tokens_per_s, grad_norm=grad_norm)
    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}", tok_s=round(tokens_per_s), refresh=False)


def check_finite(loss: float, step: int, config: TrainConfig) -> None:
    if not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss} at step {step}; {last_good_note(config.out_dir)}")


def eval_and_save(model, optimizer, data, config, run, history, done, sampler):
    """Evaluate on both splits ``data = (train, val)``, print a sample (``sampler = (tokenizer,
    prompt)``), and (main process only) write a checkpoint."""
    (train_data, val_data), (tokenizer, prompt) = data, sampler
    kwargs = dict(
        context_length=config.context_length,
        batch_size=config.batch_size,
        n_batches=config.eval_batches,
    )
    with run.autocast():
        train_loss = evaluate(model, train_data, **kwargs)
        val_loss = evaluate(model, val_data, **kwargs)
    record(history, eval_step=done, train_loss=train_loss, val_loss=val_loss)
    if tokenizer is not None and config.sample_tokens > 0 and run.is_main:
        ids = torch.tensor([encode_text(tokenizer, prompt)], device=run.device)
        sample = tokenizer.decode(greedy(model, ids, config.sample_tokens, config.context_length))
        history["samples"].append((done, sample))
        tqdm.write(f"step {done}: val loss {val_loss:.3f} | {sample!r}")
    if config.out_dir is not None:
        rng_per_rank = run.gather_rng_states()  # every process takes part; rank 0 writes
        if run.is_main:
            rotate_checkpoints(config, model, optimizer, done, history, rng_per_rank)


@torch.no_grad()
def greedy(model, ids: torch.Tensor, n_tokens: int, context_length: int) -> list[int]:
    """Continue ``ids`` ``(1, T)`` by ``n_tokens`` most likely tokens; return the new ids."""
    was_training = model.training
    model.eval()
    start = ids.shape[1]
    for _ in range(n_tokens):
        logits = model(ids[:, -context_length:])  # (1, T, V)
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    model.train(was_training)
    return ids[0, start:].tolist()


@torch.no_grad()
def whole_text_loss(model, ids: torch.Tensor, batch_size: int = 16) -> float:
    """Mean next-token loss over every whole window of ``context_length`` tokens of ``ids``
    (the tail shorter than a window is left out): the whole text, not a few random batches."""
    W = model.config.context_length
    n = (len(ids) - 1) // W  # whole windows
    xs, ys = ids[: n * W].view(n, W), ids[1 : n * W + 1].view(n, W)  # (n, W) each
    total = sum(model(x, y)[1].item() * len(x)
                for x, y in zip(xs.split(batch_size), ys.split(batch_size)))  # fmt: skip
    return total / n


@torch.no_grad()
def strided_loss(model, ids, stride: int, batch_size: int = 16) -> float:
    """Mean next-token loss over all of ``ids`` (every token but the first, each scored once)
    with windows of ``context_length`` that move by ``stride``: the first window scores all its
    positions, each later one only the targets not scored yet (its last ``stride``), which see at
    least ``context_length - stride + 1`` tokens before them. Costs ``context_length / stride``
    times the non-overlapping score."""
    W, device = model.config.context_length, next(model.parameters()).device
    ids = check_token_ids(ids, "ids")  # (N,): a tensor, or a (memory-mapped) NumPy array
    check_int(batch_size, "batch_size")
    if check_int(stride, "stride") > W:
        raise ValueError(f"stride must be an int in 1..{W} (context_length), got {stride}")
    if len(ids) <= W:
        raise ValueError(f"ids must hold more than context_length = {W} tokens, got {len(ids)}")
    n = len(ids) - 1  # targets: ids[1:]
    ends = torch.tensor([*range(W, n, stride), n])  # a window's targets: ids[end - W + 1 : end + 1]
    was_training, total, done = model.training, 0.0, 0
    model.eval()
    for chunk in ends.split(batch_size):
        x, y = get_batch(ids, chunk - W, W)  # (b, W) each
        logits = model(x.to(device))  # (b, W, V)
        losses = F.cross_entropy(logits.transpose(1, 2).float(), y.to(device), reduction="none")
        for row, end in zip(losses, chunk.tolist()):  # row: (W,)
            total, done = total + row[W - (end - done) :].double().sum().item(), end
    model.train(was_training)
    return total / n


def save_checkpoint(folder, model: nn.Module, optimizer=None, **state) -> Path:
    """Write ``folder/model.safetensors`` (the weights) and ``folder/state.pt`` (optimizer,
    step, RNG states, ... everything ``torch.load(weights_only=True)`` can read back)."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "model.safetensors") as f:
        f.write(save(unique_tensors(model.state_dict())))
    state["optimizer"] = None if optimizer is None else optimizer.state_dict()
    state["rng"] = rng_states()
    with atomic_write(folder / "state.pt") as f:
        torch.save(state, f)
    write_checksums(folder)  # sha256.json, last: load_checkpoint verifies both files
    return folder


def load_checkpoint(folder, model: nn.Module, optimizer=None, map_location="cpu") -> dict:
    """Load the weights into ``model`` (and ``optimizer``'s state) from a folder written by
    ``save_checkpoint``; return the rest of the state (step, history, config, rng, ...)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    verify_checkpoint(folder)  # complete, and matching sha256.json (llmbook.io.runs)
    load_weights(model, load_file(folder / "model.safetensors"))
    state = torch.load(folder / "state.pt", map_location=map_location, weights_only=True)
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state


def rotate_checkpoints(config, model, optimizer, step, history, rng_per_rank=None) -> Path:
    """Save ``out_dir/checkpoints/step_NNNNNNN``, then point ``latest`` at it, then delete all
    but the newest ``keep_checkpoints``. A kill at any moment leaves ``latest`` naming a whole
    checkpoint: it is rewritten (atomically) only after the new folder is complete."""
    root = Path(config.out_dir) / "checkpoints"
    check_finite_weights(model, step, config.out_dir)  # NaN weights are never saved
    folder = save_checkpoint(
        root / f"step_{step:07d}",
        model,
        optimizer,
        step=step,
        history=history,
        config=dataclasses.asdict(config),
        rng_per_rank=rng_per_rank,
    )
    with atomic_write(root / "latest", "w", encoding="utf-8") as f:
        f.write(folder.name)
    prune_checkpoints(root, config.keep_checkpoints, folder)  # by step; never the new one
    return folder


def latest_checkpoint(out_dir) -> Path | None:
    """The newest complete checkpoint folder under ``out_dir`` (the one ``latest`` names, checked
    to exist), or None."""
    latest = None if out_dir is None else Path(out_dir) / "checkpoints" / "latest"
    return read_latest(latest) if latest is not None and latest.exists() else None


def resume_from(out_dir, model, optimizer, device, rank: int = 0) -> tuple[int, dict]:
    """Restore weights, optimizer and process ``rank``'s RNG state from the newest checkpoint;
    return ``(steps done, history)``."""
    folder = latest_checkpoint(out_dir)
    if folder is None:
        raise FileNotFoundError(f"no checkpoint to resume from in {str(out_dir)!r}")
    state = load_checkpoint(folder, model, optimizer, map_location=device)
    per_rank = state.get("rng_per_rank") or [state["rng"]]
    if rank < len(per_rank):  # else a new process: it keeps its fresh seed (seed + rank)
        set_rng_states(per_rank[rank])
    return state["step"], new_history(state["history"])  # new_history: lists added since, empty


class DistributedRun(Run):
    """One of ``world_size`` processes started by ``torchrun``: DDP averages the gradients."""

    def wrap(self, model: nn.Module, config) -> nn.Module:
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(super().wrap(model, config), device_ids=ids)

    def no_sync(self, model, last: bool):
        """DDP's ``no_sync`` on all but the last micro-step: gradients are averaged once."""
        return contextlib.nullcontext() if last else model.no_sync()

    def reduce(self, loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
        """Mean loss over processes, and whether any process was asked to stop."""
        both = torch.stack([loss, torch.tensor(float(stop), device=loss.device)])
        torch.distributed.all_reduce(both)
        return both[0].item() / self.world_size, both[1].item() > 0

    def gather_rng_states(self) -> list[dict]:
        """Every process's random state (its own dropout masks), collected on each process."""
        states = [None] * self.world_size
        torch.distributed.all_gather_object(states, rng_states())
        return states

    def close(self) -> None:
        torch.distributed.destroy_process_group()


__all__ = [
    "cross_entropy",
    "AdamW",
    "param_groups",
    "lr_schedule",
    "clip_grad_norm",
    "step_generator",
    "batch_starts",
    "get_batch",
    "evaluate",
    "TrainConfig",
    "Run",
    "start_run",
    "pick_device",
    "train_step",
    "make_optimizer",
    "set_lr",
    "train",
    "log_step",
    "check_finite",
    "eval_and_save",
    "greedy",
    "whole_text_loss",
    "strided_loss",
    "save_checkpoint",
    "load_checkpoint",
    "rotate_checkpoints",
    "latest_checkpoint",
    "resume_from",
    "DistributedRun",
]
