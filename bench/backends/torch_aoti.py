"""An AOTInductor package (``model.int8.aoti.*.pt2``) run from Python: compiled for one device, so
its inputs are staged there and the module is never cast or copied (a compiled package cannot be)."""

from __future__ import annotations

import torch

from bench.backends.torch_eager import TorchEagerBackend
from compress.core.model import Model


class TorchAotiBackend(TorchEagerBackend):
    def __init__(self, model: Model, device: str = "cpu", threads: int = 2):
        super().__init__(model, device, "fp32", threads, module=model.module)
        self.name = f"torch-aoti-{device}"

    def __enter__(self):
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self._threads)  # the package's CPU code runs on ATen's OpenMP pool too
        self._module = self._source
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
            torch.cuda.reset_peak_memory_stats(self._device)
        return self
