"""Generation speed: llmbook's KV cache vs recomputation, and llmbook vs transformers' generate.

    OMP_NUM_THREADS=1 python benchmarks/generation.py          # GPT-2 and Llama, ~20M parameters
    OMP_NUM_THREADS=1 python benchmarks/generation.py --quick  # ~2M parameters, shorter texts

For each family, transformers builds a random model (``GPT2LMHeadModel`` or
``LlamaForCausalLM``), saves it to a temporary folder, and ``DecoderLM.from_hf`` loads the same
weights. On the CPU, in float32, greedy decoding:

- **cache vs recompute, per token at length L**: the time of the steps that take the text from
  ``L - n`` to ``L`` tokens (``n = --steps``, 8). With the cache, ``n`` one-token steps over a cache
  already holding ``L - n`` positions; without it, ``n`` forward passes over the whole text, as
  the uncached loop runs them. Both produce the same tokens (asserted). Measuring whole runs
  to 1,024 tokens without a cache would take minutes for no more information.
- **llmbook vs transformers, whole runs**: ``generate(model, prompt, N, temperature=0)`` against
  ``hf.generate(do_sample=False, max_new_tokens=N)``, both with their KV cache, from a 16-token
  prompt; the tokens must be equal (asserted).

Runs of the two sides alternate, one of each per round, so a change of load on a shared machine
hits both alike. The ratios are taken in each round and reported as the median over the rounds
with their range; tokens/s are medians (harness.py; times on the CPU clock with one thread).
Ratios in one run are what to read. Output: Markdown tables, and
``benchmarks/results/generation[-quick].json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from harness import Run, cell, per_round, spread

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmbook.generation import KVCache, forward_with_cache, generate  # noqa: E402
from llmbook.model import DecoderLM  # noqa: E402

SIZES = {  # name: (d_model, n_layers, n_heads, n_kv_heads for Llama, vocab_size)
    "2M": (128, 4, 4, 2, 2048),
    "20M": (512, 6, 8, 4, 8192),
}


def hf_model(family: str, size: str):
    import transformers

    transformers.utils.logging.disable_progress_bar()
    d, layers, heads, kv_heads, vocab = SIZES[size]
    torch.manual_seed(0)
    if family == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab, n_positions=1024, n_embd=d, n_layer=layers, n_head=heads,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.05,
            bos_token_id=None, eos_token_id=None,
        )  # fmt: skip
        return transformers.GPT2LMHeadModel(config).eval()
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=d, intermediate_size=3 * d, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=1024,
        initializer_range=0.05,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


@torch.no_grad()
def last_steps(run: Run, model, ids: torch.Tensor, n: int, use_cache: bool):
    """Seconds for the ``n`` greedy steps after ``ids (1, L - n)``, and the tokens they produce."""
    cache = KVCache.for_model(model, 1, ids.shape[1] + n) if use_cache else None

    def forward(ids):
        return (model(ids) if cache is None else forward_with_cache(model, ids, cache))[:, -1]

    logits = forward(ids)  # untimed: the prefill, or the text so far
    new = []
    stop = run.stopwatch()
    for _ in range(n):
        token = logits.argmax(-1, keepdim=True)  # (1, 1)
        new.append(int(token))
        ids = torch.cat([ids, token], dim=1)
        logits = forward(token if use_cache else ids)
    return stop(), new


def paired(run: Run, key: str, first, second, repeats: int) -> tuple[list, list]:
    """Alternate two callables returning ``(seconds, tokens)``, after a warm-up of each that
    must give the same tokens; the seconds of each, round by round (kept under ``key``)."""
    assert first()[1] == second()[1], f"{key}: different tokens"
    a, b = [], []
    for _ in range(repeats):
        a.append(first()[0])
        b.append(second()[0])
    run.samples[key] = {"first": a, "second": b}
    return a, b


def cache_vs_recompute(run, family, model, lengths, steps, repeats):
    rows = []
    for L in lengths:
        generator = torch.Generator().manual_seed(L)
        ids = torch.randint(0, model.config.vocab_size, (1, L - steps), generator=generator)
        cached, recomputed = paired(
            run,
            f"{family} cache vs recompute, L={L}",
            lambda ids=ids: last_steps(run, model, ids, steps, True),
            lambda ids=ids: last_steps(run, model, ids, steps, False),
            repeats,
        )
        rows.append([
            family, L, f"{steps / spread(cached)['median']:.1f}",
            f"{steps / spread(recomputed)['median']:.1f}",
            cell(per_round(recomputed, cached), 1, "x"),
        ])  # fmt: skip
    return rows


def versus_transformers(run, family, model, hf, new_tokens, repeats):
    rows = []
    prompt = torch.randint(0, model.config.vocab_size, (1, 16), generator=torch.Generator().manual_seed(0))  # fmt: skip
    mask = torch.ones_like(prompt)

    def timed(fn):
        stop = run.stopwatch()
        tokens = fn()
        return stop(), tokens

    def ours():
        return timed(lambda: generate(model, prompt[0], N, temperature=0))

    def theirs():
        return timed(lambda: hf.generate(prompt, attention_mask=mask, do_sample=False,
                                         max_new_tokens=N, min_new_tokens=N, pad_token_id=0,
                                         eos_token_id=None)[0].tolist())  # fmt: skip

    for N in new_tokens:
        mine, hf_seconds = paired(run, f"{family} vs transformers, N={N}", ours, theirs, repeats)
        rows.append([
            family, N, f"{N / spread(mine)['median']:.1f}",
            f"{N / spread(hf_seconds)['median']:.1f}", cell(per_round(hf_seconds, mine), 2, "x"),
        ])  # fmt: skip
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="~2M models, shorter sequences")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per figure")
    parser.add_argument("--steps", type=int, default=8, help="steps timed per length")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = "2M" if args.quick else "20M"
    lengths = [128, 512] if args.quick else [128, 256, 512, 1024]
    new_tokens = [64] if args.quick else [112, 496]
    repeats = args.repeats or (3 if args.quick else 5)
    import transformers  # noqa: F401  (its version goes into the record)

    run = Run("generation", args.quick)
    run.header(f"greedy generation, float32 CPU, ~{size}-parameter models")
    caching, versus = [], []
    for family in ("gpt2", "llama"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf = hf_model(family, size)
        with tempfile.TemporaryDirectory() as folder:
            hf.save_pretrained(folder)
            model = DecoderLM.from_hf(folder).eval()
        n_params = sum(p.numel() for p in model.parameters())
        name = f"{family} {n_params / 1e6:.1f}M"
        caching += cache_vs_recompute(run, name, model, lengths, args.steps, repeats)
        versus += versus_transformers(run, name, model, hf, new_tokens, repeats)
    run.table(
        f"KV cache vs recomputation: tokens/s of the {args.steps} greedy steps that end at "
        "length L (medians); speed-up: median (min-max) over the rounds",
        ["model", "L", "cache tok/s", "recompute tok/s", "cache speed-up"],
        caching,
    )
    run.table(
        "generate vs transformers' generate (both cached, greedy, same tokens), from a "
        "16-token prompt: tokens/s (medians); llmbook / HF: median (min-max) over the rounds",
        ["model", "new tokens", "llmbook tok/s", "transformers tok/s", "llmbook / HF"],
        versus,
    )
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
