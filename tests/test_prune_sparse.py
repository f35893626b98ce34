"""Sparse pruning (passes/prune/sparse.py) on the trained digits_res model: the 2:4 pattern in
every run of four input channels, magnitude sparsity as asked (per layer and global), the
smallest weights going first, the sparse model running the same in onnxruntime, and the
inspector's note that the DPU gains no speed from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnx_cases import ort_run
from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.frontends.onnx_export import export_onnx
from xir.interpreter import run_module
from xir.passes.dpu_rules import constant_array, node_name
from xir.passes.inspect import inspect_module
from xir.passes.prune.sparse import sparsify

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
TARGET = "DPUCZDX8G_ISA1_B4096"
NOTE = "sparse: the DPU gains no speed from sparsity (it computes every MAC)"


@pytest.fixture(scope="module")
def module():
    return import_onnx(DIGITS / "digits_res.onnx")


@pytest.fixture(scope="module")
def x():
    return np.load(DIGITS / "digits.npz")["x_test"][:64].astype(np.float32) / 16


def weights(module) -> dict:
    """Each conv/dense layer's weight, output channel first, input channel second."""
    out = {}
    for op in module.walk():
        if op.name == "graph.conv2d":
            out[node_name(op)] = constant_array(op.operands[1])
        elif op.name == "graph.gemm":
            w = constant_array(op.operands[1])
            out[node_name(op)] = w if op.param["trans_b"] else w.T
    return out


def test_two_of_every_four_input_channels_are_zero(module):
    sparse, report = sparsify(module, "2:4")
    after = weights(sparse)
    assert [name for name, _ in report.skipped] == ["conv1"]  # one input channel
    assert weights(module)["conv1"].tolist() == after["conv1"].tolist()
    for layer in report.layers:
        w = np.moveaxis(after[layer.name], 1, -1)
        runs = w.reshape(*w.shape[:-1], w.shape[-1] // 4, 4)
        assert np.all(np.count_nonzero(runs, axis=-1) <= 2), layer.name
        assert layer.sparsity == 0.5
    assert {layer.name for layer in report.layers} == set(after) - {"conv1"}
    assert report.sparsity == 0.5


def test_the_largest_two_of_four_stay(module):
    sparse, _ = sparsify(module, "2:4", layers=["conv2"])
    before, after = weights(module)["conv2"], weights(sparse)["conv2"]
    b = np.moveaxis(np.abs(before), 1, -1).reshape(-1, 4)
    a = np.moveaxis(after, 1, -1).reshape(-1, 4)
    kept = np.sort(b, axis=1)[:, 2:]
    assert np.array_equal(np.sort(np.abs(a), axis=1)[:, 2:], kept)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_magnitude_sparsity_per_layer(module, sparsity):
    sparse, report = sparsify(module, "magnitude", sparsity)
    before, after = weights(module), weights(sparse)
    for layer in report.layers:
        w0, w1 = before[layer.name], after[layer.name]
        zeros = np.count_nonzero(w1 == 0) / w1.size
        assert abs(zeros - sparsity) <= 0.01 and layer.zeros == np.count_nonzero(w1 == 0)
        assert np.abs(w0[w1 != 0]).min() >= np.abs(w0[w1 == 0]).max()  # the smallest went
        assert np.array_equal(w1[w1 != 0], w0[w1 != 0])
    assert abs(report.sparsity - sparsity) <= 0.01


def test_magnitude_sparsity_global(module):
    sparse, report = sparsify(module, "magnitude", 0.6, scope="global")
    before, after = weights(module), weights(sparse)
    w0 = np.concatenate([before[k].ravel() for k in before])
    w1 = np.concatenate([after[k].ravel() for k in before])
    assert abs(np.count_nonzero(w1 == 0) / w1.size - 0.6) <= 0.01
    assert abs(report.sparsity - 0.6) <= 0.01
    assert np.abs(w0[w1 != 0]).min() >= np.abs(w0[w1 == 0]).max()
    assert len({round(layer.sparsity, 2) for layer in report.layers}) > 1  # layers differ


def test_the_sparse_model_runs_in_onnxruntime(module, x):
    sparse, _ = sparsify(module, "2:4")
    ours = run_module(sparse, {"input": x})[0]
    assert np.allclose(ours, ort_run(export_onnx(sparse), [x])[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(ours, run_module(module, {"input": x})[0])


def test_the_inspector_notes_sparse_weights(module):
    sparse, _ = sparsify(module, "2:4")
    notes = {n.name: n.notes for n in inspect_module(sparse, TARGET).nodes}
    assert f"conv2: weights 50 % {NOTE}" in notes["conv2"]
    assert f"fc: weights 50 % {NOTE}" in notes["fc"]
    assert not any(NOTE in note for note in notes["conv1"])
    dense = {n.name: n.notes for n in inspect_module(module, TARGET).nodes}
    assert not any(NOTE in note for notes in dense.values() for note in notes)


def test_the_report(module):
    _, report = sparsify(module, "magnitude", 0.5, layers=["conv2", "fc"])
    data = report.to_json()
    assert [layer["name"] for layer in data["layers"]] == ["conv2", "fc"]
    assert data["weights"] == 32 * 32 * 9 + 640 and data["zeros"] == data["weights"] // 2
    text = report.text()
    assert "conv2" in text and "no speed-up" in text.splitlines()[-1]


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "random"}, "sparse kind 'random' is neither 'magnitude' nor an N:M pattern"),
    ({"kind": "4:4"}, "N must be between 1 and M - 1"),
    ({"sparsity": 1.0}, r"sparsity 1.0 is outside \[0, 1\)"),
    ({"scope": "model"}, "scope 'model'"),
    ({"layers": ["bn1"]}, "layer 'bn1' is not a convolution or dense layer"),
    ({"kind": "2:4", "layers": ["conv1"]}, "conv1: cannot be 2:4 sparse: 1 input channels"),
])
def test_mistakes_are_one_line_errors(module, kwargs, message):
    with pytest.raises(XirError, match=message) as info:
        sparsify(module, **kwargs)
    assert "\n" not in str(info.value)
