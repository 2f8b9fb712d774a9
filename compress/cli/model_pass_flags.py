"""The CLI flags of the PyTorch stages (--prune, --distill and friends) and the configs they make."""

from __future__ import annotations

from pathlib import Path

import click

from compress.core.errors import ConfigError

BUILTIN = "builtin"

MODEL_PASS_OPTIONS = [
    click.option("--prune", "prune", metavar="SPEC", help="Structured or sparse pruning, e.g. heads=0.33,ffn=0.5 (transformers; add "
                 "scope=global for per-layer counts from one ranking), layers=2 (whole transformer layers), channels=0.5 (CNNs), "
                 "sparsity=0.5 (unstructured) or 2:4; add importance=taylor|magnitude|l1."),
    click.option("--distill", "distill", metavar="FILE|builtin", help="Distill the pruned model from the original on this unlabeled "
                 "data (text lines, .npz, .jsonl); 'builtin' uses Python's docstrings."),
    click.option("--distill-budget", default="10m", show_default=True, metavar="TIME", help="Time limit of distillation, e.g. 90s, 10m."),
    click.option("--distill-steps", type=click.IntRange(1, None), help="Step limit of distillation (with or instead of the time budget)."),
    click.option("--distill-batch", default=16, show_default=True, type=click.IntRange(1, 4096), help="Distillation batch size."),
    click.option("--lr", "learning_rate", default=1e-4, show_default=True, type=float, help="Distillation learning rate."),
    click.option("--resume", is_flag=True, help="Continue an interrupted distillation from its last checkpoint."),
    click.option("--checkpoint-dir", type=click.Path(path_type=Path), help="Distillation checkpoints [default: OUT.checkpoints]."),
    click.option("--seed", default=0, show_default=True, type=click.IntRange(0, None), help="Seed for distillation (data order, init)."),
]


def model_pass_options(fn):
    for option in reversed(MODEL_PASS_OPTIONS):
        fn = option(fn)
    return fn


def model_pass_steps(common: dict) -> list:
    """Prune config(s) then a distill config, in the order they run."""
    from compress.cli.parse import parse_duration
    from compress.passes.distill import DistillConfig

    steps = parse_prune(common["prune"]) if common["prune"] else []
    if common["distill"]:
        budget = parse_duration(common["distill_budget"]) if common["distill_budget"] else None
        steps.append(DistillConfig(time_budget_s=budget, max_steps=common["distill_steps"], batch_size=common["distill_batch"],
                                   learning_rate=common["learning_rate"], seed=common["seed"]))
    elif common["resume"]:
        raise ConfigError("--resume continues a distillation; add --distill FILE as in the interrupted run")
    return steps


def distill_file(common: dict) -> Path | None:
    value = common["distill"]
    return None if not value or value == BUILTIN else Path(value)


def parse_prune(spec: str) -> list:
    """'heads=0.33,ffn=0.5,importance=taylor' -> [HeadPruneConfig(...)]; '2:4' -> [SemiStructuredConfig()]."""
    from compress.passes.prune_channels import ChannelPruneConfig
    from compress.passes.prune_heads import HeadPruneConfig
    from compress.passes.prune_layers import LayerPruneConfig
    from compress.passes.prune_unstructured import MagnitudePruneConfig, SemiStructuredConfig

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
