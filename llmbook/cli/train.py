"""``llmbook train``: train a model preset on a corpus (hand-written; drives chapter 08's ``train``).

    llmbook train --model stories-small --out runs/stories          # the book's corpus
    llmbook train --model stories-small --corpus fresh-stories:30M --windows once --out runs/fresh
    llmbook train --model gpt2-tiny --text my.txt --tokenizer gpt2 --out runs/mine
    llmbook train --out runs/stories --resume                       # after a kill or Ctrl-C
    llmbook train --out runs/stories --resume --steps 2000          # train a run further

The output folder is one run's: ``run.json`` (its settings, and the SHA-256 of its text),
``checkpoints/``, and at the end ``history.json``, ``loss.png`` and ``model/``. One process at a
time trains into it (``llmbook.io.runs.lock_run_folder``). ``--resume`` continues with the
settings in ``run.json``; it may change only ``RESUMABLE`` options (how long, how it reports, on
what it runs), since the others decide which steps are taken. Re-running a run's command says
whether the run is finished or where it stopped, and how to go on.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from llmbook.cli.common import RUN_FILE, CliError, make_model, make_tokenizer, read_run, write_text
from llmbook.cli.generate import end_of_text_id, resolve_device

__all__ = ["DEFAULTS", "RESUMABLE", "add_train", "run_train"]

# The defaults of a new run (TrainConfig's, where it has the field). Every option's parser
# default is None, so that the options a user typed are known: --resume compares those.
DEFAULTS = {
    "corpus": "stories",
    "tokenizer": "stories",
    "val_fraction": 0.1,
    "context_length": "the preset's",
    "dropout": "the preset's",
    **dict.fromkeys(("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"), "the preset's"),
    "steps": 1000,
    "batch_size": 16,
    "grad_accum": 1,
    "lr": 1e-3,
    "min_lr": 1e-4,
    "warmup": 50,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "eval_interval": 100,
    "eval_batches": 10,
    "seed": 0,
    "device": "auto",
    "precision": "auto",
    "compile": False,
    "prompt": "Kai was a",
    "sample_tokens": 32,
    "windows": "random",
}

# TrainConfig fields added after runs were saved without them, with the value those runs used.
ADDED_LATER = {"windows": "random"}

# The model's shape, which a run may change from its preset's (e.g. for a scaling study).
SHAPE = {
    "d_model": "width of the residual stream",
    "n_layers": "transformer blocks",
    "n_heads": "query heads",
    "n_kv_heads": "key/value heads",
    "d_ff": "hidden width of the feed-forward network",
}

# Where run.json keeps each option's value.
FIELDS = {
    "model": ("model_preset",),
    "corpus": ("corpus",),
    "text": ("text",),
    "tokenizer": ("tokenizer",),
    "val_fraction": ("val_fraction",),
    "context_length": ("model", "context_length"),
    "dropout": ("model", "dropout"),
    **{name: ("model", name) for name in SHAPE},
    "steps": ("train", "max_steps"),
    "batch_size": ("train", "batch_size"),
    "grad_accum": ("train", "grad_accum_steps"),
    "lr": ("train", "lr"),
    "min_lr": ("train", "min_lr"),
    "warmup": ("train", "warmup_steps"),
    "weight_decay": ("train", "weight_decay"),
    "grad_clip": ("train", "grad_clip"),
    "eval_interval": ("train", "eval_interval"),
    "eval_batches": ("train", "eval_batches"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "precision": ("train", "precision"),
    "compile": ("train", "compile"),
    "sample_tokens": ("train", "sample_tokens"),
    "windows": ("train", "windows"),
    "prompt": ("prompt",),
}

# What --resume may change: how long the run goes on, what it reports, where and how each step
# is computed (the same steps, up to float rounding). More --steps recompute the cosine schedule
# for the new end (the learning rate of the steps to come rises again if the run had finished).
# Everything else (model, data, batch, learning rates, seed, ...) decides which steps are taken.
RESUMABLE = (
    "steps",
    "eval_interval",
    "eval_batches",
    "sample_tokens",
    "prompt",
    "device",
    "precision",
    "compile",
    "grad_accum",
)


def option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def preset_names() -> list[str]:
    """The names in ``llmbook.model.PRESETS``, read from the module's source: importing it
    would import torch, and ``llmbook train --help`` would wait seconds for it."""
    source = Path(importlib.util.find_spec("llmbook.model").origin).read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["PRESETS"]:
            return [ast.literal_eval(key) for key in node.value.keys]
    raise LookupError("llmbook/model.py defines no PRESETS dict")  # a test keeps it there


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default from ``DEFAULTS``, said once; the presets listed."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "{presets}" in text:
            text = text.replace("{presets}", ", ".join(preset_names()))
        if action.dest in DEFAULTS and not isinstance(DEFAULTS[action.dest], bool):
            text += f" (default: {DEFAULTS[action.dest]})"
        return text


def add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model preset on a corpus or a text file",
        description="Train a model preset (llmbook.model.ModelConfig) on a named corpus or a "
        "UTF-8 text file. The output folder receives run.json (the settings, to resume), "
        "checkpoints/ (resumable, safetensors weights, verified by SHA-256), history.json, "
        "loss.png and, at the end, model/ (config.json + model.safetensors, loadable with "
        "DecoderLM.from_hf). --resume may change only " + ", ".join(map(option, RESUMABLE)) + ".",
        formatter_class=HelpFormatter,
        allow_abbrev=False,  # --resume compares the options given: spelled out, never guessed
    )
    model = p.add_argument_group("model")
    model.add_argument("--model", help="model preset: {presets}; required for a new run")
    model.add_argument("--context-length", type=int, help="tokens per sequence")
    model.add_argument("--dropout", type=float, help="dropout probability")
    for name, what in SHAPE.items():
        model.add_argument(option(name), type=int, help=what)
    data = p.add_argument_group("data")
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--corpus",
        help="named corpus: stories (the book's, shipped), fresh-stories:SIZE (SIZE characters "
        "of new stories from the generator, e.g. fresh-stories:30M; the same on every machine), "
        "tinyshakespeare or tinystories (downloaded on first use)",
    )
    source.add_argument("--text", type=Path, help="a UTF-8 text file to train on")
    data.add_argument(
        "--tokenizer",
        help="'stories' (the book's 2,048 ids) or a tiktoken encoding name such as gpt2",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        help="share of the text held out for validation (cut at a document boundary)",
    )
    folder = p.add_argument_group("run folder")
    folder.add_argument("--out", type=Path, required=True, help="output folder of the run")
    folder.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint, with the settings in its "
        "run.json; of the options below only " + ", ".join(map(option, RESUMABLE)) + " may "
        "change",
    )
    opt = p.add_argument_group("training (llmbook.training.TrainConfig)")
    opt.add_argument("--steps", type=int, help="optimizer steps")
    opt.add_argument("--batch-size", type=int, help="sequences per optimizer step")
    opt.add_argument("--grad-accum", type=int, help="micro-batches per step")
    opt.add_argument("--lr", type=float, help="peak learning rate")
    opt.add_argument("--min-lr", type=float, help="final learning rate (cosine)")
    opt.add_argument("--warmup", type=int, help="linear warm-up steps")
    opt.add_argument("--weight-decay", type=float, help="AdamW decay on matrices")
    opt.add_argument("--grad-clip", type=float, help="max gradient norm (0: off)")
    opt.add_argument("--eval-interval", type=int, help="steps between evaluations and checkpoints")
    opt.add_argument("--eval-batches", type=int, help="batches per evaluation")
    opt.add_argument("--seed", type=int, help="seed of the weights, data and dropout")
    opt.add_argument(
        "--windows",
        choices=["random", "once"],
        help="training windows: random (anywhere in the text) or once (the non-overlapping "
        "windows, each read once per pass over the text)",
    )
    opt.add_argument("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    opt.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16"],
        help="bfloat16 autocast; auto uses it on CUDA only",
    )
    opt.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the model (off)"
    )
    opt.add_argument("--prompt", help="prompt of the samples printed at each evaluation")
    opt.add_argument("--sample-tokens", type=int, help="tokens per sample (0: none)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from llmbook.io.runs import RunFolderBusyError, lock_run_folder
    from llmbook.training import TrainConfig, train

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {str(out)!r} is a file; give a folder for the run")
    if args.device is not None:
        resolve_device(args.device)  # a CliError, as llmbook generate's, if it is not here
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 writes
    try:
        owner = lock_run_folder(out) if is_main else contextlib.nullcontext()
    except RunFolderBusyError as error:
        raise CliError(f"--out {error}") from None
    with owner:
        plan = plan_run(args, out)
        if plan is None:  # finished: nothing to do
            return 0
        run, text, resume = plan
        tokenizer = make_tokenizer(run["tokenizer"])
        train_ids, val_ids = token_ids(run, text, tokenizer)
        run["ids_sha256"] = ids_sha256(train_ids, val_ids)
        try:
            model = make_model(run["model"], run["train"]["seed"])
            fields = {**run["train"], "betas": tuple(run["train"]["betas"])}
            config = TrainConfig(**fields, out_dir=str(out))
        except (TypeError, ValueError) as error:
            raise CliError(
                f"the settings in {str(out / RUN_FILE)!r} are not valid: {error}"
            ) from None
        if is_main:
            write_text(out / RUN_FILE, json.dumps(run, indent=2) + "\n")
            n_params = sum(p.numel() for p in model.parameters())
            print(
                f"llmbook train: {n_params:,} parameters, {len(train_ids):,} training tokens, "
                f"{len(val_ids):,} validation tokens -> {out}\n"
                f"  SHA-256 of the token ids (training, then validation): {run['ids_sha256']}",
                flush=True,
            )
        history = train(
            model,
            train_ids,
            val_ids,
            config,
            tokenizer=tokenizer,
            prompt=run["prompt"],
            resume=resume,
        )
        if is_main:
            finish(out, model, history, tokenizer, val_ids)
    if history["interrupted"]:
        print(f"interrupted; continue with: llmbook train --out {out} --resume")
        return 130
    return 0


def plan_run(args: argparse.Namespace, out: Path):
    """What to do in ``out``: ``(run settings, text, resume)``, or None if the run is finished.
    Raises ``CliError`` where the folder holds something else than the options describe."""
    saved = check_settings(read_run(out), out) if (out / RUN_FILE).exists() else None
    done = steps_done(out)
    if args.resume:
        if saved is None:
            read_run(out)  # raises: run.json not found
        run = resumed_run(args, saved)
        text = load_text(run, check=True)
        if done is None:
            print(f"llmbook train: no checkpoint in {out} yet (the run stopped before its first "
                  "save): starting it from step 0", flush=True)  # fmt: skip
            return run, text, False
        total = run["train"]["max_steps"]
        if done > total:
            raise CliError(f"--steps {total} is below the {done} steps the run in {out} has done")
        if done == total:
            print(finished(out, done))
            return None
        return run, text, True
    run, text = new_run(args)
    if saved is None:
        if done is not None:
            raise CliError(
                f"--out {str(out)!r} holds checkpoints but no {RUN_FILE}: not a folder of "
                "llmbook train; choose a new folder"
            )
        return run, text, False
    if done is None:  # a run killed before its first save, or whose text was rejected
        print(f"llmbook train: {out} holds a run that saved no checkpoint: starting afresh "
              "with these settings", flush=True)  # fmt: skip
        return run, text, False
    fixed = [d for d in differences(saved, run) if d not in RESUMABLE]
    if fixed:
        said = ", ".join(said_differs(saved, run, d) for d in fixed)
        raise CliError(
            f"--out {str(out)!r} holds another run; pass --resume to continue it (with its own "
            f"settings), or choose a new folder. Settings that differ: {said}"
        )
    total = saved["train"]["max_steps"]
    changes = [d for d in differences(saved, run) if d in RESUMABLE]
    if done >= total and not changes:
        print(finished(out, done))
        return None
    again = " ".join(f"{option(d)} {get(run, d)}" for d in changes)
    where = "finished" if done >= total else "stopped"
    raise CliError(
        f"--out {str(out)!r} holds this run, {where} at step {done} of {total}; to continue it: "
        f"llmbook train --out {out} --resume {again}".rstrip()
    )


def check_settings(run: dict, out: Path) -> dict:
    """``run`` (read from ``out/run.json``), if its "train" object has exactly TrainConfig's
    fields (a missing one would silently take its default)."""
    from llmbook.training import TrainConfig

    expected = {f.name for f in dataclasses.fields(TrainConfig)} - {"out_dir"}
    for name, value in ADDED_LATER.items():  # an older llmbook saved no such field
        run["train"].setdefault(name, value)
    missing, unknown = sorted(expected - set(run["train"])), sorted(set(run["train"]) - expected)
    if missing or unknown:
        raise CliError(
            f'the settings in {str(out / RUN_FILE)!r} are not valid: its "train" object '
            f"lacks {missing} and has unknown {unknown}; it needs TrainConfig's fields"
        )
    return run


def said_differs(saved: dict, run: dict, dest: str) -> str:
    if get(saved, dest) == get(run, dest):  # the same --text or --corpus: its text changed
        return f"{option(dest)} {get(run, dest)!r} (its text changed since the run started)"
    return f"{option(dest)} {get(run, dest)!r} (the run's: {get(saved, dest)!r})"


def finished(out: Path, done: int) -> str:
    return (
        f"llmbook train: the run in {out} is finished (step {done} of {done}); to train it "
        f"further: llmbook train --out {out} --resume --steps N (N > {done})"
    )


def steps_done(out: Path) -> int | None:
    """The step of the run's newest checkpoint, or None if it has none."""
    from llmbook.io.runs import checkpoint_step
    from llmbook.training import latest_checkpoint

    folder = latest_checkpoint(out)  # CheckpointError (a ValueError) names a damaged `latest`
    return None if folder is None else checkpoint_step(folder)


def get(run: dict, dest: str):
    value = run
    for key in FIELDS[dest]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def differences(saved: dict, run: dict) -> list[str]:
    """The options whose values differ between two runs' settings (the text's checksum counts
    as --text or --corpus)."""
    found = [d for d in FIELDS if get(saved, d) != get(run, d)]
    if saved.get("text_sha256") not in (None, run.get("text_sha256")) and not (
        {"text", "corpus"} & set(found)
    ):
        found.append("text" if run["text"] is not None else "corpus")
    return found


def resumed_run(args: argparse.Namespace, saved: dict) -> dict:
    """``saved`` with the options given on the command line that a resume may change;
    ``CliError`` naming those it may not (unless given with the run's own value)."""
    run = json.loads(json.dumps(saved))  # a deep copy
    refused = []
    for dest, path in FIELDS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest == "text":
            value = str(value.resolve())
        if dest in RESUMABLE:
            *parents, key = path
            place = run
            for parent in parents:
                place = place[parent]
            place[key] = value
        elif value != get(saved, dest):
            refused.append(f"{option(dest)} (the run's {get(saved, dest)!r}, given {value!r})")
    if refused:
        raise CliError(
            f"--resume cannot change {', '.join(refused)}: these decide which steps are taken, "
            "so the result would be neither run. A resume may change "
            f"{', '.join(map(option, RESUMABLE))}; for other settings start a new run in "
            "another --out folder"
        )
    return run


def new_run(args: argparse.Namespace) -> tuple[dict, str]:
    """The settings of a new run, checked, as the JSON-able dict saved in run.json; and its
    text."""
    from llmbook.training import TrainConfig

    value = {dest: getattr(args, dest) for dest in FIELDS}
    value.update({d: DEFAULTS[d] for d in DEFAULTS if value.get(d) is None})
    if args.text is not None:
        value["corpus"] = None
    if args.model is None:
        raise CliError("--model is required for a new run (or pass --resume)")
    if args.text is not None and not args.text.is_file():
        raise CliError(f"--text {str(args.text)!r}: no such file")
    check_corpus_name(value["corpus"])
    model = preset(args.model)
    tokenizer = make_tokenizer(value["tokenizer"])
    changes = {"vocab_size": vocab_size(tokenizer)}
    if args.context_length is not None:
        changes["context_length"] = args.context_length
    if args.dropout is not None:
        changes["dropout"] = args.dropout
    changes |= {name: getattr(args, name) for name in SHAPE if getattr(args, name) is not None}
    try:
        model = dataclasses.replace(model, **changes)
    except (TypeError, ValueError) as error:
        raise CliError(f"--model {args.model} with these changes is not valid: {error}") from None
    config = TrainConfig(
        max_steps=value["steps"],
        batch_size=value["batch_size"],
        context_length=model.context_length,
        grad_accum_steps=value["grad_accum"],
        lr=value["lr"],
        min_lr=value["min_lr"],
        warmup_steps=value["warmup"],
        weight_decay=value["weight_decay"],
        grad_clip=value["grad_clip"],
        eval_interval=value["eval_interval"],
        eval_batches=value["eval_batches"],
        seed=value["seed"],
        device=value["device"],
        precision=value["precision"],
        compile=value["compile"],
        sample_tokens=value["sample_tokens"],
        windows=value["windows"],
    )
    train_config = dataclasses.asdict(config)
    del train_config["out_dir"]
    run = {
        "command": "llmbook " + " ".join(args.argv),
        "model_preset": args.model,
        "model": dataclasses.asdict(model),
        "train": train_config,
        "tokenizer": value["tokenizer"],
        "corpus": value["corpus"],
        "text": None if args.text is None else str(args.text.resolve()),
        "val_fraction": value["val_fraction"],
        "prompt": value["prompt"],
    }
    text = load_text(run)
    run["text_sha256"] = sha256(text)
    return run, text


def check_corpus_name(name: str | None) -> None:
    """A CliError unless ``name`` is None (--text), a known corpus or fresh-stories:SIZE."""
    from llmbook.stories.fresh import FRESH_PREFIX, is_fresh_name, parse_size

    if is_fresh_name(name):
        try:
            parse_size(name.removeprefix(FRESH_PREFIX), "the SIZE of fresh-stories:SIZE")
        except ValueError as error:
            raise CliError(f"--corpus {name!r}: {error}") from None
    elif name is not None and name not in known_corpora():
        raise CliError(
            f"--corpus {name!r} is unknown; available: {', '.join(known_corpora())}, "
            "fresh-stories:SIZE (e.g. fresh-stories:30M)"
        )


def known_corpora() -> list[str]:
    from llmbook.io.download import REMOTE_CORPORA

    return ["stories", *sorted(REMOTE_CORPORA)]


def preset(name: str):
    """``ModelConfig.from_preset(name)``, or a CliError listing the presets."""
    from llmbook.model import PRESETS, ModelConfig

    if name not in PRESETS:
        raise CliError(f"--model {name!r} is not a preset; available: {', '.join(sorted(PRESETS))}")
    return ModelConfig.from_preset(name)


def vocab_size(tokenizer) -> int:
    return getattr(tokenizer, "n_vocab", None) or tokenizer.vocab_size


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_text(run: dict, check: bool = False) -> str:
    """The run's text; with ``check``, verified against the SHA-256 in its run.json."""
    from llmbook.data import load_corpus
    from llmbook.stories.fresh import FRESH_PREFIX, fresh_stories, is_fresh_name

    if is_fresh_name(run["corpus"]):
        size = run["corpus"].removeprefix(FRESH_PREFIX)
        text, what = fresh_stories(size, progress=True)[0], f"the corpus {run['corpus']!r}"
    elif run["corpus"] is not None:
        text, what = load_corpus(run["corpus"]), f"the corpus {run['corpus']!r}"
    else:
        path = Path(run["text"])
        if not path.is_file():
            raise CliError(f"the run's text file {str(path)!r} no longer exists")
        text, what = path.read_text(encoding="utf-8"), f"the run's text file {str(path)!r}"
    expected = run.get("text_sha256")
    if check and expected is None:
        print(f"note: {RUN_FILE} holds no checksum of the text (an older llmbook wrote it): "
              f"{what} is not verified")  # fmt: skip
    elif check and sha256(text) != expected:
        raise CliError(
            f"{what} changed since the run started (SHA-256 {expected[:12]}... then, "
            f"{sha256(text)[:12]}... now): resuming would train on other data. Restore it, or "
            "start a new run in another --out folder"
        )
    return text


def token_ids(run: dict, text: str, tokenizer):
    """The run's text, split at a document boundary, encoded: ``(train_ids, val_ids)``."""
    import torch

    from llmbook.data import encode_text, train_val_split

    try:
        train_text, val_text = train_val_split(text, run["val_fraction"])
    except ValueError as error:
        raise CliError(
            f"cannot split the text into training and validation parts: {error}"
        ) from None
    ids = tuple(torch.tensor(encode_text(tokenizer, t)) for t in (train_text, val_text))
    length = run["model"]["context_length"]
    for part, part_ids in zip(("training", "validation"), ids):
        if len(part_ids) <= length:
            raise CliError(
                f"the text is too short: its {part} part has {len(part_ids)} tokens, but a "
                f"window needs more than --context-length {length}; give a longer text (or "
                "change --val-fraction)"
            )
    return ids


def ids_sha256(*parts) -> str:
    """SHA-256 of token ids as little-endian int32, the parts one after the other: the same ids
    give the same digest on every machine."""
    import numpy as np

    digest = hashlib.sha256()
    for ids in parts:
        digest.update(np.asarray(ids, dtype="<i4").tobytes())
    return digest.hexdigest()


def finish(out: Path, model, history: dict, tokenizer, val_ids) -> None:
    """history.json, loss.png, the final model as a Hugging Face folder, and the loss per
    character of the validation text (comparable across tokenizers)."""
    from llmbook.io.hf import save_hf

    write_text(out / "history.json", json.dumps(history) + "\n")
    plot_history(history, out / "loss.png")
    try:
        save_hf(model, out / "model", eos_token_id=end_of_text_id(tokenizer))
    except (ValueError, AttributeError) as error:  # no Hugging Face twin: the checkpoint remains
        print(f"model/ not written: {error}")
    if history["val_loss"]:
        chars = len(tokenizer.decode(val_ids.tolist()))
        per_char = history["val_loss"][-1] * len(val_ids) / chars
        print(
            f"validation loss {history['val_loss'][-1]:.4f} nats/token = {per_char:.4f} nats/char"
        )


def plot_history(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmbook.io.files import atomic_write

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s + 1 for s in history["step"]], history["loss"], alpha=0.4, label="training batch")
    ax.plot(history["eval_step"], history["train_loss"], "o-", label="training (evaluation)")
    ax.plot(history["eval_step"], history["val_loss"], "o-", label="validation")
    ax.set(xlabel="optimizer step", ylabel="loss (nats per token)", title="llmbook train")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
