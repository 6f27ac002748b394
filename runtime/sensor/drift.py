"""Running normalization: the model keeps seeing readings in its training units while the
sensors drift slowly over months (a temperature that creeps up with the season, a pressure
sensor whose offset wanders).

Each feature's recent level and spread are followed with an exponential running mean and variance
(time constant ``memory`` rows; bounded memory: two numbers per feature). Once ``warmup`` rows
have been learned, every row is mapped from the recent distribution onto the training one before
the model sees it: ``training_mean + (x - recent_mean) * training_std / recent_std``, the spread
ratio kept within ``[1/4, 4]``. Rows are not learned while an alarm is on (nor rows with missing
values), so a fault that persists stays a fault instead of becoming the new normal; a change
faster than ``memory`` rows still stands out, as it should.

The decision for a row depends on the alarms of the windows before it, so a stream that uses this
is scored one window at a time, in order (``StreamingScorer`` does so).
"""

from __future__ import annotations

import numpy as np

from ..core.spec import FLOAT32_MAX, RunningNormalizationSpec

MAX_SPREAD_RATIO = 4.0


class RunningNormalization:
    """Per-feature running mean and variance, learned only while no alarm is on."""

    def __init__(self, spec: RunningNormalizationSpec, mean, std) -> None:
        self.spec = spec
        self.training_mean = np.asarray(mean, dtype=np.float64)
        # the training rows' own spread, not the model's floored std: mapping onto that would
        # scale every deviation of a feature whose std was floored (a large mean, a small spread)
        self.training_std = np.asarray(std if spec.spread is None else spec.spread,
                                       dtype=np.float64)
        self.mean = self.training_mean.copy()
        self.var = self.training_std ** 2
        self.learned = 0   # rows learned in all
        self.frozen = 0    # rows not learned because an alarm was on
        self._rate = 1.0 / spec.memory

    @property
    def warm(self) -> bool:
        return self.learned >= self.spec.warmup

    def adapt(self, row: np.ndarray) -> np.ndarray:
        """``row`` in training units (unchanged until warm)."""
        if not self.warm:
            return row
        ratio = np.clip(self.training_std / np.sqrt(np.maximum(self.var, 1e-12)),
                        1 / MAX_SPREAD_RATIO, MAX_SPREAD_RATIO)
        adapted = self.training_mean + (row - self.mean) * ratio
        # a reading near float32's limit (a PLC's "no value" sentinel) stays within it, so it
        # scores as an overflow alarm instead of an infinity the model cannot take
        return np.clip(adapted, -FLOAT32_MAX, FLOAT32_MAX).astype(np.float32)

    def observe(self, row: np.ndarray, alarm: bool) -> None:
        """Learn the raw ``row`` unless an alarm is on (or it has missing values)."""
        if alarm:
            self.frozen += 1
            return
        row = np.asarray(row, dtype=np.float64)
        if not np.isfinite(row).all():
            return
        rate = max(self._rate, 1.0 / (self.learned + 2))  # the first rows weigh more: a quick start
        delta = row - self.mean
        self.mean += rate * delta
        self.var += rate * (delta * delta - self.var)
        self.learned += 1

    def learned_state(self) -> dict:
        """What it learned, for ``restore`` after a restart (``--state``)."""
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "learned": self.learned,
                "frozen": self.frozen}

    def check_learned(self, state: dict, name: str) -> None:
        """ValueError naming ``name`` unless ``state`` is a ``learned_state`` of these features:
        a finite mean and a finite, non-negative variance for each."""
        for key, nonnegative in (("mean", False), ("var", True)):
            value = state.get(key)
            if not (isinstance(value, list) and len(value) == len(self.mean)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                            and np.isfinite(v) and (v >= 0 or not nonnegative) for v in value)):
                raise ValueError(f"{name}.{key} must be a list of {len(self.mean)} finite "
                                 f"{'non-negative ' if nonnegative else ''}numbers; received "
                                 f"{str(value)[:60]}")

    def restore(self, state: dict) -> None:
        """Continue from ``learned_state``'s record (checked by ``check_learned``)."""
        self.mean = np.asarray(state["mean"], dtype=np.float64)
        self.var = np.asarray(state["var"], dtype=np.float64)
        self.learned, self.frozen = int(state["learned"]), int(state["frozen"])

    def state(self) -> dict:
        """For the health report: how much it learned and how far the readings have moved."""
        shift = np.abs(self.mean - self.training_mean) / self.training_std
        return {"warm": self.warm, "rows_learned": self.learned,
                "frozen_during_alarms": self.frozen,
                "largest_shift_in_training_std": round(float(shift.max()), 4) if len(shift)
                else 0.0}
