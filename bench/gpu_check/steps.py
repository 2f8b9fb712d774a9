"""The steps of ``python -m bench.gpu_check``, in order. Each returns a record (status ok, failed
or skipped, with a reason and whatever it measured); the heavy ones run in a subprocess so a
crash, a hang past the time left, or a CUDA error in one cannot take the others with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    out: Path
    log: Path
    deadline: float  # time.monotonic() by which every step must have finished
    quick: bool  # shorter timings (the dry run in the tests)
    cuda: bool  # a CUDA device is visible to torch

    def left(self) -> float:
        return self.deadline - time.monotonic()


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


def run_logged(ctx: Context, name: str, argv: list[str], timeout: float | None = None) -> tuple[int, str]:
    """Run ``argv`` with the repository on the path; its output goes to the log under a header.
    Returns (exit code, output); 124 when it ran past the time left."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    limit = max(1.0, min(timeout or ctx.left(), ctx.left()))
    try:
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = 124
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        output += f"\n[gpu_check] {name}: stopped after {limit:.0f}s (the check's time limit)\n"
    with ctx.log.open("a") as log:
        log.write(f"\n===== {name}: {' '.join(argv)} (exit {code})\n{output}")
    return code, output


def environment(ctx: Context) -> dict:
    import torch

    from bench.measure.environment import capture

    record = {"status": "ok", "torch": torch.__version__, "torch_cuda": torch.version.cuda, "nvcc": shutil.which("nvcc"),
              "compute_sanitizer": shutil.which("compute-sanitizer"), "environment": capture(threads=2)}
    if ctx.cuda:
        major, minor = torch.cuda.get_device_capability(0)
        record.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"{major}.{minor}",
                      gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return record


def build_kernels(ctx: Context) -> dict:
    """JIT-build (or load) the kernels with this machine's torch, CUDA ones included where there is a GPU."""
    probe = ("import json; from compress.ops import kernels as k; s = k.status(); "
             "print(json.dumps({'backend': s.backend, 'library': s.library, 'reason': s.reason, 'cuda_kernels': s.cuda_kernels}))")
    code, output = run_logged(ctx, "build_kernels", [sys.executable, "-c", probe], timeout=300)
    status = _last_json(output)
    if code != 0 or status is None:
        return {"status": "failed", "reason": f"the kernels' probe exited {code}; see the log"}
    if status["backend"] != "extension":
        return {"status": "failed", "reason": f"the compiled kernels are not loaded: {status['reason']}", **status}
    if ctx.cuda and not status["cuda_kernels"]:
        return {"status": "failed", "reason": "a GPU is present but the CUDA kernels were not built (nvcc missing?)", **status}
    return {"status": "ok", **status, **({} if ctx.cuda else {"note": "CPU kernels only: no CUDA device"})}


def gpu_tests(ctx: Context) -> dict:
    """tests/gpu: here without a GPU every test skips with its reason, which is what the dry run checks."""
    report = ctx.out / "gpu_tests.xml"
    code, _ = run_logged(ctx, "gpu_tests", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu",
                                            f"--junitxml={report}"])
    if not report.exists():
        return {"status": "failed", "reason": f"pytest exited {code} without a report; see the log"}
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    reasons = sorted({s.get("message", "") for s in suite.iter("skipped")})
    failed = counts["failures"] + counts["errors"]
    return {"status": "failed" if failed or code not in (0, 5) else "ok", **counts, "skip_reasons": reasons[:20],
            **({"reason": f"{failed} GPU test(s) failed; see the log"} if failed else {})}


def kernel_bench(ctx: Context) -> dict:
    if not ctx.cuda:
        return skipped("no CUDA device: the CUDA kernel benchmark needs one")
    out = ctx.out / "int8_kernels_cuda.json"
    argv = [sys.executable, "-m", "bench.studies.int8_kernels", "--device", "cuda", "--out", str(out),
            "--rounds", "5" if ctx.quick else "15"]
    code, _ = run_logged(ctx, "kernel_bench", argv)
    if code != 0 or not out.exists():
        return {"status": "failed", "reason": f"the kernel benchmark exited {code}; see the log"}
    data = json.loads(out.read_text())
    return {"status": "ok", "file": out.name, "missed_targets": data.get("missed_targets", []),
            "int8_linear": [{k: row[k] for k in ("m", "k", "n", "int8_over_fp16", "int8_over_int_mm_dequant", "tops_int8")}
                            for row in data["cuda"]["int8_linear"]],
            "quantize_fraction_of_copy": [row["fraction_of_copy"] for row in data["cuda"]["quantize_per_token"]]}


def suite(ctx: Context) -> dict:
    """MiniLM (`--int8 --backend torch`) and the digits CNN on the torch-cuda-* and torch-kernels
    backends; backends that cannot run here are listed as skipped by the suite itself."""
    work = ctx.out / "suite_inputs"
    code, _ = run_logged(ctx, "suite_inputs", [sys.executable, "-m", "bench.gpu_check.inputs", str(work)], timeout=600)
    if code != 0:
        return {"status": "failed", "reason": f"preparing MiniLM and the digits CNN exited {code}; see the log"}
    out = ctx.out / "suite_gpu.json"
    backends = "torch-cuda-fp32,torch-cuda-fp16,torch-kernels" if ctx.cuda else "torch-kernels"
    argv = [sys.executable, "-m", "compress", "bench", "run", str(work / "minilm.compressed"), str(work / "digits.pt2"),
            "--backends", backends, "--batch", "1,16", "--json", str(out), "--force", "--no-peers",
            "--samples", "16" if ctx.quick else "64", "--min-seconds", "0.2" if ctx.quick else "1.0", "--quiet"]
    code, _ = run_logged(ctx, "suite", argv)
    if code != 0 or not out.exists():
        return {"status": "failed", "reason": f"the suite exited {code}; see the log"}
    data = json.loads(out.read_text())
    rows = [{"job": job["job"], "artifact": r["artifact"], "backend": r["backend"],
             "p50_ms": {bs: lat["p50_ms"] for bs, lat in r["latency"].items()}} for run in data["runs"] for job in run["jobs"]
            for r in job["results"]]
    return {"status": "ok", "file": out.name, "results": rows,
            **({} if ctx.cuda else {"note": "no CUDA device: torch-kernels on the CPU only"})}


def aoti(ctx: Context) -> dict:
    """MiniLM through `compress --int8 --backend torch --target aoti` on the GPU machine: the CPU package
    and the CUDA one (quantized again on the GPU), each checked against its program and measured."""
    if not ctx.cuda:
        return skipped("no CUDA device: the CUDA AOTInductor package needs one (the CPU package is tested on every machine)")
    out = ctx.out / "aoti_minilm"
    argv = [sys.executable, "-m", "compress", "--int8", "--backend", "torch", "--target", "aoti", "--out", str(out), "--force",
            "--batch", "1,16", "--eval-samples", "16" if ctx.quick else "64", "--min-seconds", "0.2" if ctx.quick else "1.0"]
    code, _ = run_logged(ctx, "aoti", argv, timeout=420)
    report_file = out / "report.json"
    if not report_file.exists():
        return {"status": "failed", "reason": f"compress --target aoti exited {code} without a report; see the log"}
    report = json.loads(report_file.read_text())
    packages = report.get("aoti", {})
    rows = {r["name"]: {"backend": r.get("backend"), "p50_ms": {bs: lat["p50_ms"] for bs, lat in (r.get("latency") or {}).items()},
                        "retention": r.get("retention")} for r in report.get("results", [])}
    record = {"status": "ok" if code == 0 and "cuda" in packages else "failed", "exit_code": code, "packages": packages, "results": rows}
    if record["status"] == "failed":
        record["reason"] = f"compress exited {code}" + ("" if "cuda" in packages else "; no CUDA package was built") + "; see the log"
    return record


def sanitizer(ctx: Context) -> dict:
    """compute-sanitizer memcheck over a few calls of each CUDA kernel, odd shapes included."""
    if not ctx.cuda:
        return skipped("no CUDA device: compute-sanitizer needs one")
    tool = shutil.which("compute-sanitizer")
    if tool is None:
        return skipped("compute-sanitizer is not on PATH (it ships with the CUDA toolkit)")
    argv = [tool, "--tool", "memcheck", "--error-exitcode", "3", sys.executable, "-m", "bench.gpu_check.sanitize_calls"]
    code, output = run_logged(ctx, "sanitizer", argv, timeout=240)
    summary = next((line.strip() for line in output.splitlines() if "ERROR SUMMARY" in line), None)
    return {"status": "ok" if code == 0 else "failed", "summary": summary,
            **({} if code == 0 else {"reason": f"compute-sanitizer exited {code}: {summary or 'see the log'}"})}


def _last_json(output: str) -> dict | None:
    for line in reversed(output.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


STEPS: dict[str, Callable[[Context], dict]] = {"environment": environment, "build_kernels": build_kernels, "gpu_tests": gpu_tests,
                                               "kernel_bench": kernel_bench, "suite": suite, "aoti": aoti, "sanitizer": sanitizer}
