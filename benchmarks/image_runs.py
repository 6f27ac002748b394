"""What the image benchmarks share: the model choice as `vigil train image` spells it, and
the per-image scores they record (so that models can be compared image by image later)."""

from __future__ import annotations

from dataclasses import replace

from vigil.training.train_image import ImageTrainingOptions


def architecture_options(options: ImageTrainingOptions, architecture: str | None,
                         bank: int | None) -> ImageTrainingOptions:
    """``options`` with ``--architecture`` and ``--bank`` applied (None keeps the default)."""
    if architecture is not None:
        options = replace(options, architecture=architecture)
    if bank is not None:
        if options.architecture not in ("features", "fused"):
            raise ValueError(f"--bank applies to --architecture features or fused; received "
                             f"--architecture {options.architecture}")
        options = replace(options, features=replace(options.features, bank=bank))
    return options


def per_image(scored, detector) -> dict:
    """Each test image's file name, label (its defect folder, or "good") and score, with the
    artifact's statistics of held-out normal scores (mean, std) to standardize them by."""
    stats = detector.spec.score_stats
    return {"score_stats": {"count": stats.count, "mean": stats.mean, "std": stats.std},
            "images": [{"file": item.path.name, "defect": item.defect,
                        "score": float(score)} for item, score in zip(scored.items, scored.scores)]}
