"""ELPV quality benchmark: solar-cell electroluminescence images, one model per cell type.

Protocol: for each cell type (``mono``, ``poly``; they look nothing alike), the normal images
sorted by file name, every 3rd (index % 3 == 0) to test and the rest to train (200 train, 100
test); every defect image (150) to test. The model is trained on the normal training images only
with the library's defaults, exported as users get it (``--precision auto``: INT8 where it holds
parity and pays off on this machine) and scored through the runtime. The split is laid out
as an MVTec AD category of symbolic links, so the run goes through the same reader users' data
does. ELPV has image labels only (no masks), so the metrics are image-level.

Beside each model: the AUROC of two trivial baselines on the same test images (mean brightness
and its negative, whichever is higher; and the standard deviation), which say how much of a type's
separation a global intensity statistic already gives.

    python benchmarks/quality_elpv.py --data ../shared/data/elpv --json results/elpv.json
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

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vigil.export.export_image import export_image  # noqa: E402
from vigil.export import ExportOptions  # noqa: E402
from vigil.benchmarks.artifacts import load_image  # noqa: E402
from vigil.runtime.camera.datasets import read_image  # noqa: E402
from vigil.runtime.camera.evaluation import evaluate_images, test_items  # noqa: E402
from vigil.runtime.core import metrics  # noqa: E402
from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.training.train_image import ImageTrainingOptions, train_image  # noqa: E402
from vigil.benchmarks.image_runs import (  # noqa: E402
    PRECISION_HELP, PRECISIONS, architecture_options, export_options, feature_option,
    fused_components, per_image, seed_options, size_options, width_options)

TYPES = ("mono", "poly")
TEST_EVERY = 3


def layout_as_mvtec(data: Path, cell_type: str, root: Path) -> Path:
    """Symlink one cell type's split into an MVTec AD layout under ``root``."""
    normal = sorted((data / cell_type / "normal").glob("*.png"))
    defect = sorted((data / cell_type / "defect").glob("*.png"))
    if len(normal) < 3 * TEST_EVERY or not defect:
        raise ValueError(f"`data` must be the elpv folder with {cell_type}/normal/*.png and "
                         f"{cell_type}/defect/*.png; found {len(normal)} normal and {len(defect)} "
                         f"defect images under {data}")
    for folder in ("train/good", "test/good", "test/defect"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(normal):
        (root / ("test/good" if i % TEST_EVERY == 0 else "train/good") / image.name).symlink_to(image)
    for image in defect:
        (root / "test/defect" / image.name).symlink_to(image)
    return root


def intensity_baselines(items) -> dict:
    """AUROC of the mean brightness (either sign) and of the standard deviation."""
    labels = np.array([i.anomalous for i in items])
    images = [read_image(i.path).astype(np.float64) for i in items]
    mean = np.array([im.mean() for im in images])
    std = np.array([im.std() for im in images])
    return {"mean_brightness_auroc": max(metrics.auroc(mean, labels), metrics.auroc(-mean, labels)),
            "std_auroc": max(metrics.auroc(std, labels), metrics.auroc(-std, labels))}


def run_type(data: Path, cell_type: str, options: ImageTrainingOptions, scratch: Path,
             log=print, verbose: int = 0, export: ExportOptions = ExportOptions()) -> dict:
    root = layout_as_mvtec(data, cell_type, scratch / cell_type)
    started = time.perf_counter()
    trained = train_image(root, scratch / f"{cell_type}.keras", options, verbose=verbose)
    train_seconds = time.perf_counter() - started
    exported = export_image(scratch / f"{cell_type}.keras", scratch / f"{cell_type}.onnx",
                            export)
    detector = load_image(exported.path)
    items = test_items(root)
    result, scored = evaluate_images(detector, items)
    part = {"image_auroc": result["image_auroc"], "f1": result["f1"],
            "best_f1": result["best_f1"], "precision": result["precision"],
            "recall": result["recall"], "threshold": trained.threshold.value,
            "train_images": len(list((root / "train/good").iterdir())),
            "test_normal": int(sum(not i.anomalous for i in items)),
            "test_defect": int(sum(i.anomalous for i in items)),
            "precision_format": exported.precision, "parity": exported.parity,
            "train_seconds": train_seconds, "architecture": options.architecture,
            "seed": options.features.seed, "input": list(detector.input_shape),
            "frame_contrast": feature_option(trained.run.record, "frame_contrast"),
            "levels": feature_option(trained.run.record, "levels"),
            "levels_separation": feature_option(trained.run.record, "levels_separation"),
            **intensity_baselines(items), "per_image": per_image(scored, detector),
            **({"fused_components": fused_components(
                scratch / f"{cell_type}.keras", items, detector, trained.run.normal_validation,
                trained.run.record["calibration"])}
               if options.architecture == "fused" else {})}
    log(f"  {cell_type}: image AUROC {part['image_auroc']:.3f} (mean brightness "
        f"{part['mean_brightness_auroc']:.3f}), F1 {part['f1']:.3f}, trained in "
        f"{train_seconds:.0f} s")
    return part


def run(data: Path, options: ImageTrainingOptions, scratch: Path, types=TYPES, log=print,
        export: ExportOptions = ExportOptions()) -> dict:
    per_type = {t: run_type(data, t, options, scratch, log, export=export) for t in types}
    return {"protocol": "elpv: per cell type, every 3rd normal image (by name) and every defect "
                        "image to test, the other normal images train; the default export through "
                        "the runtime",
            "image_auroc": float(np.mean([p["image_auroc"] for p in per_type.values()])),
            **{f"image_auroc_{t}": p["image_auroc"] for t, p in per_type.items()},
            "types": per_type}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/elpv"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: library)")
    parser.add_argument("--types", default=",".join(TYPES), help="cell types (comma-separated)")
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
    args = parser.parse_args(argv)
    types = tuple(t for t in args.types.split(",") if t)
    if not types or set(types) - set(TYPES):
        parser.error(f"--types must be among {list(TYPES)}; received {args.types!r}")
    options = architecture_options(ImageTrainingOptions(), args.architecture, args.bank,
                                   args.global_score, args.neighbourhood, args.levels,
                                   args.components)
    options = width_options(options, args.width)
    options = seed_options(options, args.seed)
    options = size_options(options, args.size)
    if args.steps:
        options = replace(options, model=replace(options.model, steps=args.steps))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.data.resolve(), options, Path(scratch), types,
                     export=export_options(args.precision))
    result["seconds"] = time.perf_counter() - started
    text = json_text(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(json.dumps({k: v for k, v in result.items() if k.startswith("image_auroc")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
