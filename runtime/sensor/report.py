"""Sensor evaluation reports: ``report.md`` for a line engineer, ``metrics.json``, a plot per file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.metrics import runs
from ..core.report import (best_threshold_lines, confusion_table, eval_command, format_cell,
                           glossary, json_text, pyplot)
from .evaluation import FileScores

COLUMNS = ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "point_adjusted_f1",
           "far", "mar")
MAX_EPISODES = 200  # listed in report.md; metrics.json has them all


def write_report(result: dict, files: list[FileScores], folder: str | Path,
                 model_name: str, data: str | Path | None = None) -> Path:
    """Write ``report.md``, ``metrics.json`` and one ``<file>.png`` per file; returns the .md path.
    ``data`` (what was evaluated) completes the commands the report suggests."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Vigil evaluation: {model_name}", "", _decision_rule(result), ""]
    lines += ["## Result", "", "| metric | value |", "|---|---:|",
              *[f"| {key} | {format_cell(result.get(key))} |"
                for key in ("precision", "recall", "f1", "event_f1", "auroc")],
              f"| rows (labeled anomalous) | {result['rows']} ({result['anomalous_rows']}) |",
              f"| labeled events caught | {result['events_hit']} of {result['events']} |",
              f"| alarm episodes (false) | {result['alarm_runs']} ({result['false_alarm_runs']}) |",
              ""]
    lines += ["## Confusion counts", "", *confusion_table(result, "rows")]
    lines += ["## Best-F1 threshold", "",
              *best_threshold_lines(result, eval_command(model_name, data), "alarm_best_f1")]
    lines += ["## Per file", "",
              "| file | rows | anomalous | episodes | " + " | ".join(COLUMNS) + " |",
              "|---|---:|---:|---:|" + "---:|" * len(COLUMNS)]
    for row in [*result["files"], {"file": "**all**", **result}]:
        cells = [format_cell(row.get(c)) for c in COLUMNS]
        lines.append(f"| {row['file']} | {row['rows']} | {row['anomalous_rows']} | "
                     f"{row['alarm_runs']} | " + " | ".join(cells) + " |")
    lines += ["", *_episode_lines(files), *glossary(
        ("precision", "recall", "f1", "event_f1", "episode", "auroc", "auprc",
         "point_adjusted_f1", "far", "mar", "tp", "fp", "fn", "tn", "best_f1", "n/a")),
        result["note"], ""]
    taken: set[str] = set()  # a/b.csv and a_b.csv: one picture each (one was lost; r3)
    for scored in files:
        png = _plot(scored, result["threshold"], folder, taken)
        lines.append(f"![{scored.name}]({png.name})")
    (folder / "metrics.json").write_text(json_text(result))
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _decision_rule(result: dict) -> str:
    raised = [name for name, on in (("the adaptive threshold", result.get("adaptive")),
                                    ("the stream's long-run level, the mean of the likelihood's "
                                     f"means once {result.get('likelihood_level_warmup')} are "
                                     "learned", result.get("likelihood_level_warmup")))
              if on]
    rule = (f"Threshold {result['threshold']:.6g}"
            + (f" (raised at run time by {' and by '.join(raised)})" if raised else "")
            + f"; an alarm starts after {result['consecutive']} consecutive window(s) above it")
    if result.get("hold"):
        rule += f" and is held {result['hold']} window(s) after the score falls"
    if result.get("rearm"):
        rule += (f"; an alarm within {result['rearm']} window(s) of the last one's end continues "
                 "its episode")
    if result.get("likelihood_z") is not None:
        rule += (f"; an alarm also starts when the mean of the recent scores lies "
                 f"{result['likelihood_z']:g} std or more above its own recent history (the "
                 "anomaly likelihood)")
    if result.get("stride", 1) > 1:
        rule += f"; a window ends every {result['stride']} rows"
    return rule + "."


def _episode_lines(files: list[FileScores]) -> list[str]:
    episodes = [(f, e) for f in files for e in f.episodes]
    lines = ["## Alarm episodes", ""]
    if not episodes:
        return lines + ["No alarm was raised.", ""]
    false = sum(1 for _, e in episodes if not e.labeled)
    lines += [f"{len(episodes)} episode(s), {false} on no labeled anomaly (false). Top feature: "
              "the column with the largest share of the model's error over the episode.", "",
              "| file | start row | start time | rows | peak score | top feature | on a label |",
              "|---|---:|---|---:|---:|---|---|"]
    for scored, e in episodes[:MAX_EPISODES]:
        lines.append(f"| {scored.name} | {e.start} | {e.start_time or NO_TIME} | "
                     f"{e.stop - e.start} | {format_cell(e.peak_score)} | {e.top_feature} | "
                     f"{'yes' if e.labeled else 'no (false)'} |")
    if len(episodes) > MAX_EPISODES:
        lines.append(f"\n... and {len(episodes) - MAX_EPISODES} more (all in metrics.json, "
                     "under files[].episodes).")
    return lines + [""]


NO_TIME = "(no time column)"


def score_axis(scores: np.ndarray, threshold: float) -> tuple[float, float, str]:
    """(bottom, top, scale) of the score axis: linear from 0 (or from the lowest scores, which
    standardized scores put below 0), unless the scores span orders of magnitude (bursty
    streams), where a linear axis would hide the threshold and most scores: then logarithmic, or
    symmetric-logarithmic ("symlog", linear within the threshold) when scores go below 0."""
    finite = scores[np.isfinite(scores)]
    top = max(threshold * 2.5, float(np.percentile(finite, 99.5)) * 1.1) if len(finite) else 1.0
    lowest = float(np.percentile(finite, 0.5)) if len(finite) else 0.0
    if lowest < 0:
        spread = float(np.percentile(np.abs(finite), 50))
        bursty = top / max(spread, abs(threshold), 1e-12) > 100
        return lowest * 1.1, top, "symlog" if bursty else "linear"
    positive = finite[finite > 0]
    if len(positive):
        bottom = min(float(np.percentile(positive, 1)), threshold if threshold > 0 else np.inf) * 0.5
        if top / max(float(np.median(positive)), bottom) > 100:
            return bottom, top, "log"
    return 0.0, top, "linear"


def _plot(scored: FileScores, threshold: float, folder: Path, taken: set[str]) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(12, 3.2), dpi=100)
    x = np.arange(len(scored.scores))
    for n, (start, stop) in enumerate(runs(scored.labels)):
        axis.axvspan(start, stop, color="tab:red", alpha=0.15, lw=0,
                     label="labeled anomaly" if n == 0 else None)
    scored_rows = np.isfinite(scored.scores)  # strided windows leave rows without a score
    axis.plot(x[scored_rows], scored.scores[scored_rows], lw=0.8, color="tab:blue", label="score")
    axis.axhline(threshold, color="black", ls="--", lw=0.8, label="threshold")
    bottom, top, scale = score_axis(scored.scores, threshold)
    bar = bottom * (top / bottom) ** 0.97 if scale == "log" else top * 0.97
    named = set()
    for e in scored.episodes:
        name = "alarm episode" if e.labeled else "false alarm episode"
        axis.plot([e.start, e.stop], [bar] * 2, lw=4, solid_capstyle="butt",
                  color="tab:orange" if e.labeled else "tab:purple",
                  label=None if name in named else name)
        named.add(name)
    if scale == "log":
        axis.set_yscale("log")
    elif scale == "symlog":
        axis.set_yscale("symlog", linthresh=max(abs(threshold), 1e-6))
    axis.set_ylim(bottom, top)
    axis.set_title(f"{scored.name}: score over time")
    axis.set_xlabel("row")
    axis.set_ylabel("anomaly score" + {"log": " (log)", "symlog": " (log beyond the threshold)"}
                    .get(scale, ""))
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    figure.tight_layout()
    stem = str(Path(scored.name).with_suffix("")).replace("/", "_")
    name, number = f"{stem}.png", 1
    while name.casefold() in taken:  # another file's name read the same (in any case, as
        number += 1                      # macOS and Windows compare names), its picture kept
        name = f"{stem}-{number}.png"
    taken.add(name.casefold())
    path = folder / name
    figure.savefig(path)
    plt.close(figure)
    return path
