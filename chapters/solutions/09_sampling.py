# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 09 solutions: sampling and generation
#
# Solutions to the exercises at the end of `chapters/09_sampling.ipynb`. They use the book's
# model and what the chapter exported to `llmbook.generation`.

# %%
import math
import statistics
import time

import matplotlib.pyplot as plt
import torch

from llmbook import ModelConfig, load_model, load_tokenizer
from llmbook.generation import (
    KVCache,
    apply_temperature,
    forward_with_cache,
    generate,
    kv_cache_bytes,
    logits_processors,
    next_token_logits,
)
from llmbook.stories import check_story, read_story

torch.manual_seed(0)
model = load_model("stories")  # chapter 8's trainer on fresh stories; in evaluation mode
tok = load_tokenizer("stories")
prompt_ids = tok.encode("Once upon a time, there was a little")
with torch.no_grad():
    z = model(torch.tensor([prompt_ids]))[0, -1]  # (V,): the distribution of chapter 9's section 1

# %% [markdown]
# ## Exercise 1: temperature and entropy
#
# The entropy $H = -\sum_i p_i \ln p_i$ of the softmax of $z / \tau$. As $\tau \to 0$ all mass
# goes to the argmax (a unique one here), so $H \to 0$; as $\tau \to \infty$ every $z_i/\tau \to 0$
# and the distribution becomes uniform over the $V$ tokens, so $H \to \ln V$.


# %%
def entropy(logits: torch.Tensor) -> float:
    logp = logits.log_softmax(-1)
    return float(-(logp.exp() * logp).sum())


temperatures = torch.logspace(math.log10(0.05), 1, 40).tolist()
H = [entropy(apply_temperature(z, t)) for t in temperatures]
fig, ax = plt.subplots(figsize=(6, 3.5))
_ = ax.plot(temperatures, H, label="entropy of softmax(z / T)")
_ = ax.axhline(math.log(tok.vocab_size), color="grey", ls="--", label="ln V (uniform)")
ax.set(xscale="log", xlabel="temperature T", ylabel="entropy (nats)")
ax.legend()
plt.show()
plt.close(fig)
print("T = 1:", round(entropy(z), 3), "| T = 0.001:", round(abs(entropy(apply_temperature(z, 1e-3))), 6),
      "| T = 1e6:", round(entropy(apply_temperature(z, 1e6)), 4), "| ln V:", round(math.log(2048), 4))  # fmt: skip
assert entropy(apply_temperature(z, 1e-3)) < 1e-3
assert abs(entropy(apply_temperature(z, 1e6)) - math.log(2048)) < 1e-3
assert all(a <= b + 1e-6 for a, b in zip(H, H[1:]))  # rises with the temperature

# %% [markdown]
# The entropy rises monotonically with the temperature: a cooler distribution is always a
# sharper one.
#
# ## Exercise 2: frequency and presence penalties
#
# The penalties count the tokens *generated* so far, not the prompt's. A processor
# `(logits (B, V), ids (B, T), mask (B, T)) -> logits` sees the whole text, so it is built
# knowing where generation began: `start`, the width of the (left-padded) prompt batch, after
# which every column is generated (no padding there). It counts each token's occurrences in
# `ids[:, start:]` with `scatter_add_` and subtracts the two penalties.


# %%
def frequency_presence(start, frequency_penalty=0.0, presence_penalty=0.0):
    """A processor that penalises the tokens of ``ids[:, start:]``, those generated so far."""

    def process(logits, ids, mask):
        new = ids[:, start:]  # (B, T - start)
        ones = torch.ones_like(new, dtype=logits.dtype)
        counts = torch.zeros_like(logits).scatter_add_(-1, new, ones)  # (B, V)
        return logits - frequency_penalty * counts - presence_penalty * (counts > 0)

    return process


@torch.no_grad()
def greedy_with(chain, ids, n):
    ids = torch.tensor([ids])
    mask = torch.ones_like(ids, dtype=torch.bool)
    for _ in range(n):
        logits = next_token_logits(model, ids, mask)
        for process in chain:
            logits = process(logits, ids, mask)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)  # greedy
        mask = torch.ones_like(ids, dtype=torch.bool)
    return ids[0].tolist()


def repeated_ngrams(ids, n=4):
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return sum(g in grams[:i] for i, g in enumerate(grams)) / max(len(grams), 1)


plain = greedy_with(logits_processors(temperature=0), prompt_ids, 240)
penalty = frequency_presence(len(prompt_ids), 0.3, 0.3)  # the prompt is not penalised
penalised = greedy_with([penalty] + logits_processors(temperature=0), prompt_ids, 240)
assert plain == generate(model, prompt_ids, 240, temperature=0)
for name, ids in (("greedy", plain), ("greedy + penalties", penalised)):
    print(f"{name:<19} repeated 4-grams: {repeated_ngrams(ids[len(prompt_ids) :]):.3f}")
assert repeated_ngrams(penalised[len(prompt_ids) :]) < repeated_ngrams(plain[len(prompt_ids) :])
for name, ids in (("greedy", plain), ("greedy + penalties", penalised)):
    first, second = tok.decode(ids).split("<|endoftext|>")[:2]  # two stories, the second cut off
    heroes = [next(c.name for c in read_story(s).cast if c.role == "hero") for s in (first, second)]
    names = sum(p.kind == "name" for p in check_story(first))
    print(f"{name:<19} heroes {heroes}, one name for two characters in the first: {names}x")
    print("  second story:", repr(second[:90]))
    assert (heroes[0] == heroes[1]) == (name == "greedy") and names > 0  # quoted below

# %% [markdown]
# The penalties take the share of repeated 4-grams of greedy decoding from 0.093 to 0.000. What
# plain greedy repeats is a whole story: after its first one ends, with `<|endoftext|>`, it starts
# the same again, with the same hero, missing tooth and orange toy robot; with the penalties, the
# second story has another hero. They do not cure the name mix-ups the chapter's story checker
# finds (section 7 of the chapter): both first stories give the hero's name to the friend in
# "Hannah wanted to hold the toy ..., and Hannah let her", and the penalised one adds a second
# ("Hannah said, \"I am so sorry, Hannah.\""). The penalties lower every name already written,
# the right one as much as the wrong one, so they cannot tell the model which character a
# sentence is about: repetition across a text is one problem, who is who inside it another.
#
# Unlike the repetition penalty, which treats a token seen once like one seen ten times, the
# frequency penalty grows with every use, and both subtract instead of dividing, so they act
# the same on positive and negative logits.
#
# ## Exercise 3: the cache of real models
#
# Llama-3.1-8B in bfloat16: the weights take $8{,}030{,}261{,}248 \times 2$ bytes; what is left of
# 80 GB (here $80 \times 10^9$ bytes) holds the cache.

# %%
llama = ModelConfig.from_preset("llama-3.1-8b")
llama_mha = ModelConfig.from_preset("llama-3.1-8b", n_kv_heads=32)
free = 80e9 - 8_030_261_248 * 2
for name, config in (("GQA, 8 K/V heads", llama), ("MHA, 32 K/V heads", llama_mha)):
    tokens = int(free // kv_cache_bytes(config))
    print(f"{name}: {kv_cache_bytes(config) // 1024} KiB per token -> {tokens:,} tokens "
          f"= {tokens / 131072:.1f} full 128k contexts")  # fmt: skip
meta = KVCache(llama.n_layers, 1, llama.n_kv_heads, 1, llama.head_dim, torch.bfloat16, "meta")
print("KVCache on the meta device, one position:", meta.nbytes, "bytes")
assert meta.nbytes == kv_cache_bytes(llama) == 131072

# %% [markdown]
# GQA buys four times the tokens: with 8 K/V heads the cache next to the weights holds 3.7 full
# 128k-token contexts; with 32, not even one (0.9). (Serving systems also quantise the cache to 8
# bits, and page it in blocks so that no sequence reserves memory it does not use.)
#
# ## Exercise 4: where does the time go?
#
# Time the prefill (the first call, over the whole prompt) and the 16 decode steps after it,
# one by one, for growing prompts, on one thread (steadier on a shared machine, and the rate
# compared with below is one thread's). The first calls of a process pay one-time costs (memory
# the allocator has not yet reserved, kernels chosen), and one untimed round is not always
# enough for the times to settle, so three rounds over all the lengths come first. Then the
# lengths take turns for 7 rounds, so that a change of load on the machine hits all of them.
# A decode step's time is the median of its 16 steps, and each figure the median of the 7
# rounds: a median ignores the odd step slowed by another program.


# %%
@torch.no_grad()
def prefill_and_decode(T, steps=16):
    """Seconds of the prefill of T tokens, and the median seconds of the decode steps after it."""
    ids = torch.randint(0, 2047, (1, T), generator=torch.Generator().manual_seed(T))
    cache = KVCache.for_model(model, 1, T + steps)
    start = time.perf_counter()
    logits = forward_with_cache(model, ids, cache)[:, -1]
    prefill, step_times = time.perf_counter() - start, []
    for _ in range(steps):
        start = time.perf_counter()
        logits = forward_with_cache(model, logits.argmax(-1, keepdim=True), cache)[:, -1]
        step_times.append(time.perf_counter() - start)
    return prefill, statistics.median(step_times)


torch.set_num_threads(1)
prompt_lengths = [16, 64, 128, model.config.context_length - 16]
for _ in range(3):  # warm-up rounds, not timed
    for T in prompt_lengths:
        prefill_and_decode(T)
runs = [[prefill_and_decode(T) for T in prompt_lengths] for _ in range(7)]  # lengths take turns
results = [
    (statistics.median(r[i][0] for r in runs), statistics.median(r[i][1] for r in runs))
    for i in range(len(prompt_lengths))
]

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6, 3.5))
_ = ax.plot(prompt_lengths, [1000 * p for p, _ in results], "o-", label="prefill (whole prompt)")
_ = ax.plot(prompt_lengths, [1000 * d for _, d in results], "o-", label="one decode step")
ax.set(xlabel="prompt length (tokens)", ylabel="milliseconds", title="prefill vs decode, CPU")
ax.legend()
plt.show()
plt.close(fig)
for T, (p, d) in zip(prompt_lengths, results):
    print(f"T = {T:>3}: prefill {1000 * p:6.1f} ms, decode step {1000 * d:5.2f} ms")

# %% [markdown]
# In the run stored above, the prefill takes several times as long at $T = 240$ as at $T = 16$,
# while the time of a decode step hardly moves from one length to the next (a re-run, or
# another machine, gives other milliseconds; the timings are not checked). The
# prefill runs all $T$ tokens through every layer, so its cost grows with $T$ (the attention
# part even as $T^2$, though it is small at these lengths). A decode step runs one token. Its arithmetic is easy to count: two FLOPs (a multiply and an add) per weight of every
# matrix it multiplies by (all but the token table, which is a lookup), and, per layer and
# query head, $2 T D$ for the scores $q \cdot k$ over $T$ cached keys and $2 T D$ for the
# weighted sum of the values:

# %%
c = model.config
matrices = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n)
T = prompt_lengths[-1]
attention_flops = 4 * T * c.head_dim * c.n_heads * c.n_layers
flops = 2 * matrices + attention_flops
print(f"weights multiplied: {matrices:,} -> {2 * matrices / 1e6:.2f} MFLOP per token")
print(f"attention over T = {T} cached positions: {attention_flops / 1e6:.2f} MFLOP")
print(f"a decode step: {flops / 1e6:.2f} MFLOP")
assert matrices == 1_048_576
calls = []
hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules()]
with torch.no_grad():
    forward_with_cache(model, torch.tensor([[1]]), KVCache.for_model(model, 1, 8))
for hook in hooks:
    hook.remove()
print("modules called in one step:", len(calls))
assert len(calls) == 43  # 29 linear maps, 9 norms, 4 MLPs, the token table

# %% [markdown]
# Against the time of a step, and the rate at which this CPU multiplies matrices (one thread,
# as set above; a $512 \times 512$ product, the median of 20):

# %%
# NBVAL_IGNORE_OUTPUT
a = torch.randn(512, 512)
products = []
for _ in range(20):
    start = time.perf_counter()
    _ = a @ a
    products.append(time.perf_counter() - start)
matmul_rate = 2 * 512**3 / statistics.median(products)
decode = results[-1][1]
print(f"decode step at T = {T}: {1000 * decode:.2f} ms -> {flops / decode / 1e9:.1f} GFLOP/s")
print(f"512 x 512 matrix product: {matmul_rate / 1e9:.0f} GFLOP/s")

# %% [markdown]
# A decode step reaches a small fraction of what the CPU can do (a few GFLOP/s in the stored
# run, more than ten times less than the large product): its time is not its arithmetic but the
# fixed cost of running the model once. Each step calls 43 modules (counted above), which run
# a few hundred small tensor operations, and each costs microseconds of Python and dispatch
# overhead whatever the size of its tensors. That cost does not depend on $T$, which is why
# the time of a step barely changes with the length of the text; the part that does grow,
# attention over the cache, is a fifth of the step's FLOPs at $T = 240$, and FLOPs are not what
# the step is waiting for. Batching many sequences into one step spreads the fixed cost over all of them; so does
# capturing the step as one graph (`torch.compile` with CUDA graphs). On a GPU, once the
# overhead is gone, a decode step is limited by reading the weights and the cache from memory,
# not by arithmetic, which again is why batching pays so well.
