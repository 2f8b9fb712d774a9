"""Where the attention heads and FFN neurons of a transformers model live, and how to cut them.

Each supported family names its projections differently (BERT's query/key/value, DistilBERT's
q_lin/k_lin/v_lin, GPT-2's fused c_attn Conv1D); the adapters below hide that, so pruning is one
piece of code. GPT-2's Conv1D stores its weight as (in, out), the transpose of nn.Linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compress.core.errors import InputError

LOOKED_FOR = ("BERT-style self-attention (query/key/value + output.dense)", "DistilBERT attention (q_lin/k_lin/v_lin/out_lin)",
              "GPT-2 attention (c_attn/c_proj Conv1D)")


def _is_conv1d(layer: nn.Module) -> bool:
    return type(layer).__name__ == "Conv1D" and hasattr(layer, "nf")


def out_features(layer: nn.Module) -> int:
    return layer.nf if _is_conv1d(layer) else layer.out_features


@torch.no_grad()
def keep_outputs(layer: nn.Module, index: torch.Tensor) -> None:
    """Keep only the output features ``index`` of a Linear or Conv1D, in place."""
    if _is_conv1d(layer):
        layer.weight = nn.Parameter(layer.weight[:, index].clone())
        layer.nf = len(index)
    else:
        layer.weight = nn.Parameter(layer.weight[index].clone())
        layer.out_features = len(index)
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias[index].clone())


@torch.no_grad()
def keep_inputs(layer: nn.Module, index: torch.Tensor) -> None:
    """Keep only the input features ``index`` of a Linear or Conv1D, in place (the bias stays)."""
    if _is_conv1d(layer):
        layer.weight = nn.Parameter(layer.weight[index].clone())
    else:
        layer.weight = nn.Parameter(layer.weight[:, index].clone())
        layer.in_features = len(index)


def output_rows(layer: nn.Module) -> torch.Tensor:
    """The weight as (out, in) whatever the layer type."""
    return layer.weight.t() if _is_conv1d(layer) else layer.weight


@dataclass
class AttentionBlock:
    """One layer's attention: the module holding the head count, its projections, the head size."""

    name: str
    module: nn.Module
    qkv: tuple[nn.Module, ...]  # three Linears, or one fused (q|k|v) Conv1D
    out: nn.Module
    head_dim: int

    @property
    def num_heads(self) -> int:
        return out_features(self.qkv[0]) // (self.head_dim * (3 if len(self.qkv) == 1 else 1))

    def head_columns(self, heads: torch.Tensor) -> torch.Tensor:
        """Feature indices (within one of q, k, v, and within the output projection's input) of ``heads``."""
        return (heads[:, None] * self.head_dim + torch.arange(self.head_dim)).flatten()

    def keep_heads(self, heads: torch.Tensor) -> None:
        heads = heads.sort().values
        cols = self.head_columns(heads)
        if len(self.qkv) == 1:  # fused q|k|v: the same heads out of each third
            width = self.num_heads * self.head_dim
            keep_outputs(self.qkv[0], torch.cat([cols + i * width for i in range(3)]))
        else:
            for layer in self.qkv:
                keep_outputs(layer, cols)
        keep_inputs(self.out, cols)
        count, width = len(heads), len(heads) * self.head_dim
        for attr, value in (("num_attention_heads", count), ("n_heads", count), ("num_heads", count),
                            ("all_head_size", width), ("split_size", width)):
            if hasattr(self.module, attr):
                setattr(self.module, attr, value)


@dataclass
class FfnBlock:
    name: str
    up: nn.Module
    down: nn.Module

    @property
    def width(self) -> int:
        return out_features(self.up)

    def keep_neurons(self, neurons: torch.Tensor) -> None:
        neurons = neurons.sort().values
        keep_outputs(self.up, neurons)
        keep_inputs(self.down, neurons)


def _attention(name: str, module: nn.Module, parent: dict[str, nn.Module]) -> AttentionBlock | None:
    if all(isinstance(getattr(module, a, None), nn.Linear) for a in ("query", "key", "value")):
        owner = parent.get(name)
        out = getattr(getattr(owner, "output", None), "dense", None)
        if isinstance(out, nn.Linear) and hasattr(module, "attention_head_size"):
            return AttentionBlock(name, module, (module.query, module.key, module.value), out, module.attention_head_size)
    if all(isinstance(getattr(module, a, None), nn.Linear) for a in ("q_lin", "k_lin", "v_lin", "out_lin")):
        return AttentionBlock(name, module, (module.q_lin, module.k_lin, module.v_lin), module.out_lin, module.attention_head_size)
    if _is_conv1d(getattr(module, "c_attn", None)) and _is_conv1d(getattr(module, "c_proj", None)) and hasattr(module, "head_dim"):
        if not getattr(module, "is_cross_attention", False):
            return AttentionBlock(name, module, (module.c_attn,), module.c_proj, module.head_dim)
    return None


def _ffn(name: str, module: nn.Module) -> FfnBlock | None:
    up = getattr(getattr(module, "intermediate", None), "dense", None)
    down = getattr(getattr(module, "output", None), "dense", None)
    if isinstance(up, nn.Linear) and isinstance(down, nn.Linear) and hasattr(module, "attention"):
        return FfnBlock(name, up, down)
    ffn = getattr(module, "ffn", None)
    if isinstance(getattr(ffn, "lin1", None), nn.Linear) and isinstance(getattr(ffn, "lin2", None), nn.Linear):
        return FfnBlock(name, ffn.lin1, ffn.lin2)
    mlp = getattr(module, "mlp", None)
    if _is_conv1d(getattr(mlp, "c_fc", None)) and _is_conv1d(getattr(mlp, "c_proj", None)):
        return FfnBlock(name, mlp.c_fc, mlp.c_proj)
    return None


def find_blocks(root: nn.Module) -> tuple[list[AttentionBlock], list[FfnBlock]]:
    """Every self-attention and FFN block under ``root``, in layer order; an error names what was looked for."""
    modules = dict(root.named_modules())
    # BERT's self-attention sits inside BertAttention, which holds the output projection `output.dense`
    parent = {name: modules[name.rpartition(".")[0]] for name in modules if name}
    attention = [b for name, m in modules.items() if (b := _attention(name, m, parent))]
    ffn = [b for name, m in modules.items() if (b := _ffn(name, m))]
    if not attention and not ffn:
        kinds = sorted({type(m).__name__ for m in modules.values() if "Attention" in type(m).__name__ or "Layer" in type(m).__name__})
        raise InputError(f"no attention heads or FFN blocks found (looked for {'; '.join(LOOKED_FOR)}); "
                         f"the model has {', '.join(kinds) or 'none of these'}: head and FFN pruning supports BERT, DistilBERT and GPT-2 families")
    return attention, ffn
