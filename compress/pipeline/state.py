"""What the steps of one run share: the models, the output being built, the data, the rows.

Handlers read and extend this; the run loop (``compress.pipeline.run``) owns its life.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress.core.model import Model, clone_model
from compress.core.progress import Progress
from compress.pipeline.options import RunOptions
from compress.pipeline.run_data import RunData


@dataclass
class RunState:
    original: Model  # the input: the teacher, and what every artifact is scored against
    options: RunOptions
    progress: Progress
    stage: Path  # the staged output directory; renamed into place when the run succeeds
    report: dict
    data: RunData
    model: Model | None = None  # the PyTorch model as the steps so far left it (a copy once one changed it)
    reference: np.ndarray | None = None  # the original's outputs on the evaluation inputs
    rows: list[dict] = field(default_factory=list)  # one per measured artifact, in the order measured
    files: dict[str, Path] = field(default_factory=dict)  # artifact name (ARTIFACTS) -> its file in the stage
    runtime: dict = field(default_factory=dict)  # file -> how to load it (written into the manifest)
    changes: list[str] = field(default_factory=list)  # what the model passes since the last measurement did

    def __post_init__(self):
        if self.model is None:
            self.model = self.original

    def model_to_change(self) -> Model:
        """The model a pass may change in place: a copy of the original, made once."""
        if self.model is self.original:
            self.model = clone_model(self.original)
        return self.model
