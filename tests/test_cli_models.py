"""The model subcommands end to end: ``xir import``, ``xir run`` (on .xir and on .onnx) against
onnxruntime, ``xir export`` round trip, and every error: one line, exit 1, no output file."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import onnx
import pytest

from test_onnx_import import Graph, ort_run, relative_error
from xir.tools import main as xir_main


def xir(*argv):
    """Run ``xir argv...`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = xir_main.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def small_model():
    """Conv -> BatchNorm -> Relu -> MaxPool -> Flatten -> Gemm, seeded weights; two outputs."""
    g = Graph(seed=7)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3)), g.weight((4,), 0.1)], pads=[1, 1, 1, 1])
    y = g.node("BatchNormalization", [y, g.weight((4,), positive=True), g.weight((4,), 0.1),
                                      g.weight((4,), 0.1), g.weight((4,), positive=True)])
    features = g.node("Relu", [y], name="features")
    y = g.node("MaxPool", [features], kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("Flatten", [y])
    logits = g.node("Gemm", [y, g.weight((5, 64)), g.weight((5,), 0.1)], transB=1, name="logits")
    return g.model({"x": [1, 3, 8, 8]}, [features, logits])


@pytest.fixture
def files(tmp_path: Path):
    """(model.onnx, in.npz, expected outputs by name) in ``tmp_path``."""
    model = small_model()
    onnx_path = tmp_path / "model.onnx"
    onnx.save(model, onnx_path)
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    npz = tmp_path / "in.npz"
    np.savez(npz, x=x)
    names = [o.name for o in model.graph.output]
    return onnx_path, npz, dict(zip(names, ort_run(model, {"x": x})))


def check_outputs(path: Path, expected: dict):
    with np.load(path) as got:
        assert sorted(got.files) == sorted(expected)
        for name, value in expected.items():
            assert relative_error(got[name], value) <= 1e-4


def test_import_then_run_matches_onnxruntime(files, tmp_path):
    onnx_path, npz, expected = files
    xir_path, out = tmp_path / "model.xir", tmp_path / "out.npz"
    assert xir("import", onnx_path, "-o", xir_path) == (0, "", "")
    assert "dense_resource<" in xir_path.read_text() and "{-#" in xir_path.read_text()
    assert xir("run", xir_path, "--input", npz, "-o", out) == (0, "", "")
    check_outputs(out, expected)


def test_run_directly_on_onnx(files, tmp_path):
    onnx_path, npz, expected = files
    out = tmp_path / "out.npz"
    code, _, err = xir("run", onnx_path, "--input", npz, "-o", out, "--timing")
    assert code == 0 and "Interpret" in err and "Import ONNX" in err
    check_outputs(out, expected)


def test_import_to_stdout(files):
    code, out, err = xir("import", files[0])
    assert (code, err) == (0, "") and out.startswith("builtin.module {")


def test_export_round_trip(files, tmp_path):
    onnx_path, npz, expected = files
    xir_path, back, out = tmp_path / "model.xir", tmp_path / "back.onnx", tmp_path / "out.npz"
    assert xir("import", onnx_path, "-o", xir_path)[0] == 0
    assert xir("export", xir_path, "-o", back) == (0, "", "")
    model = onnx.load(back)
    onnx.checker.check_model(model)
    x = np.load(npz)["x"]
    for got, want in zip(ort_run(model, {"x": x}), expected.values()):
        assert relative_error(got, want) <= 1e-4
    assert xir("run", back, "--input", npz, "-o", out)[0] == 0
    with np.load(out) as got:
        assert len(got.files) == len(expected)


# -- errors: one line, exit 1, no output ---------------------------------------------------------


def _run_error(files, tmp_path, out_name="out.npz", **arrays):
    npz = tmp_path / "bad.npz"
    np.savez(npz, **arrays)
    out = tmp_path / out_name
    existed = out.exists()
    code, stdout, err = xir("run", files[0], "--input", npz, "-o", out)
    assert (code, stdout) == (1, "") and err.count("\n") == 1
    assert existed or not out.exists()
    return err


X = np.zeros((1, 3, 8, 8), np.float32)


def test_wrong_shape(files, tmp_path):
    err = _run_error(files, tmp_path, x=np.zeros((1, 3, 8, 9), np.float32))
    assert err == ("xir run: error: input 'x': expected tensor<1x3x8x8xf32>, "
                   "got float32 array of shape (1, 3, 8, 9)\n")


def test_wrong_dtype(files, tmp_path):
    err = _run_error(files, tmp_path, x=np.zeros((1, 3, 8, 8), np.float64))
    assert err == ("xir run: error: input 'x': expected tensor<1x3x8x8xf32>, "
                   "got float64 array of shape (1, 3, 8, 8)\n")


def test_missing_input(files, tmp_path):
    err = _run_error(files, tmp_path, y=X)
    assert err == "xir run: error: missing input 'x' (expects x)\n"


def test_extra_input(files, tmp_path):
    err = _run_error(files, tmp_path, x=X, extra=X)
    assert err == "xir run: error: unknown input 'extra' (expects x)\n"


def test_missing_npz(files, tmp_path):
    out = tmp_path / "out.npz"
    missing = tmp_path / "missing.npz"
    assert xir("run", files[0], "--input", missing, "-o", out) == (
        1, "", f"xir run: error: cannot read inputs '{missing}': no such file\n")
    assert not out.exists()


def test_npz_that_is_not_an_archive(files, tmp_path):
    bad, out = tmp_path / "bad.npz", tmp_path / "out.npz"
    bad.write_text("not an archive\n")
    code, _, err = xir("run", files[0], "--input", bad, "-o", out)
    assert code == 1 and err.startswith(f"xir run: error: cannot read inputs '{bad}': not ")
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("kind", ["truncated", "text", "missing"])
@pytest.mark.parametrize("command", ["import", "run"])
def test_bad_onnx_files(files, tmp_path, kind, command):
    onnx_path, npz, _ = files
    bad = tmp_path / f"{kind}.onnx"
    if kind == "truncated":
        data = onnx_path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        bad.write_text("this is not a model\n" * 5)
    out = tmp_path / ("out.xir" if command == "import" else "out.npz")
    extra = ["--input", npz] if command == "run" else []
    code, stdout, err = xir(command, bad, *extra, "-o", out)
    assert (code, stdout) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"xir {command}: error: cannot read ONNX model '{bad}': ")
    assert ("no such file" if kind == "missing" else "not a valid ONNX file") in err
    assert not out.exists()


def test_existing_output_is_kept_on_error(files, tmp_path):
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous")
    _run_error(files, tmp_path, x=np.zeros((2, 3, 8, 8), np.float32))
    assert out.read_bytes() == b"previous"


def test_bad_xir_input_is_one_line(tmp_path):
    bad, out, npz = tmp_path / "bad.xir", tmp_path / "out.npz", tmp_path / "in.npz"
    bad.write_text("func.func @main( {\n")
    np.savez(npz, x=X)
    code, _, err = xir("run", bad, "--input", npz, "-o", out)
    assert code == 1 and err.count("\n") == 1 and f"{bad}:1:" in err and not out.exists()


def test_usage_error_is_one_line(tmp_path):
    code, _, err = xir("run", tmp_path / "m.onnx")
    assert code == 1 and err.startswith("xir run: error: ") and err.count("\n") == 1


def _broken(kind: str):
    """A model broken in one way, and the one-line error ``xir import`` gives for it."""
    g = Graph(seed=2)
    if kind == "missing initializer":
        y = g.node("Conv", ["x", "conv1.weight"], name="conv1")
        return g.model({"x": [1, 3, 8, 8]}, [y]), (
            "Conv: input 'conv1.weight' is not a graph input, an initializer or an earlier "
            "node's output (node 'conv1')")
    if kind == "NaN weights":
        w = np.ones((4, 3, 3, 3), np.float32)
        w[0, 0, :2, 0] = np.nan
        y = g.node("Conv", ["x", g.const(w, "conv1.weight")], name="conv1")
        return g.model({"x": [1, 3, 8, 8]}, [y]), (
            "initializer 'conv1.weight' holds NaN in 2 of 108 values")
    newest = onnx.defs.onnx_opset_version()
    y = g.node("Relu", ["x"])
    return g.model({"x": [1, 3]}, [y], opset=newest + 1), (
        f"unsupported ONNX opset {newest + 1}: the installed onnx {onnx.__version__} knows "
        f"opsets up to {newest}")


@pytest.mark.parametrize("kind", ["missing initializer", "NaN weights", "unsupported opset"])
@pytest.mark.parametrize("command", ["import", "run"])
def test_broken_models(tmp_path, kind, command):
    model, message = _broken(kind)
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.zeros((1, 3, 8, 8), np.float32))
    out = tmp_path / ("out.xir" if command == "import" else "out.npz")
    extra = ["--input", npz] if command == "run" else []
    assert xir(command, path, *extra, "-o", out) == (1, "", f"xir {command}: error: {message}\n")
    assert not out.exists()


def test_dump_writes_every_layer_by_node_name(files, tmp_path):
    onnx_path, npz, expected = files
    model = onnx.load(onnx_path)
    conv = model.graph.node[0].output[0]
    model.graph.output.append(onnx.ValueInfoProto(name=conv))  # let ORT show the conv output too
    with np.load(npz) as archive:
        reference = ort_run(model, {"x": archive["x"]})[-1]
    out, dump = tmp_path / "out.npz", tmp_path / "layers.npz"
    assert xir("run", onnx_path, "--input", npz, "-o", out, "--dump", dump) == (0, "", "")
    check_outputs(out, expected)
    with np.load(dump) as layers:
        assert layers.files == [n.name for n in model.graph.node]
        assert relative_error(layers[model.graph.node[0].name], reference) <= 1e-5
        assert relative_error(layers["features"], expected["features_out"]) <= 1e-5
