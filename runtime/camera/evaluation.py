"""Evaluating an image artifact on labeled images: image AUROC, pixel AUROC, PRO, F1, per defect."""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..core import metrics
from ..core.progress import Progress, silent
from ..core.spec import ScoreStats
from ..core.thresholds import over_threshold
from . import jpeg
from .frames import compression_mismatch, frame_boxes, map_to_frame
from .datasets import (LabeledImage, check_readable, folders, image_digest, images_in, is_mvtec,
                       mvtec, read_image_and_quality, read_mask)
from .detector import ImageDetector

log = logging.getLogger("vigil")

PIXEL_BINS = 20_000
PRO_MAX_FPR = 0.3
PRO_REGIONS_AT_ONCE = 64  # defect regions whose histograms are counted together


@dataclass
class ImageScores:
    items: list[LabeledImage]
    scores: np.ndarray
    maps: list[np.ndarray]          # model-resolution maps, for overlays


# numpy 2 renamed trapz to trapezoid; the runtime supports numpy 1.24 and later
_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")


def test_items(data: str | Path, normal: Sequence[str | Path] = (),
               anomalous: Sequence[str | Path] = (),
               masks: str | Path | Sequence[str | Path] | None = None) -> list[LabeledImage]:
    """Labeled test images in the forms ``vigil train image`` reads: an MVTec AD category root
    (its test split), or plain folders (``data`` and ``normal`` of normal images, ``anomalous``
    of defect images named by their folder, ``masks`` for them or masks beside them). Normal
    images alone are read too: their evaluation says how many a line would reject. A folder
    given as both normal and defect images is a ValueError naming it."""
    if masks and not anomalous:
        raise ValueError(f"`masks` {_named(masks)} is given without defect images: masks mark "
                         f"the defects of the --anomalous images (an MVTec AD category's own are "
                         f"read from its ground_truth/); add --anomalous DIR, or leave --masks "
                         f"out")
    normal_folders = [data, *normal]  # a category's own folder as well: never a defect folder
    for folder in anomalous:
        for other in normal_folders:
            if Path(folder).is_dir() and Path(other).is_dir() and os.path.samefile(folder, other):
                raise ValueError(f"`anomalous` {str(folder)!r} is also given as normal images "
                                 f"({str(other)!r}); each image would count as both: give the "
                                 "folder of defect images")
    if is_mvtec(data, need_train=False):
        items = mvtec(data, need_train=False)[1]
        if not items:
            raise ValueError(f"`data` {str(data)!r} is an MVTec AD category with no images under "
                             f"test/: expected test/good/ and test/<defect>/ folders of images "
                             f"(masks in ground_truth/<defect>/)")
        items += folders(normal, anomalous, masks) if normal or anomalous else []
        if all(item.anomalous for item in items):  # every metric would be one-class
            named = sorted({item.defect for item in items})
            fix = ("its test/good/ holds no images: put the normal test images there, or give "
                   "a folder of them with --normal DIR" if (Path(data) / "test" / "good").is_dir()
                   else f"its test/ folders {named} are all read as defects, since only "
                        f"test/good/ holds normal ones: rename the normal folder to test/good, "
                        f"or give a folder of normal test images with --normal DIR")
            raise ValueError(f"`data` {str(data)!r} is an MVTec AD category without normal test "
                             f"images: {fix}")
        return items
    if not Path(data).is_dir():
        raise ValueError(f"`data` {str(data)!r} is not a folder; expected an MVTec AD category "
                         "(train/good, test/...) or a folder of normal images")
    if not anomalous:
        category_like = (Path(data) / "test" / "good").is_dir()
        own = len(images_in(Path(data)))
        if own and category_like:
            raise ValueError(f"`data` {str(data)!r} holds test/good/ as an MVTec AD category "
                             f"does, but also {own} image(s) of its own, which a category does "
                             f"not: move them out to read it as a category's test split, or "
                             f"give a folder that holds only normal images")
        if not own:
            raise ValueError(f"`data` {str(data)!r} is not an MVTec AD category, nor a folder "
                             f"of normal images ({_folders_fix(Path(data))})")
        return folders([data, *normal])  # normal images alone: how many a line would reject
    return folders([data, *normal], anomalous, masks)


def _named(paths: str | Path | Sequence[str | Path]) -> str:
    """One path or several as an error message names them."""
    if isinstance(paths, (str, Path)):
        return repr(str(paths))
    return ", ".join(repr(str(path)) for path in paths)


NORMAL_NAMES = ("good", "normal", "ok", "pass", "free")  # a subfolder of normal images, by name
MASK_NAMES = ("mask", "masks", "ground_truth", "groundtruth", "gt")  # one of defect masks


def _folders_fix(data: Path) -> str:
    """The command for a folder of image subfolders (``pair/normal``, ``pair/defect``: a review
    was told of a template where training named them), or the template."""
    held = [] if images_in(data) else [p for p in sorted(data.iterdir()) if p.is_dir()
                                       and not p.name.startswith(".") and images_in(p)]
    masks = [p for p in held if p.name.lower() in MASK_NAMES]
    normal = [p for p in held if p.name.lower().startswith(NORMAL_NAMES)]
    if held and len(normal) == 1 and len(masks) <= 1:
        parts = [str(normal[0])]
        for p in held:
            if p not in normal and p not in masks:
                parts += ["--anomalous", str(p)]
        parts += ["--masks", str(masks[0])] if masks else []
        return (f"it holds no images of its own, but its subfolders do: vigil eval MODEL "
                f"{shlex.join(parts)}")
    if held:
        return (f"it holds no images of its own, but its subfolders "
                f"{', '.join(p.name for p in held[:5])} do: vigil eval MODEL NORMAL_SUBFOLDER "
                f"--anomalous DEFECT_SUBFOLDER, one --anomalous each")
    return ("it holds no image files: vigil eval MODEL NORMAL_DIR [--anomalous DEFECT_DIR "
            "[--masks MASK_DIR]]")


def evaluate_images(detector: ImageDetector, items: Sequence[LabeledImage],
                    progress: Progress = silent) -> tuple[dict, ImageScores]:
    """Every metric over ``items``. Pixel metrics compare the map, resized back to each image's
    own size, with the mask at that size. Every image and mask is read first: one that cannot be
is a ValueError naming it before anything is scored."""
    if not items:
        raise ValueError("`items` is empty; expected labeled images")
    check_readable(items, "test images", "scored", progress)
    labels = np.array([i.anomalous for i in items])
    scores = np.empty(len(items))
    maps = []
    has_masks = any(i.mask is not None for i in items)
    # every pixel's map value binned at the edges, defect pixels and defect-free ones apart
    edges = _pixel_edges(detector.spec.map_stats) if has_masks else np.empty(0)
    positive_hist = np.zeros(PIXEL_BINS + 2, np.int64)
    negative_hist = np.zeros(PIXEL_BINS + 2, np.int64)
    by_defect: dict[str, np.ndarray] = {}  # per defect type: its images' (positive, negative);
                                           # under "": the normal images' (0, negative)
    pro = _ProAccumulator()
    boxes = _BoxAccumulator(detector.threshold, detector.pixel_threshold)
    # a defect image without a mask has no known defect pixels: counting all of its pixels as
    # normal would mark its defect a false positive, so it stays out of the pixel metrics
    unmasked = [i for i in items if i.anomalous and i.mask is None]
    blank: list[Path] = []  # the masks of defect images that mark no pixel
    turned_said = False  # an image turned by its EXIF orientation, given a mask, was said
    digests = []  # each image's pixels', to find those the model has seen
    compressed: list[tuple[LabeledImage, str]] = []  # and those compressed harder than training
    for n, item in enumerate(items):
        progress("scoring images", n, len(items))
        image, quality = read_image_and_quality(item.path)
        digests.append(image_digest(image))
        mismatch = compression_mismatch(quality, detector.spec)
        if mismatch is not None:
            compressed.append((item, mismatch))
        score, amap = detector.infer(image, decoded=True)
        scores[n] = score[0]
        maps.append(amap[0])
        if not has_masks or (item.anomalous and item.mask is None):
            continue
        if item.mask is not None and not turned_said:
            turned_said = _say_turned_image_with_mask(item)
        mask = read_mask(item.mask, image.shape)
        if item.anomalous and not mask.any():  # no defect pixel known: left out, as unmasked
            if item.mask is not None:  # (a defect image without a mask went on above)
                blank.append(item.mask)
            continue
        full = map_to_frame(amap[0], image.shape)
        bins = np.searchsorted(edges, full.ravel(), side="right")
        positive = np.bincount(bins[mask.ravel()], minlength=PIXEL_BINS + 2)
        negative = np.bincount(bins[~mask.ravel()], minlength=PIXEL_BINS + 2)
        positive_hist += positive
        negative_hist += negative
        key = item.defect if item.anomalous else ""
        pair = by_defect.setdefault(key, np.zeros((2, PIXEL_BINS + 2), np.int64))
        pair += (positive, negative)
        pro.add(bins, mask, negative)
        boxes.add(full, mask, float(score[0]), item.anomalous)
    progress("scoring images", len(items), len(items))
    seen = _seen_in_training(detector, items, digests)
    in_both = _in_both_sets(items, digests)
    _say_compressed(compressed, len(items))
    threshold = detector.threshold
    predicted = over_threshold(scores, threshold)
    c = metrics.counts(predicted, labels)
    best_f1, best_threshold = metrics.best_f1(scores, labels)
    best_threshold = metrics.strict_threshold(scores, best_threshold)
    normal_scores = scores[~labels]
    result = {
        "image_auroc": metrics.auroc(scores, labels),
        "image_auprc": metrics.auprc(scores, labels),
        "pixel_auroc": _histogram_auroc(positive_hist, negative_hist) if has_masks else None,
        "pro": pro.value() if has_masks else None,
        **(boxes.value() if has_masks else {}),
        "precision": c.precision, "recall": c.recall, "f1": c.f1,
        "best_f1": best_f1, "best_f1_threshold": best_threshold,
        # the share of normal images rejected at the threshold, and how near to it they come
        "false_positive_rate": c.false_alarm_rate if len(normal_scores) else None,
        "normal_scores": ({"median": float(np.median(normal_scores)),
                           "p99": float(np.quantile(normal_scores, 0.99)),
                           "max": float(normal_scores.max())} if len(normal_scores) else None),
        **_operating_points(scores, labels, best_threshold),
        "threshold": threshold, "pixel_threshold": detector.pixel_threshold,
        "images": len(items), "anomalous": int(labels.sum()),
        "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
        "per_defect": _per_defect(items, scores, labels, predicted, by_defect),
        **_mistakes(items, scores, threshold),
        # test images the model trained on, or held out in training to set its threshold
        # (None: an artifact from before 2026-12-07, which records no image's digest)
        "images_trained_on": len(seen["trained"]) if seen is not None else None,
        "images_held_out_in_training": len(seen["held_out"]) if seen is not None else None,
        "defects_given_in_training": len(seen["labeled_defects"]) if seen is not None else None,
        # test images given both as normal and as defects (the same pixels)
        "images_in_both_sets": len(in_both),
        # test images that are JPEGs compressed much harder than the training images (None: an
        # artifact from before 2026-12-07, which records not their quality)
        "images_compressed_harder": (len(compressed) if detector.spec.jpeg_quality is not None
                                     else None),
        "pixel_unmasked_defects": len(unmasked),
        "pixel_blank_mask_defects": len(blank),
        "note": ("pixel_auroc over every pixel of every test image at its own resolution (the map "
                 "resized back), from 20,000-bin histograms; pro = normalized area under the "
                 f"per-region-overlap curve up to FPR {PRO_MAX_FPR}, at each image's own "
                 f"resolution, thresholds at the same bins' edges (map values beyond their "
                 f"range, 4x the brightest held-out normal pixel, are tied in the end bins)"
                 + (f"; {len(unmasked)} defect image(s) without a mask (e.g. "
                    f"{unmasked[0].path.name}) are left out of the pixel metrics"
                    if unmasked and has_masks else "")
                 + ("; no defect image has a mask, so there are no pixel metrics"
                    if unmasked and not has_masks else "")
                 + (f"; {len(blank)} defect image(s) whose mask marks no pixel (e.g. "
                    f"{blank[0].name}) are left out of them too" if blank else "")
                 + ("; no defect pixel is marked in any mask, so there are no pixel metrics"
                    if has_masks and not positive_hist.any()
                    else "")),
    }
    if not c.tp + c.fp:  # nothing flagged: the share of flags that were defects is undefined
        result["precision"] = None
    if not labels.any():
        result.update(dict.fromkeys(UNDEFINED_WITHOUT_DEFECTS))
        log.warning("none of the %d images is a defect image: %s are undefined (null), and "
                    "false_positive_rate, the share of these normal images rejected at the "
                    "threshold, says how the model fares (%d of %d here; normal_scores and "
                    "threshold_at_1pct_false_positives say how near the threshold they come); "
                    "give defect images with --anomalous DIR to measure detection", len(items),
                    ", ".join(UNDEFINED_WITHOUT_DEFECTS), c.fp, len(items))
    if blank:
        log.warning("%d defect image(s) have a mask that marks no pixel (the first: %s): they "
                    "are left out of the pixel metrics; a mask marks defect pixels with any "
                    "non-zero value (0/1 class indices) or the upper half of its range (0/255, "
                    "0/65535)", len(blank), blank[0])
    return result, ImageScores(list(items), scores, maps)


# metrics that count defects caught or ranked: undefined (null) where no image is a defect
UNDEFINED_WITHOUT_DEFECTS = ("image_auroc", "image_auprc", "recall", "f1", "best_f1",
                             "best_f1_threshold")


# what each kind of image training saw means for `vigil eval`'s figures
SEEN_KINDS = {
    "trained": ("are images this model was trained on",
                "a model scores its own training images low, so its figures here are better "
                "than on new parts (images_trained_on in the results); evaluate on images kept "
                "apart from training (an MVTec category's test/, or good images not given to "
                "vigil train)"),
    "held_out": ("are normal images training held out to set the threshold",
                 "precision, recall and F1 at the threshold are fitted on them "
                 "(images_held_out_in_training in the results); evaluate on images training "
                 "has not seen"),
    "labeled_defects": ("are defect images given to training (--anomalous)",
                        "they checked its threshold, or chose it with --threshold-method f1 "
                        "(defects_given_in_training in the results); evaluate on defects "
                        "training has not seen"),
}


def _seen_in_training(detector: ImageDetector, items: Sequence[LabeledImage],
                      digests: Sequence[str]) -> dict[str, list[LabeledImage]] | None:
    """The test images the model trained on, the normal ones training held out to set its
    threshold, and the defects it was given (by their pixels' digests, as training recorded
    them), each kind warned of; None where the artifact records none. A review's ELPV model
    scored its own training images as test normals: image AUROC 0.995 against 0.971 on images
    it had not seen, without a word."""
    record = detector.spec.training.get("files_sha256")
    if (not isinstance(record, dict) or record.get("digests") != "pixels"
            or not isinstance(record.get("trained"), list)):
        # none recorded, or another form (files' bytes): unknown, not 0, and said so
        log.info("this model records no digest of the images it trained on (trained before "
                 "2026-12-07): whether any test image was among them is unknown, and a model "
                 "scores its own training images low; keep test images apart from training, "
                 "or retrain it to have them checked")
        return None
    # digests are strings; anything else a record holds matches no image (a list among them
    # ended vigil eval in a TypeError; review r3)
    kinds = {kind: ({d for d in record[kind] if isinstance(d, str)}
                    if isinstance(record.get(kind), list) else set())
             for kind in SEEN_KINDS}
    seen: dict[str, list[LabeledImage]] = {kind: [] for kind in SEEN_KINDS}
    for item, digest in zip(items, digests):
        for kind, known in kinds.items():
            if digest in known:
                seen[kind].append(item)
                break
    for kind, found in seen.items():
        if found:
            log.warning("%d of the %d test images %s (the first: %s): %s", len(found), len(items),
                        SEEN_KINDS[kind][0], found[0].path, SEEN_KINDS[kind][1])
    return seen


def _in_both_sets(items: Sequence[LabeledImage], digests: Sequence[str]) -> list[LabeledImage]:
    """The defect images whose pixels are also among the normal images (a file copied or linked
    into both folders), warned of: each counts once as a miss or a false alarm whatever the
    model does (review u1: a good image linked into the defect folder went unsaid)."""
    normal = {digest: item for item, digest in zip(items, digests) if not item.anomalous}
    both = [(item, normal[digest]) for item, digest in zip(items, digests)
            if item.anomalous and digest in normal]
    if both:
        log.warning("%d defect image(s) are also among the normal images, the same pixels (the "
                    "first: %s, as %s): each is counted both ways, so no model scores them "
                    "right (images_in_both_sets in the results); remove them from one of the "
                    "folders", len(both), both[0][0].path, both[0][1].path)
    return [defect for defect, _ in both]


def _say_compressed(compressed: list[tuple[LabeledImage, str]], images: int) -> None:
    """Warn of the test images that are JPEGs compressed much harder than the training images
    (``compression_mismatch``; each with why): their scores say as much about the compression
    as about the parts."""
    if compressed:
        first, why = compressed[0]
        log.warning("%d of the %d test images (the first: %s): %s", len(compressed), images,
                    first.path, why)


def _say_turned_image_with_mask(item: LabeledImage) -> bool:
    """Warn (once a run: whether it did) where a masked image is shown turned by its EXIF
    orientation: its mask is read as drawn on the image as shown, and one drawn on the stored
    pixels of a near-square image passes the aspect check and marks the wrong place (a review:
    pixel AUROC 0.52, every box off its defect)."""
    try:
        with open(item.path, "rb") as handle:
            turn = jpeg.orientation(handle.read(1 << 16))
    except OSError:
        return False
    if turn in (0, 1):
        return False
    log.warning("%s is shown turned by its EXIF orientation (%d), and its mask %s is read as "
                "drawn on the image as shown (as viewers show it), not on its stored pixels: if "
                "the masks were drawn on the stored pixels, turn them likewise (said once)",
                item.path, turn, item.mask)
    return True


class _BoxAccumulator:
    """What `vigil score`'s boxes and pixel threshold do on masked images: how many flagged
    defect images have a box on their defect, how many boxes are on one, and the share of defect
    and defect-free pixels above the pixel threshold (a review found 19 of 47 boxes on no
    defect, which no metric said)."""

    def __init__(self, threshold: float, pixel_threshold: float) -> None:
        self.threshold, self.pixel_threshold = threshold, pixel_threshold
        self.flagged_defects = self.defects_boxed = self.boxes = self.boxes_on_defect = 0
        self.defect_pixels = self.defect_above = self.normal_pixels = self.normal_above = 0
        # how well the boxes of a flagged defect image say where: a box touching one pixel of
        # its defect is a hit above (a review: 0.971, where the defect's centre lay in a box in
        # 72 % of the images and the boxes were 4.9x the defect at the median)
        self.centres_boxed = self.peaks_on_defect = 0
        self.coverage: list[float] = []
        self.area_ratio: list[float] = []

    def add(self, full: np.ndarray, mask: np.ndarray, score: float, anomalous: bool) -> None:
        above = full > self.pixel_threshold
        self.defect_pixels += int(mask.sum())
        self.defect_above += int((above & mask).sum())
        self.normal_pixels += int((~mask).sum())
        self.normal_above += int((above & ~mask).sum())
        flagged = over_threshold(score, self.threshold)
        drawn = frame_boxes(full, self.pixel_threshold, flagged)
        hits = [bool(mask[b["y"]:b["y"] + b["h"], b["x"]:b["x"] + b["w"]].any()) for b in drawn]
        self.boxes += len(drawn)
        self.boxes_on_defect += sum(hits)
        if anomalous and flagged:
            self.flagged_defects += 1
            self.defects_boxed += any(hits)
            covered = np.zeros_like(mask)
            for b in drawn:
                covered[b["y"]:b["y"] + b["h"], b["x"]:b["x"] + b["w"]] = True
            ys, xs = np.nonzero(mask)
            if len(ys):
                centre = (int(round(ys.mean())), int(round(xs.mean())))
                self.centres_boxed += bool(covered[centre])
                self.coverage.append(float((covered & mask).sum() / len(ys)))
                self.area_ratio.append(float(covered.sum() / len(ys)))
            strongest = max(drawn, key=lambda b: b.get("peak", 0.0), default=None)
            if strongest is not None and "peak_y" in strongest:
                self.peaks_on_defect += bool(mask[strongest["peak_y"], strongest["peak_x"]])

    def value(self) -> dict:
        share = (lambda part, whole: part / whole if whole else None)
        median = (lambda values: float(np.median(values)) if values else None)
        return {"box_hit_rate": share(self.defects_boxed, self.flagged_defects),
                "box_precision": share(self.boxes_on_defect, self.boxes),
                "boxes": self.boxes,
                # of flagged defect images: the defect's centre in a box, the strongest box's
                # peak on the defect, the share of the defect inside boxes and the boxes' area
                # over the defect's (medians)
                "box_centre_hit_rate": share(self.centres_boxed, self.flagged_defects),
                "box_peak_hit_rate": share(self.peaks_on_defect, self.flagged_defects),
                "box_defect_coverage": median(self.coverage),
                "box_area_over_defect": median(self.area_ratio),
                "pixel_recall_at_pixel_threshold": share(self.defect_above, self.defect_pixels),
                "pixel_false_positive_rate_at_pixel_threshold": share(self.normal_above,
                                                                      self.normal_pixels)}


LINE_FALSE_POSITIVE_RATE = 0.01  # good parts an inspection line may reject: an operating point


def _operating_points(scores: np.ndarray, labels: np.ndarray, best: float) -> dict:
    """At the best-F1 threshold, the recall and the share of normal images rejected (an F1
    chosen where defects are many rejected 21 of 40 good images, unsaid); and the lowest
    threshold that rejects at most ``LINE_FALSE_POSITIVE_RATE`` of them, with its recall (None
    without defect images)."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all():
        return {}
    normal = np.sort(scores[~labels])
    allowed = int(np.floor(LINE_FALSE_POSITIVE_RATE * len(normal)))  # normal images above it
    line = float(normal[len(normal) - 1 - allowed])  # scores above this one are rejected
    at_line = {"threshold_at_1pct_false_positives": line,
               "false_positive_rate_at_it": float((scores[~labels] > line).mean())}
    if not labels.any() or best is None or not np.isfinite(best):  # normal images alone
        return {**at_line, "recall_at_1pct_false_positives": None}
    return {"best_f1_recall": float((scores[labels] > best).mean()),
            "best_f1_false_positive_rate": float((scores[~labels] > best).mean()),
            **at_line,
            "recall_at_1pct_false_positives": float((scores[labels] > line).mean())}


def _mistakes(items, scores, threshold: float) -> dict[str, list[dict]]:
    """Missed defect images (lowest score first) and false-alarm normal images (highest first)."""
    missed, false = [], []
    for item, score in zip(items, scores):
        entry = {"image": str(item.path), "defect": item.defect, "score": float(score)}
        if item.anomalous and score <= threshold:
            missed.append(entry)
        elif not item.anomalous and score > threshold:
            false.append(entry)
    return {"missed_images": sorted(missed, key=lambda e: e["score"]),
            "false_alarm_images": sorted(false, key=lambda e: -e["score"])}


def _per_defect(items, scores, labels, predicted,
                pixels: dict[str, np.ndarray]) -> list[dict]:
    """Image AUROC and recall per defect type (its images against the normal ones); with masks
    also pixel AUROC: its images' defect pixels against the defect-free pixels of its own images
    and of every normal image (``pixels``: per defect type, its images' defect and defect-free
    pixel histograms; under "", the normal images' defect-free ones)."""
    defects = sorted({i.defect for i in items if i.anomalous})
    normal = ~labels
    normal_pixels = pixels[""][1] if "" in pixels else 0
    rows = []
    for defect in defects:
        chosen = np.array([i.defect == defect for i in items])
        subset = chosen | normal
        row = {"defect": defect, "images": int(chosen.sum()),
               "image_auroc": metrics.auroc(scores[subset], labels[subset]),
               "recall": float(predicted[chosen].mean())}
        if defect in pixels:
            positive, negative = pixels[defect]
            row["pixel_auroc"] = _histogram_auroc(positive, negative + normal_pixels)
        rows.append(row)
    rows.append({"defect": "good", "images": int(normal.sum()), "image_auroc": None,
                 "false_positive_rate": float(predicted[normal].mean()) if normal.any() else None})
    return rows


def _pixel_edges(stats: ScoreStats) -> np.ndarray:
    """The pixel-AUROC histograms' bin edges, from the held-out normal pixels' ``stats``: from 0,
    or 10 normal spreads under their mean where that is lower (a fused map sums standardized
    maps and is negative on most normal pixels), to 4 x the brightest of them; values outside
    fall in the end bins, tied."""
    low = min(0.0, float(stats.mean) - 10 * float(stats.std))
    brightest = float(stats.max)
    top = max(4 * brightest, 2 * brightest - low, low + 1.0)
    return np.linspace(low, top, PIXEL_BINS + 1)


def _histogram_auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """AUROC from score histograms (ties within a bin count one half)."""
    p_total, n_total = positive.sum(), negative.sum()
    if p_total == 0 or n_total == 0:
        return None
    negatives_below = np.cumsum(negative) - negative
    wins = (positive * negatives_below).sum() + 0.5 * (positive * negative).sum()
    return float(wins / (p_total * n_total))


class _ProAccumulator:
    """Per-region overlap: mean over defect regions of the fraction covered, against FPR, at each
    image's own resolution, from the pixel-AUROC bins (a threshold at each bin edge): each
    region's share of pixels at or above each edge is summed over regions, the normal pixels'
    count above it kept in one histogram, so no map is held."""

    def __init__(self) -> None:
        self.shares: np.ndarray | None = None  # sum over regions of the share above each edge
        self.regions = 0
        self.negative: np.ndarray | None = None  # the normal pixels' histogram

    def add(self, bins: np.ndarray, mask: np.ndarray, negative: np.ndarray) -> None:
        """One image: its pixels' bins (``np.searchsorted(edges, map.ravel(), "right")``), its
        defect mask, and the histogram of its normal pixels' bins."""
        size = len(negative)
        if self.shares is None:
            self.shares, self.negative = np.zeros(size), np.zeros(size, np.int64)
        self.negative += negative
        if not mask.any():
            return
        count, regions = cv2.connectedComponents(mask.astype(np.uint8))
        labels = regions.ravel()
        inside = labels > 0
        labels, bins = labels[inside] - 1, bins[inside]
        order = np.argsort(labels, kind="stable")
        labels, bins = labels[order], bins[order]
        starts = np.searchsorted(labels, np.arange(count))
        # regions' histograms of bins, PRO_REGIONS_AT_ONCE at a time ((region, bin) pairs
        # counted): a speckled mask of thousands of regions must not take gigabytes
        for first in range(0, count - 1, PRO_REGIONS_AT_ONCE):
            last = min(first + PRO_REGIONS_AT_ONCE, count - 1)
            part = slice(starts[first], starts[last])
            pairs = np.bincount((labels[part] - first) * size + bins[part],
                                minlength=(last - first) * size).reshape(last - first, size)
            above = np.cumsum(pairs[:, ::-1], axis=1)[:, ::-1]  # at or above each bin's edge
            self.shares += (above / above[:, :1]).sum(axis=0)
        self.regions += count - 1

    def value(self) -> float | None:
        if (not self.regions or self.shares is None or self.negative is None
                or not self.negative.sum()):
            return None
        negatives_above = np.cumsum(self.negative[::-1])[::-1]
        # threshold at the lower edge of bin b: pixels in bins b and above; then above them all
        fpr = np.append(negatives_above[1:] / self.negative.sum(), 0.0)
        pro = np.append(self.shares[1:] / self.regions, 0.0)
        order = np.lexsort((pro, fpr))  # at one FPR, the curve rises to the best overlap there
        fpr, pro = fpr[order], pro[order]
        keep = fpr <= PRO_MAX_FPR
        if keep.sum() < 2:
            return None
        x, y = fpr[keep], pro[keep]
        beyond = np.flatnonzero(~keep)
        if beyond.size and x[-1] < PRO_MAX_FPR:  # the curve up to the limit itself, interpolated
            x0, y0, x1, y1 = x[-1], y[-1], fpr[beyond[0]], pro[beyond[0]]
            x = np.append(x, PRO_MAX_FPR)
            y = np.append(y, y0 + (y1 - y0) * (PRO_MAX_FPR - x0) / (x1 - x0))
        return float(_trapezoid(y, x) / PRO_MAX_FPR)
