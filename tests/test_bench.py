"""vigil bench says what really ran: the provider's device, fallbacks, and unstable tails."""

from __future__ import annotations

import onnxruntime as ort
import pytest

pytest.importorskip("onnx")


def test_a_device_that_is_not_here_is_reported_as_what_ran(tmp_path):
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks.bench import BenchOptions, bench, device_of

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback cannot be shown here")
    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    result = bench([model], BenchOptions(batches=(1,), devices=("cpu", "cuda"), seconds=0.05,
                                         cold_start=False, profile=False))
    cells = result["cells"]
    assert [(c["device"], c["requested_device"]) for c in cells] == [("cpu", "cpu")]
    assert any("--device cuda is not available here; it ran on cpu" in n for n in result["notes"])
    assert any("not measured twice" in n for n in result["notes"])
    assert device_of(["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cuda"
    assert device_of(["TensorrtExecutionProvider", "CUDAExecutionProvider"]) == "tensorrt"
