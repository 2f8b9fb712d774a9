"""Checking a recipe before any work: every step has a handler, reads what an earlier step (or
the input) made, does not change a model that an earlier step already used, and writes no file
that another step writes. A refusal is one line naming the step and why."""

from __future__ import annotations

from dataclasses import dataclass

from compress.core.errors import ConfigError
from compress.core.model import Model
from compress.core.registry import ARTIFACTS, MODEL_PASS, StepConfig, handler_for
from compress.pipeline import steps  # noqa: F401  (registers every step's handler before any is looked up)


@dataclass(frozen=True)
class PlannedStep:
    index: int  # 1-based, as messages name it
    config: StepConfig
    handler: object
    ends_model_passes: bool  # the last of a run of model passes: the changed model is measured and saved after it

    @property
    def label(self) -> str:
        return f"step {self.index} ({type(self.config).__name__})"


def plan_recipe(recipe: list[StepConfig], model: Model) -> list[PlannedStep]:
    if not recipe:
        raise ConfigError("the recipe is empty; give at least one step, e.g. OnnxExportConfig")
    available = {"onnx-source": 0} if model.is_onnx else {"pytorch": 0}  # artifact -> step that made it (0: the input)
    used_by: dict[str, int] = {}  # artifact -> the last step that read it without changing it
    written: dict[str, int] = {}
    checked = []
    for index, config in enumerate(recipe, 1):
        name = type(config).__name__
        if not isinstance(config, StepConfig):
            raise ConfigError(f"step {index} is a {name}, not a step config; a recipe is a list of configs such as OnnxExportConfig()")
        handler = handler_for(config)
        if handler is None:
            raise ConfigError(f"step {index} ({name}) has no handler: nothing in compress.pipeline runs it")
        kind = config.kind
        source = next((a for a in kind.consumes if a in available), None)
        if source is None:
            raise ConfigError(f"step {index} ({name}, {kind.name}) needs {_either(kind.consumes)}; "
                              f"{_what_there_is(available, model)}")
        changes_source = source in config.outputs()  # a model pass changes the model it reads
        if changes_source and source in used_by:
            raise ConfigError(f"step {index} ({name}) changes {ARTIFACTS[source]} after step {used_by[source]} "
                              f"({type(recipe[used_by[source] - 1]).__name__}) already used it; move step {index} before it")
        for file in filter(None, config.outputs().values()):
            if file in written:
                raise ConfigError(f"steps {written[file]} ({type(recipe[written[file] - 1]).__name__}) and {index} ({name}) "
                                  f"both write {file}; keep one of them")
            written[file] = index
        if not changes_source:
            used_by[source] = index
        available.update({artifact: index for artifact in config.outputs()})
        checked.append([index, config, handler])
    planned = []
    for i, (index, config, handler) in enumerate(checked):
        following = checked[i + 1][1] if i + 1 < len(checked) else None
        ends = config.kind is MODEL_PASS and (following is None or following.kind is not MODEL_PASS)
        planned.append(PlannedStep(index, config, handler, ends))
    return planned


def _either(artifacts: tuple[str, ...]) -> str:
    return " or ".join(ARTIFACTS[a] for a in artifacts)


def _what_there_is(available: dict[str, int], model: Model) -> str:
    made = [ARTIFACTS[a] for a, step in available.items() if step]
    start = "the input is an ONNX file (no PyTorch model to change)" if model.is_onnx else "the input is a PyTorch model"
    return start + (f", and earlier steps made {', '.join(made)}" if made else ", and no earlier step makes one") + \
        "; reorder the recipe or add the step that makes it"
