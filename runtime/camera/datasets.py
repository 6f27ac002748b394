"""Labeled image sets on disk: the MVTec AD layout and plain folders.

MVTec AD: ``ROOT/train/good/``, ``ROOT/test/good/``, ``ROOT/test/<defect>/`` and optional
``ROOT/ground_truth/<defect>/<name>_mask.png``. Plain folders: normal folder(s) and anomalous
folder(s); a mask is a same-stem ``.png`` beside a non-PNG image or a ``<stem>_mask.png`` beside
any image, or ``<stem>.png`` / ``<stem>_mask.png`` in a mask folder (or in its subfolder named as
the anomalous folder).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..core.progress import Progress, silent
from . import jpeg
from .image_header import PNG_SIGNATURE, png_damage, too_large

log = logging.getLogger("vigil")
# Every still-image format OpenCV reads: `vigil score`, `eval` and `train image` take the same.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp",
                  ".pbm", ".pgm", ".ppm", ".pnm", ".jp2", ".ras", ".sr")
GOOD = "good"


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    anomalous: bool
    defect: str             # "good" for normal images
    mask: Path | None = None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file as uint8 (gray or BGR); ValueError names the file when it cannot."""
    return read_image_and_quality(path)[0]


def read_image_and_quality(path: str | Path) -> tuple[np.ndarray, int | None]:
    """(``read_image``'s pixels, the quality the file was compressed at), read from the same
    bytes: a JPEG's (``jpeg.quality``), 100 for a lossless format (PNG, BMP, PNM, TIFF, lossless
    WebP), None where it is not known (lossy WebP, JPEG 2000, a JPEG without its tables)."""
    path = Path(path)
    image, quality = _decoded(path)
    if image.dtype == np.uint16:
        bits = int(image.max()).bit_length()
        if bits <= DARK_16_BIT_BITS:
            _warn_once_dark(path, bits)
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image, quality


TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
LOSSLESS_MAGIC = (PNG_SIGNATURE, b"BM", *TIFF_MAGIC, b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


def _quality(data: bytes) -> int | None:
    """The quality an encoded image was compressed at: ``read_image_and_quality``'s."""
    if data.startswith(b"\xff\xd8"):
        return jpeg.quality(data)
    if data.startswith(LOSSLESS_MAGIC) or (data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8L"):
        return 100
    return None


IMAGE_DIGEST_CHARS = 16  # an image's digest as an artifact records it (64 bits)


def image_digest(image: np.ndarray) -> str:
    """The sha256 of an image's decoded pixels (as ``read_image`` gives them) with their shape,
    cut to ``IMAGE_DIGEST_CHARS`` hex characters: how an image artifact records each image it
    trained on or held out, and how ``vigil eval`` finds them among its test images, however
    they were saved again (a PNG at another compression, renamed: the same pixels)."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:IMAGE_DIGEST_CHARS]


def _decoded(path: Path) -> tuple[np.ndarray, int | None]:
    """(An image file's pixels as stored (uint8 or uint16; gray, BGR or BGRA), turned upright by
    its EXIF orientation (JPEG, PNG, WebP), the quality it was compressed at); ValueError
    naming the file when it cannot be decoded."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"image {str(path)!r} cannot be read: {error.strerror or error}") from None
    if not data:
        raise ValueError(f"image {str(path)!r} is an empty file")
    oversized = too_large(data)  # from the header: a small file can hold gigabytes of pixels
    if oversized is not None:
        raise ValueError(f"image {str(path)!r}: {oversized}")
    is_jpeg = data.startswith(b"\xff\xd8")
    damaged = jpeg.damage(data) if is_jpeg else None  # libjpeg would fill it in and only warn
    if damaged is not None:
        raise ValueError(f"image {str(path)!r} is a damaged JPEG: {damaged}")
    damaged = png_damage(data)  # libpng would say so itself, as text on stderr
    if damaged is not None:
        raise ValueError(f"image {str(path)!r} is a damaged PNG: {damaged}")
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
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image {str(path)!r} has unsupported pixel type {image.dtype}")
    if data[:4] in TIFF_MAGIC:
        _warn_once_pages(path)
    # IMREAD_UNCHANGED ignores the EXIF orientation that cv2.imread and image viewers apply (a
    # JPEG's, a PNG's eXIf, a WebP's EXIF; a TIFF's OpenCV applies itself)
    return jpeg.upright(image, jpeg.orientation(data)), _quality(data)


_DARK_16_BIT_WARNED: list[Path] = []


DARK_16_BIT_BITS = 14  # 16-bit pixels all within this many bits keep 6 or fewer by the top 8


def _warn_once_dark(path: Path, bits: int) -> None:
    """A 16-bit image whose pixels all lie below 2**14 (a 12- to 14-bit camera's, stored in 16
    bits) is dark by its top 8 bits, which keep 6 or fewer bits of its levels (a 13-bit normal
    image's score moved from 25.6 to 30.3 in a review): said once per process, as every frame of
    a run is alike."""
    if not _DARK_16_BIT_WARNED and bits <= 8:
        _DARK_16_BIT_WARNED.append(path)
        log.warning("%s: a 16-bit image whose pixels are all below %d (8-bit data stored in 16 "
                    "bits, or a dark frame?); it is read by its top 8 bits, so it is black. If "
                    "its values are 8-bit ones, cast them without a shift "
                    "(image.astype(np.uint8))", path, 1 << bits)
    elif not _DARK_16_BIT_WARNED:
        _DARK_16_BIT_WARNED.append(path)
        kept = bits - 8
        log.warning("%s: a 16-bit image whose pixels are all below %d (%d-bit data?); it is read "
                    "by its top 8 bits, so it keeps %d bit(s) of its levels and is %s. Convert "
                    "such images to 8 bits from their own range first (a %d-bit camera's: shift "
                    "right by %d)", path, 1 << bits, bits, kept,
                    "almost black" if bits <= 12 else "dark", max(bits, 9), max(bits - 8, 1))


_PAGES_WARNED: set[Path] = set()


def _warn_once_pages(path: Path) -> None:
    """A TIFF of several pages (a camera's burst, a scanner's stack): only its first is read, as
    OpenCV decodes it; said once per file."""
    if path in _PAGES_WARNED:
        return
    try:
        pages = cv2.imcount(str(path))
    except cv2.error:
        return
    if pages > 1:
        _PAGES_WARNED.add(path)
        log.warning("%s: a TIFF of %d pages; only its first page is read (save each page as an "
                    "image of its own to score them all)", path, pages)


# A mask whose height/width ratio differs from its image's by more than this share was drawn on
# another picture (or on a JPEG's stored pixels where the image is turned by its EXIF tag)
MASK_ASPECT_TOLERANCE = 0.02
# Masks whose largest value is below this hold class indices (0, 1, 2, ...): any non-zero pixel
# is a defect; from it up, a drawn mask (0/255, 0/65535, or a JPEG's noisy 0/255): its upper half
CLASS_INDEX_LIMIT = 128


def read_mask(path: Path | None, shape: tuple[int, ...],
              decoded: np.ndarray | None = None) -> np.ndarray:
    """Boolean defect mask at ``shape[:2]`` (all False when there is no mask file), read by value
    at any bit depth (``decoded``: its pixels, where already read); ValueError naming the file when
    its aspect ratio is not its image's."""
    height, width = shape[:2]
    if path is None:
        return np.zeros((height, width), dtype=bool)
    mask = _decoded(Path(path))[0] if decoded is None else decoded
    if mask.ndim == 3:
        mask = mask[:, :, :3].max(axis=2)  # an alpha channel marks no defect
    if mask.shape != (height, width):
        ratio, expected = mask.shape[0] / mask.shape[1], height / width
        if abs(ratio - expected) > MASK_ASPECT_TOLERANCE * expected:
            raise ValueError(f"mask {str(path)!r} is {mask.shape[1]}x{mask.shape[0]} px but its "
                             f"image is {width}x{height}, another aspect ratio: drawn on another "
                             f"image, turned, or on a JPEG's stored pixels where the image is "
                             f"turned by its EXIF orientation; expected a mask of the image as "
                             f"it is shown, {width}x{height}")
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    top = int(mask.max())
    return mask > 0 if top < CLASS_INDEX_LIMIT else mask >= top / 2


def check_readable(items: Sequence[LabeledImage], what: str, done: str,
                   progress: Progress = silent) -> None:
    """ValueError naming every image and mask among ``items`` (``what``: "test images", say;
    ``done``: what did not happen, "scored") that cannot be read (damaged, truncated, not
    images, a mask that does not fit its image), so that a long run does not stop at the first
    of them."""
    unreadable, unfit = [], []
    for n, item in enumerate(items):
        progress("checking images", n, len(items))
        try:
            image = read_image(item.path)
        except ValueError as error:
            unreadable.append(str(error))
            image = None
        if item.mask is not None:
            try:
                decoded = _decoded(item.mask)[0]
            except ValueError as error:
                unreadable.append(str(error))
            else:
                try:
                    if image is not None:
                        read_mask(item.mask, image.shape, decoded)
                except ValueError as error:  # read, but drawn on another image
                    unfit.append(str(error))
    progress("checking images", len(items), len(items))
    problems = unreadable + unfit
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        what_failed = " and ".join(part for part in (
            f"{len(unreadable)} cannot be read" if unreadable else "",
            f"{len(unfit)} {'has a mask' if len(unfit) == 1 else 'have masks'} that does not "
            f"fit {'its' if len(unfit) == 1 else 'their'} image" if unfit else "") if part)
        raise ValueError(f"of the {len(items)} {what} (and their masks), {what_failed}, so "
                         f"nothing was {done}: {shown}. Replace them, or move them out of the "
                         "folders, and run again")


# Image formats OpenCV does not read (or not here): passed over, and said, where found in a folder
OTHER_IMAGE_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jxl", ".dng", ".cr2", ".nef",
                        ".arw", ".raw")


def images_in(folder: Path, say: bool = False) -> list[Path]:
    """Image files in a folder, sorted by name, as `vigil score` reads it: hidden files (a
    name starting with '.', such as macOS's ``._x.jpg``) are not images, and a PNG that is the
    mask of a same-stem image is not one; a link whose target is gone is kept (its reading then
    fails, naming it). With ``say``, what was passed over is logged."""
    entries = sorted(Path(folder).iterdir())
    hidden = [p for p in entries if p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    files = [p for p in entries if not p.name.startswith(".")
             and p.suffix.lower() in IMAGE_SUFFIXES
             and (p.is_file() or (p.is_symlink() and not p.exists()))]
    masks = masks_among(files)
    if say:
        other = [p for p in entries if p.suffix.lower() in OTHER_IMAGE_SUFFIXES]
        for found, what in ((hidden, "hidden file(s) (a name starting with '.': macOS copies "
                                     "leave ._NAME files) are not read"),
                            (other, "file(s) in a format not read here are passed over "
                                    "(convert them to PNG to use them)"),
                            (sorted(masks), "PNG(s) beside same-named images are read as their "
                                            "masks, not as images (rename one where both are "
                                            "pictures)")):
            if found:
                shown = ", ".join(p.name for p in found[:3]) + (", ..." if len(found) > 3 else "")
                log.info("%s: %d %s: %s", folder, len(found), what, shown)
    return [p for p in files if p not in masks]


def masks_among(files: Sequence[Path]) -> set[Path]:
    """The PNGs among ``files`` that are masks of another image there: ``x.png`` beside
    ``x.jpg`` in one folder (the magnetic-tile layout), or ``x_mask.png`` where an ``x.<any image
    suffix>`` is among them (beside it, or in MVTec AD's ``ground_truth/`` for ``test/``)."""
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    non_png = {(p.parent, p.stem) for p in images if p.suffix.lower() != ".png"}
    stems = {p.stem for p in images}
    return {p for p in images if p.suffix.lower() == ".png"
            and ((p.parent, p.stem) in non_png
                 or (p.stem.endswith("_mask") and p.stem[:-len("_mask")] in stems))}


def is_mvtec(root: str | Path, need_train: bool = True) -> bool:
    """Whether ``root`` is an MVTec AD category: train/good/ and test/; for evaluation
    (``need_train`` False) test/good/ stands in for train/good/ (a category's test split
    alone, as a line keeps its labeled images apart)."""
    root = Path(root)
    if not (root / "test").is_dir():
        return False
    if (root / "train" / GOOD).is_dir():
        return True
    # a test split alone: only where the folder holds no images of its own (a folder of normal
    # images that keeps a few in test/good/ is a plain folder, as training reads it)
    return (not need_train and (root / "test" / GOOD).is_dir()
            and not images_in(root, say=False))


def mvtec(root: str | Path, need_train: bool = True
          ) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """(train, test) of an MVTec AD category folder; masks may be missing. An empty train/good
    is a ValueError when ``need_train`` (training reads it; evaluation does not)."""
    root = Path(root)
    if not is_mvtec(root, need_train):
        raise ValueError(f"`data` {str(root)!r} is not an MVTec AD category: expected "
                         "train/good/ and test/ folders in it")
    train = ([LabeledImage(p, False, GOOD) for p in _category_images(root / "train" / GOOD)]
             if (root / "train" / GOOD).is_dir() else [])
    test = []
    for folder in sorted(p for p in (root / "test").iterdir()
                         if p.is_dir() and not p.name.startswith(".")):
        defect = folder.name
        if defect != GOOD and defect.lower() in NORMAL_FOLDER_NAMES:
            # (a review's test/ok/ of normal images counted as a defect type: AUROC 1.0 -> 0.58)
            log.warning("%s is read as a defect type, %r: only test/good/ holds normal images; "
                        "if its images are normal, rename it to test/good (or move them there)",
                        folder, defect)
        truth = root / "ground_truth" / defect
        for image in _category_images(folder):
            mask = None
            if defect != GOOD:  # in ground_truth/<defect>/, else beside the image
                mask = _mask_for(image, root / "ground_truth", defect) if truth.is_dir() else None
                mask = mask or _mask_for(image, None, defect)
            test.append(LabeledImage(image, defect != GOOD, defect, mask))
        if defect != GOOD and truth.is_dir():
            # masks named otherwise (NAME_label.png, NAME_gt.png) were passed over unsaid, and
            # the pixel metrics with them (a review)
            used = {i.mask for i in test if i.defect == defect and i.mask is not None}
            unused = _unused_masks(truth, used)
            if unused:
                log.warning("%s: %d file(s) in it are the mask of no image of test/%s (e.g. %s), "
                            "so they are not read: a mask is named after its image, NAME.png or "
                            "NAME_mask.png (or NAME_mask in another image format) for "
                            "test/%s/NAME.jpg",
                            truth, len(unused), defect, unused[0].name, defect)
    if not train and need_train:
        raise ValueError(f"{str(root / 'train' / GOOD)!r} holds no images")
    return train, test


def _category_images(folder: Path) -> list[Path]:
    """An MVTec AD folder's images, saying what is passed over and which subfolders are not
    read, as for plain folders."""
    found = images_in(folder, say=True)
    nested = _subfolders_with_images(folder)
    if folder.name == GOOD and nested:
        # moved up, defect images there would be normal ones (train/good/ trains on them)
        shown = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
        log.warning("%s: the images in its subfolders (%s) are not read; move the normal ones "
                    "up into it to read them (defect images belong in test/<defect>/, never "
                    "in a good/ folder)", folder, shown)
        return found
    normal = [n for n in nested if n.lower() in NORMAL_FOLDER_NAMES]
    if normal:
        # moved up, as the advice below says, normal images would count as this defect's
        log.warning("%s: the images in its subfolder %s are not read; normal images belong in "
                    "test/good/, not in a defect's folder (move them there to read them as "
                    "normal)", folder, normal[0])
    nested = [n for n in nested if n not in normal]
    if nested:
        shown = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
        log.warning("%s: the images in its subfolders (%s) are not read; move them up into it "
                    "to read them", folder, shown)
    return found


# subfolder names that say their images are normal ones (a review's test/crack/good/)
NORMAL_FOLDER_NAMES = {GOOD, "ok", "normal", "pass", "defect-free", "defect_free", "nodefect"}


GENERIC_FOLDERS = {"imgs", "img", "images", "image", "pictures", "photos", "frames", "data"}


def defect_names(anomalous: Sequence[str | Path]) -> list[str]:
    """Each anomalous folder's defect type: its name, or where two folders share one (the
    magnetic tiles' ``MT_Crack/Imgs`` and ``MT_Uneven/Imgs``, pooled as one type "Imgs" before)
    as many of its last path parts as tell them apart."""
    parts = [Path(folder).resolve().parts for folder in anomalous]
    # a folder named only for what it holds (MT_Blowhole/Imgs) takes its parent's name too
    names = ["/".join(p[-2:]) if len(p) > 2 and p[-1].lower() in GENERIC_FOLDERS else p[-1]
             for p in parts]
    depth = 1
    while len(set(names)) < len(names) and depth < max((len(p) for p in parts), default=1):
        depth += 1
        names = ["/".join(p[-depth:]) if names.count(name) > 1 else name
                 for p, name in zip(parts, names)]
    return names


def folders(normal: Sequence[str | Path], anomalous: Sequence[str | Path] = (),
            masks: str | Path | Sequence[str | Path] | None = None) -> list[LabeledImage]:
    """Labeled images from plain folders (the defect type is the anomalous folder's name).

    ``masks`` is one folder for every anomalous folder (its masks flat, or in a subfolder named
    as the anomalous folder, MVTec AD's ``ground_truth/<defect>/``), or one folder per anomalous
    folder, in order; without it a mask lies beside its image (``x.png`` beside ``x.jpg``, or
    ``x_mask.png``). Two images given one mask are a ValueError naming both."""
    mask_folders = _mask_folders(anomalous, masks)
    items: list[LabeledImage] = []
    for folder in normal:
        items += [LabeledImage(p, False, GOOD) for p in _images_or_error(folder)]
    for folder, mask_folder, defect in zip(anomalous, mask_folders, defect_names(anomalous)):
        for image in _images_or_error(folder, mask_folder):
            items.append(LabeledImage(image, True, defect, _mask_for(image, mask_folder, defect)))
    defects = [i for i in items if i.anomalous]
    if len(set(mask_folders)) > 1:  # one --masks per --anomalous: each must mask its own
        for folder, mask_folder in zip(anomalous, mask_folders):
            own = [i for i in defects if i.path.parent == Path(folder)]
            if own and all(i.mask is None for i in own):
                raise ValueError(f"`masks` {str(mask_folder)!r} holds a mask for none of the "
                                 f"{len(own)} images of {str(folder)!r} (for "
                                 f"{own[0].path.name!r} it needs {own[0].path.stem}.png or "
                                 f"{own[0].path.stem}_mask.png, or another image format): is "
                                 f"it that folder's masks?")
    if masks and defects and all(i.mask is None for i in defects):
        example, given = defects[0].path, mask_folders[0]
        raise ValueError(f"`masks` {str(given)!r} holds a mask for none of the {len(defects)} "
                         f"defect images: for {example.name!r} it needs {example.stem}.png or "
                         f"{example.stem}_mask.png, or another image format (in it, or in "
                         f"its subfolder "
                         f"{example.parent.name}/); rename the masks to their images' names, or "
                         f"leave --masks out (image metrics only)")
    taken: dict[Path, Path] = {}
    for item in defects:
        other = taken.setdefault(item.mask, item.path) if item.mask is not None else item.path
        if other != item.path:
            raise ValueError(
                f"`masks`: {str(other)!r} and {str(item.path)!r} would both take the mask "
                f"{str(item.mask)!r} (defect folders that reuse file names, as MVTec AD's do); "
                f"give one --masks per --anomalous, in the same order, or put each folder's "
                f"masks in a subfolder named as it (masks/{item.defect}/)")
    return items


def _mask_folders(anomalous: Sequence[str | Path],
                  masks: str | Path | Sequence[str | Path] | None) -> list[Path | None]:
    """The mask folder of each anomalous folder (None: masks beside the images)."""
    given = ([] if masks is None else [masks] if isinstance(masks, (str, Path))
             else list(masks))
    for folder in given:
        if not Path(folder).is_dir():
            raise ValueError(f"`masks` {str(folder)!r} is not a folder; expected the folder of "
                             f"masks (NAME.png or NAME_mask.png) for the --anomalous images")
    if len(given) > 1 and len(given) != len(anomalous):
        raise ValueError(f"`masks` is given {len(given)} times for {len(anomalous)} anomalous "
                         f"folder{'s' if len(anomalous) != 1 else ''}; give one --masks for all "
                         "of them, or one per --anomalous, in the same order")
    if len(given) == 1:
        return [Path(given[0])] * len(anomalous)
    names = [Path(folder).name for folder in anomalous]
    for folder, masks_folder in zip(names, given):
        named = Path(masks_folder).name
        if named != folder and named in names:
            raise ValueError(f"`masks` {str(masks_folder)!r} is paired with the anomalous folder "
                             f"{folder!r} (the same order), but is named as the anomalous folder "
                             f"{named!r}: give each --masks right after its --anomalous")
    return [Path(folder) for folder in given] or [None] * len(anomalous)


def _images_or_error(folder: str | Path, masks: str | Path | None = None) -> list[Path]:
    """The images of ``folder``, or ValueError; its subfolders that hold images are warned of
    as not read, except ``masks`` (a --masks folder inside it, read as masks)."""
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(f"image folder {str(folder)!r} is a file; expected a folder of images "
                         f"(or an MVTec AD category)")
    if not folder.is_dir():
        raise ValueError(f"image folder {str(folder)!r} does not exist")
    found = images_in(folder, say=True)
    nested = [name for name in _subfolders_with_images(folder)
              if masks is None or (folder / name).resolve() != Path(masks).resolve()]
    shown = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
    if not found:
        raise ValueError(f"image folder {str(folder)!r} holds no images "
                         f"({', '.join(IMAGE_SUFFIXES)})"
                         + (f"; its subfolders {shown} do, and subfolders are not read: give "
                            f"the folder of normal images as DATA (more with --normal DIR) and "
                            f"each folder of defect images with --anomalous DIR"
                            if nested else ""))
    if nested:
        log.warning("%s: the images in its subfolders (%s) are not read; give each subfolder "
                    "to read them too", folder, shown)
    return found


def _subfolders_with_images(folder: Path) -> list[str]:
    """Names of ``folder``'s (not hidden) subfolders that hold images themselves."""
    return [p.name for p in sorted(folder.iterdir())
            if p.is_dir() and not p.name.startswith(".") and images_in(p)]


def _mask_for(image: Path, masks: Path | None, defect: str) -> Path | None:
    """The mask file of ``image``: NAME.png or NAME_mask.png in ``masks/defect/`` or ``masks/``,
    or beside the image (``x.png`` beside ``x.jpg``, ``x_mask.png`` beside any); the suffix
    in any case (``x.PNG`` beside ``x.JPG``, as cameras and Windows tools name files). In a
    masks folder (``ground_truth/``, ``--masks``) a ``NAME_mask`` of another image format is
    read too (``NAME_mask.bmp``, ``.tif``: a review's masks in them were passed over without a
    word), where a PNG is looked for first; beside the image, a mask is a PNG."""
    if masks is not None:
        # masks/<defect>/, and masks/<folder's own name>/ where the defect is named with its
        # parent (MT_Blowhole/Imgs: masks/Imgs/, as before such names)
        subfolders = dict.fromkeys((masks / defect, masks / image.parent.name, masks))
        candidates = [(folder, name) for folder in subfolders
                      for name in (f"{image.stem}.png", f"{image.stem}_mask.png")]
    else:  # beside the image: x.png beside x.jpg, or x_mask.png beside x.<any suffix>
        candidates = ([(image.parent, f"{image.stem}.png")] if image.suffix.lower() != ".png"
                      else [])
        candidates.append((image.parent, f"{image.stem}_mask.png"))
    for folder, name in candidates:
        exact = folder / name
        if exact.is_file() and exact != image:
            return exact
        stem = name[:-len(".png")]
        for other in (folder / f"{stem}.PNG", folder / f"{stem}.Png"):
            if other.is_file() and other != image:
                return other
    if masks is not None:
        # NAME_mask in another format only, and not beside the image: a copy of the image
        # itself (NAME.jpg, as labelling tools export beside the masks) would be read as its
        # mask, and a folder of images given as --masks would mask them with themselves
        # (review d2)
        for folder, name in candidates:
            stem = name[:-len(".png")]
            if not stem.endswith("_mask") or folder == image.parent:
                continue
            for suffix in MASK_SUFFIXES:
                for other in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                    if other.is_file():
                        return other
    return None


# a mask in another format than PNG, in a masks folder (PNG is looked for first)
MASK_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES if s != ".png")


def _unused_masks(folder: Path, used: set[Path]) -> list[Path]:
    """The image files of a ground_truth/<defect>/ folder named for no image whose mask was
    read (a second mask of one image, in another format, is not counted: the PNG is read)."""
    stems = {p.stem.removesuffix("_mask").lower() for p in used}
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
            and p.suffix.lower() in IMAGE_SUFFIXES and p not in used
            and p.stem.removesuffix("_mask").lower() not in stems]
