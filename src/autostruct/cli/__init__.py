"""Command-line interface: a thin layer over :mod:`autostruct.api`.

Each area registers its commands on the one typer app from its own module.
"""

from __future__ import annotations

from autostruct.cli import foundation, nas, prune  # noqa: F401  (each module registers its commands)
from autostruct.cli._app import app


def main() -> None:
    app(prog_name="autostruct")


__all__ = ["app", "main"]
