"""Flag values the commands share: batch sizes, percentages, durations, SmoothQuant strength."""

from __future__ import annotations

from compress.core.errors import ConfigError, InputError


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """'1,16' -> (1, 16), sorted and without repeats."""
    try:
        batch_sizes = tuple(sorted({int(b) for b in text.split(",") if b.strip()}))
    except ValueError:
        batch_sizes = ()
    if not batch_sizes or min(batch_sizes) < 1:
        raise InputError(f"--batch {text!r} must be positive integers separated by commas, like 1,16")
    return batch_sizes


def parse_fraction(text: str) -> float:
    """'0.2%' -> 0.002; '0.002' -> 0.002."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"--max-drop {text!r} must be a percentage like 0.2% or a fraction like 0.002") from None
    if not 0 <= value < 1:
        raise ConfigError(f"--max-drop {text!r} must be between 0% and 100%")
    return value


def parse_duration(text: str) -> float:
    """'90s', '10m', '1h' or plain seconds."""
    raw = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise ConfigError(f"--search-budget {text!r} must be a positive time like 90s, 10m or 1h")
    return value


def parse_alpha(text: str | None) -> float | None:
    """--smoothquant: a strength in [0, 1], or off; 0.85 when not given."""
    if text is None:
        return 0.85
    if text.strip().lower() in ("off", "none", "no"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--smoothquant {text!r} must be a number between 0 and 1 (e.g. 0.85) or off") from None
