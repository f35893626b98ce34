"""The ``quantize`` pass (passes/quantize_pass.py): ``xir opt -p 'fold-bn,quantize{calib=…}'``
writes exactly what ``xir quantize --calib …`` writes, its options follow ``quantize_module``'s
signature, it changes the module it is given, and bad options or calibration files are one clear
error."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from fixtures import run_xir
from test_onnx_import import Graph
from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.parser import parse
from xir.pass_manager import PassManager, lookup_pass, parse_pipeline, pass_options
from xir.passes.quantize import quantize_module
from xir.passes.quantize_pass import Quantize
from xir.printer import print_ir
from xir.weights import HEADER_SIZE, save_module

SAMPLES = 120  # more than calibrate's 100, so that neither route warns


def _model(seed: int):
    """conv → bn → relu → (conv → relu → conv → relu) + residual → global pool → dense, seeded:
    fold-bn, CLE (on conv2, conv3) and bias correction all have something to do."""
    g = Graph(seed)
    y = g.node("Conv", ["x", g.weight((16, 2, 3, 3)), g.weight((16,), 0.1)], name="conv1",
               pads=[1, 1, 1, 1])
    y = g.node("BatchNormalization", [y, g.weight((16,), 0.5, positive=True),
                                      g.weight((16,), 0.1), g.weight((16,), 0.1),
                                      g.weight((16,), 1.0, positive=True)], name="bn1")
    y = g.node("Relu", [y], name="relu1")
    r = g.node("Conv", [y, g.weight((16, 16, 3, 3)), g.weight((16,), 0.1)], name="conv2",
               pads=[1, 1, 1, 1])
    r = g.node("Relu", [r], name="relu2")
    r = g.node("Conv", [r, g.weight((16, 16, 3, 3)), g.weight((16,), 0.1)], name="conv3",
               pads=[1, 1, 1, 1])
    r = g.node("Relu", [r], name="relu3")
    y = g.node("Add", [y, r], name="residual")
    y = g.node("GlobalAveragePool", [y], name="gap")
    y = g.node("Flatten", [y], name="flatten")
    y = g.node("Gemm", [y, g.weight((4, 16)), g.weight((4,), 0.1)], name="fc", transB=1)
    return import_onnx(g.model({"x": ["N", 2, 8, 8]}, [y]))


xir = run_xir  # the CLI in this process: (exit status, stdout, stderr)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A seeded float model as textual IR (weights beside it) and its calibration archive."""
    root = tmp_path_factory.mktemp("quantize_pass")
    save_module(_model(0), str(root / "model.xir"))
    calib = np.random.default_rng(0).standard_normal((SAMPLES, 2, 8, 8)).astype(np.float32)
    np.savez(root / "calib.npz", x=calib)
    return root


def _read(path: Path) -> tuple[str, bytes, str]:
    """An output: its text without the weights file's random id, the weights after their
    header, and the module printed with every resource inline."""
    text = path.read_text()
    masked = "\n".join(line for line in text.splitlines() if not line.strip().startswith("id: "))
    weights = Path(str(path) + ".weights").read_bytes()[HEADER_SIZE:]  # conv2's int8 weights
    return masked, weights, print_ir(parse(text, str(path)))


@pytest.mark.parametrize("cli_flags, options", [
    ([], ""),
    (["--method", "nonoverflow", "--batch-size", "16", "--no-cle", "--fast-finetune"],
     " method=nonoverflow batch-size=16 cle=false fast-finetune=true"),
    (["--method", "percentile", "--no-bias-correction"],
     " method=percentile bias-correction=false"),
])
def test_opt_pipeline_writes_what_xir_quantize_writes(files, tmp_path, cli_flags, options):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    by_command, by_pass = tmp_path / "a" / "q.xir", tmp_path / "b" / "q.xir"
    code, out, err = xir(["quantize", str(files / "model.xir"), "--calib",
                          str(files / "calib.npz"), "-o", str(by_command), *cli_flags])
    assert (code, out, err) == (0, "", "")
    code, out, err = xir(["opt", str(files / "model.xir"), "-o", str(by_pass), "-p",
                          f'fold-bn,quantize{{calib="{files / "calib.npz"}"{options}}}'])
    assert (code, out, err) == (0, "", "")
    expected, got = _read(by_command), _read(by_pass)
    assert "quant.conv2d" in expected[2] and "graph.conv2d" not in expected[2]
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    assert got[2] == expected[2]


def test_the_pass_changes_the_module_it_is_given(files):
    module = parse((files / "model.xir").read_text(), str(files / "model.xir"))
    data = dict(np.load(files / "calib.npz"))
    expected, _ = quantize_module(module, data)
    body_before = module.regions[0].blocks[0]
    PassManager(parse_pipeline(f'quantize{{calib="{files / "calib.npz"}"}}')).run(module)
    assert module.regions[0].blocks[0] is body_before
    assert print_ir(module) == print_ir(expected)
    # the resources are the quantized module's: int8 weights in, float weights that went out gone
    assert set(module.resources) == set(expected.resources)


def test_option_defaults_are_quantize_module_defaults():
    signature = inspect.signature(quantize_module).parameters
    options = {o.field: o.default for o in pass_options(Quantize)}
    assert options.pop("calib") == ""
    assert options == {name: signature[name].default for name in options}
    assert set(options) == {"method", "cle", "bias_correction", "fast_finetune", "batch_size"}


def test_the_pass_is_listed_in_help():
    code, out, _ = xir(["opt", "--help"])
    assert code == 0
    passes = out[out.index("available passes:"):out.index("dialects:")]
    assert "\n  quantize  Quantize the float model to INT8" in passes
    for name in ("calib=string", "method=string", "cle=boolean", "bias-correction=boolean",
                 "fast-finetune=boolean", "batch-size=integer"):
        assert f"\n      {name} (default " in passes
    assert lookup_pass("quantize") is Quantize


@pytest.mark.parametrize("pipeline, column, message", [
    ("quantize", 1, "invalid options for pass 'quantize': option 'calib' is required: the "
                    "calibration .npz archive, as in quantize{calib=calib.npz}"),
    ('quantize{calib=""}', 1, "invalid options for pass 'quantize': option 'calib' is required: "
                              "the calibration .npz archive, as in quantize{calib=calib.npz}"),
    ("fold-bn,quantize{calib=c.npz method=mse}", 9,
     "invalid options for pass 'quantize': unknown calibration method 'mse' (expects one of "
     "diffs, nonoverflow, percentile)"),
    ("quantize{calib=c.npz batch-size=0}", 1,
     "invalid options for pass 'quantize': option 'batch-size' must be at least 1, not 0"),
])
def test_bad_options_are_pipeline_errors(pipeline, column, message):
    with pytest.raises(XirError) as info:
        parse_pipeline(pipeline)
    d = info.value.diagnostic
    assert (d.filename, d.line, d.column, d.message) == ("<pipeline>", 1, column, message)


def test_bad_options_on_the_command_line(files):
    code, out, err = xir(["opt", str(files / "model.xir"), "-p", "quantize{calib=c.npz method=mse}"])
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == ("<pipeline>:1:1: error: invalid options for pass 'quantize': "
                                   "unknown calibration method 'mse' (expects one of diffs, "
                                   "nonoverflow, percentile)")


def _npy(path: Path) -> Path:
    np.save(path.with_suffix(".npy"), np.zeros(3))
    return path.with_suffix(".npy")


@pytest.mark.parametrize("make, reason", [
    (lambda path: path, "no such file"),
    (lambda path: path.mkdir() or path, "it is a directory"),
    (lambda path: path.write_bytes(b"not a zip") and path, "not a valid .npz archive"),
    (_npy, "not an .npz archive"),
])
def test_an_unreadable_calibration_file_is_one_error_line(files, tmp_path, make, reason):
    calib = make(tmp_path / "calib.npz")
    code, out, err = xir(["opt", str(files / "model.xir"), "-p", f'quantize{{calib="{calib}"}}'])
    assert (code, out) == (1, "")
    assert err.startswith(f"{files / 'model.xir'}: error: cannot read calibration data '{calib}': {reason}")
    assert len(err.splitlines()) == 1
    # the same words as xir quantize's
    code, _, err_quantize = xir(["quantize", str(files / "model.xir"), "--calib", str(calib),
                                 "-o", str(tmp_path / "q.xir")])
    assert code == 1
    assert err_quantize.split("error: ", 1)[1] == err.split("error: ", 1)[1]


def test_calibration_data_that_does_not_fit_the_model(files, tmp_path):
    np.savez(tmp_path / "calib.npz", image=np.zeros((SAMPLES, 2, 8, 8), np.float32))
    code, out, err = xir(["opt", str(files / "model.xir"), "-p",
                          f'quantize{{calib="{tmp_path / "calib.npz"}"}}'])
    assert (code, out) == (1, "")
    assert err == (f"{files / 'model.xir'}: error: calibration data has no input 'x' (it holds: "
                   "image)\n")


def test_the_docs_table_shows_the_current_defaults():
    from xir.pass_manager import _format_value

    docs = (Path(__file__).resolve().parent.parent / "docs" / "passes.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `quantize` |"))
    shown = row.split("|")[2]
    for o in pass_options(Quantize):
        if o.name != "calib":
            assert f"`{o.name}={_format_value(o.default)}`" in shown, o.name
