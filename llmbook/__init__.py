"""llmbook: the code of a textbook that builds a decoder-only language model from scratch.

Each module is generated from one chapter of the book (see the header of each file); this
file re-exports the main names so that ``from llmbook import BPETokenizer`` works.
"""

from llmbook.tokenizer import BPETokenizer, SimpleTokenizer

__version__ = "0.1.0"
__all__ = ["BPETokenizer", "SimpleTokenizer"]
