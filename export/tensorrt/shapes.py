"""``--shapes batch=1:8:32,seq=16:128:512``: the TensorRT optimization profile of each input.

Names are the input spec's named axes (``seq`` also means ``sequence``). Fixed axes stay
fixed. A named axis the text leaves out gets a default: batch 1:8:32, sequence 1:128:512,
any other 1:D:D with D its size in the example input.
"""

from __future__ import annotations

from compress.core.errors import InputError
from compress.core.spec import TensorSpec

ALIASES = {"seq": "sequence", "seq_len": "sequence"}
DEFAULTS = {"batch": (1, 8, 32), "sequence": (1, 128, 512)}
EXAMPLE = "batch=1:8:32,sequence=16:128:512"
Profile = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def parse_shapes(text: str | None, specs: tuple[TensorSpec, ...], example_sizes: dict[str, int] | None = None) -> dict[str, Profile]:
    """(min, opt, max) shape per input."""
    axes = sorted({d for s in specs for d in s.shape if isinstance(d, str)})
    ranges = _parse(text, axes) if text else {}
    profiles = {}
    for spec in specs:
        lo, opt, hi = [], [], []
        for dim in spec.shape:
            if isinstance(dim, int):
                lo.append(dim), opt.append(dim), hi.append(dim)
                continue
            r = ranges.get(dim) or DEFAULTS.get(dim) or (1, (example_sizes or {}).get(dim, 1), (example_sizes or {}).get(dim, 1))
            lo.append(r[0]), opt.append(r[1]), hi.append(r[2])
        profiles[spec.name] = (tuple(lo), tuple(opt), tuple(hi))
    return profiles


def _parse(text: str, axes: list[str]) -> dict[str, tuple[int, int, int]]:
    out = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, values = item.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not sep or name not in axes:
            raise InputError(f"--shapes {item!r}: {'unknown axis ' + repr(name) if sep else 'expected NAME=MIN:OPT:MAX'}; "
                             f"the model's named axes are {', '.join(axes) or 'none'} (e.g. {EXAMPLE})")
        try:
            lo, opt, hi = (int(v) for v in values.split(":"))
        except ValueError:
            raise InputError(f"--shapes {item!r}: give three integers MIN:OPT:MAX, e.g. {EXAMPLE}") from None
        if not 1 <= lo <= opt <= hi:
            raise InputError(f"--shapes {item!r}: needs 1 <= MIN <= OPT <= MAX")
        out[name] = (lo, opt, hi)
    return out
