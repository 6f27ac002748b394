"""Sliding windows over a signal."""

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
