"""Magnetic-tile quality benchmark: train on normal tiles, score the export through the runtime.

Protocol: MT_Free sorted by file name, every 4th image (index % 4 == 0) to test and the rest to
train; every defect image to test. The split is laid out as an MVTec AD category of symbolic
links in a temporary folder, so the run goes through the same reader users' MVTec data does.
Pixel AUROC compares each map, resized back to the image's own size, with its mask (>= 128).

    python benchmarks/quality_magnetic_tile.py --data ../shared/data/magnetic-tile-defect --json OUT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vigil.export.export_image import export_image  # noqa: E402
from vigil.export import ExportOptions  # noqa: E402
from vigil.benchmarks.artifacts import load_image  # noqa: E402
from vigil.runtime.camera.evaluation import evaluate_images, test_items  # noqa: E402
from vigil.runtime.camera.report import write_image_report  # noqa: E402
from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.training.train_image import ImageTrainingOptions, train_image  # noqa: E402
from vigil.benchmarks.image_runs import (  # noqa: E402
    PRECISION_HELP, PRECISIONS, architecture_options, export_options, feature_option,
    fused_components, per_image, seed_options, size_options, width_options)

DEFECTS = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")


def layout_as_mvtec(data: Path, root: Path) -> Path:
    """Symlink the protocol's split into an MVTec AD layout under ``root``."""
    free = sorted((data / "MT_Free" / "Imgs").glob("*.jpg"))
    if len(free) < 100:
        raise ValueError(f"`data` must be the magnetic-tile folder with MT_Free/Imgs/*.jpg; found "
                         f"{len(free)} images under {data}")
    for folder in ("train/good", "test/good"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(free):
        (root / ("test/good" if i % 4 == 0 else "train/good") / image.name).symlink_to(image)
    for defect in DEFECTS:
        name = defect.removeprefix("MT_").lower()
        (root / "test" / name).mkdir(parents=True, exist_ok=True)
        (root / "ground_truth" / name).mkdir(parents=True, exist_ok=True)
        for image in sorted((data / defect / "Imgs").glob("*.jpg")):
            (root / "test" / name / image.name).symlink_to(image)
            mask = image.with_suffix(".png")
            if mask.is_file():
                (root / "ground_truth" / name / f"{image.stem}_mask.png").symlink_to(mask)
    return root


def run(data: Path, options: ImageTrainingOptions, scratch: Path, report: Path | None = None,
        log=print, verbose: int = 1, export: ExportOptions = ExportOptions()) -> dict:
    root = layout_as_mvtec(data, scratch / "mt")
    started = time.perf_counter()
    trained = train_image(root, scratch / "mt.keras", options, verbose=verbose)
    train_seconds = time.perf_counter() - started
    log(f"trained in {train_seconds:.0f} s")
    exported = export_image(scratch / "mt.keras", scratch / "mt.onnx", export)
    detector = load_image(exported.path)
    items = test_items(root)
    result, scored = evaluate_images(detector, items)
    if report is not None:
        write_image_report(result, scored, detector, report,
                           f"magnetic-tile {exported.precision.upper()}")
    return {"image_auroc": result["image_auroc"], "pixel_auroc": result["pixel_auroc"],
            "f1": result["f1"], "pro": result["pro"], "best_f1": result["best_f1"],
            "precision": result["precision"], "recall": result["recall"],
            "train_seconds": train_seconds, "precision_format": exported.precision,
            "architecture": options.architecture, "seed": options.features.seed,
            "input": list(detector.input_shape),
            "frame_contrast": feature_option(trained.run.record, "frame_contrast"),
            "levels": feature_option(trained.run.record, "levels"),
            "levels_separation": feature_option(trained.run.record, "levels_separation"),
            "parity": exported.parity, "per_defect": result["per_defect"],
            "thresholds": {"image": trained.threshold.value, "pixel": trained.pixel_threshold.value},
            "per_image": per_image(scored, detector),
            **({"fused_components": fused_components(
                scratch / "mt.keras", items, detector, trained.run.normal_validation,
                trained.run.record["calibration"])}
               if options.architecture == "fused" else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/magnetic-tile-defect"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="also write report.md + examples")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: library)")
    parser.add_argument("--architecture", choices=["unet", "features", "fused"], default=None,
                        help="the image model (default: library)")
    parser.add_argument("--global-score", action="store_true",
                        help="fused: add the global score as a third term")
    parser.add_argument("--bank", type=int, default=None, help="features: memory-bank entries")
    parser.add_argument("--components", type=int, default=None,
                        help="features: principal components the patch features are projected "
                             "on before the bank (default: library; 0: none)")
    parser.add_argument("--neighbourhood", type=int, default=None,
                        help="features: K x K neighbourhood averaging, K odd (default: library)")
    parser.add_argument("--levels", default=None, metavar="S,S,...",
                        help="features: EfficientNet-Lite0 stages, e.g. 3,5,6 (default: library)")
    parser.add_argument("--width", type=int, default=None,
                        help="unet/fused: the U-Net's first-level channels (default: library)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    parser.add_argument("--size", type=int, default=None,
                        help="the model's square input side in pixels (default: library, 256)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed: the held-out split, the U-Net, the coreset (default: "
                             "library, 0)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="an empty folder to keep the split, model and artifact in "
                             "(default: a temporary one)")
    args = parser.parse_args(argv)
    options = architecture_options(ImageTrainingOptions(), args.architecture, args.bank,
                                   args.global_score, args.neighbourhood, args.levels,
                                   args.components)
    options = width_options(options, args.width)
    options = seed_options(options, args.seed)
    options = size_options(options, args.size)
    if args.steps:
        options = replace(options, model=replace(options.model, steps=args.steps))
    export = export_options(args.precision)
    if args.keep is not None:
        if args.keep.exists() and (not args.keep.is_dir() or any(args.keep.iterdir())):
            parser.error(f"--keep must be an empty or new folder; {args.keep} "
                         f"{'has files' if args.keep.is_dir() else 'is a file'}")
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.data.resolve(), options, args.keep.resolve(), args.report,
                     export=export)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            result = run(args.data.resolve(), options, Path(scratch), args.report, export=export)
    text = json_text(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(json.dumps({k: result[k] for k in ("image_auroc", "pixel_auroc", "f1", "train_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
