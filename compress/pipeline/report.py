"""report.json: what a run did and measured, row by row, in the order measured."""

from __future__ import annotations

import json
from pathlib import Path

from bench.measure.environment import capture as capture_environment
from bench.reporting.table import NOISY_FIX, add_speedups
from compress.core.model import Model
from compress.core.progress import Progress
from compress.core.registry import StepConfig
from compress.pipeline.options import RunOptions

REPORT_NAME = "report.json"
REPORT_SCHEMA = "compress.report/1"


def report_header(model: Model, recipe: list[StepConfig], options: RunOptions) -> dict:
    return {
        "schema": REPORT_SCHEMA,
        "model": {"source": str(model.source), "format": model.format, "task": model.task,
                  "inputs": [str(s) for s in model.inputs], "outputs": list(model.output_names), "notes": model.notes},
        "recipe": [c.to_json() for c in recipe],
        "settings": {"threads": options.threads, "sequence_length": options.seq_len, "batch_sizes": list(options.batch_sizes),
                     **({"metric": options.metric} if isinstance(options.metric, str) else {}),
                     **({"max_drop": options.max_drop} if options.max_drop is not None else {}), "search_budget": options.search_budget,
                     "eval_samples": options.eval_samples},
        "environment": capture_environment(options.threads),  # the same record `compress bench run` keeps
    }


def write_report(stage: Path, report: dict, rows: list[dict], progress: Progress) -> None:
    noisy = add_speedups(rows)
    if noisy:
        progress.warn(f"speed-ups marked ? are not to be trusted, the timing was too noisy ({'; '.join(noisy)}); {NOISY_FIX.lower()}")
    report["results"] = rows
    report["timing"] = {"trustworthy": not noisy, "problems": noisy}
    report["step_seconds"] = progress.timings
    report["warnings"] = list(progress.warnings)
    (stage / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
