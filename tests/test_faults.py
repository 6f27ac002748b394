"""Fault injection: sources that fail, stall and come back, bad rows, slow consumers, outputs that
cannot be written. Every input must end as a scored line, a skipped line with its reason, or a
counted drop; a run must end cleanly with a summary, a health report and the documented exit code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.runtime.camera.scoring import FrameScoringOptions, score_frames
from vigil.runtime.core.health import IDLE_RESOLUTION_S, HealthReporter
from vigil.runtime.core.output import JsonLines, OutputError
from vigil.runtime.sensor.scoring import score_source
from vigil.runtime.camera.sources import ReconnectPolicy, SourceOptions, open_source
from vigil.runtime.sensor.streaming import StreamingScorer
from test_sources import FakeCamera, write_video

pytest.importorskip("onnx")  # the tiny artifacts are written with onnx

HANG_GUARD_S = 30  # only stops a broken test from hanging; never asserted as a duration
FAST = ReconnectPolicy(initial_delay_s=0.001, max_delay_s=0.01, max_attempts=3)


@pytest.fixture(scope="module")
def tiny_sensor(tmp_path_factory):
    from sensor_fixtures import write_tiny_sensor_artifact

    return write_tiny_sensor_artifact(tmp_path_factory.mktemp("tiny-sensor") / "tiny-sensor.onnx")


@pytest.fixture(scope="module")
def sensor(tiny_sensor):
    return runtime.load(tiny_sensor)


@pytest.fixture(scope="module")
def frames_detector(tiny_image_artifact):
    return runtime.load(tiny_image_artifact)


def wait_for(condition, what: str):
    """Poll ``condition()`` until it returns a true value (which is returned)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    pytest.fail(f"gave up waiting for {what}")


def read_health(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet (a rename is atomic, so never half a report)


def run_frames(detector, source, out=None, health=None, **options):
    out = out if out is not None else io.StringIO()
    summary = score_frames(detector, source, out, FrameScoringOptions(**options), health=health)
    text = out.getvalue() if isinstance(out, io.StringIO) else ""
    return [json.loads(line) for line in text.splitlines()], summary


def camera_frame(seq: int) -> np.ndarray:
    image = np.full((24, 32, 3), 128, dtype=np.uint8)
    image[0, 0, 0], image[0, 1, 0] = divmod(seq, 256)
    return image


# --- frame sources ------------------------------------------------------------------------------

def test_camera_that_returns_no_frame_is_reopened_and_the_gap_reported(frames_detector, tmp_path):
    # Reads 3 and 4 report success but return no image: the capture is treated as lost.
    images = [camera_frame(i) for i in range(10)]
    images[3] = images[4] = None
    camera = FakeCamera("f" * 10, frames=images)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    health = HealthReporter(tmp_path / "health.json", interval_s=3600)
    records, summary = run_frames(frames_detector, source, health=health)

    assert [r["frame"] for r in records] == list(range(8))
    assert [r["score"] is not None for r in records] == [True] * 8
    assert ["gap_s" in r for r in records] == [False] * 3 + [True] + [False] * 4
    (gap,) = summary.gaps
    assert (gap["after_index"], gap["resumed_index"], gap["attempts"]) == (2, 3, 2)
    assert summary.reconnects == 1 and summary.stopped == "source_lost"
    assert "gave up after 3 reconnect attempts" in summary.last_error
    report = read_health(tmp_path / "health.json")
    assert report["status"] == "stopped" and report["stopped"] == "source_lost"
    assert (report["frames_in"], report["scored"], report["reconnects"]) == (8, 8, 1)
    assert "gave up" in report["last_error"]
    assert all(not capture.open for capture in camera.captures)


def test_source_that_dies_and_comes_back_twice_scores_each_frame_once(frames_detector):
    camera = FakeCamera("fff" + "xx" + "fff" + "xxx" + "ff")
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    records, summary = run_frames(frames_detector, source)
    assert [r["frame"] for r in records] == list(range(8))  # none twice, none missing
    assert [i for i, r in enumerate(records) if "gap_s" in r] == [3, 6]
    assert [(g["after_index"], g["resumed_index"], g["attempts"]) for g in summary.gaps] == \
        [(2, 3, 2), (5, 6, 3)]  # the attempt count starts again after each reconnect
    assert summary.reconnects == 2 and summary.scored == 8 and summary.dropped == 0
    assert camera.produced == 8  # eight camera frames, eight lines: none scored twice


def test_stalled_stream_shows_in_health_then_resumes(frames_detector, tmp_path):
    camera = FakeCamera("f" * 10, hold_at=3)  # the fourth read blocks until resumed
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    path = tmp_path / "health.json"
    health = HealthReporter(path, interval_s=0.01)
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        zip(("records", "summary"), run_frames(frames_detector, source, health=health))),
        daemon=True)
    worker.start()
    try:
        stalled = wait_for(lambda: (r := read_health(path)) and r["frames_in"] == 3
                           and r["idle_s"] > 0 and r, "a health report of the stall")
        assert stalled["status"] == "running" and stalled["stopped"] is None
        assert stalled["last_error"] is None and stalled["scored"] == 3
    finally:
        camera.resume.set()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive()
    assert [r["frame"] for r in result["records"]] == list(range(10))
    final = read_health(path)
    assert final["status"] == "stopped" and final["frames_in"] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]  # no temporary files left


def test_corrupt_frames_in_a_video_are_skipped_and_the_video_goes_on(frames_detector, tmp_path):
    path = write_video(tmp_path / "clip.avi", 30)
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) == 30
    rng = np.random.default_rng(0)
    for frame in (7, 19):  # scramble the JPEG, leaving the container's next chunk header
        start, stop = starts[frame] + 2, starts[frame + 1] - 16
        data[start:stop] = rng.integers(0, 256, stop - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    records, summary = run_frames(frames_detector, open_source(str(path)))
    assert [r["frame"] for r in records] == list(range(30))  # every frame has its line
    skipped = [r for r in records if r["score"] is None]
    assert [r["frame"] for r in skipped] == [7, 19]
    assert all("damaged JPEG" in r["skipped"] and "(corrupt data); the video goes on"
               in r["skipped"] for r in skipped)
    assert summary.scored + summary.skipped == summary.frames_in == 30
    assert summary.stopped == "end"


class SlowStream(io.StringIO):
    """An output that takes ``delay_s`` per write: a consumer slower than the camera."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def write(self, text):
        time.sleep(self.delay_s)
        return super().write(text)


def test_slow_consumer_bounded_queue_drops_the_oldest_and_counts_them(frames_detector, tmp_path):
    camera = FakeCamera("f" * 100_000, read_delay_s=0.001)
    source = open_source("0", SourceOptions(queue_size=2, reconnect=FAST), camera.factory)
    out = SlowStream(0.02)
    health = HealthReporter(tmp_path / "health.json", interval_s=3600)
    _, summary = run_frames(frames_detector, source, out=out, health=health, max_frames=20)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    indices = [r["frame"] for r in records]
    assert len(records) == summary.frames_in == 20 and indices == sorted(set(indices))
    stats = source.stats
    assert 1 <= stats.max_queued <= 2  # bounded
    assert summary.dropped > 0  # the policy: the oldest queued frame makes way for the newest
    assert stats.read == summary.frames_in + summary.dropped  # every frame read is accounted for
    gaps = sum(r.get("dropped_before", 0) for r in records)
    assert gaps == indices[-1] - indices[0] - 19  # each drop before a line is on that line
    report = read_health(tmp_path / "health.json")
    assert report["dropped"] == summary.dropped and report["stopped"] == "max_frames"


# --- sensor rows --------------------------------------------------------------------------------

def faulty_csv(path):
    """28 rows with NaN, inf, text, missing and extra fields, a late and an unreadable timestamp,
    and a gap too long to fill (see test below for what each must become)."""
    rows = [[str(1000 + i), "0.1", "0.2", "0.3"] for i in range(28)]
    rows[6][2] = "NaN"
    rows[7][3] = "inf"
    rows[9] = rows[9][:3]                  # a field missing
    rows[10] = rows[10] + ["9"]            # a field too many
    rows[12][0] = "1003"                   # earlier than row 11: out of order
    rows[15][1] = "abc"
    rows[16][0] = "not-a-time"             # unreadable timestamps are not compared
    for i in (17, 18, 19, 20):             # four bad rows: 2 filled, then 2 skipped (restart)
        rows[i][1:] = ["", "", ""]
    path.write_text("timestamp,a,b,c\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def test_faulty_sensor_rows_are_filled_flagged_or_skipped_never_lost(sensor, tmp_path):
    out = io.StringIO()
    summary = score_source(sensor, str(faulty_csv(tmp_path / "rows.csv")), out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    by_index = {r["index"]: r for r in records}
    assert len(by_index) == len(records)  # no row reported twice
    windows = [i for i, r in by_index.items() if r["score"] is not None]
    skipped = [i for i, r in by_index.items() if r["score"] is None]
    assert windows == list(range(3, 19)) + list(range(24, 28))  # warm-up, restart after row 20
    assert skipped == [19, 20]
    assert all("window restarts" in by_index[i]["skipped"] for i in skipped)
    assert [i for i in windows if by_index[i].get("filled")] == [6, 7, 9, 10, 15, 17, 18]
    assert [i for i in windows if by_index[i].get("out_of_order")] == [12, 13, 14, 15]
    assert all(np.isfinite(by_index[i]["score"]) for i in windows)
    assert summary.rows == 28 and summary.windows == 20 and summary.rows_skipped == 2
    assert summary.rows_filled == 7 and summary.rows_out_of_order == 1
    warm_up = 3 + 3  # window - 1 rows at the start and after the restart
    assert summary.rows == summary.windows + summary.rows_skipped + warm_up
    assert summary.lines_written == len(records) and summary.lines_lost == 0


def test_out_of_order_flags_every_window_holding_the_late_row(sensor, caplog):
    scorer = StreamingScorer(sensor)
    times = [f"2024-05-01T10:00:{s:02d}" for s in (0, 1, 2, 3, 4, 4, 2, 5, 6, 7, 8, 9, 10)]
    results = []
    for i, stamp in enumerate(times):
        results += scorer.push(np.zeros(3), i, time=stamp)
    flagged = [r.index for r in results if r.out_of_order]
    assert flagged == [6, 7, 8, 9]  # the four windows that contain row 6 (a repeat is not late)
    assert scorer.rows_out_of_order == 1
    assert all(r.to_json().get("out_of_order") is (True if r.index in flagged else None)
               for r in results)
    # said once, with the fix for a file written newest first (scored backwards without a word)
    warned = [r.getMessage() for r in caplog.records if "earlier than row" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("row 6: its time '2024-05-01T10:00:02' is "
                                                     "earlier than row 5's")
    assert "tail -n +2 F | sed '$a\\' | tac" in warned[0]


def test_eval_counts_the_rows_out_of_time_order(sensor, tmp_path):
    import json

    from vigil.cli import commands as cli

    rows = ["timestamp,a,b,c,anomaly"] + [
        f"2024-05-01T10:{59 - k // 60:02d}:{59 - k % 60:02d},0.1,0.2,0.1,0" for k in range(120)]
    (tmp_path / "newest_first.csv").write_text("\n".join(rows) + "\n")
    assert cli.main(["eval", str(sensor.path), str(tmp_path / "newest_first.csv"), "--json",
                     str(tmp_path / "e.json"), "--quiet"]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["rows_out_of_order"] == 119 and "rows_unseen_inputs" in result


@pytest.fixture(scope="module")
def sensor_with_time_step(tmp_path_factory):
    """The tiny sensor model with the time step of 1 Hz training rows (gaps beyond 4.5 s)."""
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.export.package import write_artifact
    from vigil.runtime.core.spec import TimeStepSpec

    spec = replace(tiny_sensor_spec(), time_step=TimeStepSpec(numeric=False, typical=1.0,
                                                              limit=4.5))
    path = tmp_path_factory.mktemp("time-step") / "tiny-time-step.onnx"
    return runtime.load(write_artifact(tiny_sensor_graph(), spec, path))


def test_a_gap_in_time_flags_every_window_holding_both_rows(sensor_with_time_step):
    scorer = StreamingScorer(sensor_with_time_step)
    seconds = [0, 1, 2, 3, 4, 5, 3605, 3606, 3607, 3608, 3609, 3613, 3614]
    results = []
    for i, second in enumerate(seconds):
        results += scorer.push(np.zeros(3), i, time=f"2024-05-01T{second // 3600 + 10:02d}:"
                                                    f"{second % 3600 // 60:02d}:{second % 60:02d}")
    # the window (4 rows) holds rows 5 and 6 when it ends at 6, 7 or 8; a step of 4 s (rows
    # 10 and 11) is within the limit
    assert [r.index for r in results if r.time_gap] == [6, 7, 8]
    assert [r.index for r in results] == list(range(3, 13))  # scored as before: nothing dropped
    assert scorer.time_gaps == 1 and scorer.last_time_gap == (5, 6, 3600.0)
    assert scorer.summary()["time_gaps"] == 1
    assert all(r.to_json().get("time_gap") is (True if r.time_gap else None) for r in results)


def test_time_gaps_are_checked_only_between_buffered_rows_of_the_training_kind(
        sensor_with_time_step, sensor, caplog):
    scorer = StreamingScorer(sensor_with_time_step)
    # numbers where the training rows had ISO times, an unreadable cell: not compared
    for i, stamp in enumerate(["0", "100000", "n/a", "2024-05-01T10:00:00",
                               "2024-05-01T10:00:01"]):
        scorer.push(np.zeros(3), i, time=stamp)
    assert scorer.time_gaps == 0
    # a Python caller hears of it too, once a stream (only the CLI said it before)
    assert caplog.text.count("StreamingScorer: row 0's time '0' is a number, where the training "
                             "rows had ISO 8601 times") == 1
    # ... and said: counted, the first named with why
    assert scorer.times_unchecked == 3 and scorer.summary()["times_unchecked"] == 3
    assert scorer.first_time_unchecked == (0, "0", "a number, where the training rows had ISO "
                                                    "8601 times")
    blank = StreamingScorer(sensor_with_time_step)  # a clock field left empty is counted (r1)
    for i, stamp in enumerate(["", " ", "2024-05-01T10:00:00"]):
        blank.push(np.zeros(3), i, time=stamp)
    assert blank.times_unchecked == 2 and blank.first_time_unchecked == (0, "", "empty")
    # a long run of bad rows restarts the window: the rows after it are not compared with those
    # before it (no window holds both)
    for i in range(5, 9):
        scorer.push(np.full(3, np.nan), i, time=f"2024-05-01T10:00:{i:02d}")
    assert scorer.rows_skipped >= 1
    scorer.push(np.zeros(3), 9, time="2024-05-01T11:00:00")
    assert scorer.time_gaps == 0
    # one late row (a clock set back), or a wild time far back, is out of order, never a gap
    for seconds in ([0, 1, 2, 3, 4, 5, 6, -4, 8, 9, 10], [0, 1, 2, 3, 4, 5, 6, -10**8, 8, 9]):
        scorer = StreamingScorer(sensor_with_time_step)
        for i, second in enumerate(seconds):
            stamp = (datetime(2024, 5, 1, 10) + timedelta(seconds=second)).isoformat()
            scorer.push(np.zeros(3), i, time=stamp)
        assert scorer.rows_out_of_order == 1 and scorer.time_gaps == 0
    # times of another kind than the training's, or none: unchecked, not "no gap"
    numbers = StreamingScorer(sensor_with_time_step)
    for i in range(8):
        numbers.push(np.zeros(3), i, time=str(1714557600 + 100 * i))
    assert "time_gaps" not in numbers.summary()
    # an artifact without a recorded step (trained before it, or without times) checks nothing
    plain = StreamingScorer(sensor)
    for i, stamp in enumerate(["2024-05-01T10:00:00", "2024-05-09T10:00:00"]):
        plain.push(np.zeros(3), i, time=stamp)
    assert plain.time_gaps == 0 and "time_gaps" not in plain.summary()


def test_vigil_score_warns_of_the_first_gap_and_counts_them_all(sensor_with_time_step, caplog,
                                                               tmp_path):
    lines = ["timestamp,a,b,c"] + [f"2024-05-01T10:{t // 60:02d}:{t % 60:02d},0,0,0" for t in
                                   (0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 500, 501)]
    summary = score_source(sensor_with_time_step, "-", io.StringIO(),
                           stdin=io.StringIO("\n".join(lines) + "\n"))
    assert summary.time_gaps == 2 and summary.to_json()["time_gaps"] == 2
    warned = [r.getMessage() for r in caplog.records if "time_gap" in r.getMessage()]
    assert len(warned) == 1
    assert ("stdin: rows 5 and 6 are 95 s apart, where the training rows were 1 s apart (at most "
            "4.5 s)") in warned[0]
    # a file is scored in chunks, where later gaps are known when the first window is written:
    # the warning still names the first
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join(lines) + "\n")
    caplog.clear()
    summary = score_source(sensor_with_time_step, str(path), io.StringIO())
    assert summary.time_gaps == 2
    assert "rows 5 and 6 are 95 s apart" in caplog.text and "rows 10 and 11" not in caplog.text


def test_a_streams_later_gaps_and_clock_steps_are_said_again_at_most_once_an_hour(
        sensor_with_time_step, caplog, monkeypatch):
    """Over weeks only the first gap and the first clock step were ever said (a review: a 2-day
    outage and a second NTP step were only counted)."""
    from vigil.runtime.sensor import stream_watch, streaming

    monkeypatch.setattr(streaming, "REWARN_S", 0.0)
    monkeypatch.setattr(stream_watch, "REWARN_S", 0.0)
    stamps = [t for t in range(0, 20)] + [t for t in range(1000, 1020)] + [990, 991] \
        + [t for t in range(1021, 1040)] + [t for t in range(5000, 5020)] + [1000]
    lines = ["timestamp,a,b,c"] + [f"2024-05-01T{10 + t // 3600:02d}:{t // 60 % 60:02d}:"
                                   f"{t % 60:02d},0,0,0" for t in stamps]
    summary = score_source(sensor_with_time_step, "-", io.StringIO(),
                           stdin=io.StringIO("\n".join(lines) + "\n"))
    text = caplog.text
    assert summary.time_gaps == 2 and "1 more gap(s) in time since the last warning" in text
    assert summary.rows_out_of_order >= 2
    assert "more row(s) out of time order since the last warning" in text


def test_rows_filled_for_hours_are_said_and_named_as_the_last_error(sensor_with_time_step,
                                                                    caplog):
    """A sensor unreadable every other row was filled for hours with no word: stderr had only
    the end-of-stdin warning and the health report's last_error stayed null (a review). Now the
    1st, 10th, 100th, ... filled row is said, and each is the last error."""
    lines = ["timestamp,a,b,c"] + [
        f"2024-05-01T10:{t // 60:02d}:{t % 60:02d},0,{'ERR' if t >= 20 and t % 2 else 0},0"
        for t in range(300)]
    summary = score_source(sensor_with_time_step, "-", io.StringIO(),
                           stdin=io.StringIO("\n".join(lines) + "\n"))
    said = [r.getMessage() for r in caplog.records if "filled from the row before" in r.getMessage()]
    assert summary.rows_filled == 140
    assert len(said) == 3 and "1 row(s) filled so far" in said[0] and "said again at 10" in said[0]
    assert "100 row(s) filled so far" in said[2]
    assert summary.last_error.startswith("row 299 of stdin:")


def test_vigil_score_warns_of_times_it_cannot_check(sensor_with_time_step, caplog, tmp_path):
    """Day-first times (08.02.2020) turned the order and gap checks off without a word."""
    lines = ["timestamp,a,b,c"] + [f"01.05.2024 10:00:{t:02d},0,0,0" for t in range(8)]
    path = tmp_path / "day-first.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = score_source(sensor_with_time_step, str(path), io.StringIO())
    assert summary.times_unchecked == 8 and summary.to_json()["time_gaps"] is None
    assert ("row 0's time '01.05.2024 10:00:00' is neither a number nor an ISO 8601 time"
            in caplog.text)
    assert caplog.text.count("is neither a number") == 1  # once per file, with its name
    assert "StreamingScorer:" not in caplog.text


# --- outputs that fail --------------------------------------------------------------------------

class ClosingStream(io.StringIO):
    """An output whose reader goes away after ``lines`` writes (later writes: closed file)."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.left = lines
        self.kept: list[str] = []

    def write(self, text):
        if self.left == 0:
            raise ValueError("I/O operation on closed file.")
        self.left -= 1
        self.kept.append(text)
        return len(text)


def test_closed_output_stops_the_run_cleanly_and_says_where(frames_detector, tmp_path):
    camera = FakeCamera("f" * 50)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    out = ClosingStream(4)
    health = HealthReporter(tmp_path / "health.json", interval_s=3600)
    _, summary = run_frames(frames_detector, source, out=out, health=health)
    assert summary.stopped == "output_failed"
    assert "could not be written (I/O operation on closed file.)" in summary.last_error
    assert "the last line written was for frame 3 of 0" in summary.last_error
    assert (summary.lines_written, summary.lines_lost) == (4, 1)
    assert summary.last_written == "frame 3 of 0"
    assert [json.loads(text)["frame"] for text in out.kept] == [0, 1, 2, 3]
    assert all(not capture.open for capture in camera.captures)  # the source was closed
    report = read_health(tmp_path / "health.json")
    assert report["stopped"] == "output_failed" and report["lines_written"] == 4


def test_a_line_written_after_close_fails_as_a_closed_file(tmp_path):
    """A file or stdout output closed by JsonLines has no descriptor left: a later line fails as
    a closed stream's does (OutputError naming it, or counted as lost), not with an
    AttributeError on None."""
    out = JsonLines(tmp_path / "out.jsonl", on_error="stop", live=True)
    out.write({"a": 1})
    out.close()
    with pytest.raises(OutputError, match=r"could not be written \(I/O operation on closed file"):
        out.write({"a": 2})
    assert (out.lines_written, out.lines_lost) == (1, 1)
    out.on_error = "continue"
    out.write({"a": 3})
    assert (out.lines_written, out.lines_lost) == (1, 2)
    assert (tmp_path / "out.jsonl").read_text() == '{"a": 1}\n'


class FlakyStream(io.StringIO):
    """An output whose writes number ``failing`` fail with ENOSPC (a disk that fills, then frees)."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing = failing
        self.calls = 0

    def write(self, text):
        self.calls += 1
        if self.calls in self.failing:
            raise OSError(28, "No space left on device")
        return super().write(text)


def test_continue_policy_counts_lost_lines_and_goes_on(frames_detector):
    camera = FakeCamera("f" * 10)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    out = FlakyStream({3, 4, 5})
    _, summary = run_frames(frames_detector, source,
                            out=JsonLines(out, on_error="continue", live=True))
    written = [json.loads(line)["frame"] for line in out.getvalue().splitlines()]
    assert written == [0, 1, 5, 6, 7, 8, 9]
    assert (summary.lines_written, summary.lines_lost) == (7, 3)
    assert summary.frames_in == 10 and summary.stopped == "source_lost"


def test_dev_full_is_a_clear_error_in_both_policies(sensor, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    csv_path = faulty_csv(tmp_path / "rows.csv")
    summary = score_source(sensor, str(csv_path), JsonLines("/dev/full"))
    assert summary.stopped == "output_failed" and summary.lines_written == 0
    assert "output '/dev/full' could not be written (No space left on device)" in \
        summary.last_error
    with pytest.raises(OutputError, match="No space left on device"):
        JsonLines("/dev/full", live=True).write({"index": 0})
    summary = score_source(sensor, str(csv_path), JsonLines("/dev/full", on_error="continue"))
    assert summary.stopped == "end" and summary.lines_lost == 22 and summary.rows == 28


def child_with_small_disk(limit_bytes: int):
    """For a child process: files it writes cannot grow past ``limit_bytes`` (EFBIG, as a full
    disk would refuse them), and SIGXFSZ does not kill it."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


def test_cli_disk_full_exit_4_and_only_whole_lines_on_disk(tiny_sensor, tmp_path):
    rows = "".join(f"{i},{i % 7 / 10},{i % 5 / 10},{i % 3 / 10}\n" for i in range(5000))
    (tmp_path / "rows.csv").write_text("timestamp,a,b,c\n" + rows)
    out, health = tmp_path / "scores.jsonl", tmp_path / "health.json"
    limit = 100_003  # not a line boundary
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "score", str(tiny_sensor), str(tmp_path / "rows.csv"),
         "--jsonl", str(out), "--health", str(health)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        preexec_fn=child_with_small_disk(limit), env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert done.returncode == cli.EXIT_OUTPUT == 4, done.stderr[-2000:]
    assert "vigil: error: output" in done.stderr and "File too large" in done.stderr
    summary = json.loads(next(line for line in done.stderr.splitlines()
                              if line.startswith('{"summary"')))["summary"]
    data = out.read_bytes()
    assert 0 < len(data) <= limit and data.endswith(b"\n")  # cut back to the last whole line
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert [r["index"] for r in lines] == list(range(3, 3 + len(lines)))
    assert summary["stopped"] == "output_failed" and summary["lines_written"] == len(lines)
    assert summary["last_written"] == f"row {lines[-1]['index']} of {tmp_path / 'rows.csv'}"
    assert json.loads(health.read_text())["stopped"] == "output_failed"


@pytest.mark.parametrize("unattended", [False, True])
def test_a_reader_that_goes_away_ends_a_pipe_quietly_and_an_unattended_run_as_a_fault(
        tiny_sensor, tmp_path, unattended):
    """`vigil score ... | head` ends with exit 0, as Unix tools do; under --health (a service's
    pipeline whose next command exited) it is exit 4, said on stderr, and the health report's
    `output_closed` is a fault to `vigil health-check` (it said exit 0 and `error`)."""
    rows = "".join(f"{i},{i % 7 / 10},{i % 5 / 10},{i % 3 / 10}\n" for i in range(20000))
    (tmp_path / "rows.csv").write_text("timestamp,a,b,c\n" + rows)
    health = tmp_path / "health.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "score", str(tiny_sensor), str(tmp_path / "rows.csv"),
         *(["--health", str(health)] if unattended else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    process.stdout.readline()  # the first line, then the reader goes away
    process.stdout.close()
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    if not unattended:
        assert process.returncode == cli.EXIT_OK and "Traceback" not in err
        return
    assert process.returncode == cli.EXIT_OUTPUT, err[-2000:]
    assert "standard output's reader went away" in err and "Traceback" not in err
    assert json.loads(health.read_text())["stopped"] == "output_closed"
    assert cli.main(["health-check", str(health)]) == cli.EXIT_FAILURE


@pytest.mark.parametrize("lasts", [True, False])
def test_a_lasting_alarm_that_ends_because_the_stream_learned_the_change_is_said(
        sensor_artifacts, tmp_path, caplog, lasts):
    """A shift that persists is taken in by the adaptive threshold and the likelihood's level
    until it no longer alarms; that silence looked like recovery (a review: silent from 6,300
    windows of an unrepaired fault on). Said, and kept as the run's last_error; a shift that
    ends is not."""
    from vigil.runtime.sensor.tables import read_table

    detector = runtime.load(sensor_artifacts.fp32)
    normal = read_table(sensor_artifacts.train_csv, features=detector.features).values[:2000]
    rows = np.concatenate([normal] * 15)
    rows = rows + np.random.default_rng(0).normal(scale=0.01, size=rows.shape)
    rows[2000:None if lasts else 4000, 0] += 4 * normal[:, 0].std()
    path = tmp_path / "shift.csv"
    path.write_text(",".join(detector.features) + "\n" + "".join(
        ",".join(f"{v:.5f}" for v in row) + "\n" for row in rows))
    with caplog.at_level("INFO", logger="vigil"):
        summary = score_source(detector, str(path), io.StringIO())
    assert "the alarm has stayed on for 1000 windows, since row 2000" in caplog.text
    assert "or until the stream has learned the new readings as normal" in caplog.text
    learned = "is still above the threshold of"
    if lasts:
        assert learned in caplog.text and "a change that persists no longer alarms" in caplog.text
        assert "ended with the score" in summary.last_error
    else:
        assert learned not in caplog.text
        assert "the lasting alarm since row 2000 ended" in caplog.text


def test_a_python_stream_hears_that_a_lasting_fault_went_silent(sensor_artifacts, caplog):
    """The lasting and silenced alarms were said only by `vigil score` (review hB, session 61):
    a program pushing rows to a StreamingScorer saw the alarm stop while the fault went on."""
    from vigil.runtime.sensor.tables import read_table

    detector = runtime.load(sensor_artifacts.fp32)
    normal = read_table(sensor_artifacts.train_csv, features=detector.features).values[:2000]
    rows = np.concatenate([normal] * 15)
    rows = rows + np.random.default_rng(0).normal(scale=0.01, size=rows.shape)
    rows[2000:, 0] += 4 * normal[:, 0].std()
    stream = runtime.StreamingScorer(detector)
    heard = []
    stream.watch.on_problem = heard.append
    with caplog.at_level("INFO", logger="vigil"):
        for row in rows:
            stream.push(row)
    assert "the alarm has stayed on for 1000 windows, since row 2000" in caplog.text
    assert "a change that persists no longer alarms" in caplog.text
    first, row, score, before, now = stream.watch.silent_alarm
    assert first == 2000 and row > first and before < score <= now
    assert len(heard) == 1 and heard[0].startswith(f"row {row}: the lasting alarm since row 2000")


# --- the command line, run unattended -----------------------------------------------------------

@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP"])
def test_sigterm_ends_a_live_run_cleanly_after_a_stall(tiny_sensor, tmp_path, stop):
    out, health = tmp_path / "scores.jsonl", tmp_path / "health.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "score", str(tiny_sensor), "-", "--jsonl", str(out),
         "--health", str(health), "--health-interval", "0.02"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)
    try:
        process.stdin.write("timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(10)))
        process.stdin.flush()  # then nothing more: the stream stalls with stdin open
        # rows are counted as read, before they are scored (a loaded machine's first inference
        # outlasted two reports): the stream has stalled once its lines are written too
        stalled = wait_for(lambda: (r := read_health(health)) and r["rows_in"] == 10
                           and r["lines_written"] == 7 and r["idle_s"] > 0 and r,
                           "a health report of the stalled stream")
        assert stalled["status"] == "running" and stalled["windows"] == 7
        process.send_signal(getattr(signal, stop))  # SIGHUP: a closed SSH session
        _, errors = process.communicate(timeout=HANG_GUARD_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors[-2000:]
    summary = json.loads(errors.strip().splitlines()[-1])["summary"]
    assert summary["stopped"] == "interrupted" and summary["rows"] == 10
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == \
        list(range(3, 10))
    final = json.loads(health.read_text())
    assert final["status"] == "stopped" and final["stopped"] == "interrupted"


def test_health_on_stderr_and_json_logs(tiny_sensor, tmp_path, capsys):
    csv_path = faulty_csv(tmp_path / "rows.csv")
    code = cli.main(["--log-json", "score", str(tiny_sensor), str(csv_path), "--jsonl",
                     "/dev/full", "--on-output-error", "continue", "--health", "-"])
    assert code == cli.EXIT_OUTPUT
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    health = [line["health"] for line in lines if "health" in line]
    assert health[0]["status"] == "running" and health[-1]["status"] == "stopped"
    assert health[-1]["rows_in"] == 28 and health[-1]["lines_lost"] == 22
    logs = [line for line in lines if "level" in line]
    assert logs and all({"time", "level", "message"} <= set(line) for line in logs)
    assert any("scoring goes on" in line["message"] for line in logs)
    assert logs[-1]["message"] == "22 result lines could not be written; 0 were"


def test_final_health_report_says_what_the_anomaly_likelihood_learned(tmp_path, capsys):
    """The README's migration note: a run with the likelihood reports its state at exit."""
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.export.package import write_artifact
    from vigil.runtime.core.spec import LikelihoodSpec

    spec = replace(tiny_sensor_spec(), likelihood=LikelihoodSpec(
        short=2, long=8, z=4.27, warmup=3, std_floor=1e-3, level_warmup=5))
    model = write_artifact(tiny_sensor_graph(), spec, tmp_path / "likelihood.onnx")
    health = tmp_path / "health.json"
    code = cli.main(["score", str(model), str(faulty_csv(tmp_path / "rows.csv")), "--jsonl",
                     str(tmp_path / "out.jsonl"), "--health", str(health)])
    assert code == cli.EXIT_OK, capsys.readouterr().err
    state = json.loads(health.read_text())["anomaly_likelihood"]
    assert state["means_kept"] == 8 and state["learned"] > 8 and state["warm"]
    assert state["level"] is not None and isinstance(state["last_z"], float)


def test_health_file_that_cannot_be_written_never_stops_the_run(tmp_path, caplog):
    path = tmp_path / "health.json"
    reporter = HealthReporter(path, interval_s=3600)
    counts = {"rows_in": 0}
    reporter.start("sensor", "test", lambda: dict(counts), "rows_in")
    path.unlink()
    path.mkdir()  # now a folder is in the way
    counts["rows_in"] = 5
    reporter.write()
    assert "could not be written" in caplog.text
    path.rmdir()
    reporter.stop("end")
    report = json.loads(path.read_text())
    assert report["rows_in"] == 5 and report["stopped"] == "end" and reporter.reports == 2


@pytest.mark.parametrize("args, message", [
    (["--health-interval", "0"], "`--health-interval` must be a number of seconds in (0, 86400]"),
    (["--health", "{tmp}"], "is a folder; expected a file"),
    (["--expect-sha256", "abc"], "`--expect-sha256` must be 64 hexadecimal characters"),
])
def test_unattended_flags_are_validated(tiny_sensor, tmp_path, capsys, args, message):
    csv_path = faulty_csv(tmp_path / "rows.csv")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--health" not in args:
        args += ["--health", str(tmp_path / "h.json")]
    code = cli.main(["score", str(tiny_sensor), str(csv_path), "--jsonl",
                     str(tmp_path / "out.jsonl"), *args])
    assert code == cli.EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()  # refused before anything was written


def test_idle_time_counts_from_when_input_stopped_not_from_the_last_report(tmp_path):
    """Rows stop 0.1 s into a run reported every 1.5 s: the report at 3 s says about 2.9 s idle
    (the count is looked at twice a second), not the 1.5 s since the report that first saw it."""
    path = tmp_path / "health.json"
    counts = {"rows_in": 0}
    health = HealthReporter(path, interval_s=1.5)
    health.start("rows", "stdin", lambda: dict(counts), "rows_in")
    try:
        time.sleep(0.1)
        counts["rows_in"] = 6
        second = wait_for(lambda: (r := read_health(path)) and r["uptime_s"] >= 2.9 and r,
                          "the second report")
    finally:
        health.stop("end")
    assert second["rows_in"] == 6
    assert second["idle_s"] >= second["uptime_s"] - 0.1 - IDLE_RESOLUTION_S - 0.2


def test_the_end_of_a_watched_stdin_is_warned_of(tiny_sensor, tmp_path, monkeypatch, capsys):
    """Under a health report, stdin's end (the feeding process gone) ends the run with exit 0,
    which a watchdog leaves stopped: it is said, with what to check."""
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(
        "timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(10))))
    assert cli.main(["score", str(tiny_sensor), "-", "--jsonl", str(tmp_path / "o.jsonl"),
                     "--health", str(tmp_path / "h.json")]) == 0
    assert "stdin ended after 10 rows: the run ends here" in capsys.readouterr().err
    # ... and `vigil health-check` calls it a fault, so that a watchdog restarts the pipeline
    # (it said "finished, not to be restarted", and the device went unwatched for good)
    assert cli.main(["health-check", str(tmp_path / "h.json")]) == cli.EXIT_FAILURE
    assert "its standard input ended after 10 rows" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_after_a_hang_up_stopped_a_run_a_second_one_is_ignored_and_other_stops_restore_it():
    """A closed terminal's SIGHUP comes twice (the kernel's, then its shell's to its jobs): once
    one has stopped the run, the second must not kill the process while it exits."""
    from vigil.runtime.core.interrupts import StopSignals

    before = signal.getsignal(signal.SIGHUP)
    try:
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGHUP)  # recorded: honoured at the next safe point
        assert stop.requested == "SIGHUP" and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGHUP)  # the shell's: ignored (the default would end us)
        signal.signal(signal.SIGHUP, before)
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == "SIGINT" and signal.getsignal(signal.SIGHUP) == before
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_hang_up_of_the_terminal_it_writes_to_stops_the_run_with_exit_0(tiny_sensor, tmp_path):
    """SIGHUP from a closed terminal: the summary's and logs' writes to it then fail with EIO,
    which ended the stopped run with exit 1; they now go to /dev/null and the run exits 0, its
    results and final health report written."""
    import os
    import pty

    out, health = tmp_path / "scores.jsonl", tmp_path / "health.json"
    read_end, write_end = os.pipe()
    pid, terminal = pty.fork()
    if pid == 0:  # the child: stdin the pipe, stdout and stderr the terminal
        os.dup2(read_end, 0)
        os.close(write_end)
        os.chdir(tmp_path)
        os.execv(sys.executable, [sys.executable, "-m", "vigil", "score", str(tiny_sensor), "-",
                                  "--jsonl", str(out), "--health", str(health),
                                  "--health-interval", "0.05"])
    os.close(read_end)
    try:
        os.write(write_end, ("timestamp,a,b,c\n" + "".join(
            f"{i},0.1,0.2,0.3\n" for i in range(10))).encode())
        wait_for(lambda: (r := read_health(health)) and r["rows_in"] == 10,
                 "a health report of the rows")
        os.close(terminal)  # the terminal goes away, and its session hears SIGHUP
        time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + HANG_GUARD_S
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the run did not stop after SIGHUP")
    finally:
        os.close(write_end)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert len(out.read_text().splitlines()) == 7
    assert json.loads(health.read_text())["stopped"] == "interrupted"


def test_a_results_file_truncated_by_logrotate_goes_on_at_its_end_and_appends(tmp_path):
    """logrotate's copytruncate empties a live --jsonl: the writer went on at its old offset,
    so the file began with a hole of NUL bytes, and a restart with --append refused it."""
    from vigil.runtime.core.output import JsonLines

    path = tmp_path / "live.jsonl"
    out = JsonLines(path, live=True)
    for index in range(5):
        out.write({"index": index, "score": 0.5, "anomaly": False})
    out.flush()
    rotated = path.read_bytes()
    path.write_bytes(b"")  # what copytruncate does after copying
    for index in range(5, 8):
        out.write({"index": index, "score": 0.5, "anomaly": False})
    out.close()
    data = path.read_bytes()
    assert b"\0" not in data and [json.loads(line)["index"] for line in data.splitlines()] == \
        [5, 6, 7] and rotated.count(b"\n") == 5
    # a file left with such a hole by an older run is still continued
    path.write_bytes(b"\0" * 300 + data)
    again = JsonLines(path, mode="append")
    again.write({"index": 8, "score": 0.5, "anomaly": False})
    again.close()
    assert path.read_bytes().endswith(b'"index": 8, "score": 0.5, "anomaly": false}\n')
    from vigil.runtime.core.output import read_results

    assert [record["index"] for _, record in read_results(path)] == [5, 6, 7, 8]  # --resume reads it
