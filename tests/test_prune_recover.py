"""Recovery without training (passes/prune/recover.py) and the fine-tune hook (finetune.py), on
the trained digits_res model of examples/digits pruned to about half its MACs.

Channels go by L1 norm (the groups' least important first), counts kept to multiples of 8.
Accuracies are the reference interpreter's on the committed test split; the reconstruction is
checked against the unpruned model's outputs, the statistics against what the pruned model's
batch norms measurably receive. The worked PyTorch hook of examples/digits runs when PyTorch is
installed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnx_cases import ort_run
from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.frontends.onnx_export import export_onnx
from xir.interpreter import run_module
from xir.passes.dpu_rules import constant_array, node_name
from xir.passes.prune import (channel_importance, find_groups, model_macs, remove_channels,
                              zero_channels)
from xir.passes.prune.finetune import finetune
from xir.passes.prune.recover import reconstruct, reestimate_bn

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
DIVISOR = 8
MACS = 0.5


@pytest.fixture(scope="module")
def digits():
    """The digits split as float input: training images (calibration), test images, labels."""
    data = np.load(DIGITS / "digits.npz")
    return (data["x_train"].astype(np.float32) / 16, data["y_train"],
            data["x_test"].astype(np.float32) / 16, data["y_test"])


def accuracy(module, x, y) -> float:
    return float((run_module(module, {"input": x})[0].argmax(1) == y).mean())


def half_macs(module) -> dict:
    """The least important (L1) channels of every prunable group, the same share of each,
    counts multiples of :data:`DIVISOR`, the largest share that keeps at most half the MACs."""
    groups = [g for g in find_groups(module) if g.prunable]
    order = {g.name: np.argsort(channel_importance(module, g, "l1"), kind="stable") for g in groups}
    total = model_macs(module)
    for keep in np.arange(0.95, 0.0, -0.05):
        counts = {g.name: max(DIVISOR, DIVISOR * round(keep * g.channels / DIVISOR))
                  for g in groups}
        removed = {g.name: [int(c) for c in order[g.name][:g.channels - counts[g.name]]]
                   for g in groups}
        if model_macs(remove_channels(module, removed)) <= MACS * total:
            return removed
    raise AssertionError("no share reaches half the MACs")


@pytest.fixture(scope="module")
def pruned(digits):
    """The model, what goes, the zeroed and removed models, and the zeroed one reconstructed."""
    x_train = digits[0]
    module = import_onnx(DIGITS / "digits_res.onnx")
    removed = half_macs(module)
    zeroed = zero_channels(module, removed)
    smaller = remove_channels(module, removed)
    return {"module": module, "removed": removed, "zeroed": zeroed, "smaller": smaller,
            "rebuilt": reconstruct(module, zeroed, removed, x_train)}


def test_the_pruned_model_keeps_half_the_macs(pruned):
    ratio = model_macs(pruned["smaller"]) / model_macs(pruned["module"])
    assert 0.4 < ratio <= MACS
    kept = [g.channels for g in find_groups(pruned["smaller"]) if g.prunable]
    assert all(c % DIVISOR == 0 for c in kept)


def test_reconstruction_recovers_accuracy_and_outputs(pruned, digits):
    _, _, x, y = digits
    original, zeroed, rebuilt = (accuracy(pruned[k], x, y)
                                 for k in ("module", "zeroed", "rebuilt"))
    print(f"\ndigits_res at {MACS:.0%} MACs: original {original:.2%}, zeroed {zeroed:.2%}, "
          f"reconstructed {rebuilt:.2%}")
    assert rebuilt > zeroed + 0.5
    assert rebuilt >= original - 0.01  # the bar: within 1 point with no training
    reference = run_module(pruned["module"], {"input": x})[0]

    def error(module):
        out = run_module(module, {"input": x})[0]
        return np.linalg.norm(out - reference) / np.linalg.norm(reference)

    assert error(pruned["rebuilt"]) < 0.2 * error(pruned["zeroed"])


def test_reconstruction_keeps_the_pruned_channels_zero(pruned):
    """Only kept weights change: the zeroed model stays a zeroed model (the transform of the
    reconstructed zeroed model equals the reconstructed smaller model)."""
    zeroed, rebuilt = pruned["zeroed"], pruned["rebuilt"]
    for before, after in zip(_layers(zeroed), _layers(rebuilt)):
        w0, w1 = constant_array(before.operands[1]), constant_array(after.operands[1])
        assert np.all(w1[w0 == 0] == 0)


def test_zeroed_and_removed_models_reconstruct_alike(pruned, digits):
    x_train, _, x, _ = digits
    smaller = reconstruct(pruned["module"], pruned["smaller"], pruned["removed"], x_train)
    a = run_module(pruned["rebuilt"], {"input": x})[0]
    b = run_module(smaller, {"input": x})[0]
    assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max()


def test_reconstruction_is_exact_when_nothing_is_removed(pruned, digits):
    module = pruned["module"]
    names = [node_name(op) for op in _layers(module)]
    same = reconstruct(module, module, {}, digits[0], layers=names)
    x = digits[2]
    assert np.array_equal(run_module(same, {"input": x})[0], run_module(module, {"input": x})[0])
    for before, after in zip(_layers(module), _layers(same)):
        assert np.array_equal(constant_array(before.operands[1]), constant_array(after.operands[1]))


def test_bn_reestimation_sets_the_measured_statistics(pruned, digits):
    x_train, _, x, y = digits
    zeroed = pruned["zeroed"]
    tuned = reestimate_bn(zeroed, x_train, samples=256)
    seen = {}

    def observe(op, outputs):  # the inputs of every batch norm, measured independently
        for user in op.results[0].users if op.results else ():
            if user.name == "graph.batch_norm" and user.operands[0] is op.results[0]:
                seen.setdefault(node_name(user), []).append(np.asarray(outputs[0], np.float64))

    run_module(tuned, {"input": x_train[:256]}, observe=observe)
    bns = [op for op in tuned.walk() if op.name == "graph.batch_norm"]
    old = {node_name(op): op for op in zeroed.walk() if op.name == "graph.batch_norm"}
    for bn in bns:
        name = node_name(bn)
        inputs = np.concatenate(seen[name])
        mean, var = inputs.mean(axis=(0, 2, 3)), inputs.var(axis=(0, 2, 3))
        live = var > 0
        assert np.allclose(constant_array(bn.operands[3])[live], mean[live], rtol=1e-4, atol=1e-5)
        assert np.allclose(constant_array(bn.operands[4])[live], var[live], rtol=1e-4, atol=1e-6)
        for i in (3, 4):  # a channel that sees a constant keeps its statistics
            assert np.array_equal(constant_array(bn.operands[i])[~live],
                                  constant_array(old[name].operands[i])[~live])
    assert accuracy(tuned, x, y) > accuracy(zeroed, x, y) + 0.3


def test_reconstruction_rejects_unknown_groups_and_channels(pruned, digits):
    module = pruned["module"]
    with pytest.raises(XirError, match="no channel group 'conv9'"):
        reconstruct(module, module, {"conv9": [0]}, digits[0])
    with pytest.raises(XirError, match="group 'conv2' has 32 channels; channel 40"):
        reconstruct(module, module, {"conv2": [40]}, digits[0])
    with pytest.raises(XirError, match="no convolution or dense layer 'bn1'"):
        reconstruct(module, module, {}, digits[0], layers=["bn1"])
    with pytest.raises(XirError, match="input 'input'"):
        reconstruct(module, module, {}, {"input": np.zeros((4, 3, 8, 8), np.float32)})


def _layers(module):
    return [op for op in module.walk() if op.name in ("graph.conv2d", "graph.gemm")]


# -- the fine-tune hook -----------------------------------------------------------------------------


def test_the_hook_gets_the_model_and_its_weights_come_back(pruned, digits):
    smaller = pruned["smaller"]
    shapes = {}

    def hook(model):
        weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        shapes.update({k: v.shape for k, v in weights.items()})
        return {"fc.bias": weights["fc.bias"] + 1.0, "conv2.weight": weights["conv2.weight"] * 2}

    tuned = finetune(smaller, hook)
    assert shapes["conv2.weight"][0] == smaller_channels(smaller, "conv2")
    x = digits[2][:16]
    fc = next(op for op in tuned.walk() if node_name(op) == "fc")
    assert np.allclose(constant_array(fc.operands[2]),
                       constant_array(next(op for op in smaller.walk()
                                           if node_name(op) == "fc").operands[2]) + 1.0)
    ours = run_module(tuned, {"input": x})[0]
    assert np.allclose(ours, ort_run(export_onnx(tuned), [x])[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(ours, run_module(smaller, {"input": x})[0])


def smaller_channels(module, layer: str) -> int:
    return next(op for op in module.walk() if node_name(op) == layer).results[0].type.shape[1]


def test_zeros_survive_the_hook(pruned):
    zeroed = pruned["zeroed"]

    def hook(model):
        return {i.name: np.ones(i.dims, np.float32) for i in model.graph.initializer
                if i.name == "conv2.weight"}

    tuned = finetune(zeroed, hook)
    conv2 = next(op for op in tuned.walk() if node_name(op) == "conv2")
    before = next(op for op in zeroed.walk() if node_name(op) == "conv2")
    w0, w1 = constant_array(before.operands[1]), constant_array(conv2.operands[1])
    assert np.array_equal(w1 == 0, w0 == 0) and np.all(w1[w0 != 0] == 1)


@pytest.mark.parametrize("hook, message", [
    (lambda m: {"conv9.weight": np.zeros(3)},
     "returned 'conv9.weight', which is not an initializer"),
    (lambda m: {"fc.bias": np.zeros(3)},
     r"returned 'fc.bias' of shape \(3,\); the model's is \(10,\)"),
    (lambda m: {"fc.bias": np.full(10, np.nan)}, "'fc.bias' with NaN"),
    (lambda m: [1, 2], "returned list, not a dict"),
    (lambda m: 1 / 0, "fine-tune hook failed: ZeroDivisionError"),
])
def test_bad_hooks_are_one_line_errors(pruned, hook, message):
    with pytest.raises(XirError, match=message) as info:
        finetune(pruned["smaller"], hook)
    assert "\n" not in str(info.value)


def test_the_worked_torch_hook_keeps_the_accuracy(pruned, digits):
    pytest.importorskip("torch")
    sys.path.insert(0, str(DIGITS))
    try:
        from finetune_hook import torch_hook
    finally:
        sys.path.remove(str(DIGITS))
    x_train, y_train, x, y = digits
    rebuilt = reconstruct(pruned["module"], pruned["smaller"], pruned["removed"], x_train)
    tuned = finetune(rebuilt, torch_hook(x_train, y_train))
    original, tuned_accuracy = accuracy(pruned["module"], x, y), accuracy(tuned, x, y)
    print(f"\ndigits_res at {MACS:.0%} MACs, reconstructed and fine-tuned: "
          f"{tuned_accuracy:.2%} "
          f"(original {original:.2%})")
    assert tuned_accuracy >= original - 0.003  # the bar with the fine-tune hook


# -- channel blocks and offsets -----------------------------------------------------------------


def _flatten_model():
    """conv → relu → conv → relu → flatten → Gemm, seeded random weights: the second conv's
    channels reach the dense layer as blocks of 16 features."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) / 3, name)

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "c1.w"], ["c1"], name="c1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
         helper.make_node("Conv", ["r1", "c2.w", "c2.b"], ["c2"], name="c2", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c2"], ["r2"], name="r2"),
         helper.make_node("Flatten", ["r2"], ["f"], name="f"),
         helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1)],
        "blocks", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [init("c1.w", 8, 3, 3, 3), init("c2.w", 8, 8, 3, 3), init("c2.b", 8),
         init("fc.w", 5, 128), init("fc.b", 5)])
    return import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_reconstruction_through_a_flatten():
    module = _flatten_model()
    x = np.random.default_rng(1).random((300, 3, 4, 4), dtype=np.float32)
    removed = {"c1": [0, 5], "c2": [1, 2, 6]}
    zeroed, smaller = zero_channels(module, removed), remove_channels(module, removed)
    rebuilt = reconstruct(module, zeroed, removed, x[:256])
    rebuilt_smaller = reconstruct(module, smaller, removed, x[:256])
    test = x[256:]
    reference = run_module(module, {"x": test})[0]

    def error(m):
        return np.linalg.norm(run_module(m, {"x": test})[0] - reference) / np.linalg.norm(reference)

    assert error(rebuilt) < 0.5 * error(zeroed)
    a, b = run_module(rebuilt, {"x": test})[0], run_module(rebuilt_smaller, {"x": test})[0]
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    assert constant_array(next(op for op in smaller.walk() if node_name(op) == "fc")
                          .operands[1]).shape == (5, 80)


@pytest.mark.slow
def test_reconstruction_through_concats_on_inception():
    """Light Inception v1 (random weights): every group pruned by 30 % (multiples of 16), its
    branches read by the next module's convolutions at their concat offsets."""
    from test_onnx_import import light_model

    loaded = light_model("inception_v1")
    if loaded is None:
        pytest.skip("the light Inception v1 is not installed")
    model, feeds = loaded
    module = import_onnx(model)
    (name, sample), = feeds.items()
    rng = np.random.default_rng(0)
    x = rng.random((9, *sample.shape[1:]), dtype=np.float32)
    removed = {g.name: [int(c) for c in np.argsort(channel_importance(module, g))[
        :int(g.channels * 0.3) // 16 * 16]] for g in find_groups(module) if g.prunable}
    zeroed = zero_channels(module, removed)
    rebuilt = reconstruct(module, remove_channels(module, removed), removed, {name: x[:8]})
    test = {name: x[8:]}
    reference = run_module(module, test)[0]

    def error(m):
        return np.linalg.norm(run_module(m, test)[0] - reference) / np.linalg.norm(reference)

    assert error(rebuilt) < 0.05 * error(zeroed)
