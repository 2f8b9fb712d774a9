"""The candidates ``--prune auto`` tries on a transformer, fitted to its depth.

Whole layers removed (DistilBERT, TinyBERT) buy the most speed per point lost on small encoders;
half the FFN on top of that buys more; heads and FFN ranked globally are the mild end. Each
candidate is a ``--prune`` spec, so a user can replay the one chosen.
"""

from __future__ import annotations


def ladder(layers: int) -> tuple[str, ...]:
    """Specs for a transformer of ``layers`` layers, roughly most compressed first."""
    removals = sorted({n for n in (layers // 2, layers // 3) if 1 <= n < layers}, reverse=True)
    specs = []
    for n in removals:
        specs += [f"layers={n},ffn=0.5", f"layers={n}"]
    specs += ["heads=0.33,ffn=0.5,scope=global", "ffn=0.5,scope=global"]
    return tuple(specs)
