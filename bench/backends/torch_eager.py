"""PyTorch eager on CPU or CUDA in FP32, FP16 or BF16, and PyTorch's dynamic INT8 (a peer).

The module is copied before it is cast or moved, so the caller's model is never changed.
Floating inputs are cast to the compute dtype; integer inputs (token ids, masks) are not.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import numpy as np
import torch

from bench.backends.base import Backend
from compress.core.model import Model, flatten_outputs

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def dynamic_int8(module: torch.nn.Module) -> torch.nn.Module:
    """PyTorch's own dynamic INT8 of every Linear: the peer users try first."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # torch.ao prints a migration notice
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def serialized_bytes(module: torch.nn.Module) -> int:
    """Bytes of the state dict as torch.save writes it: counts packed INT8 weights correctly."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


class TorchEagerBackend(Backend):
    def __init__(self, model: Model, device: str = "cpu", precision: str = "fp32", threads: int = 2, module: torch.nn.Module | None = None):
        if precision not in DTYPES:
            raise ValueError(f"precision {precision!r}: use one of {', '.join(DTYPES)}")
        self.name = f"torch-{device}-{precision}"
        self.on_gpu = torch.device(device).type != "cpu"
        self._model, self._device, self._dtype, self._threads = model, torch.device(device), DTYPES[precision], threads
        self._source = module if module is not None else model.module

    def __enter__(self):
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        module = self._source
        if self._dtype != torch.float32 or self._device.type != "cpu":
            with warnings.catch_warnings():  # TorchScript's .to() reads each parameter's .grad and warns about it
                warnings.simplefilter("ignore", UserWarning)
                module = copy.deepcopy(module).to(device=self._device, dtype=self._dtype)
        try:
            self._module = module.eval()
        except NotImplementedError:  # a torch.export program's module: traced in eval mode, and it refuses .eval()
            self._module = module
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
            torch.cuda.reset_peak_memory_stats(self._device)
        return self

    def __exit__(self, *exc):
        del self._module
        torch.set_num_threads(self._saved_threads)
        if self._device.type == "cuda":
            torch.cuda.empty_cache()

    def prepare(self, batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        args = self._model.torch_args(batch)
        return tuple((a.to(self._dtype) if a.is_floating_point() else a).to(self._device) for a in args)

    def run_prepared(self, staged: tuple[torch.Tensor, ...]):
        with torch.inference_mode():
            out = self._module(*staged)
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)  # the timed call ends when the GPU is done
        return out

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = self.run_prepared(self.prepare(batch))
        return [t.detach().float().cpu().numpy() for t in flatten_outputs(out)]

    def gpu_peak_bytes(self) -> int | None:
        return int(torch.cuda.max_memory_allocated(self._device)) if self._device.type == "cuda" else None
