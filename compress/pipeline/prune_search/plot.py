"""The pruning search's explored candidates as a picture: latency against the task metric's drop."""

from __future__ import annotations

from pathlib import Path


def plot_front(section: dict, path: Path, metric) -> str | None:
    """Write ``path`` (PNG) and return its name; None where no candidate was scored."""
    points = [c for c in section["candidates"] if c["drop"] is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(points[0]["latency_p50_ms"], key=int)
    scale = 100.0  # points, or percent relative
    fig, ax = plt.subplots(figsize=(7, 4.5))
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["latency_p50_ms"][size])
    ax.plot([p["latency_p50_ms"][size] for p in front], [scale * p["drop"] for p in front], "-", color="tab:blue", alpha=0.5, label="Pareto front")
    for p in points:
        chosen = p["spec"] == section["chosen"]
        ax.scatter(p["latency_p50_ms"][size], scale * p["drop"], s=60 if chosen else 30,
                   color="tab:green" if p["meets_tolerance"] else "tab:red", marker="*" if chosen else "o", zorder=3)
        ax.annotate(p["spec"], (p["latency_p50_ms"][size], scale * p["drop"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.axhline(scale * section["tolerance"], color="grey", linestyle="--", linewidth=1, label="pruning's share of the tolerance")
    unit = "% relative" if metric.relative else "points"
    ax.set_xlabel(f"PyTorch FP32 p50 at batch {size} (ms)")
    ax.set_ylabel(f"{metric.name} drop on validation ({unit})")
    ax.set_title("--prune auto: candidates explored (green: within the tolerance, star: chosen)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
