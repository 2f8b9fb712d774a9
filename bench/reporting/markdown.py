"""The Markdown report of a results file: one table per job, or one per job across targets when merged."""

from __future__ import annotations

from bench.measure.retention import headline
from bench.reporting.table import noisy_note


def markdown_report(data: dict) -> str:
    runs = data["runs"]
    if len(runs) == 1:
        return _single_run(runs[0])
    return _merged(runs)


def environment_lines(run: dict) -> list[str]:
    env = run["environment"]
    cpu, gpu, versions = env["cpu"], env.get("gpu"), env.get("versions", {})
    gpu_text = (f"{gpu['name']} (compute capability {gpu['compute_capability']}, driver {gpu.get('driver') or 'unknown'})"
                if gpu else "no GPU")
    libs = ", ".join(f"{k} {versions.get(k) or 'not installed'}" for k in ("torch", "onnxruntime", "tensorrt"))
    return [f"- target: `{run['target']}`",
            f"- CPU: {cpu['model']} ({cpu.get('usable_cores')} usable cores; flags: {' '.join(cpu.get('flags', [])) or 'none listed'})",
            f"- GPU: {gpu_text}", f"- threads: {env['threads']}; {libs}"]


def _single_run(run: dict) -> str:
    out = ["# Benchmark results", "", *environment_lines(run), ""]
    for job in run["jobs"]:
        batches = _batches(job)
        out += [f"## {job['job']} ({job['task']})", "",
                f"Reference: {job['reference']} on {job['reference_backend']}. Held-out: {job['evaluation']}. "
                f"Ratios are the reference's p50 over each row's, measured in this run.", ""]
        header = ["artifact", "backend", "precision", "size MB"]
        header += [f"b{b} p50 / p90 / p99 ms" for b in batches] + [f"b{b} samples/s" for b in batches]
        header += [f"b{b} vs reference" for b in batches] + ["peak RSS MB", "retention"]
        rows = []
        for r in job["results"]:
            lat, ratio = r["latency"], r.get("ratio_to_reference", {})
            cells = [r["artifact"], r["backend"], r["precision"], f"{r['size_bytes'] / 1e6:.2f}"]
            cells += [_lat(lat.get(b)) for b in batches]
            cells += [f"{lat[b]['throughput_per_s']:.1f}" if b in lat else "—" for b in batches]
            cells += [f"{ratio[b]:.2f}x" + ("?" if b in r.get("ratio_untrusted", {}) else "") if b in ratio else "—" for b in batches]
            cells += [f"{r['memory']['peak_rss_bytes'] / 1e6:.0f}", _kept(r)]
            rows.append(cells)
        out += _table(header, rows)
        noisy = list(dict.fromkeys(reason for r in job["results"] for reason in r.get("ratio_untrusted", {}).values()))
        if noisy:
            out += ["", *noisy_note(noisy)]
        if job.get("reference_drift"):
            out += ["", "Reference drift (second timing / first): " + ", ".join(f"b{b} {d:.3f}" for b, d in job["reference_drift"].items())]
        if job.get("skipped"):
            out += ["", "Not measured:"] + [f"- {s['artifact']} on {s['backend']}: {s['reason']}" for s in job["skipped"]]
        out.append("")
    return "\n".join(out)


def _merged(runs: list[dict]) -> str:
    out = ["# Benchmark results across targets", ""]
    for run in runs:
        out += environment_lines(run)
    out.append("")
    jobs = list(dict.fromkeys(j["job"] for run in runs for j in run["jobs"]))
    for name in jobs:
        per_target = {run["target"]: next((j for j in run["jobs"] if j["job"] == name), None) for run in runs}
        present = [j for j in per_target.values() if j]
        batch = max(int(b) for j in present for b in _batches(j))
        keys = list(dict.fromkeys((r["artifact"], r["backend"]) for j in present for r in j["results"]))
        header = ["artifact", "backend"] + [f"{t}: p50 ms b{batch} (vs reference)" for t in per_target] + ["retention"]
        rows = []
        for key in keys:
            cells, kept = list(key), "—"
            for job in per_target.values():
                r = next((r for r in (job or {}).get("results", []) if (r["artifact"], r["backend"]) == key), None)
                lat = r["latency"].get(str(batch)) if r else None
                ratio = r.get("ratio_to_reference", {}).get(str(batch)) if r else None
                cells.append(f"{lat['p50_ms']:.2f} ({ratio:.2f}x)" if lat and ratio else f"{lat['p50_ms']:.2f}" if lat else "—")
                if r and kept == "—":
                    kept = _kept(r)
            rows.append(cells + [kept])
        out += [f"## {name}", ""] + _table(header, rows) + [""]
    return "\n".join(out)


def _batches(job: dict) -> list[str]:
    return sorted({b for r in job["results"] for b in r["latency"]}, key=int)


def _lat(lat: dict | None) -> str:
    return f"{lat['p50_ms']:.2f} / {lat['p90_ms']:.2f} / {lat['p99_ms']:.2f}" if lat else "—"


def _kept(result: dict) -> str:
    if result.get("retention"):
        return headline(result["retention"])
    return "reference" if result.get("role") == "reference" else "—"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
