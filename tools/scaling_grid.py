"""Chapter 10's scaling grid: model sizes x token budgets on fresh stories, each story read once.

    python tools/scaling_grid.py list                      # every run's one-line command
    python tools/scaling_grid.py train --root /work/runs/scaling [--only d64-L2-250]
    python tools/scaling_grid.py report --root /work/runs/scaling \\
        --out llmbook/assets/scaling.json

``train`` runs the missing runs one after the other (``llmbook train``, so a killed grid resumes
with the same command: finished runs are skipped, a stopped one goes on from its checkpoint).
``report`` scores each finished run's model on the test set (stories of seed 2025, which nothing
trains or chooses on; strided, stride 64) and writes every run's command, settings, curve, wall
time and score into one JSON file that chapter 10 plots without training anything.

All runs read the same text, ``fresh-stories:30M`` (about 7 million training tokens), with
``--windows once``: a run of D tokens reads D tokens of it, each window at most once, so no run
sees a story twice. Each run has its own warm-up and cosine schedule over its own length.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The model sizes: (d_model, n_layers, d_ff) with 4 query heads, 2 key/value heads, context 256.
SIZES = {"d64-L2": (64, 2, 192), "d96-L3": (96, 3, 288), "d128-L4": (128, 4, 384)}
STEPS = (250, 625, 1500)  # x 16 windows x 256 tokens = 1.0M, 2.6M, 6.1M tokens
CORPUS = "fresh-stories:30M"
TEST_SEED, TEST_CHARS, STRIDE = 2025, 500_000, 64
COMMON = (
    f"--corpus {CORPUS} --val-fraction 0.02 --windows once --dropout 0 --batch-size 16 "
    "--lr 3e-3 --min-lr 3e-4 --warmup 50 --eval-batches 8 --sample-tokens 0 --seed 0"
)


def runs() -> dict[str, str]:
    """Every run's name and its ``llmbook train`` arguments (without ``--out``)."""
    found = {}
    for size, (d_model, n_layers, d_ff) in SIZES.items():
        for steps in STEPS:
            found[f"{size}-{steps}"] = (
                f"--model stories-small --d-model {d_model} --n-layers {n_layers} --n-heads 4 "
                f"--n-kv-heads 2 --d-ff {d_ff} --steps {steps} --eval-interval {steps // 5} "
                + COMMON
            )
    # Not here: the same body with GPT-2's tokenizer. Its 50,257 logits per position make each
    # step's logits 4096 x 50,257 floats (0.8 GB): about 7 s a step on this CPU, 20x the twin.
    return found


def command(name: str, root: Path) -> list[str]:
    return ["llmbook", "train", *shlex.split(runs()[name]), "--out", str(root / name)]


def train(root: Path, only: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in only or runs():
        if (root / name / "model" / "model.safetensors").exists():
            continue
        argv = command(name, root)
        if (root / name / "run.json").exists():  # stopped earlier: go on from its checkpoint
            argv = ["llmbook", "train", "--out", str(root / name), "--resume"]
        print("$", shlex.join(argv), flush=True)
        start = time.time()
        subprocess.run(argv, check=True)
        minutes = (time.time() - start) / 60
        times = root / "minutes.json"
        record = json.loads(times.read_text()) if times.exists() else {}
        record[name] = record.get(name, 0) + minutes  # a resumed run adds its second part
        times.write_text(json.dumps(record, indent=2) + "\n")


def test_set():
    """The test text and its floor (nats per character)."""
    import llmbook

    text, meta = llmbook.stories.build_corpus(seed=TEST_SEED, min_chars=TEST_CHARS)
    return text, meta["nats_per_char"]


def test_ids(text: str, tokenizer: str):
    import torch

    from llmbook.cli.common import make_tokenizer
    from llmbook.data import encode_text

    return torch.tensor(encode_text(make_tokenizer(tokenizer), text))


def report(root: Path, out: Path) -> None:
    from llmbook.io.files import atomic_write
    from llmbook.model import DecoderLM
    from llmbook.training import strided_loss

    text, floor = test_set()
    ids_of = {}
    times = (
        json.loads((root / "minutes.json").read_text()) if (root / "minutes.json").exists() else {}
    )
    results = []
    for name in runs():
        folder = root / name
        if not (folder / "model" / "model.safetensors").exists():
            print(f"{name}: not finished, left out")
            continue
        run = json.loads((folder / "run.json").read_text())
        history = json.loads((folder / "history.json").read_text())
        model = DecoderLM.from_hf(folder / "model").eval()
        if run["tokenizer"] not in ids_of:
            ids_of[run["tokenizer"]] = test_ids(text, run["tokenizer"])
        ids = ids_of[run["tokenizer"]]
        per_token = strided_loss(model, ids, STRIDE)
        per_char = per_token * (len(ids) - 1) / len(text)  # nats over the same text, per character
        train_cfg = run["train"]
        weights = sum(p.numel() for p in model.parameters())
        embedding = (
            model.config.vocab_size
            * model.config.d_model
            * (1 if model.config.tie_embeddings else 2)
        )
        results.append({
            "name": name,
            "command": "llmbook train " + runs()[name] + f" --out runs/{name}",
            "d_model": model.config.d_model,
            "n_layers": model.config.n_layers,
            "weights": weights,
            "non_embedding_weights": weights - embedding,
            "tokenizer": run["tokenizer"],
            "test_tokens": len(ids),
            "steps": train_cfg["max_steps"],
            "tokens": train_cfg["max_steps"] * train_cfg["batch_size"] * train_cfg["context_length"],
            "ids_sha256": run.get("ids_sha256"),
            "minutes": round(times.get(name, float("nan")), 1),
            "history": {k: history[k] for k in ("eval_step", "val_loss", "train_loss")},
            "tokens_per_s": statistics.median(history["tokens_per_s"]),  # of a shared machine
            "test_nats_per_token": per_token,
            "test_nats_per_char": per_char,
            "test_over_floor": per_char / floor,
        })  # fmt: skip
        print(f"{name}: {per_char:.4f} nats/char = {per_char / floor:.3f} x the floor")
    document = {
        "what": __doc__.splitlines()[0],
        "corpus": CORPUS,
        "test_set": {"seed": TEST_SEED, "min_chars": TEST_CHARS, "chars": len(text),
                     "floor_nats_per_char": floor, "stride": STRIDE},
        "machine": f"{os.cpu_count()} CPU cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "runs": results,
    }  # fmt: skip
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(document, indent=1) + "\n")
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["list", "train", "report"])
    parser.add_argument("--root", type=Path, default=Path("runs/scaling"), help="the runs' folders")
    parser.add_argument(
        "--only", nargs="*", default=[], choices=list(runs()), help="these runs only"
    )
    parser.add_argument("--out", type=Path, default=Path("llmbook/assets/scaling.json"))
    args = parser.parse_args()
    if args.action == "list":
        for name in runs():
            print(shlex.join(command(name, args.root)))
    elif args.action == "train":
        train(args.root, args.only)
    else:
        report(args.root, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
