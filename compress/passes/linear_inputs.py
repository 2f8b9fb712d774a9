"""Which op feeds each Linear layer, read from the model's ``torch.export`` graph.

SmoothQuant needs to know, for every Linear-like layer, what produces its input: a LayerNorm
(whose affine parameters can absorb a per-channel scale) or an activation function (which
cannot, so an explicit scale goes in front of the layer), and whether that producer feeds
anything besides Linear layers (a post-LN transformer's residual branch does; folding a scale
into that LayerNorm would change the residual stream too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Ops that pass a tensor through with its channels (last axis) unchanged, in eval mode.
_TRANSPARENT = {"dropout", "clone", "contiguous", "alias", "view", "reshape", "_unsafe_view", "detach", "to", "_to_copy", "identity"}
_LAYER_NORMS = {"layer_norm", "native_layer_norm", "rms_norm"}
_ACTIVATIONS = {"gelu", "relu", "silu", "sigmoid", "tanh", "mish", "hardswish", "leaky_relu", "elu", "gelu_", "relu_", "silu_"}


@dataclass(frozen=True)
class LinearGroup:
    """Linear layers that read the same tensor, and what produces it."""

    linears: tuple[str, ...]  # module paths
    feeder_kind: str  # "layernorm" or "activation"
    feeder: str  # module path of the producer ("" when it is a functional call)
    foldable: bool  # a LayerNorm module that feeds only these layers: the scale can live in it


def is_linear_like(module: torch.nn.Module) -> bool:
    """``nn.Linear`` and transformers' ``Conv1D`` (GPT-2: a Linear with its weight stored transposed)."""
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def linear_groups(module: torch.nn.Module, example_args: tuple) -> list[LinearGroup]:
    if isinstance(module, torch.jit.ScriptModule):  # a TorchScript archive has no export graph to read
        return []
    linear_paths = {name for name, m in module.named_modules() if name and is_linear_like(m)}
    if not linear_paths:
        return []
    program = torch.export.export(module, example_args, strict=False)
    graph, user_inputs = program.graph, set(program.graph_signature.user_inputs)
    groups: dict[torch.fx.Node, list[str]] = {}
    for path in sorted(linear_paths):
        source = _input_of(graph, path, user_inputs)
        if source is not None:
            groups.setdefault(source, []).append(path)
    out = []
    for source, paths in groups.items():
        producer = _through_transparent_back(source)
        kind = _kind(producer)
        if kind is None:
            continue
        feeder = _module_path(producer)
        users = _real_users(producer)
        foldable = (kind == "layernorm" and bool(feeder) and feeder not in linear_paths
                    and all(_module_path(u) in paths for u in users) and _affine(module, feeder))
        out.append(LinearGroup(tuple(paths), kind, feeder, foldable))
    return out


def _input_of(graph: torch.fx.Graph, path: str, user_inputs: set[str]) -> torch.fx.Node | None:
    """The activation from outside module ``path`` that its first op reads (not a weight)."""
    for node in graph.nodes:
        if node.op != "call_function" or _module_path(node) != path:
            continue
        for arg in node.args:
            is_weight = isinstance(arg, torch.fx.Node) and arg.op == "placeholder" and arg.name not in user_inputs
            if isinstance(arg, torch.fx.Node) and not is_weight and _module_path(arg) != path:
                return _through_transparent_back(arg)
        return None
    return None


def _op_name(node: torch.fx.Node) -> str:
    target = node.target
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def _through_transparent_back(node: torch.fx.Node) -> torch.fx.Node:
    while node.op == "call_function" and _op_name(node) in _TRANSPARENT and _same_channels(node, node.args[0]):
        node = node.args[0]
    return node


def _real_users(node: torch.fx.Node) -> list[torch.fx.Node]:
    """Consumers of ``node``, looking through transparent ops (an eval-mode dropout, a view)."""
    out = []
    for user in node.users:
        if user.op == "call_function" and _op_name(user) in _TRANSPARENT and _same_channels(user, node):
            out.extend(_real_users(user))
        else:
            out.append(user)
    return out


def _same_channels(a, b) -> bool:
    if not isinstance(b, torch.fx.Node):
        return False
    va, vb = a.meta.get("val"), b.meta.get("val")
    return va is not None and vb is not None and va.shape[-1:] == vb.shape[-1:]


def _kind(node: torch.fx.Node) -> str | None:
    if node.op != "call_function":
        return None
    name = _op_name(node)
    if name in _LAYER_NORMS:
        return "layernorm"
    if name in _ACTIVATIONS:
        return "activation"
    return None


def _module_path(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _affine(module: torch.nn.Module, path: str) -> bool:
    norm = module.get_submodule(path)
    weight = getattr(norm, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.ndim == 1
