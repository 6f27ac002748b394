"""Exploration: telemanom's nonparametric dynamic threshold on the four sensor sets' saved scores.

Hundman et al., "Detecting Spacecraft Anomalies Using LSTMs and Nonparametric Dynamic
Thresholding" (KDD 2018), applied causally, as a device would have to: the window scores are
smoothed (an exponentially weighted mean of ``span`` windows); every ``batch`` windows the
threshold is chosen again on the last ``history`` smoothed scores as the ``mean + z std`` whose
removal of the points above it lowers the mean and std most per point and per sequence squared
(``z`` from 2.5 to 12); optionally it never goes below the artifact's calibrated threshold
(``floor``), and a window is an anomaly only if it exceeds the highest recent score below the
threshold by the fraction ``prune`` (telemanom's pruning of weak sequences). Before ``warmup``
windows the calibrated threshold applies alone. Alarm smoothing and episodes are the runtime's.

``--capped`` tries the rule held between a reference and ``cap`` times it, the pruning included:
the reference is the calibrated threshold (``under="base"``) or the library's default adaptive
threshold, learned as the runtime learns it (``under="adaptive"``).

It is not part of the runtime: on these sets it did not win (docs/quality.md, "Alarm defaults" says
what it scored); this script reproduces that comparison from ``--save-scores`` files.

    python benchmarks/explore_dynamic_threshold.py --scores results/scores --json results/dyn.json
    python benchmarks/explore_dynamic_threshold.py --scores results/scores --capped
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vigil.benchmarks.score_dump import ScoredStream, load_streams
from vigil.benchmarks.sweep_alarms import PRIMARY, SETS, figures_of
from vigil.runtime.core.report import json_text
from vigil.runtime.core.spec import AdaptiveThresholdSpec
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate
from vigil.runtime.sensor.alarms import AdaptiveThreshold, AlarmFilter, Episodes
from vigil.runtime.sensor.evaluation import between_windows

Z_CHOICES = np.arange(2.5, 12.01, 0.5)
# The library's alarm defaults (training's CalibrationOptions, which imports TensorFlow; a test
# keeps these equal to it): the calibrated threshold's k, the alarm hold, the adaptive threshold.
K, HOLD = 5.0, 10
DEFAULT_ADAPTIVE = AdaptiveThresholdSpec(memory=1000, warmup=1000, quantile=0.99, factor=2.0)


Under = Literal["base", "adaptive"]
UNDER: tuple[Under, ...] = ("base", "adaptive")


@dataclass(frozen=True)
class DynamicThreshold:
    span: int = 1           # windows in the exponentially weighted smoothing (1: none)
    history: int = 2100     # smoothed scores the threshold is chosen on (telemanom: 30 x 70)
    batch: int = 70         # windows between choices
    warmup: int = 1000      # windows before it applies
    prune: float | None = None  # minimum fractional excess over the highest normal score
    floor: bool = True      # never below the calibrated threshold (or `under`'s threshold)
    cap: float | None = None  # never above this many times the `under` threshold
    # "base": the calibrated threshold; "adaptive": the default adaptive threshold
    # (DEFAULT_ADAPTIVE), learned as the runtime learns it
    under: Under = "base"


def epsilon(errors: np.ndarray) -> float:
    """telemanom's threshold over one history of smoothed errors."""
    mean, std = float(errors.mean()), float(errors.std())
    if std <= 0 or mean <= 0:
        return float("inf")
    best, chosen = -np.inf, mean + Z_CHOICES[-1] * std
    for z in Z_CHOICES:
        cut = mean + z * std
        above = errors > cut
        count = int(above.sum())
        if count == 0 or count == len(errors):
            continue
        below = errors[~above]
        sequences = int(np.count_nonzero(np.diff(above.astype(np.int8), prepend=0) == 1))
        gain = ((mean - below.mean()) / mean + (std - below.std()) / std) / (count + sequences ** 2)
        if gain > best:
            best, chosen = gain, cut
    return chosen


def decide(scores: np.ndarray, base: float, rule: DynamicThreshold) -> tuple[np.ndarray, np.ndarray]:
    """(alarms, episode starts) of one stream's window scores, in order."""
    alpha = 2.0 / (rule.span + 1)
    smoothed = np.empty(len(scores))
    level = None
    for i, score in enumerate(scores):
        value = score if np.isfinite(score) else (level if level is not None else 0.0)
        level = value if level is None else alpha * value + (1 - alpha) * level
        smoothed[i] = level
    smoothing, episodes = AlarmFilter(1, HOLD), Episodes(0)
    adaptive = AdaptiveThreshold(DEFAULT_ADAPTIVE) if rule.under == "adaptive" else None
    alarms = np.zeros(len(scores), dtype=bool)
    starts = np.zeros(len(scores), dtype=bool)
    chosen, highest_normal = None, None
    for i in range(len(scores)):
        reference = adaptive.threshold(base) if adaptive is not None else base
        if i >= rule.warmup and (i - rule.warmup) % rule.batch == 0:
            recent = smoothed[max(0, i - rule.history):i]
            chosen = epsilon(recent)
            normal = recent[recent <= chosen]
            highest_normal = float(normal.max()) if len(normal) else None
        if chosen is None:
            above = not np.isfinite(scores[i]) or scores[i] > reference
        else:
            cut = max(chosen, reference) if rule.floor else chosen
            if rule.prune is not None and highest_normal is not None:
                # (score - highest normal) / score >= prune, for the positive scores
                cut = max(cut, highest_normal / (1.0 - rule.prune))
            if rule.cap is not None:
                cut = min(cut, rule.cap * reference)
            above = smoothed[i] > cut
        alarms[i] = smoothing.step(bool(above))
        starts[i] = episodes.step(bool(alarms[i]))
        if adaptive is not None:
            adaptive.observe(float(scores[i]), bool(alarms[i]))
    return alarms, starts


def evaluate(benchmark: str, streams: list[ScoredStream], rule: DynamicThreshold) -> dict:
    decided = []
    for s in streams:
        ends = np.flatnonzero(~np.isnan(s.scores))
        base = calibrate(ThresholdMethod.GAUSSIAN, s.validation_scores, k=K).value
        rows = np.zeros(len(s.scores), dtype=bool)
        starts = np.zeros(len(s.scores), dtype=bool)
        rows[ends], starts[ends] = decide(s.scores[ends], base, rule)
        if len(ends) > 1 and ends[1] - ends[0] > 1:
            rows = between_windows(s.scores, rows)
        decided.append((rows, starts))
    return figures_of(benchmark, streams, decided, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=Path, required=True,
                        help="a folder of <set>.npz written by the benchmarks' --save-scores")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--capped", action="store_true",
                        help="the capped grid: telemanom's threshold held between the calibrated "
                             "(or default adaptive) threshold and a multiple of it")
    args = parser.parse_args(argv)
    sets = {name: load_streams(args.scores / f"{name}.npz")[1] for name in SETS
            if (args.scores / f"{name}.npz").is_file()}
    if not sets:
        parser.error(f"--scores {args.scores} holds none of {[f'{n}.npz' for n in SETS]}")
    rows = []
    if args.capped:
        rules = [DynamicThreshold(span=span, warmup=1000, prune=prune, cap=cap, under=under)
                 for span, prune, cap, under in itertools.product(
                     (1, 10), (None, 0.13), (None, 2.0, 3.0, 5.0, 10.0), UNDER)]
    else:
        rules = [DynamicThreshold(span=span, warmup=warmup, prune=prune, floor=floor)
                 for span, warmup, prune, floor in itertools.product(
                     (1, 10, 30), (200, 1000), (None, 0.13), (True, False))]
    for rule in rules:
        figures = {name: evaluate(name, streams, rule) for name, streams in sets.items()}
        rows.append({"rule": asdict(rule), "figures": figures})
        print(f"span {rule.span:>2} warmup {rule.warmup:>4} prune {rule.prune} floor {rule.floor!s:<5} "
              f"cap {rule.cap} under {rule.under:<8}  " + "  ".join(
            f"{n} {figures[n][PRIMARY[n]]:.3f}" for n in sets), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text({"primary_metric": {n: PRIMARY[n] for n in sets},
                                        "rules": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
