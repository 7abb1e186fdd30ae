"""``llmbook train``: train a model preset on a corpus (hand-written; drives chapter 08's ``train``).

llmbook train --model stories-small --corpus stories --out runs/stories
llmbook train --model gpt2-tiny --text my.txt --tokenizer gpt2 --out runs/mine
llmbook train --out runs/stories --resume
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from llmbook.cli.common import RUN_FILE, CliError, make_model, make_tokenizer, read_run, write_text
from llmbook.cli.generate import end_of_text_id

__all__ = ["add_train", "run_train"]


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
