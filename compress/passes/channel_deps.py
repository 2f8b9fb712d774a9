"""Which layers share the output channels of each Conv, read from a torch.fx graph.

Every plain Conv output starts a channel *space*. Ops that treat channels independently
(activations, pooling, dropout, BatchNorm, a depthwise Conv) pass the space on; a residual add
joins the spaces of its inputs (it sums them channel by channel, so they must lose the same
indices); a cat along channels lays spaces side by side. A Conv, or a Linear after a flatten,
consumes the channels. A space that reaches anything else (the model output, a view, a matmul,
a grouped Conv) is blocked: its channels are kept and its Convs are reported with the reason.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from compress.core.errors import InputError

F = nn.functional
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
                        nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                        nn.Dropout3d)
_SPATIAL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
                    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
                    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Upsample)
# call_function targets and call_method names, in one set each
_ELEMENTWISE = {torch.relu, F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.mish, F.hardswish, F.hardsigmoid,
                torch.sigmoid, torch.tanh, F.dropout, "relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "detach"}
_SPATIAL = {F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
            F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.interpolate}
_ADDS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub, "add", "add_", "sub", "sub_"}
_SCALES = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div,
           "mul", "mul_", "div", "div_"}
_CATS = {torch.cat, torch.concat, torch.concatenate}


@dataclass(frozen=True)
class _Stop:
    """An op the walk cannot follow: every space reaching it is blocked, with this reason."""

    reason: str = ""


@dataclass(frozen=True)
class Flow:
    """How the channels (dim 1) of one tensor map to spaces.

    ``segments`` lists (space id, or None for channels that cannot be pruned, channel count) in
    order; after a flatten, each channel covers ``spatial`` consecutive features.
    """

    segments: tuple[tuple[int | None, int], ...]
    spatial: int = 1


@dataclass(frozen=True)
class Use:
    """A layer to slice when the channels of ``flow`` shrink: ``kind`` says which dimension."""

    path: str
    kind: str  # "batchnorm", "depthwise" (both: output features), "conv_in", "linear_in" (input features)
    flow: Flow


@dataclass
class Group:
    """Convs whose output channels must be pruned alike: one Conv, or several joined by adds."""

    convs: list[str]
    channels: int
    blocked: list[str] = field(default_factory=list)  # why its channels must be kept; empty when prunable


@dataclass
class ChannelGraph:
    groups: list[Group]
    group_of: dict[int, int]  # space id -> index into groups
    uses: list[Use]
    skipped: dict[str, str]  # Convs that start no space (grouped, shared, ...) and why


def channel_graph(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> ChannelGraph:
    """Trace ``module``, propagate the shapes of ``example_inputs`` and follow every Conv's channels."""
    try:
        traced = fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many types for untraceable Python
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"channel pruning follows channels through a torch.fx trace, and this model cannot be traced "
                         f"({reason}); remove data-dependent control flow from forward, or skip channel pruning") from exc
    with eval_mode(module), torch.no_grad():  # in train mode, BatchNorm running statistics would move
        ShapeProp(traced).propagate(*example_inputs)
    walk = _Walk(module, traced)
    for node in traced.graph.nodes:
        walk.visit(node)
    return walk.finish()


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then every submodule's own mode back (they may differ)."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


class _Walk:
    """One pass over the graph in topological order, with a union-find over channel spaces."""

    def __init__(self, module: nn.Module, traced: fx.GraphModule):
        self.modules = dict(module.named_modules())
        calls = Counter(n.target for n in traced.graph.nodes if n.op == "call_module")
        self.shared = {target for target, count in calls.items() if count > 1}  # a ReLU reused is fine; a Conv is not
        self.flows: dict[fx.Node, Flow] = {}
        self.parent: dict[int, int] = {}
        self.channels: dict[int, int] = {}
        self.convs: dict[int, list[str]] = {}
        self.reasons: dict[int, list[str]] = {}
        self.uses: list[Use] = []
        self.skipped: dict[str, str] = {}

    def visit(self, node: fx.Node) -> None:
        flowing = [a for a in node.all_input_nodes if a in self.flows]
        if node.op == "output":
            self._block_all(flowing, "feeds the model output")
            return
        if node.op == "call_module" and isinstance(self.modules[node.target], CONVS):
            out = self._conv(node)
        else:
            out = self._follow(node) if flowing else None
        if isinstance(out, _Stop):
            why = out.reason or f"used by {_describe(node, self.modules)}, which channel pruning cannot follow"
            self._block_all(flowing, why)
        elif out is not None:
            self.flows[node] = out

    def _conv(self, node: fx.Node) -> Flow | _Stop | None:
        conv, path = self.modules[node.target], node.target
        x = self.flows.get(node.args[0])
        if path in self.shared:
            self.skipped[path] = "called more than once in forward: every call would need the same channels"
            return _Stop(f"feeds {path}, which is called more than once in forward")
        if len(_shape(node.args[0]) or ()) != conv.weight.ndim:
            self.skipped[path] = "called on an unbatched input: channels are not on dim 1"
            return _Stop(f"feeds {path} as an unbatched input")
        if conv.groups == 1:
            if x is not None:
                self.uses.append(Use(path, "conv_in", x))
            return self._new_space(path, conv.out_channels)
        if conv.groups == conv.in_channels == conv.out_channels:
            if x is None:
                self.skipped[path] = "depthwise convolution whose input channels cannot be pruned"
                return None
            self.uses.append(Use(path, "depthwise", x))
            return x
        self.skipped[path] = f"grouped convolution (groups={conv.groups}): only plain and depthwise convolutions are pruned"
        return _Stop(f"feeds grouped convolution {path} (groups={conv.groups})")

    def _follow(self, node: fx.Node) -> Flow | _Stop | None:
        """The flow of the output of ``node``, an op that reads at least one flow."""
        if node.op == "call_module" and len(node.all_input_nodes) != 1:
            return _Stop()
        target = self.modules[node.target] if node.op == "call_module" else node.target
        if target in _ADDS:
            return self._join(node)
        if target in _CATS:
            return self._cat(node)
        if target in _SCALES:  # x * 2: channels stay; x * y (gating) mixes in another tensor
            numbers = [a for a in (*node.args, *node.kwargs.values()) if not isinstance(a, fx.Node)]
            scalar = len(node.all_input_nodes) == 1 and all(isinstance(a, (int, float)) for a in numbers)
            return self.flows[node.all_input_nodes[0]] if scalar else _Stop()
        if len(node.all_input_nodes) != 1 or node.args[0] not in self.flows:
            return _Stop()
        x, ndim = self.flows[node.args[0]], len(_shape(node.args[0]) or ())
        if node.target in self.shared and isinstance(target, (nn.modules.batchnorm._BatchNorm, nn.Linear)):
            return _Stop(f"feeds {node.target}, which is called more than once in forward")  # one slice must fit every call
        if isinstance(target, nn.modules.batchnorm._BatchNorm):
            self.uses.append(Use(node.target, "batchnorm", x))
            return x
        if isinstance(target, nn.Linear) and ndim == 2:
            self.uses.append(Use(node.target, "linear_in", x))
            return None
        if isinstance(target, _ELEMENTWISE_MODULES) or target in _ELEMENTWISE:
            return x
        if (isinstance(target, _SPATIAL_MODULES) or target in _SPATIAL) and ndim > 2:
            return x
        if isinstance(target, nn.Flatten):
            return self._flatten(node, x, target.start_dim, target.end_dim)
        if target in (torch.flatten, "flatten"):
            return self._flatten(node, x, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1))
        if target in (torch.mean, "mean"):  # global average pooling written as x.mean((2, 3))
            dims = _arg(node, 1, "dim", None)
            dims = (dims,) if isinstance(dims, int) else dims
            return x if dims is not None and all(d % ndim > 1 for d in dims) else _Stop()
        return _Stop()

    def _flatten(self, node: fx.Node, x: Flow, start: int, end: int) -> Flow | _Stop:
        """Only flatten(1) keeps each channel's features together, as a block of H*W."""
        shape = _shape(node.args[0])
        if start != 1 or end % len(shape) != len(shape) - 1:
            return _Stop()
        return Flow(x.segments, x.spatial * math.prod(shape[2:]))

    def _join(self, node: fx.Node) -> Flow | None:
        """A residual add or sub: the spaces of its inputs become one group, channel by channel."""
        tensors = [a for a in node.all_input_nodes if _shape(a) is not None]
        flows = [self.flows.get(a) for a in tensors]
        layouts = {(tuple(n for _, n in f.segments), f.spatial) for f in flows if f is not None}
        if None in flows or len(layouts) != 1:
            why = "added to channels that cannot be pruned" if None in flows else "added to another channel layout"
            self._block_all([a for a in tensors if a in self.flows], why)
            return None
        for position in range(len(flows[0].segments)):
            spaces = [f.segments[position][0] for f in flows]
            if None in spaces:
                for space in spaces:
                    if space is not None:
                        self._block(space, "added to channels that cannot be pruned")
                continue
            for space in spaces[1:]:
                self._union(spaces[0], space)
        return flows[0]

    def _cat(self, node: fx.Node) -> Flow | _Stop:
        """A cat along channels: its inputs' segments side by side (channels of other tensors stay fixed)."""
        tensors, dim = _arg(node, 0, "tensors", ()), _arg(node, 1, "dim", 0)
        shapes = [_shape(t) for t in tensors]
        flows = [self.flows.get(t) for t in tensors]
        if None in shapes or dim % len(shapes[0]) != 1 or any(f is not None and f.spatial != 1 for f in flows):
            return _Stop()
        return Flow(tuple(seg for f, s in zip(flows, shapes) for seg in (f.segments if f else ((None, s[1]),))))

    def _new_space(self, path: str, channels: int) -> Flow:
        space = len(self.parent)
        self.parent[space], self.channels[space], self.convs[space], self.reasons[space] = space, channels, [path], []
        return Flow(((space, channels),))

    def _find(self, space: int) -> int:
        while self.parent[space] != space:
            self.parent[space] = space = self.parent[self.parent[space]]
        return space

    def _union(self, a: int, b: int) -> None:
        a, b = self._find(a), self._find(b)
        if a != b:
            self.parent[b] = a
            self.convs[a] += self.convs.pop(b)
            self.reasons[a] += [r for r in self.reasons.pop(b) if r not in self.reasons[a]]

    def _block(self, space: int, reason: str) -> None:
        reasons = self.reasons[self._find(space)]
        if reason not in reasons:
            reasons.append(reason)

    def _block_all(self, nodes: list[fx.Node], reason: str) -> None:
        for node in nodes:
            for space, _ in self.flows[node].segments:
                if space is not None:
                    self._block(space, reason)

    def finish(self) -> ChannelGraph:
        roots = sorted({self._find(s) for s in self.parent})
        index = {root: i for i, root in enumerate(roots)}
        groups = [Group(self.convs[r], self.channels[r], self.reasons[r]) for r in roots]
        return ChannelGraph(groups, {s: index[self._find(s)] for s in self.parent}, self.uses, self.skipped)


def _shape(node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if hasattr(meta, "shape") else None


def _arg(node: fx.Node, position: int, keyword: str, default):
    return node.args[position] if len(node.args) > position else node.kwargs.get(keyword, default)


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(modules[node.target]).__name__})"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return getattr(node.target, "__name__", str(node.target))
