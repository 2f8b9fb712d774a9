"""SmoothQuant (Xiao et al., 2023): move activation outliers into the weights before INT8.

For a Linear layer y = x W^T, dividing input channel j by s_j and multiplying weight column j
by s_j leaves y unchanged in exact arithmetic, but flattens the few input channels whose
outliers would otherwise set the whole per-tensor activation scale. With
s_j = max|x_j|^alpha / max|W_j|^(1-alpha), alpha trades activation range against weight range.

Where the input comes from a LayerNorm that feeds only Linear layers, 1/s goes into the
LayerNorm's weight and bias (free at run time). Everywhere else (an activation function, or
the LayerNorm of a post-LN transformer whose output is also the residual) the layer gets an
explicit input scale, one elementwise multiply that is exported into the ONNX graph.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from compress.core.errors import ConfigError, QuantizationError
from compress.core.forward_loop import ForwardLoop
from compress.core.model import Model
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.passes.linear_inputs import LinearGroup, is_linear_like, linear_groups


@register_config
class SmoothQuantConfig(StepConfig):
    """Migrate activation outliers into the weights of every Linear fed by a LayerNorm or an activation."""

    kind: ClassVar[StepKind] = MODEL_PASS

    alpha: float = 0.85  # migration strength: 0 keeps activations as they are, 1 moves all range into weights

    def uses_calibration(self) -> bool:
        return True

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"SmoothQuant alpha {self.alpha} must be between 0 and 1 (0.5-0.9 is typical)")


class ScaledInputLinear(torch.nn.Module):
    """``linear(x * inv_scale)``: a smoothed layer whose input producer cannot absorb the scale."""

    def __init__(self, linear: torch.nn.Module, inv_scale: torch.Tensor):
        super().__init__()
        self.linear = linear
        self.register_buffer("inv_scale", inv_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inv_scale)


def smooth_quant_(model: Model, config: SmoothQuantConfig, forward_loop: ForwardLoop, example: dict[str, np.ndarray]) -> dict:
    """Smooth ``model.module`` in place. ``forward_loop(run_batch)`` calls ``run_batch`` on each
    calibration batch; ``example`` is one batch, used to trace which op feeds each layer."""
    if model.module is None:
        raise QuantizationError("SmoothQuant works on the PyTorch model; this input is ONNX, so quantize without --smoothquant")
    module = model.module
    with model.export_view() as traced:
        groups = linear_groups(traced, model.torch_args(example))
    if not groups:
        return {"alpha": config.alpha, "groups": [], "note": "no Linear layer is fed by a LayerNorm or an activation"}
    maxima = _input_channel_maxima(model, groups, forward_loop)
    report = []
    for group in groups:
        scale = _smoothing_scale(module, group, maxima[group.linears[0]], config.alpha)
        _apply(module, group, scale)
        report.append({"layers": list(group.linears), "input_from": group.feeder_kind,
                       "scale_in": group.feeder if group.foldable else "explicit multiply",
                       "max_input_before": round(float(maxima[group.linears[0]].max()), 4)})
    return {"alpha": config.alpha, "groups": report}


def _input_channel_maxima(model: Model, groups: list[LinearGroup], forward_loop: ForwardLoop) -> dict[str, torch.Tensor]:
    """Per input channel max |x| of each group's input, accumulated batch by batch."""
    module, maxima, hooks = model.module, {}, []

    def observe(name):
        def hook(_, args):
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0).float()
            maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x
        return hook

    for group in groups:  # one hook per group: its layers read the same tensor
        hooks.append(module.get_submodule(group.linears[0]).register_forward_pre_hook(observe(group.linears[0])))
    try:
        forward_loop(lambda batch: model.forward_numpy(batch))
    finally:
        for hook in hooks:
            hook.remove()
    missing = [g.linears[0] for g in groups if g.linears[0] not in maxima]
    if missing:
        raise QuantizationError(f"calibration never reached {missing[0]}; the forward loop must run the model on at least one batch")
    return maxima


def _in_features_weight(layer: torch.nn.Module) -> torch.Tensor:
    """The weight as [out, in] whatever the layer stores (Conv1D keeps [in, out])."""
    return layer.weight if isinstance(layer, torch.nn.Linear) else layer.weight.t()


def _smoothing_scale(module: torch.nn.Module, group: LinearGroup, act_max: torch.Tensor, alpha: float) -> torch.Tensor:
    weights = [_in_features_weight(module.get_submodule(p)).detach().abs().amax(0) for p in group.linears]
    w_max = torch.stack(weights).amax(0).clamp(min=1e-5)  # the layers share one input, so one scale
    scale = act_max.clamp(min=1e-5).pow(alpha) / w_max.pow(1 - alpha)
    scale = torch.where(act_max > 0, scale, torch.ones_like(scale))  # a dead channel needs no migration
    return scale.clamp(min=1e-5, max=1e5)


@torch.no_grad()
def _apply(module: torch.nn.Module, group: LinearGroup, scale: torch.Tensor) -> None:
    for path in group.linears:
        layer = module.get_submodule(path)
        if isinstance(layer, torch.nn.Linear):
            layer.weight.mul_(scale.to(layer.weight.dtype))
        else:
            layer.weight.mul_(scale.to(layer.weight.dtype)[:, None])
    if group.foldable:
        norm = module.get_submodule(group.feeder)
        norm.weight.div_(scale.to(norm.weight.dtype))
        if getattr(norm, "bias", None) is not None:
            norm.bias.div_(scale.to(norm.bias.dtype))
        return
    inv = (1.0 / scale).to(_in_features_weight(module.get_submodule(group.linears[0])).dtype)
    for path in group.linears:  # one shared buffer: the export then reads a single constant
        parent_path, _, name = path.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        layer = getattr(parent, name)
        assert is_linear_like(layer)
        setattr(parent, name, ScaledInputLinear(layer, inv))
