"""Files, the network and the terminal (hand-written plumbing that chapters 01-09 use, not teach).

``files``: atomic writes. ``tokenfile``: token ids on disk (chapter 02). ``download``: pinned
corpora fetched safely (chapter 02). ``hf``: Hugging Face checkpoints in and out (chapter 07).
``runs``: a training run's history, Ctrl-C handler, random states and checkpoint tensors
(chapter 08). ``progress``: progress bars (chapters 02 and 08). ``meta``: a model's skeleton
built on ``meta`` without running its initialisers (chapter 07; ``load_model`` uses it).
"""
