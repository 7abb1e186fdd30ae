"""llmbook: the code of a textbook that builds a decoder-only language model from scratch.

Each module is generated from one chapter of the book (see the header of each file); this
file re-exports the main names so that ``from llmbook import BPETokenizer`` works.
"""

from llmbook.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention
from llmbook.data import (
    SlidingWindowDataset,
    TokenFile,
    corpus_statistics,
    create_dataloader,
    load_corpus,
    read_token_file,
    train_val_split,
    write_token_file,
)
from llmbook.embeddings import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TokenEmbedding,
    sinusoidal_positions,
)
from llmbook.multihead import MultiHeadAttention, RotaryEmbedding, apply_rope
from llmbook.pretrained import load_tokenizer
from llmbook.tokenizer import BPETokenizer, SimpleTokenizer

__version__ = "0.1.0"
__all__ = [
    # 01 tokenizer
    "BPETokenizer",
    "SimpleTokenizer",
    "load_tokenizer",
    # 02 data
    "SlidingWindowDataset",
    "TokenFile",
    "corpus_statistics",
    "create_dataloader",
    "load_corpus",
    "read_token_file",
    "train_val_split",
    "write_token_file",
    # 03 embeddings
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEmbedding",
    "TokenEmbedding",
    "sinusoidal_positions",
    # 04 attention
    "CausalSelfAttention",
    "causal_mask",
    "scaled_dot_product_attention",
    # 05 multi-head attention
    "MultiHeadAttention",
    "RotaryEmbedding",
    "apply_rope",
]
