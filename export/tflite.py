"""TFLite conversions of a Keras model, as latency baselines (benchmarks only, never shipped)."""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterable

import numpy as np


def to_tflite(model, int8: bool, representative: Callable[[], Iterable[np.ndarray]] | None = None,
              batch: int = 1) -> bytes:
    """A TFLite flatbuffer of ``model`` with a fixed batch (TFLite cannot convert a Keras LSTM
    with a dynamic one). ``int8`` quantizes weights and activations with ``representative``
    (a function returning a fresh iterator of single-item input batches)."""
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *model.input_shape[1:]), model.inputs[0].dtype)
    with tempfile.TemporaryDirectory() as scratch:
        cwd = os.getcwd()
        os.chdir(scratch)
        try:
            model.export(os.path.join(scratch, "saved"), format="tf_saved_model",
                         input_signature=[spec], verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(scratch, "saved"))
            if int8:
                if representative is None:
                    raise ValueError("`representative` data is needed for an INT8 conversion")
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([x] for x in representative())
            return converter.convert()
        finally:
            os.chdir(cwd)


def tflite_runner(flatbuffer: bytes, threads: int = 1) -> Callable[[np.ndarray], list]:
    """A callable running one batch through the TFLite interpreter (XNNPACK delegate by default)."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    outputs = [o["index"] for o in interpreter.get_output_details()]

    def run(x: np.ndarray) -> list:
        interpreter.set_tensor(source["index"], x.astype(source["dtype"], copy=False))
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    return run
