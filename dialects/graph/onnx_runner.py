"""Running one ``graph.onnx`` op in onnxruntime: the CPU executor for what the dialect cannot say.

The op is rebuilt as a one-node ONNX model (inputs and outputs typed as in the IR, dynamic
dimensions symbolic) and run on one thread. Sessions are cached by the node's text and types,
so a model that runs many times pays for each distinct node once.
"""

from __future__ import annotations

from xir.diagnostics import XirError, first_line

_SESSION_CACHE_SIZE = 256


def run_onnx_op(op, inputs) -> list:
    """The outputs of ``graph.onnx`` op ``op`` on numpy ``inputs`` (XirError naming the node if
    onnxruntime refuses the node or the inputs)."""
    import numpy as np

    session = _session_for(op)
    feeds = {f"in{i}": np.asarray(x) for i, x in enumerate(inputs)}
    try:
        return session.run(None, feeds)
    except Exception as e:  # onnxruntime raises its own exception types
        raise _error(op, f"onnxruntime failed to run it: {first_line(e)}") from None


def _session_for(op):
    key = (str(op.op_type), str(op.domain), op.opset.value, str(op.node_attributes),
           op.absent_positions(), tuple(str(v.type) for v in op.operands),
           tuple(str(r.type) for r in op.results))
    session = _sessions.pop(key, None)
    if session is None:
        try:
            session = _new_session(runnable_model(op).SerializeToString())
        except Exception as e:  # onnx or onnxruntime refusing the node
            raise _error(op, f"onnxruntime cannot load it: {first_line(e)}") from None
        if len(_sessions) >= _SESSION_CACHE_SIZE:
            _sessions.pop(next(iter(_sessions)))
    _sessions[key] = session  # most recently used last
    return session


_sessions: dict = {}


def _new_session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: old-opset warnings are not the user's business
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


ORT_MIN_OPSET = 7  # onnxruntime's oldest supported opset of the default domain


def runnable_model(op):
    """:func:`one_node_model`, upgraded to opset 7 if it is older (onnxruntime has no kernels
    for most ops before it)."""
    import onnx

    model = one_node_model(op)
    if op.onnx_domain in ("", "ai.onnx") and op.opset.value < ORT_MIN_OPSET:
        model = onnx.version_converter.convert_version(model, ORT_MIN_OPSET)
    return model


def one_node_model(op):
    """An ``onnx.ModelProto`` holding ``op`` as its only node."""
    import onnx

    from .onnx_mapping import value_type_to_onnx

    helper = onnx.helper
    inputs = [value_type_to_onnx(f"in{i}", v.type) for i, v in enumerate(op.operands)]
    outputs = [value_type_to_onnx(f"out{i}", r.type) for i, r in enumerate(op.results)]
    node = op.to_onnx_node([i.name for i in inputs], [o.name for o in outputs], "node")
    graph = helper.make_graph([node], "graph_onnx", inputs, outputs)
    opsets = [helper.make_opsetid(op.onnx_domain, op.opset.value)]
    if op.onnx_domain not in ("", "ai.onnx"):
        opsets.append(helper.make_opsetid("", onnx.defs.onnx_opset_version()))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = max(3, helper.find_min_ir_version_for(opsets, ignore_unknown=True))
    return model


def _error(op, message: str) -> XirError:
    from xir.attributes import location_name

    where = location_name(op.location)
    node = f" (node '{where}')" if where else ""
    return XirError(f"graph.onnx '{op.op_type.value}'{node}: {message}")
