"""Collect the runs of a model-size sweep (``llmbook train`` output folders) into one JSON file.

    python tools/sweep_report.py --out llmbook/assets/stories_model/sweep.json \\
        /tmp/run_a:26 /tmp/run_b:46 ...        # FOLDER:WALL_MINUTES, in the order to show them

For each run: its command and settings (``run.json``), its curves (``history.json``: validation
loss by step, from a few random batches) and its final model's loss over the WHOLE validation
text (``model/``), cut into windows of the model's context length, in nats per token and per
character, so runs with different context lengths compare fairly. Chapter 8 plots the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from llmbook import load_corpus, load_tokenizer, train_val_split
from llmbook.data import encode_text
from llmbook.io.files import atomic_write
from llmbook.model import DecoderLM
from llmbook.stories import read_meta
from llmbook.training import whole_text_loss


def report(folder: Path, minutes: float, val_ids: torch.Tensor, val_chars: int) -> dict:
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    history = json.loads((folder / "history.json").read_text(encoding="utf-8"))
    model = DecoderLM.from_hf(folder / "model").eval()
    loss = whole_text_loss(model, val_ids)
    train = run["train"]
    tokens_per_step = train["batch_size"] * train["context_length"] * train["grad_accum_steps"]
    return {
        "name": folder.name,
        "command": run["command"],
        "preset": run["model_preset"],
        "weights": sum(p.numel() for p in model.parameters()),
        "dropout": run["model"]["dropout"],
        "context_length": train["context_length"],
        "tokens_per_step": tokens_per_step,
        "steps": train["max_steps"],
        "wall_minutes": minutes,
        "eval_step": history["eval_step"],
        "train_loss": [round(x, 4) for x in history["train_loss"]],
        "val_loss": [round(x, 4) for x in history["val_loss"]],
        "whole_val_nats_per_token": round(loss, 5),
        "whole_val_nats_per_char": round(loss * len(val_ids) / val_chars, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="FOLDER:WALL_MINUTES of each run")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args()
    _, val_text = train_val_split(load_corpus("stories"), 0.1)
    val_ids = torch.tensor(encode_text(load_tokenizer("stories"), val_text))
    runs = []
    for spec in args.runs:
        folder, minutes = spec.rsplit(":", 1)
        runs.append(report(Path(folder), float(minutes), val_ids, len(val_text)))
        print(f"{runs[-1]['name']}: {runs[-1]['whole_val_nats_per_char']} nats/char")
    result = {"floor_nats_per_char": round(read_meta()["nats_per_char"], 4), "runs": runs}
    with atomic_write(args.out, "w", encoding="utf-8") as file:
        file.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
