"""``PruneSearchConfig``: what ``--prune auto`` searches over and within what budget."""

from __future__ import annotations

from typing import ClassVar

from compress.core.errors import ConfigError
from compress.core.registry import MODEL_PASS, StepConfig, StepKind, register_config
from compress.passes.prune_spec import parse_prune

STRATEGIES = ("descend", "halving")


@register_config
class PruneSearchConfig(StepConfig):
    """Prune and distill several candidates from the original, and keep the fastest that stays
    within the tolerance on validation data held out from distillation and evaluation."""

    kind: ClassVar[StepKind] = MODEL_PASS

    # "descend": prune a step, distil back within the tolerance, prune the next (``descend``);
    # "halving": independent candidates, successive halving (``search``)
    strategy: str = "descend"
    # --prune specs: the chain's steps in order (descend) or the candidates (halving);
    # () = fitted to the model's depth (``ladder``)
    candidates: tuple[str, ...] = ()
    max_drop: float | None = None  # of the task metric; None = the run's tolerance (--max-drop or the metric's default)
    # Of the tolerance, the share the pruned model may spend: the rest is left for INT8 after it
    # (the run's end-to-end check holds the final file to the whole tolerance).
    pruning_share: float = 0.75
    budget_s: float = 1200.0  # all distillation of all candidates, rounds included
    rounds: int = 3  # successive halving: each round gives the survivors an equal share of the budget
    checks: int = 24  # descend: the student is scored after every budget/checks seconds of distillation
    learning_rate: float = 1e-4
    batch_size: int = 32
    attention_weight: float = 0.0  # of the attention-distribution loss (``DistillConfig.attention_weight``)
    seed: int = 0

    def __post_init__(self):
        if self.budget_s <= 0:
            raise ConfigError(f"the pruning search budget {self.budget_s}s must be above 0, e.g. --distill-budget 20m")
        if not 0 < self.pruning_share <= 1:
            raise ConfigError(f"pruning_share {self.pruning_share} must be in (0, 1]: the share of the tolerance pruning may spend")
        if self.max_drop is not None and not 0 <= self.max_drop < 1:
            raise ConfigError(f"max drop {self.max_drop} must be a fraction in [0, 1), e.g. 0.01 for 1 point")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown pruning search strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if not isinstance(self.checks, int) or self.checks < 1:
            raise ConfigError(f"the descent needs at least one check of the student, not {self.checks}")
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ConfigError(f"the pruning search needs at least one round, not {self.rounds}")
        for spec in self.candidates:
            parse_prune(spec)  # a bad candidate is refused before any work
