"""A stand-in language model for the trainer's tests (and their subprocesses): the contract
forward(ids, targets=None) -> logits, or (logits, loss); a tied embedding/head, a norm and
dropout, so that checkpoints meet shared tensors, parameters without decay and the random state."""

import torch
import torch.nn.functional as F
from torch import nn


class TinyLM(nn.Module):
    def __init__(self, vocab_size=50, d_model=16, dropout=0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.mix = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, ids, targets=None):
        h = self.embed(ids)  # (B, T, C)
        h = h + self.drop(
            torch.tanh(self.mix(h.cumsum(1) / torch.arange(1, ids.shape[1] + 1)[:, None]))
        )
        logits = self.head(self.norm(h))  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())
