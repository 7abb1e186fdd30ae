"""Tests the classroom checker needs for chapter 07's tasks (llmbook/classroom/tasks.py maps
them): the decoder's final norm, tested directly rather than through a loss that happens to
come out near ln(vocab) with or without it."""

import pytest
import torch

from llmbook.model import DecoderLM, ModelConfig

STYLES = [
    pytest.param({}, id="llama"),
    pytest.param(dict(norm="layernorm", mlp="gelu_tanh", position="learned", bias=True), id="gpt2"),
]


def tiny(**changes):
    torch.manual_seed(0)
    return DecoderLM(ModelConfig.from_preset("stories-tiny", **changes)).eval()


@pytest.mark.parametrize("style", STYLES)
def test_decoder_output_is_the_final_norm_of_the_last_block(style):
    model = tiny(**style)
    seen = []
    model.model.layers[-1].register_forward_hook(lambda module, args, out: seen.append(out))
    ids = torch.randint(0, 2048, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden = model.model(ids)  # Decoder.forward: (B, T, C)
        assert len(seen) == 1, "the last block must run exactly once"
        expected = model.model.norm(seen[0])
    torch.testing.assert_close(hidden, expected, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model.lm_head(expected), atol=1e-5, rtol=1e-5)


def test_final_norm_gain_scales_the_output():
    """RMSNorm's gain sets the size of the hidden vectors the LM head reads: 3 -> RMS 3 (with
    an eps far below the hidden vectors' mean square, which would otherwise shrink it)."""
    model = tiny(norm_eps=1e-12)
    ids = torch.randint(0, 2048, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model.model.norm.weight.fill_(3.0)
        rms = model.model(ids).pow(2).mean(dim=-1).sqrt()  # (B, T)
    torch.testing.assert_close(rms, torch.full_like(rms, 3.0), atol=1e-3, rtol=0)
