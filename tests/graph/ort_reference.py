"""onnxruntime as the referee: run one ONNX node on numpy inputs.

Tests build the same computation as a single-node ONNX model (through the real ``onnx`` package)
and compare onnxruntime's outputs with the graph dialect's numpy semantics.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

OPSET = 17


def run_node(op_type: str, inputs: list[np.ndarray], attributes: dict | None = None,
             outputs: int = 1, opset: int = OPSET, initializers: dict | None = None) -> list[np.ndarray]:
    """onnxruntime's outputs of one ``op_type`` node on ``inputs`` (graph inputs x0, x1, ...).

    ``initializers`` (name -> array) become constant inputs after the graph inputs, in order.
    """
    names = [f"x{i}" for i in range(len(inputs))]
    consts = initializers or {}
    node = helper.make_node(op_type, names + list(consts), [f"y{i}" for i in range(outputs)],
                            **(attributes or {}))
    graph = helper.make_graph(
        [node], "single_node",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, inputs)],
        [onnx.ValueInfoProto(name=f"y{i}") for i in range(outputs)],  # types left to onnxruntime
        initializer=[onnx.numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(names, inputs)))


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """‖ours − reference‖₂ / ‖reference‖₂ (0 when both are zero)."""
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    scale = np.linalg.norm(reference)
    diff = np.linalg.norm(ours - reference)
    return float(diff / scale) if scale else float(diff)
