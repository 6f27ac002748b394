"""The adaptive threshold: warm-up, what it learns, the freeze during alarms, bounded memory, and
the same decisions streamed row by row, in chunks, or over a whole signal."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vigil.runtime import StreamingScorer
from vigil.runtime.core.artifact import open_artifact
from vigil.runtime.core.spec import AdaptiveThresholdSpec
from vigil.runtime.sensor.alarms import AdaptiveThreshold, AlarmDecider
from vigil.runtime.sensor.detector import SensorDetector

BASE = 1.0


def test_base_threshold_until_warm():
    adaptive = AdaptiveThreshold(AdaptiveThresholdSpec(memory=50, warmup=10, z=3.0))
    for score in [5.0] * 9:
        assert adaptive.threshold(BASE) == BASE
        adaptive.observe(score, alarm=False)
    assert adaptive.threshold(BASE) == BASE
    adaptive.observe(7.0, alarm=False)
    recent = np.array([5.0] * 9 + [7.0])
    assert adaptive.threshold(BASE) == pytest.approx(recent.mean() + 3.0 * recent.std())


def test_threshold_is_recent_mean_plus_z_std_of_the_last_memory_scores():
    spec = AdaptiveThresholdSpec(memory=100, warmup=20, z=4.0)
    adaptive = AdaptiveThreshold(spec)
    rng = np.random.default_rng(0)
    scores = rng.lognormal(0.0, 0.5, 5_000) * np.linspace(1.0, 3.0, 5_000)  # drifting upwards
    for score in scores:
        adaptive.observe(float(score), alarm=False)
    recent = scores[-spec.memory:]
    assert adaptive.threshold(BASE) == pytest.approx(recent.mean() + spec.z * recent.std(),
                                                     rel=1e-9)
    # never below the base threshold
    assert adaptive.threshold(1e6) == 1e6
    state = adaptive.state(BASE)
    assert state["recent_normal_scores"] == spec.memory and state["learned"] == len(scores)
    assert state["warm"] is True


def test_quantile_rule_is_factor_times_the_recent_quantile_of_the_last_memory_scores():
    spec = AdaptiveThresholdSpec(memory=500, warmup=100, quantile=0.99, factor=1.5)
    adaptive = AdaptiveThreshold(spec)
    rng = np.random.default_rng(3)
    scores = rng.lognormal(0.0, 1.0, 3_000)
    for score in scores[:99]:
        adaptive.observe(float(score), alarm=False)
    assert adaptive.threshold(BASE) == BASE  # not warm yet
    for score in scores[99:]:
        adaptive.observe(float(score), alarm=False)
    recent = scores[-spec.memory:]
    assert adaptive.threshold(BASE) == pytest.approx(1.5 * np.quantile(recent, 0.99), rel=1e-12)
    assert adaptive.threshold(1e6) == 1e6  # never below the base threshold
    assert adaptive.state(BASE)["rule"] == "1.5 x recent 0.99 quantile"


def test_quantile_rule_follows_heavy_tailed_bursts_that_mean_plus_z_std_lets_through():
    """Bursty normal scores (a heavy tail, as tweet or request volumes give): mean + z std of
    the recent scores follows the tail poorly (a few bursts dominate the std), a multiple of a
    high quantile follows it: fewer false alarms on the same normal stream, and a fault far
    above every normal burst alarms under both."""
    rng = np.random.default_rng(4)
    normal = rng.pareto(1.5, 20_000) + 1.0   # heavy-tailed: finite mean, infinite variance
    fault = np.full(50, 50.0 * np.quantile(normal, 0.999))
    scores = np.concatenate([normal, fault])
    base = normal[:1000].mean() + 5 * normal[:1000].std()  # calibrated on held-out normal ones
    by_spread = AlarmDecider(1, 0, AdaptiveThresholdSpec(1000, 1000, z=8.0)).run(scores, base)[1]
    by_quantile = AlarmDecider(1, 0, AdaptiveThresholdSpec(
        1000, 1000, quantile=0.999, factor=1.5)).run(scores, base)[1]
    warm = slice(2000, len(normal))
    assert by_quantile[warm].sum() < 0.75 * by_spread[warm].sum()
    assert by_quantile[-50:].all() and by_spread[-50:].all()


@pytest.mark.parametrize("fields", [{}, {"z": 8.0, "quantile": 0.99, "factor": 2.0},
                                    {"quantile": 0.99}, {"factor": 2.0}])
def test_an_adaptive_spec_takes_exactly_one_rule(fields):
    with pytest.raises(ValueError, match="either `z` or both `quantile` and `factor`"):
        AdaptiveThresholdSpec(memory=10, warmup=5, **fields)


def test_nothing_is_learned_while_an_alarm_is_on():
    adaptive = AdaptiveThreshold(AdaptiveThresholdSpec(memory=30, warmup=5, z=3.0))
    for _ in range(30):
        adaptive.observe(1.0, alarm=False)
    before = adaptive.threshold(BASE)
    for _ in range(500):
        adaptive.observe(100.0, alarm=True)  # a lasting fault
    assert adaptive.threshold(BASE) == before
    assert adaptive.state(BASE)["frozen_during_alarms"] == 500
    adaptive.observe(float("nan"), alarm=False)
    adaptive.observe(float("inf"), alarm=False)
    assert adaptive.threshold(BASE) == before


def test_frequent_short_faults_waiting_for_confirmation_are_not_learned():
    """With ``consecutive`` 2 the first window of each fault is above the threshold before an
    alarm confirms it; learned as normal, faults on 2 % of the windows would lift the recent
    0.99 quantile to their own level and the threshold (twice it) above them."""
    rng = np.random.default_rng(5)
    scores = rng.lognormal(0.0, 0.3, 20_000)
    starts = np.arange(3_000, len(scores) - 3, 50)
    for i in starts:
        scores[i:i + 3] = 20.0  # three windows: confirmed at the second
    spec = AdaptiveThresholdSpec(1000, 1000, quantile=0.99, factor=2.0)
    decider = AlarmDecider(consecutive=2, hold=0, adaptive=spec)
    thresholds, alarms, _ = decider.run(scores, 5.0)
    assert thresholds.max() < 20.0
    assert alarms[starts + 1].all() and alarms[starts + 2].all()
    assert decider.adaptive.state(5.0)["frozen_during_alarms"] == 3 * len(starts)


def test_a_lasting_fault_stays_in_alarm_and_a_noisier_normal_period_does_not():
    decider = AlarmDecider(consecutive=1, hold=0,
                           adaptive=AdaptiveThresholdSpec(memory=200, warmup=50, z=6.0))
    rng = np.random.default_rng(1)
    quiet = np.abs(rng.normal(0.5, 0.1, 300))
    noisy = np.abs(rng.normal(0.5, 0.4, 300))   # often above the static threshold of 1.0
    fault = np.full(300, 20.0)
    _, alarms, _ = decider.run(np.concatenate([quiet, noisy, fault]), BASE)
    static = np.concatenate([quiet, noisy]) > BASE
    assert static[300:].sum() > 20                      # the static threshold alarms on noise
    assert alarms[400:600].sum() < static[400:600].sum() / 4  # the adaptive one, once it has seen it, rarely
    assert alarms[600:].all()                           # the fault is never learned


def test_decisions_do_not_depend_on_how_scores_are_chunked():
    spec = AdaptiveThresholdSpec(memory=64, warmup=16, z=3.0)
    scores = np.random.default_rng(2).lognormal(0, 1, 2_000)
    whole = AlarmDecider(2, 3, spec).run(scores, BASE)
    pieces = AlarmDecider(2, 3, spec)
    parts = [pieces.run(scores[i:i + 37], BASE) for i in range(0, len(scores), 37)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])


def test_long_runs_keep_exact_running_sums():
    spec = AdaptiveThresholdSpec(memory=10, warmup=10, z=2.0)
    adaptive = AdaptiveThreshold(spec)
    for score in np.full(100_000, 1e8):
        adaptive.observe(float(score), alarm=False)
    for score in range(10):
        adaptive.observe(float(score), alarm=False)
    recent = np.arange(10.0)
    assert adaptive.threshold(0.0) == pytest.approx(recent.mean() + 2.0 * recent.std(), rel=1e-9)


def adaptive_detector(path, spec: AdaptiveThresholdSpec) -> SensorDetector:
    artifact = open_artifact(path)
    return SensorDetector(dataclasses.replace(
        artifact, spec=dataclasses.replace(artifact.spec, adaptive=spec, hold=2, rearm=5)))


def test_streaming_equals_whole_signal_decisions_and_reports_the_threshold(sensor_artifacts):
    from vigil.runtime.sensor.tables import read_table

    detector = adaptive_detector(sensor_artifacts.fp32,
                                 AdaptiveThresholdSpec(memory=200, warmup=40, z=3.0))
    rows = read_table(sensor_artifacts.test_csv, features=detector.features).values
    scores = detector.score_signal(rows)[1]
    detector.threshold = float(np.quantile(scores, 0.5))
    thresholds, expected, starts = detector.decisions(scores)
    assert (thresholds > detector.threshold).any(), "the adaptive part must matter here"

    scorer, results = StreamingScorer(detector), []
    for start in range(0, len(rows), 13):
        results += scorer.push_rows((rows[i], i, None, None)
                                    for i in range(start, min(len(rows), start + 13)))
    np.testing.assert_array_equal([r.anomaly for r in results], expected)
    np.testing.assert_allclose([r.threshold for r in results], thresholds)
    np.testing.assert_array_equal([r.alarm_start for r in results], starts)
    line = json.loads(json.dumps(results[-1].to_json()))
    assert line["threshold"] == pytest.approx(thresholds[-1])
    assert scorer.summary()["alarm_episodes"] == starts.sum() > 0
    state = scorer.summary()["adaptive_threshold"]
    assert state["learned"] + state["frozen_during_alarms"] == len(scores)
    assert state["base_threshold"] == detector.threshold


def test_an_alarm_back_within_the_rearm_time_continues_its_episode():
    from vigil.runtime.sensor.alarms import Episodes

    alarms = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    episodes = Episodes(rearm=3)
    starts = [episodes.step(bool(a)) for a in alarms]
    # back after 2 quiet windows: the same episode; after 4: a new one
    assert starts == [False, True, False, False, False, False, False, False, False, False, True,
                      False]
    assert [Episodes(0).step(bool(a)) for a in [1, 0, 1]] == [True, False, True]
    with pytest.raises(ValueError, match="`rearm` must be >= 0; received -1"):
        Episodes(-1)


def test_episodes_in_event_metrics_bridge_the_same_gaps():
    from vigil.runtime.core import metrics

    alarms = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], bool)
    np.testing.assert_array_equal(metrics.bridged(alarms, 3),
                                  [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    labels = np.zeros(12, bool)
    labels[1:3] = True
    assert metrics.event_scores(alarms, labels)["false_alarm_runs"] == 2
    assert metrics.event_scores(alarms, labels, gap=3)["false_alarm_runs"] == 1
    assert metrics.event_scores(alarms, labels, gap=3)["alarm_runs"] == 2


def test_likelihood_is_the_recent_mean_against_the_earlier_means():
    from vigil.runtime.core.spec import LikelihoodSpec
    from vigil.runtime.sensor.alarms import AnomalyLikelihood

    spec = LikelihoodSpec(short=2, long=4, z=2.0, warmup=3, std_floor=1e-6)
    rule = AnomalyLikelihood(spec)
    scores = [1.0, 3.0, 1.0, 3.0, 1.0, 9.0]
    fired, zs = [], []
    for s in scores:
        fired.append(rule.step(s))
        zs.append(rule.last_z)
    # Means of the last 2: 1, 2, 2, 2, 2, 5. The 4th (2) against 1, 2, 2: mean 5/3, std
    # sqrt(2)/3; the 6th (5) against the last 4 means 2, 2, 2, 2: std 0 -> the floor.
    assert zs[:3] == [None, None, None]
    assert zs[3] == pytest.approx((2 - 5 / 3) / (np.sqrt(2) / 3))
    assert zs[4] == pytest.approx((2 - 7 / 4) / np.sqrt(np.mean(np.square([1, 2, 2, 2])) - 49 / 16))
    assert zs[5] == pytest.approx(3 / 1e-6)
    assert fired == [False, False, False, False, False, True]
    assert not rule.step(float("nan")) and rule.last_z is None  # not learned, not judged
    assert rule.state()["means_kept"] == 4 and rule.state()["learned"] == 6
    assert rule.state()["warm"]


def test_likelihood_alarms_below_the_threshold_and_learns_a_new_level():
    from vigil.runtime.core.spec import LikelihoodSpec

    spec = LikelihoodSpec(short=10, long=500, z=4.27, warmup=100, std_floor=1e-3)
    scores = np.random.default_rng(4).normal(0.0, 1.0, 3_000)
    scores[1_500:] += 3.0  # a shift that stays under the fixed threshold
    with_rule = AlarmDecider(1, 0, None, 0, spec).run(scores, 10.0)[1]
    without = AlarmDecider(1, 0).run(scores, 10.0)[1]
    assert not without.any()
    assert with_rule[1_500:1_520].any()
    assert not with_rule[2_600:].any()  # 500 means later the new level is normal
    assert not with_rule[:1_500].any()


def test_level_floors_the_threshold_with_the_mean_of_the_learned_means():
    from vigil.runtime.core.spec import LikelihoodSpec

    spec = LikelihoodSpec(short=2, long=4, z=100.0, warmup=1, std_floor=1.0, level_warmup=3)
    decider = AlarmDecider(1, 0, None, 0, spec)
    # Means of the last 2 scores: 1, 1.5, 2.5, 5.5, 5. The floor needs 3 means learned, so it
    # first applies to the 4th score, at the mean of 1, 1.5 and 2.5 (5/3); the 5th score's is
    # the mean of 1, 1.5, 2.5 and 5.5 (2.625), which the score 2 does not pass.
    steps = [decider.step(score, 0.5) for score in (1.0, 2.0, 3.0, 8.0, 2.0)]
    assert [t for t, *_ in steps] == pytest.approx([0.5, 0.5, 0.5, 5 / 3, 2.625])
    assert [above for _, above, *_ in steps] == [True, True, True, True, False]
    # the ring keeps the last 4 means: 1.5, 2.5, 5.5, 5
    assert decider.likelihood.state()["level"] == pytest.approx(14.5 / 4)


def test_level_lets_a_lasting_shift_alarm_until_it_fills_the_history():
    from vigil.runtime.core.spec import LikelihoodSpec

    scores = np.random.default_rng(5).normal(1.0, 0.1, 6_000)
    scores[3_000:] += 5.0  # a lasting shift, far above the fixed threshold of 2
    spec = LikelihoodSpec(short=10, long=2_000, z=1e6, warmup=100, std_floor=1e-3)
    without = AlarmDecider(1, 0, None, 0, spec).run(scores, 2.0)[1]
    leveled = AlarmDecider(1, 0, None, 0,
                           dataclasses.replace(spec, level_warmup=100)).run(scores, 2.0)[1]
    assert without[3_000:].all() and not without[:3_000].any()
    assert leveled[3_000:4_800].all() and not leveled[:3_000].any()
    # once the shift is the whole history, only the scores above its mean still alarm
    assert 0.3 < leveled[5_000:].mean() < 0.7


def test_streaming_reports_the_likelihood_and_equals_whole_signal_decisions(sensor_artifacts):
    from vigil.runtime.core.spec import LikelihoodSpec
    from vigil.runtime.sensor.tables import read_table

    artifact = open_artifact(sensor_artifacts.fp32)
    spec = LikelihoodSpec(short=3, long=50, z=1.0, warmup=10, std_floor=1e-6)
    detector = SensorDetector(dataclasses.replace(
        artifact, spec=dataclasses.replace(artifact.spec, likelihood=spec)))
    rows = read_table(sensor_artifacts.test_csv, features=detector.features).values
    scores = detector.score_signal(rows)[1]
    _, expected, _ = detector.decisions(scores)
    plain = SensorDetector(artifact).decisions(scores)[1]
    assert (expected & ~plain).any(), "the likelihood must add alarms here"
    scorer = StreamingScorer(detector)
    results = scorer.push_rows((rows[i], i, None, None) for i in range(len(rows)))
    np.testing.assert_array_equal([r.anomaly for r in results], expected)
    lines = [json.loads(json.dumps(r.to_json())) for r in results]
    assert "surprise" not in lines[0] and "surprise" in lines[-1]
    state = scorer.summary()["anomaly_likelihood"]
    assert (state["learned"], state["means_kept"]) == (len(scores), 50)


def test_streaming_reports_the_threshold_the_level_floors(sensor_artifacts):
    from vigil.runtime.core.spec import LikelihoodSpec
    from vigil.runtime.sensor.tables import read_table

    artifact = open_artifact(sensor_artifacts.fp32)
    spec = LikelihoodSpec(short=3, long=50, z=1e6, warmup=10, std_floor=1e-6, level_warmup=10)
    detector = SensorDetector(dataclasses.replace(
        artifact, spec=dataclasses.replace(artifact.spec, adaptive=None, likelihood=spec)))
    rows = read_table(sensor_artifacts.test_csv, features=detector.features).values
    scores = detector.score_signal(rows)[1]
    thresholds, expected, _ = detector.decisions(scores)
    results = StreamingScorer(detector).push_rows((rows[i], i, None, None)
                                                  for i in range(len(rows)))
    np.testing.assert_array_equal([r.anomaly for r in results], expected)
    reported = np.array([r.to_json()["threshold"] for r in results])
    np.testing.assert_allclose(reported, thresholds)
    assert (reported[:10] == detector.threshold).all() and (reported[10:] >= detector.threshold).all()
