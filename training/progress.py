"""Training progress that reads well on a terminal and in a log file."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from vigil.runtime.core.progress import clock, is_terminal


def keras_verbose(quiet: bool, stream: TextIO | None = None) -> int:
    """Keras ``verbose``: 0 when quiet, the redrawing progress bar (1) on a terminal, and one line
    per epoch (2) otherwise: Keras redraws its bar in place even when output is a file."""
    if quiet:
        return 0
    stream = stream if stream is not None else sys.stdout
    return 1 if is_terminal(stream) else 2


class StepProgress:
    """Progress of a step loop: Keras' bar on a terminal; in a file, a line at every tenth of the
    steps with the loss, the elapsed time and an estimate of the time left."""

    def __init__(self, steps: int, verbose: int, stream: TextIO | None = None,
                 label: str = "step", metric: str = "loss") -> None:
        self.steps, self.verbose, self.label, self.metric = steps, verbose, label, metric
        self.stream = stream if stream is not None else sys.stdout
        self.terminal = verbose == 1 and is_terminal(self.stream)
        self.started = time.perf_counter()
        self._first: tuple[int, float] | None = None  # the first step reported, and when
        self._bar = None
        if self.terminal:
            import keras

            if label != "step":  # the bar itself shows no name
                print(f"{label}:", file=self.stream, flush=True)

            self._bar = keras.utils.Progbar(steps, verbose=1, stateful_metrics=[metric])
        self._every = max(1, steps // 10)

    def update(self, step: int, loss: float | None = None) -> None:
        """Step ``step`` of ``steps`` is done; ``loss`` is the metric's value (None: no metric)."""
        if not self.verbose:
            return
        now = time.perf_counter()
        if self._first is None:
            self._first = (step, now)
        if self._bar is not None:
            self._bar.update(step, [(self.metric, loss)] if loss is not None else None)
            return
        if step % self._every and step != self.steps:
            return
        elapsed = now - self.started
        # from the steps after the first, whose time holds the graph's compilation (a review's
        # U-Net said 0:51 left at step 6 of 60, where 0:16 were)
        first_step, first_time = self._first
        per_step = ((now - first_time) / (step - first_step) if step > first_step
                    else elapsed / step)
        left = per_step * (self.steps - step)
        value = f"  {self.metric} {loss:.4f}" if loss is not None else ""
        print(f"{self.label} {step}/{self.steps}{value}  elapsed {clock(elapsed)}  "
              f"left ~{clock(left)}", file=self.stream, flush=True)
