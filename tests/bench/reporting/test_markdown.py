from bench.reporting.markdown import markdown_report
from tests.bench.reporting.results_fixture import results


def test_markdown_report_has_a_row_per_result_with_ratio_memory_and_retention():
    text = markdown_report(results())
    assert "| artifact | backend | precision | size MB | b1 p50 / p90 / p99 ms | b1 samples/s | b1 vs reference | peak RSS MB | retention |" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| model.int8.onnx"))
    assert "| 18.00 / 18.90 / 21.60 |" in row and "| 1.39x |" in row and "cos 0.9917" in row and "| 500 |" in row
    assert "| original | torch-cpu-fp32 | fp32 |" in text and "reference |" in text


def test_markdown_report_names_the_environment_and_what_was_not_measured():
    text = markdown_report(results())
    assert "AMD EPYC 7R13" in text and "flags: avx2 fma" in text and "no GPU" in text and "tensorrt not installed" in text
    assert "- * on trt: tensorrt is not installed" in text
