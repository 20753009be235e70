"""The typer application object; command modules register on it (see ``autostruct.cli``)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="autostruct",
    help="Optimize the structure of CNNs for edge devices: multi-task channel pruning and NAS with IMPALA.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
