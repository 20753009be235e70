"""Load a script of ``benchmarks/`` as a module, for the tests of its helpers and tiny runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as module ``name`` (its folder on the path: scripts import siblings)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_benchmark(name: str, argv: list[str], capsys: Any) -> tuple[Any, str, str]:
    """``benchmarks/<name>.py``'s ``main(argv)`` in this process: what the command runs, without a second
    interpreter importing torch and autostruct again (3-4 CPU seconds a script). Returns what ``main`` returned,
    and what it printed to stdout and stderr."""
    module = load_benchmark(name)
    capsys.readouterr()
    returned = module.main(argv)
    printed = capsys.readouterr()
    return returned, printed.out, printed.err
