"""Channel groups of pruning (xir.passes.prune.groups): small graphs built with onnx.helper whose
groups are written out by hand, the reasons a group cannot be pruned, channel importance
against numpy on the ONNX initializers, and MACs/parameters against hand counts."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper
from test_onnx_import import Graph, rand

from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.passes.prune import (ChannelSlice, channel_importance, find_groups, model_macs,
                              model_params)


def conv(g, x, cin, cout, k, name, group=1, bias=False):
    ins = [x, g.weight((cout, cin // group, k, k), name=f"{name}.w")]
    if bias:
        ins.append(g.const(rand(cout, seed=len(g.inits)), f"{name}.b"))
    return g.node("Conv", ins, name=name, pads=[k // 2] * 4, group=group)


def bn(g, x, c, name):
    return g.node("BatchNormalization", [
        x, g.weight((c,), positive=True, name=f"{name}.gamma"), g.weight((c,), 0.1, f"{name}.beta"),
        g.weight((c,), 0.1, f"{name}.mean"), g.weight((c,), positive=True, name=f"{name}.var")],
        name=name)


def residual_block():
    """stem conv→bn→relu, then conv→bn→relu→conv→bn + the stem's output → add → relu, a 1×1
    head conv, global average pool, flatten and a dense layer."""
    g = Graph(seed=1)
    s = g.node("Relu", [bn(g, conv(g, "x", 3, 8, 3, "stem"), 8, "stem_bn")], name="stem_relu")
    y = g.node("Relu", [bn(g, conv(g, s, 8, 6, 3, "c1"), 6, "bn1")], name="r1")
    y = bn(g, conv(g, y, 6, 8, 3, "c2"), 8, "bn2")
    y = g.node("Relu", [g.node("Add", [y, s], name="add")], name="r2")
    y = g.node("Flatten", [g.node("GlobalAveragePool", [conv(g, y, 8, 4, 1, "head")], name="gap")],
               name="flat")
    g.node("Gemm", [y, g.weight((5, 4), name="fc.w"), g.weight((5,), 0.1, "fc.b")], name="fc",
           transB=1)
    return g.model({"x": ["N", 3, 8, 8]}, ["fc_out"]), {"x": rand(2, 3, 8, 8)}


def concat_convs():
    """Two convs of the input, concatenated (4 + 6 channels), max-pooled, a 1×1 conv, a reshape
    to (N, 45) (a flatten: 3×3 blocks) and a dense layer."""
    g = Graph(seed=2)
    a = g.node("Relu", [conv(g, "x", 3, 4, 1, "a")], name="ra")
    b = g.node("Relu", [conv(g, "x", 3, 6, 3, "b")], name="rb")
    y = g.node("MaxPool", [g.node("Concat", [a, b], name="cat", axis=1)], name="pool",
               kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("Reshape", [g.node("Relu", [conv(g, y, 10, 5, 1, "c")], name="rc"),
                           g.const(np.array([-1, 45]), "flat.shape")], name="flat")
    g.node("Gemm", [y, g.weight((3, 45), name="fc.w")], name="fc", transB=1)
    return g.model({"x": ["N", 3, 6, 6]}, ["fc_out"]), {"x": rand(2, 3, 6, 6)}


def depthwise_separable():
    """Pointwise conv→bn→relu6, depthwise conv (bias)→bn→prelu (a slope per channel),
    pointwise conv→sigmoid, global average pool, flatten, dense."""
    g = Graph(seed=3)
    six = [g.const(np.float32(0), "zero"), g.const(np.float32(6), "six")]
    y = g.node("Clip", [bn(g, conv(g, "x", 2, 8, 1, "pw0"), 8, "bn0"), *six], name="relu6")
    y = bn(g, conv(g, y, 8, 8, 3, "dw", group=8, bias=True), 8, "bn1")
    y = g.node("PRelu", [y, g.weight((8, 1, 1), 0.2, "act.slope")], name="act")
    y = g.node("Sigmoid", [conv(g, y, 8, 12, 1, "pw1")], name="sig")
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y], name="gap")], name="flat")
    g.node("Gemm", [y, g.weight((12, 4), name="fc.w")], name="fc")
    return g.model({"x": ["N", 2, 6, 6]}, ["fc_out"]), {"x": rand(2, 2, 6, 6)}


def flatten_dense():
    """conv→relu→flatten (4×4 blocks of 3 channels) → MatMul + Add (a dense layer of 7) → relu →
    Gemm to 2 outputs."""
    g = Graph(seed=4)
    y = g.node("Flatten", [g.node("Relu", [conv(g, "x", 2, 3, 3, "conv")], name="relu")],
               name="flat")
    y = g.node("Add", [g.node("MatMul", [y, g.weight((48, 7), name="fc1.w")], name="fc1"),
                       g.weight((7,), 0.1, "fc1.b")], name="fc1_bias")
    g.node("Gemm", [g.node("Relu", [y], name="relu1"), g.weight((2, 7), name="fc2.w")], name="fc2",
           transB=1)
    return g.model({"x": ["N", 2, 4, 4]}, ["fc2_out"]), {"x": rand(2, 2, 4, 4)}


def squeeze_excite():
    """conv→relu scaled by a squeeze-and-excitation branch (global pool, 1×1 conv→relu, 1×1
    conv→sigmoid, mul), concatenated with the model input, conv→relu, a spatial pad, global
    pool, squeeze, dense."""
    g = Graph(seed=6)
    y = g.node("Relu", [conv(g, "x", 3, 8, 3, "c0")], name="r0")
    s = g.node("GlobalAveragePool", [y], name="se_gap")
    s = g.node("Relu", [conv(g, s, 8, 4, 1, "se_reduce", bias=True)], name="se_relu")
    s = g.node("Sigmoid", [conv(g, s, 4, 8, 1, "se_expand", bias=True)], name="se_sig")
    y = g.node("Concat", [g.node("Mul", [y, s], name="scale"), "x"], name="cat", axis=1)
    y = g.node("Relu", [conv(g, y, 11, 6, 3, "c1")], name="r1")
    y = g.node("Pad", [y, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1]), "pads")], name="pad")
    y = g.node("Squeeze", [g.node("GlobalAveragePool", [y], name="gap"),
                           g.const(np.array([2, 3]), "axes")], name="squeeze")
    g.node("Gemm", [y, g.weight((3, 6), name="fc.w")], name="fc", transB=1)
    return g.model({"x": ["N", 3, 6, 6]}, ["fc_out"]), {"x": rand(2, 3, 6, 6)}


SMALL = {"residual": residual_block, "concat": concat_convs, "dwsep": depthwise_separable,
         "flatten": flatten_dense, "se": squeeze_excite}


def groups_of(model) -> dict:
    return {g.name: g for g in find_groups(import_onnx(model))}


def summary(group) -> tuple:
    return group.channels, group.producers, group.members, group.consumers, group.prunable


def test_residual_block_joins_the_add_operands():
    groups = groups_of(residual_block()[0])
    assert {name: summary(g) for name, g in groups.items()} == {
        "stem": (8, ("stem", "c2"), ("stem_bn", "bn2"), ("c1", "head"), True),
        "c1": (6, ("c1",), ("bn1",), ("c2",), True),
        "head": (4, ("head",), (), ("fc",), True),
        "fc": (5, ("fc",), (), (), False),
    }
    assert groups["fc"].reason == "feeds a model output"


def test_concat_places_each_group_at_its_offset():
    groups = groups_of(concat_convs()[0])
    assert {name: summary(g) for name, g in groups.items()} == {
        "a": (4, ("a",), (), ("c",), True),
        "b": (6, ("b",), (), ("c",), True),
        "c": (5, ("c",), (), ("fc",), True),
        "fc": (3, ("fc",), (), (), False),
    }
    assert groups["a"].slices == (ChannelSlice("a", "producer"), ChannelSlice("c", "consumer", 0))
    assert groups["b"].slices == (ChannelSlice("b", "producer"), ChannelSlice("c", "consumer", 4))
    assert groups["c"].slices[1] == ChannelSlice("fc", "consumer", 0, 9)  # flatten of 3×3


def test_depthwise_and_prelu_pass_channels_with_their_parameters():
    groups = groups_of(depthwise_separable()[0])
    assert {name: summary(g) for name, g in groups.items()} == {
        "pw0": (8, ("pw0",), ("bn0", "dw", "bn1", "act"), ("pw1",), True),
        "pw1": (12, ("pw1",), (), ("fc",), True),
        "fc": (4, ("fc",), (), (), False),
    }


def test_flatten_gives_the_dense_layer_channel_blocks():
    groups = groups_of(flatten_dense()[0])
    assert {name: summary(g) for name, g in groups.items()} == {
        "conv": (3, ("conv",), (), ("fc1",), True),
        "fc1": (7, ("fc1",), ("fc1_bias",), ("fc2",), True),
        "fc2": (2, ("fc2",), (), (), False),
    }
    assert groups["conv"].slices[1] == ChannelSlice("fc1", "consumer", 0, 16)


def test_squeeze_excite_joins_the_excitation_with_the_block():
    groups = groups_of(squeeze_excite()[0])
    assert {name: summary(g) for name, g in groups.items()} == {
        "c0": (8, ("c0", "se_expand"), (), ("se_reduce", "c1"), True),
        "se_reduce": (4, ("se_reduce",), (), ("se_expand",), True),
        "c1": (6, ("c1",), (), ("fc",), True),
        "fc": (3, ("fc",), (), (), False),
    }
    assert ChannelSlice("c1", "consumer", 0) in groups["c0"].slices  # the input x follows


def test_group_macs_are_the_macs_that_scale_with_it():
    groups = groups_of(residual_block()[0])
    stem, c1, c2, head, fc = 64 * 8 * 27, 64 * 6 * 72, 64 * 8 * 54, 64 * 4 * 8, 4 * 5
    assert groups["stem"].macs == stem + c2 + c1 + head
    assert groups["c1"].macs == c1 + c2
    assert groups["head"].macs == head + fc
    groups = groups_of(concat_convs()[0])
    c = 9 * 5 * 10
    assert groups["a"].macs == 36 * 4 * 3 + c * 4 // 10
    assert groups["b"].macs == 36 * 6 * 27 + c * 6 // 10
    groups = groups_of(depthwise_separable()[0])
    assert groups["pw0"].macs == 36 * 8 * 2 + 36 * 8 * 9 + 36 * 12 * 8


def test_model_macs_and_params_by_hand():
    module = import_onnx(residual_block()[0])
    assert model_macs(module) == 64 * (8 * 27 + 6 * 72 + 8 * 54 + 4 * 8) + 4 * 5
    bn_params = 2 * (8 + 6 + 8)  # γ and β; running statistics are not parameters
    assert model_params(module) == 8 * 27 + 6 * 72 + 8 * 54 + 4 * 8 + 5 * 4 + 5 + bn_params
    module = import_onnx(depthwise_separable()[0])
    assert model_macs(module) == 36 * (8 * 2 + 8 * 9 + 12 * 8) + 12 * 4


def test_digits_params_match_the_trained_models():
    # examples/digits/README.md: PyTorch's parameter counts of the two models
    assert model_params(import_onnx("examples/digits/digits_cnn.onnx")) == 14458
    assert model_params(import_onnx("examples/digits/digits_dwsep.onnx")) == 9034


# -- what cannot be pruned ---------------------------------------------------------------------


def unprunable_model():
    """A conv whose output is a model output (and feeds another conv), a conv whose channels
    reach a non-flatten reshape, one that reaches a grouped conv, one that reaches a transpose,
    and a prunable one between."""
    g = Graph(seed=5)
    out = conv(g, "x", 3, 4, 3, "to_output")
    kept = g.node("Relu", [conv(g, out, 4, 8, 1, "free")], name="r")
    g.node("Reshape", [conv(g, kept, 8, 4, 1, "to_reshape"), g.const(np.array([2, 8, 32]), "shape")],
           name="rs")
    conv(g, conv(g, "x", 3, 8, 1, "to_grouped"), 8, 8, 3, "grouped", group=2)
    g.node("Transpose", [conv(g, "x", 3, 4, 1, "to_transpose")], name="tr", perm=[0, 2, 3, 1])
    outputs = ["to_output_out", "rs_out", "grouped_out", "tr_out"]
    return g.model({"x": ["N", 3, 8, 8]}, outputs), {"x": rand(2, 3, 8, 8)}


def test_unprunable_groups_name_the_op_that_stops_them():
    groups = groups_of(unprunable_model()[0])
    reasons = {name: g.reason for name, g in groups.items() if not g.prunable}
    assert reasons == {
        "to_output": "feeds a model output",
        "to_reshape": "reaches graph.reshape 'rs' (a reshape other than a flatten)",
        "to_grouped": "reaches graph.conv2d 'grouped' (a grouped convolution, group 2)",
        "to_transpose": "reaches graph.transpose 'tr' (cannot trace channels through it)",
    }
    assert groups["free"].prunable and groups["free"].consumers == ("to_reshape",)
    assert "grouped" not in groups  # a grouped convolution starts no group


# -- importance ---------------------------------------------------------------------------------


def initializers(model) -> dict:
    return {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}


def test_importance_sums_the_producers_of_a_joined_group():
    model = residual_block()[0]
    module, w = import_onnx(model), initializers(model)
    l1 = np.abs(w["stem.w"]).sum(axis=(1, 2, 3)) + np.abs(w["c2.w"]).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(channel_importance(module, "stem", "l1"), l1, rtol=1e-6)
    l2 = np.sqrt((w["c1.w"] ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(channel_importance(module, "c1", "l2"), l2, rtol=1e-6)
    bn = np.abs(w["stem_bn.gamma"]) + np.abs(w["bn2.gamma"])
    np.testing.assert_allclose(channel_importance(module, "stem", "bn"), bn, rtol=1e-6)
    fc = np.abs(w["fc.w"]).sum(axis=1)  # Gemm transB=1: weight (out, in)
    np.testing.assert_allclose(channel_importance(module, "fc", "l1"), fc, rtol=1e-6)


def test_importance_errors():
    module = import_onnx(residual_block()[0])
    with pytest.raises(XirError, match="layer 'head' has no batch norm right after it"):
        channel_importance(module, "head", "bn")
    with pytest.raises(XirError, match="unknown importance criterion 'l3'"):
        channel_importance(module, "head", "l3")
    with pytest.raises(XirError, match="no channel group 'nope'"):
        channel_importance(module, "nope")
