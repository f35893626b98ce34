"""The trained digits models of examples/digits: imported into xir and run on the reference
interpreter over the committed test split, they score exactly what onnxruntime scored when
examples/digits/train.py wrote them, and their logits match onnxruntime's.

Only the committed files are read: neither PyTorch nor scikit-learn is needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnx_cases import ort_run, relative_error
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
RESULTS = json.loads((DIGITS / "results.json").read_text())
MODELS = sorted(RESULTS["models"])
PIXEL_MAX = 16  # digits.npz holds the raw pixels 0..16; the models take them divided by 16


@pytest.fixture(scope="module")
def test_split():
    """The committed test images as the models' float32 input, and their labels."""
    data = np.load(DIGITS / "digits.npz")
    return data["x_test"].astype(np.float32) / PIXEL_MAX, data["y_test"]


def test_the_three_models_are_recorded():
    assert MODELS == ["digits_cnn", "digits_dwsep", "digits_res"]


def test_split_is_the_recorded_one(test_split):
    x, y = test_split
    assert x.shape == (RESULTS["split"]["n_test"], 1, 8, 8) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == np.int64 and np.array_equal(np.unique(y), np.arange(10))


@pytest.mark.parametrize("name", MODELS)
def test_xir_scores_what_onnxruntime_scored(name, test_split):
    x, y = test_split
    model = onnx.load(DIGITS / f"{name}.onnx")
    logits = run_module(import_onnx(model), {"input": x})[0]
    reference = ort_run(model, [x])[0]
    assert logits.shape == (len(y), 10)
    assert relative_error(logits, reference) < 1e-4
    assert np.abs(logits - reference).max() <= 1e-4 * np.abs(reference).max()
    correct = int((logits.argmax(1) == y).sum())
    assert correct == int((reference.argmax(1) == y).sum())
    assert correct == RESULTS["models"][name]["test_correct"]
    assert correct / len(y) >= 0.97
