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
# # Chapter 00: The big picture
#
# A language model does one thing: given a text, it scores every possible next token. Everything
# a chatbot does is that one step in a loop: pick a token from the scores, append it, ask again.
# This chapter runs the whole loop once, with the finished `llmbook` package and the book's own
# model, and prints the shape of every tensor on the way. The rest of the book builds each box
# of the picture from scratch; here you see where each box sits before you open it.
#
# **What you will see**
#
# 1. One prompt through the whole pipeline: prompt -> chat template -> token ids -> embeddings
#    -> stacked decoder blocks -> final norm -> LM head -> logits -> filters (temperature,
#    top-k) -> sampling -> append -> repeat -> detokenize, with every shape printed.
# 2. The module tree of a Llama-style model (`print(model)`), read line by line.
# 3. The parameter and memory budget of real models (GPT-2, Llama-2-7B, Llama-3.1-8B,
#    Llama-3.2-1B), counted exactly without downloading them, on PyTorch's `meta` device.
# 4. An inference engine's printout of Llama-3.1-8B (SGLang's), mapped onto the book's module
#    names, with fused projections checked numerically.
# 5. A map: which chapter builds which part, and its name in `llmbook`.
#
# This chapter defines nothing new and exports nothing: it only imports from `llmbook`, so every
# name you meet here is explained in a later chapter.

# %%
import matplotlib.pyplot as plt
import tiktoken
import torch
import torch.nn.functional as F

from llmbook import (
    BPETokenizer,
    DecoderLM,
    ModelConfig,
    apply_temperature,
    generate,
    llama3_chat_prompt,
    load_corpus,
    load_model,
    load_tokenizer,
    parameter_counts,
    top_k_filter,
)
from llmbook.generation import LLAMA3_SPECIAL_TOKENS, sample_next
from llmbook.stories import check_story

torch.manual_seed(0)
tok = load_tokenizer("stories")  # the book's tokenizer: 2,048 ids (chapter 1)
EOT = tok.special_tokens["<|endoftext|>"]
model = load_model("stories")  # the book's trained model (chapters 8 and 10), in eval mode
c = model.config
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, vocabulary {tok.vocab_size}")

# %% [markdown]
# `load_model("stories")` loads the model the book ships: a small Llama (the `stories-small`
# preset of chapter 7) trained with chapter 8's trainer on 25 million tokens of fresh
# children's stories, written for it by the book's story generator and each read once (chapters
# 2 and 10), with the book's tokenizer. It is small enough to run on any laptop CPU in
# milliseconds.
#
# ## 1. The loop in one picture
#
# The picture below is the whole book. Shapes use $B$ for the batch (1 prompt here), $T$ for
# the number of tokens so far, $C$ for the model width `d_model`, $N$ for the number of blocks
# and $V$ for the vocabulary size. The part inside the dashed box is the model, `DecoderLM`;
# the rest is generation (chapter 9).
#
# ```mermaid
# flowchart TB
#     P["prompt<br/>text"] --> CT["chat template<br/>one string with role markers"]
#     CT --> TK["tokenizer.encode<br/>input_ids (1, T)"]
#     subgraph M["DecoderLM"]
#         E["embed_tokens<br/>(1, T, C)"] --> BL["N decoder blocks<br/>(1, T, C) each"]
#         BL --> NO["final norm<br/>(1, T, C)"]
#         NO --> H["lm_head<br/>logits (1, T, V)"]
#     end
#     TK --> E
#     H --> LAST["last position<br/>(1, V)"]
#     LAST --> LP["filters<br/>temperature, top-k, top-p<br/>(1, V)"]
#     LP --> S["softmax + sample<br/>next id (1, 1)"]
#     S --> A["append<br/>input_ids (1, T + 1)"]
#     A -- "repeat until EOS<br/>or max_new_tokens" --> E
#     A --> D["tokenizer.decode<br/>text"]
#     style M stroke-dasharray: 5 5
# ```
#
# The book's model is a small Llama: the same parts as Llama-3.1-8B, with smaller numbers.
# Here are both configurations side by side (`ModelConfig`, chapter 7):

# %%
big = ModelConfig.from_preset("llama-3.1-8b")
fields = ["vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff",
          "context_length", "rope_base", "norm", "mlp", "position"]  # fmt: skip
print(f"{'':16}{'book':>10}{'Llama-3.1-8B':>14}")
for name in fields:
    print(f"{name:16}{getattr(c, name)!s:>10}{getattr(big, name)!s:>14}")
assert (big.vocab_size, big.d_ff, big.n_kv_heads) == (128_256, 14_336, 8)

# %% [markdown]
# Llama 3's vocabulary is 128,256 ids: 128,000 ordinary tokens and 256 reserved for special
# tokens such as the chat markers below.

# %%
print(f"{big.vocab_size:,} = {128_000:,} + {big.vocab_size - 128_000}")
assert big.vocab_size - 128_000 == 256

# %% [markdown]
# ## 2. Prompt and chat template
#
# A chat model never sees "a user" and "an assistant"; it sees one string in which the turns
# are marked with **special tokens**, and it was fine-tuned on conversations written that way.
# This is the Llama 3 template of the question "How do I cook tomato and egg stir-fry?". The
# string ends with the assistant's header: the model's continuation is the answer, and it
# ends its turn by producing `<|eot_id|>`.

# %%
question = "How do I cook tomato and egg stir-fry?"
chat = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    + question
    + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)
print(chat)
assert chat == llama3_chat_prompt([{"role": "user", "content": question}])  # chapter 9

# %% [markdown]
# This is Llama 3's template (that of Meta-Llama-3-8B-Instruct). Llama-3.1's instruct models
# ship a longer default: it always begins with a system turn that holds the date of the
# training data and today's date (`Cutting Knowledge Date: December 2023`, `Today Date: ...`);
# a system message of the user's goes inside that same turn, after the two date lines. And
# generation stops on any of three ids, 128001 (`<|end_of_text|>`), 128008 (`<|eom_id|>`, the
# end of a message that calls a tool) and 128009 (`<|eot_id|>`). Both come with the checkpoint,
# not from this book: the template is the `chat_template` of Llama-3.1-8B-Instruct's
# `tokenizer_config.json`, the three ids the `eos_token_id` of its `generation_config.json`.
# The markers are the same; a prompt must follow the template of the exact model it is for.

# %% [markdown]
# Each marker must be **one id** that no typed text can produce. The book's tokenizer, extended
# with Llama 3's five markers as chapter 9 does, shows the difference; OpenAI's `cl100k_base`
# (through `tiktoken`, chapter 1), which does not know these markers, cuts them into pieces:

# %%
specials = {
    **tok.special_tokens,
    **{s: tok.vocab_size + i for i, s in enumerate(LLAMA3_SPECIAL_TOKENS)},
}
chat_tok = BPETokenizer(tok.merges, tok.pattern, specials, tok.byte_ids)
chat_ids = chat_tok.encode(chat, allowed_special=set(LLAMA3_SPECIAL_TOKENS))
markers = [i for i in chat_ids if i >= tok.vocab_size]
cl100k = tiktoken.get_encoding("cl100k_base")
print(
    "question alone:  book", len(tok.encode(question)), "ids, cl100k", len(cl100k.encode(question))
)
print("chat template:   book", len(chat_ids), "ids, of which", len(markers), "markers:", markers)
print(
    "whole template as plain text: cl100k", len(cl100k.encode(chat, disallowed_special=())),
    "ids; <|eot_id|> alone:", len(cl100k.encode("<|eot_id|>", disallowed_special=())), "ids",
)  # fmt: skip
assert chat_tok.decode(chat_ids) == chat and len(markers) == 6

# %% [markdown]
# The book's model was trained on children's stories, not on conversations, so it has no use
# for a chat template. From here on the prompt is the beginning of a story.
#
# ## 3. Text to token ids
#
# The tokenizer (chapter 1) cuts the text into pieces from its vocabulary and gives each piece
# its id. A batch of one prompt of $T$ tokens is a tensor of shape $(1, T)$:

# %%
prompt = "Once upon a time, a"
ids = torch.tensor([tok.encode(prompt)])  # (B, T)
print("input_ids", tuple(ids.shape), ids[0].tolist())
print("pieces   ", [tok.decode([i]) for i in ids[0].tolist()])
assert tok.decode(ids[0].tolist()) == prompt

# %% [markdown]
# ## 4. Through the model, one stage at a time
#
# `model(ids)` runs all the stages at once. Here they are one by one, with the chapter that
# builds each. The embedding (chapter 3) replaces each id by a learned vector of width $C$;
# each decoder block (attention, chapters 4-5; the MLP and the norms, chapter 6; the block,
# chapter 7) takes $(1, T, C)$ to $(1, T, C)$, so blocks can be stacked; the final norm and the
# LM head turn each position's vector into $V$ scores, the **logits**.


# %%
def show(stage, tensor):
    print(f"{stage:34}{tuple(tensor.shape)}")


with torch.no_grad():
    show("input_ids", ids)
    x = model.model.embed_tokens(ids)
    show("embed_tokens            (ch. 3)", x)
    for i, block in enumerate(model.model.layers):
        x = block(x)  # attention + MLP, each with a residual
        show(f"block {i}                 (ch. 7)", x)
    x = model.model.norm(x)
    show("final norm              (ch. 6)", x)
    logits = model.lm_head(x)
    show("lm_head: logits         (ch. 7)", logits)
    last = logits[:, -1]  # only the last position predicts the next token
    show("last position", last)
assert torch.allclose(logits, model(ids), atol=1e-5)

# %% [markdown]
# Every position gets logits (training uses them all, chapter 8), but only the last one scores
# the token that comes *after* the prompt. Nothing so far is random: the same prompt always gives
# the same logits.
#
# ## 5. Filters, sampling, append, repeat
#
# **Filters** reshape the scores before a token is drawn (chapter 9; Hugging Face calls them
# *logits processors*): dividing by a temperature below 1 sharpens the distribution, and top-$k$
# keeps only the $k$ best tokens.
# The softmax turns the $V$ scores into probabilities, and a seeded random generator draws one
# id from them: a uniform number $u$ in [0, 1), and the first id whose cumulative probability
# passes $u$ (chapter 9 explains why the book draws this way rather than with
# `torch.multinomial`: the same seed then gives the same tokens for the same logits, and says
# when the logits themselves can differ).

# %%
temperature, k = 0.8, 50
z = top_k_filter(apply_temperature(last, temperature), k)  # (1, V), -inf outside the top k
probs = z.softmax(dim=-1)  # softmax over the V logits, never over the hidden vector
print("probs", tuple(probs.shape), "sum", round(probs.sum().item(), 4),
      "non-zero", int((probs > 0).sum()))  # fmt: skip
top = probs[0].topk(5)
for p, i in zip(top.values.tolist(), top.indices.tolist()):
    print(f"{tok.decode([i])!r:>14}  p = {p:.3f}")
g = torch.Generator().manual_seed(0)
u = torch.rand(1, 1, generator=g)  # (1, 1), uniform in [0, 1)
next_id = torch.searchsorted(probs.cumsum(-1), u, right=True)  # (1, 1): first id with cdf > u
print("next id", tuple(next_id.shape), next_id.item(), repr(tok.decode(next_id[0].tolist())))
assert tok.decode(next_id[0].tolist()) == " sleepy" and next_id.item() not in top.indices  # below

# %% [markdown]
# The draw picked `' sleepy'`, which is not among the five most likely tokens: sampling follows
# the probabilities, it does not take the best one. Appending the new id gives a prompt one token
# longer, and the loop starts again from the embedding. It stops when the model writes the
# end-of-text token `<|endoftext|>` (the end of its story), or at a cap, `max_new_tokens`; the
# ids are then turned back into text. The longest story of the corpus, with its
# `<|endoftext|>`, is longer than the model's context (printed below), so the loop feeds the
# model only the last `context_length` tokens. Written out, the loop is a few lines:


# %%
@torch.no_grad()
def next_token(ids, generator):
    last = model(ids[:, -c.context_length :])[:, -1]  # (1, V): crop to the context window
    z = top_k_filter(apply_temperature(last, temperature), k)
    return sample_next(z, generator)[:, None]  # (1, 1): chapter 9's draw


stories = load_corpus("stories").split("<|endoftext|>")
longest = max(len(tok.encode(story)) for story in stories)
print(f"longest story of the corpus: {longest} tokens + <|endoftext|>, context {c.context_length}")
assert longest + 1 > c.context_length  # the loop crops to the last context_length tokens
max_new_tokens = 400  # a cap, above the longest story
g = torch.Generator().manual_seed(0)
out = ids
for n in range(max_new_tokens):
    out = torch.cat([out, next_token(out, g)], dim=1)  # append: (1, T + n + 1)
    if n < 3:
        show(f"step {n}: input_ids", out)
    if out[0, -1].item() == EOT:  # the story is over
        break
print("...", tuple(out.shape), "| ends with <|endoftext|>:", out[0, -1].item() == EOT)
story = tok.decode(out[0].tolist())
print(story)
assert out[0, -1].item() == EOT

# %% [markdown]
# A model of 1.3 million parameters, trained on a small CPU, writes the kind of stories it was
# trained on, to the end, where it writes `<|endoftext|>` itself: a hero, a best friend, a toy
# stuck on a branch, a helper and an evening ending. It is not flawless. The book's story
# checker (chapter 10) reads the story as the generator would have written it and lists what
# contradicts itself:

# %%
problems = check_story(tok.decode(out[0, :-1].tolist()))  # the story without <|endoftext|>
print([p.message for p in problems] or "nothing")
assert [p.kind for p in problems] == ["name"] and "Ned tossed the yo-yo to Ned" in story

# %% [markdown]
# One slip: "Ned tossed the yo-yo to Ned", where the friend, Clara, should be. Which name comes
# next depends on which character the sentence is about, set up many tokens earlier; one name
# for two characters is one of the slips chapter 10 counts in 200 of the model's stories.
# The same loop, with the same shapes and bigger numbers, is how Llama-3.1-8B answers the
# stir-fry question.
#
# `llmbook.generate` (chapter 9) is this loop with every filter, stop conditions, batches of
# prompts and a KV cache that saves recomputing the prompt at each step. With the same seed, and
# without the cache as the loop (`use_cache=False`: cached logits differ from recomputed ones in
# the last bits, which could move a draw), it draws the same tokens:

# %%
g = torch.Generator().manual_seed(0)
same = generate(model, ids[0].tolist(), max_new_tokens, temperature=temperature, top_k=k,
                stop=EOT, generator=g, use_cache=False)  # fmt: skip
print("same tokens as the loop:", same == out[0].tolist())
assert same == out[0].tolist()

# %% [markdown]
# ## 6. The module tree, line by line
#
# `print(model)` shows a model as a tree of modules: each line is a submodule's name in
# parentheses and its class with its sizes. The book names its modules as Hugging Face's
# `modeling_llama.py` does (chapter 7), so the tree of the book's model reads like the printout
# of any Llama checkpoint, and loading one is a table from name to name:
#
# ```mermaid
# flowchart TD
#     subgraph LM["DecoderLM"]
#         direction TB
#         subgraph DM["model: Decoder"]
#             direction TB
#             EM["embed_tokens: V x C"]
#             RO["rotary_emb"]
#             subgraph LY["layers: N x TransformerBlock"]
#                 direction TB
#                 N1["input_layernorm"] --> SA["self_attn: q, k, v, o_proj"]
#                 SA --> N2["post_attention_layernorm"]
#                 N2 --> MLP["mlp: gate, up, down_proj"]
#             end
#             FN["norm"]
#         end
#         HD["lm_head: C -> V"]
#     end
#     EM --> N1
#     RO -.-> SA
#     MLP --> FN
#     FN --> HD
# ```
#
# Each box is a module inside the one around it (`model.layers[0].self_attn.q_proj`), drawn in the
# order the hidden vectors pass through them; the dotted arrow is `rotary_emb`, shared by every
# block's attention. The sizes are in the printout below.

# %%
print(model)
assert model.model.layers[0].self_attn.rope is model.model.rotary_emb  # one module, two names

# %% [markdown]
# Read from the top:
#
# - `embed_tokens`: a table of $V \times C$ = 2048 x 128 numbers, one row per token (chapter 3).
#   Llama adds no position vector here; positions enter inside attention.
# - `rotary_emb`: the rotary position embedding (RoPE, chapter 5), shared by all blocks. It has
#   no weights: it rotates pairs of numbers in each query and key by angles that depend on the
#   position. `layout='half'` pairs dimension $i$ with $i + D/2$.
# - `layers`: `(0-3): 4 x TransformerBlock`, PyTorch's short form for four blocks of the same
#   shape (different weights). Each block:
#   - `input_layernorm`: an RMSNorm before attention (chapter 6);
#   - `self_attn`: grouped-query attention with 4 query heads and 2 key/value heads of 32
#     (chapter 5). `q_proj` maps 128 -> 4 x 32 = 128, `k_proj` and `v_proj` only 128 -> 2 x 32
#     = 64, `o_proj` maps the heads back to 128. Its `(rope)` line is not a second copy: it is
#     the same module as `rotary_emb` above (checked below), printed again where it is used;
#   - `post_attention_layernorm`: the RMSNorm before the MLP;
#   - `mlp`: SwiGLU (chapter 6): `gate_proj` and `up_proj` expand 128 -> 384, `down_proj`
#     projects back; `silu(gate) * up` between them.
#   - `dropout` with `p=0.0`. The book's model was trained without dropout: it never read a
#     story twice, so there was nothing to memorise (chapter 10; chapter 8's model, trained on
#     a small corpus read 30 times, used 0.1). Dropout acts only in training mode anyway, and
#     Llama's published configurations set it to 0.
# - `norm`: the final RMSNorm, after the last block.
# - `lm_head`: a linear map 128 -> 2048, the logits of every token of the vocabulary.
#
# The same tree for Llama-3.1-8B, built on the `meta` device (next section), differs only in its
# numbers (32 blocks, width 4096, 8 K/V heads of 128, an MLP of 14336, a 128,256-token head)
# and in Llama 3.1's RoPE scaling (`scaling='llama3'`, chapter 5).

# %%
with torch.device("meta"):
    llama = DecoderLM(big)
print(llama)

# %% [markdown]
# ## 7. The parameter and memory budget of real models
#
# An 8-billion-parameter model needs 32 GB in float32 just to exist. PyTorch's **`meta`
# device** creates tensors with a shape and a dtype but no storage, so a model of any size is
# built in milliseconds and its parameters counted exactly, without downloading anything.
# `parameter_counts` (chapter 7) sorts them by the module they sit in:

# %%
names = ["gpt2", "llama-2-7b", "llama-3.1-8b", "llama-3.2-1b"]
rows = {}
for name in names:
    with torch.device("meta"):
        rows[name] = parameter_counts(DecoderLM(ModelConfig.from_preset(name)))
rows["book"] = parameter_counts(model)
print(f"{'':20}" + "".join(f"{name:>15}" for name in rows))
for part in rows["gpt2"]:
    print(f"{part:20}" + "".join(f"{counts[part]:>15,}" for counts in rows.values()))
assert rows["llama-3.1-8b"]["total"] == 8_030_261_248
assert rows["llama-2-7b"]["total"] == 6_738_415_616
assert rows["gpt2"]["total"] == 124_439_808
assert rows["llama-3.2-1b"]["total"] == 1_235_814_400

# %% [markdown]
# These are the counts of the published checkpoints. GPT-2 and Llama-3.2-1B tie their head to
# the token table (the same matrix serves both), so their "LM head" row is 0: the head is counted
# once, in the embedding. The LM head of Llama-3.1-8B is a $4096 \times 128{,}256$ matrix:

# %%
head, total = rows["llama-3.1-8b"]["LM head"], rows["llama-3.1-8b"]["total"]
print(f"LM head: 4096 x 128256 = {head:,} = {head / total:.1%} of {total:,}")
assert head == 4096 * 128_256 and 0.065 < head / total < 0.066

# %% [markdown]
# So the head is about 6.5% of the model, not "5.16B, 76%", a figure that can be found in
# articles about Llama. The shares of every part, for each model:

# %% tags=["hide-input"] jupyter={"source_hidden": true}
parts = ["token embedding", "position embedding", "attention", "MLP", "norms", "LM head"]
colors = ["tab:blue", "tab:cyan", "tab:orange", "tab:green", "tab:grey", "tab:red"]
fig, ax = plt.subplots(figsize=(8, 3.2))
for j, name in enumerate(rows):
    left = 0.0
    for part, color in zip(parts, colors):
        share = 100 * rows[name][part] / rows[name]["total"]
        _ = ax.barh(j, share, left=left, color=color, label=part if j == 0 else None)
        left += share
ax.set_yticks(range(len(rows)), list(rows))
ax.set(xlabel="share of the parameters (%)", ylabel="model", xlim=(0, 100))
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=6, fontsize=8)
fig.tight_layout()
plt.show()
plt.close(fig)

# %% [markdown]
# In the large models most parameters sit in the blocks, and most of a block is its MLP. In the
# small ones the vocabulary tables take a larger share, because $V \cdot C$ shrinks more slowly
# than $N \cdot C^2$.
#
# **Memory.** Each parameter takes 4 bytes in float32 and 2 in bfloat16, the format models are
# usually served in (1 GB = $10^9$ bytes here). That is for the weights alone: generation adds
# the KV cache (chapter 9), and training adds gradients and optimizer state, several times more
# (chapter 8).

# %%
GB = 10**9
print(f"{'':14}{'parameters':>16}{'fp32 GB':>10}{'bf16 GB':>10}")
for name, counts in rows.items():
    n = counts["total"]
    print(f"{name:14}{n:>16,}{n * 4 / GB:>10.3f}{n * 2 / GB:>10.3f}")
assert round(rows["llama-3.1-8b"]["total"] * 2 / GB) == 16  # about 16 GB to serve in bf16

# %% [markdown]
# ## 8. Reading an inference engine's printout
#
# Inference engines such as SGLang and vLLM load the same checkpoint into their own modules,
# rearranged for speed and for splitting a model across GPUs. This is how SGLang prints
# Llama-3.1-8B on one GPU (tensor-parallel size 1), as quoted by one of the articles this book
# started from (the original is one line; indentation added):
#
# ```text
# LlamaForCausalLM(
#   (model): LlamaModel(
#     (embed_tokens): VocabParallelEmbedding(num_embeddings=128256, embedding_dim=4096, org_vocab_size=128256, num_embeddings_padded=128256, tp_size=1)
#     (layers): ModuleList(
#       (0-31): 32 x LlamaDecoderLayer(
#         (self_attn): LlamaAttention(
#           (qkv_proj): QKVParallelLinear(in_features=4096, output_features=6144, bias=False, tp_size=1, gather_output=False)
#           (o_proj): RowParallelLinear(input_features=4096, output_features=4096, bias=False, tp_size=1, reduce_results=True)
#           (rotary_emb): Llama3RotaryEmbedding(head_size=128, rotary_dim=128, max_position_embeddings=131072, base=500000.0, is_neox_style=True)
#           (attn): RadixAttention()
#         )
#         (mlp): LlamaMLP(
#           (gate_up_proj): MergedColumnParallelLinear(in_features=4096, output_features=28672, bias=False, tp_size=1, gather_output=False)
#           (down_proj): RowParallelLinear(input_features=14336, output_features=4096, bias=False, tp_size=1, reduce_results=True)
#           (act_fn): SiluAndMul()
#         )
#         (input_layernorm): RMSNorm()
#         (post_attention_layernorm): RMSNorm()
#       )
#     )
#     (norm): RMSNorm()
#   )
#   (lm_head): ParallelLMHead(num_embeddings=128256, embedding_dim=4096, org_vocab_size=128256, num_embeddings_padded=128256, tp_size=1)
#   (logits_processor): LogitsProcessor()
#   (pooler): Pooler()
# )
# ```

# %% [markdown]
# **Tensor parallelism** first, since the engine's names come from it. `tp_size` is the number of
# GPUs one layer is split across. The book writes a linear map as $y = x W$ with $W$ of shape
# $(d_\text{in}, d_\text{out})$, and "row" and "column" refer to that $W$ (`nn.Linear.weight`
# stores its transpose, $(d_\text{out}, d_\text{in})$: a row of $W$ is a column of `.weight`).
# A *column-parallel* layer (`qkv_proj`, `gate_up_proj`) gives each GPU some columns of $W$,
# that is some of the outputs (whole heads, or a slice of the MLP's hidden units), and the next
# layer takes that slice as it is. A *row-parallel* layer (`o_proj`, `down_proj`) gives each GPU
# the matching rows of $W$, the inputs it holds; each computes a full-width partial output, and
# the partial outputs are summed across GPUs (an **all-reduce**). The MLP on 2 GPUs:
#
# ```mermaid
# flowchart TB
#     X["x (1, T, C), on both GPUs"] --> A0
#     X --> A1
#     subgraph G0["GPU 0"]
#         A0["gate_up_proj: hidden units 0 .. d_ff/2<br/>of gate and of up (column parallel)"]
#         A0 --> H0["SiluAndMul: local activations<br/>(1, T, d_ff/2)"]
#         H0 --> D0["down_proj: rows 0 .. d_ff/2 of W<br/>(row parallel): partial output (1, T, C)"]
#     end
#     subgraph G1["GPU 1"]
#         A1["gate_up_proj: hidden units d_ff/2 .. d_ff<br/>of gate and of up (column parallel)"]
#         A1 --> H1["SiluAndMul: local activations<br/>(1, T, d_ff/2)"]
#         H1 --> D1["down_proj: rows d_ff/2 .. d_ff of W<br/>(row parallel): partial output (1, T, C)"]
#     end
#     D0 --> R["all-reduce: the sum of the partial outputs<br/>(1, T, C), on both GPUs"]
#     D1 --> R
#     R --> RES["residual add"]
# ```
#
# Attention is split the same way, by heads: `qkv_proj` column parallel, `o_proj` row parallel.
# Each block then needs two all-reduces, one after attention and one after the MLP; between them
# nothing crosses from one GPU to another. With `tp_size=1`, as printed, nothing is split.
# Exercise 2 checks the arithmetic.

# %% [markdown]
# Line by line, onto the book's names:
#
# | engine's line | the book's module | what it is |
# |---|---|---|
# | `embed_tokens: VocabParallelEmbedding` | `model.embed_tokens` (`TokenEmbedding`) | the token table; "vocab parallel": with `tp_size` GPUs each holds the vectors of a slice of the vocabulary |
# | `qkv_proj: ... 4096 -> 6144` | `q_proj`, `k_proj`, `v_proj` | the three projections fused into one matrix: $(32 + 8 + 8)$ heads $\times$ 128 = 6144 |
# | `o_proj: RowParallelLinear` | `o_proj` | the output projection; row parallel: each GPU holds the rows of $W$ that its heads feed, the partial results are summed |
# | `rotary_emb: Llama3RotaryEmbedding` | `rotary_emb` (`RotaryEmbedding`, `layout='half'`, `scaling='llama3'`) | RoPE with Llama 3.1's frequency scaling; "NeoX style" is the split-half layout (dimension $i$ paired with $i + D/2$) |
# | `attn: RadixAttention` | $\operatorname{softmax}(q k^\top / \sqrt{D})\, v$ over the cache, before `o_proj` (in `MultiHeadAttention.attend`, with `KVCache`) | the new tokens' queries over cached keys and values, read from slots of a KV pool shared between requests (below) |
# | `gate_up_proj: ... 4096 -> 28672` | `gate_proj`, `up_proj` | the two expansions fused: $2 \times 14336$ = 28672 |
# | `act_fn: SiluAndMul` | inside `SwiGLU.forward` | splits the fused output in two halves, returns `silu(first) * second` |
# | `down_proj: RowParallelLinear` | `down_proj` | 14336 -> 4096, row parallel like `o_proj` |
# | `input_layernorm`, `post_attention_layernorm`, `norm: RMSNorm` | the same names (`RMSNorm`) | the two norms of each block and the final norm |
# | `lm_head: ParallelLMHead` | `lm_head` | 4096 -> 128,256, the vocabulary split across GPUs as in `embed_tokens`; it holds the weights, the next line uses them |
# | `logits_processor: LogitsProcessor` | `lm_head(model.norm(x))[:, -1]` | the logits: the final norm's output at the last position (picked before the product, which saves computing logits nobody uses), times the head's weights, gathered from all GPUs; log-probabilities when asked |
# | `pooler: Pooler` | none | hidden states or embeddings for requests that want those instead of text |
#
# Beware the name `LogitsProcessor`. In SGLang and vLLM it is the step that *computes* the logits
# from the hidden states; apart from the logit soft-capping or scaling some models use (Gemma 2
# caps its logits with a tanh, for instance), it does not touch them afterwards. In Hugging Face
# `transformers`, a "logits processor" is one of the filters of chapter 9 (temperature, top-k,
# top-p, ...). SGLang, as printed here, applies those in a `Sampler` that runs after the model
# and is not a module of it, so it is not in the printout; so does vLLM since April 2025 (pull
# request 17084 moved it out), while vLLM's model classes before that printed a
# `(sampler): Sampler()` line of their own.
#
# The fields inside the parentheses are the ones tensor parallelism needs:
#
# - The sizes are one GPU's share. `output_features` of a column-parallel layer is its
#   `output_size_per_partition`, `input_features` of a row-parallel one its
#   `input_size_per_partition`, and `num_embeddings` this GPU's share of the table's rows; at
#   `tp_size=1` each is the whole size (`qkv_proj` 6144, `gate_up_proj` 28672, `down_proj`
#   14336, the table 128,256). With `tp_size=2`, `qkv_proj` would print `output_features=3072`
#   and `down_proj` `input_features=7168`.
# - `gather_output=False` on the column-parallel layers: each GPU keeps its own slice of the
#   output (its heads, its part of the MLP) instead of collecting the whole; the next layer is
#   built to take the slice.
# - `reduce_results=True` on the row-parallel layers: their partial outputs are summed across
#   GPUs (an all-reduce) right away, so every GPU holds the full result before the residual add.
# - `org_vocab_size` and `num_embeddings_padded`: the checkpoint's vocabulary, and the number of
#   rows after padding it up to a multiple of 64, which splits evenly among GPUs and suits the
#   kernels; 128,256 = 64 x 2,004 needs none.
# - `max_position_embeddings=131072`: the context length the RoPE angles are prepared for, 128k
#   tokens (the book's `context_length`).
#
# The fused widths follow from the configuration, and so do one GPU's shares at `tp_size=2`:

# %%
qkv_width = (big.n_heads + 2 * big.n_kv_heads) * big.head_dim
gate_up_width = 2 * big.d_ff
print(f"qkv_proj:     ({big.n_heads} + 2 x {big.n_kv_heads}) heads x {big.head_dim} = {qkv_width}")
print(f"gate_up_proj: 2 x {big.d_ff} = {gate_up_width}")
print(f"vocabulary: {big.vocab_size:,} = 64 x {big.vocab_size // 64:,} (no padding needed)")
print(f"tp_size=2: qkv_proj output_features={qkv_width // 2}, down_proj input_features="
      f"{big.d_ff // 2}")  # fmt: skip
assert (qkv_width, gate_up_width) == (6144, 28672) and big.vocab_size % 64 == 0

# %% [markdown]
# **Why fuse?** One matrix product of width 6144 keeps a GPU busier than three narrow ones, and
# reads the input once. It changes nothing in the arithmetic: stacking the three weight matrices
# (`nn.Linear` stores each as $(d_\text{out}, d_\text{in})$, so they stack along the rows) and
# cutting the output at the same places gives the same q, k and v.
#
# ```mermaid
# flowchart TD
#     x["x (1, T, 4096)"] --> F["qkv_proj<br/>(6144, 4096)"]
#     x --> G["gate_up_proj<br/>(28672, 4096)"]
#     F --> S["split<br/>4096, 1024, 1024"]
#     S --> q["q<br/>32 x 128"]
#     S --> k["k<br/>8 x 128"]
#     S --> v["v<br/>8 x 128"]
#     G --> SM["SiluAndMul<br/>silu(1st half) * 2nd half"]
#     SM --> h["(1, T, 14336)"]
# ```
#
# The boxes of the projections show their weights' shapes, `(out_features, in_features)`; q, k
# and v are `(1, T, heads x head_dim)`.
#
# The check, on block 0 of the book's model, with the hidden vectors of the prompt:

# %%
attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
with torch.no_grad():
    h = model.model.layers[0].input_layernorm(model.model.embed_tokens(ids))  # (1, T, C)
    w_qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
    sizes = [attn.q_proj.out_features, attn.k_proj.out_features, attn.v_proj.out_features]
    q, k, v = (h @ w_qkv.T).split(sizes, dim=-1)
    print("W_qkv", tuple(w_qkv.shape), "-> q, k, v", [tuple(t.shape) for t in (q, k, v)])
    same_qkv = [torch.allclose(a, b(h), atol=1e-6) for a, b in
                [(q, attn.q_proj), (k, attn.k_proj), (v, attn.v_proj)]]  # fmt: skip
    w_gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
    gate, up = (h @ w_gate_up.T).chunk(2, dim=-1)  # SiluAndMul: split in halves
    fused_mlp = mlp.down_proj(F.silu(gate) * up)
print("W_gate_up", tuple(w_gate_up.shape), "-> gate, up", tuple(gate.shape), tuple(up.shape))
print("fused q, k, v equal the separate ones:", same_qkv)
print("fused MLP equals SwiGLU:", torch.allclose(fused_mlp, mlp(h), atol=1e-6))
assert all(same_qkv) and torch.allclose(fused_mlp, mlp(h), atol=1e-6)

# %% [markdown]
# **RadixAttention.** Chapter 9's KV cache keeps the keys and values of the tokens already
# processed, so each new token costs one position, not the whole prefix. An engine serving many
# users keeps the keys and values of all its requests in one pool of slots on the GPU, and a
# radix tree maps token prefixes to slots of that shared pool (SGLang's `RadixCache`, which
# lives in its scheduler, not in the model): two requests that start with the same system
# prompt share its cached keys and values, and only their differing tails are computed.
# `RadixAttention` is the attention that reads them from those slots.
#
# ## 9. Where each part is built
#
# | part | chapter | in `llmbook` |
# |---|---|---|
# | text to ids and back, special tokens | 01 The tokenizer | `BPETokenizer`, `load_tokenizer("stories")` |
# | training examples: windows of ids | 02 Data windowing | `load_corpus`, `SlidingWindowDataset`, `create_dataloader` |
# | embeddings: ids to vectors, positions | 03 Embeddings | `TokenEmbedding`, `LearnedPositionalEmbedding`, `sinusoidal_positions` |
# | causal self-attention | 04 Attention | `scaled_dot_product_attention`, `causal_mask`, `CausalSelfAttention` |
# | heads, GQA, RoPE | 05 Multi-head attention | `MultiHeadAttention`, `RotaryEmbedding`, `apply_rope` |
# | MLP, SwiGLU, norms, residuals | 06 Feed-forward network | `FeedForward`, `SwiGLU`, `LayerNorm`, `RMSNorm` |
# | block, stack, final norm, LM head, counts | 07 The full decoder | `ModelConfig`, `TransformerBlock`, `DecoderLM`, `parameter_counts` |
# | loss, optimiser, training loop, checkpoints | 08 Training | `train`, `TrainConfig`, `evaluate`, `load_model("stories-corpus")` |
# | filters, sampling, KV cache, chat template | 09 Sampling and generation | `generate`, `top_k_filter`, `KVCache`, `llama3_chat_prompt` |
# | loss against the floor, story checker, scaling, the shipped model | 10 Evaluation | `evaluation.evaluate_model`, `stories.check_story`, `load_model("stories")` |
#
# The loop of section 1 again, each box labelled with the chapter that builds it:
#
# ```mermaid
# flowchart TB
#     P["prompt, chat template<br/>09"] --> TK["tokenizer.encode<br/>01"]
#     subgraph M["DecoderLM: the stack of blocks, 07"]
#         E["embed_tokens<br/>03"] --> AT["attention: 04<br/>heads, GQA, RoPE: 05"]
#         AT --> MLP["MLP, norms, residuals<br/>06"]
#         MLP -- "N blocks" --> NO["final norm 06, lm_head 07"]
#     end
#     TK --> E
#     NO --> F["filters, sampling, KV cache<br/>09"]
#     F -- "append, repeat" --> E
#     F --> D["tokenizer.decode<br/>01"]
#     DATA["corpus, windows of ids<br/>02"] --> TR["training: loss, AdamW<br/>08"]
#     TR -.->|"sets the weights"| M
# ```

# %% [markdown]
# ## Summary
#
# - Generation is one step in a loop: ids $(1, T)$ -> embeddings $(1, T, C)$ -> $N$ blocks, each
#   $(1, T, C)$ -> final norm -> LM head, logits $(1, T, V)$ -> last position $(1, V)$ ->
#   filters (temperature, top-k) -> softmax -> one sampled id -> append -> repeat -> decode.
# - A chat template turns a conversation into one string; its markers are special tokens, one id
#   each (6 of them in a one-question Llama 3 prompt).
# - A Llama-style model prints as `embed_tokens`, $N$ blocks of (`input_layernorm`, `self_attn`
#   with `q/k/v/o_proj` and RoPE, `post_attention_layernorm`, `mlp` with `gate/up/down_proj`),
#   a final `norm` and an `lm_head`; the book's model has exactly these parts, smaller.
# - On the `meta` device real models are counted exactly without any memory: GPT-2 124,439,808,
#   Llama-2-7B 6,738,415,616, Llama-3.1-8B 8,030,261,248, Llama-3.2-1B 1,235,814,400. The
#   Llama-3.1-8B LM head is 525,336,576 parameters (6.5%); its vocabulary is 128,256 =
#   128,000 + 256 special ids. Weights take 4 bytes a parameter in float32 and 2 in bfloat16.
# - An inference engine fuses q/k/v (4096 -> 6144) and gate/up (4096 -> 28672), which gives the
#   same numbers, and splits layers across GPUs (column- and row-parallel); its names map onto
#   the book's (a fused one onto two or three; its `pooler` onto none). Its `LogitsProcessor`
#   computes the logits of the last position (`lm_head(norm(x))[:, -1]`); the filters of
#   chapter 9 live in its `Sampler`.
#
# ## Exercises
#
# 1. **Count Llama-3.1-8B by hand.** From its configuration only, write the parameters of the
#    token table, of one block (four attention projections, three MLP projections, two norm
#    gains), of the final norm and of the head, and check the total against 8,030,261,248.
# 2. **Tensor parallelism on paper.** Split block 0's MLP of the book's model over
#    `tp_size=2` "GPUs": each gets half of the columns of `gate_proj` and `up_proj` and the
#    matching half of the rows of `down_proj`'s input. Show that the sum of the two partial
#    outputs equals `mlp(x)`. Why must the gate and the up projection be split the same way?
# 3. **The KV cache's budget.** How many bytes does Llama-3.1-8B's KV cache take per token in
#    bfloat16, and for one 8,192-token conversation? How much would it take if every query head
#    had its own K/V head (no GQA)? (Chapter 9's `kv_cache_bytes` does the sum; do it by hand.)
# 4. **Greedy is temperature zero.** Run the loop of section 5 with the argmax in place of the
#    draw, and check that it gives the same tokens as `generate(..., temperature=0)` and as
#    chapter 7's `greedy_generate`. Then draw with three different seeds: which is more varied?
#
# Worked solutions: `chapters/solutions/00_big_picture.ipynb`.
