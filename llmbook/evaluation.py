# Generated from chapters/10_evaluation.ipynb by tools/export.py; do not edit, edit the chapter.

import math
import random

import numpy as np
import torch
import torch.nn.functional as F

from llmbook.checks import check_int, check_positive_float, check_token_ids
from llmbook.data import encode_text
from llmbook.generation import generate
from llmbook.stories import (
    CONTRADICTIONS,
    SEPARATOR,
    check_stories,
    check_story,
    format_document,
    generate_stories,
    generate_story,
    read_story,
)
from llmbook.training import get_batch, strided_loss

TEST_SEED = 2025  # the test stories: nothing is trained, tuned or chosen on this seed (chapter 8)
TEST_CHARS = 500_000  # how much test text the report card scores, as the scaling grid does
STRIDE = 64  # chapter 8's stride: each token scored once, after >= context_length - 63 tokens


def make_test_set(chars: int = TEST_CHARS, seed: int = TEST_SEED) -> tuple[list[str], list[float]]:
    """The generator's stories of ``seed``, in order, with their exact log-probabilities (nats),
    until their documents (each story and its separator line) hold at least ``chars``
    characters: the stories of ``llmbook.stories.build_corpus(seed, chars)``."""
    check_int(chars, "chars")
    check_int(seed, "seed", minimum=0)
    rng, stories, logprobs, total = random.Random(seed), [], [], 0
    while total < chars:
        story, logprob = generate_story(rng)
        stories.append(story)
        logprobs.append(logprob)
        total += len(format_document(story))
    return stories, logprobs


@torch.no_grad()
def token_losses(model, ids, stride: int = STRIDE, batch_size: int = 16) -> torch.Tensor:
    """The loss (nats) of every token of ``ids`` (N,) but the first, each scored once as chapter
    8's ``strided_loss`` scores it: windows of ``context_length`` (the whole text if shorter)
    moving by ``stride``. Returns (N - 1,) float32 on the CPU; ``strided_loss`` is its mean."""
    W, device = model.config.context_length, next(model.parameters()).device
    ids = check_token_ids(ids, "ids")  # (N,)
    check_int(batch_size, "batch_size")
    if check_int(stride, "stride") > W:
        raise ValueError(f"stride must be an int in 1..{W} (context_length), got {stride}")
    if len(ids) < 2:
        raise ValueError(f"ids must hold at least 2 tokens, got {len(ids)}")
    n = len(ids) - 1  # targets: ids[1:]
    w = min(W, n)  # the window
    ends = torch.tensor([*range(w, n, stride), n])  # a window's targets: ids[end - w + 1 : end + 1]
    out, done, was_training = torch.empty(n), 0, model.training
    model.eval()
    for chunk in ends.split(batch_size):
        x, y = get_batch(ids, chunk - w, w)  # (b, w) each
        logits = model(x.to(device)).float()  # (b, w, V)
        losses = F.cross_entropy(logits.transpose(1, 2), y.to(device), reduction="none").cpu()
        for row, end in zip(losses, chunk.tolist()):  # row: (w,)
            out[done:end], done = row[w - (end - done) :], end
    model.train(was_training)
    return out


def document_ids(tokenizer, story: str) -> list[int]:
    """A story's ids as a model reads it in the corpus, from the separator before it to its own:
    ``<|endoftext|>``, newline, the story, newline, ``<|endoftext|>``. Every id but the first is
    predicted; their characters are those of ``format_document(story)``."""
    return encode_text(tokenizer, f"{SEPARATOR}\n{story}\n{SEPARATOR}")


@torch.no_grad()
def story_losses(model, docs, batch_size: int = 16, stride: int = STRIDE) -> list[torch.Tensor]:
    """The loss (nats) of every id but the first of each document in ``docs`` (lists of ids):
    a (len(doc) - 1,) float32 tensor each. Documents that fit in ``context_length`` are scored
    whole, in batches of similar length padded on the right; longer ones by ``token_losses``."""
    W, device = model.config.context_length, next(model.parameters()).device
    check_int(batch_size, "batch_size")
    if not docs or any(len(doc) < 2 for doc in docs):
        raise ValueError("docs must be a non-empty list of documents of at least 2 ids each")
    out = [None] * len(docs)
    fits = sorted((i for i, d in enumerate(docs) if len(d) - 1 <= W), key=lambda i: len(docs[i]))
    was_training = model.training
    model.eval()
    for start in range(0, len(fits), batch_size):
        rows = fits[start : start + batch_size]
        T = len(docs[rows[-1]]) - 1  # the longest in the batch
        x = torch.zeros(len(rows), T, dtype=torch.long)
        y = torch.full((len(rows), T), -100)  # -100: ignored by cross_entropy
        for r, i in enumerate(rows):
            doc = torch.tensor(docs[i])
            x[r, : len(doc) - 1], y[r, : len(doc) - 1] = doc[:-1], doc[1:]
        logits = model(x.to(device)).float()  # (b, T, V)
        losses = F.cross_entropy(logits.transpose(1, 2), y.to(device), reduction="none").cpu()
        for r, i in enumerate(rows):
            out[i] = losses[r, : len(docs[i]) - 1]
    model.train(was_training)
    for i, doc in enumerate(docs):
        if out[i] is None:  # longer than the window
            out[i] = token_losses(model, doc, stride, batch_size)
    return out


def end_of_text_id(tokenizer) -> int:
    """The id of ``<|endoftext|>``, which the tokenizer must encode as one special id."""
    found = encode_text(tokenizer, SEPARATOR)
    if len(found) != 1:
        raise ValueError(f"the tokenizer must encode {SEPARATOR} as one id, got {found[:5]}")
    return found[0]


def sample_stories(
    model, tokenizer, n: int, seed: int = 0, temperature: float = 1.0, batch_size: int = 50
) -> tuple[list[str], list[bool]]:
    """``n`` stories sampled as a corpus document begins, from ``<|endoftext|>``, until the model
    writes ``<|endoftext|>`` again or fills its window. Returns the texts (without the separator
    lines, as ``read_story`` takes them) and whether each ended. Draws from one
    ``torch.Generator`` seeded with ``seed``: the same stories on every run on one machine."""
    check_int(n, "n")
    check_int(batch_size, "batch_size")
    check_positive_float(temperature, "temperature")
    eot, device = end_of_text_id(tokenizer), next(model.parameters()).device
    draws = torch.Generator(device).manual_seed(check_int(seed, "seed", minimum=0))
    texts, ended = [], []
    for start in range(0, n, batch_size):
        prompts = [[eot]] * min(batch_size, n - start)
        rows = generate(model, prompts, model.config.context_length - 1,
                        temperature=temperature, stop=eot, generator=draws)  # fmt: skip
        for row in rows:
            new = row[1:]
            ended.append(eot in new)
            new = new[: new.index(eot)] if eot in new else new
            texts.append(tokenizer.decode(new).removeprefix("\n").removesuffix("\n"))
    return texts, ended


def distinct_ngrams(texts: list[str], n: int) -> float:
    """The share of the word n-grams of ``texts`` (counted within each text) that are distinct."""
    check_int(n, "n")
    split = [text.split() for text in texts]
    grams = [tuple(words[i : i + n]) for words in split for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def judge_stories(texts: list[str]) -> dict:
    """What the checker finds in ``texts`` (``check_stories``: contradictions per 100 stories,
    each kind's count per 100, the share of grammatical sentences), with their mean length in
    characters and the share of distinct word 1- to 4-grams. JSON-ready."""
    checks = check_stories(texts)
    return {
        "stories": checks["stories"],
        "contradictions_per_100_stories": checks["contradictions_per_100_stories"],
        "stories_with_contradictions": checks["stories_with_contradictions"],
        "per_100_stories": checks["per_100_stories"],
        "grammatical_rate": checks["grammatical_rate"],
        "chars_mean": sum(map(len, texts)) / len(texts),
        "chars": [len(text) for text in texts],
        "distinct": {str(k): distinct_ngrams(texts, k) for k in (1, 2, 3, 4)},
    }


def contradiction_examples(texts: list[str], k: int = 3) -> list[dict]:
    """The first contradiction of each of the first ``k`` stories that hold one."""
    found = []
    for i, text in enumerate(texts):
        problems = [p for p in check_story(text) if p.kind in CONTRADICTIONS]
        if problems:
            found.append({"story": i, "kind": problems[0].kind, "message": problems[0].message})
        if len(found) == k:
            break
    return found


def score_stories(model, tokenizer, stories, logprobs, batch_size=16, stride=STRIDE) -> dict:
    """Each story's loss against the generator's (``story_losses``), JSON-ready: the ratio of
    the totals to the floor with its standard error, the excess per story (nats/char), the
    stories below the floor, the mean excess of each plot and the mean loss at each position."""
    per_token = story_losses(
        model, [document_ids(tokenizer, s) for s in stories], batch_size, stride
    )
    m = np.array([t.double().sum().item() for t in per_token])  # -ln q(s)
    g, chars = -np.array(logprobs), np.array([len(format_document(s)) for s in stories])
    excess, ratio, n = (m - g) / chars, m.sum() / g.sum(), len(m)
    se = float(np.sqrt(((m - ratio * g) ** 2).sum() / max(n * (n - 1), 1)) * n / g.sum())
    plots = [read_story(s).plot for s in stories]
    by_plot = {
        p: float(excess[[q == p for q in plots]].mean()) for p in sorted(set(plots), key=str)
    }
    longest = max(len(t) for t in per_token)
    totals, counts = np.zeros(longest), np.zeros(longest)
    for t in per_token:
        totals[: len(t)] += t.double().numpy()
        counts[: len(t)] += 1
    return {
        "nats_per_char": m.sum() / chars.sum(),
        "over_floor": ratio,
        "over_floor_se": se,
        "excess_nats_per_char": ((m - g).sum() / chars.sum()),
        "below_floor": int((excess < 0).sum()),
        "by_plot": {str(p): v for p, v in by_plot.items()},
        "excess": [round(float(e), 6) for e in excess],
        "position_loss": [round(float(v), 6) for v in totals / counts],
        "position_count": counts.astype(int).tolist(),
    }


def evaluate_model(
    model, tokenizer, test_chars: int = TEST_CHARS, n_samples: int = 200, sample_seed: int = 0,
    temperature: float = 1.0, stride: int = STRIDE, batch_size: int = 16, log=None,
) -> dict:  # fmt: skip
    """The report card of ``model`` (JSON-ready): the test stories (``make_test_set``) scored as
    one text with a stride (``strided``) and story by story (``per_story``); ``n_samples``
    stories sampled at ``temperature`` and as many test stories, judged alike (``samples``,
    ``corpus``). Deterministic: fixed seeds. ``log``: called with a line before each step."""
    check_int(test_chars, "test_chars")
    check_int(n_samples, "n_samples")
    check_int(sample_seed, "sample_seed", minimum=0)
    check_positive_float(temperature, "temperature")
    end_of_text_id(tokenizer)  # the tokenizer must know <|endoftext|>
    say, config = log or (lambda line: None), model.config
    stories, logprobs = make_test_set(test_chars)
    text = "".join(format_document(s) for s in stories)
    ids = torch.tensor(encode_text(tokenizer, text))  # (N,)
    floor = -sum(logprobs) / len(text)
    say(f"scoring {len(text):,} characters of test stories ({len(ids):,} tokens), stride {stride}")
    per_token = strided_loss(model, ids, stride, batch_size)
    per_char = per_token * (len(ids) - 1) / len(text)  # the same nats, per character
    say(f"scoring the {len(stories)} test stories one by one")
    per_story = score_stories(model, tokenizer, stories, logprobs, batch_size, stride)
    say(f"sampling {n_samples} stories at temperature {temperature}, and judging them")
    samples, ended = sample_stories(model, tokenizer, n_samples, sample_seed, temperature)
    corpus = [s for s, _ in generate_stories(n_samples, TEST_SEED)]
    return {
        "model": {"weights": sum(p.numel() for p in model.parameters()),
                  "vocab_size": config.vocab_size, "context_length": config.context_length},
        "test_set": {"seed": TEST_SEED, "stories": len(stories), "chars": len(text),
                     "tokens": len(ids), "floor_nats_per_char": floor},
        "strided": {"stride": stride, "nats_per_token": per_token, "nats_per_char": per_char,
                    "over_floor": per_char / floor},
        "per_story": per_story,
        "samples": {"seed": sample_seed, "temperature": temperature,
                    "max_new_tokens": config.context_length - 1, "ended": sum(ended),
                    **judge_stories(samples), "examples": contradiction_examples(samples)},
        "corpus": judge_stories(corpus),
    }  # fmt: skip


def report_lines(report: dict) -> list[str]:
    """A report card (``evaluate_model``) in a few lines of text."""
    t, s, p = report["test_set"], report["strided"], report["per_story"]
    m, c = report["samples"], report["corpus"]
    return [
        f"test stories (seed {t['seed']}): {t['stories']} stories, {t['chars']:,} characters, "
        f"floor {t['floor_nats_per_char']:.4f} nats/char",
        f"strided (stride {s['stride']}): {s['nats_per_char']:.4f} nats/char = "
        f"{s['over_floor']:.2f} x the floor",
        f"per story: {p['over_floor']:.2f} x the floor (standard error {p['over_floor_se']:.3f}); "
        f"excess {p['excess_nats_per_char']:.4f} nats/char; "
        f"{p['below_floor']} stories below the floor",
        f"{m['stories']} samples (temperature {m['temperature']}): {m['ended']} ended; "
        f"{m['contradictions_per_100_stories']:.1f} contradictions per 100 stories "
        f"(test stories: {c['contradictions_per_100_stories']:.1f})",
        f"grammatical sentences {m['grammatical_rate']:.1%} "
        f"(test stories {c['grammatical_rate']:.1%}); "
        f"distinct 4-grams {m['distinct']['4']:.3f} ({c['distinct']['4']:.3f}); "
        f"mean length {m['chars_mean']:.0f} characters ({c['chars_mean']:.0f})",
    ]  # fmt: skip


def plot_report(report: dict, title: str = "Report card"):
    """The figure of a report card: the excess per story, the loss by position in a story,
    the contradictions of each kind and the stories' lengths, samples beside test stories."""
    import matplotlib.pyplot as plt  # here, so that importing the module starts no plotting

    p, m, c = report["per_story"], report["samples"], report["corpus"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0, 0]
    ax.hist(p["excess"], bins=40, color="C0", label="test stories")
    ax.axvline(0, color="k", ls="--", label="the generator (0)")
    ax.axvline(p["excess_nats_per_char"], color="C1", label="mean (by characters)")
    ax.set(xlabel="excess loss (nats per character)", ylabel="stories", title="Excess per story")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    keep = (np.array(p["position_count"]) >= 20) & (np.arange(len(p["position_count"])) >= 1)
    ax.plot(np.arange(len(keep))[keep], np.array(p["position_loss"])[keep], lw=1)
    ax.set(xlabel="position in the story (tokens after the separator)", ylabel="mean loss (nats)",
           ylim=(0, None), title="Loss by position in a story")  # fmt: skip
    ax = axes[1, 0]
    kinds = list(CONTRADICTIONS) + ["ungrammatical"]
    x = np.arange(len(kinds))
    ax.bar(x - 0.2, [m["per_100_stories"][k] for k in kinds], 0.4, label="samples")
    ax.bar(x + 0.2, [c["per_100_stories"][k] for k in kinds], 0.4, label="test stories")
    ax.set_xticks(x, kinds, rotation=20, fontsize=8)
    clean = not any(c["per_100_stories"][k] for k in kinds)
    ax.set(ylabel="per 100 stories",
           title="What the checker finds" + (" (test stories: nothing)" if clean else ""))  # fmt: skip
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    bins = np.linspace(min(m["chars"] + c["chars"]), max(m["chars"] + c["chars"]) + 1, 30)
    ax.hist(m["chars"], bins=bins, alpha=0.6, label="samples")
    ax.hist(c["chars"], bins=bins, alpha=0.6, label="test stories")
    ax.set(xlabel="story length (characters)", ylabel="stories", title="Story length")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def scaling_law(N, D, E: float, A: float, alpha: float, B: float, beta: float):
    """$L(N, D) = E + A / N^\\alpha + B / D^\\beta$ (numbers or arrays)."""
    return E + A / N**alpha + B / D**beta


def fit_scaling_law(N, D, L, E: float | None = None, exponents=None) -> dict:
    """Fit ``scaling_law`` to losses ``L`` of models of ``N`` weights trained on ``D`` tokens,
    by least squares on relative errors. For fixed exponents the law is linear in E, A and B:
    they are solved exactly for every (alpha, beta) of a grid (``exponents``, default 0.02 to
    1.5 by 0.01) and the best pair with A, B >= 0 is kept. ``E`` given: fixed there."""
    N, D, L = (torch.as_tensor(v, dtype=torch.float64) for v in (N, D, L))  # (n,) each
    grid = torch.arange(0.02, 1.505, 0.01, dtype=torch.float64) if exponents is None else exponents
    alpha, beta = (g.reshape(-1, 1) for g in torch.meshgrid(grid, grid, indexing="ij"))  # (G, 1)
    columns = [N**-alpha, D**-beta]  # (G, n) each
    if E is None:
        columns.insert(0, torch.ones_like(columns[0]))
    X = torch.stack(columns, dim=-1) / L[:, None]  # (G, n, k): relative to each loss
    y = ((L - (E or 0.0)) / L).expand(len(X), -1)[..., None]  # (G, n, 1)
    coef = torch.linalg.lstsq(X, y).solution  # (G, k, 1)
    error = ((X @ coef - y) ** 2).sum(dim=(1, 2))  # (G,)
    error[(coef[:, -2:, 0] < 0).any(dim=1)] = math.inf  # A, B must be >= 0
    best = int(error.argmin())
    c = coef[best, :, 0].tolist()
    E_fit, A, B = c if E is None else [E, *c]
    rms = math.sqrt(error[best].item() / len(L))
    return {"E": E_fit, "A": A, "alpha": alpha[best, 0].item(), "B": B,
            "beta": beta[best, 0].item(), "rms_relative_error": rms}  # fmt: skip


__all__ = [
    "TEST_SEED",
    "TEST_CHARS",
    "STRIDE",
    "make_test_set",
    "token_losses",
    "document_ids",
    "story_losses",
    "end_of_text_id",
    "sample_stories",
    "distinct_ngrams",
    "judge_stories",
    "contradiction_examples",
    "score_stories",
    "evaluate_model",
    "report_lines",
    "plot_report",
    "scaling_law",
    "fit_scaling_law",
]
