"""More distillation text from little: altered copies of each tokenized sample (TinyBERT's idea).

A student distilled on a few hundred sentences learns those sentences. TinyBERT augments the task
data about twentyfold by replacing words; here each copy has a share of its real tokens replaced,
half by the mask token (the teacher still answers for a sentence with a gap) and half by a token
drawn from the data itself (in-domain words, no vocabulary model needed). Special tokens and
padding are never touched. The teacher labels every copy, so nothing here needs labels, and the
copies are made once from the seed: the same data every epoch, which the teacher cache keeps.
"""

from __future__ import annotations

import numpy as np

# Fewer samples than this and the data is augmented by default, up to about this many
AUGMENT_BELOW = 2000
MAX_COPIES = 20


def default_copies(samples: int) -> int:
    """Copies per sample that bring ``samples`` up to about AUGMENT_BELOW (none at or above it)."""
    if samples >= AUGMENT_BELOW:
        return 0
    return min(MAX_COPIES, -(-AUGMENT_BELOW // samples) - 1)


def augment_tokens(arrays: dict[str, np.ndarray], copies: int, *, mask_id: int | None, special_ids: set[int],
                   rate: float = 0.15, seed: int = 0) -> dict[str, np.ndarray]:
    """``arrays`` (``input_ids`` and the other inputs, one row per sample) followed by ``copies``
    altered copies of every row; only ``input_ids`` changes, the other inputs are repeated."""
    if copies <= 0:
        return arrays
    ids = arrays["input_ids"]
    mask = arrays.get("attention_mask")
    real = np.ones(ids.shape, bool) if mask is None else mask.astype(bool)
    real &= ~np.isin(ids, list(special_ids))
    pool = ids[real]  # substitutes come from the data's own tokens
    if pool.size == 0:
        return arrays
    rng = np.random.default_rng([seed, copies])
    altered = []
    for _ in range(copies):
        new = ids.copy()
        change = real & (rng.random(ids.shape) < rate)
        to_mask = change & (rng.random(ids.shape) < 0.5) if mask_id is not None else np.zeros_like(change)
        substitute = change & ~to_mask
        new[to_mask] = mask_id if mask_id is not None else 0
        new[substitute] = rng.choice(pool, size=int(substitute.sum()))
        altered.append(new)
    out = {name: np.concatenate([value] * (copies + 1)) for name, value in arrays.items() if name != "input_ids"}
    out["input_ids"] = np.concatenate([ids, *altered])
    return {name: out[name] for name in arrays}
