"""Frames compressed harder than the training images: the JPEG quality read from a file's own
tables, recorded in training, and said at run time and in evaluation (docs/quality.md, "Frames
compressed otherwise than in training": the default model rejected 77 % of good ELPV cells as
JPEGs of quality 50, 1 % as PNGs, and 83 % as an mp4v video)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from vigil import runtime
from vigil.runtime.camera import jpeg
from vigil.runtime.camera.datasets import read_image_and_quality
from vigil.runtime.camera.frame_source import capture_codec
from vigil.runtime.camera.frames import (LOW_JPEG_QUALITY, compression_mismatch, lossy_codec)
from vigil.runtime.camera.scoring import FrameScoringOptions, score_frames
from vigil.runtime.camera.sources import open_source
from vigil.runtime.core.spec import ArtifactError, spec_from_dict, spec_to_dict
from image_fixtures import normal_frame, tiny_image_graph, tiny_image_spec


def textured(seed: int = 0, shape=(96, 128, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 0)


def encoded(image: np.ndarray, quality: int) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


@pytest.mark.parametrize("quality", [100, 95, 90, 80, 75, 70, 50, 30, 20])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_quality_a_jpeg_was_encoded_at_is_read_from_its_tables(quality, channels):
    image = textured(shape=(48, 64, 3) if channels == 3 else (48, 64))
    assert abs(jpeg.quality(encoded(image, quality)) - quality) <= 1


def test_a_thumbnail_in_the_exif_block_is_not_taken_for_the_image():
    """An EXIF thumbnail is a JPEG with tables of its own, ahead of the image's."""
    main = encoded(textured(), 92)
    thumbnail = encoded(textured(1, (16, 16, 3)), 30)
    body = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08" + thumbnail
    app1 = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    with_exif = main[:2] + app1 + main[2:]
    assert cv2.imdecode(np.frombuffer(with_exif, np.uint8), cv2.IMREAD_COLOR) is not None
    assert jpeg.quality(with_exif) == 92


def test_sixteen_bit_tables_and_what_is_no_jpeg():
    standard = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
    doubled = b"".join((2 * v).to_bytes(2, "big") for v in standard)  # libjpeg's quality 25
    segment = b"\xff\xdb" + (2 + 1 + 128).to_bytes(2, "big") + b"\x10" + doubled
    assert jpeg.quality(b"\xff\xd8" + segment + b"\xff\xda") == 25
    assert jpeg.quality(cv2.imencode(".png", textured())[1].tobytes()) is None
    assert jpeg.quality(b"") is None
    assert jpeg.quality(b"\xff\xd8\xff\xdb\x00\x43\x00\x10") is None  # a table cut short
    assert jpeg.quality(b"\xff\xd8\xff\xda\x00\x02") is None  # image data before any table
    zeroed = b"\xff\xdb" + (2 + 1 + 64).to_bytes(2, "big") + b"\x00" + bytes(64)
    assert jpeg.quality(b"\xff\xd8" + zeroed + b"\xff\xda") is None  # damaged: no table


def test_a_files_quality_is_read_from_the_bytes_its_pixels_come_from(tmp_path):
    (tmp_path / "a.jpg").write_bytes(encoded(textured(), 60))
    cv2.imwrite(str(tmp_path / "b.png"), textured())
    cv2.imwrite(str(tmp_path / "c.webp"), textured(), [cv2.IMWRITE_WEBP_QUALITY, 101])
    cv2.imwrite(str(tmp_path / "d.webp"), textured(), [cv2.IMWRITE_WEBP_QUALITY, 60])
    cv2.imwrite(str(tmp_path / "e.bmp"), textured())
    qualities = {name: read_image_and_quality(tmp_path / name)[1]
                 for name in ("a.jpg", "b.png", "c.webp", "d.webp", "e.bmp")}
    # lossless formats as 100; a lossy WebP's quality is not known
    assert qualities == {"a.jpg": 60, "b.png": 100, "c.webp": 100, "d.webp": None, "e.bmp": 100}
    np.testing.assert_array_equal(read_image_and_quality(tmp_path / "a.jpg")[0],
                                  cv2.imread(str(tmp_path / "a.jpg"), cv2.IMREAD_UNCHANGED))


def test_training_records_the_quality_of_the_images_it_knows():
    pytest.importorskip("keras")
    from vigil.training.train_image import _quality_record

    assert _quality_record([100] * 19 + [50]) == {"jpeg_quality": [98, 100]}  # one stray JPEG
    assert _quality_record([95, 90, None, 92]) == {"jpeg_quality": [90, 95]}
    assert _quality_record([None, None]) == {}  # lossy WebP alone: nothing to judge frames by


def spec_with(quality):
    spec = tiny_image_spec()
    return replace(spec, training={**spec.training, "jpeg_quality": quality})


@pytest.mark.parametrize("value", [[0, 90], [95, 80], [50, 101], [60.5, 90], "high"])
def test_a_malformed_quality_record_is_refused_on_loading(value):
    data = json.loads(json.dumps(spec_to_dict(tiny_image_spec())))
    data["training"]["jpeg_quality"] = value
    with pytest.raises(ArtifactError, match="training.jpeg_quality must be"):
        spec_from_dict(data)


def test_frames_compressed_much_harder_than_training_are_unlike_it():
    lossless = spec_with([100, 100])
    assert compression_mismatch(None, lossless) is None  # a PNG, or a quality unknown
    assert compression_mismatch(LOW_JPEG_QUALITY, lossless) is None
    said = compression_mismatch(LOW_JPEG_QUALITY - 5, lossless)
    assert said is not None and "JPEGs of quality 70" in said and "lossless" in said
    assert "quality 80 or more" in said
    trained_at_70 = spec_with([70, 95])
    assert compression_mismatch(62, trained_at_70) is None  # within 10 of the training's
    said = compression_mismatch(55, trained_at_70)
    assert said is not None and "JPEGs of quality 70 or more" in said
    assert compression_mismatch(20, tiny_image_spec()) is None  # an artifact before the record


def test_lossy_video_codecs_are_named_and_others_are_not():
    assert "FMP4 video" in lossy_codec("FMP4")
    assert lossy_codec("h264") is not None and lossy_codec("avc1") is not None
    for codec in ("MJPG", "FFV1", "YUYV", "", None):
        assert lossy_codec(codec) is None


def gray_frame(rng) -> np.ndarray:
    """A normal frame for the tiny model, which is gray."""
    return cv2.cvtColor(normal_frame(rng), cv2.COLOR_BGR2GRAY)


def write_video(path, fourcc: str, frames: int = 4):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 5, (64, 48),
                             isColor=False)
    if not writer.isOpened():
        pytest.skip(f"this OpenCV has no {fourcc} encoder")
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(gray_frame(rng))
    writer.release()
    return path


def score(model, source) -> tuple[list[dict], object]:
    out = io.StringIO()
    summary = score_frames(runtime.load(model), open_source(str(source)), out,
                           FrameScoringOptions())
    return [json.loads(line) for line in out.getvalue().splitlines()], summary


@pytest.fixture
def lossless_model(tmp_path):
    from vigil.export.package import write_artifact

    return write_artifact(tiny_image_graph(), spec_with([100, 100]), tmp_path / "png.onnx")


def test_a_folder_of_hard_compressed_jpegs_is_marked_and_said_once(lossless_model, tmp_path,
                                                                   caplog):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for n, quality in enumerate((95, 40, 40, 90)):
        (folder / f"{n}.jpg").write_bytes(encoded(gray_frame(rng), quality))
    cv2.imwrite(str(folder / "4.png"), gray_frame(rng))
    with caplog.at_level("WARNING", logger="vigil"):
        lines, summary = score(lossless_model, folder)
    assert [line.get("unlike_training") for line in lines] == [
        None, ["compression"], ["compression"], None, None]
    assert summary.frames_unlike_training == 2
    assert caplog.text.count("frames are JPEGs of quality 40") == 1


STANDARD_LUMINANCE = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
    56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
    104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]


def requantized(data: bytes, quality: int, frames: set[int] | None = None) -> bytes:
    """``data`` (a file of JPEG frames) with the luminance table of each frame in ``frames``
    (all if None) replaced in place by libjpeg's at ``quality``: same sizes, so an AVI's index
    still holds, and the frames decode (to other pixels)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    table = bytes(min(255, max(1, int((v * scale + 50) // 100))) for v in STANDARD_LUMINANCE)
    out, start, number = bytearray(data), 0, 0
    while (found := data.find(b"\xff\xdb\x00\x43\x00", start)) >= 0:
        if frames is None or number in frames:
            out[found + 5:found + 69] = table
        start, number = found + 69, number + 1
    return bytes(out)


def test_an_mjpg_videos_frames_are_judged_each_by_its_quality(lossless_model, tmp_path, caplog):
    video = write_video(tmp_path / "line.avi", "MJPG")  # OpenCV's MJPG writer: quality 90
    with caplog.at_level("WARNING", logger="vigil"):
        lines, _ = score(lossless_model, video)
    assert len(lines) == 4 and not any(line.get("unlike_training") for line in lines)
    assert "compression" not in caplog.text and "codec" not in caplog.text
    # the AVI index's frames, two of them at quality 40: those two are marked, said once
    video.write_bytes(requantized(video.read_bytes(), 40, frames={1, 3}))
    with caplog.at_level("WARNING", logger="vigil"):
        lines, summary = score(lossless_model, video)
    assert [line.get("unlike_training") for line in lines] == [
        None, ["compression"], None, ["compression"]]
    assert summary.frames_unlike_training == 2
    assert caplog.text.count("frames are JPEGs of quality 40") == 1


def test_a_streams_frames_are_judged_each_by_its_quality(lossless_model):
    """A camera's MJPEG quality may change from frame to frame (bitrate control): each frame is
    judged, where the first frames' finding had held for the whole run (review d1)."""
    from test_sources import MjpegServer

    rng = np.random.default_rng(4)
    frames = [encoded(gray_frame(rng), quality) for quality in (95, 95, 40, 95, 40)]
    server = MjpegServer(frames, whole_first=10_000)
    try:
        lines, _ = score_stream(lossless_model, server.url, 10)
    finally:
        server.close()
    assert [line.get("unlike_training") for line in lines] == [
        ["compression"] if n % 5 in (2, 4) else None for n in range(10)]


def score_stream(model, url: str, frames: int) -> tuple[list[dict], object]:
    from vigil.runtime.camera.sources import ReconnectPolicy, SourceOptions

    out = io.StringIO()
    source = open_source(url, SourceOptions(queue_size=64, reconnect=ReconnectPolicy(
        initial_delay_s=0.01, max_delay_s=0.05, max_attempts=3)))
    summary = score_frames(runtime.load(model), source, out,
                           FrameScoringOptions(max_frames=frames))
    return [json.loads(line) for line in out.getvalue().splitlines()], summary


def test_a_lossy_video_codec_is_said_once(lossless_model, tmp_path, caplog):
    video = write_video(tmp_path / "line.mp4", "mp4v")
    capture = cv2.VideoCapture(str(video))
    try:
        codec = capture_codec(capture)
    finally:
        capture.release()
    assert codec is not None and lossy_codec(codec) is not None
    with caplog.at_level("WARNING", logger="vigil"):
        lines, _ = score(lossless_model, video)
    assert len(lines) == 4 and all(line["score"] is not None for line in lines)
    said = [r.getMessage() for r in caplog.records if "a codec that loses" in r.getMessage()]
    assert len(said) == 1 and f"decoded from {codec} video" in said[0]


def test_evaluation_counts_the_test_images_compressed_harder(lossless_model, tmp_path, caplog):
    from vigil.runtime.camera.evaluation import evaluate_images
    from vigil.runtime.camera.datasets import LabeledImage

    rng = np.random.default_rng(2)
    items = []
    for n, quality in enumerate((95, 30, 30)):
        path = tmp_path / f"good{n}.jpg"
        path.write_bytes(encoded(gray_frame(rng), quality))
        items.append(LabeledImage(path, False, "good"))
    defect = tmp_path / "defect.png"
    frame = gray_frame(rng)
    frame[8:20, 16:30] = 255
    cv2.imwrite(str(defect), frame)
    items.append(LabeledImage(defect, True, "patch"))
    with caplog.at_level("WARNING", logger="vigil"):
        result, _ = evaluate_images(runtime.load(lossless_model), items)
    assert result["images_compressed_harder"] == 2
    assert "2 of the 4 test images (the first: " in caplog.text
    from vigil.runtime.camera.report import _seen_lines

    assert any(line.startswith("**Caution:** 2 test image(s) are JPEGs compressed much harder")
               for line in _seen_lines(result))  # report.md says it too (review d1)
    old, _ = evaluate_images(runtime.load(write_old(tmp_path)), items)
    assert old["images_compressed_harder"] is None  # no record of the training images'


def write_old(tmp_path):
    from image_fixtures import write_tiny_image_artifact

    return write_tiny_image_artifact(tmp_path / "old.onnx")
