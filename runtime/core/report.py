"""Shared pieces of reports: strict JSON, table cells, matplotlib on a headless machine."""

from __future__ import annotations

import json

import numpy as np


def json_text(value, indent: int | None = 2) -> str:
    """Strict JSON: NaN and infinities (an AUROC with one class, say) become null."""
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v
    return json.dumps(clean(value), indent=indent, allow_nan=False)


def format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.3f}"
    return str(value)


class MissingDependency(RuntimeError):
    """An optional package a feature needs is not installed; the message names the install."""


def pyplot():
    """matplotlib's pyplot on the Agg backend, or a clear error naming the install command."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency("--report needs matplotlib for its plots, which is not installed: "
                                "pip install 'vigil-edge[report]' (or leave out --report)") from None
    return plt
