"""`bench run`: every artifact of every PATH on every backend present, peers beside them, in one run.

Each measurement runs in a fresh worker process (bench.suite.worker), one after another. The
reference (the original model on its base backend) is measured first; retention and ratios
of every other result are against it, on the same held-out inputs, in the same run.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.backends.registry import ALL_BACKENDS, RUNS_KIND, unavailable_reason
from bench.measure import environment
from bench.measure.latency import MAX_DRIFT
from bench.measure.retention import retention
from bench.measure.task_metrics import TaskMetric, read_charset, resolve_metric
from bench.reporting.table import untrusted_reasons
from bench.suite.artifacts import (
    Artifact,
    Job,
    aoti_device,
    aoti_mismatch,
    discover,
    size_on_disk,
)
from bench.suite.peers import peer_artifacts
from bench.suite.worker import INPUTS_FILE, save_inputs
from compress.core.errors import BenchError
from compress.core.progress import Progress
from compress.load.onnx_file import charset_from_metadata

BASE_BACKEND = {"torch": "torch-cpu-fp32", "onnx": "ort-cpu", "engine": "trt"}


def base_backend(reference: Artifact) -> str:
    """Where the reference is measured: its kind's base backend; a package, on its own device."""
    return f"torch-aoti-{aoti_device(reference)}" if reference.kind == "aoti" else BASE_BACKEND[reference.kind]


@dataclass(frozen=True)
class SuiteOptions:
    backends: tuple[str, ...] = ALL_BACKENDS
    # what the user asked for (bench.backends.registry.parse_backends): a group none of whose backends can run makes the run exit non-zero
    explicit_backends: tuple[tuple[str, ...], ...] = ()
    batch_sizes: tuple[int, ...] = (1, 16)
    seq_len: int = 128
    threads: int = 2
    min_seconds: float = 2.0
    samples: int = 128
    eval: Path | None = None
    calib: Path | None = None  # calibration inputs for the quantize_static peer [default: the file `compress` recorded]
    calib_samples: int = 128
    peers: bool = True
    trust_pickle: bool = False
    input_specs: tuple = ()
    task: str | None = None
    metric: str | None = None  # a task metric (bench.measure.task_metrics), as `compress --metric` takes it
    charset: Path | None = None  # for the CTC metrics [default: the ONNX file's metadata]
    worker_timeout: float = 1800.0


@dataclass
class SuiteResult:
    data: dict
    impossible: list[str] = field(default_factory=list)  # explicitly asked-for backends that cannot run here
    failures: list[str] = field(default_factory=list)


def run_suite(paths: list[Path], options: SuiteOptions, progress: Progress | None = None) -> SuiteResult:
    progress = progress or Progress(quiet=True)
    if not paths:
        raise BenchError("give at least one PATH to measure (a model file, a HF directory or a `compress` output directory)")
    jobs = [discover(Path(p)) for p in paths]  # every path is checked before anything is measured
    _unique_names(jobs)
    env = environment.capture(options.threads)
    reasons = {b: unavailable_reason(b) for b in options.backends}
    impossible = [f"{b}: {reasons[b]}" for group in options.explicit_backends if all(reasons.get(m) for m in group) for b in group]
    if impossible and all(reasons.values()):
        raise BenchError(f"none of the backends asked for can run here ({'; '.join(impossible)})")
    out = SuiteResult({}, impossible)
    run_jobs = []
    with tempfile.TemporaryDirectory(prefix="compress-bench-") as tmp:
        for job in jobs:
            run_jobs.append(_run_job(job, options, reasons, Path(tmp) / job.name, progress, out.failures))
    out.data = {"target": environment.target_name(env), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "environment": env, "settings": {"batch_sizes": list(options.batch_sizes), "sequence_length": options.seq_len,
                                                 "threads": options.threads, "min_seconds": options.min_seconds,
                                                 "backends": list(options.backends), "samples": options.samples},
                "jobs": run_jobs}
    return out


def _run_job(job: Job, options: SuiteOptions, reasons: dict, work: Path, progress: Progress, failures: list) -> dict:
    from bench.suite.job_inputs import job_inputs

    work.mkdir(parents=True)
    with progress.step(f"{job.name}: preparing held-out inputs"):
        model, evaluation, latency, calibration = job_inputs(job, options)
        metric = _metric(options, model, evaluation.labels)
        save_inputs(work / INPUTS_FILE, evaluation.batches, latency)
    artifacts = list(job.artifacts)
    skipped = [{"artifact": "*", "backend": b, "reason": r} for b, r in reasons.items() if r]
    if options.peers:
        with progress.step(f"{job.name}: building the peers"):
            peers, notes = peer_artifacts(job, model, work, calibration)
            artifacts[1:1] = peers
            skipped += [{"artifact": name, "backend": "*", "reason": why} for name, why in notes]
    plan = _plan(job, artifacts, options, reasons, skipped)
    if "torch-kernels" in options.backends and not reasons.get("torch-kernels") and not any(b == "torch-kernels" for _, b in plan):
        skipped.append({"artifact": "*", "backend": "torch-kernels", "reason": "no artifact here calls torch.ops.compress; "
                        "make one with compress MODEL --int8 --backend torch"})
    results, reference_out = [], None
    for i, (artifact, backend) in enumerate(plan):
        with progress.step(f"{job.name}: {artifact.name} on {backend}"):
            measured = _measure(artifact, backend, job, options, work / f"m{i}")
        if "error" in measured:
            failures.append(f"{job.name}: {artifact.name} on {backend}: {measured['error']}")
            skipped.append({"artifact": artifact.name, "backend": backend, "reason": f"failed: {measured['error']}"})
            progress.say(f"  FAILED: {measured['error']}")
            if i == 0:
                raise BenchError(f"{job.name}: the reference ({artifact.name} on {backend}) failed: {measured['error']}; nothing can be compared to it")
            continue
        outputs = measured.pop("outputs")
        if reference_out is None:
            reference_out = outputs
        results.append(_result_row(artifact, backend, measured, model.task, reference_out, outputs, evaluation.labels, first=not results,
                                   metric=metric))
        progress.say("  " + ", ".join(f"b{bs} p50 {lat['p50_ms']:.2f} ms" for bs, lat in measured["latency"].items())
                     + f", peak RSS {measured['memory']['peak_rss_bytes'] / 2**20:.0f} MiB")
    drift = _remeasure_reference(plan[0], job, options, work / "m-ref-again", results[0], progress)
    _add_ratios(results, drift)
    return {"job": job.name, "reference_drift": drift, "source": str(job.source), "task": model.task, "reference": results[0]["artifact"],
            "reference_backend": results[0]["backend"], "evaluation": evaluation.source, "samples": evaluation.num_samples,
            "notes": job.notes, "results": results, "skipped": skipped}


def _remeasure_reference(first: tuple[Artifact, str], job: Job, options: SuiteOptions, out_dir: Path, row: dict, progress: Progress) -> dict:
    """Time the reference again at the end and keep the faster p50 per batch size.

    Every ratio divides by the reference, so one unlucky reference run (a noisy neighbour on a
    shared machine) would shift them all; the drift between the two runs is recorded so a
    reader can see how steady the machine was.
    """
    artifact, backend = first
    with progress.step(f"{job.name}: {artifact.name} on {backend} again (the reference, for drift)"):
        again = _measure(artifact, backend, job, options, out_dir)
    if "error" in again:
        return {}
    drift = {}
    for bs, lat in again["latency"].items():
        before = row["latency"][bs]
        drift[bs] = round(lat["p50_ms"] / before["p50_ms"], 4)
        if lat["p50_ms"] < before["p50_ms"]:
            row["latency"][bs] = lat
    progress.say("  drift (second / first p50): " + ", ".join(f"b{bs} {d:.3f}" for bs, d in drift.items()))
    return drift


def _plan(job: Job, artifacts: list[Artifact], options: SuiteOptions, reasons: dict,
          skipped: list[dict] | None = None) -> list[tuple[Artifact, str]]:
    """(artifact, backend) pairs, the reference on its base backend first (even if not asked for: everything is relative to it)."""
    base = base_backend(job.reference)
    plan = [(job.reference, base)]
    for artifact in artifacts:
        for backend in options.backends:
            if RUNS_KIND[backend] != artifact.kind or reasons.get(backend) or (artifact is job.reference and backend == base):
                continue
            if artifact.kind == "aoti":
                if backend != f"torch-aoti-{aoti_device(artifact)}":
                    continue  # a package runs on the device it was compiled for, nowhere else
                why = aoti_mismatch(artifact)
                if why is None or artifact is job.reference:  # the reference failing says why in the run's error
                    plan.append((artifact, backend))
                elif skipped is not None:
                    skipped.append({"artifact": artifact.name, "backend": backend, "reason": f"cannot run here: {why}"})
                continue
            if (backend == "torch-kernels") != artifact.needs_kernels:
                continue  # INT8 programs calling torch.ops.compress run on torch-kernels, and nothing else does
            if backend == "torch-kernels":
                plan.append((artifact, backend))
                continue
            if backend.startswith("torch-") and not backend.endswith("fp32") and (artifact.transform or artifact.precision != "fp32"):
                continue  # FP16/BF16 casts apply to float models only
            if artifact.transform and backend != "torch-cpu-fp32":
                continue  # PyTorch's dynamic INT8 is a CPU FP32-module transform
            plan.append((artifact, backend))
    return plan


def _measure(artifact: Artifact, backend: str, job: Job, options: SuiteOptions, out_dir: Path) -> dict:
    out_dir.mkdir()
    inputs = [s.to_json() for s in options.input_specs] or job.inputs
    spec = {"artifact": artifact.to_json(), "backend": backend, "threads": options.threads, "min_seconds": options.min_seconds,
            "inputs_npz": str(out_dir.parent / INPUTS_FILE), "inputs": inputs, "task": options.task or job.task,
            "trust_pickle": options.trust_pickle, "out_dir": str(out_dir)}
    (out_dir / "spec.json").write_text(json.dumps(spec))
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.suite.worker", str(out_dir / "spec.json")], capture_output=True, text=True,
                              timeout=options.worker_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {options.worker_timeout:.0f}s"}
    result_file = out_dir / "result.json"
    if not result_file.exists():  # the worker died (a crash in a native runtime, out of memory)
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"error": f"the worker process died: {tail[0]}"}
    result = json.loads(result_file.read_text())
    if "error" not in result:
        result["outputs"] = np.load(out_dir / "outputs.npy")
    return result


def _metric(options: SuiteOptions, model, labels) -> TaskMetric:
    charset = read_charset(options.charset) if options.charset else charset_from_metadata(model.source) if model.is_onnx else None
    return resolve_metric(options.metric, model.task, labels, charset)


def _result_row(artifact: Artifact, backend: str, measured: dict, task: str, reference, outputs, labels, first: bool,
                metric: TaskMetric | None = None) -> dict:
    """``first``: the reference measurement itself. The original on other backends (BF16, CUDA) is
    scored against it like any artifact, with the role "original"."""
    precision = backend.rsplit("-", 1)[1] if backend.startswith("torch-") and artifact.precision == "fp32" else artifact.precision
    role = artifact.role if first or artifact.role != "reference" else "original"
    note = None
    try:
        kept = None if first and labels is None else retention(task, reference, outputs, labels)
        if kept is not None and metric is not None:
            kept["task"] = metric.score(reference, outputs, labels)
    except ValueError as exc:  # e.g. an artifact whose output differs in shape: no score, and the row says why
        kept, note = None, f"retention not scored: {exc}"
    return {**({"note": note} if note else {}), "artifact": artifact.name, "backend": backend, "precision": precision, "role": role,
            "file": artifact.path.name, "size_bytes": measured.get("size_bytes", size_on_disk(artifact.path)),
            "latency": measured["latency"], "memory": measured["memory"], "retention": kept}


def _add_ratios(results: list[dict], drift: dict) -> None:
    """Each row's ratio to the reference, and, in ``ratio_untrusted``, why a ratio cannot be trusted:
    a noisy timing of the row or the reference, or a reference whose two timings disagree."""
    reference = results[0]
    base = reference["latency"]
    for row in results:
        row["ratio_to_reference"] = {bs: round(base[bs]["p50_ms"] / lat["p50_ms"], 4) for bs, lat in row["latency"].items() if bs in base}
        untrusted = {}
        for bs in row["ratio_to_reference"]:
            reasons = untrusted_reasons([(f"{r['artifact']} on {r['backend']}", r["latency"][bs]) for r in (reference, row)], bs)
            if bs in drift and not 1 / MAX_DRIFT <= drift[bs] <= MAX_DRIFT:
                reasons.append(f"the reference's two timings at b{bs} differ {drift[bs]:.2f}x")
            if reasons:
                untrusted[bs] = "; ".join(dict.fromkeys(reasons))
        row["ratio_untrusted"] = untrusted


def _unique_names(jobs: list[Job]) -> None:
    seen: dict[str, int] = {}
    for job in jobs:
        count = seen.get(job.name, 0)
        seen[job.name] = count + 1
        if count:
            job.name = f"{job.name}-{count + 1}"
