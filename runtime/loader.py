"""``load``: open any Vigil artifact as the detector its metadata calls for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .core.artifact import open_artifact
from .core.spec import ImageSpec
from .sensor.detector import SensorDetector

if TYPE_CHECKING:
    from .camera.detector import ImageDetector


def load(
    path: str | Path,
    providers: Sequence[str] | str | None = None,
    threads: int | None = None,
    expect_sha256: str | None = None,
) -> SensorDetector | ImageDetector:
    """Load a Vigil artifact.

    Args:
        path: the .onnx file written by ``vigil export``.
        providers: onnxruntime execution providers, or a device name (``auto``, ``cpu``, ``cuda``,
            ``tensorrt``); unavailable ones fall back to CPU with a warning. Default CPU.
        threads: intra-op threads (default: onnxruntime's choice).
        expect_sha256: refuse the file unless its sha256 is this.
    """
    artifact = open_artifact(path, providers, threads, expect_sha256)
    if isinstance(artifact.spec, ImageSpec):
        # The frame side needs OpenCV, whose import costs ~0.1 s: sensor devices never pay for it.
        from .camera.detector import ImageDetector

        return ImageDetector(artifact)
    return SensorDetector(artifact)
