"""The runner (backend/runner.py) and ``xir run model.xmodel``: a quantized model cut by hand into
a DPU and a CPU subgraph runs bit for bit as the quant dialect's integer executor runs the
uncut module, with onnxruntime and with numpy on the CPU; the boundary dump holds the values
at the cuts; a CPU subgraph onnxruntime cannot run falls back to numpy with one warning; bad
inputs and options are one error line."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from xir import attributes as A
from xir.attributes import location_name
from xir.backend import runner as R
from xir.backend.xmodel import read_xmodel, write_xmodel
from xir.diagnostics import XirError
from xir.dialects.func import FuncOp
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.ir import Block, Operation, Region
from xir.parser import parse
from xir.passes.quantize import quantize_module
from xir.printer import print_ir
from xir.symbols import entry_function
from xir.tools.run_model import main as run_main
from xir.verifier import verify

SPLIT = [("subgraph_dpu_0", "DPU", {"conv", "pool"}), ("subgraph_cpu_1", "CPU", {"flatten", "fc"})]
INPUTS = [np.random.default_rng(100 + i).standard_normal((1, 1, 8, 8)).astype(np.float32) * 2
          for i in range(6)]


# -- the model and its cutting -------------------------------------------------------------------


def float_model(softmax: bool = False):
    """input 1x1x8x8 -> Conv 8x3x3 -> Relu -> MaxPool 2x2 -> Flatten -> Gemm 10 (-> Softmax),
    seeded He-scaled weights (the Gemm's, 1280 bytes as int8, go to the .xmodel's weights
    section)."""
    rng = np.random.default_rng(0)

    def weight(name, shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if scale is None else scale
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [weight("conv_w", (8, 1, 3, 3)), weight("conv_b", (8,), 0.1),
             weight("fc_w", (10, 128)), weight("fc_b", (10,), 0.1)]
    last = "scores" if softmax else "logits"
    nodes = [helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], name="conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], name="softmax", axis=1))
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def quantized(softmax: bool = False):
    calibration = np.random.default_rng(1).standard_normal((128, 1, 8, 8)).astype(np.float32)
    module, _ = quantize_module(import_onnx(float_model(softmax)), {"input": calibration * 2})
    return module


def _named(op, names) -> bool:
    """Whether ``op``'s location or first result is named in ``names``."""
    hint = op.results[0].name_hint if op.results else None
    return location_name(op.location) in names or hint in names


def partition(module, groups):
    """A copy of ``module`` with the ops of ``@main`` named (by location or result name)
    in each group ``(name, device, names)`` outlined into ``func.func private @name`` with
    ``xir.device = device``, called from ``@main``. Each group must be contiguous in ``@main``."""
    module = module.clone()
    main = entry_function(module)
    block = main.regions[0].blocks[0]
    for name, device, names in groups:
        ops = [op for op in block.ops if _named(op, names)]
        inside, defined = set(ops), {r for op in ops for r in op.results}
        inputs = []
        for op in ops:
            inputs += [v for v in op.operands if v not in defined and v not in inputs]
        outputs = [r for op in ops for r in op.results if any(u not in inside for u in r.users)]
        arg_types, result_types = [v.type for v in inputs], [v.type for v in outputs]
        func = FuncOp.from_signature(name, arg_types, result_types, visibility="private",
                                     attributes={"xir.device": A.StringAttr(device)},
                                     body=Region([Block(arg_types)]))
        body = func.regions[0].blocks[0]
        value_map = dict(zip(inputs, body.args))
        for value, arg in zip(inputs, body.args):
            arg.name_hint = value.name_hint
        for op in ops:
            body.append(op.clone(value_map))
        body.append(Operation.create("func.return", [value_map[v] for v in outputs]))
        call = Operation.create("func.call", inputs, result_types,
                                properties={"callee": A.SymbolRefAttr(name)})
        block.insert_after(call, ops[-1])
        for old, new in zip(outputs, call.results):
            new.name_hint = old.name_hint
            old.replace_all_uses_with(new)
        for op in reversed(ops):
            op.erase()
        module.body.append(func)
    verify(module)
    reparsed = parse(print_ir(module))  # the cut module prints and parses back
    verify(reparsed)
    return reparsed


def insert_fix4(module, after: str):
    """A copy of ``module`` with a 4-bit ``quant.fix`` (loc "fix4") on the float value named
    ``after`` in ``@main``: an op that the QDQ exporter refuses."""
    module = module.clone()
    block = entry_function(module).regions[0].blocks[0]
    producer = next(op for op in block.ops if op.results and op.results[0].name_hint == after)
    value = producer.results[0]
    fix = Operation.create("quant.fix", [value], [value.type],
                           attributes={"fix_point": A.IntegerAttr(3), "bit_width": A.IntegerAttr(4)},
                           location=A.NameLoc("fix4"))
    fix.results[0].name_hint = "fix4"
    block.insert_after(fix, producer)
    value.replace_uses_if(fix.results[0], lambda user, index: user is not fix)
    verify(module)
    return module


@pytest.fixture(scope="module")
def quant_module():
    return quantized()


@pytest.fixture(scope="module")
def cut(quant_module):
    return partition(quant_module, SPLIT)


def expected(module, x) -> np.ndarray:
    (out,) = run_module(module, {"input": x})
    return out


def assert_identical(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b), f"{np.count_nonzero(a != b)} elements differ"


# -- the runner against the integer executor -----------------------------------------------------


def test_the_cut_module_has_the_partitioned_shape(cut):
    main = entry_function(cut)
    body = [op.name for op in main.regions[0].blocks[0].ops]
    assert body == ["quant.quantize", "func.call", "func.call", "quant.dequantize", "func.return"]
    devices = {op.get_attr("sym_name").value: op.get_attr("xir.device").value
               for op in cut.body.ops if op.get_attr("xir.device") is not None}
    assert devices == {"subgraph_dpu_0": "DPU", "subgraph_cpu_1": "CPU"}


SPLITS = {
    "dpu_then_cpu": SPLIT,
    # the convolution on the CPU: many values are ties of DPU rounding there, which onnxruntime
    # reproduces only through export_qdq's dpu_rounding
    "cpu_then_dpu": [("subgraph_cpu_0", "CPU", {"conv", "pool"}),
                     ("subgraph_dpu_1", "DPU", {"flatten", "fc"})],
    "all_cpu": [("subgraph_cpu_0", "CPU", {"conv", "pool", "flatten", "fc"})],
}


@pytest.mark.parametrize("cpu", ["onnxruntime", "numpy"])
@pytest.mark.parametrize("split", SPLITS)
def test_runner_is_bit_identical_to_the_integer_executor(quant_module, split, cpu):
    runner = R.Runner(partition(quant_module, SPLITS[split]), cpu=cpu)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback may hide behind the result
        for x in INPUTS:
            (got,) = runner.run({"input": x})
            assert_identical(got, expected(quant_module, x))
    devices = {name: device for name, device, _ in SPLITS[split]}
    assert runner.devices == devices
    cpu_type = R.OnnxRuntimeExecutor if cpu == "onnxruntime" else R.ReferenceExecutor
    for name, device in devices.items():
        assert type(runner.executors[name]) is (cpu_type if device == "CPU" else
                                                 R.ReferenceExecutor)


def test_onnxruntime_runs_the_int8_boundary_exactly(cut):
    """The CPU subgraph takes and returns int8: its export takes an int8 input (dequantized at
    the fix point its consumers read) and returns the QuantizeLinear's int8; both subgraph
    outputs equal the numpy executor's."""
    boundaries = []
    for cpu in ("onnxruntime", "numpy"):
        boundary = {}
        R.Runner(cut, cpu=cpu).run({"input": INPUTS[0]}, boundary)
        boundaries.append(boundary)
    assert boundaries[0].keys() == boundaries[1].keys()
    for key in boundaries[0]:
        assert_identical(boundaries[0][key], boundaries[1][key])
    assert boundaries[0]["subgraph_cpu_1.out0"].dtype == np.int8
    model = R.subgraph_onnx(next(op for op in cut.body.ops
                                 if op.get_attr("sym_name").value == "subgraph_cpu_1"))
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [onnx.TensorProto.INT8]


def test_cpu_subgraph_returning_floats(quant_module):
    cut = partition(quant_module, [SPLIT[0], ("subgraph_cpu_1", "CPU",
                                              {"flatten", "fc", "logits"})])
    main_ops = [op.name for op in entry_function(cut).regions[0].blocks[0].ops]
    assert "quant.dequantize" not in main_ops
    runner = R.Runner(cut)
    for x in INPUTS[:3]:
        assert_identical(runner.run({"input": x})[0], expected(quant_module, x))
    assert isinstance(runner.executors["subgraph_cpu_1"], R.OnnxRuntimeExecutor)


def test_float_cpu_subgraph_goes_through_the_graph_exporter():
    module = quantized(softmax=True)
    cut = partition(module, SPLIT + [("subgraph_cpu_2", "CPU", {"scores"})])
    runner = R.Runner(cut)
    model = R.subgraph_onnx(next(op for op in cut.body.ops
                                 if op.get_attr("sym_name").value == "subgraph_cpu_2"))
    assert [n.op_type for n in model.graph.node] == ["Softmax"]
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [onnx.TensorProto.FLOAT]
    for x in INPUTS[:3]:
        (got,) = runner.run({"input": x})
        # a float op: onnxruntime and numpy agree to rounding, not bit for bit
        np.testing.assert_allclose(got, expected(module, x), rtol=1e-6, atol=1e-7)
    assert isinstance(runner.executors["subgraph_cpu_2"], R.OnnxRuntimeExecutor)


def test_sessions_are_made_once_per_subgraph(cut):
    runner = R.Runner(cut)
    runner.run({"input": INPUTS[0]})
    first = dict(runner.executors)
    runner.run({"input": INPUTS[1]})
    assert runner.executors == first and all(runner.executors[k] is first[k] for k in first)


def test_the_dpu_seam_takes_a_named_executor(cut, monkeypatch):
    calls = []

    class Recording:
        def __init__(self, func_op, runner):
            self.inner = R.ReferenceExecutor(func_op, runner)
            assert runner.module is cut
            calls.append(func_op.get_attr("sym_name").value)

        def __call__(self, arrays):
            calls.append([a.shape for a in arrays])
            return self.inner(arrays)

    monkeypatch.setitem(R.DPU_EXECUTORS, "sim", Recording)
    R.Runner(cut, dpu="sim").run({"input": INPUTS[0]})
    assert calls == ["subgraph_dpu_0", [(1, 1, 8, 8)]]


def test_unknown_executors_are_errors(cut):
    with pytest.raises(XirError, match="unknown DPU executor 'vhdl' .expects one of sim, ref"):
        R.Runner(cut, dpu="vhdl")
    with pytest.raises(XirError, match="unknown CPU executor 'torch'"):
        R.Runner(cut, cpu="torch")


def test_a_wrong_result_from_an_executor_is_an_error(cut, monkeypatch):
    monkeypatch.setitem(R.DPU_EXECUTORS, "bad",
                        lambda func_op, runner: lambda arrays: [np.zeros((1, 8, 4, 4), np.float32)])
    with pytest.raises(XirError, match="subgraph 'subgraph_dpu_0' returned a float32 array of "
                                       r"shape \(1, 8, 4, 4\) as result 0, expected "
                                       "tensor<1x8x4x4xi8>"):
        R.Runner(cut, dpu="bad").run({"input": INPUTS[0]})


# -- the boundary dump ---------------------------------------------------------------------------


def test_boundary_holds_the_values_at_the_cuts(quant_module, cut):
    seen = {}

    def observe(op, outputs):
        for result, value in zip(op.results, outputs):
            seen[result.name_hint] = value

    run_module(quant_module, {"input": INPUTS[2]}, observe=observe)
    boundary = {}
    R.Runner(cut).run({"input": INPUTS[2]}, boundary)
    assert list(boundary) == ["subgraph_dpu_0.in0", "subgraph_dpu_0.out0",
                              "subgraph_cpu_1.in0", "subgraph_cpu_1.out0"]
    at = {"subgraph_dpu_0.in0": "input_q", "subgraph_dpu_0.out0": "p",
          "subgraph_cpu_1.in0": "p", "subgraph_cpu_1.out0": "logits_q"}
    for key, name in at.items():
        assert_identical(boundary[key], seen[name])


def test_boundary_names():
    assert R.boundary_name("subgraph_dpu_0", "in", 0) == "subgraph_dpu_0.in0"
    assert R.boundary_name("subgraph_cpu_1", "out", 2, call=3) == "subgraph_cpu_1.3.out2"


# -- onnxruntime cannot run it: numpy, with one warning ------------------------------------------


def test_a_subgraph_onnxruntime_cannot_run_falls_back_to_numpy(quant_module):
    module = insert_fix4(quant_module, "logits")
    cut = partition(module, [SPLIT[0], ("subgraph_cpu_1", "CPU",
                                        {"flatten", "fc", "logits", "fix4"})])
    with pytest.raises(R.OnnxUnsupported, match="4-bit 'quant.fix'"):
        R.subgraph_onnx(next(op for op in cut.body.ops
                             if op.get_attr("sym_name").value == "subgraph_cpu_1"))
    runner = R.Runner(cut)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x in INPUTS[:3]:
            assert_identical(runner.run({"input": x})[0], expected(module, x))
    assert [str(w.message) for w in caught] == [
        "CPU subgraph 'subgraph_cpu_1' runs with numpy: onnxruntime cannot run it (cannot "
        "export a 4-bit 'quant.fix' as QDQ (int8 only) (at 'fix4'))"]
    assert type(runner.executors["subgraph_cpu_1"]) is R.ReferenceExecutor


# -- xir run model.xmodel ------------------------------------------------------------------------


def xir_run(*argv):
    """``xir run argv...`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def metadata_of(module) -> dict:
    records = []
    for op in module.body.ops:
        device = op.get_attr("xir.device")
        if device is not None:
            ops = sum(1 for _ in op.walk()) - 2  # not the function and its return
            records.append({"name": op.get_attr("sym_name").value, "device": device.value,
                            "workload_ops": ops})
    return {"target": {"name": "DPUCZDX8G_ISA1_B4096", "fingerprint": "0x101000056010407"},
            "subgraphs": records}


@pytest.fixture
def xmodel(cut, tmp_path):
    path = tmp_path / "model.xmodel"
    write_xmodel(path, cut, metadata_of(cut))
    assert "weights" in read_xmodel(path).sections  # resources mapped from the file
    np.savez(tmp_path / "in.npz", input=INPUTS[3])
    return path


@pytest.mark.parametrize("cpu", [None, "onnxruntime", "numpy"])
def test_cli_runs_an_xmodel(quant_module, xmodel, tmp_path, cpu):
    out, dump = tmp_path / "out.npz", tmp_path / "dump"
    argv = [xmodel, "--input", tmp_path / "in.npz", "-o", out, "--dump", dump, "--dpu", "ref"]
    argv += ["--cpu", cpu] if cpu else []
    assert xir_run(*argv) == (0, "", "")
    with np.load(out) as got:
        assert got.files == ["logits"]
        assert_identical(got["logits"], expected(quant_module, INPUTS[3]))
    boundary = {}
    R.Runner(read_xmodel(xmodel).module, cpu="numpy").run({"input": INPUTS[3]}, boundary)
    assert sorted(p.name for p in dump.iterdir()) == sorted(f"{k}.npy" for k in boundary)
    for key, value in boundary.items():
        assert_identical(np.load(dump / f"{key}.npy"), value)


def test_cli_timing_names_the_phases(xmodel, tmp_path):
    code, _, err = xir_run(xmodel, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz",
                           "--timing")
    assert code == 0 and "Read .xmodel" in err and "Run" in err


@pytest.mark.parametrize("arrays, message", [
    ({"input": np.zeros((1, 1, 4, 4), np.float32)},
     "input 'input': expected tensor<1x1x8x8xf32>, got float32 array of shape (1, 1, 4, 4)"),
    ({"input": np.zeros((1, 1, 8, 8), np.float64)},
     "input 'input': expected tensor<1x1x8x8xf32>, got float64 array of shape (1, 1, 8, 8)"),
    ({"x": np.zeros((1, 1, 8, 8), np.float32)}, "missing input 'input' (expects input)"),
])
def test_cli_bad_inputs_are_one_error_line(xmodel, tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    out, dump = tmp_path / "out.npz", tmp_path / "dump"
    code, stdout, err = xir_run(xmodel, "--input", tmp_path / "bad.npz", "-o", out, "--dump", dump)
    assert (code, stdout, err) == (1, "", f"xir run: error: {message}\n")
    assert not out.exists() and not dump.exists()


def test_cli_cpu_is_for_xmodels_only(cut, tmp_path):
    path = tmp_path / "model.xir"
    path.write_text(print_ir(cut))
    np.savez(tmp_path / "in.npz", input=INPUTS[0])
    code, _, err = xir_run(path, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz",
                           "--cpu", "numpy")
    assert code == 1 and err == (f"xir run: error: --cpu applies to compiled .xmodel models only, "
                                 f"not to '{path}'\n")
    assert not (tmp_path / "o.npz").exists()


def test_cli_truncated_xmodel_is_one_error_line(xmodel, tmp_path):
    data = xmodel.read_bytes()
    xmodel.write_bytes(data[:len(data) // 2])
    code, _, err = xir_run(xmodel, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert code == 1 and err == (f"xir run: error: '{xmodel}' is truncated ({len(data) // 2} of "
                                 f"its {len(data)} bytes)\n")


def test_cli_metadata_that_disagrees_with_the_module_is_an_error(cut, tmp_path):
    metadata = metadata_of(cut)
    metadata["subgraphs"][1]["device"] = "DPU"
    path = tmp_path / "model.xmodel"
    write_xmodel(path, cut, metadata)
    np.savez(tmp_path / "in.npz", input=INPUTS[0])
    code, _, err = xir_run(path, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert code == 1 and err == (f"xir run: error: metadata of '{path}' puts subgraph "
                                 "'subgraph_cpu_1' on DPU, its module on CPU\n")


def test_cli_fallback_is_one_warning_line(quant_module, tmp_path):
    module = insert_fix4(quant_module, "logits")
    cut = partition(module, [SPLIT[0], ("subgraph_cpu_1", "CPU",
                                        {"flatten", "fc", "logits", "fix4"})])
    path, out = tmp_path / "model.xmodel", tmp_path / "out.npz"
    write_xmodel(path, cut, metadata_of(cut))
    np.savez(tmp_path / "in.npz", input=INPUTS[4])
    code, stdout, err = xir_run(path, "--input", tmp_path / "in.npz", "-o", out, "--dpu", "ref")
    assert (code, stdout) == (0, "")
    assert err == ("xir run: warning: CPU subgraph 'subgraph_cpu_1' runs with numpy: onnxruntime "
                   "cannot run it (cannot export a 4-bit 'quant.fix' as QDQ (int8 only) (at "
                   "'fix4'))\n")
    with np.load(out) as got:
        assert_identical(got["fix4"], expected(module, INPUTS[4]))


# -- modules written as text ---------------------------------------------------------------------

TWO_READS = '''
builtin.module {
  func.func @main(%x: tensor<1x4xf32>) -> (tensor<1x4xi8>, tensor<1x4xi8>) {
    %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x4xf32>) -> tensor<1x4xi8>
    %a, %b = "func.call"(%q) <{callee = @subgraph_cpu_0}> : (tensor<1x4xi8>) -> (tensor<1x4xi8>, tensor<1x4xi8>)
    %c = "func.call"(%a) <{callee = @helper}> : (tensor<1x4xi8>) -> tensor<1x4xi8>
    "func.return"(%c, %b) : (tensor<1x4xi8>, tensor<1x4xi8>) -> ()
  }
  func.func private @subgraph_cpu_0(%a: tensor<1x4xi8>) -> (tensor<1x4xi8>, tensor<1x4xi8>) attributes {xir.device = "CPU"} {
    %b = "quant.relu"(%a) {input_fp = 4, output_fp = 3} : (tensor<1x4xi8>) -> tensor<1x4xi8>
    %c = "quant.relu"(%a) {input_fp = 5, output_fp = 3} : (tensor<1x4xi8>) -> tensor<1x4xi8>
    "func.return"(%b, %c) : (tensor<1x4xi8>, tensor<1x4xi8>) -> ()
  }
  func.func private @helper(%a: tensor<1x4xi8>) -> tensor<1x4xi8> {
    %b = "quant.relu"(%a) {input_fp = 3, output_fp = 2} : (tensor<1x4xi8>) -> tensor<1x4xi8>
    "func.return"(%b) : (tensor<1x4xi8>) -> ()
  }
}
'''


def test_an_argument_read_at_two_fix_points_falls_back_and_a_plain_function_is_interpreted():
    module = parse(TWO_READS)
    verify(module)
    x = np.array([[-1.0, 0.3, 2.5, 7.9]], np.float32)
    runner = R.Runner(module)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c, b = runner.run({"x": x})
    assert [str(w.message) for w in caught] == [
        "CPU subgraph 'subgraph_cpu_0' runs with numpy: onnxruntime cannot run it (the int8 "
        "input '%a' is read at several fix points (4, 5), which one DequantizeLinear cannot "
        "give)"]
    q = np.array([[-16, 5, 40, 126]])  # x at fix point 4

    def relu_shift(v, shift):  # relu, then the DPU's shift right rounding half up
        return np.floor((np.maximum(v, 0) + 2 ** (shift - 1)) / 2 ** shift).astype(np.int8)

    assert_identical(b, relu_shift(q, 2))  # read at fix point 5, written at 3
    assert_identical(c, relu_shift(relu_shift(q, 1), 1))  # @helper: 3 -> 2, of 4 -> 3
    assert runner.devices == {"subgraph_cpu_0": "CPU", "helper": None}
    assert type(runner.executors["helper"]) is R.ReferenceExecutor


def test_a_call_to_an_undefined_function_is_an_error():
    text = TWO_READS.replace("callee = @helper", "callee = @nowhere")
    module = parse(text)
    with pytest.raises(XirError, match="calls @nowhere, which the module does not define"):
        R.Runner(module, cpu="numpy").run({"x": np.zeros((1, 4), np.float32)})
