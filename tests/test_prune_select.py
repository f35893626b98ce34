"""Choosing channels to prune from a sensitivity table (xir.passes.prune.select), and the iterative
mode with its checkpoints (xir.passes.prune.iterate).

The selection logic is tested on hand-made tables and groups (its MAC estimate against the groups'
own counts, its metric estimate against the table); on the digits CNN, the MACs of the chosen
pruning are checked against a count made independently from the exported ONNX graph.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest

from xir.diagnostics import XirError
from xir.passes.prune.select import allowed_counts, choose_ratios, default_divisor
from xir.passes.prune.sensitivity import SensitivityTable

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"


@attrs.frozen
class FakeGroup:
    """The fields of a ChannelGroup that selection reads."""

    name: str
    channels: int
    macs: int
    prunable: bool = True
    producers: tuple = ()
    consumers: tuple = ()
    reason: str = ""


RATIOS = (0.25, 0.5, 0.75)


def make_table(curves: dict, channels: dict, macs: int, baseline: float = 1.0) -> SensitivityTable:
    """A table whose group ``g`` has metrics ``curves[g]`` at RATIOS, channels in index order."""
    return SensitivityTable(ratios=RATIOS, baseline=baseline,
                            metrics={g: tuple(c) for g, c in curves.items()},
                            channels=dict(channels),
                            order={g: tuple(range(n)) for g, n in channels.items()},
                            criterion="l1", metric="accuracy", macs=macs)


def kept_macs(groups, removed, total) -> float:
    """The linear MAC count selection promises: each group's MACs scale with its channels."""
    return total - sum(g.macs * len(removed.get(g.name, ())) / g.channels for g in groups)


def test_allowed_counts():
    assert allowed_counts(64, 16) == [64, 48, 32, 16]
    assert allowed_counts(40, 16) == [40, 32, 16]
    assert allowed_counts(16, 16) == [16]
    assert allowed_counts(8, 16) == [8]


def test_default_divisor_is_the_targets_channel_parallelism():
    from xir.backend.targets import load_target

    assert default_divisor("DPUCZDX8G_ISA1_B4096") == 16
    b1024 = load_target("DPUCZDX8G_ISA1_B1024")
    assert default_divisor(b1024) == b1024.conv.output_channel_parallel


def test_macs_target_and_divisor():
    groups = [FakeGroup("a", 64, 400), FakeGroup("b", 64, 400), FakeGroup("c", 8, 100)]
    table = make_table({"a": (1.0, 0.99, 0.9), "b": (0.9, 0.7, 0.5), "c": (0.5, 0.2, 0.1)},
                       {"a": 64, "b": 64, "c": 8}, macs=1000)
    removed = choose_ratios(table, groups, macs_ratio=0.7, divisor=16)
    assert kept_macs(groups, removed, 1000) <= 700
    assert "c" not in removed                      # smaller than the divisor: left alone
    for g in groups:
        kept = g.channels - len(removed.get(g.name, ()))
        assert kept % 16 == 0 or kept == g.channels
        assert kept >= 16 or kept == g.channels
    # the insensitive group goes first: 'a' loses 32 channels (200 MACs) before 'b' loses any
    assert len(removed["a"]) >= len(removed.get("b", ()))
    assert removed["a"] == list(range(len(removed["a"])))  # the least important by the table


def test_greedy_prefers_least_loss_per_mac():
    # same loss curve, but 'big' removes 4x the MACs per channel: it goes first
    groups = [FakeGroup("small", 32, 100), FakeGroup("big", 32, 400)]
    curve = (0.95, 0.9, 0.8)
    table = make_table({"small": curve, "big": curve}, {"small": 32, "big": 32}, macs=500)
    removed = choose_ratios(table, groups, macs_ratio=0.6, divisor=16)
    assert list(removed) == ["big"] and len(removed["big"]) == 16


def test_metric_floor():
    groups = [FakeGroup("a", 64, 500), FakeGroup("b", 64, 500)]
    table = make_table({"a": (0.99, 0.97, 0.9), "b": (0.96, 0.9, 0.8)},
                       {"a": 64, "b": 64}, macs=1000)
    removed = choose_ratios(table, groups, metric_floor=0.96, divisor=16)
    estimate = 1.0 + sum(table.metric_at(g, len(r) / 64) - 1.0 for g, r in removed.items())
    assert estimate >= 0.96
    assert removed  # something was prunable within the floor
    # one more step of any group would cross the floor
    for g in ("a", "b"):
        more = len(removed.get(g, ())) + 16
        if more < 64:
            assert estimate + table.metric_at(g, more / 64) - table.metric_at(
                g, len(removed.get(g, ())) / 64) < 0.96
    # with a MAC target too, the floor stops first
    both = choose_ratios(table, groups, macs_ratio=0.1, metric_floor=0.96, divisor=16)
    assert both == removed


def test_ratio_one_prunes_nothing_and_metric_at_interpolates():
    groups = [FakeGroup("a", 32, 100)]
    table = make_table({"a": (0.9, 0.8, 0.5)}, {"a": 32}, macs=100)
    assert choose_ratios(table, groups, macs_ratio=1.0, divisor=16) == {}
    assert table.metric_at("a", 0.0) == 1.0
    assert table.metric_at("a", 0.125) == pytest.approx(0.95)
    assert table.metric_at("a", 0.875) == pytest.approx(0.35)  # extrapolated, last slope


@pytest.mark.parametrize("ratio", [0, -0.5, 1.5, "half"])
def test_bad_macs_ratio(ratio):
    groups = [FakeGroup("a", 32, 100)]
    table = make_table({"a": (0.9, 0.8, 0.5)}, {"a": 32}, macs=100)
    with pytest.raises(XirError, match=r"MAC ratio must be .*\(0, 1\]") as info:
        choose_ratios(table, groups, macs_ratio=ratio)
    assert "\n" not in str(info.value)


def test_no_prunable_layer_and_unreachable_target():
    groups = [FakeGroup("a", 32, 100, prunable=False, reason="feeds a model output")]
    table = make_table({}, {}, macs=100)
    with pytest.raises(XirError, match="has no prunable layer"):
        choose_ratios(table, groups, macs_ratio=0.5)
    groups = [FakeGroup("a", 32, 50)]
    table = make_table({"a": (0.9, 0.8, 0.5)}, {"a": 32}, macs=100)
    with pytest.raises(XirError, match="cannot prune to MAC ratio 0.5: .* multiples of 16"):
        choose_ratios(table, groups, macs_ratio=0.5, divisor=16)
    with pytest.raises(XirError, match="MAC ratio or a metric floor"):
        choose_ratios(table, groups)


# -- on the digits CNN -------------------------------------------------------------------------------


def onnx_macs(model) -> int:
    """MACs of the Conv and Gemm nodes of an ONNX model at batch 1, from ONNX's own shape
    inference: an independent count."""
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            out = shapes[node.output[0]]
            w = weights[node.input[1]]
            per_output = int(np.prod(w[1:])) if node.op_type == "Conv" else \
                (w[1] if any(a.name == "transB" and a.i for a in node.attribute) else w[0])
            total += int(np.prod(out)) * per_output
    return total


def conv_channels(model) -> dict:
    """Output channels of each Conv/Gemm of an ONNX model, by node name."""
    from onnx import numpy_helper

    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    return {n.name: weights[n.input[1]][0] for n in model.graph.node if n.op_type in ("Conv", "Gemm")}


@pytest.fixture(scope="module")
def digits():
    from xir.frontends.onnx import import_onnx
    from xir.passes.prune.sensitivity import onnx_evaluator

    data = np.load(DIGITS / "digits.npz")
    evaluate = onnx_evaluator({"input": data["x_test"].astype(np.float32) / 16}, data["y_test"])
    return import_onnx(str(DIGITS / "digits_cnn.onnx")), evaluate


@pytest.mark.parametrize("macs_ratio,divisor", [(0.5, 8), (0.7, 8), (0.5, 16), (0.3, 4)])
def test_digits_selection_meets_target(digits, macs_ratio, divisor):
    from xir.frontends.onnx import export_onnx
    from xir.passes.prune import find_groups, remove_channels
    from xir.passes.prune.sensitivity import sensitivity_table

    module, evaluate = digits
    groups = find_groups(module)
    table = sensitivity_table(module, groups, evaluate, (0.25, 0.5, 0.75), workers=1,
                              progress=False)
    removed = choose_ratios(table, groups, macs_ratio=macs_ratio, divisor=divisor, module=module)
    original, pruned = export_onnx(module), export_onnx(remove_channels(module, removed))
    assert onnx_macs(pruned) <= macs_ratio * onnx_macs(original)
    before, after = conv_channels(original), conv_channels(pruned)
    for name, channels in after.items():
        assert channels == before[name] or (channels % divisor == 0 and channels >= divisor)
    assert after != before


def test_table_mac_model_is_exact(digits):
    from xir.frontends.onnx import export_onnx
    from xir.passes.prune import find_groups, remove_channels
    from xir.passes.prune.sensitivity import sensitivity_table

    module, evaluate = digits
    groups = find_groups(module)
    table = sensitivity_table(module, groups, evaluate, (0.5,), workers=1, progress=False)
    rng = np.random.default_rng(0)
    for _ in range(5):
        kept = {name: int(rng.integers(1, n + 1)) for name, n in table.channels.items()}
        removed = {name: table.removed(name, k) for name, k in kept.items()}
        pruned = export_onnx(remove_channels(module, removed))
        assert table.kept_macs(kept) == pytest.approx(onnx_macs(pruned))


# -- iterative mode ----------------------------------------------------------------------------------


def test_iterative_pruning_and_backtracking(digits, tmp_path):
    from xir.frontends.onnx import export_onnx
    from xir.passes.prune.iterate import backtrack, prune_iteratively, read_index

    module, evaluate = digits
    calls = []

    def recover(pruned, before, removed):
        calls.append(sorted(removed))
        return pruned

    final = prune_iteratively(module, evaluate, 0.5, 2, tmp_path / "steps", ratios=(0.5,),
                              divisor=8, workers=1, progress=False, recover=recover)
    index = read_index(tmp_path / "steps")
    steps = index["steps"]
    assert [s["step"] for s in steps] == [0, 1, 2] and len(calls) == 2
    original = onnx_macs(export_onnx(module))
    assert steps[0]["macs"] == original
    assert steps[0]["macs"] > steps[1]["macs"] > steps[2]["macs"]
    assert steps[1]["macs"] <= original * 0.5 ** 0.5
    assert onnx_macs(export_onnx(final)) == steps[2]["macs"] <= 0.5 * original
    for s in steps:
        assert (tmp_path / "steps" / s["file"]).exists()
        model = backtrack(tmp_path / "steps", s["step"])
        assert onnx_macs(export_onnx(model)) == s["macs"]
        assert evaluate(model) == s["metric"]
    assert (tmp_path / "steps" / "step_0.sensitivity.json").exists()
    with pytest.raises(XirError, match="has no pruning step 7 .steps: 0, 1, 2."):
        backtrack(tmp_path / "steps", 7)
    with pytest.raises(XirError, match="holds no pruning checkpoints"):
        backtrack(tmp_path, 0)


def test_iterative_errors(digits, tmp_path):
    from xir.passes.prune.iterate import prune_iteratively

    module, evaluate = digits
    with pytest.raises(XirError, match=r"MAC ratio must be in \(0, 1\], got 1.5"):
        prune_iteratively(module, evaluate, 1.5, 2, tmp_path)
    with pytest.raises(XirError, match="iterations must be a positive integer, got 0"):
        prune_iteratively(module, evaluate, 0.5, 0, tmp_path)
