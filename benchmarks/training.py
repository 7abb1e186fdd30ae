"""Training speed: tokens per second of one training step (forward + backward + AdamW step) of
llmbook's ``DecoderLM`` against Hugging Face ``transformers``' model of the same configuration,
with the same weights and data, and the model FLOP utilisation (MFU) of both against this
machine's float32 matmul peak, measured in the same rounds.

    OMP_NUM_THREADS=1 python benchmarks/training.py          # GPT-2 and Llama, two sizes
    OMP_NUM_THREADS=1 python benchmarks/training.py --quick  # the small size only, 3 rounds

Each round runs, in turn: the matmul peak (the best of three ``n x n @ n x n`` products,
``2 n^3`` FLOPs each), one llmbook step, one transformers step. So each step's MFU is taken
against the peak of its own round, and the ratio llmbook / transformers against the other
model's step of that round: a change of load hits all three alike. Figures are the medians over
the rounds, with their range in parentheses (harness.py; times on the CPU clock with one
thread). A training step costs about ``6 N + 12 L T d`` FLOPs per token (N: weights that
multiply, i.e. all but the embedding table, counted once if tied to the head; L layers, T
context, d width: the attention scores and weighted sums), the PaLM paper's estimate; MFU =
achieved FLOP/s / peak. The two models' losses are checked to agree before timing.
Output: Markdown tables, and ``benchmarks/results/training[-quick].json``.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
import torch.nn.functional as F
from harness import Run, cell, per_round, percent, spread

from llmbook.model import DecoderLM, ModelConfig

FAMILIES = {
    "GPT-2": dict(norm="layernorm", mlp="gelu_tanh", position="learned", bias=True,
                  tie_embeddings=True),
    "Llama": dict(norm="rmsnorm", mlp="swiglu", position="rope", bias=False),
}  # fmt: skip
SIZES = {  # vocabulary 2,048 (the book's tokenizer), context 256; MLP widths: the defaults
    "d128, 4 layers": dict(d_model=128, n_layers=4, n_heads=4),
    "d384, 6 layers": dict(d_model=384, n_layers=6, n_heads=6),
}


def flops_per_token(model: DecoderLM, config: ModelConfig) -> float:
    embedding = model.model.embed_tokens.weight.numel()
    n_params = sum(p.numel() for p in model.parameters())
    if not config.tie_embeddings:
        n_params -= embedding  # the table is looked up, not multiplied; an untied head is a matmul
    if config.position == "learned":
        n_params -= model.model.embed_positions.weight.numel()
    return 6 * n_params + 12 * config.n_layers * config.context_length * config.d_model


def models(family: dict, size: dict, T: int):
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    config = ModelConfig(vocab_size=2048, context_length=T, **family, **size)
    torch.manual_seed(0)
    ours = DecoderLM(config).train()
    with tempfile.TemporaryDirectory() as folder:
        ours.save_hf(folder)
        theirs = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    return config, ours, theirs.float().train()


def step_fn(model, x, y, hf: bool):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step():
        logits = model(input_ids=x).logits if hf else model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the small size only, 3 rounds")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument("--peak-n", type=int, default=2048, help="matmul size of the peak")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    peak_n = 1024 if args.quick else args.peak_n
    sizes = dict(list(SIZES.items())[:1]) if args.quick else SIZES
    B, T = args.batch_size, args.context_length
    run = Run("training", args.quick)
    run.header(f"training step (forward + backward + fused AdamW), B={B} x T={T}, float32 CPU")
    rows, peaks = [], []
    g = torch.Generator().manual_seed(0)
    for family_name, family in FAMILIES.items():
        for size_name, size in sizes.items():
            config, ours, theirs = models(family, size, T)
            ids = torch.randint(0, 2048, (B, T + 1), generator=g)
            x, y = ids[:, :-1], ids[:, 1:]
            step_ours, step_theirs = step_fn(ours, x, y, False), step_fn(theirs, x, y, True)
            a, b = step_ours(), step_theirs()  # also the warm-up
            assert abs(a - b) < 1e-3, f"the two models disagree before timing: {a} vs {b}"
            peak = []
            steps = {
                "peak": lambda peak=peak: peak.append(run.matmul_peak(peak_n)),
                "llmbook": step_ours,
            }
            times = run.rounds(
                {**steps, "transformers": step_theirs}, repeats, 0, f"{family_name} {size_name}"
            )
            times["peak FLOP/s"] = peak
            peaks += peak
            flops = flops_per_token(ours, config)
            tps = {w: [B * T / t for t in times[w]] for w in ("llmbook", "transformers")}
            mfu = {w: [r * flops / p for r, p in zip(tps[w], peak)] for w in tps}
            rows.append([
                family_name, size_name, f"{sum(p.numel() for p in ours.parameters()) / 1e6:.2f}M",
                f"{spread(tps['llmbook'])['median']:,.0f}",
                f"{spread(tps['transformers'])['median']:,.0f}",
                cell(per_round(tps["llmbook"], tps["transformers"]), suffix="x"),
                percent(mfu["llmbook"]), percent(mfu["transformers"]),
            ])  # fmt: skip
    columns = ["family", "size", "params", "llmbook tok/s", "transformers tok/s",
               "llmbook / transformers", "MFU llmbook", "MFU transformers"]  # fmt: skip
    run.table(
        "tokens/s: medians over the rounds; ratio and MFU: median (min-max) over the rounds, "
        "each against its own round",
        columns,
        rows,
    )
    gflops = [p / 1e9 for p in peaks]
    line = (
        f"float32 matmul peak (n={peak_n}, best of 3 per round), GFLOP/s over all "
        f"{len(gflops)} rounds: {cell(gflops, 1)}"
    )
    print(f"\n{line}")
    run.notes.append(line)
    run.save()


if __name__ == "__main__":
    main()
