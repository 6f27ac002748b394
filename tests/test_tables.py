"""Reading sensor CSVs: separators, special columns, feature selection, errors, gap filling."""

from __future__ import annotations

import math
import os
import re
import subprocess

import numpy as np
import pytest

from vigil.runtime.sensor.tables import (RowParser, csv_files, detect_separator, fill_gaps,
                                         iter_rows, read_lines, read_table)


def write(path, text: str, newline: str = "\n"):
    """Write ``text`` (lines separated by \\n) with the given line ending, byte for byte."""
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


@pytest.mark.parametrize("header, expected", [
    ("timestamp,a,b", ","),
    ("timestamp;a;b", ";"),
    ("timestamp\ta\tb", "\t"),
    ("single", ","),
    ('"flow, l/min";pressure;speed', ";"),
])
def test_detect_separator(header, expected):
    assert detect_separator(header) == expected


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_read_table_with_each_separator(tmp_path, separator):
    text = "\n".join(separator.join(row) for row in
                     [["timestamp", "a", "b"], ["t0", "1.5", "2"], ["t1", "-3", "4e2"]]) + "\n"
    table = read_table(write(tmp_path / "data.csv", text))
    assert table.features == ("a", "b")
    np.testing.assert_array_equal(table.values, [[1.5, 2.0], [-3.0, 400.0]])
    assert table.times == ("t0", "t1")


@pytest.mark.parametrize("name", ["timestamp", "Time", "DATETIME", "date", "ts"])
def test_time_column_is_found_by_name_and_is_not_a_feature(tmp_path, name):
    text = f"a,{name},b\n1,2026-01-01,2\n3,2026-01-02,4\n"
    table = read_table(write(tmp_path / "data.csv", text))
    assert table.time_column == name
    assert table.features == ("a", "b")
    assert table.times == ("2026-01-01", "2026-01-02")


def test_without_a_time_column_there_are_no_times(tmp_path):
    table = read_table(write(tmp_path / "data.csv", "a,b\n1,2\n3,4\n"))
    assert table.time_column is None
    assert table.times is None
    assert table.features == ("a", "b")


def test_named_time_column_must_exist(tmp_path):
    path = write(tmp_path / "data.csv", "a,b\n1,2\n")
    with pytest.raises(ValueError, match="`time_column` 'clock' is not in the header"):
        read_table(path, time_column="clock")


def test_label_column_is_read_as_labels_not_as_a_feature(tmp_path):
    path = write(tmp_path / "data.csv", "timestamp,a,anomaly\nt0,1,0\nt1,2,1\nt2,3,\n")
    table = read_table(path)
    assert table.features == ("a",)
    assert table.label_column == "anomaly"
    np.testing.assert_array_equal(table.labels, [False, True, False])


def test_changepoint_is_excluded_by_default_and_can_be_included(tmp_path):
    path = write(tmp_path / "skab.csv",
                 "datetime;a;b;anomaly;changepoint\nt0;1;2;0;0\nt1;3;4;1;1\n")
    assert read_table(path).features == ("a", "b")
    assert read_table(path, excluded=()).features == ("a", "b", "changepoint")


def test_features_are_read_in_the_order_asked(tmp_path):
    path = write(tmp_path / "data.csv", "timestamp,a,b,c\nt0,1,2,3\nt1,4,5,6\n")
    table = read_table(path, features=("c", "a"))
    assert table.features == ("c", "a")
    np.testing.assert_array_equal(table.values, [[3, 1], [6, 4]])


def test_missing_feature_is_named_with_the_header(tmp_path):
    path = write(tmp_path / "data.csv", "timestamp,a,b\nt0,1,2\n")
    with pytest.raises(ValueError) as error:
        read_table(path, features=("a", "pressure"))
    message = str(error.value)
    assert str(path) in message
    assert "feature columns ['pressure'] are missing" in message
    assert "['timestamp', 'a', 'b']" in message


def test_non_numeric_cell_names_file_line_and_column(tmp_path):
    # Line numbers count the file's lines from 1, header and blank lines included.
    path = write(tmp_path / "data.csv", "timestamp,a,b\nt0,1,2\n\nt1,3,oops\n")
    with pytest.raises(ValueError) as error:
        read_table(path)
    message = str(error.value)
    assert message.startswith(f"{path}, line 4:")
    assert "column 'b'" in message
    assert "'oops'" in message


def test_infinite_cell_is_an_error(tmp_path):
    path = write(tmp_path / "data.csv", "a,b\n1,inf\n")
    with pytest.raises(ValueError, match=r"line 2: column 'b' has infinite value"):
        read_table(path)


def test_row_with_wrong_field_count_is_an_error_naming_the_line(tmp_path):
    path = write(tmp_path / "data.csv", "a,b\n1,2\n3\n")
    with pytest.raises(ValueError, match=r"line 3: row has 1 fields; the header has 2"):
        read_table(path)


def test_missing_cells_become_nan(tmp_path):
    path = write(tmp_path / "data.csv", "a,b,c\n1,,NaN\nnull,?,3\n")
    table = read_table(path)
    assert np.isnan(table.values).tolist() == [[False, True, True], [True, True, False]]


def test_empty_file_is_an_error(tmp_path):
    path = write(tmp_path / "empty.csv", "")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty; expected a header"):
        read_table(path)


def test_blank_lines_only_count_as_empty(tmp_path):
    path = write(tmp_path / "blank.csv", "\n  \n\n")
    with pytest.raises(ValueError, match="the file is empty"):
        read_table(path)


def test_header_only_file_is_an_error(tmp_path):
    path = write(tmp_path / "header.csv", "timestamp,a,b\n")
    with pytest.raises(ValueError, match=r"header\.csv: "):
        read_table(path)


def test_header_only_file_says_it_has_no_data_rows(tmp_path):
    path = write(tmp_path / "header.csv", "timestamp,a,b\n")
    with pytest.raises(ValueError, match=r"header\.csv: the file has a header but no data rows"):
        read_table(path)


def test_duplicate_column_names_are_an_error():
    with pytest.raises(ValueError, match=r"column names must be unique; repeated: \['a'\]"):
        RowParser(["a", "b", "a"], "src")


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path / "dos.csv", "timestamp,a,b\nt0,1,2\nt1,3,4\n", newline="\r\n")
    table = read_table(path)
    assert table.features == ("a", "b")
    np.testing.assert_array_equal(table.values, [[1, 2], [3, 4]])
    assert table.times == ("t0", "t1")


def test_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftimestamp,a\nt0,1\n".encode("utf-8"))
    table = read_table(path)
    assert table.time_column == "timestamp"
    assert table.features == ("a",)


def test_text_in_another_encoding_names_the_command_that_converts_it(tmp_path):
    utf16 = tmp_path / "unicode.csv"
    utf16.write_bytes("timestamp,a\nt0,1\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"UTF-16 .*iconv -f UTF-16 -t UTF-8 IN.csv > OUT.csv"):
        read_table(utf16)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("timestamp,a,note\nt0,1,Größe\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"UTF-8.*iconv -f WINDOWS-1252 -t UTF-8"):
        read_table(latin)


def test_quoted_cells(tmp_path):
    text = ('"timestamp","flow, l/min","pressure"\n'
            '"2026-01-01 00:00:00","1.5","2"\n'
            '2026-01-01 00:00:01,2.5,"3"\n')
    table = read_table(write(tmp_path / "quoted.csv", text))
    assert table.features == ("flow, l/min", "pressure")
    np.testing.assert_array_equal(table.values, [[1.5, 2], [2.5, 3]])
    assert table.times == ("2026-01-01 00:00:00", "2026-01-01 00:00:01")


def test_iter_rows_with_a_given_header_parses_the_first_line_as_data():
    lines = ["1;2\n", "3;x\n"]
    rows = [row for _, row in iter_rows(lines, {}, "stdin", header=["a", "b"]) if row is not None]
    assert [r.number for r in rows] == [1, 2]
    np.testing.assert_array_equal(rows[0].values, [1, 2])
    assert rows[0].problem is None
    assert rows[1].problem == "column 'b' has non-numeric value 'x'"


def test_a_given_header_refuses_the_files_own_header_but_not_a_reading_named_like_a_column():
    with pytest.raises(ValueError, match=r"its first line is a header line \(it names the "
                                         r"columns \['b', 'a'\]\)"):
        list(iter_rows(["b,a\n", "1,2\n"], {}, "x.csv", header=["a", "b"]))
    # columns named "1" and "2": a first row of those readings is data, not a header
    rows = [row for _, row in iter_rows(["2026-01-01 00:00,2,1\n"], {}, "x.csv",
                                        header=["time", "1", "2"]) if row is not None]
    np.testing.assert_array_equal(rows[0].values, [2, 1])


def test_a_given_header_takes_a_first_line_naming_the_same_columns_as_the_header():
    """`tail -n 0 -F live.csv | vigil score MODEL - --columns ...`, the README's live pipeline,
    passes on a file created after it started from its first line, the header: that exited 2
    (review r1). The same names in the same order are the header; another order is refused."""
    rows = [row for _, row in iter_rows(["a,b\n", "1,2\n", "3,4\n"], {}, "stdin",
                                        header=["a", "b"]) if row is not None]
    assert [r.number for r in rows] == [2, 3] and all(r.problem is None for r in rows)
    np.testing.assert_array_equal(rows[0].values, [1, 2])
    with pytest.raises(ValueError, match="its first line is a header line"):
        list(iter_rows(["b,a\n", "1,2\n"], {}, "stdin", header=["a", "b"]))
    for first in ("\ufeffa,b\n", "a,b,\n"):  # a logger's BOM, a separator at its end (d2)
        rows = [row for _, row in iter_rows([first, "1,2\n"], {}, "stdin", header=["a", "b"])
                if row is not None]
        assert [r.number for r in rows] == [2] and rows[0].problem is None


def test_fill_gaps_interpolates_a_short_gap():
    values = np.array([[1.0, 10], [np.nan, 20], [np.nan, 30], [4.0, 40]])
    filled = fill_gaps(values, max_gap=2, source="s.csv", features=("a", "b"))
    np.testing.assert_allclose(filled, [[1, 10], [2, 20], [3, 30], [4, 40]])
    assert np.isnan(values[1, 0]), "the input must not be modified"


def test_fill_gaps_refuses_a_long_gap_naming_the_column():
    values = np.array([[1.0, 1], [2, np.nan], [3, np.nan], [4, np.nan], [5, 5]])
    with pytest.raises(ValueError) as error:
        fill_gaps(values, max_gap=2, source="s.csv", features=("a", "b"))
    message = str(error.value)
    assert "s.csv" in message
    assert "column 'b' is missing 3 consecutive values" in message
    assert "data rows 2..4, counted from 1 after the header" in message
    assert "train with a larger --max-gap" in message
    assert "at most 2" in message


def test_fill_gaps_refuses_a_column_without_values():
    values = np.array([[1.0, np.nan], [2, np.nan]])
    with pytest.raises(ValueError, match="column 'b' has no numeric value at all"):
        fill_gaps(values, max_gap=5, source="s.csv", features=("a", "b"))


def test_csv_files_of_a_folder_are_sorted_and_recursive(tmp_path):
    for name in ("b.csv", "a.csv", "sub/c.csv", "D.CSV"):  # the suffix in any case
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a\n1\n")
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "x.csv.bak").write_text("a\n1\n")
    assert csv_files(tmp_path) == [tmp_path / "D.CSV", tmp_path / "a.csv", tmp_path / "b.csv",
                                   tmp_path / "sub/c.csv"]


def test_compressed_and_rotated_csvs_in_a_folder_are_named_not_skipped_silently(tmp_path,
                                                                                 caplog):
    for name in ("a.csv", "b.csv.gz", "c.csv.1"):
        (tmp_path / name).write_text("t,x\n1,2\n")
    (tmp_path / "notes.txt").write_text("Pump 3, north hall.\nInstalled in May, serviced twice.\n")
    caplog.set_level("WARNING", logger="vigil")
    assert csv_files(tmp_path) == [tmp_path / "a.csv"]
    assert "2 file(s) named as a compressed or rotated CSV, or holding a table under another " \
           "suffix" in caplog.text
    assert "b.csv.gz" in caplog.text and "gunzip -k" in caplog.text
    caplog.clear()
    (tmp_path / "a.csv.sha256").write_text("checksum")  # not a CSV variant
    assert csv_files(tmp_path) == [tmp_path / "a.csv"]
    assert "not read" not in caplog.text  # said once a run, however often the folder is read


def test_tables_under_other_suffixes_in_a_folder_are_named_not_skipped_silently(tmp_path,
                                                                                 caplog):
    """A TSV export or a .txt of columns beside the CSVs was passed over without a word, even
    under --strict (a review); a README beside the data is no table."""
    (tmp_path / "b.csv").write_text("t,x\n1,2\n")
    (tmp_path / "a.tsv").write_text("t\tx\n1\t2\n")
    (tmp_path / "logger.txt").write_text("time;x;y\n2020-01-01 00:00;1.5;-2e3\n")
    (tmp_path / "README.txt").write_text("Readings of pump 3, north hall.\nSee the log, too.\n")
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "100.dat").write_bytes(bytes(range(256)) * 8)  # a binary signal (MIT-BIH's)
    caplog.set_level("WARNING", logger="vigil")
    assert csv_files(tmp_path) == [tmp_path / "b.csv"]
    assert "2 file(s) named as a compressed or rotated CSV, or holding a table" in caplog.text
    assert "a.tsv" in caplog.text and "rename them to end in .csv" in caplog.text
    assert caplog.records[-1].passed_over == 2  # counted for --strict


def test_a_subfolder_that_cannot_be_read_is_named_for_scoring_and_refused_for_training(
        tmp_path, caplog, monkeypatch):
    """os.walk passed an unreadable subfolder over in silence: `vigil score --strict` exited 0
    and training used part of the data (a review, as a user without the file's permissions)."""
    import os

    from vigil.runtime.sensor import tables

    (tmp_path / "a.csv").write_text("t,x\n1,2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_text("t,x\n1,2\n")
    real_walk = os.walk

    def walk(top, onerror=None, **options):  # as os.walk does when listing `sub` fails
        for folder, subfolders, names in real_walk(top, onerror=onerror, **options):
            if folder.endswith("sub"):
                onerror(PermissionError(13, "Permission denied", folder))
                continue
            yield folder, subfolders, names

    monkeypatch.setattr(tables.os, "walk", walk)
    caplog.set_level("WARNING", logger="vigil")
    assert csv_files(tmp_path, "source") == [tmp_path / "a.csv"]
    assert "1 subfolder(s) cannot be read by this user" in caplog.text
    assert f"chmod -R a+rX {tmp_path / 'sub'}" in caplog.text
    assert caplog.records[-1].passed_over == 1  # counted for --strict
    with pytest.raises(ValueError, match="`data` folder .* cannot be read by this user"):
        csv_files(tmp_path, "data")


def test_csv_files_follow_linked_folders_once_and_name_dangling_links(tmp_path, caplog):
    """A month's folder linked into the archive was passed over without a word, as was a
    .csv link whose target is gone."""
    archive = tmp_path / "archive"
    for folder in (tmp_path / "elsewhere" / "2026-01", archive / "2026-02"):
        folder.mkdir(parents=True)
        write(folder / "day.csv", "a\n1\n")
    (archive / "2026-01").symlink_to(tmp_path / "elsewhere" / "2026-01")
    (archive / "2026-02" / "loop").symlink_to(archive)  # a link back up: read once
    (archive / "day3.csv").symlink_to(tmp_path / "gone.csv")
    assert csv_files(archive) == [archive / "2026-01" / "day.csv", archive / "2026-02" / "day.csv"]
    assert "1 .csv link(s) whose target is gone are not read" in caplog.text
    assert "day3.csv" in caplog.text
    if hasattr(os, "mkfifo"):  # a pipe named .csv: it is no link, and may never end
        os.mkfifo(archive / "live.csv")
        caplog.clear()
        assert csv_files(archive) == [archive / "2026-01" / "day.csv",
                                      archive / "2026-02" / "day.csv"]
        assert ("1 .csv entry that is no regular file (a pipe, a device or a socket: it may "
                "never end) is not read (the first: " in caplog.text and "live.csv" in caplog.text)
        assert "whose target is gone" not in caplog.text  # said once a process for a folder
        (archive / "live.csv").unlink()
        # a pipe named as another table (.txt) was opened to look at its lines: it blocked
        # for ever, deaf to SIGTERM (a review)
        import threading

        os.mkfifo(archive / "live.txt")
        listed = []
        worker = threading.Thread(target=lambda: listed.append(csv_files(archive)), daemon=True)
        worker.start()
        worker.join(timeout=20)
        if worker.is_alive():  # release it before failing: open the pipe's other end
            with open(archive / "live.txt", "w"):
                pass
        assert listed and not worker.is_alive(), "csv_files opened a pipe"
        (archive / "live.txt").unlink()
    # a link to a folder above: its other folders' files are not this folder's (a review's
    # `up -> ..` scored, and would have trained on, every sibling's files)
    write(tmp_path / "other-machine.csv", "a\n1\n")
    (archive / "2026-02" / "up").symlink_to("../..")
    caplog.clear()
    assert csv_files(archive) == [archive / "2026-01" / "day.csv", archive / "2026-02" / "day.csv"]
    assert "1 link(s) to a folder that holds this one are not followed (the first: " \
           f"{archive / '2026-02' / 'up'} -> {tmp_path.resolve()})" in caplog.text


def test_csv_files_errors(tmp_path):
    with pytest.raises(ValueError, match=r"must contain .csv files; found none \(readings are "
                                         r"read from files named .csv: rename them"):
        csv_files(tmp_path)
    (tmp_path / "train" / "good").mkdir(parents=True)  # an MVTec AD category, given as rows
    (tmp_path / "train" / "good" / "000.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"found none; it holds images \(.*000.png'\), which are "
                                         r"camera frames: an image model reads them"):
        csv_files(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        csv_files(tmp_path / "nope.csv")


def test_decimal_comma_tables_read_like_decimal_point_ones(tmp_path):
    comma = tmp_path / "comma.csv"
    comma.write_text("timestamp;a;b;anomaly\n2020-01-01 00:00:00;1,5;-0,25;0\n"
                     "2020-01-01 00:00:01;2;3,125;1\n")
    point = tmp_path / "point.csv"
    point.write_text(comma.read_text().replace(",", "."))
    read = read_table(comma, decimal=",")
    expected = read_table(point)
    np.testing.assert_array_equal(read.values, expected.values)
    np.testing.assert_array_equal(read.labels, [False, True])
    with pytest.raises(ValueError, match="a decimal comma\\? Read it with --decimal ,"):
        read_table(comma)
    with pytest.raises(ValueError, match="`decimal` must be one of"):
        read_table(point, decimal="'")


def test_decimal_comma_mistakes_get_a_fix_that_works(tmp_path):
    """A '.' under --decimal , (a thousands separator, 1.000) read as 1.0 before; the hints for
    a comma-separated file's quoted decimal commas (a spreadsheet's export) did not work."""
    thousands = write(tmp_path / "eu.csv", "timestamp;druck\n2020-01-01;1.000\n2020-01-02;987\n")
    with pytest.raises(ValueError, match=r"'1.000' with a '.', where --decimal , reads ','") \
            as error:
        read_table(thousands, decimal=",")
    assert "correct or delete that line" not in str(error.value)  # the decimal mark is the fix
    sheet = write(tmp_path / "sheet.csv", 'timestamp,count,temp\n2024-03-01 00:00:00,5,"21,02"\n'
                  '2024-03-01 00:01:00,6,"20,96"\n')
    with pytest.raises(ValueError, match="a decimal comma in a comma-separated file") as error:
        read_table(sheet)
    command = re.search(r'(python3 -c ".*?") < IN.csv > OUT.csv', str(error.value)).group(1)
    converted = tmp_path / "converted.csv"
    with open(sheet) as source, open(converted, "w") as target:
        subprocess.run(command, shell=True, stdin=source, stdout=target, check=True)
    table = read_table(converted, decimal=",")
    np.testing.assert_array_equal(table.values, [[5, 21.02], [6, 20.96]])
    text = write(tmp_path / "text.csv", "timestamp,a,status,b\n1,0.5,ok,2\n")
    with pytest.raises(ValueError, match=r"correct that cell if it is a typo; .* name the numeric "
                                         r"columns \(--features a,b, say\)"):
        read_table(text)


def test_label_words_are_read_and_an_unreadable_label_is_an_error(tmp_path):
    table = read_table(write(tmp_path / "data.csv",
                             "a,anomaly\n1,yes\n2,No\n3,TRUE\n4,false\n5,1\n6,0\n7,\n"))
    assert table.labels.tolist() == [True, False, True, False, True, False, False]
    with pytest.raises(ValueError, match=r"line 3: label column 'anomaly' has 'maybe'; "
                                         r"expected 0/1.*--label-column"):
        read_table(write(tmp_path / "bad.csv", "a,anomaly\n1,0\n2,maybe\n"))
    # a reading's missing value, but no label's: a stretch marked so was read as normal
    for missing in ("NaN", "?", "n/a", "None"):
        with pytest.raises(ValueError, match=f"line 3: label column 'anomaly' has "
                                             f"'{re.escape(missing)}'; expected 0/1"):
            read_table(write(tmp_path / "missing.csv", f"a,anomaly\n1,0\n2,{missing}\n"))


def test_a_one_column_csv_reads_decimal_commas(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("value\n0,5\n1,25\n-2\n")
    table = read_table(one, decimal=",", time_column=None)
    np.testing.assert_array_equal(table.values[:, 0], [0.5, 1.25, -2.0])


def test_trailing_separators_of_a_spreadsheet_export_name_no_column(tmp_path):
    trailing = tmp_path / "export.csv"
    trailing.write_text("timestamp,a,b,anomaly,,\n1,0.5,1.5,0,,\n2,0.6,1.4,1,,\n")
    table = read_table(trailing)
    assert table.features == ("a", "b")
    np.testing.assert_array_equal(table.values, [[0.5, 1.5], [0.6, 1.4]])
    np.testing.assert_array_equal(table.labels, [False, True])
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("timestamp,a,a\n1,2,3\n")
    with pytest.raises(ValueError, match=r"repeated: \['a'\]"):
        read_table(repeated)


@pytest.mark.parametrize("signature", [b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"])
def test_a_workbook_is_named_as_one_not_as_utf16(tmp_path, signature):
    book = tmp_path / "book.csv"
    book.write_bytes(signature + b"\x00\x14\x00\x06\x00" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="spreadsheet workbook .*CSV UTF-8") as error:
        read_table(book)
    assert "UTF-16" not in str(error.value)


def test_other_files_given_as_csv_are_named_with_their_fix(tmp_path):
    import gzip
    import zipfile

    text = "timestamp,a,b\n" + "".join(f"{i},{i / 10},{i / 5}\n" for i in range(50))
    files = {"d.csv.gz": gzip.compress(text.encode()),
             "u16.csv": text.encode("utf-16-le"),  # no byte-order mark: NULs decode as UTF-8
             "d.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'" + bytes(64)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    with zipfile.ZipFile(tmp_path / "n.keras", "w") as archive:  # a newline byte in its header
        archive.writestr(zipfile.ZipInfo("metadata.json", (1980, 1, 1, 0, 0, 20)), "{}")
    assert b"\n" in (tmp_path / "n.keras").read_bytes()[:30]  # its DOS time: 0x000a
    expected = {"d.csv.gz": "gzip-compressed: decompress it first", "u16.csv": "UTF-16 text",
                "d.npy": "a NumPy array (.npy)", "m.keras": "a Keras model (.keras)",
                "n.keras": "a Keras model (.keras)"}
    for name, says in expected.items():
        with pytest.raises(ValueError, match=re.escape(says)):
            read_table(tmp_path / name)
        lines = list(read_lines(open(tmp_path / name, "rb")))  # as `vigil score` reads them
        assert len(lines) == 1 and says in lines[0].problem
    (tmp_path / "u8.csv").write_text(text)
    assert read_table(tmp_path / "u8.csv").values.shape == (50, 2)
    (tmp_path / "par.csv").write_text("PAR1,PAR2\n1,2\n3,4\n")  # text that begins like Parquet
    assert read_table(tmp_path / "par.csv").features == ("PAR1", "PAR2")


def test_a_cell_that_is_no_number_leaves_the_rest_of_its_row_read():
    """Only the unreadable cells are missing (and filled from the last good row when scored):
    the readings beside them and after them are kept."""
    lines = ["a,b,c,d\n", "1,x,3,y\n"]
    (row,) = [row for _, row in iter_rows(lines, {}, "f.csv") if row is not None]
    np.testing.assert_array_equal(np.isnan(row.values), [False, True, False, True])
    np.testing.assert_array_equal(row.values[[0, 2]], [1, 3])
    assert row.problem == "column 'b' has non-numeric value 'x' (other unreadable cells: ['d'])"


@pytest.mark.parametrize("cell", ["broken", "decimal comma", "'b'"])
def test_the_hint_for_an_unreadable_cell_follows_the_cell_not_the_words_it_holds(tmp_path, cell):
    """The hint was chosen by searching the problem's text, which quotes the cell: a cell
    reading "decimal comma" lost the hint, and one reading 'b' dropped column b from it."""
    path = tmp_path / "x.csv"
    path.write_text(f"timestamp,a,b,c\n1,{cell},2,3\n2,3,4,5\n")
    with pytest.raises(ValueError, match=r"name the numeric columns \(--features b,c, say\)"):
        read_table(path)
    path.write_text("timestamp,a,b\n1,1,5,2\n2,3,4\n")  # a decimal comma in a comma file
    with pytest.raises(ValueError, match="row has 4 fields; the header has 3"):
        read_table(path)
    path.write_text("timestamp;a;b\n1;1,5;2\n")
    with pytest.raises(ValueError, match=r"a decimal comma\? Read it with --decimal ,") as raised:
        read_table(path)
    assert "name the numeric columns" not in str(raised.value)


def test_an_infinite_reading_or_a_thousands_separator_gets_its_own_hint(tmp_path):
    """`inf` got the text-column hint (drop the column); `1.500` under --decimal , a date-time
    hint (`time_key` reads it as a number)."""
    path = tmp_path / "x.csv"
    path.write_text("timestamp,a,b,c\n1,inf,2,3\n")
    with pytest.raises(ValueError, match="infinite value") as raised:
        read_table(path)
    assert "text column" not in str(raised.value) and "finite number" in str(raised.value)
    path.write_text("timestamp;temp;b\n1;1.500;2\n")
    with pytest.raises(ValueError, match="thousands separator") as raised:
        read_table(path, decimal=",")
    assert "time column" not in str(raised.value)


def test_training_refuses_a_file_whose_header_changes_its_columns(tmp_path):
    """Read by position, a renamed column's readings joined the old column's (raw_a as a),
    and a header of another width ended in a numpy shape error."""
    path = tmp_path / "renamed.csv"
    path.write_text("a,b,c\n0.1,0.2,0.3\nraw_a,b,c\n9,9,9\n")
    with pytest.raises(ValueError, match=r"naming other columns \(\['raw_a', 'b', 'c'\] after "
                                         r"\['a', 'b', 'c'\]\).*--features b,c"):
        read_table(path, time_column=None)
    joined = tmp_path / "joined.csv"  # two files joined with cat, the second with its BOM
    joined.write_bytes(b"timestamp,a\n1,0.1\n\xef\xbb\xbftimestamp,a\n2,0.2\n")
    table = read_table(joined)
    assert table.features == ("a",) and table.values[:, 0].tolist() == [0.1, 0.2]


@pytest.mark.parametrize("cell", ["1.5", " 2 ", "-0", "+3e2", "3.5e38", "1e39", "-1e308", "nan",
                                  "-nan", "inf", "", "NA", "1_000", "\u0661", "1,5", "0x10",
                                  "1e-400", "\t8", ".5", "5."])
def test_a_row_read_at_once_reads_each_cell_as_one_read_alone(cell):
    """Rows of plain numbers are read at once (a review's 38-column rows were parse-bound); each
    cell must read as ``_number`` reads it, and any other row goes cell by cell."""
    from vigil.runtime.sensor.tables import RowParser, _number

    parser = RowParser(["t", "a", "b"], "test.csv", features=["a", "b"])
    row = parser.parse(["0", "1.25", cell], 2)
    value, problem = _number(cell)
    if problem is None and not math.isnan(value):
        assert row.problem is None and row.values.tolist() == [1.25, value]
    else:
        assert row.problem is not None and math.isnan(row.values[1])
