"""Progress lines on stderr: one per step with its duration; silent with --quiet."""

from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.timings: dict[str, float] = {}

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, title: str):
        self.say(f"• {title} ...")
        start = time.perf_counter()
        yield
        self.timings[title] = round(time.perf_counter() - start, 2)
        self.say(f"  done in {self.timings[title]:.1f}s")
