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
        model.export(os.path.join(scratch, "saved"), format="tf_saved_model",
                     input_signature=[spec], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(scratch, "saved"))
        if int8:
            if representative is None:
                raise ValueError("`representative` data is needed for an INT8 conversion")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([x] for x in representative())
        return converter.convert()


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


_CONVERT = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, keras
from vigil.export.tflite import to_tflite
from vigil.training.checkpoint import register_layers
register_layers()
model = keras.models.load_model(sys.argv[1], safe_mode=True, compile=False)
int8 = sys.argv[2] == "int8"
data = np.load(sys.argv[3]) if int8 else None
flatbuffer = to_tflite(model, int8, (lambda: (x[None] for x in data)) if int8 else None)
open(sys.argv[4], "wb").write(flatbuffer)
"""


def to_tflite_isolated(keras_path, int8: bool, representative: np.ndarray | None = None,
                       timeout_s: float = 600) -> bytes:
    """``to_tflite`` of a saved Keras model in a child process: the TFLite converter can crash
    the whole process on some graphs (INT8 LSTMs), and a benchmark must survive that."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "representative.npy")
        target = os.path.join(scratch, "model.tflite")
        if int8:
            if representative is None:
                raise ValueError("`representative` data is needed for an INT8 conversion")
            np.save(data, representative)
        done = subprocess.run([sys.executable, "-c", _CONVERT, str(keras_path),
                               "int8" if int8 else "fp32", data, target],
                              capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not os.path.exists(target):
            kind = "INT8" if int8 else "FP32"
            if done.returncode < 0:  # killed by a signal: its last line is TensorFlow's chatter
                import signal

                try:
                    name = signal.Signals(-done.returncode).name
                except ValueError:
                    name = f"signal {-done.returncode}"
                raise RuntimeError(f"the TFLite {kind} converter crashed ({name}); TFLite cannot "
                                   "convert this graph on this machine")
            errors = [line for line in done.stderr.strip().splitlines()
                      if "Error" in line or "error" in line] or done.stderr.strip().splitlines()
            raise RuntimeError(f"TFLite {kind} conversion failed (exit {done.returncode}): "
                               f"{(errors or ['no output'])[-1][:200]}")
        with open(target, "rb") as handle:
            return handle.read()
