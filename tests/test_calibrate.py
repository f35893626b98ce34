"""Fix-point selection (non-overflow, diffs with the per-batch vote, percentile) and calibration
over a real model: statistics, batching and the checks on calibration data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from test_onnx_import import Graph
from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.passes import fixpoint
from xir.passes.calibrate import SAMPLE_SIZE, calibrate, calibration_batches
from xir.passes.inspect import main_function


@pytest.mark.parametrize("low, high, fp", [
    (-1.0, 1.0, 6),              # step = max(1/128.5, 1/127.5) = 1/127.5: log2(127.5) = 6.99
    (-1.0, 127 / 128, 7),        # exactly the int8 grid at 2^-7: step = 1/128.5
    (0.0, 0.5, 7),               # step = 0.5/127.5: log2(255) = 7.99
    (0.0, 300.0, -2),            # step = 300/127.5 = 2.35: log2(0.425) = -1.23
    (-1e-3, 0.0, 16),            # step = 1e-3/128.5: log2(128500) = 16.97
    (0.0, 0.0, fixpoint.EMPTY_FP),
])
def test_nonoverflow(low, high, fp):
    assert fixpoint.nonoverflow_fp(low, high) == fp


def test_fake_quantize_rounds_ties_as_the_dpu_and_the_weights_do():
    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]) / 4  # fp 2: q = x * 4
    assert (fixpoint.fake_quantize(ties, 2) * 4).tolist() == [-2, -1, 0, 1, 2, 3]  # half up
    assert (fixpoint.fake_quantize(ties, 2, half_up=False) * 4).tolist() == [-3, -2, -1, 1, 2, 3]
    assert (fixpoint.fake_quantize(np.array([1000.0, -1000.0]), 0)).tolist() == [127, -128]


def test_diffs_clips_a_lone_outlier_when_that_costs_less():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 10000).astype(np.float32)
    # [-1, 1] does not fit fp 7 (which ends at 127/128), but clipping there costs less than the
    # rounding error of fp 6 on 10,000 values
    assert (fixpoint.nonoverflow_fp(x.min(), x.max()), fixpoint.diffs_fp(x)) == (6, 7)
    x[0] = 2.2  # non-overflow drops to fp 5; clipping this one value to 127/64 costs less
    assert (fixpoint.nonoverflow_fp(x.min(), x.max()), fixpoint.diffs_fp(x)) == (5, 6)
    errors = {fp: float(np.sum((x - fixpoint.fake_quantize(x, fp)) ** 2)) for fp in range(5, 10)}
    assert min(errors, key=errors.get) == 6


def test_percentile_ignores_the_tail():
    x = np.concatenate([np.linspace(-1, 1, 100000), [50.0]])
    assert fixpoint.nonoverflow_fp(x.min(), x.max()) == 1
    assert fixpoint.percentile_fp(x, 99.9) == 6


def test_the_vote_elects_the_most_frequent_and_breaks_ties_low():
    votes = fixpoint.Votes()
    assert votes.winner() is None
    for fp in (5, 6, 6, 5, 7):
        votes.add(fp)
    assert votes.winner() == 5


def _model(batch="N"):
    g = Graph(4)
    y = g.node("Conv", ["x", g.weight((4, 2, 3, 3))], name="conv1", pads=[1, 1, 1, 1])
    y = g.node("Relu", [y], name="relu1")
    model = g.model({"x": [batch, 2, 6, 6]}, [y])
    return main_function(import_onnx(model))


def test_calibration_sees_every_tensor_over_all_batches():
    func = _model()
    data = {"x": np.random.default_rng(1).standard_normal((130, 2, 6, 6)).astype(np.float32)}
    data["x"][77, 0, 0, 0] = 9.0  # the extreme sits in the third batch of 32
    cal = calibrate(func, data, batch_size=32)
    assert cal.samples == 130
    x_stats = cal.stats_of(func.regions[0].blocks[0].args[0])
    assert (x_stats.low, x_stats.high) == (float(data["x"].min()), 9.0)
    assert sum(x_stats.votes.counts.values()) == 5  # 32, 32, 32, 32, 2
    assert x_stats.sample.size == min(SAMPLE_SIZE, data["x"].size)
    assert x_stats.fix_point("nonoverflow") == fixpoint.nonoverflow_fp(x_stats.low, 9.0)
    relu = [op for op in func.walk() if op.name == "graph.relu"][0]
    assert cal.stats_of(relu.results[0]).low == 0.0


def test_a_static_batch_runs_one_sample_at_a_time():
    func = _model(batch=1)
    with pytest.warns(UserWarning, match="only 3 samples"):
        batches, count = calibration_batches(func, {"x": np.zeros((3, 2, 6, 6), np.float32)}, 32)
    assert count == 3 and [b["x"].shape[0] for b in batches] == [1, 1, 1]


@pytest.mark.parametrize("data, message", [
    ({"y": np.zeros((4, 2, 6, 6))}, "calibration data has no input 'x' (it holds: y)"),
    ({"x": np.zeros((4, 3, 6, 6))},
     "calibration data: input 'x' has shape (4, 3, 6, 6); expected (samples, 2, 6, 6)"),
    ({"x": np.full((4, 2, 6, 6), np.nan)},
     "calibration data: input 'x' holds 288 NaN or infinite values"),
])
def test_bad_calibration_data_is_one_clear_error(data, message):
    with pytest.raises(XirError) as info:
        calibration_batches(_model(), data, 32)
    assert str(info.value) == f"error: {message}"


def test_too_few_samples_is_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calibration_batches(_model(), {"x": np.zeros((10, 2, 6, 6), np.float32)}, 32)
    assert [str(w.message) for w in caught] == [
        "calibration data holds only 10 samples; 100 or more give stabler fix points"]
