"""One rich progress-bar layout for every long loop (training, supernet training, searches)."""

from __future__ import annotations

import sys

from rich.progress import Progress


def progress_bar(enabled: bool) -> Progress:
    """A bar on stderr with ``{task.fields[info]}`` for live metrics; silent when disabled or not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
        disable=not (enabled and sys.stderr.isatty()),
    )
