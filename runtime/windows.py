"""Sliding windows over a signal, runs of flags, and alarm smoothing."""

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


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in a 1-D boolean array."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def consecutive_alarms(above: np.ndarray, consecutive: int) -> np.ndarray:
    """Alarm where this and the ``consecutive - 1`` previous windows are all above threshold."""
    above = np.asarray(above, dtype=bool)
    if consecutive <= 1:
        return above.copy()
    streak = np.zeros(len(above), dtype=np.int64)
    count = 0
    for i, flag in enumerate(above):
        count = count + 1 if flag else 0
        streak[i] = count
    return streak >= consecutive
