"""Quality benchmarks' checks of their data, before minutes of training (benchmarks/quality_*)."""

from __future__ import annotations

import pytest


def test_a_record_without_labels_is_named_before_training(tmp_path):
    """An ECG record CSV without its ``anomaly`` column failed with a TypeError subscripting
    None (``table.labels[:split]``), naming no file."""
    from vigil.benchmarks.quality_ecg import run_record
    from vigil.training.train_sensor import SensorTrainingOptions

    record = tmp_path / "100.csv"
    record.write_text("time,MLII,V5\n" + "".join(f"{i},{i % 7},{i % 5}\n" for i in range(50)))
    with pytest.raises(ValueError, match=r"100.csv: no label column 'anomaly'; .* found columns "
                                         r"\['time', 'MLII', 'V5'\]"):
        run_record(record, SensorTrainingOptions(), tmp_path)


def test_labels_of_returns_a_tables_labels(tmp_path):
    from vigil.benchmarks.labels import labels_of
    from vigil.runtime.sensor.tables import read_table

    path = tmp_path / "rows.csv"
    path.write_text("time,a,anomaly\n1,1.0,0\n2,2.0,1\n")
    assert labels_of(read_table(path)).tolist() == [False, True]
