"""Keras -> ONNX with tf2onnx."""

from __future__ import annotations


import numpy as np

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
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    fuse_clips(proto)
    return proto


def fuse_clips(proto) -> int:
    """Rewrite each Min with a constant scalar followed only by a Max with one (or the reverse),
    as tf2onnx writes a clip, into one Clip, in place; returns how many. One pass over the data
    instead of two, and onnxruntime drops a Clip that a QuantizeLinear follows (the quantization
    saturates at a range inside the clip's), which it cannot do for Min and Max."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    scalars = {i.name: numpy_helper.to_array(i) for i in graph.initializer
               if i.data_type == 1 and np.prod(i.dims) == 1}  # float32, one element
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def bound(node):
        """(data input, constant value) of a two-input Min/Max with one scalar constant."""
        if len(node.input) != 2:
            return None
        data, other = node.input
        if other not in scalars:
            data, other = other, data
        return (data, float(scalars[other].reshape(()))) if other in scalars else None

    fused = 0
    removed: set[str] = set()  # the outputs of the Min and Max nodes replaced
    for first in list(graph.node):
        if first.op_type not in ("Min", "Max") or first.output[0] in removed:
            continue
        users = consumers.get(first.output[0], [])
        if len(users) != 1 or first.output[0] in outputs:
            continue
        second = users[0]
        if second.op_type != ({"Min": "Max", "Max": "Min"}[first.op_type]):
            continue
        inner, outer = bound(first), bound(second)
        if inner is None or outer is None or outer[0] != first.output[0]:
            continue
        low, high = ((outer[1], inner[1]) if first.op_type == "Min" else (inner[1], outer[1]))
        if low > high:
            continue
        names = [f"{second.output[0]}_clip_min", f"{second.output[0]}_clip_max"]
        for name, value in zip(names, (low, high)):
            graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
        clip = helper.make_node("Clip", [inner[0], *names], list(second.output),
                                name=f"{second.name or second.output[0]}_clip")
        index = list(graph.node).index(second)
        graph.node.insert(index, clip)
        graph.node.remove(first)
        graph.node.remove(second)
        removed.update((first.output[0], second.output[0]))
        fused += 1
    if fused:  # the old bounds, unless something else reads them
        used = {name for node in graph.node for name in node.input}
        for initializer in [i for i in graph.initializer if i.name in scalars
                            and i.name not in used]:
            graph.initializer.remove(initializer)
    return fused


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
