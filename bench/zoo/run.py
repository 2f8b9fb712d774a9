"""One zoo model end to end: the user's default command, then every artifact and peer measured side by side.

`compress` runs as a user runs it, in its own process (its exit code is part of the result: 3
means the guard found nothing within the tolerance). Then one `bench run` measures the original,
the FP32 ONNX file, our INT8 file and the peers on the test file `compress` never saw, with
every ratio from the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.backends.registry import parse_backends
from bench.suite.runner import SuiteOptions, run_suite
from bench.zoo.models import Prepared, ZooModel
from bench.zoo.scale import Scale
from compress.core.errors import CompressError
from compress.core.progress import Progress

BACKENDS = "torch-cpu-fp32,ort-cpu"


def default_command(entry: ZooModel, prepared: Prepared, scale: Scale, out: Path) -> list[str]:
    """What a user types: the model, its data and its metric; everything else at its default."""
    # --eval-samples: the report's own check scores every sample after the validation head (at
    # the default 128, one OCR line is 0.78 points of a 1-point tolerance)
    args = ["compress", str(prepared.model), "--eval", str(prepared.eval), "--eval-samples", str(scale.eval), "--metric", entry.metric,
            "--out", str(out), "--force", "--batch", "1", "--search-budget", scale.search_budget]
    return args + (["--calib", str(prepared.calib)] if prepared.static else [])


def run_model(entry: ZooModel, prepared: Prepared, scale: Scale, work: Path, progress: Progress, threads: int) -> dict:
    out = work / f"{entry.name}.compressed"
    command = default_command(entry, prepared, scale, out)
    result = {"model": entry.name, "family": entry.family, "origin": entry.origin, "metric": entry.metric, "data": prepared.data,
              "command": " ".join(["compress", *command[1:]]).replace(str(work) + "/", "")}
    with progress.step(f"{entry.name}: {result['command']}"):
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "compress.cli.main", *command[1:], "--quiet", "--threads", str(threads)],
                              capture_output=True, text=True)
        result["compress"] = {"exit_code": proc.returncode, "seconds": round(time.monotonic() - started, 1),
                              "stderr": [line for line in proc.stderr.splitlines() if line.strip()][-5:]}
    if not (out / "report.json").is_file():
        result["error"] = f"compress exited {proc.returncode}: {(result['compress']['stderr'] or ['no output'])[-1]}"
        progress.say(f"  FAILED: {result['error']}")
        return result
    report = json.loads((out / "report.json").read_text())
    result["compress"].update(_what_compress_did(report))
    options = SuiteOptions(backends=parse_backends(BACKENDS)[0], batch_sizes=scale.batch_sizes, threads=threads,
                           min_seconds=scale.min_seconds, samples=scale.eval, eval=prepared.test, calib=prepared.calib,
                           calib_samples=scale.calib, metric=entry.metric)
    try:
        result["suite"] = run_suite([out], options, progress).data
    except CompressError as exc:
        result["error"] = f"bench run failed: {exc}"
        progress.say(f"  FAILED: {result['error']}")
    return result


def _what_compress_did(report: dict) -> dict:
    """The guard's decision and the tolerance check, from the report `compress` wrote."""
    int8 = report.get("int8") or {}
    guard = int8.get("guard") or {}
    search = int8.get("search") or {}
    return {"guard": {k: guard[k] for k in ("metric", "tolerance", "drop_unit", "default_validation_drop", "default_validation_drop_bound", "escalated", "chosen",
                                            "chosen_validation_drop") if k in guard},
            "searched": [{k: p[k] for k in ("candidate", "drop", "drop_bound", "latency_p50_ms", "meets_tolerance") if k in p} for p in search.get("tried", [])],
            "float_layers": int8.get("float_layers", []), "sensitivity": search.get("sensitivity") or int8.get("sensitivity"),
            "int8_mode": int8.get("mode"), "tolerance_check": report.get("tolerance"), "warnings": report.get("warnings", [])}
