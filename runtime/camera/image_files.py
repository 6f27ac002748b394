"""Image files as a frame source: a folder's files in name order, one item per file (an
unreadable one with its error), the masks of an MVTec AD or magnetic-tile layout left out."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from . import datasets
from .frame_source import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Frame, SourceError, SourceStats

log = logging.getLogger("vigil")


def folder_files(folder: Path, subfolders_hint: str | None = None,
                 argument: str = "source") -> list[Path]:
    """A folder's files in name order, without hidden files and the masks beside their images
    (as training reads the folder). Where some are named as images or videos, the others
    (``Thumbs.db``, ``notes.txt``) are passed over, as training and evaluation pass over them,
    with a warning: they would take frame numbers of their own; where none is, every file is
    kept, each decoded or reported unusable. ``subfolders_hint`` says how to read its
    subfolders (default: a quoted glob, as `vigil score` takes one); ``argument`` names the
    folder in errors."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    # a link whose target is gone is a file that cannot be read: kept, to get its skipped line
    files = [p for p in entries if p.is_file() or (p.is_symlink() and not p.exists())]
    special = [p.name for p in entries if p.exists() and not p.is_file() and not p.is_dir()]
    if special:  # a pipe, a device or a socket: it may never end, and was passed over unsaid
        log.warning("%s: %d entr%s that %s no regular file (a pipe, a device or a socket: %s) "
                    "%s not scored; give a camera or a stream as the source itself", folder,
                    len(special), "y" if len(special) == 1 else "ies",
                    "is" if len(special) == 1 else "are",
                    ", ".join(special[:5]) + (", ..." if len(special) > 5 else ""),
                    "is" if len(special) == 1 else "are", extra={"passed_over": len(special)})
    named = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS]
    if named and len(named) < len(files):
        others = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS
                  | VIDEO_EXTENSIONS]
        log.warning("%s: %d file(s) not named as an image or a video are not scored (%s%s); "
                    "give one as an input itself to score it", folder, len(others),
                    ", ".join(others[:5]), ", ..." if len(others) > 5 else "",
                    extra={"passed_over": len(others)})
        files = named
    subfolders = [p.name for p in entries if p.is_dir()]
    files = without_masks(files, str(folder))
    shown = ", ".join(subfolders[:5]) + (", ..." if len(subfolders) > 5 else "")
    hint = subfolders_hint or (_glob_hint(folder) if subfolders else "")
    if files and subfolders:
        log.warning("%s: its subfolders (%s) are not read; give each, or %s", folder, shown, hint,
                    extra={"passed_over": len(subfolders)})
    if not files:
        if subfolders:
            raise SourceError(
                f"`{argument}` folder {str(folder)!r} holds no files, only folders ({shown}), and "
                f"subfolders are not read: give one of them, or {hint}")
        raise SourceError(f"`{argument}` folder {str(folder)!r} contains no files")
    return files


def _glob_hint(folder: Path, limit: int = 2000) -> str:
    """A quoted glob that reaches the camera images below ``folder``: by their suffix as
    written (``*.JPG`` where they are so named) when one suffix holds them all, else every file
    (``without_masks`` then leaves the masks out). Masks are not counted: ``NAME_mask`` files,
    and PNGs beside an image of the same name (the magnetic-tile layout). At most ``limit``
    files are looked at."""
    counts: dict[str, int] = {}
    seen = 0
    for root, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        images = [Path(root) / n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
        masks = datasets.masks_among(images)
        for image in images:
            if image not in masks and not image.stem.endswith("_mask"):
                counts[image.suffix] = counts.get(image.suffix, 0) + 1
        seen += len(names)
        if seen >= limit:
            break
    pattern = f"*{next(iter(counts))}" if len(counts) == 1 else "*"
    return f"a glob that reaches into them ('{folder}/**/{pattern}', quoted)"


def only_masks(files: list[Path]) -> bool:
    """Whether every file is a mask: named ``NAME_mask``, or a PNG beside an image of its name
    (``x.png`` beside ``x.jpg``), as ``datasets.masks_among`` reads them on disk."""
    for path in files:
        if path.stem.endswith("_mask"):
            continue
        if path.suffix.lower() == ".png" and any(
                path.with_suffix(suffix).exists() for suffix in IMAGE_EXTENSIONS
                if suffix != ".png"):
            continue
        return False
    return True


def without_masks(files: list[Path], where: str) -> list[Path]:
    """``files`` without the masks of images among them (``x.png`` beside ``x.jpg``, or
    ``x_mask.png`` beside ``x.png``: ``datasets.masks_among``), as training reads them."""
    masks = datasets.masks_among(files)
    # a PNG beside a JPEG of its name is a mask by name (the magnetic-tile layout); one whose
    # pixels are not mostly two levels is a picture (a lossless copy of the frame): scored
    pictures = {p for p in masks if not p.stem.endswith("_mask") and not _looks_like_mask(p)}
    if pictures:
        log.warning("%s: %d PNG(s) beside an image of the same name hold pictures, not masks "
                    "(e.g. %s): they are scored as frames", where, len(pictures),
                    sorted(pictures)[0].name)
        masks -= pictures
    if masks:
        log.info("%s: %d mask file(s) of images it holds are not scored as frames (e.g. %s)",
                 where, len(masks), sorted(masks)[0].name)
    return [p for p in files if p not in masks]


MASK_LEVELS = 16  # a mask's pixels take at most this many gray levels, or
MASK_SHARE = 0.7  # at least this share of them lie at its darkest, brightest and two commonest
# levels (the magnetic tiles' antialiased masks: 97-100 %; thin antialiased cracks 75 %, a
# feathered mask 81 %, a 3-class mask's levels; a photo on a black background for 62 % of it:
# 63 %)


def _looks_like_mask(path: Path) -> bool:
    """Whether a PNG's pixels lie mostly at its darkest, brightest and commonest levels, as a
    defect mask's do, antialiased edges and all (16-bit images are read at their depth). One
    that cannot be read is left to be a mask: it was named as one."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if image is None:
        return True
    counts = np.bincount(image.ravel(), minlength=2)  # 8 or 16 bits: at most 65,536 levels
    levels = np.flatnonzero(counts)
    if len(levels) <= MASK_LEVELS:
        return True
    kept = {int(levels[0]), int(levels[-1]), *np.argsort(counts)[-2:].tolist()}
    return bool(counts[list(kept)].sum() >= MASK_SHARE * image.size)


class ImageFiles:
    """Image files in the given order; each yields one item, with an error if it is unusable.
    Frames are numbered from ``first_index`` (a part of a folder scored apart, as ``vigil batch``
    does, keeps the numbers a run over the whole folder gives)."""

    live = False
    fps = None

    def __init__(self, paths: list[Path], name: str, first_index: int = 0) -> None:
        self.paths = list(paths)
        self.name = name
        self.first_index = first_index
        self._stats = SourceStats(expected=len(self.paths))

    @property
    def stats(self) -> SourceStats:
        return self._stats

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths, self.first_index):
            image, quality, error = _read(path)
            self._stats.read += 1
            self._stats.errors += error is not None
            yield Frame(index, str(path), image, error, time.time(), jpeg_quality=quality)

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_images(paths: list[Path], source: str) -> None:
    """SourceError naming ``source`` unless one of ``paths`` decodes: a run that could score no
    frame is refused before its output is made (files are read until the first good one)."""
    first = None
    for path in paths:
        image, error = try_read_image(Path(path))
        if image is not None:
            return
        first = first or f"{Path(path).name}: {error}"
    raise SourceError(f"`source` {source!r}: none of its {len(paths)} files is an image that "
                      f"can be read; the first, {first}")


def try_read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(uint8 image, None) or (None, why it cannot be used)."""
    image, _, error = _read(path)
    return image, error


def _read(path: Path) -> tuple[np.ndarray | None, int | None, str | None]:
    """(uint8 image, the quality it was compressed at, None) or (None, None, why it cannot be
    used)."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        return None, None, f"not an image file (extension {suffix or 'none'!r})"
    try:
        return (*datasets.read_image_and_quality(path), None)
    except ValueError as error:
        return None, None, str(error)
