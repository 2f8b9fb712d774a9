import pytest
import torch

from bench.backends.registry import ALL_BACKENDS, FAMILIES, parse_backends, unavailable_reason
from compress.core.errors import BenchError


def test_parse_backends_expands_families_and_keeps_suite_order():
    chosen, groups = parse_backends("ort,torch-cpu-fp32")
    assert chosen == ("torch-cpu-fp32", *FAMILIES["ort"]) and groups == (FAMILIES["ort"], ("torch-cpu-fp32",))
    assert parse_backends(None) == (ALL_BACKENDS, ())


def test_parse_backends_rejects_unknown_and_empty_lists():
    with pytest.raises(BenchError, match="'tpu' is unknown"):
        parse_backends("torch,tpu")
    with pytest.raises(BenchError, match="empty"):
        parse_backends(" , ")


def test_unavailable_reason_is_none_for_cpu_backends_and_names_the_fix_otherwise():
    assert unavailable_reason("torch-cpu-fp32") is None and unavailable_reason("ort-cpu") is None
    if not torch.cuda.is_available():
        assert "no CUDA device" in unavailable_reason("torch-cuda-fp16")
        assert "onnxruntime-gpu" in unavailable_reason("ort-cuda")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert "pip install tensorrt" in unavailable_reason("trt")
