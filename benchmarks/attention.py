"""Attention speed, as ratios measured in one run: naive vs fused, GQA without copies, and our
multi-head layer vs Hugging Face's ``LlamaAttention``.

    OMP_NUM_THREADS=1 python benchmarks/attention.py        # three tables, float32, on the CPU
    OMP_NUM_THREADS=1 python benchmarks/attention.py --quick                # smaller, fewer runs
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

Within a table the compared steps run alternately (one run of each per round), so a change of
load on a shared machine hits them alike. Times (ms) are medians of ``--repeats`` rounds after
``--warmup`` ones; each ratio is taken within each round and reported as the median over the
rounds with its range (harness.py; times on the CPU clock with one thread). Outputs are checked
to agree before anything is timed. Output: Markdown tables, and
``benchmarks/results/attention[-quick].json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from harness import Run, cell, per_round, spread


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


def ms(times: list[float]) -> str:
    return f"{1e3 * spread(times)['median']:.2f}"


def ratio(times: dict, name: str, reference: str) -> str:
    """``median (min-max)`` over the rounds of ``times[name] / times[reference]``."""
    return cell(per_round(times[name], times[reference]))


def backward_step(forward: Callable[[], torch.Tensor], leaves: list) -> Callable[[], None]:
    def step() -> None:
        forward().sum().backward()
        for t in leaves:
            t.grad = None

    return step


def table_core(run, lengths, batch, heads, head_dim, repeats, warmup) -> None:
    from llmbook.attention import scaled_dot_product_attention as teaching

    rows = []
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
        steps = {n: backward_step(f, leaves) for n, f in steps.items()}
        t = run.rounds(steps, repeats, warmup, f"1. T={T}")
        rows.append(
            [T, ms(t["fused"]), ratio(t, "minimal", "fused"), ratio(t, "teaching", "fused")]
        )
    run.table(
        f"1. attention forward+backward, B={batch}, H={heads}, D={head_dim}",
        ["T", "fused ms", "minimal / fused", "teaching / fused"],
        rows,
    )


def table_gqa(run, module, lengths, batch, heads, kv_heads, head_dim, repeats, warmup) -> None:
    groups = heads // kv_heads
    rows = []
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
            fwd = run.rounds({"repeat": copied, "gqa": shared}, repeats, warmup, f"2. T={T} fwd")
        both = run.rounds(
            {"repeat": backward_step(copied, [q, k, v]), "gqa": backward_step(shared, [q, k, v])},
            repeats,
            warmup,
            f"2. T={T} fwd+bwd",
        )
        rows.append([T, ms(fwd["gqa"]), ratio(fwd, "repeat", "gqa"), ratio(both, "repeat", "gqa")])
    run.table(
        f"2. fused GQA, B={batch}, H={heads}, H_kv={kv_heads}, D={head_dim}",
        ["T", "gqa fwd ms", "repeat / gqa fwd", "repeat / gqa fwd+bwd"],
        rows,
    )


def table_layer(run, module, lengths, batch, d_model, heads, kv_heads, repeats, warmup) -> None:
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
    rows = []
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
            fwd = run.rounds(steps, repeats, warmup, f"3. T={T} fwd")
        leaves = [x, *hf.parameters(), *ours.parameters()]
        steps = {n: backward_step(f, leaves) for n, f in steps.items()}
        both = run.rounds(steps, repeats, warmup, f"3. T={T} fwd+bwd")
        rows.append([
            T, ms(fwd["hf"]), ratio(fwd, "ours", "hf"), ratio(fwd, "teach", "hf"),
            ms(both["hf"]), ratio(both, "ours", "hf"), ratio(both, "teach", "hf"),
        ])  # fmt: skip
    run.table(
        f"3. one layer, B={batch}, d_model={d_model}, H={heads}, H_kv={kv_heads}, RoPE: ours "
        "(fused) and teaching path / Hugging Face LlamaAttention (sdpa); <1: ours faster",
        ["T", "HF fwd ms", "ours / HF fwd", "teaching / HF fwd", "HF f+b ms", "ours / HF f+b",
         "teaching / HF f+b"],
        rows,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 runs (a smoke test)")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds per cell (default 9)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
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
    if 3 in args.only:
        import transformers  # noqa: F401  (its version goes into the record)
    run = Run("attention", args.quick)
    run.header(
        f"attention, float32 CPU, module {module.__file__}; {args.repeats} rounds after "
        f"{args.warmup} warm-up"
    )
    if 1 in args.only:
        table_core(run, short, 1, 8, 64, args.repeats, args.warmup)
    if 2 in args.only:
        table_gqa(run, module, short, 1, 16, 4, 64, args.repeats, args.warmup)
    if 3 in args.only:
        table_layer(run, module, long, 2, 512, 8, 2, args.repeats, args.warmup)
    run.save({"module": str(module.__file__), "only": args.only})


if __name__ == "__main__":
    main()
