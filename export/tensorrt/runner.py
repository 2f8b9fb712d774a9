"""Running a TensorRT engine (TensorRT 10/11 Python API), with buffers held as PyTorch CUDA tensors.

Shared by the bundle runtime (export/runtime.py) and the benchmark suite (bench/trt_engine.py).
An engine is bound to the TensorRT version and GPU that built it; a mismatch is reported as one
line, not a crash. Inputs are staged on the GPU outside the timed call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.core.errors import ExportError


class EngineRunner:
    """A deserialized engine and its execution context; ``with EngineRunner(plan) as run: run.run(feed)``."""

    def __init__(self, path: Path, device_id: int = 0, allow_host_code: bool = False):
        # A version-compatible engine carries TensorRT's lean runtime, a library that runs when the
        # engine loads: code from the model file, so it loads only where the caller opted in.
        self._path, self._device, self._allow_host_code = Path(path), device_id, allow_host_code

    def __enter__(self):
        import tensorrt as trt
        import torch

        self._trt, self._torch = trt, torch
        torch.cuda.set_device(self._device)
        torch.cuda.reset_peak_memory_stats(self._device)
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        runtime.engine_host_code_allowed = self._allow_host_code
        self._engine = runtime.deserialize_cuda_engine(self._path.read_bytes())
        if self._engine is None:
            hint = "" if self._allow_host_code else (" (a version-compatible engine carries TensorRT's lean runtime, code that loads "
                                                     "only with allow_engine_host_code=True)")
            raise ExportError(f"{self._path} is not an engine this TensorRT ({trt.__version__}) and GPU can load{hint}; rebuild it here")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream(self._device)
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        return self

    def __exit__(self, *exc):
        del self._context, self._engine
        self._torch.cuda.empty_cache()

    def _torch_dtype(self, name: str):
        return self._torch.from_numpy(np.empty(0, dtype=self._trt.nptype(self._engine.get_tensor_dtype(name)))).dtype

    def prepare(self, batch: dict[str, np.ndarray]) -> dict:
        torch = self._torch
        staged = {}
        for name in self._inputs:
            staged[name] = torch.from_numpy(np.ascontiguousarray(batch[name])).to(f"cuda:{self._device}", self._torch_dtype(name))
            self._context.set_input_shape(name, tuple(staged[name].shape))
        for name in self._outputs:  # output shapes are known once every input shape is set
            shape = tuple(self._context.get_tensor_shape(name))
            staged[name] = torch.empty(shape, dtype=self._torch_dtype(name), device=f"cuda:{self._device}")
        return staged

    def run_prepared(self, staged: dict) -> dict:
        for name in self._inputs:
            self._context.set_input_shape(name, tuple(staged[name].shape))
        for name, tensor in staged.items():
            self._context.set_tensor_address(name, tensor.data_ptr())
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise ExportError(f"TensorRT failed to run {self._path.name}")
        self._stream.synchronize()  # the timed call ends when the GPU is done
        return staged

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        staged = self.run_prepared(self.prepare(batch))
        return [staged[n].float().cpu().numpy() for n in self._outputs]

    def gpu_peak_bytes(self) -> int | None:
        """PyTorch's peak for the buffers plus the engine's own activation memory."""
        return int(self._torch.cuda.max_memory_allocated(self._device)) + int(getattr(self._engine, "device_memory_size_v2", 0) or self._engine.device_memory_size)
