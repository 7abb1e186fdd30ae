"""Tests of llmbook.training (chapter 08): the teaching loss, optimizer and clipping against
torch's, the schedule, gradient accumulation, checkpoints, exact resumption after SIGKILL,
Ctrl-C, NaN detection, a 2-process DistributedDataParallel run and the argument checks."""

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
import torch.nn.functional as F
from safetensors.torch import load_file
from tiny_lm import TinyLM
from torch import nn

import llmbook.training as training
from llmbook.io.runs import new_history, write_checksums
from llmbook.training import (
    AdamW,
    TrainConfig,
    batch_starts,
    clip_grad_norm,
    cross_entropy,
    evaluate,
    get_batch,
    latest_checkpoint,
    load_checkpoint,
    lr_schedule,
    param_groups,
    pick_device,
    save_checkpoint,
    train,
    train_step,
    whole_text_loss,
)

ROOT = Path(__file__).resolve().parent.parent

TINY_LM = (Path(__file__).parent / "tiny_lm.py").read_text()


def tiny_data(n=2000, vocab=50, seed=1):
    # Repeating patterns with noise: learnable, so the loss can fall.
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % 7 * 5 + torch.randint(0, 3, (n,), generator=g)
    return base % vocab


def small_config(**overrides):
    values = dict(
        max_steps=6,
        batch_size=8,
        context_length=16,
        eval_interval=2,
        eval_batches=2,
        warmup_steps=2,
        lr=1e-2,
        min_lr=1e-3,
        device="cpu",
    )
    values.update(overrides)
    return TrainConfig(**values)


# ------------------------------------------------------------------ the teaching versions


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(7, 11), (2, 5, 11)])
def test_cross_entropy_matches_torch(dtype, shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g, dtype=dtype) * 3
    targets = torch.randint(0, shape[-1], shape[:-1], generator=g)
    expected = F.cross_entropy(logits.reshape(-1, shape[-1]), targets.reshape(-1))
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(cross_entropy(logits, targets), expected, atol=tol, rtol=tol)


def test_cross_entropy_does_not_overflow():
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [500.0, 500.0, 0.0]])
    targets = torch.tensor([1, 0])
    naive = -(logits.exp() / logits.exp().sum(-1, keepdim=True)).log()[[0, 1], targets].mean()
    assert not torch.isfinite(naive)  # the textbook formula fails here ...
    loss = cross_entropy(logits, targets)  # ... the log-sum-exp one does not
    assert torch.isfinite(loss)
    assert torch.allclose(loss, F.cross_entropy(logits, targets))


def test_adamw_matches_torch():
    torch.manual_seed(0)
    mine, ref = TinyLM(dropout=0.0), TinyLM(dropout=0.0)
    ref.load_state_dict(mine.state_dict())
    opt_mine = AdamW(param_groups(mine, 0.1), lr=1e-2, betas=(0.9, 0.95))
    opt_ref = torch.optim.AdamW(param_groups(ref, 0.1), lr=1e-2, betas=(0.9, 0.95))
    data = tiny_data()
    for step in range(5):
        x, y = get_batch(data, batch_starts(len(data), 16, 4, 0, step), 16)
        for model, opt in ((mine, opt_mine), (ref, opt_ref)):
            model(x, y)[1].backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(mine.parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), "AdamW drifted from torch.optim.AdamW"
    assert not torch.equal(mine.embed.weight, TinyLM(dropout=0.0).embed.weight)


@pytest.mark.parametrize("max_norm", [0.01, 1.0, 1e6])
def test_clip_grad_norm_matches_torch(max_norm):
    torch.manual_seed(0)
    a, b = TinyLM(), TinyLM()
    b.load_state_dict(a.state_dict())
    x, y = get_batch(tiny_data(), torch.tensor([0, 5, 9]), 16)
    for model in (a, b):
        torch.manual_seed(1)
        model(x, y)[1].backward()
    norm_mine = clip_grad_norm(list(a.parameters()), max_norm)
    norm_ref = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm)
    assert torch.allclose(norm_mine, norm_ref)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-7)
    clipped = torch.stack([p.grad.norm() for p in a.parameters()]).norm()
    assert clipped <= max_norm * (1 + 1e-5)


def test_param_groups_decay_matrices_only():
    model = TinyLM()
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    n_params = len(list(model.parameters()))  # the tied head counted once
    assert len(decay["params"]) + len(no_decay["params"]) == n_params == 5


def test_lr_schedule_shape():
    kw = dict(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    lrs = [lr_schedule(s, **kw) for s in range(130)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warm-up
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)  # half way down the cosine
    assert all(a >= b for a, b in zip(lrs[10:110], lrs[11:111]))
    assert lrs[110:] == [0.1] * 20


# ------------------------------------------------------------------ batches and the loop


def test_batches_depend_on_seed_and_step_only():
    a = batch_starts(1000, 16, 8, seed=3, step=5)
    assert torch.equal(a, batch_starts(1000, 16, 8, seed=3, step=5))
    assert not torch.equal(a, batch_starts(1000, 16, 8, seed=3, step=6))
    assert int(a.max()) < 1000 - 16
    data = tiny_data()
    x, y = get_batch(data, a, 16)
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    x2, y2 = get_batch(data.numpy().astype(np.uint16), a, 16)  # a memory map works the same
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_windows_once_reads_every_window_once_per_pass():
    n_tokens, T, B = 16 * 50 + 5, 16, 8  # 50 whole windows (a window needs T + 1 ids)
    starts = torch.cat([batch_starts(n_tokens, T, B, 3, step, "once") for step in range(25)])
    first, second = starts[:50], starts[50:100]  # steps 6 and 12 straddle the passes
    assert sorted(first.tolist()) == sorted(second.tolist()) == [w * T for w in range(50)]
    assert not torch.equal(first, second)  # each pass in its own order
    assert int(starts.max()) + T + 1 <= n_tokens
    assert torch.equal(starts[8:16], batch_starts(n_tokens, T, B, 3, 1, "once"))  # step alone
    assert not torch.equal(starts[:50], torch.cat([batch_starts(n_tokens, T, B, 4, s, "once")
                                                    for s in range(7)])[:50])  # fmt: skip


def test_train_config_names_the_allowed_windows():
    with pytest.raises(ValueError, match="windows must be 'random' .* or 'once' .* got 'all'"):
        TrainConfig(windows="all")


def test_gradient_accumulation_equals_large_batch():
    torch.manual_seed(0)
    one, two = TinyLM(dropout=0.0), TinyLM(dropout=0.0)
    two.load_state_dict(one.state_dict())
    run = training.Run(torch.device("cpu"))
    data = tiny_data()
    for model, accum in ((one, 1), (two, 4)):
        config = small_config(grad_accum_steps=accum)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        loss, _ = train_step(model, opt, data, 0, config, run)  # (loss, gradient norm)
        if accum == 1:
            loss_one = loss
    assert torch.allclose(loss, loss_one, atol=1e-6)
    for a, b in zip(one.parameters(), two.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.equal(one.embed.weight, TinyLM(dropout=0.0).embed.weight)


def test_train_learns_and_records_history():
    torch.manual_seed(0)
    model = TinyLM()
    data = tiny_data()
    before = evaluate(model, data[1600:], context_length=16, n_batches=4)
    history = train(
        model,
        data[:1600],
        data[1600:],
        small_config(max_steps=40, eval_interval=10),
        progress=False,
    )
    after = evaluate(model, data[1600:], context_length=16, n_batches=4)
    assert after < before - 1.0, (before, after)
    assert history["step"] == list(range(40))
    assert len(history["loss"]) == len(history["lr"]) == len(history["tokens_per_s"]) == 40
    assert len(history["grad_norm"]) == 40 and all(n > 0 for n in history["grad_norm"])
    assert history["eval_step"] == [10, 20, 30, 40]
    assert len(history["val_loss"]) == len(history["train_loss"]) == 4
    assert history["lr"][1] == pytest.approx(1e-2)  # end of the 2-step warm-up
    assert not history["interrupted"] and model.training


def test_evaluate_is_repeatable_and_keeps_mode():
    model = TinyLM()
    data = tiny_data()
    a = evaluate(model, data, context_length=16, n_batches=3)
    assert model.training  # back in training mode
    assert a == evaluate(model, data, context_length=16, n_batches=3)  # no dropout, same windows


def test_whole_text_loss_scores_every_whole_window_once():
    from llmbook.model import DecoderLM, ModelConfig

    torch.manual_seed(0)
    model = DecoderLM(ModelConfig.from_preset("stories-tiny", context_length=16)).eval()
    ids = torch.randint(0, 2048, (16 * 5 + 7,))  # 5 whole windows and a tail left out
    with torch.no_grad():
        each = [F.cross_entropy(model(ids[i : i + 16][None])[0], ids[i + 1 : i + 17])
                for i in range(0, 16 * 5, 16)]  # fmt: skip
    expected = torch.stack(each).mean().item()
    for batch_size in (1, 2, 16):  # a short last batch weighs as much per window as the others
        assert whole_text_loss(model, ids, batch_size) == pytest.approx(expected, rel=1e-6)


class Vocab:
    def encode(self, text):
        return [ord(c) % 50 for c in text]

    def decode(self, ids):
        return "".join(chr(65 + i % 26) for i in ids)


def test_samples_and_progress_bar(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    history = train(
        TinyLM(),
        tiny_data()[:1600],
        tiny_data()[1600:],
        small_config(max_steps=4, sample_tokens=5),
        tokenizer=Vocab(),
        prompt="ab",
    )
    err = capsys.readouterr().err
    assert "loss=" in err and "lr=" in err and "tok_s=" in err
    assert [step for step, _ in history["samples"]] == [2, 4]
    assert all(len(text) == 5 for _, text in history["samples"])


def test_pick_device_and_precision():
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert pick_device() == torch.device("cpu")
    run = training.start_run(small_config(device="cpu"))
    assert run.dtype is None and run.world_size == 1  # bf16 autocast is off on the CPU by default
    assert training.start_run(small_config(precision="bfloat16")).dtype == torch.bfloat16


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TinyLM()
    opt = torch.optim.AdamW(param_groups(model, 0.1))
    x, y = get_batch(tiny_data(), torch.tensor([0, 3]), 16)
    model(x, y)[1].backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", model, opt, step=7, note="hi")
    tensors = load_file(tmp_path / "ck" / "model.safetensors")
    assert "head.weight" not in tensors and "embed.weight" in tensors  # tied: stored once
    state = torch.load(tmp_path / "ck" / "state.pt", weights_only=True)  # no pickled code
    assert state["step"] == 7 and state["note"] == "hi" and "torch" in state["rng"]

    other = TinyLM()
    opt2 = torch.optim.AdamW(param_groups(other, 0.1))
    state = load_checkpoint(tmp_path / "ck", other, opt2)
    assert state["step"] == 7
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert other.head.weight is other.embed.weight  # still tied after loading
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_a_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    model, data = TinyLM(), tiny_data()
    config = small_config(max_steps=4, out_dir=str(tmp_path))
    train(model, data[:1600], data[1600:], config, progress=False)
    assert latest_checkpoint(tmp_path).name == "step_0000004"
    good = load_file(latest_checkpoint(tmp_path) / "model.safetensors")

    real_save = torch.save

    def dies_mid_write(obj, f):  # the process "dies" half way through writing state.pt
        f.write(b"partial")
        raise OSError("killed mid-write")

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(OSError, match="killed mid-write"):
        train(
            model,
            data[:1600],
            data[1600:],
            small_config(max_steps=6, out_dir=str(tmp_path)),
            resume=True,
            progress=False,
        )
    monkeypatch.setattr(torch, "save", real_save)
    assert latest_checkpoint(tmp_path).name == "step_0000004"
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind
    state = load_checkpoint(latest_checkpoint(tmp_path), TinyLM())
    assert state["step"] == 4
    for name, tensor in load_file(latest_checkpoint(tmp_path) / "model.safetensors").items():
        assert torch.equal(tensor, good[name])


def test_keeps_only_the_newest_checkpoints(tmp_path):
    data = tiny_data()
    train(
        TinyLM(),
        data[:1600],
        data[1600:],
        small_config(max_steps=8, out_dir=str(tmp_path)),
        progress=False,
    )
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert names == ["step_0000006", "step_0000008"]


def test_new_history_completes_a_saved_history():
    fresh = new_history()
    assert all(fresh[name] == [] for name in ("step", "loss", "grad_norm", "val_loss", "samples"))
    assert fresh["interrupted"] is False
    old = {"step": [0, 1], "loss": [3.0, 2.0], "samples": [(2, "hi")], "interrupted": False}
    completed = new_history(old)  # saved before grad_norm was recorded
    assert completed["step"] == [0, 1] and completed["samples"] == [(2, "hi")]
    assert completed["grad_norm"] == [] and completed["eval_step"] == []


def test_resume_from_a_checkpoint_whose_history_has_no_grad_norm(tmp_path):
    data = tiny_data()
    train(TinyLM(), data[:1600], data[1600:], small_config(max_steps=4, out_dir=str(tmp_path)),
          progress=False)  # fmt: skip
    folder = latest_checkpoint(tmp_path)
    state = torch.load(folder / "state.pt", weights_only=True)
    del state["history"]["grad_norm"]  # as written by an llmbook that did not record it
    torch.save(state, folder / "state.pt")
    write_checksums(folder)
    history = train(TinyLM(), data[:1600], data[1600:],
                    small_config(max_steps=6, out_dir=str(tmp_path)), resume=True, progress=False)  # fmt: skip
    assert history["step"] == list(range(6)) and len(history["grad_norm"]) == 2  # steps 4 and 5


def test_nan_loss_stops_naming_the_step(tmp_path):
    model, data = TinyLM(), tiny_data()

    def poison(done, history):
        if done == 4:
            with torch.no_grad():
                model.mix.weight.fill_(float("nan"))

    config = small_config(max_steps=8, out_dir=str(tmp_path))
    with pytest.raises(
        FloatingPointError, match=r"loss is nan at step 4; the last good checkpoint"
    ):
        train(model, data[:1600], data[1600:], config, callback=poison, progress=False)
    assert latest_checkpoint(tmp_path).name == "step_0000004"
    restored = TinyLM()
    load_checkpoint(latest_checkpoint(tmp_path), restored)
    assert all(torch.isfinite(p).all() for p in restored.parameters())


# ------------------------------------------------------------------ real processes

SCRIPT = (
    TINY_LM
    + """
import json, sys, time
from llmbook.training import TrainConfig, train

out, steps, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
resume, dropout = sys.argv[4] == "1", float(sys.argv[5])
torch.manual_seed(0)
model = TinyLM(dropout=dropout)
g = torch.Generator().manual_seed(1)
data = (torch.arange(2000) % 7 * 5 + torch.randint(0, 3, (2000,), generator=g)) % 50
config = TrainConfig(max_steps=steps, batch_size=8, context_length=16, eval_interval=2,
                     eval_batches=2, warmup_steps=2, lr=1e-2, min_lr=1e-3, device="cpu",
                     out_dir=None if out == "-" else out)
history = train(model, data[:1600], data[1600:], config, resume=resume, progress=False,
                callback=lambda done, h: time.sleep(sleep))
if int(__import__("os").environ.get("RANK", "0")) == 0:
    print("HISTORY", json.dumps({"loss": history["loss"], "val": history["val_loss"],
                                 "interrupted": history["interrupted"]}), flush=True)
"""
)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1"}


def run_script(tmp_path, *args, launcher=(), **kwargs):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, *launcher, str(script), *map(str, args)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240, **kwargs)


def history_of(result):
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("HISTORY")][-1]
    return json.loads(line.split(" ", 1)[1])


def start_and_wait(tmp_path, out, steps, until_step):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(out), str(steps), "0.3", "0", "0.1"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        latest = latest_checkpoint(out)
        if latest is not None and int(latest.name.split("_")[1]) >= until_step:
            return proc
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the training process wrote no checkpoint in time")


def test_resume_after_sigkill_is_bit_exact(tmp_path):
    steps = 10
    whole = run_script(tmp_path, tmp_path / "whole", steps, 0, "0", 0.1)
    expected = history_of(whole)

    proc = start_and_wait(tmp_path, tmp_path / "killed", steps, until_step=4)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = int(latest_checkpoint(tmp_path / "killed").name.split("_")[1])
    assert 4 <= stopped_at < steps

    resumed = history_of(run_script(tmp_path, tmp_path / "killed", steps, 0, "1", 0.1))
    assert resumed["loss"] == expected["loss"]  # every step's loss, bit for bit
    assert resumed["val"] == expected["val"]
    final_whole = load_file(latest_checkpoint(tmp_path / "whole") / "model.safetensors")
    final_resumed = load_file(latest_checkpoint(tmp_path / "killed") / "model.safetensors")
    assert final_whole.keys() == final_resumed.keys()
    for name in final_whole:
        assert torch.equal(final_whole[name], final_resumed[name]), name


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    proc = start_and_wait(tmp_path, tmp_path / "run", 200, until_step=2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    history = json.loads(
        [x for x in out.splitlines() if x.startswith("HISTORY")][-1].split(" ", 1)[1]
    )
    assert history["interrupted"]
    done = len(history["loss"])
    assert 2 <= done < 200
    assert latest_checkpoint(tmp_path / "run").name == f"step_{done:07d}"  # the step it stopped at


def test_two_process_ddp_matches_one_process(tmp_path):
    single = history_of(run_script(tmp_path, "-", 6, 0, "0", 0.0))
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    ddp = history_of(run_script(tmp_path, "-", 6, 0, "0", 0.0, launcher=launcher))
    # Same global batch of 8 windows: 4 per process, gradients averaged by DDP. The sums run in
    # a different order, so the losses agree to float32 rounding, not bit for bit.
    assert np.allclose(ddp["loss"], single["loss"], rtol=1e-5, atol=1e-5), (ddp, single)
    assert np.allclose(ddp["val"], single["val"], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        pytest.param(dict(max_steps=0), ValueError, "max_steps must be >= 1", id="max-steps-zero"),
        pytest.param(
            dict(batch_size=2.5), TypeError, "batch_size must be an int", id="batch-float"
        ),
        pytest.param(dict(context_length=0), ValueError, "context_length", id="context-zero"),
        pytest.param(
            dict(grad_accum_steps=3), ValueError, "multiple of grad_accum_steps", id="accum"
        ),
        pytest.param(dict(lr=-1.0), ValueError, "lr must be a number >= 0", id="lr-negative"),
        pytest.param(dict(lr="big"), TypeError, "lr must be a float", id="lr-str"),
        pytest.param(dict(min_lr=1.0), ValueError, "min_lr must be <= lr", id="min-lr-above"),
        pytest.param(dict(warmup_steps=-1), ValueError, "warmup_steps", id="warmup-negative"),
        pytest.param(dict(betas=(0.9, 1.0)), ValueError, "betas", id="beta-one"),
        pytest.param(dict(grad_clip=float("nan")), ValueError, "grad_clip", id="clip-nan"),
        pytest.param(dict(precision="fp8"), ValueError, "precision must be one of", id="precision"),
        pytest.param(dict(device=0), TypeError, "device must be a str", id="device-int"),
        pytest.param(dict(seed=True), TypeError, "seed must be an int", id="seed-bool"),
        pytest.param(dict(eval_interval=0), ValueError, "eval_interval", id="eval-zero"),
    ],
)
def test_bad_config(overrides, error, match):
    with pytest.raises(error, match=match):
        small_config(**overrides)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        pytest.param(("model",), {}, TypeError, "model must be a torch.nn.Module", id="model"),
        pytest.param((None, "text"), {}, TypeError, "train_data must be a 1-D", id="data-str"),
        pytest.param(
            (None, torch.zeros(4, 100, dtype=torch.long)),
            {},
            ValueError,
            "train_data must be 1-D",
            id="data-2d",
        ),
        pytest.param(
            (None, None, [1, 2, 3]),
            {},
            ValueError,
            "val_data must be 1-D with more than",
            id="val-short",
        ),
        pytest.param(
            (None, None, None, dict(max_steps=2)),
            {},
            TypeError,
            "config must be a TrainConfig",
            id="config-dict",
        ),
        pytest.param(
            (),
            dict(resume=True),
            ValueError,
            "resume=True needs config.out_dir",
            id="resume-no-dir",
        ),
    ],
)
def test_bad_train_arguments(args, kwargs, error, match):
    defaults = [TinyLM(), tiny_data()[:1600], tiny_data()[1600:], small_config()]
    args = [a if a is not None else d for a, d in zip(list(args) + [None] * 4, defaults)]
    with pytest.raises(error, match=match):
        train(*args, progress=False, **kwargs)


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train(
            TinyLM(),
            tiny_data()[:1600],
            tiny_data()[1600:],
            small_config(out_dir=str(tmp_path)),
            resume=True,
            progress=False,
        )


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        load_checkpoint(tmp_path, TinyLM())
    save_checkpoint(tmp_path / "ck", TinyLM(d_model=8))
    with pytest.raises(ValueError, match="does not fit the model"):
        load_checkpoint(tmp_path / "ck", nn.Sequential(nn.Linear(2, 2)))
