"""``--recipe FILE``: the steps of a run read from JSON, a recipe or an earlier output's manifest.json.

A manifest also says how that run was set up (threads, sequence length, batch sizes, its data
files, the input specs and task), so replaying one reproduces the directory it describes;
flags given on the command line win over what it recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from compress.core.errors import InputError
from compress.core.registry import StepConfig, config_from_json

MANIFEST_SCHEMA_PREFIX = "compress.manifest/"


@dataclass
class RecipeFile:
    steps: list[StepConfig]
    settings: dict = field(default_factory=dict)  # threads, sequence_length, batch_sizes
    data_files: dict = field(default_factory=dict)  # evaluation, calibration, distillation
    inputs: list[dict] | None = None
    task: str | None = None


def read_recipe_file(path: Path) -> RecipeFile:
    import compress.pipeline.steps  # noqa: F401  (every step config is registered, so any recipe can be read)

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"recipe file {path} does not exist; give a recipe JSON or an output's manifest.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"recipe file {path} is not readable JSON ({exc}); give a recipe JSON or an output's manifest.json") from None
    if isinstance(data, list):
        entries, recorded = data, {}
    elif isinstance(data, dict) and isinstance(data.get("recipe"), list):
        entries, recorded = data["recipe"], data if str(data.get("schema", "")).startswith(MANIFEST_SCHEMA_PREFIX) else {}
    else:
        raise InputError(f"recipe file {path} holds no recipe; expected a list of steps or an object with \"recipe\": [...]")
    steps = []
    for i, entry in enumerate(entries, 1):
        try:
            steps.append(config_from_json(entry))
        except InputError as exc:
            raise InputError(f"recipe file {path}, step {i}: {exc}") from None
    return RecipeFile(steps, recorded.get("settings", {}), recorded.get("data_files", {}), recorded.get("inputs"), recorded.get("task"))
