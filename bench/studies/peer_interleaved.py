"""Our INT8 file against ONNX Runtime's `quantize_dynamic` defaults, timed in interleaved rounds.

    python -m bench.studies.peer_interleaved OUT --eval test.txt [--batch 1] [--rounds 8] [--json FILE]

OUT is a `compress` output directory (model.onnx, model.int8.onnx, report.json). The peer is
`quantize_dynamic(OUT/model.onnx)` with its defaults, what Hugging Face Optimum's ORT quantizer
runs. A benchmark that times one file and then the other for a few seconds each can be misled by
a burst of load on a shared machine landing on one of them (the zoo's b1 rows at times differ by
1.5x between runs); here both are timed in alternating rounds, each round a short median over the
same batches, and the ratio is reported per round: a ratio that holds in every round is real.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.measure.latency import measure
from compress.core.atomic import write_text_atomic
from compress.load.data import load_data_file
from compress.load.loaders import load_model
from compress.ops.cpu_features import cpu_info, cpu_isa
from export.onnx.session import make_session, run_session


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a compress output directory")
    parser.add_argument("--eval", type=Path, required=True, help="held-out inputs the batches come from (text, .npz, .jsonl)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--batches", type=int, default=16, help="different batches cycled through in each round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    from onnxruntime.quantization import quantize_dynamic

    report = json.loads((args.out / "report.json").read_text())
    model = load_model(Path(report["model"]["source"]))
    seq_len = report["settings"]["sequence_length"]
    batches = load_data_file(args.eval, model, batch_size=args.batch, seq_len=seq_len, samples=args.batch * args.batches).batches
    disabled = tuple((report.get("int8") or {}).get("onnxruntime_disabled_optimizers", ()))
    with tempfile.TemporaryDirectory(prefix="compress-peer-") as tmp:
        peer = Path(tmp) / "peer.int8.onnx"
        quantize_dynamic(str(args.out / "model.onnx"), str(peer))
        sessions = {"ours": make_session(args.out / "model.int8.onnx", args.threads, disabled_optimizers=disabled),
                    "ort-quantize-dynamic": make_session(peer, args.threads)}
        rounds: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                timed = measure(lambda x, s=session: run_session(s, x), batches, warmup=len(batches), min_iters=2 * len(batches), min_seconds=1.0)
                rounds[name].append(round(timed.p50_ms, 3))
    ratios = [round(p / o, 3) for p, o in zip(rounds["ort-quantize-dynamic"], rounds["ours"])]
    result = {"benchmark": "peer_interleaved", "cpu": cpu_info()["model"], "isa": cpu_isa(), "threads": args.threads, "batch": args.batch,
              "model": report["model"]["source"], "weights": (report.get("int8") or {}).get("weights"), "p50_ms_per_round": rounds,
              "peer_over_ours_per_round": ratios, "peer_over_ours_median": float(np.median(ratios)),
              "ours_faster_in_every_round": all(r > 1 for r in ratios), "peer_faster_in_every_round": all(r < 1 for r in ratios)}
    for name, values in rounds.items():
        print(f"{name:22s} median p50 {np.median(values):7.2f} ms  rounds {values}")
    print(f"peer / ours per round: {ratios} (median {result['peer_over_ours_median']:.3f}; CPU {result['cpu']}, {result['isa']}, "
          f"{args.threads} threads, batch {args.batch})")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
