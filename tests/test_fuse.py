"""The fuse pass (passes/fuse.py, quant → dpu): on many seeded random small models, the fused
module computes the quant module's outputs bit for bit; layer order decides what fuses; ops the
inspector put on the CPU stay quant ops; the digits models fuse whole; ``xir-opt --help`` lists
the rules."""

from __future__ import annotations

import collections
import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import onnx
import pytest

from test_onnx_import import Graph
from xir import attributes as A
from xir.attributes import location_name
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.parser import parse
from xir.passes.fuse import RULES, fuse_module
from xir.passes.quantize import quantize_module
from xir.printer import print_ir
from xir.tools.opt import main as opt_main
from xir.verifier import verify

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
ACTIVATIONS = ["Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", None]


def activation(g: Graph, y, kind, name):
    """``kind`` applied to ``y`` (None: nothing)."""
    if kind is None:
        return y
    if kind == "Clip":
        return g.node("Clip", [y, g.const(np.float32(0)), g.const(np.float32(6))], name=name)
    if kind == "LeakyRelu":
        return g.node("LeakyRelu", [y], name=name, alpha=0.1015625)
    if kind == "HardSigmoid":
        return g.node("HardSigmoid", [y], name=name, alpha=1 / 6, beta=0.5)
    return g.node(kind, [y], name=name)


def conv(g: Graph, y, cin, cout, rng, k=None, act="random", name="conv", **extra):
    """A random convolution (kernel, stride, pads, dilation) with a random activation."""
    k = k or int(rng.integers(1, 5))
    attributes = {"kernel_shape": [k, k], "strides": [int(rng.integers(1, 3))] * 2,
                  "pads": [int(rng.integers(0, k))] * 4,
                  "dilations": [int(rng.integers(1, 3)) if k > 1 else 1] * 2, **extra}
    y = g.node("Conv", [y, g.weight((cout, cin // attributes.get("group", 1), k, k)),
                        g.weight((cout,), 0.1)], name=name, **attributes)
    kind = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))] if act == "random" else act
    return activation(g, y, kind, f"{name}_act")


# -- the cases: each builds (Graph, output, input shape) from a seeded generator -----------------


def case_conv(g, rng):
    return conv(g, "x", 3, 6, rng, k=int(rng.integers(1, 6))), (3, 12, 12)


def case_every_activation(g, rng):
    y = "x"
    for n, kind in enumerate(ACTIVATIONS):
        y = conv(g, y, 4, 4, rng, k=3, act=kind, name=f"c{n}", strides=[1, 1], pads=[1, 1, 1, 1],
                 dilations=[1, 1])
    return y, (4, 8, 8)


def case_standalone_activations(g, rng):
    y = g.node("Relu", ["x"], name="relu")
    y = conv(g, y, 3, 4, rng, k=1, act=None)
    y = g.node("Concat", [y, y], name="cat", axis=1)  # two users: nothing fuses into the conv
    y = g.node("LeakyRelu", [y], name="leaky", alpha=0.1)
    y = g.node("PRelu", [y, g.weight((8, 1, 1), 0.2)], name="prelu")
    return g.node("HardSwish", [y], name="hswish"), (3, 6, 6)


def case_depthwise(g, rng):
    y = conv(g, "x", 3, 6, rng, k=1, act="Relu", name="pw")
    return conv(g, y, 6, 6, rng, k=3, group=6, name="dw"), (3, 10, 10)


def case_transposed(g, rng):
    k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    y = g.node("ConvTranspose", ["x", g.weight((4, 3, k, k)), g.weight((3,), 0.1)], name="up",
               strides=[s, s], pads=[0, 0, int(k > 1), 0])
    return activation(g, y, ["Relu", None][int(rng.integers(2))], "up_act"), (4, 5, 5)


def case_dense_after_flatten(g, rng):
    y = conv(g, "x", 2, 3, rng, k=3, act="Relu", strides=[1, 1], dilations=[1, 1])
    y = g.node("Flatten", [y], name="flatten")
    n = int(np.prod(g_shape(g, y)[1:]))
    y = g.node("Gemm", [y, g.weight((5, n)), g.weight((5,), 0.1)], name="fc", transB=1)
    return g.node("Relu", [y], name="fc_relu"), (2, 6, 6)


def g_shape(g, name):
    """The shape of ``name`` in the graph built so far (by onnx shape inference)."""
    model = g.model({"x": [1, 2, 6, 6]}, [name])
    inferred = onnx.shape_inference.infer_shapes(model)
    for v in [*inferred.graph.value_info, *inferred.graph.output]:
        if v.name == name:
            return [d.dim_value for d in v.type.tensor_type.shape.dim]
    raise KeyError(name)


def case_dense_after_gap(g, rng):
    y = conv(g, "x", 3, 5, rng, k=3)
    y = g.node("GlobalAveragePool", [y], name="gap")
    y = g.node("Flatten", [y], name="flatten")
    y = g.node("Gemm", [y, g.weight((4, 5)), g.weight((4,), 0.1)], name="fc", transB=1)
    return g.node("MatMul", [y, g.weight((4, 3))], name="fc2"), (3, 7, 7)


def case_pools(g, rng):
    k, s = int(rng.integers(2, 4)), int(rng.integers(1, 3))
    y = g.node("MaxPool", ["x"], name="max", kernel_shape=[k, k], strides=[s, s],
               pads=[int(rng.integers(0, k))] * 4, ceil_mode=int(rng.integers(2)))
    y = g.node("Pad", [y, g.const(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64))], name="pad")
    y = g.node("AveragePool", [y], name="avg", kernel_shape=[3, 3], strides=[1, 1],
               pads=[0, 1, 1, 0], count_include_pad=1)
    y = g.node("AveragePool", [y], name="avg2", kernel_shape=[2, 3], strides=[2, 1])
    return g.node("GlobalAveragePool", [y], name="gap"), (3, 11, 11)


def case_pad_before_conv(g, rng):
    y = g.node("Pad", ["x", g.const(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))], name="pad")
    y = conv(g, y, 3, 4, rng, k=3, strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
    y = g.node("Pad", [y, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], name="pad2")
    return g.node("MaxPool", [y], name="max", kernel_shape=[3, 3]), (3, 8, 8)


def case_eltwise(g, rng):
    a = conv(g, "x", 4, 4, rng, k=3, act=None, name="a", strides=[1, 1], pads=[1, 1, 1, 1],
             dilations=[1, 1])
    b = conv(g, "x", 4, 4, rng, k=1, act=None, name="b", strides=[1, 1], pads=[0, 0, 0, 0])
    y = g.node("Add", [a, b], name="add")
    y = activation(g, y, ["Relu", "LeakyRelu", None][int(rng.integers(3))], "add_act")
    m = g.node("Mul", [y, b], name="mul")
    return g.node("Add", [m, "x"], name="add2"), (4, 6, 6)


def case_concat_resize_reshape(g, rng):
    a = conv(g, "x", 3, 4, rng, k=1, act="Relu", name="a", strides=[1, 1])
    a = g.node("MaxPool", [a], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    u = g.node("Resize", [a, "", g.const(np.array([1, 1, 2, 2], np.float32))], name="up",
               mode="nearest")
    b = g.node("AveragePool", ["x"], name="avg", kernel_shape=[2, 2], strides=[2, 2])
    b = g.node("Resize", [b, "", g.const(np.array([1, 1, 2, 2], np.float32))], name="up2",
               mode="nearest")
    y = g.node("Concat", [u, b], name="cat", axis=1)
    y = g.node("GlobalAveragePool", [y], name="gap")
    y = g.node("Reshape", [y, g.const(np.array([-1, 7], np.int64))], name="reshape")
    y = g.node("Reshape", [y, g.const(np.array([-1, 7, 1, 1], np.int64))], name="back")
    y = conv(g, y, 7, 3, rng, k=1, act="Relu", name="head")
    return g.node("Reshape", [y, g.const(np.array([-1, 3], np.int64))], name="out"), (3, 8, 8)


def case_chain(g, rng):
    """A random chain of the above's layers."""
    y, c = "x", 3
    for n in range(int(rng.integers(3, 6))):
        kind = int(rng.integers(4))
        if kind == 0:
            cout = int(rng.integers(2, 6))
            y = conv(g, y, c, cout, rng, k=int(rng.integers(1, 4)), name=f"c{n}",
                     strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])
            c = cout
        elif kind == 1:
            y = conv(g, y, c, c, rng, k=3, group=c, name=f"dw{n}", strides=[1, 1],
                     pads=[1, 1, 1, 1], dilations=[1, 1])
        elif kind == 2:
            r = conv(g, y, c, c, rng, k=1, act=None, name=f"r{n}", strides=[1, 1])
            y = activation(g, g.node("Add", [y, r], name=f"add{n}"), "Relu", f"add{n}_relu")
        else:
            r = conv(g, y, c, 2, rng, k=1, act="Relu", name=f"b{n}", strides=[1, 1])
            y, c = g.node("Concat", [y, r], name=f"cat{n}", axis=1), c + 2
    return y, (3, 6, 6)


CASES = [case_conv, case_every_activation, case_standalone_activations, case_depthwise,
         case_transposed, case_dense_after_flatten, case_dense_after_gap, case_pools,
         case_pad_before_conv, case_eltwise, case_concat_resize_reshape, case_chain]


# What stays a quant op: a zero pad before a max pool (padding would win over negative values).
LEFT = {case_pad_before_conv: {"quant.pad": 1}}


def quantized(model, shape, seed, samples=100):
    """(quant module, test input) for ``model`` calibrated on seeded random data."""
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((samples, *shape)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, _ = quantize_module(import_onnx(model), {"x": calib}, batch_size=50)
    return module, rng.standard_normal((8, *shape)).astype(np.float32) * 1.5


def fused_copy(module):
    fused = module.clone()
    fuse_module(fused)
    verify(fused)
    return fused


def op_counts(module) -> collections.Counter:
    return collections.Counter(op.name for op in module.walk())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[5:])
def test_fused_modules_compute_the_quant_modules_integers(case, seed):
    g = Graph(seed)
    out, shape = case(g, np.random.default_rng(seed))
    module, x = quantized(g.model({"x": ["N", *shape]}, [out]), shape, seed)
    fused = fused_copy(module)
    expected, got = run_module(module, {"x": x}), run_module(fused, {"x": x})
    for e, o in zip(expected, got):
        assert e.dtype == o.dtype and np.array_equal(e, o)
    counts = op_counts(fused)
    assert sum(n for name, n in counts.items() if name.startswith("dpu.")) > 0
    for name in ("quant.conv2d", "quant.conv_transpose2d", "quant.max_pool2d", "quant.add",
                 "quant.concat", "quant.resize", "quant.avg_pool2d", "quant.global_avg_pool",
                 "quant.pad", "quant.mul"):
        assert counts[name] == LEFT.get(case, {}).get(name, 0), (name, print_ir(fused))
    text = print_ir(fused, generic=True)
    assert print_ir(parse(text), generic=True) == text
    (again,) = run_module(parse(text), {"x": x})[:1]
    assert np.array_equal(again, expected[0])


def test_dense_after_flatten_is_one_conv_with_the_whole_map_as_kernel():
    g = Graph(0)
    out, shape = case_dense_after_flatten(g, np.random.default_rng(0))
    module, x = quantized(g.model({"x": ["N", *shape]}, [out]), shape, 0)
    fused = fused_copy(module)
    fc = [op for op in fused.walk() if location_name(op.location) == "fc"]
    convs = [op for op in fc if op.name == "dpu.conv2d_fix"]
    assert len(convs) == 1 and convs[0].param["kernel"] == convs[0].input.type.shape[1:3]
    assert convs[0].input.type.shape[1:3] != (1, 1) and convs[0].output.type.shape[1:3] == (1, 1)
    assert convs[0].param["nonlinear"] == "relu"
    assert op_counts(fused)["quant.flatten"] == 0 and op_counts(fused)["quant.dense"] == 0


def test_dense_after_gap_reads_the_pool_directly():
    g = Graph(1)
    out, shape = case_dense_after_gap(g, np.random.default_rng(1))
    module, _ = quantized(g.model({"x": ["N", *shape]}, [out]), shape, 1)
    fused = fused_copy(module)
    counts = op_counts(fused)
    assert counts["dpu.conv2d_fix"] == 3 and counts["dpu.pool_fix"] == 1
    assert counts["dpu.reshape"] == 1 and counts["dpu.to_nchw"] == 0  # N×1×1×C chains folded


def test_only_boundary_conversions_remain():
    g = Graph(2)
    out, shape = case_chain(g, np.random.default_rng(2))
    fused = fused_copy(quantized(g.model({"x": ["N", *shape]}, [out]), shape, 2)[0])
    counts = op_counts(fused)
    assert counts["dpu.to_nhwc"] == 1 and counts["dpu.to_nchw"] == 1


# -- layer order and the CPU's ops ---------------------------------------------------------------


def _bn(g, y, c, name):
    return g.node("BatchNormalization", [y, g.weight((c,), positive=True), g.weight((c,), 0.1),
                                         g.weight((c,), 0.1), g.weight((c,), positive=True)],
                  name=name)


def _ordered_model(order: str):
    g = Graph(0)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3))], name="conv", pads=[1, 1, 1, 1])
    for layer in order.split("_")[1:]:
        y = _bn(g, y, 4, "bn") if layer == "bn" else g.node("Relu", [y], name="relu")
    return g.model({"x": ["N", 3, 8, 8]}, [y])


def _compute_ops(module):
    glue = {"dpu.to_nhwc", "dpu.to_nchw", "dpu.reshape"}
    return sorted(op.name for op in module.walk() if op.name.startswith("dpu.")
                  and op.name not in glue)


def test_conv_bn_relu_is_one_dpu_conv():
    module, x = quantized(_ordered_model("conv_bn_relu"), (3, 8, 8), 0)
    fused = fused_copy(module)
    assert _compute_ops(fused) == ["dpu.conv2d_fix"]
    (conv,) = [op for op in fused.walk() if op.name == "dpu.conv2d_fix"]
    assert conv.param["nonlinear"] == "relu" and conv.param["bias_fp"] is not None
    assert np.array_equal(run_module(module, {"x": x})[0], run_module(fused, {"x": x})[0])


def test_conv_relu_bn_leaves_the_bn_as_a_depthwise_conv():
    module, x = quantized(_ordered_model("conv_relu_bn"), (3, 8, 8), 0)
    fused = fused_copy(module)
    assert _compute_ops(fused) == ["dpu.conv2d_fix", "dpu.depthwise_conv2d_fix"]
    (dw,) = [op for op in fused.walk() if op.name == "dpu.depthwise_conv2d_fix"]
    assert location_name(dw.location) == "bn"
    assert np.array_equal(run_module(module, {"x": x})[0], run_module(fused, {"x": x})[0])


def test_an_op_marked_for_the_cpu_stays_a_quant_op():
    module, x = quantized(_ordered_model("conv_relu_bn"), (3, 8, 8), 0)
    (bn,) = [op for op in module.walk() if location_name(op.location) == "bn"
             and op.name == "quant.conv2d"]
    bn.attributes["xir.device"] = A.StringAttr("CPU")
    (conv,) = [op for op in module.walk() if op.name == "quant.conv2d" and op is not bn]
    conv.attributes["xir.device"] = A.StringAttr("DPU")
    fused = fused_copy(module)
    assert _compute_ops(fused) == ["dpu.conv2d_fix"]
    counts = op_counts(fused)
    assert counts["quant.conv2d"] == 1 and counts["dpu.to_nchw"] == 1
    assert np.array_equal(run_module(module, {"x": x})[0], run_module(fused, {"x": x})[0])


# -- absorbing standalone ops (hand-written quant IR) --------------------------------------------

ABSORB = """builtin.module {
  func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
    %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi8>
    %p = "quant.pad"(%q) {pads = [0, 0, 1, 1, 0, 0, 1, 1], fix_point = 4} : (tensor<1x2x4x4xi8>) -> tensor<1x2x6x6xi8>
    %w = "quant.constant"() {value = dense<[[[[1, 2, -3], [4, -5, 6], [7, 8, -9]], [[-1, 0, 1], [2, 3, -4], [5, -6, 7]]], [[[2, 2, 2], [-2, -2, -2], [1, 1, 1]], [[0, 1, 0], [1, -8, 1], [0, 1, 0]]], [[[9, 0, 0], [0, 9, 0], [0, 0, 9]], [[-3, -3, -3], [3, 3, 3], [0, 0, 0]]]]> : tensor<3x2x3x3xi8>, fix_point = 5} : () -> tensor<3x2x3x3xi8>
    %c = "quant.conv2d"(%p, %w) {input_fp = 4, weight_fp = 5, output_fp = RELU_FP} : (tensor<1x2x6x6xi8>, tensor<3x2x3x3xi8>) -> tensor<1x3x4x4xi8>
    %r = "quant.RELU"(%c) {input_fp = RELU_FP, output_fp = RELU_FP} : (tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xi8>
    %y = "quant.dequantize"(%r) {fix_point = RELU_FP} : (tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xf32>
    "func.return"(%y) : (tensor<1x3x4x4xf32>) -> ()
  }
}
"""


@pytest.mark.parametrize("relu, fp, absorbed", [("relu", 4, True), ("relu6", 4, True),
                                                 ("leaky_relu", 4, False)])
def test_a_pad_before_and_a_relu_after_a_conv_are_absorbed_when_exact(relu, fp, absorbed):
    module = parse(ABSORB.replace("RELU_FP", str(fp)).replace("RELU", relu))
    verify(module)
    fused = fused_copy(module)
    (conv,) = [op for op in fused.walk() if op.name == "dpu.conv2d_fix"]
    assert conv.param["pad"] == (1, 1, 1, 1) and op_counts(fused)["quant.pad"] == 0
    assert conv.param["nonlinear"] == (relu if absorbed else "none")
    assert op_counts(fused)[f"quant.{relu}"] == (0 if absorbed else 1)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32) * 3
    assert np.array_equal(run_module(module, {"x": x})[0], run_module(fused, {"x": x})[0])


# -- the digits models and the help --------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("digits_cnn", {"dpu.conv2d_fix": 4, "dpu.pool_fix": 2, "dpu.reshape": 1, "dpu.to_nhwc": 1}),
    ("digits_dwsep", {"dpu.conv2d_fix": 5, "dpu.depthwise_conv2d_fix": 3, "dpu.pool_fix": 2,
                      "dpu.reshape": 1, "dpu.to_nhwc": 1}),
])
def test_digits_models_fuse_whole_and_bit_exact(name, expected):
    data = np.load(DIGITS / "digits.npz")
    calib = data["x_train"][:200].astype(np.float32) / 16
    x = data["x_test"][:200].astype(np.float32) / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, _ = quantize_module(import_onnx(onnx.load(DIGITS / f"{name}.onnx")),
                                    {"input": calib})
    fused = fused_copy(module)
    counts = op_counts(fused)
    assert {k: v for k, v in counts.items() if k.startswith("dpu.")} == expected
    assert not [k for k in counts if k.startswith("quant.") and k not in
                ("quant.constant", "quant.quantize", "quant.dequantize")]
    assert np.array_equal(run_module(module, {"input": x})[0], run_module(fused, {"input": x})[0])


def test_help_lists_the_rules():
    out = io.StringIO()
    with redirect_stdout(out):
        assert opt_main(["--help"]) == 0
    text = out.getvalue()
    assert "fuse  Fuse quant ops into DPU ops in NHWC" in text
    for rule in RULES:
        assert f"      {rule.name:<16}{', '.join(rule.matches)} -> {rule.becomes}" in text
    assert "dpu  " in text  # the dialect is registered
