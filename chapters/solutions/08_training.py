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
# # Chapter 08 solutions: training
#
# Solutions to the exercises at the end of `chapters/08_training.ipynb`. They use the book's
# corpus and tokenizer, chapter 7's `DecoderLM` and the functions the chapter exported to
# `llmbook.training`.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import llmbook.stories
from llmbook import encode_text, load_corpus, load_tokenizer, train_val_split
from llmbook.model import DecoderLM, ModelConfig

_ = torch.manual_seed(0)
tokenizer = load_tokenizer("stories")
text = load_corpus("stories")
train_text, val_text = train_val_split(text)
encode = lambda t: torch.tensor(encode_text(tokenizer, t))  # noqa: E731
train_ids, val_ids = encode(train_text), encode(val_text)
chars_per_token = len(val_text) / len(val_ids)
floor = llmbook.stories.read_meta()["nats_per_char"]

# %% [markdown]
# ## Exercise 1: the unigram baseline
#
# Count each token in the training text; the probability of token $v$ is its share of the count
# (plus one for every token, so that a token never seen in training does not get probability 0
# and an infinite loss: add-one smoothing). The loss of this model on the validation text is
# the mean of $-\log p(v)$ over the validation tokens, the cross-entropy between the two
# frequency tables.

# %%
V = tokenizer.vocab_size
counts = torch.bincount(train_ids, minlength=V).double() + 1  # add-one smoothing
log_p = (counts / counts.sum()).log()  # (V,)
unigram = -log_p[val_ids].mean().item()
print(f"ln V:     {math.log(V):.3f} nats/token = {math.log(V) / chars_per_token:.3f} nats/char")
print(f"unigram:  {unigram:.3f} nats/token = {unigram / chars_per_token:.3f} nats/char")
print(f"floor:    {floor * chars_per_token:.3f} nats/token = {floor:.4f} nats/char")
assert floor * chars_per_token < unigram < math.log(V)

# %% [markdown]
# Knowing only which tokens are common already removes a large part of the untrained model's
# loss. The small model of the chapter's section 12 ends below this line in about half a minute
# on the book's CPU: it has learned something about *order*, which is what the rest of the gap to
# the floor is made of.
#
# ## Exercise 2: too large a learning rate, with and without clipping
#
# The over-fitting loop of section 5, at `lr=0.05` (about 17 times the chapter's), with the
# gradient norm clipped to 1.0 or not.

# %%
config = ModelConfig(vocab_size=V, context_length=32, d_model=64, n_layers=2, n_heads=4,
                     n_kv_heads=2, d_ff=176)  # fmt: skip
story_ids = encode(text[: text.index("<|endoftext|>")])


def overfit(lr, clip, steps=80, T=32):
    torch.manual_seed(0)
    model = DecoderLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, len(story_ids) - T, (8,), generator=g)
        x = torch.stack([story_ids[s : s + T] for s in starts])
        y = torch.stack([story_ids[s + 1 : s + T + 1] for s in starts])
        loss = model(x, y)[1]
        loss.backward()
        norms = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0 if clip else float("inf"))
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses, norms.item()


runs = {name: overfit(lr, clip) for name, lr, clip in
        [("lr 0.003", 3e-3, False), ("lr 0.05, no clipping", 0.05, False), ("lr 0.05, clipped to 1.0", 0.05, True)]}  # fmt: skip

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, (losses, _) in runs.items():
    _ = ax.plot(losses, label=name)
ax.set(xlabel="step", ylabel="training loss (nats per token)", yscale="log",
       title="Over-fitting one story at two learning rates")  # fmt: skip
_ = ax.legend()
plt.show()
plt.close(fig)

# %%
# NBVAL_IGNORE_OUTPUT
for name, (losses, _) in runs.items():
    print(f"{name:24} loss after 10 steps {losses[10]:.2f}, at the end {losses[-1]:.3f}")
assert all(runs["lr 0.003"][0][-1] < runs[name][0][-1] for name in list(runs)[1:])
# the mean of the last 20 steps: one step's loss jumps around at this learning rate
unclipped_end, clipped_end = (
    sum(runs[name][0][-20:]) / 20 for name in ("lr 0.05, no clipping", "lr 0.05, clipped to 1.0")
)
print(f"mean of the last 20 steps: no clipping {unclipped_end:.2f}, clipped {clipped_end:.2f}")
assert clipped_end < unclipped_end

# %% [markdown]
# At 0.05 the loss falls fastest for the first few steps, then far more slowly: the steps are
# too long to settle into the story, while the run at 0.003 keeps going down and ends far below.
# Clipping helps a little (here the clipped run ends lower than the run without it, over its
# last 20 steps too), and it cannot fix a learning rate that is too large for every step: clipping
# shrinks the gradient, but Adam divides the gradient by its own running RMS, so its update is
# about `lr` per weight whatever the gradient's size. Clipping guards against rare spikes; the
# learning rate and its warm-up set the step size.
#
# ## Exercise 3: accumulation when micro-batches hold different numbers of tokens
#
# With padding, or windows of different lengths, micro-batches contribute different numbers of
# real tokens. The mean of the micro-batch means weighs every micro-batch equally, so the tokens
# of a short one count more. The fix: add up the per-token losses (`reduction="sum"`) and divide
# by the total number of tokens in the whole batch, known before the micro-steps start.

# %%
torch.manual_seed(0)
net = DecoderLM(config)
short = train_ids[: 2 * 9].view(2, 9)  # micro-batch 1: 2 windows of 8 targets, 16 tokens
long = train_ids[100 : 100 + 2 * 25].view(2, 25)  # micro-batch 2: 2 windows of 24, 48 tokens
micro_batches = [(w[:, :-1], w[:, 1:]) for w in (short, long)]
n_tokens = sum(y.numel() for _, y in micro_batches)  # 64, known before the micro-steps


def gradients(loss_of_micro_batch):
    """Accumulate over the micro-batches, one backward() each; return the gradients."""
    net.zero_grad()
    for x, y in micro_batches:
        loss_of_micro_batch(net(x), y).backward()  # .grad adds up
    return [p.grad.clone() for p in net.parameters()]


def token_sum(logits, y):
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")


# The reference: the mean over all 64 tokens, one backward through both micro-batches.
net.zero_grad()
(sum(token_sum(net(x), y) for x, y in micro_batches) / n_tokens).backward()
reference = [p.grad.clone() for p in net.parameters()]
mean_of_means = gradients(lambda logits, y: token_sum(logits, y) / y.numel() / 2)
fixed = gradients(lambda logits, y: token_sum(logits, y) / n_tokens)
gap = lambda grads: max((a - b).abs().max().item() for a, b in zip(grads, reference))  # noqa: E731
print("mean of micro-batch means: largest gradient error above 1e-4:", gap(mean_of_means) > 1e-4)
print("sums / all tokens:          largest gradient error below 1e-6:", gap(fixed) < 1e-6)
assert gap(mean_of_means) > 1e-4 and gap(fixed) < 1e-6

# %% [markdown]
# Dividing each micro-batch's mean by the number of micro-batches weighs the 16 tokens of the
# short windows as much as the 48 of the long ones, so the accumulated gradient is not the
# gradient of the mean over all tokens. The fix: count the tokens of the whole batch first,
# then in each micro-step call `(loss_sum / n_tokens).backward()` with the micro-batch's summed
# loss; the accumulated gradient then equals the one-batch gradient up to float rounding. (The
# chapter's trainer uses windows of equal length, where the two agree.)
#
# ## Exercise 4: what training costs in memory
#
# In float32 every weight takes 4 bytes, its gradient 4 more, and AdamW's two running averages
# 8 more: 16 bytes per weight before any activations.

# %%
n_8b = 8.03e9
print(f"Llama-3.1-8B: {n_8b * 16 / 1e9:.1f} GB (weights {n_8b * 4 / 1e9:.1f}, gradients "
      f"{n_8b * 4 / 1e9:.1f}, AdamW state {n_8b * 8 / 1e9:.1f})")  # fmt: skip

model = DecoderLM(ModelConfig.from_preset("stories-small"))
optimizer = torch.optim.AdamW(model.parameters())
x = train_ids[:65].view(1, -1)
model(x[:, :-1], x[:, 1:])[1].backward()
optimizer.step()
n_params = sum(p.numel() for p in model.parameters())
weights = sum(p.numel() * p.element_size() for p in model.parameters())
grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
            if t.dim() > 0)  # fmt: skip
measured = weights + grads + state
print(
    f"stories-small: {n_params:,} weights; {16 * n_params:,} bytes by the formula, {measured:,} measured"
)
assert measured == 16 * n_params

# %% [markdown]
# About 128 GB for the 8B model: more than the 80 GB of one large GPU, before the activations
# of a single batch. Mixed precision does not shrink it: autocast (the chapter, section 11) keeps the
# weights, their gradients and AdamW's state in float32, and even "bfloat16 weights with float32
# master weights" adds up to 2 + 4 (master) + 2 (gradient) + 8 (AdamW) = 16 bytes a weight; what
# bfloat16 saves is time and activation memory. What does shrink it: sharding the optimizer
# state, gradients and weights across devices (ZeRO / FSDP), 8-bit optimizer states, or training
# small adapters instead of all the weights (chapter 11's LoRA).
