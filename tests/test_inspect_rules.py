"""The inspector's rules, one limit at a time (reference/dpu.md §2).

Each case is a tiny ONNX model built with onnx.helper (seeded random weights), imported and
inspected against a target; it names one node and asserts its device, its full reasons and what
it is fused into. Every limit is tried on both sides: just inside (DPU) and just outside (CPU).
Tensors are kept as small as the limit allows (1 x 1 spatial, one or two channels).
"""

from __future__ import annotations

import numpy as np
import pytest

from test_onnx_import import Graph
from xir.frontends.onnx import import_onnx
from xir.passes.inspect import inspect_module

B4096, B512, ISA2 = "DPUCZDX8G_ISA1_B4096", "DPUCZDX8G_ISA1_B512", "DPUCAHX8H_ISA2"
ISA0, ISA3 = "DPUCZDX8G_ISA0_B4096", "DPUCVDX8G_ISA3_C32B3"
NO_FUSE = ("(it fuses after a convolution, pooling or eltwise op whose engine supports it); "
           "place it right after a convolution")
PAD_RULE = "a pad may be at most (kernel - 1) * dilation"


def inspect(model, target):
    return inspect_module(import_onnx(model), target)


def expect(report, name, device, reasons=(), fused_into=None):
    node = report.node(name)
    assert (node.device, node.reasons, node.fused_into) == (device, tuple(reasons), fused_into)
    return node


# -- model builders: each returns (graph, outputs, {input: shape}) ---------------------------------


def conv(kernel=(1, 1), strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), ic=1, oc=1,
         group=1, hw=None, then=None, **then_attrs):
    """x -> Conv 'c' [-> op `then` named after it in lower case]; the input is just big enough."""
    g = Graph()
    kh, kw = kernel
    if hw is None:
        hw = (max(1, (kh - 1) * dilations[0] + 1, strides[0]),
              max(1, (kw - 1) * dilations[1] + 1, strides[1]))
    y = g.node("Conv", ["x", g.weight((oc, ic // group, kh, kw))], name="c", kernel_shape=[kh, kw],
               strides=list(strides), pads=list(pads), dilations=list(dilations), group=group)
    if then is not None:
        y = activation(g, then, y, **then_attrs)
    return g, [y], {"x": [1, ic, *hw]}


def activation(g, op, y, **attrs):
    name = op.lower()
    if op == "Relu6":
        return g.node("Clip", [y, g.const(np.float32(0)), g.const(np.float32(6))], name="relu6")
    if op == "Clip":
        lo, hi = attrs.pop("lo"), attrs.pop("hi")
        return g.node("Clip", [y, g.const(np.float32(lo)), g.const(np.float32(hi))], name="clip")
    if op == "PRelu":
        return g.node("PRelu", [y, g.weight((2, 1, 1), 0.1)], name=name)
    return g.node(op, [y], name=name, **attrs)


def single(op, shape, *consts, inputs=None, n_out=1, **attrs):
    """One node 'n' of type ``op`` on x (and ``inputs``), with constant operands ``consts``."""
    g = Graph()
    names = [g.const(np.asarray(c)) if c is not None else "" for c in consts]
    y = g.node(op, ["x", *(inputs or {}), *names], n_out, name="n", **attrs)
    return g, [y] if n_out == 1 else list(y), {"x": shape, **(inputs or {})}


def conv_transpose(kernel, strides, output_padding=(0, 0), ic=1, oc=1):
    g = Graph()
    y = g.node("ConvTranspose", ["x", g.weight((ic, oc, *kernel))], name="t", kernel_shape=list(kernel),
               strides=list(strides), output_padding=list(output_padding))
    return g, [y], {"x": [1, ic, 1, 1]}


def gemm(k, n, trans_a=0):
    g = Graph()
    y = g.node("Gemm", ["x", g.weight((k, n))], name="g", transA=trans_a)
    return g, [y], {"x": [k, 1] if trans_a else [1, k]}


def pool(op, kernel, strides=(1, 1), pads=(0, 0, 0, 0), c=1, **attrs):
    g = Graph()
    h = max(1, kernel[0] - pads[0] - pads[2], strides[0])
    w = max(1, kernel[1] - pads[1] - pads[3], strides[1])
    y = g.node(op, ["x"], name="p", kernel_shape=list(kernel), strides=list(strides),
               pads=list(pads), **attrs)
    return g, [y], {"x": [1, c, h, w]}


def resize(scale, mode="nearest", ctm="half_pixel"):
    return single("Resize", [1, 1, 2, 2], None, np.array([1, 1, scale, scale], np.float32),
                  mode=mode, coordinate_transformation_mode=ctm)


def pad_then_conv(pad, conv_pads, mode="constant", value=0.0):
    g = Graph()
    pads = [0, 0, pad, pad, 0, 0, pad, pad]
    y = g.node("Pad", ["x", g.const(np.array(pads, np.int64)), g.const(np.float32(value))],
               name="pad", mode=mode)
    y = g.node("Conv", [y, g.weight((1, 1, 3, 3))], name="c", pads=[conv_pads] * 4)
    return g, [y], {"x": [1, 1, 3, 3]}


def two_inputs(op, x, y, **attrs):
    g = Graph()
    out = g.node(op, ["x", "y"], name="n", **attrs)
    return g, [out], {"x": x, "y": y}


def matmul_constant_left():
    g = Graph()
    y = g.node("MatMul", [g.weight((1, 8)), "x"], name="n")
    return g, [y], {"x": [8, 4]}


def run(case, target, opset=17):
    g, outputs, inputs = case
    return inspect(g.model(inputs, outputs, opset=opset), target)


# -- one op, one limit: (id, model, target, node, device, reasons[, fused_into]) ---------------------

K17 = "c: 'kernel'(17 x 17) is not in DPU supported range([1, 16])"
CASES = [
    # conv2d kernel 1-16, stride 1-8 (ISA1) and 1-4 (ISA2)
    ("conv-kernel-16", conv((16, 16)), B4096, "c", "DPU", ()),
    ("conv-kernel-17", conv((17, 17)), B4096, "c", "CPU", (K17,)),
    ("conv-kernel-17x1", conv((1, 17)), B4096, "c", "CPU",
     ("c: 'kernel'(17 x 1) is not in DPU supported range([1, 16])",)),
    ("conv-stride-8", conv(strides=(8, 8)), B4096, "c", "DPU", ()),
    ("conv-stride-9", conv(strides=(9, 9)), B4096, "c", "CPU",
     ("c: 'stride'(9 x 9) is not in DPU supported range([1, 8])",)),
    ("conv-stride-4-isa2", conv(strides=(4, 4)), ISA2, "c", "DPU", ()),
    ("conv-stride-5-isa2", conv(strides=(5, 5)), ISA2, "c", "CPU",
     ("c: 'stride'(5 x 5) is not in DPU supported range([1, 4])",)),
    ("conv-stride-5-b4096", conv(strides=(5, 5)), B4096, "c", "DPU", ()),
    # pad <= (k - 1) * dilation
    ("conv-pad-2-k3", conv((3, 3), pads=(2, 2, 2, 2)), B4096, "c", "DPU", ()),
    ("conv-pad-3-k3", conv((3, 3), pads=(3, 3, 3, 3)), B4096, "c", "CPU",
     (f"c: 'pad'(3, 3, 3, 3) is not in DPU supported range([0, 2]): {PAD_RULE}",)),
    ("conv-pad-one-side", conv((3, 3), pads=(0, 0, 0, 3)), B4096, "c", "CPU",
     (f"c: 'pad'(0, 0, 0, 3) is not in DPU supported range([0, 2]): {PAD_RULE}",)),
    ("conv-pad-4-k3-dilation-2", conv((3, 3), pads=(4, 4, 4, 4), dilations=(2, 2)), B4096, "c",
     "DPU", ()),
    ("conv-pad-5-k3-dilation-2", conv((3, 3), pads=(5, 5, 5, 5), dilations=(2, 2)), B4096, "c",
     "CPU", (f"c: 'pad'(5, 5, 5, 5) is not in DPU supported range([0, 4]): {PAD_RULE}",)),
    # channels <= 256 * ICP / OCP (B512: ICP = OCP = 8 -> 2048; B4096: 4096)
    ("conv-ic-2048-b512", conv(ic=2048), B512, "c", "DPU", ()),
    ("conv-ic-2049-b512", conv(ic=2049), B512, "c", "CPU",
     ("c: 'input_channel'(2049) is not in DPU supported range([1, 2048])",)),
    ("conv-ic-2049-b4096", conv(ic=2049), B4096, "c", "DPU", ()),
    ("conv-oc-2048-b512", conv(oc=2048), B512, "c", "DPU", ()),
    ("conv-oc-2049-b512", conv(oc=2049), B512, "c", "CPU",
     ("c: 'output_channel'(2049) is not in DPU supported range([1, 2048])",)),
    # weight bank: kh * kw * ceil(ic / ICP) <= 2048 rows (B512: ICP 8)
    ("conv-weights-2048-rows", conv((16, 16), ic=64), B512, "c", "DPU", ()),
    ("conv-weights-2304-rows", conv((16, 16), ic=65), B512, "c", "CPU",
     ("c: 'weights'(2304 rows: kernel 256 x ceil(65 / 8)) do not fit weight bank CONVW "
      "(2048 rows)",)),
    ("conv-weights-b4096", conv((16, 16), ic=65), B4096, "c", "DPU", ()),  # 256 * 5 rows
    # group: 1, depthwise (group = ic = oc), channel multiplier, other groupings
    ("conv-group-1", conv(ic=4, oc=4), B4096, "c", "DPU", ()),
    ("conv-depthwise", conv((3, 3), ic=4, oc=4, group=4), B4096, "c", "DPU", ()),
    ("conv-depthwise-multiplier", conv(ic=2, oc=4, group=2), B4096, "c", "CPU",
     ("c: depthwise convolution with channel multiplier 2 is not supported",)),
    ("conv-group-2-of-4", conv(ic=4, oc=4, group=2), B4096, "c", "CPU",
     ("c: 'group'(2) is not supported: a DPU convolution has group 1 or is depthwise "
      "(group = input channels = output channels; here 4 in, 4 out)",)),
    # depthwise on the ALU (ISA1): kernel and stride 1-256, pads left/top 0-15
    ("dw-kernel-17-alu", conv((1, 17), ic=2, oc=2, group=2), B4096, "c", "DPU", ()),
    ("dw-kernel-256-alu", conv((1, 256), ic=2, oc=2, group=2), B4096, "c", "DPU", ()),
    ("dw-kernel-257-alu", conv((1, 257), ic=2, oc=2, group=2), B4096, "c", "CPU",
     ("c: 'kernel'(257 x 1) is not in DPU supported range([1, 256])",)),
    ("dw-stride-256-alu", conv(strides=(1, 256), ic=2, oc=2, group=2), B4096, "c", "DPU", ()),
    ("dw-stride-257-alu", conv(strides=(1, 257), ic=2, oc=2, group=2), B4096, "c", "CPU",
     ("c: 'stride'(257 x 1) is not in DPU supported range([1, 256])",)),
    ("dw-pad-left-15-alu", conv((1, 17), pads=(0, 15, 0, 0), ic=2, oc=2, group=2), B4096, "c",
     "DPU", ()),
    ("dw-pad-left-16-alu", conv((1, 17), pads=(0, 16, 0, 0), ic=2, oc=2, group=2), B4096, "c",
     "CPU", ("c: 'pad_left'(16) is not in DPU supported range([0, 15])",)),
    ("dw-pad-right-16-alu", conv((1, 17), pads=(0, 0, 0, 16), ic=2, oc=2, group=2), B4096, "c",
     "DPU", ()),
    # depthwise on ISA0's dwconv engine (kernel 1-16) and on ISA2 (no engine)
    ("dw-kernel-16-isa0", conv((1, 16), ic=2, oc=2, group=2), ISA0, "c", "DPU", ()),
    ("dw-kernel-17-isa0", conv((1, 17), ic=2, oc=2, group=2), ISA0, "c", "CPU",
     ("c: 'kernel'(17 x 1) is not in DPU supported range([1, 16])",)),
    ("dw-isa2", conv((3, 3), ic=2, oc=2, group=2), ISA2, "c", "CPU",
     ("c: DPUCAHX8H_ISA2 has no depthwise engine (no ALU or dwconv engine)",)),
    # transposed conv: output_padding 0; kernel / stride within 1-16
    ("convT-output-padding-0", conv_transpose((3, 3), (2, 2)), B4096, "t", "DPU", ()),
    ("convT-output-padding-1", conv_transpose((3, 3), (2, 2), (1, 1)), B4096, "t", "CPU",
     ("t: DPU does not support output_padding (1, 1); use padding that makes output_padding 0",)),
    ("convT-kernel-32-stride-2", conv_transpose((32, 32), (2, 2)), B4096, "t", "DPU", ()),
    ("convT-kernel-34-stride-2", conv_transpose((34, 34), (2, 2)), B4096, "t", "CPU",
     ("t: 'kernel / stride'(17 x 17) is not in DPU supported range([1, 16])",)),
    # fully connected: constant weights, no trans_a, channels (B512: 2048)
    ("fc-2048x2048-b512", gemm(2048, 8), B512, "g", "DPU", ()),
    ("fc-k-2049-b512", gemm(2049, 8), B512, "g", "CPU",
     ("g: 'input_channel'(2049) is not in DPU supported range([1, 2048])",)),
    ("fc-n-2049-b512", gemm(8, 2049), B512, "g", "CPU",
     ("g: 'output_channel'(2049) is not in DPU supported range([1, 2048])",)),
    ("fc-trans-a", gemm(8, 8, trans_a=1), B4096, "g", "CPU",
     ("g: 'trans_a'(1) is not supported: the activation must not be transposed",)),
    ("matmul-constant", single("MatMul", [1, 8], np.ones((8, 4), np.float32)), B4096, "n", "DPU",
     ()),
    ("matmul-run-time", two_inputs("MatMul", [1, 8], [8, 4]), B4096, "n", "CPU",
     ("n: both operands are computed at run time; DPU runs a matrix product as a convolution "
      "with constant weights (the right operand)",)),
    ("matmul-constant-on-the-left", matmul_constant_left(), B4096, "n", "CPU",
     ("n: its left operand is constant and its right one computed at run time; DPU runs a "
      "matrix product as a convolution with constant weights (the right operand)",)),
    ("conv-run-time-weights", two_inputs("Conv", [1, 2, 3, 3], [2, 2, 3, 3]), B4096, "n", "CPU",
     ("n: its weights are computed at run time; DPU convolutions need constant weights",)),
    ("convT-run-time-weights", two_inputs("ConvTranspose", [1, 2, 1, 1], [2, 2, 3, 3]), B4096,
     "n", "CPU",
     ("n: its weights are computed at run time; DPU convolutions need constant weights",)),
    # max / avg pool: ALU 1-256 (ISA1); pool engine 1-8 (ISA2, ISA0; ISA0 avg 2-8)
    ("maxpool-kernel-256-alu", pool("MaxPool", (1, 256)), B4096, "p", "DPU", ()),
    ("maxpool-kernel-257-alu", pool("MaxPool", (1, 257)), B4096, "p", "CPU",
     ("p: 'kernel'(257 x 1) is not in DPU supported range([1, 256])",)),
    ("maxpool-stride-256-alu", pool("MaxPool", (1, 1), (1, 256)), B4096, "p", "DPU", ()),
    ("maxpool-stride-257-alu", pool("MaxPool", (1, 1), (1, 257)), B4096, "p", "CPU",
     ("p: 'stride'(257 x 1) is not in DPU supported range([1, 256])",)),
    ("avgpool-kernel-256-alu", pool("AveragePool", (1, 256)), B512, "p", "DPU", ()),
    ("avgpool-kernel-257-alu", pool("AveragePool", (1, 257)), B512, "p", "CPU",
     ("p: 'kernel'(257 x 1) is not in DPU supported range([1, 256])",)),
    ("maxpool-kernel-8-isa2", pool("MaxPool", (8, 8)), ISA2, "p", "DPU", ()),
    ("maxpool-kernel-9-isa2", pool("MaxPool", (9, 9)), ISA2, "p", "CPU",
     ("p: 'kernel'(9 x 9) is not in DPU supported range([1, 8])",)),
    ("maxpool-stride-9-isa2", pool("MaxPool", (1, 1), (9, 9)), ISA2, "p", "CPU",
     ("p: 'stride'(9 x 9) is not in DPU supported range([1, 8])",)),
    ("avgpool-kernel-8-isa2", pool("AveragePool", (8, 8)), ISA2, "p", "DPU", ()),
    ("avgpool-kernel-9-isa2", pool("AveragePool", (9, 9)), ISA2, "p", "CPU",
     ("p: 'kernel'(9 x 9) is not in DPU supported range([1, 8])",)),
    ("maxpool-kernel-1-isa0", pool("MaxPool", (1, 1)), ISA0, "p", "DPU", ()),
    ("avgpool-kernel-1-isa0", pool("AveragePool", (1, 1)), ISA0, "p", "CPU",
     ("p: 'kernel'(1 x 1) is not in DPU supported range([2, 8])",)),
    ("avgpool-kernel-2-isa0", pool("AveragePool", (2, 2)), ISA0, "p", "DPU", ()),
    ("avgpool-kernel-8-isa0", pool("AveragePool", (8, 8)), ISA0, "p", "DPU", ()),
    ("avgpool-kernel-9-isa0", pool("AveragePool", (9, 9)), ISA0, "p", "CPU",
     ("p: 'kernel'(9 x 9) is not in DPU supported range([2, 8])",)),
    # avg pool with padding divides by the whole window on the DPU
    ("avgpool-pad-count-include-pad", pool("AveragePool", (3, 3), pads=(1, 1, 1, 1),
                                           count_include_pad=1), B4096, "p", "DPU", ()),
    ("avgpool-pad-count-exclude-pad", pool("AveragePool", (3, 3), pads=(1, 1, 1, 1)), B4096, "p",
     "CPU", ("p: DPU average pooling divides by the whole window, padding included; "
             "set count_include_pad = 1",)),
    ("avgpool-no-pad-exclude-pad", pool("AveragePool", (3, 3)), B4096, "p", "DPU", ()),
    ("maxpool-pad-left-16-alu", pool("MaxPool", (1, 17), pads=(0, 16, 0, 0)), B4096, "p", "CPU",
     ("p: 'pad_left'(16) is not in DPU supported range([0, 15])",)),
    # global average pool: the whole H x W as the kernel
    ("gap-8x8-isa2", single("GlobalAveragePool", [1, 1, 8, 8]), ISA2, "n", "DPU", ()),
    ("gap-9x9-isa2", single("GlobalAveragePool", [1, 1, 9, 9]), ISA2, "n", "CPU",
     ("n: 'kernel'(9 x 9) is not in DPU supported range([1, 8])",)),
    ("gap-13x13-b4096", single("GlobalAveragePool", [1, 1, 13, 13]), B4096, "n", "DPU", ()),
    ("gap-1x1-isa0", single("GlobalAveragePool", [1, 1, 1, 1]), ISA0, "n", "CPU",
     ("n: 'kernel'(1 x 1) is not in DPU supported range([2, 8])",)),
    # reduce_mean: over H and W (keepdims) is average pooling, else CPU
    ("reduce-mean-hw", single("ReduceMean", [1, 2, 3, 3], axes=[2, 3]), B4096, "n", "DPU", ()),
    ("reduce-mean-hw-isa2-9x9", single("ReduceMean", [1, 2, 9, 9], axes=[2, 3]), ISA2, "n", "CPU",
     ("n: 'kernel'(9 x 9) is not in DPU supported range([1, 8])",)),
    ("reduce-mean-c", single("ReduceMean", [1, 2, 3, 3], axes=[1]), B4096, "n", "CPU",
     ("n: reduce_mean over axes [1] is not a pooling: only the mean over H and W (keepdims) "
      "runs on DPU, as average pooling",)),
    ("reduce-mean-hw-no-keepdims", single("ReduceMean", [1, 2, 3, 3], axes=[2, 3], keepdims=0),
     B4096, "n", "CPU",
     ("n: reduce_mean over axes [2, 3] is not a pooling: only the mean over H and W (keepdims) "
      "runs on DPU, as average pooling",)),
    # eltwise: add and mult (ISA1), add only (ISA2, ISA0); equal shapes only
    ("add-b4096", two_inputs("Add", [1, 2, 2, 2], [1, 2, 2, 2]), B4096, "n", "DPU", ()),
    ("mul-b4096", two_inputs("Mul", [1, 2, 2, 2], [1, 2, 2, 2]), B4096, "n", "DPU", ()),
    ("add-isa2", two_inputs("Add", [1, 2, 2, 2], [1, 2, 2, 2]), ISA2, "n", "DPU", ()),
    ("mul-isa2", two_inputs("Mul", [1, 2, 2, 2], [1, 2, 2, 2]), ISA2, "n", "CPU",
     ("n: 'mult' is not an eltwise type of DPUCAHX8H_ISA2 (supported: add)",)),
    ("mul-isa0", two_inputs("Mul", [1, 2, 2, 2], [1, 2, 2, 2]), ISA0, "n", "CPU",
     ("n: 'mult' is not an eltwise type of DPUCZDX8G_ISA0_B4096 (supported: add)",)),
    ("add-broadcast", two_inputs("Add", [1, 2, 2, 2], [1, 2, 1, 1]), B4096, "n", "CPU",
     ("n: inputs of shapes (1, 2, 2, 2) and (1, 2, 1, 1) differ: DPU eltwise needs equal shapes "
      "(no broadcasting)",)),
    # a constant per-channel scale or shift alone runs as a depthwise conv; others are eltwise
    ("scale-alone-b4096", single("Mul", [1, 2, 2, 2], np.ones((1, 2, 1, 1), np.float32)), B4096,
     "n", "DPU", ()),
    ("shift-alone-b4096", single("Add", [1, 2, 2, 2], np.ones((2, 1, 1), np.float32)), B4096,
     "n", "DPU", ()),
    ("scale-alone-isa2", single("Mul", [1, 2, 2, 2], np.ones((1, 2, 1, 1), np.float32)), ISA2,
     "n", "CPU",
     ("n: a per-channel scale that does not follow a convolution would run as a depthwise "
      "convolution, and DPUCAHX8H_ISA2 has no depthwise engine",)),
    ("scale-per-pixel", single("Mul", [1, 2, 2, 2], np.ones((1, 1, 2, 2), np.float32)), B4096,
     "n", "CPU",
     ("n: mult with a constant operand: the eltwise engine combines two feature maps; fold the "
      "constant into the preceding convolution's weights or bias",)),
    # always on the CPU
    ("sub", two_inputs("Sub", [1, 2, 2, 2], [1, 2, 2, 2]), B4096, "n", "CPU",
     ("n: sub runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)",)),
    ("div", two_inputs("Div", [1, 2, 2, 2], [1, 2, 2, 2]), B4096, "n", "CPU",
     ("n: div runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)",)),
    ("softmax", single("Softmax", [1, 4], axis=1), B4096, "n", "CPU",
     ("n: softmax runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)",)),
    ("sigmoid", single("Sigmoid", [1, 2, 2, 2]), B4096, "n", "CPU",
     ("n: sigmoid runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)",)),
    ("tanh", single("Tanh", [1, 2, 2, 2]), ISA3, "n", "CPU",
     ("n: tanh runs on the CPU on DPUCVDX8G_ISA3_C32B3 (no DPU engine computes it)",)),
    ("transpose", single("Transpose", [1, 2, 2, 2], perm=[0, 2, 3, 1]), B4096, "n", "CPU",
     ("n: transpose (permute) runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes "
      "it)",)),
    ("slice", single("Slice", [1, 4, 2, 2], np.array([1], np.int64), np.array([3], np.int64),
                     np.array([1], np.int64)), B4096, "n", "CPU",
     ("n: strided slice runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)",)),
    ("split", single("Split", [1, 4, 2, 2], np.array([2, 2], np.int64), axis=1, n_out=2), B4096,
     "n", "CPU", ("n: split runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)",)),
    ("lrn", single("LRN", [1, 4, 2, 2], size=3), ISA2, "n", "CPU",
     ("n: LRN runs on the CPU on DPUCAHX8H_ISA2 (no DPU engine computes it)",)),
    ("elu-kept-onnx-op", single("Elu", [1, 2, 2, 2]), B4096, "n", "CPU",
     ("n: ONNX op 'Elu' has no graph op, so no DPU op",)),
    # concat along channels only
    ("concat-axis-1", two_inputs("Concat", [1, 2, 2, 2], [1, 3, 2, 2], axis=1), B4096, "n", "DPU",
     ()),
    ("concat-axis-2", two_inputs("Concat", [1, 2, 2, 2], [1, 2, 3, 2], axis=2), B4096, "n", "CPU",
     ("n: 'axis'(2) is not supported: DPU concatenates 4-D feature maps along channels "
      "(axis 1)",)),
    # resize: nearest by an integer scale; bilinear half_pixel by 2 or 4
    ("resize-nearest-2", resize(2.0), B4096, "n", "DPU", ()),
    ("resize-nearest-3", resize(3.0), B4096, "n", "DPU", ()),
    ("resize-nearest-1.5", resize(1.5), B4096, "n", "CPU",
     ("n: nearest resize by 1.5 x 1.5 is not an integer scale; use an integer scale",)),
    ("resize-bilinear-2", resize(2.0, "linear"), B4096, "n", "DPU", ()),
    ("resize-bilinear-4", resize(4.0, "linear"), B4096, "n", "DPU", ()),
    ("resize-bilinear-3", resize(3.0, "linear"), B4096, "n", "CPU",
     ("n: bilinear resize by 3.0 x 3.0 is not supported (scale 2 or 4 only); use nearest "
      "resize",)),
    ("resize-bilinear-align-corners", resize(2.0, "linear", "align_corners"), B4096, "n", "CPU",
     ("n: bilinear resize with coordinate_transformation_mode 'align_corners' is not supported "
      "(align_corners must be false: half_pixel); use nearest resize",)),
    # pad: constant zero (fused into the conv that reads it); reflect -> CPU
    ("pad-reflect", pad_then_conv(1, 0, mode="reflect"), B4096, "pad", "CPU",
     ("pad: pad mode 'reflect' is not supported (constant zero padding only); use constant zero "
      "padding",)),
    ("pad-value-1", pad_then_conv(1, 0, value=1.0), B4096, "pad", "CPU",
     ("pad: pad value 1.0 is not supported (constant zero padding only); use constant zero "
      "padding",)),
    ("pad-zero-plus-conv-pad-2", pad_then_conv(1, 1), B4096, "c", "DPU", ()),
    ("pad-zero-plus-conv-pad-3", pad_then_conv(2, 1), B4096, "c", "CPU",
     (f"c: 'pad'(3, 3, 3, 3) is not in DPU supported range([0, 2]): {PAD_RULE}",)),
    # activations after a convolution
    ("conv-relu6", conv(then="Relu6", oc=2), B4096, "relu6", "DPU", (), "c"),
    ("conv-clip-not-relu6", conv(then="Clip", lo=-1.0, hi=1.0, oc=2), B4096, "clip", "CPU",
     ("clip: clip(-1.0, 1.0) is neither relu nor relu6 (clip(0, 6))",)),
    ("conv-leaky-26/256", conv(then="LeakyRelu", alpha=26 / 256, oc=2), B4096, "leakyrelu", "DPU",
     (), "c"),
    ("conv-leaky-0.1", conv(then="LeakyRelu", alpha=0.1, oc=2), B4096, "leakyrelu", "CPU",
     ("leakyrelu: Its alpha is 0.1, but DPU only supports 0.1015625; set alpha to 26/256",)),
    ("conv-prelu-alu", conv(then="PRelu", oc=2), B4096, "prelu", "DPU", ()),
    ("conv-prelu-isa2", conv(then="PRelu", oc=2), ISA2, "prelu", "CPU",
     (f"prelu: prelu has no op to fuse into on DPUCAHX8H_ISA2 {NO_FUSE}",)),
    ("conv-hsigmoid-1/6-alu", conv(then="HardSigmoid", alpha=1 / 6, oc=2), B4096, "hardsigmoid",
     "DPU", ()),
    ("conv-hsigmoid-0.2", conv(then="HardSigmoid", alpha=0.2, oc=2), B4096, "hardsigmoid", "CPU",
     ("hardsigmoid: hard_sigmoid with alpha 0.2 and beta 0.5 is not relu6(x + 3) / 6, the one "
      "the DPU computes; use alpha = 1/6, beta = 0.5 (PyTorch's Hardsigmoid)",)),
    ("conv-hswish-b4096", conv(then="HardSwish", oc=2), B4096, "hardswish", "CPU",
     (f"hardswish: hard_swish has no op to fuse into on DPUCZDX8G_ISA1_B4096 {NO_FUSE}",)),
    ("relu-of-input", single("Relu", [1, 2, 2, 2]), B4096, "n", "CPU",
     (f"n: relu has no op to fuse into on DPUCZDX8G_ISA1_B4096 {NO_FUSE}",)),
    ("leaky-alone-alu", single("LeakyRelu", [1, 2, 2, 2], alpha=26 / 256), B4096, "n", "DPU", ()),
    ("leaky-alone-isa2", single("LeakyRelu", [1, 2, 2, 2], alpha=26 / 256), ISA2, "n", "CPU",
     (f"n: leaky_relu has no op to fuse into on DPUCAHX8H_ISA2 {NO_FUSE}",)),
]


@pytest.mark.parametrize("case, target, name, device, reasons, fused_into",
                         [pytest.param(*c[1:6], *(c[6:] or [None]), id=c[0]) for c in CASES])
def test_limit(case, target, name, device, reasons, fused_into):
    expect(run(case, target), name, device, reasons, fused_into)


# -- fusion: what fuses into what, and where ------------------------------------------------------

def add_relu():
    g, (y,), inputs = two_inputs("Add", [1, 2, 2, 2], [1, 2, 2, 2])
    return g, [g.node("Relu", [y], name="relu")], inputs


def pool_relu():
    g, (y,), inputs = pool("MaxPool", (2, 2))
    return g, [g.node("Relu", [y], name="relu")], inputs


FUSED = [
    # (id, model, target, {node: fused_into}) -- every fused node is on the DPU with its anchor
    ("conv-relu", conv(then="Relu", oc=2), B4096, {"relu": "c"}),
    ("conv-relu6", conv(then="Relu6", oc=2), B4096, {"relu6": "c"}),
    ("conv-leaky", conv(then="LeakyRelu", alpha=26 / 256, oc=2), B512, {"leakyrelu": "c"}),
    ("conv-hswish-isa3", conv(then="HardSwish", oc=2), ISA3, {"hardswish": "c"}),
    ("conv-hsigmoid-isa3", conv(then="HardSigmoid", alpha=1 / 6, oc=2), ISA3,
     {"hardsigmoid": "c"}),
    ("dwconv-relu6-alu", conv((3, 3), ic=2, oc=2, group=2, then="Relu6"), B4096, {"relu6": "c"}),
    ("pad-zero-into-conv", pad_then_conv(1, 0), B4096, {"pad": "c"}),
    ("add-relu", add_relu(), B4096, {"relu": "n"}),
    ("add-relu-isa2", add_relu(), ISA2, {"relu": "n"}),
    ("maxpool-relu-alu", pool_relu(), B4096, {"relu": "p"}),
]


@pytest.mark.parametrize("case, target, fused", [pytest.param(*c[1:], id=c[0]) for c in FUSED])
def test_fused(case, target, fused):
    report = run(case, target)
    for name, anchor in fused.items():
        expect(report, name, "DPU", (), anchor)
        expect(report, anchor, "DPU")


def test_not_fused_activations_stand_alone():
    # hard_sigmoid is not a conv nonlinear on ISA1: it runs alone on the ALU
    report = run(conv(then="HardSigmoid", alpha=1 / 6, oc=2), B4096)
    node = expect(report, "hardsigmoid", "DPU")
    assert node.notes == ("hardsigmoid: runs on its own on the ALU",)
    # a leaky relu after a depthwise conv: the ISA1 ALU has no leaky nonlinear (bit 29 off)
    report = run(conv((3, 3), ic=2, oc=2, group=2, then="LeakyRelu", alpha=26 / 256), B4096)
    expect(report, "leakyrelu", "DPU")
    assert report.node("leakyrelu").notes == ("leakyrelu: runs on its own on the ALU",)


def test_isa2_pool_engine_fuses_no_activation():
    report = run(pool_relu(), ISA2)
    expect(report, "p", "DPU")
    expect(report, "relu", "CPU", (f"relu: relu has no op to fuse into on {ISA2} {NO_FUSE}",))


def test_a_zero_pad_alone_runs_on_the_dpu():
    g, (y,), inputs = single("Pad", [1, 1, 2, 2], np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    report = run((g, [g.node("Relu", [y], name="relu")], inputs), B4096)
    expect(report, "n", "DPU")


def pad_then(op, pad, **attrs):
    g = Graph()
    pads = [0, 0, pad, pad, 0, 0, pad, pad]
    y = g.node("Pad", ["x", g.const(np.array(pads, np.int64))], name="pad")
    y = g.node(op, [y], name="p", **attrs)
    return g, [y], {"x": [1, 1, 2, 2]}


def test_zero_pads_fold_into_pooling_windows_only():
    report = run(pad_then("MaxPool", 1, kernel_shape=[3, 3]), B4096)
    expect(report, "pad", "DPU", fused_into="p")
    report = run(pad_then("AveragePool", 1, kernel_shape=[3, 3]), B4096)  # the pad counts: exact
    expect(report, "pad", "DPU", fused_into="p")
    expect(report, "p", "DPU")
    report = run(pad_then("MaxPool", 3, kernel_shape=[3, 3]), B4096)  # 3 > (3 - 1)? ALU: 0-15
    expect(report, "p", "DPU")
    report = run(pad_then("MaxPool", 3, kernel_shape=[3, 3]), ISA2)  # pool engine: pad <= k - 1
    expect(report, "p", "CPU", (f"p: 'pad'(3, 3, 3, 3) is not in DPU supported range([0, 2]): "
                                f"{PAD_RULE}",))
    expect(report, "pad", "CPU", ("pad: fused into 'p', which runs on the CPU",), "p")
    # a global pool has no window pads: the pad stays a DPU op of its own
    report = run(pad_then("GlobalAveragePool", 1), B4096)
    expect(report, "pad", "DPU")
    expect(report, "p", "DPU")


def bn(g, y, name, c=2):
    return g.node("BatchNormalization", [y, g.weight((c,), positive=True), g.weight((c,), 0.1),
                                         g.weight((c,), 0.1), g.weight((c,), positive=True)],
                  name=name)


def conv_bn_relu(order):
    g = Graph()
    y = g.node("Conv", ["x", g.weight((2, 2, 3, 3))], name="c", pads=[1, 1, 1, 1])
    for op in order:
        y = bn(g, y, "bn") if op == "bn" else g.node("Relu", [y], name="relu")
    return g, [y], {"x": [1, 2, 4, 4]}


def test_conv_bn_relu_is_one_dpu_op():
    for target in (B4096, ISA2):
        report = run(conv_bn_relu(["bn", "relu"]), target)
        expect(report, "c", "DPU")
        expect(report, "bn", "DPU", fused_into="c")
        expect(report, "relu", "DPU", fused_into="c")
        assert report.groups() == {"c": ["c", "bn", "relu"]}


HINT = "bn: does not fold into 'c' because it follows the activation 'relu'; move the BatchNorm " \
       "before the activation"


def test_conv_relu_bn_leaves_the_bn_alone():
    report = run(conv_bn_relu(["relu", "bn"]), B4096)  # the ALU runs it as a depthwise conv
    expect(report, "relu", "DPU", fused_into="c")
    node = expect(report, "bn", "DPU")
    assert node.notes == ("bn: runs as a depthwise convolution", HINT)
    report = run(conv_bn_relu(["relu", "bn"]), ISA2)  # no depthwise engine: CPU
    expect(report, "relu", "DPU", fused_into="c")
    expect(report, "bn", "CPU", ("bn: a BatchNorm that does not follow a convolution would run as "
                                 "a depthwise convolution, and DPUCAHX8H_ISA2 has no depthwise "
                                 "engine", HINT))
    assert report.groups() == {"c": ["c", "relu"]}


def test_constant_scale_and_shift_fold_into_the_conv():
    g = Graph()
    y = g.node("Conv", ["x", g.weight((2, 2, 1, 1))], name="c")
    y = g.node("Mul", [y, g.const(np.ones((2, 1, 1), np.float32))], name="scale")
    y = g.node("Add", [y, g.const(np.ones((1, 2, 1, 1), np.float32))], name="shift")
    y = g.node("Relu", [y], name="relu")
    for target in (B4096, ISA2):  # folds even where a lone scale could not run
        report = run((g, [y], {"x": [1, 2, 2, 2]}), target)
        assert report.groups() == {"c": ["c", "scale", "shift", "relu"]}
        assert {n.device for n in report.nodes if n.name != "x"} == {"DPU"}


def test_an_op_fused_into_a_cpu_conv_goes_with_it():
    report = run(conv(ic=4, oc=4, group=2, then="Relu"), B4096)
    expect(report, "relu", "CPU", ("relu: fused into 'c', which runs on the CPU",), "c")


def test_a_conv_whose_value_has_two_users_fuses_nothing():
    g = Graph()
    y = g.node("Conv", ["x", g.weight((2, 2, 1, 1))], name="c")
    r = g.node("Relu", [y], name="relu")
    s = g.node("Add", [y, r], name="add")
    report = run((g, [s], {"x": [1, 2, 2, 2]}), B4096)
    expect(report, "relu", "CPU", (f"relu: relu has no op to fuse into on {B4096} {NO_FUSE}",))
    expect(report, "add", "DPU")


# -- layout ops only inside a DPU subgraph ----------------------------------------------------------


def layout(op, before=None, after=None, output=False):
    """[before ->] op 'f' [-> after]; before/after are 'conv', 'softmax', 'gemm' or None."""
    g = Graph()
    y = "x"
    shape = [1, 2, 2, 2]
    if before == "conv":
        y = g.node("Conv", [y, g.weight((2, 2, 1, 1))], name="c")
    elif before == "softmax":
        y = g.node("Softmax", [y], name="s", axis=1)
    y = g.node(op, [y, g.const(np.array([1, 8], np.int64))] if op == "Reshape" else [y], name="f")
    outputs = [y] if output or after is None else []
    if after == "gemm":
        outputs.append(g.node("Gemm", [y, g.weight((8, 3))], name="g"))
    elif after == "softmax":
        outputs.append(g.node("Softmax", [y], name="s2", axis=1))
    return g, outputs, {"x": shape}


LAYOUT = [
    ("flatten-inside", layout("Flatten", "conv", "gemm"), "DPU", ()),
    ("reshape-inside", layout("Reshape", "conv", "gemm"), "DPU", ()),
    ("flatten-of-model-input", layout("Flatten", None, "gemm"), "CPU",
     ("f: The input of flatten is not on DPU (it is a model input)",)),
    ("reshape-of-model-input", layout("Reshape", None, "gemm"), "CPU",
     ("f: The input of reshape is not on DPU (it is a model input)",)),
    ("flatten-after-cpu-op", layout("Flatten", "softmax", "gemm"), "CPU",
     ("f: The input of flatten is not on DPU (it comes from 's')",)),
    ("flatten-before-cpu-op", layout("Flatten", "conv", "softmax"), "CPU",
     ("f: The output of flatten is not used on DPU (by 's2')",)),
    ("flatten-is-model-output", layout("Flatten", "conv", "gemm", output=True), "CPU",
     ("f: The output of flatten is a model output, which the CPU receives",)),
    ("reshape-is-model-output", layout("Reshape", "conv"), "CPU",
     ("f: The output of reshape is a model output, which the CPU receives",)),
]


@pytest.mark.parametrize("case, device, reasons", [pytest.param(*c[1:], id=c[0]) for c in LAYOUT])
def test_layout_ops_at_subgraph_boundaries(case, device, reasons):
    expect(run(case, B4096), "f", device, reasons)


def test_layout_demotion_propagates_along_a_chain():
    # conv -> flatten -> reshape -> softmax: the reshape is at the boundary, so the flatten is too
    g = Graph()
    y = g.node("Conv", ["x", g.weight((2, 2, 1, 1))], name="c")
    y = g.node("Flatten", [y], name="f")
    y = g.node("Reshape", [y, g.const(np.array([1, 8], np.int64))], name="r")
    y = g.node("Softmax", [y], name="s", axis=1)
    report = run((g, [y], {"x": [1, 2, 2, 2]}), B4096)
    expect(report, "r", "CPU", ("r: The output of reshape is not used on DPU (by 's')",))
    expect(report, "f", "CPU", ("f: The output of flatten is not used on DPU (by 'r')",))
    expect(report, "c", "DPU")


# -- the summary ------------------------------------------------------------------------------------


def test_summary_counts_and_mac_fraction():
    # c1 (DPU, 3x3, 2 -> 4 on 4x4: 64 outputs x 18 = 1152 MACs) -> relu (fused) -> LRN (CPU)
    # -> c2 (group 2 -> CPU: 64 outputs x 2 = 128 MACs) -> c3 (DPU, 1x1, 4 -> 2: 32 x 4 = 128)
    # -> softmax (CPU)
    g = Graph()
    y = g.node("Conv", ["x", g.weight((4, 2, 3, 3))], name="c1", pads=[1, 1, 1, 1])
    y = g.node("Relu", [y], name="relu")
    y = g.node("LRN", [y], name="lrn", size=3)
    y = g.node("Conv", [y, g.weight((4, 2, 1, 1))], name="c2", group=2)
    y = g.node("Conv", [y, g.weight((2, 4, 1, 1))], name="c3")
    y = g.node("Softmax", [y], name="s", axis=1)
    report = run((g, [y], {"x": [1, 2, 4, 4]}), B4096)
    assert [(n.name, n.device, n.macs) for n in report.nodes] == [
        ("x", "USER", 0), ("c1", "DPU", 1152), ("relu", "DPU", 0), ("lrn", "CPU", 0),
        ("c2", "CPU", 128), ("c3", "DPU", 128), ("s", "CPU", 0)]
    summary = report.summary()
    assert summary.ops == {"DPU": 3, "CPU": 3, "USER": 1}
    assert summary.subgraphs == {"DPU": 2, "CPU": 2}
    assert summary.macs == {"DPU": 1280, "CPU": 128}
    assert summary.dpu_mac_fraction == round(1280 / 1408, 6)
    assert summary.text() == ("Total device subgraph number 5, DPU subgraph number 2, CPU subgraph "
                              "number 2; ops: DPU 3, CPU 3, USER 1; 90.9% of MACs on the DPU")
    assert report.groups() == {"c1": ["c1", "relu"]}
    assert report.node("c3").inputs == ("c2",)
    data = report.to_json()
    assert data["target"] == B4096 and data["summary"]["subgraphs"] == {"DPU": 2, "CPU": 2}
    assert data["nodes"][2] == {"name": "relu", "op": "relu", "device": "DPU", "reasons": [],
                                "fused_into": "c1", "notes": [], "macs": 0, "inputs": ["c1"]}


def test_macs_of_gemm_and_conv_transpose():
    report = run(gemm(16, 4), B4096)
    assert report.node("g").macs == 64
    report = run(conv_transpose((2, 2), (2, 2), ic=3, oc=5), B4096)
    assert report.node("t").macs == 1 * 3 * 1 * 1 * 5 * 2 * 2  # every input pixel, every tap


def test_avg_pool_note_on_the_hardware_factor():
    node = expect(run(pool("AveragePool", (3, 3)), B4096), "p", "DPU")
    assert node.notes == ("p: average over 3 x 3 multiplies by the DPU's factor for 1/9 "
                          "(a fraction m / 2^s), not exactly 1/9",)
    assert expect(run(pool("AveragePool", (2, 2)), B4096), "p", "DPU").notes == ()


def test_bilinear_resize_note():
    node = expect(run(resize(2.0, "linear"), B4096), "n", "DPU")
    assert node.notes == ("n: bilinear resize runs as a transposed depthwise convolution",)
