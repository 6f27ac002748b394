"""Counting the arithmetic of an ONNX graph (multiply-adds count as two operations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INT8_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM",
            "MatMulIntegerToFloat", "QGemm", "DynamicQuantizeMatMul"}


def count_flops(model_path: str | Path, batch: int = 1) -> dict:
    """Operations per inference at ``batch``, by op type, from static shapes.

    Counts Conv, ConvInteger/QLinearConv, MatMul (and integer forms), Gemm and LSTM/GRU, the ops
    that hold nearly all the arithmetic; the rest is reported as not counted.
    """
    import onnx
    from onnx import shape_inference

    model = onnx.load_model(str(model_path), load_external_data=False)
    graph = model.graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    model = shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for tensor in model.graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear"
                   for out in node.output}
    by_op: dict[str, float] = {}
    int8 = 0.0
    uncounted: set[str] = set()
    for node in model.graph.node:
        ops = _node_ops(node, shapes)
        if ops is None:
            continue
        if ops < 0:
            uncounted.add(node.op_type)
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0.0) + ops
        # a QDQ node (its data input dequantized) runs as an integer kernel once fused
        if node.op_type in INT8_OPS or (node.input and node.input[0] in dequantized):
            int8 += ops
    total = sum(by_op.values())
    return {"ops": total, "by_op": by_op, "int8_ops": int8,
            "int8_ops_fraction": int8 / total if total else 0.0,
            "uncounted_op_types": sorted(uncounted), "batch": batch}


def _known(shape) -> bool:
    return shape is not None and len(shape) > 0 and all(isinstance(d, int) and d > 0 for d in shape)


def _node_ops(node, shapes) -> float | None:
    """Operations of a node; None for ops we do not count, -1 when shapes are unknown."""
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        weight = node.input[3] if op == "QLinearConv" else node.input[1]
        out = shapes.get(node.output[0])
        w = shapes.get(weight)
        if not (_known(out) and _known(w)):
            return -1
        # out (N, M, H, W); weight (M, C/group, kh, kw): MACs = N*M*H*W * C/group*kh*kw
        return 2.0 * float(np.prod(out)) * float(np.prod(w[1:]))
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat", "Gemm", "QGemm",
              "DynamicQuantizeMatMul"):
        a_name = node.input[0]
        b_name = node.input[3] if op == "QLinearMatMul" else node.input[1]
        a, b, out = shapes.get(a_name), shapes.get(b_name), shapes.get(node.output[0])
        if not (_known(out) and (_known(a) or _known(b))):
            return -1
        inner = a[-1] if _known(a) else b[-2]
        if op in ("Gemm", "QGemm"):
            trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
            inner = (a[-2] if trans_a else a[-1]) if _known(a) else inner
        return 2.0 * float(np.prod(out)) * float(inner)
    if op in ("LSTM", "GRU", "DynamicQuantizeLSTM"):
        x = shapes.get(node.input[0])
        hidden = next((a.i for a in node.attribute if a.name == "hidden_size"), None)
        if not _known(x) or not hidden:
            return -1
        steps, batch, features = x
        gates = 4 if op != "GRU" else 3
        directions = 2 if any(a.name == "direction" and a.s == b"bidirectional"
                              for a in node.attribute) else 1
        return 2.0 * steps * batch * gates * hidden * (features + hidden) * directions
    return None
