"""The `vigil` command line: score (file and live stdin), eval, errors, train."""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.runtime.sensor.tables import read_table

STREAM_TIMEOUT_S = 60  # generous: only guards against a hang, never asserted as a duration


def subprocess_env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONUNBUFFERED", None)  # the CLI itself must flush each live result
    return env


def drop_column(source, target, column):
    with open(source, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name != column]
    with open(target, "w", newline="") as handle:
        csv.writer(handle).writerows([[row[i] for i in keep] for row in rows])
    return target


def test_score_file_writes_one_json_line_per_window(sensor_artifacts, tmp_path, capsys):
    out = tmp_path / "out" / "scores.jsonl"
    assert cli.main(["score", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--jsonl", str(out)]) == 0
    captured = capsys.readouterr()
    detector = runtime.load(sensor_artifacts.int8)
    table = read_table(sensor_artifacts.test_csv, features=detector.features)
    window = detector.spec.window

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(table) - window + 1
    assert [r["index"] for r in records] == list(range(window - 1, len(table)))
    for record in records:
        assert {"index", "timestamp", "score", "anomaly"} <= set(record)
        assert isinstance(record["score"], float) and isinstance(record["anomaly"], bool)
    assert records[0]["timestamp"] == table.times[window - 1]
    ends, scores, _ = detector.score_signal(table.values)
    np.testing.assert_allclose([r["score"] for r in records], scores, rtol=0.15)
    assert any(r["anomaly"] for r in records) and not all(r["anomaly"] for r in records)

    assert captured.out == ""
    summary = json.loads(captured.err.strip().splitlines()[-1])["summary"]
    assert summary["rows"] == len(table)
    # the model that made the lines, for results traced after a model update
    made_by = json.loads(captured.err.strip().splitlines()[-1])["model"]
    assert made_by == {"path": str(sensor_artifacts.int8), "sha256": detector.sha256}
    assert summary["windows"] == len(records)
    assert summary["alarms"] == sum(r["anomaly"] for r in records)
    assert summary["rows_skipped"] == 0


def test_score_threshold_override(sensor_artifacts, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert cli.main(["score", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--jsonl", str(out), "--threshold", "1e9", "--no-likelihood"]) == 0
    assert not any(json.loads(line)["anomaly"] for line in out.read_text().splitlines())
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]["alarms"] == 0
    # The anomaly likelihood does not follow the threshold: it still alarms on the test data's
    # anomaly unless it is turned off.
    assert cli.main(["score", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--jsonl", str(out), "--overwrite", "--threshold", "1e9"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(line["anomaly"] and not line["above_threshold"] for line in lines)
    assert all(line["surprise"] > 4.27 for line in lines if line["anomaly"])


def test_score_stdin_streams_live(sensor_artifacts, tmp_path):
    """The first result line arrives while stdin is still open: scoring is live, not batched."""
    detector = runtime.load(sensor_artifacts.int8)
    window = detector.spec.window
    with open(sensor_artifacts.test_csv, newline="") as handle:
        lines = handle.read().splitlines()
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "score", str(sensor_artifacts.int8), "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env=subprocess_env())
    results: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [results.put(line) for line in process.stdout],
                     daemon=True).start()
    try:
        for line in lines[:window + 1]:  # header + exactly one window of rows
            process.stdin.write(line + "\n")
            process.stdin.flush()
        try:
            first = json.loads(results.get(timeout=STREAM_TIMEOUT_S))
        except queue.Empty:
            pytest.fail(f"no result within {STREAM_TIMEOUT_S} s of writing {window} rows "
                        "with stdin still open: `vigil score -` does not stream")
        assert process.poll() is None, "the scorer must still be running, waiting for rows"
        assert first["index"] == window - 1
        assert first["source"] == "stdin"
        assert {"timestamp", "score", "anomaly"} <= set(first)

        for line in lines[window + 1:window + 4]:
            process.stdin.write(line + "\n")
        process.stdin.close()
        assert process.wait(timeout=STREAM_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    later = []
    while not results.empty():
        later.append(json.loads(results.get()))
    assert [r["index"] for r in later] == [window, window + 1, window + 2]
    summary = json.loads(process.stderr.read().strip().splitlines()[-1])["summary"]
    assert summary["rows"] == window + 3 and summary["windows"] == 4


def test_a_negative_threshold_in_exponent_form_is_read_as_the_flags_value(sensor_artifacts,
                                                                          tmp_path):
    out = tmp_path / "low.jsonl"
    assert cli.main(["score", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--jsonl", str(out), "--threshold", "-1e3", "--no-likelihood"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(line["above_threshold"] for line in lines if line["score"] is not None)


def test_eval_writes_json_and_report(sensor_artifacts, tmp_path, capsys):
    metrics_path, report = tmp_path / "eval.json", tmp_path / "report"
    assert cli.main(["eval", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--json", str(metrics_path), "--report", str(report)]) == 0
    result = json.loads(metrics_path.read_text())
    for key in ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "threshold"):
        assert isinstance(result[key], float), key
    assert result["threshold"] == runtime.load(sensor_artifacts.int8).threshold
    assert result["auroc"] > 0.7  # quality floor on the synthetic anomalies (chance is 0.5)
    (row,) = result["files"]
    assert row["file"] == "test.csv"
    assert row["rows"] == 1500 and row["f1"] == pytest.approx(result["f1"])

    text = (report / "report.md").read_text()
    assert "test.csv" in text and "| file |" in text
    pngs = list(report.glob("*.png"))
    assert pngs and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({pngs[0].name})" in text
    printed = json.loads(capsys.readouterr().out)
    assert printed["f1"] == pytest.approx(result["f1"])
    # run again, --json replaces its own earlier result; never data or a results file
    assert cli.main(["eval", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--json", str(metrics_path)]) == 0
    assert json.loads(metrics_path.read_text())["f1"] == pytest.approx(result["f1"])
    data, lines = tmp_path / "data.csv", tmp_path / "lines.jsonl"
    data.write_text(sensor_artifacts.test_csv.read_text())
    lines.write_text('{"index": 0, "score": 1.0}\n{"index": 1, "score": 2.0}\n')
    for flags, kept in ((["eval", "--json"], data), (["eval", "--json"], lines),
                        (["score", "--health"], data)):
        before = kept.read_bytes()
        capsys.readouterr()
        assert cli.main([flags[0], str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                         flags[1], str(kept)]) == cli.EXIT_INPUT
        assert "exists and holds something else" in capsys.readouterr().err
        assert kept.read_bytes() == before
    # --report replaces its own earlier report; never a folder of other files
    assert cli.main(["eval", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--report", str(report)]) == 0
    assert (report / "report.md").read_text().startswith("# Vigil evaluation")
    own = tmp_path / "work"
    own.mkdir()
    (own / "metrics.json").write_text('{"mine": 1}')
    capsys.readouterr()
    assert cli.main(["eval", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--report", str(own)]) == cli.EXIT_INPUT
    error = capsys.readouterr().err
    assert "holds other files (metrics.json)" in error and "no earlier Vigil report" in error
    assert (own / "metrics.json").read_text() == '{"mine": 1}'
    assert sorted(p.name for p in own.iterdir()) == ["metrics.json"]


def test_a_report_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch):
    """A --report folder without read permission ended in an UnboundLocalError (its listing
    failed and the message used it); found by mypy's possibly-undefined check. Root reads any
    folder, so the listing's failure is simulated."""
    from pathlib import Path

    from vigil.cli.output_paths import _refuse_replacing_other_folders

    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "mine.txt").write_text("x")
    real_iterdir = Path.iterdir

    def refused(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refused)
    with pytest.raises(ValueError, match=r"`--report` '.*locked' is a folder whose files cannot "
                                         r"be listed \(Permission denied\).*--report "
                                         r"locked-report"):
        _refuse_replacing_other_folders(folder, "--report")
    assert (folder / "mine.txt").read_text() == "x"


@pytest.mark.parametrize("command", ["score", "eval"])
def test_csv_missing_a_feature_is_exit_2_naming_the_column(sensor_artifacts, tmp_path, capsys,
                                                           command):
    bad = drop_column(sensor_artifacts.test_csv, tmp_path / "no-pressure.csv", "pressure")
    argv = [command, str(sensor_artifacts.int8), str(bad)]
    if command == "score":
        argv += ["--jsonl", str(tmp_path / "out.jsonl")]
    assert cli.main(argv) == cli.EXIT_INPUT == 2
    error = capsys.readouterr().err
    assert error.startswith("vigil: error:")
    assert "['pressure'] are missing" in error
    assert "no-pressure.csv" in error


def test_eval_without_labels_is_exit_2(sensor_artifacts, tmp_path, capsys):
    unlabeled = drop_column(sensor_artifacts.test_csv, tmp_path / "unlabeled.csv", "anomaly")
    assert cli.main(["eval", str(sensor_artifacts.int8), str(unlabeled)]) == 2
    error = capsys.readouterr().err
    assert "label column 'anomaly' is missing" in error
    # the form it gives for rows that are all normal works as written (review u1)
    shown = '{"unlabeled.csv": []}'
    assert f"for rows that are all normal, a labels file naming no window for this file, {shown}" \
        in error
    labels = tmp_path / "labels.json"
    labels.write_text(shown)
    result = tmp_path / "m.json"
    assert cli.main(["eval", str(sensor_artifacts.int8), str(unlabeled), "--labels", str(labels),
                     "--json", str(result)]) == 0
    assert json.loads(result.read_text())["far"] is not None


def test_eval_without_labels_lists_the_real_header(sensor_artifacts, tmp_path, capsys):
    unlabeled = drop_column(sensor_artifacts.test_csv, tmp_path / "unlabeled.csv", "anomaly")
    assert cli.main(["eval", str(sensor_artifacts.int8), str(unlabeled)]) == 2
    assert "'timestamp'" in capsys.readouterr().err


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_eval_of_a_folder_has_one_row_per_file(sensor_artifacts, tmp_path):
    from vigil.training.synthetic import normal_stream, write_csv

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a-test.csv").write_bytes(sensor_artifacts.test_csv.read_bytes())
    write_csv(folder / "b-normal.csv", normal_stream(300, seed=9), np.zeros(300, bool))
    out = tmp_path / "eval.json"
    assert cli.main(["eval", str(sensor_artifacts.int8), str(folder), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["file"] for row in result["files"]] == ["a-test.csv", "b-normal.csv"]
    assert result["rows"] == 1500 + 300
    assert result["files"][1]["anomalous_rows"] == 0


def test_eval_json_is_strict_json_when_a_file_has_no_anomalies(sensor_artifacts, tmp_path):
    from vigil.training.synthetic import normal_stream, write_csv

    normal = write_csv(tmp_path / "normal.csv", normal_stream(300, seed=9), np.zeros(300, bool))
    out = tmp_path / "eval.json"
    assert cli.main(["eval", str(sensor_artifacts.int8), str(normal), "--json", str(out)]) == 0
    strict_json(out.read_text())


def test_score_csv_without_the_time_column(sensor_artifacts, tmp_path, capsys):
    bare = drop_column(sensor_artifacts.test_csv, tmp_path / "no-time.csv", "timestamp")
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(sensor_artifacts.int8), str(bare), "--jsonl", str(out)]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["index"] == 15 and "timestamp" not in first


def test_score_of_a_csv_with_decimal_commas_says_so_and_exits_2(tmp_path, capsys):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    rows = ["timestamp;a;b;c"] + [f"2020-01-01T00:00:{i:02d};0,{i % 9};1,5;0,2" for i in range(12)]
    data = tmp_path / "comma.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "score": 1.0}\n')  # earlier results, asked to be replaced
    assert cli.main(["score", str(model), str(data), "--jsonl", str(out),
                     "--overwrite"]) == cli.EXIT_INPUT
    error = capsys.readouterr().err
    assert "none of its 12 data rows can be scored; the first, line 2" in error
    assert "a decimal comma? Read it with --decimal ," in error
    assert out.read_text() == '{"index": 0, "score": 1.0}\n'  # known bad before it is emptied

    # read as the hint says: every row scored, the same as with decimal points
    again = tmp_path / "again.jsonl"
    assert cli.main(["score", str(model), str(data), "--jsonl", str(again), "--decimal", ","]) == 0
    points = tmp_path / "points.csv"
    points.write_text(data.read_text().replace(",", "."))
    dotted = tmp_path / "dotted.jsonl"
    assert cli.main(["score", str(model), str(points), "--jsonl", str(dotted)]) == 0
    def lines_of(path):
        return [{k: v for k, v in json.loads(line).items() if k != "source"}
                for line in path.read_text().splitlines()]

    scored = lines_of(again)
    assert len(scored) == 9 and all(line["score"] is not None for line in scored)
    assert scored == lines_of(dotted)

    # a decimal comma with commas between columns cannot be told apart: refused by name
    commas = tmp_path / "commas.csv"
    commas.write_text("timestamp,a,b,c\n2020-01-01T00:00:00,0,1,2\n")
    assert cli.main(["score", str(model), str(commas), "--decimal", ",", "--jsonl",
                     str(tmp_path / "never.jsonl")]) == cli.EXIT_INPUT
    assert "needs another column separator" in capsys.readouterr().err


def test_train_logs_read_well_in_a_file(tmp_path):
    """Redirected to files: stdout is the result alone; stderr has one line per epoch under a line
    per network, none of TensorFlow's start-up noise, and nothing that redraws in place."""
    pytest.importorskip("tensorflow")
    import subprocess
    import sys

    from vigil.training.synthetic import normal_stream, write_csv

    data = write_csv(tmp_path / "tiny.csv", normal_stream(300, seed=1))
    done = subprocess.run([sys.executable, "-m", "vigil", "train", "sensor", str(data), "-o",
                           str(tmp_path / "m.keras"), "--epochs", "2", "--window", "8",
                           "--units", "4"], capture_output=True, text=True, timeout=600,
                          check=False, env={k: v for k, v in os.environ.items()
                                            if not k.startswith("TF_")})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["epochs"] == 2  # one JSON object, nothing else
    for noise in ("absl", "cudart_stub", "cuInit", "oneDNN", "\b", "\x1b", "\r"):
        assert noise not in done.stderr, (noise, done.stderr[:2000])
    lines = [line for line in done.stderr.splitlines()
             if line.startswith("Epoch") or "network" in line]
    expected = [line for member in range(3)  # the default averages three networks
                for line in (f"vigil: INFO: network {member + 1} of 3 (seed {member})",
                             "Epoch 1/2", "Epoch 2/2", f"{member + 1} of 3 networks trained")]
    assert len(lines) == len(expected) - 1  # no time-left line after the last network
    for line, start in zip(lines, expected):
        assert line.startswith(start) or line.startswith(f"vigil: INFO: {start}"), (line, start)
    assert re.search(r"2 of 3 networks trained in \d+:\d\d; about \d+:\d\d left for the others",
                     done.stderr)


def test_train_sensor_on_a_tiny_csv(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from vigil.training.synthetic import normal_stream, write_csv

    data = write_csv(tmp_path / "tiny.csv", normal_stream(240, seed=1))
    model = tmp_path / "models" / "tiny.keras"
    code = cli.main(["train", "sensor", str(data), "-o", str(model), "--epochs", "1",
                     "--window", "8", "--score-last", "0", "--units", "4",
                     "--batch-size", "32", "--quiet"])
    assert code == 0
    assert model.is_file()
    assert (tmp_path / "models" / "tiny.vigil.npz").is_file()
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == str(model)
    assert printed["epochs"] == 1
    assert np.isfinite(printed["threshold"])
    # --log-json: stderr holds JSON lines only, no Keras epoch lines (a review found 8 of them)
    code = cli.main(["train", "sensor", str(data), "-o", str(model), "--epochs", "2",
                     "--window", "8", "--score-last", "0", "--units", "4",
                     "--batch-size", "32", "--log-json"])
    assert code == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["epochs"] == 2
    assert all(isinstance(json.loads(line), dict) for line in captured.err.splitlines()), (
        captured.err)


@pytest.mark.parametrize("command", [["demo"], ["train", "sensor"], ["train", "image"], ["export"],
                                     ["triton"], ["serve"], ["batch"], ["health-check"],
                                     ["score"], ["eval"], ["bench"]])
def test_every_command_help_ends_with_examples(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    examples = text.split("examples:\n", 1)[1].splitlines()
    assert examples and all(line.strip().startswith(("vigil ", "tail ")) for line in examples)


def _flags(parser, name="vigil"):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _flags(sub, f"{name} {sub_name}")
        elif not isinstance(action, argparse._HelpAction):
            yield name, action


def test_every_flag_has_help_and_shows_its_default():
    for command, action in _flags(cli.build_parser()):
        where = f"{command} {action.option_strings or action.dest}"
        assert action.help, f"{where} has no help text"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help, f"{where} does not show its default"


def test_training_flags_show_the_library_defaults():
    """The CLI cannot import the training code to build its help (no TensorFlow on a device),
    so the defaults it shows are written out; this keeps them equal to the library's."""
    from vigil.training.train_image import ImageTrainingOptions
    from vigil.training.train_sensor import SensorTrainingOptions

    sensor, image = SensorTrainingOptions(), ImageTrainingOptions()
    expected = {
        "train sensor --units": sensor.model.units, "train sensor --epochs": sensor.model.epochs,
        "train sensor --batch-size": sensor.model.batch_size,
        "train sensor --learning-rate": sensor.model.learning_rate,
        "train sensor --score-reduction": sensor.model.score_reduction.value,
        "train sensor --score-decay": sensor.model.score_decay,
        "train sensor --neighbour-rows": sensor.model.neighbour_rows,
        "train sensor --neighbour-entries": sensor.model.neighbour_entries,
        "train sensor --epoch-windows": sensor.model.epoch_windows,
        "train sensor --seed": sensor.model.seed, "train sensor --k": sensor.calibration.k,
        "train sensor --q": sensor.calibration.q,
        "train sensor --consecutive": sensor.calibration.consecutive,
        "train sensor --hold": sensor.calibration.hold,
        "train sensor --rearm": sensor.calibration.rearm,
        "train sensor --adaptive-memory": sensor.calibration.adaptive_memory,
        "train sensor --adaptive-warmup": sensor.calibration.adaptive_warmup,
        "train sensor --adaptive-quantile": sensor.calibration.adaptive_quantile,
        "train sensor --adaptive-factor": sensor.calibration.adaptive_factor,
        "train sensor --normalization-memory": sensor.calibration.normalization_memory,
        "train sensor --normalization-warmup": sensor.calibration.normalization_warmup,
        "train sensor --architecture": sensor.model.architecture.value,
        "train image --architecture": image.architecture,
        "train image --steps": image.model.steps, "train image --size": image.model.size,
        "train image --batch-size": image.model.batch_size,
        "train image --learning-rate": image.model.learning_rate,
        "train image --k": image.calibration.k, "train image --q": image.calibration.q,
        "train image --seed": image.model.seed, "train image --color": image.data.color,
        "train image --validation-fraction": image.data.validation_fraction,
    }
    shown = {f"{command[len('vigil '):]} {action.option_strings[-1]}": action.help
             for command, action in _flags(cli.build_parser()) if action.option_strings}
    for flag, value in expected.items():
        match = re.search(r"default:? (\S+?)[);,]", shown[flag] + ")")
        assert match, f"{flag}: no default in {shown[flag]!r}"
        written = match.group(1)
        assert (written == str(value) if isinstance(value, str)
                else float(written) == float(value)), f"{flag}: help says {written}, library {value}"


def test_log_json_is_accepted_after_the_subcommand(tmp_path, capsys):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    assert cli.main(["score", str(model), str(tmp_path / "missing.csv"), "--log-json"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["level"] == "error"


def test_report_without_matplotlib_says_what_to_install_before_any_work(tmp_path, monkeypatch,
                                                                         capsys):
    import sys

    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    for command in (["eval", str(model), str(tmp_path / "never-read.csv")],
                    ["bench", str(model), "--no-cold-start"]):
        assert cli.main([*command, "--report", str(tmp_path / "report")]) == cli.EXIT_FAILURE
        assert "pip install 'vigil-edge[report]'" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("kind", ["sensor", "image"])
def test_train_threshold_method_has_one_name_and_the_old_spelling_still_works(kind, tmp_path,
                                                                             capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["train", kind, "data", "-o", "m.keras", "--threshold-method", "f1"])
    assert args.threshold_method == "f1" and not getattr(args, "deprecations", [])
    old = parser.parse_args(["train", kind, "data", "-o", "m.keras", "--threshold", "percentile"])
    assert old.threshold_method == "percentile"
    # warned once logging is set up, so --log-json (even after the flag) makes it a JSON line
    missing = str(tmp_path / "missing")
    code = cli.main(["train", kind, missing, "-o", str(tmp_path / "m.keras"),
                     "--threshold", "percentile", "--log-json"])
    assert code == cli.EXIT_INPUT
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    warning = [line for line in lines if line["level"] == "warning"]
    assert len(warning) == 1 and "deprecated" in warning[0]["message"]
    assert "--threshold-method percentile" in warning[0]["message"]
    # both spellings naming two methods: refused, not the last one silently
    for flags in (["--threshold", "f1", "--threshold-method", "gaussian"],
                  ["--threshold-method", "gaussian", "--threshold", "f1"]):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(["train", kind, "data", "-o", "m.keras", *flags])
        assert stopped.value.code == 2
        assert "two threshold methods given" in capsys.readouterr().err
    same = parser.parse_args(["train", kind, "data", "-o", "m.keras", "--threshold", "f1",
                              "--threshold-method", "f1"])
    assert same.threshold_method == "f1"


def test_a_model_output_never_replaces_a_file_that_is_no_model(sensor_artifacts, tmp_path,
                                                              capsys):
    """-o replaces an earlier model (export again, train again), never notes or data."""
    notes = tmp_path / "notes.onnx"
    notes.write_text("my precious notes")
    keras_named = tmp_path / "data.keras"
    keras_named.write_text("timestamp,a\n1,2\n")
    for argv, kept, says in (
            (["export", str(sensor_artifacts.keras_model), "-o", str(notes)], notes,
             "is not an ONNX model: writing the model would replace it; name a new file "
             "(-o notes-model.onnx, say)"),
            (["train", "sensor", str(sensor_artifacts.test_csv), "-o", str(keras_named)],
             keras_named, "is not a Keras model")):
        before = kept.read_bytes()
        assert cli.main(argv) == cli.EXIT_INPUT
        assert says in capsys.readouterr().err
        assert kept.read_bytes() == before
    earlier = tmp_path / "earlier.onnx"
    earlier.write_bytes(sensor_artifacts.int8.read_bytes())
    assert cli.main(["export", str(sensor_artifacts.keras_model), "-o", str(earlier),
                     "--precision", "fp32"]) == 0
    assert runtime.load(earlier).spec.precision == "fp32"


def test_export_auto_says_its_choice_as_information_not_a_warning(sensor_artifacts, tmp_path,
                                                                   capsys):
    """Which precision ``--precision auto`` chose (with its timings) is the expected outcome, not
    a problem: it is logged at INFO; only a missed parity tolerance is a WARNING."""
    pytest.importorskip("tensorflow")
    code = cli.main(["export", str(sensor_artifacts.keras_model), "-o",
                     str(tmp_path / "auto.onnx"), "--log-json"])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["precision"] in ("int8", "fp32") and printed["requested_precision"] == "auto"
    said = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    choice = [e["level"] for e in said if e["message"].startswith(("kept INT8", "wrote FP32"))]
    assert choice == ["info"], said
    # the JSON alone says why (a pipeline that reads stdout only: review hA, session 61)
    assert any(n.startswith(("kept INT8", "wrote FP32")) for n in printed["notes"])
    assert printed["warnings"] == []
    assert not [e for e in said if e["level"] in ("warning", "error")], said
    # mixed precision quantizes a feature model's memory-bank product: refused, nothing written
    assert cli.main(["export", str(sensor_artifacts.keras_model), "-o",
                     str(tmp_path / "mixed.onnx"), "--precision", "mixed"]) == 2
    err = capsys.readouterr().err
    assert "--precision mixed applies to image feature models" in err and "is a sensor model" in err
    assert not (tmp_path / "mixed.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "sensor", "d.csv", "-o", "m.keras", "--epochs", "0"],
     "argument --epochs: expected an integer >= 1; received '0'"),
    (["train", "sensor", "d.csv", "-o", "m.keras", "--k", "nan"],
     "argument --k: expected a number >= 0; received 'nan'"),
    # below the normal mean: a quarter of a normal file's windows alarmed in a reviewer's run
    (["train", "image", "d", "-o", "m.keras", "--k", "-1"],
     "argument --k: expected a number >= 0; received '-1'"),
    (["train", "sensor", "d.csv", "-o", "m.keras", "--likelihood-z", "inf"],
     "argument --likelihood-z: expected a finite number; received 'inf'"),
    (["train", "sensor", "d.csv", "-o", "m.keras", "--adaptive-factor", "inf"],
     "argument --adaptive-factor: expected a finite number; received 'inf'"),
    (["train", "sensor", "d.csv", "-o", "m.keras", "--q", "150"],
     "argument --q: expected a number >= 0 and <= 100; received '150'"),
    (["train", "sensor", "d.csv", "-o", "m.keras", "--learning-rate", "-1"],
     "argument --learning-rate: expected a number > 0; received '-1'"),
    (["train", "image", "d", "-o", "m.keras", "--batch-size", "0"],
     "argument --batch-size: expected an integer >= 1; received '0'"),
    (["train", "image", "d", "-o", "m.keras", "--seed", "-1"],
     "argument --seed: expected an integer >= 0 and <= 4294967295; received '-1'"),
    # each thread has its own stack and buffers: 100,000 took 16.6 GB in seconds
    (["batch", "m.onnx", "d.csv", "--jsonl", "o.jsonl", "--threads", "100000"],
     "argument --threads: expected an integer >= 1 and <= 1024; received '100000'"),
    (["health-check", "h.json", "--max-age", "-5"],
     "argument --max-age: expected a number > 0; received '-5'"),
    (["bench", "m.onnx", "--seconds", "0"], "argument --seconds: expected a number > 0"),
])
def test_numeric_options_are_checked_before_any_work(args, message, capsys):
    from vigil.cli import arguments
    from vigil.runtime.core import artifact

    assert arguments.MAX_THREADS is artifact.MAX_THREADS  # the CLI's bound is the library's
    with pytest.raises(SystemExit) as done:
        cli.main(args)
    assert done.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--q", "50"], "--q applies to --threshold-method percentile; this run's is gaussian"),
    (["--threshold-method", "percentile", "--k", "3"],
     "--k applies to --threshold-method gaussian; this run's is percentile"),
    (["--latent", "8"], "--latent applies to the autoencoders"),
    (["--architecture", "lstm-ae", "--burn-in", "4"], "--burn-in applies to the forecasters"),
    (["--no-adaptive", "--adaptive-memory", "10"],
     "--adaptive-memory applies to the adaptive threshold, which --no-adaptive turns off"),
    (["--normalization-memory", "100"],
     "--normalization-memory applies to --running-normalization"),
    (["--no-likelihood", "--likelihood-z", "5"], "which --no-likelihood turns off"),
    (["--neighbour-rows", "0", "--neighbour-entries", "5"],
     "--neighbour-entries applies to the neighbour distance"),
    (["--no-class-weight"], "--no-class-weight applies to --supervised training"),
])
def test_training_options_that_would_do_nothing_are_refused(args, message, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    assert cli.main(["train", "sensor", str(data), "-o", str(tmp_path / "m.keras"),
                     *args]) == cli.EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.keras").exists()


def test_supervised_k_sets_the_gaussian_fallback_and_is_accepted(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from vigil.training import train_supervised

    def reached(*args, **kwargs):
        raise RuntimeError("training reached")

    monkeypatch.setattr(train_supervised, "train_supervised", reached)
    data = tmp_path / "d.csv"
    data.write_text("a,anomaly\n1,0\n")
    with pytest.raises(RuntimeError, match="training reached"):
        cli.main(["train", "sensor", str(data), "-o", str(tmp_path / "m.keras"), "--supervised",
                  "--k", "4"])


def test_image_and_export_options_that_would_do_nothing_are_refused(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    (tmp_path / "good").mkdir()
    assert cli.main(["train", "image", str(tmp_path / "good"), "-o", str(tmp_path / "m.keras"),
                     "--masks", str(tmp_path)]) == cli.EXIT_INPUT
    assert "--masks applies to the defect images of --anomalous" in capsys.readouterr().err
    assert cli.main(["train", "image", str(tmp_path / "good"), "-o", str(tmp_path / "m.keras"),
                     "--q", "90"]) == cli.EXIT_INPUT
    assert "--q applies to --threshold-method percentile" in capsys.readouterr().err
    keras_file = tmp_path / "m2.keras"
    keras_file.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: checked after the flags
    assert cli.main(["export", str(keras_file), "-o", str(tmp_path / "m.onnx"), "--precision",
                     "fp32", "--force"]) == cli.EXIT_INPUT
    assert "--force keeps INT8" in capsys.readouterr().err
    assert cli.main(["export", str(keras_file), "-o", str(tmp_path / "m.onnx"), "--force"]) \
        == cli.EXIT_INPUT  # auto chooses by parity and speed: forcing it kept a failing INT8
    assert "it applies to --precision int8 or mixed, not auto" in capsys.readouterr().err


def test_repeated_features_and_empty_files_are_refused_with_the_reason(sensor_artifacts,
                                                                       tmp_path, capsys):
    artifact = sensor_artifacts.int8
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert cli.main(["score", str(artifact), str(empty)]) == cli.EXIT_INPUT
    assert "the file is empty; expected a header line" in capsys.readouterr().err
    header_only = tmp_path / "header.csv"
    with open(header_only, "w") as handle:
        handle.write(",".join(runtime.load(artifact).features) + "\n")
    results = tmp_path / "results.jsonl"
    results.write_text('{"index": 0}\n')
    short = tmp_path / "short.csv"
    short.write_text(header_only.read_text() + "\n".join(
        ",".join("1.0" for _ in runtime.load(artifact).features) for _ in range(5)) + "\n")
    for source, rows in ((header_only, "0 data rows"), (short, "5 data rows")):
        # nothing to score: refused before the earlier results are emptied
        assert cli.main(["score", str(artifact), str(source), "--jsonl", str(results),
                         "--overwrite"]) == cli.EXIT_INPUT
        assert f"{rows}, fewer than the model's window" in capsys.readouterr().err
        assert results.read_text() == '{"index": 0}\n'
    with pytest.raises(ValueError, match=r"`features` must name each column once; repeated: "
                                         r"\['a'\]"):
        from vigil.runtime.sensor.tables import RowParser
        RowParser(["a", "b"], "x.csv", features=["a", "a"])


@pytest.mark.parametrize("flags, message", [
    (["--append"], "--append applies only with --jsonl FILE, which is not given (the results go "
                   "to stdout); add --jsonl FILE or leave --append out"),
    (["--overwrite"], "--overwrite applies only with --jsonl FILE"),
    (["--health-interval", "5"], "--health-interval applies only with --health PATH"),
    (["--mqtt-client-id", "line1"], "--mqtt-client-id applies only with --mqtt URL"),
    (["--overlay-all"], "--overlay-all applies only with --overlay-dir DIR"),
])
def test_a_score_flag_without_the_one_it_qualifies_is_refused(flags, message, tmp_path, capsys):
    """Given alone, each would do nothing while the user thinks it did."""
    assert cli.main(["score", str(tmp_path / "m.onnx"), str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_health_interval_with_mqtt_alone_is_accepted(tmp_path, capsys):
    """Health reports go to TOPIC/health with --mqtt alone: its interval applies there."""
    code = cli.main(["score", str(tmp_path / "m.onnx"), str(tmp_path), "--health-interval", "5",
                     "--mqtt", "mqtt://127.0.0.1:1/line"])
    assert code != 0 and "--health-interval applies only" not in capsys.readouterr().err


def test_counts_beyond_an_artifacts_limits_are_refused_at_training_and_export_keeps_the_old_file(
        sensor_artifacts, tmp_path, capsys):
    """Before, `--hold 200000` trained, and export replaced a good .onnx with one the runtime
    refuses."""
    pytest.importorskip("tensorflow")
    import shutil

    assert cli.main(["train", "sensor", str(sensor_artifacts.train_csv), "-o",
                     str(tmp_path / "m.keras"), "--hold", "200000"]) == 2
    assert "`--hold` must be at most 100,000" in capsys.readouterr().err
    assert not (tmp_path / "m.keras").exists()
    # a sidecar holding such a count (as a model trained before this check would): not written
    model = tmp_path / "old.keras"
    shutil.copy(sensor_artifacts.keras_model, model)
    keras_model = sensor_artifacts.keras_model
    sidecar = dict(np.load(keras_model.with_name(keras_model.stem + ".vigil.npz")))
    record = json.loads(str(sidecar["record"]))
    record["hold"] = 200_000
    sidecar["record"] = np.array(json.dumps(record))
    np.savez(tmp_path / "old.vigil.npz", **sidecar)
    previous = tmp_path / "line.onnx"
    shutil.copy(sensor_artifacts.fp32, previous)
    before = previous.read_bytes()
    assert cli.main(["export", str(model), "-o", str(previous), "--precision", "fp32"]) == 3
    err = capsys.readouterr().err
    assert "was not written" in err and "hold must be an integer in [0, 100000]" in err
    assert previous.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_sidecar_left_from_another_model_is_refused_at_export(sensor_artifacts, image_artifacts,
                                                                tmp_path, capsys):
    """A crash between the two renames of `vigil train` leaves a new model beside the old
    sidecar: its calibration must not be applied to the new network."""
    pytest.importorskip("tensorflow")
    import shutil

    keras_model = sensor_artifacts.keras_model
    model = tmp_path / "line.keras"
    shutil.copy(image_artifacts.keras_model, model)  # the "new" model
    shutil.copy(keras_model.with_name(keras_model.stem + ".vigil.npz"),
                tmp_path / "line.vigil.npz")  # the sidecar of another
    assert cli.main(["export", str(model), "-o", str(tmp_path / "line.onnx")]) == 2
    err = capsys.readouterr().err
    assert "was not written with this line.keras" in err and "train again" in err
    assert not (tmp_path / "line.onnx").exists()


def test_help_says_what_the_tool_does_and_names_each_value(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "Edge anomaly detection" in top and "vigil demo" in top and "``" not in top
    with pytest.raises(SystemExit):
        cli.main(["score", "--help"])
    score = capsys.readouterr().out
    for shown in ("--jsonl OUT", "--expect-sha256 HEX", "--reconnect-attempts N|forever",
                  "--decimal MARK", "--threshold SCORE"):
        assert shown in score
    with pytest.raises(SystemExit):
        cli.main(["batch", "--help"])
    text = capsys.readouterr().out  # its description wraps (the examples are one line each)
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith("  vigil "))


def test_reconnect_attempts_forever_has_no_limit_and_the_default_is_ten(tiny_image_artifact,
                                                                        monkeypatch, capsys):
    from vigil.runtime.camera import sources

    policies = []

    def opened(spec, options, *rest):  # what `vigil score` asks of the source, then no camera
        policies.append(options.reconnect.max_attempts)
        raise sources.SourceError("no camera here")

    monkeypatch.setattr(sources, "open_source", opened)

    def limit(*flags):
        code = cli.main(["score", str(tiny_image_artifact), "rtsp://127.0.0.1:9/x", *flags])
        assert code == cli.EXIT_INPUT and "no camera here" in capsys.readouterr().err
        return policies.pop()

    assert limit("--reconnect-attempts", "forever") is None
    assert limit("--reconnect-attempts", "FOREVER") is None
    assert limit("--reconnect-attempts", "3") == 3 and limit("--reconnect-attempts", "0") == 0
    from vigil.cli import arguments

    assert limit() == arguments.DEFAULT_RECONNECT_ATTEMPTS == 10


def test_the_parsers_choices_are_the_librarys():
    """The parser restates the library's choices (importing them would load onnxruntime or
    TensorFlow for every `vigil --help`); this keeps the two the same."""
    pytest.importorskip("tensorflow")
    from vigil.cli import arguments
    from vigil.export.precision import Precision
    from vigil.runtime.core.output import OUTPUT_POLICIES
    from vigil.runtime.core.providers import DEVICES
    from vigil.runtime.core.thresholds import ThresholdMethod
    from vigil.training.sensor_model import Architecture, ScoreReduction
    from vigil.training.train_image import ARCHITECTURES

    def choices(command: list[str], flag: str) -> list:
        parser = arguments.build_parser()
        sub = parser
        for name in command:
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)
                       ).choices[name]
        return list(next(a for a in sub._actions if flag in a.option_strings).choices)

    assert list(arguments.THRESHOLD_METHODS) == [m.value for m in ThresholdMethod]
    assert sorted(choices(["train", "sensor"], "--architecture")) == sorted(a.value
                                                                            for a in Architecture)
    assert choices(["train", "image"], "--architecture") == list(ARCHITECTURES)
    assert choices(["demo"], "--architecture") == list(ARCHITECTURES)
    assert choices(["train", "sensor"], "--score-reduction") == [r.value for r in ScoreReduction]
    assert choices(["export"], "--precision") == [p.value for p in Precision]
    assert choices(["score"], "--on-output-error") == list(OUTPUT_POLICIES)
    assert set(arguments.DEVICES) == {"auto", *DEVICES}


def test_train_image_names_every_unreadable_image_at_once(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    import cv2

    good = tmp_path / "good"
    good.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        cv2.imwrite(str(good / f"{i:02d}.png"), rng.integers(0, 255, (32, 32), np.uint8))
    (good / "l_trunc.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(20))
    (good / "m_trunc.png").write_bytes((good / "00.png").read_bytes()[:60])
    assert cli.main(["train", "image", str(good), "-o", str(tmp_path / "m.keras")]) == (
        cli.EXIT_INPUT)
    error = capsys.readouterr().err
    assert "of the 12 images (and their masks), 2 cannot be read, so nothing was trained" in error
    assert "l_trunc.jpg" in error and "m_trunc.png" in error
    assert "held out to set the threshold" not in error  # said of files then refused (u1)
    assert not (tmp_path / "m.keras").exists()


def test_a_command_line_mistake_is_a_json_line_under_log_json(capsys, monkeypatch):
    """A typo in a service's arguments, read by a log shipper: JSON like every other line."""
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "INFO")  # the user's own setting is kept
    with pytest.raises(SystemExit) as stopped:
        cli.main(["score", "m.onnx", "data.csv", "--log-json", "--health-intervl", "5"])
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error" and "unrecognized arguments: --health-intervl 5" in (
        entry["message"])
    assert os.environ["OPENCV_LOG_LEVEL"] == "INFO"
    assert "did you mean --health-interval?" in entry["message"]
    with pytest.raises(SystemExit):  # without --log-json, argparse's own text: the command's
        cli.main(["score", "m.onnx", "data.csv", "--health-intervl", "5"])
    err = capsys.readouterr().err
    assert err.startswith("usage: vigil score ")
    assert ("vigil score: error: unrecognized arguments: --health-intervl 5; did you mean "
            "--health-interval? (`vigil score --help` lists what it takes)") in err
    with pytest.raises(SystemExit):
        cli.main(["train", "sensor", "d.csv", "-o", "x.keras", "--epocs", "1"])
    assert "vigil train sensor: error: unrecognized arguments: --epocs 1; did you mean --epochs?" \
        in capsys.readouterr().err


def test_missing_training_extras_are_a_json_line_under_log_json(tmp_path, capsys, monkeypatch):
    """It was plain text outside the exit-code table (SystemExit), whatever --log-json said."""
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` fails as if absent
    assert cli.main(["--log-json", "export", str(tmp_path / "m.keras"), "-o",
                     str(tmp_path / "m.onnx")]) == 1
    line = capsys.readouterr().err.splitlines()[-1]  # after TensorFlow's start-up lines, replayed
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "needs the training extras (tf2onnx is not installed)" in entry["message"]
    assert "pip install 'vigil-edge[train]'" in entry["message"]
    assert not (tmp_path / "m.onnx").exists()


def test_the_demos_next_steps_say_how_to_call_vigil_when_it_is_not_on_path(tmp_path,
                                                                          monkeypatch):
    """The README runs `.venv/bin/vigil demo` before any `activate`: the commands the demo
    suggests name `vigil`, so it says how to reach it."""
    from vigil.cli import demo

    command = tmp_path / "venv" / "bin" / "vigil"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    (command.parent / "activate").write_text("# a venv's\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(command), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    steps = demo.next_steps(tmp_path / "vigil-demo", "camera")
    assert "vigil is not on PATH here: source venv/bin/activate, or write venv/bin/vigil" in steps
    monkeypatch.setenv("PATH", str(command.parent))  # activated: the same command by name
    command.chmod(0o755)
    assert "not on PATH" not in demo.next_steps(tmp_path / "vigil-demo", "camera")
    (command.parent / "activate").unlink()  # a command outside a venv: nothing to activate
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    steps = demo.next_steps(tmp_path / "vigil-demo", "camera")
    assert "vigil is not on PATH here: write venv/bin/vigil for vigil below" in steps
    monkeypatch.setattr(sys, "argv", ["-m", "demo"])  # python -m vigil demo
    assert f"write {sys.executable} -m vigil for vigil below" in demo.next_steps(
        tmp_path / "vigil-demo", "camera")


def test_eval_prints_far_and_warns_where_the_alarm_was_on_for_most_normal_rows(
        sensor_artifacts, capsys):
    assert cli.main(["eval", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--threshold", "-1e3", "--no-likelihood", "--no-threshold-search"]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert printed["recall"] == 1.0 and printed["far"] > 0.9 and "mar" in printed
    assert "the alarm was on for" in err and "read them beside far" in err
    assert cli.main(["eval", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--no-threshold-search"]) == 0
    assert "the alarm was on for" not in capsys.readouterr().err


def test_a_run_started_without_stderr_keeps_its_results_apart_from_it(tmp_path):
    """Started with descriptor 2 closed (``2>&-``), the next file opened took number 2, where C
    libraries write their warnings (libpng's), and error lines were printed to stdout (Python's
    sys.stderr was None), into the results of --jsonl -: the run now opens the null device
    there first and gives sys.stderr to it."""
    code = ("import os, sys\n"
            "from vigil.cli.commands import main\n"
            "main(['health-check', sys.argv[1]])\n"
            "with open(sys.argv[2], 'w') as out:\n"
            "    os.write(2, b'a library warning\\n')\n"
            "    print(out.fileno(), os.readlink('/proc/self/fd/2'), file=sys.stdout)\n")
    result = tmp_path / "results.jsonl"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.json"), str(result)],
                          stdout=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: os.close(2))
    number, target = done.stdout.split()  # the error line not among them
    assert number != "2" and target == os.devnull
    assert result.read_text() == ""
