"""What all graph ops share: declarations inherited from a base, and strict attribute names."""

import pytest

from xir import types as T
from xir.diagnostics import XirError
from xir.ir import Operation
from xir.opdef import IntegerAttrOf, TensorOf, attr, operand, result
from xir.parser import parse
from xir.traits import Pure
from xir.verifier import verify

CONV = """\
func.func @f(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = "graph.conv2d"(%x, %w) {%s} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  "func.return"(%y) : (tensor<1x4x6x6xf32>) -> ()
}
"""


def test_a_misspelled_attribute_is_an_error_with_a_suggestion():
    with pytest.raises(XirError) as e:
        verify(parse(CONV.replace("%s", "stride = [2, 2]"), filename="c.xir"))
    assert str(e.value) == "c.xir:2:3: error: 'graph.conv2d' op has no attribute 'stride' (did you mean 'strides'?)"


def test_declared_and_namespaced_attributes_are_accepted():
    verify(parse(CONV.replace("%s", "strides = [1, 1], xir.note = \"kept\"")))


def test_op_classes_inherit_the_declarations_of_their_bases():
    class Unary(Operation):
        input = operand(TensorOf(T.f32))
        output = result(TensorOf(T.f32))
        traits = (Pure(),)

    class Scale(Unary):
        name = "demo_base.scale"
        factor = attr(IntegerAttrOf(1, None))

    definition = Scale.definition
    assert [f.name for f in definition.of("operand")] == ["input"]
    assert [f.name for f in definition.of("attribute")] == ["factor"]
    assert [type(t) for t in definition.traits] == [Pure]
    assert str(Scale.factor.constraint) == "integer attribute >= 1"
    assert Scale.input is not Unary.input  # each op class gets its own accessor
