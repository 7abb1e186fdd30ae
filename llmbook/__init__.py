"""llmbook: the code of a textbook that builds a decoder-only language model from scratch.

Each module is generated from one chapter of the book (see the header of each file); this
file re-exports the main names so that ``from llmbook import BPETokenizer`` works.
"""

from llmbook.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention
from llmbook.data import (
    SlidingWindowDataset,
    corpus_statistics,
    create_dataloader,
    encode_text,
    load_corpus,
    random_batch,
    train_val_split,
)
from llmbook.embeddings import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TokenEmbedding,
    sinusoidal_positions,
)
from llmbook.feedforward import FeedForward, LayerNorm, RMSNorm, SwiGLU, swiglu_hidden_size
from llmbook.generation import (
    KVCache,
    apply_repetition_penalty,
    apply_temperature,
    generate,
    llama3_chat_prompt,
    min_p_filter,
    stream_generate,
    stream_text,
    top_k_filter,
    top_p_filter,
)
from llmbook.model import (
    DecoderLM,
    ModelConfig,
    TransformerBlock,
    default_device,
    greedy_generate,
    parameter_counts,
)
from llmbook.multihead import MultiHeadAttention, RotaryEmbedding, apply_rope
from llmbook.pretrained import load_model, load_tokenizer
from llmbook.tokenfile import TokenFile, read_token_file, tokenize_file, write_token_file
from llmbook.tokenizer import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    SimpleTokenizer,
)
from llmbook.training import (
    AdamW,
    TrainConfig,
    clip_grad_norm,
    cross_entropy,
    evaluate,
    load_checkpoint,
    lr_schedule,
    save_checkpoint,
    train,
)

__version__ = "0.1.0"
__all__ = [
    # 01 tokenizer
    "BPETokenizer",
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "SimpleTokenizer",
    "load_tokenizer",
    # 02 data
    "SlidingWindowDataset",
    "TokenFile",
    "corpus_statistics",
    "create_dataloader",
    "encode_text",
    "load_corpus",
    "random_batch",
    "read_token_file",
    "tokenize_file",
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
    # 06 feed-forward
    "FeedForward",
    "LayerNorm",
    "RMSNorm",
    "SwiGLU",
    "swiglu_hidden_size",
    # 07 model
    "DecoderLM",
    "ModelConfig",
    "TransformerBlock",
    "default_device",
    "greedy_generate",
    "parameter_counts",
    # 08 training
    "AdamW",
    "TrainConfig",
    "clip_grad_norm",
    "cross_entropy",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "lr_schedule",
    "save_checkpoint",
    "train",
    # 09 generation
    "KVCache",
    "apply_repetition_penalty",
    "apply_temperature",
    "generate",
    "llama3_chat_prompt",
    "min_p_filter",
    "stream_generate",
    "stream_text",
    "top_k_filter",
    "top_p_filter",
]
