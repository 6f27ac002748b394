"""Static INT8 quantization with onnxruntime.quantization.

Every quantized artifact uses calibrated, fixed activation scales (QDQ, uint8 activations and
per-channel int8 weights: the u8s8 kernels are the fast ones on x86 CPUs). Weights use 7 of the 8
bits (``reduce_range``): on x86 CPUs without VNNI, onnxruntime's u8s8 kernels add pairs of
uint8 x int8 products in int16 (``vpmaddubsw``), which saturates with full-range weights and
silently moves the scores (measured on an AVX2-only EPYC: the test LSTM's INT8 rank correlation
with FP32 fell from 0.9999 to 0.935). 7-bit weights cannot saturate, so the scores are those of
the QDQ graph on every CPU. Dynamic quantization is
never used: its ``DynamicQuantizeLinear`` takes each call's scale from the whole batch, so one
extreme reading would change the score of every window scored beside it. Work happens in a
temporary folder, never in the working directory.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

INT8_WEIGHT_BITS = 7  # recorded in the artifact's parity: the runtime warns about 8-bit ones

# onnxruntime.quantization advises this on the root logger even after quant_pre_process has run
PRE_PROCESS_ADVICE = "Please consider to run pre-processing before quantization"


@contextlib.contextmanager
def _without_pre_process_advice():
    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(PRE_PROCESS_ADVICE)

    root = logging.getLogger()
    filters = [root, *root.handlers]
    for target in filters:
        target.addFilter(keep)
    try:
        yield
    finally:
        for target in filters:
            target.removeFilter(keep)


def calibration_batches(data, batch: int, progress):
    """A function returning a fresh iterator over ``data`` in batches of ``batch`` (what
    ``quantize_static_int8`` takes), reporting each batch to ``progress``."""
    def batches():
        starts = range(0, len(data), batch)
        for n, start in enumerate(starts):
            progress("export: INT8 calibration (batches)", n, len(starts))
            yield data[start:start + batch]
        progress("export: INT8 calibration (batches)", len(starts), len(starts))

    return batches


def quantize_static_int8(proto, calibration, input_name: str,
                         exclude_substrings=("preprocess", "postprocess"),
                         op_types: tuple[str, ...] | None = None,
                         float_output_op_types: tuple[str, ...] = ()):
    """Static QDQ INT8 copy of a model: per-channel 7-bit int8 weights, uint8 activations.

    Args:
        proto: the FP32 ModelProto.
        calibration: a function returning a fresh iterator of input batches (uint8 arrays), so
            that the calibration data can be read more than once.
        input_name: the graph input those batches feed.
        exclude_substrings: nodes whose names contain one of these stay in float (the score
            reduction after the network, a frame's standardization before it).
        op_types: quantize only these operator types (None: every type onnxruntime can).
        float_output_op_types: these operator types take quantized inputs but give float
            outputs (a MatMul then runs as one uint8 x int8 product with a float result,
            instead of having its result rounded to 8 bits).
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
        # both keep their temporary files in folders of their own (the working directory, which
        # is the whole process's, is left alone: another thread may be writing by relative path)
        with _without_pre_process_advice():
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            model = onnx.load_model(str(prepared))
            excluded = [n.name for n in model.graph.node
                        if any(s in n.name for s in exclude_substrings)]
            quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=True,
                            activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded,
                            op_types_to_quantize=list(op_types) if op_types else None,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                           "OpTypesToExcludeOutputQuantization":
                                               list(float_output_op_types)})
        return onnx.load_model(str(target))


def quantized_nodes(proto) -> int:
    """How many tensors the graph dequantizes: 0 where quantization found nothing to quantize."""
    return sum(node.op_type == "DequantizeLinear" for node in proto.graph.node)
