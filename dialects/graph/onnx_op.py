"""``graph.onnx``: an ONNX node that the graph dialect has no op for, kept whole.

The importer turns a node it cannot express in graph ops (an op type outside the dialect, a 1-D
or 3-D convolution, an integer tensor, ...) into one ``graph.onnx`` op that keeps the node's op
type, domain, opset version and attributes, so nothing is lost::

    %y = "graph.onnx"(%x) {op_type = "Elu", domain = "", opset = 7,
                           node_attributes = {alpha = 1.0 : f32}}
       : (tensor<3x2x5xf32>) -> tensor<3x2x5xf32> loc("elu1")

It runs on the CPU: :meth:`OnnxOp.evaluate` rebuilds the node as a one-node ONNX model and runs
it in onnxruntime (one session per distinct node, cached). Its result types come from ONNX shape
inference at import time; the verifier cannot re-derive them, so it checks only the op's own
attributes.
"""

from __future__ import annotations

from xir import attributes as A
from xir.opdef import AnyTensor, IntegerAttrC, OfClass, StringAttrC, attr, var_operand, var_result

from .base import GraphOp

NodeAttributes = OfClass((A.DictionaryAttr,), "dictionary attribute")
Positions = OfClass((A.DenseArrayAttr,), "array<i64: ...> attribute")
_KEEPABLE = (A.IntegerAttr, A.FloatAttr, A.StringAttr, A.DenseArrayAttr, A.ArrayAttr,
             A.DenseElementsAttr, A.DenseResourceAttr)


class OnnxOp(GraphOp):
    """An ONNX node outside the graph dialect; runs through onnxruntime."""

    name = "graph.onnx"
    inputs = var_operand(AnyTensor)
    outputs = var_result(AnyTensor)
    op_type = attr(StringAttrC, doc="the ONNX op type (``Elu``)")
    domain = attr(StringAttrC, optional=True, doc="the operator set domain ('' is ai.onnx)")
    opset = attr(IntegerAttrC, doc="the version of ``domain`` the node was written for")
    node_attributes = attr(NodeAttributes, optional=True, doc="the node's ONNX attributes")
    absent_inputs = attr(Positions, optional=True,
                         doc="positions of omitted optional inputs (ONNX's empty input names)")

    def verify_(self) -> None:
        self._verify_attribute_names()
        if not self.op_type.value:
            raise self.error("needs a non-empty op_type")
        if self.opset.value < 1:
            raise self.error(f"opset must be at least 1, got {self.opset.value}")
        for key, value in (self.node_attributes.value if self.node_attributes else {}).items():
            if not isinstance(value, _KEEPABLE) or (
                    isinstance(value, A.ArrayAttr) and
                    not all(isinstance(v, A.StringAttr) for v in value)):
                raise self.error(f"node attribute '{key}' = {value} has no ONNX spelling")
        absent = self.absent_positions()
        if absent and (min(absent) < 0 or len(set(absent)) != len(absent)):
            raise self.error("absent_inputs must list distinct non-negative positions")

    @property
    def onnx_domain(self) -> str:
        """The node's domain ('' for the default ai.onnx domain)."""
        return self.domain.value if self.domain is not None else ""

    def absent_positions(self) -> tuple[int, ...]:
        """Input positions of the ONNX node that are left empty."""
        return tuple(int(v) for v in self.absent_inputs.values) if self.absent_inputs else ()

    def to_onnx_node(self, input_names: list[str], output_names: list[str], name: str):
        """The ``onnx.NodeProto`` this op stands for, its inputs and outputs named as given (the
        absent inputs are put back as empty names)."""
        import onnx

        from .onnx_mapping import attribute_to_onnx

        names = list(input_names)
        for position in sorted(self.absent_positions()):
            names.insert(position, "")
        node = onnx.helper.make_node(self.op_type.value, names, list(output_names), name=name,
                                     domain=self.onnx_domain or None)
        attributes = self.node_attributes.value if self.node_attributes else {}
        node.attribute.extend(attribute_to_onnx(k, v) for k, v in attributes.items())
        return node

    def evaluate(self, *inputs):
        from .onnx_runner import run_onnx_op

        return run_onnx_op(self, inputs)


def node_attributes_attr(attributes: dict) -> A.DictionaryAttr | None:
    """The ``node_attributes`` value for a dict of xir attributes (None when empty)."""
    return A.DictionaryAttr(dict(attributes)) if attributes else None


ONNX_OPS = [OnnxOp]
