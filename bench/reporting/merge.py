"""`bench merge`: results from several machines or GPUs in one file, one run per target."""

from __future__ import annotations

from pathlib import Path

from bench.reporting.schema import load_results, new_file
from compress.core.errors import BenchError


def merge_files(paths: list[Path]) -> dict:
    if len(paths) < 2:
        raise BenchError("merge needs at least two results files")
    runs, seen = [], {}
    for path in paths:
        for run in load_results(path)["runs"]:
            if run["target"] in seen:
                raise BenchError(f"target {run['target']!r} is in both {seen[run['target']]} and {path}; "
                                 "merge one run per target; re-run or drop one file")
            seen[run["target"]] = path
            runs.append(run)
    return new_file(runs)
