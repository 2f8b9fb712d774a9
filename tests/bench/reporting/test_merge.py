import json

import pytest

from bench.reporting.markdown import markdown_report
from bench.reporting.merge import merge_files
from bench.reporting.schema import load_results
from compress.core.errors import BenchError
from tests.bench.reporting.results_fixture import results


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_merge_files_keeps_one_run_per_target_and_the_table_has_a_column_each(tmp_path):
    a = _write(tmp_path / "a.json", results())
    b = _write(tmp_path / "b.json", results(target="cuda:NVIDIA H100 80GB HBM3/2t", int8_p50=2.0, ref_p50=6.0))
    merged = merge_files([a, b])
    assert [r["target"] for r in merged["runs"]] == ["cpu:AMD EPYC 7R13/2t", "cuda:NVIDIA H100 80GB HBM3/2t"]
    table = markdown_report(merged)
    row = next(ln for ln in table.splitlines() if ln.startswith("| model.int8.onnx"))
    assert "18.00 (1.39x)" in row and "2.00 (3.00x)" in row


def test_merge_files_refuses_the_same_target_twice(tmp_path):
    a = _write(tmp_path / "a.json", results())
    with pytest.raises(BenchError, match="merge one run per target"):
        merge_files([a, _write(tmp_path / "b.json", results())])


def test_merge_files_needs_two_files(tmp_path):
    with pytest.raises(BenchError, match="at least two"):
        merge_files([_write(tmp_path / "a.json", results())])


def test_load_results_rejects_other_schema_corrupt_and_missing_files(tmp_path):
    with pytest.raises(BenchError, match="schema 'compress.bench/2'"):
        load_results(_write(tmp_path / "v2.json", {**results(), "schema": "compress.bench/2"}))
    (tmp_path / "cut.json").write_text(json.dumps(results())[:200])
    with pytest.raises(BenchError, match="not valid JSON"):
        load_results(tmp_path / "cut.json")
    with pytest.raises(BenchError, match="does not exist"):
        load_results(tmp_path / "none.json")
    damaged = results()
    del damaged["runs"][0]["jobs"][0]["results"][0]["latency"]
    with pytest.raises(BenchError, match="lacks"):
        load_results(_write(tmp_path / "damaged.json", damaged))
