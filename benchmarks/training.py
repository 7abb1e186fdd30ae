"""Training speed: tokens per second of one training step (forward + backward + AdamW step) of
llmbook's ``DecoderLM`` against Hugging Face ``transformers``' model of the same configuration,
with the same weights and data, and the model FLOP utilisation (MFU) against this machine's
float32 matmul peak, measured in the same run.

    python benchmarks/training.py            # GPT-2 and Llama families, two sizes, CPU float32
    python benchmarks/training.py --quick    # the small size only, fewer repeats

The peak is the best of a few large square matmuls (``n x n @ n x n`` is ``2 n^3`` FLOPs).
A training step costs about ``6 N + 12 L T d`` FLOPs per token (N: weights that multiply, i.e.
all but the embedding table, counted once if tied to the head; L layers, T context, d width:
the attention scores and weighted sums), the PaLM paper's estimate; MFU = achieved / peak.
Both models take the same steps on the same batches, alternately, so a change of load on a
shared machine hits them alike; times are medians; the losses are checked to agree first.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

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


def matmul_peak(n: int, repeats: int) -> float:
    """Float32 FLOP/s of the best of ``repeats`` ``(n, n) @ (n, n)`` products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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
    parser.add_argument("--quick", action="store_true", help="the small size only, 3 repeats")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    sizes = dict(list(SIZES.items())[:1]) if args.quick else SIZES
    B, T = args.batch_size, args.context_length
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads")
    peak = matmul_peak(1024 if args.quick else 2048, repeats)
    print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s\n")
    print(f"{'family':7} {'size':15} {'params':>9} | {'llmbook tok/s':>13} {'HF tok/s':>9} "
          f"{'llmbook/HF':>10} | {'MFU llmbook':>11} {'MFU HF':>7}")  # fmt: skip
    g = torch.Generator().manual_seed(0)
    for family_name, family in FAMILIES.items():
        for size_name, size in sizes.items():
            config, ours, theirs = models(family, size, T)
            ids = torch.randint(0, 2048, (B, T + 1), generator=g)
            x, y = ids[:, :-1], ids[:, 1:]
            step_ours, step_theirs = step_fn(ours, x, y, False), step_fn(theirs, x, y, True)
            a, b = step_ours(), step_theirs()  # also the warm-up
            assert abs(a - b) < 1e-3, f"the two models disagree before timing: {a} vs {b}"
            times_ours, times_theirs = [], []
            for _ in range(repeats):  # alternately
                times_ours.append(_time(step_ours))
                times_theirs.append(_time(step_theirs))
            tps_ours = B * T / statistics.median(times_ours)
            tps_theirs = B * T / statistics.median(times_theirs)
            flops = flops_per_token(ours, config)
            n_params = sum(p.numel() for p in ours.parameters())
            print(f"{family_name:7} {size_name:15} {n_params / 1e6:8.2f}M | {tps_ours:13,.0f} "
                  f"{tps_theirs:9,.0f} {tps_ours / tps_theirs:10.2f} | "
                  f"{tps_ours * flops / peak:11.0%} {tps_theirs * flops / peak:7.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
