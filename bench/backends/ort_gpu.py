"""ONNX Runtime on the GPU: the CUDA and TensorRT execution providers (onnxruntime-gpu).

Inputs are copied to the GPU once per batch outside the timed call and bound with IO binding,
outputs stay on the GPU while timing; ORT falls back to the CPU silently when a provider
cannot load, so the session is checked for the provider it was asked for.
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path

import numpy as np

from bench.backends.base import Backend
from compress.core.errors import BenchError
from export.onnx.session import float32_outputs, session_feed

PROVIDERS = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def ort_provider_reason(provider: str) -> str | None:
    """None when ``provider`` can run here, else one line saying what is missing."""
    import onnxruntime as ort
    import torch

    name = PROVIDERS[provider]
    if name not in ort.get_available_providers():
        return f"onnxruntime has no {name} here (the CPU build is installed); pip install onnxruntime-gpu on a machine with an NVIDIA GPU"
    if not torch.cuda.is_available():
        return f"onnxruntime lists {name} but no CUDA device is visible"
    return None


class OrtProviderBackend(Backend):
    on_gpu = True

    def __init__(self, path: Path, provider: str, threads: int, disabled_optimizers=(), device_id: int = 0):
        self.name = f"ort-{'trt' if provider == 'tensorrt' else 'cuda'}"
        self._path, self._provider, self._threads, self._device = Path(path), provider, threads, device_id
        self._disabled = tuple(disabled_optimizers)

    def __enter__(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.log_severity_level = self._threads, 3
        cuda = ("CUDAExecutionProvider", {"device_id": self._device})
        providers = [cuda, "CPUExecutionProvider"]
        self._cache = tempfile.TemporaryDirectory(prefix="ort-trt-cache-")
        if self._provider == "tensorrt":  # engines are cached so warm-up does not rebuild them per shape
            providers.insert(0, ("TensorrtExecutionProvider", {"device_id": self._device, "trt_fp16_enable": False,
                                                               "trt_engine_cache_enable": True, "trt_engine_cache_path": self._cache.name}))
        self._session = ort.InferenceSession(str(self._path), options, providers=providers, disabled_optimizers=list(self._disabled))
        wanted = PROVIDERS[self._provider]
        if wanted not in self._session.get_providers():
            raise BenchError(f"onnxruntime could not start {wanted} for {self._path.name} (it fell back to {self._session.get_providers()})")
        return self

    def __exit__(self, *exc):
        del self._session
        gc.collect()
        self._cache.cleanup()

    def prepare(self, batch: dict[str, np.ndarray]):
        import onnxruntime as ort

        binding = self._session.io_binding()
        for name, value in session_feed(self._session, batch).items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", self._device))
        for out in self._session.get_outputs():
            binding.bind_output(out.name, "cuda", self._device)
        return binding

    def run_prepared(self, binding):
        self._session.run_with_iobinding(binding)
        binding.synchronize_outputs()  # the timed call ends when the GPU is done
        return binding

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return float32_outputs(self.run_prepared(self.prepare(batch)).copy_outputs_to_cpu())
