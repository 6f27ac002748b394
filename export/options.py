"""What an export is asked for (``ExportOptions``) and what it did (``ExportReport``), for both
the sensor and the image exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vigil.runtime.core.spec import Threshold

from .precision import Precision


@dataclass(frozen=True)
class ExportOptions:
    precision: Precision = Precision.AUTO  # auto: INT8 where it holds parity and pays off
    force: bool = False                 # keep INT8 even when it misses the parity tolerance
    min_rank_correlation: float = 0.98  # Spearman of INT8 vs FP32 validation scores
    max_f1_drop: float = 0.02           # validation F1 loss allowed (when labels exist)
    fp32_tolerance: float = 1e-3        # max |Keras - ONNX FP32| per item, x max(1, |Keras|)

    def __post_init__(self) -> None:
        if self.force and Precision(self.precision) not in (Precision.INT8, Precision.MIXED):
            # auto chooses by parity and speed: forced, it kept an INT8 that missed parity and
            # was never timed (a review's U-Net: map correlation 0.78, written as INT8)
            raise ValueError(f"`force` keeps a quantized copy that misses the parity tolerance; "
                             f"it applies to precision int8 or mixed, not "
                             f"{Precision(self.precision).value} (--precision int8 --force)")


@dataclass(frozen=True)
class ExportReport:
    path: Path
    precision: str
    threshold: Threshold
    parity: dict
    messages: tuple[str, ...] = field(default_factory=tuple)  # warnings: a parity tolerance missed
    notes: tuple[str, ...] = field(default_factory=tuple)     # what --precision auto chose, and why
    pixel_threshold: Threshold | None = None  # image models: the map's, refitted as ``threshold``
