"""Quality floors on the real datasets in ../shared/data (skipped without them, failed in CI)."""

from __future__ import annotations

import pytest

from conftest import shared_dataset

pytestmark = pytest.mark.slow


def one_network(options):
    """The sensor floors' reduction: one network where the default averages three (``members``),
    which would triple their training time; the floors below were measured with one."""
    from dataclasses import replace

    return replace(options, model=replace(options.model, members=1))


# Floors sit below the figures measured with the same code (see docs/quality.md),
# leaving room for run-to-run training noise on other machines.
# SKAB's protocol on the first 4 of every 8th of its 34 files (sorted), so that the suite stays
# under 20 minutes on 2 slow cores: measured 0.798 on those 4 in 50 s with the neighbour distance
# in the score and the one-Dense head (0.768 with the TimeDistributed head; the distance is the
# default since 0.3; the error alone measured 0.910 there, but its calibrated
# threshold sits higher on other/4 and valve1/4 with the distance added, though AUROC rises on all
# four; on all 34 files the saved scores give 0.837 with it against 0.832, docs/quality.md, "Alarm
# defaults"). Before it: 0.897 on all 5 of every 8th, 0.831 on every 6th file.
SKAB_CI_STEP, SKAB_CI_FILES = 8, 4
SKAB_F1_FLOOR = 0.70


def test_skab_protocol_f1_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from vigil.benchmarks.quality_skab import labeled_files, skab_protocol
    from vigil.training.train_sensor import SensorTrainingOptions

    data = shared_dataset("skab")
    files = labeled_files(data)
    assert len(files) == 34
    result = skab_protocol(files[::SKAB_CI_STEP][:SKAB_CI_FILES],
                           one_network(SensorTrainingOptions()),
                           tmp_path, log=lambda _: None)
    assert len(result["files"]) == SKAB_CI_FILES
    assert result["f1"] >= SKAB_F1_FLOOR, result
    assert 0 <= result["far"] <= 100 and 0 <= result["mar"] <= 100


# Tiles, reduced for CI's time limit: the pretrained-features model with a 1,024-entry bank chosen
# from 50,000 patches (153 s here; the default U-Net needs ~9 minutes of training for a useful
# figure: 600 steps gave 0.780 / 0.648 in 540 s of training, 300 steps at 128 px 0.554 / 0.545).
# The U-Net's full-length figures are in docs/quality.md; on real data CI checks the features model.
MT_CI_BANK, MT_CI_PATCHES = 1024, 50_000
MT_IMAGE_AUROC_FLOOR = 0.83  # measured 0.918 with stage 6, which training chooses here
                             # (separation 4.35 against 3.66), the features on 96 principal
                             # components (0.920 as they were, separation 9.72 against 8.18;
                             # 0.888 with stages 3 and 5); 0.842 without the contrast
MT_PIXEL_AUROC_FLOOR = 0.68  # measured 0.763 (0.768 as they were; 0.761 with stages 3 and 5);
                             # 0.739 without the contrast


def test_magnetic_tile_quality_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from dataclasses import replace

    from vigil.benchmarks.image_runs import architecture_options
    from vigil.benchmarks.quality_magnetic_tile import run
    from vigil.training.train_image import ImageTrainingOptions

    data = shared_dataset("magnetic-tile-defect")
    options = architecture_options(ImageTrainingOptions(), "features", MT_CI_BANK)
    options = replace(options, features=replace(options.features, max_patches=MT_CI_PATCHES))
    result = run(data, options, tmp_path, log=lambda _: None, verbose=0)
    assert result["architecture"] == "features" and result["input"] == [256, 256, 1]
    assert result["frame_contrast"] is True    # the tiles' contrast varies from photo to photo
    assert result["levels"] == [3, 5, 6]         # stage 6's context, chosen for broad defects
    assert len(result["per_image"]["images"]) == 630
    assert result["image_auroc"] >= MT_IMAGE_AUROC_FLOOR, result
    assert result["pixel_auroc"] >= MT_PIXEL_AUROC_FLOOR, result


# ELPV, reduced for CI's time limit: the mono cells with the pretrained-features model (about a
# minute to fit), a 1,024-entry bank chosen from 50,000 patches.
ELPV_CI_TYPE, ELPV_CI_BANK, ELPV_CI_PATCHES = "mono", 1024, 50_000
ELPV_IMAGE_AUROC_FLOOR = 0.91  # measured 0.973, stages 3 and 5 chosen (separation 7.37
                               # against 5.41 with stage 6), the features on 96 principal
                               # components (0.971 as they were, 10.67 against 9.54); 0.960
                               # without the frame contrast; mean brightness alone: 0.775


def test_elpv_quality_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from dataclasses import replace

    from vigil.benchmarks.image_runs import architecture_options
    from vigil.benchmarks.quality_elpv import run_type
    from vigil.training.train_image import ImageTrainingOptions

    data = shared_dataset("elpv")
    options = architecture_options(ImageTrainingOptions(), "features", ELPV_CI_BANK)
    options = replace(options, features=replace(options.features, max_patches=ELPV_CI_PATCHES))
    result = run_type(data, ELPV_CI_TYPE, options, tmp_path, log=lambda _: None)
    assert result["architecture"] == "features" and result["input"] == [256, 256, 1]
    assert result["frame_contrast"] is True    # each module's cells have their own exposure
    assert result["levels"] == [3, 5]            # stage 6 did not pay here (it lost on poly)
    assert (result["train_images"], result["test_normal"], result["test_defect"]) == (200, 100, 150)
    assert result["image_auroc"] >= ELPV_IMAGE_AUROC_FLOOR, result
    assert result["image_auroc"] > result["mean_brightness_auroc"] + 0.1, result
    assert len(result["per_image"]["images"]) == 250


# NAB, reduced for CI's time limit to the first 3 files of realAdExchange (short files, 6
# windows, 51 s here); the whole corpus's figures are in docs/quality.md.
NAB_CI_CATEGORY, NAB_CI_FILES = "realAdExchange", 3
NAB_STANDARD_FLOOR = 50.0  # measured 74.4 with the neighbour distance in the score, either head
                           # (61.1 with the error alone; first 4 files: 65.7; all 6: 60.3, seeds
                           # 1 and 2 there: 60.7, 67.8)


def test_nab_quality_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from vigil.benchmarks.quality_nab import nab_protocol
    from vigil.training.train_sensor import SensorTrainingOptions

    data = shared_dataset("nab")
    result = nab_protocol(data, one_network(SensorTrainingOptions()), tmp_path, log=lambda _: None,
                          only=(NAB_CI_CATEGORY,), limit=NAB_CI_FILES)
    assert len(result["files"]) == NAB_CI_FILES and result["windows"] == 6
    assert result["nab_score_standard"] >= NAB_STANDARD_FLOOR, result
    assert {"nab_score_low_fp", "nab_score_low_fn", "event_f1", "f1"} <= set(result)


# SMD, reduced for CI's time limit: the first 4,000 rows of each train half, 6 epochs (89 s here).
SMD_CI_TRAIN_ROWS, SMD_CI_EPOCHS = 4000, 6
SMD_AUROC_FLOOR = 0.65      # measured 0.829 with the reduced protocol and the defaults now (bank
                            # 2,048; 0.830 at 8,192; 0.808 with the error alone; 0.850 full, docs)
SMD_EVENT_F1_FLOOR = 0.15   # measured 0.435 (0.384 at 8,192; 0.403 the error alone; 0.424 full:
                            # 22 events)


def test_smd_quality_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from dataclasses import replace

    from vigil.benchmarks.quality_smd import TIME_COLUMN, smd_protocol
    from vigil.training.train_sensor import SensorTrainingOptions

    data = shared_dataset("smd")
    defaults = one_network(SensorTrainingOptions())
    options = replace(defaults, data=replace(defaults.data, time_column=TIME_COLUMN),
                      model=replace(defaults.model, epochs=SMD_CI_EPOCHS))
    result = smd_protocol(data, options, tmp_path, log=lambda _: None,
                          train_rows=SMD_CI_TRAIN_ROWS)
    assert len(result["machines"]) == 2
    assert result["auroc"] >= SMD_AUROC_FLOOR, result
    assert result["event_f1"] >= SMD_EVENT_F1_FLOOR, result
    assert all(m["inputs_only"] for m in result["machines"]), "SMD's constant columns are found"


# ECG, reduced for CI's time limit: record 119 (many PVCs) with 3 epochs (61 s here).
ECG_CI_RECORD, ECG_CI_EPOCHS = "119", 3
ECG_EVENT_F1_FLOOR = 0.7   # measured 0.793 with the reduced protocol and the defaults now (0.794 at
                           # bank 8,192 with the TimeDistributed head)
                           # (0.952 with the error alone; 119 in the error-alone full run: 0.923)
ECG_AUROC_FLOOR = 0.65     # measured 0.820 both ways (0.777 with the error alone)


def test_ecg_quality_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from dataclasses import replace

    from vigil.benchmarks.quality_ecg import ecg_protocol
    from vigil.training.train_sensor import SensorTrainingOptions

    data = shared_dataset("ecg-mitbih")
    defaults = one_network(SensorTrainingOptions())
    options = replace(defaults, data=replace(defaults.data, stride=4),
                      model=replace(defaults.model, epochs=ECG_CI_EPOCHS))
    result = ecg_protocol(data, options, tmp_path, log=lambda _: None, only=(ECG_CI_RECORD,))
    (record,) = result["records"]
    assert record["leads"] == ["MLII", "V1"]
    assert result["event_f1"] >= ECG_EVENT_F1_FLOOR, result
    assert result["auroc"] >= ECG_AUROC_FLOOR, result
