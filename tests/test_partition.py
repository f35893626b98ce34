"""The partition pass (passes/partition.py) and the regions under it (passes/regions.py).

The central property: partitioning changes where ops run, never what they compute. On many
seeded random DAGs of graph-dialect ops marked DPU or CPU (diamonds, residual adds, several
outputs, values read by several regions, shared constants, quantize/dequantize glue, the
DPU -> CPU -> DPU detour that forces a split), ``run_module(partition(m))`` equals
``run_module(m)`` bit for bit; the result verifies, prints and parses back to the same text, and
partitioning the same text twice gives the same text. The light_* models, marked by the inspect
pass, partition into the subgraph counts the inspector reports (tests/test_inspect_models.py
explains them); ResNet-50 is one DPU subgraph and the softmax on the CPU.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from xir import attributes as A
from xir import types as T
from xir.builtin import ModuleOp
from xir.diagnostics import XirError
from xir.dialects.func import FuncOp
from xir.interpreter import run_module
from xir.ir import Block, Operation, OpResult, Region
from xir.parser import parse
from xir.pass_manager import PassManager
from xir.passes.partition import (GLUE_OPS, PartitionSummary, is_constant, op_device,
                                  partition_module, partition_summary, summary_line)
from xir.passes.regions import CPU, DPU, GLUE, Node, grow_regions
from xir.printer import print_ir
from xir.symbols import SymbolTable
from xir.verifier import verify

SHAPE = (2, 3)
F32 = T.TensorType(SHAPE, T.f32)
I8 = T.TensorType(SHAPE, T.i8)
UNARY = ("graph.relu", "graph.tanh", "graph.sigmoid", "graph.identity")
BINARY = ("graph.add", "graph.sub", "graph.mul")


# -- regions ------------------------------------------------------------------------------------


def regions_of(spec: str):
    """Regions of nodes written ``name:DEVICE<-input,input name:DEVICE ...`` (D, C, G)."""
    full = {"D": DPU, "C": CPU, "G": GLUE}
    nodes = []
    for item in spec.split():
        head, _, inputs = item.partition("<-")
        name, device = head.split(":")
        nodes.append(Node(name, full[device], inputs.split(",") if inputs else ()))
    return grow_regions(nodes)


def shape_of(regions) -> list[str]:
    return [f"{r.device}:{','.join(r.members)}" for r in regions.regions]


def test_a_chain_and_a_diamond_of_one_device_are_one_region():
    assert shape_of(regions_of("a:D<-x b:D<-a c:D<-a d:D<-b,c")) == ["DPU:a,b,c,d"]


def test_a_detour_through_the_cpu_splits_the_dpu_region():
    # a -> b (CPU) -> c reads a and b: c joining a's region would make a cycle a -> b -> a
    r = regions_of("a:D<-x b:C<-a c:D<-a,b")
    assert shape_of(r) == ["DPU:a", "CPU:b", "DPU:c"]
    assert r.edges() == [(0, 1), (0, 2), (1, 2)]


def test_two_producer_regions_merge_through_a_node_unless_a_third_lies_between():
    assert shape_of(regions_of("a:D<-x b:D<-y c:D<-a,b")) == ["DPU:a,b,c"]
    # a -> p (CPU) -> b: a and b cannot merge through c, and c cannot join a (it reaches a's
    # region through p and b), whatever the operand order: c joins b
    for inputs in ("a,b", "b,a"):
        assert shape_of(regions_of(f"a:D<-x p:C<-a b:D<-p c:D<-{inputs}")) == [
            "DPU:a", "CPU:p", "DPU:b,c"]
    # three producer regions, a before b through p: c takes d and b (operand order), not a
    assert shape_of(regions_of("a:D<-x d:D<-y p:C<-a b:D<-p c:D<-d,b,a")) == [
        "DPU:a", "DPU:d,b,c", "CPU:p"]


def test_glue_goes_with_the_cpu_and_alone_is_its_own_region():
    r = regions_of("q:G<-x n:G<-q conv:D<-n c:G<-conv dq:G<-c soft:C<-dq")
    assert shape_of(r) == ["GLUE:q,n", "DPU:conv", "CPU:c,dq,soft"]
    assert (r.count(DPU), r.count(CPU), r.count(GLUE)) == (1, 1, 1)
    # the schedule lists a glue-only region's nodes one by one, the others whole
    order = r.schedule()
    assert order[:2] == ["q", "n"] and [x.device for x in order[2:]] == [DPU, CPU]


def test_residual_blocks_split_where_a_cpu_op_sits_on_the_branch():
    # x -> conv -> relu(CPU) -> conv -> add(x, .): shufflenet's unit with a CPU op in the branch
    r = regions_of("x0:D<-in b1:D<-x0 r:C<-b1 b2:D<-r add:D<-x0,b2 out:D<-add")
    assert shape_of(r) == ["DPU:x0,b1", "CPU:r", "DPU:b2,add,out"]


def test_bad_nodes_are_value_errors():
    with pytest.raises(ValueError, match="has device 'USER'"):
        grow_regions([Node("x", "USER")])
    with pytest.raises(ValueError, match="reads 'b', which does not come before it"):
        grow_regions([Node("a", DPU, ["b"]), Node("b", DPU)])


def random_nodes(seed: int) -> list[Node]:
    rng = np.random.default_rng(seed)
    nodes = []
    for i in range(int(rng.integers(1, 60))):
        k = int(rng.integers(0, 4))
        inputs = [f"n{j}" for j in sorted(rng.choice(i, size=min(k, i), replace=False))] if i \
            else ["arg"]
        device = rng.choice([DPU, CPU, GLUE], p=[0.45, 0.4, 0.15])
        nodes.append(Node(f"n{i}", str(device), inputs))
    return nodes


def _reaches(edges, n):
    after = {i: set() for i in range(n)}
    for a, b in edges:
        after[a].add(b)
    return after


@pytest.mark.parametrize("seed", range(300))
def test_random_regions_are_acyclic_one_device_and_deterministic(seed):
    nodes = random_nodes(seed)
    r = grow_regions(nodes)
    assert r == grow_regions(nodes)
    device = {n.key: n.device for n in nodes}
    for region in r.regions:
        kinds = {device[k] for k in region.members}
        assert kinds == {DPU} if region.device == DPU else kinds <= {CPU, GLUE}
        assert region.device != GLUE or kinds == {GLUE}
    # no cycle between regions: a depth-first search finds no back edge
    after, state = _reaches(r.edges(), len(r.regions)), {}

    def visit(i):
        state[i] = "open"
        for j in after[i]:
            assert state.get(j) != "open", "cycle between regions"
            if j not in state:
                visit(j)
        state[i] = "done"

    for i in range(len(r.regions)):
        if i not in state:
            visit(i)
    # maximal along edges: two regions of one device that an edge joins cannot be merged,
    # because a third region lies on a path between them
    for a, b in r.edges():
        if (r.regions[a].device == DPU) == (r.regions[b].device == DPU):
            assert _through_a_third(after, a, b), (a, b)
    assert len(r.schedule()) == sum(len(x.members) if x.device == GLUE else 1 for x in r.regions)


def _through_a_third(after, a, b) -> bool:
    """Whether a path a -> x -> ... -> b passes through a region x other than a and b."""
    stack = [x for x in after[a] if x != b]
    seen = set(stack)
    while stack:
        x = stack.pop()
        if x == b:
            return True
        for y in after[x] - seen:
            seen.add(y)
            stack.append(y)
    return False


# -- random graph-dialect modules ---------------------------------------------------------------


def _const(rng, type_=F32) -> Operation:
    value = rng.standard_normal(SHAPE).astype(np.float32)
    return Operation.create("graph.constant", [], [type_], {"value": A.DenseElementsAttr(type_,
                                                                                          value)})


def random_module(seed: int) -> tuple[ModuleOp, dict]:
    """A random DAG of f32 graph ops on 2 x 3 tensors, each marked DPU or CPU, with shared
    constants, quantize -> dequantize glue and several outputs; with its seeded inputs."""
    rng = np.random.default_rng(seed)
    n_inputs = int(rng.integers(1, 4))
    entry = Block([F32] * n_inputs)
    for i, arg in enumerate(entry.args):
        arg.name_hint = f"x{i}"
    values = list(entry.args)
    for _ in range(int(rng.integers(0, 3))):
        values.append(entry.append(_const(rng)).result)

    def pick():
        back = min(int(rng.geometric(0.35)) - 1, len(values) - 1)
        return values[len(values) - 1 - back]

    for k in range(int(rng.integers(2, 30))):
        device = {"xir.device": A.StringAttr(str(rng.choice([DPU, CPU])))}
        kind = rng.random()
        if kind < 0.15:
            fix = {"fix_point": A.IntegerAttr(int(rng.integers(2, 6)))}
            q = Operation.create("quant.quantize", [pick()], [I8], dict(fix),
                                 location=A.NameLoc(f"q{k}"))
            dq = Operation.create("quant.dequantize", [entry.append(q).result], [F32], dict(fix),
                                  location=A.NameLoc(f"dq{k}"))
            op = dq
        elif kind < 0.5:
            op = Operation.create(str(rng.choice(UNARY)), [pick()], [F32], device,
                                  location=A.NameLoc(f"n{k}"))
        else:
            op = Operation.create(str(rng.choice(BINARY)), [pick(), pick()], [F32], device,
                                  location=A.NameLoc(f"n{k}"))
        op.result.name_hint = f"v{k}"
        values.append(entry.append(op).result)
    unused = [v for v in values if isinstance(v, OpResult) and not v.uses
              and not is_constant(v.owner)]
    extra = [values[int(i)] for i in rng.integers(0, len(values), size=int(rng.integers(0, 3)))]
    outputs = list(dict.fromkeys(unused + extra)) or [values[-1]]
    entry.append(Operation.create("func.return", outputs))
    func = FuncOp.from_signature("main", [F32] * n_inputs, [v.type for v in outputs],
                                 body=Region([entry]))
    module = ModuleOp.build()
    module.body.append(func)
    inputs = {f"x{i}": rng.standard_normal(SHAPE).astype(np.float32) for i in range(n_inputs)}
    return module, inputs


def detour_module() -> tuple[ModuleOp, dict]:
    """DPU -> CPU -> DPU with a skip, a constant shared by both DPU ops, two outputs."""
    text = """
    builtin.module {
      func.func @main(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
        %c = "graph.constant"() {value = dense<0.5> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
        %a = "graph.add"(%x, %c) {xir.device = "DPU"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
        %b = "graph.tanh"(%a) {xir.device = "CPU"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
        %d = "graph.mul"(%a, %b) {xir.device = "DPU"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
        %e = "graph.add"(%d, %c) {xir.device = "DPU"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
        "func.return"(%e, %a) : (tensor<2x3xf32>, tensor<2x3xf32>) -> ()
      }
    }"""
    return parse(text), {"x": np.linspace(-1, 1, 6, dtype=np.float32).reshape(SHAPE)}


def bits(arrays) -> list:
    return [(a.dtype, a.shape, a.tobytes()) for a in map(np.asarray, arrays)]


def check_structure(module: ModuleOp, summary: PartitionSummary) -> None:
    """@main runs glue, constants and calls only; each subgraph one device; every subgraph is
    called once, in the summary's order."""
    table = SymbolTable(module)
    main = table.lookup("main").regions[0].blocks[0]
    calls = [op for op in main.ops if op.name == "func.call"]
    assert [c.get_attr("callee").root for c in calls] == summary.names()
    for op in main.ops:
        assert op.name in ("func.call", "func.return") or is_constant(op) or \
            op_device(op) == GLUE, op.name
    for s in summary.subgraphs:
        func = table.lookup(s.name)
        assert func.get_attr("sym_visibility").value == "private"
        assert func.attributes["xir.device"] == A.StringAttr(s.device)
        body = [op for op in func.regions[0].blocks[0].ops if op.name != "func.return"]
        devices = {op_device(op) for op in body if not is_constant(op)}
        assert devices == {DPU} if s.device == DPU else devices <= {CPU, GLUE} and CPU in devices
        assert s.ops == sum(1 for op in body if not is_constant(op))
    assert len(table.symbols) == 1 + len(summary.subgraphs)


def partitioned(module):
    summary = partition_module(module)
    verify(module)
    check_structure(module, summary)
    return summary


@pytest.mark.parametrize("seed", range(200))
def test_random_modules_compute_the_same_bits_after_partition(seed):
    module, inputs = random_module(seed)
    verify(module)
    text, expected = print_ir(module), run_module(module, inputs)
    summary = partitioned(module)
    assert bits(run_module(module, inputs)) == bits(expected)
    out = print_ir(module)
    assert print_ir(parse(out)) == out  # round trip
    again = parse(text)
    assert partition_module(again) == summary and print_ir(again) == out  # deterministic
    assert partition_module(again) == summary and print_ir(again) == out  # idempotent
    assert summary.user == 1 and summary.total == 1 + summary.count(DPU) + summary.count(CPU)


def test_the_detour_module():
    module, inputs = detour_module()
    expected = run_module(module, inputs)
    summary = partitioned(module)
    assert bits(run_module(module, inputs)) == bits(expected)
    assert summary.names() == ["subgraph_0_dpu", "subgraph_1_cpu", "subgraph_2_dpu"]
    assert [s.ops for s in summary.subgraphs] == [1, 1, 2]
    assert summary.line() == ("Total device subgraph number 4, DPU subgraph number 2, "
                              "CPU subgraph number 1")
    assert summary_line(module) == summary.line()
    text = print_ir(module)
    # the shared constant is copied into both DPU subgraphs and leaves @main
    assert text.count('"graph.constant"') == 2
    assert '%e, %a = "func.call"' not in text
    assert '%a = "func.call"(%x) <{callee = @subgraph_0_dpu}>' in text
    assert '%e = "func.call"(%a, %b) <{callee = @subgraph_2_dpu}>' in text


def test_glue_stays_in_main_or_joins_the_cpu():
    module = parse("""
    builtin.module {
      func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
        %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<2x3xf32>) -> tensor<2x3xi8>
        %dq = "quant.dequantize"(%q) {fix_point = 4} : (tensor<2x3xi8>) -> tensor<2x3xf32>
        %a = "graph.relu"(%dq) {xir.device = "DPU"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
        %q2 = "quant.quantize"(%a) {fix_point = 4} : (tensor<2x3xf32>) -> tensor<2x3xi8>
        %dq2 = "quant.dequantize"(%q2) {fix_point = 4} : (tensor<2x3xi8>) -> tensor<2x3xf32>
        %s = "graph.softmax"(%dq2) {axis = 1} : (tensor<2x3xf32>) -> tensor<2x3xf32>
        "func.return"(%s) : (tensor<2x3xf32>) -> ()
      }
    }""")
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(SHAPE)
    expected = run_module(module, {"x": x})
    summary = partitioned(module)
    assert bits(run_module(module, {"x": x})) == bits(expected)
    assert (summary.count(DPU), summary.count(CPU), summary.host_ops) == (1, 1, 2)
    cpu = SymbolTable(module).lookup("subgraph_1_cpu").regions[0].blocks[0]
    assert [op.name for op in cpu.ops] == ["quant.quantize", "quant.dequantize", "graph.softmax",
                                           "func.return"]


def test_device_of_ops():
    def op(name, operands=(), device=None):
        attrs = {"xir.device": A.StringAttr(device)} if device else None
        return Operation(name, operands, [F32], attrs)

    assert [op_device(op(n)) for n in sorted(GLUE_OPS)] == [GLUE] * 4
    assert op_device(op("dpu.conv2d_fix")) == DPU and op_device(op("graph.relu")) == CPU
    assert op_device(op("dpu.to_nchw", device="CPU")) == CPU
    assert op_device(op("graph.softmax", device="DPU")) == DPU
    with pytest.raises(XirError, match='has xir.device = "USER"'):
        op_device(op("graph.relu", device="USER"))
    assert is_constant(op("quant.constant")) and is_constant(op("dpu.constant"))
    assert not is_constant(op("graph.constant", [op("graph.relu").result]))


def test_a_function_without_inputs_has_no_user_subgraph_and_a_missing_main_is_an_error():
    module = parse("""
    builtin.module {
      func.func @main() -> tensor<2x3xf32> {
        %c = "graph.constant"() {value = dense<0.5> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
        %r = "graph.relu"(%c) {xir.device = "DPU"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
        "func.return"(%r) : (tensor<2x3xf32>) -> ()
      }
    }""")
    assert partitioned(module).line() == ("Total device subgraph number 1, DPU subgraph number "
                                          "1, CPU subgraph number 0")
    with pytest.raises(XirError, match="cannot partition: module has no function @main"):
        partition_module(parse("builtin.module {\n}"))


def test_the_pass_prints_the_summary_line(capsys):
    module, _ = detour_module()
    PassManager("partition").run(module)
    assert capsys.readouterr().err == ("Total device subgraph number 4, DPU subgraph number 2, "
                                       "CPU subgraph number 1\n")
    assert partition_summary(module).count(DPU) == 2


# -- func.call runs its callee --------------------------------------------------------------------


def test_call_runs_the_callee_found_in_the_nearest_symbol_table():
    module = parse("""
    builtin.module {
      func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
        %y = "func.call"(%x) <{callee = @double}> : (tensor<2xf32>) -> tensor<2xf32>
        "func.return"(%y) : (tensor<2xf32>) -> ()
      }
      func.func private @double(%a: tensor<2xf32>) -> tensor<2xf32> {
        %b = "graph.add"(%a, %a) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
        "func.return"(%b) : (tensor<2xf32>) -> ()
      }
    }""")
    (y,) = run_module(module, {"x": np.array([1.5, -2], np.float32)})
    assert y.tolist() == [3.0, -4.0]
    missing = parse("""
    builtin.module {
      func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
        %y = "func.call"(%x) <{callee = @nope}> : (tensor<2xf32>) -> tensor<2xf32>
        "func.return"(%y) : (tensor<2xf32>) -> ()
      }
      func.func private @decl(tensor<2xf32>) -> tensor<2xf32>
    }""")
    with pytest.raises(XirError, match="calls @nope, which is not defined"):
        run_module(missing, {"x": np.zeros(2, np.float32)})
    call = next(op for op in missing.walk() if op.name == "func.call")
    call.properties["callee"] = A.SymbolRefAttr("decl")
    with pytest.raises(XirError, match="calls @decl, which is not a function with a body"):
        run_module(missing, {"x": np.zeros(2, np.float32)})


# -- the light_* models, marked by the inspector ---------------------------------------------------


def _light_path(name):
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        f"light_{name}.onnx")


@functools.lru_cache(maxsize=None)
def _onnx_model(name):
    import onnx

    path = _light_path(name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed")
    return onnx.load(path)


MODELS = ("squeezenet", "resnet50", "bvlc_alexnet", "densenet121", "inception_v1",
          "inception_v2", "shufflenet", "vgg19", "zfnet512")


@pytest.mark.parametrize("name", MODELS)
def test_light_models_partition_into_the_inspectors_subgraphs(name):
    from xir.passes.inspect import inspect_module

    target = "DPUCZDX8G_ISA1_B4096"
    from xir.frontends.onnx import import_onnx

    module = import_onnx(_onnx_model(name))  # (its text would be 1 GB for vgg19: not parsed)
    expected = inspect_module(module, target).summary()
    PassManager(f"inspect{{target={target}}}").run(module)
    summary = partition_module(module)
    assert {d: summary.count(d) for d in (DPU, CPU)} == expected.subgraphs
    assert expected.text().startswith(summary.line() + "; ")
    if name == "resnet50":
        assert summary.names() == ["subgraph_0_dpu", "subgraph_1_cpu"]
        cpu = SymbolTable(module).lookup("subgraph_1_cpu").regions[0].blocks[0]
        assert [op.name for op in cpu.ops] == ["graph.softmax", "func.return"]


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet"])
def test_light_models_with_weights_compute_the_same_bits_after_partition(name):
    from test_onnx_import import light_model
    from xir.frontends.onnx import import_onnx

    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"light_{name} is not installed")
    module = import_onnx(loaded[0])
    expected = run_module(module, loaded[1])
    PassManager("inspect").run(module)
    summary = partitioned(module)
    assert bits(run_module(module, loaded[1])) == bits(expected)
    assert summary.count(DPU) == {"squeezenet": 1, "shufflenet": 33}[name]


@pytest.mark.parametrize("name, counts", [("squeezenet", (1, 1)), ("resnet50", (1, 1))])
def test_inspected_quantized_fused_models_partition_as_inspected(name, counts):
    """The compile flow: inspect (devices), quantize (the quant ops keep xir.device), fuse (dpu
    ops in NHWC and their layout glue), partition. ResNet-50 is one DPU subgraph, and the CPU
    subgraph is its softmax with the dequantize before it; each DPU subgraph reads and writes
    int8 only. One calibration sample keeps the test fast (quantize warns; ignored)."""
    import warnings

    from test_onnx_import import light_model
    from xir.frontends.onnx import import_onnx
    from xir.passes.quantize import quantize_module

    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"light_{name} is not installed")
    module = import_onnx(loaded[0])
    PassManager("inspect").run(module)
    (key, x), = loaded[1].items()
    calib = {key: np.random.default_rng(2).random((1, *x.shape[1:]), dtype=np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized, _ = quantize_module(module, calib, cle=False, bias_correction=False)
    PassManager("fuse").run(quantized)
    expected = run_module(quantized, loaded[1])
    summary = partitioned(quantized)
    assert bits(run_module(quantized, loaded[1])) == bits(expected)
    assert (summary.count(DPU), summary.count(CPU)) == counts
    table = SymbolTable(quantized)
    for s in summary.subgraphs:
        if s.device == DPU:
            assert {t.element_type for t in (*table.lookup(s.name).signature.inputs,
                                             *table.lookup(s.name).signature.results)} == {T.i8}
    if name == "resnet50":
        body = table.lookup("subgraph_1_cpu").regions[0].blocks[0]
        assert [op.name for op in body.ops] == ["quant.dequantize", "graph.softmax",
                                                "func.return"]


@pytest.mark.parametrize("lit", ["partition.mlir", "dpu.mlir"])
def test_the_lit_inputs_compute_the_same_bits_after_partition(lit):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lit", "partition", lit)
    with open(path) as f:
        module = parse(f.read())
    func = SymbolTable(module).lookup("main")
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(a.type.shape).astype(np.float32)
              for a in func.regions[0].blocks[0].args]
    expected = run_module(module, inputs)
    partitioned(module)
    assert bits(run_module(module, inputs)) == bits(expected)
