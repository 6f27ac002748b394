"""`vigil batch`: archives re-scored in this process or on a local Ray (2 CPUs), writing exactly
the lines `vigil score` writes for the same inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import require
from vigil.cli import batch as batch_module
from vigil.cli import commands as cli


def _lines(path, drop=("latency_ms",)):
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.fixture
def csv_folder(sensor_artifacts, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    text = sensor_artifacts.test_csv.read_text().splitlines()
    for n, rows in enumerate((text[:900], text[:1] + text[600:1500], text[:1] + text[200:700])):
        (folder / f"day{n}.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for n in range(7):
        cv2.imwrite(str(folder / f"{n:03d}.png"), rng.integers(0, 255, (32, 32), np.uint8))
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_batch_in_this_process_writes_what_score_writes(sensor_artifacts, csv_folder, tmp_path,
                                                        capsys):
    model = str(sensor_artifacts.fp32)
    assert cli.main(["score", model, str(csv_folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "s.jsonl").read_text()
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]
    assert summary["engine"] == "single process" and summary["items"] == 3


def test_image_folders_are_split_but_numbered_as_one_run(tiny_image_artifact, image_folder,
                                                         tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch_module, "IMAGES_PER_ITEM", 3)
    model = str(tiny_image_artifact)
    assert cli.main(["score", model, str(image_folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    assert cli.main(["batch", model, str(image_folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert _lines(tmp_path / "b.jsonl") == _lines(tmp_path / "s.jsonl")
    assert [r["frame"] for r in _lines(tmp_path / "b.jsonl")] == list(range(8))
    items = batch_module.plan_batch(model, [str(image_folder)])
    assert [i.first_index for i in items] == [0, 3, 6]


def test_batch_on_a_local_ray_writes_the_same_lines(sensor_artifacts, csv_folder,
                                                    tiny_image_artifact, image_folder, tmp_path,
                                                    capsys):
    require("ray")
    model = str(sensor_artifacts.fp32)
    assert cli.main(["score", model, str(csv_folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "r.jsonl"),
                     "--ray", "--workers", "2"]) == 0
    assert (tmp_path / "r.jsonl").read_text() == (tmp_path / "s.jsonl").read_text()
    err = capsys.readouterr().err
    assert json.loads(err.strip().splitlines()[-1])["summary"]["engine"] == "ray local"
    assert "streaming_executor" not in err and "Progress bars" not in err  # Ray kept quiet
    assert "core_worker" not in err


def test_bad_inputs_are_exit_2_and_no_output_is_opened(sensor_artifacts, tmp_path, capsys):
    out = tmp_path / "never.jsonl"
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(tmp_path / "missing"),
                     "--jsonl", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()
    existing = tmp_path / "old.jsonl"
    existing.write_text('{"index": 0}\n')
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv),
                     "--jsonl", str(existing)]) == 2
    assert "--append" in capsys.readouterr().err and existing.read_text() == '{"index": 0}\n'
