"""Seeded synthetic camera frames: a textured surface, with scratches, spots and cracks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFECTS = ("scratch", "spot", "crack")


@dataclass(frozen=True)
class SyntheticFrame:
    image: np.ndarray   # (height, width, 3) uint8 BGR
    mask: np.ndarray    # (height, width) bool
    defect: str         # "good" or one of DEFECTS


def surface(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A brushed-metal-like texture with a gentle illumination gradient, BGR uint8."""
    noise = rng.normal(0, 1, (height, width)).astype(np.float32)
    grain = cv2.GaussianBlur(noise, (0, 0), sigmaX=6.0, sigmaY=0.8)
    fine = cv2.GaussianBlur(noise, (0, 0), 0.7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.5 + 0.25 * np.cos(angle) * x / width + 0.25 * np.sin(angle) * y / height
    gray = 110 + 55 * light + 25 * grain / (grain.std() + 1e-6) + 6 * fine
    # a warm tint, each channel jittered by at most 1 %: wider jitter could bring the channels
    # together, and about 2 % of the frames came out gray (the runtime warned of the demo's own)
    jitter = rng.uniform(0.95, 1.05, 3)
    tint = np.array([1.0, 0.97, 0.92], dtype=np.float32) * (1 + (jitter - 1) / 5)
    return np.clip(gray[:, :, None] * tint, 0, 255).astype(np.uint8)


def add_defect(image: np.ndarray, rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Draw one defect of ``kind``; returns (image, mask)."""
    height, width = image.shape[:2]
    canvas = np.zeros((height, width), dtype=np.uint8)
    cx, cy = int(rng.integers(width // 6, 5 * width // 6)), int(rng.integers(height // 6, 5 * height // 6))
    if kind == "scratch":
        length = rng.uniform(0.2, 0.45) * min(height, width)
        angle = rng.uniform(0, np.pi)
        dx, dy = length * np.cos(angle) / 2, length * np.sin(angle) / 2
        cv2.line(canvas, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 255,
                 int(rng.integers(1, 3)), cv2.LINE_AA)
        shade = rng.choice([-1.0, 1.0]) * rng.uniform(45, 80)
    elif kind == "spot":
        axes = (int(rng.integers(3, 9)), int(rng.integers(3, 9)))
        cv2.ellipse(canvas, (cx, cy), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA)
        shade = -rng.uniform(50, 90)
    elif kind == "crack":
        points = [(cx, cy)]
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(6, 12))):
            heading += rng.normal(0, 0.6)
            step = rng.uniform(3, 7)
            x, y = points[-1]
            points.append((int(np.clip(x + step * np.cos(heading), 0, width - 1)),
                           int(np.clip(y + step * np.sin(heading), 0, height - 1))))
        cv2.polylines(canvas, [np.array(points, dtype=np.int32)], False, 255, 1, cv2.LINE_AA)
        shade = -rng.uniform(60, 95)
    else:
        raise ValueError(f"`kind` must be one of {list(DEFECTS)}; received {kind!r}")
    alpha = canvas.astype(np.float32)[:, :, None] / 255.0
    out = np.clip(image.astype(np.float32) + shade * alpha, 0, 255).astype(np.uint8)
    return out, canvas >= 128


def frames(count: int, seed: int, defect_rate: float = 0.0, height: int = 128,
           width: int = 128) -> list[SyntheticFrame]:
    """``count`` frames; each has a defect with probability ``defect_rate`` (kinds in turn)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        image = surface(rng, height, width)
        if rng.random() < defect_rate:
            kind = DEFECTS[i % len(DEFECTS)]
            image, mask = add_defect(image, rng, kind)
            if mask.any():
                out.append(SyntheticFrame(image, mask, kind))
                continue
        out.append(SyntheticFrame(image, np.zeros((height, width), dtype=bool), "good"))
    return out


def write_mvtec(root: Path, seed: int = 0, train: int = 160, test_good: int = 30,
                test_defects: int = 30, size: int = 128) -> Path:
    """An MVTec-AD-layout category of synthetic frames: train/good, test/<kind>, ground_truth."""
    root = Path(root)
    for folder in ["train/good", "test/good", *(f"test/{d}" for d in DEFECTS),
                   *(f"ground_truth/{d}" for d in DEFECTS)]:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames(train, seed, 0.0, size, size)):
        cv2.imwrite(str(root / "train" / "good" / f"{i:03d}.png"), frame.image)
    for i, frame in enumerate(frames(test_good, seed + 1, 0.0, size, size)):
        cv2.imwrite(str(root / "test" / "good" / f"{i:03d}.png"), frame.image)
    for i, frame in enumerate(frames(test_defects, seed + 2, 1.0, size, size)):
        if frame.defect == "good":
            continue
        cv2.imwrite(str(root / "test" / frame.defect / f"{i:03d}.png"), frame.image)
        cv2.imwrite(str(root / "ground_truth" / frame.defect / f"{i:03d}_mask.png"),
                    frame.mask.astype(np.uint8) * 255)
    return root


def write_video(path: Path, seed: int = 0, count: int = 90, defect_rate: float = 0.3,
                size: int = 128, fps: float = 30.0) -> tuple[Path, list[str]]:
    """An MJPG .avi of synthetic frames; returns (path, the defect kind of every frame)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write video {str(path)!r} (MJPG codec unavailable)")
    kinds = []
    for frame in frames(count, seed, defect_rate, size, size):
        writer.write(frame.image)
        kinds.append(frame.defect)
    writer.release()
    return path, kinds
