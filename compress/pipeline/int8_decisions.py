"""What the INT8 steps decided, for the manifest: a deployed file's configuration and its float nodes.

The recipe says what was asked for; when the accuracy guard escalated, what was written differs
(another range method, SmoothQuant, the most sensitive node groups kept in float). A reader of
the manifest alone (a deployment, an audit) sees which nodes run in float, and why.
"""

from __future__ import annotations


def int8_decisions(section: dict) -> dict:
    guard = section.get("guard") or {}
    search = section.get("search") or {}
    chosen = search.get("chosen") or {}
    decided_by = "the accuracy-aware search" if search and not guard else \
        "the accuracy guard's search" if guard.get("escalated") else "the recipe"
    sensitivity = search.get("sensitivity") or section.get("sensitivity") or []
    float_layers = section.get("float_layers") or chosen.get("float_layers") or []
    return {"mode": section.get("mode"), "decided_by": decided_by,
            "configuration": chosen.get("candidate") or section.get("describe") or section.get("chosen"),
            "float_layers": list(float_layers),
            "why_float": {r["layer"]: {k: r[k] for k in r if k.endswith("_alone")} for r in sensitivity if r["layer"] in set(float_layers)},
            # on validation data; the held-out check of every INT8 file is report.json's "tolerance"
            "tolerance_met_on_validation": section.get("tolerance_met", True if guard and not guard.get("escalated") else None)}
