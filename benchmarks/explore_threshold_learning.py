"""Exploration: two changes to how the alarm threshold is set, on the four sets' saved scores.

- ``robust``: the calibrated threshold from the held-out normal scores' median + k x 1.4826 MAD
  instead of their mean + k std (at k, k + 2 and 1.5 k).
- ``held learned``: the adaptive threshold also learns the windows an alarm is held over below
  it (``hold``), which the runtime leaves unlearned (``AlarmDecider.unlearned``).
- ``held learned after L``: the same, but only once the alarm has been on for more than ``L``
  windows (a lasting alarm's quiet windows become normal; a short one's stay out).

Each under the default alarm policy and the leaders of the 2026-12-05 sweep, applied with the
runtime's alarm code (``sweep_alarms.row_decisions``). None is kept: docs/quality.md, "Alarm
policy swept again on the new scores", has the figures and why.

    python benchmarks/explore_threshold_learning.py --scores DIR
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from vigil.benchmarks.explore_neighbours import DEFAULT_POLICY, saved_sets, saved_sets_parser
from vigil.benchmarks.sweep_alarms import PRIMARY, Policy, figures_of, row_decisions
from vigil.runtime.core.spec import AdaptiveThresholdSpec, LikelihoodSpec
from vigil.runtime.sensor.alarms import AdaptiveThreshold, AlarmDecider, AlarmFilter

HOLD_ZERO = (replace(DEFAULT_POLICY, k=4.5, hold=0, rearm=50),
             replace(DEFAULT_POLICY, k=4.0, hold=0, rearm=50))
HELD = (replace(DEFAULT_POLICY, k=4.5), replace(DEFAULT_POLICY, rearm=50),
        replace(DEFAULT_POLICY, hold=20))
LEARNED_AFTER = (10, 20, 40, 80)  # alarm lengths (windows) after which held windows are learned
MAD_TO_STD = 1.4826  # a normal distribution's std per median absolute deviation


def robust_threshold(scores: np.ndarray, k: float) -> float:
    """Median + ``k`` robust std (1.4826 MAD) of held-out normal scores."""
    median = float(np.median(scores))
    return median + k * max(MAD_TO_STD * float(np.median(np.abs(scores - median))), 1e-12)


class HeldLearned(AlarmDecider):
    """The runtime's decider, but the adaptive threshold learns every window below it."""

    @staticmethod
    def unlearned(above: bool, alarm: bool) -> bool:
        return above


class AlarmRunFilter(AlarmFilter):
    """The runtime's alarm filter, also counting the windows its alarm has been on in a row."""

    def __init__(self, consecutive: int = 1, hold: int = 0) -> None:
        super().__init__(consecutive, hold)
        self.alarm = False
        self.alarm_run = 0  # windows the alarm has been on in a row, the last one included

    def step(self, above: bool) -> bool:
        self.alarm = super().step(above)
        self.alarm_run = self.alarm_run + 1 if self.alarm else 0
        return self.alarm


class LearnedAfterThreshold(AdaptiveThreshold):
    """The adaptive threshold, leaving a window below it unlearned only in the first ``after``
    windows of an alarm (``alarms``' current one)."""

    def __init__(self, spec: AdaptiveThresholdSpec, alarms: AlarmRunFilter, after: int) -> None:
        super().__init__(spec)
        self.alarms, self.after = alarms, after

    def observe(self, score: float, alarm: bool) -> None:
        early_in_alarm = self.alarms.alarm and self.alarms.alarm_run <= self.after
        super().observe(score, alarm or early_in_alarm)


class HeldLearnedAfter(HeldLearned):
    """The runtime's decider, but the adaptive threshold learns the windows below it once an
    alarm has been on for more than ``after`` windows in a row (``HeldLearned`` tells it only
    whether a window is above; the threshold itself asks the alarm's length)."""

    after = 20

    def __init__(self, consecutive: int, hold: int,
                 adaptive: AdaptiveThresholdSpec | None = None, rearm: int = 0,
                 likelihood: LikelihoodSpec | None = None) -> None:
        super().__init__(consecutive, hold, adaptive, rearm, likelihood)
        self.filter = alarms = AlarmRunFilter(consecutive, hold)
        if adaptive is not None:
            self.adaptive = LearnedAfterThreshold(adaptive, alarms, self.after)


def learned_after(windows: int) -> type[HeldLearnedAfter]:
    """``HeldLearnedAfter`` with ``after`` set to ``windows``."""
    return type(f"HeldLearnedAfter{windows}", (HeldLearnedAfter,), {"after": windows})


def line(bench: str, streams: list, decided: list, what: str, policy: Policy) -> str:
    """One line: the set's leading figure (NAB's three profiles) and point F1."""
    f = figures_of(bench, streams, [(a, s) for a, s, _ in decided], decided[0][2])
    nab = (f" / {f['nab_score_low_fp']:.1f} / {f['nab_score_low_fn']:.1f}" if bench == "nab"
           else "")
    point = "" if PRIMARY[bench] == "f1" else f"  f1 {f['f1']:.3f}"
    rule = f"k {policy.k:g}, hold {policy.hold}, re-arm {policy.rearm}"
    return (f"{bench:4s} {what + ',':<18} {rule:<27} {PRIMARY[bench]} "
            f"{f[PRIMARY[bench]]:.3f}{nab}{point}")


def main(argv: list[str] | None = None) -> int:
    args = saved_sets_parser(__doc__).parse_args(argv)
    for bench, streams in saved_sets(args.scores, args.distances):
        for policy in (DEFAULT_POLICY, *HOLD_ZERO):
            decided = [row_decisions(s, policy) for s in streams]
            print(line(bench, streams, decided, "mean + k std", policy))
            for name, k in (("k", policy.k), ("k + 2", policy.k + 2), ("1.5 k", 1.5 * policy.k)):
                decided = [row_decisions(s, policy, robust_threshold(s.validation_scores, k))
                           for s in streams]
                print(line(bench, streams, decided, f"robust at {name}", policy))
        for policy in (DEFAULT_POLICY, *HELD):
            decided = [row_decisions(s, policy, decider_class=HeldLearned) for s in streams]
            print(line(bench, streams, decided, "held learned", policy), flush=True)
        for windows in LEARNED_AFTER:
            decided = [row_decisions(s, DEFAULT_POLICY, decider_class=learned_after(windows))
                       for s in streams]
            print(line(bench, streams, decided, f"learned after {windows}", DEFAULT_POLICY),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
