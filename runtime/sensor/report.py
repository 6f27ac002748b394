"""Sensor evaluation reports: a markdown table and a score-over-time PNG per file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.metrics import runs
from ..core.report import format_cell, json_text, pyplot
from .evaluation import FileScores

COLUMNS = ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "point_adjusted_f1",
           "far", "mar")


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
        cells = [format_cell(row.get(c)) for c in COLUMNS]
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


def _plot(scored: FileScores, threshold: float, folder: Path) -> Path:
    plt = pyplot()
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
