"""Static INT8 ONNX files from one calibration: integer operators for CPU, QDQ for TensorRT.

Both files come from the same FP32 graph and the same activation ranges. The CPU file keeps
activations as uint8 with a zero point (the fast u8·s8 path of ONNX Runtime's x86 kernels) and
is the QDQ graph after ONNX Runtime's own QDQ→integer fusions (QuantizeLinear +
MatMulIntegerToFloat; QLinearConv and QLinearAdd where the Convs' outputs are quantized too),
saved once so it loads without them. The TensorRT file is the QDQ graph itself, int8 symmetric
with zero points 0, and is checked for TensorRT compatibility before it is written.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx

from compress.core.errors import QuantizationError
from export.int8.conv_outputs import conv_output_tensors
from export.int8.observers import RangeObserver
from export.int8.qdq import CPU_SCHEME, TENSORRT_SCHEME, QuantScheme, WeightedNode, insert_qdq, quantize_embedding_tables, weighted_nodes


@dataclass(frozen=True)
class NodeGroup:
    """Weighted nodes that read the same activation: they are quantized, or kept float, together."""

    label: str  # the PyTorch module path(s) when the exporter recorded them, else the node names
    nodes: tuple[WeightedNode, ...]

    @property
    def activation(self) -> str:
        return self.nodes[0].activation


def node_groups(model: onnx.ModelProto) -> list[NodeGroup]:
    by_node = {n.name: n for n in model.graph.node}
    groups: dict[str, list[WeightedNode]] = {}
    for w in weighted_nodes(model):
        groups.setdefault(w.activation, []).append(w)
    return [NodeGroup(",".join(_label(by_node[w.name]) for w in nodes), tuple(nodes)) for nodes in groups.values()]


def _label(node: onnx.NodeProto) -> str:
    """The module path the exporter recorded for ``node`` (torch.export's name scopes), else its name."""
    meta = {p.key: p.value for p in node.metadata_props}
    try:
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
    except (ValueError, SyntaxError):
        scopes = []
    if not scopes or not scopes[-1]:
        return node.name
    path = scopes[-1]
    return path[: -len(".linear")] if path.endswith(".linear") and "ScaledInputLinear" in meta.get("pkg.torch.onnx.class_hierarchy", "") else path


def select_groups(groups: list[NodeGroup], keep_float: set[str]) -> tuple[list[WeightedNode], list[str]]:
    """Nodes to quantize, and the labels kept float; an unknown label is an error naming the known ones."""
    labels = {g.label for g in groups}
    unknown = sorted(keep_float - labels)
    if unknown:
        raise QuantizationError(f"keep-float layer {unknown[0]!r} is not a quantizable layer of this model; known: {', '.join(sorted(labels)[:8])}...")
    nodes = [w for g in groups if g.label not in keep_float for w in g.nodes]
    return nodes, sorted(keep_float)


def calibration_tensors(model: onnx.ModelProto, groups: list[NodeGroup]) -> list[str]:
    """Every tensor a CPU or TensorRT file may quantize: the weighted nodes' inputs and the
    quantized Convs' outputs (none in a graph without Conv, so a transformer calibrates nothing more)."""
    nodes = [w for g in groups for w in g.nodes]
    return sorted({w.activation for w in nodes} | set(conv_output_tensors(model, nodes)))


def ranges_for(observers: dict[str, RangeObserver], tensors: Iterable[str], method: str, percentile: float,
               scheme: QuantScheme) -> dict[str, tuple[float, float]]:
    return {name: observers[name].range(method, scheme.symmetric, percentile) for name in set(tensors)}


def write_qdq(fp32: onnx.ModelProto, observers, nodes, method: str, percentile: float, scheme: QuantScheme, out_path: Path,
              conv_outputs: bool = False) -> None:
    """``conv_outputs``: also quantize the Convs' outputs, so ONNX Runtime runs them as QLinearConv
    (for the CPU file; the TensorRT file keeps Q/DQ on the inputs only)."""
    outputs = conv_output_tensors(fp32, nodes) if conv_outputs else []
    ranges = ranges_for(observers, [*(w.activation for w in nodes), *outputs], method, percentile, scheme)
    qdq = insert_qdq(fp32, ranges, nodes, scheme, outputs)
    if scheme is CPU_SCHEME:
        qdq = quantize_embedding_tables(qdq)
    _save(qdq, out_path)


def write_tensorrt_qdq(fp32: onnx.ModelProto, observers, nodes, method: str, percentile: float, out_path: Path) -> None:
    from export.tensorrt.qdq_check import require_tensorrt_qdq

    ranges = ranges_for(observers, [w.activation for w in nodes], method, percentile, TENSORRT_SCHEME)
    qdq = insert_qdq(fp32, ranges, nodes, TENSORRT_SCHEME)
    require_tensorrt_qdq(qdq, out_path.name)
    _save(qdq, out_path)


def write_cpu_integer(qdq_path: Path, out_path: Path, disabled_optimizers: tuple[str, ...] = ()) -> None:
    """Fold the QDQ graph into ONNX Runtime's integer operators and save the result.

    The extended level is the last one whose output is portable between CPUs (the "all" level
    adds layouts specific to the machine it ran on).
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="compress-int8-") as tmp:
        folded = Path(tmp) / out_path.name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        ort.InferenceSession(str(qdq_path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled_optimizers))
        shutil.move(str(folded), out_path)


def _save(model: onnx.ModelProto, path: Path) -> None:
    onnx.save(model, str(path), save_as_external_data=model.ByteSize() > 1_500_000_000)
