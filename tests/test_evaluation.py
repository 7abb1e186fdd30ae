"""Tests of chapter 10's evaluation (``llmbook.evaluation``) and of ``llmbook eval``.

The central check: a model that *is* the generator has no excess loss on any story. A bigram
chain stands in for the generator (its stories' exact log-probabilities are known), and a model
whose logits are the chain's log-probabilities is scored by ``story_losses``, through both the
batched path and the strided one for documents longer than its window.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from llmbook import DecoderLM, ModelConfig, load_tokenizer
from llmbook.cli import main
from llmbook.data import encode_text
from llmbook.evaluation import (
    TEST_SEED,
    distinct_ngrams,
    document_ids,
    end_of_text_id,
    evaluate_model,
    fit_scaling_law,
    judge_stories,
    make_test_set,
    report_lines,
    sample_stories,
    scaling_law,
    story_losses,
    token_losses,
)
from llmbook.pretrained import ASSETS
from llmbook.stories import build_corpus, format_document
from llmbook.training import strided_loss

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_REPORT = ASSETS / "stories_model" / "eval.json"


class BigramModel(nn.Module):
    """A "language model" whose next-token distribution is a fixed bigram chain's: given the
    previous token a, the logits are ln P[a]. It needs only the previous token, so it is exact
    in any window."""

    def __init__(self, log_p: torch.Tensor, context_length: int) -> None:
        super().__init__()
        self.log_p = nn.Parameter(log_p, requires_grad=False)  # (V, V)
        self.config = SimpleNamespace(context_length=context_length, vocab_size=len(log_p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V)
        return self.log_p[x]


def bigram_chain(V: int = 6, end_weight: float = 0.6, seed: int = 0) -> torch.Tensor:
    """ln P of a random chain over V ids where id 0 is the separator (a story ends there)."""
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(V, V, generator=g, dtype=torch.float64) + 0.1
    P[:, 0] = end_weight
    P[0, 0] = 0  # a story is never empty
    return (P / P.sum(1, keepdim=True)).log()


def draw_documents(
    log_p: torch.Tensor, n: int, seed: int = 1
) -> tuple[list[list[int]], list[float]]:
    """``n`` documents [0, ..., 0] drawn from the chain, and the exact ln p of each."""
    g = torch.Generator().manual_seed(seed)
    docs, logprobs = [], []
    for _ in range(n):
        doc, lp = [0], 0.0
        while len(doc) == 1 or doc[-1] != 0:
            nxt = int(torch.multinomial(log_p[doc[-1]].exp(), 1, generator=g))
            lp += log_p[doc[-1], nxt].item()
            doc.append(nxt)
        docs.append(doc)
        logprobs.append(lp)
    return docs, logprobs


def test_the_generator_itself_has_no_excess_loss():
    log_p = bigram_chain()
    docs, logprobs = draw_documents(log_p, 60)
    W = 8  # short: some documents are longer and go through the strided path
    assert any(len(d) - 1 > W for d in docs) and any(len(d) - 1 <= W for d in docs)
    losses = story_losses(BigramModel(log_p.float(), W), docs, batch_size=4, stride=3)
    for doc, loss, logprob in zip(docs, losses, logprobs):
        assert loss.shape == (len(doc) - 1,)
        assert loss.double().sum().item() == pytest.approx(-logprob, abs=1e-4)


def test_another_model_pays_a_positive_excess_on_average():
    """E_p[ln p - ln q] is KL(p || q) > 0, though single stories may cost q less than p."""
    log_p, log_q = bigram_chain(seed=0), bigram_chain(seed=5)
    docs, logprobs = draw_documents(log_p, 400)
    losses = story_losses(BigramModel(log_q.float(), 64), docs)
    excess = [loss.double().sum().item() + lp for loss, lp in zip(losses, logprobs)]
    assert min(excess) < 0 < sum(excess) / len(excess)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("stories")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=2048, context_length=32, d_model=16, n_layers=1, n_heads=2,
                         n_kv_heads=1, d_ff=32)  # fmt: skip
    return DecoderLM(config).eval()


def test_test_stories_are_the_corpus_of_the_test_seed():
    stories, logprobs = make_test_set(20_000)
    text, meta = build_corpus(seed=TEST_SEED, min_chars=20_000)
    assert "".join(format_document(s) for s in stories) == text
    assert sum(logprobs) == pytest.approx(meta["total_logprob"], rel=1e-12)


def test_documents_hold_the_text_ids(tok):
    """Each document predicts exactly its story's ids in the test text, separator included."""
    stories, _ = make_test_set(10_000)
    text = "".join(format_document(s) for s in stories)
    docs = [document_ids(tok, s) for s in stories]
    eot = end_of_text_id(tok)
    assert all(d[0] == eot and d[-1] == eot for d in docs)
    targets = [t for d in docs for t in d[1:]]  # "\n" story "\n" <|endoftext|>, story by story
    assert targets[1:] == encode_text(tok, text)[:-1]  # the text ends with a newline instead


@pytest.mark.parametrize("n, stride", [(100, 7), (33, 32), (20, 5), (2, 1)])
def test_token_losses_score_each_token_once_as_strided_loss(tiny_model, n, stride):
    ids = torch.randint(0, 2048, (n,), generator=torch.Generator().manual_seed(n))
    losses = token_losses(tiny_model, ids, stride=stride, batch_size=3)
    assert losses.shape == (n - 1,)
    if n > tiny_model.config.context_length:
        assert losses.double().mean().item() == pytest.approx(
            strided_loss(tiny_model, ids, stride, 3), abs=1e-5
        )
    with torch.no_grad():  # the first targets are scored from the start of the text
        first = tiny_model(ids[None, : min(n - 1, 32)])[0].log_softmax(-1)
    assert losses[0].item() == pytest.approx(-first[0, ids[1]].item(), abs=1e-5)


def test_distinct_ngrams():
    assert distinct_ngrams(["a b a b a b"], 2) == pytest.approx(2 / 5)
    assert distinct_ngrams(["a b c", "a b c"], 3) == 0.5
    assert distinct_ngrams(["a"], 2) == 0.0


def test_judge_stories_finds_nothing_in_test_stories():
    stories, _ = make_test_set(5_000)
    judged = judge_stories(stories)
    assert judged["contradictions_per_100_stories"] == 0 and judged["grammatical_rate"] == 1.0
    assert judged["chars"] == [len(s) for s in stories]


def test_scaling_fit_recovers_a_known_law():
    N = [1e5, 1e5, 1e5, 3e5, 3e5, 3e5, 1e6, 1e6, 1e6]
    D = [1e6, 3e6, 1e7] * 3
    law = dict(E=0.09, A=5.0, alpha=0.4, B=300.0, beta=0.5)
    L = [scaling_law(n, d, **law) for n, d in zip(N, D)]
    for fit in [fit_scaling_law(N, D, L), fit_scaling_law(N, D, L, E=0.09)]:
        assert fit["alpha"] == pytest.approx(0.4) and fit["beta"] == pytest.approx(0.5)
        assert fit["E"] == pytest.approx(0.09, rel=1e-6) and fit["A"] == pytest.approx(
            5.0, rel=1e-6
        )
        assert fit["rms_relative_error"] < 1e-9


def test_report_card_has_its_fields_and_is_deterministic(tiny_model, tok):
    kwargs = dict(test_chars=3_000, n_samples=3, batch_size=4, stride=8)
    report = evaluate_model(tiny_model, tok, **kwargs)
    assert report == evaluate_model(tiny_model, tok, **kwargs)
    assert json.loads(json.dumps(report)) == report  # JSON-ready
    assert set(report) == {"model", "test_set", "strided", "per_story", "samples", "corpus"}
    t, s, p = report["test_set"], report["strided"], report["per_story"]
    assert t["seed"] == TEST_SEED and t["chars"] >= 3_000 and s["stride"] == 8
    assert s["over_floor"] > 5 and p["over_floor"] > 5  # a random model: far above the floor
    assert len(p["excess"]) == t["stories"] and p["below_floor"] == 0
    m = report["samples"]
    assert m["stories"] == 3 and m["ended"] <= 3 and len(m["chars"]) == 3
    assert report["corpus"]["contradictions_per_100_stories"] == 0
    assert len(report_lines(report)) == 5


def test_sample_stories_are_reproducible(tiny_model, tok):
    first = sample_stories(tiny_model, tok, 3, seed=1, batch_size=2)
    assert first == sample_stories(tiny_model, tok, 3, seed=1, batch_size=2)
    assert first != sample_stories(tiny_model, tok, 3, seed=2, batch_size=2)


class NoSeparator:
    def encode(self, text):
        return list(text.encode("utf-8"))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_samples=0), ValueError, "n_samples must be >= 1"),
        (dict(temperature=0.0), ValueError, "temperature must be a finite number > 0"),
        (dict(test_chars=1.5), TypeError, "test_chars must be an int"),
        (dict(sample_seed=-1), ValueError, "sample_seed must be >= 0"),
        (dict(stride=33), ValueError, r"stride must be an int in 1..32"),
        (dict(tokenizer=NoSeparator()), ValueError, "must encode <|endoftext|> as one id"),
    ],
)
def test_evaluate_model_bad_arguments(tiny_model, tok, kwargs, error, match):
    kwargs = {"tokenizer": tok, "test_chars": 2_000, "n_samples": 1, **kwargs}
    with pytest.raises(error, match=match):
        evaluate_model(tiny_model, **kwargs)


def run_cli(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--samples", "0"], "--samples must be at least 1, got 0"),
        (["--stride", "0"], "--stride must be at least 1, got 0"),
        (["--seed", "-2"], "--seed must be >= 0, got -2"),
        (["--temperature", "0"], "--temperature must be a number > 0"),
        (["--temperature", "inf"], "--temperature must be a number > 0"),
        (["--test-chars", "lots"], "--test-chars must be a number of characters"),
        (["--test-chars", "0"], "--test-chars must be between 1 and"),
        (["--stride", "257"], "--stride must be at most the model's context_length, 256"),
        (
            ["--model", "no/such/folder"],
            "not a shipped model (stories, stories-corpus), a Hugging Face folder",
        ),
        (["--tokenizer", "gpt2"], "--tokenizer 'gpt2' has 50,257 ids but the model's vocabulary"),
    ],
)
def test_cli_bad_arguments(tmp_path, capsys, options, message):
    code, err = run_cli(["eval", "--out", str(tmp_path / "out"), *options], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "out").exists()


def test_cli_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(["eval", "--out", str(tmp_path / "file")], capsys)
    assert code == 2 and "is a file; give a folder" in err


def test_cli_help_imports_no_torch():
    code = "import sys, llmbook.cli; llmbook.cli.build_parser(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_cli_writes_a_report_and_a_figure(tmp_path, capsys):
    out = tmp_path / "card"
    argv = ["eval", "--out", str(out), "--test-chars", "8K", "--samples", "2", "--device", "cpu"]
    assert main(argv) == 0
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert report["command"] == "llmbook " + " ".join(argv) and report["model_name"] == "stories"
    assert report["test_set"]["chars"] >= 8_000 and report["samples"]["stories"] == 2
    assert (out / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "x the floor" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_reproduces_the_shipped_models_report(tmp_path):
    """``llmbook eval --model stories`` gives the numbers the book records for its model
    (losses to rounding, which another CPU may change in the last digits; the sampled stories'
    counts exactly on the machine that wrote them, within two stories' worth elsewhere)."""
    recorded = json.loads(SHIPPED_REPORT.read_text(encoding="utf-8"))
    argv = ["llmbook", *recorded["command"].split()[1:]]
    argv[argv.index("--out") + 1] = str(tmp_path / "again")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    subprocess.run([sys.executable, "-m", "llmbook.cli", *argv[1:]], check=True, env=env, cwd=ROOT)
    again = json.loads((tmp_path / "again" / "eval.json").read_text(encoding="utf-8"))
    assert again["test_set"] == recorded["test_set"]
    for part, key in [("strided", "nats_per_char"), ("per_story", "nats_per_char"),
                      ("per_story", "over_floor")]:  # fmt: skip
        assert again[part][key] == pytest.approx(recorded[part][key], rel=1e-4)
    assert again["corpus"] == recorded["corpus"]
    m, r = again["samples"], recorded["samples"]
    assert m["stories"] == r["stories"]
    assert math.isclose(m["contradictions_per_100_stories"], r["contradictions_per_100_stories"],
                        abs_tol=5)  # fmt: skip
    assert math.isclose(m["grammatical_rate"], r["grammatical_rate"], abs_tol=0.01)
