"""`vigil triton`: a model repository whose configs Triton's own protobuf schema (shipped in
tritonclient) parses, with the artifact's real tensor names, types and dims."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest

from vigil import runtime
from vigil.cli import commands as cli

from conftest import require  # noqa: E402

model_config_pb2 = require("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")


def _parse(path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _triton_type(name: str) -> int:
    return model_config_pb2.DataType.Value(name)


@pytest.mark.parametrize("fixture", ["sensor", "image"])
def test_repository_configs_parse_with_tritons_schema_and_match_the_graph(
        fixture, tmp_path, tiny_image_artifact, capsys):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    artifact = (write_tiny_sensor_artifact(tmp_path / "pump.onnx") if fixture == "sensor"
                else tiny_image_artifact)
    repo = tmp_path / "models"
    assert cli.main(["triton", str(artifact), str(repo), "--max-batch-size", "16"]) == 0
    printed = json.loads(capsys.readouterr().out)
    folder = repo / printed["model"]
    copied = folder / "1" / "model.onnx"
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == runtime.load(artifact).sha256

    session = ort.InferenceSession(str(copied), providers=["CPUExecutionProvider"])
    for config_path, kind in ((folder / "config.pbtxt", model_config_pb2.ModelInstanceGroup.KIND_CPU),
                              (folder / "configs" / "gpu.pbtxt",
                               model_config_pb2.ModelInstanceGroup.KIND_GPU)):
        config = _parse(config_path)
        assert config.name == folder.name and config.backend == "onnxruntime"
        assert config.max_batch_size == 16 and config.dynamic_batching is not None
        assert [g.kind for g in config.instance_group] == [kind]
        for declared, actual in ((config.input, session.get_inputs()),
                                 (config.output, session.get_outputs())):
            assert [t.name for t in declared] == [t.name for t in actual]
            for tensor, real in zip(declared, actual):
                expected = {"tensor(float)": "TYPE_FP32", "tensor(uint8)": "TYPE_UINT8"}[real.type]
                assert tensor.data_type == _triton_type(expected)
                per_item = [d for d in real.shape[1:]]
                if per_item:
                    assert list(tensor.dims) == per_item
                else:  # one value per item
                    assert list(tensor.dims) == [1] and list(tensor.reshape.shape) == []
    gpu = _parse(folder / "configs" / "gpu.pbtxt")
    accelerators = gpu.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == ["tensorrt"]


def test_repository_model_scores_as_the_artifact(tmp_path, capsys):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    artifact = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    assert cli.main(["triton", str(artifact), str(tmp_path / "m"), "--name", "pump"]) == 0
    capsys.readouterr()
    detector = runtime.load(artifact)
    windows = np.random.default_rng(0).normal(size=(5, *detector.input_shape)).astype(np.float32)
    served = runtime.load(tmp_path / "m" / "pump" / "1" / "model.onnx")
    np.testing.assert_array_equal(served.score(windows), detector.score(windows))


@pytest.mark.parametrize("arguments, says", [
    (["--name", "a b"], "`--name` must be letters"),
    (["--max-batch-size", "0"], "`--max-batch-size` must be an integer >= 1"),
])
def test_bad_repository_arguments_are_exit_2(arguments, says, tmp_path, capsys):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    artifact = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    assert cli.main(["triton", str(artifact), str(tmp_path / "m"), *arguments]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing written before the arguments are known good


def test_a_model_written_again_replaces_version_1_which_alone_is_served(tmp_path, capsys,
                                                                        tiny_image_artifact):
    """Version 1 is replaced whole, other version folders are named and never served, and the
    repository's own copy given as the artifact is left in place."""
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    sensor = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    repo, served = tmp_path / "m", tmp_path / "m" / "pump" / "1" / "model.onnx"
    assert cli.main(["triton", str(tiny_image_artifact), str(repo), "--name", "pump"]) == 0
    (repo / "pump" / "2").mkdir()
    (repo / "pump" / "2" / "model.onnx").write_bytes(tiny_image_artifact.read_bytes())
    capsys.readouterr()
    assert cli.main(["triton", str(sensor), str(repo), "--name", "pump"]) == 0
    assert "version folders ['2'] are left as they were and not served" in \
        capsys.readouterr().err
    assert served.read_bytes() == sensor.read_bytes()
    assert [p.name for p in served.parent.iterdir()] == ["model.onnx"]  # no temporary left
    for config in ("config.pbtxt", "configs/gpu.pbtxt"):
        policy = _parse(repo / "pump" / config).version_policy
        assert list(policy.specific.versions) == [1]
    assert cli.main(["triton", str(served), str(repo), "--name", "pump"]) == 0
    assert served.read_bytes() == sensor.read_bytes()


def test_a_file_where_the_repository_needs_a_folder_leaves_the_model_unplaced(tmp_path, capsys):
    """A file named `configs` was found only after the new model and config.pbtxt were
    written: a repository with the new model and no GPU config, and exit 4."""
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    artifact = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    (tmp_path / "m" / "pump").mkdir(parents=True)
    (tmp_path / "m" / "pump" / "configs").write_text("notes")
    assert cli.main(["triton", str(artifact), str(tmp_path / "m"), "--name", "pump"]) == 2
    assert "is a file where the model repository needs a folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "m" / "pump").iterdir()) == ["configs"]
    # a folder where a config belongs, and a file where the model's folder belongs
    (tmp_path / "m" / "pump" / "configs").unlink()
    (tmp_path / "m" / "pump" / "config.pbtxt").mkdir()
    assert cli.main(["triton", str(artifact), str(tmp_path / "m"), "--name", "pump"]) == 2
    assert "config.pbtxt' is a folder where the model repository needs a file" in \
        capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "m" / "pump").iterdir()) == ["config.pbtxt"]
    (tmp_path / "m" / "valve").write_text("notes")
    assert cli.main(["triton", str(artifact), str(tmp_path / "m"), "--name", "valve"]) == 2
    assert "valve' is a file where the model repository needs a folder" in capsys.readouterr().err


def test_an_artifact_replaced_while_the_repository_is_written_is_not_placed(tmp_path, monkeypatch):
    """The copy served must be the file loaded and checked: one exported over it meanwhile is
    refused, nothing placed."""
    pytest.importorskip("onnx")
    from vigil.export import triton
    from sensor_fixtures import write_tiny_sensor_artifact

    artifact = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    copy = triton.shutil.copyfile

    def changed_meanwhile(source, target):
        copy(source, target)
        with open(target, "ab") as handle:
            handle.write(b"\0")

    monkeypatch.setattr(triton.shutil, "copyfile", changed_meanwhile)
    with pytest.raises(ValueError, match="changed while the repository was written"):
        triton.write_triton_repository(artifact, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()  # nor the empty folders a server would poll


def test_a_vendors_tensor_names_and_file_name_cannot_write_lines_into_the_config(tmp_path,
                                                                                 capsys):
    """A graph output named with a quote and newlines wrote `default_model_filename` and
    `parameters` of its own into config.pbtxt, which Triton's schema accepted; a file name with a
    newline did the same through the header comment (review r3)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from sensor_fixtures import FEATURES, WINDOW, tiny_sensor_spec

    from vigil.export.package import write_artifact

    evil = ('x" data_type: TYPE_FP32 dims: [ -1 ] }\n]\ndefault_model_filename: "../payload.onnx"'
            '\nparameters { key: "injected" value: { string_value: "by-vendor" } }\noutput [\n'
            '  { name: "y \u00e9\\')
    nodes = [helper.make_node("Abs", ["window"], ["distance"]),
             helper.make_node("ReduceMean", ["distance"], ["feature_errors"], axes=[1], keepdims=0),
             helper.make_node("ReduceMean", ["feature_errors"], ["score"], axes=[1], keepdims=0),
             helper.make_node("Identity", ["score"], [evil])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("window", TensorProto.FLOAT,
                                                   ["N", WINDOW, len(FEATURES)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("feature_errors", TensorProto.FLOAT, ["N", len(FEATURES)]),
         helper.make_tensor_value_info(evil, TensorProto.FLOAT, ["N"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    artifact = write_artifact(model, tiny_sensor_spec(),
                              tmp_path / 'pump\ndefault_model_filename: "evil.onnx"\n#.onnx')
    repo = tmp_path / "models"
    assert cli.main(["triton", str(artifact), str(repo), "--name", "pump"]) == 0
    capsys.readouterr()
    for path in (repo / "pump" / "config.pbtxt", repo / "pump" / "configs" / "gpu.pbtxt"):
        config = _parse(path)
        assert config.default_model_filename == ""
        assert "injected" not in config.parameters
        assert [t.name for t in config.output] == ["score", "feature_errors", evil]
        assert all(line.startswith("#") for line in path.read_text().splitlines()[:2])
