"""Saved benchmark scores round-trip without pickle, and the alarm sweep judges policies by the
runtime's own decisions."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.benchmarks.score_dump import ScoredStream, load_streams, save_streams
from vigil.benchmarks.sweep_alarms import Policy, evaluate, row_alarms, sweep
from vigil.runtime.core.spec import AdaptiveThresholdSpec


def stream(name: str, scores, labels, test_start=0, validation=(0.9, 1.0, 1.1)) -> ScoredStream:
    return ScoredStream(name, np.asarray(scores, dtype=np.float64), np.asarray(labels, bool),
                        test_start, 0.0, 1, 0, np.asarray(validation, dtype=np.float64))


def save_fault(folder, seed: int, rows: int, fault: slice, blip: int | None = None) -> None:
    """``folder/skab.npz``: one stream of normal scores near 1 with a labeled fault of score 30
    (and, with ``blip``, one unlabeled window of 30 there)."""
    rng = np.random.default_rng(seed)
    scores = np.abs(rng.normal(1.0, 0.1, rows))
    if blip is not None:
        scores[blip] = 30.0
    scores[fault] = 30.0
    labels = np.zeros(rows, bool)
    labels[fault] = True
    save_streams(folder / "skab.npz", "skab",
                 [stream("f", scores, labels, validation=np.abs(rng.normal(1.0, 0.1, 300)))])


def test_streams_round_trip_without_pickle(tmp_path):
    streams = [stream("a/1.csv", [np.nan, 1.0, 5.0], [0, 0, 1], 1),
               stream("b.csv", [np.nan, np.nan, 2.0, 0.5], [0, 1, 1, 0], 2, (1.0, 2.0))]
    save_streams(tmp_path / "x.npz", "smd", streams)
    with np.load(tmp_path / "x.npz", allow_pickle=False) as data:  # nothing needs pickle
        assert all(data[key].dtype != object for key in data.files)
    benchmark, back = load_streams(tmp_path / "x.npz")
    assert benchmark == "smd" and [s.name for s in back] == ["a/1.csv", "b.csv"]
    for s, b in zip(streams, back):
        np.testing.assert_array_equal(s.scores, b.scores)
        np.testing.assert_array_equal(s.labels, b.labels)
        np.testing.assert_array_equal(s.validation_scores, b.validation_scores)
        assert s.test_start == b.test_start


def test_rows_between_windows_take_the_last_windows_decision():
    # windows end every 2 rows (stride 2); validation mean 1.0, std 0.0816: k=3 -> 1.245
    s = stream("ecg", [np.nan, 0.5, np.nan, 3.0, np.nan, 0.5, np.nan], [0] * 7)
    np.testing.assert_array_equal(row_alarms(s, Policy(k=3.0, hold=0)),
                                  [0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(row_alarms(s, Policy(k=3.0, hold=1)),
                                  [0, 0, 0, 1, 1, 1, 1])


def test_metrics_count_only_rows_after_the_training_part():
    scores = [np.nan, 5.0, 0.5, 5.0, 0.5, 5.0]
    labels = [0, 0, 0, 1, 0, 0]
    result = evaluate("skab", [stream("f", scores, labels, test_start=3)], Policy(k=3.0, hold=0))
    assert result["recall"] == 1.0 and result["precision"] == pytest.approx(0.5)
    assert result["event_f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def test_sweep_ranks_by_the_worst_sets_ratio_to_its_best():
    rng = np.random.default_rng(0)
    normal = np.abs(rng.normal(1.0, 0.1, 2_000))
    noisy = np.abs(rng.normal(1.0, 0.6, 2_000))  # a noisier normal period the adaptive one learns
    fault = np.full(30, 30.0)
    scores = np.concatenate([normal, noisy, fault, normal[:200]])
    labels = np.zeros(len(scores), bool)
    labels[4_000:4_030] = True
    sets = {"smd": [stream("m", scores, labels, validation=normal[:300])],
            "ecg": [stream("r", scores, labels, validation=normal[:300])]}
    adaptive = Policy(3.0, 0, AdaptiveThresholdSpec(memory=500, warmup=100, z=6.0))
    rows = sweep(sets, [Policy(3.0, 0), adaptive], log=lambda _: None)
    assert rows[0]["policy"] == adaptive.name
    assert rows[0]["objective"] == 1.0 and rows[0]["worst"] == 1.0
    assert rows[1]["objective"] < 0.5  # the static threshold raises many false alarm runs


def test_telemanom_threshold_separates_rare_spikes_and_warms_up_on_the_base():
    from vigil.benchmarks.explore_dynamic_threshold import DynamicThreshold, decide, epsilon

    rng = np.random.default_rng(4)
    noise = np.abs(rng.normal(1.0, 0.1, 2_000))
    spiky = noise.copy()
    spiky[[500, 1200, 1700]] = 5.0  # three rare, clear anomalies
    cut = epsilon(spiky)
    assert noise.max() < cut < 5.0
    # Before the warm-up only the base threshold decides; after it, the chosen cut.
    rule = DynamicThreshold(history=1_000, batch=100, warmup=1_000, floor=True)
    alarms, starts = decide(spiky, base=0.5, rule=rule)
    assert alarms[:1_000].mean() > 0.9             # base 0.5 is below every normal score
    assert set(np.flatnonzero(starts[1_000:]) + 1_000) == {1200, 1700}
    # With the floor, the threshold never goes below the base: a base above the spikes wins.
    alarms, _ = decide(spiky, base=10.0, rule=rule)
    assert not alarms.any()


def test_telemanom_cap_bounds_the_threshold_by_its_reference():
    from vigil.benchmarks.explore_dynamic_threshold import DynamicThreshold, decide

    rng = np.random.default_rng(5)
    scores = np.abs(rng.normal(1.0, 0.1, 2_000))
    scores[[1200, 1700]] = 5.0
    free = DynamicThreshold(history=1_000, batch=100, warmup=1_000, prune=0.13)
    alarms, _ = decide(scores, base=0.2, rule=free)
    # Its own cut sits above the normal scores (once the warm-up's alarms have held 10 windows).
    assert not alarms[1_020:1_150].any()
    # Capped at 2 x the base (0.4), every normal score (about 1.0) is above it.
    capped = DynamicThreshold(history=1_000, batch=100, warmup=1_000, prune=0.13, cap=2.0)
    alarms, _ = decide(scores, base=0.2, rule=capped)
    assert alarms[1_000:].all()


def test_telemanom_exploration_uses_the_library_alarm_defaults():
    from vigil.benchmarks.explore_dynamic_threshold import DEFAULT_ADAPTIVE, HOLD, K
    from vigil.runtime.core.spec import AdaptiveThresholdSpec
    from vigil.training.train_sensor import CalibrationOptions

    defaults = CalibrationOptions()
    assert (K, HOLD) == (defaults.k, defaults.hold)
    assert DEFAULT_ADAPTIVE == AdaptiveThresholdSpec(**defaults.adaptive_spec())


def test_neighbour_exploration_uses_the_library_defaults():
    from vigil.benchmarks.explore_neighbours import DEFAULT_POLICY
    from vigil.runtime.core.spec import AdaptiveThresholdSpec
    from vigil.training.train_sensor import CalibrationOptions

    defaults = CalibrationOptions()
    assert (DEFAULT_POLICY.k, DEFAULT_POLICY.hold, DEFAULT_POLICY.rearm) == (
        defaults.k, defaults.hold, defaults.rearm)
    assert DEFAULT_POLICY.adaptive == AdaptiveThresholdSpec(**defaults.adaptive_spec())
    assert DEFAULT_POLICY.likelihood_z == (defaults.likelihood_z if defaults.likelihood else None)
    assert DEFAULT_POLICY.likelihood_level == (defaults.likelihood_level_warmup
                                               if defaults.likelihood_level else None)


def test_recent_bank_takes_only_earlier_windows_of_the_test_part():
    from vigil.benchmarks.explore_neighbours import nearest_recent

    # Shapes ending at rows 0, 10, ..., 50; the test part starts at row 20, lag 10, stride 10.
    ends = np.arange(0, 60, 10)
    queries = np.array([[0.0], [5.0], [1.0], [4.0], [1.5], [9.0]])
    out = nearest_recent(queries, ends, first=20, recent=2, lag=10, stride=10, chunk=2)
    # Row 30 sees row 20 only; 40 sees 20 and 30; 50 sees 30 and 40 (20 is beyond 2 recent).
    np.testing.assert_allclose(out, [np.inf, np.inf, np.inf, 3.0, 0.5, 5.0])


def test_pot_threshold_recovers_a_known_pareto_tail():
    from vigil.benchmarks.explore_pot import generalized_pareto_pwm, pot_threshold

    rng = np.random.default_rng(0)
    shape, scale = 0.2, 1.5
    excesses = scale / shape * ((1 - rng.random(50_000)) ** -shape - 1)  # inverse CDF
    fitted_shape, fitted_scale = generalized_pareto_pwm(excesses)
    assert abs(fitted_shape - shape) < 0.03 and abs(fitted_scale - scale) < 0.05
    # exponential scores (shape 0): the 1e-4 tail lies at -ln(1e-4) = 9.21
    scores = rng.exponential(1.0, 200_000)
    assert abs(pot_threshold(scores, 1e-4, 0.98) - 9.21) < 0.4
    with pytest.raises(ValueError, match="at least 3 positive"):
        generalized_pareto_pwm(np.array([1.0, 2.0]))


def test_persistence_exploration_runs_each_variant_through_the_runtime_alarms(tmp_path, capsys):
    """A one-window blip before the likelihood is warm and a lasting labeled fault: waiting for
    two windows above the threshold drops the blip's false alarm and keeps the fault."""
    from vigil.benchmarks.explore_persistence import VARIANTS, main

    save_fault(tmp_path, 1, 3_000, slice(2_000, 2_050), blip=200)
    assert main(["--scores", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(VARIANTS)
    f1 = {line.split(" f1 ")[0].split("skab ")[1].strip(): float(line.split(" f1 ")[1])
          for line in lines}
    assert f1["consecutive 2, hold 10"] > f1["consecutive 1, hold 10 (the default)"] > 0.7


def test_threshold_learning_exploration_learns_held_windows_and_robust_thresholds(tmp_path,
                                                                                   capsys):
    """The exploration's decider learns the windows an alarm is held over, as the runtime's does
    not; its robust threshold is median + k robust std; it prints each variant per set."""
    from vigil.benchmarks.explore_threshold_learning import (LEARNED_AFTER, HeldLearned,
                                                             learned_after, main,
                                                             robust_threshold)
    from vigil.runtime.sensor.alarms import AlarmDecider

    spec = AdaptiveThresholdSpec(100, 10, quantile=0.99, factor=2.0)
    scores = [1.0] * 20 + [50.0] + [1.5] * 5  # an alarm, then 5 windows held below the threshold
    runtime, held = AlarmDecider(1, 5, spec), HeldLearned(1, 5, spec)
    runtime.run(np.array(scores), 3.0)
    held.run(np.array(scores), 3.0)
    assert (runtime.adaptive.learned, runtime.adaptive.frozen) == (20, 6)
    assert (held.adaptive.learned, held.adaptive.frozen) == (25, 1)
    after = learned_after(3)(1, 5, spec)  # the alarm's first 3 windows frozen, then learned
    after.run(np.array(scores), 3.0)
    assert (after.adaptive.learned, after.adaptive.frozen) == (23, 3)
    assert robust_threshold(np.array([1.0, 2.0, 3.0, 100.0]), 2.0) == pytest.approx(
        2.5 + 2 * 1.4826 * 1.0)
    save_fault(tmp_path, 2, 2_000, slice(1_500, 1_520))
    assert main(["--scores", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 * 4 + 4 + len(LEARNED_AFTER) and all(line.startswith("skab ") for line in lines)
    assert all(float(line.split(" f1 ")[1].split()[0]) > 0.5 for line in lines)
