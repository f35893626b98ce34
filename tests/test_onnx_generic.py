"""ONNX nodes outside the graph dialect: kept whole as ``graph.onnx`` ops that run through
onnxruntime and export back unchanged; opsets older than 7 are upgraded, newer ones refused."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnx_cases import ort_run, relative_error
from test_onnx_import import Graph, rand
from xir.diagnostics import XirError
from xir.frontends.onnx import export_onnx, import_onnx
from xir.interpreter import run_module
from xir.parser import parse
from xir.printer import print_ir
from xir.verifier import verify


def ops(module, name="graph.onnx"):
    return [op for op in module.walk() if op.name == name]


def round_trip(module):
    text = print_ir(module)
    reparsed = parse(text, "m.xir")
    verify(reparsed)
    assert print_ir(reparsed) == text
    return reparsed


def test_an_op_outside_the_dialect_is_kept_whole():
    g = Graph(12)
    y = g.node("Einsum", ["x", "x"], name="weird", equation="ij,ij->ij")
    model = g.model({"x": [2, 2]}, [y])
    module = round_trip(import_onnx(model))
    line = next(l.strip() for l in print_ir(module).splitlines() if "graph.onnx" in l)
    assert line == (
        '%weird_out = "graph.onnx"(%x, %x) {op_type = "Einsum", opset = 17, node_attributes = '
        '{equation = "ij,ij->ij"}, xir.fallback = "no graph op for ONNX op \'Einsum\'"} : '
        '(tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32> loc("weird")')
    x = rand(2, 2)
    np.testing.assert_allclose(run_module(module, [x])[0], x * x, rtol=1e-6)
    exported = export_onnx(module)
    onnx.checker.check_model(exported, full_check=True)
    assert exported.opset_import[0].version == 17
    (node,) = exported.graph.node
    assert (node.op_type, node.name, helper.get_attribute_value(node.attribute[0])) == \
        ("Einsum", "weird", b"ij,ij->ij")


def test_a_convolution_the_dialect_cannot_say_runs_on_the_cpu_with_its_reason():
    g = Graph(1)
    y = g.node("Conv", ["x", g.weight((5, 4, 3)), g.weight((5,), 0.1)], name="conv1d",
               pads=[1, 1], strides=[2])
    model = g.model({"x": [2, 4, 10]}, [y], opset=13)
    module = round_trip(import_onnx(model))
    (op,) = ops(module)
    assert op.attributes["xir.fallback"].value == "only 2-D (NCHW) inputs are supported, got rank 3"
    assert str(op.results[0].type) == "tensor<2x5x5xf32>"
    x = rand(2, 4, 10)
    assert relative_error(run_module(module, [x])[0], ort_run(model, [x])[0]) <= 1e-6
    # the half-built conversion left nothing behind: two weights, one op
    assert [o.name for o in module.walk() if o.name.startswith("graph.")] == \
        ["graph.constant", "graph.constant", "graph.onnx"]


def test_integer_tensors_flow_through_kept_nodes():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    node = helper.make_node("Gather", ["table", "ids"], ["rows"], name="embed")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 5])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(table, "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    module = round_trip(import_onnx(model))
    assert "(%ids: tensor<1x5xi64>) -> tensor<1x5x3xf32>" in print_ir(module)
    ids = np.array([[3, 0, 1, 1, 2]], dtype=np.int64)
    np.testing.assert_array_equal(run_module(module, {"ids": ids})[0], table[ids])
    with pytest.raises(XirError, match=r"^error: input 'ids': expected tensor<1x5xi64>, "
                                       r"got float32 array of shape \(1, 5\)$"):
        run_module(module, {"ids": ids.astype(np.float32)})
    exported = export_onnx(module)
    onnx.checker.check_model(exported, full_check=True)
    np.testing.assert_array_equal(ort_run(exported, [ids])[0], table[ids])


def _gelu_model(declare_output: bool):
    node = helper.make_node("Gelu", ["x"], ["y"], name="gelu1", domain="com.microsoft")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3] if declare_output else None)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [2, 3])], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)])


def test_a_custom_domain_op_runs_in_onnxruntime_and_keeps_its_domain():
    model = _gelu_model(declare_output=True)
    module = round_trip(import_onnx(model))
    (op,) = ops(module)
    assert (op.onnx_domain, op.opset.value) == ("com.microsoft", 1)
    x = rand(2, 3)
    assert relative_error(run_module(module, [x])[0], ort_run(model, [x])[0]) <= 1e-6
    exported = export_onnx(module)
    assert {(o.domain, o.version) for o in exported.opset_import} == {("", 17), ("com.microsoft", 1)}
    assert relative_error(ort_run(exported, [x])[0], ort_run(model, [x])[0]) <= 1e-6


def test_a_custom_op_with_no_known_output_type_is_an_error():
    with pytest.raises(XirError) as info:
        import_onnx(_gelu_model(declare_output=False))
    assert str(info.value) == (
        "error: Gelu: cannot infer the type of output 'y' (ONNX shape inference does not know "
        "this op; give the model value_info for it) (node 'gelu1')")


def test_subgraph_attributes_are_refused_by_name():
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "b", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])])
    node = helper.make_node("If", ["c"], ["y"], name="if1", then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                      helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(XirError) as info:
        import_onnx(model)
    assert str(info.value) == ("error: unsupported ONNX op 'If': attribute 'else_branch' is a "
                               "GRAPH, which xir cannot keep (node 'if1')")


def test_a_model_older_than_opset_7_keeps_its_semantics():
    # opset 6 Add broadcasts B along `axis` (legacy broadcasting), not from the right
    g = Graph(6)
    y = g.node("Add", ["x", g.const(np.array([1.0, 2.0, 3.0], np.float32), "b")], name="add",
               broadcast=1, axis=1)
    model = g.model({"x": [2, 3, 4]}, [y], opset=6, ir_version=3, inits_as_inputs=True)
    module = round_trip(import_onnx(model))
    x = rand(2, 3, 4)
    np.testing.assert_allclose(run_module(module, [x])[0],
                               x + np.array([1, 2, 3], np.float32)[:, None], rtol=1e-6)


def test_an_opset_newer_than_onnx_knows_is_an_error():
    g = Graph(0)
    y = g.node("Relu", ["x"])
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(XirError) as info:
        import_onnx(g.model({"x": [2]}, [y], opset=newest + 1))
    assert str(info.value) == (f"error: unsupported ONNX opset {newest + 1}: the installed onnx "
                               f"{onnx.__version__} knows opsets up to {newest}")


def test_a_kept_node_from_an_older_opset_is_converted_on_export():
    g = Graph(3)
    y = g.node("ReduceSum", ["x"], name="rsum", axes=[1], keepdims=0)  # axes: an input since 13
    model = g.model({"x": [2, 3, 4]}, [y], opset=11, ir_version=6)
    module = import_onnx(model)
    (op,) = ops(module)
    assert op.opset.value == 11
    exported = export_onnx(module)
    onnx.checker.check_model(exported, full_check=True)
    assert [n.op_type for n in exported.graph.node][-1] == "ReduceSum"
    assert len(exported.graph.node[-1].input) == 2
    x = rand(2, 3, 4)
    np.testing.assert_allclose(ort_run(exported, [x])[0], x.sum(axis=1), rtol=1e-6)
    # at the node's own opset it exports unchanged (opsets 13 to 21 only)
    with pytest.raises(XirError, match=r"cannot export to ONNX opset 11 \(supported: 13 to 21\)"):
        export_onnx(module, opset=11)


HAND_WRITTEN = """\
func.func @main(%x: tensor<3xf32>) -> tensor<3xf32> {
  %y = "graph.onnx"(%x) {op_type = "Elu", opset = 13, node_attributes = {alpha = 0.5 : f32}} : (tensor<3xf32>) -> tensor<3xf32> loc("elu1")
  "func.return"(%y) : (tensor<3xf32>) -> ()
}
"""


def test_a_hand_written_kept_node_parses_and_runs():
    module = parse(HAND_WRITTEN, "elu.xir")
    verify(module)
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(run_module(module, [x])[0], [0.5 * (np.exp(-1) - 1), 0, 2],
                               rtol=1e-6)


@pytest.mark.parametrize("old, new, message", [
    ('op_type = "Elu"', 'op_type = ""', "needs a non-empty op_type"),
    ("opset = 13", "opset = 0", "opset must be at least 1, got 0"),
    ("alpha = 0.5 : f32", "alpha", "node attribute 'alpha' = unit has no ONNX spelling"),
], ids=["op_type", "opset", "attribute"])
def test_the_verifier_checks_a_kept_node(old, new, message):
    module = parse(HAND_WRITTEN.replace(old, new), "elu.xir")
    with pytest.raises(XirError) as info:
        verify(module)
    assert str(info.value).splitlines()[0] == f"elu.xir:2:3: error: 'graph.onnx' op {message}"


def test_onnxruntime_refusing_a_kept_node_names_it():
    module = parse(HAND_WRITTEN.replace('"Elu"', '"NoSuchOp"'), "bad.xir")
    verify(module)
    with pytest.raises(XirError, match=r"^error: graph.onnx 'NoSuchOp' \(node 'elu1'\): "
                                       r"onnxruntime cannot load it: .*NoSuchOp"):
        run_module(module, [np.zeros(3, np.float32)])


def test_a_conversion_that_gives_up_half_way_leaves_nothing_behind(monkeypatch):
    from xir.frontends import onnx_ops

    def gives_up(ctx, node, attrs, ins):
        ctx.emit1("graph.relu", [ins[1]])  # materializes the 64-element slope as a resource
        raise ctx.unsupported("not today")

    monkeypatch.setitem(onnx_ops.CONVERTERS, "PRelu", gives_up)
    g = Graph(5)
    y = g.node("PRelu", ["x", g.weight((64,), name="big")], name="prelu1")
    module = import_onnx(g.model({"x": [64]}, [y]))
    assert [o.name for o in module.walk() if o.name.startswith("graph.")] == \
        ["graph.constant", "graph.onnx"]
    assert list(module.resources) == ["big"]
    (op,) = ops(module)
    assert op.attributes["xir.fallback"].value == "not today"
