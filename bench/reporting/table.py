"""Report rows and the table printed at the end of a run."""

from __future__ import annotations

from bench.measure.latency import Latency
from bench.measure.retention import headline


def artifact_row(name: str, backend: str, precision: str, file: str | None, size_bytes: int,
                 latency: dict[int, Latency], kept: dict | None) -> dict:
    return {
        "name": name, "backend": backend, "precision": precision, "file": file, "size_bytes": size_bytes,
        "latency": {str(bs): lat.to_json() for bs, lat in latency.items()},
        "retention": kept,
    }


def add_speedups(rows: list[dict]) -> list[str]:
    """Each row's p50 speed-up over the first row (the FP32 baseline), per batch size, measured in
    the same run. A speed-up whose reference or own measurement was too noisy to divide by is
    listed in the row's ``speedup_untrusted`` with the reason; returns every reason, once."""
    reference = rows[0]
    base = reference["latency"]
    problems: dict[str, None] = {}
    for row in rows:
        row["speedup_vs_" + reference["name"]] = {bs: round(base[bs]["p50_ms"] / lat["p50_ms"], 3) for bs, lat in row["latency"].items() if bs in base}
        untrusted = {}
        for bs in row["speedup_vs_" + reference["name"]]:
            reasons = untrusted_reasons([(r["name"], r["latency"][bs]) for r in (reference, row)], bs)
            if reasons:
                untrusted[bs] = "; ".join(reasons)
                problems.update(dict.fromkeys(reasons))
        row["speedup_untrusted"] = untrusted
    return list(problems)


def untrusted_reasons(timings: list[tuple[str, dict]], bs: str) -> list[str]:
    """Why a ratio of these timings (label, latency JSON) at batch ``bs`` cannot be trusted: one reason per noisy timing."""
    return list(dict.fromkeys(f"{label} b{bs}: {lat['untrusted']}" for label, lat in timings if lat.get("untrusted")))


def noisy_note(reasons: list[str]) -> list[str]:
    """The line under a table that explains the ? marks, if any."""
    return [f"? not to be trusted, the timing was too noisy: {'; '.join(reasons)}. {NOISY_FIX}"] if reasons else []


def environment_line(environment: dict) -> str:
    """Which machine the times in a table belong to: the same recipe is 2x on one CPU and 5x on another."""
    gpu = environment.get("gpu")
    where = f"{gpu['name']} (GPU)" if gpu else environment.get("cpu", {}).get("model", "unknown CPU")
    isa = environment.get("isa") or "isa not recorded"
    threads = environment.get("threads")
    return f"timed on {where}, CPU kernels: {isa}, {threads} thread{'' if threads == 1 else 's'}"


def format_table(rows: list[dict], environment: dict | None = None) -> str:
    batch_sizes = list(rows[0]["latency"])
    base_key = "speedup_vs_" + rows[0]["name"]
    header = ["artifact", "size MB"] + [f"b{bs} p50/p90 ms" for bs in batch_sizes] + [f"speed-up b{bs}" for bs in batch_sizes] + ["retention vs original"]
    lines = [header]
    for row in rows:
        cells = [row["name"], f"{row['size_bytes'] / 1e6:.1f}"]
        cells += [f"{row['latency'][bs]['p50_ms']:.1f} / {row['latency'][bs]['p90_ms']:.1f}" for bs in batch_sizes]
        cells += [f"{row.get(base_key, {}).get(bs, float('nan')):.2f}x" + ("?" if bs in row.get("speedup_untrusted", {}) else "")
                  for bs in batch_sizes]
        cells.append(headline(row["retention"]) if row["retention"] else "reference")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rule = "  ".join("-" * w for w in widths)
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    reasons = list(dict.fromkeys(r for row in rows for r in row.get("speedup_untrusted", {}).values()))
    top = [environment_line(environment)] if environment else []
    return "\n".join([*top, text[0], rule, *text[1:], *noisy_note(reasons)])


NOISY_FIX = "Re-run with nothing else busy on this machine."
