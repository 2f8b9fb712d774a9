"""python -m bench.gpu_check --out DIR: run the steps in order within the time limit and write
DIR/gpu_check.json (every step's record) and DIR/gpu_check.log (every subprocess's output)."""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

from bench.gpu_check.steps import STEPS, Context, skipped
from compress.core.atomic import write_text_atomic

RESULT_NAME, LOG_NAME = "gpu_check.json", "gpu_check.log"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for gpu_check.json, gpu_check.log and the step files")
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds for the whole check (steps past it are skipped)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of: {', '.join(STEPS)}")
    parser.add_argument("--quick", action="store_true", help="shorter timings (for the dry run)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    if args.time_limit <= 0:
        parser.error("--time-limit must be positive")
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / LOG_NAME
    log.write_text("")
    started = time.monotonic()
    ctx = Context(args.out, log, started + args.time_limit, args.quick, torch.cuda.is_available())
    result = {"schema": "compress.gpu_check/1", "dry_run": not ctx.cuda, "time_limit_s": args.time_limit, "steps": {}}
    for name in chosen:
        if ctx.left() <= 0:
            record = skipped(f"the check's time limit ({args.time_limit:.0f}s) was reached before this step")
        else:
            step_started = time.monotonic()
            try:
                record = STEPS[name](ctx)
            except Exception as exc:  # noqa: BLE001  one broken step must not lose the others' results
                record = {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
                with log.open("a") as fh:
                    fh.write(f"\n===== {name}: raised\n{traceback.format_exc()}")
            record["seconds"] = round(time.monotonic() - step_started, 1)
        result["steps"][name] = record
        print(f"{name:14s} {record['status']:8s} {record.get('reason', '')}", flush=True)
        write_text_atomic(args.out / RESULT_NAME, json.dumps(result, indent=2) + "\n")  # kept current: a killed run keeps what it had
    result["seconds"] = round(time.monotonic() - started, 1)
    failed = [n for n, r in result["steps"].items() if r["status"] == "failed"]
    result["failed"] = failed
    write_text_atomic(args.out / RESULT_NAME, json.dumps(result, indent=2) + "\n")
    print(f"{'dry run (no CUDA device)' if result['dry_run'] else 'GPU check'}: {len(failed)} failed step(s) in {result['seconds']:.0f}s; "
          f"wrote {args.out / RESULT_NAME} and {log}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
