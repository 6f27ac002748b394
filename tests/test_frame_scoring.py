"""Scoring frames: the tiny golden image model, JSON lines, overlays, live runs, the CLI, no TensorFlow."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import textwrap
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from image_fixtures import THRESHOLD, defect_frame, normal_frame, reference_scores
from vigil.runtime.camera.scoring import (FrameScoringOptions, FrameSummary, preview_unavailable,
                                   score_frames)
from vigil.runtime.camera.sources import Frame, ReconnectPolicy, SourceOptions, SourceStats, open_source
from test_runtime_isolation import BLOCKER, TRAINING_SIDE, run_blocked
from test_sources import FakeCamera, write_video

FAST = ReconnectPolicy(initial_delay_s=0.001, max_delay_s=0.01, max_attempts=3)
DEFECT_BOX = (16, 8, 24, 20)  # x, y, w, h of the white patch in defect frames


@pytest.fixture(scope="module")
def detector(tiny_image_artifact):
    return runtime.load(tiny_image_artifact)


def write_folder(folder):
    """normal, defect, normal, truncated JPEG, text named .jpg: 5 items, 3 scorable, 1
    anomalous; and a Thumbs.db, which is no item."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    frames = {"a.png": normal_frame(rng), "b.png": defect_frame(rng, box=DEFECT_BOX),
              "c.png": normal_frame(rng, 120, 90)}
    for name, frame in frames.items():
        assert cv2.imwrite(str(folder / name), frame)
    assert cv2.imwrite(str(folder / "d.jpg"), normal_frame(rng))
    data = (folder / "d.jpg").read_bytes()
    (folder / "d.jpg").write_bytes(data[: len(data) // 2])
    (folder / "e.jpg").write_text("notes")  # named as an image: read, and reported unusable
    (folder / "Thumbs.db").write_bytes(b"\0" * 64)  # named as neither: passed over
    return frames


def run(detector, spec_or_source, **options) -> tuple[list[dict], FrameSummary]:
    source = open_source(spec_or_source) if isinstance(spec_or_source, str) else spec_or_source
    out = io.StringIO()
    summary = score_frames(detector, source, out, FrameScoringOptions(**options))
    return [json.loads(line) for line in out.getvalue().splitlines()], summary


def iou(box, other) -> float:
    ax, ay, aw, ah = box
    bx, by, bw, bh = other
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


# --- the detector on the golden model -----------------------------------------------------------

def test_tiny_model_scores_match_the_closed_form(detector):
    rng = np.random.default_rng(1)
    frames = [normal_frame(rng), defect_frame(rng), normal_frame(rng, 100, 140),
              cv2.cvtColor(normal_frame(rng), cv2.COLOR_BGR2GRAY)]
    expected = reference_scores(frames)
    np.testing.assert_allclose(detector.score(frames), expected, atol=1e-6)  # batch of 4
    np.testing.assert_allclose(detector.score(frames[1]), expected[1:2], atol=1e-6)  # batch 1
    assert detector.predict(frames).tolist() == [False, True, False, False]
    assert detector.threshold == THRESHOLD and detector.pixel_threshold == THRESHOLD
    full, boxes = detector.locate(frames[1])
    assert full.shape == (48, 64) and len(boxes) == 1
    box = boxes[0]
    assert iou((box["x"], box["y"], box["w"], box["h"]), DEFECT_BOX) > 0.7


@pytest.mark.parametrize("frame, error, message", [
    (np.zeros((0, 0, 3), np.uint8), ValueError, r"at least 2x2 pixels; received \(0, 0, 3\)"),
    (np.zeros((48, 64, 3), np.float32), TypeError, "must be uint8.*received dtype float32"),
    (np.zeros((48, 64, 2), np.uint8), ValueError,
     r"\(height, width, 1\|3\|4\); received \(48, 64, 2\)"),
    (None, ValueError, "is None"),
    ("part.png", TypeError, r"received a path \('part.png'\), which is not read here: decode"),
    (Path("part.png"), TypeError, r"received a path .*cv2.imread\(path\)"),
    (b"\x89PNG\r\n", TypeError, "received an encoded image's bytes.*cv2.imdecode"),
    # misuse a Python caller meets: each named with its fix (a review)
    (np.zeros((48, 64, 3), np.uint8).tolist(), TypeError,
     r"nested list.*np.asarray\(frame, dtype=np.uint8\)"),
    ((f for f in [np.zeros((48, 64, 3), np.uint8)]), TypeError,
     r"received generator \(several frames: give a list"),
    ({"a": 1}, TypeError, "received dict"),
    (np.zeros((48, 64, 3), np.int32), TypeError, r"levels 0-255 .*frame.astype\(np.uint8\)"),
    (np.full((48, 64, 3), 4000, np.int32), TypeError, r"16-bit levels .*\(frame >> 8\)"),
    (np.full((48, 64), 100, np.uint8).tolist(), TypeError, "nested list"),  # a gray frame's
])
def test_bad_frames_are_clear_errors_from_the_detector(detector, frame, error, message):
    with pytest.raises(error, match=message):
        detector.score(frame)


def test_locate_takes_one_frame_and_a_float_frame_is_told_how_to_convert(detector):
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="locate takes one at a time.*for frame in frames"):
        detector.locate(frames)
    with pytest.raises(ValueError, match="locate takes one at a time"):
        detector.locate(list(frames))
    with pytest.raises(TypeError, match=r"\(frame \* 255\).round\(\).clip\(0, 255\)"):
        detector.score(np.zeros((48, 64, 3), np.float32))


# --- score_frames -------------------------------------------------------------------------------

def test_folder_json_lines_and_summary(detector, tmp_path, caplog):
    frames = write_folder(tmp_path / "images")
    caplog.set_level(logging.WARNING)
    records, summary = run(detector, str(tmp_path / "images"))
    assert [r["source"].rsplit("/", 1)[-1] for r in records] == ["a.png", "b.png", "c.png",
                                                                "d.jpg", "e.jpg"]
    assert "1 file(s) not named as an image or a video are not scored (Thumbs.db)" in caplog.text
    if hasattr(os, "mkfifo"):  # a pipe named as an image was passed over without a word
        os.mkfifo(tmp_path / "images" / "live.png")
        caplog.clear()
        assert len(run(detector, str(tmp_path / "images"))[0]) == len(records)
        assert ("1 entry that is no regular file (a pipe, a device or a socket: live.png) is not "
                "scored") in caplog.text
        (tmp_path / "images" / "live.png").unlink()
    # each skipped frame is named on stderr, not only counted
    assert "frame 3 of" in caplog.text and "damaged JPEG: it was cut off" in caplog.text
    assert [r["frame"] for r in records] == list(range(5))
    scored = records[:3]
    for record in scored:
        assert set(record) - {"unlike_training"} == {"frame", "source", "score", "anomaly",
                                                    "threshold", "latency_ms", "width",
                                                    "height", "boxes"}
        assert record["latency_ms"] > 0
    # the frame as read, whatever size the model takes: the boxes' frame
    assert [(r["width"], r["height"]) for r in scored] == [
        (f.shape[1], f.shape[0]) for f in frames.values()]
    assert (scored[2]["width"], scored[2]["height"]) != (scored[0]["width"], scored[0]["height"])
    expected = reference_scores(list(frames.values()))
    np.testing.assert_allclose([r["score"] for r in scored], expected, atol=1e-6)
    assert [r["anomaly"] for r in scored] == [False, True, False]
    assert scored[0]["boxes"] == [] and len(scored[1]["boxes"]) == 1
    box = scored[1]["boxes"][0]
    assert iou((box["x"], box["y"], box["w"], box["h"]), DEFECT_BOX) > 0.7
    for record, reason in zip(records[3:], ("damaged JPEG: it was cut off", "cannot be decoded as an image")):
        assert record["score"] is None and record["anomaly"] is None
        assert reason in record["skipped"]

    assert (summary.frames_in, summary.scored, summary.skipped) == (5, 3, 2)
    assert summary.scored + summary.skipped == summary.frames_in
    assert summary.anomalies == 1 and summary.dropped == 0 and summary.reconnects == 0
    assert summary.stopped == "end" and "e.jpg" in summary.last_error
    assert 0 < summary.p50_ms <= summary.p99_ms and summary.fps > 0
    assert json.loads(json.dumps(summary.to_json()))["frames_in"] == 5


def test_a_reject_always_says_where_even_below_the_pixel_threshold(detector, tmp_path, capsys):
    """An image threshold set below what the pixel threshold marks (eval's best-F1 suggestion):
    each anomalous frame still gets a box, around its map's peak, marked as such."""
    from vigil.runtime.camera.frames import frame_boxes

    heat = np.zeros((40, 60), np.float32)
    heat[10:14, 20:26] = 5.0
    heat[30, 50] = 2.0
    assert frame_boxes(heat, 10.0, anomaly=False) == []
    (weak,) = frame_boxes(heat, 10.0, anomaly=True)
    assert (weak["x"], weak["y"], weak["w"], weak["h"]) == (20, 10, 6, 4)
    assert weak["below_pixel_threshold"] and weak["peak"] == 5.0
    assert "below_pixel_threshold" not in frame_boxes(heat, 1.0, anomaly=True)[0]
    assert frame_boxes(np.zeros((8, 8)), 1.0, anomaly=True) == []  # a flat map points nowhere
    # a peak above the pixel threshold in a region too small to box there is not "below" it
    dot = np.zeros((40, 60), np.float32)
    dot[5, 5] = 3.0
    (small,) = frame_boxes(dot, 2.0, anomaly=True)
    assert (small["x"], small["y"]) == (5, 5) and small["below_pixel_threshold"] is False
    # an infinite pixel is the peak; NaN pixels mark nothing
    odd = heat.copy()
    odd[0, 0], odd[39, 59] = np.inf, np.nan
    (peak,) = frame_boxes(odd, 1e30, anomaly=True)
    assert (peak["x"], peak["y"], peak["w"], peak["h"]) == (0, 0, 1, 1)
    assert frame_boxes(np.full((4, 4), np.nan), 1.0, anomaly=True) == []
    from vigil.runtime.camera.frames import _heat_range

    assert _heat_range(detector.spec, 7.5)[0] == 7.5  # --pixel-threshold colours from it too
    assert _heat_range(detector.spec)[0] == detector.spec.pixel_threshold.value
    write_folder(tmp_path / "images")
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(detector.path), str(tmp_path / "images"), "--jsonl", str(out),
                     "--threshold", "-1000", "--pixel-threshold", "1000"]) == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()][:3]
    assert all(r["anomaly"] and r["boxes"] for r in scored)
    assert all(r["boxes"][0]["below_pixel_threshold"] for r in scored)
    capsys.readouterr()


def test_overlays_for_anomalous_frames_only_unless_all(detector, tmp_path):
    write_folder(tmp_path / "images")
    records, summary = run(detector, str(tmp_path / "images"), overlay_dir=tmp_path / "some")
    written = sorted(p.name for p in (tmp_path / "some").iterdir())
    assert written == ["000001_b.jpg"] and summary.overlays == 1
    assert records[1]["overlay"].endswith("000001_b.jpg") and "overlay" not in records[0]
    picture = cv2.imread(str(tmp_path / "some" / "000001_b.jpg"))
    # the 64x48 frame, with its label band above and the colour bar on the right
    assert picture.shape[0] > 48 and picture.shape[1] > 64 and picture.shape[2] == 3

    _, summary = run(detector, str(tmp_path / "images"), overlay_dir=tmp_path / "all",
                     overlay_all=True)
    written = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert written == ["000000_a.jpg", "000001_b.jpg", "000002_c.jpg"] and summary.overlays == 3


def test_the_overlay_folder_is_made_only_when_an_overlay_is_written(detector, tmp_path):
    write_folder(tmp_path / "images")
    _, summary = run(detector, str(tmp_path / "images"), overlay_dir=tmp_path / "a" / "b",
                     max_frames=1)  # the first frame is normal: nothing to overlay
    assert summary.overlays == 0 and not (tmp_path / "a").exists()


def test_an_overlay_never_replaces_another(detector, tmp_path):
    """Two videos' (or two runs') frames of the same number: the second overlay is written beside
    the first, and each line names its own picture."""
    from test_sources import write_video

    overlays = tmp_path / "alarms"
    first, _ = run(detector, str(write_video(tmp_path / "cam1.avi", 2)), overlay_dir=overlays,
                   overlay_all=True)
    kept = (overlays / "00000000.jpg").read_bytes()
    second, _ = run(detector, str(write_video(tmp_path / "cam2.avi", 2, size=(48, 64))),
                    overlay_dir=overlays, overlay_all=True)
    assert (overlays / "00000000.jpg").read_bytes() == kept
    assert [Path(r["overlay"]).name for r in first + second] == [
        "00000000.jpg", "00000001.jpg", "00000000-2.jpg", "00000001-2.jpg"]
    assert cv2.imread(second[0]["overlay"]).shape != cv2.imread(first[0]["overlay"]).shape


def test_video_every_frame_accounted_and_annotated_video_written(detector, tmp_path):
    path = write_video(tmp_path / "clip.avi", 15)
    records, summary = run(detector, str(path), overlay_video=tmp_path / "out" / "annotated.avi")
    assert [r["frame"] for r in records] == list(range(15))
    assert all(r["score"] is not None and "time" not in r for r in records)  # live lines only
    # where each frame is shown: the clip is 10 frames/s (an MJPG AVI, read by its index)
    assert [r["position_s"] for r in records] == [round(k / 10, 3) for k in range(15)]
    assert (summary.frames_in, summary.scored, summary.skipped, summary.dropped) == (15, 15, 0, 0)
    assert summary.video_frames == 15
    written = cv2.VideoCapture(str(tmp_path / "out" / "annotated.avi"))
    count = 0
    while written.read()[0]:
        count += 1
    written.release()
    assert count == 15
    assert summary.video == str(tmp_path / "out" / "annotated.avi")
    # a second run never replaces the first run's video: it writes beside it, and says where
    before = (tmp_path / "out" / "annotated.avi").read_bytes()
    _, again = run(detector, str(write_video(tmp_path / "short.avi", 3)),
                   overlay_video=tmp_path / "out" / "annotated.avi")
    assert (tmp_path / "out" / "annotated.avi").read_bytes() == before
    assert again.video == str(tmp_path / "out" / "annotated-2.avi") and again.video_frames == 3


def test_truncated_video_is_a_counted_skip(detector, tmp_path):
    path = write_video(tmp_path / "clip.avi", 20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    records, summary = run(detector, str(path))
    assert [r["frame"] for r in records] == list(range(20))
    skipped = [r for r in records if r["score"] is None]
    assert skipped and all("truncated or corrupt" in r["skipped"] for r in skipped)
    assert summary.skipped == len(skipped) and summary.scored == 20 - len(skipped)
    assert summary.stopped == "end"


def test_live_run_reports_reconnect_and_gives_up_cleanly(detector):
    camera = FakeCamera("f" * 4 + "xx" + "f" * 4)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    records, summary = run(detector, source)
    assert [r["frame"] for r in records] == list(range(8))
    assert "gap_s" in records[4] and all("gap_s" not in r for i, r in enumerate(records) if i != 4)
    assert summary.reconnects == 1 and summary.gaps[0]["resumed_index"] == 4
    assert summary.stopped == "source_lost"
    assert "gave up after 3 reconnect attempts" in summary.last_error
    assert summary.scored == 8 and summary.skipped == 0
    # each live line says when its frame was read: numbers start again at 0 after a restart
    times = [datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%f%z") for r in records]
    assert times == sorted(times) and abs(times[0].timestamp() - time.time()) < 600
    assert all(r["time"].endswith("Z") and len(r["time"]) == 24 for r in records)


def test_live_lines_carry_their_frames_age(detector):
    """A live frame's age when decided (read to line, the queue's wait included): a reject gate
    can see a stale decision (`latency_ms` is the model's time alone)."""
    camera = FakeCamera("f" * 6)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    records, _ = run(detector, source)
    scored = [r for r in records if r["score"] is not None]
    assert scored and all(0 <= r["age_ms"] < 60_000 for r in scored)


def test_a_live_stream_that_changes_format_is_looked_at_again(detector, monkeypatch, tmp_path,
                                                             caplog):
    """The colour, shape and size checks look at a stream's first frames; a camera restarted or
    reconfigured into another size is looked at again (a review's, restarted into 640x360 gray,
    went unsaid)."""
    from vigil.runtime.camera import scoring

    looked: list[tuple[int, ...]] = []
    monkeypatch.setattr(scoring, "FRAME_CHECKS", (lambda frame, spec: looked.append(frame.shape),))
    rng = np.random.default_rng(3)
    frames = [normal_frame(rng) for _ in range(15)] + [normal_frame(rng, 40, 90)
                                                         for _ in range(15)]
    camera = FakeCamera("f" * 30, frames=frames)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    run(detector, source)
    assert looked == [(48, 64, 3)] * 10 + [(40, 90, 3)] * 10
    # a folder's images of several sizes (each file looked at) are said once, not at each change
    monkeypatch.setattr(scoring, "FRAME_CHECKS", (lambda frame, spec: "not as trained",))
    folder = tmp_path / "mixed"
    folder.mkdir()
    for n, frame in enumerate(frames[10:20]):  # sizes alternate 5 and 5
        cv2.imwrite(str(folder / f"{n:02d}.png"), frame)
    with caplog.at_level("WARNING", logger="vigil"):
        records, summary = run(detector, str(folder))
    assert caplog.text.count("not as trained") == 1
    assert all(r.get("unlike_training") for r in records) and summary.frames_unlike_training == 10
    # a video's frames are alike: each carries what its first frames showed (review hF)
    records, summary = run(detector, str(write_video(tmp_path / "v.avi", 12)))
    assert [len(r.get("unlike_training", ())) for r in records] == [1] * 12
    assert summary.frames_unlike_training == 12


def test_an_overlay_folder_that_cannot_be_made_is_said_once_and_loses_no_line(detector,
                                                                             tmp_path, capsys,
                                                                             caplog):
    """A dangling link as --overlay-dir: each overlay failed in a warning without a reason, exit
    0 (review hF, session 61); ending the run there lost the frame's line (review hG). Said once
    with its reason, every line kept; the command refuses such a link before it starts."""
    write_folder(tmp_path / "images")
    (tmp_path / "ovl").symlink_to(tmp_path / "gone" / "alarms")
    with caplog.at_level("ERROR", logger="vigil"):
        records, summary = run(detector, str(tmp_path / "images"), overlay_dir=tmp_path / "ovl",
                               overlay_all=True)
    assert len(records) == 5 and summary.overlays == 0
    assert caplog.text.count("cannot be made (File exists): no overlay is written") == 1
    assert cli.main(["score", str(detector.path), str(tmp_path / "images"), "--overlay-dir",
                     str(tmp_path / "ovl")]) == 2
    assert "is a link to" in capsys.readouterr().err


def test_the_health_counts_say_while_a_live_source_is_being_reopened(detector):
    from vigil.runtime.camera.scoring import _counts
    from vigil.runtime.core.output import JsonLines

    camera = FakeCamera("ff" + "x" * 3, hold_at=None)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    _, summary = run(detector, source)
    counts = _counts(summary, source, JsonLines(io.StringIO()))
    # it gave up: no longer reconnecting (the report's status says it stopped); the giving up
    # is the error, with the last attempt's reason
    assert counts["reconnecting"] is False and "gave up" in counts["last_error"]
    assert "(reopening failed (the capture did not open))" in counts["last_error"]
    assert source.stats.reconnecting is None
    # reopened: said no more while frames come again
    recovered = FakeCamera("ff" + "x" + "fff", hold_at=5)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), recovered.factory)
    try:
        frames = iter(source)
        for _ in range(3):  # two before the outage, one after it
            assert next(frames).image is not None
        assert source.stats.reconnects == 1 and source.stats.reconnecting is None
    finally:
        recovered.resume.set()
        source.close()


def test_live_bad_frames_are_skipped_and_the_run_goes_on(detector):
    rng = np.random.default_rng(2)
    images = [normal_frame(rng), np.zeros((0, 0, 3), np.uint8), np.zeros((48, 64, 2), np.uint8),
              defect_frame(rng)]
    camera = FakeCamera("f" * 8, frames=images)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    records, summary = run(detector, source)
    assert [r["frame"] for r in records] == list(range(8))
    skipped = [r for r in records if r["score"] is None]
    assert [r["frame"] for r in skipped] == [1, 2, 5, 6]
    assert "at least 2x2" in skipped[0]["skipped"]
    assert "received (48, 64, 2)" in skipped[1]["skipped"]
    assert [r["anomaly"] for r in records if r["score"] is not None] == [False, True, False, True]
    assert (summary.frames_in, summary.scored, summary.skipped) == (8, 4, 4)


def test_live_max_frames_with_a_slow_consumer_counts_drops(detector, tmp_path):
    camera = FakeCamera("f" * 100_000)
    source = open_source("0", SourceOptions(queue_size=1, reconnect=FAST), camera.factory)
    records, summary = run(detector, source, max_frames=12, overlay_dir=tmp_path / "ov",
                           overlay_all=True)  # writing every overlay slows the consumer down
    indices = [r["frame"] for r in records]
    assert len(records) == 12 and indices == sorted(set(indices))
    assert summary.stopped == "max_frames" and summary.frames_in == 12
    assert summary.dropped == source.stats.read - summary.frames_in
    missing = sum(r.get("dropped_before", 0) for r in records)
    assert missing == indices[-1] - indices[0] - 11  # each gap in the indices is reported
    assert summary.scored + summary.skipped == summary.frames_in


def test_a_live_video_holds_a_picture_over_dropped_and_skipped_frames(detector, tmp_path):
    rng = np.random.default_rng(5)
    start = time.time()

    class DroppingStream:  # frames 2-3 and 6-8 were dropped by the queue; frame 5 is damaged
        live, name, fps, stats = True, "rtsp://line", 25.0, SourceStats()
        rate = 25.0  # the frames' own rate, which the stream may not claim

        def __iter__(self):
            for index in (0, 1, 4, 5, 9, 10):
                image = None if index == 5 else normal_frame(rng)
                yield Frame(index, self.name, image, "damaged" if image is None else None,
                            start + index / self.rate)

        def close(self):
            pass

    video = tmp_path / "line.avi"
    records, summary = run(detector, DroppingStream(), overlay_video=video)
    assert [r.get("dropped_before", 0) for r in records] == [0, 0, 2, 0, 3, 0]
    assert summary.video_frames == 11  # frames 0-10 of the stream, each its time on screen
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 11
    capture.release()
    # an MJPEG stream at 10 frames/s that claims 25 (FFmpeg's guess): the video keeps its time,
    # 1 s of frames (0-10) in 1 s of video, not 0.4 s
    slow = DroppingStream()
    slow.rate = 10.0
    _, summary = run(detector, slow, overlay_video=tmp_path / "slow.avi")
    assert summary.video_frames == 26  # frame 10 at 1.0 s: 25 frames before it, then its own
    # one at 50 frames/s that claims 25: pictures ahead of the frames' times are left out
    fast = DroppingStream()
    fast.rate = 50.0
    _, summary = run(detector, fast, overlay_video=tmp_path / "fast.avi")
    # frame 10 at 0.2 s: 5 frames of video before it, then its own, within a frame of rounding
    # (a picture for each of the stream's 11 frames would play 0.44 s)
    assert summary.video_frames in (6, 7)
    # the wall clock stepped back a minute mid-stream (NTP, an RTC): the video goes on

    class SteppedClock(DroppingStream):
        def __iter__(self):
            for index in range(40):
                yield Frame(index, self.name, normal_frame(rng), None,
                            start + index / 25 - (60 if index >= 20 else 0))

    _, summary = run(detector, SteppedClock(), overlay_video=tmp_path / "stepped.avi")
    assert summary.video_frames == 40  # it left out every picture after the step before
    slower = DroppingStream()
    slower.rate = 100.0  # four times the claimed rate: most pictures are left out
    _, summary = run(detector, slower, overlay_video=tmp_path / "faster.avi")
    assert summary.video_frames in (3, 4)  # 0.1 s of stream: 2.5 frames, and frame 10's own


def test_a_stream_that_ends_at_max_frames_is_not_a_lost_source(detector, caplog):
    camera = FakeCamera("f" * 8, read_delay_s=0.0)
    stream = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)

    class GivenUpFirst:  # the stream is read to its end and given up on before scoring ends
        live, name, fps = True, stream.name, stream.fps
        stats = property(lambda self: stream.stats)
        close = stream.close

        def __iter__(self):
            for frame in stream:
                deadline = time.monotonic() + 30
                while stream.stats.error is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                yield frame

    records, summary = run(detector, GivenUpFirst(), max_frames=8)
    assert len(records) == 8 and summary.stopped == "max_frames"
    assert summary.last_error is None
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


class InterruptedSource:
    """One frame, then Ctrl-C."""

    name, live, fps = "interrupted", False, None

    def __init__(self) -> None:
        self.closed = False
        self.stats = SourceStats()

    def __iter__(self):
        yield Frame(0, self.name, normal_frame(np.random.default_rng(3)), None, 0.0)
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True


class EmptyFrameSource(InterruptedSource):
    """A source of one's own that gives a frame with neither an image nor a reason, then a
    good one."""

    def __iter__(self):
        yield Frame(0, self.name, None, None, 0.0)
        yield Frame(1, self.name, normal_frame(np.random.default_rng(3)), None, 0.0)


def test_a_frame_without_an_image_or_a_reason_is_a_skipped_line(detector):
    """Every frame ends as a line: one a source gives without an image or a reason is skipped
    and says so (it was an AttributeError on None that ended the run)."""
    records, summary = run(detector, EmptyFrameSource())
    assert records[0]["skipped"] == "the source gave this frame without an image or a reason"
    assert records[1]["anomaly"] is False
    assert (summary.skipped, summary.scored) == (1, 1)


def test_ctrl_c_ends_the_run_with_a_summary(detector):
    source = InterruptedSource()
    records, summary = run(detector, source)
    assert len(records) == 1 and records[0]["anomaly"] is False
    assert summary.stopped == "interrupted" and summary.scored == 1 and source.closed


def test_show_without_a_gui_is_a_clear_error(detector, tmp_path):
    why = preview_unavailable()
    if why is None:
        pytest.skip("this OpenCV can open windows")
    write_folder(tmp_path / "images")
    with pytest.raises(ValueError, match="--show"):
        run(detector, str(tmp_path / "images"), show=True)


def test_options_are_validated():
    with pytest.raises(ValueError, match="max_frames"):
        FrameScoringOptions(max_frames=0)
    with pytest.raises(ValueError, match="overlay_video.*received 'x.gif'"):
        FrameScoringOptions(overlay_video="x.gif")
    with pytest.raises(ValueError, match="overlay_all"):
        FrameScoringOptions(overlay_all=True)


# --- the CLI ------------------------------------------------------------------------------------

def test_cli_scores_a_folder(tiny_image_artifact, tmp_path, capsys):
    write_folder(tmp_path / "images")
    out = tmp_path / "out" / "scores.jsonl"
    code = cli.main(["score", str(tiny_image_artifact), str(tmp_path / "images"), "--jsonl",
                     str(out), "--overlay-dir", str(tmp_path / "ov")])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5 and sum(r["anomaly"] is True for r in records) == 1
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]
    assert (summary["frames_in"], summary["scored"], summary["skipped"]) == (5, 3, 2)
    assert [p.name for p in (tmp_path / "ov").iterdir()] == ["000001_b.jpg"]


def test_cli_errors(tiny_image_artifact, tmp_path, capsys):
    write_folder(tmp_path / "images")
    model = str(tiny_image_artifact)
    assert cli.main(["score", model, "9997", "--reconnect-attempts", "0"]) == cli.EXIT_INPUT
    assert re.search(r"camera 9997(:? could not be opened after 1 attempt|: /dev/video9997 "
                     r"does not exist)", capsys.readouterr().err)
    images = str(tmp_path / "images")
    assert cli.main(["score", model, images, "--columns", "a,b"]) == cli.EXIT_INPUT
    assert "--columns applies to sensor models" in capsys.readouterr().err
    assert cli.main(["score", model, str(tmp_path / "nothing-here")]) == cli.EXIT_INPUT
    assert "is not a camera index" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        cli.main(["score", model, images, "--max-frames", "0"])
    assert done.value.code == cli.EXIT_INPUT
    assert "--max-frames: expected an integer >= 1; received '0'" in capsys.readouterr().err
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("not an image")
    assert cli.main(["score", model, str(notes)]) == cli.EXIT_INPUT
    assert ("none of its 1 files is an image that can be read; the first, readme.txt: not an "
            "image file") in capsys.readouterr().err


def test_videos_in_an_image_folder_are_named_with_the_commands_that_score_them(
        tiny_image_artifact, tmp_path, capsys):
    model = str(tiny_image_artifact)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    write_video(recordings / "line1.avi", 3)
    write_video(recordings / "line2.avi", 3)
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", model, str(recordings), "--jsonl", str(out)]) == cli.EXIT_INPUT
    error = capsys.readouterr().err
    assert "none of its 2 files is an image that can be read" in error
    assert f"it holds 2 video(s): score a video on its own (vigil score {model} " in error
    assert f"vigil batch {model} {recordings} --jsonl OUT" in error
    assert not out.exists()
    write_folder(recordings)  # 3 usable images beside the videos: scored, the videos named
    assert cli.main(["score", model, str(recordings), "--jsonl", str(out)]) == cli.EXIT_OK
    assert "2 video(s) in it (e.g. line1.avi) are not frames" in capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(line.get("score") is not None for line in lines) == 3


def test_reconnect_attempts_on_a_file_is_said_to_do_nothing(tiny_image_artifact, tmp_path, capsys):
    video = write_video(tmp_path / "line.avi", 2)
    assert cli.main(["score", str(tiny_image_artifact), str(video), "--jsonl",
                     str(tmp_path / "out.jsonl"), "--reconnect-attempts", "3"]) == cli.EXIT_OK
    assert "--reconnect-attempts applies to live sources" in capsys.readouterr().err


# --- no TensorFlow ------------------------------------------------------------------------------

FRAMES_SCRIPT = BLOCKER + textwrap.dedent('''
    import io
    from vigil import runtime
    from vigil.runtime.camera.scoring import score_frames
    from vigil.runtime.camera.sources import open_source

    detector = runtime.load(sys.argv[2])
    out = io.StringIO()
    summary = score_frames(detector, open_source(sys.argv[3]), out)
    report(summary=summary.to_json(), lines=out.getvalue().splitlines())
''')

CLI_SCRIPT = BLOCKER + textwrap.dedent('''
    from vigil.cli import main

    code = main(["score", sys.argv[2], sys.argv[3], "--jsonl", sys.argv[4]])
    report(code=code)
''')


def test_frames_score_without_the_training_stack(tiny_image_artifact, tmp_path):
    write_folder(tmp_path / "images")
    result = run_blocked(tmp_path, FRAMES_SCRIPT, (*TRAINING_SIDE, "training", "export"),
                         tiny_image_artifact, tmp_path / "images")
    assert result["attempts"] == [] and result["loaded"] == []
    assert result["summary"]["scored"] == 3 and result["summary"]["skipped"] == 2
    records = [json.loads(line) for line in result["lines"]]
    assert [r["anomaly"] for r in records] == [False, True, False, None, None]


def test_cli_scores_frames_without_the_training_stack(tiny_image_artifact, tmp_path):
    write_folder(tmp_path / "images")
    out = tmp_path / "scores.jsonl"
    result = run_blocked(tmp_path, CLI_SCRIPT, TRAINING_SIDE, tiny_image_artifact,
                         tmp_path / "images", out)
    assert result["code"] == 0 and result["attempts"] == [] and result["loaded"] == []
    assert len(out.read_text().splitlines()) == 5


def test_each_region_reports_its_own_peak():
    """A faint ring around a separate strong spot: the ring's box holds the spot, but its peak is
    its own."""
    from vigil.runtime.camera.frames import regions

    amap = np.zeros((40, 40), np.float32)
    amap[5:35, 5:35] = 0.45
    amap[8:32, 8:32] = 0.0
    amap[18:22, 18:22] = 0.9
    boxes = regions(amap, 0.3)
    assert [(b["area"], b["peak"]) for b in boxes] == [(30 * 30 - 24 * 24, pytest.approx(0.45)),
                                                      (16, pytest.approx(0.9))]
    # and its place: in its own pixels (the ring's first, not the spot inside its box)
    assert (boxes[0]["peak_y"], boxes[0]["peak_x"]) == (5, 5)
    amap[20, 21] = 1.0
    spot = regions(amap, 0.3)[1]
    assert (spot["peak_x"], spot["peak_y"]) == (21, 20)


@pytest.mark.parametrize("keep_index", [True, False])
def test_a_video_none_of_whose_frames_decodes_leaves_the_output_alone(tiny_image_artifact,
                                                                     tmp_path, capsys, keep_index):
    from test_sources import write_video

    out = tmp_path / "results.jsonl"
    model = str(tiny_image_artifact)
    assert cli.main(["score", model, str(write_video(tmp_path / "good.avi", 5)), "--jsonl",
                     str(out)]) == cli.EXIT_OK
    kept = out.read_bytes()
    broken = write_video(tmp_path / "broken.avi", 5)
    data = bytearray(broken.read_bytes())
    start = 0
    while (start := data.find(b"\xff\xd8", start)) >= 0:  # every JPEG frame's bytes zeroed
        end = data.find(b"\xff\xd9", start) + 2
        data[start:end] = bytes(end - start)
    if not keep_index:
        data = data[:data.rfind(b"idx1")]
    broken.write_bytes(bytes(data))
    capsys.readouterr()
    for command in ("score", "batch"):
        assert cli.main([command, model, str(broken), "--jsonl", str(out),
                         "--overwrite"]) == cli.EXIT_INPUT
        assert "none of its frames decodes" in capsys.readouterr().err
        assert out.read_bytes() == kept


def test_a_video_whose_frames_are_over_the_pixel_limit_says_so(tiny_image_artifact, tmp_path,
                                                               capsys):
    """12000 x 12000 MJPG frames were called damaged or of an unknown codec (review r3)."""
    video = write_video(tmp_path / "big.avi", 3)
    data = bytearray(video.read_bytes())
    start = 0
    while (start := data.find(b"\xff\xc0", start)) >= 0:  # each frame's header claims more
        data[start + 5:start + 9] = (12000).to_bytes(2, "big") * 2
        start += 9
    video.write_bytes(bytes(data))
    assert cli.main(["score", str(tiny_image_artifact), str(video)]) == cli.EXIT_INPUT
    assert ("none of its frames decodes (3 read; the first: this frame's image is 12000 x 12000 "
            "pixels (144 MP) by its header; more than the 67 MP limit") in capsys.readouterr().err


def test_an_annotated_video_the_encoder_refuses_ends_neither_the_run_nor_a_line(
        tiny_image_artifact, tmp_path, capsys):
    """Line-scan frames wider than MPEG-4 takes: every frame is still scored; the warning names
    the size and the container that takes it."""
    rng = np.random.default_rng(4)
    folder = tmp_path / "wide"
    folder.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(folder / f"{i}.png"), normal_frame(rng, 64, 8400))
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(tiny_image_artifact), str(folder), "--jsonl", str(out),
                     "--overlay-video", str(tmp_path / "wide.mp4")]) == cli.EXIT_OK
    error = capsys.readouterr().err
    assert "cannot be written at the frames' size" in error and "wide.avi (MJPG)" in error
    assert [json.loads(line)["score"] is not None for line in out.read_text().splitlines()] == [
        True, True]


def test_holding_a_picture_never_costs_more_than_a_quarter_of_the_time_it_stands_for(tmp_path):
    """A 1080p picture takes several ms to encode: holding it over 300 dropped frames took
    seconds inside the scoring loop. Now a hold writes as many as encode in a quarter of the
    dropped frames' time, and at most 10 s of them."""
    from vigil.runtime.camera.scoring import _VideoOut

    video = _VideoOut(tmp_path / "v.avi", fps=10.0)
    video.write(np.zeros((48, 64, 3), np.uint8))
    video._encode_s = 0.1  # as if each picture took 100 ms to encode
    assert video.hold(40) == 10  # 40 frames stand for 4 s: 1 s of encoding, 10 pictures
    video._encode_s = 1e-4
    assert video.hold(500) == 100  # 10 s at 10 frames/s, whatever the budget
    assert video.hold(0) == 0 and video.frames == 1 + 10 + 100
    video.close()


def test_a_live_source_that_scoring_cannot_keep_up_with_is_warned_of(caplog):
    from vigil.runtime.camera.scoring import DropWatch

    now = [0.0]
    watch = DropWatch("stream 'http://127.0.0.1/cam'", clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="vigil"):
        for _ in range(160):  # 16 frames/s scored, 14 dropped between them: a 30 fps stream
            now[0] += 1 / 16
            watch.frame(dropped_before=1 if _ % 8 else 0)
    (warned,) = [r.getMessage() for r in caplog.records]
    assert ("keeps up with 16.0 of the stream's 30.0 frames/s: 140 of its last 300 frames (47 %) "
            "were dropped in 10 s") in warned
    caplog.clear()
    with caplog.at_level("WARNING", logger="vigil"):
        for _ in range(1600):  # the same for 100 s more: not said again within 10 minutes
            now[0] += 1 / 16
            watch.frame(dropped_before=1)
        assert caplog.records == []
        for _ in range(16 * 600):
            now[0] += 1 / 16
            watch.frame(dropped_before=0)  # keeping up: nothing to say
        assert caplog.records == []
        for _ in range(16 * 11):
            now[0] += 1 / 16
            watch.frame(dropped_before=3)
    assert len(caplog.records) == 1


def test_frames_of_another_shape_than_training_are_warned_of_once(tmp_path, caplog):
    from dataclasses import replace

    from image_fixtures import tiny_image_graph, tiny_image_spec, write_tiny_image_artifact
    from vigil.export.package import write_artifact

    spec = tiny_image_spec()
    square = write_artifact(tiny_image_graph(), replace(spec, training={
        **spec.training, "frame_aspect": [0.98, 1.0]}), tmp_path / "square.onnx")
    detector = runtime.load(square)
    with caplog.at_level("WARNING", logger="vigil"):
        detector.score([np.zeros((40, 41), np.uint8)] * 2)  # within 5 %: nothing to say
        assert caplog.records == []
        detector.score([np.zeros((40, 80), np.uint8)] * 2)
        detector.score(np.zeros((40, 80), np.uint8))
    (said,) = [r.getMessage() for r in caplog.records]
    assert ("frames are 80x40 (width / height 2.00) but the model was trained on frames of width "
            "/ height 0.98-1.00") in said and "(said once per detector)" in said
    # models without the record (before 0.3) are not judged
    caplog.clear()
    with caplog.at_level("WARNING", logger="vigil"):
        runtime.load(write_tiny_image_artifact(tmp_path / "old.onnx")).score(
            np.zeros((40, 80), np.uint8))
    assert caplog.records == []


def test_frames_much_smaller_than_training_are_warned_of_once(tmp_path, caplog):
    """A model of 300-px cells flagged 29 % of good 100-px cells (99 % at 64 px), unsaid."""
    from dataclasses import replace

    from image_fixtures import tiny_image_graph, tiny_image_spec
    from vigil.export.package import write_artifact

    spec = tiny_image_spec()
    model = write_artifact(tiny_image_graph(), replace(spec, training={
        **spec.training, "frame_side": [100, 120]}), tmp_path / "sided.onnx")
    detector = runtime.load(model)
    with caplog.at_level("WARNING", logger="vigil"):
        detector.score([np.zeros((64, 64), np.uint8)] * 2)  # at least 0.6 of 100: nothing said
        assert caplog.records == []
        detector.score([np.zeros((40, 40), np.uint8)] * 2)
        detector.score(np.zeros((40, 40), np.uint8))
    (said,) = [r.getMessage() for r in caplog.records]
    assert "shorter side 40 px against at least 100 px in training" in said


def test_a_gray_video_decoded_a_few_levels_apart_is_gray():
    from vigil.runtime.camera.frames import COLOR_FOR_GRAY, color_mismatch
    from image_fixtures import tiny_image_spec

    gray = np.random.default_rng(0).integers(0, 250, (64, 64), dtype=np.uint8)
    decoded = np.stack([gray, gray + 2, gray + 3], axis=2)  # chroma rounding of a gray MP4
    assert color_mismatch(decoded, tiny_image_spec()) is None
    coloured = decoded.copy()
    coloured[::7, ::7, 2] = 200  # a red pattern is colour
    assert color_mismatch(coloured, tiny_image_spec()) == COLOR_FOR_GRAY


def test_colour_frames_given_in_rgb_order_are_told_by_the_training_means():
    """A Python caller's RGB frames (PIL's order) were scored as BGR without a word: every
    normal frame of a review's colour model was flagged. Told where a frame's blue less red lies
    outside every training image's and, exchanged, inside; a product made in red and in blue
    cannot tell (a review: a blue variant's own BGR frame was called RGB by a first rule)."""
    from dataclasses import replace

    from image_fixtures import tiny_image_spec
    from vigil.runtime.camera.frames import ARRAY_CHECKS, FRAME_CHECKS, swapped_channels
    from vigil.runtime.core.spec import ArtifactError, spec_from_dict, spec_to_dict

    spec = replace(tiny_image_spec(), channels=3, color="bgr",
                   training={"channel_means_bgr": [150.0, 120.0, 60.0],
                             "blue_minus_red": [80.0, 100.0]})
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal([150, 120, 60], 20, (64, 80, 3)), 0, 255).astype(np.uint8)
    assert swapped_channels(frame, spec) is None
    said = swapped_channels(frame[..., ::-1].copy(), spec)
    assert said.startswith("frames look like RGB where the runtime takes BGR")
    assert "frame[..., ::-1]" in said
    assert swapped_channels(np.dstack([frame, np.full((64, 80), 255, np.uint8)]), spec) is None
    # red and blue variants in training: their range holds both orders; no record: no check
    variants = replace(spec, training={**spec.training, "blue_minus_red": [-150.0, 150.0]})
    assert swapped_channels(frame[..., ::-1].copy(), variants) is None
    assert swapped_channels(frame[..., ::-1].copy(), replace(spec, training={})) is None
    # another colour altogether (a darker part, outside either way) is not called exchanged
    assert swapped_channels((frame * 0.3).astype(np.uint8), spec) is None
    # looked for in arrays handed in, not in frames Vigil decodes itself (OpenCV's order)
    assert swapped_channels in ARRAY_CHECKS and swapped_channels not in FRAME_CHECKS
    data = spec_to_dict(spec)
    data["training"]["channel_means_bgr"] = [150, 300, 60]
    with pytest.raises(ArtifactError, match="channel_means_bgr must be three levels"):
        spec_from_dict(data)
    data["training"].update(channel_means_bgr=[150, 120, 60], blue_minus_red=[100, 80])
    with pytest.raises(ArtifactError, match="blue_minus_red must be"):
        spec_from_dict(data)


def test_a_frame_of_another_size_keeps_its_shape_in_the_overlay_video(detector, tmp_path,
                                                                       caplog):
    """Frames of another size were stretched to the video's first frame's, unsaid: a 593 x 261
    tile squeezed into 172 x 316 (review hC, session 61)."""
    from vigil.runtime.camera.scoring import _fitted

    wide = np.full((261, 593, 3), 200, np.uint8)
    fitted = _fitted(wide, (172, 316))
    assert fitted.shape == (316, 172, 3)
    rows = np.flatnonzero(fitted[:, :, 0].max(axis=1))  # the picture's rows; black around them
    assert 70 <= len(rows) <= 80 and fitted[0].max() == 0 and fitted[-1].max() == 0
    rng = np.random.default_rng(7)
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), normal_frame(rng))
    cv2.imwrite(str(tmp_path / "frames" / "b.png"), normal_frame(rng, 40, 90))
    cv2.imwrite(str(tmp_path / "frames" / "c.png"), normal_frame(rng, 40, 90))
    with caplog.at_level("WARNING", logger="vigil"):
        _, summary = run(detector, str(tmp_path / "frames"),
                         overlay_video=tmp_path / "v.avi")
    assert summary.video_frames == 3
    assert caplog.text.count("scaled and padded with black so that its shape stays its own") == 1
