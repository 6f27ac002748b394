"""Synthetic anomalies pasted into normal images, for training a defect segmenter on normal data.

Generic on purpose (the model is also judged on data we have not seen): region shapes are Perlin
noise blobs, ellipses, thin polylines (scratches, cracks) and regions cut from an image border
(chips, breaks); fills are texture from another normal image, brightness shifts, flat paint,
noise or blur. Images are float32 in [0, 1], (height, width) or (height, width, channels).
"""

from __future__ import annotations

import cv2
import numpy as np


def perlin_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """2-D gradient (Perlin) noise in about [-1, 1] with ``cells`` lattice cells per axis."""
    height, width = shape
    gy, gx = cells
    angles = rng.uniform(0, 2 * np.pi, (gy + 1, gx + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y = np.linspace(0, gy, height, endpoint=False)
    x = np.linspace(0, gx, width, endpoint=False)
    yi, xi = np.floor(y).astype(int), np.floor(x).astype(int)
    yf, xf = (y - yi)[:, None], (x - xi)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        g = gradients[(yi + dy)[:, None], (xi + dx)[None, :]]
        return g[..., 0] * (yf - dy) + g[..., 1] * (xf - dx)

    fade = lambda t: 6 * t ** 5 - 15 * t ** 4 + 10 * t ** 3  # noqa: E731
    u, v = fade(xf), fade(yf)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return np.sqrt(2) * (top * (1 - v) + bottom * v)


def draw_random_walks(rng: np.random.Generator, mask: np.ndarray, steps: tuple[int, int],
                      spread: float, widths: tuple[int, int]) -> None:
    """Draw one or two random-walk polylines (scratches, cracks) into ``mask`` (height, width):
    ``steps`` (low, high) steps each of std min(height, width) / ``spread`` px, ``widths``
    (low, high) px wide, high exclusive."""
    height, width = mask.shape
    for _ in range(int(rng.integers(1, 3))):
        points = [rng.uniform(0, [width, height])]
        for _ in range(int(rng.integers(*steps))):
            points.append(np.clip(points[-1] + rng.normal(0, min(height, width) / spread, 2), 0,
                                  [width - 1, height - 1]))
        cv2.polylines(mask, [np.array(points, np.int32).reshape(-1, 1, 2)], False, 1.0,
                      int(rng.integers(*widths)))


def region_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """One random anomaly region as a float32 mask in {0, 1}."""
    height, width = shape
    kind = rng.random()
    mask = np.zeros(shape, np.float32)
    if kind < 0.4:
        for _ in range(10):
            cells = (int(2 ** rng.integers(0, 5)), int(2 ** rng.integers(0, 5)))
            noise = perlin_noise(rng, shape, cells).astype(np.float32)
            rotation = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-90, 90), 1.0)
            rotated = cv2.warpAffine(noise, rotation, (width, height),
                                     borderMode=cv2.BORDER_REFLECT)
            mask = (rotated > 0.5).astype(np.float32)
            if mask.sum() > 4:
                break
    elif kind < 0.6:
        for _ in range(int(rng.integers(1, 4))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(1, max(2, width // 8))), int(rng.integers(1, max(2, height // 8))))
            cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    elif kind < 0.85:
        draw_random_walks(rng, mask, steps=(2, 6), spread=8, widths=(1, 4))
    else:
        side = int(rng.integers(4))
        along = int(rng.integers(0, width if side < 2 else height))
        centre = {0: (along, 0), 1: (along, height - 1), 2: (0, along), 3: (width - 1, along)}[side]
        axes = (int(rng.integers(max(1, width // 16), max(2, width // 4))),
                int(rng.integers(max(1, height // 16), max(2, height // 3))))
        cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    return mask


def paste_anomaly(rng: np.random.Generator, image: np.ndarray, other: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(image with a synthetic anomaly, its float32 {0,1} label mask where it visibly changed)."""
    mask = region_mask(rng, image.shape[:2])
    soft = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.3, 1.5)) if rng.random() < 0.5 else mask
    if image.ndim == 3:
        soft = soft[:, :, None]
    kind = rng.random()
    if kind < 0.35:
        texture = np.rot90(other, int(rng.integers(4))) if rng.random() < 0.5 else other[::-1]
        if texture.shape != image.shape:
            texture = other[::-1]
        texture = np.clip((texture - texture.mean()) * rng.uniform(0.5, 2.0) + image.mean()
                          + rng.uniform(-0.3, 0.3), 0, 1)
        beta = rng.uniform(0, 0.8)
        fill = (1 - beta) * texture + beta * image
    elif kind < 0.75:
        # Half of the shifts are faint: real defects are often low-contrast (uneven surfaces).
        faint = rng.random() < 0.5
        shift = rng.uniform(*((0.04, 0.12) if faint else (0.1, 0.5)))
        gain = rng.uniform(*((0.9, 1.1) if faint else (0.5, 1.2)))
        fill = np.clip(image * gain + shift * (-1 if rng.random() < 0.6 else 1), 0, 1)
    elif kind < 0.9:
        fill = np.full_like(image, rng.uniform(0, 1))
    elif rng.random() < 0.5:
        fill = np.clip(image + rng.normal(0, rng.uniform(0.05, 0.3), image.shape), 0, 1)
    else:
        fill = cv2.GaussianBlur(image, (0, 0), 3)
    out = (image * (1 - soft) + fill * soft).astype(np.float32)
    change = np.abs(out - image)
    if change.ndim == 3:
        change = change.max(axis=2)
    label = ((mask > 0.5) & (change > 0.02)).astype(np.float32)
    return out, label


def thin_crack(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``image`` with one or two faint thin cracks drawn in, their float32 {0,1} mask): random-walk
    polylines 1-2 px wide, darker (70 %) or brighter by 0.05-0.2 of the range, edges softened.
    The hardest common defect for a patch model; training's choice of feature levels judges the
    candidates on these (``feature_model.choose_levels``)."""
    mask = np.zeros(image.shape[:2], np.float32)
    draw_random_walks(rng, mask, steps=(4, 10), spread=10, widths=(1, 3))
    soft = cv2.GaussianBlur(mask, (0, 0), 0.7)
    if image.ndim == 3:
        soft = soft[:, :, None]
    shift = rng.uniform(0.05, 0.2) * (-1 if rng.random() < 0.7 else 1)
    out = (image * (1 - soft) + np.clip(image + shift, 0, 1) * soft).astype(np.float32)
    return out, mask


def random_view(rng: np.random.Generator, image: np.ndarray, crop: int = 0,
                min_side: int = 0) -> np.ndarray:
    """A random square ``crop`` of ``image`` (height, width, channels), first resized to a random
    side in [``min_side``, its own side] when ``min_side`` is set (half the time the smallest
    side). Training on views lets a model be trained at one scale and run on whole, larger
    frames; the rescaling teaches it defects of many sizes. ``crop`` 0 returns the image."""
    if not crop:
        return image
    side = image.shape[0]
    if min_side and min_side < side:
        # Half the views at the smallest side keep the coarse context (large defects).
        low = max(crop, min_side)
        side = low if rng.random() < 0.5 else int(rng.integers(low, side + 1))
        resized = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        image = resized[:, :, None] if resized.ndim == 2 else resized
    top, left = rng.integers(0, image.shape[0] - crop + 1), rng.integers(0, image.shape[1] - crop + 1)
    return image[top:top + crop, left:left + crop]


def training_batch(rng: np.random.Generator, images: np.ndarray, batch: int,
                   anomaly_rate: float = 0.7, crop: int = 0, min_side: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A batch of flipped, gain-jittered normal images (or random views of them, see
    ``random_view``), most with a pasted anomaly.

    ``images`` is (n, height, width, channels) float32 in [0, 1]; returns (x, y) with y the
    (batch, side, side, 1) anomaly labels.
    """
    n, height, width, channels = images.shape
    if crop and not 0 < crop <= min(height, width):
        raise ValueError(f"`crop` must be in [1, {min(height, width)}] for these images; "
                         f"received {crop}")
    if crop:
        height = width = crop
    x = np.empty((batch, height, width, channels), np.float32)
    y = np.zeros((batch, height, width, 1), np.float32)
    for j, i in enumerate(rng.integers(0, n, batch)):
        image = random_view(rng, images[i], crop, min_side)
        if rng.random() < 0.5:
            image = image[:, ::-1]
        if rng.random() < 0.5:
            image = image[::-1]
        image = np.clip(image * rng.uniform(0.7, 1.3) + rng.uniform(-0.1, 0.1), 0, 1)
        if rng.random() < anomaly_rate:
            other = random_view(rng, images[int(rng.integers(n))], crop, min_side)
            image2d = image[:, :, 0] if channels == 1 else image
            other2d = other[:, :, 0] if channels == 1 else other
            pasted, label = paste_anomaly(rng, np.ascontiguousarray(image2d),
                                          np.ascontiguousarray(other2d))
            image = pasted[:, :, None] if channels == 1 else pasted
            y[j, :, :, 0] = label
        x[j] = image
    return x, y
