"""Issue 19: the trainer and its checkpoints under bad input, faults and concurrency.

One table row per case (``pytest.param(..., id=...)``), each asserting the error type and that
the message names the argument or file and what is allowed; the kill, two-writer, double Ctrl-C
and truncated-token-file cases run real processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_lm import TinyLM
from torch import nn

from llmbook.io.runs import (
    CheckpointError,
    last_good_checkpoint,
    last_good_note,
    lock_run_folder,
    prune_checkpoints,
    write_checksums,
)
from llmbook.io.tokenfile import TokenFile, write_token_file
from llmbook.training import (
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    train,
)

TINY_LM = (Path(__file__).parent / "tiny_lm.py").read_text()
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1"}


def tiny_data(n=2000, vocab=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(n) % 7 * 5 + torch.randint(0, 3, (n,), generator=g)) % vocab


def config(**overrides):
    values = dict(max_steps=4, batch_size=8, context_length=16, eval_interval=2, eval_batches=1,
                  warmup_steps=2, lr=1e-2, min_lr=1e-3, device="cpu", sample_tokens=0)  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


def fit(out, resume=False, model=None, callback=None, **overrides):
    data = tiny_data()
    model = TinyLM() if model is None else model
    cfg = config(out_dir=None if out is None else str(out), **overrides)
    return train(model, data[:1600], data[1600:], cfg, resume=resume, progress=False,
                 callback=callback)  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 4-step run with checkpoints at steps 2 and 4 (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("run") / "run"
    fit(out)
    return out


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ TrainConfig


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        pytest.param(
            dict(compile="no"), TypeError, "compile must be True or False", id="compile-str"
        ),
        pytest.param(dict(compile=1), TypeError, "compile must be True or False", id="compile-int"),
        pytest.param(
            dict(lr=float("inf")),
            ValueError,
            "lr must be a number >= 0 and finite, got inf",
            id="lr-inf",
        ),
        pytest.param(dict(lr="big"), TypeError, "lr must be a float, got str", id="lr-str"),
        pytest.param(
            dict(min_lr=float("nan")),
            ValueError,
            "min_lr must be a number >= 0 and finite",
            id="min-lr-nan",
        ),
        pytest.param(
            dict(weight_decay=float("inf")),
            ValueError,
            "weight_decay must be a number >= 0 and finite",
            id="decay-inf",
        ),
        pytest.param(
            dict(grad_clip=float("inf")),
            ValueError,
            "grad_clip must be a number >= 0 and finite",
            id="clip-inf",
        ),
        pytest.param(
            dict(seed=2**64), ValueError, r"seed must be below 2\*\*32", id="seed-64-bits"
        ),
        pytest.param(
            dict(seed=2**32), ValueError, r"seed must be below 2\*\*32", id="seed-32-bits"
        ),
        pytest.param(dict(seed=-1), ValueError, "seed must be >= 0", id="seed-negative"),
        pytest.param(dict(seed=1.5), TypeError, "seed must be an int", id="seed-float"),
        pytest.param(
            dict(max_steps=2**32),
            ValueError,
            r"max_steps must be below 2\*\*32",
            id="steps-32-bits",
        ),
        pytest.param(
            dict(betas="ab"),
            TypeError,
            r"betas must be a pair of floats in \[0, 1\)",
            id="betas-str",
        ),
        pytest.param(
            dict(betas=(0.9, 0.9, 0.9)),
            TypeError,
            "betas must be a pair of floats",
            id="betas-three",
        ),
        pytest.param(
            dict(betas=(True, 0.9)), TypeError, "betas must be a pair of floats", id="betas-bool"
        ),
        pytest.param(
            dict(betas=0.9), TypeError, "betas must be a pair of floats", id="betas-number"
        ),
        pytest.param(
            dict(betas=(0.9, -0.1)),
            ValueError,
            r"betas must be two numbers in \[0, 1\)",
            id="betas-negative",
        ),
        pytest.param(
            dict(out_dir=123),
            TypeError,
            "out_dir must be None or a folder path .*got int",
            id="out-dir-int",
        ),
        pytest.param(
            dict(out_dir=b"runs"),
            TypeError,
            "out_dir must be None or a folder path",
            id="out-dir-bytes",
        ),
        pytest.param(
            dict(keep_checkpoints=0), ValueError, "keep_checkpoints must be >= 1", id="keep-zero"
        ),
    ],
)
def test_bad_config(overrides, error, message):
    with pytest.raises(error, match=message):
        config(**overrides)


def test_a_config_edited_after_construction_is_checked_again():
    cfg = config()
    cfg.compile = "yes"
    with pytest.raises(TypeError, match="compile must be True or False"):
        train(TinyLM(), tiny_data()[:1600], tiny_data()[1600:], cfg, progress=False)


# ------------------------------------------------------------------ train()'s arguments


class NoParameters(nn.Module):
    def forward(self, ids, targets=None):
        return ids.float(), ids.float().mean()


def decoder_lm():
    from llmbook.model import DecoderLM, ModelConfig

    return DecoderLM(ModelConfig.from_preset("stories-tiny", context_length=16, vocab_size=64))


FLOATS = torch.tensor([1.0, 2.7] * 800)


@pytest.mark.parametrize(
    "change, error, message",
    [
        pytest.param(
            dict(model="model"),
            TypeError,
            "model must be a torch.nn.Module .*DecoderLM; got str",
            id="model-str",
        ),
        pytest.param(
            dict(
                model=lambda: __import__("llmbook.model").model.ModelConfig.from_preset(
                    "stories-tiny"
                )
            ),
            TypeError,
            "got ModelConfig",
            id="model-config",
        ),
        pytest.param(
            dict(model=lambda: nn.Linear(4, 4)),
            TypeError,
            r"model must take \(ids, targets\).*Linear.forward.*does not take two",
            id="model-linear",
        ),
        pytest.param(
            dict(model=NoParameters),
            ValueError,
            "model .NoParameters. has no trainable parameters",
            id="model-no-parameters",
        ),
        pytest.param(dict(resume="no"), TypeError, "resume must be True or False", id="resume-str"),
        pytest.param(
            dict(train_data=FLOATS),
            TypeError,
            "train_data must hold integers, got a tensor of dtype torch.float32",
            id="ids-float32",
        ),
        pytest.param(
            dict(train_data=FLOATS.double()),
            TypeError,
            "train_data must hold integers, got a tensor of dtype torch.float64",
            id="ids-float64",
        ),
        pytest.param(
            dict(train_data=torch.ones(1600, dtype=torch.bool)),
            TypeError,
            "train_data must hold integers, got a tensor of dtype torch.bool",
            id="ids-bool",
        ),
        pytest.param(
            dict(train_data=FLOATS.numpy()),
            TypeError,
            "train_data must hold integers, got an array of dtype float32",
            id="ids-numpy-float",
        ),
        pytest.param(
            dict(train_data=np.ones(1600, dtype=bool)),
            TypeError,
            "train_data must hold integers, got an array of dtype bool",
            id="ids-numpy-bool",
        ),
        pytest.param(
            dict(train_data=[1.0, 2.0] * 800),
            TypeError,
            r"train_data must hold ints, got float \(1.0\)",
            id="ids-list-float",
        ),
        pytest.param(
            dict(train_data=[True, 2] * 800),
            TypeError,
            r"train_data must hold ints, got bool \(True\)",
            id="ids-list-bool",
        ),
        pytest.param(
            dict(val_data=["a", "b"] * 100),
            TypeError,
            "val_data must hold ints, got str",
            id="ids-list-str",
        ),
        pytest.param(
            dict(train_data=torch.arange(-5, 1600)),
            ValueError,
            "train_data must be in 0..",
            id="ids-negative",
        ),
        pytest.param(
            dict(val_data=torch.arange(10)),
            ValueError,
            "val_data must be 1-D with more than context_length=16",
            id="val-short",
        ),
        pytest.param(
            dict(model=decoder_lm, train_data=torch.arange(1600)),
            ValueError,
            r"train_data holds id 1599, but the model's vocab_size is 64: ids must be in 0..63",
            id="ids-beyond-vocab",
        ),
        pytest.param(
            dict(device="gpu"),
            ValueError,
            "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'",
            id="device-garbage",
        ),
        pytest.param(
            dict(device="cuda:7"),
            ValueError,
            "device 'cuda:7' is not available on this machine; available: auto, cpu",
            id="device-missing",
            marks=pytest.mark.skipif(torch.cuda.device_count() > 7, reason="has 8 GPUs"),
        ),
    ],
)
def test_bad_train_arguments(change, error, message):
    model = change.pop("model", TinyLM)
    model = model() if callable(model) else model
    resume = change.pop("resume", False)
    data = {"train_data": tiny_data()[:1600], "val_data": tiny_data()[1600:]}
    data.update({k: change.pop(k) for k in list(change) if k in data})
    with pytest.raises(error, match=message):
        train(model, data["train_data"], data["val_data"], config(**change), resume=resume,
              progress=False)  # fmt: skip


@pytest.mark.parametrize(
    "as_given",
    [
        pytest.param(lambda ids: ids.to(torch.uint8), id="tensor-uint8"),
        pytest.param(lambda ids: ids.numpy().astype(np.uint8), id="numpy-uint8"),
        pytest.param(lambda ids: ids.to(torch.int32), id="tensor-int32"),
        pytest.param(lambda ids: ids.tolist(), id="list"),
    ],
)
def test_integer_ids_of_any_width_train_alike(as_given):
    data = tiny_data()
    torch.manual_seed(0)
    got = train(TinyLM(), as_given(data[:1600]), as_given(data[1600:]), config(), progress=False)
    torch.manual_seed(0)
    expected = train(TinyLM(), data[:1600], data[1600:], config(), progress=False)
    assert got["loss"] == expected["loss"] and len(got["loss"]) == 4  # as with int64 ids


# ------------------------------------------------------------------ the folder of a run


def test_a_fresh_run_is_refused_where_checkpoints_are(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("step_*/*")}
    with pytest.raises(
        FileExistsError, match="already holds checkpoints of a run; pass resume=True"
    ):
        fit(out, max_steps=2)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("step_*/*")}
    assert before == after and latest_checkpoint(out).name == "step_0000004"


def test_resuming_before_later_checkpoints_never_loses_the_new_one(finished_run, tmp_path):
    """An older run's later checkpoints (step 4 here) after a resume from step 2: clean-up keeps
    the checkpoint just written, and `latest` always names a folder that exists."""
    out = copy_run(finished_run, tmp_path / "run")
    (out / "checkpoints" / "latest").write_text("step_0000002")
    seen = []

    def watch(done, history):
        latest = latest_checkpoint(out)
        seen.append((done, latest.name, latest.is_dir()))

    fit(out, resume=True, callback=watch, keep_checkpoints=1, eval_interval=1)
    assert seen == [(3, "step_0000003", True), (4, "step_0000004", True)]
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_0000004"]


def test_clean_up_orders_checkpoints_by_step_not_by_name(tmp_path):
    for step in (9_999_998, 9_999_999, 10_000_000, 10_000_001):
        (tmp_path / f"step_{step:07d}").mkdir()
    prune_checkpoints(tmp_path, 2, tmp_path / "step_10000000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_10000000", "step_9999999"]


def test_a_folder_without_checkpoints_resumes_from_step_0_or_restarts(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints" / "step_0000002").mkdir(parents=True)  # killed during the first save
    (out / "checkpoints" / "step_0000002" / "model.safetensors").write_bytes(b"partial")
    with pytest.raises(
        FileNotFoundError, match="no checkpoint to resume from .*resume=False to start from step 0"
    ):
        fit(out, resume=True)
    history = fit(out)  # a fresh start is allowed: the folder holds no complete checkpoint
    assert history["step"] == [0, 1, 2, 3] and latest_checkpoint(out).name == "step_0000004"
    load_checkpoint(latest_checkpoint(out), TinyLM())


def test_stray_temporary_files_are_removed_on_the_next_start(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    stray = [out / "checkpoints" / ".latest.k1ll3d.tmp",
             out / "checkpoints" / "step_0000004" / ".state.pt.abc123.tmp",
             out / ".run.json.x9.tmp"]  # fmt: skip
    for path in stray:
        path.write_bytes(b"left by a kill")
    keep = out / "checkpoints" / "notes.tmp"  # not a temporary of atomic_write: left alone
    keep.write_text("mine")
    fit(out, resume=True, max_steps=6)
    assert not any(p.exists() for p in stray) and keep.exists()


# ------------------------------------------------------------------ resuming with other settings


@pytest.mark.parametrize(
    "overrides, message",
    [
        pytest.param(dict(seed=1), r"resume=True cannot change seed=1 \(the run's: 0\)", id="seed"),
        pytest.param(
            dict(batch_size=4), r"cannot change batch_size=4 \(the run's: 8\)", id="batch-size"
        ),
        pytest.param(dict(lr=2e-2), r"cannot change lr=0.02 \(the run's: 0.01\)", id="lr"),
        pytest.param(dict(min_lr=1e-4), "cannot change min_lr=0.0001", id="min-lr"),
        pytest.param(dict(warmup_steps=1), "cannot change warmup_steps=1", id="warmup"),
        pytest.param(dict(weight_decay=0.0), "cannot change weight_decay=0.0", id="weight-decay"),
        pytest.param(dict(betas=(0.8, 0.9)), r"cannot change betas=\(0.8, 0.9\)", id="betas"),
        pytest.param(dict(grad_clip=0.5), "cannot change grad_clip=0.5", id="grad-clip"),
        pytest.param(dict(context_length=8), "cannot change context_length=8", id="context"),
        pytest.param(dict(seed=1, lr=2e-2), "cannot change lr=0.02 .*, seed=1", id="two-at-once"),
        pytest.param(
            dict(max_steps=2), "max_steps=2 is below the 4 steps already done", id="fewer-steps"
        ),
    ],
)
def test_resume_refuses_settings_that_decide_the_steps(finished_run, overrides, message):
    model = TinyLM()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=message) as info:
        fit(finished_run, resume=True, model=model, **overrides)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # untouched
    if "max_steps" not in overrides:
        assert "A resumed run may change max_steps, eval_interval" in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(max_steps=6), id="more-steps"),
        pytest.param(
            dict(max_steps=6, eval_interval=3, eval_batches=2, keep_checkpoints=3), id="reporting"
        ),
        pytest.param(dict(max_steps=6, grad_accum_steps=2, precision="float32"), id="how-computed"),
        pytest.param(dict(betas=[0.9, 0.95], max_steps=6), id="betas-as-list"),
        pytest.param(dict(), id="finished-nothing-to-do"),
    ],
)
def test_resume_may_change_how_long_and_how(finished_run, tmp_path, overrides):
    out = copy_run(finished_run, tmp_path / "run")
    history = fit(out, resume=True, **overrides)
    assert history["step"] == list(range(overrides.get("max_steps", 4)))


# ------------------------------------------------------------------ damaged checkpoints


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def cut(path, keep=0.5):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def edit_state(folder, change, rechecksum):
    state = torch.load(folder / "state.pt", weights_only=True)
    change(state)
    torch.save(state, folder / "state.pt")
    if rechecksum:
        write_checksums(folder)


def without(key):
    return lambda state: state.pop(key)


CK = "step_0000004"


@pytest.mark.parametrize(
    "damage, error, message",
    [
        pytest.param(
            lambda f: flip(f / "model.safetensors", -3),
            CheckpointError,
            r"model.safetensors' does not match its SHA-256 in sha256.json",
            id="weights-flipped-byte",
        ),
        pytest.param(
            lambda f: flip(f / "model.safetensors", 20),
            CheckpointError,
            r"model.safetensors' does not match its SHA-256",
            id="weights-flipped-header",
        ),
        pytest.param(
            lambda f: cut(f / "model.safetensors"),
            CheckpointError,
            r"model.safetensors' does not match .*truncated",
            id="weights-truncated",
        ),
        pytest.param(
            lambda f: (f / "model.safetensors").write_bytes(os.urandom(999)),
            CheckpointError,
            r"model.safetensors' does not match",
            id="weights-garbled",
        ),
        pytest.param(
            lambda f: cut(f / "state.pt"),
            CheckpointError,
            r"state.pt' does not match its SHA-256",
            id="state-truncated",
        ),
        pytest.param(
            lambda f: edit_state(f, without("step"), False),
            CheckpointError,
            r"state.pt' does not match .*edited",
            id="state-edited-missing-key",
        ),
        pytest.param(
            lambda f: edit_state(f, lambda s: s.update(step="4"), False),
            CheckpointError,
            r"state.pt' does not match",
            id="state-edited-wrong-type",
        ),
        pytest.param(
            lambda f: edit_state(f, without("step"), True),
            CheckpointError,
            r"state.pt': 'step' must be an int, got NoneType",
            id="state-rechecksummed-missing-key",
        ),
        pytest.param(
            lambda f: edit_state(f, lambda s: s.update(history=[]), True),
            CheckpointError,
            r"state.pt': 'history' must be a dict, got list",
            id="state-rechecksummed-wrong-type",
        ),
        pytest.param(
            lambda f: edit_state(f, lambda s: s["rng"].pop("torch"), True),
            CheckpointError,
            r"state.pt': rng\['torch'\] .* is missing",
            id="state-rechecksummed-no-rng",
        ),
        pytest.param(
            lambda f: (f / "state.pt").unlink(),
            CheckpointError,
            r"state.pt' is missing: the checkpoint is incomplete",
            id="state-missing",
        ),
        pytest.param(
            lambda f: (f / "sha256.json").unlink(),
            CheckpointError,
            r"sha256.json' is missing: the checkpoint is incomplete .* cannot be verified",
            id="checksums-missing",
        ),
        pytest.param(
            lambda f: (f / "sha256.json").write_text("{"),
            CheckpointError,
            r"sha256.json' is not valid JSON",
            id="checksums-garbled",
        ),
        pytest.param(
            lambda f: (f / "sha256.json").write_text("[]"),
            CheckpointError,
            r"sha256.json' must map model.safetensors and state.pt to SHA-256",
            id="checksums-wrong-type",
        ),
        pytest.param(
            lambda f: (f.parent / "latest").write_text(""),
            CheckpointError,
            r"latest' must hold the name of a checkpoint folder such as step_0000100, but holds ''",
            id="latest-empty",
        ),
        pytest.param(
            lambda f: (f.parent / "latest").write_text("../../etc"),
            CheckpointError,
            r"latest' must hold the name of a checkpoint folder",
            id="latest-garbage",
        ),
        pytest.param(
            lambda f: (f.parent / "latest").write_bytes(b"\xff\xfe"),
            CheckpointError,
            r"latest' must hold .*not UTF-8",
            id="latest-not-text",
        ),
        pytest.param(
            lambda f: (f.parent / "latest").write_text("step_0000099"),
            CheckpointError,
            r"latest' names step_0000099, which does not exist",
            id="latest-names-nothing",
        ),
    ],
)
def test_damaged_checkpoints_give_one_clear_error(finished_run, tmp_path, damage, error, message):
    out = copy_run(finished_run, tmp_path / "run")
    damage(out / "checkpoints" / CK)
    model = TinyLM()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(error, match=message):
        fit(out, resume=True, model=model, max_steps=6)  # checked before the model is touched
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    if "latest'" not in message and "state.pt':" not in message:  # the folder itself is damaged
        with pytest.raises(error, match=message):
            load_checkpoint(out / "checkpoints" / CK, TinyLM())


def test_load_checkpoint_of_a_folder_that_is_none(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="not a checkpoint folder written by save_checkpoint"
    ):
        load_checkpoint(tmp_path, TinyLM())


# ------------------------------------------------------------------ NaN


def test_nan_weights_are_never_saved(tmp_path):
    model = TinyLM()

    def poison_next_update(done, history):  # the loss of step 4 is finite, its update is not
        if done == 3:
            model.mix.weight.register_hook(lambda grad: grad * float("nan"))

    last_good = "no checkpoint was written; the last good checkpoint is .*step_0000002"
    with pytest.raises(
        FloatingPointError, match=rf"after step 4 the weights hold NaN .*{last_good}"
    ):
        fit(tmp_path, model=model, callback=poison_next_update, max_steps=6)
    assert latest_checkpoint(tmp_path).name == "step_0000002"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_0000002"]


def test_a_nan_checkpoint_is_never_the_last_good_one(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    bad = TinyLM()
    with torch.no_grad():
        bad.norm.weight.fill_(float("nan"))
    save_checkpoint(out / "checkpoints" / "step_0000006", bad, step=6)  # by hand: not refused
    (out / "checkpoints" / "latest").write_text("step_0000006")
    assert last_good_checkpoint(out).name == CK
    assert last_good_note(out).startswith("the last good checkpoint is") and CK in last_good_note(
        out
    )
    flip(out / "checkpoints" / CK / "model.safetensors", -3)  # the finite one damaged, too
    assert last_good_checkpoint(out).name == "step_0000002"
    assert last_good_note(None) == "no checkpoints are kept (out_dir=None)"
    assert "holds no checkpoint with finite weights" in last_good_note(tmp_path / "empty")


def test_checksums_are_written_and_match(finished_run):
    import hashlib

    folder = finished_run / "checkpoints" / CK
    sums = json.loads((folder / "sha256.json").read_text())
    for name in ("model.safetensors", "state.pt"):
        assert sums[name] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    names = {"embed.weight", "mix.weight", "mix.bias", "norm.weight", "norm.bias"}
    assert set(load_file(folder / "model.safetensors")) == names  # the tied head stored once


def test_out_dir_on_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="out_dir '.*file' is a file; give a folder"):
        fit(tmp_path / "file")


# ------------------------------------------------------------------ real processes

SCRIPT = (
    TINY_LM
    + """
import json, os, signal, sys, time
import llmbook.training as training
from llmbook.training import TrainConfig, train

out, steps, sleep, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
resume = mode == "resume"
if mode == "slow-save":  # every save takes a second, so that a signal can land inside one
    real = training.unique_tensors
    def slow(state_dict):
        print("SAVING", flush=True)
        time.sleep(1.0)
        return real(state_dict)
    training.unique_tensors = slow
torch.manual_seed(0)
model = TinyLM(dropout=0.1)
g = torch.Generator().manual_seed(1)
data = (torch.arange(2000) % 7 * 5 + torch.randint(0, 3, (2000,), generator=g)) % 50
config = TrainConfig(max_steps=steps, batch_size=8, context_length=16, eval_interval=2,
                     eval_batches=1, warmup_steps=2, lr=1e-2, min_lr=1e-3, device="cpu",
                     out_dir=out, sample_tokens=0)

def callback(done, history):
    time.sleep(sleep)
    while mode == "hold" and done >= 2 and not os.path.exists(out + ".release"):
        time.sleep(0.05)  # hold the folder until the test says so

history = train(model, data[:1600], data[1600:], config, resume=resume, progress=False,
                callback=callback)
print("HISTORY", json.dumps({"steps": len(history["loss"]), "interrupted": history["interrupted"]}),
      flush=True)
"""
)


def script(tmp_path, *args, **popen):
    path = tmp_path / "trainer.py"
    path.write_text(SCRIPT)
    cmd = [sys.executable, str(path), *map(str, args)]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)  # fmt: skip


def wait_for_checkpoint(proc, out, deadline=180):
    end = time.time() + deadline
    while time.time() < end:
        if (Path(out) / "checkpoints" / "latest").exists():
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no checkpoint in time")


def test_two_trainers_on_one_folder(tmp_path):
    out = tmp_path / "run"
    first = script(tmp_path, out, 8, 0.0, "hold")
    wait_for_checkpoint(first, out)
    second = script(tmp_path, out, 8, 0.0, "resume")
    _, err = second.communicate(timeout=120)
    Path(f"{out}.release").touch()  # the first may go on
    assert second.returncode == 1
    assert (
        f"RunFolderBusyError: '{out}' is in use by another training process (pid {first.pid})"
        in err
    )
    assert "one trainer per folder" in err
    out_first, err_first = first.communicate(timeout=180)
    assert first.returncode == 0, err_first[-3000:]
    assert latest_checkpoint(out).name == "step_0000008"
    load_checkpoint(latest_checkpoint(out), TinyLM())  # weights and state of one run: verified


def test_the_lock_dies_with_the_process(tmp_path):
    out = tmp_path / "run"
    first = script(tmp_path, out, 50, 0.0, "hold")
    wait_for_checkpoint(first, out)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert (out / ".lock").exists()  # the file stays; its lock went with the process
    second = script(tmp_path, out, 4, 0.0, "resume")
    stdout, stderr = second.communicate(timeout=180)
    assert second.returncode == 0, stderr[-3000:]


def test_the_same_process_may_claim_its_folder_again(tmp_path):
    code = "import sys; from llmbook.io.runs import lock_run_folder; lock_run_folder(sys.argv[1])"

    def other_process():
        cmd = [sys.executable, "-c", code, str(tmp_path)]
        return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)

    with lock_run_folder(tmp_path):  # llmbook train holds it ...
        with lock_run_folder(tmp_path):  # ... and train() claims it again
            pass
        other = other_process()  # still held after the inner release
        assert other.returncode == 1
        busy = f"'{tmp_path}' is in use by another training process (pid {os.getpid()})"
        assert f"RunFolderBusyError: {busy}" in other.stderr
    assert other_process().returncode == 0  # released at the end of the outer block


def test_a_second_ctrl_c_during_the_save_finishes_it_quietly(tmp_path):
    out = tmp_path / "run"
    proc = script(tmp_path, out, 200, 0.0, "slow-save")
    assert proc.stdout.readline().strip() == "SAVING"  # the checkpoint of step 2 is being saved
    proc.send_signal(signal.SIGINT)  # first Ctrl-C: stop after the step under way
    assert proc.stdout.readline().strip() == "SAVING"  # the checkpoint of the interrupt
    proc.send_signal(signal.SIGINT)  # second Ctrl-C, in the middle of that save
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "stopping: finishing this step and saving its checkpoint" in stderr
    history = json.loads(stdout.split("HISTORY ", 1)[1])
    assert history["interrupted"] and history["steps"] == 3
    assert latest_checkpoint(out).name == "step_0000003"
    load_checkpoint(latest_checkpoint(out), TinyLM())  # whole and verified
    assert not list(out.rglob("*.tmp"))


TRUNCATE = """
import os, sys, numpy as np
from llmbook.io.tokenfile import TokenFile
path, how = sys.argv[1], sys.argv[2]
f = TokenFile(path)
os.truncate(path, 64 + 2 * 100)  # cut short on disk while mapped
if how == "raw":
    print(int(f.ids[50_000]))  # the raw memory map: SIGBUS, as TokenFile's docstring says
try:
    f[50_000:50_010]
except ValueError as error:
    print("ValueError:", error)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="SIGBUS on a truncated mapping: Linux")
@pytest.mark.parametrize("how", ["checked", "raw"])
def test_a_token_file_cut_short_while_mapped(tmp_path, how):
    path = write_token_file(tmp_path / "ids.bin", np.arange(100_000) % 2048, "uint16")
    result = subprocess.run([sys.executable, "-c", TRUNCATE, str(path), how],
                            capture_output=True, text=True, env=ENV, timeout=120)  # fmt: skip
    if how == "raw":
        assert result.returncode == -signal.SIGBUS  # why TokenFile[...] checks first
        return
    assert result.returncode == 0, result.stderr
    cut = f"{path} was cut short on disk since it was opened (264 of 200,064 bytes)"
    assert f"ValueError: {cut}" in result.stdout


def test_a_token_file_cut_short_during_training(tmp_path):
    path = write_token_file(tmp_path / "ids.bin", tiny_data(20_000).numpy(), "uint16")
    ids = TokenFile(path)

    def cut_after_step_2(done, history):
        if done == 2:
            os.truncate(path, 64 + 2 * 100)

    with pytest.raises(ValueError, match="ids.bin was cut short on disk since it was opened"):
        train(
            TinyLM(), ids, tiny_data()[1600:], config(), progress=False, callback=cut_after_step_2
        )


def test_a_replaced_token_file_is_read_as_opened(tmp_path):
    path = write_token_file(tmp_path / "ids.bin", np.arange(1000) % 50, "uint16")
    ids = TokenFile(path)
    write_token_file(path, np.arange(10) % 50, "uint16")  # renamed over it: the map keeps the old
    assert ids[990:1000].tolist() == list(range(40, 50))
