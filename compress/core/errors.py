"""Expected failures, shown to CLI users as one line (``--debug`` shows the traceback).

Programming errors are never wrapped in these: a bug should look like a bug.
"""


class CompressError(Exception):
    """Base of every expected failure. The message says what is wrong and how to fix it."""

    exit_code = 1


class InputError(CompressError):
    """The user's model file, input spec or data cannot be used as given."""


class ConfigError(InputError, ValueError):
    """A step config holds a value it cannot work with; raised from ``__post_init__``."""


class UnsafeLoadError(InputError):
    """Loading the file would run code the user has not agreed to run."""


class OutputError(CompressError):
    """The output location cannot be written safely."""


class ExportError(CompressError):
    """A model could not be exported, or its export does not match PyTorch."""


class QuantizationError(CompressError):
    """INT8 conversion failed."""


class ToleranceNotMet(CompressError):
    """No configuration met --max-drop; the best one tried was still written."""

    exit_code = 3


class BenchError(CompressError):
    """A benchmark cannot run or its results cannot be read or compared as asked."""


class RegressionFound(CompressError):
    """`bench compare` found a regression beyond the thresholds."""

    exit_code = 4


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message (libraries often start theirs with a newline)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
