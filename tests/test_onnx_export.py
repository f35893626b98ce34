"""Graph dialect → ONNX export: import an ONNX model, export it again, check the export with the
ONNX checker and compare onnxruntime on the export with onnxruntime on the original."""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest

from test_onnx_import import (LIGHT_MODELS, SINGLE_NODE_CASES, Graph, _light_path, ort_run, rand,
                              light_model, relative_error,
                              single_node_model)
from xir.diagnostics import XirError
from xir.frontends.onnx import export_onnx, import_onnx, save_onnx
from xir.parser import parse

RTOL = 1e-5


def roundtrip(model, feeds, opset=17, rtol=RTOL):
    """Import ``model``, export it (at ``opset``), check it and compare it with the original in
    onnxruntime; returns (exported model, worst relative error)."""
    module = import_onnx(model)
    exported = export_onnx(module, opset=opset)
    onnx.checker.check_model(exported, full_check=True)
    expected, got = ort_run(model, feeds), ort_run(exported, feeds)
    assert len(got) == len(expected)
    worst = 0.0
    for g, e in zip(got, expected):
        err = relative_error(g, e)
        worst = max(worst, err)
        assert err <= rtol, err
    return exported, worst


def exported_ops(model):
    return [n.op_type for n in model.graph.node]


# -- every graph op, one model each ----------------------------------------------------------

# (op_type, input shape, attributes, inputs after x: ("w", shape) a weight, an array a constant)
EXTRA_CASES = [
    ("Conv", (1, 3, 6, 6), dict(pads=[1, 1, 1, 1]), [("w", (4, 3, 3, 3)), ("w", (4,))], 17),
    ("ConvTranspose", (1, 4, 5, 5), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
     [("w", (4, 2, 3, 3)), ("w", (2,))], 17),
    ("GlobalAveragePool", (2, 3, 4, 5), {}, [], 17),
    ("BatchNormalization", (2, 3, 4, 4), dict(epsilon=1e-3),
     [np.array([1.0, 0.5, 2.0], np.float32), np.array([0.1, 0.2, 0.3], np.float32),
      np.array([0.0, -0.5, 0.5], np.float32), np.array([1.0, 0.7, 1.3], np.float32)], 17),
    ("LRN", (1, 4, 5, 5), dict(size=3, alpha=1e-3, beta=0.75, bias=1.0), [], 17),
    ("Relu", (2, 5), {}, [], 17),
    ("Sigmoid", (2, 5), {}, [], 17),
    ("Tanh", (2, 5), {}, [], 17),
    ("LeakyRelu", (2, 5), dict(alpha=0.2), [], 17),
    ("HardSigmoid", (2, 5), dict(alpha=0.3, beta=0.4), [], 17),
    ("Clip", (2, 5), {}, [np.array(-0.5, np.float32), np.array(0.5, np.float32)], 17),
    ("Add", (2, 3), {}, [("w", (3,))], 17),
    ("Sub", (2, 3), {}, [("w", (2, 1))], 17),
    ("Mul", (2, 3), {}, [("w", (2, 3))], 17),
    ("Div", (2, 3), {}, [np.array([2.0, -4.0, 0.5], np.float32)], 17),
    ("Concat", (2, 3), dict(axis=0), [("w", (1, 3))], 17),
    ("Reshape", (2, 3, 4), {}, [np.array([0, -1], np.int64)], 17),
    ("Transpose", (2, 3, 4), dict(perm=[1, 2, 0]), [], 17),
    ("Squeeze", (1, 3, 1, 2), {}, [np.array([0], np.int64)], 17),
    ("Unsqueeze", (3, 2), {}, [np.array([0, -1], np.int64)], 17),
    ("Split", (2, 6, 3), dict(axis=1), [np.array([1, 5], np.int64)], 17),
    ("Slice", (4, 6), {}, [np.array([1], np.int64), np.array([5], np.int64),
                           np.array([1], np.int64), np.array([2], np.int64)], 17),
    ("Pad", (1, 2, 3, 3), dict(mode="reflect"), [np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)], 17),
    ("Resize", (1, 2, 3, 4), dict(mode="nearest"), [None, np.array([1, 1, 2, 2], np.float32)], 17),
]
CASES = EXTRA_CASES + SINGLE_NODE_CASES


@pytest.mark.parametrize("op_type, shape, attrs, consts, opset", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_single_node_roundtrip(op_type, shape, attrs, consts, opset):
    model = single_node_model(op_type, shape, attrs, consts, opset)
    roundtrip(model, {"x": rand(*shape)})


@pytest.mark.parametrize("opset", [13, 18, 21])
@pytest.mark.parametrize("case", [("ReduceMean", (2, 3, 4), dict(keepdims=0),
                                   [np.array([-1, 0], np.int64)], 18),
                                  ("Split", (2, 7, 3), dict(axis=1, num_outputs=3), [], 18),
                                  ("Squeeze", (1, 3, 1, 2), {}, [np.array([2], np.int64)], 17)],
                         ids=["ReduceMean", "Split", "Squeeze"])
def test_other_opsets(case, opset):
    model = single_node_model(*case)
    exported, _ = roundtrip(model, {"x": rand(*case[1])}, opset=opset)
    assert exported.opset_import[0].version == opset


def test_parameters_become_initializers_and_names_are_kept():
    g = Graph(1)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3), name="conv.weight")], name="conv1")
    y = g.node("Slice", [y, g.const(np.array([1], np.int64)), g.const(np.array([3], np.int64)),
                         g.const(np.array([1], np.int64))], name="cut")
    y = g.node("Reshape", [y, g.const(np.array([1, -1], np.int64))], name="flat")
    exported, _ = roundtrip(g.model({"x": [1, 3, 6, 6]}, [y]), {"x": rand(1, 3, 6, 6)})
    inits = {t.name: t for t in exported.graph.initializer}
    assert "conv.weight" in inits
    assert [n.name for n in exported.graph.node] == ["conv1", "cut", "flat"]
    assert inits["flat_shape"].data_type == onnx.TensorProto.INT64
    assert inits["cut_starts"].data_type == onnx.TensorProto.INT64


def test_dynamic_batch_and_duplicate_names():
    # opset-9 Softmax over a non-last axis imports as flatten + softmax + reshape, one location
    g = Graph(2)
    y = g.node("Softmax", ["x"], name="sm", axis=1)
    model = g.model({"x": ["batch", 3, 4]}, [y], opset=9, ir_version=7)
    module = import_onnx(model)
    exported = export_onnx(module)
    onnx.checker.check_model(exported, full_check=True)
    names = [n.name for n in exported.graph.node]
    assert len(set(names)) == len(names) == 3 and names[0] == "sm"
    dims = exported.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 3
    for batch in (1, 3):
        x = rand(batch, 3, 4)
        assert relative_error(ort_run(exported, {"x": x})[0], ort_run(model, {"x": x})[0]) <= RTOL


def test_outputs_that_are_inputs_or_constants_or_repeated():
    g = Graph(3)
    c = g.const(rand(2, 2, seed=4), name="c")
    y = g.node("Identity", ["x"])
    z = g.node("Relu", ["x"])
    g.nodes.append(onnx.helper.make_node("Identity", [c], ["c_out"], name="cid"))
    model = g.model({"x": [2, 2]}, [y, z, "c_out", z])
    exported, _ = roundtrip(model, {"x": rand(2, 2)})
    assert len({o.name for o in exported.graph.output}) == 4


def test_identity_op_and_input_names_that_are_not_identifiers():
    text = """builtin.module {
  func.func @main(%x: tensor<2x3xf32> {xir.name = "input:0"}) -> tensor<2x3xf32> {
    %y = "graph.identity"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("id")
    %z = "graph.relu"(%y) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("r")
    "func.return"(%z) : (tensor<2x3xf32>) -> ()
  }
}
"""
    exported = export_onnx(parse(text))
    onnx.checker.check_model(exported, full_check=True)
    assert exported.graph.input[0].name == "input:0"
    assert exported_ops(exported) == ["Identity", "Relu"]
    x = rand(2, 3)
    assert np.array_equal(ort_run(exported, {"input:0": x})[0], np.maximum(x, 0))


def test_unexportable_op_is_named(tmp_path):
    text = """builtin.module {
  func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
    %y = "test.mystery"(%x) : (tensor<2xf32>) -> tensor<2xf32> loc("m1")
    "func.return"(%y) : (tensor<2xf32>) -> ()
  }
}
"""
    module = parse(text, allow_unregistered=True)
    with pytest.raises(XirError, match=r"cannot export 'test.mystery' to ONNX \(at 'm1'\)"):
        export_onnx(module)
    path = tmp_path / "out.onnx"
    path.write_bytes(b"old")
    with pytest.raises(XirError):
        save_onnx(module, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.onnx"]
    with pytest.raises(XirError, match="opset 9"):
        export_onnx(import_onnx(single_node_model("Relu", (2,), {}, [], 17)), opset=9)


def test_unnamed_op_and_dynamic_split():
    text = """builtin.module {
  func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
    %y = "test.mystery"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    "func.return"(%y) : (tensor<2xf32>) -> ()
  }
}
"""
    with pytest.raises(XirError, match=r"cannot export 'test.mystery' to ONNX \(at 'y'\)"):
        export_onnx(parse(text, allow_unregistered=True))
    model = single_node_model("Split", ("n", 6), dict(axis=0, num_outputs=2), [], 18)
    module = import_onnx(model)
    with pytest.raises(XirError, match=r"cannot export 'graph.split' to ONNX: .*needs opset 18"):
        export_onnx(module, opset=17)
    exported = export_onnx(module, opset=18)
    onnx.checker.check_model(exported, full_check=True)
    x = rand(4, 6)
    for got, want in zip(ort_run(exported, {"x": x}), ort_run(model, {"x": x})):
        assert relative_error(got, want) <= RTOL


def test_save_onnx(tmp_path):
    g = Graph(5)
    y = g.node("Gemm", ["x", g.weight((3, 4)), g.weight((4,))])
    model = g.model({"x": [2, 3]}, [y])
    path = tmp_path / "m.onnx"
    save_onnx(import_onnx(model), path)
    assert os.listdir(tmp_path) == ["m.onnx"]
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    x = rand(2, 3)
    assert relative_error(ort_run(loaded, {"x": x})[0], ort_run(model, {"x": x})[0]) <= RTOL


# -- the bundled light models ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_export_matches_onnxruntime(name):
    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"{_light_path(name)} is not installed")
    model, feeds = loaded
    start = time.perf_counter()
    exported, worst = roundtrip(model, feeds)
    print(f"{name}: import + export + run {time.perf_counter() - start:.2f} s, "
          f"worst relative error {worst:.2e}, {len(exported.graph.node)} nodes")
