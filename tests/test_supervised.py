"""Supervised mode: a classifier trained on labeled windows, exported to the same one-file
artifact and scored by the same TensorFlow-free runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from vigil import runtime  # noqa: E402
from vigil.cli import commands as cli  # noqa: E402
from vigil.training.synthetic import anomalous_stream, write_csv  # noqa: E402


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("supervised")
    train = anomalous_stream(5000, seed=11, anomalies=60)
    test = anomalous_stream(3000, seed=23, anomalies=20)
    return (write_csv(folder / "train.csv", train.values, train.labels),
            write_csv(folder / "test.csv", test.values, test.labels), folder)


def test_supervised_training_exports_an_artifact_the_runtime_scores(labeled, capsys):
    train_csv, test_csv, folder = labeled
    model = folder / "clf.keras"
    assert cli.main(["train", "sensor", str(train_csv), "-o", str(model), "--supervised",
                     "--window", "16", "--units", "16", "--epochs", "8",
                     "--synthetic-anomalies", "0.05", "--quiet"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["threshold_method"] == "f1"  # labels are plentiful: F1-optimal by default
    assert trained["synthetic_anomalous_windows"] > 0  # counted among train_windows, and said
    assert trained["labeled_anomalous_windows"] > 0
    assert (trained["window"], trained["stride"], trained["architecture"], trained["members"]) == \
        (16, 1, "lstm-classifier", 1)  # what was trained, said
    assert cli.main(["export", str(model), "-o", str(folder / "clf.onnx"), "--quiet"]) == 0
    capsys.readouterr()
    detector = runtime.load(folder / "clf.onnx")
    assert detector.spec.training["mode"] == "supervised"
    assert detector.spec.training["synthetic_anomalous_windows"] > 0
    assert detector.spec.training["input_ranges"] == {}  # recorded: rows_unseen_inputs is 0
    # what the classifier was trained with, not the normal-only models' settings (review hD)
    recorded = detector.spec.training["model"]
    assert recorded["architecture"] == "lstm-classifier" and recorded["patience"] == 5
    assert 1 <= recorded["best_epoch"] <= detector.spec.training["epochs"] <= 8
    assert trained["best_epoch"] == recorded["best_epoch"]
    assert not {"neighbour_rows", "epoch_windows", "latent"} & set(recorded)
    assert cli.main(["inspect", str(folder / "clf.onnx")]) == 0
    assert "model: a supervised LSTM classifier (--supervised), trained on " \
        f"{trained['labeled_anomalous_windows']} labeled" in capsys.readouterr().out
    assert "classifier" in detector.spec.score_reduction
    # the threshold chosen on the labels decides: no adaptive threshold raises it
    assert detector.spec.adaptive is None and detector.spec.likelihood is not None

    assert cli.main(["eval", str(folder / "clf.onnx"), str(test_csv), "--json",
                     str(folder / "m.json"), "--quiet"]) == 0
    result = json.loads((folder / "m.json").read_text())
    assert result["auroc"] > 0.8 and result["event_f1"] > 0.5  # a stream it never saw
    # the runtime's own scores: each window alone equals the batch (static quantization)
    windows = np.lib.stride_tricks.sliding_window_view(
        np.loadtxt(test_csv, delimiter=",", skiprows=1, usecols=range(1, 9)), (16, 8))[:64, 0]
    batch = detector.score(windows.astype(np.float32))
    alone = np.array([detector.score(w.astype(np.float32))[0] for w in windows])
    np.testing.assert_allclose(alone, batch, rtol=1e-5, atol=1e-5)
    # the why of an alarm names real columns
    errors = detector.score_with_features(windows.astype(np.float32))[1]
    assert errors.shape == (64, 8) and np.all(errors >= 0)
    # readings so far out that float32 overflows score inf and alarm, as a forecaster's do: the
    # classifier's bounded logit scored them as normal
    far = windows[:4].astype(np.float32).copy()
    far[0, -1, 2], far[1, -3, 0], far[2, 0, 5] = 1e30, -1e20, -3e38  # at the window's first row too
    scores = detector.score(far)
    assert np.isposinf(scores[:3]).all() and detector.predict(far)[:3].all()
    assert np.isfinite(scores[3]) and scores[3] == batch[3]  # the others bit for bit
    # inf in the graph itself, as a plain onnxruntime user (Triton) reads it: no NaN
    import onnxruntime as ort

    raw = ort.InferenceSession(str(folder / "clf.onnx")).run(["score"], {"window": far})[0]
    assert np.isposinf(raw[:3]).all()


def test_supervised_without_enough_labels_says_how_to_train(tmp_path, capsys):
    from vigil.training.synthetic import normal_stream

    values = normal_stream(2000, seed=1)
    labels = np.zeros(len(values), bool)
    labels[500:505] = True
    data = write_csv(tmp_path / "few.csv", values, labels)
    assert cli.main(["train", "sensor", str(data), "-o", str(tmp_path / "m.keras"),
                     "--supervised", "--window", "16", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--supervised needs labeled anomalies" in err and "train without --supervised" in err


def test_supervised_warns_where_a_few_incidents_make_the_labeled_windows(tmp_path, capsys):
    """Two incidents of 12 rows pass the 20-window floor: the classifier learned those two and
    alarmed on 44 % of normal rows elsewhere (review hD), without a word."""
    from vigil.training.synthetic import normal_stream

    values = normal_stream(2000, seed=1)
    labels = np.zeros(len(values), bool)
    labels[300:312] = labels[900:912] = True
    values[labels] += 4
    data = write_csv(tmp_path / "two.csv", values, labels)
    assert cli.main(["train", "sensor", str(data), "-o", str(tmp_path / "m.keras"),
                     "--supervised", "--window", "8", "--units", "8", "--epochs", "1",
                     "--quiet"]) == 0
    assert "the training part holds 2 labeled anomalies (runs of labeled rows) in 24 windows" \
        in capsys.readouterr().err
    from vigil.training.checkpoint import load_run

    assert load_run(tmp_path / "m.keras").record["training"]["labeled_events"] == 2


def test_supervised_refuses_a_validation_part_without_normal_windows_before_training(
        tmp_path, capsys, monkeypatch):
    """SKAB's other/4.csv is labeled to its end: the threshold had no normal window to be set on,
    found after the network was trained, in words of the code (`normal_scores` is empty)."""
    from vigil.training import train_supervised
    from vigil.training.synthetic import normal_stream

    values = normal_stream(2000, seed=1)
    labels = np.zeros(len(values), bool)
    labels[300:400] = labels[1400:] = True  # the held-out last quarter is all labeled
    data = write_csv(tmp_path / "tail.csv", values, labels)
    monkeypatch.setattr(train_supervised.sensor_model, "build_classifier", None)  # never reached
    assert cli.main(["train", "sensor", str(data), "-o", str(tmp_path / "m.keras"),
                     "--supervised", "--window", "16", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "validation has 0 normal windows" in err and "--validation-fraction" in err


def test_supervised_refuses_a_label_column_no_file_has_and_windows_that_do_not_fit(
        labeled, tmp_path, capsys, monkeypatch):
    """A typo in --label-column would leave the file's real label column among the features
    (validation F1 inflated, an artifact no device can feed); too many windows were a
    traceback. Both are refused before any work, as without --supervised."""
    from vigil.training import sensor_data

    train_csv, _, _ = labeled
    model = tmp_path / "m.keras"
    assert cli.main(["train", "sensor", str(train_csv), "-o", str(model), "--supervised",
                     "--label-column", "Fault", "--window", "16", "--epochs", "1",
                     "--quiet"]) == 2
    assert "'Fault' is in none of the data's headers" in capsys.readouterr().err
    monkeypatch.setattr(sensor_data, "available_memory", lambda: 1_000_000)
    assert cli.main(["train", "sensor", str(train_csv), "-o", str(model), "--supervised",
                     "--window", "16", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "to train on, and this machine has" in err and "--stride" in err
    assert not model.exists()


def test_synthetic_anomalies_need_supervised_mode(labeled, tmp_path, capsys):
    assert cli.main(["train", "sensor", str(labeled[0]), "-o", str(tmp_path / "m.keras"),
                     "--synthetic-anomalies", "0.1"]) == 2
    assert "--synthetic-anomalies applies to --supervised" in capsys.readouterr().err


@pytest.mark.parametrize("flags, says", [
    (["--members", "3"], "--members applies to the normal-only models"),
    (["--neighbour-rows", "4"], "--neighbour-rows applies to the normal-only models"),
    (["--compress-heavy-tails"], "--compress-heavy-tails applies to the normal-only models"),
    (["--architecture", "tcn-forecast"], "`--architecture` tcn-forecast is none of its"),
    # the unsupervised trainer's option checks: it trained and the export refused the artifact
    (["--adaptive", "--adaptive-memory", "0"], "the adaptive threshold needs `--adaptive-memory` >= 1"),
    (["--window", "16", "--score-last", "16"], "`--score-last` must be smaller than `--window`"),
])
def test_supervised_refuses_options_it_would_ignore(labeled, tmp_path, capsys, flags, says):
    """They were recorded in the model as if applied, one LSTM classifier trained whatever."""
    output = tmp_path / "m.keras"
    assert cli.main(["train", "sensor", str(labeled[0]), "-o", str(output), "--supervised",
                     *flags]) == 2
    assert says in capsys.readouterr().err and not output.exists()


def test_synthetic_anomalies_change_only_the_last_rows():
    from vigil.training.train_supervised import inject_anomalies

    rng = np.random.default_rng(0)
    windows = rng.normal(size=(200, 24, 3)).astype(np.float32)
    injected = inject_anomalies(windows, np.ones(3), 300, np.random.default_rng(1), last=8)
    assert injected.shape == (300, 24, 3)
    originals = windows[np.random.default_rng(1).integers(0, 200, 300)]
    assert np.array_equal(injected[:, :16], originals[:, :16])  # only the scored rows move
    assert (np.abs(injected - originals).max(axis=(1, 2)) > 0).mean() > 0.9


@pytest.mark.parametrize("architecture", ["tcn-forecast", "conv-lstm-ae"])
def test_library_refuses_an_architecture_without_a_cell(labeled, tmp_path, architecture):
    """The library trained an LSTM for them without a word; only the CLI refused."""
    from dataclasses import replace

    from vigil.training.train_sensor import SensorTrainingOptions
    from vigil.training.train_supervised import train_supervised

    defaults = SensorTrainingOptions()
    options = replace(defaults, model=replace(defaults.model, architecture=architecture))
    output = tmp_path / "m.keras"
    with pytest.raises(ValueError, match=f"`architecture` {architecture} is none of its"):
        train_supervised(labeled[0], output, options)
    assert not output.exists()


def test_supervised_turns_the_adaptive_threshold_off_unless_asked():
    from vigil.training.train_sensor import CalibrationOptions
    from vigil.training.train_supervised import supervised_calibration

    chosen, turned_off = supervised_calibration(CalibrationOptions())
    assert (chosen.method, chosen.adaptive, chosen.likelihood, turned_off) == ("f1", False, True,
                                                                               True)
    kept, turned_off = supervised_calibration(CalibrationOptions(method="gaussian"),
                                              method_given=True, adaptive_given=True)
    assert (kept.method, kept.adaptive, turned_off) == ("gaussian", True, False)


def test_a_classifier_takes_a_stride_up_to_half_its_scored_rows(labeled, tmp_path, capsys):
    """A classifier learns the label of a window's last rows (its synthetic anomalies span
    --score-last): a decision every 40 rows of a 48-row window left most rows undecided."""
    from dataclasses import replace

    from vigil.training.train_sensor import SensorTrainingOptions, checked_options

    defaults = SensorTrainingOptions()
    options = replace(defaults, data=replace(defaults.data, window=48, stride=16))
    assert checked_options(options, supervised=True).data.stride == 16
    whole = replace(options, data=replace(options.data, stride=24),
                    model=replace(options.model, score_last=0))
    assert checked_options(whole, supervised=True).data.stride == 24
    with pytest.raises(ValueError, match="give --stride 16 or less"):
        checked_options(replace(options, data=replace(options.data, stride=40)), supervised=True)


def test_a_classifier_saved_with_the_first_overflow_guard_still_loads_and_scores(tmp_path):
    """The guard first took the per-feature deviations (2-D); a model saved so failed to load
    once it took the whole normalized window (3-D)."""
    import keras

    from vigil.training.sensor_model import OverflowGuard

    logit, deviation = keras.Input((), name="logit"), keras.Input((3,), name="deviation")
    model = keras.Model([logit, deviation], OverflowGuard(name="overflow_guard")([logit, deviation]))
    model.save(tmp_path / "first.keras")
    again = keras.saving.load_model(tmp_path / "first.keras", safe_mode=True)
    out = again.predict([np.array([0.5, -1.0], np.float32),
                         np.array([[1.0, 2.0, 3.0], [np.inf, 0.0, 0.0]], np.float32)], verbose=0)
    assert out[0] == 0.5 and np.isnan(out[1])  # NaN there: the runtime reads it as inf


def test_early_stopping_is_said_and_patience_is_a_flag(caplog):
    """Keras stopped at epoch 6 of 30 and shipped epoch 1's weights without a word (review hD)."""
    from types import SimpleNamespace

    from vigil.training.train_supervised import _say_early_stop

    history = SimpleNamespace(epoch=list(range(6)),
                              history={"val_loss": [0.22, 0.3, 0.4, 0.5, 0.6, 0.7]})
    with caplog.at_level("INFO", logger="vigil"):
        assert _say_early_stop(history, 5, 30) == 1
    (record,) = caplog.records
    assert record.levelname == "WARNING" and "stopped at epoch 6 of 30" in record.getMessage()
    assert "keeps epoch 1's weights" in record.getMessage() and "--patience" in record.getMessage()
    caplog.clear()
    history.history["val_loss"] = [0.5, 0.3, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]
    history.epoch = list(range(8))
    with caplog.at_level("INFO", logger="vigil"):
        assert _say_early_stop(history, 5, 30) == 3
    assert [r.levelname for r in caplog.records] == ["INFO"]
    caplog.clear()
    history.epoch = list(range(30))
    history.history["val_loss"] = list(np.linspace(1, 0.1, 30))
    assert _say_early_stop(history, 5, 30) == 30 and not caplog.records  # the last was best
    history.epoch = list(range(6))  # every epoch run, an earlier one kept (review hE)
    history.history["val_loss"] = [0.554, 0.807, 0.940, 0.942, 1.392, 0.849]
    with caplog.at_level("INFO", logger="vigil"):
        assert _say_early_stop(history, 10, 6) == 1
    assert "did not improve in the 5 epochs after it" in caplog.text
    caplog.clear()
    history.epoch = list(range(3))  # flat, or a NaN epoch: no "rose", no NaN named (review hG)
    for losses, best in (([0.3, 0.3, 0.3], 1), ([0.5, float("nan"), 0.4], 3)):
        history.history["val_loss"] = losses
        with caplog.at_level("INFO", logger="vigil"):
            assert _say_early_stop(history, 5, 3) == best
    assert "rose" not in caplog.text and "nan" not in caplog.text
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING"]
    assert "not a number at epoch(s) 2 of 3: the training diverged" in caplog.text
    assert cli.main(["train", "sensor", "x.csv", "-o", "m.keras", "--patience", "3"]) == 2
