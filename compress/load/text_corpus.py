"""Real English text that ships with Python, split so calibration and evaluation never meet.

Calibration and distillation read standard-library docstrings; evaluation reads the language
reference topics in ``pydoc_data``. Any evaluation paragraph that also occurs among the
docstrings is dropped, so a model is never scored on text it was calibrated on.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re

_DOCSTRING_MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email.message", "enum",
    "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html.parser", "http.client", "http.cookiejar", "imaplib", "inspect", "ipaddress", "itertools", "json",
    "logging", "mailbox", "mimetypes", "multiprocessing", "optparse", "os", "pathlib", "pickle", "pprint",
    "queue", "random", "re", "sched", "secrets", "selectors", "shlex", "shutil", "smtplib", "socket",
    "socketserver", "sqlite3", "ssl", "statistics", "string", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "timeit", "traceback", "turtle", "typing", "unittest", "urllib.parse",
    "urllib.request", "uuid", "warnings", "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile",
)


def _clean(paragraph: str) -> str:
    return re.sub(r"\s+", " ", paragraph).strip()


def _is_prose(text: str, min_chars: int, max_chars: int) -> bool:
    if not (min_chars <= len(text) <= max_chars) or text.startswith((">>>", "...", "$")):
        return False
    letters = sum(c.isalpha() or c == " " for c in text)
    return letters / len(text) > 0.8 and len(text.split()) >= 6


def _paragraphs(doc: str) -> list[str]:
    return [_clean(p) for p in re.split(r"\n\s*\n", doc)]


@functools.cache
def calibration_texts() -> tuple[str, ...]:
    """Paragraphs of standard-library docstrings (module, class and function level), in a fixed order."""
    seen, out = set(), []
    for name in _DOCSTRING_MODULES:
        try:
            module = importlib.import_module(name)
        except Exception:  # a module missing from a slim Python build just contributes nothing
            continue
        objects = [module] + [obj for _, obj in sorted(vars(module).items()) if inspect.isclass(obj) or inspect.isfunction(obj)]
        for obj in objects:
            for para in _paragraphs(inspect.getdoc(obj) or ""):
                if para not in seen and _is_prose(para, 40, 1200):
                    seen.add(para)
                    out.append(para)
    return tuple(out)


@functools.cache
def evaluation_texts() -> tuple[str, ...]:
    """Paragraphs of the Python language reference (``pydoc_data.topics``), none of them in calibration."""
    from pydoc_data.topics import topics

    calibration = set(calibration_texts())
    calibration_starts = {t[:60] for t in calibration}
    seen, out = set(), []
    for key in sorted(topics):
        for para in _paragraphs(topics[key]):
            if para in seen or para in calibration or para[:60] in calibration_starts:
                continue
            if _is_prose(para, 40, 2000):
                seen.add(para)
                out.append(para)
    return tuple(out)
