"""Dynamic INT8 in PyTorch itself: every ``nn.Linear`` becomes an ``Int8Linear`` running
``torch.ops.compress`` kernels (weights per output channel, activations per token at run time).

No calibration data: the activation scales come from each token as it arrives. A Linear
followed by an exact GELU (BERT's intermediate layer, or ``nn.Sequential(Linear, GELU)``) gets
the GELU fused into the GEMM's epilogue.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from compress.core.errors import ConfigError, QuantizationError
from compress.core.registry import TORCH_INT8, StepConfig, StepKind, register_config
from compress.ops.checks import MAX_REDUCTION

FILE_NAME = "model.int8.pt2"  # the torch.export program the pipeline writes
BACKENDS = ("kernels",)


@register_config
class Int8DynamicConfig(StepConfig):
    """Dynamic INT8 for PyTorch: per-channel weights, per-token activations, compress's kernels."""

    kind: ClassVar[StepKind] = TORCH_INT8

    backend: str = "kernels"  # kernels: torch.ops.compress (C++/CUDA, or their PyTorch references as a fallback)
    exclude: tuple[str, ...] = ()  # module paths (or prefixes) left in float, e.g. a sensitive classifier head
    fuse_gelu: bool = True  # run an exact GELU after a Linear inside the GEMM's epilogue

    def outputs(self) -> dict[str, str | None]:
        return {"pt2-int8": FILE_NAME}

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"Int8DynamicConfig backend {self.backend!r} is unknown; use 'kernels' "
                              "(for ONNX Runtime's dynamic INT8 use OnnxInt8Config(mode='dynamic'))")
        if isinstance(self.exclude, str):
            raise ConfigError("exclude must be a tuple of module paths, e.g. ('classifier',), not a string")

    def describe(self) -> str:
        return "dynamic per-token, compress kernels" + (f", {len(self.exclude)} excluded" if self.exclude else "")


def quantize_linear_layers_(module: nn.Module, config: Int8DynamicConfig) -> dict:
    """Swap the Linear layers of ``module`` in place; returns what was done, for the report."""
    from compress.ops.int8_linear import Int8Linear

    linears = [(name, m) for name, m in module.named_modules() if type(m) is nn.Linear]
    excluded = [name for name, _ in linears if _excluded(name, config.exclude)]
    unknown = [p for p in config.exclude if not any(n == p or n.startswith(p + ".") for n, _ in linears)]
    if unknown:
        raise QuantizationError(f"exclude names {unknown} match no Linear layer; the Linear layers are e.g. "
                                f"{[n for n, _ in linears[:4]]}")
    too_wide = [name for name, m in linears if m.in_features > MAX_REDUCTION]
    fused = set(_gelu_followers(module)) if config.fuse_gelu else set()
    quantized = []
    for name, linear in linears:
        if name in excluded or name in too_wide:
            continue
        activation = "gelu" if name in fused else "none"
        _set_submodule(module, name, Int8Linear.from_float(linear, activation))
        if activation == "gelu":
            _set_submodule(module, fused_activation_path(module, name), nn.Identity())
        quantized.append(name)
    if not quantized:
        raise QuantizationError("the model has no nn.Linear layer to quantize (Conv and custom layers stay float)")
    return {"quantized_layers": len(quantized), "fused_gelu": sorted(n for n in quantized if n in fused),
            "float_layers": excluded + too_wide}


def _excluded(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_exact_gelu(m: nn.Module) -> bool:
    if isinstance(m, nn.GELU):
        return m.approximate == "none"
    # transformers' GELUActivation: exact when it wraps torch's gelu
    return type(m).__name__ == "GELUActivation" and getattr(m, "act", None) is nn.functional.gelu


def _gelu_followers(module: nn.Module):
    """Linear layers whose output goes straight into an exact GELU, by structure."""
    for path, parent in module.named_modules():
        prefix = f"{path}." if path else ""
        dense, act = getattr(parent, "dense", None), getattr(parent, "intermediate_act_fn", None)
        if type(dense) is nn.Linear and act is not None and _is_exact_gelu(act):
            yield prefix + "dense"  # BertIntermediate and its relatives: act(dense(x))
        if isinstance(parent, nn.Sequential):
            children = list(parent.named_children())
            for (name, child), (_, nxt) in zip(children, children[1:]):
                if type(child) is nn.Linear and _is_exact_gelu(nxt):
                    yield prefix + name


def fused_activation_path(module: nn.Module, linear_path: str) -> str:
    parent_path, _, name = linear_path.rpartition(".")
    parent = module.get_submodule(parent_path) if parent_path else module
    if isinstance(parent, nn.Sequential):
        names = [n for n, _ in parent.named_children()]
        nxt = names[names.index(name) + 1]
        return f"{parent_path}.{nxt}" if parent_path else nxt
    return f"{parent_path}.intermediate_act_fn" if parent_path else "intermediate_act_fn"


def _set_submodule(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, new)


def quantize_kernels_(target, config: Int8DynamicConfig):
    """``quantize_(model, Int8DynamicConfig())``: quantize an ``nn.Module`` or a loaded ``Model`` in place
    and return it; the summary is left on ``target.int8_summary`` (a Model) or returned by
    ``quantize_linear_layers_``."""
    module = target if isinstance(target, nn.Module) else target.module
    if module is None:
        raise QuantizationError("Int8DynamicConfig quantizes PyTorch modules; this model is ONNX "
                                "(use compress MODEL --int8 for ONNX Runtime INT8)")
    if isinstance(module, torch.jit.ScriptModule):
        raise QuantizationError("a TorchScript module cannot have its layers swapped; load the model as a HF dir, "
                                ".pt2 or nn.Module")
    summary = quantize_linear_layers_(module, config)
    if not isinstance(target, nn.Module):
        target.notes.append(f"INT8 kernels: {summary['quantized_layers']} Linear layers, "
                            f"{len(summary['fused_gelu'])} with GELU fused")
    return target
