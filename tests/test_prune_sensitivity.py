"""Sensitivity analysis (xir.passes.prune.sensitivity): the table, its cache, the evaluator, and
running groups on worker processes or Ray.

References are independent of the code under test: the metric of a model with a group's channels
zeroed is recomputed by zeroing the consumers' input-channel weights in the ONNX graph and
running onnxruntime on it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.passes.prune.groups import find_groups
from xir.passes.prune.sensitivity import (SensitivityTable, cache_path, onnx_evaluator,
                                          sensitivity_table)

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"
RATIOS = (0.25, 0.5, 0.75)


def digits_data() -> tuple[dict, np.ndarray]:
    data = np.load(DIGITS / "digits.npz")
    return {"input": data["x_test"].astype(np.float32) / 16}, data["y_test"]


def ort_outputs(model: onnx.ModelProto, feeds: dict) -> list:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def with_consumer_inputs_zeroed(model: onnx.ModelProto, weights: dict) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers ``weights`` (name -> input-channel indices) have
    those input channels (axis 1) zeroed: the channels then contribute nothing downstream."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for init in model.graph.initializer:
        if init.name in weights:
            array = numpy_helper.to_array(init).copy()
            array[:, list(weights[init.name])] = 0
            init.CopyFrom(numpy_helper.from_array(array, init.name))
    return model


@pytest.fixture(scope="module")
def digits():
    model = onnx.load(DIGITS / "digits_cnn.onnx")
    data, labels = digits_data()
    return model, import_onnx(model), data, labels


class Counting:
    """An evaluator that counts its calls (in this process) and delegates."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.cache_key = inner.name, inner.cache_key

    def __call__(self, module) -> float:
        self.calls += 1
        return self.inner(module)


def raising_metric(outputs, data):
    raise ValueError("no good\nat all")


def fragile_accuracy(outputs, data):
    """Top-1 accuracy that refuses to score a model below 99 %: fails only on pruned models."""
    accuracy = float(np.mean(outputs[0].argmax(1) == data["labels"]))
    if accuracy < 0.99:
        raise RuntimeError(f"accuracy {accuracy:.2f} is too low")
    return accuracy


def negative_mse(outputs, data):
    """A user metric: minus the mean squared distance to the data's ``target``."""
    return -float(np.mean((outputs[0] - data["target"]) ** 2))


# -- the evaluator -----------------------------------------------------------------------------------


def test_onnx_evaluator_accuracy_matches_onnxruntime(digits):
    model, module, data, labels = digits
    logits = ort_outputs(model, data)[0]
    assert onnx_evaluator(data, labels)(module) == np.mean(logits.argmax(1) == labels)


def test_evaluator_errors(digits, tmp_path):
    _, module, data, labels = digits
    with pytest.raises(XirError, match="no labels"):
        onnx_evaluator(data)
    evaluate = onnx_evaluator(data, metric="test_prune_sensitivity:raising_metric")
    with pytest.raises(XirError) as info:
        evaluate(module)
    assert info.value.diagnostic.message == (
        "metric 'test_prune_sensitivity:raising_metric' raised ValueError: no good at all")
    with pytest.raises(XirError, match="cannot load metric 'no_such_module_xyz:f'"):
        onnx_evaluator(data, metric="no_such_module_xyz:f")
    with pytest.raises(XirError, match="has no function 'nope'"):
        onnx_evaluator(data, metric="test_prune_sensitivity:nope")
    with pytest.raises(XirError, match="labels have 3 entries but the data has 540"):
        onnx_evaluator(data, labels[:3])(module)
    with pytest.raises(XirError, match="no array 'input'"):
        onnx_evaluator({"a": data["input"], "b": data["input"]}, labels)(module)
    with pytest.raises(XirError, match="cannot read labels"):
        onnx_evaluator(data, tmp_path / "missing.npy")


def test_evaluator_reads_files(digits, tmp_path):
    _, module, data, labels = digits
    np.savez(tmp_path / "eval.npz", **data)
    np.save(tmp_path / "labels.npy", labels)
    from_files = onnx_evaluator(tmp_path / "eval.npz", tmp_path / "labels.npy")
    assert from_files(module) == onnx_evaluator(data, labels)(module)
    assert from_files.cache_key == onnx_evaluator(data, labels).cache_key


# -- the table ---------------------------------------------------------------------------------------


def test_digits_table_matches_zeroed_onnx(digits):
    model, module, data, labels = digits
    groups = find_groups(module)
    table = sensitivity_table(module, groups, onnx_evaluator(data, labels), RATIOS, workers=1,
                              progress=False)
    prunable = [g.name for g in groups if g.prunable]
    assert sorted(table.metrics) == sorted(prunable) and table.ratios == RATIOS
    assert all(len(m) == len(RATIOS) for m in table.metrics.values())
    assert table.baseline == np.mean(ort_outputs(model, data)[0].argmax(1) == labels)
    # consumer weights in the ONNX graph: conv1 -> conv2, conv2 -> conv3, conv3 -> fc
    consumer = {"conv1": "conv2.weight", "conv2": "conv3.weight", "conv3": "fc.weight"}
    for name in prunable:
        assert sorted(table.order[name]) == list(range(table.channels[name]))
        for ratio, metric in zip(RATIOS, table.metrics[name]):
            removed = table.order[name][:round(ratio * table.channels[name])]
            zeroed = with_consumer_inputs_zeroed(model, {consumer[name]: removed})
            logits = ort_outputs(zeroed, data)[0]
            assert metric == pytest.approx(np.mean(logits.argmax(1) == labels), abs=1 / 540)
        # monotone-ish: pruning most of a group hurts more than pruning a quarter
        assert table.metrics[name][-1] <= table.metrics[name][0] + 1e-9
        assert table.metrics[name][-1] < table.baseline


def small_model(rng) -> onnx.ModelProto:
    """conv(3->8) relu conv(8->4) relu: the first conv's 8 channels are one prunable group."""
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w1 *= np.linspace(0.1, 2, 8, dtype=np.float32)[:, None, None, None]  # distinct importances
    w2 = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
         helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
         helper.make_node("Relu", ["c2"], ["y"], name="relu2")],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_user_metric_on_a_small_graph():
    rng = np.random.default_rng(0)
    model = small_model(rng)
    x = rng.standard_normal((16, 3, 6, 6)).astype(np.float32)
    data = {"x": x, "target": ort_outputs(model, {"x": x})[0]}
    module = import_onnx(model)
    groups = find_groups(module)
    assert [g.name for g in groups if g.prunable] == ["conv1"]
    table = sensitivity_table(module, groups,
                              onnx_evaluator(data, metric="test_prune_sensitivity:negative_mse"),
                              RATIOS, workers=1, progress=False)
    assert table.metric == "test_prune_sensitivity:negative_mse"
    assert table.baseline == pytest.approx(0, abs=1e-10)
    # L1 importance: the channels scaled up most are the most important
    assert list(table.order["conv1"][:2]) == [0, 1]
    for ratio, metric in zip(RATIOS, table.metrics["conv1"]):
        removed = table.order["conv1"][:round(ratio * 8)]
        y = ort_outputs(with_consumer_inputs_zeroed(model, {"w2": removed}), {"x": x})[0]
        assert metric == pytest.approx(negative_mse([y], data), rel=1e-4, abs=1e-6)
    assert list(table.metrics["conv1"]) == sorted(table.metrics["conv1"], reverse=True)


def test_no_prunable_layer():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    module = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    groups = find_groups(module)
    with pytest.raises(XirError, match="^error: 'one.onnx' has no prunable layer$"):
        sensitivity_table(module, groups, lambda m: 1.0, progress=False, model_path="one.onnx")


def test_bad_ratio_grid(digits):
    _, module, data, labels = digits
    for grid in [(0.5, 1.0), (0.0, 0.5), (0.5, 0.2), ()]:
        with pytest.raises(XirError, match="ratios must increase strictly within"):
            sensitivity_table(module, find_groups(module), lambda m: 1.0, grid, progress=False)


def test_json_round_trip(digits):
    _, module, data, labels = digits
    table = sensitivity_table(module, find_groups(module), onnx_evaluator(data, labels), (0.5,),
                              workers=1, progress=False)
    again = SensitivityTable.from_json(json.loads(json.dumps(table.to_json())))
    assert again == table


# -- the cache ---------------------------------------------------------------------------------------


def test_cache_reused_and_invalidated(digits, tmp_path):
    model, module, data, labels = digits
    path = tmp_path / "digits_cnn.onnx"
    shutil.copy(DIGITS / "digits_cnn.onnx", path)
    groups = find_groups(module)

    def table(module, evaluate, ratios=RATIOS, criterion="l1"):
        return sensitivity_table(module, find_groups(module), evaluate, ratios, criterion,
                                 workers=1, progress=False, model_path=path)

    first = Counting(onnx_evaluator(data, labels))
    computed = table(module, first)
    assert first.calls == 1 + len(RATIOS) * len(computed.metrics)
    assert cache_path(path) == tmp_path / "digits_cnn.sensitivity.json"
    assert cache_path(path).exists()

    second = Counting(onnx_evaluator(data, labels))
    # a hit, for the model imported again: nothing evaluated
    assert table(import_onnx(str(path)), second) == computed and second.calls == 0

    # a changed model (one weight), other data, another grid or criterion: recomputed
    changed = with_consumer_inputs_zeroed(model, {"conv2.weight": [0]})
    for args in [(import_onnx(changed), Counting(onnx_evaluator(data, labels))),
                 (module, Counting(onnx_evaluator({"input": data["input"][:100]}, labels[:100]))),
                 (module, Counting(onnx_evaluator(data, labels)), (0.5,)),
                 (module, Counting(onnx_evaluator(data, labels)), RATIOS, "l2")]:
        table(*args)
        assert args[1].calls > 0
    # a corrupt cache file is recomputed, not an error
    cache_path(path).write_text("{not json")
    third = Counting(onnx_evaluator(data, labels))
    assert table(module, third) == computed and third.calls > 0
    assert groups  # the groups of the original are unchanged by all this


# -- running in parallel -----------------------------------------------------------------------------


def test_processes_equal_serial(digits):
    _, module, data, labels = digits
    groups = find_groups(module)
    evaluate = onnx_evaluator(data, labels)
    serial = sensitivity_table(module, groups, evaluate, RATIOS, workers=1, progress=False)
    parallel = sensitivity_table(module, groups, evaluate, RATIOS, workers=2, progress=False)
    assert parallel == serial


def test_unpicklable_evaluator_runs_in_this_process(digits):
    _, module, data, labels = digits
    groups = find_groups(module)
    evaluate = onnx_evaluator(data, labels)
    serial = sensitivity_table(module, groups, evaluate, (0.5,), workers=1, progress=False)
    with pytest.warns(UserWarning, match="does not pickle.*evaluating in this process"):
        local = sensitivity_table(module, groups, lambda m: evaluate(m), (0.5,), workers=2,
                                  progress=False)
    assert local.metrics == serial.metrics and local.baseline == serial.baseline


def test_metric_error_from_a_worker_process(digits):
    _, module, data, labels = digits
    evaluate = onnx_evaluator({**data, "labels": labels},
                              metric="test_prune_sensitivity:fragile_accuracy")
    assert evaluate(module) > 0.99
    with pytest.raises(XirError, match=r"^error: metric 'test_prune_sensitivity:fragile_accuracy' "
                                       r"raised RuntimeError: accuracy 0\.\d\d is too low$"):
        sensitivity_table(module, find_groups(module), evaluate, RATIOS, workers=2,
                          progress=False)


def test_ray_missing(digits, monkeypatch):
    _, module, data, labels = digits
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    message = r"^error: --ray needs the ray package: pip install 'xir\[ray\]'$"
    with pytest.raises(XirError, match=message):
        sensitivity_table(module, find_groups(module), onnx_evaluator(data, labels), RATIOS,
                          ray_address="auto", progress=False)


def test_an_unreachable_ray_cluster_is_one_error_line(digits):
    """No minutes of Ray's own retries: a port nobody listens on is refused at once."""
    pytest.importorskip("ray")
    import socket

    _, module, data, labels = digits
    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(XirError, match=rf"^error: cannot connect to the Ray cluster at "
                                       rf"'127\.0\.0\.1:{port}': connection refused$"):
        sensitivity_table(module, find_groups(module), onnx_evaluator(data, labels), RATIOS,
                          ray_address=f"127.0.0.1:{port}", progress=False)


@pytest.mark.slow
def test_ray_equals_serial(digits):
    ray = pytest.importorskip("ray")
    _, module, data, labels = digits
    groups = find_groups(module)
    evaluate = onnx_evaluator(data, labels)
    serial = sensitivity_table(module, groups, evaluate, RATIOS, workers=1, progress=False)
    context = ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                       log_to_driver=False)
    try:
        on_ray = sensitivity_table(module, groups, evaluate, RATIOS, progress=False,
                                   ray_address=context.address_info["address"])
    finally:
        ray.shutdown()
    assert on_ray == serial
