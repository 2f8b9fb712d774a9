"""Progress lines on stderr: one per step with its duration, silent with --quiet; warnings always,
and kept for the report."""

from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        """Something the user asked for was not done as asked: printed even with --quiet."""
        self.warnings.append(text)
        print(f"warning: {text}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, title: str):
        self.say(f"• {title} ...")
        start = time.perf_counter()
        yield
        self.timings[title] = round(time.perf_counter() - start, 2)
        self.say(f"  done in {self.timings[title]:.1f}s")
