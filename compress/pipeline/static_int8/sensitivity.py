"""Which node groups cost the most when quantized: the order in which the search leaves them in float."""

from __future__ import annotations

import time
from pathlib import Path

from compress.pipeline.static_int8.builder import StaticInt8Builder
from compress.pipeline.static_int8.config import Int8StaticConfig
from compress.pipeline.static_int8.evaluator import Evaluator

SCREEN_SAMPLES = 96  # validation samples each group is scored on
PROGRESS_EVERY_SECONDS = 30.0


def sensitivity_ranking(builder: StaticInt8Builder, config: Int8StaticConfig, evaluate: Evaluator, work: Path, over_budget, say,
                        screen_samples: int = SCREEN_SAMPLES) -> list[str]:
    """Quantize one node group at a time (everything else float) and rank the groups by what that costs.

    A group is the weighted nodes (MatMul, Gemm, Conv) that read one activation, so this works on
    any graph, ONNX inputs included: a transformer's Q/K/V projections form one group, a CNN's
    convolutions one group each. The rank is the task metric's drop; on a small validation set most
    single nodes flip no answer, so the outputs' relative error breaks the ties. Each group is
    scored on the first ``screen_samples`` validation samples only: a CNN has dozens of groups, and
    on all of a few hundred samples the analysis alone took most of a six-minute budget (OCR
    recogniser, 47 groups, 4.5 minutes), leaving none for the candidates it was for. Groups the
    budget left unscored rank last, in graph order."""
    prep = builder.prepare(config.smoothquant_alpha)
    screen = evaluate.subset(screen_samples)
    say(f"  sensitivity analysis over {len(prep.groups)} node groups (each quantized alone, scored on {screen.samples} validation samples)")
    rows, last_said = [], time.monotonic()
    for i, group in enumerate(prep.groups):
        if over_budget():
            say(f"  sensitivity analysis stopped by the budget after {i} of {len(prep.groups)} groups")
            break
        if time.monotonic() - last_said > PROGRESS_EVERY_SECONDS:
            say(f"  ... {i} of {len(prep.groups)} groups scored")
            last_said = time.monotonic()
        keep = {g.label for g in prep.groups if g is not group}
        path = work / "sensitivity.onnx"
        builder.write_cpu_qdq(config, path, keep)
        drop, error = screen.untimed(path)
        rows.append({"layer": group.label, "ops": sorted({n.op_type for n in group.nodes}), "drop_when_quantized_alone": drop,
                     "output_error_when_quantized_alone": error})
    rows.sort(key=lambda r: (-r["drop_when_quantized_alone"], -r["output_error_when_quantized_alone"]))
    scored = {r["layer"] for r in rows}
    builder.sensitivity = rows
    return [r["layer"] for r in rows] + [g.label for g in prep.groups if g.label not in scored]
