"""Zeroing and removing channels (xir.passes.prune.transform): the zeroed model, run by the
reference interpreter, equals the physically pruned model exported to ONNX and run by
onnxruntime — to rtol 1e-5 and atol 1e-5 × the largest output (the zeroed model's sums carry
extra zero terms, so float summation order differs) — with identical argmax; MACs and parameters
after pruning against hand counts; the digits models and (slow) the light ResNet-50 and
Inception v1 at 30 %."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from test_onnx_import import light_model, ort_run
from test_prune_groups import (SMALL, concat_convs, depthwise_separable, flatten_dense,
                               residual_block, unprunable_model)

from xir.diagnostics import XirError
from xir.frontends.onnx import export_onnx, import_onnx
from xir.interpreter import run_module
from xir.passes.prune import (channel_importance, find_groups, model_macs, model_params,
                              remove_channels, zero_channels)
from xir.verifier import verify

RTOL = 1e-5
ATOL = 1e-5  # times the largest output


def compare(module, removed, feeds):
    """Zero and remove ``removed``; check the pruned model verifies, exports and equals the
    zeroed one; returns (pruned module, max abs difference, largest output)."""
    zeroed, pruned = zero_channels(module, removed), remove_channels(module, removed)
    verify(zeroed)
    verify(pruned)
    exported = export_onnx(pruned)
    onnx.checker.check_model(exported)
    expected = run_module(zeroed, feeds)
    got = ort_run(exported, feeds)
    worst, scale = 0.0, 0.0
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        scale = max(scale, float(np.abs(e).max()))
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL * float(np.abs(e).max()))
        if e.ndim == 2 and e.shape[1] > 1:
            assert (g.argmax(axis=1) == e.argmax(axis=1)).all()
        worst = max(worst, float(np.abs(g - e).max()))
    return pruned, worst, scale


def every_other(module) -> dict:
    return {g.name: list(range(1, g.channels, 2)) for g in find_groups(module) if g.prunable}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_zeroed_equals_removed_on_small_graphs(name):
    model, feeds = SMALL[name]()
    module = import_onnx(model)
    before = run_module(module, feeds)[0]
    removed = every_other(module)
    pruned, _, _ = compare(module, removed, feeds)
    np.testing.assert_array_equal(run_module(module, feeds)[0], before)  # the input is untouched
    kept = {g.name: g.channels - len(removed[g.name]) for g in find_groups(module) if g.prunable}
    assert {g.name: g.channels for g in find_groups(pruned) if g.name in kept} == kept
    # the zeroed model is not the original: the test compares something
    original, zeroed = run_module(module, feeds)[0], run_module(zero_channels(module, removed), feeds)[0]
    assert not np.allclose(original, zeroed, rtol=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_zeroed_equals_removed_for_random_choices(seed):
    rng = np.random.default_rng(seed)
    for name, build in sorted(SMALL.items()):
        model, feeds = build()
        module = import_onnx(model)
        removed = {g.name: rng.choice(g.channels, rng.integers(1, g.channels), replace=False)
                   for g in find_groups(module) if g.prunable and rng.random() < 0.7}
        compare(module, removed, feeds)


def test_zeroing_keeps_shapes_and_zeroes_the_sources():
    model, feeds = depthwise_separable()
    module = import_onnx(model)
    zeroed = zero_channels(module, {"pw0": [2, 5]})
    types = [tuple(r.type for r in op.results) for op in module.walk() if op.name != "graph.constant"]
    assert types == [tuple(r.type for r in op.results) for op in zeroed.walk()
                     if op.name != "graph.constant"]
    seen = {}
    run_module(zeroed, feeds, observe=lambda op, outs: seen.setdefault(op.location, outs[0]))
    for name in ("pw0", "bn0", "relu6", "dw", "bn1", "act"):  # f(0) = 0 all along
        [value] = [v for loc, v in seen.items() if f'"{name}"' in str(loc)]
        assert not value[:, [2, 5]].any(), name


def test_removal_at_concat_offsets_and_flatten_blocks():
    model, feeds = concat_convs()
    module = import_onnx(model)
    pruned, _, _ = compare(module, {"b": [0, 5], "c": [3]}, feeds)
    weights = {op.location: op.operands[1].type.shape for op in pruned.walk()
               if op.name in ("graph.conv2d", "graph.gemm")}
    assert sorted(weights.values()) == sorted([(4, 3, 1, 1), (4, 3, 3, 3), (4, 8, 1, 1), (3, 36)])


def test_macs_and_params_after_pruning_by_hand():
    module = import_onnx(residual_block()[0])
    pruned = remove_channels(module, {"stem": [0, 3, 7], "c1": [1, 2]})  # 8 -> 5, 6 -> 4
    assert model_macs(pruned) == 64 * (5 * 27 + 4 * 45 + 5 * 36 + 4 * 5) + 4 * 5
    assert model_params(pruned) == 5 * 27 + 4 * 45 + 5 * 36 + 4 * 5 + 25 + 2 * (5 + 4 + 5)
    module = import_onnx(concat_convs()[0])
    pruned = remove_channels(module, {"a": [0], "b": [1, 2], "c": [4]})  # 4+6 -> 3+4, 5 -> 4
    assert model_macs(pruned) == 36 * (3 * 3 + 4 * 27) + 9 * 4 * 7 + 3 * 4 * 9
    assert model_params(pruned) == 3 * 3 + 4 * 27 + 4 * 7 + 3 * 36
    module = import_onnx(depthwise_separable()[0])
    pruned = remove_channels(module, {"pw0": [0, 1, 2], "pw1": [0, 4, 8, 11]})  # 8 -> 5, 12 -> 8
    assert model_macs(pruned) == 36 * (5 * 2 + 5 * 9 + 8 * 5) + 8 * 4
    # pw0, bn0, dw weight and bias, bn1, prelu slopes, pw1, fc
    assert model_params(pruned) == 5 * 2 + 10 + 5 * 9 + 5 + 10 + 5 + 8 * 5 + 8 * 4
    module = import_onnx(flatten_dense()[0])
    pruned = remove_channels(module, {"conv": [1], "fc1": [0, 6]})  # 3 -> 2, 7 -> 5
    assert model_macs(pruned) == 16 * 2 * 18 + 32 * 5 + 5 * 2
    assert model_params(pruned) == 2 * 18 + 32 * 5 + 5 + 2 * 5


def test_bad_removals_are_clear_errors():
    module = import_onnx(unprunable_model()[0])
    with pytest.raises(XirError, match="group 'to_output' cannot be pruned: it feeds a model output"):
        remove_channels(module, {"to_output": [0]})
    with pytest.raises(XirError, match="reaches graph.reshape 'rs'"):
        zero_channels(module, {"to_reshape": [0]})
    with pytest.raises(XirError, match="group 'free' has 8 channels; channel 8 does not exist"):
        remove_channels(module, {"free": [1, 8]})
    with pytest.raises(XirError, match="removing all 8 channels of group 'free'"):
        remove_channels(module, {"free": range(8)})
    with pytest.raises(XirError, match="no channel group 'r'"):
        remove_channels(module, {"r": [0]})


def test_unprunable_model_still_prunes_its_free_group():
    model, feeds = unprunable_model()
    compare(import_onnx(model), {"free": [0, 2, 4]}, feeds)


def by_importance(module, fraction, divisor=1) -> dict:
    """The lowest-l1 channels of every prunable group, ``fraction`` of them, keeping a multiple
    of ``divisor`` channels (all of a group no larger than the divisor)."""
    removed = {}
    for group in find_groups(module):
        if not group.prunable or group.channels <= divisor:
            continue
        keep = max(divisor, divisor * round((1 - fraction) * group.channels / divisor))
        order = np.argsort(channel_importance(module, group, "l1"), kind="stable")
        if keep < group.channels:
            removed[group.name] = sorted(order[:group.channels - keep].tolist())
    return removed


@pytest.mark.parametrize("name", ["digits_cnn", "digits_dwsep"])
def test_digits_pruned_by_l1_equals_zeroed(name):
    data = np.load("examples/digits/digits.npz")
    feeds = {"input": data["x_test"].astype(np.float32) / 16}
    module = import_onnx(f"examples/digits/{name}.onnx")
    removed = by_importance(module, 1 / 3)
    pruned, worst, scale = compare(module, removed, feeds)
    assert worst <= ATOL * scale
    assert model_macs(pruned) < model_macs(module) and model_params(pruned) < model_params(module)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "inception_v1"])
def test_light_model_pruned_30_percent(name):
    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"light model {name} is not installed")
    model, feeds = loaded
    module = import_onnx(model)
    groups = find_groups(module)
    removed = by_importance(module, 0.3, divisor=16)
    pruned, worst, scale = compare(module, removed, feeds)
    after = {g.name: g.channels for g in find_groups(pruned)}
    for group in groups:
        if group.name in removed:
            assert after[group.name] % 16 == 0
            assert after[group.name] == group.channels - len(removed[group.name])
    print(f"{name}: {len(groups)} groups, {sum(g.prunable for g in groups)} prunable; MACs "
          f"{model_macs(module):,} -> {model_macs(pruned):,}; params {model_params(module):,} -> "
          f"{model_params(pruned):,}; max |zeroed - removed| {worst:.3g} (largest output "
          f"{scale:.4g})")
    assert model_macs(pruned) < 0.6 * model_macs(module)
