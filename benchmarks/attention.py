"""Attention speed, as ratios measured in one run: naive vs fused, GQA without copies, and our
multi-head layer vs Hugging Face's ``LlamaAttention``.

    python benchmarks/attention.py                      # three tables, float32, on the CPU
    python benchmarks/attention.py --quick              # smaller sizes, fewer runs
    python benchmarks/attention.py --module /tmp/old_multihead.py   # time another version

1. Attention itself, forward + backward, ``(B, H, T, D)`` tensors: a minimal naive version
   (matmul, mask, softmax, matmul; no checks), chapter 4's teaching function (checks, NaN guard)
   and torch's fused ``scaled_dot_product_attention``. Ratios: each / fused.
2. Grouped-query attention in the fused kernel: K/V heads copied with ``repeat_kv`` first, or
   shared inside the kernel with ``enable_gqa=True``. Ratio: repeat_kv / enable_gqa.
3. One Llama-style layer (GQA and RoPE): ``MultiHeadAttention`` (fused, and the teaching path)
   and Hugging Face's ``LlamaAttention`` (sdpa) with the same weights, forward and forward +
   backward. Hugging Face computes cos/sin once per model forward, outside its layers, so its
   cos/sin are made before timing; ours come from the layer's own ``RotaryEmbedding``.
   Ratio: ours / Hugging Face (below 1: ours is faster).

Within a table the compared steps run alternately (one run of each in turn), so a change of
load on a shared machine hits them alike. Each time is the median of ``--repeats`` runs after
``--warmup`` runs; ratios are of medians. Outputs are checked to agree before anything is timed.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F


def load_module(path: str | None):
    """``llmbook.multihead``, or the module file at ``path`` (e.g. an older version of it)."""
    if path is None:
        import llmbook.multihead as module

        return module
    spec = importlib.util.spec_from_file_location("multihead_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def minimal_attention(q, k, v):
    """The plainest causal attention: softmax(q k^T / sqrt(D), future masked) v. No checks."""
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def time_interleaved(steps: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict:
    """Median seconds of each step; the steps run alternately."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def backward_step(forward: Callable[[], torch.Tensor], leaves: list) -> Callable[[], None]:
    def step() -> None:
        forward().sum().backward()
        for t in leaves:
            t.grad = None

    return step


def table_core(lengths, batch, heads, head_dim, repeats, warmup) -> None:
    from llmbook.attention import scaled_dot_product_attention as teaching

    print(f"\n1. attention forward+backward, B={batch}, H={heads}, D={head_dim}")
    print(f"{'T':>6}{'fused ms':>10}{'minimal/fused':>15}{'teaching/fused':>16}")
    for T in lengths:
        q, k, v = (torch.randn(batch, heads, T, head_dim, requires_grad=True) for _ in range(3))
        fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        for other in (minimal_attention(q, k, v), teaching(q, k, v, is_causal=True)):
            torch.testing.assert_close(other, fused, atol=1e-5, rtol=1e-4)
        leaves = [q, k, v]
        steps = {
            "fused": lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            "minimal": lambda q=q, k=k, v=v: minimal_attention(q, k, v),
            "teaching": lambda q=q, k=k, v=v: teaching(q, k, v, is_causal=True),
        }
        t = time_interleaved(
            {n: backward_step(f, leaves) for n, f in steps.items()}, repeats, warmup
        )
        print(
            f"{T:>6}{1e3 * t['fused']:>10.2f}{t['minimal'] / t['fused']:>15.2f}"
            f"{t['teaching'] / t['fused']:>16.2f}"
        )


def table_gqa(module, lengths, batch, heads, kv_heads, head_dim, repeats, warmup) -> None:
    groups = heads // kv_heads
    print(f"\n2. fused GQA, B={batch}, H={heads}, H_kv={kv_heads}, D={head_dim}")
    print(f"{'T':>6}{'gqa fwd ms':>12}{'repeat/gqa fwd':>16}{'repeat/gqa fwd+bwd':>20}")
    for T in lengths:
        q = torch.randn(batch, heads, T, head_dim, requires_grad=True)
        k, v = (torch.randn(batch, kv_heads, T, head_dim, requires_grad=True) for _ in range(2))

        def copied(q=q, k=k, v=v):
            kr, vr = module.repeat_kv(k, groups), module.repeat_kv(v, groups)
            return F.scaled_dot_product_attention(q, kr, vr, is_causal=True)

        def shared(q=q, k=k, v=v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

        torch.testing.assert_close(copied(), shared(), atol=1e-5, rtol=1e-4)
        with torch.no_grad():
            fwd = time_interleaved({"repeat": copied, "gqa": shared}, repeats, warmup)
        both = time_interleaved(
            {"repeat": backward_step(copied, [q, k, v]), "gqa": backward_step(shared, [q, k, v])},
            repeats,
            warmup,
        )
        print(
            f"{T:>6}{1e3 * fwd['gqa']:>12.2f}{fwd['repeat'] / fwd['gqa']:>16.2f}"
            f"{both['repeat'] / both['gqa']:>20.2f}"
        )


def table_layer(module, lengths, batch, d_model, heads, kv_heads, repeats, warmup) -> None:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding

    head_dim = d_model // heads
    config = LlamaConfig(
        hidden_size=d_model,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max(lengths),
        rope_theta=500000.0,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    hf = LlamaAttention(config, layer_idx=0)
    ours = module.MultiHeadAttention(
        d_model, heads, n_kv_heads=kv_heads, rope=module.RotaryEmbedding(head_dim, base=500000.0)
    )
    ours.load_state_dict(hf.state_dict())
    hf_rope = LlamaRotaryEmbedding(config)
    print(f"\n3. layer, B={batch}, d_model={d_model}, H={heads}, H_kv={kv_heads}, RoPE; / HF sdpa")
    print(
        f"{'T':>6}{'HF fwd ms':>11}{'ours fwd':>10}{'teach fwd':>11}"
        f"{'HF f+b ms':>11}{'ours f+b':>10}{'teach f+b':>11}"
    )
    for T in lengths:
        x = torch.randn(batch, T, d_model, requires_grad=True)
        cos_sin = hf_rope(x, torch.arange(T).expand(batch, T))

        def run_hf(x=x, cos_sin=cos_sin):
            return hf(x, position_embeddings=cos_sin, attention_mask=None)[0]

        def run_ours(impl, x=x):
            def run():
                ours.impl = impl
                return ours(x)

            return run

        torch.testing.assert_close(run_ours("fused")(), run_hf(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(run_ours("naive")(), run_hf(), atol=1e-5, rtol=1e-4)
        steps = {"hf": run_hf, "ours": run_ours("fused"), "teach": run_ours("naive")}
        with torch.no_grad():
            fwd = time_interleaved(steps, repeats, warmup)
        leaves = [x, *hf.parameters(), *ours.parameters()]
        both = time_interleaved(
            {n: backward_step(f, leaves) for n, f in steps.items()}, repeats, warmup
        )
        print(
            f"{T:>6}{1e3 * fwd['hf']:>11.2f}{fwd['ours'] / fwd['hf']:>10.2f}"
            f"{fwd['teach'] / fwd['hf']:>11.2f}{1e3 * both['hf']:>11.2f}"
            f"{both['ours'] / both['hf']:>10.2f}{both['teach'] / both['hf']:>11.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 runs (a smoke test)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per cell (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--module", default=None, help="path of a multihead.py to time instead")
    parser.add_argument("--only", type=int, nargs="+", default=[1, 2, 3], help="tables to run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats, args.warmup = 3, 1
    module = load_module(args.module)
    short, long = ([64, 128], [64, 128]) if args.quick else ([256, 1024], [128, 512])
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {platform.machine()}, CPU float32, "
        f"{torch.get_num_threads()} threads, module {module.__file__}; "
        f"median of {args.repeats} runs after {args.warmup} warm-up"
    )
    if 1 in args.only:
        table_core(short, 1, 8, 64, args.repeats, args.warmup)
    if 2 in args.only:
        table_gqa(module, short, 1, 16, 4, 64, args.repeats, args.warmup)
    if 3 in args.only:
        table_layer(module, long, 2, 512, 8, 2, args.repeats, args.warmup)


if __name__ == "__main__":
    main()
