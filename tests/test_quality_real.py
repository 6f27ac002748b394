"""Quality floors on the real datasets in ../shared/data (skipped without them, failed in CI)."""

from __future__ import annotations

import pytest

from conftest import shared_dataset

pytestmark = pytest.mark.slow

# Floors sit below the figures measured with the same code (see the README's Quality section),
# leaving room for run-to-run training noise on other machines.
SKAB_F1_FLOOR = 0.78


def test_skab_protocol_f1_floor(tmp_path):
    pytest.importorskip("tensorflow")
    from benchmarks.quality_skab import labeled_files, skab_protocol
    from training.train_sensor import SensorTrainingOptions

    data = shared_dataset("skab")
    result = skab_protocol(labeled_files(data), SensorTrainingOptions(), tmp_path, log=lambda _: None)
    assert len(result["files"]) == 34
    assert result["f1"] >= SKAB_F1_FLOOR, result
    assert 0 <= result["far"] <= 100 and 0 <= result["mar"] <= 100
