"""The ceiling benchmark times the real operators: its one-node graphs must compute the products."""

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

from bench.studies.int8_gemm_ceiling import ROWS, _matmul_graph


def test_matmul_graphs_compute_exact_products_in_onnxruntime():
    for integer in (False, True):
        proto = _matmul_graph(16, 8, integer)
        weight = numpy_helper.to_array(proto.graph.initializer[0])
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        # activations below 128: ORT's AVX2 u8 x s8 kernel sums pairs of products in saturating
        # int16 (vpmaddubsw), so full-range inputs are not exact on CPUs without VNNI
        x = rng.integers(0, 128, (ROWS, 16), dtype=np.uint8) if integer else rng.standard_normal((ROWS, 16)).astype(np.float32)
        (y,) = session.run(None, {"x": x})
        if integer:
            assert y.dtype == np.int32
            np.testing.assert_array_equal(y, x.astype(np.int32) @ weight.astype(np.int32))
        else:
            np.testing.assert_allclose(y, x @ weight, rtol=1e-5, atol=1e-4)
