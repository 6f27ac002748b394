"""Camera evaluation reports: a metrics table and ``examples.png`` of overlays per defect type."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.report import format_cell, json_text
from .datasets import read_image
from .frames import overlay


def write_image_report(result: dict, scored, detector, folder: str | Path, model_name: str,
                       per_defect: int = 4) -> Path:
    """``report.md``, ``metrics.json`` and ``examples.png`` (overlays, a row per defect type)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Vigil image evaluation: {model_name}", "",
             "| metric | value |", "|---|---:|"]
    for key in ("image_auroc", "pixel_auroc", "pro", "precision", "recall", "f1", "best_f1",
                "threshold", "pixel_threshold", "images", "anomalous"):
        lines.append(f"| {key} | {format_cell(result.get(key))} |")
    lines += ["", "| defect | images | image AUROC | recall at threshold |", "|---|---:|---:|---:|"]
    for row in result["per_defect"]:
        recall = row.get("recall", row.get("false_positive_rate"))
        label = row["defect"] + (" (false positive rate)" if row["defect"] == "good" else "")
        lines.append(f"| {label} | {row['images']} | {format_cell(row['image_auroc'])} | {format_cell(recall)} |")
    tiles_by_defect: dict[str, list] = {}
    for item, score, amap in zip(scored.items, scored.scores, scored.maps):
        tiles = tiles_by_defect.setdefault(item.defect, [])
        if len(tiles) >= per_defect:
            continue
        image = read_image(item.path)
        full, boxes = detector.locate(image, amap)
        picture = overlay(image, full, detector.spec, boxes,
                          f"{item.defect} {score:.3f}{' ANOMALY' if score > detector.threshold else ''}")
        tiles.append(cv2.resize(picture, (192, 192), interpolation=cv2.INTER_AREA))
    rows = []
    for tiles in tiles_by_defect.values():
        while len(tiles) < per_defect:
            tiles.append(np.zeros((192, 192, 3), np.uint8))
        rows.append(np.hstack(tiles))
    if rows:
        cv2.imwrite(str(folder / "examples.png"), np.vstack(rows))
        lines += ["", "![examples](examples.png)"]
    lines += ["", result["note"], ""]
    (folder / "metrics.json").write_text(json_text(result))
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
