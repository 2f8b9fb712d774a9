"""`bench compare`: did CURRENT regress against BASELINE? A readable diff and a verdict.

Absolute times do not compare across machines, so each artifact's speed is compared as its
ratio to the reference (FP32 PyTorch) measured in the same run, wherever both results carry
it. Absolute p50s are compared only when the two environments match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.measure.environment import fingerprint, run_isa
from bench.measure.retention import primary_retention
from compress.core.errors import BenchError


@dataclass(frozen=True)
class Check:
    job: str
    artifact: str
    backend: str
    batch: str  # "" for retention
    what: str  # "ratio to reference", "p50 ms", or the retention metric
    baseline: float | None
    current: float | None
    change: float | None  # the regression: > 0 is worse
    status: str  # OK | REGRESSED | skipped: reason


@dataclass
class Comparison:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Check]:
        return [c for c in self.checks if c.status == "REGRESSED"]

    @property
    def failed(self) -> bool:
        return bool(self.regressions)


def parse_percent(text: str) -> float:
    """'10%' -> 0.1; '0.1' -> 0.1."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BenchError(f"{text!r} is not a percentage; write it like 10% or 0.1") from None
    if value < 0:
        raise BenchError(f"{text!r} is negative; a regression threshold is 0% or more")
    return value


def compare(current: dict, baseline: dict, max_latency_regression: float = 0.10, max_retention_drop: float = 0.002,
            roles: tuple[str, ...] | None = None) -> Comparison:
    """``roles``: gate only results of these roles (e.g. ("ours",)); the others are listed as not gated."""
    if max_latency_regression < 0 or max_retention_drop < 0:
        raise BenchError("regression thresholds must be 0 or more")
    out = Comparison()
    pairs = _pair_runs(current["runs"], baseline["runs"], out)
    shared = 0
    for cur_run, base_run in pairs:
        same_env = fingerprint(cur_run["environment"]) == fingerprint(base_run["environment"])
        if not same_env:
            out.notes.append(f"{cur_run['target']}: environments differ, so absolute times are not compared")
        cur_isa, base_isa = run_isa(cur_run["environment"]), run_isa(base_run["environment"])
        other_class = cur_isa != base_isa and not cur_run["environment"].get("gpu")
        if other_class:  # VNNI is 2-3x what AVX2 gives the same file: neither side's ratio says anything of the other's
            out.notes.append(f"{cur_run['target']}: measured on {cur_isa} CPU kernels, the baseline on {base_isa}; "
                             f"speeds are not compared across CPU classes (use a baseline made on a {cur_isa} CPU)")
        base_jobs = {j["job"]: j for j in base_run["jobs"]}
        for job in cur_run["jobs"]:
            base_job = base_jobs.get(job["job"])
            if base_job is None:
                out.notes.append(f"job {job['job']!r} is not in the baseline")
                continue
            base_results = {(r["artifact"], r["backend"]): r for r in base_job["results"]}
            for result in job["results"]:
                base = base_results.get((result["artifact"], result["backend"]))
                if base is None:
                    out.notes.append(f"{job['job']}: {result['artifact']} on {result['backend']} is new (not in the baseline)")
                    continue
                shared += 1
                if roles is not None and result.get("role") not in roles:
                    out.checks.append(Check(job["job"], result["artifact"], result["backend"], "", "all", None, None, None,
                                            f"skipped: role {result.get('role')} is not gated here"))
                    continue
                if other_class:
                    out.checks.append(Check(job["job"], result["artifact"], result["backend"], "", "speed", None, None, None,
                                            f"skipped: measured on {cur_isa}, baseline on {base_isa}"))
                else:
                    out.checks.extend(_latency_checks(job["job"], result, base, same_env, max_latency_regression))
                out.checks.extend(_retention_checks(job["job"], result, base, max_retention_drop))
    if not shared:
        raise BenchError(f"the two results share no artifact; compare results of the same models "
                         f"(current has: {_listing(current)}; baseline has: {_listing(baseline)})")
    return out


def _pair_runs(current: list[dict], baseline: list[dict], out: Comparison) -> list[tuple[dict, dict]]:
    base_by_target = {r["target"]: r for r in baseline}
    pairs = [(r, base_by_target[r["target"]]) for r in current if r["target"] in base_by_target]
    if pairs:
        return pairs
    if len(current) == 1 and len(baseline) == 1:
        out.notes.append(f"targets differ ({current[0]['target']} vs {baseline[0]['target']}): ratios only")
        return [(current[0], baseline[0])]
    raise BenchError(f"no run can be paired: current targets {[r['target'] for r in current]}, "
                     f"baseline targets {[r['target'] for r in baseline]}; compare results of the same target")


def _latency_checks(job: str, cur: dict, base: dict, same_env: bool, limit: float) -> list[Check]:
    checks = []
    for bs in (b for b in cur["latency"] if b in base["latency"]):
        cur_ratio, base_ratio = cur.get("ratio_to_reference", {}).get(bs), base.get("ratio_to_reference", {}).get(bs)
        if cur.get("role") != "reference" and cur_ratio and base_ratio:
            change = base_ratio / cur_ratio - 1  # a speed-up: falling is slower
            checks.append(Check(job, cur["artifact"], cur["backend"], bs, "ratio to reference", base_ratio, cur_ratio, change,
                                "REGRESSED" if change > limit + 1e-9 else "OK"))
        elif same_env:
            before, now = base["latency"][bs]["p50_ms"], cur["latency"][bs]["p50_ms"]
            change = now / before - 1
            checks.append(Check(job, cur["artifact"], cur["backend"], bs, "p50 ms", before, now, change,
                                "REGRESSED" if change > limit + 1e-9 else "OK"))
        else:
            why = ("reference row: ratios are relative to it; environments differ" if cur.get("role") == "reference"
                   else "environments differ and no ratio to the reference")
            checks.append(Check(job, cur["artifact"], cur["backend"], bs, "p50 ms", None, None, None, f"skipped: {why}"))
    return checks


def _retention_checks(job: str, cur: dict, base: dict, limit: float) -> list[Check]:
    cur_kept, base_kept = cur.get("retention"), base.get("retention")
    if not cur_kept or not base_kept or cur_kept.get("metric") != base_kept.get("metric"):
        return []
    name, now = primary_retention(cur_kept)
    _, before = primary_retention(base_kept)
    drop = before - now
    return [Check(job, cur["artifact"], cur["backend"], "", name, before, now, drop, "REGRESSED" if drop > limit + 1e-9 else "OK")]


def format_comparison(result: Comparison) -> str:
    header = ["job", "artifact", "backend", "batch", "compared", "baseline", "current", "change", "verdict"]
    rows = [header]
    for c in result.checks:
        rows.append([c.job, c.artifact, c.backend, c.batch or "-", c.what, _num(c.baseline), _num(c.current),
                     "-" if c.change is None else f"{100 * c.change:+.1f}%" if c.batch else f"{-c.change:+.4f}", c.status])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"note: {n}" for n in result.notes]
    compared = [c for c in result.checks if not c.status.startswith("skipped")]
    if result.failed:
        lines.append(f"{len(result.regressions)} regression(s) beyond the thresholds, of {len(compared)} checks")
    else:
        lines.append(f"no regression: {len(compared)} checks passed")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _listing(data: dict) -> str:
    names = sorted({f"{j['job']}/{r['artifact']}@{r['backend']}" for run in data["runs"] for j in run["jobs"] for r in j["results"]})
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "") or "nothing"
