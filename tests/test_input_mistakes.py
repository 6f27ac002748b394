"""Mistakes a new user makes with inputs, each refused before any work with what was wrong, what
was expected and how to fix it: data without a header, constant data, files whose columns differ,
a mask folder or image folder that is not one, a model of the wrong kind, the Python API given a
path where a detector belongs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vigil.cli import commands as cli
from vigil.runtime.camera.datasets import folders
from vigil.runtime.sensor.tables import read_table


def write_rows(path, header: str, rows: int, extra: str = "", seed: int = 0):
    rng = np.random.default_rng(seed)
    lines = [header + extra] + [f"{i},{rng.normal():.4f},{rng.normal():.4f}"
                                + ("," + "1" if extra else "") for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_data_without_a_header_is_named_as_such(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("1.5,2.5,3\n2.5,3.5,4\n")
    with pytest.raises(ValueError, match=r"rows.csv: the first line '1.5,2.5,3' is data \(numbers "
                                         r"or times\), not column names; expected a header line"):
        read_table(path)
    path.write_text("2024-01-01T00:00:00,0.5,1\n2024-01-01T00:00:01,0.6,1\n")
    with pytest.raises(ValueError, match=r"is data \(numbers or times\), not column names"):
        read_table(path)


def test_training_on_constant_data_is_refused(tmp_path):
    from vigil.training.sensor_data import DataOptions, prepare

    path = tmp_path / "flat.csv"
    path.write_text("timestamp,a,b\n" + "".join(f"{i},1,2\n" for i in range(200)))
    with pytest.raises(ValueError, match=r"every feature is constant .*a=1, b=2.*nothing to learn"):
        prepare(path, DataOptions(window=8))


def test_a_folder_whose_files_have_different_columns_is_refused_in_any_order(tmp_path):
    from vigil.training.sensor_data import DataOptions, prepare

    for first, second in (("a.csv", "b.csv"), ("b.csv", "a.csv")):
        folder = tmp_path / first.split(".")[0]
        folder.mkdir()
        write_rows(folder / first, "timestamp,x,y", 200)
        write_rows(folder / second, "timestamp,x,y", 200, extra=",extra", seed=1)
        with pytest.raises(ValueError, match=r"(columns \['extra'\] are not in|lacks the columns "
                                             r"\['extra'\] of )"):
            prepare(folder, DataOptions(window=8))
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    write_rows(chosen / "a.csv", "timestamp,x,y", 200)
    write_rows(chosen / "b.csv", "timestamp,x,y", 200, extra=",extra", seed=1)
    data = prepare(chosen, DataOptions(window=8, features=("x", "y")))
    assert data.features == ("x", "y")


def test_mask_and_image_folders_that_are_not_folders_are_refused(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (tmp_path / "note.txt").write_text("x")
    with pytest.raises(ValueError, match=r"`masks` .*nothere' is not a folder; expected the "
                                         r"folder of masks"):
        folders([good], [good], masks=tmp_path / "nothere")
    with pytest.raises(ValueError, match=r"image folder .*note.txt' is a file; expected a folder"):
        folders([tmp_path / "note.txt"])


@pytest.mark.parametrize("args, message", [
    (["export", "m.onnx", "-o", "x.onnx"],
     "`model` must be a .keras model written by `vigil train`; received 'm.onnx'; 'm.onnx' is "
     "already an exported artifact"),
    (["export", "m.keras", "-o", "x.keras"], "`--output` must end in .onnx; received 'x.keras'"),
    (["bench", "m.onnx", "--against", "d.csv"], "`--against` must be a .keras model"),
])
def test_a_model_of_the_wrong_kind_is_refused_before_any_work(args, message, capsys):
    assert cli.main(args) == cli.EXIT_INPUT
    assert message in capsys.readouterr().err


def test_the_python_api_names_a_path_given_where_a_detector_belongs(tmp_path):
    from vigil.runtime import ImageDetector, SensorDetector, StreamingScorer

    for kind in (StreamingScorer, SensorDetector, ImageDetector):
        with pytest.raises(TypeError, match=r"vigil.load\('MODEL.onnx'\).*received str "
                                            r"'m.onnx'"):
            kind("m.onnx")


def test_a_label_column_or_labels_file_that_matches_nothing_is_said(tmp_path, caplog):
    from vigil.training.sensor_data import DataOptions, prepare

    data = write_rows(tmp_path / "rows.csv", "timestamp,x,y", 200)
    with pytest.raises(ValueError, match=r"`label_column` 'status' is in none of the data's "
                                         r"headers"):
        prepare(data, DataOptions(window=8, label_column="status"))
    far = tmp_path / "far.csv"
    far.write_text("start,end\n5000,6000\n")
    prepare(data, DataOptions(window=8, labels=str(far)))
    assert "none of the 1 label window(s)" in caplog.text
    assert "do the labels' times match" in caplog.text


def test_odd_names_values_and_files_are_refused_with_the_reason(tmp_path, tiny_image_artifact):
    from vigil.runtime.camera.sources import SourceError, open_source
    from vigil.runtime.core.thresholds import finite_number

    for name in ("..", "."):
        assert cli.main(["triton", str(tiny_image_artifact), str(tmp_path / "repo"),
                         "--name", name]) == cli.EXIT_INPUT
    assert not (tmp_path / "repo").exists() and not (tmp_path / "config.pbtxt").exists()
    with pytest.raises(ValueError, match="`threshold` must be a finite number"):
        finite_number(10 ** 400, "threshold")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(SourceError, match="is an empty file"):
        open_source(str(tmp_path / "empty.mp4"))
    (tmp_path / "cut.mp4").write_bytes(b"\0" * 512)
    with pytest.raises(SourceError, match="may be truncated or damaged"):
        open_source(str(tmp_path / "cut.mp4"))


def test_a_validation_fraction_that_leaves_too_few_images_to_train_on_names_the_flag(tmp_path,
                                                                                      capsys):
    pytest.importorskip("tensorflow")
    import cv2

    folder = tmp_path / "good"
    folder.mkdir()
    for n in range(20):
        cv2.imwrite(str(folder / f"{n:02d}.png"), np.full((32, 32), 10 * n, np.uint8))
    model = tmp_path / "m.keras"
    assert cli.main(["train", "image", str(folder), "-o", str(model),
                     "--validation-fraction", "0.99"]) == 2
    err = capsys.readouterr().err
    assert "holds out 20 of the 20 normal images, leaving 0" in err
    assert "--validation-fraction 0.60 or less" in err and not model.exists()


def test_image_eval_refuses_sensor_flags_and_one_folder_as_both_labels(tiny_image_artifact,
                                                                       tmp_path, capsys):
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    for n in range(3):
        cv2.imwrite(str(frames / f"{n}.png"), np.full((32, 32), 40 * n, np.uint8))
    model = str(tiny_image_artifact)
    assert cli.main(["eval", model, str(frames), "--anomalous", str(frames)]) == 2
    assert "is also given as normal images" in capsys.readouterr().err
    for flags in (["--labels", "x.json"], ["--label-column", "fault"], ["--decimal", ","]):
        assert cli.main(["eval", model, str(frames), "--anomalous", str(tmp_path), *flags]) == 2
        assert f"{flags[0]} applies to sensor models" in capsys.readouterr().err


def test_score_and_bench_refuse_flags_that_would_do_nothing(tiny_image_artifact, tmp_path,
                                                            capsys):
    from sensor_fixtures import write_tiny_sensor_artifact

    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), np.zeros((32, 32), np.uint8))
    sensor = str(write_tiny_sensor_artifact(tmp_path / "sensor.onnx"))
    rows = tmp_path / "rows.csv"
    rows.write_text("timestamp,a,b,c\n" + "".join(f"{i},0,0,0\n" for i in range(6)))
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(tiny_image_artifact), str(frames), "--decimal", ",",
                     "--jsonl", str(out)]) == 2
    assert "--decimal applies to sensor models" in capsys.readouterr().err
    for attempts in ("3", "0", "forever"):
        assert cli.main(["score", sensor, str(rows), "--reconnect-attempts", attempts,
                         "--jsonl", str(out)]) == 2
        assert "--reconnect-attempts applies to image models" in capsys.readouterr().err
    assert cli.main(["bench", sensor, "--decimal", ","]) == 2
    assert "--decimal applies to an --input CSV" in capsys.readouterr().err
    assert not out.exists()


def test_data_for_the_other_kind_of_model_is_named_with_the_model(tiny_image_artifact, tmp_path,
                                                                  capsys):
    import cv2
    from sensor_fixtures import write_tiny_sensor_artifact

    sensor = str(write_tiny_sensor_artifact(tmp_path / "pump.onnx"))
    image = str(tiny_image_artifact)
    table = tmp_path / "rows.csv"
    table.write_text("timestamp,a,b,c\n1,0.1,0.2,0.3\n")
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), np.zeros((32, 32), np.uint8))
    for command, model, given, says in (
            ("score", image, table, "is an image model and"),
            ("eval", image, table, "is an image model and"),
            ("batch", image, table, "is an image model and"),
            ("score", sensor, frames / "0.png", "is a sensor model and"),
            ("score", sensor, frames, "is a sensor model and"),
            ("eval", sensor, frames, "is a sensor model and")):
        out = ["--jsonl", str(tmp_path / "out.jsonl")] if command == "batch" else []
        assert cli.main([command, model, str(given), *out]) == 2, (command, given)
        err = capsys.readouterr().err
        assert says in err and "vigil train" in err, err
        assert not (tmp_path / "out.jsonl").exists()


def test_a_sensor_archive_with_subfolders_and_a_picture_is_not_taken_for_images(tmp_path, capsys):
    import cv2
    from sensor_fixtures import write_tiny_sensor_artifact

    sensor = str(write_tiny_sensor_artifact(tmp_path / "pump.onnx"))
    archive = tmp_path / "archive"
    (archive / "2026-01").mkdir(parents=True)
    (archive / "2026-01" / "a.csv").write_text(
        "timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(10)))
    cv2.imwrite(str(archive / "overview.png"), np.zeros((8, 8), np.uint8))
    assert cli.main(["score", sensor, str(archive), "--jsonl", str(tmp_path / "o.jsonl")]) == 0


def _timed(path, times, rows=None):
    rng = np.random.default_rng(0)
    lines = ["timestamp,a,b"] + [f"{t},{rng.normal():.4f},{rng.normal():.4f}" for t in times]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_newest_first_rows_are_refused_and_a_step_back_is_named(tmp_path, caplog):
    from vigil.training.sensor_data import DataOptions, load_tables

    stamps = [f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00" for i in range(300)]
    newest_first = _timed(tmp_path / "desc.csv", stamps[::-1])
    with pytest.raises(ValueError, match=r"desc.csv: its rows run back in time .* sort the file "
                                         r"oldest first"):
        load_tables(newest_first, DataOptions())
    repeated = [stamps[i // 4] for i in range(300)][::-1]  # 4 readings a second, newest first
    with pytest.raises(ValueError, match="its rows run back in time"):
        load_tables(_timed(tmp_path / "repeated.csv", repeated), DataOptions())
    glitch = stamps[:100] + [stamps[50]] + stamps[101:]  # one clock step back, as NAB has
    caplog.set_level("WARNING", logger="vigil")
    load_tables(_timed(tmp_path / "glitch.csv", glitch), DataOptions())
    assert "1 of " in caplog.text and "step back in time" in caplog.text
    # rows shuffled in time (148 of 299 steps back in a review's file) trained with a warning
    shuffled = [stamps[i] for i in np.random.default_rng(0).permutation(len(stamps))]
    with pytest.raises(ValueError, match=r"its rows are not in time order .* sort the file by "
                                         r"time first .*sort -t, -k1,1"):
        load_tables(_timed(tmp_path / "shuffled.csv", shuffled), DataOptions())


def test_an_unnamed_column_with_values_is_named_and_causes_of_too_few_windows_are_told(
        tmp_path, caplog):
    from vigil.training.sensor_data import DataOptions, load_tables, prepare

    rng = np.random.default_rng(1)
    data = tmp_path / "unnamed.csv"
    data.write_text("timestamp,a,b,\n" + "".join(
        f"{i},{rng.normal():.3f},{rng.normal():.3f},{rng.normal():.3f}\n" for i in range(200)))
    caplog.set_level("WARNING", logger="vigil")
    assert load_tables(data, DataOptions())[0].features == ("a", "b")
    assert "column(s) 4 have no name in the header but hold values" in caplog.text
    caplog.clear()
    trailing = tmp_path / "trailing.csv"  # a spreadsheet's trailing separator: no warning
    trailing.write_text("timestamp,a,b,\n" + "".join(f"{i},{i % 7},{i % 5},\n"
                                                     for i in range(200)))
    load_tables(trailing, DataOptions())
    quoted = tmp_path / "quoted.csv"  # a quoted cell holding the separator shifts nothing
    quoted.write_text("timestamp,a,b,note,\n" + "".join(f'{i},{i % 7},{i % 5},"x, y",\n'
                                                         for i in range(200)))
    load_tables(quoted, DataOptions(excluded=("note",)))
    assert "no name" not in caplog.text
    labeled = tmp_path / "labeled.csv"
    labeled.write_text("timestamp,a,b,anomaly\n" + "".join(
        f"{i},{rng.normal():.3f},{rng.normal():.3f},{int(i % 40 != 0)}\n" for i in range(400)))
    with pytest.raises(ValueError, match=r"8 normal windows .* training rows are labeled "
                                         r"anomalous, and a window with one is never trained"):
        prepare(labeled, DataOptions(window=16))
    with pytest.raises(ValueError, match=r"a smaller `stride` \(now 60\)"):
        prepare(trailing, DataOptions(window=16, stride=60))
    with pytest.raises(ValueError, match=r"training part, its first 75%, has 150 rows; use more "
                                         r"rows, or a `window` of at most 136"):
        prepare(trailing, DataOptions(window=160, stride=2))  # 150 training rows: no window


def test_overlapping_image_folders_are_refused(tmp_path):
    import cv2

    from vigil.training.train_image import ImageDataOptions, training_images

    good = tmp_path / "good"
    good.mkdir()
    for n in range(4):
        cv2.imwrite(str(good / f"{n}.png"), np.full((16, 16), 40 * n, np.uint8))
    with pytest.raises(ValueError, match=r"is given twice .* as a normal image: the folders "
                                         r"given overlap"):
        training_images([good, good], ImageDataOptions())
    with pytest.raises(ValueError, match=r"a defect image \(--anomalous\) and a normal image"):
        training_images(good, ImageDataOptions(anomalous=(str(good),)))
    category = tmp_path / "bottle"
    (category / "train" / "good").mkdir(parents=True)
    (category / "test" / "good").mkdir(parents=True)
    for n in range(2):
        cv2.imwrite(str(category / "train" / "good" / f"{n}.png"), np.zeros((16, 16), np.uint8))
        cv2.imwrite(str(category / "test" / "good" / f"{n}.png"), np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"is an MVTec AD category .* give it alone"):
        training_images([category, good], ImageDataOptions())


def test_a_model_replaced_in_a_folder_this_user_cannot_write_is_refused_first(tmp_path,
                                                                              monkeypatch):
    import os

    from vigil.runtime.core import output

    model = tmp_path / "m.keras"
    model.write_bytes(b"old")
    real = os.access
    monkeypatch.setattr(output.os, "access",
                        lambda path, mode: False if Path(path) == tmp_path else real(path, mode))
    output.check_writable(model, "--output")  # the file itself can be written in place
    with pytest.raises(ValueError, match=r"replaced through a temporary file beside it, but its "
                                         r"folder .* is not writable"):
        output.check_writable(model, "--output", replaced=True)


def test_sentinel_readings_in_the_held_out_rows_are_named_before_training(tmp_path, caplog):
    from vigil.training.sensor_data import DataOptions, prepare

    steps = np.arange(400)
    values = np.stack([np.sin(steps / 5), np.cos(steps / 7)], axis=1)
    rng = np.random.default_rng(2)
    values += rng.normal(0, 0.05, values.shape)

    def write(name, row, value):
        cells = values.copy()
        cells[row, 0] = value
        path = tmp_path / name
        path.write_text("timestamp,a,b\n" + "".join(f"{i},{a:.4f},{b:.4f}\n"
                                                    for i, (a, b) in enumerate(cells)))
        return path

    caplog.set_level("WARNING", logger="vigil")
    prepare(write("clean.csv", 350, values[350, 0]), DataOptions(window=16))
    assert "held-out reading" not in caplog.text
    prepare(write("sentinel.csv", 350, -9999), DataOptions(window=16))  # in the last quarter
    assert ("1 held-out reading(s) lie more than 1000 spreads" in caplog.text
            and "sentinel.csv data row 351 column 'a': -9999" in caplog.text)
    with pytest.raises(ValueError, match=r"huge.csv, data row 351, column 'a': 1e\+30 in the "
                                         r"held-out rows .* a sentinel code"):
        prepare(write("huge.csv", 350, 1e30), DataOptions(window=16))


def test_a_time_column_of_another_name_and_a_large_validation_fraction_name_their_flags(
        tmp_path):
    from vigil.training.sensor_data import DataOptions, prepare

    stamps = [f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00" for i in range(300)]
    data = _timed(tmp_path / "zoned.csv", stamps)
    data.write_text(data.read_text().replace("timestamp,", "Time (UTC),", 1))
    with pytest.raises(ValueError, match=re.escape("is 'Time (UTC)' the time column? Name it "
                                                   "(--time-column 'Time (UTC)')")):
        read_table(data)
    named = read_table(data, time_column="Time (UTC)")
    assert named.features == ("a", "b") and named.times[0] == stamps[0]
    plain = _timed(tmp_path / "plain.csv", stamps)
    with pytest.raises(ValueError, match=r"`validation_fraction` 0.95 holds back all but 15 of "
                                         r"the rows: lower it"):
        prepare(plain, DataOptions(window=16, validation_fraction=0.95))


def test_an_input_this_user_cannot_read_is_named_as_such_not_as_an_output(tmp_path, capsys,
                                                                           monkeypatch):
    """A model or CSV without read permission was reported as "cannot be written" (exit 4):
    refused before any work, exit 2, naming the chmod (os.access is what a non-root user's
    check meets; the tests may run as root)."""
    import os

    from vigil.cli import output_paths

    model, data = tmp_path / "m.onnx", tmp_path / "rows.csv"
    model.write_bytes(b"not read")
    data.write_text("t,x\n1,2\n")
    real_access = os.access
    monkeypatch.setattr(output_paths.os, "access",
                        lambda path, mode: False if str(path) == str(data)
                        else real_access(path, mode))
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(model), str(data), "--jsonl", str(out)]) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert f"`source` {str(data)!r} cannot be read by this user" in err
    assert f"chmod a+r {data}" in err and not out.exists()


def test_a_file_the_input_holds_that_cannot_be_read_is_an_input_error(tmp_path, capsys,
                                                                       monkeypatch):
    """Met while reading (a CSV of a folder, a sidecar): exit 2 naming the file, not exit 4."""
    import os

    def refuse(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "data" / "day2.csv"))

    monkeypatch.setitem(cli.HANDLERS, "inspect", refuse)
    (tmp_path / "m.onnx").write_bytes(b"x")
    code = cli.main(["inspect", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INPUT, err
    assert "day2.csv' cannot be read by this user" in err and "chmod a+r" in err
    # the folder above it listed but not entered (chmod 644): the folder's fix, not the file's
    (tmp_path / "data").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(
        tmp_path / "data") and mode & os.X_OK else real_access(path, mode))
    assert cli.main(["inspect", str(tmp_path / "m.onnx")]) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert "its folder" in err and f"chmod a+rX {tmp_path / 'data'}" in err


def test_eval_without_any_anomalous_row_gives_null_recall_not_zero(tmp_path, capsys):
    """F1 and recall 0.0 read as a model that misses everything; with no anomaly labeled they
    are undefined: null, and said, naming how to give the labels."""
    import json

    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    model = write_tiny_sensor_artifact(tmp_path / "m.onnx")
    rows = "".join(f"{i},{i % 7 / 10},{i % 5 / 10},{i % 3 / 10},0\n" for i in range(300))
    (tmp_path / "rows.csv").write_text("timestamp,a,b,c,anomaly\n" + rows)
    assert cli.main(["eval", str(model), str(tmp_path / "rows.csv"),
                     "--json", str(tmp_path / "e.json")]) == 0
    assert "none of its 300 rows is labeled anomalous" in capsys.readouterr().err
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["f1"] is None and result["recall"] is None and result["event_f1"] is None
    assert isinstance(result["far"], float) and "note_labels" in result
    # each file's row too (a review found 0.000 there); precision where no row alarmed
    assert all(f["f1"] is None and f["recall"] is None for f in result["files"])
    assert all(f["precision"] is None for f in result["files"] if not f["tp"] + f["fp"])


def test_one_mistyped_training_reading_that_sets_a_column_spread_is_said(tmp_path, caplog):
    """A review typed one temperature 75.3 as 7500 in the training rows: the column's spread rose
    270-fold, a +25 degree fault scored below the threshold, and training said nothing."""
    from vigil.training.sensor_data import DataOptions, prepare

    rng = np.random.default_rng(3)
    steps = np.arange(4000)  # 4 readings left out of the spread (a thousandth): 1 named
    values = np.stack([75 + np.sin(steps / 9) + rng.normal(0, 0.2, 4000),
                       np.cos(steps / 7) + rng.normal(0, 0.05, 4000)], axis=1)

    def write(name, value):
        cells = values.copy()
        cells[100, 0] = value
        path = tmp_path / name
        path.write_text("timestamp,temperature,b\n" + "".join(
            f"{i},{a:.4f},{b:.4f}\n" for i, (a, b) in enumerate(cells)))
        return path

    caplog.set_level("WARNING", logger="vigil")
    prepare(write("clean.csv", values[100, 0]), DataOptions(window=16))
    assert "set its spread" not in caplog.text
    prepare(write("typo.csv", 7500.0), DataOptions(window=16))
    assert ("'temperature': 1 of" in caplog.text and "as far as 7500, set its spread"
            in caplog.text and "correct or drop those rows" in caplog.text)
    assert "sentinel code" not in caplog.text


def test_training_to_a_full_disk_is_refused_before_training(tmp_path, monkeypatch, capsys):
    """A review's full disk was found only when the model was written, after all of training."""
    import os
    from types import SimpleNamespace

    from vigil import cli
    from vigil.cli import output_paths

    data = tmp_path / "d.csv"
    data.write_text("a,b\n" + "".join(f"{i % 7},{i % 5}\n" for i in range(300)))
    full = SimpleNamespace(f_blocks=10**6, f_bavail=10, f_bfree=10, f_frsize=4096)  # 40 KB free
    monkeypatch.setattr(output_paths.os, "statvfs", lambda path: full)
    model = tmp_path / "m.keras"
    assert cli.main(["train", "sensor", str(data), "-o", str(model)]) == 2
    err = capsys.readouterr().err
    assert "its file system has 0.04 MB free and a model takes at least 0.26 MB" in err
    assert not model.exists()
    model.write_bytes(b"PK\x03\x04" + b"\0" * 99_996)  # a model it replaces: its size counts
    (tmp_path / "m.vigil.npz").write_bytes(b"\0" * 200_000)
    monkeypatch.setattr(output_paths.os, "statvfs",
                        lambda path: SimpleNamespace(f_blocks=10**6, f_bavail=70, f_bfree=70,
                                                     f_frsize=4096))  # 0.29 MB
    assert cli.main(["train", "sensor", str(data), "-o", str(model)]) == 2
    assert "the model it replaces takes 0.30 MB" in capsys.readouterr().err
    assert os.path.getsize(model) == 100_000
    # root may use the reserved blocks; a file system that reports no sizes is not judged
    reserved = SimpleNamespace(f_blocks=10**6, f_bavail=0, f_bfree=10**5, f_frsize=4096)
    monkeypatch.setattr(output_paths.os, "statvfs", lambda path: reserved)
    monkeypatch.setattr(output_paths.os, "geteuid", lambda: 0, raising=False)
    output_paths._refuse_a_full_disk(model, tmp_path / "m.vigil.npz", "train sensor")
    monkeypatch.setattr(output_paths.os, "geteuid", lambda: 1000, raising=False)
    with pytest.raises(ValueError, match="has 0.00 MB free"):
        output_paths._refuse_a_full_disk(model, tmp_path / "m.vigil.npz", "train sensor")
    unknown = SimpleNamespace(f_blocks=0, f_bavail=0, f_bfree=0, f_frsize=4096)
    monkeypatch.setattr(output_paths.os, "statvfs", lambda path: unknown)
    output_paths._refuse_a_full_disk(model, tmp_path / "m.vigil.npz", "train sensor")


def test_a_folder_of_files_with_other_columns_names_both_files(tmp_path):
    """A folder of a SKAB file and a NAB file was refused as lacking columns 'the model (or
    --features) needs', with no model and no --features given (a review)."""
    from vigil.training.sensor_data import DataOptions, load_tables

    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "a.csv").write_text("value\n" + "".join(f"{i % 5}\n" for i in range(50)))
    (tmp_path / "mix" / "b.csv").write_text("p,q\n" + "".join(f"{i % 5},{i % 3}\n"
                                                               for i in range(50)))
    with pytest.raises(ValueError, match=r"b.csv lacks the columns \['value'\] of .*a.csv, the "
                                         r"first file \(it has \['p', 'q'\], the first "
                                         r"\['value'\]\): the files of one training run must "
                                         r"share their columns"):
        load_tables(tmp_path / "mix", DataOptions())
