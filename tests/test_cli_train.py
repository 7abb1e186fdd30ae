"""Issues 18 and 19: ``llmbook train`` — its help, what --resume may change, re-running a run's
command, the checksum of the text, folders without checkpoints, damaged checkpoints and two
trainers on one --out (a real second process). One table row per case, with an id."""

import argparse
import ast
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import llmbook.cli
from llmbook import load_corpus
from llmbook.cli import build_parser, main
from llmbook.cli.train import DEFAULTS, FIELDS, RESUMABLE, new_run
from llmbook.training import TrainConfig, latest_checkpoint

CLI = Path(llmbook.cli.__file__).parent  # the installed package's: also in a student copy
FAST = ["--model", "stories-tiny", "--context-length", "16", "--batch-size", "4", "--steps", "4",
        "--eval-interval", "2", "--eval-batches", "1", "--sample-tokens", "0", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory, text_file):
    """A finished 4-step run (the tests that change it work on a copy)."""
    out = tmp_path_factory.mktemp("runs") / "done"
    assert main(["train", "--text", str(text_file), "--out", str(out), *FAST]) == 0
    return out


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def fails(capsys, argv, code=2) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    return capsys.readouterr().err


# ------------------------------------------------------------------ --help


def help_text(capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "250")  # no line wrapped inside a preset's name
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return capsys.readouterr().out


def test_help_lists_the_presets_and_groups_the_options(capsys, monkeypatch):
    from llmbook.cli.train import preset_names
    from llmbook.model import PRESETS

    assert preset_names() == list(PRESETS)  # read from llmbook/model.py without importing torch
    shown = " ".join(help_text(capsys, monkeypatch).split())
    assert all(name in shown for name in PRESETS)
    model, data = shown.index("model:"), shown.index("data:")
    assert model < shown.index("--model MODEL model preset") < data  # under "model", not "data"
    assert "(default: None)" not in shown
    corpus = shown[shown.index("--corpus CORPUS named") : shown.index("--text TEXT a UTF-8")]
    assert corpus.endswith("(default: stories) ")  # the book's corpus
    assert "(default: the preset's)" in shown


def test_help_says_each_default_once():
    parser = build_parser()
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0]
    train = sub.choices["train"]
    formatter = train.formatter_class("llmbook train")
    helps = {a.dest: formatter._get_help_string(a) for a in train._actions}
    assert all(text.count("(default:") <= 1 for text in helps.values()), helps
    shown = {dest for dest, text in helps.items() if "(default:" in text}
    assert shown == set(DEFAULTS) - {"compile"}  # a flag: off unless given


def test_defaults_are_train_configs():
    config = TrainConfig()
    names = {"steps": "max_steps", "grad_accum": "grad_accum_steps", "warmup": "warmup_steps"}
    for dest, value in DEFAULTS.items():
        field = names.get(dest, dest)
        if hasattr(config, field) and value != "the preset's":
            assert getattr(config, field) == value, dest


def test_the_default_corpus_is_the_books(tmp_path):
    argv = ["train", "--model", "stories-tiny", "--out", str(tmp_path / "run")]
    args = build_parser().parse_args(argv)
    args.argv = argv
    run, text = new_run(args)
    assert run["corpus"] == "stories" and run["text"] is None and text == load_corpus("stories")
    assert run["text_sha256"] == __import__("hashlib").sha256(text.encode()).hexdigest()


def test_the_command_line_modules_import_no_torch_at_the_top():
    """``llmbook --help`` must not wait for torch: common.py and train.py import it lazily."""
    for name in ("common", "train"):
        tree = ast.parse((CLI / f"{name}.py").read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        modules += [n.module for n in top if isinstance(n, ast.ImportFrom)]
        heavy = [m for m in modules if m.split(".")[0] in ("torch", "numpy", "safetensors")]
        assert not heavy and all(m.startswith("llmbook.cli") for m in modules if "llmbook" in m)


# ------------------------------------------------------------------ re-running, resuming


def test_rerunning_a_finished_runs_command_says_it_is_finished(finished, text_file, capsys):
    stamp = (latest_checkpoint(finished) / "state.pt").stat().st_mtime_ns
    assert main(["train", "--text", str(text_file), "--out", str(finished), *FAST]) == 0
    out = capsys.readouterr().out
    assert f"the run in {finished} is finished (step 4 of 4)" in out
    assert f"to train it further: llmbook train --out {finished} --resume --steps N (N > 4)" in out
    assert (latest_checkpoint(finished) / "state.pt").stat().st_mtime_ns == stamp  # not retrained
    assert main(["train", "--out", str(finished), "--resume"]) == 0  # the same with --resume
    assert "is finished (step 4 of 4)" in capsys.readouterr().out


def test_rerunning_a_stopped_runs_command_says_where_it_stopped(
    finished, text_file, tmp_path, capsys
):
    out = copy(finished, tmp_path)
    (out / "checkpoints" / "latest").write_text("step_0000002")  # as after a kill at step 3
    err = fails(capsys, ["train", "--text", str(text_file), "--out", str(out), *FAST])
    stopped = "holds this run, stopped at step 2 of 4; to continue it"
    assert f"{stopped}: llmbook train --out {out} --resume" in err
    err = fails(
        capsys, ["train", "--text", str(text_file), "--out", str(out), *FAST, "--steps", "6"]
    )
    assert "--resume --steps 6" in err


def test_resume_with_more_steps_trains_on(finished, tmp_path, capsys):
    out = copy(finished, tmp_path)
    assert (
        main(["train", "--out", str(out), "--resume", "--steps", "6", "--eval-interval", "3"]) == 0
    )
    history = json.loads((out / "history.json").read_text())
    assert history["step"] == list(range(6)) and history["eval_step"] == [2, 4, 6]
    saved = json.loads((out / "run.json").read_text())
    assert saved["train"]["max_steps"] == 6 and saved["train"]["eval_interval"] == 3
    assert latest_checkpoint(out).name == "step_0000006"
    err = fails(capsys, ["train", "--out", str(out), "--resume", "--steps", "5"])
    assert f"--steps 5 is below the 6 steps the run in {out} has done" in err


@pytest.mark.parametrize(
    "given, message",
    [
        pytest.param(
            ["--lr", "0.002"], "--resume cannot change --lr (the run's 0.001, given 0.002)", id="lr"
        ),
        pytest.param(["--seed", "1"], "--seed (the run's 0, given 1)", id="seed"),
        pytest.param(["--batch-size", "8"], "--batch-size (the run's 4, given 8)", id="batch-size"),
        pytest.param(
            ["--min-lr", "0.0002"], "--min-lr (the run's 0.0001, given 0.0002)", id="min-lr"
        ),
        pytest.param(["--warmup", "3"], "--warmup (the run's 50, given 3)", id="warmup"),
        pytest.param(
            ["--weight-decay", "0"], "--weight-decay (the run's 0.1, given 0.0)", id="weight-decay"
        ),
        pytest.param(
            ["--grad-clip", "0.5"], "--grad-clip (the run's 1.0, given 0.5)", id="grad-clip"
        ),
        pytest.param(
            ["--model", "stories-small"],
            "--model (the run's 'stories-tiny', given 'stories-small')",
            id="model",
        ),
        pytest.param(
            ["--context-length", "32"],
            "--context-length (the run's 16, given 32)",
            id="context-length",
        ),
        pytest.param(["--dropout", "0.2"], "--dropout (the run's 0.0, given 0.2)", id="dropout"),
        pytest.param(
            ["--corpus", "stories"], "--corpus (the run's None, given 'stories')", id="corpus"
        ),
        pytest.param(["--text", "/elsewhere.txt"], "--text (the run's '", id="text"),
        pytest.param(
            ["--tokenizer", "gpt2"],
            "--tokenizer (the run's 'stories', given 'gpt2')",
            id="tokenizer",
        ),
        pytest.param(
            ["--val-fraction", "0.2"],
            "--val-fraction (the run's 0.1, given 0.2)",
            id="val-fraction",
        ),
        pytest.param(
            ["--lr", "0.002", "--seed", "3", "--steps", "8"],
            "--lr (the run's 0.001, given 0.002), --seed (the run's 0, given 3)",
            id="two-at-once",
        ),
    ],
)
def test_resume_refuses_options_that_decide_the_steps(finished, capsys, given, message):
    stamp = (finished / "run.json").stat().st_mtime_ns
    err = fails(capsys, ["train", "--out", str(finished), "--resume", *given])
    assert message in err
    assert "these decide which steps are taken" in err
    assert "A resume may change --steps, --eval-interval, --eval-batches" in err
    assert (finished / "run.json").stat().st_mtime_ns == stamp  # nothing written


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(
            ["--lr", "0.001", "--seed", "0", "--model", "stories-tiny"], id="the-runs-own-values"
        ),
        pytest.param(
            ["--eval-batches", "2", "--prompt", "Mia", "--sample-tokens", "3"], id="reporting"
        ),
        pytest.param(
            ["--device", "cpu", "--precision", "float32", "--grad-accum", "2"], id="how-computed"
        ),
    ],
)
def test_resume_accepts_what_may_change(finished, tmp_path, capsys, given):
    out = copy(finished, tmp_path)
    assert main(["train", "--out", str(out), "--resume", "--steps", "5", *given]) == 0
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 5


def test_allow_abbrev_is_off_so_every_given_option_is_known(finished, capsys):
    err = fails(capsys, ["train", "--out", str(finished), "--resume", "--st", "8"])
    assert "unrecognized arguments: --st" in err


def test_a_changed_text_file_is_refused(finished, text_file, tmp_path, capsys):
    out = copy(finished, tmp_path)
    saved = json.loads((out / "run.json").read_text())
    moved = tmp_path / "text.txt"
    moved.write_text(text_file.read_text() + "One more line.\n")
    saved["text"] = str(moved)
    (out / "run.json").write_text(json.dumps(saved))
    err = fails(capsys, ["train", "--out", str(out), "--resume", "--steps", "6"])
    assert f"the run's text file '{moved}' changed since the run started (SHA-256" in err
    assert "resuming would train on other data" in err
    err = fails(capsys, ["train", "--text", str(moved), "--out", str(out), *FAST])
    assert f"--text '{moved}' (its text changed since the run started)" in err


# ------------------------------------------------------------------ folders without checkpoints


def test_a_run_killed_before_its_first_save_can_be_resumed_or_restarted(
    finished, text_file, tmp_path, capsys
):
    for how in ("resume", "rerun"):
        out = copy(finished, tmp_path / how)
        shutil.rmtree(out / "checkpoints")  # the kill came before the first checkpoint
        argv = (
            ["train", "--out", str(out), "--resume"]
            if how == "resume"
            else ["train", "--text", str(text_file), "--out", str(out), *FAST]
        )
        assert main(argv) == 0
        printed = capsys.readouterr().out
        expected = "starting it from step 0" if how == "resume" else "starting afresh"
        assert expected in printed and latest_checkpoint(out).name == "step_0000004"


def test_a_text_rejected_as_too_short_leaves_no_dead_end(finished, text_file, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("A tiny tale.<|endoftext|>Another one, as tiny.", encoding="utf-8")
    out = tmp_path / "run"
    err = fails(capsys, ["train", "--text", str(short), "--out", str(out), *FAST])
    assert "the text is too short: its training part has 6 tokens" in err
    assert "a window needs more than --context-length 16" in err
    assert latest_checkpoint(out) is None
    shutil.copy(
        finished / "run.json", out / "run.json"
    )  # as an older llmbook left it: no checkpoint
    assert main(["train", "--text", str(text_file), "--out", str(out), *FAST]) == 0  # restarted
    assert "holds a run that saved no checkpoint: starting afresh" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["text"] == str(text_file.resolve())


# ------------------------------------------------------------------ damaged folders, bad options


CK = Path("checkpoints", "step_0000004")
TRAIN = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name != "out_dir"}


def edit_run(out: Path, **changes) -> None:
    saved = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**saved, **changes}))


@pytest.mark.parametrize(
    "damage, message",
    [
        pytest.param(
            lambda out: (out / CK / "model.safetensors").write_bytes(b"x"),
            "step_0000004/model.safetensors' does not match its SHA-256",
            id="weights",
        ),
        pytest.param(
            lambda out: (out / CK / "state.pt").write_bytes(b"x"),
            "step_0000004/state.pt' does not match its SHA-256",
            id="state",
        ),
        pytest.param(
            lambda out: (out / "checkpoints" / "latest").write_text(""),
            "checkpoints/latest' must hold the name of a checkpoint folder",
            id="latest-empty",
        ),
        pytest.param(
            lambda out: (out / "run.json").write_text("{"),
            "run.json' is not valid JSON",
            id="run-json-garbled",
        ),
        pytest.param(
            lambda out: (out / "run.json").write_text("[]"),
            "run.json' is not the run.json of llmbook train",
            id="run-json-list",
        ),
        pytest.param(
            lambda out: edit_run(out, train={"lr": "x"}),
            "lacks ['batch_size',",
            id="run-json-train-keys",
        ),
        pytest.param(
            lambda out: edit_run(out, train={**TRAIN, "lr": "x"}),
            "run.json' are not valid: lr must be a float, got str",
            id="run-json-train-type",
        ),
    ],
)
def test_damaged_run_folders(finished, tmp_path, capsys, damage, message):
    out = copy(finished, tmp_path)
    damage(out)
    err = fails(capsys, ["train", "--out", str(out), "--resume", "--steps", "6"])
    assert message in err and "Traceback" not in err


GOOD_RUN = {"model": {}, "train": {}, "tokenizer": "stories", "corpus": "stories", "text": None,
            "val_fraction": 0.1, "prompt": "Kai was a"}  # fmt: skip


def with_run(**changes) -> str:
    return json.dumps({k: v for k, v in {**GOOD_RUN, **changes}.items() if v != "DROP"})


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param("{", "is not valid JSON (Expecting property name", id="garbled"),
        pytest.param(b"\xff{}", "is not valid JSON ('utf-8' codec can't decode", id="not-utf-8"),
        pytest.param(
            "[]",
            "it holds an array ([]), not an object with the keys model, train, tokenizer",
            id="array",
        ),
        pytest.param(with_run(prompt="DROP", text="DROP"), "it lacks text, prompt", id="missing"),
        pytest.param(
            with_run(model=1), '"model" must be an object, not a number (1)', id="model-number"
        ),
        pytest.param(
            with_run(tokenizer=5), '"tokenizer" must be a string, not a number (5)', id="tokenizer"
        ),
        pytest.param(
            with_run(corpus=None, text=5),
            '"text" must be a string or null, not a number (5)',
            id="text-number",
        ),
        pytest.param(
            with_run(corpus=None),
            'one of "corpus" and "text" must be a string, the other null',
            id="no-text",
        ),
        pytest.param(
            with_run(val_fraction="x"),
            '"val_fraction" must be a number, not a string ("x")',
            id="val-fraction-string",
        ),
        pytest.param(
            with_run(val_fraction=True), '"val_fraction" must be a number, not true', id="bool"
        ),
        pytest.param(
            with_run(text_sha256=5, prompt=None),
            '"prompt" must be a string, not null; "text_sha256" must be a string, not a number',
            id="two-wrong",
        ),
    ],
)
def test_read_run_names_the_file_and_what_is_wrong(tmp_path, content, message):
    from llmbook.cli.common import CliError, read_run

    path = tmp_path / "run.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CliError) as error:
        read_run(tmp_path)
    shown = str(error.value)
    assert shown.startswith(repr(str(path))) and message in shown and "\n" not in shown, shown
    path.write_text(with_run())
    assert read_run(tmp_path) == GOOD_RUN


@pytest.mark.parametrize(
    "command",
    [["train", "--out", "OUT", "--resume"], ["generate", "hi", "--model", "OUT"]],
    ids=["train", "generate"],
)
def test_a_wrong_typed_run_json_is_one_line_naming_the_file(finished, tmp_path, capsys, command):
    """Both commands read run.json through read_run: a wrong type is not met later, as a bare
    TypeError or as a command-line option the user never gave ("--tokenizer 5 is unknown")."""
    out = copy(finished, tmp_path)
    edit_run(out, tokenizer=5)
    err = fails(capsys, [str(out) if a == "OUT" else a for a in command])
    path = repr(str(out / "run.json"))
    assert err.strip() == (
        f"llmbook {command[0]}: error: {path} is not the run.json of llmbook train: "
        '"tokenizer" must be a string, not a number (5)'
    )


def test_holds_checkpoints_without_run_json(finished, text_file, tmp_path, capsys):
    out = copy(finished, tmp_path)
    (out / "run.json").unlink()
    err = fails(capsys, ["train", "--text", str(text_file), "--out", str(out), *FAST])
    assert f"--out '{out}' holds checkpoints but no run.json" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(
            ["--out", "FILE"],
            "--out 'FILE' is a file; give a folder for the run",
            id="out-on-a-file",
        ),
        pytest.param(
            ["--device", "cuda:99"],  # as llmbook generate says it (one resolve_device)
            "--device 'cuda:99': this machine has no such device; it has cpu",  # (, cuda, ...)
            id="device-missing",
        ),
        pytest.param(
            ["--device", "gpu"],
            "--device 'gpu' is not a device; use auto, cpu, cuda, cuda:N or mps (this machine "
            "has cpu",
            id="device-garbage",
        ),
        pytest.param(["--seed", str(2**64)], "seed must be below 2**32", id="seed-64-bits"),
        pytest.param(["--lr", "inf"], "lr must be a number >= 0 and finite, got inf", id="lr-inf"),
    ],
)
def test_bad_options(tmp_path, capsys, argv, message):
    (tmp_path / "FILE").write_text("not a folder")
    argv = [str(tmp_path / a) if a == "FILE" else a for a in argv]
    message = message.replace("'FILE'", repr(str(tmp_path / "FILE")))
    err = fails(capsys, ["train", "--model", "stories-tiny", "--out", str(tmp_path / "run"), *argv])
    assert message in err and "Traceback" not in err


# ------------------------------------------------------------------ two trainers


def test_two_trainers_on_one_out(text_file, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "llmbook.cli",
        "train",
        "--text",
        str(text_file),
        "--out",
        str(out),
        *FAST,
    ]
    first = subprocess.Popen(
        [*cmd, "--steps", "5000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while latest_checkpoint(out) is None and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run([*cmd, "--steps", "5000"], capture_output=True, text=True, timeout=240)
    third = subprocess.run(
        [*cmd[:4], "--out", str(out), "--resume"], capture_output=True, text=True, timeout=240
    )
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=240)
    assert first.returncode == 130, err[-3000:]
    for other in (second, third):
        assert other.returncode == 2, other.stderr[-3000:]
        assert (
            f"--out '{out}' is in use by another training process (pid {first.pid})" in other.stderr
        )
        assert "Traceback" not in other.stderr
    saved = json.loads((out / "run.json").read_text())
    assert saved["train"]["max_steps"] == 5000  # the first run's settings, untouched


def test_run_json_records_the_texts_checksum(finished, text_file):
    import hashlib

    saved = json.loads((finished / "run.json").read_text())
    assert saved["text_sha256"] == hashlib.sha256(text_file.read_bytes()).hexdigest()
    assert set(FIELDS) >= set(RESUMABLE)


# ------------------------------------------------------------------ fresh stories, model shape (issue 24)

# The ids of `--corpus fresh-stories:100K` with the book's tokenizer and a 10% validation part:
# the same on every machine (the generator and the tokenizer are exact), and recorded here.
FRESH_100K_IDS = "9acfd53a00390af5e763a408f146cfd91e5c89f63db5f289800ec9252d390ea4"


def test_fresh_stories_train_by_name_and_print_their_ids_checksum(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--corpus", "fresh-stories:100K", "--windows", "once", "--out", str(out)]
    assert main([*argv, *FAST]) == 0
    printed = capsys.readouterr().out
    assert f"SHA-256 of the token ids (training, then validation): {FRESH_100K_IDS}" in printed
    saved = json.loads((out / "run.json").read_text())
    assert saved["corpus"] == "fresh-stories:100K" and saved["train"]["windows"] == "once"
    assert saved["ids_sha256"] == FRESH_100K_IDS
    assert main(["train", "--out", str(out), "--resume", "--steps", "6"]) == 0  # regenerated


@pytest.mark.parametrize(
    "corpus, message",
    [
        ("fresh-stories:2X", "--corpus 'fresh-stories:2X': the SIZE of fresh-stories:SIZE must be "
         "a number of characters such as 30M"),
        ("fresh-stories:0", "must be between 1 and 2,000,000,000 characters, got 0"),
        ("fresh", "--corpus 'fresh' is unknown; available: stories, tinyshakespeare, tinystories, "
         "fresh-stories:SIZE"),
    ],
)  # fmt: skip
def test_bad_fresh_stories_names(tmp_path, capsys, corpus, message):
    err = fails(capsys, ["train", "--model", "stories-tiny", "--corpus", corpus, "--out",
                         str(tmp_path / "run")])  # fmt: skip
    assert message in err and "Traceback" not in err


def test_the_model_shape_can_change_from_the_preset(tmp_path):
    argv = ["train", "--model", "stories-small", "--d-model", "64", "--n-layers", "2",
            "--d-ff", "192", "--out", str(tmp_path / "run")]  # fmt: skip
    args = build_parser().parse_args(argv)
    args.argv = argv
    run, _ = new_run(args)
    shape = {
        k: run["model"][k] for k in ("d_model", "n_layers", "d_ff", "n_heads", "context_length")
    }
    assert shape == {"d_model": 64, "n_layers": 2, "d_ff": 192, "n_heads": 4, "context_length": 256}


def test_a_shape_the_model_refuses_is_one_line_naming_it(tmp_path, capsys):
    err = fails(capsys, ["train", "--model", "stories-small", "--d-model", "130", "--out",
                         str(tmp_path / "run")])  # fmt: skip
    assert "--model stories-small with these changes is not valid:" in err
    assert "d_model" in err and "Traceback" not in err


def test_a_run_saved_before_windows_existed_resumes_with_random_windows(finished, tmp_path):
    run = copy(finished, tmp_path)
    saved = json.loads((run / "run.json").read_text())
    del saved["train"]["windows"]  # as an older llmbook wrote it
    (run / "run.json").write_text(json.dumps(saved))
    assert main(["train", "--out", str(run), "--resume", "--steps", "6"]) == 0
    assert json.loads((run / "run.json").read_text())["train"]["windows"] == "random"
