"""``xir prune`` (xir/tools/prune_cmd.py, prune_report.py): end to end on the trained residual
digits CNN, checked against onnxruntime on the file it writes; the JSON and HTML reports; sparse
mode; and every user mistake as one ``error:`` line with no output file left behind."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from test_cli import run
from test_quant_report_html import Page
from xir.frontends.onnx import import_onnx
from xir.passes.prune import model_macs, model_params
from xir.tools import main as xir_main

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
GRID = "0.25,0.5,0.75"  # a small sensitivity grid keeps the run short


def xir(*argv):
    """``xir`` in-process: (exit status, stdout, stderr)."""
    return run(list(map(str, argv)), tool=xir_main.main)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with the model (the sensitivity cache goes beside it), the test split as
    evaluation data with its labels, and training images as calibration data."""
    path = tmp_path_factory.mktemp("prune")
    shutil.copy(DIGITS / "digits_res.onnx", path / "res.onnx")
    digits = np.load(DIGITS / "digits.npz")
    np.savez(path / "test.npz", input=digits["x_test"] / np.float32(16))
    np.save(path / "labels.npy", digits["y_test"])
    np.savez(path / "calib.npz", input=digits["x_train"][:256] / np.float32(16))
    return path


def accuracy(path: Path, work: Path) -> float:
    """Top-1 accuracy of the ONNX model at ``path`` on the test split, by onnxruntime."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.load(work / "test.npz")["input"]
    logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    return float(np.mean(logits.argmax(1) == np.load(work / "labels.npy")))


@pytest.fixture(scope="module")
def pruned(work):
    """One run to half the MACs with a JSON report: (stdout, report)."""
    code, out, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                         work / "labels.npy", "--macs", "0.5", "-o", work / "res.pruned.onnx",
                         "--calib", work / "calib.npz", "--ratios", GRID, "--workers", "1",
                         "--report", work / "prune.json")
    assert code == 0, err
    return out, json.loads((work / "prune.json").read_text())


def test_prunes_to_the_mac_ratio_and_keeps_the_accuracy(work, pruned):
    out, report = pruned
    smaller = import_onnx(str(work / "res.pruned.onnx"))
    original = import_onnx(str(work / "res.onnx"))
    assert report["macs"]["before"] == model_macs(original)
    assert report["macs"]["after"] == model_macs(smaller) <= 0.5 * model_macs(original)
    assert report["params"] == {"before": model_params(original), "after": model_params(smaller),
                                "ratio": model_params(smaller) / model_params(original)}
    # the metrics are the evaluation's, measured here again with onnxruntime on the files
    assert report["metric"]["name"] == "accuracy"
    assert report["metric"]["before"] == pytest.approx(accuracy(work / "res.onnx", work))
    assert report["metric"]["after"] == pytest.approx(accuracy(work / "res.pruned.onnx", work))
    assert report["metric"]["after"] >= report["metric"]["before"] - 0.01  # reconstruction
    assert "channel groups" in out and "MACs" in out and "accuracy" in out
    assert f"{100 * report['metric']['after']:.2f} %" in out


def test_the_json_report(work, pruned):
    _, report = pruned
    assert {"model", "output", "groups", "sensitivity", "macs", "params", "metric", "layers",
            "recovery", "seconds", "divisor"} <= set(report)
    assert report["recovery"] == "reconstruct" and report["divisor"] == 16
    assert report["sensitivity"]["ratios"] == [0.25, 0.5, 0.75]
    smaller = onnx.load(str(work / "res.pruned.onnx"))
    weights = {init.name: init.dims for init in smaller.graph.initializer}
    convs = {node.name: node.input[1] for node in smaller.graph.node if node.op_type == "Conv"}
    for layer in report["layers"]:
        if layer["op"] == "conv2d":
            assert weights[convs[layer["name"]]][:2] == [layer["out_after"], layer["in_after"]]
    for group in report["groups"]:
        assert set(group) >= {"name", "channels_before", "channels_after", "ratio"}
        if group["prunable"]:
            assert group["channels_after"] % 16 == 0
            assert group["name"] in report["sensitivity"]["groups"]
            assert group["ratio"] == 1 - group["channels_after"] / group["channels_before"]
        else:
            assert group["channels_after"] == group["channels_before"] and group["reason"]
    assert any(g["ratio"] > 0 for g in report["groups"])
    assert (work / "res.sensitivity.json").exists()  # cached beside the model


def test_the_html_report_reuses_the_cache(work, pruned):
    cache = work / "res.sensitivity.json"
    stamp = cache.stat().st_mtime_ns
    code, _, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                       work / "labels.npy", "--macs", "0.5", "-o", work / "again.onnx",
                       "--calib", work / "calib.npz", "--ratios", GRID, "--workers", "1",
                       "--recover", "bn", "--report", work / "prune.html")
    assert code == 0, err
    assert cache.stat().st_mtime_ns == stamp
    html = (work / "prune.html").read_text()
    page = Page(html)
    text = "".join(page.text)
    assert html.startswith("<!DOCTYPE html>") and page.tags.count("svg") == 1
    assert "script" not in page.tags and "link" not in page.tags
    for name in pruned[1]["sensitivity"]["groups"]:
        assert name in text  # a line per group in the plot's legend, and a table row
    for layer in pruned[1]["layers"]:
        assert layer["name"] in text
    assert "MACs" in text and "accuracy" in text and "bn" in text


def test_sparse_mode_reports_the_sparsity(work):
    code, out, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                         work / "labels.npy", "--sparse", "2:4", "-o", work / "sparse.onnx",
                         "--report", work / "sparse.json")
    assert code == 0, err
    report = json.loads((work / "sparse.json").read_text())
    assert report["mode"] == "sparse" and report["sparsity"]["sparsity"] == 0.5
    model = onnx.load(str(work / "sparse.onnx"))
    conv2 = next(n for n in model.graph.node if n.name == "conv2")
    w = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer
                                        if i.name == conv2.input[1]))
    assert np.mean(w == 0) == 0.5
    assert report["macs"]["after"] == report["macs"]["before"]
    assert report["metric"]["after"] == pytest.approx(accuracy(work / "sparse.onnx", work))
    assert "gains no speed" in " ".join(out.split())
    code, _, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                       work / "labels.npy", "--sparse", "magnitude", "--sparsity", "0.3", "-o",
                       work / "sparse.onnx", "--report", work / "sparse.html")
    assert code == 0, err
    text = "".join(Page((work / "sparse.html").read_text()).text)
    assert "magnitude sparsity" in text and "30.0 %" in text and "gains no speed" in text


def test_recovery_on_the_evaluation_data_is_a_warning(work, pruned):
    """Without --calib, recovery fits on the data it is scored on: said once, on stderr."""
    code, _, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                       work / "labels.npy", "--macs", "0.5", "-o", work / "nocalib.onnx",
                       "--ratios", GRID, "--workers", "1", "--recover", "bn")
    assert code == 0
    assert err == (f"{work / 'res.onnx'}: warning: recovery fits on the evaluation data, so the "
                   f"metric after it is measured on the data it was fitted to: give --calib to "
                   f"keep them apart\n")


# -- user mistakes ----------------------------------------------------------------------------------


def failing(work, *extra, model=None, data=None, labels=True, output="out.onnx"):
    """Run a prune expected to fail; its stderr line, having checked nothing was written."""
    target = work / output
    argv = ["prune", model or work / "res.onnx", "--data", data or work / "test.npz",
            "-o", target, "--ratios", GRID, "--workers", "1", *extra]
    if labels:
        argv += ["--labels", work / "labels.npy"]
    code, out, err = xir(*argv)
    assert code == 1 and out == "" and not target.exists()
    assert len(err.splitlines()) == 1, err
    return err.rstrip("\n")


@pytest.mark.parametrize("ratio", ["1.5", "0", "-0.2", "half"])
def test_a_ratio_outside_0_1(work, ratio):
    assert failing(work, "--macs", ratio) == \
        f"xir prune: error: --macs must be in (0, 1], got {ratio}"


def test_data_without_labels(work):
    assert failing(work, "--macs", "0.5", labels=False) == \
        (f"xir prune: error: --data '{work / 'test.npz'}' has no labels: give --labels L.npy, "
         f"or --metric module:function")


def test_labels_of_the_wrong_length(work):
    np.save(work / "short.npy", np.zeros(10, np.int64))
    assert failing(work, "--macs", "0.5", "--labels", work / "short.npy", labels=False) == \
        "xir prune: error: the labels have 10 entries but the data has 540 samples"


@pytest.fixture
def metrics_module(tmp_path, monkeypatch):
    """A module of metrics importable from the working directory, as a user's would be."""
    yield from user_module(tmp_path, monkeypatch, "user_metrics",
                           "def explode(outputs, data):\n"
                           "    raise ValueError('no ground truth here')\n")


def user_module(tmp_path, monkeypatch, name: str, source: str):
    """Write ``source`` as module ``name`` in the working directory, importable as a user's
    module would be, for the duration of one test (a fixture's generator body)."""
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop(name, None)


def test_a_metric_that_raises(work, metrics_module):
    assert failing(work, "--macs", "0.5", "--metric", "user_metrics:explode", labels=False) == \
        ("xir prune: error: metric 'user_metrics:explode' raised ValueError: no ground truth "
         "here")


def test_a_metric_that_cannot_be_imported(work, metrics_module):
    assert failing(work, "--macs", "0.5", "--metric", "no_such_module:f", labels=False) == \
        ("xir prune: error: cannot load metric 'no_such_module:f': ModuleNotFoundError: No "
         "module named 'no_such_module'")
    assert failing(work, "--macs", "0.5", "--metric", "user_metrics:absent", labels=False) == \
        ("xir prune: error: cannot load metric 'user_metrics:absent': module 'user_metrics' "
         "has no function 'absent'")


def test_a_model_with_no_prunable_layer(work):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])
    w = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph([conv], "only_conv", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, work / "only_conv.onnx")
    np.savez(work / "conv_data.npz", x=np.ones((540, 3, 8, 8), np.float32))
    assert failing(work, "--macs", "0.5", model=work / "only_conv.onnx",
                   data=work / "conv_data.npz") == \
        (f"xir prune: error: '{work / 'only_conv.onnx'}' has no prunable layer (conv: feeds a "
         f"model output)")


def test_other_option_mistakes(work):
    assert failing(work, "--macs", "0.5", "--report", work / "r.txt") == \
        f"xir prune: error: --report: '{work / 'r.txt'}' should end in .json or .html"
    assert failing(work) == \
        "xir prune: error: --macs R is required: the share of MACs to keep, in (0, 1]"
    assert failing(work, "--macs", "0.5", "--sparse", "2:4") == \
        "xir prune: error: --sparse prunes single weights, not channels: leave out --macs"
    assert failing(work, "--macs", "0.5", "--report", work / "nowhere" / "r.json") == \
        f"xir prune: error: cannot write '{work / 'nowhere' / 'r.json'}': no such directory"


def test_iterations_checkpoint_every_step(work):
    steps = work / "steps"
    code, _, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                       work / "labels.npy", "--macs", "0.5", "-o", work / "it.onnx",
                       "--iterations", "2", "--checkpoints", steps, "--recover", "none",
                       "--ratios", GRID, "--workers", "1", "--report", work / "it.json")
    assert code == 0, err
    index = json.loads((steps / "index.json").read_text())
    assert [s["step"] for s in index["steps"]] == [0, 1, 2]
    report = json.loads((work / "it.json").read_text())
    assert report["iterations"] == 2 and report["sensitivity"]["ratios"] == [0.25, 0.5, 0.75]
    assert report["macs"]["after"] == model_macs(import_onnx(str(work / "it.onnx")))
    assert report["macs"]["after"] <= 0.5 * report["macs"]["before"]
    assert report["metric"]["after"] == pytest.approx(accuracy(work / "it.onnx", work))


@pytest.fixture
def hooks_module(tmp_path, monkeypatch):
    """Fine-tune hooks importable from the working directory: one halving the classifier's
    bias (the initializer names are the exported model's), one that raises."""
    yield from user_module(tmp_path, monkeypatch, "user_hooks",
                           "from onnx import numpy_helper\n"
                           "def halve(model):\n"
                           "    bias = next(i for i in model.graph.initializer "
                           "if i.name == 'fc.bias')\n"
                           "    return {'fc.bias': numpy_helper.to_array(bias) / 2}\n"
                           "def broken(model):\n"
                           "    raise RuntimeError('out of GPUs')\n")


def test_the_finetune_hook_gets_the_pruned_model(work, pruned, hooks_module):
    code, _, err = xir("prune", work / "res.onnx", "--data", work / "test.npz", "--labels",
                       work / "labels.npy", "--macs", "0.5", "-o", work / "hooked.onnx",
                       "--calib", work / "calib.npz", "--ratios", GRID, "--workers", "1",
                       "--finetune", "user_hooks:halve")
    assert code == 0, err

    def fc_bias(path):
        model = onnx.load(str(path))
        return onnx.numpy_helper.to_array(next(i for i in model.graph.initializer
                                               if i.name == "fc.bias"))

    np.testing.assert_allclose(fc_bias(work / "hooked.onnx"),
                               fc_bias(work / "res.pruned.onnx") / 2, rtol=1e-6)
    assert failing(work, "--macs", "0.5", "--calib", work / "calib.npz", "--finetune",
                   "user_hooks:broken") == \
        "xir prune: error: fine-tune hook failed: RuntimeError: out of GPUs"
    assert failing(work, "--macs", "0.5", "--finetune", "user_hooks:absent") == \
        ("xir prune: error: cannot load fine-tune hook 'user_hooks:absent': module "
         "'user_hooks' has no function 'absent'")
