"""The progress protocol of long runs (evaluation, export, bench): they report ``(stage, done,
total)`` to a callback and never draw anything themselves; the CLI draws it (``vigil.cli.progress``)."""

from __future__ import annotations

from typing import Callable

Progress = Callable[[str, int, int], None]


def silent(stage: str, done: int, total: int) -> None:
    """The default: report nothing."""


def clock(seconds: float) -> str:
    """``m:ss`` for progress lines."""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
