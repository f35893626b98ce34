"""cle: cross-layer equalization keeps the function and evens out per-channel weight ranges,
also after a function-preserving rescaling that spreads them by 10^3 and more."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from test_onnx_import import Graph, rand, relative_error
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.passes.cle import (_ranges, _weights, align_to_grid, equalize, equalize_pair, pairs,
                            scale_channels)
from xir.passes.cle import relative_error as cle_relative_error
from xir.passes.fold_bn import fold_batch_norms
from xir.passes.inspect import main_function

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"


def _digits_inputs(n=64):
    with np.load(DIGITS / "digits.npz") as data:
        return {"input": data["x_test"][:n].astype(np.float32) / 16}


def _spreads(func):
    return [float(_ranges(_weights(a), 0).max() / _ranges(_weights(a), 0).min())
            for a, _ in pairs(func)]


def test_one_pair_gets_equal_ranges_and_the_same_function():
    g = Graph(1)
    y = g.node("Conv", ["x", g.weight((6, 3, 3, 3)), g.weight((6,), 0.1)], name="c1",
               pads=[1, 1, 1, 1])
    y = g.node("Relu", [y])
    y = g.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("Conv", [y, g.weight((4, 6, 1, 1))], name="c2")
    module = import_onnx(g.model({"x": [1, 3, 8, 8]}, [y]))
    func, x = main_function(module), {"x": rand(1, 3, 8, 8)}
    before = run_module(module, x)[0]
    (pair,) = pairs(func)
    r1, r2 = _ranges(_weights(pair[0]), 0), _ranges(_weights(pair[1]), 1)
    equalize_pair(*pair)
    after1, after2 = _ranges(_weights(pair[0]), 0), _ranges(_weights(pair[1]), 1)
    np.testing.assert_allclose(after1, np.sqrt(r1 * r2), rtol=1e-6)
    np.testing.assert_allclose(after2, np.sqrt(r1 * r2), rtol=1e-6)
    assert relative_error(run_module(module, x)[0], before) <= 1e-6


def test_relu6_between_blocks_the_pair():
    g = Graph(2)
    y = g.node("Conv", ["x", g.weight((4, 3, 1, 1))])
    y = g.node("Clip", [y, g.const(np.float32(0)), g.const(np.float32(6))])
    y = g.node("Conv", [y, g.weight((4, 4, 1, 1))])
    assert pairs(main_function(import_onnx(g.model({"x": [1, 3, 4, 4]}, [y])))) == []


def test_the_trained_models_keep_their_outputs():
    for name, count in (("digits_cnn", 2), ("digits_dwsep", 6)):
        module = import_onnx(str(DIGITS / f"{name}.onnx"))
        func, x = main_function(module), _digits_inputs()
        before = run_module(module, x)[0]
        fold_batch_norms(func)
        assert len(pairs(func)) == count
        equalize(func)
        assert relative_error(run_module(module, x)[0], before) <= 1e-5


def test_a_spread_of_a_thousand_comes_back():
    """Rescale each pair's channels by 10^[-2, 2] (function-preserving), then equalize."""
    module = import_onnx(str(DIGITS / "digits_dwsep.onnx"))
    func, x = main_function(module), _digits_inputs()
    fold_batch_norms(func)
    before = run_module(module, x)[0]
    rng = np.random.default_rng(0)
    for conv1, conv2 in pairs(func):
        channels = _weights(conv1).shape[0]
        scale_channels(conv1, conv2, 10.0 ** rng.uniform(-2, 2, channels))
    assert min(_spreads(func)) >= 1e3
    assert relative_error(run_module(module, x)[0], before) <= 1e-4
    equalize(func)
    assert max(_spreads(func)) < 10
    assert relative_error(run_module(module, x)[0], before) <= 1e-4


def _grid_loss(func) -> float:
    return sum(cle_relative_error(_weights(a), False) + cle_relative_error(_weights(b), False)
               for a, b in pairs(func))


def test_grid_alignment_lowers_the_power_of_two_error_and_keeps_the_function():
    """Plain CLE leaves every digits_dwsep layer's largest weight near 1.05, just above a power
    of two; the alignment moves each pair by one factor and loses less to the int8 grid."""
    module = import_onnx(str(DIGITS / "digits_dwsep.onnx"))
    func, x = main_function(module), _digits_inputs()
    fold_batch_norms(func)
    before = run_module(module, x)[0]
    found = pairs(func)
    for _ in range(20):
        for a, b in found:
            equalize_pair(a, b)
    plain = _grid_loss(func)
    spreads = _spreads(func)
    align_to_grid(func, found)
    assert _grid_loss(func) < 0.7 * plain  # measured: 0.51 of it
    np.testing.assert_allclose(_spreads(func), spreads, rtol=1e-5)  # one factor per pair
    assert relative_error(run_module(module, x)[0], before) <= 1e-5


def test_alignment_with_activations_measures_them_on_the_inputs_given():
    module = import_onnx(str(DIGITS / "digits_dwsep.onnx"))
    func, x = main_function(module), _digits_inputs(32)
    fold_batch_norms(func)
    weights_only = module.clone()
    equalize(main_function(weights_only))
    equalize(func, sample=x)
    changed = [not np.array_equal(_weights(a), _weights(b))
               for a, b in zip([p[0] for p in pairs(func)],
                               [p[0] for p in pairs(main_function(weights_only))])]
    assert any(changed)  # the activations between the pairs moved some factors
