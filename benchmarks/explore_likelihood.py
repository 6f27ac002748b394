"""Exploration: HTM's anomaly likelihood as the alarm rule, on the four sensor sets' saved scores.

Numenta's detector on NAB (Ahmad et al., "Unsupervised real-time anomaly detection for streaming
data", Neurocomputing 2017) does not threshold its raw score: it averages the last ``short``
scores and asks how far that average lies in the tail of a Gaussian fitted to the averages of the
last ``long`` windows (every window learned, anomalies included), alarming at a tail probability
of 1e-5 (z 4.27). Here that rule is applied causally to each stream's window scores, after
``warmup`` windows of history, optionally only where the score is also above the artifact's
calibrated threshold (mean + ``k`` std of the held-out normal scores); alarm episodes are the
runtime's. With ``--distances`` (the folder ``explore_neighbours.py --cache`` filled for
``16:1``) each stream's error and shape distance are summed as the library's default score does.

Alone, in place of the threshold, it lost on SKAB and ECG; beside it (an alarm from either) it
won on all four sets and is the runtime's default now (``AnomalyLikelihood`` in
``vigil.runtime.sensor.alarms``; docs/quality.md, "Alarm defaults" has the figures). This script
reproduces that comparison: the library's default policy without and with it, then it alone.
Its long-run level (the mean of its means) also floors the threshold by default, once 1,000
means are learned; the script shows the policy without that floor and with other warm-ups.

    python benchmarks/explore_likelihood.py --scores DIR --distances CACHE
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, replace

import numpy as np

from vigil.benchmarks.score_dump import ScoredStream
from vigil.benchmarks.sweep_alarms import figure_line, row_decisions
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate
from vigil.runtime.sensor.alarms import Episodes
from vigil.runtime.sensor.evaluation import between_windows


@dataclass(frozen=True)
class Likelihood:
    short: int = 10
    long: int = 8640
    z: float = 4.27
    warmup: int = 388           # HTM's learning period (288) and estimation samples (100)
    k: float | None = None      # also above the calibrated threshold (None: the likelihood alone)
    rearm: int = 0

    @property
    def name(self) -> str:
        return (f"short {self.short}, long {self.long}, z {self.z:g}, warm-up {self.warmup}"
                f"{f', and above mean + {self.k:g} std' if self.k is not None else ''}"
                f"{f', re-arm {self.rearm}' if self.rearm else ''}")


def tail_z(scores: np.ndarray, short: int, long: int) -> tuple[np.ndarray, np.ndarray]:
    """(z of each window's mean of its last ``short`` scores against the mean and std of the
    ``long`` such means before it, how many means that history holds), causally."""
    n = np.arange(len(scores))
    sums = np.concatenate([[0.0], np.cumsum(scores)])
    first = np.maximum(0, n - short + 1)
    means = (sums[n + 1] - sums[first]) / (n + 1 - first)
    s1 = np.concatenate([[0.0], np.cumsum(means)])
    s2 = np.concatenate([[0.0], np.cumsum(means * means)])
    start = np.maximum(0, n - long)
    count = n - start
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (s1[n] - s1[start]) / count
        sd = np.sqrt(np.maximum((s2[n] - s2[start]) / count - mu * mu, 1e-12))
        return (means - mu) / sd, count


def decide(stream: ScoredStream, rule: Likelihood) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-row (alarms, episode starts) and the re-arm time in rows, as ``row_decisions``."""
    ends = np.flatnonzero(~np.isnan(stream.scores))
    scores = stream.scores[ends]
    z, history = tail_z(scores, rule.short, rule.long)
    above = (history >= rule.warmup) & (z > rule.z)
    if rule.k is not None:
        above &= scores > calibrate(ThresholdMethod.GAUSSIAN, stream.validation_scores,
                                    k=rule.k).value
    episodes = Episodes(rule.rearm)
    rows = np.zeros(len(stream.scores), dtype=bool)
    starts = np.zeros(len(stream.scores), dtype=bool)
    rows[ends] = above
    starts[ends] = [episodes.step(bool(a)) for a in above]
    stride = int(ends[1] - ends[0]) if len(ends) > 1 else 1
    return (between_windows(stream.scores, rows) if stride > 1 else rows), starts, \
        rule.rearm * stride


def main(argv: list[str] | None = None) -> int:
    from vigil.benchmarks.explore_neighbours import DEFAULT_POLICY, saved_sets, saved_sets_parser

    args = saved_sets_parser(__doc__).parse_args(argv)
    rules = [Likelihood(short, long, z, 200 if long <= 1000 else 388, k, rearm)
             for short, long, z, k, rearm in itertools.product(
                 (1, 10), (1000, 8640), (3.0, 4.27, 6.0), (None, 5.0), (0, 10))]
    for bench, streams in saved_sets(args.scores, args.distances):
        without = replace(DEFAULT_POLICY, likelihood_z=None)
        print(figure_line(bench, streams, [row_decisions(s, without) for s in streams],
                   "the default policy without the likelihood"), flush=True)
        print(figure_line(bench, streams, [row_decisions(s, DEFAULT_POLICY) for s in streams],
                   "the default policy (with it and its level)"), flush=True)
        for level in (None, 388, 2000):
            policy = replace(DEFAULT_POLICY, likelihood_level=level)
            print(figure_line(bench, streams, [row_decisions(s, policy) for s in streams],
                       f"with it, {f'level after {level} means' if level else 'no level'}"),
                  flush=True)
        for rule in rules:
            print(figure_line(bench, streams, [decide(s, rule) for s in streams], rule.name),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
