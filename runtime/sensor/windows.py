"""Sliding windows over a signal, and alarm smoothing."""

from __future__ import annotations

import numpy as np


def sliding_windows(values: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Read-only view of the windows of ``values`` (rows, features): (count, window, features).

    Window ``i`` covers rows ``i*stride .. i*stride+window-1``; a signal shorter than ``window``
    gives zero windows.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"`window` and `stride` must be >= 1; received {window} and {stride}")
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"`values` must have shape (rows, features); received {values.shape}")
    count = window_count(len(values), window, stride)
    if count == 0:
        return np.empty((0, window, values.shape[1]), dtype=values.dtype)
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)[::stride]
    return view[:count].transpose(0, 2, 1)


def window_count(rows: int, window: int, stride: int = 1) -> int:
    """How many complete windows ``sliding_windows`` makes of ``rows`` rows."""
    return 0 if rows < window else (rows - window) // stride + 1


def window_ends(rows: int, window: int, stride: int = 1) -> np.ndarray:
    """Row index of the last sample of each window."""
    return np.arange(window_count(rows, window, stride)) * stride + window - 1


class AlarmFilter:
    """Alarm smoothing over consecutive windows.

    An alarm starts when ``consecutive`` windows in a row are above threshold, and stays on for
    ``hold`` windows after the last window above threshold (an off-delay, as alarm panels have).
    """

    def __init__(self, consecutive: int = 1, hold: int = 0) -> None:
        if consecutive < 1 or hold < 0:
            raise ValueError(f"`consecutive` must be >= 1 and `hold` >= 0; received "
                             f"{consecutive} and {hold}")
        self.consecutive = consecutive
        self.hold = hold
        self.reset()

    def reset(self) -> None:
        self._streak = 0
        self._remaining = 0

    def step(self, above: bool) -> bool:
        self._streak = self._streak + 1 if above else 0
        if self._streak >= self.consecutive:
            self._remaining = self.hold + 1
        if self._remaining > 0:
            self._remaining -= 1
            return True
        return False


def consecutive_alarms(above: np.ndarray, consecutive: int, hold: int = 0) -> np.ndarray:
    """Smoothed alarms of a sequence of above-threshold flags (see ``AlarmFilter``)."""
    alarm = AlarmFilter(consecutive, hold)
    return np.fromiter((alarm.step(bool(a)) for a in np.asarray(above, dtype=bool)), dtype=bool,
                       count=len(above))
