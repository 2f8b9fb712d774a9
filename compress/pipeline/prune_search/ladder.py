"""The candidates ``--prune auto`` tries on a transformer, fitted to its depth: a ladder of
independent candidates for successive halving, or a chain of steps for the gradual descent.

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


def chain(layers: int) -> tuple[str, ...]:
    """Steps for ``descend`` on a transformer of ``layers`` layers, each pruning the student the
    ones before it left: a third of the layers, then down to half the layers, then half the FFN,
    then a third of the heads ranked globally. Layers go first because a removed layer saves its
    attention and FFN at every batch size: on MiniLM, three layers removed ran as fast at batch 16
    as two layers plus half the FFN, twice as fast at batch 1, and kept more answers (95.6% against
    94.75% agreement after 20 minutes of distillation each)."""
    steps = []
    first = layers // 3
    if first >= 1:
        steps.append(f"layers={first}")
    if layers // 2 - first >= 1:
        steps.append(f"layers={layers // 2 - first}")
    steps.append("ffn=0.5")
    steps.append("heads=0.33,scope=global")
    return tuple(steps)
