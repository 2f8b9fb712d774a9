"""The Pareto front of explored configurations (speed against a task metric's drop), for the reports."""

from __future__ import annotations

from collections.abc import Callable


def mark_pareto(points: list[dict], latency: Callable[[dict], float]) -> None:
    """Set each point's ``pareto``: no other scored point is both at least as fast and at least as
    accurate (``drop``), and better in one. A point never scored (``drop`` None) is not on it."""
    scored = [p for p in points if p["drop"] is not None]
    for p in points:
        p["pareto"] = p["drop"] is not None and not any(
            q is not p and latency(q) <= latency(p) and q["drop"] <= p["drop"] and (latency(q) < latency(p) or q["drop"] < p["drop"])
            for q in scored)
