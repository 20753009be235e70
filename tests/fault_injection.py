"""A file system that fills up (or a process that dies) at a chosen write: faults for tests, no root needed.

:func:`install` replaces ``open`` (``builtins.open`` and ``io.open``: what pathlib, numpy, torch's ONNX exporter,
TensorBoard and autostruct's own writers call) with one whose files for writing count their bytes. The
``nth`` file opened for writing whose name contains ``file`` takes ``at_byte`` bytes; its next write then

- ``"full"``: writes what still fits and raises ``OSError(ENOSPC)``, and from then on every write of every file
  raises it (a full disk stays full), as a real file system does;
- ``"kill"``: writes what still fits and kills the process with SIGKILL (no ``finally``, no ``atexit``).

In a subprocess, :func:`main` reads the spec from ``$AUTOSTRUCT_TEST_FAULT`` (JSON) and runs the autostruct CLI::

    python -c "import fault_injection; fault_injection.main()" prune config.yaml
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "AUTOSTRUCT_TEST_FAULT"


@dataclass
class Fault:
    file: str
    nth: int = 1
    at_byte: int = 0
    then: str = "full"
    opened: int = 0
    disk_full: bool = False
    freed: bool = False

    def free(self) -> None:
        """Space freed: every write succeeds from now on."""
        self.disk_full, self.freed = False, True


class _FaultyFile:
    def __init__(self, fh: Any, fault: Fault, budget: int | None) -> None:
        self._fh, self._fault, self._budget = fh, fault, budget

    def write(self, data: Any) -> int:
        fault = self._fault
        if fault.freed:
            return self._fh.write(data)
        fits = 0 if fault.disk_full else len(data) if self._budget is None else min(len(data), self._budget)
        if fits < len(data):
            if fits:
                self._fh.write(data[:fits])
                self._fh.flush()
            if fault.then == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            fault.disk_full = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self._budget is not None:
            self._budget -= fits
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _FaultyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def __iter__(self) -> Any:
        return iter(self._fh)


def install(spec: dict[str, Any], setattr_: Callable[[Any, str, Any], None] = setattr) -> Fault:
    """Patch ``open`` (with ``setattr_``: pytest's ``monkeypatch.setattr`` undoes it after the test)."""
    fault = Fault(**spec)
    real_open = io.open

    def faulty_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(file, mode, *args, **kwargs)
        if not any(c in mode for c in "wax+") or isinstance(file, int):
            return fh
        budget = None
        if fault.file in os.fsdecode(file):
            fault.opened += 1
            if fault.opened == fault.nth:
                budget = fault.at_byte
        return _FaultyFile(fh, fault, budget)

    setattr_(builtins, "open", faulty_open)
    setattr_(io, "open", faulty_open)
    return fault


def main() -> None:
    """The autostruct CLI with the fault of ``$AUTOSTRUCT_TEST_FAULT`` (if set). With
    ``$AUTOSTRUCT_TEST_BARRIER`` (``FOLDER:N``) it starts once everything is imported and N processes have
    said so in FOLDER: processes started together then reach the run folder together, however long their
    imports took."""
    if ENV in os.environ:
        install(json.loads(os.environ[ENV]))
    from autostruct import api  # noqa: F401 - the slow imports, before the common start
    from autostruct.cli import main as cli_main

    if "AUTOSTRUCT_TEST_BARRIER" in os.environ:
        folder, n = os.environ["AUTOSTRUCT_TEST_BARRIER"].rsplit(":", 1)
        (Path(folder) / str(os.getpid())).touch()
        deadline = time.time() + 300
        while len(list(Path(folder).iterdir())) < int(n) and time.time() < deadline:
            time.sleep(0.01)
    cli_main()
