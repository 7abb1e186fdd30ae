"""``llmbook generate``: continue a prompt, streaming the text (hand-written; chapter 09's sampler).

llmbook generate "Once upon a time" --temperature 0.8 --seed 1

torch and the model are imported when the command runs, not when the parser is built, so that
``llmbook --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmbook.cli.common import (
    RUN_FILE,
    CliError,
    frozen_imports,
    make_model,
    make_tokenizer,
    read_run,
)

__all__ = ["add_generate", "end_of_text_id", "resolve_device", "run_generate"]

MAX_NEW_TOKENS = 1000  # the default cap: a story of the book's corpus ends well before it


def add_generate(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="continue a prompt with a trained model, printing the text as it is generated",
        description="Continue PROMPT with a model and print the text as it streams "
        "(llmbook.generation.stream_generate, with a KV cache). Generation stops when the "
        "model ends its text (its end-of-text token: the end of a story for the book's "
        "model), at a --stop string, or after --max-new-tokens tokens, whichever comes first.",
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
        help="'stories' or a tiktoken encoding name, with as many ids as the model's "
        "vocabulary; default: the model's own (a run's, or a Hugging Face folder's tokenizer "
        "files; 'stories' for a folder without them)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=MAX_NEW_TOKENS,
        help="a cap: at most this many new tokens, if the model has not ended its text before",
    )
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
    with frozen_imports("torch", "llmbook.generation"):
        return stream_to_stdout(args)


def stream_to_stdout(args: argparse.Namespace) -> int:
    """Load the model and tokenizer ``args`` name, then print the prompt and its continuation."""
    import torch

    from llmbook.generation import stream_generate, stream_text

    device = resolve_device(args.device)
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
    try:
        for piece in stream_text(tokenizer, (t for t in tokens if t not in eos)):
            print(piece, end="", flush=True)
    except KeyboardInterrupt:  # Ctrl-C stops the text, quietly
        print()
        return 130
    print()
    return 0


def resolve_device(name: str):
    """The ``torch.device`` that ``--device NAME`` asks for, if this machine has it; else a
    ``CliError`` that says what it has."""
    import torch

    from llmbook.model import default_device

    if name == "auto":
        return default_device()
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    present = ["cpu", *(["cuda"] if cuda else []), *cuda]
    present += ["mps"] if torch.backends.mps.is_available() else []
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise CliError(
            f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps (this "
            f"machine has {', '.join(present)})"
        )
    index = 0 if device.index is None else device.index
    if (
        device.type == "cuda"
        and index >= len(cuda)
        or device.type == "mps"
        and "mps" not in present
    ):
        raise CliError(
            f"--device {name!r}: this machine has no such device; it has {', '.join(present)}"
        )
    return device


def load_for_generation(name: str, tokenizer_name: str | None):
    """``(model, tokenizer, end-of-text ids)`` for ``--model`` and ``--tokenizer``."""
    from llmbook.pretrained import SHIPPED_MODELS, load_model

    path = Path(name)
    if name in SHIPPED_MODELS and not path.exists():
        model, default = load_model(name), "stories"
    elif (path / "config.json").is_file():  # a Hugging Face folder (a shipped one holds run.json)
        model = from_hf(path)
        has_files = any((path / f).is_file() for f in ("tokenizer.json", "vocab.json"))
        default = path if has_files else "stories"
    elif (path / RUN_FILE).is_file() or (path.parent.parent / RUN_FILE).is_file():
        from llmbook.training import latest_checkpoint, load_checkpoint

        run_dir = path if (path / RUN_FILE).is_file() else path.parent.parent
        run = read_run(run_dir)
        checkpoint = path if run_dir != path else latest_checkpoint(run_dir)
        if run_dir == path and (path / "model" / "config.json").is_file():
            model = from_hf(path / "model")
        elif checkpoint is not None:
            model = make_model(run["model"])
            load_checkpoint(checkpoint, model)
        else:
            raise CliError(f"--model {name!r}: the run has no model/ and no checkpoint yet")
        default = run["tokenizer"]
    else:
        raise CliError(
            f"--model {name!r}: not a shipped model ({', '.join(SHIPPED_MODELS)}), a Hugging "
            "Face folder (config.json) or a run folder (run.json)"
        )
    tokenizer = generation_tokenizer(tokenizer_name or default)
    check_tokenizer_fits(tokenizer, tokenizer_name, default, model.config.vocab_size)
    return model, tokenizer, end_of_text_ids(tokenizer, path)


def from_hf(folder: Path):
    """``DecoderLM.from_hf(folder)``, without running the initialisers of the model it builds
    on ``meta`` before loading the weights (they cost a second: ``llmbook.io.meta``)."""
    from llmbook.io.meta import skip_meta_init
    from llmbook.model import DecoderLM

    with skip_meta_init():
        return DecoderLM.from_hf(folder)


def generation_tokenizer(name):
    """The tokenizer of a Hugging Face folder (``name`` a Path), or one by name."""
    from llmbook.tokenizer import BPETokenizer

    if not isinstance(name, Path):
        return make_tokenizer(name)
    try:
        return BPETokenizer.from_hf(name)
    except (KeyError, TypeError, AttributeError, ValueError) as error:  # a malformed file
        files = [f for f in ("tokenizer.json", "vocab.json", "merges.txt") if (name / f).is_file()]
        raise CliError(
            f"--model {str(name)!r}: its tokenizer files ({', '.join(files)}) cannot be read: "
            f"{type(error).__name__}: {error}"
        ) from None


def check_tokenizer_fits(tokenizer, given: str | None, default, vocab_size: int) -> None:
    """The tokenizer (``given`` by --tokenizer, else ``default``: the model's own, a name or a
    Hugging Face folder's files) must have the model's ``vocab_size`` ids; a folder's own
    tokenizer may have fewer (models pad their vocabulary)."""
    from llmbook.checks.generation import tokenizer_size

    size = tokenizer_size(tokenizer)
    own = given is None and isinstance(default, Path)
    if size == vocab_size or own and size < vocab_size:
        return
    if given is not None:
        what = f"--tokenizer {given!r} has"
        hint = f"leave out --tokenizer to use the model's own ({str(default)!r})"
    elif own:
        what, hint = f"the tokenizer files of {str(default)!r} have", "they do not belong to it"
    else:  # a Hugging Face folder without tokenizer files: the book's tokenizer was tried
        what = "the folder has no tokenizer files, and the 'stories' tokenizer has"
        hint = "pass --tokenizer with the model's tiktoken encoding, or add its tokenizer files"
    raise CliError(f"{what} {size:,} ids but the model's vocabulary has {vocab_size:,}: {hint}")


def end_of_text_ids(tokenizer, folder: Path) -> list[int]:
    """The tokenizer's ``<|endoftext|>`` and the ``eos_token_id`` of ``folder/config.json``."""
    eot = end_of_text_id(tokenizer)
    ids = [] if eot is None else [eot]
    config = folder / "config.json"
    if config.is_file():
        eos = json.loads(config.read_text(encoding="utf-8")).get("eos_token_id")
        eos = [] if eos is None else [eos] if isinstance(eos, int) else eos
        if not isinstance(eos, list) or not all(type(i) is int for i in eos):
            raise CliError(
                f"{str(config)!r}: 'eos_token_id' must be an id or a list of ids, got {eos!r:.60}"
            )
        ids += eos
    return sorted(set(ids))


def end_of_text_id(tokenizer) -> int | None:
    """The id of the tokenizer's ``<|endoftext|>`` (ours or tiktoken's), or None."""
    specials = getattr(tokenizer, "special_tokens", None) or getattr(
        tokenizer, "_special_tokens", {}
    )
    return specials.get("<|endoftext|>")
