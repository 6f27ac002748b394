"""INT8 quantization with onnxruntime.quantization.

RNN models use dynamic quantization: int8 weights, uint8 activations quantized at run time
(the u8s8 kernels are the fast ones on x86 CPUs). Work happens in a temporary folder, never in
the working directory.
"""

from __future__ import annotations

import tempfile
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
