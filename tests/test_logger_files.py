"""Sensor files as loggers, spreadsheets and people leave them: a header repeated where files were
joined or a logger restarted, a last line cut off mid-write, a separator after each row but not
the header, numbers only Python reads, readings beyond float32, windows given as DataFrames.
Scored with the tiny closed-form model (score = mean |reading| over a 4-row window of a, b, c)."""

from __future__ import annotations

import json
import logging
import re
import warnings

import numpy as np
import pytest

import vigil
from sensor_fixtures import THRESHOLD, write_tiny_sensor_artifact
from vigil.cli import commands as cli
from vigil.runtime.sensor.tables import PREAMBLE_LINES, iter_rows, read_lines, read_table

OPTIONS = dict(features=("a", "b", "c"), time_column="auto", label_column=None,
               require_time=False)


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_sensor_artifact(tmp_path / "tiny.onnx")


def score(model, path, capsys) -> tuple[int, list[dict], str]:
    code = cli.main(["score", str(model), str(path)])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    return code, [line for line in lines if "summary" not in line], captured.err


def rows_of(path) -> list:
    with open(path, "rb") as handle:
        return [row for _, row in iter_rows(read_lines(handle), OPTIONS, str(path),
                                            doubt_last_line=True) if row is not None]


def test_a_header_repeated_in_another_order_reads_the_rows_after_it_by_its_names(tmp_path, tiny,
                                                                               capsys):
    path = tmp_path / "joined.csv"
    path.write_text("timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(6))
                    + "timestamp,c,b,a\n" + "".join(f"{i},0.3,0.2,0.1\n" for i in range(6, 12)))
    rows = rows_of(path)
    assert len(rows) == 12 and all(r.problem is None for r in rows)
    assert all(np.allclose(r.values, [0.1, 0.2, 0.3]) for r in rows)
    code, lines, error = score(tiny, path, capsys)
    assert code == 0 and [line["index"] for line in lines] == list(range(3, 12))
    assert all(line["score"] == pytest.approx(0.2) and "problem" not in line for line in lines)
    assert "line 8: a header line again, naming the columns in another order" in error


def test_a_text_column_whose_value_is_a_features_name_is_not_a_header(tmp_path):
    """A valve's position logged beside its flow: a row naming `a` in a text cell is data."""
    path = tmp_path / "valve.csv"
    path.write_text("timestamp,valve,a,b,c\n" + "".join(
        f"{i},{'a' if i % 2 else 'closed'},0.1,0.2,0.3\n" for i in range(8)))
    rows = rows_of(path)
    assert len(rows) == 8 and all(r.problem is None for r in rows)


def test_rows_under_a_repeated_header_without_the_models_columns_are_not_read(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("timestamp,a,b,c\n1,1,2,3\ntimestamp,a,b,x,c\n2,1,2,3,4\n")
    assert rows_of(path)[0].problem is None
    path.write_text("timestamp,a,b,c\n1,1,2,3\ntimestamp,a,b,c,c\n2,1,2,3\n")
    unread = rows_of(path)[1:]  # the header line takes no row number, as a readable one
    assert [r.number for r in unread] == [4] and all(np.isnan(r.values).all() for r in unread)
    assert "line 3 is a header line that cannot be read (column names must be unique" in \
        unread[0].problem
    assert unread[0].problem.endswith("and this row follows it")


def test_a_files_last_line_cut_mid_write_is_filled_and_a_whole_one_scored(tmp_path, tiny,
                                                                           capsys):
    """A file copied while its logger wrote it ends in a line without a newline whose last
    value is cut short (1.25 for 1.2500): filled from the row before, said why. A file whose
    writer left out the final newline ends in a whole line: scored with its own values."""
    path = tmp_path / "copied.csv"
    body = b"timestamp,a,b,c\n" + b"".join(b"%d,0.5,0.5,1.2500\n" % i for i in range(5))
    path.write_bytes(body + b"5,0.5,0.5,9")
    code, lines, _ = score(tiny, path, capsys)
    assert code == 0 and lines[-1]["index"] == 5 and lines[-1]["filled"] is True
    assert lines[-1]["score"] == pytest.approx(0.75)
    assert "ends without a newline and its last value is shorter" in lines[-1]["problem"]
    path.write_bytes(body + b"5,0.5,0.5,9.2500")
    code, lines, _ = score(tiny, path, capsys)
    assert code == 0 and "filled" not in lines[-1] and lines[-1]["anomaly"] is True
    assert lines[-1]["score"] == pytest.approx((0.5 * 8 + 1.25 * 3 + 9.25) / 12)
    # training reads a cut file whole: it has no row before to take values from at the cut
    table = read_table(tmp_path / "copied.csv")
    assert len(table.values) == 6 and table.values[-1, 2] == 9.25
    # cut inside its time cell: the cut time (1800 of 1800005) is no time of the row's
    timed = b"timestamp,a,b,c\n" + b"".join(b"180000%d,0.5,0.5,1.25\n" % i for i in range(5))
    path.write_bytes(timed + b"1800")
    code, lines, err = score(tiny, path, capsys)
    assert code == 0 and lines[-1]["filled"] is True and "timestamp" not in lines[-1]
    assert not lines[-1].get("out_of_order") and '"rows_out_of_order": 0' in err


@pytest.mark.parametrize("text", [
    "timestamp,a,b,c\n" + "".join(f"{i},1,1,1,\n" for i in range(6)),    # rows end in a separator
    "timestamp,a,b,c,\n" + "".join(f"{i},1,1,1\n" for i in range(6)),    # the header does
], ids=["rows", "header"])
def test_a_trailing_separator_on_the_rows_or_the_header_alone_is_read(tmp_path, tiny, capsys,
                                                                     text):
    path = tmp_path / "trailing.csv"
    path.write_text(text)
    code, lines, _ = score(tiny, path, capsys)
    assert code == 0 and len(lines) == 3
    assert all(line["score"] == pytest.approx(1.0) and "problem" not in line for line in lines)


def test_numbers_only_python_reads_are_not_readings(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("timestamp,a,b,c\n1,1_000,1,1\n2,\u0663,1,1\n3,1.5e3,-.5,+2.\n"
                    "4,-nan,NaN,1\n")
    rows = rows_of(path)
    assert "column 'a' has non-numeric value '1_000'" in rows[0].problem
    assert "column 'a' has non-numeric value" in rows[1].problem
    assert rows[2].problem is None and list(rows[2].values) == [1500.0, -0.5, 2.0]
    # C's printf writes a negative NaN as -nan: missing, not the largest float32
    assert np.isnan(rows[3].values[:2]).all() and "missing or NaN" in rows[3].problem


def test_a_reading_beyond_float32_alarms_as_an_overflow_in_files_and_the_api(tmp_path, tiny,
                                                                           capsys):
    """1e300 (a float64 sentinel) is not a missing value to fill: it alarms, as 3e38 does."""
    path = tmp_path / "huge.csv"
    path.write_text("timestamp,a,b,c\n" + "".join(
        f"{i},{'1e300' if i == 4 else '0.1'},0.1,0.1\n" for i in range(8)))
    code, lines, _ = score(tiny, path, capsys)
    assert code == 0
    over = [line for line in lines if line["index"] in (4, 5, 6, 7)]
    assert all(line["anomaly"] and line["score"] > 1e37 for line in over)  # at float32's limit
    assert all("filled" not in line for line in lines)
    stream = vigil.StreamingScorer(vigil.load(tiny))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in cast"
        results = [r for k in range(5) for r in stream.push([1e39 if k == 3 else 0.1, 0.1, 0.1])]
    assert results[-1].anomaly and results[-1].score > 1e37 and not results[-1].filled


def test_a_batch_of_dataframe_windows_is_read_by_their_names(tiny):
    pandas = pytest.importorskip("pandas")
    detector = vigil.load(tiny)
    window = pandas.DataFrame({"a": [1.0] * 4, "b": [2.0] * 4, "c": [6.0] * 4})
    reordered = window[["c", "b", "a"]]
    assert detector.score([reordered, reordered]) == pytest.approx([3.0, 3.0])
    assert detector.score(reordered) == pytest.approx([3.0])
    assert THRESHOLD < 3.0
    with pytest.raises(ValueError, match=r"`x\[1\]` has columns \['a', 'b'\], without the "
                                         r"model's \['c'\]"):
        detector.score([window, window[["a", "b"]]])


def test_eval_reads_and_scores_a_file_as_the_device_does(tmp_path, tiny, capsys):
    """A cell a logger garbled and a gap longer than max_gap (2) are filled and skipped, as
    `vigil score` does, not refused: eval's alarms are the device's, window for window."""
    rows = [f"{i},{'abc' if i == 9 else '' if 14 <= i <= 17 else 0.2},0.2,"
            f"{15 if 24 <= i <= 27 else 0.2},{int(24 <= i <= 27)}\n" for i in range(40)]
    path = tmp_path / "rec.csv"
    path.write_text("timestamp,a,b,c,anomaly\n" + "".join(rows))
    output = tmp_path / "e.json"
    assert cli.main(["eval", str(tiny), str(path), "--json", str(output)]) == 0
    error = capsys.readouterr().err
    assert "rec.csv: 3 row(s) filled from the row before and 2 skipped, as vigil score" in error
    result = json.loads(output.read_text())
    assert result["rows"] == 40 and result["recall"] == 1.0
    code, lines, _ = score(tiny, path, capsys)
    scored = {line["index"]: line["anomaly"] for line in lines if line.get("score") is not None}
    assert code == 0 and sum(scored.values()) == result["tp"] + result["fp"]


def test_labels_written_as_numbers_for_iso_times_are_refused_not_matched_to_nothing(tmp_path,
                                                                                   tiny, capsys):
    path = tmp_path / "rec.csv"
    path.write_text("timestamp,a,b,c\n" + "".join(
        f"2026-01-01T00:00:{i:02d},0.2,0.2,0.2\n" for i in range(10)))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"rec.csv": [[1767225604, 1767225606]]}))
    assert cli.main(["eval", str(tiny), str(path), "--labels", str(labels)]) == cli.EXIT_INPUT
    error = capsys.readouterr().err
    assert "are numbers (epoch seconds, counters) but the file's times are ISO 8601" in error


def test_evals_threshold_replay_gives_the_devices_alarms_across_a_long_gap(tmp_path):
    """alarm_best_f1 replays the alarm rule at other thresholds; at the artifact's own it must
    give what the streaming scorer decided, smoothing restarted after a gap longer than max_gap
    (2) as the device restarts it, or the --threshold eval prints would not reproduce its F1."""
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.export.package import write_artifact
    from vigil.runtime.sensor.evaluation import _alarms_at, score_file

    model = write_artifact(tiny_sensor_graph(), replace(tiny_sensor_spec(), consecutive=3),
                           tmp_path / "three.onnx")
    values = ["0"] * 10 + ["9"] * 2 + [""] * 3 + ["9"] * 5 + ["0"] * 10
    path = tmp_path / "gap.csv"
    path.write_text("timestamp,a,b,c,anomaly\n" + "".join(
        f"{i},{v},{v},{v},{int(v == '9')}\n" for i, v in enumerate(values)))
    detector = vigil.load(model)
    scored = score_file(detector, path, "anomaly")
    assert scored.rows_skipped == 1 and list(scored.restarts) == [11]  # windows 3..13, then 18
    replayed = _alarms_at(detector, scored, scored.scores[scored.ends], detector.threshold)
    assert np.flatnonzero(scored.alarms).tolist() == [12, 13, 20, 21, 22]
    assert np.array_equal(replayed, scored.alarms)


def test_eval_can_leave_out_the_threshold_search(tmp_path, tiny, capsys):
    path = tmp_path / "rec.csv"
    path.write_text("timestamp,a,b,c,anomaly\n" + "".join(
        f"{i},{5 if i == 20 else 0.2},0.2,0.2,{int(i == 20)}\n" for i in range(40)))
    searched, skipped = tmp_path / "s.json", tmp_path / "n.json"
    assert cli.main(["eval", str(tiny), str(path), "--json", str(searched)]) == 0
    assert cli.main(["eval", str(tiny), str(path), "--json", str(skipped),
                     "--no-threshold-search"]) == 0
    full, quick = json.loads(searched.read_text()), json.loads(skipped.read_text())
    assert full["alarm_best_f1"] is not None and quick["alarm_best_f1"] is None
    assert quick["alarm_best_f1_note"] == "not searched (--no-threshold-search)"
    assert {k: v for k, v in full.items() if not k.startswith("alarm_best_f1")} == \
        {k: v for k, v in quick.items() if not k.startswith("alarm_best_f1")}
    capsys.readouterr()


def test_a_logger_restarted_with_a_column_renamed_or_dropped_is_not_read_by_old_positions(
        tmp_path):
    """The restart's header named `b` `b_rpm` and swapped `a` and `c`: it was read as a data row
    and every later row by the old positions (swapped readings, all alarms). Now such a header
    is recognised, and the rows under it are not read, each naming why."""
    for header in ("timestamp,c,b_rpm,a", "timestamp,c,a"):
        path = tmp_path / "restart.csv"
        path.write_text("timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(6))
                        + header + "\n" + "".join(f"{i},0.3,0.2,0.1\n" for i in range(6, 9)))
        rows = rows_of(path)
        assert len(rows) == 6 + 3 and all(r.problem is None for r in rows[:6])
        assert all("line 8 is a header line that cannot be read" in r.problem for r in rows[6:])
        assert all("feature columns ['b'] are missing" in r.problem for r in rows[6:])


def test_line_ends_as_loggers_write_them_and_a_byte_order_mark_after_a_restart(tmp_path):
    """A lone CR ended no line (the whole file was one header line with repeated names); a
    Windows logger's restart wrote its header again with a BOM, whose time column was lost."""
    rows = "".join(f"{i},0.1,0.2,0.3" + end for i, end in zip(range(6), ["\r", "\r\n", "\n"] * 2))
    path = tmp_path / "cr.csv"
    path.write_bytes(("timestamp,a,b,c\r" + rows).encode())
    read = rows_of(path)
    assert len(read) == 6 and all(r.problem is None for r in read)
    assert [r.time for r in read] == [str(i) for i in range(6)]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbftimestamp,a,b,c\r\n1,0.1,0.2,0.3\r\n"
                    b"\xef\xbb\xbftimestamp,a,b,c\r\n2,0.1,0.2,0.3\r\n")
    assert [r.time for r in rows_of(bom)] == ["1", "2"]


def test_a_live_stream_with_lone_cr_line_ends_is_read_as_each_line_arrives():
    """Read as stdin is read (what has arrived): each row as it ends, an LF after a CR at the end
    of one read dropped from the next."""
    import io

    class Arriving(io.RawIOBase):
        def __init__(self, parts):
            self.parts = list(parts)

        def readable(self):
            return True

        def readinto(self, buffer):
            if not self.parts:
                return 0
            part = self.parts.pop(0)
            buffer[:len(part)] = part
            return len(part)

    stream = io.BufferedReader(Arriving([b"timestamp,a\r", b"\n1,0.5\r", b"2,0.6\r", b"\n3,0.7"]))
    lines = list(read_lines(stream, live=True))
    assert [line.text for line in lines] == ["timestamp,a", "1,0.5", "2,0.6", "3,0.7"]
    assert [line.terminated for line in lines] == [True, True, True, False]


def test_a_reading_written_beyond_float64_alarms_and_text_cells_read_as_the_cli_does(tmp_path):
    """1e400 overflows float(): it was filled as an infinite value while 1e300 alarmed; and
    StreamingScorer.push given text cells (csv.reader's) cast 1e300 to inf, with a warning."""
    from vigil.runtime.sensor.streaming import _as_float32
    from vigil.runtime.sensor.tables import FLOAT32_MAX, _number

    assert _number("1e400") == (FLOAT32_MAX, None) and _number("-1e400") == (-FLOAT32_MAX, None)
    assert np.isnan(_number("inf")[0]) and "infinite" in _number("-Infinity")[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _as_float32(["1e300", "2.5"]).tolist() == [np.float32(FLOAT32_MAX), 2.5]


def test_lines_before_the_header_are_passed_over_with_a_warning(tmp_path, tiny, capsys):
    """A logger's boot banner, an instrument's title lines: the header comes later."""
    path = tmp_path / "logger.csv"
    path.write_text("Plot Title: pump 3\nSample interval,1,s\n\ntimestamp,a,b,c\n"
                    + "".join(f"{i},0.1,0.2,0.3\n" for i in range(6)))
    code, lines, error = score(tiny, path, capsys)
    assert code == 0 and [line["index"] for line in lines] == [3, 4, 5]
    assert error.count("passed over") == 1  # the check before the run says nothing of its own
    assert "2 line(s) before the header (line 4) passed over, the first: 'Plot Title: pump 3'" in (
        error)
    rows = rows_of(path)
    assert [r.number for r in rows] == list(range(5, 11)) and all(r.problem is None for r in rows)


@pytest.mark.parametrize("text, named", [
    ("banner\nx,y,z\n1,2,3\n", "['x', 'y', 'z']"),    # data under another header: it is named
    ("x,y,z\n", "['x', 'y', 'z']"),                   # a header alone, as before
    ("banner\nbooting\n", "['banner']"),               # no header ever comes: the first line
    ("timestamp,a,b\n1,2,3\n", "['timestamp', 'a', 'b']"),  # some of the model's columns
])
def test_a_header_of_other_columns_is_still_refused_by_name(tmp_path, text, named):
    path = tmp_path / "other.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"are missing; the header has {re.escape(named)}"):
        rows_of(path)


def test_the_lines_passed_over_are_bounded(tmp_path):
    path = tmp_path / "noise.csv"
    path.write_text("".join(f"log line {i}\n" for i in range(PREAMBLE_LINES + 5))
                    + "timestamp,a,b,c\n1,1,2,3\n")
    with pytest.raises(ValueError, match=r"the header has \['log line 0'\]"):
        rows_of(path)


def test_training_passes_over_a_banner_and_keeps_rows_that_hold_text(tmp_path, caplog):
    """No columns are known when training reads a file: the header is the line of names before
    the first row of numbers, with as many cells."""
    path = tmp_path / "train.csv"
    path.write_text("Logger XYZ-200 firmware 1.4\nSite: Minneapolis; sensor 6005\n\n"
                    "timestamp,a,b\n" + "".join(f"{i},{i % 3},{i % 5}\n" for i in range(30)))
    with caplog.at_level("WARNING", logger="vigil"):
        table = read_table(path, label_column=None)
    assert table.features == ("a", "b") and len(table) == 30 and table.time_column == "timestamp"
    assert "2 line(s) before the header (line 4) passed over, the first: 'Logger XYZ-200" in (
        caplog.text)
    # a row of readings with a text cell before a row of numbers alone is no header: nothing is
    # passed over, and rows without a banner are read as always
    path.write_text("t,status,x\n1,ok,2.0\n2,ok,2.5\n3,,3.0\n")
    caplog.clear()
    with caplog.at_level("WARNING", logger="vigil"):
        rows = rows_of_unknown(path)
    assert [r.number for r in rows] == [2, 3, 4] and "passed over" not in caplog.text


def rows_of_unknown(path) -> list:
    options = dict(features=None, time_column="auto", label_column=None, require_time=False,
                   excluded=("status",))
    with open(path, "rb") as handle:
        return [row for _, row in iter_rows(read_lines(handle), options, str(path)) if row]


def test_a_units_line_under_the_header_is_refused_by_name_not_taken_for_the_header(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("timestamp,a,b\n,volt,bar\n" + "".join(f"{i},{i % 3},{i % 5}\n"
                                                         for i in range(30)))
    with pytest.raises(ValueError, match=r"line 2: column 'a' has non-numeric value 'volt'"):
        read_table(path, label_column=None)


def test_title_lines_with_a_comma_or_bad_bytes_pass_before_a_decimal_comma_header(tmp_path,
                                                                                tiny, capsys):
    path = tmp_path / "logger.csv"
    path.write_bytes(b"\xc3\x28\xff boot noise\r\nDatalogger CR1000, firmware 3.1\n"
                     b"timestamp;a;b;c\n" + b"".join(f"{i};0,1;0,2;0,3\n".encode()
                                                     for i in range(6)))
    code, lines, error = score(tiny, path, capsys)
    assert code != 0  # decimal commas without --decimal ,: refused as before, naming the fix
    code = cli.main(["score", str(tiny), str(path), "--decimal", ","])
    captured = capsys.readouterr()
    assert code == 0 and len(captured.out.splitlines()) == 3  # windows ending at rows 3, 4, 5
    assert "2 line(s) before the header (line 3) passed over" in captured.err
    # a comma-separated header with a decimal comma is still refused, naming the separator
    path.write_text("timestamp,a,b,c\n1,0,0,0\n")
    assert cli.main(["score", str(tiny), str(path), "--decimal", ","]) == cli.EXIT_INPUT
    assert "needs another column separator" in capsys.readouterr().err


def test_training_passes_over_a_banner_before_rows_with_a_text_label(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Pump 4 export\nSerial,123\ntimestamp,a,b,anomaly\n" + "".join(
        f"{i},{i % 3},{i % 5},{'anomaly' if i == 7 else 'normal'}\n" for i in range(30)))
    table = read_table(path)
    assert table.features == ("a", "b") and len(table) == 30 and table.labels.sum() == 1


@pytest.mark.parametrize("cut", ["0.1,0.", "0.1,0.2,", "5,0.1"])
def test_a_restart_header_glued_onto_a_row_cut_mid_line_is_a_header(tmp_path, cut, caplog):
    """The logger died mid-line and its restart wrote the header (columns in another order) on
    the same line: the joined line was one filled row and every later row was read by the old
    positions (249 alarms on SKAB rows, exit 0, no word)."""
    path = tmp_path / "glued.csv"
    path.write_text("timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(5))
                    + cut + "timestamp,c,b,a\n"
                    + "".join(f"{i},0.3,0.2,0.1\n" for i in range(5, 8)))
    with caplog.at_level(logging.WARNING, logger="vigil"):
        rows = rows_of(path)
    assert len(rows) == 5 + 1 + 3
    assert "a row cut off mid-line and then a header line" in rows[5].problem
    assert np.isnan(rows[5].values).all()
    for row in rows[6:]:  # read by the new header's names: a, b, c as before
        assert row.problem is None
        np.testing.assert_allclose(row.values, [0.1, 0.2, 0.3])
    assert "a logger restarted mid-write" in caplog.text


def test_a_row_with_extra_text_cells_is_no_glued_header(tmp_path):
    """Only the header's own names make a glued header: a row with extra cells stays a row."""
    path = tmp_path / "extra.csv"
    path.write_text("timestamp,a,b,c\n1,0.1,0.2,0.3\n2,0.1,0.2,0.3,b,x,c\n")
    rows = rows_of(path)
    assert len(rows) == 2 and "fields" in rows[1].problem


def test_nul_bytes_from_storage_damage_are_a_named_problem_not_a_clean_row(tmp_path):
    """An SD card after a power loss: a zeroed block glued to a row was scored as clean, its
    timestamp echoed as NUL characters; a zeroed tail became a row of one field."""
    path = tmp_path / "sd.csv"
    path.write_bytes(b"timestamp,a,b,c\n1,0.1,0.2,0.3\n" + b"\x00" * 64 + b"2,0.1,0.2,0.3\n"
                     + b"3,0.1,0.2,0.3\n" + b"\x00" * 512)
    rows = rows_of(path)
    assert [r.problem is None for r in rows] == [True, False, True, False]
    for row in (rows[1], rows[3]):
        assert "holds NUL bytes (storage damage" in row.problem and row.time is None
        assert np.isnan(row.values).all()


def test_a_restart_header_after_a_zeroed_block_is_read(tmp_path, caplog):
    """A power loss leaves zeros; the restarted logger writes its header right after them:
    the whole line was one damaged row and the rows after it were read by the old positions."""
    path = tmp_path / "sd.csv"
    path.write_bytes(b"timestamp,a,b,c\n" + b"".join(b"%d,0.1,0.2,0.3\n" % i for i in range(4))
                     + b"\x00" * 50 + b"timestamp,c,b,a\n"
                     + b"".join(b"%d,0.3,0.2,0.1\n" % i for i in range(4, 7)))
    with caplog.at_level(logging.WARNING, logger="vigil"):
        rows = rows_of(path)
    assert len(rows) == 4 + 1 + 3 and "holds NUL bytes" in rows[4].problem
    for row in rows[5:]:
        assert row.problem is None
        np.testing.assert_allclose(row.values, [0.1, 0.2, 0.3])
    assert "NUL bytes (storage damage" in caplog.text and "a header line again" in caplog.text


def test_a_restart_header_glued_inside_the_cut_rows_timestamp_is_a_header(tmp_path):
    """Cut within its first cell, the line has the header's width: it was taken for a header
    of other columns (its time column named '2026-01-01T00timestamp'), the times lost."""
    path = tmp_path / "cut.csv"
    path.write_text("timestamp,a,b,c\n" + "".join(f"2026-01-01T00:00:0{i},0.1,0.2,0.3\n"
                                                  for i in range(4))
                    + "2026-01-01T00timestamp,a,b,c\n"
                    + "".join(f"2026-01-01T00:01:0{i},0.1,0.2,0.3\n" for i in range(3)))
    rows = rows_of(path)
    assert len(rows) == 4 + 1 + 3
    assert "a row cut off mid-line and then a header line" in rows[4].problem
    assert all(r.problem is None and r.time.startswith("2026-01-01T00:01") for r in rows[5:])


@pytest.mark.parametrize("renamed", ["datetime,a,b,c", "timestamp,raw_a,b,c"])
def test_a_restart_header_that_renames_a_column_is_not_taken_for_a_glued_one(tmp_path, renamed):
    """`datetime` ends with `time`, `raw_a` with `a`: such headers were taken for a cut row and
    the old header, and the renamed column read as the old one."""
    path = tmp_path / "renamed.csv"
    path.write_text("time,a,b,c\n" if renamed.startswith("datetime") else "timestamp,a,b,c\n")
    path.write_text(path.read_text() + "".join(f"{i},0.1,0.2,0.3\n" for i in range(3))
                    + renamed + "\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(3, 5)))
    rows = rows_of(path)
    assert not any("a row cut off mid-line" in (r.problem or "") for r in rows)
    assert len(rows) == 5


def test_nul_bytes_then_a_glued_header_are_one_damaged_row(tmp_path):
    path = tmp_path / "sd.csv"
    path.write_bytes(b"timestamp,a,b,c\n1,0.1,0.2,0.3\n" + b"\x00" * 20 + b"2,0.1,0.timestamp,a,b,c\n"
                     + b"3,0.1,0.2,0.3\n")
    rows = rows_of(path)
    assert [r.number for r in rows] == [2, 3, 4]
    assert "holds NUL bytes" in rows[1].problem and rows[2].problem is None


def test_columns_named_in_another_letter_case_are_read_and_said(tmp_path, tiny, capsys):
    """A logger of another version writing Timestamp,A,B,C: the first header was refused, and
    the same header again mid-stream was read as a data row (its rows by the old positions)."""
    rows = "".join(f"{i},0.1,0.2,0.3\n" for i in range(6))
    path = tmp_path / "upper.csv"
    path.write_text("Timestamp,A,B,C\n" + rows)
    code, lines, err = score(tiny, path, capsys)
    assert code == 0 and len(lines) == 3 and "read from ['A', 'B', 'C']" in err
    path.write_text("timestamp,a,b,c\n" + rows + "Timestamp,C,B,A\n"
                    + "".join(f"{i},0.3,0.2,0.1\n" for i in range(6, 12)))
    parsed = rows_of(path)
    assert len(parsed) == 12 and all(r.problem is None for r in parsed)
    assert all(np.allclose(r.values, [0.1, 0.2, 0.3]) for r in parsed)
    path.write_text("timestamp,a,b,c,A\n" + "".join(f"{i},1,2,3,4\n" for i in range(6)))
    assert all(np.allclose(r.values, [1, 2, 3]) for r in rows_of(path))  # its own name first
