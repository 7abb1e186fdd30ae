"""llmbook, a textbook's decoder-only LLM: the public names of chapters 01-10 (hand-written).

The public names of every chapter (01-10), so that ``from llmbook import BPETokenizer`` works.
The package's folders show its architecture:

- ``tokenizer.py data.py embeddings.py attention.py multihead.py feedforward.py model.py
  training.py generation.py evaluation.py``: one module per chapter, 01 to 10, generated from
  the chapter's notebook (each file's header names it; edit the chapter, never the file). A chapter's module
  imports only earlier chapters' modules and the support rooms below.
- ``checks/``: argument checks (the shared ones in ``checks/__init__.py``, and one module per
  chapter that needs its own). ``io/``: files, the network and the terminal. ``stories/``: the
  generator of the book's corpus and its files. These import no chapter's module.
- ``pretrained.py`` (the shipped tokenizer and model), ``cli/`` (the ``llmbook`` command) and
  ``classroom/`` (the classroom edition) sit on top and may use everything.

The names are imported on first use (PEP 562's module ``__getattr__``): ``import llmbook``
loads no chapter and no torch, so ``llmbook --help`` starts at once, and ``from llmbook import
generate`` imports ``llmbook.generation`` (and torch) then.
"""

from importlib import import_module

# Where each public name lives: its chapter's module (or a support room), chapter by chapter.
_NAMES = {
    "tokenizer": "BPETokenizer GPT2_SPLIT_PATTERN GPT4_SPLIT_PATTERN SimpleTokenizer",
    "pretrained": "load_model load_tokenizer",
    "data": "SlidingWindowDataset corpus_statistics create_dataloader encode_text load_corpus "
    "random_batch train_val_split",
    "io.tokenfile": "TokenFile read_token_file tokenize_file write_token_file",
    "embeddings": "LearnedPositionalEmbedding SinusoidalPositionalEmbedding TokenEmbedding "
    "sinusoidal_positions",
    "attention": "CausalSelfAttention causal_mask scaled_dot_product_attention",
    "multihead": "MultiHeadAttention RotaryEmbedding apply_rope",
    "feedforward": "FeedForward LayerNorm RMSNorm SwiGLU swiglu_hidden_size",
    "model": "DecoderLM ModelConfig TransformerBlock default_device greedy_generate "
    "parameter_counts",
    "training": "AdamW TrainConfig clip_grad_norm cross_entropy evaluate load_checkpoint "
    "lr_schedule save_checkpoint train",
    "generation": "KVCache apply_repetition_penalty apply_temperature forward_with_cache generate "
    "llama3_chat_prompt min_p_filter stream_generate stream_text top_k_filter top_p_filter",
    "evaluation": "evaluate_model fit_scaling_law make_test_set sample_stories score_stories "
    "story_losses",
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names.split()}


def __getattr__(name: str):
    """``llmbook.NAME``: a public name, imported from its module on first use (then kept), or a
    submodule (``llmbook.generation``)."""
    if name in _MODULE_OF:
        value = getattr(import_module(f"llmbook.{_MODULE_OF[name]}"), name)
    elif name.startswith("_"):
        raise AttributeError(f"module 'llmbook' has no attribute {name!r}")
    else:
        try:
            value = import_module(f"llmbook.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"llmbook.{name}":
                raise
            raise AttributeError(f"module 'llmbook' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"
# The public names, chapter by chapter: every name of _NAMES, listed once there.
__all__ = [name for names in _NAMES.values() for name in names.split()]
