"""Build a model's skeleton on ``meta`` without running initialisers (hand-written; chapter 07).

A model that is about to receive its weights from a file is built on the ``meta`` device: shapes
and no memory. The constructors still run their initialisers (``nn.Embedding``'s
``normal_``, ``nn.Linear``'s ``kaiming_uniform_``, the book's ``init_weights``), and on a meta
tensor ``normal_`` is one of torch's Python reference kernels, whose first use imports
``torch._dynamo``: about a second of start-up for numbers that are never computed.

    with torch.device("meta"), skip_meta_init():
        model = DecoderLM(config)  # then load_state_dict(..., assign=True)

:func:`skip_meta_init` skips them, as ``transformers``' ``no_init_weights`` does, but only for
meta tensors, so it changes no value anywhere (a meta tensor holds none), and as a torch
function mode rather than by replacing ``torch.nn.init``'s functions, so other threads are not
affected.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

__all__ = ["skip_meta_init"]

# The initialisers that torch's modules and torch.nn.init call: nn.init's own functions that
# dispatch through torch function modes, and the in-place Tensor methods that the others use.
INITIALISERS = frozenset(
    {nn.init.uniform_, nn.init.normal_, nn.init.constant_, nn.init.kaiming_uniform_}
    | {Tensor.uniform_, Tensor.normal_, Tensor.fill_, Tensor.zero_, Tensor.random_}
    | {Tensor.bernoulli_, Tensor.exponential_, Tensor.log_normal_, Tensor.cauchy_}
    | {Tensor.geometric_}
)


class _SkipMetaInit(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in INITIALISERS:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, Tensor) and tensor.is_meta:
                return tensor  # in place, and a meta tensor has no values to set
        return func(*args, **kwargs)


def skip_meta_init() -> TorchFunctionMode:
    """A context manager in which initialisers of ``meta`` tensors (``torch.nn.init``'s
    functions, ``Tensor.normal_``, ``uniform_``, ``fill_``, ``zero_``, ...) return at once;
    everything else runs as usual. For a model built on ``meta`` whose weights are then loaded."""
    return _SkipMetaInit()
