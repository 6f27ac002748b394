"""How compression the training images did not have moves the default image model's decisions.

For ELPV mono and poly cells (PNG) and the magnetic tiles (JPEG, quality 95), one default model
per set is trained and exported as the quality benchmarks do (their splits and protocols); each
test image is then scored as read, after a JPEG round trip at several qualities, and after one
through a video codec (written by OpenCV, mp4v and MJPG as it writes them, and read back as
`vigil score` reads them).
Per set and encoding: the normal test images rejected at the model's threshold, how many of
those decisions changed against the images as read, the normal scores' median shift in units of
their interquartile range as read, image AUROC, and the encoding's PSNR against the images
as read (all pixels pooled). This chose the runtime's
``LOW_JPEG_QUALITY`` (runtime/camera/frames.py) and backs its warnings' figures.

    python benchmarks/explore_compression.py --data ../shared/data --json results/compression.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vigil.benchmarks import quality_elpv, quality_magnetic_tile  # noqa: E402
from vigil.benchmarks.artifacts import load_image  # noqa: E402
from vigil.export import ExportOptions  # noqa: E402
from vigil.export.export_image import export_image  # noqa: E402
from vigil.runtime.camera.datasets import read_image_and_quality  # noqa: E402
from vigil.runtime.camera.evaluation import test_items  # noqa: E402
from vigil.runtime.camera.sources import open_source  # noqa: E402
from vigil.runtime.core import metrics  # noqa: E402
from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.training.train_image import ImageTrainingOptions, train_image  # noqa: E402

SETS = ("mono", "poly", "tiles")
QUALITIES = (95, 90, 85, 80, 70, 50, 30)
VIDEO_CODECS = {"mp4v": ".mp4", "MJPG": ".avi"}


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise RuntimeError(f"a JPEG of quality {quality} could not be decoded")
    return decoded


def video_round_trip(image: np.ndarray, fourcc: str, scratch: Path) -> np.ndarray:
    """``image`` written three times as a video of ``fourcc`` and its second frame read back by
    the runtime's reader (a middle frame, as a line's recording gives)."""
    path = scratch / f"clip{VIDEO_CODECS[fourcc]}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10,
                             (image.shape[1], image.shape[0]), isColor=image.ndim == 3)
    if not writer.isOpened():
        raise RuntimeError(f"this OpenCV cannot write {fourcc} video at "
                           f"{image.shape[1]}x{image.shape[0]}")
    for _ in range(3):
        writer.write(image)
    writer.release()
    source = open_source(path)  # as `vigil score` reads it (an AVI's MJPG by libjpeg)
    try:
        frames = [frame.image for frame in source if frame.image is not None]
    finally:
        source.close()
    if len(frames) < 2:
        raise RuntimeError(f"the {fourcc} video of {len(frames)} frames could not be read back")
    return frames[1]


def psnr(images: list[np.ndarray], others: list[np.ndarray]) -> float:
    """Peak signal-to-noise ratio of ``others`` against ``images`` in dB, over all their gray
    levels together (a gray image decoded as colour compares alike; a codec that rounds a side
    to an even size is compared on the part both hold); 100 for identical pixels."""
    total, count = 0.0, 0
    for image, other in zip(images, others):
        a, b = (cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) if i.ndim == 3 else i for i in (image, other))
        rows, columns = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        difference = a[:rows, :columns].astype(np.float64) - b[:rows, :columns]
        total, count = total + float(np.sum(difference ** 2)), count + difference.size
    error = total / max(count, 1)
    return float(10 * np.log10(255.0 ** 2 / error)) if error > 0 else 100.0


def encodings(scratch: Path) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {"as read": lambda image: image}
    for quality in QUALITIES:
        table[f"jpeg {quality}"] = partial(jpeg_round_trip, quality=quality)
    for fourcc in VIDEO_CODECS:
        table[fourcc] = partial(video_round_trip, fourcc=fourcc, scratch=scratch)
    return table


def run_set(name: str, data: Path, scratch: Path, log=print) -> dict:
    if name == "tiles":
        root = quality_magnetic_tile.layout_as_mvtec(data / "magnetic-tile-defect", scratch / name)
    else:
        root = quality_elpv.layout_as_mvtec(data / "elpv", name, scratch / name)
    started = time.perf_counter()
    train_image(root, scratch / f"{name}.keras", ImageTrainingOptions(), verbose=0)
    exported = export_image(scratch / f"{name}.keras", scratch / f"{name}.onnx", ExportOptions())
    detector = load_image(exported.path)
    items = test_items(root)
    labels = np.array([item.anomalous for item in items])
    read = [read_image_and_quality(item.path) for item in items]
    images = [image for image, _ in read]
    qualities = [quality for _, quality in read if quality is not None and quality < 100]
    part: dict = {"test_normal": int((~labels).sum()), "test_defect": int(labels.sum()),
                  "precision_format": exported.precision,
                  "jpeg_quality_as_read": sorted(set(qualities)) or None}
    base: np.ndarray | None = None
    spread = 1.0
    for encoding, convert in encodings(scratch).items():
        converted = [convert(image) for image in images]
        scores = np.array([float(detector.score(image)[0]) for image in converted])
        normal = scores[~labels]
        if base is None:
            base = normal
            spread = float(np.subtract(*np.percentile(base, [75, 25]))) or 1.0
        rejected = normal > detector.threshold
        part[encoding] = {
            "normal_rejected": float(rejected.mean()),
            "decisions_changed": int((rejected != (base > detector.threshold)).sum()),
            "normal_median_shift_iqr": float(np.median(normal - base) / spread),
            "image_auroc": metrics.auroc(scores, labels),
            # how faithful the encoding is: PSNR against the images as read, all pixels pooled
            "psnr_db": psnr(images, converted) if encoding != "as read" else None,
        }
        log(f"  {name} {encoding}: {100 * rejected.mean():.1f} % of normal images rejected, "
            f"{part[encoding]['decisions_changed']} decisions changed, image AUROC "
            f"{part[encoding]['image_auroc']:.3f}, PSNR {part[encoding]['psnr_db'] or 0:.1f} dB")
    part["seconds"] = time.perf_counter() - started
    return part


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="the folder holding elpv/ and magnetic-tile-defect/")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated, of " +
                        ", ".join(SETS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    if not sets or set(sets) - set(SETS):
        parser.error(f"--sets must be among {list(SETS)}; received {args.sets!r}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        per_set = {name: run_set(name, args.data.resolve(), Path(scratch)) for name in sets}
    result = {"protocol": "the quality benchmarks' splits and default models; each test image "
                          "re-encoded and scored through the runtime",
              "sets": per_set, "seconds": time.perf_counter() - started}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text(result))
    print(json.dumps({name: {e: round(v["normal_rejected"], 3) for e, v in part.items()
                             if isinstance(v, dict)} for name, part in per_set.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
