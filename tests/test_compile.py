"""xir compile: ONNX in, .xmodel out; xir run on it gives the quant dialect's outputs bit for bit.

The trained digits models go end to end through the CLI; the light_* architectures of the
``onnx`` package (random weights) compile for B4096 with their subgraph counts written down and
explained, and run with outputs close to float; the fusion order decides how many DPU ops a
conv/bn/relu chain becomes; a damaged .xmodel or a wrong input is one error line.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fixtures import reencoded, run_xir
from test_onnx_import import Graph, light_model
from xir.backend.compiler import compile_model, workload_ops
from xir.backend.xmodel import read_xmodel
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.passes.quantize import quantize_module

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"


xir = run_xir  # the CLI in this process: (exit status, stdout, stderr)


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("digits")
    data = np.load(DIGITS / "digits.npz")
    np.savez(tmp / "calib.npz", input=data["x_train"][:200].astype(np.float32) / 16)
    np.savez(tmp / "test.npz", input=data["x_test"].astype(np.float32) / 16)
    return tmp, data["y_test"]


# -- the trained models, end to end ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits_cnn", "digits_dwsep"])
def test_compile_then_run_equals_the_integer_executor(digits_files, name):
    tmp, labels = digits_files
    model = str(DIGITS / f"{name}.onnx")
    xmodel, report = tmp / f"{name}.xmodel", tmp / f"{name}.json"
    code, out, err = xir(["compile", model, "--target", "B4096", "--calib",
                          str(tmp / "calib.npz"), "-o", str(xmodel), "--report", str(report)])
    assert (code, err) == (0, "")
    assert "Total device subgraph number 2, DPU subgraph number 1, CPU subgraph number 0" in out
    code, _, err = xir(["quantize", model, "--calib", str(tmp / "calib.npz"),
                        "-o", str(tmp / f"{name}.q.xir")])
    assert (code, err) == (0, "")
    for source, result in ((xmodel, "compiled"), (tmp / f"{name}.q.xir", "quantized")):
        code, _, err = xir(["run", str(source), "--input", str(tmp / "test.npz"),
                            "-o", str(tmp / f"{name}.{result}.npz")])
        assert (code, err) == (0, "")
    compiled = np.load(tmp / f"{name}.compiled.npz")["logits"]
    quantized = np.load(tmp / f"{name}.quantized.npz")["logits"]
    assert np.array_equal(compiled, quantized)  # bit for bit
    float_logits = run_module(import_onnx(model), {"input": np.load(tmp / "test.npz")["input"]})[0]
    float_accuracy = (float_logits.argmax(1) == labels).mean()
    assert (compiled.argmax(1) == labels).mean() >= float_accuracy - 0.005
    data = json.loads(report.read_text())
    assert [s["device"] for s in data["subgraphs"]] == ["USER", "DPU"]
    assert data["subgraphs"][1]["workload_ops"] > 0
    assert set(data["seconds"]) >= {"inspect", "quantize", "fuse", "partition", "verify",
                                    "quantize/calibrate"}


def test_the_passes_one_by_one_give_the_compiled_module(digits_files):
    """xir-opt -p 'inspect{target=…},quantize{calib=…},fuse,partition' is xir compile's flow."""
    tmp, _ = digits_files
    model = str(DIGITS / "digits_cnn.onnx")
    assert xir(["import", model, "-o", str(tmp / "cnn.xir")])[0] == 0
    code, _, err = xir(["opt", str(tmp / "cnn.xir"), "-p",
                        f"inspect{{target=B4096}},quantize{{calib=\"{tmp / 'calib.npz'}\"}},"
                        "fuse,partition", "-o", str(tmp / "cnn.part.xir")])
    assert code == 0 and err.endswith(
        "Total device subgraph number 2, DPU subgraph number 1, CPU subgraph number 0\n"), err
    compiled = compiled_digits(tmp, "digits_cnn")
    from xir.parser import parse
    from xir.printer import print_ir

    piped = parse((tmp / "cnn.part.xir").read_text(), str(tmp / "cnn.part.xir"))
    x = {"input": np.load(tmp / "test.npz")["input"]}
    assert np.array_equal(run_module(piped, x)[0], run_module(compiled.module, x)[0])
    strip = lambda text: text[:text.index("{-#")] if "{-#" in text else text  # noqa: E731
    assert strip(print_ir(piped)) == strip(print_ir(compiled.module))


def compiled_digits(tmp, name: str):
    """``name`` compiled for B4096 on the digits calibration images."""
    data = dict(np.load(tmp / "calib.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_model(import_onnx(str(DIGITS / f"{name}.onnx")), "B4096", data)


def test_the_compiled_module_runs_only_int8_on_the_dpu(digits_files):
    compiled = compiled_digits(digits_files[0], "digits_dwsep")
    (dpu,) = [op for op in compiled.module.regions[0].blocks[0].ops
              if op.name == "func.func" and "xir.device" in op.attributes]
    ops = {op.name for op in dpu.walk()} - {"func.func", "func.return", "quant.constant"}
    assert ops and all(name.startswith("dpu.") for name in ops), ops  # weights: int8 constants
    for arg in dpu.regions[0].blocks[0].args:
        assert str(arg.type.element_type) == "i8" and len(arg.type.shape) == 4  # NHWC int8


# -- the fusion order --------------------------------------------------------------------------------


def _chain(order: str) -> onnx.ModelProto:
    """conv -> bn -> relu (``"conv-bn-relu"``) or conv -> relu -> bn, then a 1x1 conv."""
    g = Graph(3)
    y = g.node("Conv", ["x", g.weight((8, 3, 3, 3)), g.weight((8,), 0.1)], name="conv",
               pads=[1, 1, 1, 1])
    bn = lambda v: g.node("BatchNormalization", [v, g.weight((8,), 1.0), g.weight((8,), 0.1),  # noqa: E731
                                                 g.weight((8,), 0.1),
                                                 g.const(np.ones(8, np.float32))], name="bn")
    relu = lambda v: g.node("Relu", [v], name="relu")  # noqa: E731
    y = relu(bn(y)) if order == "conv-bn-relu" else bn(relu(y))
    y = g.node("Conv", [y, g.weight((4, 8, 1, 1))], name="head")
    return g.model({"x": ["N", 3, 8, 8]}, [y])


@pytest.mark.parametrize("order, target, dpu_ops, cpu_subgraphs", [
    ("conv-bn-relu", "B4096", ["dpu.conv2d_fix", "dpu.conv2d_fix"], 0),
    # the bn after the relu cannot fold into the conv: a depthwise conv of its own on the ALU
    ("conv-relu-bn", "B4096", ["dpu.conv2d_fix", "dpu.depthwise_conv2d_fix", "dpu.conv2d_fix"], 0),
    # DPUCAHX8H has no depthwise engine: that bn runs on the CPU, between two DPU subgraphs
    ("conv-relu-bn", "DPUCAHX8H_ISA2", ["dpu.conv2d_fix", "dpu.conv2d_fix"], 1),
])
def test_the_layer_order_decides_the_fusion(order, target, dpu_ops, cpu_subgraphs):
    data = {"x": np.random.default_rng(0).random((16, 3, 8, 8), dtype=np.float32)}
    module = import_onnx(_chain(order))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = compile_model(module, target, data)
    ops = [op.name for op in compiled.module.walk() if op.name.startswith("dpu.")
           and op.name not in ("dpu.to_nhwc", "dpu.to_nchw")]
    assert ops == dpu_ops
    assert compiled.partition.count("CPU") == cpu_subgraphs
    x = {"x": data["x"][:4]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, _ = quantize_module(module, data)
    assert np.array_equal(run_module(compiled.module, x)[0], run_module(reference, x)[0])


# -- light models for B4096 ------------------------------------------------------------------------

# (DPU subgraphs, CPU subgraphs) on B4096, and why; all run with cosine similarity to float >= 0.99
LIGHT_COUNTS = {
    # every conv, pool and add on the DPU; the softmax on the CPU
    "resnet50": (1, 1),
    # the DPU runs everything up to the global pool; flatten, softmax and the reshape after
    # them are one CPU subgraph (a flatten feeding only the CPU stays there)
    "squeezenet": (1, 1),
    # no CPU op at all: the output is dequantized by the host glue
    "densenet121": (1, 0),
    # each LRN and the 2-group conv after the first one cut the chain; the 9216-input FC is
    # beyond the DPU's 4096 input channels; softmax last: 5 CPU subgraphs between 5 DPU ones
    "bvlc_alexnet": (5, 5),
    # LRN (twice), the average pool that excludes its padding, then reshape + softmax
    "inception_v1": (4, 4),
    # seven average pools that exclude their padding, each inside an inception block whose
    # concat it rejoins (acyclic regions split there), and the softmax: 8 DPU, 8 CPU
    "inception_v2": (8, 8),
    # the 25088-input FC (and its relu) is beyond the DPU, the softmax too
    "vgg19": (2, 2),
    # LRN (twice), the 18432-input FC, softmax
    "zfnet512": (4, 4),
    # every grouped 1x1 conv (with the channel shuffle's reshape/transpose after it) is CPU:
    # 32 of them. Three stage-entry units send one DPU output to a CPU grouped conv and a CPU
    # average pool (count_include_pad = 0); in the compiled module both read it through one
    # layout change, which joins them in one CPU subgraph (the inspector, without layout ops,
    # counts them apart: 36 CPU subgraphs), plus the softmax: 33 CPU, 33 DPU
    "shufflenet": (33, 33),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIGHT_COUNTS))
def test_light_model_compiles_and_runs_close_to_float(tmp_path, name):
    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"light_{name}.onnx is not installed")
    model, feeds = loaded
    (input_name, x), = feeds.items()
    calib = np.random.default_rng(5).random((4,) + x.shape[1:], dtype=np.float32)
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", **{input_name: calib})
    np.savez(tmp_path / "in.npz", **{input_name: x})
    code, out, err = xir(["compile", str(tmp_path / "m.onnx"), "--target", "B4096",
                          "--calib", str(tmp_path / "calib.npz"), "-o", str(tmp_path / "m.xmodel")])
    assert code == 0, err
    dpu, cpu = LIGHT_COUNTS[name]
    assert (f"Total device subgraph number {1 + dpu + cpu}, DPU subgraph number {dpu}, "
            f"CPU subgraph number {cpu}") in out
    xmodel = read_xmodel(str(tmp_path / "m.xmodel"))
    for record in xmodel.subgraphs:  # a stream for every DPU subgraph, which round-trips
        if record["device"] == "DPU":
            assert "isa" in record, record
            data = bytes(xmodel.section(record["isa"]))
            assert reencoded(data) == data
    for dpu in ("sim", "ref"):  # every DPU subgraph's stream on the simulator, and the reference
        code, _, err = xir(["run", str(tmp_path / "m.xmodel"), "--input", str(tmp_path / "in.npz"),
                            "-o", str(tmp_path / f"{dpu}.npz"), "--dpu", dpu,
                            "--dump", str(tmp_path / dpu)])
        assert (code, err) == (0, "")
    for dumped in sorted((tmp_path / "ref").iterdir()):  # bit for bit at every boundary
        assert np.array_equal(np.load(dumped), np.load(tmp_path / "sim" / dumped.name)), dumped
    got = next(iter(np.load(tmp_path / "sim.npz").values())).astype(np.float64).ravel()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)[0].astype(np.float64).ravel()
    cosine = got @ expected / (np.linalg.norm(got) * np.linalg.norm(expected))
    assert cosine >= 0.99, cosine


# -- workload and bad input ----------------------------------------------------------------------


def test_workload_counts_two_ops_per_multiply_accumulate(digits_files):
    compiled = compiled_digits(digits_files[0], "digits_cnn")
    convs = [op for op in compiled.module.walk() if op.name == "dpu.conv2d_fix"]
    first = convs[0]  # conv1: 3x3, 1 -> 16 channels, 8x8 output (batch 1)
    n, h, w, c = [max(d, 1) for d in first.results[0].type.shape]
    assert workload_ops(first) == 2 * h * w * c * 3 * 3 * 1


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:len(b) // 2], "is truncated"),
    (lambda b: b[:200] + bytes([b[200] ^ 0xFF]) + b[201:], "corrupted"),
    (lambda b: b[:8] + (2).to_bytes(4, "little") + b[12:], "has format version 2"),
])
def test_a_damaged_xmodel_is_one_error_line(digits_files, damage, message):
    tmp, _ = digits_files
    good = tmp / "good.xmodel"
    if not good.exists():
        assert xir(["compile", str(DIGITS / "digits_cnn.onnx"), "--target", "B4096", "--calib",
                    str(tmp / "calib.npz"), "-o", str(good)])[0] == 0
    bad = tmp / "bad.xmodel"
    bad.write_bytes(damage(good.read_bytes()))
    code, out, err = xir(["run", str(bad), "--input", str(tmp / "test.npz"),
                          "-o", str(tmp / "bad.npz")])
    assert (code, out) == (1, "") and len(err.splitlines()) == 1
    assert err.startswith("xir run: error: ") and message in err, err
    assert not (tmp / "bad.npz").exists()


def test_inputs_of_the_wrong_shape_are_one_error_line(digits_files, tmp_path):
    tmp, _ = digits_files
    good = tmp / "shape.xmodel"
    assert xir(["compile", str(DIGITS / "digits_cnn.onnx"), "--target", "B4096", "--calib",
                str(tmp / "calib.npz"), "-o", str(good)])[0] == 0
    np.savez(tmp_path / "in.npz", input=np.zeros((2, 1, 9, 9), np.float32))
    code, _, err = xir(["run", str(good), "--input", str(tmp_path / "in.npz"),
                        "-o", str(tmp_path / "o.npz")])
    assert code == 1 and len(err.splitlines()) == 1 and "input 'input'" in err, err


def test_compile_errors_are_one_line(digits_files, tmp_path):
    tmp, _ = digits_files
    model = str(DIGITS / "digits_cnn.onnx")
    code, _, err = xir(["compile", model, "--target", "B9999", "--calib", str(tmp / "calib.npz"),
                        "-o", str(tmp_path / "m.xmodel")])
    assert code == 1 and len(err.splitlines()) == 1 and "B9999" in err, err
    code, _, err = xir(["compile", model, "--target", "B4096", "--calib",
                        str(tmp_path / "none.npz"), "-o", str(tmp_path / "m.xmodel")])
    assert (code, err) == (1, f"xir compile: error: cannot read calibration data "
                              f"'{tmp_path / 'none.npz'}': no such file\n")
    assert not (tmp_path / "m.xmodel").exists()


def test_a_depthwise_layer_counts_its_kernel_area_per_output(digits_files):
    compiled = compiled_digits(digits_files[0], "digits_dwsep")
    dw = next(op for op in compiled.module.walk() if op.name == "dpu.depthwise_conv2d_fix")
    n, h, w, c = [max(d, 1) for d in dw.results[0].type.shape]
    kh, kw = dw.param["kernel"]
    assert workload_ops(dw) == 2 * h * w * c * kh * kw
