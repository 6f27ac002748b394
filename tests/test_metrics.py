"""Detection metrics, threshold calibration and window helpers, against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.runtime.core import metrics
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate, score_stats
from vigil.runtime.core.metrics import runs
from vigil.runtime.sensor.alarms import AlarmFilter, consecutive_alarms
from vigil.runtime.sensor.windows import sliding_windows, window_count, window_ends


# -- point-wise counts -------------------------------------------------------------------------

def test_counts_and_rates():
    c = metrics.counts([1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 1, 0])
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 2)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(2 / 3)
    assert c.false_alarm_rate == pytest.approx(1 / 3)
    assert c.missed_alarm_rate == pytest.approx(1 / 3)


@pytest.mark.parametrize("tp, fp, fn", [(3, 1, 4), (1, 0, 0), (5, 7, 2), (0, 3, 2)])
def test_f1_formula(tp, fp, fn):
    c = metrics.Counts(tp=tp, fp=fp, fn=fn, tn=10)
    assert c.f1 == pytest.approx(tp / (tp + (fp + fn) / 2))
    if tp:
        p, r = c.precision, c.recall
        assert c.f1 == pytest.approx(2 * p * r / (p + r))


def test_f1_is_zero_when_nothing_to_find_or_flag():
    c = metrics.counts(np.zeros(5, bool), np.zeros(5, bool))
    assert (c.f1, c.precision, c.recall) == (0.0, 0.0, 0.0)


def test_counts_length_mismatch():
    with pytest.raises(ValueError, match="same length; received 3 and 2"):
        metrics.counts([1, 0, 1], [1, 0])


# -- ranking -----------------------------------------------------------------------------------

def brute_force_auroc(scores, labels):
    positives, negatives = scores[labels], scores[~labels]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.3
    scores = rng.integers(0, 8, 300).astype(float) + labels * rng.integers(0, 3, 300)  # many ties
    expected = brute_force_auroc(scores, labels)
    assert metrics.auroc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_auroc_edges():
    assert metrics.auroc([0.1, 0.9], [0, 1]) == 1.0
    assert metrics.auroc([0.9, 0.1], [0, 1]) == 0.0
    assert metrics.auroc([0.5, 0.5], [0, 1]) == 0.5
    assert math.isnan(metrics.auroc([0.1, 0.2], [0, 0]))
    # Rows without a score (NaN) are left out.
    assert metrics.auroc([np.nan, 0.1, 0.9], [1, 0, 1]) == 1.0


def test_auprc_hand_example():
    # Cut 0.9: P=1, R=1/2; cut 0.8: P=1/2, R=1/2; cut 0.7: P=2/3, R=1; cut 0.6: P=1/2, R=1.
    scores, labels = [0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]
    assert metrics.auprc(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))


def test_auprc_with_a_tie():
    # Cut 0.9 takes both tied windows: P=1/2, R=1/2; cut 0.1: P=2/3, R=1.
    assert metrics.auprc([0.9, 0.9, 0.1], [1, 0, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * (2 / 3))
    assert metrics.auprc([0.3, 0.2, 0.1], [1, 1, 0]) == pytest.approx(1.0)
    assert math.isnan(metrics.auprc([0.3, 0.2], [0, 0]))


def test_best_f1_hand_example_and_brute_force():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1], bool)
    f1, threshold = metrics.best_f1(scores, labels)
    assert f1 == pytest.approx(0.8)
    assert threshold == 0.35
    brute = max(metrics.counts(scores >= t, labels).f1 for t in scores)
    assert f1 == pytest.approx(brute)


def test_best_f1_without_positives():
    assert metrics.best_f1([0.1, 0.2], [0, 0]) == (0.0, float("inf"))


def test_an_infinite_score_ranks_first_and_an_unscored_positive_is_a_miss():
    """A score that overflowed (+inf) is the most anomalous, not left out of the ranking; a
    labeled row without a score (NaN, before the first window) is a miss at every cut."""
    inf, nan = float("inf"), float("nan")
    scores = np.array([nan, 0.1, 0.4, inf, inf, 0.2])
    labels = np.array([1, 0, 0, 1, 1, 0], bool)
    assert metrics.auroc(scores, labels) == 1.0  # both scored positives above every negative
    assert metrics.auprc(scores, labels) == 1.0
    f1, threshold = metrics.best_f1(scores, labels)
    assert threshold == inf and f1 == pytest.approx(2 / (2 + 0.5))  # tp 2, fn 1 (the NaN row)
    assert f1 == pytest.approx(metrics.counts(scores >= threshold, labels).f1)
    assert metrics.auroc([0.3, inf, inf, 0.1], [0, 1, 0, 0]) == pytest.approx(5 / 6)  # a tie


# -- events ------------------------------------------------------------------------------------

def event_example():
    labels = np.zeros(16, bool)
    labels[2:5] = True     # event 1, hit by the alarm at row 3
    labels[10:13] = True   # event 2, missed
    predicted = np.zeros(16, bool)
    predicted[3] = True
    predicted[7:9] = True  # a false alarm run
    return predicted, labels


def test_event_scores_hit_event_and_false_alarm_run():
    result = metrics.event_scores(*event_example())
    assert result["events"] == 2
    assert result["events_hit"] == 1
    assert result["alarm_runs"] == 2
    assert result["false_alarm_runs"] == 1
    assert result["event_recall"] == pytest.approx(0.5)
    assert result["event_precision"] == pytest.approx(0.5)
    assert result["event_f1"] == pytest.approx(0.5)


def test_event_scores_without_alarms_or_events():
    result = metrics.event_scores(np.zeros(5, bool), np.zeros(5, bool))
    assert (result["event_precision"], result["event_recall"], result["event_f1"]) == (0, 0, 0)


def test_point_adjusted_flags_whole_hit_events_only():
    predicted, labels = event_example()
    adjusted = metrics.point_adjusted(predicted, labels)
    expected = predicted.copy()
    expected[2:5] = True
    np.testing.assert_array_equal(adjusted, expected)
    assert not predicted[2], "the input must not be modified"
    assert metrics.counts(adjusted, labels).f1 > metrics.counts(predicted, labels).f1


def test_events_are_runs_of_labels():
    assert metrics.events([0, 1, 1, 0, 0, 1]) == [(1, 3), (5, 6)]


# -- thresholds --------------------------------------------------------------------------------

def test_calibrate_gaussian_is_mean_plus_k_std():
    normal = np.random.default_rng(0).normal(2.0, 0.5, 1000)
    threshold = calibrate("gaussian", normal, k=2.5)
    assert threshold.method == "gaussian"
    assert threshold.value == pytest.approx(normal.mean() + 2.5 * normal.std())
    assert threshold.params == {"k": 2.5, "mean": pytest.approx(normal.mean()),
                                "std": pytest.approx(normal.std())}
    default = calibrate(ThresholdMethod.GAUSSIAN, normal)
    assert default.value == pytest.approx(normal.mean() + 3.0 * normal.std())


def test_calibrate_gaussian_on_logits_stays_a_probability_for_skewed_scores():
    # Probabilities piled near 0.4 with a tail near 1: mean + 3 std of the raw values is > 1,
    # a threshold nothing can exceed; fitted to the logits it maps back below 1.
    rng = np.random.default_rng(1)
    normal = np.concatenate([rng.uniform(0.3, 0.5, 90), rng.uniform(0.97, 0.999, 10)])
    assert calibrate("gaussian", normal).value > 1.0
    threshold = calibrate("gaussian", normal, k=3.0, logit=1.0)
    logits = np.log(normal / (1 - normal))
    expected = 1 / (1 + np.exp(-(logits.mean() + 3.0 * logits.std())))
    assert threshold.value == pytest.approx(expected) and 0.5 < threshold.value < 1.0
    assert threshold.params == {"k": 3.0, "mean": pytest.approx(logits.mean()),
                                "std": pytest.approx(logits.std()), "logit": 1.0}
    with pytest.raises(ValueError, match=r"needs probabilities in \[0, 1\]; received scores "
                                         r"from 0\.5 to 1\.5"):
        calibrate("gaussian", [0.5, 1.5], logit=1.0)


def test_calibrate_percentile():
    normal = np.arange(101, dtype=float)
    threshold = calibrate("percentile", normal, q=90)
    assert threshold.value == pytest.approx(90.0)
    assert threshold.params == {"q": 90.0}
    assert calibrate("percentile", normal).value == pytest.approx(99.5)
    with pytest.raises(ValueError, match=r"`q` must be in \[0, 100\]; received 101"):
        calibrate("percentile", normal, q=101)


def test_calibrate_f1_needs_labels():
    normal = np.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="method 'f1' needs labeled `scores` and `labels`"):
        calibrate("f1", normal)
    with pytest.raises(ValueError, match="needs at least one anomalous label"):
        calibrate("f1", normal, scores=normal, labels=[0, 0, 0])


def test_calibrate_f1_alarms_above_threshold_reach_the_best_f1():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2])
    labels = np.array([0, 0, 1, 1, 0], bool)
    threshold = calibrate("f1", scores[~labels], scores=scores, labels=labels)
    assert threshold.params["f1"] == pytest.approx(0.8)
    assert metrics.counts(scores > threshold.value, labels).f1 == pytest.approx(0.8)


def test_calibrate_f1_sits_in_the_middle_of_the_gap_not_at_the_weakest_anomaly():
    """Normal windows score up to 4.84, labeled ones from 211.5: every threshold between gives
    F1 1.0, and one at 211.49 would miss a fault a little weaker than those labeled."""
    scores = np.array([1.0, 2.5, 4.84, 211.5, 300.0, 250.0])
    labels = np.array([0, 0, 0, 1, 1, 1], bool)
    threshold = calibrate("f1", scores[~labels], scores=scores, labels=labels)
    assert threshold.params["f1"] == 1.0
    assert threshold.value == pytest.approx((4.84 + 211.5) / 2, rel=1e-5)
    assert metrics.counts(scores > threshold.value, labels).f1 == 1.0


def test_calibrate_rejects_unknown_method_and_bad_scores():
    with pytest.raises(ValueError,
                       match=r"`method` must be one of \['gaussian', 'percentile', 'f1'\]"):
        calibrate("median", [1.0])
    with pytest.raises(ValueError, match="`normal_scores` must be finite"):
        calibrate("gaussian", [1.0, np.nan])
    with pytest.raises(ValueError, match="`normal_scores` must not be empty"):
        calibrate("gaussian", [])


def test_score_stats():
    stats = score_stats(np.arange(1, 101, dtype=float))
    assert stats.count == 100
    assert stats.mean == pytest.approx(50.5)
    assert stats.max == 100
    assert stats.p50 == pytest.approx(50.5)


# -- windows -----------------------------------------------------------------------------------

def test_sliding_windows_and_ends():
    values = np.arange(20).reshape(10, 2)
    windows = sliding_windows(values, window=4, stride=3)
    assert windows.shape == (3, 4, 2)
    for i, window in enumerate(windows):
        np.testing.assert_array_equal(window, values[3 * i:3 * i + 4])
    np.testing.assert_array_equal(window_ends(10, 4, 3), [3, 6, 9])
    assert window_count(10, 4, 3) == 3
    assert not windows.flags.writeable


def test_sliding_windows_stride_one_covers_every_end():
    values = np.random.default_rng(0).normal(size=(7, 3))
    windows = sliding_windows(values, 5)
    assert windows.shape == (3, 5, 3)
    for window, end in zip(windows, window_ends(7, 5)):
        np.testing.assert_array_equal(window[-1], values[end])


def test_sliding_windows_of_a_short_signal_is_empty():
    windows = sliding_windows(np.zeros((3, 2)), window=4)
    assert windows.shape == (0, 4, 2)
    assert len(window_ends(3, 4)) == 0


def test_sliding_windows_errors():
    with pytest.raises(ValueError, match="`window` and `stride` must be >= 1; received 0 and 1"):
        sliding_windows(np.zeros((3, 2)), window=0)
    with pytest.raises(ValueError,
                       match=r"`values` must have shape \(rows, features\); received \(5,\)"):
        sliding_windows(np.zeros(5), window=2)


def test_consecutive_alarms():
    above = np.array([1, 1, 0, 1, 1, 1, 0, 1], bool)
    np.testing.assert_array_equal(consecutive_alarms(above, 2), [0, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(consecutive_alarms(above, 3), [0, 0, 0, 0, 0, 1, 0, 0])
    single = consecutive_alarms(above, 1)
    np.testing.assert_array_equal(single, above)
    assert single is not above


def test_consecutive_alarms_with_hold():
    above = np.array([1, 0, 0, 0, 1, 1, 0, 0, 0, 0], bool)
    np.testing.assert_array_equal(consecutive_alarms(above, 1, hold=2),
                                  [1, 1, 1, 0, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(consecutive_alarms(above, 2, hold=1),
                                  [0, 0, 0, 0, 0, 1, 1, 0, 0, 0])


def test_alarm_filter_steps_like_the_batch_function():
    above = np.random.default_rng(0).random(200) < 0.4
    alarm = AlarmFilter(consecutive=2, hold=3)
    stepped = [alarm.step(bool(a)) for a in above]
    np.testing.assert_array_equal(stepped, consecutive_alarms(above, 2, hold=3))
    alarm.reset()
    assert alarm.step(True) is False


@pytest.mark.parametrize("consecutive, hold", [(0, 0), (1, -1)])
def test_alarm_filter_refuses_bad_settings(consecutive, hold):
    with pytest.raises(ValueError, match="`consecutive` must be >= 1 and `hold` >= 0"):
        AlarmFilter(consecutive, hold)


def test_runs():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(4, bool)) == []
    assert runs(np.ones(3, bool)) == [(0, 3)]
    assert runs(np.array([], bool)) == []


# -- pixel AUROC of image maps -----------------------------------------------------------------

def test_pixel_auroc_ranks_maps_below_zero(tmp_path):
    """A fused model's map sums standardized maps, so most normal pixels are negative: the
    pixel AUROC's histograms must still tell them apart (they all fell in one bin once)."""
    import cv2

    from vigil.runtime.camera.datasets import LabeledImage
    from vigil.runtime.camera.evaluation import evaluate_images
    from vigil.runtime.core.spec import ScoreStats

    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    items = []
    for name, anomalous in (("good", False), ("bad", True)):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((16, 16), 128, np.uint8))
        if anomalous:
            cv2.imwrite(str(tmp_path / f"{name}_mask.png"), mask)
        items.append(LabeledImage(tmp_path / f"{name}.png", anomalous, name,
                                  tmp_path / f"{name}_mask.png" if anomalous else None))
    rng = np.random.default_rng(0)
    # Normal pixels around -2, defect pixels around -1: all below 0, perfectly separable.
    maps = {"good": rng.uniform(-3.0, -1.5, (16, 16)), "bad": rng.uniform(-3.0, -1.5, (16, 16))}
    maps["bad"][4:8, 4:8] = rng.uniform(-1.4, -0.5, (4, 4))

    order = iter(["good", "bad"])  # evaluate_images infers the items in order

    class Stub:
        class spec:
            training: dict = {}  # no record of what it trained on
            jpeg_quality = None  # nor of its training images' compression
            map_stats = ScoreStats(count=256, mean=-2.25, std=0.43, p50=-2.25, p95=-1.6,
                                   p99=-1.5, max=-1.5)
        threshold, pixel_threshold = -1.0, -1.45

        def infer(self, image, decoded=False):
            amap = maps[next(order)]
            return np.array([amap.max()]), amap[None].astype(np.float32)

    result, _ = evaluate_images(Stub(), items)
    assert result["pixel_auroc"] == pytest.approx(1.0)


def test_pixel_auroc_per_defect_type(tmp_path):
    """Each defect type's pixel AUROC ranks its own images' defect pixels against the defect-free
    pixels of its images and of the normal ones: a map that lights a spot scores 1, one that
    lights the edge of a marked band but not the band scores below chance, and the pooled figure
    lies between them."""
    import cv2

    from vigil.runtime.camera.datasets import LabeledImage
    from vigil.runtime.camera.evaluation import evaluate_images
    from vigil.runtime.core.spec import ScoreStats

    rng = np.random.default_rng(0)
    masks = {"spot": np.zeros((16, 16), np.uint8), "band": np.zeros((16, 16), np.uint8)}
    masks["spot"][4:8, 4:8] = 255
    masks["band"][:6] = 255
    maps = {name: rng.uniform(0.0, 1.0, (16, 16)) for name in ("good", "spot", "band")}
    maps["spot"][4:8, 4:8] = rng.uniform(2.0, 3.0, (4, 4))
    maps["band"][6] = 3.0  # the band's edge, outside its mask
    items = []
    for name in maps:
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((16, 16), 128, np.uint8))
        mask = None
        if name in masks:
            mask = tmp_path / f"{name}_mask.png"
            cv2.imwrite(str(mask), masks[name])
        items.append(LabeledImage(tmp_path / f"{name}.png", name in masks, name, mask))
    order = iter(maps)

    class Stub:
        class spec:
            training: dict = {}  # no record of what it trained on
            jpeg_quality = None  # nor of its training images' compression
            map_stats = ScoreStats(count=256, mean=0.5, std=0.29, p50=0.5, p95=0.95, p99=0.99,
                                   max=1.0)
        threshold, pixel_threshold = 1.5, 1.5

        def infer(self, image, decoded=False):
            amap = maps[next(order)]
            return np.array([amap.max()]), amap[None].astype(np.float32)

    result, _ = evaluate_images(Stub(), items)
    rows = {row["defect"]: row for row in result["per_defect"]}
    assert rows["spot"]["pixel_auroc"] == pytest.approx(1.0)
    # band: 96 positives, uniform like the 256 + 144 negatives but for 16 negatives above all
    expected = (96 * 384 * 0.5) / (96 * 400)
    assert rows["band"]["pixel_auroc"] == pytest.approx(expected, abs=0.05)
    assert rows["band"]["pixel_auroc"] < result["pixel_auroc"] < rows["spot"]["pixel_auroc"]
    assert "pixel_auroc" not in rows["good"]


def test_best_f1_with_a_stride_holds_each_window_score_over_the_rows_it_decides():
    """With --stride 8, 7 of 8 rows had no score (NaN) and were missed at every threshold:
    best_f1 came out at 0.21 where the artifact's own threshold gave 0.75 (a review's run).
    Held only with a stride: at stride 1 a row without a window (a window refilling after a
    dropout) is a miss, as its alarm is, or best_f1 would promise what its threshold misses."""
    from vigil.runtime.sensor.evaluation import between_windows, summarize

    stride, windows = 4, 12
    scores = np.full(stride * windows + 3, np.nan)
    ends = np.arange(3, len(scores), stride)
    scores[ends] = np.r_[np.zeros(6), np.full(3, 5.0), np.zeros(3)]
    labels = np.zeros(len(scores), bool)
    labels[ends[6] - stride + 1:ends[8] + stride] = True  # the rows those windows decide
    alarms = np.zeros(len(scores), bool)
    held = between_windows(scores, scores, np.nan)
    result = summarize(scores, alarms, labels, held=held)
    assert result["best_f1"] > 0.85 and result["best_f1_threshold"] < 5.0
    # pooled, each file's rows before its first window stay unscored, as the caller holds them
    two = summarize(np.r_[scores, scores], np.r_[alarms, alarms], np.r_[labels, labels],
                    held=np.r_[held, held])
    assert two["best_f1"] == result["best_f1"]
    # stride 1 (the default): nothing held
    assert summarize(scores, alarms, labels)["best_f1"] < 0.5


def test_an_alarm_is_above_the_threshold_or_no_number_and_json_keeps_infinity_ordered():
    """One rule for every alarm (``predict``, frames, the server): a NaN score is an alarm, a
    score equal to the threshold is not. Reports write an infinite score as a score line does."""
    import json

    from vigil.runtime.core.output import strict_json
    from vigil.runtime.core.report import json_text
    from vigil.runtime.core.thresholds import over_threshold

    scores = np.array([0.5, 1.0, 1.5, np.nan, np.inf])
    assert over_threshold(scores, 1.0).tolist() == [False, False, True, True, True]
    assert over_threshold(float("nan"), 1.0) is True
    assert over_threshold(np.float32(1.0), 1.0) is False
    record = {"score": float("inf"), "low": -np.inf, "auroc": float("nan")}
    assert json.loads(json_text(record)) == json.loads(strict_json(record)) == {
        "score": 1.7976931348623157e308, "low": -1.7976931348623157e308, "auroc": None}
