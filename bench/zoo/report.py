"""The zoo's Markdown table and plot."""

from __future__ import annotations

from pathlib import Path

from bench.zoo.summary import OURS


def markdown(data: dict) -> str:
    env = data["environment"]
    lines = ["# Model zoo: INT8 on real models, scored by each task's metric", "",
             f"- CPU: {env['cpu']} ({env['isa']}), {data['threads']} threads; {env['versions']}",
             f"- scale: {data['scale']}; test samples per model: {data['test_samples']}; batch sizes {data['batch_sizes']}",
             "- speed: ONNX Runtime FP32 p50 over each row's p50, measured side by side in one run ('?': the timing was noisy)",
             "- drop: the task metric's loss against the original FP32 model on the test file, which `compress` never saw "
             "(points, or relative for cosine)", "",
             "## Summary", "",
             "| model | metric | FP32 | ours (default command) | best ORT INT8 peer | ours vs ORT FP32 | peer vs ORT FP32 | size FP32 → ours MB | exit | guard | targets |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in data["models"]:
        lines.append(_summary_line(model))
    for model in data["models"]:
        lines += ["", f"## {model['model']}", "", f"- {model['family']}; from {model['origin']}", f"- data: {model['data']}",
                  f"- command: `{model['command']}`"]
        if "error" in model:
            lines.append(f"- **failed**: {model['error']}")
            continue
        compress = model["compress"]
        lines.append(f"- compress: exit {compress['exit_code']} in {compress['seconds']:.0f} s; INT8 mode {compress.get('int8_mode')}; "
                     f"guard: {_guard_text(compress)}")
        if compress.get("float_layers"):
            lines.append(f"- kept in float: {', '.join(compress['float_layers'])}")
        for warning in compress.get("warnings") or []:
            lines.append(f"- warning: {warning}")
        checks = model["verdict"].get("checks", {})
        lines.append("- targets: " + ", ".join(f"{k} {'✓' if v is True else '✗' if v is False else v}" for k, v in checks.items()))
        bs = data["batch_sizes"]
        lines += ["", "| artifact | backend | precision | size MB | " + " | ".join(f"b{b} p50 ms | b{b} vs ORT FP32" for b in bs)
                  + " | metric | drop |", "|---|---|---|---|" + "---|---|" * len(bs) + "---|---|"]
        for row in model["rows"]:
            cells = []
            for b in bs:
                p50, ratio = row["p50_ms"].get(str(b)), row["vs_ort_fp32"].get(str(b))
                mark = "?" if str(b) in row["untrusted"] else ""
                cells += [f"{p50:.2f}" if p50 is not None else "", f"{ratio:.2f}x{mark}" if ratio is not None else ""]
            lines.append(f"| {row['artifact']} | {row['backend']} | {row['precision']} | {row['size_mb']:.2f} | {' | '.join(cells)} | "
                         f"{_value(row['value'], model['metric'])} | {_drop(row['drop'], row['drop_unit'])} |")
    return "\n".join(lines) + "\n"


def _summary_line(model: dict) -> str:
    if "error" in model:
        return f"| {model['model']} | {model['metric']} | failed: {model['error']} |" + " |" * 8
    ours = next((r for r in model["rows"] if r["artifact"] == OURS and r["backend"] == "ort-cpu"), None)
    if ours is None:
        return f"| {model['model']} | no INT8 file |" + " |" * 9
    fp32 = model["rows"][0]  # the reference, measured first
    peers = [r for r in model["rows"] if r["artifact"].startswith("peer:ort-quantize")]
    peer = min(peers, key=lambda r: r["drop"]) if peers else None

    def speed(row):
        return ", ".join(f"b{b} {v:.2f}x" for b, v in row["vs_ort_fp32"].items()) if row else "-"

    def scored(row):
        return f"{_value(row['value'], model['metric'])} ({_drop(row['drop'], row['drop_unit'])})"

    verdict = model["verdict"]
    targets = "met" if verdict.get("met") else "missed: " + ", ".join(k for k, v in verdict.get("checks", {}).items() if v is False)
    best_peer = f"{peer['artifact'].removeprefix('peer:')} {scored(peer)}" if peer else "-"
    return (f"| {model['model']} | {model['metric']} | {_value(fp32['value'], model['metric'])} | {scored(ours)} | {best_peer} | "
            f"{speed(ours)} | {speed(peer)} | {fp32['size_mb']:.1f} → {ours['size_mb']:.1f} | {model['compress']['exit_code']} | "
            f"{_guard_text(model['compress'], short=True)} | {targets} |")


def _guard_text(compress: dict, short: bool = False) -> str:
    guard = compress.get("guard") or {}
    if not guard:
        return "not run"
    unit = guard.get("drop_unit")
    first = _drop(guard.get("default_validation_drop", 0), unit)
    if not guard.get("escalated"):
        return f"default met ({first} on validation)"
    chosen = f"{guard.get('chosen')} ({_drop(guard.get('chosen_validation_drop', 0), unit)})"
    return f"default {first}; searched {len(compress.get('searched', []))}, kept {chosen}" if not short else f"escalated: {chosen}"


def _value(value, metric: str) -> str:
    return "-" if value is None else f"{value:.4f}" if metric == "cosine" else f"{100 * value:.1f}%"


def _drop(drop, unit) -> str:
    if drop is None:
        return "-"
    return f"{drop:+.2%} rel" if unit == "relative" else f"{100 * drop:+.1f} pt"


def plot(data: dict, path: Path) -> Path:
    """Metric drop against speed-up over ONNX Runtime FP32 at batch 1, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in data["models"] if "rows" in m]
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(4.2 * max(1, len(models)), 3.8), squeeze=False)
    batch = str(data["batch_sizes"][0])
    for ax, model in zip(axes[0], models):
        for row in model["rows"]:
            if batch not in row["vs_ort_fp32"] or row["drop"] is None:
                continue
            drop = 100 * row["drop"]
            ours = row["artifact"] == OURS
            ax.scatter(row["vs_ort_fp32"][batch], drop, s=80 if ours else 40, marker="*" if ours else "o",
                       color="tab:red" if ours else "tab:blue" if row["artifact"].startswith("peer:") else "gray")
            ax.annotate(row["artifact"].removeprefix("peer:") + ("" if row["backend"] == "ort-cpu" else f" ({row['backend']})"),
                        (row["vs_ort_fp32"][batch], drop), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.axhline(100 * model["verdict"].get("tolerance", 0.01), color="tab:red", lw=0.8, ls="--")
        ax.set_title(f"{model['model']} ({model['metric'].split(':')[-1]})", fontsize=8)
        ax.set_xlabel(f"speed vs ORT FP32, batch {batch}", fontsize=7)
        ax.set_ylabel("drop (points or % relative)", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{data['environment']['cpu']} ({data['environment']['isa']})", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
