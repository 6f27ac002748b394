"""Image evaluation with masks as real data sets hold them: some defect images without a mask,
masks named otherwise than their images, masks stored as class indices, a category holding only
its test split."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from image_fixtures import defect_frame, normal_frame
from vigil.cli import commands as cli

BOX = (16, 8, 24, 20)  # x, y, w, h of the white patch in defect frames


def write(path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def box_mask(value: int = 255) -> np.ndarray:
    mask = np.zeros((48, 64), np.uint8)
    x, y, w, h = BOX
    mask[y:y + h, x:x + w] = value
    return mask


def category(root, masked: bool = True, train: bool = True):
    """An MVTec AD category of 48 x 64 frames: 3 good and 3 'patch' test images with masks
    (when ``masked``), and a train/good folder of 2 images (empty unless ``train``)."""
    rng = np.random.default_rng(0)
    (root / "train" / "good").mkdir(parents=True)
    for i in range(2 if train else 0):
        write(root / "train" / "good" / f"{i:03d}.png", normal_frame(rng))
    for i in range(3):
        write(root / "test" / "good" / f"{i:03d}.png", normal_frame(rng))
        write(root / "test" / "patch" / f"{i:03d}.png", defect_frame(rng, box=BOX))
        if masked:
            write(root / "ground_truth" / "patch" / f"{i:03d}_mask.png", box_mask())
    return root


def evaluate(model, *arguments, capsys) -> tuple[int, dict, str]:
    code = cli.main(["eval", str(model), *map(str, arguments)])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else {}), captured.err


def test_defect_images_without_a_mask_stay_out_of_the_pixel_metrics(tiny_image_artifact,
                                                                    tmp_path, capsys):
    root = category(tmp_path / "parts")
    code, masked, _ = evaluate(tiny_image_artifact, root, capsys=capsys)
    assert code == 0 and masked["pixel_auroc"] > 0.99
    rng = np.random.default_rng(1)  # a second defect type, found by the model, with no masks
    for i in range(3):
        write(root / "test" / "dent" / f"{i:03d}.png", defect_frame(rng, box=BOX))
    code, result, error = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r.json",
                                   capsys=capsys)
    assert code == 0 and result["pixel_auroc"] == masked["pixel_auroc"]
    assert result["pro"] == masked["pro"]
    assert "3 defect image(s) have no mask and are left out of pixel_auroc and pro" in error
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["pixel_unmasked_defects"] == 3 and "are left out of the pixel" in written["note"]


def test_masks_that_match_no_image_are_refused_with_the_names_looked_for(tiny_image_artifact,
                                                                        tmp_path, capsys):
    rng = np.random.default_rng(2)
    for i in range(3):
        write(tmp_path / "good" / f"img{i:03d}.png", normal_frame(rng))
        write(tmp_path / "bad" / f"img{i:03d}.png", defect_frame(rng, box=BOX))
        write(tmp_path / "masks" / f"{i:03d}.png", box_mask())  # not named after the images
    code, _, error = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                              tmp_path / "bad", "--masks", tmp_path / "masks", capsys=capsys)
    assert code == cli.EXIT_INPUT
    assert "holds a mask for none of the 3 defect images" in error
    assert "it needs img000.png or img000_mask.png" in error


def test_masks_stored_as_class_indices_mark_their_pixels(tiny_image_artifact, tmp_path, capsys):
    """Labelling tools write 0/1 masks; 0/255 masks (MVTec AD's) and 0/1 masks give the same
    pixel metrics."""
    rng = np.random.default_rng(3)
    for i in range(3):
        write(tmp_path / "good" / f"{i}.png", normal_frame(rng))
        write(tmp_path / "bad" / f"{i}.png", defect_frame(rng, box=BOX))
        write(tmp_path / "masks255" / f"{i}.png", box_mask(255))
        write(tmp_path / "masks01" / f"{i}.png", box_mask(1))
    results = [evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous", tmp_path / "bad",
                        "--masks", tmp_path / masks, capsys=capsys) for masks in
               ("masks255", "masks01")]
    assert [code for code, _, _ in results] == [0, 0]
    assert results[0][1]["pixel_auroc"] > 0.99
    assert results[1][1]["pixel_auroc"] == results[0][1]["pixel_auroc"]


def test_a_category_with_only_its_test_split_evaluates(tiny_image_artifact, tmp_path, capsys):
    code, result, _ = evaluate(tiny_image_artifact, category(tmp_path / "copy", train=False),
                               capsys=capsys)
    assert code == 0 and result["image_auroc"] == 1.0
    empty = tmp_path / "empty"
    (empty / "train" / "good").mkdir(parents=True)
    (empty / "test").mkdir()
    code, _, error = evaluate(tiny_image_artifact, empty, capsys=capsys)
    assert code == cli.EXIT_INPUT
    assert "is an MVTec AD category with no images under test/" in error
    assert "`items`" not in error


def test_a_category_whose_normal_test_folder_is_not_named_good_is_refused(tiny_image_artifact,
                                                                          tmp_path, capsys):
    """test/normal/ is read as a defect type: every test image a defect, and AUPRC and best F1
    a perfect 1.0 over one class. Refused, naming the folder to rename."""
    root = category(tmp_path / "cat")
    (root / "test" / "good").rename(root / "test" / "normal")
    code, _, error = evaluate(tiny_image_artifact, root, "--json", tmp_path / "m.json",
                              capsys=capsys)
    assert code == cli.EXIT_INPUT and not (tmp_path / "m.json").exists()
    assert "without normal test images" in error and "['normal', 'patch']" in error
    assert "rename the normal folder to test/good" in error
    (root / "test" / "good").mkdir()  # there, but empty
    code, _, error = evaluate(tiny_image_artifact, root, capsys=capsys)
    assert code == cli.EXIT_INPUT and "its test/good/ holds no images" in error
    assert "--normal DIR" in error


@pytest.mark.parametrize("value,dtype", [(255, np.uint8), (200, np.uint8), (100, np.uint8),
                                         (1, np.uint8), (3, np.uint8), (1, np.uint16),
                                         (255, np.uint16), (65535, np.uint16)])
def test_read_mask_levels(tmp_path, value, dtype):
    """A mask's one marked value is a defect at any bit depth: class indices (1, 3), drawn 8-bit
    (100, 200, 255) and 16-bit (1, 255, 65535) masks alike."""
    from vigil.runtime.camera.datasets import read_mask

    path = tmp_path / "m.png"
    write(path, box_mask(1).astype(dtype) * value)
    mask = read_mask(path, (48, 64))
    x, y, w, h = BOX
    assert mask[y:y + h, x:x + w].all() and mask.sum() == w * h


def test_a_drawn_mask_keeps_its_upper_half_and_a_turned_one_is_refused(tmp_path):
    from vigil.runtime.camera.datasets import read_mask

    path = tmp_path / "m.png"
    drawn = box_mask(255)
    drawn[0, 0] = 90  # a JPEG's or an anti-aliased edge's faint pixel is no defect
    write(path, drawn)
    assert not read_mask(path, (48, 64))[0, 0] and read_mask(path, (48, 64)).sum() == (
        BOX[2] * BOX[3])
    write(path, cv2.resize(box_mask(), (32, 24), interpolation=cv2.INTER_NEAREST))
    assert read_mask(path, (48, 64)).shape == (48, 64)  # half the size, its aspect: scaled up
    write(path, box_mask().T)
    with pytest.raises(ValueError, match=r"is 48x64 px but its image is 64x48, another aspect"):
        read_mask(path, (48, 64))


def test_defect_images_whose_mask_marks_nothing_are_named_and_left_out(tiny_image_artifact,
                                                                      tmp_path, capsys):
    root = category(tmp_path / "parts")
    code, masked, _ = evaluate(tiny_image_artifact, root, capsys=capsys)
    write(root / "ground_truth" / "patch" / "001_mask.png", np.zeros((48, 64), np.uint8))
    output = tmp_path / "r.json"
    code, _, error = evaluate(tiny_image_artifact, root, "--json", output, capsys=capsys)
    result = json.loads(output.read_text())
    assert code == 0 and result["pixel_blank_mask_defects"] == 1
    assert "1 defect image(s) have a mask that marks no pixel (the first: " in error
    assert "001_mask.png) are left out of them too" in result["note"]
    for i in (0, 2):
        write(root / "ground_truth" / "patch" / f"{i:03d}_mask.png", np.zeros((48, 64), np.uint8))
    code, _, error = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r2.json",
                              capsys=capsys)
    result = json.loads((tmp_path / "r2.json").read_text())
    assert code == 0 and result["pixel_auroc"] is None
    assert "no defect pixel is marked in any mask" in result["note"]


@pytest.mark.parametrize("inside", ["test/good", "ground_truth/patch/report", "train"])
def test_a_report_inside_the_category_it_reads_is_refused(tiny_image_artifact, tmp_path, capsys,
                                                         inside):
    root = category(tmp_path / "parts")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, _, error = evaluate(tiny_image_artifact, root, "--report", root / inside,
                              capsys=capsys)
    assert code == cli.EXIT_INPUT
    assert "which this run reads as an MVTec AD category" in error
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def plain_defect_folders(root, kinds=("patch", "dent")):
    """good/ and one folder per defect kind, each holding 000.png-002.png (names reused across
    folders, as MVTec AD's test folders reuse them), and masks/<kind>/NNN_mask.png. Each kind's
    patch lies elsewhere, so a mask read for the wrong folder marks the wrong pixels."""
    rng = np.random.default_rng(4)
    boxes = {kind: (8 + 24 * n, 8 + 12 * n, 16, 12) for n, kind in enumerate(kinds)}
    for i in range(3):
        write(root / "good" / f"{i:03d}.png", normal_frame(rng))
        for kind, (x, y, w, h) in boxes.items():
            write(root / kind / f"{i:03d}.png", defect_frame(rng, box=(x, y, w, h)))
            mask = np.zeros((48, 64), np.uint8)
            mask[y:y + h, x:x + w] = 255
            write(root / "masks" / kind / f"{i:03d}_mask.png", mask)
    return root


def test_each_defect_folder_takes_its_own_masks(tiny_image_artifact, tmp_path, capsys):
    """One --masks per --anomalous, or one folder with a subfolder per defect folder: the same
    figures; one flat folder shared by folders that reuse names is refused, not guessed."""
    root = plain_defect_folders(tmp_path / "set")
    paired = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                      "--masks", root / "masks" / "patch", "--anomalous", root / "dent",
                      "--masks", root / "masks" / "dent", capsys=capsys)
    nested = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                      "--anomalous", root / "dent", "--masks", root / "masks", capsys=capsys)
    assert paired[0] == nested[0] == 0
    assert paired[1]["pixel_auroc"] > 0.99 and nested[1]["pixel_auroc"] == paired[1]["pixel_auroc"]
    code, _, error = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                              "--anomalous", root / "dent", "--masks", root / "masks" / "patch",
                              capsys=capsys)
    assert code == cli.EXIT_INPUT
    assert "would both take the mask" in error and "one --masks per --anomalous" in error
    code, _, error = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                              "--masks", root / "masks" / "patch", "--masks",
                              root / "masks" / "dent", capsys=capsys)
    assert code == cli.EXIT_INPUT and "`--masks` is given 2 times for 1 anomalous folder" in error
    code, _, error = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                              "--anomalous", root / "dent", "--masks", root / "masks" / "dent",
                              "--masks", root / "masks" / "patch", capsys=capsys)  # swapped
    assert code == cli.EXIT_INPUT and "is paired with the anomalous folder 'patch'" in error
    (root / "elsewhere").mkdir()
    code, _, error = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                              "--masks", root / "masks" / "patch", "--anomalous", root / "dent",
                              "--masks", root / "elsewhere", capsys=capsys)
    assert code == cli.EXIT_INPUT and "holds a mask for none of the 3 images of" in error


def test_masks_named_name_mask_beside_png_images_are_used(tiny_image_artifact, tmp_path, capsys):
    root = plain_defect_folders(tmp_path / "set", kinds=("patch",))
    for mask in (root / "masks" / "patch").iterdir():
        mask.rename(root / "patch" / mask.name)  # 000.png beside 000_mask.png
    code, result, _ = evaluate(tiny_image_artifact, root / "good", "--anomalous", root / "patch",
                               "--json", tmp_path / "r.json", capsys=capsys)
    assert code == 0 and result["pixel_auroc"] > 0.99
    assert json.loads((tmp_path / "r.json").read_text())["images"] == 6  # the masks not scored


def test_unreadable_test_images_are_named_before_anything_is_scored(tiny_image_artifact,
                                                                    tmp_path, capsys):
    root = category(tmp_path / "parts")
    good = root / "test" / "good" / "001.png"
    good.write_bytes(good.read_bytes()[:200])
    mask = root / "ground_truth" / "patch" / "002_mask.png"
    mask.write_bytes(b"not a png")
    output = tmp_path / "r.json"
    code, _, error = evaluate(tiny_image_artifact, root, "--json", output, capsys=capsys)
    assert code == cli.EXIT_INPUT and not output.exists()
    assert "of the 6 test images (and their masks), 2 cannot be read, so nothing was scored" in error
    assert "001.png" in error and "002_mask.png" in error and "move them out" in error
    mask.write_bytes(cv2.imencode(".png", box_mask().T)[1].tobytes())  # a mask of another shape
    code, _, error = evaluate(tiny_image_artifact, root, "--json", output, capsys=capsys)
    assert code == cli.EXIT_INPUT and "002_mask.png' is 48x64 px but its image is 64x48" in error
    # read, but drawn on another picture: said so, not "cannot be read"
    assert "1 cannot be read and 1 has a mask that does not fit its image" in error


def test_pro_integrates_the_overlap_curve_up_to_its_false_positive_limit():
    """A map that marks each defect region wholly before any normal pixel: its PRO is 1 (the
    curve, 1 from FPR 0, taken up to 0.3 itself, not stopped at the last threshold below it)."""
    from vigil.runtime.camera.evaluation import PIXEL_BINS, _ProAccumulator

    edges = np.linspace(0.0, 2.0, PIXEL_BINS + 1)

    def add(pro, heat, mask):
        bins = np.searchsorted(edges, heat.ravel(), side="right")
        pro.add(bins, mask, np.bincount(bins[~mask.ravel()], minlength=PIXEL_BINS + 2))

    rng = np.random.default_rng(0)
    pro = _ProAccumulator()
    for _ in range(3):
        heat = rng.uniform(0.0, 0.5, (64, 64)).astype(np.float32)
        mask = np.zeros((64, 64), bool)
        mask[10:20, 30:44] = True
        heat[mask] = 1.0
        add(pro, heat, mask)
    assert 0.997 < pro.value() <= 1.0  # 0.9955 when the curve stopped short of FPR 0.3


def test_pro_counts_every_region_at_the_images_own_resolution():
    """PRO was taken on maps and masks shrunk to 256 px: a small region vanished and the figure
    came out low (0.749 against 0.766 in a review's run). Now: at full size, against a direct
    computation from its definition; a speckled mask of many regions is counted in parts."""
    from vigil.runtime.camera import evaluation
    from vigil.runtime.camera.evaluation import PIXEL_BINS, PRO_MAX_FPR, _ProAccumulator

    rng = np.random.default_rng(4)
    edges = np.linspace(0.0, 1.0, PIXEL_BINS + 1)
    pro = _ProAccumulator()
    maps, masks = [], []
    for k in range(4):
        heat = rng.uniform(0.0, 0.6, (600, 900)).astype(np.float32)
        mask = np.zeros((600, 900), bool)
        if k:
            mask[100:104, 200:203] = True  # 12 px: gone at 256 px
            mask[300:420, 500:700] = True
            heat[mask] += rng.uniform(0.0, 0.4, int(mask.sum()))
        maps.append(heat)
        masks.append(mask)
        bins = np.searchsorted(edges, heat.ravel(), side="right")
        pro.add(bins, mask, np.bincount(bins[~mask.ravel()], minlength=PIXEL_BINS + 2))
    # the definition, directly: thresholds at every 1/2000 of the range
    thresholds = np.linspace(1.0, 0.0, 2001)
    negatives = np.concatenate([m[~k] for m, k in zip(maps, masks)])
    regions = [m[r] for m, k in zip(maps, masks) for r in _regions(k)]
    fpr = np.array([(negatives >= t).mean() for t in thresholds])
    overlap = np.array([np.mean([(r >= t).mean() for r in regions]) for t in thresholds])
    keep = fpr <= PRO_MAX_FPR
    expected = np.trapezoid(overlap[keep], fpr[keep]) / fpr[keep].max()
    assert abs(pro.value() - expected) < 0.003
    speckled = _ProAccumulator()
    dots = np.zeros((64, 64), bool)
    dots[::3, ::3] = True  # 484 regions of one pixel each
    heat = np.where(dots, 0.9, 0.1).astype(np.float32)
    bins = np.searchsorted(edges, heat.ravel(), side="right")
    speckled.add(bins, dots, np.bincount(bins[~dots.ravel()], minlength=PIXEL_BINS + 2))
    assert speckled.regions == 484 and evaluation.PRO_REGIONS_AT_ONCE < 484
    assert speckled.value() == pytest.approx(1.0, abs=1e-3)


def _regions(mask):
    count, labels = cv2.connectedComponents(mask.astype(np.uint8))
    return [labels == n for n in range(1, count)]


@pytest.mark.parametrize("image_suffix, mask_name", [(".jpg", "{stem}.png"),
                                                      (".JPG", "{stem}.PNG"),
                                                      (".png", "{stem}_mask.png")])
def test_an_mvtec_category_reads_masks_beside_its_test_images(tiny_image_artifact, tmp_path,
                                                              capsys, image_suffix, mask_name):
    """The magnetic-tile layout copied under test/<defect>/ (x.png beside x.jpg), or a camera's
    upper-case names: the masks were set aside as masks and never read (pixel metrics null,
    no word)."""
    root = category(tmp_path / "beside", masked=False)
    rng = np.random.default_rng(5)
    for i in range(3):
        (root / "test" / "patch" / f"{i:03d}.png").unlink()
        write(root / "test" / "patch" / f"{i:03d}{image_suffix}", defect_frame(rng, box=BOX))
        write(root / "test" / "patch" / mask_name.format(stem=f"{i:03d}"), box_mask())
    code, result, _ = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r.json",
                               capsys=capsys)
    assert code == 0 and result["pixel_auroc"] > 0.99
    assert json.loads((tmp_path / "r.json").read_text())["pixel_unmasked_defects"] == 0


def test_hidden_files_and_subfolders_of_a_category_are_passed_over_and_said(
        tiny_image_artifact, tmp_path, capsys):
    """macOS's ._NAME files stopped evaluation as corrupt images (vigil score passed over
    them); a test/<defect>/ subfolder was left out without a word."""
    root = category(tmp_path / "copied")
    (root / "test" / "patch" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    write(root / "test" / "patch" / "more" / "010.png", defect_frame(np.random.default_rng(6),
                                                                     box=BOX))
    code, result, error = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r.json",
                                   capsys=capsys)
    assert code == 0 and result["image_auroc"] == 1.0
    assert "1 hidden file(s)" in error and "._000.png" in error
    assert "the images in its subfolders (more) are not read" in error


def test_defects_without_any_mask_are_counted_and_noted_not_warned(tiny_image_artifact, tmp_path,
                                                                   capsys):
    root = category(tmp_path / "labels-only", masked=False)
    code, result, error = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r.json",
                                   capsys=capsys)
    written = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and result["pixel_auroc"] is None and written["pixel_unmasked_defects"] == 3
    assert "no defect image has a mask" in written["note"]
    assert "no defect image has a mask: image metrics only" in error
    assert "have no mask" not in error  # image labels only: nothing meant is missing


def test_defect_folders_of_the_same_name_stay_apart(tiny_image_artifact, tmp_path, capsys):
    """The magnetic tiles keep each defect in MT_<Defect>/Imgs: two such --anomalous folders
    were pooled as one defect type "Imgs"."""
    rng = np.random.default_rng(2)
    for i in range(3):
        write(tmp_path / "good" / f"{i:03d}.png", normal_frame(rng))
        write(tmp_path / "MT_Crack" / "Imgs" / f"c{i}.png", defect_frame(rng, box=BOX))
        write(tmp_path / "MT_Uneven" / "Imgs" / f"u{i}.png", defect_frame(rng, box=BOX))
    code, result, _ = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                               tmp_path / "MT_Crack" / "Imgs", "--anomalous",
                               tmp_path / "MT_Uneven" / "Imgs", "--json", tmp_path / "r.json",
                               capsys=capsys)
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0
    assert [(r["defect"], r["images"]) for r in result["per_defect"]] == [
        ("MT_Crack/Imgs", 3), ("MT_Uneven/Imgs", 3), ("good", 3)]
    # one such folder alone is named by its parent too, not "Imgs" (review hC, session 61)
    code, _, _ = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                          tmp_path / "MT_Crack" / "Imgs", "--json", tmp_path / "one.json",
                          capsys=capsys)
    result = json.loads((tmp_path / "one.json").read_text())
    assert [r["defect"] for r in result["per_defect"]] == ["MT_Crack/Imgs", "good"]


def test_a_plain_folder_that_keeps_some_images_in_test_good_is_still_a_plain_folder(
        tiny_image_artifact, tmp_path, capsys):
    """Its own images were dropped when test/good made it read as a test-only category, and
    the folder given again as --anomalous was no longer refused (review hF, session 61)."""
    rng = np.random.default_rng(4)
    for i in range(4):
        write(tmp_path / "line" / f"{i:03d}.png", normal_frame(rng))
        write(tmp_path / "line" / "test" / "good" / f"t{i}.png", normal_frame(rng))
        write(tmp_path / "defects" / f"d{i}.png", defect_frame(rng, box=BOX))
    code, _, _ = evaluate(tiny_image_artifact, tmp_path / "line", "--anomalous",
                          tmp_path / "defects", "--json", tmp_path / "r.json", capsys=capsys)
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and {r["defect"]: r["images"] for r in result["per_defect"]} == {
        "defects": 4, "good": 4}
    code, _, err = evaluate(tiny_image_artifact, tmp_path / "line", "--anomalous",
                            tmp_path / "line", capsys=capsys)
    assert code == 2 and "is also given as normal images" in err
    code, _, err = evaluate(tiny_image_artifact, tmp_path / "line", capsys=capsys)
    assert code == 2 and "holds test/good/ as an MVTec AD category does, but also 4 image(s) " \
                         "of its own" in err  # normal images alone, or a category: unsaid


def test_masks_in_a_subfolder_named_as_a_generic_defect_folder_are_found(tiny_image_artifact,
                                                                          tmp_path, capsys):
    """MT_Blowhole/Imgs is named by its parent since session 61; its masks in masks/Imgs/, as the
    README's masks/<defect folder>/ says, were then not found (review hF)."""
    rng = np.random.default_rng(5)
    for i in range(3):
        write(tmp_path / "good" / f"{i:03d}.png", normal_frame(rng))
        write(tmp_path / "MT_Blowhole" / "Imgs" / f"b{i}.jpg", defect_frame(rng, box=BOX))
        mask = np.zeros((48, 64), np.uint8)
        mask[BOX[1]:BOX[1] + BOX[3], BOX[0]:BOX[0] + BOX[2]] = 255
        write(tmp_path / "masks" / "Imgs" / f"b{i}.png", mask)
    code, _, _ = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                          tmp_path / "MT_Blowhole" / "Imgs", "--masks", tmp_path / "masks",
                          "--json", tmp_path / "r.json", capsys=capsys)
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and result["pixel_auroc"] is not None


def test_a_category_of_test_images_alone_is_evaluated(tiny_image_artifact, tmp_path, capsys):
    """test/ and ground_truth/ without train/good were read as a folder of normal images and
    refused with a message about --anomalous (review hC, session 61)."""
    rng = np.random.default_rng(3)
    (tmp_path / "cat" / "train").mkdir(parents=True)  # empty, or without good/ (review hG)
    for i in range(3):
        write(tmp_path / "cat" / "test" / "good" / f"{i:03d}.png", normal_frame(rng))
        write(tmp_path / "cat" / "test" / "crack" / f"{i:03d}.png", defect_frame(rng, box=BOX))
    code, result, _ = evaluate(tiny_image_artifact, tmp_path / "cat", "--json",
                               tmp_path / "r.json", capsys=capsys)
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert [(r["defect"], r["images"]) for r in result["per_defect"]] == [("crack", 3),
                                                                          ("good", 3)]


def test_a_folder_of_normal_images_alone_gives_its_false_alarms(tiny_image_artifact, tmp_path,
                                                                capsys):
    """A line's good parts alone were refused ("evaluation needs defect images too"), where a
    sensor's normal rows alone give their false alarm rate: the share rejected, how near the
    threshold the scores come and the threshold for 1 %, with the detection metrics null."""
    rng = np.random.default_rng(4)
    for i in range(4):
        write(tmp_path / "good" / f"{i:03d}.png", normal_frame(rng))
    write(tmp_path / "good" / "004.png", defect_frame(rng, box=BOX))  # a part that looks bad
    code, printed, error = evaluate(tiny_image_artifact, tmp_path / "good", "--json",
                                    tmp_path / "r.json", "--report", tmp_path / "report",
                                    capsys=capsys)
    assert code == 0, error
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["images"] == 5 and result["anomalous"] == 0
    assert result["fp"] == 1 and result["tn"] == 4 and printed["false_positive_rate"] == 0.2
    for key in ("image_auroc", "image_auprc", "recall", "f1", "best_f1", "best_f1_threshold",
                "recall_at_1pct_false_positives"):
        assert result[key] is None, key
    assert result["precision"] == 0.0  # one image flagged, none of them a defect
    assert result["normal_scores"]["max"] == max(e["score"] for e in result["false_alarm_images"])
    assert result["normal_scores"]["median"] < result["threshold"] < result["normal_scores"]["max"]
    assert result["threshold_at_1pct_false_positives"] == result["normal_scores"]["max"]
    assert result["false_positive_rate_at_it"] == 0.0
    assert "none of the 5 images is a defect image" in error and "--anomalous DIR" in error
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Normal images" in report and "of which 1 raised a false alarm" in report
    assert "No defect image was given" in report and "| false_positive_rate | 0.200 |" in report
    # an artifact that records no image it trained on (this one: no training record) says so
    assert result["images_trained_on"] is None and "records no digest of the images" in error


def test_an_image_in_both_the_normal_and_the_defect_folder_is_said(tiny_image_artifact,
                                                                    tmp_path, capsys):
    """Review u1: a good image linked into the defect folder was scored both ways (image AUROC
    0.606) without a word; the same pixels saved under another name count too."""
    rng = np.random.default_rng(7)
    for i in range(3):
        write(tmp_path / "good" / f"{i:03d}.png", normal_frame(rng))
    write(tmp_path / "bad" / "100.png", defect_frame(rng, box=BOX))
    (tmp_path / "bad" / "x.png").symlink_to(tmp_path / "good" / "001.png")
    code, _, error = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                              tmp_path / "bad", "--json", tmp_path / "r.json", "--report",
                              tmp_path / "report", capsys=capsys)
    assert code == 0, error
    assert json.loads((tmp_path / "r.json").read_text())["images_in_both_sets"] == 1
    assert "1 defect image(s) are also among the normal images" in (
        tmp_path / "report" / "report.md").read_text()
    assert "1 defect image(s) are also among the normal images" in error
    assert "x.png, as " in error and "001.png" in error
    # the same pixels saved again under another name and format count as well
    (tmp_path / "bad" / "x.png").unlink()
    cv2.imwrite(str(tmp_path / "bad" / "y.bmp"), cv2.imread(str(tmp_path / "good" / "002.png")))
    code, _, error = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                              tmp_path / "bad", "--json", tmp_path / "r.json", capsys=capsys)
    assert json.loads((tmp_path / "r.json").read_text())["images_in_both_sets"] == 1
    assert "y.bmp, as " in error and "002.png" in error
    (tmp_path / "bad" / "y.bmp").unlink()
    code, _, error = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                              tmp_path / "bad", "--json", tmp_path / "r.json", capsys=capsys)
    assert json.loads((tmp_path / "r.json").read_text())["images_in_both_sets"] == 0
    assert "among the normal images" not in error


def test_normal_images_alone_refuse_masks(tiny_image_artifact, tmp_path, capsys):
    rng = np.random.default_rng(5)
    write(tmp_path / "good" / "000.png", normal_frame(rng))
    write(tmp_path / "masks" / "000.png", box_mask())
    code, _, error = evaluate(tiny_image_artifact, tmp_path / "good", "--masks",
                              tmp_path / "masks", capsys=capsys)
    assert code == 2 and "is given without defect images" in error and "--anomalous" in error
    # an MVTec AD category's masks are its own: --masks alone is refused there too
    root = category(tmp_path / "parts")
    code, _, error = evaluate(tiny_image_artifact, root, "--masks", tmp_path / "masks",
                              capsys=capsys)
    assert code == 2 and "is given without defect images" in error
    (tmp_path / "empty").mkdir()
    code, _, error = evaluate(tiny_image_artifact, tmp_path / "empty", capsys=capsys)
    assert code == 2 and "it holds no image files: vigil eval MODEL NORMAL_DIR [" in error


def test_the_best_f1_threshold_comes_with_its_rates_and_a_line_operating_point():
    """The report recommended a best-F1 threshold that rejected 21 of 40 good images, unsaid."""
    from vigil.runtime.camera.evaluation import _operating_points
    from vigil.runtime.core.report import best_threshold_lines

    scores = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 4.5, 6.5, 9.5, 11, 12])
    labels = np.array([False] * 10 + [True] * 5)
    points = _operating_points(scores, labels, 4.0)
    assert points["best_f1_recall"] == 1.0 and points["best_f1_false_positive_rate"] == 0.6
    assert points["threshold_at_1pct_false_positives"] == 10.0  # no normal image above it
    assert points["false_positive_rate_at_it"] == 0.0
    assert points["recall_at_1pct_false_positives"] == 0.4
    result = {"threshold": 11.5, "f1": 0.5, "best_f1": 0.6, "best_f1_threshold": 4.0, **points}
    text = "\n".join(best_threshold_lines(result, "vigil eval M D"))
    assert "rejects 60 % of the normal ones" in text and "threshold 10;" in text


def test_eval_measures_the_boxes_score_draws_and_takes_a_pixel_threshold(tiny_image_artifact,
                                                                          tmp_path, capsys):
    """Eval gave only threshold-free pixel metrics while `vigil score` draws boxes at the pixel
    threshold (a review: 19 of 47 boxes on no defect, unsaid), and took no --pixel-threshold."""
    root = category(tmp_path / "parts")
    code, printed, _ = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r.json",
                                capsys=capsys)
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and printed["box_hit_rate"] == result["box_hit_rate"] == 1.0
    assert result["boxes"] >= 3 and 0 < result["box_precision"] <= 1
    assert result["pixel_recall_at_pixel_threshold"] > 0.5
    assert result["pixel_false_positive_rate_at_pixel_threshold"] < 0.05
    # where, beyond a box touching the defect (review hC, session 61): its centre, the peak,
    # the share of it boxed and the boxes' area over it
    assert result["box_centre_hit_rate"] == result["box_peak_hit_rate"] == 1.0
    assert 0.5 < result["box_defect_coverage"] <= 1.0 and result["box_area_over_defect"] >= 0.5
    code, _, _ = evaluate(tiny_image_artifact, root, "--pixel-threshold", "1e30", "--json",
                          tmp_path / "high.json", capsys=capsys)
    high = json.loads((tmp_path / "high.json").read_text())
    assert code == 0 and high["pixel_recall_at_pixel_threshold"] == 0.0
    assert high["box_hit_rate"] == 1.0  # a reject is still boxed around its map's peak


def test_a_masks_folder_inside_its_defect_folder_is_not_warned_of_as_unread(
        tiny_image_artifact, tmp_path, capsys):
    rng = np.random.default_rng(2)
    for i in range(3):
        write(tmp_path / "good" / f"{i}.png", normal_frame(rng))
        write(tmp_path / "patch" / f"{i}.png", defect_frame(rng, box=BOX))
        write(tmp_path / "patch" / "masks" / f"{i}.png", box_mask())
    code, result, err = evaluate(tiny_image_artifact, tmp_path / "good", "--anomalous",
                                 tmp_path / "patch", "--masks", tmp_path / "patch" / "masks",
                                 capsys=capsys)
    assert code == 0 and result["pixel_auroc"] > 0.99
    assert "are not read" not in err  # they are read, as masks


@pytest.mark.parametrize("mask_name", ["{stem}_mask.bmp", "{stem}_mask.tif", "{stem}_mask.TIFF"])
def test_masks_of_other_image_formats_in_ground_truth_are_read(tiny_image_artifact, tmp_path,
                                                               capsys, mask_name):
    """Masks in ground_truth/<defect>/ as BMP or TIFF were passed over with an INFO line, the
    pixel metrics null, though the same folder given with --masks was refused by name (a
    review)."""
    root = category(tmp_path / "tif", masked=False)
    for i in range(3):
        write(root / "ground_truth" / "patch" / mask_name.format(stem=f"{i:03d}"), box_mask())
    code, result, error = evaluate(tiny_image_artifact, root, "--json", tmp_path / "r.json",
                                   capsys=capsys)
    assert code == 0 and result["pixel_auroc"] > 0.99
    assert json.loads((tmp_path / "r.json").read_text())["pixel_unmasked_defects"] == 0
    assert "the mask of no image" not in error


def test_masks_named_after_no_test_image_are_said(tiny_image_artifact, tmp_path, capsys):
    root = category(tmp_path / "gt", masked=False)
    for i in range(3):
        write(root / "ground_truth" / "patch" / f"{i:03d}_label.png", box_mask())
    code, result, error = evaluate(tiny_image_artifact, root, capsys=capsys)
    assert code == 0 and result["pixel_auroc"] is None
    assert "3 file(s) in it are the mask of no image of test/patch (e.g. 000_label.png)" in error
    assert "NAME.png or NAME_mask.png" in error


def test_normal_images_in_a_defect_folders_subfolder_are_not_advised_up(tiny_image_artifact,
                                                                        tmp_path, capsys):
    """"move them up into it" for test/crack/good/ would have labeled normal images as cracks
    (a review)."""
    root = category(tmp_path / "nested")
    write(root / "test" / "patch" / "good" / "010.png", normal_frame(np.random.default_rng(7)))
    code, _, error = evaluate(tiny_image_artifact, root, capsys=capsys)
    assert code == 0 and "normal images belong in test/good/, not in a defect's folder" in error
    assert "move them up" not in error


def test_a_copy_of_an_image_beside_the_masks_is_not_its_mask(tiny_image_artifact, tmp_path,
                                                              capsys):
    """Labelling tools export each image's copy beside the masks: NAME.jpg in --masks was read
    as NAME's mask once other formats were read (review d2: pixel AUROC 1.0 -> 0.68, no word)."""
    root = category(tmp_path / "export")
    masks = tmp_path / "masks"
    for i in range(3):
        image = cv2.imread(str(root / "test" / "patch" / f"{i:03d}.png"))
        write(root / "test" / "patch" / f"{i:03d}.png", image)
        write(masks / f"{i:03d}.jpg", image)  # the copy
        if i < 2:
            write(masks / f"{i:03d}.png", box_mask())
    code, result, error = evaluate(tiny_image_artifact, root / "test" / "good", "--anomalous",
                                   root / "test" / "patch", "--masks", masks, capsys=capsys)
    assert code == 0 and result["pixel_auroc"] > 0.99
    assert "1 defect image(s) have no mask" in error


def test_folders_named_as_normal_ones_are_said_in_a_category(tiny_image_artifact, tmp_path,
                                                             capsys):
    """test/ok/ of normal images was read as a defect type without a word, and defect images
    under test/good/bad/ were advised up into good/ (review d2)."""
    root = category(tmp_path / "names")
    rng = np.random.default_rng(8)
    write(root / "test" / "ok" / "000.png", normal_frame(rng))
    write(root / "test" / "good" / "bad" / "000.png", defect_frame(rng, box=BOX))
    code, _, error = evaluate(tiny_image_artifact, root, capsys=capsys)
    assert code == 0 and "is read as a defect type, 'ok': only test/good/ holds normal" in error
    assert "move the normal ones up into it" in error and "never in a good/ folder" in error
