"""One way to show progress in every long loop (training, fine-tuning, supernet training, searches).

On a terminal a rich bar on stderr (description, bar, steps done/total, time left, live metrics); elsewhere (a
log file, a pipe, CI) the bar is silent and the loop prints one plain line per milestone (an epoch, a tenth of
the episodes) with :func:`progress_line`, so a person reading the log still sees it move.
"""

from __future__ import annotations

import sys

from rich.progress import Progress


def on_terminal() -> bool:
    """Whether stderr is a terminal (a bar is drawn) rather than a file or a pipe (plain lines are printed)."""
    return sys.stderr.isatty()


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
        disable=not (enabled and on_terminal()),
    )


def progress_line(enabled: bool, msg: str) -> None:
    """Print ``msg`` as one line on stderr where no bar is drawn (enabled, stderr not a terminal)."""
    if enabled and not on_terminal():
        print(msg, file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``; under a minute ``'42s'``; an hour or more ``'1h02m'``.

    >>> format_seconds(75.2), format_seconds(4.0), format_seconds(3725)
    ('1m15s', '4s', '1h02m')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
