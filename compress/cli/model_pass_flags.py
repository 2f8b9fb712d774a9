"""The CLI flags of the PyTorch stages (--prune, --distill and friends) and the configs they make."""

from __future__ import annotations

from pathlib import Path

import click

from compress.core.errors import ConfigError

BUILTIN = "builtin"

MODEL_PASS_OPTIONS = [
    click.option("--prune", "prune", metavar="SPEC", help="Structured or sparse pruning, e.g. heads=0.33,ffn=0.5 (transformers; add "
                 "scope=global for per-layer counts from one ranking), layers=2 (whole transformer layers), channels=0.5 (CNNs), "
                 "sparsity=0.5 (unstructured) or 2:4; add importance=taylor|magnitude|l1. 'auto' (transformers) searches layers, heads and FFN, "
                 "distilled within --distill-budget, for the fastest within --max-drop (see --prune-search)."),
    click.option("--prune-search", type=click.Choice(["descend", "halving"]), default="descend", show_default=True,
                 help="How --prune auto searches: descend prunes a step, distills back within the tolerance and prunes further; "
                 "halving distills independent candidates and keeps halving them."),
    click.option("--distill", "distill", metavar="FILE|builtin", help="Distill the pruned model from the original on this unlabeled "
                 "data (text lines, .npz, .jsonl); 'builtin' uses Python's docstrings."),
    click.option("--distill-budget", default="10m", show_default=True, metavar="TIME", help="Time limit of distillation (with --prune auto, of the whole search), e.g. 90s, 10m."),
    click.option("--distill-steps", type=click.IntRange(1, None), help="Step limit of distillation (with or instead of the time budget)."),
    click.option("--distill-batch", default=16, show_default=True, type=click.IntRange(1, 4096), help="Distillation batch size."),
    click.option("--distill-attention", "attention_weight", default=0.0, show_default=True, type=click.FloatRange(0, None),
                 help="Weight of the loss between paired layers' attention distributions (TinyBERT, MiniLM); 0 leaves it off."),
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
    from compress.passes.prune_spec import parse_prune

    if common["prune"] and common["prune"].strip() == "auto":
        return [_prune_search(common, parse_duration)]
    steps = parse_prune(common["prune"]) if common["prune"] else []
    if common["distill"]:
        budget = parse_duration(common["distill_budget"]) if common["distill_budget"] else None
        steps.append(DistillConfig(time_budget_s=budget, max_steps=common["distill_steps"], batch_size=common["distill_batch"],
                                   learning_rate=common["learning_rate"], seed=common["seed"], attention_weight=common["attention_weight"]))
    elif common["resume"]:
        raise ConfigError("--resume continues a distillation; add --distill FILE as in the interrupted run")
    return steps


def _prune_search(common: dict, parse_duration):
    """--prune auto: the search prunes and distills its candidates itself, within --distill-budget."""
    from compress.pipeline.prune_search.config import PruneSearchConfig

    if common["resume"]:
        raise ConfigError("--resume continues one distillation; --prune auto runs several, so start it again without --resume")
    if common["distill_steps"]:
        raise ConfigError("--distill-steps does not apply to --prune auto, whose candidates share a time budget; give --distill-budget")
    budget = parse_duration(common["distill_budget"]) if common["distill_budget"] else PruneSearchConfig.budget_s
    return PruneSearchConfig(strategy=common["prune_search"], budget_s=budget, batch_size=common["distill_batch"],
                             learning_rate=common["learning_rate"], seed=common["seed"], attention_weight=common["attention_weight"])


def distill_file(common: dict) -> Path | None:
    value = common["distill"]
    return None if not value or value == BUILTIN else Path(value)
