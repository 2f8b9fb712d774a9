"""The teacher's outputs and hidden states, kept per sample once computed.

The teacher is frozen and runs in eval mode, so its answer for a sample is the same every epoch.
Computing it once and reading it back afterwards spares a teacher forward pass on every step of
every epoch after the first: with a student a third of the teacher's depth (``--prune layers=2``
of MiniLM's 6) that pass is about half of a step.

Targets are stored by name (``output``, then the teacher submodule each hidden state comes from),
so one cache can serve several students of the same teacher on the same data, each pairing its
layers with different teacher layers: the pruning search distils many candidates, round after
round, and computes the teacher's answer for a sample once.

Targets are kept in float16 (hidden states) to keep the memory small, and a target is always used
as it was stored, even the first time it is computed: an uninterrupted run and a resumed one
(whose cache starts empty) then train on exactly the same numbers.
"""

from __future__ import annotations

import torch

# A cache larger than this is not built (the report says so): the teacher then runs every step.
MAX_CACHE_BYTES = 6 * 2 ** 30
OUTPUT = "output"  # the name of the teacher's output among the stored targets
SQUARE = "#attention"  # names ending so are [batch, heads, sequence, sequence] (attention probabilities)


class TeacherCache:
    """Per-sample storage for named teacher tensors.

    A tensor whose first two axes are [batch, sequence] (sequence as the batch was trimmed to) is
    stored padded to the full ``sequence`` length of the data and cut back on reading; so are both
    sequence axes of attention probabilities (names ending in ``SQUARE``). ``data``
    (the samples' digest) ties a shared cache to one data set: ``serves`` refuses any other. A
    cache made without samples is bound to the first data it is offered (``bind``)."""

    def __init__(self, samples: int | None = None, sequence: int | None = None, data: str | None = None):
        self.samples, self.sequence, self.data = samples, sequence, data
        self.store: dict[str, torch.Tensor] = {}
        self.layout: dict[str, str] = {}  # "token" (axis 1 is the sequence), "square" (axes 2 and 3), "whole"
        self.filled: dict[str, torch.Tensor] = {}
        self.disabled_note: str | None = None
        self.hits = self.misses = 0

    def serves(self, samples: int, sequence: int | None, data: str | None) -> bool:
        """Whether this cache is for these samples (count, padded length and digest), binding an
        unbound one to them."""
        if self.samples is None:
            self.samples, self.sequence, self.data = samples, sequence, data
        return (self.samples, self.sequence, self.data) == (samples, sequence, data)

    def get(self, index: torch.Tensor, length: int | None, names: list[str]) -> list[torch.Tensor] | None:
        """The stored tensors ``names`` for the samples ``index`` (trimmed to ``length`` positions),
        or None when any of them was never stored."""
        if not all(name in self.store and bool(self.filled[name][index].all()) for name in names):
            self.misses += 1
            return None
        self.hits += 1
        return [self._read(name, index, length) for name in names]

    def put(self, index: torch.Tensor, names: list[str], tensors: list[torch.Tensor], length: int | None) -> list[torch.Tensor]:
        """Store the samples' tensors and return them as stored (rounded to the cache's dtypes), so
        a target is the same number whether it was just computed or read back."""
        out = []
        for name, tensor in zip(names, tensors):
            if name not in self.store and not self._allocate(name, tensor, length):
                out.append(tensor)
                continue
            slot, value = self.store[name], tensor.detach().to(self.store[name].dtype).cpu()
            if self.layout[name] == "token":
                slot[index] = 0
                slot[index, :value.shape[1]] = value
            elif self.layout[name] == "square":
                slot[index] = 0
                slot[index, :, :value.shape[2], :value.shape[3]] = value
            else:
                slot[index] = value
            self.filled[name][index] = True
            out.append(value.to(device=tensor.device, dtype=tensor.dtype))
        return out

    def report(self, hits: int = 0, misses: int = 0) -> dict:
        """The cache's state, with the steps counted since ``hits``/``misses`` were read (a shared
        cache reports each run's own steps)."""
        if not self.store and self.disabled_note is not None:
            return {"used": False, "note": self.disabled_note}
        size = sum(s.numel() * s.element_size() for s in self.store.values())
        out = {"used": True, "megabytes": round(size / 2 ** 20, 1), "steps_from_cache": self.hits - hits,
               "steps_computing_teacher": self.misses - misses, "hidden_dtype": "float16"}
        return out | ({"note": self.disabled_note} if self.disabled_note else {})

    def _read(self, name: str, index: torch.Tensor, length: int | None) -> torch.Tensor:
        value, layout = self.store[name][index], self.layout[name]
        if length is None or layout == "whole":
            return value
        return value[:, :length] if layout == "token" else value[:, :, :length, :length]

    def _allocate(self, name: str, tensor: torch.Tensor, length: int | None) -> bool:
        known = length is not None and self.sequence is not None
        if known and name.endswith(SQUARE) and tensor.dim() == 4 and tensor.shape[2] == tensor.shape[3] == length:
            layout, shape = "square", (self.samples, tensor.shape[1], self.sequence, self.sequence)
        elif known and tensor.dim() >= 3 and tensor.shape[1] == length:
            layout, shape = "token", (self.samples, self.sequence, *tensor.shape[2:])
        else:
            layout, shape = "whole", (self.samples, *tensor.shape[1:])
        # the output keeps float32: logits are few and their softmax is sensitive; hidden states go to float16
        dtype = torch.float32 if name == OUTPUT or not tensor.is_floating_point() else torch.float16
        size = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
        used = sum(s.numel() * s.element_size() for s in self.store.values())
        if used + size > MAX_CACHE_BYTES:
            self.disabled_note = (f"not cached: the teacher's outputs for {self.samples} samples need over {(used + size) / 2 ** 30:.1f} GiB, "
                                  f"above {MAX_CACHE_BYTES / 2 ** 30:.0f} GiB; the teacher runs on every step")
            return False
        self.store[name], self.layout[name] = torch.zeros(shape, dtype=dtype), layout
        self.filled[name] = torch.zeros(self.samples, dtype=torch.bool)
        return True
