"""The reference interpreter against onnxruntime, both on ONE thread, and ONNX import times.

    python bench/executor.py            # ResNet-50 batch 1: interpreter median of 5, ORT of 20
    python bench/executor.py --runs 3 --ort-runs 10 --import-runs 3
    python bench/executor.py --profile  # and the interpreter's time per op kind

Threads: the BLAS behind numpy and OpenMP read their thread counts when they are loaded, so this
script sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS (and friends) to 1 at the very
top, before anything imports numpy; it must therefore be run as a script, not imported after
numpy. onnxruntime gets ``intra_op_num_threads = inter_op_num_threads = 1``.

Models: the bundled light models of the onnx package (``onnx/backend/test/data/light``), whose
ConstantOfShape weights are replaced by seeded random ones with ``randomize_weights`` of
tests/test_onnx_import.py (imported from there, not copied). Bars: the interpreter within 3x
of onnxruntime's latency; ResNet-50 imports in under 1 s.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from test_onnx_import import _light_path, light_model, relative_error  # noqa: E402

from xir.frontends.onnx import import_onnx  # noqa: E402
from xir.interpreter import run_module  # noqa: E402


def median_time(fn, runs: int) -> float:
    """The median wall time of ``runs`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def op_times(module, feeds, runs: int) -> dict[str, list]:
    """Per op name, [mean seconds per run, ops per run] of ``run_module(module, feeds)``: each
    op is charged the time since the previous op's outputs were observed."""
    totals: dict[str, list] = {}
    for _ in range(runs):
        last = time.perf_counter()

        def observe(op, outputs):
            nonlocal last
            now = time.perf_counter()
            entry = totals.setdefault(op.name, [0.0, 0])
            entry[0] += (now - last) / runs
            entry[1] += 1
            last = now

        run_module(module, feeds, observe=observe)
    return {name: [seconds, count // runs] for name, (seconds, count) in totals.items()}


def print_profile(times: dict[str, list], runs: int) -> None:
    """The table of :func:`op_times`, the slowest op kind first."""
    total = sum(seconds for seconds, _ in times.values())
    print(f"\nResNet-50 b1: interpreter time per op kind (mean of {runs} runs, observe hook)")
    print(f"{'op':<24}  {'time':>9}  {'share':>6}  count")
    for name, (seconds, count) in sorted(times.items(), key=lambda item: -item[1][0]):
        print(f"{name:<24}  {seconds * 1e3:6.1f} ms  {seconds / total:6.1%}  {count}")


def light_model_or_exit(name: str):
    """The light model ``name`` with seeded random weights, and a seeded batch-1 input."""
    loaded = light_model(name)
    if loaded is None:
        sys.exit(f"{_light_path(name)} is not installed (the onnx package ships it)")
    return loaded


def ort_session(model):
    """A one-thread CPU onnxruntime session of ``model``."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="interpreter runs (median; default 5)")
    p.add_argument("--ort-runs", type=int, default=20, help="onnxruntime runs (median; default 20)")
    p.add_argument("--import-runs", type=int, default=5, help="import runs (median; default 5)")
    p.add_argument("--profile", action="store_true",
                   help="also print the interpreter's time per op kind on ResNet-50")
    args = p.parse_args(argv)

    model, feeds = light_model_or_exit("resnet50")
    module = import_onnx(model)
    session = ort_session(model)
    ours = run_module(module, feeds)
    expected = session.run(None, feeds)
    error = max(relative_error(g, e) for g, e in zip(ours, expected))
    t_interp = median_time(lambda: run_module(module, feeds), args.runs)
    t_ort = median_time(lambda: session.run(None, feeds), args.ort_runs)

    imports = {name: median_time(lambda m=light_model_or_exit(name)[0]: import_onnx(m), args.import_runs)
               for name in ("resnet50", "densenet121")}

    ratio = t_interp / t_ort
    rows = [
        ("ResNet-50 b1: xir interpreter (1 thread)", f"{t_interp * 1e3:9.1f} ms", f"median of {args.runs}"),
        ("ResNet-50 b1: onnxruntime (1 thread)", f"{t_ort * 1e3:9.1f} ms", f"median of {args.ort_runs}"),
        ("ResNet-50 b1: interpreter / onnxruntime", f"{ratio:9.2f} x",
         "bar <= 3x: " + ("PASS" if ratio <= 3 else "FAIL")),
        ("ResNet-50 b1: max relative error vs ORT", f"{error:9.1e}", ""),
        ("import ResNet-50", f"{imports['resnet50'] * 1e3:9.1f} ms",
         f"median of {args.import_runs}; bar < 1 s: " + ("PASS" if imports["resnet50"] < 1 else "FAIL")),
        ("import DenseNet-121", f"{imports['densenet121'] * 1e3:9.1f} ms", f"median of {args.import_runs}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"numpy {np.__version__}, onnxruntime {ort.__version__}, onnx {onnx.__version__}, "
          f"OMP/OPENBLAS/MKL threads = {os.environ['OMP_NUM_THREADS']}")
    print(f"{'measure':<{width}}  {'time':>12}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")
    if args.profile:
        print_profile(op_times(module, feeds, args.runs), args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
