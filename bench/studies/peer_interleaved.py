"""Our INT8 file against ONNX Runtime's `quantize_dynamic` defaults, timed in interleaved rounds.

    python -m bench.studies.peer_interleaved OUT --eval test.txt [--batch 1] [--rounds 8] [--blocks 20] [--json FILE]

OUT is a `compress` output directory (model.onnx, model.int8.onnx, report.json). The peer is
`quantize_dynamic(OUT/model.onnx)` with its defaults, what Hugging Face Optimum's ORT quantizer
runs. A benchmark that times one file and then the other for a few seconds each can be misled by
a burst of load on a shared machine landing on one of them (the zoo's b1 rows at times differ by
1.5x between runs, and this machine switches for seconds at a time between two speeds). Here the
two files run the same batches in short blocks (one pass over the batches each, a fraction of a
second), back to back in alternating order: each pair of blocks sees the same state of the
machine, and the median of the paired ratios is reported with its spread, per round and overall.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

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
    parser.add_argument("--blocks", type=int, default=20, help="paired blocks per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    from onnxruntime.quantization import quantize_dynamic

    report = json.loads((args.out / "report.json").read_text())
    model = load_model(Path(report["model"]["source"]))
    seq_len = report["settings"]["sequence_length"]
    batches = load_data_file(args.eval, model, batch_size=args.batch, seq_len=seq_len, samples=args.batch * args.batches).batches
    with tempfile.TemporaryDirectory(prefix="compress-peer-") as tmp:
        peer = Path(tmp) / "peer.int8.onnx"
        quantize_dynamic(str(args.out / "model.onnx"), str(peer))
        sessions = {"ours": int8_session(args.out, args.threads), "ort-quantize-dynamic": make_session(peer, args.threads)}
        warm(sessions, batches)
        rounds = [paired_round(sessions, batches, args.blocks) for _ in range(args.rounds)]
    ratios = [r["peer_over_ours_median"] for r in rounds]
    every = np.concatenate([r["ratios"] for r in rounds])
    result = {"benchmark": "peer_interleaved", "cpu": cpu_info()["model"], "isa": cpu_isa(), "threads": args.threads, "batch": args.batch,
              "model": report["model"]["source"], "weights": (report.get("int8") or {}).get("weights"),
              "p50_ms_per_round": {name: [r["p50_ms"][name] for r in rounds] for name in sessions},
              "peer_over_ours_per_round": ratios, "peer_over_ours_median": round(float(np.median(every)), 3),
              "peer_over_ours_quartiles": [round(float(q), 3) for q in np.percentile(every, [25, 75])],
              "ours_faster_in_every_round": all(r > 1 for r in ratios), "peer_faster_in_every_round": all(r < 1 for r in ratios)}
    for name, values in result["p50_ms_per_round"].items():
        print(f"{name:22s} median p50 {np.median(values):7.2f} ms  rounds {values}")
    print(f"peer / ours, paired blocks: median {result['peer_over_ours_median']:.3f} (quartiles {result['peer_over_ours_quartiles']}), "
          f"per round {ratios}; CPU {result['cpu']}, {result['isa']}, {args.threads} threads, batch {args.batch}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0


def int8_session(out: Path, threads: int):
    """An ONNX Runtime session of a ``compress`` output's INT8 file, with the graph optimizers its
    report says to leave off (as ``compress`` timed it)."""
    report = json.loads((out / "report.json").read_text())
    disabled = tuple((report.get("int8") or {}).get("onnxruntime_disabled_optimizers", ()))
    return make_session(out / "model.int8.onnx", threads, disabled_optimizers=disabled)


def warm(sessions: dict, batches: list[dict], run=run_session) -> None:
    """Each batch shape through each session once, before anything is timed."""
    for session in sessions.values():
        for batch in batches:
            run(session, batch)


def paired_round(sessions: dict, batches: list[dict], blocks: int, run=run_session) -> dict:
    """``blocks`` pairs of short blocks: one pass over the batches through one file, then the same
    through the other, the order alternating. Call-by-call alternation would measure something
    else: each session's threads spin for a while after a call and take the cores from the other.
    ``run(session, batch)``: how one batch goes through one of them (ONNX Runtime by default)."""
    names = list(sessions)
    times: dict[str, list[float]] = {name: [] for name in names}
    ratios = []
    for i in range(blocks):
        block = {}
        for name in (names if i % 2 == 0 else names[::-1]):
            taken = []
            for batch in batches:
                started = time.perf_counter()
                run(sessions[name], batch)
                taken.append((time.perf_counter() - started) * 1000.0)
            block[name] = float(np.median(taken))
            times[name].extend(taken)
        ratios.append(block[names[1]] / block[names[0]])
    return {"p50_ms": {name: round(float(np.median(t)), 3) for name, t in times.items()}, "ratios": np.asarray(ratios),
            "peer_over_ours_median": round(float(np.median(ratios)), 3)}


if __name__ == "__main__":
    raise SystemExit(main())
