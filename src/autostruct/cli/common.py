"""Shared CLI plumbing: user errors (a full disk among them) become one paragraph on stderr and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from autostruct.errors import AutostructError
from autostruct.utils.io import disk_full_error, is_disk_full

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, soft_wrap=True)
console = Console(soft_wrap=True)


@contextlib.contextmanager
def _quiet_disk_full_in_threads() -> Iterator[None]:
    """A writer thread (TensorBoard's) that meets a full disk prints no traceback: its owner raises the same error
    at its next call, and the command reports that as one paragraph."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not is_disk_full(args.exc_value):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


def _error(message: object) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code=2)


def user_errors(fn: F) -> F:
    """Wrap a command so an :class:`AutostructError`, or a full disk met anywhere, prints ``error: ...`` and exits
    with code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _quiet_disk_full_in_threads():
                return fn(*args, **kwargs)
        except AutostructError as exc:
            raise _error(exc) from None
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            # A write outside autostruct's own writers (which name their file): name what the error knows.
            raise _error(disk_full_error(exc.filename, exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; finished work is saved. Re-run with --resume to continue.")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


class RunByDefault(TyperGroup):
    """``autostruct X CONFIG ...`` means ``autostruct X run CONFIG ...``; named subcommands and --help pass through.

    Without arguments: ``run`` too, unless the group shows its help then (``no_args_is_help``).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if (args and args[0] not in self.commands and args[0] not in ("--help", "-h")) or (
            not args and not self.no_args_is_help
        ):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def parse_int_list(text: str | None, what: str) -> list[int] | None:
    """Parse ``"5,7,9"`` into ``[5, 7, 9]``; a clear error otherwise."""
    if text is None or text.strip() == "":
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise AutostructError(f"{what} must be a comma-separated list of integers such as 5,7,9; got '{text}'.") from None


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


#: ``--import MODULE`` (repeatable) on every command that takes a model.
IMPORT_HELP = (
    "Module to import first (repeatable): a dotted name or a .py file, e.g. one that registers models with "
    "@register_model or defines a package.module:function factory."
)


def import_user_modules(modules: list[str] | None) -> None:
    """Import the ``--import`` modules; a failure is an AutostructError naming the option and the fix."""
    if not modules:
        return
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    api.import_modules(modules, option="--import")


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    """Parse ``--model-kwargs '{"depth": 3}'`` (a JSON object)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AutostructError(f"--model-kwargs must be a JSON object such as '{{\"depth\": 3}}'; {exc}.") from None
    if not isinstance(value, dict):
        raise AutostructError(f"--model-kwargs must be a JSON object such as '{{\"depth\": 3}}', got {text!r}.")
    clash = [k for k in ("num_classes", "in_channels", "image_size", "width") if k in value]
    if clash:
        raise AutostructError(
            f"--model-kwargs: {', '.join(clash)} cannot be set there: num_classes, in_channels and image_size come "
            "from --dataset (so the model fits its data) and width from --width. Remove them from --model-kwargs."
        )
    return value
