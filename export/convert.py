"""Keras -> ONNX with tf2onnx."""

from __future__ import annotations

import tempfile
from contextlib import chdir
from pathlib import Path

OPSET = 17


def keras_to_onnx(model, input_name: str = "window", opset: int = OPSET, dtype: str = "float32"):
    """Convert a Keras model with one input to an in-memory ONNX ModelProto.

    Keras 3 models need an explicit input signature; the batch dimension stays dynamic.
    Output names are the Keras output dict keys.
    """
    import tensorflow as tf
    import tf2onnx

    shape = (None, *model.input_shape[1:])
    signature = [tf.TensorSpec(shape, tf.as_dtype(dtype), name=input_name)]
    if not hasattr(model, "output_names"):
        model.output_names = list(model.output.keys()) if isinstance(model.output, dict) else None
    with tempfile.TemporaryDirectory() as scratch, chdir(scratch):  # tf2onnx may leave files
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    return proto


def save_proto(proto, path: Path) -> None:
    import onnx

    onnx.save_model(proto, str(path))


def cpu_session(proto, threads: int | None = None):
    """An onnxruntime CPU session of a ModelProto, with its graph-cleanup warnings kept quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # "Removing initializer ..." is not the user's business
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
