"""Argument checks of ``llmbook.generation`` (hand-written: chapter 09, section 9, explains them).

``generate`` and ``stream_generate`` call :func:`check_generation_args` once, before the first
step; nothing is checked inside the generation loop. Each check raises a ``TypeError`` (wrong
type) or a ``ValueError`` (wrong value) naming the argument, what was given and what is allowed.
"""

from __future__ import annotations

import torch

from llmbook.checks import check_bool, check_int, check_optional_int, check_positive_float

__all__ = ["as_prompts", "check_generation_args", "check_messages", "check_range", "check_stop"]


def as_prompts(prompt_ids) -> tuple[list[list[int]], bool]:
    """``(prompts as lists of ints, True if one prompt was given)``; raises on anything else."""
    if isinstance(prompt_ids, torch.Tensor):
        if prompt_ids.dim() not in (1, 2) or prompt_ids.is_floating_point():
            raise TypeError(
                "prompt_ids must be a 1-D or 2-D integer tensor, got dtype "
                f"{prompt_ids.dtype} and shape {tuple(prompt_ids.shape)}"
            )
        prompt_ids = prompt_ids.tolist()
    if not isinstance(prompt_ids, list | tuple) or len(prompt_ids) == 0:
        raise ValueError(
            f"prompt_ids must be a non-empty list of ids (or of lists of ids), got {prompt_ids!r:.60}"
        )
    single = not isinstance(prompt_ids[0], list | tuple)
    prompts = [list(prompt_ids)] if single else [list(p) for p in prompt_ids]
    for p in prompts:
        if any(isinstance(i, bool) or not isinstance(i, int) for i in p):
            raise TypeError(f"prompt ids must be ints, got {p!r:.60}")
        if not p:
            raise ValueError("every prompt needs at least one token, got an empty prompt")
    return prompts, single


def check_range(value, name: str, low: float, high: float, low_open: bool = True) -> None:
    """Raise unless ``value`` is a number in ``(low, high]`` (``low_open``) or ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    finite = value == value and value not in (float("inf"), float("-inf"))
    if not finite or not (low < value <= high if low_open else low <= value <= high):
        if high == float("inf"):
            allowed = f"{'>' if low_open else '>='} {low} and finite"
        else:
            allowed = f"in {'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def check_messages(messages) -> None:
    """Raise unless ``messages`` is a list of ``{"role": str, "content": str}`` dicts."""
    fields = ("role", "content")
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and all(isinstance(m.get(f), str) for f in fields) for m in messages
    ):
        raise TypeError(
            f'messages must be a list of {{"role": str, "content": str}}, got {messages!r:.60}'
        )


def check_stop(stop, tokenizer) -> None:
    """Raise unless ``stop`` is None, an id, a string, or a list of ids, strings, id lists."""
    items = [] if stop is None else [stop] if isinstance(stop, int | str) else stop
    if not isinstance(items, list | tuple):
        raise TypeError(
            f"stop must be an id, a string or a list of them, got {type(stop).__name__}"
        )
    for s in items:
        seq = [s] if isinstance(s, int) else s
        if isinstance(s, str):
            if not s or tokenizer is None:
                raise ValueError(f"stop string {s!r} needs a tokenizer= (and must not be empty)")
        elif (
            not isinstance(seq, list | tuple)
            or not seq
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in seq)
        ):
            raise TypeError(f"stop items must be ids, strings or non-empty lists of ids, got {s!r}")


def check_generation_args(
    model,
    prompt_ids,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    top_p=None,
    min_p=None,
    repetition_penalty=None,
    stop=None,
    tokenizer=None,
    use_cache=True,
    crop=True,
    generator=None,
    pad_id=0,
):
    """Check what :func:`generate` was given; return ``as_prompts(prompt_ids)``."""
    if not all(hasattr(model, a) for a in ("config", "lm_head")):
        raise TypeError(f"model must be a DecoderLM, got {type(model).__name__}")
    prompts, single = as_prompts(prompt_ids)
    check_int(max_new_tokens, "max_new_tokens", minimum=0)
    check_range(temperature, "temperature", 0, float("inf"), low_open=False)
    check_optional_int(top_k, "top_k")
    if top_p is not None:
        check_range(top_p, "top_p", 0.0, 1.0)
    if min_p is not None:
        check_range(min_p, "min_p", 0.0, 1.0, low_open=False)
    if repetition_penalty is not None:
        check_positive_float(repetition_penalty, "repetition_penalty")
    check_stop(stop, tokenizer)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    check_bool(use_cache, "use_cache")
    check_bool(crop, "crop")
    check_int(pad_id, "pad_id", minimum=0)
    V, window = model.config.vocab_size, model.config.context_length
    if max(max(p) for p in prompts) >= V or min(min(p) for p in prompts) < 0:
        raise ValueError(f"prompt ids must lie in [0, {V - 1}] (the model's vocab_size is {V})")
    longest = max(len(p) for p in prompts)
    if not crop and longest + max_new_tokens > window:
        raise ValueError(
            f"a prompt of {longest} tokens + max_new_tokens={max_new_tokens} does not fit the "
            f"context of {window} tokens; shorten it, or pass crop=True to keep the last {window}"
        )
    return prompts, single
