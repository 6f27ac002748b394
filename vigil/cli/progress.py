"""Progress on stderr that suits a terminal and a log file alike.

On a terminal, rich's live bar (rich comes with the training extra; without it, lines as in a
file). In a file or a pipe, plain lines and nothing that redraws in place: while a stage runs, one
at most every ``every`` seconds with the count, the elapsed time and an estimate of the time
left, and one when it ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from vigil.runtime.core.progress import clock, is_terminal


class ConsoleProgress:
    """A ``vigil.runtime.core.progress.Progress`` callback: ``progress(stage, done, total)``."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False,
                 every: float = 10.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet, self.every = quiet, every
        self._stage: str | None = None
        self._started = 0.0
        self._live = None
        self._task = None
        if not quiet and is_terminal(self.stream):
            try:
                from rich.console import Console
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)
            except ImportError:
                pass
            else:
                self._live = Progress(TextColumn("vigil: {task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TimeRemainingColumn(),
                                      console=Console(file=self.stream), transient=False)
                self._live.start()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if stage != self._stage:
            self._stage = stage
            self._started = self._last_line = time.perf_counter()
            if self._live is not None:
                self._task = self._live.add_task(stage, total=max(total, 1))
        if self._live is not None:
            self._live.update(self._task, completed=done, total=max(total, 1))
            return
        now = time.perf_counter()
        finished = done >= total
        if not finished and now - self._last_line < self.every:
            return
        self._last_line = now
        elapsed = now - self._started
        if finished:
            line = f"vigil: {stage}: " + (f"{total}/{total}, " if total > 1 else "")
            line += f"done in {clock(elapsed)}"
        else:
            line = f"vigil: {stage}: {done}/{total}, {clock(elapsed)} elapsed"
            if done:
                line += f", ~{clock(elapsed / done * (total - done))} left"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> "ConsoleProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
