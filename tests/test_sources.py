"""Frame sources: image files, folders and globs, video files, live captures that drop and come back."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.runtime.camera.sources import (Frame, ImageFiles, LiveSource, ReconnectPolicy, SourceError,
                             SourceOptions, VideoFile, live_target, open_source, redact)

HANG_GUARD_S = 30  # generous: only stops a broken test from hanging, never asserted as a duration
FAST = ReconnectPolicy(initial_delay_s=0.001, max_delay_s=0.01, max_attempts=5)


def write_images(folder):
    """a.png, b.png, c.jpg (whole), d.jpg (truncated), e.png (truncated), notes.txt, .hidden."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    images = {name: rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
              for name in ("a.png", "b.png", "c.jpg", "d.jpg", "e.png")}
    for name, image in images.items():
        assert cv2.imwrite(str(folder / name), image)
    for name in ("d.jpg", "e.png"):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:len(data) // 2])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden").write_text("ignored")
    return images


def write_video(path, frames: int, fourcc: str = "MJPG", size=(64, 48), fps: float = 10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 40, dtype=np.uint8)
        image[:, : (i + 1) * size[0] // (frames + 1)] = 200  # a bar that grows frame by frame
        writer.write(image)
    writer.release()
    return path


# --- image files --------------------------------------------------------------------------------

def test_folder_yields_every_file_in_order_with_errors_for_bad_ones(tmp_path):
    images = write_images(tmp_path / "images")
    with open_source(str(tmp_path / "images")) as source:
        assert isinstance(source, ImageFiles) and not source.live
        frames = list(source)
    names = [frame.source.rsplit("/", 1)[-1] for frame in frames]
    # notes.txt is named as no image or video: passed over, as training passes over it
    assert names == ["a.png", "b.png", "c.jpg", "d.jpg", "e.png"]
    with open_source(tmp_path / "images") as by_path:  # a Path, as vigil.load takes one
        assert [f.source for f in by_path] == [f.source for f in frames]
    assert [frame.index for frame in frames] == list(range(5))
    by_name = dict(zip(names, frames))
    np.testing.assert_array_equal(by_name["a.png"].image, images["a.png"])
    assert by_name["c.jpg"].error is None and by_name["c.jpg"].image.shape == (24, 32, 3)
    assert "damaged JPEG: it was cut off" in by_name["d.jpg"].error
    assert by_name["d.jpg"].image is None
    assert "is a damaged PNG: it was cut off" in by_name["e.png"].error  # before libpng says so
    assert source.stats.read == 5 and source.stats.errors == 2


def test_folder_does_not_score_the_masks_beside_its_images(tmp_path, caplog):
    """As training reads a folder: x.png beside x.jpg, and x_mask.png beside x.*, are masks."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    image = np.full((16, 16, 3), 90, np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    for name, data in (("exp1.jpg", image), ("exp1.png", mask), ("b.png", image),
                       ("b_mask.png", mask), ("c_mask.png", image)):
        assert cv2.imwrite(str(folder / name), data)
    with caplog.at_level("INFO", logger="vigil"):
        names = [f.source.rsplit("/", 1)[-1] for f in open_source(str(folder))]
    # c_mask.png has no image "c" beside it: it is an image that happens to end in _mask
    assert names == ["b.png", "c_mask.png", "exp1.jpg"]
    assert "2 mask file(s) of images it holds are not scored" in caplog.text

    # a lossless PNG copy of a frame beside its JPEG holds a picture, not a mask: scored
    picture = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert cv2.imwrite(str(folder / "exp1.png"), picture)
    caplog.clear()
    with caplog.at_level("INFO", logger="vigil"):
        names = [f.source.rsplit("/", 1)[-1] for f in open_source(str(folder))]
    assert names == ["b.png", "c_mask.png", "exp1.jpg", "exp1.png"]
    assert "1 PNG(s) beside an image of the same name hold pictures, not masks" in caplog.text
    # an antialiased mask (the magnetic tiles': up to 245 levels on its edges) stays a mask
    mask = np.zeros((64, 64), np.uint8)
    cv2.ellipse(mask, (32, 32), (20, 9), 30, 0, 360, 255, -1, cv2.LINE_AA)
    assert len(np.unique(mask)) > 16
    assert cv2.imwrite(str(folder / "exp1.png"), mask)
    names = [f.source.rsplit("/", 1)[-1] for f in open_source(str(folder))]
    assert names == ["b.png", "c_mask.png", "exp1.jpg"]
    # a photo on a black background (62 % of it) is a picture, its two commonest levels or not
    photo = np.random.default_rng(1).integers(30, 220, (64, 64), dtype=np.uint8)
    photo[:, :40] = 0
    assert cv2.imwrite(str(folder / "exp1.png"), photo)
    names = [f.source.rsplit("/", 1)[-1] for f in open_source(str(folder))]
    assert names == ["b.png", "c_mask.png", "exp1.jpg", "exp1.png"]


def test_a_glob_over_an_mvtec_category_does_not_score_its_masks(tmp_path):
    """The glob `vigil score` suggests for a folder of subfolders reaches ground_truth/ too."""
    image, mask = np.full((16, 16, 3), 90, np.uint8), np.zeros((16, 16), np.uint8)
    for name, data in (("test/crack/000.png", image), ("test/good/000.png", image),
                       ("ground_truth/crack/000_mask.png", mask), ("a/7.jpg", image),
                       ("b/7.png", image)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(tmp_path / name), data)
    names = [Path(f.source).relative_to(tmp_path).as_posix()
             for f in open_source(f"{tmp_path}/**/*.*")]
    # b/7.png is a frame: the mask of a/7.jpg would lie beside it, in a/
    assert names == ["a/7.jpg", "b/7.png", "test/crack/000.png", "test/good/000.png"]


def test_glob_and_single_file(tmp_path):
    write_images(tmp_path / "images")
    pngs = list(open_source(str(tmp_path / "images" / "*.png")))
    assert [f.source.rsplit("/", 1)[-1] for f in pngs] == ["a.png", "b.png", "e.png"]
    nested = list(open_source(str(tmp_path / "**" / "[ab].png")))
    assert len(nested) == 2 and all(f.error is None for f in nested)
    (single,) = list(open_source(str(tmp_path / "images" / "a.png")))
    assert single.error is None and single.image.shape == (24, 32, 3)


def test_a_folders_subfolders_are_named_and_a_dangling_link_gets_its_line(tmp_path, caplog):
    folder = tmp_path / "line"
    (folder / "later").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.full((24, 32, 3), 100, np.uint8))
    cv2.imwrite(str(folder / "later" / "b.png"), np.full((24, 32, 3), 100, np.uint8))
    (folder / "gone.png").symlink_to(folder / "removed.png")
    frames = list(open_source(str(folder)))
    assert [(Path(f.source).name, f.error is None) for f in frames] == [("a.png", True),
                                                                         ("gone.png", False)]
    assert "its subfolders (later) are not read" in caplog.text


def test_the_glob_a_folder_suggests_matches_its_images_not_their_masks(tmp_path):
    """An MVTec AD category of JPEG images with PNG masks: the suggested glob names .jpg, and a
    glob that matches only the masks is refused (each mask scored a whole-frame defect)."""
    category = tmp_path / "tiles"
    for name in ("train/good/0.jpg", "test/good/1.jpg", "test/crack/2.jpg"):
        (category / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(category / name), np.full((24, 32, 3), 100, np.uint8))
    (category / "ground_truth" / "crack").mkdir(parents=True)
    cv2.imwrite(str(category / "ground_truth" / "crack" / "2_mask.png"),
                np.zeros((24, 32), np.uint8))
    with pytest.raises(SourceError, match=r"\('[^']*/tiles/\*\*/\*\.jpg', quoted\)"):
        open_source(str(category))
    with pytest.raises(SourceError, match=r"matches only masks \(1 files named NAME_mask"):
        open_source(str(category / "**" / "*.png"))
    assert len(list(open_source(str(category / "**" / "*.jpg")))) == 3
    # the magnetic tiles' layout: each x.jpg with its mask x.png beside it, in folders per defect
    tiles = tmp_path / "MT_Crack"
    (tiles / "Imgs").mkdir(parents=True)
    for n in range(3):
        cv2.imwrite(str(tiles / "Imgs" / f"exp{n}.jpg"), np.full((24, 32, 3), 90, np.uint8))
        cv2.imwrite(str(tiles / "Imgs" / f"exp{n}.png"), np.zeros((24, 32), np.uint8))
    with pytest.raises(SourceError, match=r"\('[^']*/MT_Crack/\*\*/\*\.jpg', quoted\)"):
        open_source(str(tiles))
    with pytest.raises(SourceError, match="matches only masks"):
        open_source(str(tiles / "**" / "*.png"))
    # frames kept in a folder named ground_truth are frames; a suffix in capitals is kept so
    station = tmp_path / "ground_truth" / "station1"
    station.mkdir(parents=True)
    for n in range(2):
        cv2.imwrite(str(station / f"IMG_{n}.JPG"), np.full((24, 32, 3), 90, np.uint8))
    assert len(list(open_source(str(station / "*.JPG")))) == 2
    with pytest.raises(SourceError, match=r"/\*\*/\*\.JPG', quoted"):
        open_source(str(tmp_path / "ground_truth"))


def test_sources_that_cannot_open_say_why(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="contains no files"):
        open_source(str(tmp_path / "empty"))
    (tmp_path / "category" / "good").mkdir(parents=True)
    (tmp_path / "category" / "crack").mkdir()
    with pytest.raises(SourceError, match=r"holds no files, only folders \(crack, good\), and "
                                          r"subfolders are not read: .*/category/\*\*/\*'"):
        open_source(str(tmp_path / "category"))
    with pytest.raises(SourceError, match="matches no files"):
        open_source(str(tmp_path / "*.png"))
    with pytest.raises(SourceError, match="not a camera index, a stream URL"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "fake.avi").write_text("this is not a video" * 10)
    with pytest.raises(SourceError, match="cannot be opened as a video"):
        open_source(str(tmp_path / "fake.avi"))
    with pytest.raises(SourceError, match="must be a camera index"):
        open_source("  ")


def test_live_targets_and_redaction(tmp_path, monkeypatch):
    assert live_target("0") == 0 and live_target("12") == 12
    assert live_target("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    assert live_target("https://cam.local/video.mjpg") == "https://cam.local/video.mjpg"
    assert live_target("/dev/video2") == "/dev/video2"
    assert live_target("frames/*.png") is None
    assert redact("rtsp://admin:secret@10.0.0.5/h264") == "rtsp://admin:***@10.0.0.5/h264"
    assert redact("rtsp://10.0.0.5/h264") == "rtsp://10.0.0.5/h264"
    # IP cameras take credentials in the query too: each run wrote them on every line (r3)
    assert redact("http://cam/videostream.cgi?user=admin&pwd=CamPW&rate=0") == (
        "http://cam/videostream.cgi?user=admin&pwd=***&rate=0")
    assert redact("https://cam/a.mjpg?Token=abc;PASSWORD=x#y") == "https://cam/a.mjpg?Token=***;PASSWORD=***#y"
    assert redact("http://cam/a?keyframe=1&rate=2") == "http://cam/a?keyframe=1&rate=2"
    # names ending in a credential's, after any prefix, and a fragment's (review d2)
    assert redact("https://b/v.mp4?X-Amz-Credential=A%2F1&X-Amz-Signature=ab&X-Amz-Expires=60"
                  "#access_token=zz") == ("https://b/v.mp4?X-Amz-Credential=***&X-Amz-Signature"
                                          "=***&X-Amz-Expires=60#access_token=***")
    assert redact("http://c/x?auth_token=1&client_secret=3&api-key=4&loginpas=5&_sid=6") == (
        "http://c/x?auth_token=***&client_secret=***&api-key=***&loginpas=***&_sid=***")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "3").mkdir()
    with pytest.raises(SourceError, match="both a camera index and an existing path"):
        open_source("3")


# --- video files --------------------------------------------------------------------------------

def test_video_yields_every_frame(tmp_path):
    path = write_video(tmp_path / "clip.avi", 12)
    with open_source(str(path)) as source:
        assert isinstance(source, VideoFile) and not source.live
        assert source.fps == pytest.approx(10.0)
        frames = list(source)
    assert [f.index for f in frames] == list(range(12))
    assert all(f.error is None and f.image.shape == (48, 64, 3) for f in frames)
    bars = [int((f.image[24] > 120).sum()) for f in frames]
    assert bars == sorted(bars) and len(set(bars)) == 12  # twelve distinct frames, in order
    assert source.stats.read == 12 and source.stats.expected == 12 and source.stats.dropped == 0


def test_a_video_closed_before_it_is_read_says_so(tmp_path):
    """A video read through its capture (not an AVI index) and closed first has no capture left:
    iterating it is a RuntimeError naming it (it was an AttributeError on None)."""
    path = write_video(tmp_path / "clip.mkv", 3)
    source = open_source(str(path))
    assert isinstance(source, VideoFile)
    source.close()
    with pytest.raises(RuntimeError, match=r"clip.mkv' was closed before it was iterated"):
        list(source)


def test_truncated_video_ends_with_an_error_item(tmp_path):
    path = write_video(tmp_path / "clip.avi", 20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    source = open_source(str(path))
    frames = list(source)
    good = [f for f in frames if f.error is None]
    missing = frames[len(good):]
    assert good and all(f.error is None for f in frames[:len(good)])
    assert [f.index for f in frames] == list(range(20)), "every frame the container has, once"
    assert all(f.image is None and "truncated or corrupt" in f.error for f in missing)
    cut = [f for f in missing if "this frame was cut off" in f.error]  # where the cut fell
    assert len(cut) <= 1 and (not cut or cut[0] is missing[0])
    assert all(f"of the {source.stats.expected} its container reports" in f.error
               for f in missing if f not in cut)
    assert 0 < len(good) < 20


@pytest.mark.parametrize("short_by", [1, 16, 40])
def test_a_frame_cut_off_by_the_end_of_the_file_is_not_scored_as_whole(tmp_path, short_by):
    """A recording cut short has no index: its frames are found chunk by chunk, and the last,
    whose chunk runs past the end of the file, is an error item, not a frame a JPEG decoder
    filled in; the frames the header counted after it are missing items."""
    import struct

    data = write_video(tmp_path / "full.avi", 20).read_bytes()
    position = data.find(b"movi") + 4
    for _ in range(8):  # to the 9th frame's chunk
        position += 8 + struct.unpack("<I", data[position + 4:position + 8])[0]
        position += position & 1
    size = struct.unpack("<I", data[position + 4:position + 8])[0]
    path = tmp_path / "cut.avi"
    path.write_bytes(data[:position + 8 + size - short_by])
    frames = list(open_source(str(path)))
    assert [f.index for f in frames] == list(range(20))
    assert all(f.error is None for f in frames[:8])
    assert f"this frame was cut off: the file ends {size - short_by} bytes into its {size}" in \
        frames[8].error
    assert all("frame missing: the file ends after 9 frames, of the 20" in f.error
               for f in frames[9:])


# --- live sources -------------------------------------------------------------------------------

class FakeCamera:
    """A scripted device shared by every capture opened on it.

    Each read takes the next step of ``script``: ``"f"`` returns the next frame (its sequence number
    is written into pixel (0, 0) and (0, 1)), ``"x"`` fails the read. After the script the camera is
    unplugged: opens fail. ``frames`` is an optional list of images to return instead. With
    ``hold_at`` set, the read of that step waits until ``resume`` is set.
    """

    def __init__(self, script: str, frames=None, read_delay_s: float = 0.001,
                 openable: bool = True, hold_at: int | None = None) -> None:
        self.script = script
        self.hold_at = hold_at
        self.resume = threading.Event()
        self.frames = frames
        self.read_delay_s = read_delay_s
        self.openable = openable
        self.step = 0
        self.produced = 0
        self.opened = 0
        self.captures: list[FakeCapture] = []
        self.lock = threading.Lock()

    @property
    def unplugged(self) -> bool:
        return not self.openable or self.step >= len(self.script)

    def factory(self, target):
        capture = FakeCapture(self)
        self.captures.append(capture)
        return capture

    def read(self):
        time.sleep(self.read_delay_s)
        if self.step == self.hold_at:
            self.resume.wait(HANG_GUARD_S)
        with self.lock:
            if self.step >= len(self.script):
                return False, None
            action = self.script[self.step]
            self.step += 1
            if action == "x":
                return False, None
            seq = self.produced
            self.produced += 1
        if self.frames is not None:
            return True, self.frames[seq % len(self.frames)]
        image = np.full((24, 32, 3), 128, dtype=np.uint8)
        image[0, 0, 0], image[0, 1, 0] = divmod(seq, 256)
        return True, image


class FakeCapture:
    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera
        self.open = not camera.unplugged
        camera.opened += self.open

    def isOpened(self) -> bool:
        return self.open

    def read(self):
        if not self.open:
            return False, None
        return self.camera.read()

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.open = False


def sequence(frame: Frame) -> int:
    return int(frame.image[0, 0, 0]) * 256 + int(frame.image[0, 1, 0])


def collect(source, limit: int | None = None, delay_s: float = 0.0) -> list[Frame]:
    """Iterate a source on a helper thread so a broken source cannot hang the test."""
    frames: list[Frame] = []

    def run():
        for frame in source:
            frames.append(frame)
            if delay_s:
                time.sleep(delay_s)
            if limit is not None and len(frames) >= limit:
                break
        source.close()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), "the source did not finish"
    return frames


def test_live_source_reconnects_without_repeating_frames(tmp_path):
    camera = FakeCamera("f" * 5 + "xxx" + "f" * 5)
    source = open_source(0, SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    assert isinstance(source, LiveSource) and source.live and source.fps == 25.0  # 0 as "0"
    frames = collect(source)
    assert [f.index for f in frames] == list(range(10))
    assert [sequence(f) for f in frames] == list(range(10))  # each camera frame once, in order
    assert [f.gap_s is not None for f in frames] == [False] * 5 + [True] + [False] * 4
    stats = source.stats
    assert stats.reconnects == 1
    (gap,) = stats.gaps
    assert (gap.after_index, gap.resumed_index, gap.attempts) == (4, 5, 3)
    assert gap.seconds == pytest.approx(frames[5].gap_s)
    # Then the camera is unplugged for good: the source gives up after the configured attempts.
    assert "camera 0 lost: gave up after 5 reconnect attempts" in stats.error
    assert stats.reconnect_attempts == 3 + 5
    assert stats.dropped == 0 and stats.read == 10
    assert all(not capture.open for capture in camera.captures)  # every capture released


def test_a_loss_is_logged_after_the_frames_read_before_it_and_not_past_a_stop(caplog):
    camera = FakeCamera("f" * 5, read_delay_s=0.0)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    frames = iter(source)
    first = next(frames)
    deadline = time.monotonic() + HANG_GUARD_S
    while source.stats.error is None and time.monotonic() < deadline:  # the camera runs out
        time.sleep(0.01)
    assert first.index == 0 and "gave up" in source.stats.error
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # 4 frames still to come
    rest = list(frames)
    assert [f.index for f in rest] == [1, 2, 3, 4]
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "camera 0 lost: gave up after 5 reconnect attempts" in error.getMessage()

    caplog.clear()  # a consumer that stops at its limit first is not told of the loss after it
    camera = FakeCamera("f" * 5, read_delay_s=0.0)
    source = open_source("0", SourceOptions(queue_size=64, reconnect=FAST), camera.factory)
    frames = iter(source)
    taken = [next(frames) for _ in range(5)]
    while source.stats.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    frames.close()
    assert len(taken) == 5 and not [r for r in caplog.records if r.levelname == "ERROR"]


def test_slow_consumer_drops_the_oldest_frames(tmp_path):
    camera = FakeCamera("f" * 100_000, read_delay_s=0.001)
    source = open_source("1", SourceOptions(queue_size=2, reconnect=FAST), camera.factory)
    frames = collect(source, limit=15, delay_s=0.02)
    indices = [f.index for f in frames]
    assert len(indices) == 15 and indices == sorted(set(indices))  # increasing, none twice
    assert [sequence(f) for f in frames] == indices
    stats = source.stats
    assert stats.dropped > 0 and indices[-1] > 14
    assert 1 <= stats.max_queued <= 2
    assert stats.read == len(frames) + stats.dropped  # every frame read was delivered or dropped
    assert stats.error is None  # closed by the consumer, not lost


def test_gap_survives_when_the_first_frame_after_it_is_dropped():
    camera = FakeCamera("f" * 3 + "x" + "f" * 50, read_delay_s=0.0, hold_at=1)
    source = open_source("0", SourceOptions(queue_size=1, reconnect=FAST), camera.factory)
    frames = iter(source)
    first = next(frames)  # the camera holds its second frame until this one is taken
    camera.resume.set()
    deadline = time.monotonic() + HANG_GUARD_S
    while source.stats.error is None and time.monotonic() < deadline:  # let the camera run out
        time.sleep(0.01)
    rest = list(frames)
    assert first.index == 0 and first.gap_s is None
    (last,) = rest  # the queue kept only the newest frame...
    assert last.index == 52 and last.gap_s is not None  # ...and the outage moved onto it
    stats = source.stats
    assert stats.reconnects == 1 and stats.read == 53 and stats.dropped == 51


def test_camera_that_does_not_exist_is_a_clear_error():
    camera = FakeCamera("", openable=False)
    policy = ReconnectPolicy(initial_delay_s=0.001, max_delay_s=0.002, max_attempts=2)
    with pytest.raises(SourceError, match=r"camera 7 could not be opened after 3 attempts.*"
                                          r"does that camera exist"):
        open_source("7", SourceOptions(reconnect=policy), camera.factory)
    assert len(camera.captures) == 3 and all(not c.open for c in camera.captures)


def test_a_stream_that_does_not_open_says_what_its_address_answered():
    import socket

    policy = ReconnectPolicy(initial_delay_s=0.0, max_delay_s=0.0, max_attempts=0)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    try:
        camera = FakeCamera("", openable=False)
        with pytest.raises(SourceError, match=rf"127.0.0.1:{port} accepts connections, so the "
                                              r"stream itself did not open.*credentials") as error:
            open_source(f"rtsp://viewer:secret@127.0.0.1:{port}/line3", SourceOptions(
                reconnect=policy), camera.factory)
        assert "secret" not in str(error.value) and "viewer:***@" in str(error.value)
        # a stream that played and then ended: the address is right (review hC, session 61)
        from vigil.runtime.camera.live_source import network_reason

        ended = network_reason(f"http://127.0.0.1:{port}/", frames_read=90)
        assert ended.startswith(f"127.0.0.1:{port} still accepts connections, so the server "
                                f"ended or stalled the stream after 90 frames")
    finally:
        listening.close()
    # port 9 (discard) is closed on the test machines, as the SIGTERM test relies on
    with pytest.raises(SourceError, match=r"nothing accepts connections at 127.0.0.1:9 "
                                          r"\(connection refused"):
        open_source("http://127.0.0.1:9/video", SourceOptions(reconnect=policy),
                    FakeCamera("", openable=False).factory)
    with pytest.raises(SourceError, match=r"not a valid stream address \(what follows the host's : is "
                                          r"not a port number\)"):
        open_source("rtsp://127.0.0.1:99999/x", SourceOptions(reconnect=policy),
                    FakeCamera("", openable=False).factory)
    # a / in a password ends the address's host part: refused at once, the password hidden
    with pytest.raises(SourceError, match=r"'rtsp://viewer:\*\*\*@127.0.0.1/x' is not a "
                                          r"valid stream address.*%2F") as error:
        open_source("rtsp://viewer:se/cret@127.0.0.1/x", SourceOptions(reconnect=policy),
                    FakeCamera("", openable=False).factory)
    assert "'se'" not in str(error.value) and "cret" not in str(error.value)


def test_a_stop_request_while_connecting_is_honoured_after_the_attempt_never_within_it():
    """A stop request during a capture's open ends the run once the open returns; our handler
    never raises within it. OpenCV's binding runs pending handlers (PyObject_Str, building the
    error of an overload it tried) and crashed (SIGSEGV, a CI run's exit -11) on the exception
    raised there while the open was inside ``waiting()``. An open that succeeds as the stop
    comes is released, and no output is opened for it."""
    import os
    import signal

    from vigil.runtime.core.interrupts import StopSignals

    attempts = []

    def factory(target):
        attempts.append("began")
        # the handler runs within the attempt (os.kill returns through it), as it does within
        # OpenCV's binding: there it must only record the request
        os.kill(os.getpid(), signal.SIGINT)
        attempts.append("returned")
        return FakeCamera("", openable=False).factory(target)

    policy = ReconnectPolicy(initial_delay_s=5.0, max_delay_s=5.0, max_attempts=None)
    with StopSignals() as stop, pytest.raises(KeyboardInterrupt, match="SIGINT"):
        open_source("rtsp://127.0.0.1:9/line", SourceOptions(reconnect=policy), factory)
    assert stop.requested == "SIGINT"
    assert attempts == ["began", "returned"]  # one attempt, whole; no retry after the request
    camera = FakeCamera("f")  # it opens

    def opens(target):
        os.kill(os.getpid(), signal.SIGINT)
        return camera.factory(target)

    with StopSignals(), pytest.raises(KeyboardInterrupt, match="SIGINT"):
        open_source("rtsp://127.0.0.1:9/line", SourceOptions(reconnect=policy), opens)
    assert camera.opened == 1 and len(camera.captures) == 1 and not camera.captures[0].open


def test_real_opencv_camera_index_that_does_not_exist():
    policy = ReconnectPolicy(initial_delay_s=0.0, max_delay_s=0.0, max_attempts=0)
    # 9998 is a backend-coded index for OpenCV (backend 9900, camera 98): it is tried
    with pytest.raises(SourceError, match="camera 9998 could not be opened after 1 attempt"):
        open_source("9998", SourceOptions(reconnect=policy))
    if sys.platform.startswith("linux") and not Path("/dev/video97").exists():
        started = time.monotonic()  # refused at once, however many attempts are allowed
        with pytest.raises(SourceError, match=r"camera 97: /dev/video97 does not exist \(cameras "
                                              r"here: .*\); give the camera that is there, or "
                                              r"--reconnect-attempts forever"):
            open_source("97", SourceOptions(reconnect=ReconnectPolicy(max_attempts=10)))
        assert time.monotonic() - started < 5
        # 200 is OpenCV's V4L2 camera 0 (a backend plus a camera number), not /dev/video200
        with pytest.raises(SourceError, match="camera 200 could not be opened after 1 attempt"):
            open_source("200", SourceOptions(reconnect=policy))


def test_close_stops_the_capture_thread_and_releases_the_device():
    camera = FakeCamera("f" * 100_000)
    source = open_source("0", SourceOptions(reconnect=FAST), camera.factory)
    frames = collect(source, limit=3)
    assert len(frames) == 3
    assert camera.captures and all(not c.open for c in camera.captures)
    unused = open_source("0", SourceOptions(reconnect=FAST), camera.factory)
    assert camera.captures[-1].open
    unused.close()  # opened but never iterated: device released
    assert not camera.captures[-1].open
    assert not [t for t in threading.enumerate() if t.name.startswith("vigil-capture")]


def test_a_capture_backend_that_raises_ends_the_source_cleanly():
    class Broken(FakeCapture):
        def read(self):
            raise RuntimeError("driver exploded")

    camera = FakeCamera("f" * 10)
    source = open_source("0", SourceOptions(reconnect=FAST), lambda target: Broken(camera))
    assert collect(source) == []
    assert "driver exploded" in source.stats.error


def test_options_are_validated():
    with pytest.raises(ValueError, match="queue_size"):
        SourceOptions(queue_size=0)
    with pytest.raises(ValueError, match="max_attempts"):
        ReconnectPolicy(max_attempts=-1)
    with pytest.raises(ValueError, match="initial_delay_s"):
        ReconnectPolicy(initial_delay_s=5, max_delay_s=1)
    policy = ReconnectPolicy(initial_delay_s=0.5, max_delay_s=4, max_attempts=None)
    assert [policy.delay(a) for a in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert not policy.exhausted(10**6)


class MjpegServer:
    """An MJPEG camera on 127.0.0.1 (multipart/x-mixed-replace, as IP cameras serve it). Its first
    connection sends ``whole_first`` frames, then half of the next, and closes; later connections
    send whole frames until the client goes. Frame ``i`` is ``jpegs[i % len(jpegs)]``."""

    def __init__(self, jpegs: list[bytes], whole_first: int,
                 mangled: dict[int, bytes] | None = None) -> None:
        """``whole_first``: the first connection's part cut in half, ending it; ``mangled``: the
        first connection's parts sent as given instead."""
        import http.server
        import socketserver

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                first = server.connections == 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for number in range(10_000):
                        data = jpegs[number % len(jpegs)]
                        if first and mangled and number in mangled:
                            data = mangled[number]
                        cut = first and number == whole_first
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         b"Content-Length: %d\r\n\r\n" % len(data))
                        self.wfile.write(data[:len(data) // 2] if cut else data + b"\r\n")
                        self.wfile.flush()
                        if cut:
                            return
                        time.sleep(0.02)
                except OSError:  # the client went away
                    return

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.connections = 0
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_an_mjpeg_frame_cut_off_in_transit_is_an_error_item_not_a_frame(tmp_path):
    """FFmpeg decodes a frame cut off mid-transfer with the previous frame's pixels in its lower
    part and only warns: the source reads the stream's JPEG packets and checks each instead."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8) for _ in range(4)]
    jpegs = [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
             for image in images]
    server = MjpegServer(jpegs, whole_first=3)
    try:
        source = open_source(server.url, SourceOptions(queue_size=64, reconnect=FAST))
        frames = collect(source, limit=6)
    finally:
        server.close()
    assert [f.index for f in frames] == list(range(6))
    assert all(f.error is None for f in frames[:3] + frames[4:])
    expected = [cv2.imdecode(np.frombuffer(jpegs[n % 4], np.uint8), cv2.IMREAD_COLOR)
                for n in (0, 1, 2)]
    assert all(np.array_equal(f.image, e) for f, e in zip(frames[:3], expected))
    assert frames[3].image is None and "damaged JPEG" in frames[3].error
    assert "the stream goes on" in frames[3].error
    assert frames[4].gap_s is not None and source.stats.reconnects == 1
    assert source.stats.errors == 1


def test_an_mjpeg_part_that_is_no_jpeg_is_a_damaged_frame_and_the_stream_stays_checked(caplog):
    """One part without its start-of-image marker had switched the run to FFmpeg's decoding for
    good: no line for that frame, no damage checked after it, and every later frame stretched to
    the first one's size, so boxes were in the wrong pixels (review r2)."""
    rng = np.random.default_rng(2)
    sizes = [(48, 64), (40, 90)]  # frames alternate in size
    jpegs = [cv2.imencode(".jpg", rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))[1]
             .tobytes() for size in sizes]
    damaged = jpegs[0][:-500] + b"\x00" * 400 + jpegs[0][-100:]  # zeros lost in transit
    server = MjpegServer(jpegs, whole_first=10_000, mangled={4: jpegs[0][2:], 6: damaged})
    try:
        with caplog.at_level("WARNING", logger="vigil"):
            source = open_source(server.url, SourceOptions(queue_size=64, reconnect=FAST))
            frames = collect(source, limit=10)
    finally:
        server.close()
    assert [f.index for f in frames] == list(range(10))
    assert frames[4].image is None and "start-of-image" in frames[4].error
    assert frames[6].image is None and "damaged JPEG" in frames[6].error
    good = [f for n, f in enumerate(frames) if n not in (4, 6)]
    assert [f.image.shape[:2] for f in good] == [sizes[f.index % 2] for f in good]
    assert source.stats.reconnects == 0 and source.stats.errors == 2
    assert "are not JPEG files" not in caplog.text


def test_an_mjpeg_stream_that_stops_sending_jpegs_is_decoded_by_ffmpeg(caplog):
    """One part that is no JPEG is a damaged frame; a run of them is a camera that changed what
    it sends, and FFmpeg decodes it from then on, said (review d1)."""
    from vigil.runtime.camera.live_source import NOT_JPEG_RUN

    rng = np.random.default_rng(5)
    jpegs = [cv2.imencode(".jpg", rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8))[1]
             .tobytes() for _ in range(2)]
    bad = {n: jpegs[n % 2][2:] for n in range(2, 2 + NOT_JPEG_RUN + 10)}
    server = MjpegServer(jpegs, whole_first=10_000, mangled=bad)
    try:
        with caplog.at_level("WARNING", logger="vigil"):
            source = open_source(server.url, SourceOptions(queue_size=256, reconnect=FAST))
            frames = collect(source, limit=NOT_JPEG_RUN + 8)
    finally:
        server.close()
    assert caplog.text.count("its MJPEG packets are not JPEG files; FFmpeg decodes") == 1
    assert all(f.image is not None for f in frames[:2])
    assert all("start-of-image" in f.error for f in frames[2:1 + NOT_JPEG_RUN])
    assert frames[-1].image is not None and server.connections == 2  # decoded by FFmpeg


def test_an_mjpeg_streams_frames_are_decoded_only_when_taken(monkeypatch):
    """The capture thread reads packets; a frame is decoded when the consumer takes it, so a
    stream faster than decoding is dropped in the queue rather than backed up in the socket (a
    review's 60 fps 1536-px stream: frames 0.5-1.1 s old when scored, said nowhere)."""
    from vigil.runtime.camera import live_source

    decoded = []
    real = live_source.decode_jpeg_frame
    monkeypatch.setattr(live_source, "decode_jpeg_frame",
                        lambda data: decoded.append(len(data)) or real(data))
    rng = np.random.default_rng(1)
    jpegs = [cv2.imencode(".jpg", rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8))[1]
             .tobytes() for _ in range(3)]
    server = MjpegServer(jpegs, whole_first=10_000)
    try:
        source = open_source(server.url, SourceOptions(queue_size=1, reconnect=FAST))
        frames = collect(source, limit=5, delay_s=0.1)  # 5 frames a stream sends every 0.02 s
    finally:
        server.close()
    stats = source.stats
    assert len(frames) == 5 and all(f.image is not None and f.packet is None for f in frames)
    assert stats.dropped > 0  # read but never decoded
    assert len(decoded) == len(frames)


def test_a_video_with_no_frames_is_called_an_empty_recording(tmp_path):
    source = open_source(str(write_video(tmp_path / "empty.avi", 0)))
    with pytest.raises(SourceError, match=r"empty.avi' holds no frames \(its container reports 0"):
        source.check()


@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_a_damaged_frame_of_an_mjpg_video_opencv_reads_is_an_error_item(tmp_path, suffix):
    """MJPG in MKV or MOV (read by FFmpeg, not by an AVI index) is read as its JPEG packets, each
    checked before it is decoded: FFmpeg would fill a damaged frame in and only warn."""
    path = write_video(tmp_path / f"clip{suffix}", 10)
    whole = [f.image for f in open_source(str(path))]
    assert len(whole) == 10 and all(image is not None for image in whole)
    reference = cv2.VideoCapture(str(path))  # FFmpeg's decoder: another IDCT than libjpeg's
    assert all(np.abs(image.astype(int) - reference.read()[1]).mean() < 2 for image in whole)
    reference.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    scan = data.index(b"\xff\xda", starts[4])
    data[scan + 40:scan + 42] = b"\xff\x29"  # a marker no JPEG holds inside its image data
    path.write_bytes(bytes(data))
    source = open_source(str(path))
    source.check()
    frames = list(source)
    assert [f.index for f in frames] == list(range(10))
    assert frames[4].image is None and "damaged JPEG: a stray marker 0xFF29" in frames[4].error
    assert all(f.error is None for f in frames[:4] + frames[5:])


@pytest.mark.parametrize("peak, said", [
    (4000, "all below 4096 (12-bit data?); it is read by its top 8 bits, so it keeps 4 bit(s) "
           "of its levels and is almost black. Convert such images to 8 bits from their own "
           "range first (a 12-bit camera's: shift right by 4)"),
    (8000, "all below 8192 (13-bit data?); it is read by its top 8 bits, so it keeps 5 bit(s) "
           "of its levels and is dark"),
    (60000, None),
    (200, "all below 256 (8-bit data stored in 16 bits, or a dark frame?); it is read by its "
          "top 8 bits, so it is black. If its values are 8-bit ones, cast them without a shift"),
])
def test_16_bit_images_of_fewer_bits_are_warned_of(tmp_path, monkeypatch, caplog, peak, said):
    from vigil.runtime.camera import datasets

    monkeypatch.setattr(datasets, "_DARK_16_BIT_WARNED", [])
    image = np.linspace(0, peak, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), image)
    with caplog.at_level("WARNING", logger="vigil"):
        read = datasets.read_image(path)
    assert read.dtype == np.uint8 and read.max() == peak >> 8
    if said is None:
        assert caplog.text == ""
    else:
        assert said in caplog.text


def test_a_video_decoded_by_ffmpeg_gives_each_frame_its_time_in_the_container(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 6, fourcc="mp4v", fps=5.0)
    with open_source(str(path)) as source:
        frames = list(source)
    assert [f.position_s for f in frames] == pytest.approx([k / 5 for k in range(6)])
