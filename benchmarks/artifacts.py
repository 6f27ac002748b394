"""Artifacts loaded as the kind of detector a benchmark scores with.

``vigil.runtime.load`` returns a ``SensorDetector`` or an ``ImageDetector``, as the file's
metadata says; a benchmark that scores rows (or frames) needs the one kind, and refuses the other
by name here rather than failing on a missing attribute halfway through its run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vigil.runtime import SensorDetector, load

if TYPE_CHECKING:
    from vigil.runtime import ImageDetector


def load_sensor(path: str | Path, threads: int | None = 1, flag: str = "model") -> SensorDetector:
    """The sensor artifact at ``path``; a ValueError naming ``flag`` for an image artifact."""
    detector = load(path, threads=threads)
    if not isinstance(detector, SensorDetector):
        raise ValueError(f"{flag} {str(path)!r} is an image artifact; expected a sensor artifact "
                         f"(`vigil export` of a `vigil train sensor` model)")
    return detector


def load_image(path: str | Path, threads: int | None = 1, flag: str = "model") -> ImageDetector:
    """The image artifact at ``path``; a ValueError naming ``flag`` for a sensor artifact."""
    from vigil.runtime import ImageDetector  # OpenCV: imported only where frames are scored

    detector = load(path, threads=threads)
    if not isinstance(detector, ImageDetector):
        raise ValueError(f"{flag} {str(path)!r} is a sensor artifact; expected an image artifact "
                         f"(`vigil export` of a `vigil train image` model)")
    return detector
