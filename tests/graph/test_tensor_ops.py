"""Tensor and elementwise ops of the graph dialect, checked against onnxruntime.

Each case builds the op from IR text, verifies it (which checks the declared result types against
``infer_result_types``), evaluates it on seeded random inputs and compares with the same ONNX node
run by onnxruntime: shapes must match exactly, values to a relative error of 1e-4 (arithmetic) or
exactly (data movement). ONNX parameters that are inputs in opset 17/18 (Reshape's shape, Slice's
starts, ...) are given to onnxruntime as initializers and to our op as attributes.
"""

from __future__ import annotations

import numpy as np
import pytest
from ort_reference import relative_error, run_node

from xir import attributes as A
from xir import types as T
from xir.diagnostics import XirError
from xir.dialects.graph.base import tensor_of
from xir.parser import parse
from xir.verifier import verify

I64_MAX = np.iinfo(np.int64).max


# -- building ops from text ---------------------------------------------------------------------


def type_text(shape) -> str:
    return str(tensor_of(shape))


def attr_text(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value!r} : f32"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(attr_text(v) for v in value) + "]"
    return str(int(value))


def op_text(op_name, input_shapes, attrs, result_shapes) -> str:
    """A func.func holding one ``op_name`` op on its arguments, returning its results."""
    args = ", ".join(f"%a{i}: {type_text(s)}" for i, s in enumerate(input_shapes))
    ins = ", ".join(type_text(s) for s in input_shapes)
    outs = ", ".join(type_text(s) for s in result_shapes)
    n = len(result_shapes)
    results = "%r" if n == 1 else f"%r:{n}"
    uses = "%r" if n == 1 else ", ".join(f"%r#{i}" for i in range(n))
    body = ", ".join(f"{k} = {attr_text(v)}" for k, v in attrs.items())
    return (f"func.func @f({args}) -> ({outs}) {{\n"
            f"  {results} = \"{op_name}\"({', '.join(f'%a{i}' for i in range(len(input_shapes)))})"
            f"{' {' + body + '}' if attrs else ''} : ({ins}) -> ({outs})\n"
            f"  \"func.return\"({uses}) : ({outs}) -> ()\n"
            f"}}\n")


def build(op_name, input_shapes, attrs, result_shapes):
    module = parse(op_text(op_name, input_shapes, attrs, result_shapes), filename="t.xir")
    verify(module)
    return next(op for op in module.walk() if op.name == op_name)


def check(op_name, inputs, attrs, onnx_type, onnx_attrs=None, initializers=None, outputs=1,
          opset=17, exact=False):
    """Our op against onnxruntime's node: result types, shapes and values."""
    expected = run_node(onnx_type, inputs, onnx_attrs, outputs, opset, initializers)
    op = build(op_name, [x.shape for x in inputs], attrs, [r.shape for r in expected])
    inferred = type(op).infer_result_types([v.type for v in op.operands], op.all_attributes())
    assert inferred == [tensor_of(r.shape) for r in expected]
    ours = op.evaluate(*inputs)
    assert len(ours) == len(expected)
    for mine, theirs in zip(ours, expected):
        assert isinstance(mine, np.ndarray)
        assert mine.shape == theirs.shape and mine.dtype == np.float32
        if exact:
            np.testing.assert_array_equal(mine, theirs)
        else:
            assert relative_error(mine, theirs) <= 1e-4
    return ours


def rand(*shape, seed=0, low=-1.0, high=1.0):
    return np.asarray(np.random.default_rng(seed).uniform(low, high, shape), dtype=np.float32)


def i64(values):
    return np.array(values, dtype=np.int64)


# -- constants and identity ---------------------------------------------------------------------


def test_constant_inline_and_splat():
    text = """func.func @f() -> (tensor<2x2xf32>, tensor<3xf32>) {
  %a = "graph.constant"() {value = dense<[[1.0, 2.0], [3.0, 4.5]]> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %b = "graph.constant"() {value = dense<0.25> : tensor<3xf32>} : () -> tensor<3xf32>
  "func.return"(%a, %b) : (tensor<2x2xf32>, tensor<3xf32>) -> ()
}"""
    module = parse(text)
    verify(module)
    a, b = [op for op in module.walk() if op.name == "graph.constant"]
    np.testing.assert_array_equal(a.evaluate()[0], np.array([[1, 2], [3, 4.5]], np.float32))
    np.testing.assert_array_equal(b.evaluate()[0], np.full(3, 0.25, np.float32))
    assert type(a).infer_result_types([], a.all_attributes()) == [T.tensor([2, 2], T.f32)]


def test_constant_resource():
    text = """func.func @f() -> tensor<2xf32> {
  %c = "graph.constant"() {value = dense_resource<w0> : tensor<2xf32>} : () -> tensor<2xf32>
  "func.return"(%c) : (tensor<2xf32>) -> ()
}
{-#
  dialect_resources: { builtin: { w0: "0x040000000000803F00000040" } }
#-}"""
    module = parse(text)
    verify(module)
    op = next(op for op in module.walk() if op.name == "graph.constant")
    np.testing.assert_array_equal(op.evaluate()[0], np.array([1.0, 2.0], np.float32))


def test_identity():
    check("graph.identity", [rand(2, 3)], {}, "Identity", exact=True)


# -- elementwise --------------------------------------------------------------------------------

BROADCASTS = [((2, 3), (2, 3)), ((2, 3, 4), (4,)), ((1, 3, 1), (2, 1, 5)), ((), (3,)),
              ((2, 1, 4, 1), (3, 1, 5)), ((4,), ())]


@pytest.mark.parametrize("op_name,onnx_type", [("graph.add", "Add"), ("graph.sub", "Sub"),
                                               ("graph.mul", "Mul"), ("graph.div", "Div")])
@pytest.mark.parametrize("lhs,rhs", BROADCASTS)
def test_binary(op_name, onnx_type, lhs, rhs):
    b = np.asarray(rand(*rhs, seed=2, low=0.5, high=2.0) * np.where(rand(*rhs, seed=3) < 0, -1, 1),
                   dtype=np.float32)
    check(op_name, [rand(*lhs, seed=1), b], {}, onnx_type)


@pytest.mark.parametrize("lhs,rhs", [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)),
                                     ((2, 1, 3, 4), (5, 4, 6)), ((4, 2, 3), (3, 2))])
def test_matmul(lhs, rhs):
    check("graph.matmul", [rand(*lhs, seed=1), rand(*rhs, seed=2)], {}, "MatMul")


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (5,), (4, 5), (1, 5), (4, 1), ()])
def test_gemm(trans_a, trans_b, c_shape):
    a = rand(*((3, 4) if trans_a else (4, 3)), seed=1)
    b = rand(*((5, 3) if trans_b else (3, 5)), seed=2)
    inputs = [a, b] + ([] if c_shape is None else [rand(*c_shape, seed=3)])
    attrs = {"alpha": 0.5, "beta": 2.0, "trans_a": trans_a, "trans_b": trans_b}
    onnx_attrs = {"alpha": 0.5, "beta": 2.0, "transA": trans_a, "transB": trans_b}
    check("graph.gemm", inputs, attrs, "Gemm", onnx_attrs)


def test_gemm_defaults():
    check("graph.gemm", [rand(2, 3), rand(3, 4, seed=1)], {}, "Gemm")


# -- reshaping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(axis):
    check("graph.flatten", [rand(2, 3, 4)], {"axis": axis}, "Flatten", {"axis": axis}, exact=True)


@pytest.mark.parametrize("shape,target,allowzero", [
    ((2, 3, 4), [4, -1, 3], 0), ((2, 3, 4), [0, -1], 0), ((2, 3, 4), [-1], 0),
    ((2, 3, 4), [0, 0, 2, 2], 0), ((2, 3, 4), [6, 4], 0), ((0, 3), [3, 0], 1), ((2, 3), [0, 3], 0)])
def test_reshape(shape, target, allowzero):
    check("graph.reshape", [rand(*shape)], {"shape": target, "allowzero": allowzero}, "Reshape",
          {"allowzero": allowzero}, initializers={"shape": i64(target)}, exact=True)


@pytest.mark.parametrize("shape,perm", [((2, 3, 4), None), ((2, 3, 4), [1, 0, 2]),
                                        ((2, 3, 4, 5), [0, 2, 3, 1]), ((5,), [0])])
def test_transpose(shape, perm):
    attrs = {} if perm is None else {"perm": perm}
    check("graph.transpose", [rand(*shape)], attrs, "Transpose", attrs, exact=True)


@pytest.mark.parametrize("shape,axes", [((1, 3, 1, 4), [0, 2]), ((1, 3, 1, 4), None),
                                        ((2, 1), [-1]), ((1,), [0])])
def test_squeeze(shape, axes):
    attrs = {} if axes is None else {"axes": axes}
    inits = None if axes is None else {"axes": i64(axes)}
    check("graph.squeeze", [rand(*shape)], attrs, "Squeeze", initializers=inits, exact=True)


@pytest.mark.parametrize("shape,axes", [((3, 4), [0]), ((3, 4), [-1]), ((3, 4), [1, 3]),
                                        ((), [0]), ((3, 4), [-1, 0])])
def test_unsqueeze(shape, axes):
    check("graph.unsqueeze", [rand(*shape)], {"axes": axes}, "Unsqueeze",
          initializers={"axes": i64(axes)}, exact=True)


# -- joining and cutting ------------------------------------------------------------------------


@pytest.mark.parametrize("shapes,axis", [([(2, 3), (2, 5)], 1), ([(2, 3), (4, 3), (1, 3)], 0),
                                         ([(2, 3, 4), (2, 3, 1)], -1), ([(3,)], 0)])
def test_concat(shapes, axis):
    inputs = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    check("graph.concat", inputs, {"axis": axis}, "Concat", {"axis": axis}, exact=True)


@pytest.mark.parametrize("shape,axis,split", [((3, 6), 1, [1, 2, 3]), ((5, 2), 0, [5]),
                                              ((2, 4, 3), -2, [3, 1])])
def test_split_sizes(shape, axis, split):
    check("graph.split", [rand(*shape)], {"axis": axis, "split": split}, "Split", {"axis": axis},
          initializers={"split": i64(split)}, outputs=len(split), exact=True)


@pytest.mark.parametrize("shape,axis,count", [((7, 2), 0, 3), ((2, 6), -1, 2), ((4,), 0, 4)])
def test_split_num_outputs(shape, axis, count):
    attrs = {"axis": axis, "num_outputs": count}
    check("graph.split", [rand(*shape)], attrs, "Split", attrs, outputs=count, opset=18, exact=True)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1, 0], [3, 2], None, None),
    ([-3], [-1], [1], None),
    ([0, 1], [I64_MAX, 100], [0, 2], None),
    ([-1], [-I64_MAX], [0], [-1]),
    ([3, 4], [0, 0], [1, -1], [-2, -3]),
    ([0], [5], [-1], [2]),
    ([2], [1], [0], [1]),
    ([10], [20], [1], [1]),
    ([-10], [10], [0], [1])])
def test_slice(starts, ends, axes, steps):
    x = rand(4, 5, 6)
    attrs = {"starts": starts, "ends": ends}
    inits = {"starts": i64(starts), "ends": i64(ends)}
    if axes is not None:
        attrs["axes"], inits["axes"] = axes, i64(axes)
    if steps is not None:
        attrs["steps"], inits["steps"] = steps, i64(steps)
    check("graph.slice", [x], attrs, "Slice", initializers=inits, exact=True)


@pytest.mark.parametrize("shape,pads,mode,value", [
    ((2, 3), [1, 2, 0, 1], "constant", 0.0), ((1, 2, 3, 3), [0, 0, 1, 1, 0, 0, 1, 1], "constant", 1.5),
    ((3, 4), [2, 1, 1, 3], "reflect", 0.0), ((3, 4), [2, 3, 1, 0], "edge", 0.0),
    ((4, 5), [-1, 2, 0, -2], "constant", -2.0)])
def test_pad(shape, pads, mode, value):
    attrs = {"pads": pads, "mode": mode, "value": value}
    check("graph.pad", [rand(*shape)], attrs, "Pad", {"mode": mode},
          initializers={"pads": i64(pads), "value": np.array(value, np.float32)}, exact=True)


# -- reductions and resampling ------------------------------------------------------------------


@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([-1, 0], 0), (None, 1), (None, 0), ([2, 3], 1)])
def test_reduce_mean(axes, keepdims):
    attrs = {"keepdims": keepdims} | ({} if axes is None else {"axes": axes})
    check("graph.reduce_mean", [rand(2, 3, 4, 5)], attrs, "ReduceMean", attrs)


EMPTY = np.zeros(0, np.float32)


@pytest.mark.parametrize("mode,transform,nearest_mode", [
    ("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "align_corners", "round_prefer_ceil"), ("nearest", "half_pixel", "ceil"),
    ("linear", "half_pixel", "round_prefer_floor"), ("linear", "asymmetric", "round_prefer_floor"),
    ("linear", "align_corners", "round_prefer_floor"), ("linear", "pytorch_half_pixel", "round_prefer_floor")])
@pytest.mark.parametrize("scales", [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.5, 0.5]])
def test_resize_scales(mode, transform, nearest_mode, scales):
    attrs = {"mode": mode, "coordinate_transformation_mode": transform, "nearest_mode": nearest_mode}
    check("graph.resize", [rand(1, 2, 4, 6)], attrs | {"scales": scales}, "Resize", attrs,
          initializers={"roi": EMPTY, "scales": np.array(scales, np.float32)})


@pytest.mark.parametrize("mode,transform", [("nearest", "asymmetric"), ("linear", "half_pixel"),
                                            ("linear", "align_corners"), ("nearest", "half_pixel")])
@pytest.mark.parametrize("sizes", [[1, 2, 7, 3], [1, 2, 8, 12]])
def test_resize_sizes(mode, transform, sizes):
    attrs = {"mode": mode, "coordinate_transformation_mode": transform}
    check("graph.resize", [rand(1, 2, 4, 6)], attrs | {"sizes": sizes}, "Resize", attrs,
          initializers={"roi": EMPTY, "scales": EMPTY, "sizes": i64(sizes)})


# -- verifier diagnostics -----------------------------------------------------------------------


def verify_error(op_name, input_shapes, attrs, result_shapes, input_type="f32") -> str:
    text = op_text(op_name, input_shapes, attrs, result_shapes)
    if input_type != "f32":
        text = text.replace("xf32>", f"x{input_type}>")
    with pytest.raises(XirError) as info:
        verify(parse(text, filename="t.xir"))
    return str(info.value)


def at(message: str) -> str:
    return "t.xir:2:3: error: " + message


@pytest.mark.parametrize("op_name,inputs,attrs,results,message", [
    ("graph.add", [(2, 3), (4,)], {}, [(2, 3)],
     "'graph.add' op cannot broadcast tensor<2x3xf32> with tensor<4xf32>"),
    ("graph.add", [(2, 3), (3,)], {}, [(3, 3)],
     "'graph.add' op result #0 has type 'tensor<3x3xf32>', but its operands and attributes imply "
     "'tensor<2x3xf32>'"),
    ("graph.matmul", [(2, 3), (4, 5)], {}, [(2, 5)],
     "'graph.matmul' op cannot multiply tensor<2x3xf32> by tensor<4x5xf32>: contracted dimensions "
     "3 and 4 differ"),
    ("graph.matmul", [(2, 2, 3), (3, 3, 4)], {}, [(2, 2, 4)],
     "'graph.matmul' op cannot multiply tensor<2x2x3xf32> by tensor<3x3x4xf32>: batch dimensions "
     "do not broadcast"),
    ("graph.gemm", [(2, 3), (2, 4)], {"trans_b": 1}, [(2, 2)],
     "'graph.gemm' op cannot multiply tensor<2x3xf32> by tensor<2x4xf32> (trans_a = 0, trans_b = 1): "
     "contracted dimensions 3 and 4 differ"),
    ("graph.gemm", [(2, 3), (3, 4), (3,)], {}, [(2, 4)],
     "'graph.gemm' op cannot broadcast C tensor<3xf32> to the product tensor<2x4xf32>"),
    ("graph.gemm", [(2, 3), (3, 4)], {"trans_a": 2}, [(2, 4)],
     "'graph.gemm' op attribute 'trans_a' must be integer attribute in [0, 1], but got 2"),
    ("graph.flatten", [(2, 3)], {"axis": 3}, [(6, 1)],
     "'graph.flatten' op axis 3 is out of range for tensor<2x3xf32> (expects [-2, 2])"),
    ("graph.reshape", [(2, 3)], {"shape": [4, -1]}, [(4, 2)],
     "'graph.reshape' op cannot reshape tensor<2x3xf32>: 6 elements do not divide into 4"
     .replace("tensor<2x3xf32>:", "tensor<2x3xf32> to [4, -1]:")),
    ("graph.reshape", [(2, 3)], {"shape": [5]}, [(5,)],
     "'graph.reshape' op cannot reshape tensor<2x3xf32> (6 elements) to [5] (5 elements)"),
    ("graph.reshape", [(2, 3)], {"shape": [-1, -1]}, [(6, 1)],
     "'graph.reshape' op shape [-1, -1] has more than one -1"),
    ("graph.transpose", [(2, 3, 4)], {"perm": [0, 0, 1]}, [(2, 2, 3)],
     "'graph.transpose' op perm [0, 0, 1] is not a permutation of the dimensions of tensor<2x3x4xf32>"),
    ("graph.concat", [(2, 3), (3, 4)], {"axis": 1}, [(2, 7)],
     "'graph.concat' op cannot concatenate tensor<2x3xf32> with tensor<3x4xf32> along axis 1: "
     "the other dimensions differ"),
    ("graph.concat", [(2, 3)], {}, [(2, 3)], "'graph.concat' op requires attribute 'axis'"),
    ("graph.concat", [(2, 3), (2, 3, 1)], {"axis": 0}, [(4, 3)],
     "'graph.concat' op cannot concatenate tensor<2x3xf32> with tensor<2x3x1xf32>: their ranks differ"),
    ("graph.matmul", [(), (3,)], {}, [(3,)],
     "'graph.matmul' op cannot multiply tensor<f32> by tensor<3xf32>: operands must have rank at least 1"),
    ("graph.gemm", [(2, 3), (3, 4), (2, 4, 1)], {}, [(2, 4)],
     "'graph.gemm' op cannot broadcast C tensor<2x4x1xf32> to the product tensor<2x4xf32>"),
    ("graph.gemm", [(2, 3), (3, 4), (4,), (4,)], {}, [(2, 4)],
     "'graph.gemm' op expects at most one addend C, but got 2"),
    ("graph.gemm", [(2, 3, 1), (3, 4)], {}, [(2, 4)],
     "'graph.gemm' op expects 2-D A and B, but got tensor<2x3x1xf32> and tensor<3x4xf32>"),
    ("graph.reshape", [(0, 3)], {"shape": [0, -1], "allowzero": 1}, [(0, 3)],
     "'graph.reshape' op shape [0, -1] has both 0 and -1, which allowzero = 1 forbids"),
    ("graph.reshape", [(2, 3)], {"shape": [3, -2]}, [(3, 2)],
     "'graph.reshape' op shape [3, -2] has a negative dimension other than -1"),
    ("graph.split", [(4,)], {"num_outputs": 0}, [(4,)],
     "'graph.split' op num_outputs must be at least 1, but got 0"),
    ("graph.split", [(2,)], {"num_outputs": 3}, [(1,), (1,), (0,)],
     "'graph.split' op cannot split axis 0 of tensor<2xf32> into 3 pieces"),
    ("graph.slice", [(4, 4)], {"starts": [0, 0], "ends": [1, 1], "axes": [1, -1]}, [(4, 1)],
     "'graph.slice' op axes [1, -1] repeat an axis"),
    ("graph.pad", [(2, 3)], {"pads": [-3, 0, 0, 0]}, [(0, 3)],
     "'graph.pad' op pads [-3, 0] crop more than the dimension 2 of tensor<2x3xf32>"),
    ("graph.reduce_mean", [(2, 3)], {"axes": [1, -1]}, [(2, 1)],
     "'graph.reduce_mean' op axes [1, -1] repeat an axis"),
    ("graph.resize", [(1, 1, 2, 2)], {}, [(1, 1, 2, 2)],
     "'graph.resize' op expects exactly one of 'scales' and 'sizes'"),
    ("graph.resize", [(1, 1, 2, 2)], {"sizes": [1, 1, 4, 4], "mode": "cubic"}, [(1, 1, 4, 4)],
     "'graph.resize' op attribute 'mode' must be one of \"nearest\", \"linear\", but got \"cubic\""),
    ("graph.transpose", [(2, 3)], {"perm": [0]}, [(2,)],
     "'graph.transpose' op perm [0] is not a permutation of the dimensions of tensor<2x3xf32>"),
    ("graph.squeeze", [(1, 2)], {"axes": [2]}, [(1, 2)],
     "'graph.squeeze' op axis 2 is out of range for tensor<1x2xf32> (expects [-2, 1])"),
    ("graph.split", [(4,)], {}, [(2,), (2,)],
     "'graph.split' op expects exactly one of 'split' and 'num_outputs'"),
    ("graph.split", [(4,)], {"split": [1, 2]}, [(1,), (2,)],
     "'graph.split' op split [1, 2] does not add up to dimension 0 of tensor<4xf32>"),
    ("graph.split", [(4,)], {"split": [1, 3]}, [(1,), (3,), (0,)],
     "'graph.split' op has 3 results, but its operands imply 2"),
    ("graph.slice", [(4,)], {"starts": [0], "ends": [2], "steps": [0]}, [(2,)],
     "'graph.slice' op steps must not be 0"),
    ("graph.slice", [(4,)], {"starts": [0, 1], "ends": [2]}, [(2,)],
     "'graph.slice' op starts, ends, axes and steps have different lengths (2, 1, 2, 2)"),
    ("graph.pad", [(2, 3)], {"pads": [1, 1]}, [(4, 3)],
     "'graph.pad' op expects 4 pads for tensor<2x3xf32>, but got 2"),
    ("graph.pad", [(2, 3)], {"pads": [0, 3, 0, 0], "mode": "reflect"}, [(2, 6)],
     "'graph.pad' op reflect pads [3, 0] must be smaller than the dimension 3 of tensor<2x3xf32>"),
    ("graph.pad", [(2, 3)], {"pads": [0, 0, 0, 0], "mode": "wrap"}, [(2, 3)],
     "'graph.pad' op attribute 'mode' must be one of \"constant\", \"reflect\", \"edge\", "
     "but got \"wrap\""),
    ("graph.squeeze", [(2, 1)], {"axes": [0]}, [(1,)],
     "'graph.squeeze' op cannot squeeze axis 0 of tensor<2x1xf32>: its size is 2, not 1"),
    ("graph.unsqueeze", [(2,)], {"axes": [0, -3]}, [(1, 1, 2)],
     "'graph.unsqueeze' op axes [0, -3] repeat an axis"),
    ("graph.reduce_mean", [(2, 3)], {"axes": [2]}, [(2, 3)],
     "'graph.reduce_mean' op axis 2 is out of range for tensor<2x3xf32> (expects [-2, 1])"),
    ("graph.resize", [(1, 1, 2, 2)], {"scales": [1.0, 2.0]}, [(1, 1, 2, 2)],
     "'graph.resize' op expects 4 positive scales for tensor<1x1x2x2xf32>, but got 2"),
])
def test_verifier_errors(op_name, inputs, attrs, results, message):
    assert verify_error(op_name, inputs, attrs, results) == at(message)


def test_verifier_rejects_integer_tensors():
    message = verify_error("graph.add", [(2,), (2,)], {}, [(2,)], input_type="i32")
    assert message == at("'graph.add' op operand 'lhs' must be tensor of f32, but got 'tensor<2xi32>'")


def test_dynamic_dims_broadcast_and_matmul():
    from xir.dialects.graph.tensor import AddOp, MatMulOp, ReshapeOp

    dyn = T.DYNAMIC
    assert AddOp.infer_result_types([tensor_of((None, 3)), tensor_of((1, 3))], {}) == [tensor_of((None, 3))]
    assert MatMulOp.infer_result_types([tensor_of((None, 3)), tensor_of((3, 4))], {}) == [tensor_of((dyn, 4))]
    module = parse(op_text("graph.reshape", [(2, 3)], {"shape": [0, -1]}, [(2, 3)]))
    op = next(op for op in module.walk() if op.name == "graph.reshape")
    assert ReshapeOp.infer_result_types([tensor_of((None, 3))], op.all_attributes()) == [
        tensor_of((None, 3))]


@pytest.mark.parametrize("shape, target, expected", [
    ((None, 8, 8, 8), [0, -1], (None, 512)),        # a dynamic batch copied through: -1 is known
    ((None, 8, 8, 8), [0, 8, -1], (None, 8, 64)),
    ((None, 8, 8, 8), [-1, 512], (None, 512)),      # the batch is not copied: -1 is dynamic
    ((2, None, 4), [0, -1], (2, None)),
    ((None, 4, None), [0, 0, -1], (None, 4, None)),
    ((None, 6), [0, 2, 3], (None, 2, 3)),
])
def test_reshape_infers_through_copied_dynamic_dims(shape, target, expected):
    from xir.dialects.graph.tensor import ReshapeOp

    attributes = {"shape": A.ArrayAttr(tuple(A.IntegerAttr(d) for d in target))}
    assert ReshapeOp.infer_result_types([tensor_of(shape)], attributes) == [tensor_of(expected)]


def test_constant_result_must_match_value():
    text = """func.func @f() -> tensor<3xf32> {
  %c = "graph.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<3xf32>
  "func.return"(%c) : (tensor<3xf32>) -> ()
}"""
    with pytest.raises(XirError) as info:
        verify(parse(text, filename="t.xir"))
    assert str(info.value) == at("'graph.constant' op result #0 has type 'tensor<3xf32>', but its "
                                 "operands and attributes imply 'tensor<2xf32>'")


def test_traits():
    from xir.dialects.graph import tensor as G
    from xir.traits import Commutative, ConstantLike, Pure

    assert all(op.definition.has_trait(Pure) for op in G.TENSOR_OPS)
    assert {op.name for op in G.TENSOR_OPS if op.definition.has_trait(Commutative)} == {
        "graph.add", "graph.mul"}
    assert [op.name for op in G.TENSOR_OPS if op.definition.has_trait(ConstantLike)] == ["graph.constant"]
    assert all(op.__doc__ for op in G.TENSOR_OPS)


def test_dynamic_dims_verify_from_text():
    text = """func.func @f(%x: tensor<?x3xf32>, %y: tensor<2x3xf32>) -> tensor<?x3xf32> {
  %s = "graph.add"(%x, %y) : (tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = "graph.concat"(%x, %s) {axis = 0} : (tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
  %t = "graph.transpose"(%c) : (tensor<?x3xf32>) -> tensor<3x?xf32>
  %f = "graph.flatten"(%c) {axis = 0} : (tensor<?x3xf32>) -> tensor<1x?xf32>
  "func.return"(%c) : (tensor<?x3xf32>) -> ()
}"""
    verify(parse(text))


def test_reshape_error_on_dynamic_copied_dims_counts_the_rest():
    from xir.dialects.graph.base import ShapeError
    from xir.dialects.graph.tensor import ReshapeOp

    with pytest.raises(ShapeError) as info:
        ReshapeOp.infer_result_types([tensor_of((None, 6))], {"shape": A.ArrayAttr((A.IntegerAttr(0), A.IntegerAttr(4)))})
    assert str(info.value) == ("cannot reshape tensor<?x6xf32> (6 elements besides the copied dimensions) "
                               "to [0, 4] (4 elements besides the copied dimensions)")
