"""Camera evaluation reports: ``report.md`` for a line engineer, ``metrics.json``, and
``examples.png`` of overlays (a row per defect type)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.report import (best_threshold_lines, confusion_table, eval_command, format_cell,
                           glossary, json_text)
from .datasets import read_image, read_mask
from .frames import frame_boxes, overlay

TILE = 224          # overlays are drawn at this size, so their labels stay sharp
MAX_LISTED = 100    # missed and false images listed in report.md; metrics.json has them all


def _seen_lines(result: dict) -> list[str]:
    """A caution where test images are ones training saw, or given both ways, or compressed much
    harder than the training images (``vigil eval`` warns of each too)."""
    counts = [(result.get("images_trained_on"), "trained on"),
              (result.get("images_held_out_in_training"), "held out by training to set the "
                                                          "threshold"),
              (result.get("defects_given_in_training"), "given to training as defects")]
    said = [f"{count} {what}" for count, what in counts if count]
    both = result.get("images_in_both_sets")
    lines = ([f"**Caution:** of these test images, {', '.join(said)}: the figures above are "
              f"better than this model gives on images it has not seen, and a best-F1 threshold "
              f"chosen here is fitted to them.", ""] if said else [])
    if both:
        lines += [f"**Caution:** {both} defect image(s) are also among the normal images (the "
                  f"same pixels): each is counted both ways, so no model scores them right; "
                  f"remove them from one of the folders.", ""]
    compressed = result.get("images_compressed_harder")
    if compressed:
        lines += [f"**Caution:** {compressed} test image(s) are JPEGs compressed much harder "
                  f"than the training images: their scores say as much about the compression as "
                  f"about the parts (good ones are rejected more often).", ""]
    return lines


def write_image_report(result: dict, scored, detector, folder: str | Path, model_name: str,
                       data: str | None = None, per_defect: int = 4) -> Path:
    """``report.md``, ``metrics.json`` and ``examples.png``; ``data`` (what was evaluated, as
    typed after the model on the command line) completes the commands the report suggests."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    missed, false = result["missed_images"], result["false_alarm_images"]
    lines = [f"# Vigil image evaluation: {model_name}", "",
             f"An image is a defect when its score is above {detector.threshold:.6g}; pixels "
             f"above {detector.pixel_threshold:.6g} are coloured in its map, and boxed in a "
             f"defect's (one with none above it gets a box around its map's peak).", "",
             "## Result", "", "| metric | value |", "|---|---:|",
             *[f"| {key} | {format_cell(result.get(key))} |"
               for key in ("image_auroc", "pixel_auroc", "pro", "precision", "recall", "f1",
                           "false_positive_rate")],
             f"| images (defects) | {result['images']} ({result['anomalous']}) |", "",
             *_seen_lines(result),
             "## Confusion counts", "", *confusion_table(result, "images"),
             "## Best-F1 threshold", "",
             *best_threshold_lines(result, eval_command(model_name, data)),
             "## Per defect type" if result["anomalous"] else "## Normal images", ""]
    if result["anomalous"]:
        lines += ["| defect | images | image AUROC | pixel AUROC | caught at the threshold |",
                  "|---|---:|---:|---:|---:|"]
    for row in result["per_defect"]:
        if row["defect"] == "good":
            continue
        lines.append(f"| {row['defect']} | {row['images']} | {format_cell(row['image_auroc'])} | "
                     f"{format_cell(row.get('pixel_auroc'))} | {format_cell(row['recall'])} |")
    good = next((r for r in result["per_defect"] if r["defect"] == "good"), None)
    if good:
        lines += ["", f"Normal images: {good['images']}, of which {len(false)} raised a false "
                  "alarm.", *_normal_score_lines(result)]
    lines += ["", *_listing("Missed defects (score at or below the threshold)", missed,
                            "No defect image was missed." if result["anomalous"]
                            else "No defect image was given."),
              *_listing("False alarms (normal images above the threshold)", false,
                        "No normal image raised an alarm.")]
    if _examples(scored, detector, folder / "examples.png", per_defect):
        lines += ["## Examples", "",
                  f"Up to {per_defect} images per defect type, first the ones the model got "
                  "wrong. Coloured: map above the pixel threshold (colour bar on the right); red "
                  "boxes: regions found; green outline: the ground-truth mask, where there is one.",
                  "", "![examples](examples.png)", ""]
    lines += glossary(("precision", "recall", "f1", "auroc", "pixel_auroc", "pro", "tp", "fp",
                       "fn", "tn", "best_f1", "n/a"))
    lines += [result["note"], ""]
    (folder / "metrics.json").write_text(json_text(result))
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _normal_score_lines(result: dict) -> list[str]:
    """How near the normal images' scores come to the threshold, and the threshold that would
    reject at most 1 % of them: what a line without defect images to test on can learn."""
    scores, line = result.get("normal_scores"), result.get("threshold_at_1pct_false_positives")
    if not scores:
        return []
    lines = [f"Their scores: median {scores['median']:.4g}, 99th percentile {scores['p99']:.4g}, "
             f"highest {scores['max']:.4g}, against the threshold {result['threshold']:.4g}."]
    if line is not None:
        lines.append(f"Rejecting at most 1 % of them takes a threshold of {line:.6g} "
                     f"({100 * result['false_positive_rate_at_it']:.1f} % here; `vigil score "
                     f"--threshold` sets it).")
    if not result["anomalous"]:
        lines.append("No defect image was given, so nothing here says what the model catches: "
                     "add defect images with --anomalous DIR (masks with --masks DIR) to "
                     "measure it.")
    return lines


def _listing(title: str, entries: list[dict], none: str) -> list[str]:
    lines = [f"## {title}", ""]
    if not entries:
        return lines + [none, ""]
    lines += [f"{len(entries)} image(s).", "", "| image | defect | score |", "|---|---|---:|"]
    lines += [f"| {e['image']} | {e['defect']} | {e['score']:.4g} |" for e in entries[:MAX_LISTED]]
    if len(entries) > MAX_LISTED:
        lines.append(f"\n... and {len(entries) - MAX_LISTED} more (all in metrics.json).")
    return lines + [""]


def _examples(scored, detector, path: Path, per_defect: int) -> bool:
    """Write a grid of overlays, a row per defect type; False when there is nothing to show."""
    threshold = detector.threshold
    chosen: dict[str, list[int]] = {}
    # wrong decisions first: they are what a line engineer has to look at
    order = sorted(range(len(scored.items)), key=lambda n: (
        (scored.scores[n] > threshold) == scored.items[n].anomalous, n))
    for n in order:
        picks = chosen.setdefault(scored.items[n].defect, [])
        if len(picks) < per_defect:
            picks.append(n)
    grid = {defect: [_tile(scored, detector, n) for n in sorted(chosen[defect])]
            for defect in sorted(chosen, key=lambda d: (d == "good", d))}
    # each image keeps its own aspect ratio: tiles are padded to the largest, not stretched
    height = max(t.shape[0] for tiles in grid.values() for t in tiles)
    width = max(t.shape[1] for tiles in grid.values() for t in tiles)
    rows = []
    for tiles in grid.values():
        padded = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, width - t.shape[1],
                                     cv2.BORDER_CONSTANT, value=(0, 0, 0)) for t in tiles]
        blank = np.zeros((height, width, 3), np.uint8)
        rows.append(np.hstack(padded + [blank] * (per_defect - len(tiles))))
    if not rows:
        return False
    cv2.imwrite(str(path), np.vstack(rows))
    return True


def _tile(scored, detector, n: int) -> np.ndarray:
    item, score = scored.items[n], float(scored.scores[n])
    image = read_image(item.path)
    mask = read_mask(item.mask, image.shape) if item.mask is not None else None
    scale = TILE / max(image.shape[:2])  # the longer side to TILE, the aspect ratio kept
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if mask is not None:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    full, found = detector.locate(small, scored.maps[n])
    flagged = score > detector.threshold
    boxes = frame_boxes(full, detector.pixel_threshold, flagged, found)
    verdict = {(True, True): "caught", (True, False): "MISSED", (False, True): "FALSE ALARM",
               (False, False): "ok"}[item.anomalous, flagged]
    # the verdict first: on a narrow (tall) image the label's end may not fit
    return overlay(small, full, detector.spec, boxes, f"{verdict} {score:.3g} {item.defect}",
                   mask, pixel_threshold=detector.pixel_threshold)
