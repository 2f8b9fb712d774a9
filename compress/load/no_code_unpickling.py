"""Reading archives that carry pickles without running code from them.

A ``torch.export`` archive holds pickled members (its sample inputs, and weights or constants
saved with pickle). torch deserializes them with ``torch.load``, and where the weights-only
loader refuses a member it falls back to ``weights_only=False``, which runs whatever the pickle
names. While ``weights_only_loads()`` is active every ``torch.load`` is weights-only, so such an
archive is refused instead; ``--trust-pickle`` is the user's opt-in to load it anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    original = torch.load

    def weights_only(*args, **kwargs):
        kwargs["weights_only"] = True  # tensors, containers and plain values only: no callable is looked up
        return original(*args, **kwargs)

    torch.load = weights_only
    try:
        yield
    finally:
        torch.load = original
