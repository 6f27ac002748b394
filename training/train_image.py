"""Training an image detector: normal images + synthetic anomalies -> U-Net -> thresholds -> run."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vigil.runtime.core.artifact import sha256_of
from vigil.runtime.camera.frames import convert_frame, is_gray_picture
from vigil.runtime.camera.datasets import (LabeledImage, check_readable, folders, image_digest,
                                           is_mvtec, mvtec, read_image, read_image_and_quality,
                                           read_mask)
from vigil.runtime.core.spec import AREA_PER_SIDE, Threshold
from vigil.runtime.core.thresholds import ThresholdMethod

from . import feature_model, image_model
from .progress import StepProgress
from .checkpoint import TrainingRun, save_run
from .image_thresholds import fit_image_thresholds, image_validation_check
from .versions import library_versions

log = logging.getLogger("vigil")

CALIBRATION_IMAGES = 64
ARCHITECTURES = ("unet", "features", "fused")


@dataclass(frozen=True)
class ImageDataOptions:
    anomalous: tuple[str, ...] = ()   # plain layout: labeled defect folders (validation only)
    masks: tuple[str, ...] = ()       # plain layout: folder(s) of masks (datasets.folders)
    validation_fraction: float = 0.15  # normal images held out for thresholds
    color: str = "auto"               # gray, bgr, rgb; auto: gray when every image is gray


@dataclass(frozen=True)
class ImageCalibrationOptions:
    method: ThresholdMethod = ThresholdMethod.GAUSSIAN
    k: float = 3.0
    q: float = 99.5
    pixel_method: ThresholdMethod = ThresholdMethod.PERCENTILE
    pixel_q: float = 99.9

    def record(self, probabilities: bool) -> dict:
        """The calibration rule; Gaussians are fit to the logits of scores that are
        ``probabilities`` (maps not normalized), to the scores themselves otherwise."""
        method, pixel = ThresholdMethod(self.method), ThresholdMethod(self.pixel_method)
        gaussian = {"k": self.k, "logit": 1.0} if probabilities else {"k": self.k}
        params = gaussian if method is ThresholdMethod.GAUSSIAN else (
            {"q": self.q} if method is ThresholdMethod.PERCENTILE else {})
        pixel_params = {"q": self.pixel_q} if pixel is ThresholdMethod.PERCENTILE else (
            gaussian if pixel is ThresholdMethod.GAUSSIAN else {})
        return {"method": method.value, "params": params, "pixel_method": pixel.value,
                "pixel_params": pixel_params}


@dataclass(frozen=True)
class ImageTrainingOptions:
    data: ImageDataOptions = field(default_factory=ImageDataOptions)
    model: image_model.ImageModelOptions = field(default_factory=image_model.ImageModelOptions)
    calibration: ImageCalibrationOptions = field(default_factory=ImageCalibrationOptions)
    architecture: str = "features"  # a memory bank of pretrained features; "unet": a defect
    # segmenter trained from scratch (0.2's default); "fused": both
    features: feature_model.FeatureModelOptions = field(
        default_factory=feature_model.FeatureModelOptions)

    @property
    def size(self) -> int:
        return self.features.size if self.architecture == "features" else self.model.size

    @property
    def seed(self) -> int:
        """The seed of the held-out split: the model's that is trained (the U-Net's for fused)."""
        return self.features.seed if self.architecture == "features" else self.model.seed


@dataclass(frozen=True)
class ImageTrainingResult:
    run: TrainingRun
    threshold: Threshold
    pixel_threshold: Threshold
    seconds: float


def training_images(data: str | Path | Sequence[str | Path], options: ImageDataOptions
                    ) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """(normal images to train and hold out, labeled anomalous images for validation only).

    ``data`` is an MVTec AD category root (its train/good is used; its test set never is), or
    one or more folders of normal images.
    """
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    if len(paths) == 1 and is_mvtec(paths[0]):
        normal, _ = mvtec(paths[0])
        anomalous = folders([], options.anomalous, options.masks) if options.anomalous else []
        return _once(normal, anomalous)
    for path in paths:
        if len(paths) > 1 and is_mvtec(path):
            good = str(Path(path) / "train" / "good")
            raise ValueError(f"{str(path)!r} is an MVTec AD category (its train/good holds the "
                             f"normal images): give it alone, or give {good!r} beside the "
                             "other folders of normal images")
    items = folders(paths, options.anomalous, options.masks)
    return _once([i for i in items if not i.anomalous], [i for i in items if i.anomalous])


def _once(normal: list[LabeledImage], anomalous: list[LabeledImage]
          ) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """``(normal, anomalous)``, refused when a file comes twice (folders given twice, or one
    inside another): it would be trained on and held out at once, or be normal and a defect."""
    seen: dict[str, LabeledImage] = {}
    for item in [*normal, *anomalous]:
        earlier = seen.setdefault(os.path.realpath(item.path), item)
        if earlier is not item:
            roles = " and ".join(sorted({"a defect image (--anomalous)" if i.anomalous else
                                         "a normal image" for i in (earlier, item)}))
            raise ValueError(f"{str(item.path)!r} is given twice (also as "
                             f"{str(earlier.path)!r}), as {roles}: the folders given overlap; "
                             "DATA, --normal and --anomalous must each name other images")
    return normal, anomalous


def _channel_record(images: np.ndarray, color: str) -> dict:
    """What tells frames given in RGB order: the mean blue, green and red over ``images`` (n, h,
    w, 3, in ``color`` order; one decimal), and the least and greatest of each image's mean blue
    less its mean red (a product made in several colours spans a wide range)."""
    per_image = images.reshape(len(images), -1, 3).mean(axis=1, dtype=np.float64)
    if color == "rgb":
        per_image = per_image[:, ::-1]
    difference = per_image[:, 0] - per_image[:, 2]
    return {"channel_means_bgr": [round(float(m), 1) for m in per_image.mean(axis=0)],
            "blue_minus_red": [round(float(difference.min()), 1),
                               round(float(difference.max()), 1)]}


def choose_color(paths: Sequence[Path], requested: str) -> str:
    """The colour a model is trained in: ``requested``, or with ``auto`` from ``paths`` (every
    normal image, the held-out ones too, so the choice never depends on the split): bgr where
    any is in colour, else gray; said, and warned of where colour images are a minority."""
    if requested != "auto":
        if requested not in ("gray", "bgr", "rgb"):
            raise ValueError(f"`color` must be auto, gray, bgr or rgb; received {requested!r}")
        return requested
    coloured = [path for path in paths if _in_colour(read_image(path))]
    if not coloured:
        log.info("color: gray (every normal image is gray; --color chooses)")
        return "gray"
    if len(coloured) * 2 < len(paths):  # a stray colour image turns the whole model to colour
        shown = ", ".join(p.name for p in coloured[:5]) + (", ..." if len(coloured) > 5 else "")
        log.warning("%d of the %d normal images are in colour (%s) and the rest gray: the "
                    "model is trained in colour (bgr), and gray frames will be warned of when "
                    "scored; if the camera is gray, remove those images or give --color gray",
                    len(coloured), len(paths), shown)
    else:
        log.info("color: bgr (%d of the %d normal images are in colour; --color chooses)",
                 len(coloured), len(paths))
    return "bgr"


def _in_colour(image: np.ndarray) -> bool:
    """Whether a decoded image is in colour, as the runtime tells (a gray video's frames decode a
    few levels apart and count as gray, so the model is never warned of its own frames)."""
    return not is_gray_picture(image, step=1)


ASPECT_OUTLIER = 1.5  # a training image this many times wider or narrower than the median
ASPECT_MINORITY = 4  # more than a quarter of them so: a second shape, kept in the range


def typical_aspect(aspects: Sequence[float], paths: Sequence[Path]) -> list[float]:
    """[least, greatest] width / height of the training images, leaving out (and warning of)
    those ``ASPECT_OUTLIER`` times off the median: one 15:1 strip among square tiles would
    otherwise stretch the range the runtime checks frames against to cover nearly any camera."""
    median = float(sorted(aspects)[len(aspects) // 2])  # a shape the images have
    typical = [a for a in aspects if median / ASPECT_OUTLIER <= a <= median * ASPECT_OUTLIER]
    odd = [(a, path) for a, path in zip(aspects, paths)
           if not median / ASPECT_OUTLIER <= a <= median * ASPECT_OUTLIER]
    if len(odd) > len(aspects) // ASPECT_MINORITY:  # two shapes, each a real part of the data
        log.warning("the training images have shapes far apart (width / height %.2f to %.2f): "
                    "stretched to the model's square input, their textures are squeezed "
                    "differently; train a model per camera, or crop them alike",
                    min(aspects), max(aspects))
        return [round(min(aspects), 4), round(max(aspects), 4)]
    if odd:
        log.warning("%d of the %d training images are far from the others' shape (width / height "
                    "%.2f, %s, against a median of %.2f): stretched to the model's square input, "
                    "their texture is squeezed otherwise than the camera's; crop them as the "
                    "camera frames are, or leave them out", len(odd), len(aspects), odd[0][0],
                    odd[0][1], median)
    return [round(min(typical), 4), round(max(typical), 4)]


MIN_TRAIN_IMAGES = 8  # normal images trained on, at least
MIN_HELD_OUT = 2  # normal images held out to set the threshold, at least
FEW_HELD_OUT = 20  # fewer held out: the threshold is warned of as rough


def _quality_record(qualities: Sequence[int | None]) -> dict:
    """``training.jpeg_quality`` of images of these qualities: [5th percentile, greatest] of
    those known (interpolated and rounded: one stray JPEG among 20 PNGs does not set it alone);
    none where no image's is known (lossy WebP, JPEG 2000: no frame is judged by it)."""
    known = [q for q in qualities if q is not None]
    if not known:
        return {}
    return {"jpeg_quality": [int(round(float(np.percentile(known, 5)))), max(known)]}


def load_images(items: Sequence[LabeledImage], size: int, color: str,
                aspects: list[float] | None = None, sides: list[int] | None = None,
                digests: list[str] | None = None, qualities: list[int | None] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 model inputs (n, size, size, c), bool masks (n, size, size)) through the runtime's
    own preprocessing; each image's aspect (width / height, as decoded), shorter side, pixel
    digest (``image_digest``) and compression quality (``read_image_and_quality``'s: 100 for a
    lossless file, None unknown) are added to ``aspects``, ``sides``, ``digests`` and
    ``qualities`` where given."""
    images, masks = [], []
    for item in items:
        image, quality = read_image_and_quality(item.path)
        if digests is not None:
            digests.append(image_digest(image))
        if aspects is not None:
            aspects.append(image.shape[1] / image.shape[0])
        if sides is not None:
            sides.append(int(min(image.shape[:2])))
        if qualities is not None:
            qualities.append(quality)
        try:
            images.append(convert_frame(image, size, size, color))
        except ValueError as error:
            raise ValueError(f"{item.path}: {error}; leave the image out of the folder") from None
        mask = read_mask(item.mask, image.shape)
        masks.append(cv2.resize(mask.astype(np.uint8), (size, size),
                                interpolation=cv2.INTER_NEAREST).astype(bool))
    return np.stack(images), np.stack(masks)


def train_image(data: str | Path | Sequence[str | Path], output: str | Path,
                options: ImageTrainingOptions = ImageTrainingOptions(),
                verbose: int = 1) -> ImageTrainingResult:
    """Train on normal images in ``data`` and write ``output`` (.keras) with its sidecar."""
    started = time.perf_counter()
    model_options = options.model
    # Bad model options fail before any image is read.
    if options.architecture not in ARCHITECTURES:
        raise ValueError(f"`architecture` must be one of {list(ARCHITECTURES)}; received "
                         f"{options.architecture!r}")
    if options.architecture in ("unet", "fused"):
        image_model.train_side(model_options)
    if options.architecture in ("features", "fused"):
        problem = feature_model.size_problem(options.features)
        if problem is not None:
            raise ValueError(problem)
        if options.features.global_score and options.architecture != "fused":
            raise ValueError(f"`global_score` applies to architecture 'fused'; received "
                             f"architecture {options.architecture!r}")
        if options.architecture == "fused" and options.features.size != model_options.size:
            raise ValueError(f"the fused models must share one input size; received "
                             f"{model_options.size} (U-Net) and {options.features.size} "
                             f"(features)")
        if options.architecture == "features" and options.features.size != model_options.size:
            # `model` holds the U-Net's options: its size would be silently ignored
            raise ValueError(f"architecture 'features' takes its input size from `features.size` "
                             f"({options.features.size}); `model.size` ({model_options.size}) is "
                             f"the U-Net's: set both, or only features=FeatureModelOptions("
                             f"size=...) (`vigil train image --size` sets both)")
    normal, anomalous = training_images(data, options.data)
    fraction = options.data.validation_fraction
    if not 0 < fraction < 1:
        raise ValueError(f"`validation_fraction` must be in (0, 1); received {fraction}")
    if len(normal) < MIN_TRAIN_IMAGES + MIN_HELD_OUT:
        raise ValueError(f"training needs at least {MIN_TRAIN_IMAGES + MIN_HELD_OUT} normal "
                         f"images ({MIN_TRAIN_IMAGES} to train on, {MIN_HELD_OUT} held out to set "
                         f"the threshold); found {len(normal)}: add normal images")
    if ThresholdMethod(options.calibration.method) is ThresholdMethod.F1 and not anomalous:
        raise ValueError("--threshold-method f1 needs labeled defect images (--anomalous DIR; "
                         "an MVTec AD category's test set is never used in training); none "
                         "given: add them, or use --threshold-method gaussian or percentile")
    if anomalous and ThresholdMethod(options.calibration.method) is not ThresholdMethod.F1:
        log.info("the %d defect images are not trained on; with --threshold-method %s they set "
                 "no threshold (the held-out normal images do): they measure the validation "
                 "figures and let `vigil export` measure INT8's loss; --threshold-method f1 "
                 "chooses the threshold on them", len(anomalous),
                 ThresholdMethod(options.calibration.method).value)
    rng = np.random.default_rng(options.seed)
    order = rng.permutation(len(normal))
    held = max(MIN_HELD_OUT, int(round(len(normal) * fraction)))
    if len(normal) - held < MIN_TRAIN_IMAGES:
        # the largest fraction that still leaves MIN_TRAIN_IMAGES (MIN_HELD_OUT are held out anyway)
        most = (len(normal) - MIN_TRAIN_IMAGES) / len(normal) + 1e-9
        raise ValueError(f"`validation_fraction` {fraction} holds out {held} of the {len(normal)} "
                         f"normal images, leaving {len(normal) - held} to train on; training "
                         f"needs at least {MIN_TRAIN_IMAGES}: give a smaller fraction "
                         f"(--validation-fraction {int(most * 100) / 100:.2f} or less) or more "
                         f"normal images")
    # every bad file named at once, before what the split says of them (review u1: the "only N
    # held out" warning came first, counting a file that was then refused)
    check_readable([*normal, *anomalous], "images", "trained")
    if held < FEW_HELD_OUT:
        log.warning("only %d normal images are held out to set the threshold (%.0f %% of %d): "
                    "their mean and spread are rough, so the threshold may reject good parts "
                    "often (10 training tiles, 2 held out: 25 of 100 other good tiles rejected); "
                    "give more normal images, or check the threshold with vigil eval on good "
                    "images it has not seen", held, 100 * fraction, len(normal))
    train_items = [normal[i] for i in sorted(order[held:])]
    validation_items = [normal[i] for i in sorted(order[:held])] + list(anomalous)
    color = choose_color([i.path for i in normal], options.data.color)
    channels = 1 if color == "gray" else 3
    size = options.size
    aspects: list[float] = []  # the frames' shapes, before each is stretched to the square
    sides: list[int] = []  # and their shorter sides, in pixels
    digests: list[str] = []  # every image's pixels', trained on and then held out
    qualities: list[int | None] = []  # their JPEG quality (100: lossless; None: unknown)
    train_images, _ = load_images(train_items, size, color, aspects, sides, digests, qualities)
    frame_aspect = typical_aspect(aspects, [item.path for item in train_items])  # said before
    validation_images, validation_masks = load_images(validation_items, size, color,
                                                      digests=digests)
    validation_labels = np.array([i.anomalous for i in validation_items])

    if options.architecture == "features":
        scorer, reduction, model_record = _fit_features(
            train_images, validation_images[~validation_labels], color, options, verbose)
        probabilities = False
    elif options.architecture == "unet":
        scorer, reduction, model_record = _fit_unet(train_images, channels, options, rng, verbose)
        probabilities = not model_options.map_normalization
    else:
        scorer, reduction, model_record = _fit_fused(
            train_images, validation_images[~validation_labels], channels, color, options, rng,
            verbose)
        probabilities = False
    outputs = scorer.predict(validation_images, batch_size=8, verbose=0)
    scores = np.asarray(outputs["score"], dtype=np.float64).reshape(-1)
    maps = np.asarray(outputs["anomaly_map"])
    calibration = options.calibration.record(probabilities=probabilities)
    thresholds = fit_image_thresholds(calibration, scores, maps, validation_labels,
                                      validation_masks)
    check, warnings = image_validation_check(
        scores, validation_labels, thresholds.image, calibration["method"],
        k=calibration["params"].get("k"),
        names=[str(item.path) for item in validation_items])
    for warning in warnings:
        log.warning("%s", warning)
    calibration_images = train_images[rng.permutation(len(train_images))[:CALIBRATION_IMAGES]]
    record = {
        "kind": "image", "height": size, "width": size, "channels": channels, "color": color,
        "resize": "stretch",
        "interpolation": AREA_PER_SIDE,  # convert_frame's, as the images were read here
        "score_reduction": reduction,
        "calibration": calibration,
        "training": {
            "images": len(train_items), "validation_normal": int((~validation_labels).sum()),
            # width / height of the training frames: the runtime warns of frames far from it
            "frame_aspect": frame_aspect,
            # their shorter side (5th percentile, greatest): the runtime warns of much smaller
            # frames, which are enlarged and blurred (a model of 300-px cells flagged 29 % of
            # good 100-px ones, 99 % at 64 px)
            "frame_side": [int(np.percentile(sides, 5)), int(max(sides))],
            # their JPEG quality (5th percentile, greatest; 100 for lossless files): the runtime
            # warns of frames compressed much harder (the default model rejected 77 % of good
            # ELPV mono cells as JPEGs of quality 50, 1 % as PNGs)
            **_quality_record(qualities),
            # a colour model's mean blue, green and red: the runtime tells frames given in RGB
            # order (PIL's, most libraries' but OpenCV's) by them
            **(_channel_record(train_images, color) if channels == 3 else {}),
            "validation_anomalous": int(validation_labels.sum()),
            "files_sha256": _fingerprint(train_items, validation_items, digests),
            "validation_check": check,  # what the threshold does on the validation images
            "architecture": options.architecture,
            "model": model_record,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "versions": library_versions(),
    }
    run = TrainingRun(Path(output), record, validation_images, validation_labels,
                      calibration_images, validation_masks)
    save_run(scorer, run)
    return ImageTrainingResult(run, thresholds.image, thresholds.pixel,
                               time.perf_counter() - started)


def _fit_unet(train_images: np.ndarray, channels: int, options: ImageTrainingOptions,
              rng: np.random.Generator, verbose: int):
    """(the U-Net scoring model, its score reduction in words, its record)."""
    import keras
    import tensorflow as tf

    model_options = options.model
    keras.utils.set_random_seed(model_options.seed)
    segmenter = image_model.build_segmenter(channels, model_options)
    _fit(segmenter, train_images.astype(np.float32) / 255.0, model_options, rng, verbose, tf,
         keras)
    statistics = None
    if model_options.map_normalization:
        native = image_model.native_map_model(segmenter, channels, model_options)
        normal_maps = native.predict(train_images, batch_size=8, verbose=0)[..., 0]
        statistics = image_model.normalization_statistics(normal_maps)
    scorer = image_model.build_scoring_model(segmenter, channels, model_options, statistics)
    return scorer, _score_reduction(model_options), _plain(asdict(model_options))


def _fit_fused(train_images: np.ndarray, normal_validation: np.ndarray, channels: int,
               color: str, options: ImageTrainingOptions, rng: np.random.Generator,
               verbose: int):
    """(the fused scoring model, its score reduction in words, its record): the U-Net and the
    feature model fitted in turn, each score standardized by its held-out normal images' scores."""
    from .fused_model import build_fused_model, normal_statistics

    unet, unet_reduction, unet_record = _fit_unet(train_images, channels, options, rng, verbose)
    features, features_reduction, features_record = _fit_features(
        train_images, normal_validation, color, options, verbose)
    with_global = options.features.global_score
    unet_stats, unet_map_stats = normal_statistics(unet, normal_validation,
                                                   ("score", "anomaly_map"))
    feature_stats, feature_map_stats, *rest = normal_statistics(
        features, normal_validation,
        ("score", "anomaly_map", "global_score") if with_global else ("score", "anomaly_map"))
    global_stats = rest[0] if rest else None
    weight = options.features.fused_map_weight
    scorer = build_fused_model(unet, features, unet_stats, feature_stats, global_stats,
                               (unet_map_stats, feature_map_stats), weight)
    standardization = {"unet": unet_stats, "features": feature_stats}
    if global_stats is not None:
        standardization["global"] = global_stats
    map_standardization = {"unet": unet_map_stats, "features": feature_map_stats}

    def listed(statistics: dict) -> str:
        return ", ".join(f"{'U-Net' if name == 'unet' else name} {mean:.4g} +- {std:.4g}"
                         for name, (mean, std) in statistics.items())

    reduction = (f"the sum of {'three' if with_global else 'two'} scores, each standardized "
                 f"by the mean and std of its scores on the held-out normal images ("
                 f"{listed(standardization)}); "
                 + (f"the map is the U-Net's map plus {weight:g} x the feature model's, each "
                    f"standardized by the mean and std of its pixels on those images ("
                    f"{listed(map_standardization)}). "
                    if weight > 0 else "the map is the U-Net's. ")
                 + f"U-Net: {unet_reduction}. "
                 f"Features: {features_reduction}"
                 + (f". Global: the Mahalanobis distance of the frame's feature statistics "
                    f"(each channel's mean and std over the frame) from the normal training "
                    f"frames' (covariance shrunk by {options.features.global_shrinkage})"
                    if with_global else ""))
    record = {"unet": unet_record, "features": features_record,
              "standardization": {k: list(v) for k, v in standardization.items()},
              "map_standardization": {k: list(v) for k, v in map_standardization.items()},
              "fused_map_weight": weight}
    return scorer, reduction, record


def _fit_features(train_images: np.ndarray, normal_validation: np.ndarray, color: str,
                  options: ImageTrainingOptions, verbose: int):
    """(the feature model's scoring model, its score reduction in words, its record); the
    held-out ``normal_validation`` images choose undecided levels."""
    scorer, fitted = feature_model.fit(train_images, color, options.features, verbose,
                                       held_out=normal_validation)
    features = replace(options.features, frame_contrast=fitted["frame_contrast"],
                       levels=tuple(fitted["levels"]), bank=fitted["bank"])
    return (scorer, feature_model.score_reduction(features),
            _plain({**asdict(features), **fitted}))


def _plain(record: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in record.items()}


def _score_reduction(options: image_model.ImageModelOptions) -> str:
    sizes = ["full", *(f"1/{f}" for f in image_model.downscales(options))]
    text = (f"mean of the {', '.join(sizes)}-size sigmoid defect maps, " if len(sizes) > 1
            else "sigmoid defect map, ")
    text += (f"smoothed by a Gaussian of sigma {options.smoothing_sigma} input pixels (at the "
             f"network's output resolution, then upsampled to the input size)")
    if options.map_normalization:
        return text + (f"; each pixel of the map at the network's output resolution is "
                       f"softplus((map - mean) / (std + {image_model.STD_FLOOR})) with its mean "
                       f"and std over the normal training images, before the upsampling; the "
                       f"image score is the maximum of that map")
    return text + (f"; the image score is the maximum of that map smoothed with sigma "
                   f"{image_model.score_sigma(options)}")


def _fit(segmenter, images: np.ndarray, options: image_model.ImageModelOptions,
         rng: np.random.Generator, verbose: int, tf, keras) -> None:
    from .anomaly_synthesis import training_batch

    optimizer = keras.optimizers.Adam(options.learning_rate)
    warmup = max(1, options.steps // 20)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = image_model.segmentation_loss(y, segmenter(x, training=True))
        gradients = tape.gradient(loss, segmenter.trainable_variables)
        optimizer.apply_gradients(zip(gradients, segmenter.trainable_variables))
        return loss

    side = image_model.train_side(options)
    crop = side if side < options.size else 0
    progress = StepProgress(options.steps, verbose)
    for i in range(options.steps):
        rate = options.learning_rate * min(1.0, (i + 1) / warmup) * 0.5 * (
            1 + np.cos(np.pi * i / options.steps))
        optimizer.learning_rate.assign(rate)
        x, y = training_batch(rng, images, options.batch_size, options.anomaly_rate, crop,
                              crop if options.rescale_views else 0)
        loss = float(step(x, y))
        progress.update(i + 1, loss)


def _fingerprint(items: Sequence[LabeledImage], held_out: Sequence[LabeledImage],
                 digests: Sequence[str]) -> dict:
    """sha256 of the list of training files' digests (one value for thousands of images), and
    each image's pixel digest (``digests``: of ``items`` then ``held_out``, as ``load_images``
    took them): those trained on, the normal ones held out to set the threshold, and the
    labeled defects (``--anomalous``), so that ``vigil eval`` names test images the model has
    seen (17 bytes an image)."""
    import hashlib

    digest = hashlib.sha256()
    for item in items:
        digest.update(sha256_of(item.path).encode())
    later = list(zip(held_out, digests[len(items):]))
    return {"count": len(items), "sha256_of_sha256s": digest.hexdigest(), "digests": "pixels",
            "trained": list(digests[:len(items)]),
            "held_out": [d for item, d in later if not item.anomalous],
            "labeled_defects": [d for item, d in later if item.anomalous]}
