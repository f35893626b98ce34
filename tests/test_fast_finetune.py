"""Fast finetune (passes/fast_finetune.py): the Gram form of a layer's error is the direct one,
tuning never leaves a layer worse than rounding to nearest (measured independently, through the
op's own integer accumulators), fix points stay, and the result is deterministic."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from xir.frontends.onnx import import_onnx
from xir.interpreter import run_lockstep
from xir.passes import fast_finetune as F
from xir.passes.dpu_rules import constant_array, producer
from xir.passes.quantize import quantize_module
from xir.symbols import entry_function

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
TUNED = ("quant.conv2d", "quant.dense")


def random_layer(seed: int, groups=2, m=5, k=7, pixels=40):
    """Columns (with a ones row), a residual, and a change of [w | b] in grid steps."""
    rng = np.random.default_rng(seed)
    columns = rng.standard_normal((groups, k + 1, pixels))
    columns[:, -1] = 0.25  # the bias row: one value, 2^-bias_fp
    return (columns, rng.standard_normal((groups, m, pixels)),
            rng.integers(-2, 3, (groups, m, k + 1)).astype(np.float64))


@pytest.mark.parametrize("seed", range(3))
def test_the_gram_error_is_the_direct_error(seed):
    columns, residual, change = random_layer(seed)
    direct, gram = F.DirectError(columns, residual), F.GramError(columns, residual)
    for exact, tolerance in ((True, 1e-10), (False, 1e-4)):
        (loss_d, grad_d), (loss_g, grad_g) = direct(change, exact), gram(change, exact)
        expected = np.sum((np.matmul(change, columns) - residual) ** 2) / residual.size
        assert loss_d == pytest.approx(expected, rel=tolerance)
        assert loss_g == pytest.approx(expected, rel=tolerance)
        np.testing.assert_allclose(grad_g, grad_d, rtol=tolerance, atol=tolerance)
    numeric = (direct(change + np.eye(1, change.size).reshape(change.shape) * 1e-6, True)[0] -
               direct(change, True)[0]) / 1e-6
    assert direct(change, True)[1].flat[0] == pytest.approx(numeric, rel=1e-4)
    assert gram.base == pytest.approx(np.sum(residual ** 2) / residual.size)


def test_the_cheaper_form_is_chosen():
    assert isinstance(F.layer_error(*random_layer(0, pixels=40)[:2]), F.GramError)  # K+1 = 8
    assert isinstance(F.layer_error(*random_layer(0, k=99, pixels=40)[:2]), F.DirectError)


def test_descend_lowers_a_random_error_and_keeps_an_optimal_start():
    columns, residual, _ = random_layer(4, pixels=1000)
    columns[:, :-1] += 10 * columns[:, :1]  # near-copies: roundings can make up for each other
    start = np.random.default_rng(5).integers(-100, 100, (2, 5, 8)).astype(np.float64)
    # targets as if the float weights were start + a fraction of a grid step: rounding is off
    fraction = np.random.default_rng(6).uniform(-0.5, 0.5, start.shape)
    error = F.layer_error(columns, np.matmul(fraction, columns) + 0.01 * residual)
    best, loss = F.descend(error, start)
    assert loss < 0.6 * error.base  # measured: 0.38
    assert np.all(best == np.round(best)) and np.abs(best - start).max() <= 3
    optimal = F.layer_error(columns, np.zeros_like(residual))
    assert F.descend(optimal, start)[0] is start


# -- real layers: digits_dwsep (convolutions, depthwise, dense) -------------------------------


@pytest.fixture(scope="module")
def quantized():
    data = np.load(DIGITS / "digits.npz")
    calib = data["x_train"][:64].astype(np.float32) / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer than 100 samples
        module, _ = quantize_module(import_onnx(str(DIGITS / "digits_dwsep.onnx")),
                                    {"input": calib})
    return module, calib[:32]


def layer_inputs(module, x) -> list:
    """Each conv/dense of ``module`` (program order) with the int8 input that reaches it."""
    found = []

    def before(op, operand_sets):
        if op.name in TUNED:
            found.append((op, operand_sets[0][0]))

    run_lockstep(entry_function(module), [{"input": x}], before=before)
    return found


def fake_target(op, x, seed: int) -> np.ndarray:
    """The op's output (before activation, real units) had its weights been off their int8
    values by up to a grid step: as from float weights the int8 ones no longer fit."""
    w = constant_array(op.operands[1], np.int64)
    off = np.random.default_rng(seed).integers(-8, 9, w.shape)  # eighths of a step
    acc = op.accumulate(x, w * 8 + off).astype(np.float64) / 8
    return layer_output(op, acc, constant_array(op.operands[2]))


def layer_output(op, acc, bias) -> np.ndarray:
    p = op.param
    bias = np.ldexp(bias.astype(np.float64), -p["bias_fp"])
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    return np.ldexp(acc, -(p["input_fp"] + p["weight_fp"])) + bias.reshape(shape)


def squared_error(op, x, target) -> float:
    """The mean squared error of the op's output against ``target``, by its own accumulators."""
    acc = op.accumulate(x, constant_array(op.operands[1], np.int64)).astype(np.float64)
    return float(np.mean((layer_output(op, acc, constant_array(op.operands[2])) - target) ** 2))


def fix_points(op) -> dict:
    return {key: value for key, value in op.param.items() if key.endswith("_fp")}


def test_tuning_lowers_each_layer_error_and_keeps_its_fix_points(quantized):
    module, x = quantized
    module = module.clone()
    layers = layer_inputs(module, x)
    assert {op.param.get("group", 1) > 1 for op, _ in layers} == {True, False}  # depthwise too
    assert "quant.dense" in {op.name for op, _ in layers}
    lefts = []
    for seed, (op, x) in enumerate(layers):
        target = fake_target(op, x, seed)
        before, fps = squared_error(op, x, target), fix_points(op)
        weights = [producer(v).results[0].type for v in op.operands[1:]]
        left = F.tune_layer(op, [x], [target], steps=200)
        after = squared_error(op, x, target)
        assert after <= before
        assert left == pytest.approx(after / before, rel=1e-6)  # the same error, two ways
        lefts.append(left)
        assert fix_points(op) == fps
        assert [producer(v).results[0].type for v in op.operands[1:]] == weights
    print("error left per layer:", " ".join(f"{left:.2f}" for left in lefts))
    assert max(lefts) < 0.6  # measured: 0.18 to 0.42


def test_tuning_is_deterministic(quantized):
    module, x = quantized
    results = []
    for _ in range(2):
        copy = module.clone()
        for seed, (op, x_op) in enumerate(layer_inputs(copy, x)):
            F.tune_layer(op, [x_op], [fake_target(op, x_op, seed)], steps=100)
        results.append([constant_array(v).tolist() for op, _ in layer_inputs(copy, x)
                        for v in op.operands[1:]])
    assert results[0] == results[1]
