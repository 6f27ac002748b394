"""The image path end to end on a tiny U-Net: data layouts, parity, metadata, input errors, the CLI,
anomaly synthesis and the demo's camera path.

The model (``image_artifacts`` in conftest.py) is trained for a few seconds on a synthetic MVTec AD
category; it is barely better than chance, so these tests check behavior and agreement between
the Keras model and its exports, not detection quality (the real-data tests do that).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import metadata as package_metadata

import cv2
import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.runtime.camera import evaluation as image_evaluation
from vigil.runtime.camera.frames import convert_frame
from vigil.runtime.camera.datasets import folders, image_digest, images_in, mvtec, read_image
from vigil.runtime.camera.evaluation import evaluate_images
from vigil.training.anomaly_synthesis import paste_anomaly, training_batch
from vigil.training.synthetic_frames import DEFECTS

pytest.importorskip("tensorflow")
pytest.importorskip("onnx")

from vigil.training.train_image import choose_color, load_images  # noqa: E402  (imports Keras)

SIZE = 64                     # the fixture model's input side
FP32_MAX_ABS_DIFF = 1e-4      # Keras vs ONNX FP32, scores and maps (measured ~4e-7)
# |INT8 - FP32| score as a share of the FP32 scores' spread (max - min) over normal and defective
# images: the score's scale is the trained model's own, so an absolute bound means nothing across
# machines (measured on an AVX2-only EPYC: 0.047 of the spread with tensorflow 2.21, 0.10 with
# 2.20, whose kernels train slightly different weights; the maps' correlation is the finer check).
INT8_MAX_SCORE_DIFF_OF_SPREAD = 0.15
INT8_MIN_MAP_CORRELATION = 0.98
BATCH_INDEPENDENCE = 1e-5     # static INT8: a frame's score must not depend on its batch
VISIBLE_CHANGE = 0.02         # anomaly_synthesis labels only pixels changed by more than this
TRAIN_IMAGES, TEST_GOOD, TEST_DEFECTS = 48, 6, 9  # the fixture's write_mvtec counts


def strict_json(text: str):
    """json.loads that refuses NaN and infinities (which json.dumps writes by default)."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def write(path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), path


def texture(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    noise = rng.normal(0, 1, (height, width, channels)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0).reshape(height, width, channels)
    return np.clip(128 + 40 * smooth / (smooth.std() + 1e-6), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def int8(image_artifacts):
    return runtime.load(image_artifacts.int8)


@pytest.fixture(scope="module")
def fp32(image_artifacts):
    return runtime.load(image_artifacts.fp32)


@pytest.fixture(scope="module")
def probe(image_artifacts) -> np.ndarray:
    """Model inputs: the held-out normal images and every test image (normal and defective)."""
    from vigil.training.checkpoint import load_run

    validation = load_run(image_artifacts.keras_model).validation
    tested, _ = load_images(image_evaluation.test_items(image_artifacts.category), SIZE, "bgr")
    images = np.concatenate([validation, tested])
    assert images.dtype == np.uint8 and images.shape[1:] == (SIZE, SIZE, 3) and len(images) > 16
    return images


# -- data layouts ------------------------------------------------------------------------------

def test_mvtec_layout_with_masks(image_artifacts):
    train, test = mvtec(image_artifacts.category)
    assert len(train) == TRAIN_IMAGES
    assert all(not i.anomalous and i.defect == "good" and i.mask is None for i in train)
    good = [i for i in test if not i.anomalous]
    bad = [i for i in test if i.anomalous]
    assert len(good) == TEST_GOOD and len(bad) == TEST_DEFECTS
    assert all(i.mask is None for i in good)
    assert {i.defect for i in bad} == set(DEFECTS)
    for item in bad:
        assert item.mask == (image_artifacts.category / "ground_truth" / item.defect
                             / f"{item.path.stem}_mask.png")
        mask = read_image(item.mask)
        assert mask.shape == (SIZE, SIZE) and (mask >= 128).any()


def test_mvtec_layout_without_masks_still_evaluates(image_artifacts, int8, tmp_path):
    category = shutil.copytree(image_artifacts.category, tmp_path / "category")
    shutil.rmtree(category / "ground_truth")
    items = image_evaluation.test_items(category)
    assert sum(i.anomalous for i in items) == TEST_DEFECTS
    assert all(i.mask is None for i in items)
    result, scored = evaluate_images(int8, items)
    assert result["pixel_auroc"] is None and result["pro"] is None
    assert 0.0 <= result["image_auroc"] <= 1.0
    assert result["images"] == len(items) and result["anomalous"] == TEST_DEFECTS
    assert len(scored.scores) == len(items) and scored.maps[0].shape == (SIZE, SIZE)
    # The same images with masks: identical image scores, and pixel metrics appear.
    with_masks, _ = evaluate_images(int8, image_evaluation.test_items(image_artifacts.category))
    assert with_masks["image_auroc"] == result["image_auroc"]
    assert 0.0 <= with_masks["pixel_auroc"] <= 1.0


def test_plain_folders_with_same_stem_png_masks_beside_jpgs(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        write(tmp_path / "normal" / f"n{i}.png", texture(rng, 40, 48))
    for stem in ("a", "b"):
        write(tmp_path / "dent" / f"{stem}.jpg", texture(rng, 40, 48))
    mask = np.zeros((40, 48), np.uint8)
    mask[10:20, 5:15] = 255
    write(tmp_path / "dent" / "a.png", mask)          # b.jpg has no mask
    assert [p.name for p in images_in(tmp_path / "dent")] == ["a.jpg", "b.jpg"]
    items = folders([tmp_path / "normal"], [tmp_path / "dent"])
    assert [(i.path.name, i.anomalous, i.defect) for i in items] == [
        ("n0.png", False, "good"), ("n1.png", False, "good"), ("n2.png", False, "good"),
        ("a.jpg", True, "dent"), ("b.jpg", True, "dent")]
    assert items[3].mask == tmp_path / "dent" / "a.png" and items[4].mask is None
    assert all(i.mask is None for i in items[:3])
    _, masks = load_images(items, 20, "bgr")
    assert masks.shape == (5, 20, 20) and masks[3].any() and not masks[4].any()
    assert masks[3, :, 8:].sum() == 0  # the masked square is in the left part of the image


def test_images_in_a_folders_subfolders_are_named_not_passed_over(tmp_path, caplog):
    """Training and eval read a folder's own images; those of its subfolders are named."""
    rng = np.random.default_rng(2)
    write(tmp_path / "top" / "a.png", texture(rng, 32, 32))
    write(tmp_path / "top" / "sub" / "b.png", texture(rng, 32, 32))
    write(tmp_path / "nested" / "only" / "c.png", texture(rng, 32, 32))
    assert [i.path.name for i in folders([tmp_path / "top"])] == ["a.png"]
    assert "the images in its subfolders (sub) are not read" in caplog.text
    with pytest.raises(ValueError, match=r"holds no images .*; its subfolders only do, and "
                                         r"subfolders are not read: give the folder of normal "
                                         r"images as DATA .* each folder of defect images with "
                                         r"--anomalous DIR"):
        folders([tmp_path / "nested"])


def test_plain_folders_with_a_separate_mask_folder(tmp_path):
    rng = np.random.default_rng(1)
    write(tmp_path / "good" / "g.png", texture(rng, 32, 32))
    for stem in ("x", "y", "z"):
        write(tmp_path / "scratch" / f"{stem}.png", texture(rng, 32, 32))
    square = np.zeros((32, 32), np.uint8)
    square[4:12, 20:28] = 255
    write(tmp_path / "masks" / "x_mask.png", square)
    write(tmp_path / "masks" / "y.png", square)        # <stem>.png is accepted too
    items = folders([tmp_path / "good"], [tmp_path / "scratch"], masks=tmp_path / "masks")
    by_name = {i.path.name: i for i in items}
    assert len(items) == 4 and not by_name["g.png"].anomalous
    assert by_name["x.png"].mask == tmp_path / "masks" / "x_mask.png"
    assert by_name["y.png"].mask == tmp_path / "masks" / "y.png"
    assert by_name["z.png"].mask is None
    _, masks = load_images([by_name["x.png"]], 32, "gray")
    np.testing.assert_array_equal(masks[0], square >= 128)


def test_mixed_sizes_and_gray_and_color_images_load_through_the_runtime_preprocessing(tmp_path):
    from vigil.runtime.camera.datasets import LabeledImage

    rng = np.random.default_rng(2)
    color = texture(rng, 80, 120)
    gray = texture(rng, 50, 30, 1)[:, :, 0]
    bgra = np.dstack([texture(rng, 64, 64), np.full((64, 64), 255, np.uint8)])
    sixteen = (texture(rng, 40, 40, 1)[:, :, 0].astype(np.uint16) << 8)
    files = {"color.png": color, "gray.png": gray, "bgra.png": bgra, "sixteen.png": sixteen,
             "photo.jpg": color}
    for name, image in files.items():
        write(tmp_path / name, image)
    mask = np.zeros((80, 120), np.uint8)
    mask[20:60, :60] = 255                             # left half, rows 20..59
    write(tmp_path / "color_mask.png", mask)
    items = [LabeledImage(tmp_path / name, name == "color.png", "x",
                          tmp_path / "color_mask.png" if name == "color.png" else None)
             for name in files]
    for order, channels in (("bgr", 3), ("rgb", 3), ("gray", 1)):
        images, masks = load_images(items, 32, order)
        assert images.dtype == np.uint8 and images.shape == (5, 32, 32, channels)
        assert masks.dtype == bool and masks.shape == (5, 32, 32)
        for row, item in zip(images, items):
            np.testing.assert_array_equal(row, convert_frame(read_image(item.path), 32, 32, order))
    bgr, masks = load_images(items, 32, "bgr")
    assert np.array_equal(bgr[1, :, :, 0], bgr[1, :, :, 1])   # gray frames become gray BGR
    np.testing.assert_array_equal(bgr[2], convert_frame(bgra[:, :, :3], 32, 32, "bgr"))
    assert read_image(tmp_path / "sixteen.png").dtype == np.uint8
    np.testing.assert_array_equal(read_image(tmp_path / "sixteen.png"), sixteen >> 8)
    rows, cols = np.nonzero(masks[0])
    assert cols.max() < 16 and 7 <= rows.min() and rows.max() <= 24
    assert not masks[1:].any()
    rgb, _ = load_images(items[:1], 32, "rgb")
    np.testing.assert_array_equal(rgb[0], bgr[0][:, :, ::-1])


def test_choose_color(tmp_path, caplog):
    rng = np.random.default_rng(3)
    gray = [tmp_path / f"g{i}.png" for i in range(3)]
    for path in gray:
        write(path, texture(rng, 24, 24, 1)[:, :, 0])
    replicated = tmp_path / "replicated.png"          # a gray picture stored as three channels
    write(replicated, cv2.cvtColor(texture(rng, 24, 24, 1)[:, :, 0], cv2.COLOR_GRAY2BGR))
    color = tmp_path / "color.png"
    write(color, texture(rng, 24, 24))
    assert choose_color(gray, "auto") == "gray"
    assert choose_color([*gray, replicated], "auto") == "gray"
    assert choose_color([*gray, color], "auto") == "bgr"
    assert choose_color([color], "auto") == "bgr"
    assert choose_color([*gray * 20, color], "auto") == "bgr"  # color only after 60 gray images
    # one color image among 100 gray ones, where no evenly spread sample of 32 would fall
    assert choose_color([*gray * 12, color, *gray * 21], "auto") == "bgr"
    # ... and warned of, naming it: a stray colour image turned the model to colour silently
    assert "1 of the 100 normal images are in colour (color.png)" in caplog.text
    assert "--color gray" in caplog.text
    caplog.clear()
    assert choose_color([color, color, *gray[:1]], "auto") == "bgr"
    assert "are in colour (" not in caplog.text  # most in colour: no doubt to warn of
    assert choose_color(gray, "rgb") == "rgb"
    with pytest.raises(ValueError, match="`color` must be auto, gray, bgr or rgb; received 'hsv'"):
        choose_color(gray, "hsv")


def test_training_on_gray_plain_folders_makes_a_gray_artifact(tmp_path):
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision
    from vigil.training.checkpoint import load_run
    from vigil.training.image_model import ImageModelOptions
    from vigil.training.train_image import ImageDataOptions, ImageTrainingOptions, train_image

    rng = np.random.default_rng(4)
    for i in range(12):
        write(tmp_path / "normal" / f"{i:02d}.png", texture(rng, 40, 40, 1)[:, :, 0])
    for i in range(2):
        write(tmp_path / "defects" / f"d{i}.jpg", texture(rng, 40, 40, 1)[:, :, 0])
        mask = np.zeros((40, 40), np.uint8)
        mask[5:15, 5:15] = 255
        write(tmp_path / "defects" / f"d{i}.png", mask)
    options = ImageTrainingOptions(
        architecture="unet", data=ImageDataOptions(anomalous=(str(tmp_path / "defects"),)),
        model=ImageModelOptions(size=32, channels=(4, 8), stem=0, steps=2, batch_size=4))
    result = train_image(tmp_path / "normal", tmp_path / "gray.keras", options, verbose=0)
    record = result.run.record
    assert record["color"] == "gray" and record["channels"] == 1
    assert record["training"]["validation_anomalous"] == 2
    assert record["training"]["images"] + record["training"]["validation_normal"] == 12
    run = load_run(tmp_path / "gray.keras")
    assert run.validation.shape[1:] == (32, 32, 1) and run.validation_labels.sum() == 2
    assert run.validation_masks[run.validation_labels].any()
    assert not run.validation_masks[~run.validation_labels].any()
    report = export_image(tmp_path / "gray.keras", tmp_path / "gray.onnx",
                          ExportOptions(precision=Precision.FP32))
    detector = runtime.load(report.path)
    assert detector.spec.color == "gray" and detector.input_shape == (32, 32, 1)
    frame = texture(rng, 50, 70)                     # a color frame to a gray model
    np.testing.assert_array_equal(detector.score(frame),
                                  detector.score(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))


# -- parity ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras_outputs(image_artifacts, probe):
    """Keras scoring model outputs at batch N (all probe images) and batch 1 (a few)."""
    import keras

    import vigil.training.image_model  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(image_artifacts.keras_model, safe_mode=True, compile=False)
    batch = model.predict(probe, batch_size=len(probe), verbose=0)
    singles = [model.predict(probe[[i]], batch_size=1, verbose=0) for i in SINGLE_INDICES]
    return ((np.asarray(batch["score"], np.float64).reshape(-1), np.asarray(batch["anomaly_map"])),
            (np.concatenate([np.asarray(s["score"], np.float64).reshape(-1) for s in singles]),
             np.concatenate([np.asarray(s["anomaly_map"]) for s in singles])))


SINGLE_INDICES = (0, 5, 10, -3, -1)   # normal and defective images, scored one at a time


def one_at_a_time(detector, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outputs = [detector.run_prepared(images[i:i + 1]) for i in range(len(images))]
    return (np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs]))


def test_keras_and_onnx_fp32_agree_at_batch_1_and_batch_n(fp32, probe, keras_outputs):
    (keras_scores, keras_maps), (keras_single_scores, keras_single_maps) = keras_outputs
    scores, maps = fp32.run_prepared(probe)                       # batch N
    assert maps.shape == (len(probe), SIZE, SIZE) == keras_maps.shape
    assert np.max(np.abs(scores - keras_scores)) < FP32_MAX_ABS_DIFF
    assert np.max(np.abs(maps - keras_maps)) < FP32_MAX_ABS_DIFF
    singles = np.array(SINGLE_INDICES)
    single_scores, single_maps = one_at_a_time(fp32, probe[singles])   # batch 1
    assert np.max(np.abs(single_scores - keras_single_scores)) < FP32_MAX_ABS_DIFF
    assert np.max(np.abs(single_maps - keras_single_maps)) < FP32_MAX_ABS_DIFF
    # Keras itself at batch 1 and batch N, and the score is the map's maximum.
    assert np.max(np.abs(keras_single_scores - keras_scores[singles])) < FP32_MAX_ABS_DIFF
    # The score is the maximum of the map smoothed less (score_sigma < smoothing_sigma): the
    # map's own maximum can only be lower, as more smoothing is a further blur.
    assert (scores >= maps.reshape(len(maps), -1).max(axis=1) - 1e-6).all()


def test_fp32_and_int8_agree_within_tolerance_at_batch_1_and_batch_n(fp32, int8, probe):
    fp32_scores, fp32_maps = fp32.run_prepared(probe)
    int8_scores, int8_maps = int8.run_prepared(probe)
    assert int8.spec.precision == "int8" and fp32.spec.precision == "fp32"
    tolerance = INT8_MAX_SCORE_DIFF_OF_SPREAD * float(np.ptp(fp32_scores))
    assert np.max(np.abs(int8_scores - fp32_scores)) <= tolerance
    assert np.corrcoef(fp32_maps.ravel(), int8_maps.ravel())[0, 1] >= INT8_MIN_MAP_CORRELATION
    single_scores, single_maps = one_at_a_time(int8, probe)
    assert np.max(np.abs(single_scores - fp32_scores)) <= tolerance
    assert np.corrcoef(fp32_maps.ravel(), single_maps.ravel())[0, 1] >= INT8_MIN_MAP_CORRELATION
    # Static quantization fixes every activation range at export: no dependence on the batch.
    np.testing.assert_allclose(single_scores, int8_scores, rtol=0, atol=BATCH_INDEPENDENCE)
    np.testing.assert_allclose(single_maps, int8_maps, rtol=0, atol=BATCH_INDEPENDENCE)
    # The INT8 graph really is quantized (QDQ nodes), and the export measured the same thing.
    import onnx

    nodes = onnx.load(str(int8.path)).graph.node
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in nodes}
    # ... except the score reduction after the network (postprocess_*), which stays float: only
    # the sigmoid reads the dequantized logits, and nothing there is quantized again.
    producer = {output: n for n in nodes for output in n.output}
    post = [n for n in nodes if "postprocess" in n.name]
    assert {"Sigmoid", "Conv", "ReduceMax"} <= {n.op_type for n in post}
    for node in post:
        sources = {producer[i].op_type for i in node.input if i in producer}
        assert "QuantizeLinear" not in sources
        assert node.op_type == "Sigmoid" or "DequantizeLinear" not in sources, node.name
    assert not any(producer.get(i) in post for n in nodes if n.op_type == "QuantizeLinear"
                   for i in n.input)
    fp32_ops = {n.op_type for n in onnx.load(str(fp32.path)).graph.node}
    assert "QuantizeLinear" not in fp32_ops


def test_export_reports_int8_parity(image_artifacts, fp32, probe):
    parity = image_artifacts.int8_parity
    fp32_scores, _ = fp32.run_prepared(probe)
    assert parity["fp32_max_abs_diff"] < FP32_MAX_ABS_DIFF
    assert parity["fp32_map_max_abs_diff"] < FP32_MAX_ABS_DIFF
    assert parity["int8_map_correlation"] >= INT8_MIN_MAP_CORRELATION
    assert parity["int8_max_abs_diff"] <= INT8_MAX_SCORE_DIFF_OF_SPREAD * float(np.ptp(fp32_scores))
    assert parity["int8_within_tolerance"] is True and image_artifacts.int8_messages == ()
    # No labeled defects in validation: the gate also compares the exports on synthetic ones.
    assert parity["synthetic_images"] == 2 * parity["images"]
    assert parity["int8_synthetic_map_correlation"] >= INT8_MIN_MAP_CORRELATION
    assert parity["int8_synthetic_auroc_drop"] == pytest.approx(
        parity["fp32_synthetic_auroc"] - parity["int8_synthetic_auroc"])


@pytest.mark.parametrize("channels", [1, 3])
def test_synthetic_defects_change_part_of_each_image_deterministically(channels):
    from vigil.export.export_image import pasted_defects

    rng = np.random.default_rng(0)
    normal = np.stack([texture(rng, SIZE, SIZE, channels) for _ in range(12)])
    pasted = pasted_defects(normal)
    assert pasted.dtype == np.uint8 and pasted.shape == normal.shape
    changed = (np.abs(pasted.astype(int) - normal).max(axis=-1) > 5).mean(axis=(1, 2))
    assert (changed > 0).all() and (changed < 0.9).all(), changed
    np.testing.assert_array_equal(pasted, pasted_defects(normal))


def constant_map_graph():
    """A stand-in for a broken quantization: same inputs and outputs, every map pixel 0.5."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["pixels"], ["brightest"], axes=[3], keepdims=0),
        helper.make_node("Mul", ["brightest", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "half"], ["anomaly_map"]),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "constant_map",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", SIZE, SIZE])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
         helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_int8_with_a_constant_map_is_refused(image_artifacts, tmp_path, monkeypatch):
    """A quantized model whose map no longer varies carries nothing of the FP32 map: the parity
    gate must refuse it and write FP32 (it used to fail writing a NaN correlation into the
    metadata)."""
    import vigil.export.export_image as export_image_module
    from vigil.export import ExportOptions

    monkeypatch.setattr(export_image_module, "quantize_static_int8",
                        lambda proto, calibration, input_name, **options: constant_map_graph())
    report = export_image_module.export_image(image_artifacts.keras_model,
                                              tmp_path / "refused.onnx", ExportOptions())
    assert report.precision == "fp32"
    (message,) = report.messages
    assert message.startswith("INT8 misses the parity tolerance (anomaly-map correlation 0.0000 "
                              "< 0.98")
    assert message.endswith("; wrote FP32 instead (--precision int8 --force keeps it)")
    with pytest.raises(ValueError, match=r"--precision int8: INT8 misses the parity tolerance "
                                         r"\(anomaly-map correlation .*nothing was written; "
                                         r"--force keeps it anyway"):
        export_image_module.export_image(image_artifacts.keras_model, tmp_path / "asked.onnx",
                                         ExportOptions(precision="int8"))
    assert not (tmp_path / "asked.onnx").exists()
    with pytest.raises(ValueError, match="applies to precision int8 or mixed, not auto"):
        ExportOptions(force=True)
    assert report.parity["int8_synthetic_map_correlation"] == 0.0
    assert report.parity["int8_map_correlation"] == 0.0
    assert report.parity["int8_rank_correlation"] == 0.0
    assert report.parity["int8_within_tolerance"] is False
    detector = runtime.load(report.path)
    assert detector.spec.precision == "fp32" and detector.spec.parity["int8_map_correlation"] == 0.0


def test_rank_correlation_of_constant_scores():
    from vigil.export.precision import rank_correlation

    assert rank_correlation(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])) == 0.0
    assert rank_correlation(np.array([4.0, 4.0]), np.array([7.0, 7.0])) == 1.0
    assert rank_correlation(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])) == 1.0
    assert rank_correlation(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == -1.0
    # windows whose score overflowed (a sentinel): one tie of infinities, without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tied = np.array([1.0, np.inf, 2.0, np.inf])
        assert rank_correlation(tied, np.array([1.0, 9.0, 2.0, 8.0])) == pytest.approx(0.9487, abs=1e-4)


# -- artifact metadata -------------------------------------------------------------------------

def test_image_artifact_metadata(image_artifacts, int8, fp32):
    import onnxruntime as ort

    from vigil.runtime.core.artifact import sha256_of
    from vigil.runtime.camera.datasets import mvtec as read_mvtec

    session = ort.InferenceSession(str(image_artifacts.int8), providers=["CPUExecutionProvider"])
    entries = session.get_modelmeta().custom_metadata_map
    assert list(entries) == ["vigil"]
    raw = strict_json(entries["vigil"])
    assert raw["kind"] == "image" and raw["schema_version"] == 1
    for detector, precision in ((int8, "int8"), (fp32, "fp32")):
        spec = detector.spec
        assert spec.kind == "image" and spec.precision == precision
        assert (spec.height, spec.width, spec.channels) == (SIZE, SIZE, 3)
        assert spec.color == "bgr" and spec.resize == "stretch"   # synthetic frames are tinted
        assert (spec.input_name, spec.score_output, spec.map_output) == (
            "image", "score", "anomaly_map")
        threshold, pixel = spec.threshold, spec.pixel_threshold
        # Normalized maps (the default) are not probabilities: a Gaussian on the scores.
        assert threshold.method == "gaussian" and threshold.params["k"] == 3.0
        assert "logit" not in threshold.params
        assert threshold.value == pytest.approx(
            threshold.params["mean"] + 3.0 * threshold.params["std"], abs=1e-12)
        assert threshold.params["mean"] == pytest.approx(spec.score_stats.mean, abs=1e-12)
        assert "softplus((map - mean) / (std + 0.02))" in spec.score_reduction
        assert pixel.method == "percentile" and pixel.params == {"q": 99.9}
        stats = spec.map_stats
        assert stats.count == spec.score_stats.count * SIZE * SIZE  # every normal map pixel
        assert 0.0 <= stats.p50 <= stats.p99 <= pixel.value <= stats.max   # softplus: positive
        assert spec.versions["onnxruntime"] == package_metadata.version("onnxruntime")
        assert {"vigil", "tensorflow", "keras", "tf2onnx", "onnx", "numpy"} <= set(spec.versions)
        training = spec.training
        assert training["images"] + training["validation_normal"] == TRAIN_IMAGES
        assert training["validation_anomalous"] == 0
        assert training["model"]["size"] == SIZE and training["model"]["channels"] == [8, 16, 32]
        assert training["calibration"]["method"] == "gaussian"
        assert training["files_sha256"]["count"] == training["images"]
        assert spec.parity["fp32_max_abs_diff"] < FP32_MAX_ABS_DIFF
    assert "int8_map_correlation" in int8.spec.parity
    assert "int8_map_correlation" not in fp32.spec.parity
    # The fingerprint is the sha256 of the training files' sha256s: rebuild it from the files
    # not held out (train_image holds out round(15%) of a seed-permuted list; seed 5 here).
    train, _ = read_mvtec(image_artifacts.category)
    held = max(2, int(round(len(train) * 0.15)))
    order = np.random.default_rng(5).permutation(len(train))
    digest = hashlib.sha256()
    for i in sorted(order[held:]):
        digest.update(sha256_of(train[i].path).encode())
    assert int8.spec.training["files_sha256"]["sha256_of_sha256s"] == digest.hexdigest()


def test_thresholds_are_refit_on_the_exported_model(image_artifacts, int8):
    from vigil.training.checkpoint import load_run

    run = load_run(image_artifacts.keras_model)
    assert not run.validation_labels.any()
    scores, maps = int8.run_prepared(run.validation)
    np.testing.assert_allclose(int8.spec.threshold.params["mean"], scores.mean(), atol=1e-6)
    np.testing.assert_allclose(int8.spec.threshold.params["std"], scores.std(), atol=1e-6)
    np.testing.assert_allclose(int8.spec.pixel_threshold.value, np.percentile(maps, 99.9),
                               atol=1e-6)


def test_threshold_and_pixel_threshold_overrides_change_predict_and_locate(image_artifacts, probe):
    detector = runtime.load(image_artifacts.int8)
    scores = detector.score(probe)
    np.testing.assert_array_equal(detector.predict(probe), scores > detector.spec.threshold.value)
    middle = float(np.median(scores))
    detector.threshold = middle
    assert detector.threshold == middle
    np.testing.assert_array_equal(detector.predict(probe), scores > middle)
    detector.threshold = float(scores.min()) - 1e-3
    assert detector.predict(probe).all()
    detector.threshold = float(scores.max())
    assert not detector.predict(probe).any()
    frame = cv2.resize(probe[0], (96, 72))
    detector.pixel_threshold = 0.0                   # every pixel (softplus > 0) is above it
    # a frame decided normal has no box, as in `vigil score`; a map without its score, regions
    assert detector.locate(frame)[1] == [] and not detector.predict(frame)[0]
    full, regions_only = detector.locate(frame, detector.infer(frame)[1][0])
    assert [(b["x"], b["y"], b["w"], b["h"]) for b in regions_only] == [(0, 0, 96, 72)]
    detector.threshold = float(scores.min()) - 1e-3  # a reject: its regions
    full, boxes = detector.locate(frame)
    assert full.shape == (72, 96) and detector.predict(frame)[0]
    assert [(b["x"], b["y"], b["w"], b["h"]) for b in boxes] == [(0, 0, 96, 72)]
    detector.pixel_threshold = float(full.max()) + 1.0  # a reject with no pixel above: its peak
    (peak,) = detector.locate(frame)[1]
    assert peak["below_pixel_threshold"] is True
    map_of_frame = detector.infer(frame)[1]
    np.testing.assert_array_equal(detector.locate(frame, map_of_frame)[0], full)  # (1, h, w) too
    with pytest.raises(ValueError, match=r"`frame` must be one frame: locate takes one at a "
                                         r"time|`frame` must have shape \(height, width\)"):
        detector.locate(np.stack([frame, frame]))  # one frame at a time, never a batch cut
    with pytest.raises(ValueError, match=r"`anomaly_map` must be one frame's map"):
        detector.locate(frame, detector.infer(np.stack([frame, frame]))[1])
    for bad in (float("nan"), float("inf"), "0.5", True):
        with pytest.raises(ValueError, match="`threshold` must be a finite number"):
            detector.threshold = bad
        with pytest.raises(ValueError, match="`pixel_threshold` must be a finite number"):
            detector.pixel_threshold = bad
    assert runtime.load(image_artifacts.int8).threshold == detector.spec.threshold.value


# -- detector input errors ---------------------------------------------------------------------

SHAPE_MESSAGE = r"must have shape \(height, width\) or \(height, width, 1\|3\|4\); received "


@pytest.mark.parametrize("frames, error, message", [
    (np.zeros((64, 64, 3), np.float32), TypeError, r"must be uint8.*received dtype float32"),
    ([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.float64)], TypeError,
     r"received dtype float64"),
    (np.zeros((0, 0, 3), np.uint8), ValueError, r"at least 2x2 pixels; received \(0, 0, 3\)"),
    (np.zeros((0, 64), np.uint8), ValueError, r"at least 2x2 pixels; received \(0, 64\)"),
    (np.zeros((64, 64, 2), np.uint8), ValueError, SHAPE_MESSAGE + r"\(64, 64, 2\)"),
    (np.zeros((2, 1, 64, 64, 3), np.uint8), ValueError, SHAPE_MESSAGE + r"\(2, 1, 64, 64, 3\)"),
    (np.zeros(64, np.uint8), ValueError, SHAPE_MESSAGE + r"\(64,\)"),
    (None, ValueError, r"`frame` is None"),
    (np.zeros((4, 64, 48), np.uint8), ValueError,
     r"channels first.*frame.transpose\(1, 2, 0\), channels last; "
     r"4 gray frames stacked\? pass list\(frame\) or frame\[\.\.\., None\]"),
])
def test_detector_refuses_bad_frames(int8, frames, error, message):
    with pytest.raises(error, match=message):
        int8.score(frames)


def test_an_empty_batch_scores_nothing_as_the_sensor_detectors_does(int8):
    for empty in (np.zeros((0, 64, 64, 3), np.uint8), []):
        scores, maps = int8.infer(empty)
        assert scores.shape == (0,) and maps.shape == (0, 64, 64)
        assert int8.predict(empty).shape == (0,)


def test_pil_images_are_read_as_rgb_not_as_opencv_bgr(int8, probe):
    import tempfile
    from pathlib import Path

    from PIL import Image

    bgr = probe[-1]
    rgb = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    np.testing.assert_array_equal(int8.score(rgb), int8.score(bgr))
    np.testing.assert_array_equal(int8.score([rgb, rgb.convert("RGBA")]),
                                  int8.score([bgr, bgr]))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(int8.score(Image.fromarray(gray)), int8.score(gray))
    with pytest.raises(TypeError, match=r"must be uint8.*received dtype uint16.*>> 8"):
        int8.score(Image.fromarray(gray.astype(np.uint16) * 256))
    # a phone's JPEG, stored sideways with an EXIF orientation: turned as cv2.imread turns it
    turned = np.ascontiguousarray(np.rot90(bgr))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = Path(tempfile.mkdtemp()) / "phone.jpg"
    Image.fromarray(np.ascontiguousarray(turned[..., ::-1])).save(path, exif=exif, quality=95)
    np.testing.assert_array_equal(int8.score(Image.open(path)), int8.score(cv2.imread(str(path))))


def test_run_prepared_refuses_unprepared_input(int8):
    with pytest.raises(ValueError, match=r"uint8 with shape \(n, 64, 64, 3\); received uint8 "
                                         r"\(1, 32, 32, 3\)"):
        int8.run_prepared(np.zeros((1, 32, 32, 3), np.uint8))


def test_gray_bgra_and_mixed_size_frames_score_like_their_bgr_equivalents(int8, probe):
    rng = np.random.default_rng(6)
    bgr = cv2.resize(probe[-1], (80, 60))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(int8.score(gray),
                                  int8.score(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)))
    np.testing.assert_array_equal(int8.score(gray[:, :, None]), int8.score(gray))
    np.testing.assert_array_equal(int8.score(bgra), int8.score(bgr))
    frames = [bgr, gray, texture(rng, 100, 140), probe[0], texture(rng, 17, 9), bgra]
    scores = int8.score(frames)
    assert scores.shape == (len(frames),) and np.isfinite(scores).all()
    one_by_one = np.concatenate([int8.score(f) for f in frames])
    np.testing.assert_allclose(scores, one_by_one, rtol=0, atol=BATCH_INDEPENDENCE)
    prepared = np.stack([convert_frame(f, SIZE, SIZE, "bgr") for f in frames])
    np.testing.assert_allclose(scores, int8.run_prepared(prepared)[0], rtol=0, atol=0)
    assert int8.predict(frames).dtype == bool
    full, _ = int8.locate(frames[2])
    assert full.shape == (100, 140)
    batch = np.stack([probe[0], probe[1]])                           # a 4-D uint8 batch
    np.testing.assert_array_equal(int8.score(batch), int8.score([probe[0], probe[1]]))


def test_gray_frames_for_a_colour_model_are_said_once(image_artifacts, probe, tmp_path, caplog,
                                                      capsys):
    from dataclasses import replace

    from vigil.runtime.camera.frames import color_mismatch

    bgr = probe[-1]
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    spec = runtime.load(image_artifacts.fp32).spec
    assert spec.color == "bgr"
    assert "frames are gray" in color_mismatch(gray, spec)
    assert "frames are gray" in color_mismatch(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), spec)
    assert color_mismatch(bgr, spec) is None  # (above: a gray JPEG decoded as colour)
    gray_spec = replace(spec, color="gray")
    assert color_mismatch(gray, gray_spec) is None
    # colour frames for a gray model: read as gray, colour-only defects unseen (was silent)
    assert "frames are in colour but the model was trained on gray" in color_mismatch(bgr,
                                                                                   gray_spec)
    detector = runtime.load(image_artifacts.fp32)
    with caplog.at_level("WARNING", logger="vigil"):
        detector.score(bgr)
        assert "frames are gray" not in caplog.text
        detector.score([gray, gray])
        detector.score(gray)
    assert caplog.text.count("frames are gray but the model was trained on colour (bgr)") == 1
    capsys.readouterr()  # (an earlier test's closed log stream may have been written to)
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, frame in (("a.png", bgr), ("b.png", gray), ("c.png", gray)):
        cv2.imwrite(str(folder / name), frame)
    assert cli.main(["score", str(image_artifacts.fp32), str(folder), "--jsonl",
                     str(tmp_path / "s.jsonl")]) == 0
    captured = capsys.readouterr()
    error = captured.err
    assert error.count("frames are gray but the model") == 1 and "b.png: frames are gray" in error
    # said once, but every such file is marked and counted (review hC, session 61: later ones
    # of another size or shape went unsaid)
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [line.get("unlike_training") for line in lines if "frame" in line] == [
        None, ["colour"], ["colour"]]
    summary = next(json.loads(line) for line in error.splitlines() if '"summary"' in line)
    assert summary["summary"]["frames_unlike_training"] == 2


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_eval_writes_strict_json_and_a_report(image_artifacts, tmp_path, capsys):
    out, report = tmp_path / "out" / "metrics.json", tmp_path / "report"
    code = cli.main(["eval", str(image_artifacts.int8), str(image_artifacts.category),
                     "--json", str(out), "--report", str(report)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = strict_json(out.read_text())
    assert {"image_auroc", "pixel_auroc", "f1", "precision", "recall", "threshold", "pro",
            "per_defect"} <= set(result)
    assert 0.0 <= result["image_auroc"] <= 1.0 and 0.0 <= result["pixel_auroc"] <= 1.0
    assert result["images"] == TEST_GOOD + TEST_DEFECTS
    assert result["images_trained_on"] == 0 and result["images_held_out_in_training"] == 0
    assert result["defects_given_in_training"] == 0
    assert "trained on" not in captured.err
    assert result["threshold"] == runtime.load(image_artifacts.int8).spec.threshold.value
    assert {row["defect"] for row in result["per_defect"]} == {*DEFECTS, "good"}
    printed = strict_json(captured.out)
    assert set(printed) == {"image_auroc", "pixel_auroc", "pro", "f1", "precision", "recall",
                            "threshold", "box_hit_rate", "box_precision", "false_positive_rate"}
    assert printed["image_auroc"] == result["image_auroc"]
    assert result["false_positive_rate"] == result["fp"] / TEST_GOOD
    assert (report / "report.md").is_file() and "image_auroc" in (report / "report.md").read_text()
    assert strict_json((report / "metrics.json").read_text()) == result
    examples = cv2.imread(str(report / "examples.png"))
    assert examples is not None and examples.shape[0] >= 192 * (len(DEFECTS) + 1)
    # --threshold overrides the artifact's threshold.
    assert cli.main(["eval", str(image_artifacts.int8), str(image_artifacts.category),
                     "--threshold", "0.0"]) == 0
    overridden = strict_json(capsys.readouterr().out)
    assert overridden["threshold"] == 0.0 and overridden["recall"] == 1.0


def test_cli_eval_names_test_images_the_model_trained_on_or_held_out(image_artifacts, tmp_path,
                                                                     capsys):
    category = shutil.copytree(image_artifacts.category, tmp_path / "category")
    record = runtime.load(image_artifacts.fp32).spec.training["files_sha256"]
    train = sorted((category / "train" / "good").iterdir())
    digests = {image_digest(read_image(path)): path for path in train}
    trained = [digests[d] for d in record["trained"][:3]]
    held = [digests[d] for d in record["held_out"][:2]]
    assert len(record["trained"]) == record["count"] and len(trained) == 3 and len(held) == 2
    assert record["labeled_defects"] == []
    for n, path in enumerate(trained + held):  # renamed: found by content, not by name
        shutil.copy(path, category / "test" / "good" / f"copy{n}{path.suffix}")
    # saved again at another compression (other bytes, the same pixels): found too
    again = category / "test" / "good" / "copy0.png"
    cv2.imwrite(str(again), cv2.imread(str(again), cv2.IMREAD_UNCHANGED),
                [cv2.IMWRITE_PNG_COMPRESSION, 0])
    assert again.read_bytes() != trained[0].read_bytes()
    assert cli.main(["eval", str(image_artifacts.fp32), str(category), "--json",
                     str(tmp_path / "m.json"), "--report", str(tmp_path / "report")]) == 0
    assert "**Caution:** of these test images, 3 trained on, 2 held out by training to set " \
           "the threshold:" in (tmp_path / "report" / "report.md").read_text()
    result = strict_json((tmp_path / "m.json").read_text())
    assert result["images_trained_on"] == 3 and result["images_held_out_in_training"] == 2
    assert result["defects_given_in_training"] == 0
    err = capsys.readouterr().err
    assert f"3 of the {TEST_GOOD + TEST_DEFECTS + 5} test images are images this model was " \
           f"trained on" in err and "2 of the" in err and "training held out to set the " \
           "threshold" in err


def test_cli_eval_on_a_category_without_masks(image_artifacts, tmp_path, capsys):
    category = shutil.copytree(image_artifacts.category, tmp_path / "category")
    shutil.rmtree(category / "ground_truth")
    assert cli.main(["eval", str(image_artifacts.fp32), str(category), "--json",
                     str(tmp_path / "m.json"), "--report", str(tmp_path / "r")]) == 0
    result = strict_json((tmp_path / "m.json").read_text())
    assert result["pixel_auroc"] is None and result["pro"] is None
    assert (tmp_path / "r" / "report.md").is_file() and (tmp_path / "r" / "examples.png").is_file()
    printed = strict_json(capsys.readouterr().out)
    assert printed["pixel_auroc"] is None and printed["image_auroc"] == result["image_auroc"]


def test_cli_eval_of_a_folder_that_is_not_mvtec_is_exit_2(image_artifacts, tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert cli.main(["eval", str(image_artifacts.int8), str(tmp_path / "plain")]) == 2
    err = capsys.readouterr().err
    assert "not an MVTec AD category" in err and "--anomalous DEFECT_DIR" in err
    # a folder of normal/ and defect/ subfolders: the command that reads them
    category = image_artifacts.category
    for name, source in (("normal", "test/good"), ("crack", "test/crack")):
        if (category / source).is_dir():
            shutil.copytree(category / source, tmp_path / "pair" / name)
    assert cli.main(["eval", str(image_artifacts.int8), str(tmp_path / "pair")]) == 2
    assert (f"its subfolders do: vigil eval MODEL {tmp_path / 'pair' / 'normal'} --anomalous "
            f"{tmp_path / 'pair' / 'crack'})") in capsys.readouterr().err
    shutil.copytree(category / "ground_truth" / "crack", tmp_path / "pair" / "masks")
    assert cli.main(["eval", str(image_artifacts.int8), str(tmp_path / "pair")]) == 2
    assert (f"--anomalous {tmp_path / 'pair' / 'crack'} --masks {tmp_path / 'pair' / 'masks'})"
            in capsys.readouterr().err)  # a masks folder is no defect images


def test_cli_train_image_then_export(image_artifacts, tmp_path, capsys):
    model = tmp_path / "m.keras"
    code = cli.main(["train", "image", str(image_artifacts.category), "-o", str(model),
                     "--size", "32", "--steps", "3", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    trained = strict_json(captured.out.strip().splitlines()[-1])
    assert trained["model"] == str(model) and trained["images"] > 0
    # The default is `features` since 0.3; 0.2's U-Net flags alone still train a U-Net, with a
    # deprecation warning that names the flag to add.
    assert "--steps given without --architecture: training a U-Net" in captured.err
    assert "deprecated" in captured.err and "add --architecture unet" in captured.err
    assert model.is_file() and (tmp_path / "m.vigil.npz").is_file()
    code = cli.main(["export", str(model), "-o", str(tmp_path / "m.onnx")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    exported = strict_json(captured.out)
    detector = runtime.load(tmp_path / "m.onnx")
    assert isinstance(detector, runtime.ImageDetector)
    assert detector.spec.kind == "image" and detector.input_shape == (32, 32, 3)
    assert exported["artifact"] == str(tmp_path / "m.onnx")
    assert exported["precision"] == detector.spec.precision in ("int8", "fp32")
    assert detector.spec.training["architecture"] == "unet"
    assert exported["threshold"] == detector.threshold
    assert detector.score(probe_frame(image_artifacts)).shape == (1,)
    # a U-Net has no memory-bank product for mixed precision to quantize: refused, nothing written
    assert cli.main(["export", str(model), "-o", str(tmp_path / "mixed.onnx"), "--precision",
                     "mixed"]) == 2
    assert "has none that can be quantized (a 'unet' model" in capsys.readouterr().err
    assert not (tmp_path / "mixed.onnx").exists()


def test_cli_train_image_passes_the_view_width_coarse_pass_and_normalization_flags(image_artifacts, tmp_path, capsys):
    from vigil.training.checkpoint import load_run

    model = tmp_path / "whole.keras"
    code = cli.main(["train", "image", str(image_artifacts.category), "-o", str(model),
                     "--size", "32", "--steps", "2", "--train-view", "1", "--no-coarse-pass",
                     "--no-quarter-pass", "--no-rescale-views", "--no-map-normalization",
                     "--width", "8", "--quiet"])
    assert code == 0, capsys.readouterr().err
    record = load_run(model).record
    options = record["training"]["model"]
    assert list(options["channels"]) == [8, 16, 32, 64, 64, 64]
    assert (options["train_view"], options["coarse_pass"], options["rescale_views"],
            options["map_normalization"], options["quarter_pass"]) == (1.0, False, False, False,
                                                                      False)
    assert "mean and std" not in record["score_reduction"]
    assert cli.main(["train", "image", str(image_artifacts.category), "-o", str(model),
                     "--train-view", "1.5", "--steps", "1", "--quiet"]) == 2
    assert "`--train-view` must be in (0, 1]; received 1.5" in capsys.readouterr().err
    assert cli.main(["train", "image", str(image_artifacts.category), "-o",
                     str(tmp_path / "narrow.keras"), "--width", "2", "--quiet"]) == 2
    assert "the U-Net `--width` must be an integer >= 4; received 2" in capsys.readouterr().err
    assert not (tmp_path / "narrow.keras").exists()


def probe_frame(image_artifacts) -> np.ndarray:
    return read_image(next((image_artifacts.category / "test" / "good").iterdir()))


def test_cli_export_without_the_sidecar_is_exit_2(image_artifacts, tmp_path, capsys):
    model = tmp_path / "lonely.keras"
    shutil.copy(image_artifacts.keras_model, model)
    code = cli.main(["export", str(model), "-o", str(tmp_path / "lonely.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert "lonely.vigil.npz" in err and "is missing" in err and "vigil train" in err
    assert not (tmp_path / "lonely.onnx").exists()
    # a sidecar cut short, or another file in its place: named, no traceback, no pickle advice
    sidecar = tmp_path / "lonely.vigil.npz"
    whole = image_artifacts.keras_model.with_name(image_artifacts.keras_model.stem + ".vigil.npz")
    for broken in (whole.read_bytes()[:3000], b"garbage"):
        sidecar.write_bytes(broken)
        assert cli.main(["export", str(model), "-o", str(tmp_path / "lonely.onnx")]) == 2
        err = capsys.readouterr().err
        assert "is not a readable Vigil training sidecar" in err and "train again" in err
        assert "allow_pickle" not in err and "Traceback" not in err
        assert not (tmp_path / "lonely.onnx").exists()
    # the model itself cut short (Keras would say "file not found")
    shutil.copy(whole, sidecar)
    model.write_bytes(image_artifacts.keras_model.read_bytes()[:100_000])
    assert cli.main(["export", str(model), "-o", str(tmp_path / "lonely.onnx")]) == 2
    err = capsys.readouterr().err
    assert "is not a readable .keras model" in err and "not found" not in err


def test_int8_export_writes_nothing_to_the_working_directory(image_artifacts, tmp_path,
                                                             monkeypatch):
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    report = export_image(image_artifacts.keras_model, tmp_path / "again.onnx",
                          ExportOptions(precision=Precision.INT8, force=True))
    assert report.path.is_file() and report.precision == "int8"
    assert list(work.iterdir()) == []
    # Export is deterministic: the same model gives the same INT8 scores.
    probe = np.stack([convert_frame(probe_frame(image_artifacts), SIZE, SIZE, "bgr")])
    np.testing.assert_array_equal(runtime.load(report.path).run_prepared(probe)[0],
                                  runtime.load(image_artifacts.int8).run_prepared(probe)[0])


# -- anomaly synthesis -------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_training_batch_shapes_range_and_determinism(channels):
    rng = np.random.default_rng(7)
    images = np.stack([texture(rng, 32, 40, channels) for _ in range(4)]).astype(np.float32) / 255
    x, y = training_batch(np.random.default_rng(11), images, 6)
    assert x.shape == (6, 32, 40, channels) and y.shape == (6, 32, 40, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) <= {0.0, 1.0}
    again = training_batch(np.random.default_rng(11), images, 6)
    np.testing.assert_array_equal(x, again[0])
    np.testing.assert_array_equal(y, again[1])
    other = training_batch(np.random.default_rng(12), images, 6)
    assert not np.array_equal(x, other[0])
    _, clean = training_batch(np.random.default_rng(11), images, 6, anomaly_rate=0.0)
    assert not clean.any()


@pytest.mark.parametrize("channels", [1, 3])
def test_training_batch_views_are_rescaled_crops_of_the_images(channels):
    rng = np.random.default_rng(3)
    images = np.stack([texture(rng, 48, 48, channels) for _ in range(4)]).astype(np.float32) / 255
    x, y = training_batch(np.random.default_rng(5), images, 8, anomaly_rate=0.0, crop=16)
    assert x.shape == (8, 16, 16, channels) and y.shape == (8, 16, 16, 1) and not y.any()
    # Without rescaling (and with the gain jitter undone) each view is a crop of some image.
    found = 0
    for view in x:
        for image in images:
            for flipped in (image, image[:, ::-1], image[::-1], image[::-1, ::-1]):
                windows = np.lib.stride_tricks.sliding_window_view(flipped[..., 0], (16, 16))
                flat = windows.reshape(-1, 256)
                centred = flat - flat.mean(axis=1, keepdims=True)
                target = view[..., 0].ravel() - view[..., 0].mean()
                cosine = centred @ target / (np.linalg.norm(centred, axis=1)
                                             * np.linalg.norm(target) + 1e-9)
                found += bool(cosine.max() > 0.99)  # gain jitter may clip a few pixels
    assert found >= 8
    rescaled, labels = training_batch(np.random.default_rng(5), images, 8, anomaly_rate=1.0,
                                      crop=16, min_side=20)
    assert rescaled.shape == (8, 16, 16, channels) and labels.any()
    with pytest.raises(ValueError, match="`crop` must be in \\[1, 48\\]"):
        training_batch(np.random.default_rng(5), images, 2, crop=64)


def test_segmenter_trained_on_crops_runs_on_larger_frames_and_checks_their_side():
    from vigil.training.image_model import ImageModelOptions, build_scoring_model, build_segmenter

    options = ImageModelOptions(size=64, train_view=0.5, coarse_pass=True, channels=(4, 8, 16),
                                stem=0)
    segmenter = build_segmenter(1, options)
    assert segmenter(np.zeros((1, 32, 32, 1), np.float32)).shape == (1, 32, 32, 1)
    scorer = build_scoring_model(segmenter, 1, options)
    out = scorer(np.zeros((2, 64, 64, 1), np.uint8))
    assert tuple(out["anomaly_map"].shape) == (2, 64, 64) and tuple(out["score"].shape) == (2,)
    with pytest.raises(ValueError, match="the 1/2 pass \\(18 px\\) must be a multiple of 4 .*"
                                         "the nearest sizes that do: 32, 48 \\(--size\\)"):
        build_segmenter(1, ImageModelOptions(size=36, train_view=0.9, coarse_pass=True,
                                             channels=(4, 8, 16), stem=0))
    # the default model at --size 100: the stem halves the 50-px view to 25 px
    with pytest.raises(ValueError, match="is 25 px, which must be even .* nearest sizes that do: "
                                         "64, 128"):
        build_segmenter(1, ImageModelOptions(size=100))


def _gaussian_blur_2d(image: np.ndarray, sigma: float) -> np.ndarray:
    """Reference blur: the full 2-D Gaussian kernel, zero padding."""
    radius = max(1, int(round(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = np.outer(taps, taps) / taps.sum() ** 2
    return cv2.filter2D(image, -1, kernel.astype(np.float32), borderType=cv2.BORDER_CONSTANT)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_separable_smoothing_equals_the_2d_gaussian_blur(sigma):
    from vigil.training.image_model import GaussianSmooth

    image = np.random.default_rng(3).random((2, 40, 33, 1)).astype(np.float32)
    smoothed = np.asarray(GaussianSmooth(sigma)(image))
    for got, source in zip(smoothed[..., 0], image[..., 0]):
        np.testing.assert_allclose(got, _gaussian_blur_2d(source, sigma), atol=1e-6)


def test_scorer_post_processes_the_map_at_the_networks_resolution_then_upsamples_it():
    import keras

    from vigil.training.image_model import ImageModelOptions, build_scoring_model, build_segmenter

    options = ImageModelOptions(size=64, train_view=1.0, coarse_pass=False, channels=(4, 8),
                                stem=4, smoothing_sigma=2.0, score_sigma=1.0)
    keras.utils.set_random_seed(4)
    segmenter = build_segmenter(1, options)
    frames = np.random.default_rng(4).integers(0, 256, (2, 64, 64, 1)).astype(np.uint8)
    native = keras.Model(segmenter.input, segmenter.get_layer("logits").output)
    logits = np.asarray(native(frames.astype(np.float32) / 255.0))[..., 0]
    assert logits.shape == (2, 32, 32)     # the stem halves the side
    probability = 1.0 / (1.0 + np.exp(-logits))
    out = build_scoring_model(segmenter, 1, options)(frames)
    # Sigmas are in model-input pixels, so they are halved at the native resolution.
    expected_scores = [_gaussian_blur_2d(p, 0.5).max() for p in probability]
    expected_maps = [cv2.resize(_gaussian_blur_2d(p, 1.0), (64, 64), interpolation=cv2.INTER_LINEAR)
                     for p in probability]
    np.testing.assert_allclose(np.asarray(out["score"]), expected_scores, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["anomaly_map"]), np.stack(expected_maps), atol=1e-5)


@pytest.mark.parametrize("stem_kernel,factor", [(3, 2), (5, 2), (3, 4), (5, 4)])
def test_coarse_stem_equals_the_stem_on_the_block_averaged_frame(stem_kernel, factor):
    import keras
    from keras import layers

    from vigil.training.image_model import _coarse_stem

    keras.utils.set_random_seed(7)
    stem = layers.Conv2D(4, stem_kernel, strides=2, padding="same", use_bias=False)
    frames = np.random.default_rng(7).random((2, 64, 48, 3)).astype(np.float32)
    shrunk = np.asarray(layers.AveragePooling2D(factor)(frames))
    expected = np.asarray(stem(shrunk))
    got = np.asarray(_coarse_stem(stem, factor)(frames))
    assert got.shape == expected.shape == (2, 32 // factor, 24 // factor, 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="the coarse stem needs an odd, bias-free, stride-2"):
        _coarse_stem(layers.Conv2D(4, 3, strides=1, padding="same", use_bias=False))


@pytest.mark.parametrize("quarter_pass", [False, True])
def test_scorer_with_a_stem_runs_the_shrunk_passes_as_the_network_on_averaged_frames(quarter_pass):
    import keras
    from keras import layers

    from vigil.training.image_model import ImageModelOptions, build_scoring_model, build_segmenter

    options = ImageModelOptions(size=64, train_view=1.0, coarse_pass=True,
                                quarter_pass=quarter_pass, channels=(4, 8), stem=4,
                                smoothing_sigma=0.0, score_sigma=None, map_normalization=False)
    keras.utils.set_random_seed(8)
    segmenter = build_segmenter(1, options)
    native = keras.Model(segmenter.input, segmenter.get_layer("logits").output)
    frames = np.random.default_rng(8).integers(0, 256, (2, 64, 64, 1)).astype(np.uint8)
    pixels = frames.astype(np.float32) / 255.0
    passes = []
    for factor in (1, 2, 4) if quarter_pass else (1, 2):
        shrunk = np.asarray(layers.AveragePooling2D(factor)(pixels))
        probability = 1 / (1 + np.exp(-np.asarray(native(shrunk))))
        passes.append(np.asarray(layers.UpSampling2D(factor, interpolation="bilinear")(probability)))
    expected = np.mean(passes, axis=0)[..., 0]
    out = build_scoring_model(segmenter, 1, options)(frames)
    np.testing.assert_allclose(np.asarray(out["score"]), expected.reshape(2, -1).max(axis=1),
                               atol=1e-5)


def test_gaussian_thresholds_use_logits_only_for_probability_maps():
    from vigil.training.train_image import ImageCalibrationOptions

    options = ImageCalibrationOptions(pixel_method="gaussian")
    probability = options.record(probabilities=True)
    assert probability["params"] == probability["pixel_params"] == {"k": 3.0, "logit": 1.0}
    normalized = options.record(probabilities=False)
    assert normalized["params"] == normalized["pixel_params"] == {"k": 3.0}


def test_map_normalization_z_scores_each_pixel_by_the_normal_maps_statistics():
    import keras

    from vigil.training.image_model import (STD_FLOOR, ImageModelOptions, build_scoring_model,
                                      build_segmenter, normalization_statistics)

    options = ImageModelOptions(size=32, train_view=1.0, coarse_pass=False, channels=(4, 8),
                                stem=0)
    keras.utils.set_random_seed(6)
    segmenter = build_segmenter(1, options)
    rng = np.random.default_rng(6)
    normal = rng.integers(0, 256, (6, 32, 32, 1)).astype(np.uint8)
    frames = rng.integers(0, 256, (3, 32, 32, 1)).astype(np.uint8)
    plain = build_scoring_model(segmenter, 1, options)
    normal_maps = np.asarray(plain(normal)["anomaly_map"])
    mean, std = normalization_statistics(normal_maps)
    np.testing.assert_allclose(mean, normal_maps.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(std, normal_maps.std(axis=0) + STD_FLOOR, atol=1e-6)
    raw = np.asarray(plain(frames)["anomaly_map"])
    out = build_scoring_model(segmenter, 1, options, (mean, std))(frames)
    expected = np.log1p(np.exp((raw - mean) / std))
    np.testing.assert_allclose(np.asarray(out["anomaly_map"]), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["score"]), expected.reshape(3, -1).max(axis=1),
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"`map_statistics` must be a mean and a positive std "
                                         r"of shape \(32, 32\) \(the network's output resolution\); "
                                         r"received \(16, 16\)"):
        build_scoring_model(segmenter, 1, options, (mean[:16, :16], std[:16, :16]))
    with pytest.raises(ValueError, match=r"map statistics need \(n >= 2, height, width\) maps"):
        normalization_statistics(normal_maps[:1])


def test_map_normalization_runs_at_the_networks_resolution_then_the_map_is_upsampled():
    import keras

    from vigil.training.image_model import (ImageModelOptions, build_scoring_model, build_segmenter,
                                      native_map_model, normalization_statistics)

    options = ImageModelOptions(size=32, train_view=1.0, coarse_pass=True, channels=(4, 8),
                                stem=4)
    keras.utils.set_random_seed(9)
    segmenter = build_segmenter(1, options)
    rng = np.random.default_rng(9)
    normal = rng.integers(0, 256, (6, 32, 32, 1)).astype(np.uint8)
    frames = rng.integers(0, 256, (2, 32, 32, 1)).astype(np.uint8)
    native = native_map_model(segmenter, 1, options)
    normal_maps = np.asarray(native(normal))[..., 0]
    assert normal_maps.shape == (6, 16, 16)     # the stem halves the side
    mean, std = normalization_statistics(normal_maps)
    z = np.log1p(np.exp((np.asarray(native(frames))[..., 0] - mean) / std))
    out = build_scoring_model(segmenter, 1, options, (mean, std))(frames)
    np.testing.assert_allclose(np.asarray(out["score"]), z.reshape(2, -1).max(axis=1), atol=1e-5)
    expected = [cv2.resize(m, (32, 32), interpolation=cv2.INTER_LINEAR) for m in z]
    np.testing.assert_allclose(np.asarray(out["anomaly_map"]), np.stack(expected), atol=1e-5)
    with pytest.raises(ValueError, match=r"of shape \(16, 16\) \(the network's output resolution\)"):
        build_scoring_model(segmenter, 1, options, (np.zeros((32, 32)), np.ones((32, 32))))


@pytest.mark.parametrize("channels", [1, 3])
def test_training_batch_labels_only_visibly_changed_pixels(channels):
    # Flat images: flips change nothing and the gain jitter keeps each image flat, so a pixel
    # that was not pasted over keeps the image's (most common) value.
    images = np.full((3, 32, 32, channels), 0.5, np.float32)
    x, y = training_batch(np.random.default_rng(8), images, 24, anomaly_rate=1.0)
    labeled_images = 0
    for image, label in zip(x, y[..., 0].astype(bool)):
        values, counts = np.unique(image, return_counts=True)
        background = values[np.argmax(counts)]
        change = np.abs(image - background).max(axis=2)
        assert (change[label] > VISIBLE_CHANGE).all()
        labeled_images += bool(label.any())
    assert labeled_images >= 12     # most pasted anomalies are visible (deterministic seed)


@pytest.mark.parametrize("channels", [1, 3])
def test_paste_anomaly_labels_a_subset_of_the_visibly_changed_pixels(channels):
    rng = np.random.default_rng(9)
    labeled = 0
    for _ in range(40):
        image = texture(rng, 48, 48, channels).astype(np.float32) / 255.0
        other = texture(rng, 48, 48, channels).astype(np.float32) / 255.0
        if channels == 1:
            image, other = image[:, :, 0], other[:, :, 0]
        out, label = paste_anomaly(rng, image, other)
        assert out.shape == image.shape and out.dtype == np.float32
        assert label.shape == (48, 48) and set(np.unique(label)) <= {0.0, 1.0}
        change = np.abs(out - image)
        if change.ndim == 3:
            change = change.max(axis=2)
        assert (change[label > 0] > VISIBLE_CHANGE).all()
        labeled += bool(label.any())
    assert labeled >= 30


@pytest.mark.parametrize("channels", [1, 3])
def test_thin_crack_changes_a_faint_thin_line_and_nothing_far_from_it(channels):
    from vigil.training.anomaly_synthesis import thin_crack

    rng = np.random.default_rng(4)
    for _ in range(20):
        image = texture(rng, 64, 64, channels).astype(np.float32) / 255.0
        if channels == 1:
            image = image[:, :, 0]
        out, mask = thin_crack(rng, image)
        assert out.shape == image.shape and out.dtype == np.float32
        assert mask.shape == (64, 64) and set(np.unique(mask)) == {0.0, 1.0}
        assert mask.mean() < 0.15                       # a line, not a region
        change = np.abs(out - image)
        change = change.max(axis=2) if change.ndim == 3 else change
        assert change.max() <= 0.2 + 1e-6               # faint: at most 0.2 of the range
        near = cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0
        assert (change[~near] < 1e-3).all()             # the softened edge stays beside the line


# -- the demo's camera path --------------------------------------------------------------------

def test_camera_demo_quick(tmp_path, monkeypatch, capsys):
    from vigil.cli.demo import run_camera_demo

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    camera = run_camera_demo(tmp_path / "demo", quick=True)
    capsys.readouterr()
    metrics = camera["metrics"]
    assert 0.0 <= metrics["image_auroc"] <= 1.0 and 0.0 <= metrics["pixel_auroc"] <= 1.0
    video = camera["video"]
    summary = video["summary"]
    assert summary["stopped"] == "end" and summary["frames_in"] == video["frames"] > 0
    assert summary["scored"] + summary["skipped"] == summary["frames_in"]
    assert summary["video_frames"] == summary["frames_in"]
    annotated = cv2.VideoCapture(str(tmp_path / "demo" / "annotated.avi"))
    written = 0
    while annotated.read()[0]:
        written += 1
    annotated.release()
    assert written == summary["frames_in"]
    lines = (tmp_path / "demo" / "frames.jsonl").read_text().splitlines()
    assert len(lines) == summary["frames_in"]
    # the default image model since 0.3; auto writes its memory-bank product in INT8 or all FP32
    assert camera["architecture"] == "features"
    assert camera["precision"] in ("mixed", "fp32")
    # the next steps the demo prints name files it wrote
    from pathlib import Path

    from vigil.cli.demo import next_steps

    root = tmp_path / "root"  # the demo's output folder: its camera part is what ran here
    root.mkdir()
    (root / "camera").symlink_to(tmp_path / "demo")
    named = [Path(word) for word in next_steps(root, "camera").split() if str(root) in word]
    assert len(named) == 3 and all(path.exists() for path in named), named
    assert runtime.load(camera["artifact"]).spec.precision == camera["precision"]
    # the demo's frames are colour: their mean blue, green and red are recorded (its warm tint:
    # blue above red)
    spec = runtime.load(camera["artifact"]).spec
    blue, _, red = spec.channel_means_bgr
    assert blue > red and spec.blue_minus_red[0] <= blue - red <= spec.blue_minus_red[1] + 1
    assert (tmp_path / "demo" / "report" / "report.md").is_file()
    assert list(work.iterdir()) == []
    # run again: the folder holds this run's pictures alone, under their plain names; a file of
    # the user's there stays
    overlays = tmp_path / "demo" / "overlays"
    (overlays / "00000099.jpg").write_bytes(b"an earlier run's")
    (overlays / "mine.jpg").write_bytes(b"the user's")
    again = run_camera_demo(tmp_path / "demo", quick=True)
    capsys.readouterr()
    assert not (tmp_path / "demo" / "annotated-2.avi").exists()
    assert len([p for p in overlays.iterdir() if p.name != "mine.jpg"]) == (
        again["video"]["summary"]["overlays"])
    assert (overlays / "mine.jpg").read_bytes() == b"the user's"


def test_magnetic_tile_benchmark_refuses_to_keep_its_run_in_a_folder_with_files(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from vigil.benchmarks.quality_magnetic_tile import main

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path), "--keep", str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"--keep must be an empty or new folder; {tmp_path} has files" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--keep", str(tmp_path / "notes.txt")])
    assert f"{tmp_path / 'notes.txt'} is a file" in capsys.readouterr().err


def test_image_benchmarks_name_the_precision_they_measure():
    pytest.importorskip("tensorflow")
    from vigil.benchmarks.image_runs import export_options
    from vigil.export import Precision

    assert export_options("auto").precision is Precision.AUTO and not export_options("auto").force
    assert export_options("fp32").precision is Precision.FP32
    forced = export_options("int8")
    assert forced.precision is Precision.INT8 and forced.force
    mixed = export_options("mixed")
    assert mixed.precision is Precision.MIXED and mixed.force
    with pytest.raises(ValueError, match=r"`precision` must be one of \['auto', 'fp32', 'int8', "
                                         r"'mixed'\]; received 'int4'"):
        export_options("int4")


def test_unet_width_sets_every_level_and_applies_to_the_unet_only():
    from dataclasses import replace

    from vigil.benchmarks.image_runs import width_options
    from vigil.training.image_model import ImageModelOptions, unet_channels
    from vigil.training.train_image import ImageTrainingOptions

    assert unet_channels(16) == ImageModelOptions().channels
    assert unet_channels(8) == (8, 16, 32, 64, 64, 64)
    for bad in (3, 8.0, True):
        with pytest.raises(ValueError, match=f"integer >= 4; received {bad!r}"):
            unet_channels(bad)
    defaults = ImageTrainingOptions(architecture="unet")
    assert width_options(defaults, None) is defaults
    assert width_options(defaults, 12).model.channels == (12, 24, 48, 96, 96, 96)
    with pytest.raises(ValueError, match="--width applies to --architecture unet or fused"):
        width_options(replace(defaults, architecture="features"), 8)


@pytest.mark.parametrize("field", ["seed", "size"])
def test_image_benchmark_seed_and_size_reach_both_models_as_the_cli_flags_do(field):
    from vigil.benchmarks.image_runs import seed_options, size_options
    from vigil.training import feature_model
    from vigil.training.train_image import ImageTrainingOptions

    helper, value = {"seed": (seed_options, 2), "size": (size_options, 192)}[field]
    defaults = ImageTrainingOptions()
    assert helper(defaults, None) is defaults
    applied = helper(defaults, value)
    assert (getattr(applied.model, field), getattr(applied.features, field)) == (value, value)
    assert applied.architecture == defaults.architecture
    if field == "size":  # a size the backbone cannot take is named before any work
        assert feature_model.size_problem(applied.features) is None
        assert "`size` must be a multiple of 16" in feature_model.size_problem(
            size_options(defaults, 200).features)


def test_the_held_out_split_follows_the_seed_of_the_model_that_is_trained():
    from dataclasses import replace

    from vigil.training import feature_model
    from vigil.training.image_model import ImageModelOptions
    from vigil.training.train_image import ImageTrainingOptions

    options = ImageTrainingOptions(model=ImageModelOptions(seed=1),
                                   features=feature_model.FeatureModelOptions(seed=7))
    assert replace(options, architecture="features").seed == 7
    assert replace(options, architecture="unet").seed == 1
    assert replace(options, architecture="fused").seed == 1


def test_a_unet_size_given_to_the_feature_model_is_refused_not_ignored(tmp_path):
    from vigil.training import feature_model
    from vigil.training.image_model import ImageModelOptions
    from vigil.training.train_image import ImageTrainingOptions, train_image

    options = ImageTrainingOptions(architecture="features", model=ImageModelOptions(size=128))
    with pytest.raises(ValueError, match=r"takes its input size from `features.size` \(256\); "
                                         r"`model.size` \(128\) is the U-Net's"):
        train_image(tmp_path, tmp_path / "m.keras", options, verbose=0)
    assert feature_model.FeatureModelOptions().size == 256
    assert not (tmp_path / "m.keras").exists()


def test_training_image_counts_and_shapes_are_said(tmp_path, caplog):
    from pathlib import Path

    from vigil.training.train_image import ImageTrainingOptions, train_image, typical_aspect

    folder = tmp_path / "nine"
    folder.mkdir()
    for i in range(9):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32), 100 + i, np.uint8))
    with pytest.raises(ValueError, match=r"at least 10 normal images \(8 to train on, 2 held out "
                                         r"to set the threshold\); found 9"):
        train_image(folder, tmp_path / "m.keras", ImageTrainingOptions())
    # one strip among square tiles is named, and left out of the recorded shape
    paths = [Path(f"{i}.png") for i in range(6)]
    with caplog.at_level("WARNING", logger="vigil"):
        assert typical_aspect([1.0, 0.9, 1.1, 1.0, 15.0, 1.05], paths) == [0.9, 1.1]
    assert "1 of the 6 training images are far from the others' shape (width / height 15.00, " \
           "4.png, against a median of 1.05)" in caplog.text


def test_two_shapes_among_the_training_images_keep_the_whole_range(caplog):
    from pathlib import Path

    from vigil.runtime.camera.frames import is_gray_picture
    from vigil.training.train_image import typical_aspect

    paths = [Path(f"{i}.png") for i in range(8)]
    with caplog.at_level("WARNING", logger="vigil"):
        assert typical_aspect([1.0] * 4 + [4.0] * 4, paths) == [1.0, 4.0]  # it raised before
    assert "shapes far apart (width / height 1.00 to 4.00)" in caplog.text
    # colour only in wires thinner than the run-time sample's step: training sees it
    wired = np.full((64, 64, 3), 120, np.uint8)
    wired[:, 8:12] = (0, 0, 255)
    assert is_gray_picture(wired) and not is_gray_picture(wired, step=1)


def test_an_image_threshold_that_rejects_many_held_out_normal_images_is_warned_of():
    """An F1 threshold fitted where defects were 70 of 92 validation images rejected 10 of the
    22 good ones (and 58 % of unseen good tiles) without a word."""
    import numpy as np

    from vigil.runtime.core.spec import Threshold
    from vigil.training.image_thresholds import image_validation_check

    rng = np.random.default_rng(0)
    normal, defects = rng.normal(30, 1, 22), rng.normal(33, 1, 70)
    scores = np.concatenate([normal, defects])
    labels = np.repeat([False, True], [22, 70])
    check, warnings = image_validation_check(scores, labels, Threshold(30.0, "f1"), "f1")
    assert check["normal_images"] == 22 and check["normal_rejected"] == int((normal > 30).sum())
    assert check["defect_images"] == 70 and 0.9 < check["auroc"] <= 1.0
    assert len(warnings) == 1 and "held-out normal images" in warnings[0]
    assert "70 of 92" in warnings[0] and "--threshold-method gaussian" in warnings[0]
    strict, warnings = image_validation_check(scores, labels, Threshold(34.0, "gaussian"),
                                              "gaussian")
    assert strict["normal_rejected"] == 0 and warnings == []
    _, warnings = image_validation_check(scores, labels, Threshold(30.0, "gaussian"), "gaussian",
                                         k=3.0)
    assert "train with a larger --k (now 3)" in warnings[0] and "gaussian (the default)" \
        not in warnings[0]
    # one unusual good image, under the share warned of: named, with the others' highest score
    normal = np.concatenate([rng.normal(25, 1, 21), [36.2]])
    scores = np.concatenate([normal, defects])
    names = [f"good/{i}.png" for i in range(22)] + [f"bad/{i}.png" for i in range(70)]
    check, warnings = image_validation_check(scores, labels, Threshold(33.6, "gaussian"),
                                             "gaussian", k=3.0, names=names)
    assert check["normal_rejected"] == 1 and len(warnings) == 1
    assert warnings[0].startswith("1 held-out normal image(s) score above the image threshold "
                                  "33.6 (gaussian) fitted on them: good/21.png (36.2); the other "
                                  f"held-out normal images score at most {normal[:21].max():.4g}")


def test_digests_of_another_form_are_unknown_not_zero():
    """Review dC: an artifact of the day's first form (the files' bytes) counted 0 images
    trained on, where the test images were its training images."""
    from pathlib import Path
    from types import SimpleNamespace

    from vigil.runtime.camera.evaluation import _seen_in_training
    from vigil.runtime.camera.datasets import LabeledImage

    items = [LabeledImage(Path("a.png"), False, "good")]
    old = SimpleNamespace(spec=SimpleNamespace(training={"files_sha256": {
        "count": 1, "sha256_of_sha256s": "0" * 64, "trained": ["1" * 16], "held_out": []}}))
    assert _seen_in_training(old, items, ["1" * 16]) is None
    old.spec.training["files_sha256"]["digests"] = "pixels"
    assert len(_seen_in_training(old, items, ["1" * 16])["trained"]) == 1


def test_inspect_names_an_image_model_s_architecture(image_artifacts, capsys):
    """U-Net and feature-model artifacts looked alike in `vigil inspect` (a review), where the
    default changed from one to the other."""
    from vigil import cli

    assert cli.main(["inspect", str(image_artifacts.int8)]) == 0
    out = capsys.readouterr().out
    assert "model: unet" in out
    # the normal images held out to set the threshold are named beside those trained on (u1)
    training = runtime.load(image_artifacts.int8).spec.training
    assert (f"trained on: {training['images']} images (and {training['validation_normal']} "
            "normal ones held out to set the threshold)") in out


def test_a_nan_image_score_is_a_reject_in_the_validation_check():
    """The runtime rejects an image whose score is NaN (read as +inf); training's check counted
    such defects as missed (review d1), as the sensor check did before."""
    import numpy as np

    from vigil.runtime.core.spec import Threshold
    from vigil.training.image_thresholds import image_validation_check

    scores = np.r_[np.linspace(29.0, 31.0, 20), np.full(5, np.nan)]
    labels = np.repeat([False, True], [20, 5])
    check, _ = image_validation_check(scores, labels, Threshold(32.0, "gaussian"), "gaussian")
    assert check["defects_caught"] == 5 and check["recall"] == 1.0
    assert check["normal_rejected"] == 0
