"""Naive vs fused attention: forward + backward time of one multi-head attention layer.

    python benchmarks/attention.py                      # T = 128 .. 2048 on the CPU
    python benchmarks/attention.py --lengths 256 1024 --repeats 3 --d-model 512 --heads 8

"naive" is the teaching path of chapter 5, ``MultiHeadAttention(..., impl="naive")``: chapter 4's
``scaled_dot_product_attention`` inside the multi-head layout, which materialises the
``(B, H, T, T)`` weights. "fused" is the exported default, ``impl="fused"``, which calls
``torch.nn.functional.scaled_dot_product_attention``. Both run the same layer with the same
weights and inputs, in the same process, their runs alternating; each time is the median of
``--repeats`` runs after ``--warmup`` runs of each. The table reports the ratio naive / fused of
the medians (above 1: fused is faster) and, as a check on a noisy machine, of the best runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from llmbook.multihead import MultiHeadAttention, RotaryEmbedding


def time_interleaved(steps: dict, repeats: int, warmup: int) -> dict:
    """Seconds of each run of each step, alternating between the steps so that a change of load
    on a shared machine hits all of them alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--batch", type=int, default=1, help="sequences per batch (default 1)")
    parser.add_argument("--d-model", type=int, default=256, help="model width C (default 256)")
    parser.add_argument("--heads", type=int, default=4, help="query heads (default 4)")
    parser.add_argument("--kv-heads", type=int, default=None, help="K/V heads (default: --heads)")
    parser.add_argument("--rope", action="store_true", help="apply rotary embeddings (Llama style)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    head_dim = args.d_model // args.heads
    rope = RotaryEmbedding(head_dim, base=500000.0) if args.rope else None
    layer = MultiHeadAttention(args.d_model, args.heads, n_kv_heads=args.kv_heads, rope=rope)
    layer.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(
        f"torch {torch.__version__}, {platform.machine()}, device {device}, "
        f"{torch.get_num_threads()} threads; B={args.batch}, d_model={args.d_model}, "
        f"heads={args.heads}, kv_heads={layer.n_kv_heads}, head_dim={head_dim}, "
        f"rope={args.rope}; median of {args.repeats} runs after {args.warmup} warm-up"
    )
    print(f"{'T':>6} {'naive ms':>10} {'fused ms':>10} {'naive/fused':>12} {'(best runs)':>12}")
    for length in args.lengths:
        x = torch.randn(args.batch, length, args.d_model, device=device, requires_grad=True)

        def step(impl: str, x: torch.Tensor = x) -> None:
            layer.impl = impl
            layer(x).sum().backward()
            layer.zero_grad(set_to_none=True)
            sync()

        times = time_interleaved(
            {"naive": lambda: step("naive"), "fused": lambda: step("fused")},
            args.repeats,
            args.warmup,
        )
        naive, fused = statistics.median(times["naive"]), statistics.median(times["fused"])
        best = min(times["naive"]) / min(times["fused"])
        print(
            f"{length:>6} {1e3 * naive:>10.2f} {1e3 * fused:>10.2f} {naive / fused:>12.2f} "
            f"{best:>12.2f}"
        )


if __name__ == "__main__":
    main()
