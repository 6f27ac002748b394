"""Evaluation reports: a markdown table and a score-over-time PNG per file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .evaluation import FileScores
from .windows import runs

COLUMNS = ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "point_adjusted_f1",
           "far", "mar")


def json_text(value, indent: int | None = 2) -> str:
    """Strict JSON: NaN and infinities (an AUROC with one class, say) become null."""
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v
    return json.dumps(clean(value), indent=indent, allow_nan=False)


def write_report(result: dict, files: list[FileScores], folder: str | Path,
                 model_name: str) -> Path:
    """Write ``report.md``, ``metrics.json`` and one ``<file>.png`` per file; returns the .md path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Vigil evaluation: {model_name}", "",
             f"Threshold {result['threshold']:.6g}, alarm after {result['consecutive']} "
             "consecutive window(s) above it.", "",
             "| file | rows | anomalous | " + " | ".join(COLUMNS) + " |",
             "|---|---:|---:|" + "---:|" * len(COLUMNS)]
    for row in [*result["files"], {"file": "**all**", **result}]:
        cells = [_fmt(row.get(c)) for c in COLUMNS]
        lines.append(f"| {row['file']} | {row['rows']} | {row['anomalous_rows']} | "
                     + " | ".join(cells) + " |")
    lines += ["", result["note"], ""]
    for scored in files:
        png = _plot(scored, result["threshold"], folder)
        lines.append(f"![{scored.name}]({png.name})")
    (folder / "metrics.json").write_text(json_text(result))
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.3f}"
    return str(value)


def _plot(scored: FileScores, threshold: float, folder: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("the report's plots need matplotlib: pip install 'vigil[report]'") from None
    figure, axis = plt.subplots(figsize=(12, 3.2), dpi=100)
    x = np.arange(len(scored.scores))
    for start, stop in runs(scored.labels):
        axis.axvspan(start, stop, color="tab:red", alpha=0.15, lw=0)
    axis.plot(x, scored.scores, lw=0.8, color="tab:blue", label="score")
    axis.axhline(threshold, color="black", ls="--", lw=0.8, label="threshold")
    alarm_rows = np.flatnonzero(scored.alarms)
    if len(alarm_rows):
        axis.plot(alarm_rows, np.full(len(alarm_rows), np.nanmin(scored.scores)), "|",
                  color="tab:orange", ms=6, label="alarm")
    finite = scored.scores[np.isfinite(scored.scores)]
    if len(finite):
        axis.set_ylim(0, max(threshold * 2.5, float(np.percentile(finite, 99.5)) * 1.1))
    axis.set_title(f"{scored.name}: score over time (red: labeled anomaly)")
    axis.set_xlabel("row")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path = folder / (str(Path(scored.name).with_suffix("")).replace("/", "_") + ".png")
    figure.savefig(path)
    plt.close(figure)
    return path


def write_image_report(result: dict, scored, detector, folder: str | Path, model_name: str,
                       per_defect: int = 4) -> Path:
    """``report.md``, ``metrics.json`` and ``examples.png`` (overlays, a row per defect type)."""
    import cv2

    from .frames import overlay
    from .image_data import read_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Vigil image evaluation: {model_name}", "",
             "| metric | value |", "|---|---:|"]
    for key in ("image_auroc", "pixel_auroc", "pro", "precision", "recall", "f1", "best_f1",
                "threshold", "pixel_threshold", "images", "anomalous"):
        lines.append(f"| {key} | {_fmt(result.get(key))} |")
    lines += ["", "| defect | images | image AUROC | recall at threshold |", "|---|---:|---:|---:|"]
    for row in result["per_defect"]:
        recall = row.get("recall", row.get("false_positive_rate"))
        label = row["defect"] + (" (false positive rate)" if row["defect"] == "good" else "")
        lines.append(f"| {label} | {row['images']} | {_fmt(row['image_auroc'])} | {_fmt(recall)} |")
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
