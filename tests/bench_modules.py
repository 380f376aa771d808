"""Import a script of ``bench/`` in a test, leaving ``sys.path`` and the environment as they
were (a benchmark may set thread variables for its own timings)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


@contextlib.contextmanager
def bench_module(name: str) -> Iterator[ModuleType]:
    """``bench/<name>.py`` as a module, with ``bench/`` importable while it is in use."""
    environ = dict(os.environ)
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))
        os.environ.clear()
        os.environ.update(environ)
