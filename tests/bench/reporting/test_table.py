from bench.measure.latency import Latency
from bench.reporting.table import add_speedups, artifact_row, format_table


def _lat(bs, p50):
    return Latency(bs, 10, p50, p50 * 1.2, p50 * 1.5, p50)


def _rows():
    return [
        artifact_row("pytorch-fp32", "torch", "fp32", None, 4_000_000, {1: _lat(1, 2.0), 4: _lat(4, 6.0)}, None),
        artifact_row("onnx-int8", "onnxruntime", "int8", "model.int8.onnx", 1_000_000, {1: _lat(1, 0.5), 4: _lat(4, 2.0)},
                     {"metric": "cosine", "mean_cosine": 0.99, "worst_cosine": 0.97, "samples": 3}),
    ]


def test_artifact_row_keys_latency_by_batch_size_text():
    row = _rows()[1]
    assert set(row["latency"]) == {"1", "4"}
    assert row["latency"]["4"]["batch_size"] == 4
    assert row["file"] == "model.int8.onnx" and row["size_bytes"] == 1_000_000


def test_add_speedups_divides_baseline_p50_by_each_rows_p50():
    rows = _rows()
    add_speedups(rows)
    assert rows[0]["speedup_vs_pytorch-fp32"] == {"1": 1.0, "4": 1.0}
    assert rows[1]["speedup_vs_pytorch-fp32"] == {"1": 4.0, "4": 3.0}


def test_format_table_has_a_line_per_row_with_sizes_speedups_and_retention():
    rows = _rows()
    add_speedups(rows)
    lines = format_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("artifact") and "b1 p50/p90 ms" in lines[0] and "b4 p50/p90 ms" in lines[0]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("pytorch-fp32") and "4.0" in lines[2] and lines[2].endswith("reference")
    assert "4.00x" in lines[3] and "3.00x" in lines[3] and "cos 0.9900 (worst 0.9700)" in lines[3]


def test_a_speedup_over_a_noisy_reference_is_marked_in_the_row_and_the_table():
    noisy_reference = Latency(1, 30, 80.0, 200.0, 300.0, 100.0)  # a busy CPU: the 0.1 ms reference took 80 ms
    rows = [artifact_row("pytorch-fp32", "torch", "fp32", None, 4_000_000, {1: noisy_reference, 4: _lat(4, 6.0)}, None),
            artifact_row("onnx-int8", "onnxruntime", "int8", None, 1_000_000, {1: _lat(1, 0.04), 4: _lat(4, 2.0)}, None)]
    problems = add_speedups(rows)
    assert problems == ["pytorch-fp32 b1: p90 is 2.5x p50"]
    assert rows[1]["speedup_untrusted"] == {"1": "pytorch-fp32 b1: p90 is 2.5x p50"} and rows[0]["speedup_untrusted"] == {"1": problems[0]}
    lines = format_table(rows).splitlines()
    assert "2000.00x?" in lines[3] and "3.00x?" not in lines[3] and "3.00x" in lines[3]
    assert lines[-1].startswith("? not to be trusted, the timing was too noisy: pytorch-fp32 b1: p90 is 2.5x p50")


def test_steady_timings_leave_no_mark():
    rows = _rows()
    assert add_speedups(rows) == [] and all(r["speedup_untrusted"] == {} for r in rows)
    assert "?" not in format_table(rows)


def test_format_table_names_the_machine_and_its_cpu_kernel_path_above_the_times():
    rows = _rows()
    add_speedups(rows)
    env = {"cpu": {"model": "AMD EPYC"}, "isa": "avx512_vnni", "gpu": None, "threads": 2}
    lines = format_table(rows, env).splitlines()
    assert lines[0] == "timed on AMD EPYC, CPU kernels: avx512_vnni, 2 threads" and lines[1].startswith("artifact")
