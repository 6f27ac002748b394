"""Static INT8 quantization gives the QDQ graph's scores on every x86 CPU.

onnxruntime's u8s8 kernels on CPUs without VNNI (AVX2, most AVX-512) add pairs of uint8 x int8
products in int16, which saturates when both are near full range. These tests build a dense layer
where that happens, quantize it with the exporter's own function, and compare the fused kernels
(what a device runs) with the unfused QDQ graph (the arithmetic the quantizer meant).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from vigil.export.quantize import quantize_static_int8  # noqa: E402

INPUTS, OUTPUTS = 32, 8


def dense_graph(weights: np.ndarray):
    """x (N, 32) -> x @ weights (N, 8): one MatMul, the layer type every exported model quantizes."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")], "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", INPUTS])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUTPUTS])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def outputs(model, x: np.ndarray, level) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def saturating_case():
    """Inputs near their calibrated maximum times weights near theirs: int16 pair sums overflow."""
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 1.0, size=(INPUTS, OUTPUTS))
    x = rng.uniform(0.9, 1.0, size=(16, INPUTS)).astype(np.float32)
    calibration = np.concatenate([rng.uniform(0.0, 1.0, size=(64, INPUTS)), x]).astype(np.float32)
    fp32 = dense_graph(weights)
    int8 = quantize_static_int8(fp32, lambda: iter([calibration]), "x")
    return fp32, int8, x


def test_int8_weights_leave_headroom_against_int16_saturation(saturating_case):
    _, int8, _ = saturating_case
    quantized = [numpy_helper.to_array(t) for t in int8.graph.initializer
                 if t.data_type == TensorProto.INT8]
    assert quantized, "the MatMul's weights were not quantized"
    # 255 x 64 x 2 = 32,640 fits in int16; 255 x 127 x 2 = 64,770 does not
    assert all(int(np.abs(q.astype(np.int32)).max()) <= 64 for q in quantized)


def test_fused_int8_kernels_match_the_qdq_arithmetic(saturating_case):
    fp32, int8, x = saturating_case
    reference = outputs(fp32, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    simulated = outputs(int8, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)  # QDQ in float
    fused = outputs(int8, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)      # integer kernels
    scale = float(np.abs(reference).max())
    assert np.abs(simulated - reference).max() < 0.02 * scale
    assert np.abs(fused - simulated).max() < 1e-3 * scale, (
        f"fused INT8 kernels differ from the QDQ graph by {np.abs(fused - simulated).max():.4g} "
        f"(outputs up to {scale:.3g}): int16 saturation in the u8s8 kernels")


def test_exports_record_7_bit_weights_and_load_without_a_warning(sensor_artifacts, caplog):
    from vigil import runtime

    with caplog.at_level("WARNING", logger="vigil"):
        detector = runtime.load(sensor_artifacts.int8)
    assert detector.spec.precision == "int8"
    assert detector.spec.parity["int8_weight_bits"] == 7
    assert not [r for r in caplog.records if "saturate" in r.getMessage()]


def test_older_int8_artifacts_are_flagged_on_x86_without_vnni(sensor_artifacts, tmp_path):
    from dataclasses import replace

    from vigil import runtime
    from vigil.runtime.core.int8_kernels import saturation_warning

    spec = runtime.load(sensor_artifacts.int8).spec
    legacy = replace(spec, parity={k: v for k, v in spec.parity.items()
                                   if k != "int8_weight_bits"})
    avx2, vnni = tmp_path / "avx2", tmp_path / "vnni"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n")
    vnni.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma avx512_vnni\n")
    message = saturation_warning(legacy, "/models/line3.onnx", "x86_64", avx2)
    assert message is not None
    assert "'/models/line3.onnx' is INT8 with 8-bit weights" in message
    assert "this CPU has no VNNI" in message
    assert message.endswith("vigil export MODEL.keras -o line3.onnx")
    # Where the kernels cannot saturate, or the weights leave headroom, nothing is said.
    assert saturation_warning(legacy, "m.onnx", "x86_64", vnni) is None
    assert saturation_warning(legacy, "m.onnx", "aarch64", avx2) is None
    assert saturation_warning(spec, "m.onnx", "x86_64", avx2) is None
    assert saturation_warning(replace(legacy, precision="fp32"), "m.onnx", "x86_64", avx2) is None
    # Unreadable flags (not Linux): the warning says the CPU may lack VNNI.
    unknown = saturation_warning(legacy, "m.onnx", "AMD64", tmp_path / "missing")
    assert unknown is not None and "may lack VNNI" in unknown


def test_cpu_flags_reads_the_first_processor(tmp_path):
    from vigil.runtime.core.int8_kernels import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu\n")
    assert cpu_flags(info) == frozenset({"fpu", "avx2", "avx512_vnni"})
    assert cpu_flags(tmp_path / "missing") is None


def _clip_graph(first: str, second: str, shared: bool = False):
    """x -> first(x, c1) -> second(., c2) -> y, as tf2onnx writes a clip; with ``shared`` the
    first result is also a graph output, so it cannot be folded away."""
    bounds = {"Min": 6.0, "Max": -1.0}
    nodes = [helper.make_node(first, ["x", "a"], ["t"], name="first"),
             helper.make_node(second, ["t", "b"], ["y"], name="second")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])]
    if shared:
        outputs.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, ["N"]))
    graph = helper.make_graph(
        nodes, "clip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])], outputs,
        [numpy_helper.from_array(np.array(bounds[first], np.float32), "a"),
         numpy_helper.from_array(np.array([bounds[second]], np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("first, second", [("Min", "Max"), ("Max", "Min")])
def test_fuse_clips_makes_one_clip_with_the_same_values(first, second):
    from vigil.export.convert import cpu_session, fuse_clips

    x = np.linspace(-5, 10, 31).astype(np.float32)
    model = _clip_graph(first, second)
    want = cpu_session(model).run(None, {"x": x})[0]
    assert fuse_clips(model) == 1
    onnx.checker.check_model(model)
    assert [node.op_type for node in model.graph.node] == ["Clip"]
    assert len(model.graph.initializer) == 2  # the old bounds are gone
    np.testing.assert_array_equal(cpu_session(model).run(None, {"x": x})[0], want)
    np.testing.assert_array_equal(want, np.clip(x, -1, 6))


def test_fuse_clips_leaves_a_result_used_elsewhere_and_other_pairs():
    from vigil.export.convert import fuse_clips

    shared = _clip_graph("Min", "Max", shared=True)
    assert fuse_clips(shared) == 0
    assert [node.op_type for node in shared.graph.node] == ["Min", "Max"]
    same = _clip_graph("Min", "Min")
    assert fuse_clips(same) == 0
