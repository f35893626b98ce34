"""The inspector on the `light_*` models of the onnx package, against B4096, B512 and DPUCAHX8H.

The expected results are written down here, derived from reference/dpu.md §2 and each model's
structure (worked out in the comments), and the JSON report is checked against its schema. The
models are inspected as the onnx package ships them: their weights are ConstantOfShape nodes,
which import as constants, and inspection reads only shapes (``test_weights_do_not_matter``
shows the seeded random weights of ``light_model`` give the same report).
"""

from __future__ import annotations

import collections
import functools
import json
import os

import onnx
import pytest

from test_onnx_import import _light_path, light_model
from xir.frontends.onnx import import_onnx
from xir.passes.dpu_rules import node_name
from xir.passes.inspect import inspect_module

B4096, B512, ISA2 = "DPUCZDX8G_ISA1_B4096", "DPUCZDX8G_ISA1_B512", "DPUCAHX8H_ISA2"
TARGETS = (B4096, B512, ISA2)
SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                      "inspect.schema.json")


@functools.lru_cache(maxsize=None)
def module(name):
    path = _light_path(name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed")
    return import_onnx(onnx.load(path))


@functools.lru_cache(maxsize=None)
def report(name, target):
    return inspect_module(module(name), target)


def cpu_ops(rep) -> dict:
    return dict(collections.Counter(n.op for n in rep.nodes if n.device == "CPU"))


def on(rep, op, device="CPU"):
    return [n for n in rep.nodes if n.op == op and n.device == device]


# What runs on the CPU (op kind: count) and the (DPU, CPU) subgraph counts, per model and target.
#
# squeezenet: convs, max pools, concats on DPU; Softmax at opset 9 imports as flatten -> softmax ->
#   reshape, all three on CPU (a flatten whose output feeds the CPU softmax is at the subgraph
#   boundary). On ISA2 the 13 x 13 global average pool exceeds the pool engine's 1-8 too.
# resnet50: only the softmax; the 7 x 7 average pool fits the ALU and ISA2's pool engine (1-8).
# bvlc_alexnet: LRN x2 and softmax always; conv2, conv4, conv5 have group 2 (-> CPU, their relu
#   goes with them); fc6 has 9216 input channels > 4096 (B4096, ISA2) and so the reshape before it
#   is at the boundary; on B512 (limit 2048) fc6 and fc7 (4096 -> 4096) fail input and output
#   channels and fc8 (4096 -> 1000) input channels.
# densenet121: on ISA1 the BatchNorms that follow a concat (pre-activation) run as depthwise
#   convolutions on the ALU, so all on DPU; ISA2 has no depthwise engine, so the 62 such BNs
#   (58 dense layers, 3 transitions, the final norm) go to CPU with the Mul/Add per-channel affine
#   folded into them and the relu after them (nothing on DPU to fuse into).
# inception_v1: LRN x2, softmax; pool5 (7 x 7, pads 0,0,1,1, count_include_pad 0) divides by the
#   window without its padding -> CPU, so the reshape after it is at the boundary.
# inception_v2: the 7 padded 3 x 3 average pools of the inception modules (count_include_pad 0)
#   and the softmax.
# shufflenet: 32 1 x 1 group-4 convolutions with their BN (and 16 relus) on CPU, the channel
#   shuffles (reshape, transpose, reshape) x 16, the 3 padded 3 x 3 stride-2 average pools
#   (count_include_pad 0), the 3 relus after their concats (a concat fuses no activation), the
#   softmax; on ISA2 also the 16 depthwise 3 x 3 convolutions with their BN (no depthwise engine).
# vgg19: fc6 has 25088 input channels (> 4096; on B512 also 4096 output channels and 3136 weight
#   rows); on B512 fc7 (4096 -> 4096) and fc8 (4096 input channels) too; the reshape before fc6.
# zfnet512: LRN x2, softmax, fc6 (18432 input channels); on B512 also fc7 (4096 -> 1024).
#
# Subgraphs are the partitioner's regions (passes/regions.py): maximal one-device regions with
# no cycle between them, so a DPU op whose inputs meet again after a detour through the CPU
# starts a new DPU subgraph (connected components of one device would put both ends of the
# detour in one subgraph that waits for itself). Three models have such detours:
# densenet121 on ISA2: in each of the 58 dense layers and 3 transitions the CPU BatchNorm sits
#   between the block's concat (DPU) and the layer's convolutions (DPU), whose output the next
#   concat joins with the previous one: every one of the 62 CPU BatchNorms splits a DPU
#   subgraph, 1 + 62 = 63 DPU subgraphs (not 5).
# inception_v2: each of the 7 inception modules with a padded average pool (CPU) joins that
#   branch (pool -> 1 x 1 conv) with the others in its output concat: 1 + 7 = 8 DPU subgraphs.
# shufflenet: a stride-1 unit adds its input x to the branch gconv (CPU) -> shuffle (CPU) ->
#   dwconv -> gconv (CPU); where x comes from the previous unit's add (DPU), the add cannot join
#   x's subgraph: 10 of the 13 stride-1 units (those after a stride-1 unit: 2 + 6 + 2 in
#   stages 2, 3, 4; the first of each stage reads the CPU relu after a concat) add one DPU
#   subgraph each, 23 -> 33 on ISA1 and 7 -> 17 on ISA2.
EXPECTED = {
    "squeezenet": {
        B4096: ({"flatten": 1, "softmax": 1, "reshape": 1}, (1, 1)),
        B512: ({"flatten": 1, "softmax": 1, "reshape": 1}, (1, 1)),
        ISA2: ({"global_avg_pool": 1, "flatten": 1, "softmax": 1, "reshape": 1}, (1, 1)),
    },
    "resnet50": {t: ({"softmax": 1}, (1, 1)) for t in TARGETS},
    "bvlc_alexnet": {
        B4096: ({"lrn": 2, "conv2d": 3, "relu": 4, "reshape": 1, "gemm": 1, "softmax": 1}, (5, 5)),
        B512: ({"lrn": 2, "conv2d": 3, "relu": 5, "reshape": 1, "gemm": 3, "softmax": 1}, (4, 4)),
        ISA2: ({"lrn": 2, "conv2d": 3, "relu": 4, "reshape": 1, "gemm": 1, "softmax": 1}, (5, 5)),
    },
    "densenet121": {
        B4096: ({}, (1, 0)),
        B512: ({}, (1, 0)),
        ISA2: ({"batch_norm": 62, "mul": 62, "add": 62, "relu": 62}, (63, 62)),
    },
    "inception_v1": {t: ({"lrn": 2, "avg_pool2d": 1, "reshape": 1, "softmax": 1}, (4, 4))
                     for t in TARGETS},
    "inception_v2": {t: ({"avg_pool2d": 7, "softmax": 1}, (8, 8)) for t in TARGETS},
    "shufflenet": {
        B4096: ({"conv2d": 32, "batch_norm": 32, "relu": 19, "reshape": 32, "transpose": 16,
                 "avg_pool2d": 3, "softmax": 1}, (33, 36)),
        B512: ({"conv2d": 32, "batch_norm": 32, "relu": 19, "reshape": 32, "transpose": 16,
                "avg_pool2d": 3, "softmax": 1}, (33, 36)),
        ISA2: ({"conv2d": 48, "batch_norm": 48, "relu": 19, "reshape": 32, "transpose": 16,
                "avg_pool2d": 3, "softmax": 1}, (17, 20)),
    },
    "vgg19": {
        B4096: ({"reshape": 1, "gemm": 1, "relu": 1, "softmax": 1}, (2, 2)),
        B512: ({"reshape": 1, "gemm": 3, "relu": 2, "softmax": 1}, (1, 1)),
        ISA2: ({"reshape": 1, "gemm": 1, "relu": 1, "softmax": 1}, (2, 2)),
    },
    "zfnet512": {
        B4096: ({"lrn": 2, "reshape": 1, "gemm": 1, "relu": 1, "softmax": 1}, (4, 4)),
        B512: ({"lrn": 2, "reshape": 1, "gemm": 2, "relu": 2, "softmax": 1}, (4, 4)),
        ISA2: ({"lrn": 2, "reshape": 1, "gemm": 1, "relu": 1, "softmax": 1}, (4, 4)),
    },
}
CASES = [(m, t) for m in EXPECTED for t in TARGETS]


@pytest.mark.parametrize("name, target", CASES)
def test_cpu_ops_and_subgraphs(name, target):
    rep = report(name, target)
    ops, (dpu, cpu) = EXPECTED[name][target]
    assert cpu_ops(rep) == ops
    assert rep.summary().subgraphs == {"DPU": dpu, "CPU": cpu}


@pytest.mark.parametrize("name, target", CASES)
def test_common_facts(name, target):
    rep = report(name, target)
    nodes = [n for n in rep.nodes if n.device != "USER"]
    # LRN and softmax never run on the DPU, and say why
    for n in nodes:
        if n.op in ("lrn", "softmax"):
            what = "LRN" if n.op == "lrn" else "softmax"
            assert n.device == "CPU"
            assert n.reasons == (f"{n.name}: {what} runs on the CPU on {target} "
                                 "(no DPU engine computes it)",)
    # every group-1 convolution fits all three targets: kernels <= 11, strides <= 4, at most
    # 2048 channels (ResNet-50's 2048 -> 512 1 x 1 convs are exactly at B512's limit), at most
    # 576 weight rows (VGG's 3 x 3 x 512 on B512); grouped ones are the only convs on CPU
    for op in module(name).walk():
        if op.name == "graph.conv2d" and op.param["group"] == 1:
            assert rep.node(node_name(op)).device == "DPU"
    for n in on(rep, "conv2d"):
        assert "'group'" in n.reasons[0] or "depthwise engine" in n.reasons[0], n.reasons
    # a fused node is on its anchor's device; every CPU node has a reason naming it
    device = {n.name: n.device for n in rep.nodes}
    for n in nodes:
        if n.fused_into:
            assert n.device == device[n.fused_into]
        if n.device == "CPU":
            assert n.reasons and all(r.startswith(f"{n.name}: ") for r in n.reasons), n
        else:
            assert n.reasons == ()
    summary = rep.summary()
    assert summary.ops["USER"] == 1 and summary.ops["DPU"] + summary.ops["CPU"] == len(nodes)


def test_alexnet():
    for target in TARGETS:
        rep = report("bvlc_alexnet", target)
        for name, ic, oc in (("n4", 96, 256), ("n10", 384, 384), ("n12", 384, 256)):
            assert rep.node(name).reasons == (  # conv2, conv4, conv5
                f"{name}: 'group'(2) is not supported: a DPU convolution has group 1 or is "
                f"depthwise (group = input channels = output channels; here {ic} in, {oc} out)",)
            relu = next(n for n in rep.nodes if n.fused_into == name)
            assert relu.reasons == (f"{relu.name}: fused into '{name}', which runs on the CPU",)
        for name in ("n0", "n8"):  # conv1 (11 x 11, stride 4: ISA2's stride limit), conv3
            assert rep.node(name).device == "DPU"
        assert [n.name for n in on(rep, "lrn")] == ["n2", "n6"]
        assert rep.node("n15").reasons == ("n15: The output of reshape is not used on DPU "
                                           "(by 'n16')",)
    limit = {B4096: 4096, ISA2: 4096, B512: 2048}
    for target in TARGETS:
        assert report("bvlc_alexnet", target).node("n16").reasons[0] == (
            f"n16: 'input_channel'(9216) is not in DPU supported range([1, {limit[target]}])")
    rep = report("bvlc_alexnet", B512)
    assert rep.node("n19").reasons == (
        "n19: 'input_channel'(4096) is not in DPU supported range([1, 2048])",
        "n19: 'output_channel'(4096) is not in DPU supported range([1, 2048])")
    assert rep.node("n22").reasons == (
        "n22: 'input_channel'(4096) is not in DPU supported range([1, 2048])",)
    assert report("bvlc_alexnet", B4096).node("n19").device == "DPU"


def test_vgg19_fully_connected_layers():
    rep = report("vgg19", B512)
    assert rep.node("n38").reasons == (  # fc6: 25088 -> 4096
        "n38: 'input_channel'(25088) is not in DPU supported range([1, 2048])",
        "n38: 'output_channel'(4096) is not in DPU supported range([1, 2048])",
        "n38: 'weights'(3136 rows: kernel 1 x ceil(25088 / 8)) do not fit weight bank CONVW "
        "(2048 rows)")
    assert len(on(rep, "conv2d", "DPU")) == 16 and not on(rep, "conv2d")
    rep = report("vgg19", B4096)  # ceil(25088 / 16) = 1568 rows fit; the channels do not
    assert rep.node("n38").reasons == (
        "n38: 'input_channel'(25088) is not in DPU supported range([1, 4096])",)
    assert (rep.node("n41").device, rep.node("n44").device) == ("DPU", "DPU")  # fc7, fc8


def test_squeezenet_global_pool():
    rep = report("squeezenet", ISA2)
    assert rep.node("n64").reasons == ("n64: 'kernel'(13 x 13) is not in DPU supported "
                                       "range([1, 8])",)
    assert rep.node("n65").reasons == ("n65: The input of flatten is not on DPU (it comes from "
                                       "'n64')",)
    for target in (B4096, B512):  # the ALU pools up to 256 x 256
        rep = report("squeezenet", target)
        assert rep.node("n64").device == "DPU"
        assert rep.node("n65#2").reasons == (f"n65#2: softmax runs on the CPU on {target} (no "
                                             "DPU engine computes it)",)
        assert rep.node("n65").reasons == ("n65: The output of flatten is not used on DPU (by "
                                           "'n65#2')",)


def test_densenet_batch_norms():
    rep = report("densenet121", B4096)
    standalone = [n for n in rep.nodes if n.op == "batch_norm" and n.fused_into is None]
    assert len(standalone) == 62
    assert all(n.device == "DPU" and n.notes[0] == f"{n.name}: runs as a depthwise convolution"
               for n in standalone)
    rep = report("densenet121", ISA2)
    for n in on(rep, "batch_norm"):
        assert n.reasons == (f"{n.name}: a BatchNorm that does not follow a convolution would "
                             "run as a depthwise convolution, and DPUCAHX8H_ISA2 has no "
                             "depthwise engine",)
    assert len(on(rep, "batch_norm", "DPU")) == 121 - 62  # the ones after a conv fold into it


def test_inception_average_pools():
    rep = report("inception_v1", B4096)
    assert rep.node("n138").reasons == (
        "n138: DPU average pooling divides by the whole window, padding included; set "
        "count_include_pad = 1",)
    rep = report("inception_v2", ISA2)
    assert all(n.reasons[0].endswith("set count_include_pad = 1") for n in on(rep, "avg_pool2d"))
    assert rep.node("n505").device == "DPU"  # the unpadded 7 x 7 pool5


def test_shufflenet():
    rep = report("shufflenet", B4096)
    dw = [n for n in rep.nodes if n.op == "conv2d" and n.device == "DPU"]
    assert len(dw) == 16 + 1  # the depthwise 3 x 3 convs on the ALU, and conv1
    assert all(n.reasons[0].startswith(f"{n.name}: 'group'(4) is not supported")
               for n in on(rep, "conv2d"))
    rep = report("shufflenet", ISA2)
    assert rep.node("n10").reasons == ("n10: DPUCAHX8H_ISA2 has no depthwise engine (no ALU or "
                                       "dwconv engine)",)


def test_mac_fractions():
    # all MACs on the DPU where only softmax, LRN, pools and layout ops fall back
    for name in ("squeezenet", "resnet50", "densenet121", "inception_v1", "inception_v2"):
        for target in TARGETS:
            assert report(name, target).summary().dpu_mac_fraction == 1.0
    # alexnet: conv2, conv4, conv5 and fc6 on CPU
    rep = report("bvlc_alexnet", B4096)
    macs = {n.name: n.macs for n in rep.nodes}
    assert macs["n4"] == 256 * 26 * 26 * 48 * 25 and macs["n16"] == 9216 * 4096
    cpu = macs["n4"] + macs["n10"] + macs["n12"] + macs["n16"]
    assert rep.summary().macs["CPU"] == cpu
    assert rep.summary().dpu_mac_fraction == round(1 - cpu / sum(macs.values()), 6)


def test_weights_do_not_matter():
    loaded = light_model("squeezenet")
    if loaded is None:
        pytest.skip("light_squeezenet is not installed")
    for target in TARGETS:
        ours = inspect_module(import_onnx(loaded[0]), target).to_json()
        assert ours == report("squeezenet", target).to_json()


@pytest.mark.parametrize("name, target", CASES)
def test_json_matches_its_schema(name, target):
    jsonschema = pytest.importorskip("jsonschema")
    if not os.path.exists(SCHEMA):
        pytest.skip(f"{SCHEMA} is not written yet")
    with open(SCHEMA) as f:
        schema = json.load(f)
    data = json.loads(json.dumps(report(name, target).to_json()))
    jsonschema.validate(data, schema)
    assert data["target"] == target
    assert len(data["nodes"]) == len(report(name, target).nodes)
