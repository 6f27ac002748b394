"""Sensor training data given as any sequence of files, as ``prepare``'s ``Sequence[Path]`` says
(found by type-checking training/: only a list or a tuple was read as files)."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")


def _csv(path: Path, seed: int) -> Path:
    rows = np.random.default_rng(seed).normal(size=(60, 2))
    path.write_text("a,b\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rows))
    return path


@pytest.mark.parametrize("sequence", [collections.deque, collections.UserList])
def test_files_in_any_sequence_are_read_as_in_a_list(tmp_path, sequence):
    # a deque or UserList of files was read as one path: TypeError from Path()
    from vigil.training.sensor_data import DataOptions, prepare

    files = [_csv(tmp_path / "0.csv", 0), _csv(tmp_path / "1.csv", 1)]
    options = DataOptions(window=4)
    expected = prepare(list(files), options)
    data = prepare(sequence(files), options)
    assert [f["name"] for f in data.files] == ["0.csv", "1.csv"]
    assert data.labels == expected.labels == {"from": "none", "labeled_rows": 0}
    np.testing.assert_array_equal(data.train, expected.train)
    np.testing.assert_array_equal(data.validation, expected.validation)
