# Generated from chapters/09_sampling.ipynb by tools/export.py; do not edit, edit the chapter.

import codecs
from collections.abc import Callable, Iterable, Iterator
from functools import partial

import torch
import torch.nn.functional as F

from llmbook.checks import check_bool
from llmbook.checks.generation import (
    as_prompts,
    check_cache_sizes,
    check_cache_update,
    check_cached_forward,
    check_messages,
    check_next_token_args,
    check_prompts,
    check_sampling,
    check_stop,
)
from llmbook.multihead import apply_rope


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``(logits - row max) / temperature`` of ``logits (..., V)``: the softmax of ``logits /
    temperature`` (below 1 sharper, above 1 flatter; ``temperature > 0``), with the top logit at
    0, so that no temperature, however small, makes +inf or NaN (done in float32 at least)."""
    z = logits.to(torch.promote_types(logits.dtype, torch.float32))  # float16 has no 1e-45
    z = (z - z.amax(-1, keepdim=True)) / max(temperature, torch.finfo(z.dtype).tiny)
    return z.to(logits.dtype)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` highest logits of each row of ``(..., V)``; the others become -inf."""
    k = min(k, logits.shape[-1])
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.topk(k).indices, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities sum to >= ``p`` (in (0, 1])."""
    if p >= 1.0:  # everything (a float sum of all probabilities may fall short of 1)
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    sorted_probs = sorted_logits.softmax(-1)
    mass_above = sorted_probs.cumsum(-1) - sorted_probs  # the mass ranked above each token
    drop = (mass_above >= p).scatter(-1, order, mass_above >= p)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep tokens with probability >= ``min_p`` x the highest probability of their row."""
    probs = logits.softmax(-1)
    keep = probs >= min_p * probs.amax(-1, keepdim=True)
    return logits.masked_fill(~keep, float("-inf"))


def apply_repetition_penalty(logits, ids, penalty: float, mask=None) -> torch.Tensor:
    """Lower the logits ``(B, V)`` of tokens in ``ids (B, T)`` (where ``mask (B, T)`` is True):
    divided by ``penalty`` if positive, multiplied if negative. ``penalty`` 1 changes nothing."""
    weight = torch.ones_like(ids, dtype=logits.dtype) if mask is None else mask.to(logits.dtype)
    seen = torch.zeros_like(logits).scatter_add_(-1, ids, weight) > 0  # (B, V)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


Processor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def logits_processors(
    temperature=1.0, top_k=None, top_p=None, min_p=None, repetition_penalty=None
) -> list[Processor]:
    """The filters that are switched on, in order; each maps ``(logits (B, V), ids (B, T),
    mask)`` to logits (``mask (B, T)``: True at real tokens, or None: no padding)."""
    chain: list[Processor] = []
    if repetition_penalty is not None and repetition_penalty != 1.0:
        chain.append(
            lambda z, ids, mask: apply_repetition_penalty(z, ids, repetition_penalty, mask)
        )
    if temperature not in (0, 1):
        chain.append(lambda z, ids, mask: apply_temperature(z, temperature))
    if top_k is not None:
        chain.append(lambda z, ids, mask: top_k_filter(z, top_k))
    if top_p is not None and top_p < 1.0:
        chain.append(lambda z, ids, mask: top_p_filter(z, top_p))
    if min_p is not None and min_p > 0.0:
        chain.append(lambda z, ids, mask: min_p_filter(z, min_p))
    return chain


def sample_next(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """Draw one token per row of ``logits (B, V)`` from its softmax (the filters, temperature
    included, have been applied), with ``generator`` (a ``torch.Generator``) if given. ``(B,)``."""
    cdf = logits.float().softmax(-1).cumsum(-1)  # (B, V), rising to about 1
    cdf = cdf / cdf[:, -1:]  # ends at exactly 1, so every u in [0, 1) finds a token
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device)  # (B, 1)
    return torch.searchsorted(cdf, u, right=True).squeeze(-1)  # first id with cdf > u


class Stopper:
    """Says when one row's generation is over. ``stop``: a token id, a string (needs
    ``tokenizer``), or a list of those and of token-id sequences (lists of ints)."""

    def __init__(self, stop=None, tokenizer=None) -> None:
        items = [] if stop is None else [stop] if isinstance(stop, int | str) else list(stop)
        self.strings = [s for s in items if isinstance(s, str)]
        self.sequences = [
            [s] if isinstance(s, int) else list(s) for s in items if not isinstance(s, str)
        ]
        self.tokenizer, self.new = tokenizer, []

    def __call__(self, token: int) -> bool:
        """Record the next token; True once a stop token, sequence or string has appeared."""
        self.new.append(token)
        if any(self.new[-len(s) :] == s for s in self.sequences):
            return True
        tail = lambda s: self.tokenizer.decode(self.new[-len(s.encode()) :])  # noqa: E731
        return any(s in tail(s) for s in self.strings)


class KVStorage:
    """Keys and values of every layer, preallocated: ``k[i]``, ``v[i]`` of shape
    ``(B, H_kv, max_len, D)``, of which positions ``0 .. length - 1`` are filled."""

    def __init__(
        self, n_layers, batch_size, n_kv_heads, max_len, head_dim, dtype=None, device=None
    ):
        check_cache_sizes(n_layers, batch_size, n_kv_heads, max_len, head_dim)
        shape = (batch_size, n_kv_heads, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.max_len, self.length = max_len, 0

    @property
    def nbytes(self) -> int:
        """Bytes held by all the tensors (allocated, filled or not)."""
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


class KVCache(KVStorage):
    """A :class:`KVStorage` that the model writes into, layer by layer, at each step."""

    @classmethod
    def for_model(cls, model, batch_size: int, max_len: int | None = None) -> "KVCache":
        """An empty cache for ``model`` (a DecoderLM), on its device and in its dtype."""
        c, weight = model.config, model.lm_head.weight
        max_len = c.context_length if max_len is None else max_len
        return cls(
            c.n_layers, batch_size, c.n_kv_heads, max_len, c.head_dim, weight.dtype, weight.device
        )

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor, check: bool = True):
        """Write ``k, v (B, H_kv, T, D)`` at positions ``length .. length + T - 1`` of ``layer``;
        return that layer's keys and values so far, ``(B, H_kv, length + T, D)``. The last
        layer's update moves ``length`` on. ``check=False``: for a caller that has checked
        the cache against the model and the batch already (``forward_with_cache``)."""
        if check:  # this cache's layers, shapes, dtype, device and free room
            check_cache_update(self, layer, k, v)
        start, end = self.length, self.length + k.shape[2]
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        if layer == len(self.k) - 1:
            self.length = end
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def _project(attn, x, rotation=None):
    """Chapter 5's ``attn.project(x, positions)`` with the rotation ``(cos, sin)`` of the
    positions given (None: no RoPE): ``q (B, H, T, D)``, ``k, v (B, H_kv, T, D)``."""
    (B, T, _), D = x.shape, attn.head_dim
    q = attn.q_proj(x).view(B, T, -1, D).transpose(1, 2)  # (B, H, T, D)
    k = attn.k_proj(x).view(B, T, -1, D).transpose(1, 2)  # (B, H_kv, T, D)
    v = attn.v_proj(x).view(B, T, -1, D).transpose(1, 2)
    if rotation is not None:
        cos, sin = rotation
        q, k = apply_rope(q, cos, sin, attn.rope.layout), apply_rope(k, cos, sin, attn.rope.layout)
    return q, k, v


def _forward_with_cache(model, ids, kv_cache, positions=None, attn_mask=None):
    """:func:`forward_with_cache`, unchecked and without the LM head: ``(B, T, C)``."""
    decoder, start, T = model.model, kv_cache.length, ids.shape[1]
    rope, x = decoder.rotary_emb, decoder.embed_tokens(ids)  # x: (B, T, C)
    if decoder.embed_positions is not None:  # GPT-2: a learned vector per position, added
        if positions is None:  # the new tokens come after the cached ones
            positions = torch.arange(start, start + T, device=ids.device)
        x = x + decoder.embed_positions(positions)
    rotation = None  # RoPE: (cos, sin) of the positions, found once for all the layers
    if rope is not None and positions is None:  # start .. start + T - 1: rows of the table
        rotation = [t[start:] for t in rope.table(start + T, ids.device)]  # (T, D) each
    elif rope is not None:  # (T,) or (B, T) positions given (left padding): their angles
        rotation = rope.cos_sin(positions)
    for i, block in enumerate(decoder.layers):
        q, k, v = _project(block.self_attn, block.input_layernorm(x), rotation)
        k, v = kv_cache.update(i, k, v, check=False)  # (B, H_kv, start + T, D), checked once
        x = x + block.self_attn.attend(q, k, v, attn_mask)  # T queries over start + T keys
        x = x + block.mlp(block.post_attention_layernorm(x))
    return decoder.norm(x)


def forward_with_cache(model, ids, kv_cache, positions=None, attn_mask=None) -> torch.Tensor:
    """``model(ids)`` for ``ids (B, T)`` that follow the ``kv_cache.length`` tokens whose keys
    and values ``kv_cache`` holds; theirs are appended. Logits ``(B, T, V)``. ``positions``:
    default ``length .. length + T - 1``; ``attn_mask``: ``(B, 1, T, length + T)``, True = may
    attend. Checked (``check_cached_forward``); the model must be in evaluation mode."""
    check_cached_forward(model, ids, kv_cache, positions, attn_mask)
    return model.lm_head(_forward_with_cache(model, ids, kv_cache, positions, attn_mask))


def kv_cache_bytes(config, n_tokens: int = 1, batch_size: int = 1, bytes_per_value: int = 2) -> int:
    """Bytes of a KV cache for ``config`` (a ModelConfig): ``2 (k and v) x n_layers x n_kv_heads
    x head_dim x bytes_per_value`` per token, for ``n_tokens`` tokens of ``batch_size`` sequences."""
    per_token = 2 * config.n_layers * config.n_kv_heads * config.head_dim * bytes_per_value
    return per_token * n_tokens * batch_size


def left_pad(prompts: list[list[int]], pad_id: int = 0, device=None):
    """Prompts of different lengths as one batch: ``ids (B, T)`` padded on the left with
    ``pad_id``, and ``mask (B, T)``, True at real tokens."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    for row, p in enumerate(prompts):
        ids[row, T - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[row, T - len(p) :] = True
    return ids.to(device), mask.to(device)


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position of each token ``(B, T)``: 0 at a row's first real token; 0 on the padding."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def next_token_logits(model, ids, mask, cache: KVCache | None = None) -> torch.Tensor:
    """The logits ``(B, V)`` of the token after ``ids (B, T)``; ``mask (B, T)`` marks real
    tokens (False: left padding). With ``cache``, only the tokens it lacks are run. Checked."""
    check_next_token_args(model, ids, mask, cache)
    return _next_token_logits(model, ids, None if bool(mask.all()) else mask, cache)


def _next_token_logits(model, ids, mask, cache=None) -> torch.Tensor:
    """:func:`next_token_logits`, unchecked; ``mask`` None: no padding."""
    if cache is None or ids.shape[1] > cache.max_len:  # crop: the last window tokens, no cache
        ids = ids[:, -model.config.context_length :]
        mask = None if mask is None else mask[:, -ids.shape[1] :]
        start, run = 0, model.model  # chapter 7's Decoder: ids -> final hidden vectors
    else:  # the tokens the cache lacks
        start, run = cache.length, partial(_forward_with_cache, model, kv_cache=cache)
    positions = None if mask is None else mask_positions(mask)[:, start:]
    attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, Tk)
    hidden = run(ids[:, start:], positions=positions, attn_mask=attn_mask)  # (B, T, C)
    return model.lm_head(hidden[:, -1])  # (B, V)


def stream_generate(
    model,
    prompt_ids,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k=None,
    top_p=None,
    min_p=None,
    repetition_penalty=None,
    stop=None,
    tokenizer=None,
    use_cache: bool = True,
    crop: bool = True,
    generator=None,
    pad_id: int = 0,
) -> Iterator:
    """Yield the new tokens as they are drawn (arguments as for :func:`generate`): an int per
    step for one prompt; for a batch, a list of B ints (None for a row that has stopped)."""
    prompts, single = check_prompts(model, prompt_ids, max_new_tokens, pad_id, crop)
    check_sampling(temperature, top_k, top_p, min_p, repetition_penalty, generator)
    check_stop(stop, tokenizer, model.config.vocab_size)
    check_bool(use_cache, "use_cache")
    chain = logits_processors(temperature, top_k, top_p, min_p, repetition_penalty)
    if temperature == 0:  # greedy: the most likely token after the filters
        pick = partial(torch.argmax, dim=-1)
    else:  # a draw: logits (B, V) -> ids (B,)
        pick = partial(sample_next, generator=generator)
    stoppers = [Stopper(stop, tokenizer) for _ in prompts]
    steps = _stream(model, prompts, max_new_tokens, chain, pick, stoppers, use_cache, pad_id)
    return (step[0] for step in steps) if single else steps


@torch.no_grad()
def _stream(model, prompts, max_new_tokens, chain, pick, stoppers, use_cache, pad_id):
    ids, mask = left_pad(prompts, pad_id, model.lm_head.weight.device)  # (B, T)
    mask = mask if len({len(p) for p in prompts}) > 1 else None  # None: no padding
    length = min(ids.shape[1] + max_new_tokens, model.config.context_length)
    cache = KVCache.for_model(model, len(prompts), length) if use_cache else None
    done, was_training = [False] * len(prompts), model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            logits = _next_token_logits(model, ids, mask, cache)  # (B, V)
            for process in chain:
                logits = process(logits, ids, mask)
            new = pick(logits)  # (B,)
            ids = torch.cat([ids, new[:, None]], 1)  # (B, T + 1)
            mask = None if mask is None else F.pad(mask, (0, 1), value=True)
            step = [None if d else t for d, t in zip(done, new.tolist())]
            yield step
            done = [d or stopper(t) for d, stopper, t in zip(done, stoppers, step)]
            if all(done):
                return
    finally:
        model.train(was_training)


def generate(
    model,
    prompt_ids,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k=None,
    top_p=None,
    min_p=None,
    repetition_penalty=None,
    stop=None,
    tokenizer=None,
    use_cache: bool = True,
    crop: bool = True,
    generator=None,
    pad_id: int = 0,
):
    """Continue a prompt (a list of ids or a 1-D tensor), or a batch of them (a list of lists
    of any lengths, or a 2-D tensor); return prompt + new ids, a list (a list per prompt).

    temperature: 0 is greedy, else the softmax is taken of logits / temperature. top_k (>= 1),
    top_p (in (0, 1]), min_p (in [0, 1]), repetition_penalty (> 0; 1 is off): the filters of
    chapter 9, in that order after the penalty. stop: token id(s), id sequences or strings
    (strings need ``tokenizer``); a row stops after one. use_cache: a KVCache (same tokens,
    faster). crop: past ``context_length``, the model sees the last ``context_length`` tokens;
    False makes a prompt that cannot fit an error. generator: a ``torch.Generator`` (a seed,
    reproducible draws). pad_id: the id written into the padding (never seen by the model).
    """
    steps = stream_generate(
        model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
        min_p=min_p, repetition_penalty=repetition_penalty, stop=stop, tokenizer=tokenizer,
        use_cache=use_cache, crop=crop, generator=generator, pad_id=pad_id,
    )  # fmt: skip
    prompts, single = as_prompts(prompt_ids)
    rows = [list(p) for p in prompts]
    for step in steps:
        for row, token in zip(rows, [step] if single else step):
            if token is not None:
                row.append(token)
    return rows[0] if single else rows


def stream_text(tokenizer, tokens: Iterable[int]) -> Iterator[str]:
    """Yield the text of ``tokens`` as they come, holding back an unfinished UTF-8 character."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token in tokens:
        piece = decoder.decode(tokenizer.decode_bytes([token]))
        if piece:
            yield piece
    if tail := decoder.decode(b"", final=True):
        yield tail


LLAMA3_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)


def llama3_chat_prompt(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """Llama 3's chat format of ``messages`` (``{"role": "system" | "user" | "assistant",
    "content": str}`` each), ending with the assistant's header when ``add_generation_prompt``."""
    check_messages(messages)
    text = "<|begin_of_text|>"
    for m in messages:
        text += (
            f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
        )
    if add_generation_prompt:
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return text


__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "apply_repetition_penalty",
    "logits_processors",
    "sample_next",
    "Stopper",
    "KVStorage",
    "KVCache",
    "forward_with_cache",
    "kv_cache_bytes",
    "left_pad",
    "mask_positions",
    "next_token_logits",
    "stream_generate",
    "generate",
    "stream_text",
    "LLAMA3_SPECIAL_TOKENS",
    "llama3_chat_prompt",
]
