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
        # each stage's start, last line and bar: a batch's items and one long item's rows take
        # turns, and neither's estimate starts again when the other speaks
        self._stages: dict[str, dict] = {}
        self._live = None
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
        now = time.perf_counter()
        known = self._stages.get(stage)
        if known is None or (done < known["done"] and known["finished"]):  # (again: anew)
            known = self._stages[stage] = {"started": now, "last_line": now, "done": done,
                                           "finished": False, "task": None}
            if self._live is not None:
                known["task"] = self._live.add_task(stage, total=max(total, 1))
        known["done"] = done
        finished = done >= total
        if self._live is not None:
            self._live.update(known["task"], completed=done, total=max(total, 1))
            known["finished"] = finished
            return
        if known["finished"] or (not finished and now - known["last_line"] < self.every):
            return
        known["last_line"], known["finished"] = now, finished
        elapsed = now - known["started"]
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
