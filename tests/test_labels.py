"""Labels kept apart from the data (NAB's windows and points, generic JSON or CSV files): read,
matched to data files, applied to rows, never trained on, and used by `vigil eval`."""

from __future__ import annotations

import json
import shlex
import re
from pathlib import Path

import numpy as np
import pytest

from vigil.runtime.sensor.labels import nab_labels, read_labels

pytest.importorskip("onnx")  # the tiny artifact is written with onnx

TIMES = tuple(f"2014-02-19 10:{m:02d}:00" for m in range(60))


@pytest.fixture(scope="module")
def tiny_sensor(tmp_path_factory):
    from sensor_fixtures import write_tiny_sensor_artifact

    return write_tiny_sensor_artifact(tmp_path_factory.mktemp("tiny") / "tiny-sensor.onnx")


def write_nab_like(root, spike_rows=(30, 31, 32)):
    """A NAB-shaped root: data/<category>/<name>.csv (timestamp,a,b,c) and labels/ windows."""
    (root / "data" / "realThings").mkdir(parents=True)
    (root / "labels").mkdir()
    rows = ["timestamp,a,b,c"]
    for i, time in enumerate(TIMES):
        value = 5.0 if i in spike_rows else 0.1 + 0.01 * (i % 3)  # varying: something to learn
        rows.append(f"{time},{value},{value},{value}")
    (root / "data" / "realThings" / "one.csv").write_text("\n".join(rows) + "\n")
    windows = {"realThings/one.csv": [["2014-02-19 10:29:00.000000", "2014-02-19 10:34:00.000000"]]}
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def test_json_windows_and_points_apply_to_rows(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"cat/a.csv": [["2014-02-19 10:05:00.000000",
                                               "2014-02-19 10:07:00.000000"],
                                              "2014-02-19 10:40:00"],
                                "cat/b.csv": []}))
    labels = read_labels(path)
    flags = labels.rows(TIMES, tmp_path / "data" / "cat" / "a.csv")
    assert np.flatnonzero(flags).tolist() == [5, 6, 7, 40]  # ends inclusive, a point is one row
    assert not labels.rows(TIMES, tmp_path / "cat" / "b.csv").any()


def test_csv_labels_with_and_without_a_file_column(tmp_path):
    per_file = tmp_path / "labels.csv"
    per_file.write_text("file,start,end\na.csv,2014-02-19 10:01:00,2014-02-19 10:02:00\n")
    assert np.flatnonzero(read_labels(per_file).rows(TIMES, tmp_path / "a.csv")).tolist() == [1, 2]
    every = tmp_path / "points.csv"
    every.write_text("timestamp\n2014-02-19 10:10:00\n2014-02-19 10:11:00\n")
    assert np.flatnonzero(read_labels(every).rows(TIMES, tmp_path / "x.csv")).tolist() == [10, 11]


def test_a_labels_csv_separated_by_semicolons_or_tabs_reads_as_one_with_commas(tmp_path):
    for separator in (";", "\t"):
        path = tmp_path / "labels.csv"
        path.write_text(separator.join(["file", "start", "end"]) + "\n"
                        + separator.join(["a.csv", TIMES[1], TIMES[2]]) + "\n")
        assert np.flatnonzero(read_labels(path).rows(TIMES, tmp_path / "a.csv")).tolist() == [1, 2]


def test_a_row_by_row_labels_csv_labels_only_the_rows_it_marks(tmp_path):
    flags = tmp_path / "flags.csv"
    flags.write_text("timestamp,anomaly\n" + "".join(
        f"{t},{1 if i in (3, 4) else 0}\n" for i, t in enumerate(TIMES)))
    assert np.flatnonzero(read_labels(flags).rows(TIMES, tmp_path / "a.csv")).tolist() == [3, 4]
    words = tmp_path / "words.csv"
    words.write_text("file,timestamp,label\n" + "".join(
        f"a.csv,{t},{'yes' if i == 7 else 'no'}\n" for i, t in enumerate(TIMES)))
    assert np.flatnonzero(read_labels(words).rows(TIMES, tmp_path / "a.csv")).tolist() == [7]
    none = tmp_path / "none.csv"  # a labeled file with no anomaly: every row normal, no error
    none.write_text("file,timestamp,anomaly\na.csv,2014-02-19 10:01:00,0\n")
    assert not read_labels(none).rows(TIMES, tmp_path / "a.csv").any()


def test_a_data_file_given_as_labels_is_refused(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("timestamp,a,b,anomaly\n2014-02-19 10:01:00,1,2,0\n")
    with pytest.raises(ValueError, match=r"unexpected columns \['a', 'b'\].*--label-column"):
        read_labels(data)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,anomaly\n2014-02-19 10:01:00,maybe\n")
    with pytest.raises(ValueError, match=r"line 2: column 'anomaly' has 'maybe'; expected 0/1"):
        read_labels(bad)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must map each data file"),
    ('{"a.csv": "2014"}', "expected a list of windows"),
    ('{"a.csv": [[1, 2, 3]]}', "neither a timestamp nor a [start, end] window"),
    ('{"a.csv": [["2014-02-19 10:09:00", "2014-02-19 10:01:00"]]}',
     "its start is after its end; write [earlier, later]"),
    ('{"a.csv": [["soon", "later"]]}', "its start 'soon' is no timestamp; expected a number"),
    ('{"a.csv": [["2014-02-19 10:09:00", "03/01/2014"]]}', "its end '03/01/2014' is no timestamp"),
    ('{"a.csv": [["5", "2014-02-19 10:01:00"]]}', "one bound is a number and the other a date-time"),
    ('{"a.csv": [[5, 9], ["2014-02-19 10:09:00", "2014-02-19 10:10:00"]]}',
     "windows of numbers and of date-times are mixed"),
    ('{"a.csv": [], "b.csv": [], "a.csv": ["2014-02-19 10:09:00"]}',
     "give the key 'a.csv' more than once"),
])
def test_malformed_labels_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "labels.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_labels(path)


def test_a_key_with_folders_names_only_its_own_file(tmp_path):
    """``a/x.csv``'s labels are not applied to ``b/x.csv`` of the same data folder; a bare name
    still names its file wherever it lies, and a copy scored on its own takes its name's key."""
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a/x.csv": [TIMES[3]], "y.csv": [TIMES[4]]}))
    labels = read_labels(path)
    root = tmp_path / "data"
    for folder in ("a", "b", "c"):
        (root / folder).mkdir(parents=True)
    assert np.flatnonzero(labels.rows(TIMES, root / "a" / "x.csv", root)).tolist() == [3]
    with pytest.raises(ValueError, match="have no entry for"):
        labels.rows(TIMES, root / "b" / "x.csv", root)
    assert np.flatnonzero(labels.rows(TIMES, root / "c" / "y.csv", root)).tolist() == [4]
    # a copy scored on its own (no data folder around it) is still named by its file name
    assert np.flatnonzero(labels.rows(TIMES, tmp_path / "copy" / "x.csv")).tolist() == [3]


def test_spaces_after_the_header_commas_and_an_all_normal_flag_file(tmp_path):
    spaced = tmp_path / "spaced.csv"
    spaced.write_text(f"file, start, end\na.csv, {TIMES[3]}, {TIMES[5]}\n")
    assert np.flatnonzero(read_labels(spaced).rows(TIMES, tmp_path / "a.csv")).tolist() == [
        3, 4, 5]
    flags = tmp_path / "flags.csv"
    flags.write_text("timestamp, anomaly\n" + "".join(
        f"{t}, {1 if i == 7 else 0}\n" for i, t in enumerate(TIMES)))
    assert np.flatnonzero(read_labels(flags).rows(TIMES, tmp_path / "a.csv")).tolist() == [7]
    normal = tmp_path / "normal.csv"  # no file column, every row normal: no anomaly anywhere
    normal.write_text("timestamp,anomaly\n" + "".join(f"{t},0\n" for t in TIMES[:5]))
    assert not read_labels(normal).rows(TIMES, tmp_path / "any.csv").any()


def test_labels_for_every_file_add_to_each_files_own(tmp_path):
    """A labels CSV row with an empty `file` cell labels every file, beside their own rows."""
    path = tmp_path / "labels.csv"
    path.write_text(f"file,start,end\na.csv,{TIMES[20]},{TIMES[24]}\n,{TIMES[35]},{TIMES[36]}\n")
    labels = read_labels(path)
    assert np.flatnonzero(labels.rows(TIMES, tmp_path / "a.csv")).tolist() == [
        20, 21, 22, 23, 24, 35, 36]
    # b.csv has no key: with files keyed by name, a misspelt key (sny.csv) must not leave it
    # with the shared windows alone, its own anomalies read as normal
    with pytest.raises(ValueError, match=r"no entry for .*b\.csv.*add to each file's own; they do "
                                         r"not stand in for a file's key.*a row b\.csv,,"):
        labels.rows(TIMES, tmp_path / "b.csv")
    path.write_text(path.read_text() + "b.csv,,\n")  # listed without windows of its own
    assert np.flatnonzero(read_labels(path).rows(TIMES, tmp_path / "b.csv")).tolist() == [35, 36]


@pytest.mark.parametrize("text, message", [
    (f"start,end\n{TIMES[1]},{TIMES[2]}\n,{TIMES[3]}\n", "line 3: no start (an empty cell)"),
    (f"file,start,end\na.csv,{TIMES[1]},{TIMES[2]}\na.csv\n",
     "line 3: 1 cells where the header has 3"),
    ("file,start,end\n", "have a header (end, file, start) but no label rows"),
])
def test_labels_csv_rows_with_missing_cells_are_named(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_labels(path)


def test_a_data_file_the_labels_do_not_name_is_an_error(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"cat/a.csv": []}))
    with pytest.raises(ValueError, match="have no entry for") as refused:
        read_labels(path).rows(TIMES, tmp_path / "other.csv")
    assert '"other.csv": [] in JSON, a row other.csv,, in a CSV' in str(refused.value)
    with pytest.raises(ValueError, match=r"no time column to match them to .* mark its anomalous "
                                         r"rows in a 0/1 label column of the file itself"):
        read_labels(path).rows(None, tmp_path / "cat" / "a.csv")


def test_a_name_several_keys_end_in_is_refused_as_ambiguous(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(f"file,start,end\nvalve1/1.csv,{TIMES[1]},{TIMES[2]}\n"
                    f"valve2/1.csv,{TIMES[3]},{TIMES[4]}\n")
    with pytest.raises(ValueError, match=r"2 keys end in '1.csv' \(\['valve1/1.csv', "
                                         r"'valve2/1.csv'\]\) and none matches"):
        read_labels(path).rows(TIMES, tmp_path / "copy" / "1.csv")
    root = tmp_path / "data"
    (root / "valve2").mkdir(parents=True)
    assert np.flatnonzero(read_labels(path).rows(TIMES, root / "valve2" / "1.csv", root)).tolist() \
        == [3, 4]


def test_keys_and_headers_as_other_tools_write_them(tmp_path):
    """File keys with backslashes or a leading ./, and a header in capitals, are read."""
    path = tmp_path / "labels.csv"
    path.write_text(f"File,Start,End\n.\\cat\\a.csv,{TIMES[1]},{TIMES[2]}\n")
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    assert np.flatnonzero(read_labels(path).rows(TIMES, root / "cat" / "a.csv", root)).tolist() \
        == [1, 2]
    both = tmp_path / "both.json"  # one file under two spellings: refused, not merged
    both.write_text(json.dumps({"cat/a.csv": [TIMES[1]], "./cat/a.csv": [TIMES[7]]}))
    with pytest.raises(ValueError, match=r"give one file's windows under two keys, 'cat/a.csv' "
                                         r"and './cat/a.csv'"):
        read_labels(both)
    as_json = tmp_path / "labels.json"
    as_json.write_text(json.dumps({"./cat/a.csv": [TIMES[7]]}))
    assert np.flatnonzero(read_labels(as_json).rows(TIMES, root / "cat" / "a.csv", root)).tolist() \
        == [7]


def test_labels_that_fall_on_no_row_while_others_do_are_warned_of(tmp_path, caplog):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a.csv": [TIMES[3], "2014-02-19 10:07:30",
                                          ["2051-01-01 00:00:00", "2051-01-02 00:00:00"]]}))
    with caplog.at_level("WARNING", logger="vigil"):
        flags = read_labels(path).rows(TIMES, tmp_path / "a.csv")
    assert np.flatnonzero(flags).tolist() == [3]
    assert ("2 of the 3 label window(s) or point(s) that" in caplog.text
            and "1 lie between two rows (a point must be a row's own time: give a window around "
                "it) and 1 outside its times" in caplog.text)
    # windows for every file fall outside some files' times by design: not warned of
    caplog.clear()
    shared = tmp_path / "shared.csv"
    shared.write_text(f"start,end\n{TIMES[5]},{TIMES[6]}\n2051-01-01,2051-01-02\n")
    with caplog.at_level("WARNING", logger="vigil"):
        assert np.flatnonzero(read_labels(shared).rows(TIMES, tmp_path / "b.csv")).tolist() == [5, 6]
    assert caplog.text == ""


def test_a_labels_csv_lists_a_file_without_anomalies_by_a_row_without_a_window(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(f"file,start,end\na.csv,{TIMES[1]},{TIMES[2]}\nb.csv,,\n")
    labels = read_labels(path)
    assert not labels.rows(TIMES, tmp_path / "b.csv").any()
    assert labels.rows(TIMES, tmp_path / "a.csv")[1:3].all()


def test_nab_root_is_recognized(tmp_path):
    root = write_nab_like(tmp_path / "nab")
    data, labels = nab_labels(root)
    assert data == root / "data"
    flags = labels.rows(TIMES, data / "realThings" / "one.csv", data)
    assert np.flatnonzero(flags).tolist() == list(range(29, 35))
    assert nab_labels(tmp_path) is None


def test_labeled_rows_are_never_trained_on(tmp_path):
    from vigil.training.sensor_data import DataOptions, prepare

    root = write_nab_like(tmp_path / "nab")
    data = prepare(root, DataOptions(window=4, validation_fraction=0.25))
    assert not (data.train == 5.0).any(), "a training window holds a labeled row"
    assert (data.train_rows != 5.0).all()
    # 45 training rows give 42 windows of 4; the 9 that touch the labeled rows 29-34 are left out.
    assert len(data.train) == 42 - 9


def test_vigil_eval_with_a_labels_file_and_with_a_nab_root(tiny_sensor, tmp_path, capsys):
    from vigil.cli import commands as cli

    root = write_nab_like(tmp_path / "nab")
    out = tmp_path / "metrics.json"
    code = cli.main(["eval", str(tiny_sensor), str(root / "data" / "realThings" / "one.csv"),
                     "--labels", str(root / "labels" / "combined_windows.json"),
                     "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    by_file = json.loads(out.read_text())
    assert by_file["anomalous_rows"] == 6 and by_file["f1"] > 0 and by_file["event_f1"] == 1.0
    code = cli.main(["eval", str(tiny_sensor), str(root), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["anomalous_rows"] == 6
    # the report's command to try another threshold takes the run's labels (it was refused)
    report = tmp_path / "report"
    code = cli.main(["eval", str(tiny_sensor), str(root / "data" / "realThings" / "one.csv"),
                     "--labels", str(root / "labels" / "combined_windows.json"),
                     "--no-likelihood", "--report", str(report), "--threshold", "1e9"])
    assert code == 0, capsys.readouterr().err
    suggested = [line.strip() for line in (report / "report.md").read_text().splitlines()
                 if line.strip().startswith("vigil eval")]
    assert len(suggested) == 1, (report / "report.md").read_text()
    argv = shlex.split(suggested[0])[1:]
    assert argv[argv.index("--labels") + 1] == str(root / "labels" / "combined_windows.json")
    assert "--no-likelihood" in argv
    capsys.readouterr()
    assert cli.main(argv + ["--json", str(out)]) == 0
    assert json.loads(out.read_text())["f1"] > 0  # the threshold it offers catches something
    code = cli.main(["eval", str(tiny_sensor), str(root / "data"), "--labels",
                     str(tmp_path / "missing.json")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_with_a_labels_file_the_datas_own_label_column_is_not_read(tiny_sensor, tmp_path, capsys):
    from vigil.cli import commands as cli

    root = write_nab_like(tmp_path / "nab")
    data = root / "data" / "realThings" / "one.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join([lines[0] + ",anomaly"] + [line + (",pending" if i == 3 else ",0")
                                                         for i, line in enumerate(lines[1:])]))
    out = tmp_path / "metrics.json"
    code = cli.main(["eval", str(tiny_sensor), str(data), "--labels",
                     str(root / "labels" / "combined_windows.json"), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["anomalous_rows"] == 6


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_result_file_that_cannot_be_written_keeps_the_printed_metrics(tiny_sensor, tmp_path,
                                                                       capsys):
    from vigil.cli import commands as cli

    root = write_nab_like(tmp_path / "nab")
    code = cli.main(["eval", str(tiny_sensor), str(root), "--json", "/dev/full"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_OUTPUT and Path("/dev/full").is_char_device()
    assert json.loads(captured.out)["f1"] > 0
    assert "cannot be written (--json /dev/full: No space left on device)" in captured.err
    out = tmp_path / "deep" / "metrics.json"  # written whole through a temporary file
    assert cli.main(["eval", str(tiny_sensor), str(root), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["anomalous_rows"] == 6
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]
    out.chmod(0o600)  # a link to it is written through, the file keeps its mode
    link = tmp_path / "link.json"
    link.symlink_to(out)
    out.write_text("{}")
    assert cli.main(["eval", str(tiny_sensor), str(root), "--json", str(link)]) == 0
    assert link.is_symlink() and json.loads(out.read_text())["anomalous_rows"] == 6
    assert out.stat().st_mode & 0o777 == 0o600


def test_times_without_a_zone_are_utc_whatever_the_devices_zone(monkeypatch):
    """On a device set to Berlin time, 02:00-03:00 on 2024-03-31 does not exist locally: read as
    local time, minutes of a UTC log would come out of order and label windows would break."""
    import time

    from vigil.runtime.sensor.tables import time_key

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        minutes = [f"2024-03-31T{h:02d}:{m:02d}:00" for h in (1, 2, 3) for m in range(0, 60, 10)]
        keys = [time_key(t)[1] for t in minutes]
        assert np.all(np.diff(keys) == 600.0)
        assert time_key("2024-03-31T02:30:00+00:00") == time_key("2024-03-31T02:30:00")
        path_labels = read_labels_text("start,end\n2024-03-31T02:30:00,2024-03-31T03:10:00\n")
        assert path_labels.windows["*"] == (("2024-03-31T02:30:00", "2024-03-31T03:10:00"),)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def read_labels_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.csv"
        path.write_text(text)
        return read_labels(path)


def test_training_warns_when_its_threshold_would_catch_nothing_labeled():
    pytest.importorskip("tensorflow")
    from vigil.runtime.core.spec import Threshold
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.train_sensor import validation_check

    rng = np.random.default_rng(0)
    labels = np.zeros(200, dtype=bool)
    labels[150:170] = True
    scores = rng.normal(1.0, 0.1, 200) + labels * 0.8  # separable: AUROC near 1
    high = Threshold(5.0, "gaussian")
    check, warnings = validation_check(scores, labels, high, ThresholdMethod.GAUSSIAN)
    assert check["caught"] == 0 and check["labeled_windows"] == 20 and check["auroc"] > 0.95
    assert len(warnings) == 1 and "--threshold-method f1" in warnings[0] and "catches 0 of 20" in warnings[0]
    fitting = Threshold(1.5, "gaussian")
    check, warnings = validation_check(scores, labels, fitting, ThresholdMethod.GAUSSIAN)
    assert check["caught"] == 20 and warnings == []
    assert validation_check(scores, np.zeros(200, bool), high, ThresholdMethod.GAUSSIAN) == (None, [])


def test_a_nan_validation_score_counts_as_an_alarm_as_on_the_device():
    """The runtime reads a NaN score as +inf, an alarm: the validation check counted it as
    none, so labeled windows the device would catch were reported missed."""
    pytest.importorskip("tensorflow")
    from vigil.runtime.core.spec import Threshold
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.train_sensor import validation_check

    labels = np.zeros(200, dtype=bool)
    labels[150:170] = True
    scores = np.where(labels, np.nan, np.linspace(0.0, 1.0, 200))
    check, _ = validation_check(scores, labels, Threshold(5.0, "gaussian"),
                                ThresholdMethod.GAUSSIAN)
    assert check["caught"] == 20 and check["false_alarms"] == 0 and check["f1"] == 1.0
    # the cuts searched among the scores stay finite: a command line takes them (review d1)
    check, warnings = validation_check(scores, labels, Threshold(0.3, "gaussian"),
                                       ThresholdMethod.GAUSSIAN)
    assert all(np.isfinite(check[key]) for key in ("f1_optimal_threshold", "f1_method_threshold"))
    assert check["f1_optimal"] == 1.0 and not any("inf" in w for w in warnings)


def test_the_f1_threshold_training_recommends_gives_its_f1_above_it():
    """The runtime alarms above its threshold: the F1-optimal threshold training names must give
    the F1 it promises when used so (a score equal to the cut is not an alarm)."""
    pytest.importorskip("tensorflow")
    from vigil.runtime.core import metrics
    from vigil.runtime.core.spec import Threshold
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.train_sensor import validation_check

    scores = np.round(np.arange(0.1, 1.15, 0.1), 2)
    labels = np.zeros(len(scores), dtype=bool)
    labels[-3:] = True  # the scores 0.9, 1.0, 1.1
    check, warnings = validation_check(scores, labels, Threshold(5.0, "gaussian"),
                                       ThresholdMethod.GAUSSIAN)
    cut = check["f1_optimal_threshold"]
    assert check["f1_optimal"] == 1.0 and 0.8 <= cut < 0.9
    assert metrics.counts(scores > cut, labels).f1 == 1.0
    assert len(warnings) == 1 and f"({cut:.4g})" in warnings[0]


def test_training_recommends_no_threshold_that_only_alarms_on_everything():
    """Scores that do not separate the labels: the best F1 is alarming on every window, which
    training must not recommend; a threshold that flags every normal window is said."""
    pytest.importorskip("tensorflow")
    from vigil.runtime.core.spec import Threshold
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.train_sensor import validation_check

    rng = np.random.default_rng(1)
    labels = np.zeros(800, dtype=bool)
    labels[300:540] = True
    scores = rng.normal(1.0, 0.1, 800)  # labels unrelated to the scores: AUROC near 0.5
    check, warnings = validation_check(scores, labels, Threshold(5.0, "gaussian"),
                                       ThresholdMethod.GAUSSIAN)
    always = 2 * 240 / (2 * 240 + 560)
    assert check["f1_alarming_always"] == pytest.approx(always)
    assert check["f1_optimal"] <= always + 0.01
    assert len(warnings) == 1 and "--threshold-method f1" not in warnings[0]
    assert "no threshold gives a better F1 than alarming on every window" in warnings[0]
    check, warnings = validation_check(scores, labels, Threshold(-1.0, "f1"), ThresholdMethod.F1)
    assert check["false_alarms"] == check["normal_windows"] == 560
    assert any("alarms on every one of the 560 normal validation windows" in w for w in warnings)


def test_training_quotes_the_f1_threshold_the_flag_fits_and_never_one_alarming_mostly():
    """Review u1 (two SKAB valve1 files): training quoted an F1-optimal threshold of -0.107 (F1
    0.540) over every held-out window, but --threshold-method f1 fits without the windows that
    only touch a labeled row, and fitted -0.743, which alarmed on 63 % of the normal validation
    windows holding no labeled row and 86 % of normal rows in other files. The warning now
    quotes the fitted threshold, judged on every window, with its shares of the normal windows
    apart from those just after an anomaly (review d2), and recommends none that alarms on more
    than half of normal operation."""
    pytest.importorskip("tensorflow")
    from vigil.runtime.core.spec import Threshold
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.train_sensor import CalibrationOptions, fit_threshold, validation_check

    rng = np.random.default_rng(0)
    gaussian = Threshold(5.0, "gaussian")
    # normal operation half like the anomalies: the fitted threshold alarms on most of it
    labeled = rng.uniform(0.5, 1.0, 100)
    clean = np.concatenate([rng.uniform(0.5, 1.0, 120), rng.uniform(0.0, 0.3, 80)])
    scores = np.concatenate([labeled, clean])
    labels = np.r_[np.ones(100, bool), np.zeros(200, bool)]
    use = np.ones(300, bool)
    fitted = fit_threshold(CalibrationOptions(method="f1"), scores[use], labels[use]).value
    check, warnings = validation_check(scores, labels, gaussian, ThresholdMethod.GAUSSIAN, use)
    assert check["f1_method_threshold"] == fitted
    assert check["f1_method_false_alarm_rate"] == pytest.approx(120 / 200)
    assert check["f1_method_alarmed_after_anomalies"] is None
    assert len(warnings) == 1 and f"--threshold-method f1 would fit {fitted:.4g}" in warnings[0]
    assert ("alarms on 60.0 % of the 200 normal validation windows that hold no labeled row: "
            "more than half, so it is not recommended either") in warnings[0]
    assert "train with --threshold-method f1" not in warnings[0]
    assert f"vigil eval --threshold {check['f1_optimal_threshold']:.6g}" in warnings[0]
    # trained with the flag anyway: said
    _, warnings = validation_check(scores, labels, Threshold(fitted, "f1"), ThresholdMethod.F1,
                                   use)
    assert any("alarms on 60.0 % of the 200 normal validation windows that hold no labeled row"
               in w and "alarming on most normal operation" in w for w in warnings)
    # the windows that only touch a labeled row score high, normal operation low: the fit is
    # recommended, each share said apart (review d2: they were pooled, 70 %)
    after = rng.uniform(0.5, 1.0, 140)
    clean = rng.uniform(0.0, 0.3, 60)
    scores = np.concatenate([rng.uniform(0.4, 1.0, 100), after, clean])
    labels = np.r_[np.ones(100, bool), np.zeros(200, bool)]
    use = np.r_[np.ones(100, bool), np.zeros(140, bool), np.ones(60, bool)]
    fitted = fit_threshold(CalibrationOptions(method="f1"), scores[use], labels[use]).value
    check, warnings = validation_check(scores, labels, gaussian, ThresholdMethod.GAUSSIAN, use)
    assert check["f1_method_threshold"] == fitted
    assert check["f1_method_false_alarm_rate"] == 0.0
    assert check["f1_method_alarmed_after_anomalies"] == 1.0
    assert check["f1_method_f1"] == pytest.approx(200 / (200 + 140))
    assert len(warnings) == 1 and "train with --threshold-method f1 to use it" in warnings[0]
    assert ("alarms on 0.0 % of the 60 normal validation windows that hold no labeled row (and "
            "100.0 % of the 140 that end just after one)") in warnings[0]


def test_training_says_when_the_f1_fit_does_no_better_than_alarming_always():
    """Review d2: the best cut separates (AUROC 1) but the flag's fit, without the windows after
    an anomaly, does no better than alarming always; training said no threshold separates the
    windows. Now it says the flag's fit is not recommended and names the in-sample cut."""
    pytest.importorskip("tensorflow")
    from vigil.runtime.core.spec import Threshold
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.train_sensor import validation_check

    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.uniform(0.6, 1.0, 100), rng.uniform(0.46, 0.55, 200),
                             rng.uniform(0.0, 0.3, 5)])
    labels = np.r_[np.ones(100, bool), np.zeros(205, bool)]
    use = np.r_[np.ones(100, bool), np.zeros(200, bool), np.ones(5, bool)]
    check, warnings = validation_check(scores, labels, Threshold(5.0, "gaussian"),
                                       ThresholdMethod.GAUSSIAN, use)
    assert check["auroc"] == 1.0 and check["f1_optimal"] == 1.0
    assert len(warnings) == 1 and "do not tell labeled windows" not in warnings[0]
    assert "which does no better than alarming on every window" in warnings[0]
    assert "so it is not recommended" in warnings[0]
    assert f"vigil eval --threshold {check['f1_optimal_threshold']:.6g}" in warnings[0]


def test_eval_says_when_labels_miss_the_data_or_no_window_fits(tiny_sensor, tmp_path, caplog):
    from vigil import runtime
    from vigil.runtime.sensor.evaluation import evaluate

    detector = runtime.load(tiny_sensor)
    data = tmp_path / "one.csv"
    data.write_text("timestamp,a,b,c\n" + "".join(f"{t},0.1,0.2,0.{i % 9}\n"
                                                  for i, t in enumerate(TIMES)))
    far = tmp_path / "far.csv"
    far.write_text("start,end\n2030-01-01 00:00:00,2030-01-01 01:00:00\n")
    evaluate(detector, data, labels=read_labels(far))
    assert "none of the 1 label window(s) or point(s)" in caplog.text
    assert "2014-02-19 10:00:00 .. 2014-02-19 10:59:00" in caplog.text
    # the metrics' warning points back to the labels given, not to the flag given already
    assert "the labels give these files 1 window(s) or point(s), none of which falls" in caplog.text
    caplog.clear()
    normal = tmp_path / "normal.json"  # a file labeled normal throughout, by design
    normal.write_text(json.dumps({"one.csv": []}))
    evaluate(detector, data, labels=read_labels(normal))
    assert "the labels mark these files normal throughout" in caplog.text
    assert "give the labels: --label-column" not in caplog.text
    # the data's own label column beside a labels file: where it marks other rows, said
    caplog.clear()
    marked = tmp_path / "marked.csv"
    marked.write_text("timestamp,a,b,c,anomaly\n" + "".join(
        f"{t},0.1,0.2,0.{i % 9},{int(i in (20, 21))}\n" for i, t in enumerate(TIMES)))
    evaluate(detector, marked, labels=read_labels(far))
    assert "its column 'anomaly' marks 2 row(s) the labels" in caplog.text
    # a label column that marks every row, or holds -1 (scikit-learn's outliers)
    for cells, said in (("1", "every one of its 60 rows is labeled anomalous"),
                        ("-1 if i % 2 else 1", "holds -1, which reads as anomalous")):
        caplog.clear()
        marked.write_text("timestamp,a,b,c,anomaly\n" + "".join(
            f"{t},0.1,0.2,0.{i % 9},{eval(cells)}\n" for i, t in enumerate(TIMES)))
        evaluate(detector, marked)
        assert said in caplog.text
    short = tmp_path / "short.csv"
    short.write_text("timestamp,a,b,c,anomaly\n1,0.1,0.2,0.3,0\n2,0.1,0.2,0.3,1\n")
    with pytest.raises(ValueError, match=r"no window could be scored: 2 rows in 1 file, each "
                                         r"shorter than the model's window of 4 rows"):
        evaluate(detector, short)


def test_windows_that_only_touch_a_labeled_row_set_no_normal_statistic(tmp_path):
    """A window that holds a labeled spike but ends after it is neither normal nor an anomaly:
    counted as normal, such windows set the threshold above every labeled one."""
    pytest.importorskip("tensorflow")
    import csv

    from vigil.training.checkpoint import load_run
    from vigil.training.sensor_data import DataOptions
    from vigil.training.sensor_model import ModelOptions
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    rng = np.random.default_rng(0)
    n = 1600
    t = np.arange(n)
    a = np.sin(2 * np.pi * t / 50) + 0.05 * rng.normal(size=n)
    b = np.cos(2 * np.pi * t / 80) + 0.05 * rng.normal(size=n)
    fault = np.zeros(n, int)
    for start in (500, 1250, 1350, 1450, 1540):  # one spike in training, four in validation
        a[start:start + 3] += 6.0
        fault[start:start + 3] = 1
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "a", "b", "fault"])
        writer.writerows([i, f"{a[i]:.5f}", f"{b[i]:.5f}", fault[i]] for i in range(n))
    options = SensorTrainingOptions(data=DataOptions(label_column="fault", window=24),
                                    model=ModelOptions(units=8, epochs=2, members=1))
    result = train_sensor(data, tmp_path / "m.keras", options, verbose=0)
    run = load_run(tmp_path / "m.keras")
    assert run.validation_clean is not None  # kept in the sidecar, for export's refit
    touched = ~run.validation_clean & ~run.validation_labels
    assert touched.sum() > 20  # the windows after each spike that still hold it
    assert len(run.normal_validation) == int(run.validation_clean.sum())
    check = result.validation  # fitted on the clean windows and the labeled ones; judged as
    assert check["normal_windows"] == int((~run.validation_labels).sum())  # vigil eval does
    assert f"without the {int(touched.sum())} window(s) that hold a labeled row" in (
        check["note_fitted"])
    assert check["caught"] >= check["labeled_windows"] // 2, check  # before the fix: none
    # the artifact remembers its label column: `vigil eval` reads it without --label-column
    from vigil.cli import commands as cli

    artifact = tmp_path / "m.onnx"
    assert cli.main(["export", str(tmp_path / "m.keras"), "-o", str(artifact), "--precision",
                     "fp32", "--quiet"]) == 0
    assert cli.main(["eval", str(artifact), str(data), "--quiet"]) == 0


def test_a_time_column_named_otherwise_than_in_training_is_found(tiny_sensor, tmp_path, capsys):
    """The model's time column is `timestamp`; a file calling it `time` is still matched to the
    labels by its times."""
    from vigil.cli import commands as cli

    root = write_nab_like(tmp_path / "nab")
    data = root / "data" / "realThings" / "one.csv"
    data.write_text(data.read_text().replace("timestamp,", "time,", 1))
    out = tmp_path / "metrics.json"
    code = cli.main(["eval", str(tiny_sensor), str(data), "--labels",
                     str(root / "labels" / "combined_windows.json"), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["anomalous_rows"] == 6


def spiky_csv(path: Path, label: str | None = "anomaly", times=TIMES) -> Path:
    """timestamp,a,b,c rows with a spike at rows 30-32, marked in a column ``label``."""
    header = "timestamp,a,b,c" + (f",{label}" if label else "")
    rows = [header]
    for i, time in enumerate(times):
        value = 5.0 if i in (30, 31, 32) else 0.1 + 0.01 * (i % 3)
        rows.append(f"{time},{value},{value},{value}" + (f",{int(i in (30, 31, 32))}"
                                                           if label else ""))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("label", ["Anomaly", "label", "IS_ANOMALY"])
def test_a_label_column_in_another_spelling_is_read_as_labels_not_trained_on(tmp_path, label):
    from vigil.training.sensor_data import DataOptions, prepare

    data = prepare(spiky_csv(tmp_path / "x.csv", label), DataOptions(window=4,
                                                                     validation_fraction=0.25))
    assert data.features == ("a", "b", "c")
    assert not (data.train == 5.0).any(), "a training window holds a labeled row"
    with pytest.raises(ValueError, match=r"`features` names 'anomaly', the label column"):
        prepare(spiky_csv(tmp_path / "y.csv"), DataOptions(window=4, features=("a", "anomaly")))
    both = tmp_path / "both.csv"  # two names that could be the label, neither the default
    both.write_text(spiky_csv(tmp_path / "z.csv", "is_anomaly").read_text().replace(
        "timestamp,a,", "timestamp,Label,", 1))
    with pytest.raises(ValueError, match=r"could each be the label column; name the one"):
        prepare(both, DataOptions(window=4))


def test_labels_on_times_that_cannot_be_read_or_in_another_zone_are_told(tmp_path, caplog):
    from vigil.training.sensor_data import DataOptions, prepare

    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,start,end\nx.csv,{TIMES[29]},{TIMES[33]}\n")
    american = tuple(f"02/19/2014 10:{m:02d}:00" for m in range(60))
    with pytest.raises(ValueError, match=r"are neither numbers nor ISO 8601, so no label can be "
                                         r"matched to a row; write them in ISO 8601"):
        prepare(spiky_csv(tmp_path / "x.csv", None, american),
                DataOptions(window=4, labels=str(labels)))
    zoned = tuple(t.replace(" ", "T") + "+01:00" for t in TIMES)
    prepare(spiky_csv(tmp_path / "x.csv", None, zoned), DataOptions(window=4, labels=str(labels)))
    assert "its times carry a time zone and the labels'" in caplog.text


def test_a_bare_file_name_that_several_data_files_share_is_refused(tmp_path):
    from vigil.training.sensor_data import DataOptions, prepare

    for folder in ("valve1", "valve2"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        spiky_csv(tmp_path / "data" / folder / "1.csv", None)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"1.csv": [[TIMES[29], TIMES[33]]]}))
    with pytest.raises(ValueError, match=r"key '1.csv' names no folder, and the data folder "
                                         r"holds 2 files it would name"):
        prepare(tmp_path / "data", DataOptions(window=4, labels=str(labels)))
    labels.write_text(json.dumps({"valve1/1.csv": [[TIMES[29], TIMES[33]]],
                                  "valve2/1.csv": []}))
    data = prepare(tmp_path / "data", DataOptions(window=4, labels=str(labels)))
    assert (data.train == 5.0).any(), "valve2's spike is unlabeled: trained on, as keyed"
    # what the artifact records: files told apart by folder, the rows left out, the labels file
    assert [(f["name"], f["labeled_rows"]) for f in data.files] == [("valve1/1.csv", 5),
                                                                     ("valve2/1.csv", 0)]
    assert data.labels["from"] == "labels file" and data.labels["labeled_rows"] == 5
    assert data.labels["path"] == str(labels.resolve()) and len(data.labels["sha256"]) == 64


def test_a_file_whose_windows_fall_on_none_of_its_rows_is_named_alone(tmp_path, caplog):
    """One file's windows typed in another year are warned of by name (its anomalies would be
    trained on), while a file listed without windows, the way to say "no anomaly", is not."""
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a.csv": [[TIMES[20], TIMES[24]]],
                                "b.csv": [[TIMES[20].replace("2014", "2013"),
                                           TIMES[24].replace("2014", "2013")]],
                                "c.csv": []}))
    labels = read_labels(path)
    assert labels.rows(TIMES, tmp_path / "a.csv").sum() == 5 and not caplog.records
    assert labels.rows(TIMES, tmp_path / "c.csv").sum() == 0 and not caplog.records
    assert labels.rows(TIMES, tmp_path / "b.csv").sum() == 0
    (warning,) = caplog.records
    assert "b.csv: none of the 1 label window(s) or point(s)" in warning.getMessage()
    assert "2013-02-19 10:20:00 .. 2013-02-19 10:24:00" in warning.getMessage()


def test_a_window_without_an_end_is_refused_and_a_date_alone_is_its_whole_day(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(f"file,start,end\na.csv,{TIMES[5]},\n")
    with pytest.raises(ValueError, match=r"line 2: a start .* but no end \(an empty cell\)"):
        read_labels(path)
    times = tuple(f"2014-02-{d:02d} {h:02d}:00:00" for d in (18, 19, 20) for h in range(24))
    path.write_text("start,end\n2014-02-19,2014-02-19\n")
    assert np.flatnonzero(read_labels(path).rows(times, tmp_path / "a.csv")).tolist() == list(
        range(24, 48))  # every hour of the 19th, none of the 18th or the 20th
    days = tmp_path / "days.json"
    days.write_text(json.dumps({"a.csv": ["2014-02-20"]}))  # a point that is a date: the day
    assert np.flatnonzero(read_labels(days).rows(times, tmp_path / "a.csv")).tolist() == list(
        range(48, 72))


def test_training_with_a_labels_file_does_not_read_the_datas_label_column(tmp_path, caplog):
    """As `vigil eval` does not: the labels file alone says which rows are anomalous, a bad cell
    in the column blocks nothing, and the column stays out of the features."""
    from vigil.training.sensor_data import DataOptions, labeled_tables

    data = tmp_path / "one.csv"
    flagged = {40, 41, 42, 50}  # rows the column marks, which the labels file does not
    data.write_text("timestamp,a,b,anomaly\n" + "".join(
        f"{t},{0.1 + 0.01 * (i % 3)},0.2,{'maybe' if i == 7 else int(i in flagged)}\n"
        for i, t in enumerate(TIMES)))
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,start,end\none.csv,{TIMES[20]},{TIMES[24]}\n")
    (table,) = labeled_tables(data, DataOptions(labels=str(labels)))
    assert np.flatnonzero(table.labels).tolist() == [20, 21, 22, 23, 24]
    assert table.features == ("a", "b") and table.label_column == "anomaly"
    (warning,) = [r for r in caplog.records if "is not read" in r.getMessage()]
    assert "its column 'anomaly' marks 4 row(s) the labels" in warning.getMessage()
    # the column in another spelling is still found, and kept out of the features
    for spelling in ("label", "Anomaly", "is_anomaly"):
        text = data.read_text().splitlines()
        renamed = tmp_path / f"{spelling}.csv"
        renamed.write_text("\n".join([text[0].replace("anomaly", spelling)] + text[1:]) + "\n")
        other = tmp_path / f"labels-{spelling}.csv"
        other.write_text(f"file,start,end\n{spelling}.csv,{TIMES[20]},{TIMES[24]}\n")
        (table,) = labeled_tables(renamed, DataOptions(labels=str(other)))
        assert table.features == ("a", "b") and table.label_column == spelling


def test_a_label_column_named_in_another_case_is_found_in_training(tmp_path):
    from vigil.training.sensor_data import DataOptions, labeled_tables

    data = tmp_path / "one.csv"
    data.write_text("timestamp,a,fault\n" + "".join(
        f"{t},{0.1 + 0.01 * (i % 3)},{int(i in (30, 31))}\n" for i, t in enumerate(TIMES)))
    (table,) = labeled_tables(data, DataOptions(label_column="Fault"))
    assert table.label_column == "fault" and table.features == ("a",)
    assert np.flatnonzero(table.labels).tolist() == [30, 31]


def test_training_says_when_every_labeled_row_lies_in_the_training_part(caplog):
    from types import SimpleNamespace

    from vigil.training.sensor_data import _say_unchecked_labels

    class Part(SimpleNamespace):
        def __len__(self):
            return len(self.labels)

    early = np.zeros(100, bool)
    early[10:14] = True  # in the first 80 rows: kept out of training, never held out
    with caplog.at_level("WARNING", logger="vigil"):
        _say_unchecked_labels([Part(labels=early)], 0.2, np.zeros(5, bool))
    assert "4 labeled anomalous row(s) lie in the training part" in caplog.text
    assert "the threshold is not checked against them" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vigil"):
        _say_unchecked_labels([Part(labels=early)], 0.2, np.array([False, True]))  # held out too
        _say_unchecked_labels([Part(labels=np.zeros(100, bool))], 0.2, np.zeros(5, bool))
    assert caplog.text == ""


def test_one_file_named_by_two_keys_with_windows_is_refused(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"data/a.csv": [TIMES[1]], "a.csv": [TIMES[7]]}))
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(ValueError, match=r"keys \['a.csv', 'data/a.csv'\] all name .*a.csv.*, "
                                         r"each with windows"):
        read_labels(path).rows(TIMES, root / "a.csv", tmp_path)


def test_a_label_written_with_a_decimal_comma_points_to_the_decimal_flag():
    """eval advised --label-column for a label of 0,0; --decimal , was the fix."""
    from vigil.runtime.sensor.tables import label_value

    value, problem = label_value("0,0")
    assert value is None and "give --decimal , to read the file's numbers" in problem
    assert label_value("1,0", ",") == (1.0, None)
    assert "decimal" not in label_value("maybe")[1]


def test_a_key_with_folders_that_ends_several_files_paths_is_refused(tmp_path):
    """valve1/4.csv named both lineA/valve1/4.csv and lineB/valve1/4.csv, labeling each alike
    without a word (review hD, session 61), where a bare 4.csv was refused."""
    for line in ("lineA", "lineB"):
        (tmp_path / "plants" / line / "valve1").mkdir(parents=True)
        spiky_csv(tmp_path / "plants" / line / "valve1" / "4.csv", None)
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"valve1/4.csv": [[TIMES[29], TIMES[33]]]}))
    labels = read_labels(path)
    with pytest.raises(ValueError, match=r"key 'valve1/4.csv' is not a path from the data folder, "
                                         r"and the data folder holds 2 files it would name"):
        labels.rows(TIMES, tmp_path / "plants" / "lineA" / "valve1" / "4.csv", tmp_path / "plants")
    # the same key given the folder that holds one such file names it alone
    assert labels.rows(TIMES, tmp_path / "plants" / "lineA" / "valve1" / "4.csv",
                       tmp_path / "plants" / "lineA").sum() == 5


def test_an_end_written_to_the_minute_takes_in_that_whole_minute(tmp_path):
    """A window ending at 10:01 ended at 10:01:00, cutting the minute's other rows (review hD):
    an end, or a point, means the last instant its text names, as a date alone means its day."""
    times = tuple(f"2014-02-19 10:{s // 60:02d}:{s % 60:02d}" for s in range(180))
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a.csv": [["2014-02-19 10:00:30", "2014-02-19 10:01"],
                                          "2014-02-19T10:02:10.000"]}))
    flags = read_labels(path).rows(times, tmp_path / "a.csv")
    assert np.flatnonzero(flags).tolist() == list(range(30, 120)) + [130]
    path.write_text(json.dumps({"a.csv": [["2014-02-19 10:00:30", "2014-02-19 10:00:40"]]}))
    assert read_labels(path).rows(times, tmp_path / "a.csv").sum() == 11  # to the second: 40 in


def test_every_file_is_matched_before_any_is_read_and_unused_keys_are_said(tmp_path, caplog):
    (tmp_path / "data" / "valve1").mkdir(parents=True)
    for name in ("1.csv", "2.csv"):
        spiky_csv(tmp_path / "data" / "valve1" / name, None)
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"valve1/1.csv": [], "valve1/2.csv": [], "valve1/99.csv": [],
                                "otherCorpus/x.csv": []}))
    labels = read_labels(path)
    files = sorted((tmp_path / "data").rglob("*.csv"))
    labels.check_files(files, tmp_path / "data")
    (warning,) = caplog.records  # a key of a folder it holds; not another corpus's
    assert "1 key(s) name no data file" in warning.getMessage()
    assert "'valve1/99.csv'" in warning.getMessage()
    caplog.clear()
    # a run on one category of a corpus whose keys name it (NAB's): only that category's keys
    labels.check_files(files, tmp_path / "data" / "valve1")
    (warning,) = caplog.records
    assert "1 key(s) name no data file" in warning.getMessage()
    assert "'valve1/99.csv'" in warning.getMessage()
    caplog.clear()
    labels.check_files(files[:1], None)  # a file scored alone: no word of the others
    assert not caplog.records
    # a folder of files copied from the category, matched by name: not told of the ones left
    # behind (a review's two NAB files were told of 22 keys "renamed or moved")
    (tmp_path / "picked").mkdir()
    spiky_csv(tmp_path / "picked" / "2.csv", None)
    labels.check_files([tmp_path / "picked" / "2.csv"], tmp_path / "picked")
    assert not caplog.records
    spiky_csv(tmp_path / "data" / "valve1" / "3.csv", None)
    with pytest.raises(ValueError, match="have no entry for"):
        labels.check_files(sorted((tmp_path / "data").rglob("*.csv")), tmp_path / "data")


def test_label_keys_through_links_and_a_key_that_is_another_files_path(tmp_path, caplog):
    """Review hE (session 61): files linked in from elsewhere were matched and recorded by their
    targets' names (valve1/0.csv and valve2/0.csv both 0.csv); a key that is one file's own path
    was refused for another file as "not a path from the data folder"; keys of a folder moved
    away were never warned of."""
    from vigil.training.sensor_data import file_records
    from vigil.runtime.sensor.tables import read_table

    store = tmp_path / "store"
    for name in ("a.csv", "b.csv"):
        spiky_csv(store / name, None) if (store.mkdir(exist_ok=True) or True) else None
    for folder, target in (("valve1", "a.csv"), ("valve2", "b.csv")):
        (tmp_path / "links" / folder).mkdir(parents=True)
        (tmp_path / "links" / folder / "0.csv").symlink_to(store / target)
    files = sorted((tmp_path / "links").rglob("*.csv"))
    tables = [read_table(f) for f in files]
    assert [r["name"] for r in file_records(tables, tmp_path / "links")] == ["valve1/0.csv",
                                                                            "valve2/0.csv"]
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"valve1/0.csv": [[TIMES[29], TIMES[33]]], "valve2/0.csv": [],
                                "lineC/valve1/0.csv": []}))
    labels = read_labels(path)
    assert labels.rows(TIMES, files[0], tmp_path / "links").sum() == 5
    labels.check_files(files, tmp_path / "links")
    assert not caplog.records  # lineC is no folder of it: another corpus's (review hG)
    path.write_text(json.dumps({"valve1/0.csv": [], "valve2/0.csv": [], "valve2/3.csv": []}))
    labels = read_labels(path)
    labels.check_files(files, tmp_path / "links")
    (warning,) = caplog.records
    assert "'valve2/3.csv'" in warning.getMessage()
    caplog.clear()
    (tmp_path / "links" / "x" / "valve1").mkdir(parents=True)
    spiky_csv(tmp_path / "links" / "x" / "valve1" / "0.csv", None)
    with pytest.raises(ValueError, match=r"have no entry for .*x/valve1/0.csv'.*the key "
                                         r"'valve1/0.csv' is the path of"):
        labels.rows(TIMES, tmp_path / "links" / "x" / "valve1" / "0.csv", tmp_path / "links")


def test_event_precision_is_null_where_no_episode_alarmed_as_precision_is(tiny_sensor, tmp_path):
    from vigil import runtime
    from vigil.runtime.sensor.evaluation import evaluate

    detector = runtime.load(tiny_sensor)
    detector.threshold = 1e9  # nothing alarms
    result, _ = evaluate(detector, write_nab_like(tmp_path / "nab"))
    assert result["alarm_runs"] == 0 and result["anomalous_rows"] == 6
    assert result["precision"] is None and result["event_precision"] is None
    assert result["event_recall"] == 0.0


def test_a_labels_csv_time_column_may_be_named_as_a_data_files_is(tmp_path):
    """A row-by-row labels file written from the data's own `datetime` column was refused: a
    labels CSV had to call its time column `timestamp` (a review)."""
    path = tmp_path / "labels.csv"
    path.write_text("DateTime,label\n2014-02-19 10:10:00,1\n2014-02-19 10:11:00,0\n"
                    "2014-02-19 10:12:00,1\n")
    assert np.flatnonzero(read_labels(path).rows(TIMES, tmp_path / "x.csv")).tolist() == [10, 12]
    both = tmp_path / "both.csv"
    both.write_text("date,time,label\n2014-02-19,10:10:00,1\n")
    with pytest.raises(ValueError, match=r"one time column named as a data file's"):
        read_labels(both)
    window = tmp_path / "window.csv"  # a start without its end: named, not a time column
    window.write_text("file,start,time\na.csv,2014-02-19 10:10:00,2014-02-19 10:11:00\n")
    with pytest.raises(ValueError, match=r"needs both start and end columns.*without end"):
        read_labels(window)


def test_a_binary_column_named_like_labels_is_warned_of(caplog):
    """A label column under another name (`attack`) was trained on as a reading, said only at
    INFO among the inputs only (a review)."""
    pytest.importorskip("tensorflow")
    from vigil.training.train_sensor import _warn_label_like

    with caplog.at_level("WARNING", logger="vigil"):
        _warn_label_like({"valve": "binary", "attack": "binary", "mode": "categorical"})
        _warn_label_like({"valve": "binary", "Anomalous_Flag": "constant"})
        _warn_label_like({"valve_default": "binary", "labelled_fault": "binary"})
    assert caplog.text.count("named like labels") == 2  # not `default`'s `fault`
    assert "column(s) 'attack' is binary" in caplog.text and "--label-column attack" in caplog.text
    assert "'labelled_fault' is binary" in caplog.text and "valve_default" not in caplog.text


def test_a_models_label_column_missing_from_a_file_names_the_files_own(tiny_sensor, tmp_path,
                                                                      capsys):
    """A model trained with a `label` column refused files labeled in `anomaly`, the default,
    naming only `label`, which the user never typed (a review)."""
    from vigil.cli import commands as cli

    path = tmp_path / "x.csv"
    path.write_text("timestamp,a,b,c,anomaly\n" + "".join(
        f"{TIMES[i]},0.1,0.2,0.3,{int(i > 30)}\n" for i in range(40)))
    assert cli.main(["eval", str(tiny_sensor), str(path), "--label-column", "label"]) == 2
    error = capsys.readouterr().err
    assert "this file's labels are in 'anomaly': give --label-column anomaly" in error
