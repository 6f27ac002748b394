"""Training windows are cut in float32 straight from the rows, and data whose windows would not
fit in memory is refused before anything is allocated or written."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.runtime.sensor.windows import sliding_windows
from vigil.training import sensor_data
from vigil.training.sensor_data import DataOptions, prepare
from vigil.training.synthetic import anomalous_stream, normal_stream, write_csv


def two_files(folder):
    first = anomalous_stream(700, seed=2)
    write_csv(folder / "a.csv", first.values, first.labels)
    write_csv(folder / "b.csv", normal_stream(500, seed=3), np.zeros(500, dtype=bool))
    return folder


def reference(folder, options: DataOptions,
              scored_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The windows as training cut them before: float64 windows, labeled ones left out; the
    validation windows begin the window's unscored rows before the split."""
    train, validation = [], []
    for table in sensor_data.load_tables(folder, options):
        split = int(round(len(table) * (1 - options.validation_fraction)))
        windows = sliding_windows(table.values[:split], options.window, options.stride)
        labeled = sliding_windows(table.labels[:split, None], options.window,
                                  options.stride)[:, :, 0].any(axis=1)
        train.append(windows[~labeled])
        start = max(0, split - options.window + (scored_rows or options.window))
        validation.append(sliding_windows(table.values[start:], options.window, options.stride))
    return (np.concatenate(train).astype(np.float32),
            np.concatenate(validation).astype(np.float32))


@pytest.mark.parametrize("stride,scored_rows", [(1, None), (3, None), (1, 16), (3, 16)])
def test_windows_are_the_same_values_as_before(tmp_path, stride, scored_rows):
    options = DataOptions(window=24, stride=stride)
    data = prepare(two_files(tmp_path), options, scored_rows=scored_rows)
    train, validation = reference(tmp_path, options, scored_rows)
    assert data.train.dtype == data.validation.dtype == np.float32
    np.testing.assert_array_equal(data.train, train)
    np.testing.assert_array_equal(data.validation, validation)


@pytest.mark.parametrize("scored_rows", [None, 1, 10, 24])
def test_no_validation_score_reads_a_row_the_networks_learned_to_predict(tmp_path, scored_rows):
    """Each row holds its own number: the scored end of every validation window lies after the
    last training row, while its context may reach back into the training part."""
    rows = np.arange(400, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    write_csv(tmp_path / "counted.csv", rows, np.zeros(400, dtype=bool), features=("a", "b"))
    data = prepare(tmp_path, DataOptions(window=24, validation_fraction=0.25),
                   scored_rows=scored_rows)
    last_trained = data.train[:, :, 0].max()
    scored = scored_rows or 24
    assert last_trained == 299
    assert data.validation[:, -scored:, 0].min() == 300
    assert data.validation[0, 0, 0] == 300 - (24 - scored)
    assert len(data.validation) == 100 - scored + 1
    with pytest.raises(ValueError, match="`scored_rows` must be in \\[1, window=24\\]; received 25"):
        prepare(tmp_path, DataOptions(window=24), scored_rows=25)


def test_too_few_rows_after_the_split_say_what_a_held_out_window_needs(tmp_path, caplog):
    rows = np.arange(600, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    write_csv(tmp_path / "long.csv", rows, np.zeros(600, dtype=bool), features=("a", "b"))
    write_csv(tmp_path / "short.csv", rows[:40], np.zeros(40, dtype=bool), features=("a", "b"))
    with caplog.at_level("WARNING", logger="vigil"):
        data = prepare(tmp_path, DataOptions(window=24), scored_rows=16)
    assert len(data.validation) == 150 - 16 + 1  # the long file's; the short one gives none
    assert "1 file(s) give no held-out window (a window's last 16 rows" in caplog.text
    assert "short.csv (10 rows after it)" in caplog.text
    with pytest.raises(ValueError, match=r"whose last 16 \(the rows a score reads\) .* gives 0: "
                                         r"a file gives one per row after its training part "
                                         r"beyond the first 15"):
        prepare(tmp_path / "short.csv", DataOptions(window=24, validation_fraction=0.17),
                scored_rows=16)


def test_a_file_shorter_than_the_window_or_labeled_throughout_gives_no_windows(tmp_path):
    two_files(tmp_path)
    write_csv(tmp_path / "c.csv", normal_stream(300, seed=4)[:20], np.zeros(20, dtype=bool))
    write_csv(tmp_path / "d.csv", normal_stream(300, seed=5), np.ones(300, dtype=bool))
    options = DataOptions(window=24)
    data = prepare(tmp_path, options)
    train, validation = reference(tmp_path, options)
    np.testing.assert_array_equal(data.train, train)
    np.testing.assert_array_equal(data.validation, validation)


def test_windows_that_do_not_fit_in_memory_are_refused_with_the_stride_that_fits(tmp_path,
                                                                                 monkeypatch):
    two_files(tmp_path)
    monkeypatch.setattr(sensor_data, "available_memory", lambda: 250_000)
    with pytest.raises(ValueError) as refused:
        prepare(tmp_path, DataOptions(window=24))
    message = str(refused.value)
    assert "validation windows of 24 x 8 values" in message
    assert "GB available" in message and "vigil train sensor DATA -o MODEL.keras --stride" in message
    stride = int(message.split("--stride ")[1].split("`")[0])
    assert len(prepare(tmp_path, DataOptions(window=24, stride=stride)).train) > 8
    monkeypatch.setattr(sensor_data, "available_memory", lambda: 1_000)
    with pytest.raises(ValueError, match="train on fewer rows \\(a window every \\d+ rows"):
        prepare(tmp_path, DataOptions(window=24))


def test_train_sensor_writes_nothing_when_the_windows_do_not_fit(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from vigil.training.train_sensor import train_sensor

    two_files(tmp_path)
    monkeypatch.setattr(sensor_data, "available_memory", lambda: 100_000)
    output = tmp_path / "out" / "m.keras"
    with pytest.raises(ValueError, match="GB available"):
        train_sensor(tmp_path, output, verbose=0)
    assert not (tmp_path / "out").exists()


def test_the_sidecar_keeps_overlapping_windows_as_rows_and_gives_them_back_exactly():
    from vigil.training.checkpoint import _pack_windows, _unpack_windows

    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    odd = rng.normal(size=(1, 12, 3))
    odd[0, 5, 1] = np.nan
    windows = np.concatenate([sliding_windows(first, 12, 2), odd, sliding_windows(second, 12, 2),
                              odd]).astype(np.float32)
    rows, starts = _pack_windows(windows, {"kind": "sensor", "window": 12, "stride": 2})
    assert len(rows) == 60 + 12 + 40 + 12 and len(starts) == len(windows)
    np.testing.assert_array_equal(_unpack_windows(rows, starts, 12), windows)
    for record in ({"kind": "image", "window": 12, "stride": 2},
                   {"kind": "sensor", "window": 12, "stride": 12}):
        assert _pack_windows(windows, record) is None


def test_a_trained_sensor_run_reads_back_the_same_validation_windows(tmp_path):
    pytest.importorskip("tensorflow")
    from vigil.training.checkpoint import load_run, sidecar_path
    from vigil.training.sensor_model import ModelOptions
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    two_files(tmp_path)
    options = SensorTrainingOptions(data=DataOptions(window=24),
                                    model=ModelOptions(units=4, epochs=1, score_last=12,
                                                       burn_in=4, neighbour_rows=0, members=1))
    result = train_sensor(tmp_path, tmp_path / "m.keras", options, verbose=0)
    with np.load(sidecar_path(tmp_path / "m.keras")) as sidecar:
        assert "validation" not in sidecar.files
        assert sidecar["validation_rows"].nbytes * 10 < result.run.validation.nbytes
    np.testing.assert_array_equal(load_run(tmp_path / "m.keras").validation,
                                  result.run.validation)


def test_a_sidecar_written_before_rows_were_kept_still_loads(tmp_path):
    import json

    from vigil.training.checkpoint import load_run, sidecar_path

    (tmp_path / "old.keras").write_bytes(b"")
    windows = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    np.savez(sidecar_path(tmp_path / "old.keras"),
             record=np.array(json.dumps({"kind": "sensor", "window": 4, "stride": 1})),
             validation=windows, validation_labels=np.zeros(2, dtype=bool),
             calibration=windows)
    np.testing.assert_array_equal(load_run(tmp_path / "old.keras").validation, windows)


def test_a_stride_longer_than_half_the_rows_a_score_reads_is_refused_before_reading(tmp_path):
    """The runtime scores a window every `stride` rows, each score weighing the last rows of
    its window most: trained with --stride 48, 16 of every 48 rows were never scored (a sensor
    at 0 for 14 rows raised no alarm), and at stride 24 a 14-row dropout was missed at 119 of
    1,152 positions (none up to 16)."""
    pytest.importorskip("tensorflow")
    from dataclasses import replace

    from vigil.training.train_sensor import SensorTrainingOptions, checked_options

    defaults = SensorTrainingOptions()
    for stride, window, says in ((48, 48, "give --stride 16 or less$"),
                                 (24, 64, "or --score-last 48 to read more")):
        options = replace(defaults, data=replace(defaults.data, stride=stride, window=window))
        with pytest.raises(ValueError, match=f"`stride` {stride} is longer than 16 rows, half "
                                             f"of the 32 rows"):
            checked_options(options)
        with pytest.raises(ValueError, match=says):
            checked_options(options)
    at_most = replace(defaults, data=replace(defaults.data, stride=16))
    assert checked_options(at_most).data.stride == 16
    whole = replace(defaults, data=replace(defaults.data, stride=24, window=48),
                    model=replace(defaults.model, score_last=0))  # 0: the whole window is read
    assert checked_options(whole).data.stride == 24


def test_the_stride_suggested_for_memory_is_one_the_model_may_use(tmp_path, monkeypatch):
    two_files(tmp_path)
    monkeypatch.setattr(sensor_data, "available_memory", lambda: 20_000)
    with pytest.raises(ValueError, match="rows between decisions the model may have"):
        prepare(tmp_path, DataOptions(window=24), scored_rows=12)  # at most 6
