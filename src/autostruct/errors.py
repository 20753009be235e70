"""User-facing errors.

Anything a user can fix (a bad name, a missing file, a value out of range) raises :class:`AutostructError`
with a message that says what is wrong, where, and how to fix it. The CLI turns these into a one-paragraph
message and exit code 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AutostructError(ValueError):
    """An input problem the user can fix. The message is shown verbatim by the CLI."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> AutostructError:
    """Build the error for an unknown registry name, listing the valid ones and the closest match."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return AutostructError(f"Unknown {kind} '{name}'.{hint} Valid {kind}s: {', '.join(valid)}.")
