"""Tests the classroom checker needs for chapter 08's tasks (llmbook/classroom/tasks.py maps
them): ``AdamW.step`` and ``lr_schedule`` each by several properties, so that one mistake is
named by the test of the property it breaks."""

import math

import pytest
import torch

from llmbook.training import AdamW, clip_grad_norm, lr_schedule

# ------------------------------------------------------------------------------- AdamW.step


def test_adamw_first_step_by_hand():
    """Step 1: m_hat = g and v_hat = g^2, so each weight moves by lr * g / (|g| + eps), after
    the decoupled decay w * (1 - lr * wd)."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    w.grad = torch.tensor([0.3, -4.0, 0.0])
    AdamW([w], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.5).step()
    decayed = torch.tensor([1.0, -2.0, 0.5]) * (1 - 0.1 * 0.5)
    expected = decayed - 0.1 * torch.tensor([0.3, -4.0, 0.0]) / (
        torch.tensor([0.3, 4.0, 0.0]) + 1e-8
    )
    torch.testing.assert_close(w.detach(), expected, atol=1e-7, rtol=0)


def test_adamw_bias_correction_over_steps():
    """A constant gradient g: with bias correction every step moves by -lr * sign(g) exactly."""
    w = torch.nn.Parameter(torch.zeros(2))
    opt = AdamW([w], lr=0.01, betas=(0.9, 0.999), eps=0.0, weight_decay=0.0)
    for step in range(1, 6):
        w.grad = torch.tensor([2.0, -0.5])
        opt.step()
        torch.testing.assert_close(w.detach(), torch.tensor([-0.01, 0.01]) * step)


def test_adamw_matches_torch_with_groups_and_many_steps():
    """Two groups with their own lr and decay, 30 steps of changing gradients."""
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]

    def groups(params):
        return [
            {"params": [params[0]], "weight_decay": 0.1},
            {"params": [params[1]], "weight_decay": 0.0, "lr": 3e-3},
        ]

    opt = AdamW(groups(ours), lr=1e-2, betas=(0.8, 0.95), eps=1e-6)
    ref = torch.optim.AdamW(groups(theirs), lr=1e-2, betas=(0.8, 0.95), eps=1e-6)
    for _ in range(30):
        grads = [torch.randn(t.shape, generator=g) for t in start]
        for params, o in ((ours, opt), (theirs, ref)):
            for p, grad in zip(params, grads):
                p.grad = grad.clone()
            o.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=1e-5)


def test_adamw_skips_parameters_without_a_gradient():
    used, unused = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    used.grad = torch.ones(3)
    opt = AdamW([used, unused], lr=0.1, weight_decay=0.1)
    opt.step()
    assert torch.equal(unused.detach(), torch.ones(3)), "no gradient: no decay and no step"
    assert not torch.equal(used.detach(), torch.ones(3))
    assert len(opt.state[unused]) == 0


def test_adamw_resumes_from_its_state_dict():
    """Its state (step count and both averages, per parameter) is all it needs to go on."""
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(6, generator=g) for _ in range(6)]
    w = torch.nn.Parameter(torch.ones(6))
    opt = AdamW([w], lr=0.05)
    for grad in grads:
        w.grad = grad.clone()
        opt.step()
    v = torch.nn.Parameter(torch.ones(6))
    first = AdamW([v], lr=0.05)
    for grad in grads[:3]:
        v.grad = grad.clone()
        first.step()
    resumed = AdamW([v], lr=0.05)
    resumed.load_state_dict(first.state_dict())
    for grad in grads[3:]:
        v.grad = grad.clone()
        resumed.step()
    torch.testing.assert_close(v.detach(), w.detach(), atol=0, rtol=0)


# ------------------------------------------------------------------------------- lr_schedule

KW = dict(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)


def test_lr_schedule_warm_up_is_linear_from_lr_over_warmup_steps():
    assert [lr_schedule(s, **KW) for s in range(10)] == pytest.approx(
        [(s + 1) / 10 for s in range(10)]
    )


def test_lr_schedule_cosine_between_warm_up_and_max_steps():
    for step in (10, 23, 60, 97, 109):
        progress = (step - 10) / 100
        expected = 0.1 + 0.45 * (1 + math.cos(math.pi * progress))
        assert lr_schedule(step, **KW) == pytest.approx(expected), f"step {step}"


def test_lr_schedule_ends_at_min_lr_and_stays():
    assert [lr_schedule(s, **KW) for s in (110, 111, 500, 10**6)] == pytest.approx([0.1] * 4)


def test_lr_schedule_without_warm_up_starts_at_the_peak():
    kw = dict(lr=2.0, min_lr=0.0, warmup_steps=0, max_steps=4)
    assert [lr_schedule(s, **kw) for s in range(6)] == pytest.approx(
        [
            2.0,
            2 * 0.5 * (1 + math.cos(math.pi / 4)),
            1.0,
            2 * 0.5 * (1 + math.cos(3 * math.pi / 4)),
            0.0,
            0.0,
        ]
    )


# ---------------------------------------------------------------------------- clip_grad_norm


def test_clip_grad_norm_scales_all_gradients_together():
    """Norm 5 (a 3-4 triangle over two tensors) clipped to 1: both scaled by 1/5, norm returned."""
    a, b, frozen = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    norm = clip_grad_norm([a, b, frozen], max_norm=1.0)  # frozen has no gradient: skipped
    assert float(norm) == pytest.approx(5.0)
    torch.testing.assert_close(
        torch.cat([a.grad, b.grad]), torch.tensor([0.6, 0.8]), atol=1e-6, rtol=0
    )
    assert frozen.grad is None
    norm = clip_grad_norm([a, b], max_norm=10.0)  # already small enough: unchanged
    assert float(norm) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(
        torch.cat([a.grad, b.grad]), torch.tensor([0.6, 0.8]), atol=1e-6, rtol=0
    )
