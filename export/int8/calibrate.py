"""Static INT8 calibration on the FP32 ONNX graph: activation ranges from real batches.

The graph is run by ONNX Runtime with the tensors to quantize added as outputs; each batch
updates one streaming observer per tensor and is then dropped, so memory stays bounded
however large the calibration set. Calibrating the exported graph (rather than the PyTorch
module) works for every input format, TorchScript and ONNX included.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from compress.core.errors import QuantizationError
from compress.core.forward_loop import ForwardLoop
from export.int8.observers import RangeObserver


def calibrate_onnx(fp32_path: Path, tensors: list[str], forward_loop: ForwardLoop, threads: int | None = None) -> dict[str, RangeObserver]:
    """One observer per tensor in ``tensors``, fed by every batch ``forward_loop`` runs."""
    from export.onnx.session import make_session

    model = onnx.load(str(fp32_path))
    existing = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    observers = {name: RangeObserver() for name in tensors}
    with tempfile.TemporaryDirectory(prefix="compress-calib-") as tmp:
        augmented = Path(tmp) / "calibration.onnx"
        onnx.save(model, str(augmented), save_as_external_data=model.ByteSize() > 1_500_000_000)
        session = make_session(augmented, threads)
        feeds = {i.name for i in session.get_inputs()}
        batches = 0

        def run_batch(batch: dict[str, np.ndarray]) -> None:
            nonlocal batches
            outputs = session.run(tensors, {k: v for k, v in batch.items() if k in feeds})
            for name, value in zip(tensors, outputs):
                try:
                    observers[name].update(value)
                except ValueError as exc:
                    raise QuantizationError(f"calibration batch {batches + 1}: tensor {name}: {exc}; check the calibration data") from exc
            batches += 1

        forward_loop(run_batch)
        del session
    if batches == 0:
        raise QuantizationError("calibration ran no batches; give --calib a file with at least one record")
    return observers
