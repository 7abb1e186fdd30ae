"""Tests of what chapter 08 adds to the trainer: the strided score of a long text (against an
independent computation, one context at a time), the gradient norm in the history, and exact
resumption of a 2-process DistributedDataParallel run with dropout after a SIGKILL."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tiny_lm import TinyLM

from llmbook.model import DecoderLM, ModelConfig
from llmbook.training import TrainConfig, latest_checkpoint, strided_loss, train, whole_text_loss

TINY_LM = (Path(__file__).parent / "tiny_lm.py").read_text()


def tiny_decoder(context_length=16):
    torch.manual_seed(0)
    return DecoderLM(ModelConfig.from_preset("stories-tiny", context_length=context_length)).eval()


def reference_strided(model, ids, stride):
    """Each target on its own: the window that scores target ``j`` (``ids[j]``, j >= 1) is the
    first one, ``ids[0:W]``, if ``j <= W``; otherwise the window that ends at the first end
    ``W + k * stride`` (or the text's end) at or after ``j``. The model reads that window up to
    ``j - 1`` and the loss is ``-log p(ids[j])`` at its last position."""
    W, n = model.config.context_length, len(ids) - 1
    losses = []
    with torch.no_grad():
        for j in range(1, n + 1):
            end = W if j <= W else min(W + -(-(j - W) // stride) * stride, n)
            context = ids[end - W : j]  # the window's tokens before the target
            logits = model(context[None])[0, -1]  # (V,)
            losses.append(F.cross_entropy(logits[None], ids[j : j + 1]))
    return torch.stack(losses).double().mean().item()


@pytest.mark.parametrize("stride", [1, 5, 16])
@pytest.mark.parametrize("n_tokens", [16 * 3 + 1, 16 * 3 + 8, 17])
def test_strided_loss_matches_scoring_each_target_alone(stride, n_tokens):
    model = tiny_decoder()
    ids = torch.randint(0, 2048, (n_tokens,), generator=torch.Generator().manual_seed(n_tokens))
    expected = reference_strided(model, ids, stride)
    for batch_size in (1, 3, 64):
        assert strided_loss(model, ids, stride, batch_size) == pytest.approx(expected, rel=1e-5)


def test_strided_loss_reads_lists_arrays_and_memory_maps(tmp_path):
    model = tiny_decoder()
    ids = torch.randint(0, 2048, (60,), generator=torch.Generator().manual_seed(2))
    expected = strided_loss(model, ids, 5)
    np.save(tmp_path / "ids.npy", ids.numpy().astype(np.uint16))
    memory_map = np.load(tmp_path / "ids.npy", mmap_mode="r")  # read-only, as a token file is
    for same in (ids.tolist(), ids.numpy().astype(np.uint16), memory_map):
        assert strided_loss(model, same, 5) == expected


def test_stride_of_a_whole_window_is_the_non_overlapping_score():
    model = tiny_decoder()
    ids = torch.randint(0, 2048, (16 * 5 + 1,), generator=torch.Generator().manual_seed(3))
    assert strided_loss(model, ids, 16) == pytest.approx(whole_text_loss(model, ids), rel=1e-6)


def test_a_shorter_stride_gives_the_early_tokens_context():
    # A model that has learned something: with context, its loss is lower than at a window's
    # start, so the strided score is lower than the non-overlapping one.
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig.from_preset("stories-tiny", context_length=16))
    # 24 random tokens out of 4, repeated: one token does not tell the next, six or so do.
    data = torch.randint(0, 4, (24,), generator=torch.Generator().manual_seed(0)).repeat(125)
    config = TrainConfig(max_steps=80, batch_size=8, context_length=16, lr=1e-2, min_lr=1e-3,
                         warmup_steps=5, eval_interval=80, eval_batches=1, device="cpu")  # fmt: skip
    train(model, data[:2500], data[2500:], config, progress=False)
    model.eval()
    assert strided_loss(model, data[2500:], 4) < whole_text_loss(model, data[2500:]) - 0.1


@pytest.mark.parametrize(
    "args, error, match",
    [
        pytest.param(dict(stride=0), ValueError, "stride must be >= 1", id="stride-0"),
        pytest.param(dict(stride=17), ValueError, r"stride must be an int in 1\.\.16", id="big"),
        pytest.param(dict(stride=2.0), TypeError, "stride must be an int", id="stride-float"),
        pytest.param(dict(batch_size=0), ValueError, "batch_size must be >= 1", id="batch-0"),
        pytest.param(
            dict(ids=torch.zeros(16, dtype=torch.long)),
            ValueError,
            "ids must hold more than context_length = 16 tokens, got 16",
            id="too-short",
        ),
        pytest.param(
            dict(ids=torch.zeros(2, 40, dtype=torch.long)), ValueError, "ids must be 1-D", id="2-d"
        ),
        pytest.param(dict(ids=torch.zeros(40)), TypeError, "ids must hold integers", id="floats"),
    ],
)
def test_strided_loss_bad_input(args, error, match):
    kwargs = dict(ids=torch.zeros(40, dtype=torch.long), stride=4, batch_size=8) | args
    with pytest.raises(error, match=match):
        strided_loss(tiny_decoder(), **kwargs)


def test_history_records_the_gradient_norm_before_clipping():
    torch.manual_seed(0)
    model = TinyLM()
    data = (torch.arange(2000) % 7 * 5) % 50
    config = TrainConfig(max_steps=5, batch_size=8, context_length=16, eval_interval=5,
                         eval_batches=1, warmup_steps=1, grad_clip=1e-3, device="cpu")  # fmt: skip
    history = train(model, data[:1600], data[1600:], config, progress=False)
    assert len(history["grad_norm"]) == 5
    assert all(n > 1e-3 for n in history["grad_norm"])  # before clipping: above max_norm


# ------------------------------------------------------------------ 2 processes, killed, resumed

SCRIPT = (
    TINY_LM
    + """
import json, os, signal, sys
from llmbook.training import TrainConfig, train

out, kill_after, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.manual_seed(0)
model = TinyLM(dropout=0.3)
g = torch.Generator().manual_seed(1)
data = (torch.arange(2000) % 7 * 5 + torch.randint(0, 3, (2000,), generator=g)) % 50
config = TrainConfig(max_steps=12, batch_size=8, context_length=16, eval_interval=3,
                     eval_batches=1, warmup_steps=2, lr=1e-2, min_lr=1e-3, device="cpu",
                     out_dir=out)

def kill(done, history):  # SIGKILL on every process: nothing gets to save or clean up
    if done == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

history = train(model, data[:1600], data[1600:], config, resume=resume, progress=False,
                callback=kill)
if os.environ["RANK"] == "0":
    print("HISTORY", json.dumps(history["loss"]), flush=True)
"""
)


def torchrun(tmp_path, out, kill_after, resume):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [sys.executable, *launcher, str(script), str(out), str(kill_after), str(int(resume))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def losses_of(result):
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("HISTORY")][-1]
    return json.loads(line.split(" ", 1)[1])


def test_two_process_resume_with_dropout_is_bit_exact(tmp_path):
    whole = losses_of(torchrun(tmp_path, tmp_path / "whole", kill_after=0, resume=False))
    killed = torchrun(tmp_path, tmp_path / "killed", kill_after=8, resume=False)
    assert killed.returncode != 0  # the processes died mid-run
    assert latest_checkpoint(tmp_path / "killed").name == "step_0000006"
    resumed = losses_of(torchrun(tmp_path, tmp_path / "killed", kill_after=0, resume=True))
    assert resumed == whole  # every step's loss (mean over both processes), bit for bit
    a = load_file(latest_checkpoint(tmp_path / "whole") / "model.safetensors")
    b = load_file(latest_checkpoint(tmp_path / "killed") / "model.safetensors")
    assert latest_checkpoint(tmp_path / "killed").name == "step_0000012"
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
