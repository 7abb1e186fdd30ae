"""llmbook's DecoderLM vs Hugging Face transformers: speed and peak memory, same weights.

    python benchmarks/model.py            # GPT-2 and Llama families, ~1M, ~8M and ~30M parameters
    python benchmarks/model.py --quick    # the two ~1M models, fewer repeats

For each case, transformers builds a random model (``GPT2LMHeadModel`` or ``LlamaForCausalLM``)
and saves it to a temporary folder; ``DecoderLM.from_hf`` loads the same weights, and the two
models' logits are checked to agree. Then, on the CPU in float32:

- **time**: in this process, the two models' runs alternate, one of each per round (so a change
  of load on a shared machine hits both alike), after a warm-up. The speed ratio is taken in
  each round and reported as the median over the rounds with its range (harness.py; times on
  the CPU clock with one thread, so time spent waiting for a busy CPU is not counted).
  "forward" is ``model(ids)`` under ``torch.no_grad()`` in eval mode; "fwd+bwd" adds the
  cross-entropy and ``loss.backward()`` in train mode. transformers runs with its default
  ``sdpa`` attention and ``use_cache=False`` (llmbook keeps no cache either).
- **peak memory**: each (model, mode) runs in a fresh subprocess that loads the model, runs one
  warm-up step, resets the kernel's high-water mark of its resident memory
  (``/proc/self/clear_refs``, Linux), runs the step again and reads ``VmHWM`` minus the resident
  size before the step: the extra memory the step needed (activations, gradients, temporaries).
  The child runs with a fixed glibc mmap threshold, so that freed tensors leave the resident
  set at once and it follows the live tensors rather than what ``malloc`` chose to keep.
  ``tracemalloc`` would not see torch's allocations, and ``ru_maxrss`` cannot be reset. Where
  ``/proc`` is missing (macOS, Windows) memory is reported as n/a.

Ratios are llmbook / transformers: for tokens/s above 1 means llmbook is faster, for memory
below 1 means llmbook needs less. Output: a Markdown table, and
``benchmarks/results/model[-quick].json``.

    OMP_NUM_THREADS=1 python benchmarks/model.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import Run, cell, per_round, spread

SIZES = {  # name: (d_model, n_layers, n_heads, n_kv_heads for Llama, vocab_size)
    "1M": (128, 4, 4, 2, 2048),
    "8M": (256, 8, 8, 4, 4096),
    "30M": (512, 8, 8, 4, 8192),
}


def hf_config(family: str, size: str):
    import transformers

    d, layers, heads, kv_heads, vocab = SIZES[size]
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab, n_positions=1024, n_embd=d, n_layer=layers, n_head=heads,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
        )  # fmt: skip
    return transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=d, intermediate_size=8 * d // 3 // 64 * 64,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=1024, tie_word_embeddings=False,
    )  # fmt: skip


def load(which: str, folder: Path):
    if which == "llmbook":
        from llmbook.model import DecoderLM

        return DecoderLM.from_hf(folder)
    import transformers

    transformers.logging.disable_progress_bar()
    return transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")


def logits_of(which: str, model, ids: torch.Tensor) -> torch.Tensor:
    return model(ids) if which == "llmbook" else model(input_ids=ids, use_cache=False).logits


def step_fn(which: str, model, ids: torch.Tensor, mode: str):
    """A function running one forward (no grad) or forward + backward step."""

    def forward():
        model.eval()
        with torch.no_grad():
            logits_of(which, model, ids)

    def forward_backward():
        model.train()
        logits = logits_of(which, model, ids)
        F.cross_entropy(logits.flatten(0, 1), ids.flatten()).backward()
        model.zero_grad(set_to_none=True)

    return forward if mode == "forward" else forward_backward


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(which: str, folder: str, mode: str, batch: int, length: int) -> None:
    """Subprocess: print the extra resident memory (MiB) one step needs."""
    torch.manual_seed(0)
    model = load(which, Path(folder))
    ids = torch.randint(0, model.config.vocab_size, (batch, length))
    step = step_fn(which, model, ids, mode)
    step()  # warm-up: lazy allocations, thread pools
    before = rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark VmHWM to VmRSS
    step()
    print(json.dumps((rss_kib("VmHWM") - before) / 1024))


def peak_mib(which: str, folder: Path, mode: str, batch: int, length: int) -> float | None:
    if not Path("/proc/self/clear_refs").exists():
        return None
    args = [sys.executable, __file__, "--child", which, str(folder), mode, str(batch), str(length)]
    # glibc: a fixed mmap threshold returns every freed large block to the kernel at once, so the
    # resident size follows the live tensors instead of what malloc chose to keep
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if result.returncode:
        print(result.stderr[-2000:], file=sys.stderr)
        return None
    return float(result.stdout.strip().splitlines()[-1])


def run_case(family: str, size: str, args, folder: Path, run: Run) -> list:
    """One row of the table: the case, its size, and per mode tok/s, speed and memory."""
    import transformers

    transformers.logging.disable_progress_bar()
    torch.manual_seed(0)
    reference = getattr(
        transformers, "GPT2LMHeadModel" if family == "gpt2" else "LlamaForCausalLM"
    )(hf_config(family, size))
    reference.save_pretrained(folder)
    models = {"llmbook": load("llmbook", folder), "transformers": load("transformers", folder)}
    ids = torch.randint(0, reference.config.vocab_size, (args.batch, args.length))
    with torch.no_grad():
        a, b = (logits_of(w, m.eval(), ids) for w, m in models.items())
    assert torch.allclose(a, b, atol=1e-4), f"{family}-{size}: the two models disagree"
    n_params = sum(p.numel() for p in models["llmbook"].parameters())
    row = [f"{family}-{size}", f"{n_params / 1e6:.2f}M"]
    tokens = args.batch * args.length
    for mode in ("forward", "fwd+bwd"):
        steps = {w: step_fn(w, m, ids, mode) for w, m in models.items()}
        times = run.rounds(steps, args.repeats, args.warmup, f"{family}-{size} {mode}")
        peaks = {w: peak_mib(w, folder, mode, args.batch, args.length) for w in models}
        run.samples[f"{family}-{size} {mode}"]["extra MiB"] = peaks
        memory = "n/a"
        if None not in peaks.values() and peaks["transformers"] > 0:
            memory = f"{peaks['llmbook'] / peaks['transformers']:.2f}x "
            memory += f"({peaks['llmbook']:.1f}/{peaks['transformers']:.1f})"
        row += [
            f"{tokens / spread(times['llmbook'])['median']:,.0f}",
            cell(per_round(times["transformers"], times["llmbook"]), suffix="x"),
            memory,
        ]
    return row


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        which, folder, mode, batch, length = sys.argv[2:]
        return child(which, folder, mode, int(batch), int(length))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="only the ~1M models, 3 rounds")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--families", nargs="+", default=["gpt2", "llama"], choices=["gpt2", "llama"]
    )
    parser.add_argument("--batch", type=int, default=4, help="sequences per batch (default 4)")
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds per cell (default 9)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.warmup = ["1M"], 3, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers  # noqa: F401  (its version goes into the record)

    run = Run("model", args.quick)
    run.header(
        f"DecoderLM vs transformers, same weights, B={args.batch} x T={args.length}, float32"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for family in args.families:
                rows.append(run_case(family, size, args, Path(tmp) / f"{family}-{size}", run))
    columns = ["case", "params", "fwd tok/s", "fwd llmbook / HF", "fwd memory",
               "f+b tok/s", "f+b llmbook / HF", "f+b memory"]  # fmt: skip
    run.table(
        "tok/s: llmbook's median; llmbook / HF: speed ratio (>1: llmbook faster), median "
        "(min-max) over the rounds; memory: extra MiB of one step, llmbook / HF (<1: llmbook "
        "needs less), and the two MiB figures",
        columns,
        rows,
    )
    run.save()


if __name__ == "__main__":
    main()
