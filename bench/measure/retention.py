"""Accuracy retention against the original model, by task, on held-out inputs."""

from __future__ import annotations

import numpy as np


def cosine_retention(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Cosine similarity per sample between embeddings: mean and worst case."""
    ref, cand = _rows(reference), _rows(candidate)
    denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    cos = np.sum(ref * cand, axis=1) / np.maximum(denom, 1e-12)
    return {"metric": "cosine", "mean_cosine": round(float(cos.mean()), 6), "worst_cosine": round(float(cos.min()), 6), "samples": len(cos)}


def top1_agreement(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """How often the candidate's top class equals the original's; plus accuracy of both with labels."""
    ref_top, cand_top = _rows(reference).argmax(1), _rows(candidate).argmax(1)
    out = {"metric": "top1_agreement", "top1_agreement": round(float((ref_top == cand_top).mean()), 6), "samples": len(ref_top)}
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(ref_top):
            raise ValueError(f"{len(labels)} labels for {len(ref_top)} samples")
        out["reference_accuracy"] = round(float((ref_top == labels).mean()), 6)
        out["accuracy"] = round(float((cand_top == labels).mean()), 6)
        out["accuracy_drop"] = round(out["reference_accuracy"] - out["accuracy"], 6)
    return out


def relative_error(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """||candidate - reference|| / ||reference|| per sample: mean and worst case."""
    ref, cand = _rows(reference).astype(np.float64), _rows(candidate).astype(np.float64)
    err = np.linalg.norm(cand - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-12)
    return {"metric": "relative_error", "mean_relative_error": round(float(err.mean()), 6), "worst_relative_error": round(float(err.max()), 6), "samples": len(err)}


def retention(task: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> dict:
    if reference.shape != candidate.shape:
        raise ValueError(f"outputs differ in shape: reference {reference.shape}, candidate {candidate.shape}")
    if task == "embedding":
        return cosine_retention(reference, candidate)
    if task == "classification":
        return top1_agreement(reference, candidate, labels)
    return relative_error(reference, candidate)


# The task metrics the cells below already show; another one (ctc-exact, perplexity, a user's) is added to the cell.
SHOWN = ("cosine", "top1", "accuracy", "relative-error")


def headline(result: dict) -> str:
    """One short cell for a table."""
    task = result.get("task")
    if task is not None and task["name"] not in SHOWN:
        return f"{task['headline']}, {_headline(result)}"
    return _headline(result)


def _headline(result: dict) -> str:
    if result["metric"] == "cosine":
        return f"cos {result['mean_cosine']:.4f} (worst {result['worst_cosine']:.4f})"
    if result["metric"] == "top1_agreement":
        text = f"top-1 agree {100 * result['top1_agreement']:.1f}%"
        return text + (f", acc {100 * result['accuracy']:.1f}%" if "accuracy" in result else "")
    return f"rel err {result['mean_relative_error']:.2e} (worst {result['worst_relative_error']:.2e})"


def _rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def primary_retention(result: dict) -> tuple[str, float]:
    """The one number, higher is better, that a regression gate compares."""
    metric = result.get("metric")
    if metric == "cosine":
        return "mean_cosine", float(result["mean_cosine"])
    if metric == "top1_agreement":
        key = "accuracy" if "accuracy" in result else "top1_agreement"
        return key, float(result[key])
    if metric == "relative_error":
        return "-mean_relative_error", -float(result["mean_relative_error"])
    raise ValueError(f"unknown retention metric {metric!r}")
