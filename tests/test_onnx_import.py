"""ONNX import: small models built with onnx.helper (seeded random weights), each imported,
verified, printed and parsed back, and run with the interpreter against onnxruntime."""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from xir.attributes import location_name
from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_function, run_module
from xir.parser import parse
from xir.printer import print_ir
from xir.verifier import verify

RTOL = 1e-4


def relative_error(ours, reference) -> float:
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    scale = np.linalg.norm(reference)
    return float(np.linalg.norm(ours - reference) / scale) if scale else float(np.linalg.norm(ours))


class Graph:
    """A tiny builder of ONNX graphs with seeded random initializers."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def weight(self, shape, scale=None, name=None, positive=False):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if scale is None else scale
        array = self.rng.standard_normal(shape).astype(np.float32) * np.float32(scale)
        if positive:
            array = np.abs(array) + np.float32(0.5)
        return self.const(array, name)

    def const(self, array, name=None):
        self.count += 1
        name = name or f"w{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, n_out=1, name=None, **attrs):
        self.count += 1
        name = name or f"{op.lower()}{self.count}"
        outs = [f"{name}_out{i}" if i else f"{name}_out" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, inputs: dict, outputs: list, opset=17, ir_version=8, inits_as_inputs=False):
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()]
        if inits_as_inputs:
            ins += [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in self.inits]
        outs = [onnx.ValueInfoProto(name=o) for o in outputs]
        graph = helper.make_graph(self.nodes, "test", ins, outs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = ir_version
        return model


def ort_run(model, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check(model, feeds, rtol=RTOL, roundtrip=True):
    """Import ``model``, verify it, round-trip it through text, run both the imported and the
    re-parsed module and compare with onnxruntime; returns (module, max relative error)."""
    module = import_onnx(model)
    verify(module)
    expected = ort_run(model, feeds)
    modules = [module]
    if roundtrip:
        text = print_ir(module)
        reparsed = parse(text)
        verify(reparsed)
        assert print_ir(reparsed) == text
        modules.append(reparsed)
    worst = 0.0
    for m in modules:
        got = run_module(m, feeds)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            err = relative_error(g, e)
            worst = max(worst, err)
            assert err <= rtol, err
    return module, worst


def ops_of(module):
    return [op.name for op in module.walk() if op.name.startswith("graph.")]


def rand(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- models --------------------------------------------------------------------------------------


def test_conv_bn_relu_maxpool_gemm():
    g = Graph()
    y = g.node("Conv", ["x", g.weight((8, 3, 3, 3), name="conv1.weight"), g.weight((8,), 0.1)],
               name="conv1", pads=[1, 1, 1, 1])
    y = g.node("BatchNormalization", [y, g.weight((8,), positive=True), g.weight((8,), 0.1),
                                      g.weight((8,), 0.1), g.weight((8,), positive=True)],
               name="bn1", epsilon=1e-3)
    y = g.node("Relu", [y], name="relu1")
    y = g.node("MaxPool", [y], name="pool1", kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("Flatten", [y], name="flatten")
    y = g.node("Gemm", [y, g.weight((10, 128)), g.weight((10,), 0.1)], name="fc", transB=1)
    model = g.model({"x": [1, 3, 8, 8]}, [y])
    module, err = check(model, {"x": rand(1, 3, 8, 8)})
    assert ops_of(module).count("graph.conv2d") == 1
    assert {"graph.batch_norm", "graph.max_pool2d", "graph.gemm", "graph.flatten"} <= set(ops_of(module))
    names = {location_name(op.location) for op in module.walk() if op.name == "graph.conv2d"}
    assert names == {"conv1"}
    assert 'loc("conv1")' in print_ir(module)
    text = print_ir(module)
    assert "dense_resource<conv1.weight>" in text  # the 8x3x3x3 weight lives in a resource
    assert "conv1.weight" in module.resources and 'loc("conv1.weight")' in text
    assert "dense<[" in text  # the 8-element bias is inline


def test_input_names_that_are_not_identifiers():
    g = Graph(15)
    y = g.node("Relu", ["input/0"])
    model = g.model({"input/0": [2, 3]}, [y])
    module, _ = check(model, {"input/0": rand(2, 3)})
    assert '%input_0: tensor<2x3xf32> {xir.name = "input/0"}' in print_ir(module)
    (out,) = run_module(module, {"input_0": rand(2, 3)})  # the IR name works too
    assert out.shape == (2, 3)


def test_residual_add_and_avgpool():
    g = Graph(1)
    a = g.node("Conv", ["x", g.weight((4, 4, 3, 3))], pads=[1, 1, 1, 1])
    a = g.node("Relu", [a])
    b = g.node("Conv", [a, g.weight((4, 4, 3, 3))], pads=[1, 1, 1, 1])
    s = g.node("Add", [b, "x"])
    s = g.node("Relu", [s])
    s = g.node("AveragePool", [s], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    s = g.node("GlobalAveragePool", [s])
    check(g.model({"x": [2, 4, 9, 9]}, [s]), {"x": rand(2, 4, 9, 9)})


def test_concat_and_sum():
    g = Graph(2)
    a = g.node("Conv", ["x", g.weight((3, 2, 1, 1))])
    b = g.node("Conv", ["x", g.weight((5, 2, 3, 3))], auto_pad="SAME_UPPER")
    c = g.node("Concat", [a, b, "x"], axis=1)
    d = g.node("Sum", [c, c, c])
    module, _ = check(g.model({"x": [1, 2, 6, 6]}, [d]), {"x": rand(1, 2, 6, 6)})
    assert ops_of(module).count("graph.add") == 2


def test_depthwise_conv_and_clip():
    g = Graph(3)
    y = g.node("Conv", ["x", g.weight((6, 1, 3, 3)), g.weight((6,), 0.1)], group=6,
               strides=[2, 2], pads=[1, 1, 1, 1])
    zero, six = g.const(np.array(0, np.float32)), g.const(np.array(6, np.float32))
    y = g.node("Clip", [y, zero, six])
    y = g.node("Conv", [y, g.weight((4, 6, 1, 1))])
    y = g.node("LeakyRelu", [y], alpha=0.2)
    module, _ = check(g.model({"x": [1, 6, 7, 7]}, [y]), {"x": rand(1, 6, 7, 7)})
    conv = next(op for op in module.walk() if op.name == "graph.conv2d")
    assert conv.attributes["group"].value == 6


def test_shape_gather_concat_reshape_chain_folds():
    g = Graph(4)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3))])
    shape = g.node("Shape", [y])
    batch = g.node("Gather", [shape, g.const(np.array(0, np.int64))], axis=0)
    batch = g.node("Unsqueeze", [batch, g.const(np.array([0], np.int64))])
    target = g.node("Concat", [batch, g.const(np.array([-1], np.int64))], axis=0)
    flat = g.node("Reshape", [y, target])
    out = g.node("MatMul", [flat, g.weight((64, 5))])
    module, _ = check(g.model({"x": [2, 3, 6, 6]}, [out]), {"x": rand(2, 3, 6, 6)})
    names = ops_of(module)
    assert "graph.reshape" in names and "graph.concat" not in names
    reshape = next(op for op in module.walk() if op.name == "graph.reshape")
    assert [a.value for a in reshape.attributes["shape"]] == [2, -1]


def test_flatten_chain_with_dynamic_batch():
    """PyTorch's ``x.view(x.size(0), -1)`` under a dynamic batch: the batch dim is a hole in the
    folded shape, and becomes 0 (copy) in the reshape."""
    g = Graph(16)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3))])
    shape = g.node("Shape", [y])
    batch = g.node("Gather", [shape, g.const(np.array(0, np.int64))], axis=0)
    batch = g.node("Unsqueeze", [batch, g.const(np.array([0], np.int64))])
    target = g.node("Concat", [batch, g.const(np.array([-1], np.int64))], axis=0)
    flat = g.node("Reshape", [y, target])
    out = g.node("MatMul", [flat, g.weight((64, 5))])
    model = g.model({"x": ["N", 3, 6, 6]}, [out])
    for batch in (1, 3):
        module, _ = check(model, {"x": rand(batch, 3, 6, 6)})
    reshape = next(op for op in module.walk() if op.name == "graph.reshape")
    assert [a.value for a in reshape.attributes["shape"]] == [0, -1]
    assert "tensor<?x5xf32>" in print_ir(module)


def test_arithmetic_on_a_dynamic_dimension_is_refused():
    g = Graph(17)
    shape = g.node("Shape", ["x"])
    twice = g.node("Mul", [shape, g.const(np.array([2, 1], np.int64))], name="double")
    y = g.node("Reshape", ["x", twice])
    with pytest.raises(XirError, match="dynamic dimension.*node 'double'"):
        import_onnx(g.model({"x": ["N", 4]}, [y]))


def test_constant_and_constant_of_shape():
    g = Graph(5)
    c = g.node("Constant", [], value=numpy_helper.from_array(rand(1, 3, 1, 1, seed=9), "c"))
    ones = g.node("ConstantOfShape", [g.const(np.array([1, 3, 4, 4], np.int64))],
                  value=numpy_helper.from_array(np.array([0.5], np.float32)))
    y = g.node("Mul", ["x", c])
    y = g.node("Add", [y, ones])
    check(g.model({"x": [1, 3, 4, 4]}, [y]), {"x": rand(1, 3, 4, 4)})


def test_dropout_and_identity_disappear():
    g = Graph(6)
    y = g.node("Identity", ["x"])
    y = g.node("Relu", [y])
    y = g.node("Dropout", [y])
    y = g.node("Identity", [y])
    y = g.node("Sigmoid", [y])
    module, _ = check(g.model({"x": [1, 4]}, [y]), {"x": rand(1, 4)})
    assert ops_of(module) == ["graph.relu", "graph.sigmoid"]


def test_dynamic_batch():
    g = Graph(7)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3))], pads=[1, 1, 1, 1])
    y = g.node("Relu", [y])
    y = g.node("GlobalAveragePool", [y])
    y = g.node("Flatten", [y])
    y = g.node("Gemm", [y, g.weight((4, 3)), g.weight((3,), 0.1)])
    y = g.node("Softmax", [y], axis=1)
    model = g.model({"x": ["N", 3, 5, 5]}, [y])
    module = import_onnx(model)
    assert "tensor<?x3x5x5xf32>" in print_ir(module)
    for batch in (1, 3):
        check(model, {"x": rand(batch, 3, 5, 5)})


def test_ir3_initializers_listed_as_inputs():
    g = Graph(8)
    y = g.node("Conv", ["x", g.weight((2, 3, 1, 1))])
    model = g.model({"x": [1, 3, 4, 4]}, [y], opset=9, ir_version=3, inits_as_inputs=True)
    module, _ = check(model, {"x": rand(1, 3, 4, 4)})
    func = next(op for op in module.walk() if op.name == "func.func")
    assert len(func.regions[0].blocks[0].args) == 1


def test_opset9_softmax_coerces_to_2d_and_clip_attrs():
    g = Graph(9)
    y = g.node("Clip", ["x"], min=-0.5, max=0.7)
    y = g.node("Softmax", [y], axis=1)
    check(g.model({"x": [2, 3, 4]}, [y], opset=9), {"x": rand(2, 3, 4)})


def test_tensor_ops():
    g = Graph(10)
    t = g.node("Transpose", ["x"], perm=[0, 2, 3, 1])
    t = g.node("Transpose", [t], perm=[0, 3, 1, 2])
    p = g.node("Pad", [t, g.const(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))], mode="reflect")
    s = g.node("Slice", [p, g.const(np.array([1, 0], np.int64)), g.const(np.array([7, 4], np.int64)),
                         g.const(np.array([2, 1], np.int64)), g.const(np.array([2, 1], np.int64))])
    a, b = g.node("Split", [s, g.const(np.array([1, 3], np.int64))], n_out=2, axis=1)
    u = g.node("Squeeze", [a, g.const(np.array([1], np.int64))])
    u = g.node("Unsqueeze", [u, g.const(np.array([1], np.int64))])
    c = g.node("Concat", [u, b], axis=1)
    r = g.node("ReduceMean", [c], axes=[2, 3], keepdims=1)
    z = g.node("Resize", [c, "", g.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    z = g.node("HardSigmoid", [z], alpha=0.3, beta=0.4)
    w = g.node("PRelu", [c, g.weight((4, 1, 1), 0.3)])
    w = g.node("Sub", [w, r])
    w = g.node("Div", [w, g.const(np.full((1, 4, 1, 1), 2.0, np.float32))])
    w = g.node("Tanh", [w])
    check(g.model({"x": [1, 4, 6, 4]}, [z, w]), {"x": rand(1, 4, 6, 4)})


def test_lrn_and_conv_transpose():
    g = Graph(11)
    y = g.node("LRN", ["x"], size=3, alpha=1e-3, beta=0.75, bias=1.0)
    y = g.node("ConvTranspose", [y, g.weight((4, 2, 3, 3)), g.weight((2,), 0.1)], strides=[2, 2],
               pads=[1, 1, 1, 1], output_padding=[1, 1])
    check(g.model({"x": [1, 4, 5, 5]}, [y]), {"x": rand(1, 4, 5, 5)})


INT_MAX = np.iinfo(np.int64).max

# (op_type, input shape, attributes, constant inputs after x (None = omitted), opset)
SINGLE_NODE_CASES = [
    ("MaxPool", (1, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), [], 17),
    ("MaxPool", (1, 2, 7, 7), dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER"), [], 17),
    ("MaxPool", (1, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"), [], 17),
    ("MaxPool", (1, 2, 8, 8), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), [], 17),
    ("MaxPool", (1, 2, 8, 8), dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1]), [], 17),
    ("AveragePool", (1, 2, 7, 7), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                       count_include_pad=1), [], 17),
    ("AveragePool", (1, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                                       pads=[1, 1, 1, 1]), [], 17),
    ("GlobalMaxPool", (2, 3, 5, 4), {}, [], 17),
    ("Conv", (1, 4, 9, 9), dict(dilations=[2, 2], group=2, strides=[2, 1], pads=[0, 1, 2, 3]),
     [("w", (6, 2, 3, 3))], 17),
    ("Gemm", (5, 3), dict(transA=1, alpha=0.5, beta=2.0), [("w", (5, 4)), ("w", (4,))], 17),
    ("MatMul", (2, 3, 4), {}, [("w", (4, 5))], 17),
    ("Clip", (2, 5), {}, [np.array(-0.3, np.float32)], 17),
    ("Clip", (2, 5), {}, [None, np.array(0.4, np.float32)], 17),
    ("Softmax", (2, 3, 4), dict(axis=1), [], 17),
    ("Softmax", (2, 3, 4, 2), dict(axis=2), [], 11),
    ("Softmax", (2, 3, 4), {}, [], 9),
    ("Pad", (1, 2, 3, 3), dict(pads=[0, 0, 1, 2, 0, 0, 2, 1], value=1.5), [], 9),
    ("Pad", (1, 2, 3, 3), dict(mode="edge"), [np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)], 17),
    ("Pad", (1, 2, 3, 3), {}, [np.array([1, 2, 0, 1], np.int64), np.array(0.5, np.float32),
                               np.array([2, 3], np.int64)], 18),
    ("Split", (2, 6, 3), dict(axis=1), [], 17),
    ("Split", (2, 6, 3), dict(axis=1, split=[2, 4]), [], 11),
    ("Split", (2, 7, 3), dict(axis=1, num_outputs=3), [], 18),
    ("Slice", (4, 6), {}, [np.array([-3, 1], np.int64), np.array([INT_MAX, -1], np.int64)], 17),
    ("Slice", (4, 6), {}, [np.array([-1], np.int64), np.array([-INT_MAX], np.int64),
                           np.array([1], np.int64), np.array([-2], np.int64)], 17),
    ("Slice", (4, 6), dict(starts=[1], ends=[3], axes=[0]), [], 9),
    ("Squeeze", (1, 3, 1, 2), {}, [], 17),
    ("Squeeze", (1, 3, 1, 2), dict(axes=[2]), [], 11),
    ("Unsqueeze", (3, 2), dict(axes=[0, 3]), [], 11),
    ("ReduceMean", (2, 3, 4), dict(axes=[1], keepdims=0), [], 17),
    ("ReduceMean", (2, 3, 4), dict(keepdims=0), [np.array([-1, 0], np.int64)], 18),
    ("ReduceMean", (2, 3, 4), {}, [], 17),
    ("Resize", (1, 2, 3, 4), dict(mode="linear"), [None, np.array([1, 1, 2, 1.5], np.float32)], 17),
    ("Resize", (1, 2, 3, 4), dict(mode="linear", coordinate_transformation_mode="align_corners"),
     [None, None, np.array([1, 2, 5, 7], np.int64)], 17),
    ("Resize", (1, 2, 3, 4), dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                  nearest_mode="floor"),
     [np.array([], np.float32), np.array([1, 1, 2, 3], np.float32)], 13),
    ("Upsample", (1, 2, 3, 4), dict(mode="nearest"), [np.array([1, 1, 2, 3], np.float32)], 9),
    ("Upsample", (1, 2, 3, 4), dict(mode="linear"), [np.array([1, 1, 2, 1.5], np.float32)], 9),
    ("Upsample", (1, 2, 3, 4), dict(mode="nearest", scales=[1.0, 1.0, 1.5, 2.5]), [], 7),
    ("Resize", (1, 2, 3, 4), dict(mode="nearest"), [np.array([1, 1, 2.5, 1.5], np.float32)], 10),
    ("Resize", (1, 2, 3, 4), dict(mode="linear"), [np.array([1, 1, 2, 3], np.float32)], 10),
    ("HardSwish", (2, 7), {}, [], 17),
    ("PRelu", (1, 3, 2, 2), {}, [np.array([[[0.1]], [[-0.2]], [[0.3]]], np.float32)], 9),
    ("Transpose", (2, 3, 4), {}, [], 17),
    ("Flatten", (2, 3, 4, 5), dict(axis=2), [], 17),
    ("Sum", (2, 3), {}, [("w", (2, 3)), ("w", (3,))], 17),
]


def single_node_model(op_type, shape, attrs, consts, opset):
    """A one-node model on input ``x``: ``consts`` are None (an absent optional input), arrays
    (constants) or ("w", shape) (random weights)."""
    g = Graph(100)
    names = ["x"]
    for c in consts:
        if c is None:
            names.append("")
        elif isinstance(c, tuple):
            names.append(g.weight(c[1], 0.5))
        else:
            names.append(g.const(c))
    n_out = 3 if attrs.get("num_outputs") == 3 else 2 if op_type == "Split" else 1
    outs = g.node(op_type, names, n_out=n_out, **attrs)
    outs = outs if isinstance(outs, list) else [outs]
    return g.model({"x": list(shape)}, outs, opset=opset, ir_version=7 if opset < 11 else 8)


@pytest.mark.parametrize("op_type, shape, attrs, consts, opset", SINGLE_NODE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SINGLE_NODE_CASES)])
def test_single_node_matches_onnxruntime(op_type, shape, attrs, consts, opset):
    check(single_node_model(op_type, shape, attrs, consts, opset), {"x": rand(*shape)})


# -- errors and the interpreter's checks -------------------------------------------------------


def test_shape_errors_name_the_node():
    g = Graph(18)
    y = g.node("Conv", ["x", g.weight((8, 4, 3, 3))], name="conv7")
    with pytest.raises(XirError, match=r"input has 3 channels but the weight expects 4.*node 'conv7'"):
        import_onnx(g.model({"x": [1, 3, 8, 8]}, [y]))


def test_bad_files(tmp_path):
    g = Graph(13)
    y = g.node("Relu", ["x"])
    data = g.model({"x": [2, 2]}, [y]).SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n" * 5)
    for path in (truncated, text, tmp_path / "missing.onnx"):
        with pytest.raises(XirError) as info:
            import_onnx(path)
        assert "\n" not in str(info.value) and "cannot read ONNX model" in str(info.value)


def test_interpreter_checks_inputs_and_observes():
    g = Graph(14)
    y = g.node("Relu", ["x"], name="r")
    module = import_onnx(g.model({"x": [1, 3, 8, 8]}, [y]))
    func = next(op for op in module.walk() if op.name == "func.func")
    bad = np.zeros((1, 3, 8, 9), np.float32)
    with pytest.raises(XirError, match=r"input 'x': expected tensor<1x3x8x8xf32>, got float32 "
                                       r"array of shape \(1, 3, 8, 9\)"):
        run_function(func, {"x": bad})
    with pytest.raises(XirError, match="missing input 'x'"):
        run_function(func, {})
    with pytest.raises(XirError, match="expected tensor<1x3x8x8xf32>, got float64"):
        run_function(func, [np.zeros((1, 3, 8, 8))])
    seen = []
    x = rand(1, 3, 8, 8)
    (out,) = run_function(func, [x], observe=lambda op, outs: seen.append((location_name(op.location), outs)))
    assert np.array_equal(out, np.maximum(x, 0))
    assert seen[0][0] == "r" and np.array_equal(seen[0][1][0], out)


def test_interpreter_rejects_op_without_semantics():
    text = """builtin.module {
  func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
    %y = "test.mystery"(%x) : (tensor<2xf32>) -> tensor<2xf32> loc("m1")
    "func.return"(%y) : (tensor<2xf32>) -> ()
  }
}
"""
    module = parse(text, allow_unregistered=True)
    with pytest.raises(XirError, match="test.mystery"):
        run_module(module, [np.zeros(2, np.float32)])


# -- the bundled light models (ConstantOfShape weights replaced by seeded random ones) ----------


def _light_path(name):
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    return os.path.join(root, f"light_{name}.onnx")


def randomize_weights(model, seed=0):
    """Replace every ConstantOfShape node with a seeded random initializer of its shape
    (He scaling), so outputs are not degenerate."""
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    bn_role = {}  # BatchNormalization parameters need sensible ranges (a variance > 0)
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            for role, name in zip(("scale", "bias", "mean", "var"), node.input[1:5]):
                bn_role[name] = role
    keep = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = [int(d) for d in inits[node.input[0]]]
            role = bn_role.get(node.output[0])
            if role in ("scale", "var"):
                array = rng.uniform(0.5, 1.5, shape)
            elif role in ("bias", "mean") or len(shape) == 1:
                array = rng.standard_normal(shape) * 0.1  # biases: small
            else:
                fan_in = int(np.prod(shape[1:]))
                array = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            array = array.astype(np.float32)
            model.graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {name for node in model.graph.node for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    kept_inputs = [i for i in model.graph.input if i.name in used]
    del model.graph.input[:]
    model.graph.input.extend(kept_inputs)
    # the logits (input of the final Softmax) are an output too: a saturated softmax hides errors
    last = model.graph.node[-1]
    if last.op_type == "Softmax":
        model.graph.output.append(onnx.ValueInfoProto(name=last.input[0]))
    return model


def light_model(name: str):
    """The bundled light model ``name`` with seeded random weights and a seeded batch-1 input, as
    ``(model, feeds)``; None when the onnx package does not ship it."""
    path = _light_path(name)
    if not os.path.exists(path):
        return None
    model = randomize_weights(onnx.load(path))
    inits = {t.name for t in model.graph.initializer}
    data = next(i for i in model.graph.input if i.name not in inits)
    shape = [d.dim_value or 1 for d in data.type.tensor_type.shape.dim]
    return model, {data.name: np.random.default_rng(1).random(shape, dtype=np.float32)}


LIGHT_MODELS = ["squeezenet", "resnet50", "bvlc_alexnet", "densenet121", "inception_v1",
                "inception_v2", "shufflenet", "vgg19", "zfnet512"]
BIG = {"bvlc_alexnet", "vgg19", "zfnet512"}  # 60-140 M parameters: text round trip takes 10-25 s


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_matches_onnxruntime(name):
    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"{_light_path(name)} is not installed")
    model, feeds = loaded
    start = time.perf_counter()
    module = import_onnx(model)
    imported = time.perf_counter()
    verify(module)
    if name not in BIG:
        module = parse(print_ir(module))
        verify(module)
    reparsed = time.perf_counter()
    got = run_module(module, feeds)  # keyed by the ONNX name (kept as an xir.name arg attr)
    ran = time.perf_counter()
    expected = ort_run(model, feeds)
    errors = [relative_error(g, e) for g, e in zip(got, expected)]
    spread = [float(np.std(e)) for e in expected]
    print(f"{name}: import {imported - start:.2f} s, interpret {ran - reparsed:.2f} s, "
          f"relative errors {', '.join(f'{e:.2e}' for e in errors)} (output std {spread})")
    assert len(got) == len(expected)
    assert all(err <= RTOL for err in errors)
    assert np.std(expected[-1]) > 1e-2  # the logits (or the only output) are not degenerate
