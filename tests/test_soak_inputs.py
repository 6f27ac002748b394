"""The soak script's checks of what it is given (benchmarks/soak.py), before its long run."""

from __future__ import annotations

import pytest


def test_an_artifact_of_the_other_kind_is_refused_by_its_flag_before_inputs_are_written(
        tmp_path, capsys):
    """``--image-model SENSOR.onnx`` wrote the whole video, then stopped with the runtime's
    TypeError (no flag named); ``--sensor-model IMAGE.onnx`` failed on ``spec.features`` (an
    AttributeError) after the frames phase."""
    from image_fixtures import write_tiny_image_artifact
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks import soak

    sensor = write_tiny_sensor_artifact(tmp_path / "sensor.onnx")
    image = write_tiny_image_artifact(tmp_path / "image.onnx")
    work = tmp_path / "work"
    for flag, given, expected in (("--image-model", sensor, "an image artifact"),
                                  ("--sensor-model", image, "a sensor artifact")):
        with pytest.raises(SystemExit) as stopped:
            soak.main([flag, str(given), "--frames", "40", "--rows", "0", "--work", str(work)])
        assert stopped.value.code == 2
        error = capsys.readouterr().err
        assert f"{flag} {str(given)!r} is " in error and f"expected {expected}" in error
        assert not (work / "soak.avi").exists()


def test_a_system_without_resident_memory_figures_is_told_the_soak_needs_them(monkeypatch):
    """Where VmRSS cannot be read the sampler divided None by a megabyte (a TypeError)."""
    from vigil.benchmarks.soak import Sampler
    from vigil.runtime.core import health

    class Reporter:
        def snapshot(self) -> dict:
            return {"rows_in": 0}

    monkeypatch.setattr(health, "rss_bytes", lambda: None)
    with pytest.raises(SystemExit, match="resident memory cannot be read"):
        Sampler(Reporter(), "rows_in", 1.0).sample()


def test_the_soak_refuses_a_system_without_resident_memory_figures_before_writing(
        tmp_path, monkeypatch, capsys):
    """Said before minutes of writing a video and a CSV (review d1), not by the sampler."""
    from vigil.benchmarks import soak
    from vigil.runtime.core import health

    monkeypatch.setattr(health, "rss_bytes", lambda: None)
    work = tmp_path / "work"
    with pytest.raises(SystemExit) as stopped:
        soak.main(["--work", str(work), "--frames", "10", "--rows", "0"])
    assert stopped.value.code == 2
    assert "resident memory cannot be read" in capsys.readouterr().err
    assert not work.exists()
