"""Reports and pictures for the people on the line: terms defined, confusion counts, episodes and
mistaken images listed, a best-F1 threshold whose command reproduces it, no blank cells; camera
evaluation on the plain folder forms of `vigil train image`; overlays a person reads at a glance."""

from __future__ import annotations

import json
import re
import shutil

import cv2
import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.runtime.camera.frames import overlay
from vigil.runtime.core import metrics
from vigil.runtime.core.report import TERMS
from vigil.runtime.sensor.alarms import AlarmFilter, consecutive_alarms


def _table_cells(markdown: str) -> list[str]:
    cells = []
    for line in markdown.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            cells += [c.strip() for c in line.strip().strip("|").split("|")]
    return cells


def _threshold_command(markdown: str) -> tuple[str, float]:
    match = re.search(r"^    (vigil eval .*) --threshold (\S+)$", markdown, re.MULTILINE)
    assert match, "the report gives no `vigil eval ... --threshold` command"
    return match.group(1), float(match.group(2))


def _assert_readable(markdown: str, metric_keys) -> None:
    cells = _table_cells(markdown)
    assert cells and all(cells), "a table has a blank cell"
    assert not {"nan", "None", "null"} & set(cells)
    glossary = markdown[markdown.index("## Terms"):]
    for key in metric_keys:
        assert f"**{key}**: {TERMS[key]}" in glossary, key


# --- sensor -------------------------------------------------------------------------------------

def test_sensor_report_lists_episodes_counts_and_a_reproducible_best_threshold(
        sensor_artifacts, tmp_path, capsys):
    model, data = str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv)
    report = tmp_path / "report"
    assert cli.main(["eval", model, data, "--json", str(tmp_path / "m.json"),
                     "--report", str(report)]) == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "m.json").read_text())
    text = (report / "report.md").read_text()
    _assert_readable(text, ("precision", "recall", "f1", "event_f1", "auroc", "auprc",
                            "point_adjusted_f1", "far", "mar", "tp", "fp", "fn", "tn"))
    assert (f"| alarm | {result['tp']} (TP) | {result['fp']} (FP) |" in text
            and f"| no alarm | {result['fn']} (FN) | {result['tn']} (TN) |" in text)
    # the decision rule names every part of the default alarm rule
    assert result["likelihood_level_warmup"] == 1000
    assert ("by the stream's long-run level, the mean of the likelihood's means once 1000 are "
            "learned" in text and "(the anomaly likelihood)" in text)

    episodes = result["files"][0]["episodes"]
    assert len(episodes) == result["files"][0]["alarm_runs"] > 0
    features = runtime.load(model).features
    for e in episodes:
        assert e["top_feature"] in features and e["rows"] > 0
        assert f"| test.csv | {e['start_row']} | {e['start_time']} | {e['rows']} |" in text
    assert sum(not e["labeled"] for e in episodes) == result["false_alarm_runs"]

    # The suggested command gives the F1 the report promised, through the whole alarm rule.
    command, threshold = _threshold_command(text)
    assert command == f"vigil eval {model} {data}"
    assert threshold == result["alarm_best_f1_threshold"]
    assert cli.main(["eval", model, data, "--threshold", str(threshold)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["f1"] == pytest.approx(result["alarm_best_f1"])
    assert result["alarm_best_f1"] >= result["f1"]


def test_files_whose_names_read_alike_keep_a_picture_each(sensor_artifacts, tmp_path, capsys):
    """a/b.csv and a_b.csv were both drawn to a_b.png: one picture lost, the other shown under
    both names (review r3)."""
    import shutil

    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    shutil.copy(sensor_artifacts.test_csv, folder / "a" / "b.csv")
    shutil.copy(sensor_artifacts.test_csv, folder / "a_b.csv")
    report = tmp_path / "report"
    assert cli.main(["eval", str(sensor_artifacts.fp32), str(folder), "--report",
                     str(report)]) == 0
    capsys.readouterr()
    text = (report / "report.md").read_text()
    assert "![a/b.csv](a_b.png)" in text and "![a_b.csv](a_b-2.png)" in text
    assert (report / "a_b.png").exists() and (report / "a_b-2.png").exists()


def test_a_report_offers_a_threshold_only_when_it_beats_the_one_in_use():
    from vigil.runtime.core.report import best_threshold_lines

    # the alarm rules in use (adaptive threshold, likelihood) can beat every threshold tried
    lines = best_threshold_lines({"threshold": 9.2, "f1": 0.314, "alarm_best_f1": 0.285,
                                  "alarm_best_f1_threshold": 3.97}, "vigil eval M D",
                                 "alarm_best_f1")
    assert lines[0] == ("At the threshold in use (9.2) F1 is 0.314; no other threshold tried does "
                        "better on this data.")
    assert not any("--threshold" in line for line in lines)
    lines = best_threshold_lines({"threshold": 9.2, "f1": 0.314, "best_f1": 0.5,
                                  "best_f1_threshold": 3.97}, "vigil eval M D")
    assert "the best F1 on this data is 0.500, at threshold 3.97." in lines[0]
    assert "    vigil eval M D --threshold 3.97" in lines


def test_vectorized_alarm_smoothing_equals_the_step_by_step_filter():
    rng = np.random.default_rng(7)
    for _ in range(200):
        above = rng.random(int(rng.integers(0, 120))) < rng.random()
        consecutive, hold = int(rng.integers(1, 6)), int(rng.integers(0, 10))
        step = AlarmFilter(consecutive, hold)
        expected = [step.step(bool(a)) for a in above]
        np.testing.assert_array_equal(consecutive_alarms(above, consecutive, hold), expected)


def test_strict_threshold_reproduces_the_greater_or_equal_cut():
    scores = np.array([0.1, 0.2, 0.30000001, 0.3, 0.7, 0.9])
    for cut in scores:
        t = metrics.strict_threshold(scores, cut)
        np.testing.assert_array_equal(scores > float(f"{t!r}"), scores >= cut)
    assert metrics.strict_threshold(scores, 0.7) == 0.5  # few digits where they suffice


def test_eval_image_flags_on_a_sensor_model_are_exit_2(sensor_artifacts, tmp_path, capsys):
    assert cli.main(["eval", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv),
                     "--anomalous", str(tmp_path)]) == 2
    assert "--anomalous" in capsys.readouterr().err


# --- camera -------------------------------------------------------------------------------------

def _plain_folders(category, folder):
    """The synthetic MVTec category's test split as plain folders: good/, one per defect, masks/."""
    good = shutil.copytree(category / "test" / "good", folder / "good")
    defects, masks = [], folder / "masks"
    masks.mkdir()
    for defect_folder in sorted(p for p in (category / "test").iterdir() if p.name != "good"):
        defects.append(shutil.copytree(defect_folder, folder / defect_folder.name))
        for mask in (category / "ground_truth" / defect_folder.name).iterdir():
            assert not (masks / mask.name).exists(), "mask names must be unique across defects"
            shutil.copy(mask, masks / mask.name)
    return good, defects, masks


def test_image_eval_on_plain_folders_equals_the_mvtec_layout(image_artifacts, tmp_path, capsys):
    model = str(image_artifacts.fp32)
    assert cli.main(["eval", model, str(image_artifacts.category),
                     "--json", str(tmp_path / "mvtec.json")]) == 0
    good, defects, masks = _plain_folders(image_artifacts.category, tmp_path / "plain")
    arguments = ["eval", model, str(good), *[a for d in defects for a in ("--anomalous", str(d))],
                 "--masks", str(masks), "--json", str(tmp_path / "plain.json")]
    assert cli.main(arguments) == 0, capsys.readouterr().err
    mvtec = json.loads((tmp_path / "mvtec.json").read_text())
    plain = json.loads((tmp_path / "plain.json").read_text())
    for key in ("image_auroc", "pixel_auroc", "pro", "f1", "images", "anomalous", "tp", "fp"):
        assert plain[key] == pytest.approx(mvtec[key]), key
    assert {r["defect"] for r in plain["per_defect"]} == {r["defect"] for r in mvtec["per_defect"]}


def test_image_report_lists_mistakes_and_a_reproducible_best_threshold(image_artifacts, tmp_path,
                                                                       capsys):
    model, data = str(image_artifacts.fp32), str(image_artifacts.category)
    assert cli.main(["eval", model, data, "--json", str(tmp_path / "all.json")]) == 0
    scores_json = json.loads((tmp_path / "all.json").read_text())
    # a threshold in the middle of the scores, so some images are missed and some false
    middle = float(np.median([e["score"] for e in scores_json["missed_images"]]
                             + [e["score"] for e in scores_json["false_alarm_images"]]
                             or [runtime.load(model).threshold]))
    report = tmp_path / "report"
    assert cli.main(["eval", model, data, "--threshold", str(middle), "--json",
                     str(tmp_path / "m.json"), "--report", str(report)]) == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "m.json").read_text())
    text = (report / "report.md").read_text()
    _assert_readable(text, ("precision", "recall", "f1", "auroc", "pixel_auroc", "pro",
                            "tp", "fp", "fn", "tn"))
    assert f"| alarm | {result['tp']} (TP) | {result['fp']} (FP) |" in text
    assert len(result["missed_images"]) == result["fn"]
    assert len(result["false_alarm_images"]) == result["fp"]
    for entry in result["missed_images"] + result["false_alarm_images"]:
        assert f"| {entry['image']} | {entry['defect']} |" in text
    if result["best_f1"] > result["f1"]:
        command, threshold = _threshold_command(text)
        assert command == f"vigil eval {model} {data}"
        assert cli.main(["eval", model, data, "--threshold", repr(threshold)]) == 0
        assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(result["best_f1"])
    examples = cv2.imread(str(report / "examples.png"))
    assert examples is not None and examples.shape[0] > 224 * 4  # a row per defect type + good


def test_overlay_colours_only_above_the_pixel_threshold_with_a_bar_a_band_and_the_outline(
        tiny_image_artifact):
    detector = runtime.load(tiny_image_artifact)
    spec = detector.spec
    frame = np.full((120, 160, 3), 90, np.uint8)
    amap = np.zeros((120, 160), np.float32)
    amap[40:60, 50:90] = spec.pixel_threshold.value * 3        # one hot region
    mask = np.zeros((120, 160), bool)
    mask[30:70, 40:100] = True
    picture = overlay(frame, amap, spec, [], "#7 score 9.99 ANOMALY", mask)
    band = picture.shape[0] - frame.shape[0]
    assert 10 <= band <= 40, "the label sits in a band above the frame"
    assert picture.shape[1] > frame.shape[1] + 8, "a colour bar beside the frame"
    image = picture[band:, :frame.shape[1]]
    untouched = np.ones((120, 160), bool)
    untouched[28:72, 38:102] = False                           # the region and its outline
    np.testing.assert_array_equal(image[untouched], frame[untouched])
    assert not np.array_equal(image[45:55, 60:80], frame[45:55, 60:80])
    outline = image[30, 60]
    assert outline[1] > 200 and outline[0] < 50 and outline[2] < 50, "the ground truth in green"
    # the text fits: nothing is drawn in the band's last column but the background
    assert (picture[:band, -1] == picture[0, -1]).all()


def test_score_axis_goes_logarithmic_only_when_scores_span_orders_of_magnitude():
    from vigil.runtime.sensor.report import score_axis

    rng = np.random.default_rng(0)
    calm = rng.uniform(0.5, 2.0, 2000)
    assert score_axis(calm, threshold=3.0) == (0.0, pytest.approx(7.5), "linear")
    bursty = np.concatenate([rng.lognormal(-2.0, 1.0, 2000), [300.0, 800.0, 1200.0] * 10])
    bottom, top, scale = score_axis(np.concatenate([[np.nan] * 5, bursty]), threshold=0.12)
    assert scale == "log" and 0 < bottom < 0.12 < top and top > 800
    # standardized scores (0: a typical normal window) go below 0: the axis shows them
    standardized = rng.normal(0.0, 1.0, 2000)
    bottom, top, scale = score_axis(standardized, threshold=8.0)
    assert scale == "linear" and bottom < standardized.min() * 0.9 and top == pytest.approx(20.0)
    bottom, top, scale = score_axis(np.concatenate([standardized, [5e3, 9e3] * 10]), threshold=8.0)
    assert scale == "symlog" and bottom < 0 and top > 5e3
