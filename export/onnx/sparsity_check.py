"""Prove that n:m (2:4) weight sparsity survived export, by reading the ONNX file's weights.

Sparse tensor cores only help if the pattern reaches the engine builder intact, so this reads
the weight of every MatMul, Gemm and Conv back from the file. It only reads: export steps never
change weights.

Layouts differ by op. A Conv weight is [out, in, *kernel], as in PyTorch; a Gemm's B is
[out, in] with transB=1 and [in, out] without; a MatMul's B is [in, out] (the exporter stores a
Linear weight transposed, or behind a Transpose node). INT8 graphs keep the weight behind a
DequantizeLinear; with a zero point of 0 (symmetric weights) a zero stays a zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from compress.core.sparsity import check_n_m


def check_onnx_n_m(onnx_path: Path | str, n: int = 2, m: int = 4) -> dict:
    """Whether each weight initializer obeys n:m along its input dimension, and its fraction of zeros.

    Returns {"pattern": "2:4", "layers": {initializer name: bool}, "zeros": {initializer name: fraction}}.
    """
    graph = onnx.load(str(onnx_path)).graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    layers, zeros = {}, {}
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm", "Conv") or len(node.input) < 2:
            continue
        source = _weight_source(node.input[1], initializers, producers)
        if source is None:
            continue
        name, weight, transposed = source
        if node.op_type in ("MatMul", "Gemm") and weight.ndim != 2:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        stored_in_out = node.op_type == "MatMul" or (node.op_type == "Gemm" and not attrs.get("transB", 0))
        if stored_in_out != transposed:  # the op reads [in, out]: turn it into PyTorch's [out, in]
            weight = weight.T
        layers[name] = check_n_m(weight, n, m)
        zeros[name] = float((weight == 0).mean())
    return {"pattern": f"{n}:{m}", "layers": layers, "zeros": zeros}


def _weight_source(name: str, initializers: dict, producers: dict) -> tuple[str, np.ndarray, bool] | None:
    """(initializer name, its array, whether a Transpose sits between it and the op), following a
    2-D Transpose and a DequantizeLinear with zero points of 0; None for an activation."""
    transposed = False
    while name not in initializers:
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type == "Transpose":
            perm = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"), [1, 0])
            if perm != [1, 0]:
                return None
            transposed = not transposed
        elif node.op_type == "DequantizeLinear":
            if len(node.input) > 2 and node.input[2]:
                zero_point = initializers.get(node.input[2])
                if zero_point is None or numpy_helper.to_array(zero_point).any():
                    return None
        else:
            return None
        name = node.input[0]
    weight = numpy_helper.to_array(initializers[name])
    return None if transposed and weight.ndim != 2 else (name, weight, transposed)
