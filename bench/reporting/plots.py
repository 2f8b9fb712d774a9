"""PNG plots of a results file (bench/schema.py): latency against retention, and latency by backend and batch.

Figures are drawn on a bare `Figure` with the Agg canvas, so a caller's pyplot state and backend stay untouched.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from compress.core.atomic import atomic_path

DPI = 120
LOG_SPREAD = 10.0  # switch an axis to log once its largest value is this many times its smallest
_TASK_METRIC = {"embedding": "mean cosine", "classification": "top-1 agreement"}
_REL_ERR = "minus mean relative error"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats (lower x is better, higher y is better), sorted by x.

    A point equal to an earlier one on both axes is kept once: the first.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:  # strictly better than every point at least as fast, so nothing dominates it
            front.append(i)
            best = points[i][1]
    return front


def write_plots(data: dict, out_dir: Path) -> list[Path]:
    """For each run and job with measured latency, write two PNGs into out_dir; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n, run in enumerate(data["runs"], 1):
        target = run["target"]
        for job in run["jobs"]:
            results = [r for r in job.get("results", []) if r.get("latency")]
            if not results:
                continue
            stem = f"{re.sub(r'[^A-Za-z0-9._-]+', '-', job['job'])}__{_slug(target)}"
            if any(p.name.startswith(stem + "__") for p in written):  # a merged file may hold two runs on one target
                stem += f"-run{n}"
            for kind, draw in (("latency_vs_retention", _latency_vs_retention), ("latency_by_backend", _latency_by_backend)):
                path = out_dir / f"{stem}__{kind}.png"
                _save(draw(job, results, target), path)
                written.append(path)
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _score(retention: dict | None) -> tuple[str, float] | None:
    """(metric name, value) where higher is better; None when there is nothing to score."""
    if not retention:
        return None
    metric = retention.get("metric")
    if metric == "cosine":
        return "mean cosine", retention["mean_cosine"]
    if metric == "top1_agreement":
        if "accuracy" in retention:
            return "accuracy", retention["accuracy"]
        return "top-1 agreement", retention["top1_agreement"]
    if metric == "relative_error":
        return _REL_ERR, -retention["mean_relative_error"]  # negated so that up is better, like the others
    return None


def _is_reference(job: dict, result: dict) -> bool:
    if result.get("role") == "reference":  # scored or not (with labels the reference has its own accuracy)
        return True
    return result.get("retention") is None and result.get("role") is None and result["artifact"] == job.get("reference")


def _job_scores(job: dict, results: list[dict]) -> tuple[str, list[float | None]]:
    """The metric name for the axis and one score per result; the reference gets the perfect score."""
    scored = [_score(r.get("retention")) for r in results]
    names = list(dict.fromkeys(s[0] for s in scored if s)) or [_TASK_METRIC.get(job.get("task"), _REL_ERR)]
    perfect = 0.0 if names == [_REL_ERR] else 1.0
    if names == ["accuracy"]:  # the reference's own accuracy is recorded next to each candidate's
        perfect = next((r["retention"]["reference_accuracy"] for r in results if "reference_accuracy" in (r.get("retention") or {})), 1.0)
    values = [s[1] if s else (perfect if _is_reference(job, r) else None) for s, r in zip(scored, results)]
    return " / ".join(names), values


def _label(result: dict) -> str:
    """"artifact · backend", wrapped so that one long name cannot squeeze the axes."""
    return textwrap.fill(f"{result['artifact']} · {result['backend']}", 40, break_on_hyphens=True)


def _maybe_log(ax, values: list[float], axis: str) -> None:
    positive = [v for v in values if v > 0]
    if positive and max(positive) > LOG_SPREAD * min(positive):
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        # plain numbers at 1-2-5 steps: the default labels minor ticks as overlapping "3x10^1" on short ranges
        scale_axis = ax.xaxis if axis == "x" else ax.yaxis
        # over more than ~2 decades 1-2-5 labels collide: label the decades only
        decades = max(positive) / min(positive) > 300
        scale_axis.set_major_locator(LogLocator(subs=(1.0,) if decades else (1.0, 2.0, 5.0)))
        scale_axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        scale_axis.set_minor_formatter(NullFormatter())


def _latency_vs_retention(job: dict, results: list[dict], target: str) -> Figure:
    """One point per scored result at the largest batch every result measured; the Pareto front as a step line."""
    common = set.intersection(*(set(r["latency"]) for r in results))
    batch = max(common or {k for r in results for k in r["latency"]}, key=int)  # no common batch: the largest anywhere
    metric, scores = _job_scores(job, results)
    rows = [(r, r["latency"][batch]["p50_ms"], s) for r, s in zip(results, scores) if s is not None and batch in r["latency"]]
    fig = Figure(figsize=(8.5, 5.5), dpi=DPI)
    ax = fig.add_subplot()
    ax.set_title(f"{job['job']} on {target}\nlatency vs retention at batch {batch}", fontsize=11)
    ax.set_xlabel(f"p50 latency at batch {batch} (ms, lower is better)")
    ax.set_ylabel(f"retention: {metric} (higher is better)")
    ax.grid(True, alpha=0.3, which="both")
    if not rows:
        ax.text(0.5, 0.5, "no result has a retention score", ha="center", va="center", transform=ax.transAxes)
        return fig
    xs, ys = [x for _, x, _ in rows], [y for _, _, y in rows]
    _maybe_log(ax, xs, "x")
    front = pareto_front(list(zip(xs, ys)))
    ax.scatter(xs, ys, s=36, color="tab:blue", zorder=3, label="result")
    ax.step([xs[i] for i in front], [ys[i] for i in front], where="post", color="tab:orange", lw=1.5, zorder=2)
    ax.scatter([xs[i] for i in front], [ys[i] for i in front], s=110, facecolors="none", edgecolors="tab:orange",
               lw=2, zorder=4, label="Pareto front")
    refs = [i for i, (r, _, _) in enumerate(rows) if _is_reference(job, r)]
    if refs:
        ax.scatter([xs[i] for i in refs], [ys[i] for i in refs], marker="*", s=220, color="tab:red", zorder=5, label="reference")
    _pad_limits(ax, xs, ys)
    texts = [ax.annotate(_label(r) + (" (reference)" if i in refs else ""), (x, y), xytext=(10, 0), textcoords="offset points",
                         fontsize=8, va="center", arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
             for i, (r, x, y) in enumerate(rows)]
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: "best" avoids points, not labels
    _spread_labels(fig, texts)
    return fig


def _pad_limits(ax, xs: list[float], ys: list[float]) -> None:
    """Room on the right for the labels, and a y range that is never zero-height."""
    lo, hi = min(xs), max(xs)
    if ax.get_xscale() == "log":
        ax.set_xlim(lo / 1.5, hi * 6)
    else:
        span = (hi - lo) or abs(hi) * 0.3 or 1.0
        ax.set_xlim(lo - 0.1 * span, hi + 0.9 * span)
    span = (max(ys) - min(ys)) or abs(max(ys)) * 0.01 or 0.01
    ax.set_ylim(min(ys) - 0.35 * span, max(ys) + 0.12 * span)  # labels of crowded points move down: room for them


def _spread_labels(fig: Figure, texts: list) -> None:
    """Keep labels inside the axes and move them down, one at a time, until none overlaps one placed before it."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.tight_layout()  # final axes size first, or later layout would move the points under the labels
    right = fig.axes[0].get_window_extent(renderer).x1
    placed = []
    for text in sorted(texts, key=lambda t: -t.xy[1]):
        if Text.get_window_extent(text, renderer).x1 > right:  # would run past the frame: put it left of its point
            text.set_horizontalalignment("right")
            text.xyann = (-text.xyann[0], text.xyann[1])
        for _ in range(len(texts) * 3):
            box = Text.get_window_extent(text, renderer).expanded(1.0, 1.15)  # the text alone: its leader line grows as it moves
            if not any(box.overlaps(other) for other in placed):
                break
            dx, dy = text.xyann
            text.xyann = (dx, dy - box.height * 72 / fig.dpi)
        placed.append(Text.get_window_extent(text, renderer))


def _latency_by_backend(job: dict, results: list[dict], target: str) -> Figure:
    """Grouped horizontal bars: one group per result, one bar per batch size; p50 with a whisker to p90."""
    batches = sorted({k for r in results for k in r["latency"]}, key=int)
    height = 0.8 / len(batches)
    fig = Figure(figsize=(9, 1.6 + 0.32 * len(results) * len(batches) + 0.15 * len(results)), dpi=DPI)
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:cyan", "tab:olive"]
    p50s, p90s = [], []
    for j, batch in enumerate(batches):
        idx = [i for i, r in enumerate(results) if batch in r["latency"]]
        lat = [results[i]["latency"][batch] for i in idx]
        p50, p90 = [x["p50_ms"] for x in lat], [max(x["p90_ms"], x["p50_ms"]) for x in lat]
        p50s += p50
        p90s += p90
        ys = [i + (j - (len(batches) - 1) / 2) * height for i in idx]
        ax.barh(ys, p50, height=height * 0.9, xerr=[[0] * len(p50), [b - a for a, b in zip(p50, p90)]],
                color=colors[j % len(colors)], capsize=2, error_kw={"lw": 0.8}, label=f"batch {batch}")
        for i, y, hi, low in zip(idx, ys, p90, p50):
            ratio = (results[i].get("ratio_to_reference") or {}).get(batch)
            text = (f"{low:.0f} ms" if low >= 100 else f"{low:.3g} ms") + (f"  ·  {ratio:.2f}x" if ratio is not None else "")
            ax.annotate(text, (hi, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7.5)
    _maybe_log(ax, p50s, "x")
    ax.set_xlim(min(p50s) / 2 if ax.get_xscale() == "log" else 0, max(p90s) * 1.05)
    ax.set_yticks(range(len(results)), [_label(r) + ("\n(reference)" if _is_reference(job, r) else "") for r in results], fontsize=8.5)
    ax.invert_yaxis()  # results in file order, top to bottom
    ax.set_xlabel("p50 latency per batch (ms); whisker to p90; label: p50 and speed-up vs reference")
    ax.set_title(f"{job['job']} on {target}\nlatency by backend and batch size", fontsize=11)
    ax.grid(True, axis="x", alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside, so it never hides a bar
    _widen_for_labels(fig, ax)
    return fig


def _widen_for_labels(fig: Figure, ax) -> None:
    """Stretch the x-axis until every bar label ends inside the frame (their width depends on the font, not the data)."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.tight_layout()
    for _ in range(30):
        if max(t.get_window_extent(renderer).x1 for t in ax.texts) < ax.get_window_extent(renderer).x1 - 4:
            break
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi * (1.4 if ax.get_xscale() == "log" else 1.08))


def _save(fig: Figure, path: Path) -> None:
    """Written atomically, so a reader never sees half a PNG."""
    FigureCanvasAgg(fig)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
