"""The ``llmbook`` command line (hand-written: chapter 08 teaches the trainer it drives).

    llmbook train --model stories-small --corpus stories --out runs/stories
    llmbook train --model gpt2-tiny --text my.txt --tokenizer gpt2 --out runs/mine
    llmbook train --out runs/stories --resume
    llmbook generate "Once upon a time" --temperature 0.8 --seed 1

Each subcommand is one ``add_<name>(subparsers)`` function that defines its options and sets
``func`` to the function that runs it (returning the exit status); ``COMMANDS`` lists them, so
a new subcommand is one more function and one more entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

__all__ = ["COMMANDS", "build_parser", "main"]

RUN_FILE = "run.json"  # what a run folder holds to say what it is (and to resume it)


class CliError(Exception):
    """A mistake in the command line: printed as ``llmbook: error: ...``, exit status 2."""


# ---------------------------------------------------------------------------- llmbook train


def add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model preset on a corpus or a text file",
        description="Train a model preset (llmbook.model.ModelConfig) on a named corpus or a "
        "UTF-8 text file. The output folder receives run.json (the settings, to resume), "
        "checkpoints/ (resumable, safetensors weights), history.json, loss.png and, at the end, "
        "model/ (config.json + model.safetensors, loadable with DecoderLM.from_hf).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--model",
        default=None,
        help="model preset name (llmbook.model presets); required unless --resume",
    )
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--corpus",
        default=None,
        help="named corpus: stories (shipped), "
        "tinyshakespeare or tinystories (downloaded on first use)",
    )
    source.add_argument("--text", type=Path, default=None, help="a UTF-8 text file to train on")
    data.add_argument(
        "--tokenizer",
        default="stories",
        help="'stories' (the book's 2,048 ids) "
        "or a tiktoken encoding name such as gpt2 or cl100k_base",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of the text held out for validation (cut at a document boundary)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder of the run")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its "
        "newest checkpoint, with the settings saved in its run.json",
    )
    opt = p.add_argument_group("training (llmbook.training.TrainConfig)")
    opt.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    opt.add_argument("--batch-size", type=int, default=16, help="sequences per optimizer step")
    opt.add_argument(
        "--context-length",
        type=int,
        default=None,
        help="tokens per sequence (default: the preset's context length)",
    )
    opt.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step")
    opt.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    opt.add_argument("--min-lr", type=float, default=1e-4, help="final learning rate (cosine)")
    opt.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    opt.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay on matrices")
    opt.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: off)")
    opt.add_argument("--dropout", type=float, default=None, help="dropout (default: the preset's)")
    opt.add_argument(
        "--eval-interval", type=int, default=100, help="steps between evaluations and checkpoints"
    )
    opt.add_argument("--eval-batches", type=int, default=10, help="batches per evaluation")
    opt.add_argument("--seed", type=int, default=0, help="seed of the weights, data and dropout")
    opt.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps"
    )
    opt.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="bfloat16 autocast; auto uses it on CUDA only",
    )
    opt.add_argument("--compile", action="store_true", help="torch.compile the model")
    opt.add_argument(
        "--prompt", default="Kai was a", help="prompt of the samples printed at each evaluation"
    )
    opt.add_argument("--sample-tokens", type=int, default=32, help="tokens per sample (0: none)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from llmbook.training import TrainConfig, latest_checkpoint, train

    out: Path = args.out
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 writes
    if args.resume:
        run = read_run(out)
    else:
        run = new_run(args)
        if is_main and ((out / RUN_FILE).exists() or latest_checkpoint(out) is not None):
            raise CliError(
                f"--out {str(out)!r} holds another run; pass --resume to continue it, "
                "or choose a new folder"
            )
    tokenizer = make_tokenizer(run["tokenizer"])
    train_ids, val_ids = token_ids(run, tokenizer)
    model = make_model(run["model"], run["train"]["seed"])
    config = TrainConfig(
        **{**run["train"], "out_dir": str(out), "betas": tuple(run["train"]["betas"])}
    )
    if is_main and not args.resume:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / RUN_FILE, json.dumps(run, indent=2) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    if is_main:
        print(
            f"llmbook train: {n_params:,} parameters, {len(train_ids):,} training tokens, "
            f"{len(val_ids):,} validation tokens -> {out}",
            flush=True,
        )
    history = train(
        model,
        train_ids,
        val_ids,
        config,
        tokenizer=tokenizer,
        prompt=run["prompt"],
        resume=args.resume,
    )
    if is_main:
        finish(out, model, history, tokenizer, val_ids)
    if history["interrupted"]:
        print(f"interrupted; continue with: llmbook train --out {out} --resume")
        return 130
    return 0


def new_run(args: argparse.Namespace) -> dict:
    """The settings of a new run, checked, as the JSON-able dict saved in run.json."""
    from llmbook.training import TrainConfig

    if args.model is None:
        raise CliError("--model is required for a new run (or pass --resume)")
    if args.corpus is None and args.text is None:
        raise CliError("give the data: --corpus NAME or --text FILE")
    if args.text is not None and not args.text.is_file():
        raise CliError(f"--text {str(args.text)!r}: no such file")
    if args.corpus is not None and args.corpus not in known_corpora():
        raise CliError(
            f"--corpus {args.corpus!r} is unknown; available: {', '.join(known_corpora())}"
        )
    model = preset(args.model)
    tokenizer = make_tokenizer(args.tokenizer)
    changes = {"vocab_size": vocab_size(tokenizer)}
    if args.context_length is not None:
        changes["context_length"] = args.context_length
    if args.dropout is not None:
        changes["dropout"] = args.dropout
    model = dataclasses.replace(model, **changes)
    config = TrainConfig(
        max_steps=args.steps,
        batch_size=args.batch_size,
        context_length=model.context_length,
        grad_accum_steps=args.grad_accum,
        lr=args.lr,
        min_lr=args.min_lr,
        warmup_steps=args.warmup,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        eval_interval=args.eval_interval,
        eval_batches=args.eval_batches,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        sample_tokens=args.sample_tokens,
    )
    train_config = dataclasses.asdict(config)
    del train_config["out_dir"]
    return {
        "command": "llmbook " + " ".join(args.argv),
        "model_preset": args.model,
        "model": dataclasses.asdict(model),
        "train": train_config,
        "tokenizer": args.tokenizer,
        "corpus": args.corpus,
        "text": None if args.text is None else str(args.text.resolve()),
        "val_fraction": args.val_fraction,
        "prompt": args.prompt,
    }


def read_run(out: Path) -> dict:
    if not (out / RUN_FILE).is_file():
        raise CliError(
            f"--resume: {str(out / RUN_FILE)!r} not found; is --out the folder of a run?"
        )
    return json.loads((out / RUN_FILE).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- llmbook classroom


def add_classroom(subparsers) -> None:
    """``llmbook classroom student | check | grade``: defined in llmbook/classroom.py."""
    from llmbook.classroom import add_parser

    add_parser(subparsers)


# ---------------------------------------------------------------------------- llmbook generate


def add_generate(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="continue a prompt with a trained model, printing the text as it is generated",
        description="Continue PROMPT with a model and print the text as it streams "
        "(llmbook.generation.stream_generate, with a KV cache). Stops at the end-of-text "
        "token, at a --stop string, or after --max-new-tokens tokens.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("prompt", help="the text to continue, e.g. 'Once upon a time'")
    p.add_argument(
        "--model",
        default="stories",
        help="'stories' (the book's model, shipped with the package), a Hugging Face folder "
        "(config.json + model.safetensors, with its tokenizer files), or the --out folder of "
        "an llmbook train run (or one of its checkpoints)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="'stories' or a tiktoken encoding name; default: the model's own (a run's, or a "
        "Hugging Face folder's tokenizer files; 'stories' for a folder without them)",
    )
    p.add_argument("--max-new-tokens", type=int, default=200, help="most tokens to generate")
    s = p.add_argument_group("sampling (llmbook.generation.generate)")
    s.add_argument(
        "--temperature", type=float, default=0.8, help="0: greedy; <1 sharper, >1 flatter"
    )
    s.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    s.add_argument(
        "--top-p", type=float, default=0.95, help="keep the smallest set holding this mass (1: off)"
    )
    s.add_argument(
        "--min-p", type=float, default=None, help="keep tokens with p >= min_p x the top p"
    )
    s.add_argument(
        "--repetition-penalty", type=float, default=None, help="> 1 lowers tokens already used"
    )
    s.add_argument(
        "--stop", action="append", default=None, metavar="TEXT",
        help="stop once TEXT appears (repeatable); the end-of-text token always stops",
    )  # fmt: skip
    s.add_argument(
        "--seed", type=int, default=None, help="seed of the draws: the same seed, the same text"
    )
    p.add_argument("--no-cache", action="store_true", help="recompute every step (slow; checks)")
    p.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps"
    )
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from llmbook.generation import stream_generate, stream_text
    from llmbook.training import pick_device

    device = pick_device(args.device)
    model, tokenizer, eos = load_for_generation(args.model, args.tokenizer)
    model = model.to(device).eval()
    ids = tokenizer.encode(args.prompt, allowed_special="all")
    generator = None
    if args.seed is not None:
        generator = torch.Generator(device=device).manual_seed(args.seed)
    tokens = stream_generate(
        model,
        ids,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        stop=eos + (args.stop or []) or None,
        tokenizer=tokenizer,
        use_cache=not args.no_cache,
        generator=generator,
    )
    print(args.prompt, end="", flush=True)
    for piece in stream_text(tokenizer, (t for t in tokens if t not in eos)):
        print(piece, end="", flush=True)
    print()
    return 0


def load_for_generation(name: str, tokenizer_name: str | None):
    """``(model, tokenizer, end-of-text ids)`` for ``--model`` and ``--tokenizer``."""
    from llmbook.model import DecoderLM
    from llmbook.pretrained import load_model
    from llmbook.training import latest_checkpoint, load_checkpoint

    path = Path(name)
    if name == "stories" and not path.exists():
        model, default = load_model("stories"), "stories"
    elif (path / RUN_FILE).is_file() or (path.parent.parent / RUN_FILE).is_file():
        run_dir = path if (path / RUN_FILE).is_file() else path.parent.parent
        run = read_run(run_dir)
        checkpoint = path if run_dir != path else latest_checkpoint(run_dir)
        if run_dir == path and (path / "model" / "config.json").is_file():
            model = DecoderLM.from_hf(path / "model")
        elif checkpoint is not None:
            model = make_model(run["model"])
            load_checkpoint(checkpoint, model)
        else:
            raise CliError(f"--model {name!r}: the run has no model/ and no checkpoint yet")
        default = run["tokenizer"]
    elif (path / "config.json").is_file():
        model = DecoderLM.from_hf(path)
        has_files = any((path / f).is_file() for f in ("tokenizer.json", "vocab.json"))
        default = path if has_files else "stories"
    else:
        raise CliError(
            f"--model {name!r}: not 'stories', a Hugging Face folder (config.json) or a run "
            "folder (run.json)"
        )
    tokenizer = generation_tokenizer(tokenizer_name or default)
    return model, tokenizer, end_of_text_ids(tokenizer, path)


def generation_tokenizer(name):
    from llmbook.tokenizer import BPETokenizer

    if isinstance(name, Path):
        return BPETokenizer.from_hf(name)
    return make_tokenizer(name)


def end_of_text_id(tokenizer) -> int | None:
    """The id of the tokenizer's ``<|endoftext|>`` (ours or tiktoken's), or None."""
    specials = getattr(tokenizer, "special_tokens", None) or getattr(
        tokenizer, "_special_tokens", {}
    )
    return specials.get("<|endoftext|>")


def end_of_text_ids(tokenizer, folder: Path) -> list[int]:
    """The tokenizer's ``<|endoftext|>`` and the ``eos_token_id`` of ``folder/config.json``."""
    eot = end_of_text_id(tokenizer)
    ids = [] if eot is None else [eot]
    config = folder / "config.json"
    if config.is_file():
        eos = json.loads(config.read_text(encoding="utf-8")).get("eos_token_id")
        ids += [eos] if isinstance(eos, int) else list(eos or [])
    return sorted(set(ids))


# ---------------------------------------------------------------------------- shared helpers


def known_corpora() -> list[str]:
    from llmbook.download import REMOTE_CORPORA

    return ["stories", *sorted(REMOTE_CORPORA)]


def preset(name: str):
    """``ModelConfig.from_preset(name)``, or a CliError listing the presets."""
    from llmbook.model import PRESETS, ModelConfig

    if name not in PRESETS:
        raise CliError(f"--model {name!r} is not a preset; available: {', '.join(sorted(PRESETS))}")
    return ModelConfig.from_preset(name)


def make_model(fields: dict, seed: int = 0):
    import torch

    from llmbook.model import DecoderLM, ModelConfig

    names = {f.name for f in dataclasses.fields(ModelConfig)}
    torch.manual_seed(seed)  # the initial weights
    return DecoderLM(ModelConfig(**{k: v for k, v in fields.items() if k in names}))


def make_tokenizer(name: str):
    """The book's tokenizer (``stories``) or a tiktoken encoding by name."""
    from llmbook.pretrained import load_tokenizer

    if name == "stories":
        return load_tokenizer(name)
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError:
        raise CliError(
            f"--tokenizer {name!r} is unknown; use 'stories' or one of "
            f"{', '.join(tiktoken.list_encoding_names())}"
        ) from None


def vocab_size(tokenizer) -> int:
    return getattr(tokenizer, "n_vocab", None) or tokenizer.vocab_size


def load_text(run: dict) -> str:
    from llmbook.data import load_corpus

    if run["corpus"] is not None:
        return load_corpus(run["corpus"])
    path = Path(run["text"])
    if not path.is_file():
        raise CliError(f"the run's text file {str(path)!r} no longer exists")
    return path.read_text(encoding="utf-8")


def token_ids(run: dict, tokenizer):
    """The run's text, split at a document boundary, encoded: ``(train_ids, val_ids)``."""
    import torch

    from llmbook.data import encode_text, train_val_split

    try:
        train_text, val_text = train_val_split(load_text(run), run["val_fraction"])
    except ValueError as error:
        raise CliError(
            f"cannot split the text into training and validation parts: {error}"
        ) from None
    return tuple(torch.tensor(encode_text(tokenizer, t)) for t in (train_text, val_text))


def write_text(path: Path, text: str) -> None:
    from llmbook.files import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def finish(out: Path, model, history: dict, tokenizer, val_ids) -> None:
    """history.json, loss.png, the final model as a Hugging Face folder, and the loss per
    character of the validation text (comparable across tokenizers)."""
    from llmbook.hf import save_hf

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

    from llmbook.files import atomic_write

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


# ---------------------------------------------------------------------------- entry point

COMMANDS = [add_train, add_classroom, add_generate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmbook", description="Train (and use) the models of the llmbook textbook."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``llmbook`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except CliError as error:
        parser.exit(2, f"llmbook {args.command}: error: {error}\n")
    except (TypeError, ValueError) as error:  # a bad option value caught by the library's checks
        parser.exit(2, f"llmbook {args.command}: error: {error}\n")
    except FloatingPointError as error:
        parser.exit(1, f"llmbook {args.command}: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
