"""Tests of llmbook.generation (chapter 09): the filters against Hugging Face's logits
processors, the KV cache against recomputation (GPT-2 and Llama layouts, GQA, RoPE offsets,
left-padded batches, past the context window), greedy tokens against `transformers`'
`generate` after a Hugging Face import, stopping, streaming, chat templates and bad input."""

import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbook.generation import (
    LLAMA3_SPECIAL_TOKENS,
    KVCache,
    Stopper,
    apply_repetition_penalty,
    apply_temperature,
    forward_with_cache,
    generate,
    kv_cache_bytes,
    left_pad,
    llama3_chat_prompt,
    min_p_filter,
    next_token_logits,
    sample_next,
    stream_generate,
    stream_text,
    top_k_filter,
    top_p_filter,
)
from llmbook.model import DecoderLM, ModelConfig, greedy_generate
from llmbook.pretrained import load_tokenizer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import transformers
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

STYLES = {
    "llama": dict(norm="rmsnorm", mlp="swiglu", position="rope", n_kv_heads=2),
    "gpt2": dict(
        norm="layernorm", mlp="gelu_tanh", position="learned", bias=True, tie_embeddings=True
    ),
}


def tiny(style: str, seed: int = 0, **changes) -> DecoderLM:
    """A small random model whose logits are far from flat (init_std 0.1), so argmax ties and
    rounding do not decide the tokens."""
    torch.manual_seed(seed)
    sizes = dict(vocab_size=97, context_length=48, d_model=32, n_layers=2, n_heads=4)
    config = ModelConfig(**{**sizes, "init_std": 0.1, **STYLES[style], **changes})
    return DecoderLM(config).eval()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Many small steps: one thread is faster than two fighting over a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=sorted(STYLES), scope="module")
def model(request):
    return tiny(request.param)


PROMPTS = [[5, 17, 3], [42], [8, 9, 10, 11, 12, 13, 14], [60, 2]]


# ---------------------------------------------------------------------------- the KV cache


def test_cached_logits_equal_recomputed(model):
    ids = torch.tensor([[4, 8, 15, 16, 23, 42, 7, 1]])
    cache = KVCache.for_model(model, 1, 20)
    with torch.no_grad():
        full = model(ids)  # (1, T, V)
        parts = [forward_with_cache(model, ids[:, :3], cache)]  # prefill of 3, then 1, then 4
        parts.append(forward_with_cache(model, ids[:, 3:4], cache))
        parts.append(forward_with_cache(model, ids[:, 4:], cache))
    assert cache.length == 8
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_rope_offsets_are_the_cache_length():
    model = tiny("llama")
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        cache = KVCache.for_model(model, 1)
        forward_with_cache(model, ids[:, :4], cache)
        implicit = forward_with_cache(model, ids[:, 4:], cache)
        cache = KVCache.for_model(model, 1)
        forward_with_cache(model, ids[:, :4], cache)
        explicit = forward_with_cache(model, ids[:, 4:], cache, positions=torch.tensor([4]))
        cache = KVCache.for_model(model, 1)
        forward_with_cache(model, ids[:, :4], cache)
        wrong = forward_with_cache(model, ids[:, 4:], cache, positions=torch.tensor([0]))
    torch.testing.assert_close(implicit, explicit)
    assert not torch.allclose(implicit, wrong, atol=1e-3)  # the offset matters


@pytest.mark.parametrize("sampled", [False, True], ids=["greedy", "sampled"])
def test_generate_cached_equals_uncached(model, sampled):
    options = dict(temperature=0.9, top_k=20) if sampled else dict(temperature=0)
    runs = [
        generate(
            model,
            PROMPTS[0],
            30,
            use_cache=use_cache,
            generator=torch.Generator().manual_seed(3),
            **options,
        )
        for use_cache in (True, False)
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 33


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_left_padded_batch_equals_each_prompt_alone(model, use_cache):
    batch = generate(model, PROMPTS, 12, temperature=0, use_cache=use_cache, pad_id=7)
    assert batch == [generate(model, p, 12, temperature=0) for p in PROMPTS]


def test_left_padded_logits_equal_alone(model):
    from llmbook.generation import mask_positions

    ids, mask = left_pad(PROMPTS, pad_id=0)
    with torch.no_grad():
        batch = model(ids, positions=mask_positions(mask), attn_mask=mask[:, None, None, :])
        for row, p in enumerate(PROMPTS):
            alone = model(torch.tensor([p]))[0]
            torch.testing.assert_close(batch[row, -len(p) :], alone, atol=1e-5, rtol=1e-5)


def test_greedy_is_argmax_and_crops_past_the_context(model):
    """Chapter 7's greedy_generate (argmax, last context_length tokens) is the reference; 60
    new tokens run 16 past the 48-token window, where the cache gives way to recomputation."""
    prompt = list(range(1, 5))
    expected = greedy_generate(model, torch.tensor([prompt]), 60)[0].tolist()
    assert generate(model, prompt, 60, temperature=0) == expected
    assert generate(model, prompt, 60, temperature=0, use_cache=False) == expected
    long_prompt = [i % 90 for i in range(70)]  # longer than the context: cropped
    expected = greedy_generate(model, torch.tensor([long_prompt]), 5)[0].tolist()
    assert generate(model, long_prompt, 5, temperature=0) == expected


def test_temperature_to_zero_approaches_greedy(model):
    greedy = generate(model, PROMPTS[2], 20, temperature=0)
    cold = generate(
        model, PROMPTS[2], 20, temperature=1e-4, generator=torch.Generator().manual_seed(0)
    )
    hot = generate(
        model, PROMPTS[2], 20, temperature=5.0, generator=torch.Generator().manual_seed(0)
    )
    assert cold == greedy and hot != greedy


def test_same_seed_same_output(model):
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return generate(model, PROMPTS, 15, temperature=1.0, top_p=0.95, generator=g)

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_step_finds_the_rope_angles_once_for_all_layers(monkeypatch):
    """Issue 23: RoPE's cosines and sines are computed once per forward pass, not per layer;
    positions that continue the cache are rows of the table, which is built once."""
    from llmbook.generation import mask_positions

    model = tiny("llama", n_layers=4)
    rope, calls = model.model.rotary_emb, []
    angles = rope.angles
    monkeypatch.setattr(rope, "angles", lambda p: calls.append(tuple(p.shape)) or angles(p))
    ids, mask = left_pad([[5, 17, 3], [42, 7]])
    cache = KVCache.for_model(model, 2)
    with torch.no_grad():
        positions, attn_mask = mask_positions(mask), mask[:, None, None, :]
        forward_with_cache(model, ids, cache, positions=positions, attn_mask=attn_mask)
        assert calls == [(2, 3)]  # the given (B, T) positions, once for the 4 layers
        calls.clear()
        for token in ([[1], [2]], [[3], [4]], [[5], [6]]):
            forward_with_cache(model, torch.tensor(token), cache)
        assert len(calls) == 1  # the table, built at the first step, serves the later ones
        calls.clear()
        generate(model, [1, 2, 3], 20, temperature=0)
    assert calls == []  # generate, unpadded: rows of the table only


def test_generate_checks_before_the_loop_not_in_it(monkeypatch):
    """The checks of ids, positions and the cache run once per generate call, not per step."""
    import llmbook.checks.generation as checks_generation
    import llmbook.checks.model as checks_model
    import llmbook.generation as generation

    counts = {}
    for module, name in [
        (checks_model, "check_ids"),
        (checks_generation, "check_kv_cache"),
        (generation, "check_cache_update"),
    ]:
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] = counts.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    for model in (tiny("llama"), tiny("gpt2")):
        for prompts in ([1, 2, 3], [[1, 2, 3], [4]]):
            seen = []
            for n in (2, 12):
                counts.clear()
                generate(model, prompts, n, temperature=0)
                seen.append(dict(counts))
            assert seen[0] == seen[1], seen  # the same checks for 2 steps as for 12


def test_next_token_logits_with_and_without_a_cache(model):
    """The public step equals the last row of model(...), cached or not, padded or not."""
    from llmbook.generation import mask_positions

    ids, mask = left_pad(PROMPTS, pad_id=3)
    with torch.no_grad():
        full = model(ids, positions=mask_positions(mask), attn_mask=mask[:, None, None, :])
        cache = KVCache.for_model(model, len(PROMPTS))
        cached = next_token_logits(model, ids[:, :-1], mask[:, :-1], cache)  # prefill
        cached = next_token_logits(model, ids, mask, cache)  # one step
        torch.testing.assert_close(cached, full[:, -1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(next_token_logits(model, ids, mask), full[:, -1])
        alone = next_token_logits(model, torch.tensor([PROMPTS[0]]), torch.ones(1, 3) > 0)
        torch.testing.assert_close(alone, model(torch.tensor([PROMPTS[0]]))[:, -1])


def test_kv_cache_memory_and_overflow():
    model = tiny("llama")
    cache = KVCache.for_model(model, batch_size=3, max_len=10)
    assert cache.k[0].shape == (3, 2, 10, 8)  # (B, H_kv, max_len, D)
    assert cache.nbytes == kv_cache_bytes(model.config, 10, 3, bytes_per_value=4)
    llama = ModelConfig.from_preset("llama-3.1-8b")
    assert kv_cache_bytes(llama) == 2 * 32 * 8 * 128 * 2 == 128 * 1024
    with torch.no_grad(), pytest.raises(ValueError, match="holds 10 positions"):
        forward_with_cache(model, torch.ones(3, 11, dtype=torch.long), cache)


# ---------------------------------------------------------------------------- the filters

LOGITS = torch.randn(4, 97, generator=torch.Generator().manual_seed(0)) * 3


@pytest.mark.parametrize("k", [1, 5, 96, 97, 500])
def test_top_k_keeps_exactly_k_as_hf(k):
    out = top_k_filter(LOGITS, k)
    assert (out.isfinite().sum(-1) == min(k, 97)).all()
    hf = TopKLogitsWarper(k)(None, LOGITS.clone())
    assert torch.equal(out.isfinite(), hf.isfinite())
    ties = torch.zeros(1, 10)  # ten equal logits: still exactly k
    assert int(top_k_filter(ties, 3).isfinite().sum()) == 3


def test_top_k_on_ties_differs_from_hf_as_the_chapter_says():
    ties = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0]])  # the 2nd, 3rd and 4th tie at k = 2
    assert int(top_k_filter(ties, 2).isfinite().sum()) == 2  # exactly k
    assert int(TopKLogitsWarper(2)(None, ties.clone()).isfinite().sum()) == 4  # every tie


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_top_p_keeps_the_smallest_set_reaching_p(p):
    out = top_p_filter(LOGITS, p)
    probs = LOGITS.softmax(-1)
    for row in range(len(LOGITS)):
        ranked = probs[row].sort(descending=True).values
        n = int((ranked.cumsum(0) < p).sum()) + 1  # the smallest prefix whose sum reaches p
        n = 97 if p == 1.0 else n  # p = 1 keeps all (the float sum may reach 1 a token early)
        assert int(out[row].isfinite().sum()) == min(n, 97)
        kept = probs[row][out[row].isfinite()]
        assert kept.min() >= ranked[min(n, 97) - 1]  # and those are the most likely
    hf = TopPLogitsWarper(p)(None, LOGITS.clone())
    assert torch.equal(out.isfinite(), hf.isfinite())


@pytest.mark.parametrize("min_p", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_min_p_as_hf(min_p):
    out = min_p_filter(LOGITS, min_p)
    probs = LOGITS.softmax(-1)
    assert torch.equal(out.isfinite(), probs >= min_p * probs.max(-1, keepdim=True).values)
    if min_p > 0:
        assert torch.equal(out.isfinite(), MinPLogitsWarper(min_p)(None, LOGITS.clone()).isfinite())


@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3, 2.0])
def test_repetition_penalty_as_hf(penalty):
    ids = torch.tensor([[1, 2, 2, 50], [3, 3, 3, 3], [0, 96, 5, 6], [7, 8, 9, 10]])
    out = apply_repetition_penalty(LOGITS, ids, penalty)
    hf = RepetitionPenaltyLogitsProcessor(penalty)(ids, LOGITS.clone())
    torch.testing.assert_close(out, hf)


def test_repetition_penalty_skips_padding():
    ids = torch.tensor([[0, 0, 5]])
    mask = torch.tensor([[False, False, True]])
    out = apply_repetition_penalty(LOGITS[:1], ids, 2.0, mask)
    assert out[0, 0] == LOGITS[0, 0] and out[0, 5] != LOGITS[0, 5]


@pytest.mark.parametrize("t", [0.1, 0.7, 1.0, 3.0])
def test_temperature_as_hf(t):
    """The same distribution as HF's (which divides only; ours subtracts the row max first)."""
    ours = apply_temperature(LOGITS, t)
    torch.testing.assert_close(
        ours.softmax(-1), TemperatureLogitsWarper(t)(None, LOGITS.clone()).softmax(-1)
    )
    assert (ours.amax(-1) == 0).all()


@settings(max_examples=200, deadline=None)
@given(
    exponent=st.floats(min_value=-45.0, max_value=-3.0),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e3, 1e30]),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
)
def test_tiny_temperatures_draw_the_argmax(exponent, seed, scale, dtype):
    """However small the temperature (down to 1e-45, below float32's smallest normal number),
    and whatever the logits' size and dtype, the draw is the argmax: never an id >= V."""
    g = torch.Generator().manual_seed(seed)
    scale = min(scale, torch.finfo(dtype).max / 100)  # finite logits in every dtype
    logits = (torch.randn(8, 97, generator=g) * scale).to(dtype)
    temperature = 10.0**exponent
    draws = sample_next(apply_temperature(logits, temperature), g)
    assert ((draws >= 0) & (draws < 97)).all()
    top2 = logits.float().topk(2).values
    sure = (top2[:, 0] - top2[:, 1]) / temperature > 100  # the rest: < 97 e^-100 of the mass
    assert torch.equal(draws[sure], logits.float().argmax(-1)[sure])
    assert sure.any() or exponent > -6  # the test does test something at tiny temperatures


def test_tiny_temperature_generates_the_greedy_tokens(model):
    greedy = generate(model, PROMPTS[2], 20, temperature=0)
    for t in (1e-45, 5e-324, 1e-30):
        assert generate(model, PROMPTS[2], 20, temperature=t, generator=torch.Generator()) == greedy


def test_chain_order_as_hf_generate():
    """A sampled run equals one where the same filters are applied by hand, in HF's order."""
    model = tiny("llama")
    options = dict(temperature=0.7, top_k=30, top_p=0.8, min_p=0.05, repetition_penalty=1.2)
    out = generate(model, PROMPTS[0], 1, generator=torch.Generator().manual_seed(5), **options)
    with torch.no_grad():
        z = model(torch.tensor([PROMPTS[0]]))[:, -1]
    ids = torch.tensor([PROMPTS[0]])
    for warper in (
        RepetitionPenaltyLogitsProcessor(1.2),
        TemperatureLogitsWarper(0.7),
        TopKLogitsWarper(30),
        TopPLogitsWarper(0.8),
        MinPLogitsWarper(0.05),
    ):
        z = warper(ids, z)
    u = torch.rand(1, generator=torch.Generator().manual_seed(5)).item()
    cdf = z.softmax(-1)[0].cumsum(0).tolist()
    expected = next(i for i, c in enumerate(cdf) if c / cdf[-1] > u)  # inverse transform
    assert out[-1] == expected


def test_sample_next_draws_each_token_with_its_probability():
    probs = torch.tensor([0.1, 0.0, 0.2, 0.0, 0.7])
    logits = probs.log().expand(40_000, 5)  # 40,000 rows, one draw each
    draws = sample_next(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5) / 40_000
    assert freq[1] == 0 and freq[3] == 0  # filtered (zero-probability) tokens never come out
    torch.testing.assert_close(freq, probs, atol=0.01, rtol=0)  # 5 standard errors or more


def test_sample_next_is_the_same_on_every_torch_version():
    # torch.rand's stream for a seed has been the same across torch 2.x; torch.multinomial's
    # has not, which is why the sampler does not use it.
    g = torch.Generator().manual_seed(0)
    assert [round(x, 6) for x in torch.rand(3, generator=g).tolist()] == [
        0.496257,
        0.768222,
        0.088477,
    ]
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]]).expand(6, 4)
    draws = sample_next(logits, torch.Generator().manual_seed(1)).tolist()
    assert draws == [3, 2, 3, 3, 0, 3]  # from the uniforms above: the same on torch 2.5 and 2.15


# ---------------------------------------------------------------------------- Hugging Face


def hf_pair(kind: str, tmp_path):
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=101, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2
        )
        hf = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=101,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            initializer_range=0.2,
        )
        hf = transformers.LlamaForCausalLM(config)
    hf.eval().save_pretrained(tmp_path)
    return hf, DecoderLM.from_hf(tmp_path).eval()


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_greedy_tokens_equal_transformers_generate(kind, tmp_path):
    hf, ours = hf_pair(kind, tmp_path)
    prompts = [[5, 6, 7, 8], [90, 3]]
    for prompt in prompts:
        expected = hf.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=25,
            min_new_tokens=25,
            pad_token_id=0,
            eos_token_id=None,
        )
        assert generate(ours, prompt, 25, temperature=0) == expected[0].tolist()
        assert generate(ours, prompt, 25, temperature=0, use_cache=False) == expected[0].tolist()


# ---------------------------------------------------------------------------- stopping, streaming


def test_stop_tokens_sequences_and_strings():
    tok = load_tokenizer("stories")
    text = tok.encode("The cat sat. The end.<|endoftext|>More", allowed_special="all")

    def stops_after(stop):
        stopper = Stopper(stop, tok)
        return next((i + 1 for i, t in enumerate(text) if stopper(t)), None)

    assert stops_after(2047) == text.index(2047) + 1
    assert tok.decode(text[: stops_after("end.")]).endswith("The end.")
    assert tok.decode(text[: stops_after("at. T")]).endswith("at. The")  # across tokens
    assert stops_after([[text[1], text[2]]]) == 3  # a sequence of ids
    assert stops_after([[text[2], text[1]]]) is None
    assert stops_after(["nowhere", 2047]) == text.index(2047) + 1


def test_generation_stops_per_row(model):
    free = generate(model, PROMPTS, 20, temperature=0)
    stop = free[0][len(PROMPTS[0]) + 4]  # the 5th new token of row 0
    out = generate(model, PROMPTS, 20, temperature=0, stop=stop)
    for row, full in zip(out, free):
        new = full[len(row) - len(full) :] if len(row) < len(full) else []
        assert row == full[: len(row)]
        assert len(row) == len(full) or row[-1] == stop
        assert stop not in row[len(full) - 20 : -1] or new == []
    assert len(out[0]) == len(PROMPTS[0]) + 5


def test_stream_yields_what_generate_returns(model):
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    streamed = list(stream_generate(model, PROMPTS[1], 10, temperature=1.0, generator=g()))
    assert PROMPTS[1] + streamed == generate(model, PROMPTS[1], 10, temperature=1.0, generator=g())
    assert all(isinstance(t, int) for t in streamed)
    steps = list(stream_generate(model, PROMPTS, 4, temperature=0))
    assert len(steps) == 4 and all(len(s) == len(PROMPTS) for s in steps)


def test_stream_text_holds_back_partial_characters():
    tok = load_tokenizer("stories")
    text = "Kai saw 🙂 and 今晚月色真美."
    ids = tok.encode(text)
    pieces = list(stream_text(tok, ids))
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
    assert len(pieces) < len(ids)  # the emoji's bytes came in several tokens


def test_model_mode_is_restored(model):
    model.train()
    generate(model, PROMPTS[0], 3, temperature=0)
    assert model.training
    model.eval()


# ---------------------------------------------------------------------------- chat templates

LLAMA3_TEMPLATE = (  # Meta-Llama-3-8B-Instruct's tokenizer_config.json "chat_template"
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_prompt_equals_llama3_template(add_generation_prompt):
    jinja2 = pytest.importorskip("jinja2")
    messages = [
        {"role": "system", "content": "You tell short stories. "},
        {"role": "user", "content": "\nA cat, please."},
        {"role": "assistant", "content": "Kai the cat sat."},
        {"role": "user", "content": "Another!"},
    ]
    expected = jinja2.Template(LLAMA3_TEMPLATE).render(
        messages=messages,
        bos_token="<|begin_of_text|>",
        add_generation_prompt=add_generation_prompt,
    )
    assert llama3_chat_prompt(messages, add_generation_prompt) == expected
    assert len(LLAMA3_SPECIAL_TOKENS) == 5


# ---------------------------------------------------------------------------- bad input

M = tiny("llama")
BAD = [
    pytest.param(dict(temperature=-0.5), ValueError, "temperature", id="temperature<0"),
    pytest.param(dict(temperature=float("nan")), ValueError, "temperature", id="temperature-nan"),
    pytest.param(dict(temperature=float("inf")), ValueError, "finite", id="temperature-inf"),
    pytest.param(dict(temperature="hot"), TypeError, "temperature", id="temperature-str"),
    pytest.param(dict(top_k=0), ValueError, "top_k", id="top_k<1"),
    pytest.param(dict(top_k=2.5), TypeError, "top_k", id="top_k-float"),
    pytest.param(dict(top_p=0.0), ValueError, "top_p", id="top_p=0"),
    pytest.param(dict(top_p=1.5), ValueError, "top_p", id="top_p>1"),
    pytest.param(dict(min_p=-0.1), ValueError, "min_p", id="min_p<0"),
    pytest.param(dict(repetition_penalty=0.0), ValueError, "repetition_penalty", id="penalty=0"),
    pytest.param(dict(max_new_tokens=-1), ValueError, "max_new_tokens", id="max_new_tokens<0"),
    pytest.param(dict(prompt_ids=[]), ValueError, "non-empty", id="empty-prompt"),
    pytest.param(dict(prompt_ids=[[1, 2], []]), ValueError, "empty prompt", id="empty-row"),
    pytest.param(dict(prompt_ids=[1.0, 2.0]), TypeError, "ints", id="float-ids"),
    pytest.param(dict(prompt_ids=torch.ones(3)), TypeError, "integer tensor", id="float-tensor"),
    pytest.param(dict(prompt_ids="hello"), ValueError, "list of ids", id="text-prompt"),
    pytest.param(dict(prompt_ids=[1, 500]), ValueError, "vocab_size", id="id>=vocab"),
    pytest.param(dict(prompt_ids=[-1, 2]), ValueError, "vocab_size", id="negative-id"),
    pytest.param(
        dict(prompt_ids=list(range(60)), crop=False), ValueError, "crop=True", id="too-long"
    ),
    pytest.param(dict(max_new_tokens=46, crop=False), ValueError, "context", id="output-too-long"),
    pytest.param(dict(stop="The end"), ValueError, "tokenizer", id="stop-string-no-tokenizer"),
    pytest.param(dict(stop=1.5), TypeError, "stop", id="stop-float"),
    pytest.param(dict(stop=[[]]), TypeError, "stop", id="stop-empty-sequence"),
    pytest.param(dict(use_cache=1), TypeError, "use_cache", id="use_cache-int"),
    pytest.param(dict(crop="no"), TypeError, "crop must be True or False", id="crop-str"),
    pytest.param(dict(model=torch.nn.Linear(2, 2)), TypeError, "DecoderLM", id="not-a-model"),
    pytest.param(
        dict(pad_id=97),
        ValueError,
        r"pad_id must be an id of the model's vocabulary, in \[0, 96\]",
        id="pad_id>=vocab",
    ),  # fmt: skip
    pytest.param(dict(pad_id=-1), ValueError, "pad_id must be >= 0", id="pad_id<0"),
    pytest.param(dict(stop=97), ValueError, r"stop ids must lie in \[0, 96\]", id="stop-id>=vocab"),
    pytest.param(
        dict(stop=[[5, 200]]), ValueError, r"stop ids must lie in \[0, 96\]", id="stop-seq>=vocab"
    ),
    pytest.param(
        dict(tokenizer=load_tokenizer("stories")),
        ValueError,
        "tokenizer has 2,048 ids but the model's vocab_size is 97",
        id="tokenizer-bigger-than-vocab",
    ),
    pytest.param(
        dict(generator=0), TypeError, "generator must be a torch.Generator", id="generator-int"
    ),
]


@pytest.mark.parametrize("change, error, match", BAD)
def test_bad_arguments(change, error, match):
    args = {**dict(model=M, prompt_ids=[1, 2, 3], max_new_tokens=5), **change}
    with pytest.raises(error, match=match):
        generate(**args)
    with pytest.raises(error, match=match):  # raised on the call, not at the first step
        stream_generate(**args)


ONE_BY_3 = torch.ones(1, 3, dtype=torch.long)
KV_BAD = [
    pytest.param(
        lambda: KVCache(0, 1, 2, 8, 8), ValueError, "KVCache n_layers must be >= 1", id="n_layers=0"
    ),
    pytest.param(
        lambda: KVCache(2, 1, 2, 0, 8), ValueError, "KVCache max_len must be >= 1", id="max_len=0"
    ),
    pytest.param(
        lambda: KVCache(2, 1.5, 2, 8, 8),
        TypeError,
        "KVCache batch_size must be an int",
        id="batch-float",
    ),  # fmt: skip
    pytest.param(
        lambda: forward_with_cache(M, torch.ones(2, 3, dtype=torch.long), KVCache.for_model(M, 1)),
        ValueError,
        r"built for 2 layers, batch_size 1, .* need 2 layers, batch_size 2, .*KVCache.for_model",
        id="other-batch-size",
    ),
    pytest.param(
        lambda: forward_with_cache(M, ONE_BY_3, KVCache.for_model(tiny("gpt2"), 1)),
        ValueError,
        r"built for 2 layers, batch_size 1, 4 K/V heads .* need 2 layers, batch_size 1, 2 K/V heads",
        id="other-model-heads",
    ),
    pytest.param(
        lambda: forward_with_cache(M, ONE_BY_3, KVCache(1, 1, 2, 48, 8)),
        ValueError,
        r"built for 1 layers, .* need 2 layers",
        id="fewer-layers",
    ),
    pytest.param(  # the cache's own check, for a caller that writes to it without the model
        lambda: KVCache.for_model(M, 1).update(0, torch.zeros(2, 2, 3, 8), torch.zeros(2, 2, 3, 8)),
        ValueError,
        r"built for 2 layers, batch_size 1, .* model gave k of shape \(2, 2, 3, 8\)",
        id="update-other-batch-size",
    ),
    pytest.param(
        lambda: KVCache(1, 1, 2, 48, 8).update(1, torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8)),
        ValueError,
        "the KV cache has 1 layers, the model wrote to layer 1",
        id="update-missing-layer",
    ),
    pytest.param(
        lambda: forward_with_cache(M, ONE_BY_3, KVCache(2, 1, 2, 48, 8, torch.float64)),
        ValueError,
        r"torch.float64 on cpu; the model gave k .* \(torch.float32 on cpu\)",
        id="other-dtype",
    ),  # fmt: skip
    pytest.param(
        lambda: forward_with_cache(
            M, torch.ones(1, 11, dtype=torch.long), KVCache.for_model(M, 1, 10)
        ),
        ValueError,
        "the KV cache holds 10 positions; 11 needed",
        id="no-room",
    ),  # fmt: skip
    pytest.param(
        lambda: forward_with_cache(M, ONE_BY_3, KVCache(3, 1, 2, 48, 8)),
        ValueError,
        r"kv_cache was built for 3 layers.* need 2 layers.*KVCache.for_model\(model, batch_size\)",
        id="more-layers",
    ),  # fmt: skip
    pytest.param(
        lambda: forward_with_cache(M, ONE_BY_3, {}),
        TypeError,
        "kv_cache must be a KVCache, got dict",
        id="not-a-cache",
    ),
    pytest.param(
        lambda: forward_with_cache(M, [[1, 2, 3]], KVCache.for_model(M, 1)),
        TypeError,
        "ids must be an integer tensor",
        id="list-ids",
    ),
    pytest.param(
        lambda: forward_with_cache(
            M, ONE_BY_3, KVCache.for_model(M, 1), torch.tensor([46, 47, 48])
        ),
        ValueError,
        r"positions must lie in \[0, 47\] \(context_length is 48\)",
        id="positions-past-the-context",
    ),  # fmt: skip
    pytest.param(
        lambda: forward_with_cache(
            M, ONE_BY_3, _filled(KVCache.for_model(M, 1), 2), attn_mask=torch.ones(1, 1, 3, 3) > 0
        ),
        ValueError,
        r"attn_mask must have 4 dimensions and broadcast to .*\(1, 1, 3, 5\)",
        id="mask-fits-not-the-cache",
    ),  # fmt: skip
    pytest.param(
        lambda: forward_with_cache(
            tiny("llama", dropout=0.1).train(), ONE_BY_3, KVCache.for_model(M, 1)
        ),
        ValueError,
        r"without its dropout \(0.1\); call model.eval\(\) first",
        id="training-with-dropout",
    ),  # fmt: skip
    pytest.param(
        lambda: next_token_logits(M, ONE_BY_3, torch.ones(1, 3)),
        TypeError,
        r"mask must be a boolean tensor of the shape of ids, \(1, 3\).*got dtype torch.float32",
        id="next-float-mask",
    ),
    pytest.param(
        lambda: next_token_logits(
            M, ONE_BY_3, ONE_BY_3.bool(), _filled(KVCache.for_model(M, 1), 3)
        ),
        ValueError,
        "cache already holds 3 positions and ids has 3",
        id="next-cache-holds-all",
    ),  # fmt: skip
    pytest.param(
        lambda: next_token_logits(M, ONE_BY_3, ONE_BY_3.bool(), KVCache.for_model(M, 2)),
        ValueError,
        r"kv_cache was built for .*batch_size 2.* need 2 layers, batch_size 1",
        id="next-cache-for-another-batch",
    ),
]


def _filled(cache, n):
    """``cache`` after a prefill of ``n`` tokens of ``M``."""
    with torch.no_grad():
        forward_with_cache(M, torch.ones(1, n, dtype=torch.long), cache)
    return cache


@pytest.mark.parametrize("make, error, match", KV_BAD)
def test_bad_kv_caches(make, error, match):
    with torch.no_grad(), pytest.raises(error, match=match):
        make()


def test_check_kv_cache_names_a_cache_for_another_model():
    """For forward_with_cache: a cache with more layers than the model never moves its length
    (the last layer is never written), so only the forward can catch it."""
    from llmbook.checks.generation import check_kv_cache

    ids = torch.ones(1, 3, dtype=torch.long)
    check_kv_cache(KVCache.for_model(M, 1), M.config, ids)  # fits: no error
    with pytest.raises(ValueError, match="built for 3 layers.* need 2 layers, batch_size 1"):
        check_kv_cache(KVCache(3, 1, 2, 48, 8), M.config, ids)
    with pytest.raises(ValueError, match="need 2 layers, batch_size 2"):
        check_kv_cache(KVCache.for_model(M, 1), M.config, torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="kv_cache must be a KVCache, got dict"):
        check_kv_cache({}, M.config, ids)


def test_bad_chat_messages():
    with pytest.raises(TypeError, match="messages"):
        llama3_chat_prompt([{"role": "user"}])


# ---------------------------------------------------------------------------- llmbook generate


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A small Llama-style model for the stories tokenizer (2,048 ids), as a Hugging Face folder
    without tokenizer files: the command falls back to the stories tokenizer."""
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=2048,
        context_length=64,
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        init_std=0.1,
    )
    folder = tmp_path_factory.mktemp("hf_model")
    DecoderLM(config).save_hf(folder)
    return folder


def run_cli(capsys, *args):
    from llmbook.cli import main

    status = main(["generate", *args])
    return status, capsys.readouterr().out


def test_cli_generate_streams_the_continuation(hf_folder, capsys):
    common = [
        "Once upon a time",
        "--model",
        str(hf_folder),
        "--max-new-tokens",
        "12",
        "--device",
        "cpu",
    ]
    status, out = run_cli(capsys, *common, "--temperature", "0")
    tok = load_tokenizer("stories")
    model = DecoderLM.from_hf(hf_folder)
    expected = generate(model, tok.encode("Once upon a time"), 12, temperature=0, stop=2047)
    assert status == 0
    assert out == tok.decode([t for t in expected if t != 2047]) + "\n"
    first = run_cli(capsys, *common, "--seed", "5", "--top-k", "50")
    assert first == run_cli(capsys, *common, "--seed", "5", "--top-k", "50")  # reproducible
    assert first != run_cli(capsys, *common, "--seed", "6", "--top-k", "50")


def test_cli_generate_help_documents_every_option(capsys):
    import argparse

    from llmbook.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [a for a in sub.choices["generate"]._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 11
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "--help")
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for action in options:
        assert action.help and action.option_strings[0] in shown


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
NO_MPS = pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")


@pytest.fixture(scope="module")
def bad_folders(tmp_path_factory, hf_folder):
    """Hugging Face folders a user may hand ``llmbook generate``, each broken in one way."""
    import json
    import shutil

    root = tmp_path_factory.mktemp("bad_folders")

    def copy(name: str) -> Path:
        return Path(shutil.copytree(hf_folder, root / name))

    (copy("config-not-json") / "config.json").write_text("{not json", encoding="utf-8")
    (copy("config-a-list") / "config.json").write_text("[1, 2]", encoding="utf-8")
    config = json.loads((hf_folder / "config.json").read_text(encoding="utf-8"))
    (copy("eos-a-string") / "config.json").write_text(
        json.dumps({**config, "eos_token_id": "end"}), encoding="utf-8"
    )
    (copy("tokenizer-not-json") / "tokenizer.json").write_text("{", encoding="utf-8")
    (copy("tokenizer-a-list") / "tokenizer.json").write_text("[1]", encoding="utf-8")
    torch.manual_seed(0)
    small = ModelConfig(vocab_size=97, context_length=16, d_model=16, n_layers=1, n_heads=2)
    DecoderLM(small).save_hf(root / "vocab-97")  # no tokenizer files: 'stories' (2,048) is tried
    return root


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(
            ["--model", "no/such/folder"],
            "not a shipped model (stories, stories-",
            id="unknown-model",
        ),
        pytest.param(["--temperature", "-1"], "temperature", id="temperature<0"),
        pytest.param(["--top-p", "2"], "top_p", id="top_p>1"),
        pytest.param(["--max-new-tokens", "-3"], "max_new_tokens", id="max_new_tokens<0"),
        pytest.param(["--tokenizer", "nonsense"], "tokenizer", id="unknown-tokenizer"),
        pytest.param(
            ["--device", "cuda"],
            "--device 'cuda': this machine has no such device; it has cpu",
            id="device-cuda-absent",
            marks=NO_CUDA,
        ),
        pytest.param(
            ["--device", "cuda:7"],
            "--device 'cuda:7': this machine has no such device; it has cpu",
            id="device-cuda-index-absent",
            marks=NO_CUDA,
        ),
        pytest.param(
            ["--device", "mps"],
            "--device 'mps': this machine has no such device; it has cpu",
            id="device-mps-absent",
            marks=NO_MPS,
        ),
        pytest.param(
            ["--device", "tpu"],
            "--device 'tpu' is not a device; use auto, cpu, cuda, cuda:N or mps (this machine has",
            id="device-unknown",
        ),
        pytest.param(
            ["--model", "{bad}/config-not-json"],
            "config-not-json/config.json' is not valid JSON",
            id="config-not-json",
        ),
        pytest.param(
            ["--model", "{bad}/config-a-list"],
            "config-a-list/config.json' must hold a JSON object, got list",
            id="config-a-list",
        ),
        pytest.param(
            ["--model", "{bad}/eos-a-string"],
            "config.json': 'eos_token_id' must be an id or a list of ids, got 'end'",
            id="config-eos-a-string",
        ),
        pytest.param(
            ["--model", "{bad}/tokenizer-not-json"],
            "tokenizer.json must be a JSON file, but is not valid JSON",
            id="tokenizer-not-json",
        ),
        pytest.param(
            ["--model", "{bad}/tokenizer-a-list"],
            "its tokenizer files (tokenizer.json) cannot be read",
            id="tokenizer-a-list",
        ),
        pytest.param(
            ["--model", "{bad}/vocab-97"],
            "the folder has no tokenizer files, and the 'stories' tokenizer has 2,048 ids but the "
            "model's vocabulary has 97: pass --tokenizer",
            id="fallback-tokenizer-does-not-fit",
        ),
    ],
)
def test_cli_generate_errors(hf_folder, bad_folders, capsys, args, message):
    """Each mistake is one line on stderr (no traceback), exit status 2, naming what to fix."""
    from llmbook.cli import main

    args = [a.replace("{bad}", str(bad_folders)) for a in args]
    full = ["generate", "Hi", "--model", str(hf_folder), "--device", "cpu", *args]
    with pytest.raises(SystemExit) as exit_info:
        main(full)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("llmbook generate: error: ")


@pytest.mark.parametrize("encoding", ["cl100k_base", "gpt2"])
def test_cli_generate_refuses_a_tokenizer_that_does_not_fit(encoding, tiktoken_encoding, capsys):
    """The book's model (2,048 ids) with another tokenizer printed garbage and exited 0."""
    from llmbook.cli import main

    n = tiktoken_encoding(encoding).n_vocab  # skips offline without TIKTOKEN_CACHE_DIR
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "Hi", "--tokenizer", encoding, "--device", "cpu"])
    assert exit_info.value.code == 2
    assert (
        f"--tokenizer {encoding!r} has {n:,} ids but the model's vocabulary has 2,048: leave "
        "out --tokenizer to use the model's own ('stories')"
    ) in capsys.readouterr().err


def test_cli_generate_stops_at_the_end_of_the_story(capsys):
    """By default the command runs until the model writes <|endoftext|>; --max-new-tokens is a
    cap far above a story's length."""
    from llmbook.cli.generate import MAX_NEW_TOKENS
    from llmbook.pretrained import load_model

    status, out = run_cli(capsys, "Once upon a time", "--seed", "1", "--device", "cpu")
    tok, model = load_tokenizer("stories"), load_model("stories")
    g = torch.Generator().manual_seed(1)
    ids = tok.encode("Once upon a time")
    expected = generate(
        model, ids, MAX_NEW_TOKENS, temperature=0.8, top_p=0.95, stop=2047, generator=g
    )
    assert expected[-1] == 2047 and len(expected) - len(ids) < model.config.context_length
    assert status == 0 and out == tok.decode(expected[:-1]) + "\n"


def test_cli_generate_in_a_subprocess(hf_folder):
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "llmbook.cli",
        "generate",
        "Kai was",
        "--model",
        str(hf_folder),
        "--max-new-tokens",
        "6",
        "--temperature",
        "0",
        "--device",
        "cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Kai was") and len(result.stdout) > len("Kai was\n")


def test_cli_generate_with_the_books_model(capsys):
    from llmbook.pretrained import ASSETS

    if not (ASSETS / "stories_model" / "config.json").is_file():
        pytest.skip("the book's model (llmbook/assets/stories_model) is not there yet")
    status, out = run_cli(capsys, "Once upon a time", "--max-new-tokens", "20", "--seed", "0")
    assert status == 0 and out.startswith("Once upon a time") and len(out) > 30


def test_generate_takes_each_shipped_model_by_name_and_by_folder(capsys):
    """A shipped folder holds run.json beside config.json: it is a Hugging Face folder, not a run."""
    from llmbook.cli import main
    from llmbook.pretrained import ASSETS, SHIPPED_MODELS

    assert SHIPPED_MODELS == ("stories", "stories-corpus")
    texts = []
    for model in ("stories-corpus", str(ASSETS / "stories_corpus_model"), "stories"):
        argv = ["generate", "Once upon a time", "--model", model, "--max-new-tokens", "8"]
        assert main([*argv, "--seed", "1"]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] != texts[2] and all(t.startswith("Once upon a time") for t in texts)
