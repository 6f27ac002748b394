"""Artifacts loaded as the kind of detector a benchmark scores with.

``vigil.runtime.load`` returns a ``SensorDetector`` or an ``ImageDetector``, as the file's
metadata says; a benchmark that scores rows (or frames) needs the one kind, and refuses the other
by name here rather than failing on a missing attribute halfway through its run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vigil.runtime import SensorDetector, load

if TYPE_CHECKING:
    from vigil.runtime import ImageDetector

Kind = TypeVar("Kind", "SensorDetector", "ImageDetector")


def load_sensor(path: str | Path, threads: int | None = 1, flag: str = "model") -> SensorDetector:
    """The sensor artifact at ``path``; a ValueError naming ``flag`` for an image artifact."""
    return _load_as(path, SensorDetector, threads, flag)


def load_image(path: str | Path, threads: int | None = 1, flag: str = "model") -> ImageDetector:
    """The image artifact at ``path``; a ValueError naming ``flag`` for a sensor artifact."""
    from vigil.runtime import ImageDetector  # OpenCV: imported only where frames are scored

    return _load_as(path, ImageDetector, threads, flag)


def _load_as(path: str | Path, kind: type[Kind], threads: int | None, flag: str) -> Kind:
    detector = load(path, threads=threads)
    if not isinstance(detector, kind):
        wanted, found = (("sensor", "image") if kind is SensorDetector else ("image", "sensor"))
        raise ValueError(f"{flag} {str(path)!r} is {'an' if found == 'image' else 'a'} {found} "
                         f"artifact; expected {'an' if wanted == 'image' else 'a'} {wanted} "
                         f"artifact (`vigil export` of a `vigil train {wanted}` model)")
    return detector
