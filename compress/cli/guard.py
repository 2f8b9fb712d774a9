"""Expected failures as one line and a non-zero exit, for every command; ``--debug`` shows the traceback.

SIGTERM (a container stop, ``timeout``, a cancelled CI job) is turned into the same unwinding as
Ctrl-C, so staged outputs are removed and a distillation saves its checkpoint either way; the
message names that checkpoint only where one was saved.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import click

from compress.core.errors import CompressError


INTERNAL_ERROR = 70  # EX_SOFTWARE: distinct from input errors (2) and a result outside the tolerance (3)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind as Ctrl-C does (every KeyboardInterrupt handler applies)."""


def guarded(debug: bool, action) -> None:
    try:
        with _sigterm_unwinds():
            action()
    except CompressError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        signal_name = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        checkpoint = getattr(exc, "checkpoint", None)
        resume = f"; the distillation saved {checkpoint}: run the same command with --resume to continue" if checkpoint else ""
        click.echo(f"{signal_name}; no output was written{resume}", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except Exception as exc:  # a bug, or a runtime (ONNX Runtime, PyTorch) failing in a way no check foresaw
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"error: unexpected {type(exc).__name__}: {first[:400]}; no output was written. This is a bug in compress "
                   "or a runtime it calls: rerun with --debug and report the traceback", err=True)
        sys.exit(INTERNAL_ERROR)


@contextlib.contextmanager
def _sigterm_unwinds():
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
