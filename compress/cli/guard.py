"""Expected failures as one line and a non-zero exit, for every command; ``--debug`` shows the traceback."""

from __future__ import annotations

import sys

import click

from compress.core.errors import CompressError


def guarded(debug: bool, action) -> None:
    try:
        action()
    except CompressError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; no output was written (a distillation saved a checkpoint: run again with --resume)", err=True)
        sys.exit(130)
