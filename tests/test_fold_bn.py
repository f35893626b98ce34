"""fold-bn: batch norms and per-channel constant scales/shifts fold into the convolution before
them (or become a depthwise convolution), and the model computes the same."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from test_onnx_import import Graph, light_model, rand, relative_error
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.passes.fold_bn import fold_batch_norms
from xir.passes.inspect import main_function
from xir.printer import print_ir
from xir.parser import parse
from xir.verifier import verify


def bn(g, x, c, name):
    return g.node("BatchNormalization", [x, g.weight((c,), positive=True), g.weight((c,), 0.1),
                                         g.weight((c,), 0.1), g.weight((c,), positive=True)],
                  name=name)


def fold_and_compare(model, feeds, rtol=1e-5):
    """Fold; check the text round trip, the numbers, and return the op counts after."""
    module = import_onnx(model)
    before = run_module(module, feeds)
    fold_batch_norms(main_function(module))
    verify(module)
    module = parse(print_ir(module), "folded.xir")
    after = run_module(module, feeds)
    for a, b in zip(after, before):
        assert relative_error(a, b) <= rtol
    assert all(name in module.resources for name in _resource_names(module))
    return Counter(op.name for op in module.walk() if op.name.startswith("graph.")), module


def _resource_names(module):
    return [op.attributes["value"].handle.name for op in module.walk()
            if op.name == "graph.constant" and hasattr(op.attributes["value"], "handle")]


def test_conv_bn_relu_becomes_one_convolution_with_a_bias():
    g = Graph(1)
    y = g.node("Conv", ["x", g.weight((8, 3, 3, 3))], name="conv1", pads=[1, 1, 1, 1])
    y = g.node("Relu", [bn(g, y, 8, "bn1")], name="relu1")
    counts, module = fold_and_compare(g.model({"x": [2, 3, 6, 6]}, [y]), {"x": rand(2, 3, 6, 6)})
    assert counts == {"graph.constant": 2, "graph.conv2d": 1, "graph.relu": 1}
    conv = next(op for op in module.walk() if op.name == "graph.conv2d")
    assert len(conv.operands) == 3 and str(conv.location) == 'loc("conv1")'


def test_conv_relu_bn_leaves_a_depthwise_convolution():
    g = Graph(2)
    y = g.node("Conv", ["x", g.weight((8, 3, 3, 3))], name="conv1", pads=[1, 1, 1, 1])
    y = bn(g, g.node("Relu", [y], name="relu1"), 8, "bn1")
    counts, module = fold_and_compare(g.model({"x": [1, 3, 6, 6]}, [y]), {"x": rand(1, 3, 6, 6)})
    assert counts == {"graph.constant": 3, "graph.conv2d": 2, "graph.relu": 1}
    depthwise = [op for op in module.walk() if op.name == "graph.conv2d"][1]
    assert depthwise.param["group"] == 8 and str(depthwise.location) == 'loc("bn1")'


def test_per_channel_scale_and_shift_fold_like_a_batch_norm():
    g = Graph(3)
    y = g.node("Conv", ["x", g.weight((4, 2, 1, 1)), g.weight((4,), 0.1)], name="conv1")
    y = g.node("Mul", [y, g.const(np.array([1.5, -2.0, 0.5, 3.0], np.float32).reshape(4, 1, 1))])
    y = g.node("Add", [g.const(np.float32([[[0.25]], [[-1]], [[2]], [[0]]])), y])
    counts, _ = fold_and_compare(g.model({"x": [1, 2, 5, 5]}, [y]), {"x": rand(1, 2, 5, 5)})
    assert counts == {"graph.constant": 2, "graph.conv2d": 1}


def test_a_transposed_convolution_folds_its_batch_norm():
    g = Graph(4)
    y = g.node("ConvTranspose", ["x", g.weight((3, 6, 2, 2))], name="up", strides=[2, 2])
    y = bn(g, y, 6, "bn1")
    counts, _ = fold_and_compare(g.model({"x": [1, 3, 4, 4]}, [y]), {"x": rand(1, 3, 4, 4)})
    assert counts == {"graph.constant": 2, "graph.conv_transpose2d": 1}


def test_a_convolution_whose_output_is_also_used_elsewhere_keeps_its_batch_norm_apart():
    g = Graph(5)
    y = g.node("Conv", ["x", g.weight((4, 4, 3, 3))], name="conv1", pads=[1, 1, 1, 1])
    z = g.node("Add", [bn(g, y, 4, "bn1"), y], name="add1")
    counts, _ = fold_and_compare(g.model({"x": [1, 4, 5, 5]}, [z]), {"x": rand(1, 4, 5, 5)})
    # the bn cannot fold into conv1 (whose own output is still needed): it becomes depthwise
    assert counts["graph.conv2d"] == 2 and "graph.batch_norm" not in counts


def test_a_mul_of_two_feature_maps_is_not_an_affine():
    g = Graph(6)
    y = g.node("Conv", ["x", g.weight((4, 4, 1, 1))], name="conv1")
    z = g.node("Mul", [y, "x"], name="gate")
    counts, _ = fold_and_compare(g.model({"x": [1, 4, 3, 3]}, [z]), {"x": rand(1, 4, 3, 3)})
    assert counts == {"graph.constant": 1, "graph.conv2d": 1, "graph.mul": 1}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "densenet121", "inception_v2"])
def test_light_models_compute_the_same_without_any_batch_norm(name):
    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"light_{name} is not installed")
    counts, _ = fold_and_compare(*loaded)
    assert "graph.batch_norm" not in counts
