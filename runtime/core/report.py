"""Shared pieces of reports: strict JSON, table cells, matplotlib on a headless machine."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np

from .output import json_ready


def json_text(value, indent: int | None = 2) -> str:
    """Strict JSON: NaN (an AUROC with one class, say) becomes null, and infinities the largest
    finite doubles, as a score line writes them (``output.strict_json``)."""
    return json.dumps(json_ready(value), indent=indent, allow_nan=False)


NOT_DEFINED = "n/a"

# Every term a report uses, defined once; a report lists the ones it shows.
TERMS = {
    "precision": "of the alarms raised, the fraction that fell on labeled anomalies",
    "recall": "of the labeled anomalies, the fraction that raised an alarm",
    "f1": "the balance of precision and recall: TP / (TP + (FP + FN) / 2)",
    "auroc": "area under the ROC curve: the chance that a random anomaly scores above a random "
             "normal item, whatever the threshold (0.5: no better than chance)",
    "auprc": "area under the precision-recall curve (average precision), threshold-free",
    "event_f1": "F1 over events instead of rows: an event (a run of labeled rows) is caught if "
                "any alarm falls in it; an alarm episode is false if it overlaps no event",
    "point_adjusted_f1": "F1 after marking a whole labeled event as caught when any row of it "
                         "is; common in papers, but it flatters, so it is shown only beside f1",
    "far": "false alarm rate: FP / (FP + TN), the fraction of normal rows that alarmed",
    "mar": "missed alarm rate: FN / (FN + TP), the fraction of anomalous rows that did not",
    "pixel_auroc": "AUROC over every pixel of every test image: does the map light up on the "
                   "defect pixels of the masks",
    "pro": "per-region overlap: how much of each defect region the map covers, averaged over "
           "regions and integrated up to a 30 % false positive rate (small defects count as "
           "much as large ones)",
    "best_f1": "the highest F1 any threshold reaches on this data; chosen on the data it "
               "scores, so optimistic",
    "tp": "true positives: anomalies that alarmed",
    "fp": "false positives: normal items that alarmed",
    "fn": "false negatives: anomalies that did not alarm",
    "tn": "true negatives: normal items that did not alarm",
    "episode": "an alarm episode: alarms closer together than the re-arm time count as one, "
               "as an operator would be told of them",
    "n/a": "not defined on this data (e.g. AUROC of a file with only normal rows)",
}


def glossary(keys) -> list[str]:
    """Markdown lines defining ``keys`` (in order) from ``TERMS``."""
    return ["## Terms", "", *[f"- **{key}**: {TERMS[key]}" for key in keys], ""]


def confusion_table(result: dict, unit: str) -> list[str]:
    """A markdown confusion table of ``tp``/``fp``/``fn``/``tn`` counted in ``unit``."""
    return [f"| {unit} | labeled anomalous | labeled normal |", "|---|---:|---:|",
            f"| alarm | {result['tp']} (TP) | {result['fp']} (FP) |",
            f"| no alarm | {result['fn']} (FN) | {result['tn']} (TN) |", ""]


def eval_command(model_name: object, data: str | Path | None) -> str:
    """``vigil eval MODEL DATA`` as a report suggests it (``data`` as typed, quoted already)."""
    return f"vigil eval {shlex.quote(str(model_name))} {data or 'DATA'}"


def best_threshold_lines(result: dict, eval_command: str, best_key: str = "best_f1") -> list[str]:
    """The best-F1 threshold (``result[best_key]`` at ``result[best_key + '_threshold']``)
    against the one in use, with the commands that apply it."""
    best, at = result.get(best_key), result.get(best_key + "_threshold")
    if result.get(best_key + "_note"):
        return [f"No best-F1 threshold: {result[best_key + '_note']}.", ""]
    if best is None or at is None or not np.isfinite(at):
        return ["No best-F1 threshold: the data holds only one class.", ""]
    exact = f"{at:.6g}" if float(f"{at:.6g}") == at else repr(at)
    head = f"At the threshold in use ({result['threshold']:.6g}) F1 is {result['f1']:.3f}; "
    if best <= result["f1"] + 1e-9:
        return [head + "no other threshold tried does better on this data.", ""]
    rates = []
    if result.get("best_f1_false_positive_rate") is not None:
        rates.append(f"There it catches {100 * result['best_f1_recall']:.0f} % of the defect "
                     f"images and rejects {100 * result['best_f1_false_positive_rate']:.0f} % of "
                     f"the normal ones (F1 weighs the two by their numbers here, not by a "
                     f"line's defect rate).")
    if result.get("threshold_at_1pct_false_positives") is not None:
        line = result["threshold_at_1pct_false_positives"]
        rates.append(f"Rejecting at most 1 % of the normal images (threshold {line:.6g}; "
                     f"{100 * result['false_positive_rate_at_it']:.1f} % here) catches "
                     f"{100 * result['recall_at_1pct_false_positives']:.0f} % of the defect "
                     f"images.")
    return [head + f"the best F1 on this data is {best:.3f}, at threshold {exact}.",
            *rates,
            "It was chosen on the data it is measured on, so expect less on new data. "
            "To check it, then to score with it:", "",
            f"    {eval_command} --threshold {exact}",
            f"    vigil score MODEL INPUT --threshold {exact}", "",
            *([f"Boxes mark map values above the pixel threshold "
               f"({result['pixel_threshold']:.6g}); a defect with none above it is boxed around "
               f"its map's peak, and `vigil score --pixel-threshold` moves it.", ""]
              if result.get("pixel_threshold") is not None else [])]


def format_cell(value) -> str:
    if value is None:
        return NOT_DEFINED
    if isinstance(value, float):
        return NOT_DEFINED if np.isnan(value) else f"{value:.3f}"
    return str(value)


class MissingDependency(RuntimeError):
    """An optional package a feature needs is not installed; the message names the install."""


def pyplot():
    """matplotlib's pyplot on the Agg backend, or a clear error naming the install command."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency("--report needs matplotlib for its plots, which is not installed: "
                                "pip install 'vigil-edge[report]' (or leave out --report)") from None
    return plt
