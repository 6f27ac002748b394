"""From window scores to alarms: the threshold (fixed, or following recent normal scores),
alarm smoothing over consecutive windows, and the anomaly likelihood beside them."""

from __future__ import annotations

import math
import sys
from typing import Iterable

import numpy as np

from ..core.spec import AdaptiveThresholdSpec, LikelihoodSpec


class AlarmFilter:
    """Alarm smoothing over consecutive windows.

    An alarm starts when ``consecutive`` windows in a row are above threshold, and stays on for
    ``hold`` windows after the last window above threshold (an off-delay, as alarm panels have).
    """

    def __init__(self, consecutive: int = 1, hold: int = 0) -> None:
        if consecutive < 1 or hold < 0:
            raise ValueError(f"`consecutive` must be >= 1 and `hold` >= 0; received "
                             f"{consecutive} and {hold}")
        self.consecutive = consecutive
        self.hold = hold
        self.reset()

    def reset(self) -> None:
        self._streak = 0
        self._remaining = 0

    def step(self, above: bool) -> bool:
        self._streak = self._streak + 1 if above else 0
        if self._streak >= self.consecutive:
            self._remaining = self.hold + 1
        if self._remaining > 0:
            self._remaining -= 1
            return True
        return False


def consecutive_alarms(above: np.ndarray, consecutive: int, hold: int = 0) -> np.ndarray:
    """Smoothed alarms of a sequence of above-threshold flags: what ``AlarmFilter`` gives step by
    step, computed at once (a window alarms when the run of flags up to it is ``consecutive``
    long, or one did within the last ``hold`` windows)."""
    AlarmFilter(consecutive, hold)  # the same argument checks
    above = np.asarray(above, dtype=bool)
    index = np.arange(len(above))
    last_below = np.maximum.accumulate(np.where(above, -1, index))
    triggered = index - last_below >= consecutive
    last_trigger = np.maximum.accumulate(np.where(triggered, index, -hold - 2))
    return index - last_trigger <= hold


class RunningWindow:
    """The last ``size`` values in a ring, with their running sum and sum of squares (recomputed
    exactly once per ``size`` values, so rounding never drifts)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring = np.zeros(size, dtype=np.float64)
        self.count = 0      # values in the ring
        self._next = 0      # slot the next value goes to
        self._sum = 0.0
        self._squares = 0.0
        self._since_exact = 0

    @property
    def values(self) -> np.ndarray:
        return self._ring[:self.count]

    def add(self, value: float) -> None:
        if self.count == self.size:
            old = self._ring[self._next]
            self._sum -= old
            self._squares -= old * old
        else:
            self.count += 1
        self._ring[self._next] = value
        self._next = (self._next + 1) % self.size
        self._sum += value
        self._squares += value * value
        self._since_exact += 1
        if self._since_exact >= self.size:
            kept = self.values
            self._sum, self._squares = float(kept.sum()), float(np.dot(kept, kept))
            self._since_exact = 0

    def snapshot(self) -> dict:
        """Everything it holds, for ``restore`` in a later run (bit for bit: the ring as laid
        out, the running sums as accumulated)."""
        return {"ring": self._ring[:self.count].tolist() if self.count < self.size
                else self._ring.tolist(), "next": self._next, "sum": self._sum,
                "squares": self._squares, "since_exact": self._since_exact}

    @staticmethod
    def check_snapshot(record: object, size: int, name: str) -> None:
        """ValueError naming ``name`` unless ``record`` is a ``snapshot`` of a ring of ``size``."""
        fields = record if isinstance(record, dict) else {}  # not a dict: no ring, refused
        ring = fields.get("ring")
        numbers = [fields.get(k) for k in ("sum", "squares")]
        counts = [fields.get(k) for k in ("next", "since_exact")]
        if not (isinstance(ring, list) and len(ring) <= size
                and all(_finite_number(v) for v in ring + numbers)
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= size
                        for v in counts)
                and fields["next"] == (len(ring) % size if len(ring) < size else fields["next"])
                and fields["next"] < size):
            raise ValueError(f"{name} must be a ring of at most {size} finite numbers with its "
                             f"next slot, sums and count since they were exact; received "
                             f"{str(record)[:60]}")

    def restore(self, record: dict) -> None:
        """Hold what ``snapshot`` recorded (checked by ``check_snapshot``)."""
        ring = np.asarray(record["ring"], dtype=np.float64)
        self._ring[:] = 0.0
        self._ring[:len(ring)] = ring
        self.count, self._next = len(ring), int(record["next"])
        self._sum, self._squares = float(record["sum"]), float(record["squares"])
        self._since_exact = int(record["since_exact"])

    def mean(self) -> float:
        """Of the values in the ring (at least one)."""
        return self._sum / self.count

    def mean_and_variance(self) -> tuple[float, float]:
        """Of the values in the ring (at least one); the variance may round below 0."""
        mean = self.mean()
        return mean, self._squares / self.count - mean * mean


class AdaptiveThreshold:
    """A threshold that follows the recent distribution of normal scores.

    It is ``max(base, recent)``, where ``recent`` is ``mean + z * std`` of the last ``memory``
    scores seen while no alarm was on, or ``factor`` times their ``quantile`` (the spec says
    which; the base threshold alone until ``warmup`` of them have been seen). A quantile suits
    heavy-tailed scores (bursty streams), whose std the largest few dominate. Scores are not learned
    while an alarm is on, nor while they are above the threshold waiting for ``consecutive``
    windows to confirm an alarm (nor NaN or infinite ones), so neither a lasting fault nor
    frequent short ones become normal; a slow drift of the normal scores, or a noisier period,
    raises the threshold with it. ``AlarmDecider`` does learn the windows that the anomaly
    likelihood alone alarms on (below the threshold): measured on the four sets, not learning
    them lost on NAB and changed nothing elsewhere. Memory is bounded: one ring of ``memory``
    floats.
    """

    def __init__(self, spec: AdaptiveThresholdSpec) -> None:
        self.spec = spec
        self._recent = RunningWindow(spec.memory)
        self.learned = 0    # scores learned in all
        self.frozen = 0     # scores not learned because an alarm was on (or pending)

    def threshold(self, base: float) -> float:
        """The threshold for the next window, given the artifact's (or the user's) ``base``."""
        spec = self.spec
        if self._recent.count < spec.warmup:
            return base
        if spec.quantile is not None and spec.factor is not None:
            return max(base, spec.factor * _quantile(self._recent.values, spec.quantile))
        if spec.z is None:  # AdaptiveThresholdSpec takes either z or quantile and factor
            raise ValueError(f"an adaptive threshold takes either `z` or both `quantile` and "
                             f"`factor`; received {spec}")
        mean, variance = self._recent.mean_and_variance()
        return max(base, mean + spec.z * math.sqrt(max(variance, 0.0)))

    def observe(self, score: float, alarm: bool) -> None:
        """Learn ``score`` unless ``alarm`` (an alarm is on, or the score is above the threshold
        and waits for confirmation) or it is not finite."""
        if alarm:
            self.frozen += 1
            return
        if _overflowed(score):
            return
        self._recent.add(score)
        self.learned += 1

    def learned_state(self) -> dict:
        """What it learned, for ``restore`` after a restart (``--state``)."""
        return {"recent": self._recent.snapshot(), "learned": self.learned,
                "frozen": self.frozen}

    def check_learned(self, state: dict, name: str) -> None:
        """ValueError naming ``name`` unless ``state`` is a ``learned_state`` of this rule."""
        RunningWindow.check_snapshot(state.get("recent"), self.spec.memory, f"{name}.recent")

    def restore(self, state: dict) -> None:
        """Continue from ``learned_state``'s record (checked by ``check_learned``)."""
        self._recent.restore(state["recent"])
        self.learned, self.frozen = int(state["learned"]), int(state["frozen"])

    def state(self, base: float) -> dict:
        """For the health report: how much it has learned and where the threshold stands."""
        return {"rule": self.spec.rule,
                "warm": self._recent.count >= self.spec.warmup,
                "recent_normal_scores": self._recent.count,
                "learned": self.learned, "frozen_during_alarms": self.frozen,
                "threshold": self.threshold(base), "base_threshold": base}


def _finite_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (linear interpolation) by one partial sort: a tenth of its
    time on a thousand scores, which matters once per window on a device."""
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    ordered = np.partition(values, (low, high))
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


class AnomalyLikelihood:
    """HTM's anomaly likelihood as an alarm rule (Ahmad et al., Neurocomputing 2017): the mean of
    the last ``short`` scores is surprising when it lies ``z`` or more std above the mean of the
    ``long`` such means before it. Every mean is learned, alarms or not, so a new normal level
    stops being surprising; a sudden change is one until then. Memory is bounded: two rings.
    """

    def __init__(self, spec: LikelihoodSpec) -> None:
        self.spec = spec
        self._recent = [0.0] * spec.short  # plain floats: a numpy call per score costs more
        self._recent_count = 0
        self._recent_next = 0
        self._recent_sum = 0.0
        self._means = RunningWindow(spec.long)
        self.learned = 0                  # means learned in all
        self.last_z: float | None = None  # the last score's z (None before the warm-up)

    def level(self) -> float | None:
        """The floor the threshold's alarm needs the next score above: the mean of the learned
        means, the stream's long-run level (None before ``level_warmup`` of them, or without
        one). A level that has held for most of the history is this stream's normal now."""
        if self.spec.level_warmup is None or self._means.count < self.spec.level_warmup:
            return None
        return self._means.mean()

    def step(self, score: float) -> bool:
        """Learn ``score``; whether the mean of the recent scores is surprising."""
        self.last_z = None
        if _overflowed(score):
            return False  # the threshold already alarms on it; it would poison the means
        spec = self.spec
        if self._recent_count == spec.short:
            self._recent_sum -= self._recent[self._recent_next]
        else:
            self._recent_count += 1
        self._recent[self._recent_next] = score
        self._recent_sum += score
        self._recent_next = (self._recent_next + 1) % spec.short
        if self._recent_next == 0:  # once per ring: the exact sum, free of rounding drift
            self._recent_sum = math.fsum(self._recent)
        mean = self._recent_sum / self._recent_count
        surprising = False
        if self._means.count >= spec.warmup:
            centre, variance = self._means.mean_and_variance()
            self.last_z = (mean - centre) / math.sqrt(max(variance, spec.std_floor ** 2))
            surprising = self.last_z > spec.z
        self._means.add(mean)
        self.learned += 1
        return surprising

    def learned_state(self) -> dict:
        """What it learned, for ``restore`` after a restart (``--state``)."""
        return {"recent": {"ring": list(self._recent), "count": self._recent_count,
                           "next": self._recent_next, "sum": self._recent_sum},
                "means": self._means.snapshot(), "learned": self.learned}

    def check_learned(self, state: dict, name: str) -> None:
        """ValueError naming ``name`` unless ``state`` is a ``learned_state`` of this rule."""
        recent = state.get("recent")
        short = self.spec.short
        if not (isinstance(recent, dict) and isinstance(recent.get("ring"), list)
                and len(recent["ring"]) == short
                and all(_finite_number(v) for v in recent["ring"] + [recent.get("sum")])
                and all(isinstance(recent.get(k), int) and not isinstance(recent.get(k), bool)
                        and 0 <= recent[k] <= short for k in ("count", "next"))
                and recent["next"] < short):
            raise ValueError(f"{name}.recent must hold a ring of {short} finite numbers, its "
                             f"count, next slot and sum; received {str(recent)[:60]}")
        RunningWindow.check_snapshot(state.get("means"), self.spec.long, f"{name}.means")

    def restore(self, state: dict) -> None:
        """Continue from ``learned_state``'s record (checked by ``check_learned``)."""
        recent = state["recent"]
        self._recent = [float(v) for v in recent["ring"]]
        self._recent_count, self._recent_next = int(recent["count"]), int(recent["next"])
        self._recent_sum = float(recent["sum"])
        self._means.restore(state["means"])
        self.learned = int(state["learned"])

    def state(self) -> dict:
        """For the health report."""
        return {"rule": f"mean of {self.spec.short} scores > {self.spec.z:g} std above the last "
                        f"{self.spec.long} such means", "warm": self._means.count >= self.spec.warmup,
                "level": self.level(),
                "means_kept": self._means.count, "learned": self.learned, "last_z": self.last_z}


class Episodes:
    """Alarm episodes, as an operator is notified of them: an alarm that comes back within
    ``rearm`` windows of the last one's end continues its episode instead of starting a new one
    (the re-arm time of an alarm panel: one notification per event, not one per flicker)."""

    def __init__(self, rearm: int = 0) -> None:
        if rearm < 0:
            raise ValueError(f"`rearm` must be >= 0; received {rearm}")
        self.rearm = rearm
        self.reset()

    def reset(self) -> None:
        self._on = False
        self._since_end: int | None = None  # windows since the last alarm ended (None: never)

    def step(self, alarm: bool) -> bool:
        """Whether this window starts a new episode."""
        start = False
        if alarm and not self._on:
            start = self._since_end is None or self._since_end > self.rearm
        if alarm:
            self._since_end = 0
        elif self._since_end is not None:
            self._since_end += 1
        self._on = alarm
        return start


class AlarmDecider:
    """Window score in, (threshold used, above it, alarm, episode start) out, one window at a
    time in order."""

    def __init__(self, consecutive: int, hold: int,
                 adaptive: AdaptiveThresholdSpec | None = None, rearm: int = 0,
                 likelihood: LikelihoodSpec | None = None) -> None:
        self.filter = AlarmFilter(consecutive, hold)
        self.episodes = Episodes(rearm)
        # (model sha256, rule) of the detector that made it (``alarm_decider``): a decider
        # carries one stream of one model under one rule, and is refused for another
        self.made_for: tuple | None = None
        self.adaptive = AdaptiveThreshold(adaptive) if adaptive is not None else None
        self.likelihood = AnomalyLikelihood(likelihood) if likelihood is not None else None

    @property
    def threshold_varies(self) -> bool:
        """Whether ``step`` may compare a window with anything but the base threshold."""
        return self.adaptive is not None or (self.likelihood is not None
                                             and self.likelihood.spec.level_warmup is not None)

    def reset(self) -> None:
        """After a restart of the window (a long gap): smoothing and episodes start over; the
        adaptive threshold keeps what it learned."""
        self.filter.reset()
        self.episodes.reset()

    def smoothing_state(self) -> dict:
        """Where the alarm smoothing and the episode stand, for a restarted stream that
        continues this one's window (``restore_smoothing``)."""
        return {"streak": self.filter._streak, "remaining": self.filter._remaining,
                "episode_on": self.episodes._on, "since_end": self.episodes._since_end}

    def restore_smoothing(self, state: dict) -> None:
        """Continue from ``smoothing_state``'s record (checked by the caller)."""
        self.filter._streak, self.filter._remaining = state["streak"], state["remaining"]
        self.episodes._on, self.episodes._since_end = state["episode_on"], state["since_end"]

    @staticmethod
    def unlearned(above: bool, alarm: bool) -> bool:
        """Whether the adaptive threshold leaves a window unlearned: above the threshold (also
        while it waits on ``consecutive``), or under an alarm (also while the alarm is held)."""
        return alarm or above

    def step(self, score: float, base: float) -> tuple[float, bool, bool, bool]:
        threshold = self.adaptive.threshold(base) if self.adaptive is not None else base
        level = self.likelihood.level() if self.likelihood is not None else None
        if level is not None:
            threshold = max(threshold, level)
        above = bool(_overflowed(score) or score > threshold)
        alarm = self.filter.step(above)
        if self.adaptive is not None:
            # what the threshold leaves normal: not a window above it, even before `consecutive`
            # windows confirm an alarm (learned, the first windows of frequent short faults
            # raise the threshold until it misses them); a likelihood alarm below the threshold
            # is learned (docs/quality.md, "The adaptive threshold during likelihood alarms")
            self.adaptive.observe(score, self.unlearned(above, alarm))
        if self.likelihood is not None and self.likelihood.step(score):
            alarm = True
        return threshold, above, alarm, self.episodes.step(alarm)

    def run(self, scores: np.ndarray, base: float, restarts: Iterable[int] = ()
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, alarms, episode starts) of a sequence of window scores; before each
        window numbered in ``restarts`` the window restarted (a long gap): ``reset``."""
        scores = np.asarray(scores, dtype=np.float64)
        thresholds = np.empty(len(scores))
        alarms = np.zeros(len(scores), dtype=bool)
        starts = np.zeros(len(scores), dtype=bool)
        restarting = set(int(r) for r in restarts)
        for i, score in enumerate(scores.tolist()):
            if i in restarting:
                self.reset()
            thresholds[i], _, alarms[i], starts[i] = self.step(score, base)
        return thresholds, alarms, starts


def _overflowed(score: float) -> bool:
    """Whether ``score`` is an overflow: infinite or NaN, or the largest double that a result
    line writes for one (``finite_or_max``, what ``vigil eval`` replays): summed with others
    it overflowed the likelihood's running sum."""
    return not math.isfinite(score) or abs(score) >= sys.float_info.max
