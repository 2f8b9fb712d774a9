import pytest

from bench.reporting.compare import compare, format_comparison, parse_percent
from compress.core.errors import BenchError
from tests.bench.reporting.results_fixture import results


def test_compare_passes_an_unchanged_file():
    result = compare(results(), results())
    assert not result.failed and len(result.checks) == 5  # 3 latency + 2 retention
    assert "no regression: 5 checks passed" in format_comparison(result)


def test_compare_fails_an_artifact_that_got_twice_as_slow():
    result = compare(results(int8_p50=36.0), results())
    (bad,) = result.regressions
    assert (bad.artifact, bad.what) == ("model.int8.onnx", "ratio to reference")
    assert bad.change == pytest.approx(1.0, rel=1e-3)
    line = next(ln for ln in format_comparison(result).splitlines() if ln.endswith("REGRESSED"))
    assert "model.int8.onnx" in line and "+100.0%" in line


def test_compare_judges_speed_by_ratio_when_the_whole_machine_is_slower():
    # everything 40% slower (another machine, same software): ratios unchanged, so no regression when environments differ
    slower = results(target="cpu:other/2t", int8_p50=18.0 * 1.4, ref_p50=25.0 * 1.4)
    slower["runs"][0]["environment"]["cpu"]["model"] = "other"
    result = compare(slower, results())
    assert not result.failed
    assert any("ratios only" in n for n in result.notes)
    ref = next(c for c in result.checks if c.artifact == "original" and c.batch == "1")
    assert ref.status.startswith("skipped") and "reference row" in ref.status


def test_compare_checks_the_reference_absolutely_when_environments_match():
    result = compare(results(ref_p50=40.0, int8_p50=18.0 * 40 / 25), results())
    ref = next(c for c in result.checks if c.artifact == "original" and c.batch == "1")
    assert ref.what == "p50 ms" and ref.status == "REGRESSED" and ref.change == pytest.approx(0.6)


def test_compare_fails_a_retention_drop_beyond_the_threshold_only():
    assert compare(results(int8_cos=0.9907), results(), max_retention_drop=0.002).failed is False
    result = compare(results(int8_cos=0.9890), results(), max_retention_drop=0.002)
    (bad,) = result.regressions
    assert bad.what == "mean_cosine" and bad.change == pytest.approx(0.0027)


def test_compare_errors_when_the_files_share_no_artifact():
    other = results()
    other["runs"][0]["jobs"][0]["job"] = "resnet"
    with pytest.raises(BenchError, match="share no artifact"):
        compare(other, results())


def test_compare_errors_when_no_run_can_be_paired():
    two = results()
    two["runs"].append(results(target="cuda:H100/2t")["runs"][0])
    with pytest.raises(BenchError, match="no run can be paired"):
        compare(results(target="cuda:A100/2t"), two)


def test_parse_percent_reads_percent_and_fraction_and_rejects_the_rest():
    assert parse_percent("10%") == pytest.approx(0.1) and parse_percent("0.25") == 0.25
    with pytest.raises(BenchError, match="not a percentage"):
        parse_percent("ten")
    with pytest.raises(BenchError, match="negative"):
        parse_percent("-5%")


def test_compare_gates_only_the_roles_asked_for():
    slower_peer = results()
    peer = slower_peer["runs"][0]["jobs"][0]["results"][1]
    peer["ratio_to_reference"]["1"] /= 2
    assert compare(slower_peer, results()).failed
    result = compare(slower_peer, results(), roles=("ours",))
    assert not result.failed
    assert any(c.artifact == peer["artifact"] and "not gated" in c.status for c in result.checks)
