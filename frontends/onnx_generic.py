"""ONNX nodes that graph ops cannot express become one ``graph.onnx`` op each.

:func:`why_generic` says, before any conversion is tried, whether a node must stay whole (a
custom domain, a non-f32 run-time tensor); converters that find a limitation of the dialect on
their own raise :class:`~.onnx_import.Unsupported`. :func:`emit_generic` then builds the op:
its operands are the node's inputs (constants keep their element type), its attributes the
node's, and its result types come from ONNX shape inference on the node alone, or else from
the types the model itself declares for those outputs. The reason is kept in the discardable
attribute ``xir.fallback`` so that reports can say why a layer runs on the CPU.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.diagnostics import first_line
from xir.dialects.graph.onnx_mapping import (attribute_from_onnx, onnx_code_of,
                                             value_type_from_onnx, value_type_to_onnx)
from xir.dialects.graph.onnx_op import node_attributes_attr
from xir.ir import Operation

DEFAULT_DOMAINS = ("", "ai.onnx")
_INFERENCE_CONST_LIMIT = 4096  # constant inputs up to this size are shown to shape inference


def why_generic(ctx, node, ins: list) -> str | None:
    """Why ``node`` cannot become graph ops whatever its attributes (None if it may)."""
    if node.domain not in DEFAULT_DOMAINS:
        return f"op of domain '{node.domain}'"
    if node.op_type in ("Identity", "Dropout", "Shape", "Size"):
        return None  # these only alias or read shapes: any element type will do
    for x in ins:
        if x is not None and not ctx.is_const(x) and x.type.element_type != T.f32:
            return f"graph ops take f32 tensors; an input here is {x.type}"
    return None


def emit_generic(ctx, node, ins: list, reason: str | None) -> list:
    """Build the ``graph.onnx`` op for ``node`` on inputs ``ins``; its results."""
    try:
        attributes = {a.name: attribute_from_onnx(a) for a in node.attribute}
    except ValueError as e:
        raise ctx.error(f"unsupported ONNX op '{node.op_type}': {e}") from None
    while ins and ins[-1] is None:
        ins = ins[:-1]
    absent = [i for i, x in enumerate(ins) if x is None]
    present = [x for x in ins if x is not None]
    outputs = list(node.output)
    while outputs and not outputs[-1]:
        outputs.pop()
    types = _output_types(ctx, node, ins, outputs)
    operands = [ctx.value(x, any_dtype=True) for x in present]
    attrs = {
        "op_type": A.StringAttr(node.op_type),
        "domain": A.StringAttr(node.domain) if node.domain not in DEFAULT_DOMAINS else None,
        "opset": A.IntegerAttr(ctx.opset_of(node.domain)),
        "node_attributes": node_attributes_attr(attributes),
        "absent_inputs": A.DenseArrayAttr(T.i64, tuple(absent)) if absent else None,
        "xir.fallback": A.StringAttr(reason) if reason else None,
    }
    op = Operation.create("graph.onnx", operands, types,
                          attributes={k: v for k, v in attrs.items() if v is not None},
                          location=ctx.location)
    ctx.block.append(op)
    return list(op.results)


def _output_types(ctx, node, ins: list, outputs: list[str]) -> list[T.TensorType]:
    """The types of ``node``'s outputs: inferred for the node alone, else declared by the model."""
    inferred = _infer_node(ctx, node, ins, len(outputs))
    types = []
    for i, name in enumerate(outputs):
        type_ = inferred[i] if i < len(inferred) else None
        if type_ is None and name:
            type_ = ctx.declared_type(name)
        if type_ is None:
            raise ctx.error(f"cannot infer the type of output '{name or i}' (ONNX shape inference "
                            "does not know this op; give the model value_info for it)")
        types.append(type_)
    return types


def _infer_node(ctx, node, ins: list, n_outputs: int) -> list:
    """ONNX shape inference on ``node`` alone, its inputs typed as imported."""
    import numpy as np
    import onnx

    helper = onnx.helper
    names, inputs, inits = [], [], []
    for i, x in enumerate(ins):
        if x is None:
            names.append("")
            continue
        names.append(f"in{i}")
        if ctx.is_const(x):
            inputs.append(helper.make_tensor_value_info(f"in{i}", onnx_code_of(x.dtype), x.shape))
            if x.size <= _INFERENCE_CONST_LIMIT:
                inits.append(onnx.numpy_helper.from_array(np.asarray(x), f"in{i}"))
        else:
            inputs.append(value_type_to_onnx(f"in{i}", x.type))
    out_names = [f"out{i}" for i in range(n_outputs)]
    one = helper.make_node(node.op_type, names, out_names, domain=node.domain or None)
    one.attribute.extend(node.attribute)
    graph = helper.make_graph([one], "node", inputs, [helper.make_empty_tensor_value_info(n)
                                                      for n in out_names], initializer=inits)
    model = helper.make_model(graph, opset_imports=list(ctx.model.opset_import))
    model.ir_version = max(ctx.model.ir_version, 4)  # initializers need not be graph inputs
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:  # onnx's InferenceError and friends: the node itself is wrong
        raise ctx.error(f"invalid node: {first_line(e)}") from None
    types = []
    for out in model.graph.output:
        try:
            types.append(value_type_from_onnx(out.type, f"output '{out.name}'"))
        except ValueError as e:
            raise ctx.error(str(e)) from None
    return types
