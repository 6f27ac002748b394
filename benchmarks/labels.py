"""The labels a quality benchmark scores against, refused by name where a file has none."""

from __future__ import annotations

import numpy as np

from vigil.runtime.sensor.tables import DEFAULT_LABEL_COLUMN, Table


def labels_of(table: Table, column: str = DEFAULT_LABEL_COLUMN) -> np.ndarray:
    """``table``'s per-row labels; a ValueError naming its file where it has no label column."""
    if table.labels is None:
        raise ValueError(f"{table.source}: no label column {column!r}; a quality benchmark scores "
                         f"against one (1 on anomalous rows, 0 elsewhere), found columns "
                         f"{list(table.header) or list(table.features)}")
    return table.labels
