import copy

from bench.measure.environment import run_isa
from bench.reporting.compare import compare
from bench.reporting.schema import load_results
from bench.studies.ci_gate import BASELINES, baseline_path, best_of
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


def test_the_committed_ci_baselines_are_readable_results_files_of_the_gate_configuration_named_for_their_class():
    files = sorted(BASELINES.glob("ci_minilm_cpu.*.json"))
    assert baseline_path("avx2") in files
    for path in files:
        data = load_results(path)
        (job,) = data["runs"][0]["jobs"]
        names = {r["artifact"] for r in job["results"]}
        assert job["job"] == "minilm" and {"original", "model.int8.onnx", "peer:ort-quantize-dynamic"} <= names
        assert path == baseline_path(run_isa(data["runs"][0]["environment"]))  # filed under the class it was measured on


def _on(data: dict, isa: str) -> dict:
    data["runs"][0]["environment"]["isa"] = isa
    return data


def test_the_gate_never_holds_a_vnni_result_against_an_avx2_baseline_or_the_reverse():
    # VNNI's INT8 at 4.2x FP32 against AVX2's 1.8x would look like a gain one way and a 57% regression the other
    vnni, avx2 = _on(results(int8_p50=10.0), "avx512_vnni"), _on(results(int8_p50=40.0), "avx2")
    for current, baseline in ((avx2, vnni), (vnni, avx2)):
        result = compare(current, baseline, 0.35, roles=("ours",))
        assert not result.failed
        assert any("not compared across CPU classes" in n for n in result.notes)
        assert all(c.status.startswith("skipped") for c in result.checks if c.what in ("ratio to reference", "p50 ms", "speed"))
    # the same class is still gated: the slower run regresses against the faster one
    assert compare(_on(results(int8_p50=40.0), "avx2"), _on(results(int8_p50=10.0), "avx2"), 0.35).failed


def test_a_baseline_recorded_before_the_isa_field_is_classed_by_its_cpu_flags():
    old = results()
    old["runs"][0]["environment"].pop("isa", None)
    old["runs"][0]["environment"]["cpu"]["flags"] = ["avx", "avx2", "f16c", "fma"]
    assert run_isa(old["runs"][0]["environment"]) == "avx2"
    old["runs"][0]["environment"]["cpu"]["flags"] += ["avx512f", "avx512bw", "avx512_vnni"]
    assert run_isa(old["runs"][0]["environment"]) == "avx512_vnni"
