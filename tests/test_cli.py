"""Tests of the ``llmbook`` command line (llmbook/cli/): ``llmbook train`` in-process and in a
subprocess, its output folder, --resume, --help and the errors a user meets."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llmbook import load_corpus
from llmbook.cli import build_parser, main
from llmbook.training import latest_checkpoint

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--model", "stories-tiny", "--context-length", "16", "--batch-size", "4", "--steps", "4",
        "--eval-interval", "2", "--eval-batches", "1", "--sample-tokens", "4", "--device", "cpu"]  # fmt: skip


def train_subparser() -> argparse.ArgumentParser:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices["train"]


def test_help_documents_every_option(capsys):
    options = [a for a in train_subparser()._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 20
    for action in options:
        assert action.help and len(action.help) > 10, f"{action.option_strings} has no help"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for action in options:
        assert action.option_strings[0] in shown


HELP_ARGV = [["--help"], ["train", "--help"], ["generate", "--help"], ["classroom", "--help"]]


@pytest.mark.parametrize("argv", HELP_ARGV, ids=lambda argv: " ".join(argv))
def test_help_imports_no_torch(argv):
    """`llmbook --help` took 6-8 s on a laptop when building the parser imported torch."""
    code = (
        "import sys\n"
        "import llmbook.cli\n"
        "llmbook.cli.build_parser()\n"
        "assert 'torch' not in sys.modules, 'building the parser imported torch'\n"
        "try:\n"
        f"    llmbook.cli.main({argv!r})\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("torch imported: False")
    assert "usage: llmbook" in result.stdout


def test_the_package_imports_its_names_on_first_use():
    """`import llmbook` loads no torch; each public name is imported from its module when used."""
    code = (
        "import sys\n"
        "import llmbook\n"
        "assert 'torch' not in sys.modules\n"
        "from llmbook import generate\n"
        "import llmbook.generation\n"
        "assert generate is llmbook.generation.generate and 'torch' in sys.modules\n"
        "assert all(getattr(llmbook, name) is not None for name in llmbook.__all__)\n"
        "assert set(llmbook.__all__) <= set(dir(llmbook))\n"
        "try:\n"
        "    llmbook.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "module 'llmbook' has no attribute 'no_such_name'"


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["llmbook"] == "llmbook.cli:main"
    assert "assets/*/*" in project["tool"]["setuptools"]["package-data"]["llmbook"]


def test_train_writes_the_run_folder(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "--text", str(text_file), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "nats/char" in printed and "parameters" in printed
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["context_length"] == 16 and run["model"]["vocab_size"] == 2048
    assert run["command"].startswith("llmbook train --text")
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 4 and history["eval_step"] == [2, 4]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert latest_checkpoint(out).name == "step_0000004"
    from llmbook.model import DecoderLM

    model = DecoderLM.from_hf(out / "model")  # the final weights, in the Hugging Face layout
    assert model.config.context_length == 16
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["eos_token_id"] == config["bos_token_id"] == 2047  # stories' <|endoftext|>


def test_resume_continues_exactly(tmp_path, text_file):
    args = ["train", "--text", str(text_file), *FAST, "--steps", "6", "--eval-interval", "3"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--out", str(tmp_path / "cut")]) == 0
    # Pretend the second run died after step 3: its newest complete checkpoint is step 3.
    (tmp_path / "cut" / "checkpoints" / "latest").write_text("step_0000003")
    assert main(["train", "--out", str(tmp_path / "cut"), "--resume"]) == 0
    whole = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    resumed = load_file(tmp_path / "cut" / "model" / "model.safetensors")
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
    history = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert history["step"] == list(range(6))


def test_tiktoken_tokenizer(tmp_path, text_file, tiktoken_encoding):
    tiktoken_encoding("gpt2")  # skips offline without TIKTOKEN_CACHE_DIR
    out = tmp_path / "gpt2"
    args = ["train", "--text", str(text_file), "--tokenizer", "gpt2", "--out", str(out), *FAST]
    assert main([*args, "--steps", "2"]) == 0
    assert json.loads((out / "run.json").read_text())["model"]["vocab_size"] == 50257


def test_subprocess(tmp_path, text_file):
    cmd = [sys.executable, "-m", "llmbook.cli", "train", "--text", str(text_file),
           "--out", str(tmp_path / "sub"), *FAST, "--steps", "2"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nats/char" in result.stdout
    assert (tmp_path / "sub" / "checkpoints" / "latest").exists()


def test_under_torchrun_rank_0_writes_and_the_losses_match_one_process(tmp_path, text_file):
    """2 processes (gloo, CPU), each with half of the global batch of 4 windows: the same losses
    as one process, to float32 rounding (DDP averages the gradients in another order)."""
    args = ["train", "--text", str(text_file), *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [sys.executable, *launcher, "-m", "llmbook.cli", *args, "--out", str(tmp_path / "two")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("llmbook train:") == result.stdout.count("nats/char") == 1
    one, two = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("one", "two"))
    assert len(two["loss"]) == 4
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-5)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-5, abs=1e-5)
    assert (tmp_path / "two" / "model" / "model.safetensors").is_file()


def test_ctrl_c_saves_and_exits_130(tmp_path, text_file):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "llmbook.cli", "train", "--text", str(text_file),
           "--out", str(out), *FAST, "--steps", "5000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while latest_checkpoint(out) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert f"continue with: llmbook train --out {out} --resume" in stdout
    history = json.loads((out / "history.json").read_text())
    assert history["interrupted"] and 2 <= len(history["loss"]) < 5000
    assert latest_checkpoint(out).name == f"step_{len(history['loss']):07d}"


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(
            ["--text", "missing.txt"], "--text 'missing.txt': no such file", id="missing-file"
        ),
        pytest.param(
            ["--corpus", "nope"], "--corpus 'nope' is unknown; available: stories", id="corpus"
        ),
        pytest.param(
            ["--corpus", "stories", "--model", "gpt5"],
            "--model 'gpt5' is not a preset",
            id="preset",
        ),
        pytest.param(
            ["--corpus", "stories", "--tokenizer", "p50k_nope"],
            "--tokenizer 'p50k_nope'",
            id="tokenizer",
        ),
        pytest.param(["--model", None], "--model is required", id="no-model"),
        pytest.param(
            ["--corpus", "stories", "--text", "x.txt"], "not allowed with argument", id="two-data"
        ),
        pytest.param(["--corpus", "stories", "--lr", "-1"], "lr must be a number >= 0", id="lr"),
        pytest.param(
            ["--corpus", "stories", "--batch-size", "6", "--grad-accum", "4"],
            "multiple of grad_accum_steps",
            id="accum",
        ),
        pytest.param(["--resume"], "run.json' not found", id="resume-empty"),
        pytest.param(
            ["--corpus", "stories", "--precision", "fp8"], "invalid choice", id="precision"
        ),
    ],
)
def test_errors(tmp_path, capsys, args, message):
    base = ["train", "--out", str(tmp_path / "run"), "--model", "stories-tiny"]
    if args[:2] == ["--model", None]:
        base, args = base[:3], ["--corpus", "stories"]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_folder_holding_another_run(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "--text", str(text_file), "--out", str(out), *FAST, "--steps", "2"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--text", str(text_file), "--out", str(out), *FAST, "--lr", "0.002"])
    assert exit_info.value.code == 2
    assert "holds another run; pass --resume" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the shipped model


def test_shipped_stories_model():
    from llmbook import load_model, load_tokenizer, train_val_split
    from llmbook.data import encode_text
    from llmbook.pretrained import ASSETS
    from llmbook.stories import read_meta
    from llmbook.training import evaluate, whole_text_loss

    model = load_model("stories-corpus")  # chapter 08's: the sweep's choice
    assert not model.training and model.config.vocab_size == load_tokenizer("stories").vocab_size
    folder = ASSETS / "stories_corpus_model"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert run["command"] in readme and run["tokenizer"] == "stories"
    _, val_text = train_val_split(load_corpus("stories"), run["val_fraction"])
    val_ids = torch.tensor(encode_text(load_tokenizer("stories"), val_text))
    loss = evaluate(model, val_ids, context_length=model.config.context_length, n_batches=4)
    per_char = loss * len(val_ids) / len(val_text)
    assert read_meta()["nats_per_char"] < per_char < 0.25  # well on its way to the floor
    # the score the README and sweep.json quote is the model's loss over the whole text
    sweep = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    best = min(sweep["runs"], key=lambda r: r["whole_val_nats_per_char"])
    assert best["command"] == run["command"]  # the shipped model is the sweep's best run
    whole = whole_text_loss(model, val_ids)
    assert whole == pytest.approx(best["whole_val_nats_per_token"], abs=1e-4)
    assert f"{whole:.4f}" in readme
    with pytest.raises(ValueError, match="name must be one of"):
        load_model("gpt-5")


# Initialisers as torch runs them (aten ops): what building a model on meta would spend time on.
INIT_OPS = {"normal_", "uniform_", "fill_", "zero_", "random_", "bernoulli_", "exponential_"}


def init_ops_run(build) -> list[str]:
    """The initialiser ops (``INIT_OPS``) that torch dispatches while ``build()`` runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in INIT_OPS:
                seen.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with Spy():
        build()
    return seen


def test_load_model_runs_no_initialisers():
    """Building the model on meta ran torch's initialisers, and the first meta ``normal_``
    imported torch._dynamo: ~1 s of CPU in every ``llmbook generate``. The weights come from the
    file; nothing is to be initialised. The same loader without the skipping gives the same
    weights and the same logits."""
    from llmbook.io.meta import skip_meta_init
    from llmbook.model import DecoderLM
    from llmbook.pretrained import ASSETS, load_model

    folder = ASSETS / "stories_model"
    assert init_ops_run(lambda: load_model("stories")) == []
    ran = init_ops_run(lambda: DecoderLM.from_hf(folder))  # the spy sees them when they run
    assert {"normal_", "fill_"} <= set(ran)
    plain, model = DecoderLM.from_hf(folder), load_model("stories")
    ours, theirs = model.state_dict(), plain.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == model.config.tie_embeddings
    seeded = torch.Generator().manual_seed(0)
    ids = torch.randint(model.config.vocab_size, (2, 24), generator=seeded)
    with torch.no_grad():
        assert torch.equal(model(ids), plain(ids))
    # only meta tensors are skipped: real ones are initialised as usual, under the mode too
    with skip_meta_init():
        real = torch.nn.init.normal_(torch.zeros(1000))
        meta = torch.nn.init.normal_(torch.empty(1000, device="meta"))
        built = torch.nn.Linear(4, 4)
    assert real.std() > 0.5 and meta.is_meta and built.weight.abs().sum() > 0


def test_load_model_imports_no_dynamo():
    """``torch._dynamo`` (imported by torch's meta ``normal_``) is a second of start-up."""
    code = (
        "import sys, torch\n"
        "if 'torch._dynamo' in sys.modules:\n"
        "    print('torch imports torch._dynamo itself')\n"
        "    sys.exit()\n"
        "from llmbook.pretrained import load_model\n"
        "load_model('stories')\n"
        "print('torch._dynamo imported:', 'torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if result.stdout.startswith("torch imports"):
        pytest.skip(result.stdout.strip())
    assert result.stdout.strip() == "torch._dynamo imported: False"


def test_frozen_imports_freezes_only_inside_the_block():
    """``llmbook generate`` keeps the collector off torch's objects, and gives them back."""
    import gc

    from llmbook.cli.common import frozen_imports

    assert gc.get_freeze_count() == 0
    with frozen_imports("json"):
        assert gc.get_freeze_count() > 1000
    assert gc.get_freeze_count() == 0
