"""docs/examples.md: every worked example runs as written, on a small slice of its real data."""

from __future__ import annotations

import json

import pytest

from vigil.benchmarks import examples
from conftest import SHARED_DATA, shared_dataset

BLOCKS = examples.read_examples()
SLICE_ROWS = {"medical": 6000, "servers": 2000}


def test_the_page_covers_the_four_domains():
    assert {"traffic", "security", "servers", "finance", "medical"} <= set(BLOCKS)
    for name, block in BLOCKS.items():
        for step in ("vigil train sensor", "vigil export", "vigil score", "vigil eval"):
            assert step in block, f"example {name!r} lacks `{step}`"
        assert examples.datasets_of(block), f"example {name!r} names no ../shared/data folder"


def test_slicing_keeps_named_files_and_cuts_rows(tmp_path):
    source = tmp_path / "src" / "data" / "cat"
    source.mkdir(parents=True)
    for name in ("a.csv", "b.csv", "c.csv"):
        (source / name).write_text("t,x\n" + "".join(f"{i},{i}\n" for i in range(100)))
    (tmp_path / "src" / "labels.json").write_text("{}")
    examples.slice_dataset(tmp_path / "src", tmp_path / "out", 10, {"c.csv"})
    kept = sorted(p.name for p in (tmp_path / "out" / "data" / "cat").iterdir())
    assert kept == ["a.csv", "c.csv"]
    assert (tmp_path / "out" / "data" / "cat" / "c.csv").read_text().count("\n") == 11
    assert (tmp_path / "out" / "labels.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_example_runs_on_a_slice(name, tmp_path):
    for folder in examples.datasets_of(BLOCKS[name]).values():
        shared_dataset(folder)
    result = examples.run_example(name, BLOCKS[name], SHARED_DATA, tmp_path,
                                  slice_rows=SLICE_ROWS.get(name, 1200))
    out = tmp_path / "examples-out" / name
    for row in result["files"]:
        stem = row["file"]
        assert (out / f"{stem}.onnx").is_file()
        assert (out / f"report-{stem}" / "report.md").is_file()
        lines = [json.loads(line) for line in (out / f"{stem}.jsonl").read_text().splitlines()]
        assert lines and {"index", "score", "anomaly"} <= set(lines[-1])
        assert row["rows"] >= len(lines)
        # undefined where the slice holds no labeled anomaly (SMD's first test rows)
        assert row["f1"] is None if not row["anomalous_rows"] else 0.0 <= row["f1"] <= 1.0
