"""Channel pruning, measured (issue 8): recovery on a trained residual CNN, the exact transform on
light ResNet-50 and Inception v1, the pruned ResNet-50 compiled and its cycles, and ``xir
prune``'s errors on bad input.

    python bench/prune.py            # one run, under half a minute (two ResNet-50 compiles)

(a) ``examples/digits/digits_res.onnx`` (99.63 % on the digits test split, images / 16): the
    sensitivity table on the test split (the evaluation data ``xir prune --data`` gets),
    ``choose_ratios`` for half the MACs with channel counts multiples of 16, the channels
    removed; then the test accuracy without recovery, with BN re-estimation, with least-squares
    reconstruction (calibrated on the training split) and with reconstruction and the PyTorch
    fine-tune hook of examples/digits/finetune_hook.py (5 epochs on the training split). Bars:
    reconstruction within 1 point of the original, the fine-tune hook within 0.3.
(b) The light ResNet-50 and Inception v1 of the onnx package (seeded random weights), 30 % of
    the channels of every prunable group removed by L1 norm (a count, not a MAC ratio: random
    weights make a sensitivity table meaningless), kept counts rounded to multiples of 16
    (``by_importance`` of tests/test_prune_transform.py). Bars: the exported model passes the
    ONNX checker, onnxruntime gives the zeroed model's outputs (rtol 1e-5, atol 1e-5 × the
    largest output) with the same argmax, every pruned group keeps a multiple of 16 channels.
(c) The pruned ResNet-50 and the original compiled for DPUCZDX8G_ISA1_B4096 (``compile_for`` of
    bench/cycles.py: 2 random calibration samples, CLE and bias correction off) and profiled at
    281 MHz. Bar: the pruned model's cycles drop, by at least half the share of MACs removed.
(d) ``xir prune`` in-process on bad input, each error line as printed. Bar: one line starting
    ``xir prune: error:``, exit status 1, no output file.

PASS or FAIL per bar; the exit status is 1 when one fails.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "bench"),
                str(REPO_ROOT / "examples" / "digits")]

import numpy as np  # noqa: E402

DIGITS = REPO_ROOT / "examples" / "digits"
TARGET = "DPUCZDX8G_ISA1_B4096"
DIVISOR = 16
RTOL, ATOL = 1e-5, 1e-5  # atol times the largest output, as tests/test_prune_transform.py
RESULTS: list[bool] = []


def bar(ok: bool, text: str) -> None:
    """Print one bar's verdict and remember it."""
    RESULTS.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}  {text}")


# -- (a) recovery on digits_res ------------------------------------------------------------------


def digits_recovery() -> None:
    from finetune_hook import torch_hook

    from xir.frontends.onnx import import_onnx
    from xir.passes.prune import find_groups, model_macs, model_params, remove_channels
    from xir.passes.prune.finetune import finetune
    from xir.passes.prune.recover import reconstruct, reestimate_bn
    from xir.passes.prune.select import choose_ratios, default_divisor
    from xir.passes.prune.evaluate import onnx_evaluator
    from xir.passes.prune.sensitivity import sensitivity_table

    print("(a) digits_res at --macs 0.5 (test split: 540 images; calibration and fine-tune: the "
          "1,257 training images)")
    digits = np.load(DIGITS / "digits.npz")
    x_test, y_test = digits["x_test"].astype(np.float32) / 16, digits["y_test"]
    x_train, y_train = digits["x_train"].astype(np.float32) / 16, digits["y_train"]
    module = import_onnx(str(DIGITS / "digits_res.onnx"))
    evaluate = onnx_evaluator({"input": x_test}, y_test)
    groups = find_groups(module)
    start = time.perf_counter()
    table = sensitivity_table(module, groups, evaluate, workers=1, progress=False)
    sensitivity_s = time.perf_counter() - start
    divisor = default_divisor(TARGET)
    removed = choose_ratios(table, groups, macs_ratio=0.5, divisor=divisor, module=module)
    pruned = remove_channels(module, removed)
    kept = {g.name: g.channels - len(removed.get(g.name, ())) for g in groups}
    print(f"    sensitivity: {len(table.metrics)} groups × {len(table.ratios)} ratios in "
          f"{sensitivity_s:.1f} s; divisor {divisor} ({TARGET})")
    print("    channels: " + ", ".join(f"{g.name} {g.channels} → {kept[g.name]}" for g in groups))
    print(f"    MACs {model_macs(module):,} → {model_macs(pruned):,} "
          f"({model_macs(pruned) / model_macs(module):.3f}); parameters "
          f"{model_params(module):,} → {model_params(pruned):,}")
    rows = [("original", module, 0.0)]
    rows.append(("pruned, no recovery", pruned, 0.0))
    timed = []
    for name, make in (
            ("BN re-estimation", lambda: reestimate_bn(pruned, x_train)),
            ("reconstruction", lambda: reconstruct(module, pruned, removed, x_train))):
        start = time.perf_counter()
        timed.append((name, make(), time.perf_counter() - start))
    rows += timed
    rebuilt = timed[-1][1]
    start = time.perf_counter()
    tuned = finetune(rebuilt, torch_hook(x_train, y_train))
    rows.append(("reconstruction + fine-tune hook", tuned, time.perf_counter() - start))
    accuracy = {}
    for name, model, seconds in rows:
        accuracy[name] = evaluate(model)
        took = f"  ({seconds:.1f} s)" if seconds else ""
        print(f"    {name:<34} {100 * accuracy[name]:6.2f} %  "
              f"({round(accuracy[name] * len(y_test))}/{len(y_test)}){took}")
    base = accuracy["original"]
    for name, points in (("reconstruction", 1.0), ("reconstruction + fine-tune hook", 0.3)):
        drop = 100 * (base - accuracy[name])
        bar(drop <= points, f"digits_res {name}: {100 * accuracy[name]:.2f} %, "
                            f"{drop:+.2f} points below the original (bar: within {points})")
    bar(model_macs(pruned) <= 0.5 * model_macs(module),
        f"digits_res keeps {model_macs(pruned) / model_macs(module):.3f} of its MACs (bar: ≤ 0.5)")


# -- (b) the exact transform on light models ---------------------------------------------------------


def light_pruned(name: str):
    """(module, pruned module, removed) of light model ``name`` at 30 %; prints and checks (b)."""
    import onnx
    from test_onnx_import import light_model, ort_run
    from test_prune_transform import by_importance

    from xir.frontends.onnx import import_onnx
    from xir.frontends.onnx_export import export_onnx
    from xir.passes.prune import (find_groups, model_macs, model_params, remove_channels,
                                  zero_channels)

    loaded = light_model(name)
    if loaded is None:
        bar(False, f"light model {name} is not installed")
        return None
    model, feeds = loaded
    module = import_onnx(model)
    groups = find_groups(module)
    start = time.perf_counter()
    removed = by_importance(module, 0.3, divisor=DIVISOR)
    pruned = remove_channels(module, removed)
    zeroed = zero_channels(module, removed)
    seconds = time.perf_counter() - start
    exported = export_onnx(pruned)
    try:
        onnx.checker.check_model(exported)
        valid = ""
    except onnx.checker.ValidationError as e:
        valid = f": {' '.join(str(e).split())[:200]}"
    expected, got = ort_run(export_onnx(zeroed), feeds), ort_run(exported, feeds)
    scale = max(float(np.abs(e).max()) for e in expected)
    worst = max(float(np.abs(g - e).max()) for e, g in zip(expected, got))
    close = all(np.allclose(g, e, rtol=RTOL, atol=ATOL * scale) for e, g in zip(expected, got))
    argmax = all((g.reshape(len(g), -1).argmax(1) == e.reshape(len(e), -1).argmax(1)).all()
                 for e, g in zip(expected, got))
    after = {g.name: g.channels for g in find_groups(pruned)}
    counts = [after.get(g, None) for g in removed]
    multiples = all(c is not None and c % DIVISOR == 0 for c in counts)
    prunable = sum(g.prunable for g in groups)
    print(f"    {name}: {len(groups)} groups, {prunable} prunable, {len(removed)} pruned "
          f"(30 % of each group's channels by L1, kept counts multiples of {DIVISOR}; "
          f"{seconds:.1f} s)")
    print(f"      MACs {model_macs(module) / 1e9:.3f} G → {model_macs(pruned) / 1e9:.3f} G "
          f"({model_macs(pruned) / model_macs(module):.3f}); parameters "
          f"{model_params(module) / 1e6:.2f} M → {model_params(pruned) / 1e6:.2f} M "
          f"({model_params(pruned) / model_params(module):.3f})")
    print(f"      onnxruntime, pruned vs zeroed: max |diff| {worst:.3g} (largest output "
          f"{scale:.4g}), argmax {'equal' if argmax else 'DIFFERENT'}")
    bar(not valid, f"{name}: the pruned model passes the ONNX checker{valid}")
    bar(close and argmax, f"{name}: pruned = zeroed in onnxruntime (rtol {RTOL:g}, atol "
                          f"{ATOL:g} × largest output; same argmax)")
    bar(multiples, f"{name}: all {len(counts)} pruned groups keep a multiple of {DIVISOR} "
                   f"channels ({', '.join(str(c) for c in sorted(set(counts)))})")
    return model, feeds, exported, model_macs(module), model_macs(pruned)


# -- (c) the pruned ResNet-50 compiled -----------------------------------------------------------------


def compiled_cycles(original, feeds, pruned, macs: tuple) -> None:
    from cycles import BOARD_MHZ, compile_for

    print(f"(c) light ResNet-50 compiled for {TARGET} (2 calibration samples, CLE and bias "
          f"correction off), cycle model at {BOARD_MHZ:g} MHz")
    profiles = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in (("original", original), ("pruned", pruned)):
            run = compile_for(model, feeds, TARGET, 2, Path(tmp))
            profile = run["profile"]
            profiles[name] = profile
            devices = {}
            for record in run["compiled"].subgraphs:
                devices[record["device"]] = devices.get(record["device"], 0) + 1
            print(f"    {name:<9} compiled in {run['seconds']['compile']:.1f} s "
                  f"({', '.join(f'{n} {d}' for d, n in devices.items())} subgraphs): "
                  f"{profile.cycles:,} cycles, {profile.latency_ms:.2f} ms, {profile.fps:.1f} fps,"
                  f" MAC utilization {100 * profile.mac_utilization:.1f} %")
    ratio = profiles["pruned"].cycles / profiles["original"].cycles
    mac_ratio = macs[1] / macs[0]
    print(f"    pruned / original: cycles {ratio:.3f}, MACs {mac_ratio:.3f}")
    bar(1 - ratio >= 0.5 * (1 - mac_ratio),
        f"pruned ResNet-50 compiles and its cycles drop to {ratio:.3f} of the original's "
        f"(MACs {mac_ratio:.3f}; bar: at least half the MAC saving, cycles ≤ "
        f"{1 - 0.5 * (1 - mac_ratio):.3f})")


# -- (d) bad input -------------------------------------------------------------------------------------


def bad_inputs() -> None:
    import onnx
    from onnx import TensorProto, helper

    from xir.tools.main import main as xir

    print("(d) xir prune on bad input")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        digits = np.load(DIGITS / "digits.npz")
        np.savez(tmp / "test.npz", input=digits["x_test"] / np.float32(16))
        np.save(tmp / "labels.npy", digits["y_test"])
        np.save(tmp / "short.npy", digits["y_test"][:10])
        (tmp / "bench_metrics.py").write_text("def explode(outputs, data):\n"
                                              "    raise ValueError('no ground truth here')\n")
        sys.path.insert(0, str(tmp))
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])
        w = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
        graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                                  "only_conv", [x], [y], [w])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
                  tmp / "only_conv.onnx")
        np.savez(tmp / "conv.npz", x=np.ones((4, 3, 8, 8), np.float32))
        np.save(tmp / "conv_labels.npy", np.zeros(4, np.int64))
        model, out = str(DIGITS / "digits_res.onnx"), str(tmp / "out.onnx")
        common = ["--data", str(tmp / "test.npz"), "-o", out, "--workers", "1"]
        labels = ["--labels", str(tmp / "labels.npy")]
        cases = [
            ("a metric function that raises", [model, *common, "--metric",
                                               "bench_metrics:explode", "--macs", "0.5"]),
            ("a metric that cannot be imported", [model, *common, "--metric", "no_such:metric",
                                                  "--macs", "0.5"]),
            ("a ratio outside (0, 1]", [model, *common, *labels, "--macs", "1.5"]),
            ("a ratio outside (0, 1]", [model, *common, *labels, "--macs", "0"]),
            ("data without labels", [model, *common, "--macs", "0.5"]),
            ("labels of the wrong length", [model, *common, "--labels",
                                            str(tmp / "short.npy"), "--macs", "0.5"]),
            ("a model with no prunable layer",
             [str(tmp / "only_conv.onnx"), "--data", str(tmp / "conv.npz"), "--labels",
              str(tmp / "conv_labels.npy"), "-o", out, "--macs", "0.5"]),
        ]
        try:
            for what, argv in cases:
                stdout, stderr = io.StringIO(), io.StringIO()
                with redirect_stdout(stdout), redirect_stderr(stderr):
                    code = xir(["prune", *argv])
                lines = stderr.getvalue().splitlines()
                ok = (code == 1 and len(lines) == 1 and lines[0].startswith("xir prune: error: ")
                      and not Path(out).exists() and not stdout.getvalue())
                bar(ok, f"{what}: {lines[0] if lines else '(no error)'}".replace(str(tmp) + "/",
                                                                                 ""))
        finally:
            sys.path.remove(str(tmp))


def main() -> int:
    start = time.perf_counter()
    digits_recovery()
    print(f"(b) light models with random weights, 30 % of every prunable group's channels "
          f"removed, divisor {DIVISOR}")
    resnet = light_pruned("resnet50")
    light_pruned("inception_v1")
    if resnet is not None:
        original, feeds, pruned, before, after = resnet
        compiled_cycles(original, feeds, pruned, (before, after))
    bad_inputs()
    print(f"{sum(RESULTS)}/{len(RESULTS)} bars passed in {time.perf_counter() - start:.0f} s")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
