import copy

from bench.reporting.compare import compare
from bench.reporting.schema import load_results
from bench.studies.ci_gate import BASELINE, best_of
from tests.bench.reporting.results_fixture import results


def test_best_of_keeps_the_faster_relative_speed_per_result():
    slow, fast = results(int8_p50=30.0), results(int8_p50=17.0)
    merged = best_of(copy.deepcopy(slow), fast)
    row = next(r for r in merged["runs"][0]["jobs"][0]["results"] if r["artifact"] == "model.int8.onnx")
    assert row["ratio_to_reference"]["1"] == fast["runs"][0]["jobs"][0]["results"][2]["ratio_to_reference"]["1"]
    assert row["latency"]["1"]["p50_ms"] == 17.0


def test_best_of_still_fails_a_regression_seen_in_both_runs():
    merged = best_of(results(int8_p50=40.0), results(int8_p50=38.0))
    assert compare(merged, results(), 0.35).failed


def test_the_committed_ci_baseline_is_a_readable_results_file_of_the_gate_configuration():
    data = load_results(BASELINE)
    (job,) = data["runs"][0]["jobs"]
    names = {r["artifact"] for r in job["results"]}
    assert job["job"] == "minilm" and {"original", "model.int8.onnx", "peer:ort-quantize-dynamic"} <= names
