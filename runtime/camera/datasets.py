"""Labeled image sets on disk: the MVTec AD layout and plain folders.

MVTec AD: ``ROOT/train/good/``, ``ROOT/test/good/``, ``ROOT/test/<defect>/`` and optional
``ROOT/ground_truth/<defect>/<name>_mask.png``. Plain folders: normal folder(s) and anomalous
folder(s); a mask is a same-stem ``.png`` beside a non-PNG image, or ``<stem>.png`` /
``<stem>_mask.png`` in a mask folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from .image_header import too_large

log = logging.getLogger("vigil")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    anomalous: bool
    defect: str             # "good" for normal images
    mask: Path | None = None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file as uint8 (gray or BGR); ValueError names the file when it cannot."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"image {str(path)!r} cannot be read: {error.strerror or error}") from None
    if not data:
        raise ValueError(f"image {str(path)!r} is an empty file")
    oversized = too_large(data)  # from the header: a small file can hold gigabytes of pixels
    if oversized is not None:
        raise ValueError(f"image {str(path)!r}: {oversized}")
    if path.suffix.lower() in (".jpg", ".jpeg", ".jpe") and _jpeg_truncated(data):
        raise ValueError(f"image {str(path)!r} is a truncated JPEG (no end-of-image marker "
                         "after the image data)")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # OpenCV raises for a header over its own pixel limit
        limit = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30))
        why = (f"its header claims more than OpenCV's limit of {int(limit) / 1e6:.0f} MP "
               f"(OPENCV_IO_MAX_IMAGE_PIXELS), so it was not decoded"
               if "CV_IO_MAX_IMAGE_PIXELS" in str(error) and limit.isdigit()
               else f"OpenCV refused it: {' '.join(str(error).split())[-160:]}")
        raise ValueError(f"image {str(path)!r}: {why}") from None
    if image is None or image.size == 0:
        raise ValueError(f"image {str(path)!r} cannot be decoded as an image ({len(data)} bytes; "
                         "corrupt or truncated?)")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"image {str(path)!r} has unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _jpeg_truncated(data: bytes) -> bool:
    # libjpeg fills a cut-off JPEG with gray and only warns, so check the markers: the last
    # start-of-scan must be followed by an end-of-image (0xFFD9 cannot occur inside scan data).
    if not data.startswith(b"\xff\xd8"):
        return False  # not a JPEG at all: let the decoder say so
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


def read_mask(path: Path | None, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean defect mask at ``shape[:2]`` (all False when there is no mask file)."""
    height, width = shape[:2]
    if path is None:
        return np.zeros((height, width), dtype=bool)
    mask = read_image(path)
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    # 0/255 masks (MVTec AD's); labelling tools also write class indices, 0 and 1
    return mask >= 128 if mask.max() > 1 else mask > 0


def images_in(folder: Path) -> list[Path]:
    """Image files in a folder, sorted by name; a PNG that is the mask of a same-stem image is
    not an image."""
    files = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    masks = masks_among(files)
    return [p for p in files if p not in masks]


def masks_among(files: Sequence[Path]) -> set[Path]:
    """The PNGs among ``files`` that are masks of another image there: ``x.png`` beside
    ``x.jpg`` (the magnetic-tile layout) or ``x_mask.png`` beside ``x.<any image suffix>``."""
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    stems_of_non_png = {p.stem for p in images if p.suffix.lower() != ".png"}
    stems = {p.stem for p in images}
    return {p for p in images if p.suffix.lower() == ".png"
            and (p.stem in stems_of_non_png
                 or (p.stem.endswith("_mask") and p.stem[:-len("_mask")] in stems))}


def is_mvtec(root: str | Path) -> bool:
    root = Path(root)
    return (root / "train" / GOOD).is_dir() and (root / "test").is_dir()


def mvtec(root: str | Path, need_train: bool = True
          ) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """(train, test) of an MVTec AD category folder; masks may be missing. An empty train/good
    is a ValueError when ``need_train`` (training reads it; evaluation does not)."""
    root = Path(root)
    if not is_mvtec(root):
        raise ValueError(f"`data` {str(root)!r} is not an MVTec AD category: expected "
                         "train/good/ and test/ folders in it")
    train = [LabeledImage(p, False, GOOD) for p in images_in(root / "train" / GOOD)]
    test = []
    for folder in sorted(p for p in (root / "test").iterdir() if p.is_dir()):
        defect = folder.name
        for image in images_in(folder):
            mask = None
            if defect != GOOD:
                for candidate in (root / "ground_truth" / defect / f"{image.stem}_mask.png",
                                  root / "ground_truth" / defect / f"{image.stem}.png"):
                    if candidate.is_file():
                        mask = candidate
                        break
            test.append(LabeledImage(image, defect != GOOD, defect, mask))
    if not train and need_train:
        raise ValueError(f"{str(root / 'train' / GOOD)!r} holds no images")
    return train, test


def folders(normal: Sequence[str | Path], anomalous: Sequence[str | Path] = (),
            masks: str | Path | None = None) -> list[LabeledImage]:
    """Labeled images from plain folders (the defect type is the anomalous folder's name)."""
    if masks is not None and not Path(masks).is_dir():
        raise ValueError(f"`masks` {str(masks)!r} is not a folder; expected the folder of masks "
                         f"(NAME.png or NAME_mask.png) for the --anomalous images")
    items: list[LabeledImage] = []
    for folder in normal:
        items += [LabeledImage(p, False, GOOD) for p in _images_or_error(folder)]
    for folder in anomalous:
        for image in _images_or_error(folder):
            items.append(LabeledImage(image, True, Path(folder).name, _mask_for(image, masks)))
    defects = [i for i in items if i.anomalous]
    if masks is not None and defects and all(i.mask is None for i in defects):
        example = defects[0].path
        raise ValueError(f"`masks` {str(masks)!r} holds a mask for none of the {len(defects)} "
                         f"defect images: for {example.name!r} it needs {example.stem}.png or "
                         f"{example.stem}_mask.png; rename the masks to their images' names, or "
                         f"leave --masks out (image metrics only)")
    return items


def _images_or_error(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(f"image folder {str(folder)!r} is a file; expected a folder of images "
                         f"(or an MVTec AD category)")
    if not folder.is_dir():
        raise ValueError(f"image folder {str(folder)!r} does not exist")
    found = images_in(folder)
    nested = _subfolders_with_images(folder)
    shown = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
    if not found:
        raise ValueError(f"image folder {str(folder)!r} holds no images "
                         f"({', '.join(IMAGE_SUFFIXES)})"
                         + (f"; its subfolders {shown} do, and subfolders are not read: give "
                            f"each of them" if nested else ""))
    if nested:
        log.warning("%s: the images in its subfolders (%s) are not read; give each subfolder "
                    "to read them too", folder, shown)
    return found


def _subfolders_with_images(folder: Path) -> list[str]:
    """Names of ``folder``'s (not hidden) subfolders that hold images themselves."""
    return [p.name for p in sorted(folder.iterdir())
            if p.is_dir() and not p.name.startswith(".") and images_in(p)]


def _mask_for(image: Path, masks: str | Path | None) -> Path | None:
    candidates: Iterable[Path] = []
    if masks is not None:
        candidates = [Path(masks) / f"{image.stem}.png", Path(masks) / f"{image.stem}_mask.png"]
    elif image.suffix.lower() != ".png":
        candidates = [image.with_suffix(".png")]
    return next((c for c in candidates if c.is_file()), None)
