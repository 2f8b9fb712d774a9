"""``--prune`` specs: 'heads=0.33,ffn=0.5,importance=taylor' or 'layers=2' or '2:4' -> pruning configs.

Parsed here, below the CLI, because the pruning search builds its candidates from the same specs
a user types."""

from __future__ import annotations

from compress.core.errors import ConfigError


def parse_prune(spec: str) -> list:
    """'heads=0.33,ffn=0.5,importance=taylor' -> [HeadPruneConfig(...)]; '2:4' -> [SemiStructuredConfig()]."""
    from compress.passes.prune_channels import ChannelPruneConfig
    from compress.passes.prune_heads import HeadPruneConfig
    from compress.passes.prune_layers import LayerPruneConfig
    from compress.passes.prune_unstructured import (
        MagnitudePruneConfig,
        SemiStructuredConfig,
    )

    values, steps, importance, scope, layers = {}, [], None, None, None
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if ":" in part and "=" not in part:
            n, _, m = part.partition(":")
            if not (n.isdigit() and m.isdigit()):
                raise ConfigError(f"--prune {part!r}: an n:m pattern is two whole numbers, like 2:4")
            steps.append(SemiStructuredConfig(n=int(n), m=int(m)))
            continue
        key, eq, value = part.partition("=")
        if not eq or key not in ("heads", "ffn", "layers", "channels", "sparsity", "importance", "scope"):
            raise ConfigError(f"--prune {part!r} is not understood; use heads=F, ffn=F, layers=N, channels=F, sparsity=F, 2:4, "
                              "importance=NAME or scope=global")
        if key == "importance":
            importance = value
            continue
        if key == "scope":
            scope = value
            continue
        if key == "layers":
            if not value.isdigit():
                raise ConfigError(f"--prune layers={value!r} must be a whole number of layers to remove, like 2")
            layers = int(value)
            continue
        try:
            values[key] = float(value)
        except ValueError:
            raise ConfigError(f"--prune {key}={value!r} must be a fraction like 0.5") from None
    if scope is not None and not ("heads" in values or "ffn" in values):
        raise ConfigError(f"--prune scope={scope} applies to heads= and ffn=; add one, e.g. heads=0.33,ffn=0.5,scope=global")
    if "heads" in values or "ffn" in values:
        kwargs = {"importance": importance} if importance else {}
        steps.insert(0, HeadPruneConfig(heads=values.get("heads", 0.0), ffn=values.get("ffn", 0.0), **kwargs, **({"scope": scope} if scope else {})))
    if "channels" in values:
        steps.insert(0, ChannelPruneConfig(ratio=values["channels"], **({"importance": importance} if importance else {})))
    if "sparsity" in values:
        steps.append(MagnitudePruneConfig(sparsity=values["sparsity"]))
    if layers is not None:  # first: the heads and neurons are then ranked in the layers that stay
        steps.insert(0, LayerPruneConfig(layers=layers))
    if not steps:
        raise ConfigError(f"--prune {spec!r} prunes nothing; give e.g. heads=0.33,ffn=0.5")
    return steps
