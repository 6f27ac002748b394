"""Exploration: an extreme-value (peaks-over-threshold) calibrated threshold on the four sensor
sets' saved scores.

Siffer et al., "Anomaly Detection in Streams with Extreme Value Theory" (KDD 2017), the threshold
OmniAnomaly and most papers on SMD use: the held-out normal scores above their ``initial``
quantile are fitted with a generalized Pareto distribution, and the threshold is the score whose
modelled exceedance probability is ``risk``. The fit here is Hosking and Wallis' probability-
weighted moments (closed form, steady on the few dozen excesses a NAB file's held-out part has).
Each variant replaces the library's calibrated threshold (mean + ``k`` std of the held-out normal
scores) or floors it (the larger of the two); everything after it (adaptive threshold, anomaly
likelihood and its level, hold, episodes) is the runtime's own alarm code with the defaults.

It is not part of the library: it did not win on these sets (docs/quality.md, "Alarm defaults" has
the figures); this script reproduces that comparison from ``--save-scores`` files.

    python benchmarks/explore_pot.py --scores DIR --distances CACHE
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from vigil.benchmarks.explore_neighbours import DEFAULT_POLICY, saved_sets, saved_sets_parser
from vigil.benchmarks.score_dump import ScoredStream
from vigil.benchmarks.sweep_alarms import figure_line, row_decisions
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate

RISKS = (1e-3, 1e-4, 1e-5)
INITIAL_QUANTILES = (0.9, 0.98)


def generalized_pareto_pwm(excesses: np.ndarray) -> tuple[float, float]:
    """(shape, scale) of a generalized Pareto distribution fitted to positive ``excesses`` by
    probability-weighted moments (Hosking & Wallis 1987); shape > 0 is a heavy tail."""
    y = np.sort(np.asarray(excesses, dtype=np.float64))
    if len(y) < 3 or not np.all(y > 0):
        raise ValueError(f"`excesses` must hold at least 3 positive values; received {len(y)} "
                         f"(smallest {y.min() if len(y) else None})")
    plotting = (np.arange(1, len(y) + 1) - 0.35) / len(y)
    a0, a1 = y.mean(), np.mean((1.0 - plotting) * y)
    k = a0 / (a0 - 2.0 * a1) - 2.0  # Hosking's k is minus the shape
    return -k, 2.0 * a0 * a1 / (a0 - 2.0 * a1)


def pot_threshold(normal: np.ndarray, risk: float, initial: float) -> float:
    """The score exceeded with probability ``risk`` under a generalized Pareto tail fitted above
    the ``initial`` quantile of ``normal`` scores (their maximum when too few lie above it)."""
    normal = np.asarray(normal, dtype=np.float64)
    start = float(np.quantile(normal, initial))
    excesses = normal[normal > start] - start
    if len(excesses) < 3:
        return float(normal.max())
    shape, scale = generalized_pareto_pwm(excesses)
    ratio = risk * len(normal) / len(excesses)
    if abs(shape) < 1e-6:
        return start - scale * float(np.log(ratio))
    return start + scale / shape * (ratio ** -shape - 1.0)


def line(bench: str, streams: list[ScoredStream], label: str, base_of) -> str:
    decided = [row_decisions(s, DEFAULT_POLICY, base_of(s)) for s in streams]
    return figure_line(bench, streams, decided, label, width=48)


def main(argv: list[str] | None = None) -> int:
    args = saved_sets_parser(__doc__).parse_args(argv)

    def gaussian(s: ScoredStream) -> float:
        return calibrate(ThresholdMethod.GAUSSIAN, s.validation_scores, k=DEFAULT_POLICY.k).value

    for bench, streams in saved_sets(args.scores, args.distances):
        print(line(bench, streams, f"mean + {DEFAULT_POLICY.k:g} std (the default)", gaussian),
              flush=True)
        for risk, initial, floor in itertools.product(RISKS, INITIAL_QUANTILES, (False, True)):
            def base(s: ScoredStream, risk=risk, initial=initial, floor=floor) -> float:
                pot = pot_threshold(s.validation_scores, risk, initial)
                return max(pot, gaussian(s)) if floor else pot
            label = (f"POT risk {risk:g}, above the {initial:g} quantile"
                     + (", at least the default" if floor else ""))
            print(line(bench, streams, label, base), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
