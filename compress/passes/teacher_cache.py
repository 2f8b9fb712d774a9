"""The teacher's outputs and hidden states, kept per sample once computed.

The teacher is frozen and runs in eval mode, so its answer for a sample is the same every epoch.
Computing it once and reading it back afterwards spares a teacher forward pass on every step of
every epoch after the first: with a student a third of the teacher's depth (``--prune layers=2``
of MiniLM's 6) that pass is about half of a step.

Targets are kept in float16 (hidden states) to keep the memory small, and a target is always used
as it was stored, even the first time it is computed: an uninterrupted run and a resumed one
(whose cache starts empty) then train on exactly the same numbers.
"""

from __future__ import annotations

import torch

# A cache larger than this is not built (the report says so): the teacher then runs every step.
MAX_CACHE_BYTES = 6 * 2 ** 30


class TeacherCache:
    """Per-sample storage for a list of teacher tensors (the output first, then each hidden state).

    A tensor whose first two axes are [batch, sequence] (sequence as the batch was trimmed to) is
    stored padded to the full ``sequence`` length of the data and cut back on reading."""

    def __init__(self, samples: int, sequence: int | None):
        self.samples, self.sequence = samples, sequence
        self.store: list[torch.Tensor] | None = None
        self.per_token: list[bool] = []
        self.filled = torch.zeros(samples, dtype=torch.bool)
        self.disabled_note: str | None = None
        self.hits = self.misses = 0

    def get(self, index: torch.Tensor, length: int | None) -> list[torch.Tensor] | None:
        """The stored tensors for the samples ``index`` (trimmed to ``length`` positions), or None
        when any of them was never stored."""
        if self.store is None or not bool(self.filled[index].all()):
            self.misses += 1
            return None
        self.hits += 1
        return [self._read(slot, per_token, index, length) for slot, per_token in zip(self.store, self.per_token)]

    def put(self, index: torch.Tensor, tensors: list[torch.Tensor], length: int | None) -> list[torch.Tensor]:
        """Store the samples' tensors and return them as stored (rounded to the cache's dtypes), so
        a target is the same number whether it was just computed or read back."""
        if self.disabled_note is not None:
            return tensors
        if self.store is None and not self._allocate(tensors, length):
            return tensors
        out = []
        for slot, per_token, tensor in zip(self.store, self.per_token, tensors):
            value = tensor.detach().to(slot.dtype).cpu()
            if per_token:
                slot[index, :value.shape[1]] = value
                slot[index, value.shape[1]:] = 0
            else:
                slot[index] = value
            out.append(value.to(device=tensor.device, dtype=tensor.dtype))
        self.filled[index] = True
        return out

    def report(self) -> dict:
        if self.disabled_note is not None:
            return {"used": False, "note": self.disabled_note}
        size = sum(s.numel() * s.element_size() for s in self.store) if self.store is not None else 0
        return {"used": True, "megabytes": round(size / 2 ** 20, 1), "steps_from_cache": self.hits, "steps_computing_teacher": self.misses,
                "hidden_dtype": "float16"}

    def _read(self, slot: torch.Tensor, per_token: bool, index: torch.Tensor, length: int | None) -> torch.Tensor:
        value = slot[index]
        return value[:, :length] if per_token and length is not None else value

    def _allocate(self, tensors: list[torch.Tensor], length: int | None) -> bool:
        self.per_token = [length is not None and self.sequence is not None and t.dim() >= 3 and t.shape[1] == length for t in tensors]
        shapes = [(self.samples, self.sequence, *t.shape[2:]) if per_token else (self.samples, *t.shape[1:])
                  for t, per_token in zip(tensors, self.per_token)]
        # the output (first) keeps float32: logits are few and their softmax is sensitive; hidden states go to float16
        dtypes = [torch.float32 if i == 0 or not t.is_floating_point() else torch.float16 for i, t in enumerate(tensors)]
        size = sum(torch.Size(s).numel() * torch.empty((), dtype=d).element_size() for s, d in zip(shapes, dtypes))
        if size > MAX_CACHE_BYTES:
            self.disabled_note = (f"not cached: the teacher's outputs for {self.samples} samples need {size / 2 ** 30:.1f} GiB, over "
                                  f"{MAX_CACHE_BYTES / 2 ** 30:.0f} GiB; the teacher runs on every step")
            return False
        self.store = [torch.zeros(s, dtype=d) for s, d in zip(shapes, dtypes)]
        return True
