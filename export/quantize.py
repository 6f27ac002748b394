"""INT8 quantization with onnxruntime.quantization.

RNN models use dynamic quantization: int8 weights, uint8 activations quantized at run time
(the u8s8 kernels are the fast ones on x86 CPUs). Work happens in a temporary folder, never in
the working directory.
"""

from __future__ import annotations

import tempfile
from contextlib import chdir
from pathlib import Path


def quantize_dynamic_int8(proto):
    """A dynamically quantized copy of an ONNX ModelProto (weights QInt8, activations QUInt8)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "fp32.onnx"
        target = Path(scratch) / "int8.onnx"
        onnx.save_model(proto, str(source))
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         extra_options={"MatMulConstBOnly": True})
        return onnx.load_model(str(target))


def quantize_static_int8(proto, calibration, input_name: str, exclude_substrings=("postprocess",)):
    """Static QDQ INT8 copy of a CNN: per-channel int8 weights, uint8 activations.

    Args:
        proto: the FP32 ModelProto.
        calibration: a function returning a fresh iterator of input batches (uint8 arrays), so
            that the calibration data can be read more than once.
        input_name: the graph input those batches feed.
        exclude_substrings: nodes whose names contain one of these stay in float (the score
            reduction after the network).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration())

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "fp32.onnx"
        prepared = Path(scratch) / "prepared.onnx"
        target = Path(scratch) / "int8.onnx"
        onnx.save_model(proto, str(source))
        with chdir(scratch):  # pre-processing and calibration write temporary files into the CWD
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            model = onnx.load_model(str(prepared))
            excluded = [n.name for n in model.graph.node
                        if any(s in n.name for s in exclude_substrings)]
            quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        return onnx.load_model(str(target))
