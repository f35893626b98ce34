"""How long ``xir inspect`` takes on the bundled light models, DenseNet-121 (the largest) first.

    python bench/inspector.py                 # every light model, median of 5; about a minute
    python bench/inspector.py --models densenet121 --runs 3
    python bench/inspector.py --target B512 --no-cli

Per model and target: the median of ``--runs`` runs (after one warm-up) of (a) ``import_onnx``
of the model, (b) ``inspect_module`` on the imported module, (c) the JSON report and (d) the SVG
picture, then (a)+(b), the time to an inspection report from a loaded ONNX model, and
(a)+(b)+(c)+(d), everything ``xir inspect --json --svg`` does after reading the file. Then the
whole command as a user runs it: ``xir inspect densenet121.onnx --target T --json F --svg F`` in
a fresh Python process (start-up, imports, reading the file included), the median of
``--cli-runs``. The last line checks the issue's bar: inspecting DenseNet-121 under 2 s.

Models: the onnx package's ``light_*.onnx`` with seeded random weights (``light_model`` of
tests/test_onnx_import.py, imported from there), so the numbers use real weights and shapes.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from test_onnx_import import LIGHT_MODELS, light_model  # noqa: E402

BAR_SECONDS = 2.0
BAR_MODEL = "densenet121"


def median_time(fn, runs: int) -> tuple[float, object]:
    """(median wall time of ``runs`` calls of ``fn`` after one warm-up call, its last result)."""
    result = fn()
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(name: str, target, runs: int) -> dict | None:
    """The phase times of one model (None when the onnx package does not ship it)."""
    from xir.frontends.onnx import import_onnx
    from xir.passes.inspect import inspect_module
    from xir.tools.inspect_cmd import report_json
    from xir.tools.inspect_svg import render_svg
    from xir.verifier import verify

    loaded = light_model(name)
    if loaded is None:
        return None
    model = loaded[0]

    def load():
        module = import_onnx(model)
        verify(module)  # load_module verifies too: part of what the command does
        return module

    t_import, module = median_time(load, runs)
    t_inspect, report = median_time(lambda: inspect_module(module, target), runs)
    t_json, _ = median_time(lambda: report_json(report), runs)
    t_svg, _ = median_time(lambda: render_svg(report), runs)
    summary = report.summary()
    return {"model": name, "nodes": len(report.nodes), "cpu": summary.ops["CPU"],
            "import": t_import, "inspect": t_inspect, "json": t_json, "svg": t_svg}


def cli_time(name: str, target: str, runs: int) -> float | None:
    """Median wall time of ``xir inspect MODEL --target T --json F --svg F`` in a fresh process."""
    import onnx

    loaded = light_model(name)
    if loaded is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.onnx")
        onnx.save(loaded[0], path)
        argv = [sys.executable, "-c", "import sys; from xir.tools.main import main; "
                "sys.exit(main(sys.argv[1:]))", "inspect", path, "--target", target,
                "--json", os.path.join(tmp, "r.json"), "--svg", os.path.join(tmp, "r.svg")]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(rows: list[dict], target_name: str, runs: int) -> None:
    """The phase times per model, in milliseconds."""
    print(f"xir inspect against {target_name}: median of {runs} runs, milliseconds")
    print(f"{'model':<14} {'nodes':>5} {'CPU':>4} {'(a) import':>10} {'(b) inspect':>11} "
          f"{'(c) JSON':>8} {'(d) SVG':>8} {'a+b':>8} {'a+b+c+d':>8}")
    for r in rows:
        ab = r["import"] + r["inspect"]
        total = ab + r["json"] + r["svg"]
        print(f"{r['model']:<14} {r['nodes']:>5} {r['cpu']:>4} {r['import'] * 1e3:>10.1f} "
              f"{r['inspect'] * 1e3:>11.1f} {r['json'] * 1e3:>8.1f} {r['svg'] * 1e3:>8.1f} "
              f"{ab * 1e3:>8.1f} {total * 1e3:>8.1f}")


def print_bar(rows: list[dict], cli: float | None) -> bool:
    """The issue's bar: inspecting DenseNet-121 takes under 2 s (with everything the command
    does after reading the file, and as a whole command when measured). True when met."""
    row = next((r for r in rows if r["model"] == BAR_MODEL), None)
    if row is None:
        print(f"bar: {BAR_MODEL} not measured")
        return True
    inspect = row["inspect"]
    with_import = row["import"] + inspect
    everything = with_import + row["json"] + row["svg"]
    ok = everything < BAR_SECONDS and (cli is None or cli < BAR_SECONDS)
    cli_text = f"; the whole command in a fresh process {cli:.2f} s" if cli is not None else ""
    print(f"bar: {BAR_MODEL} inspect {inspect:.3f} s alone, {with_import:.3f} s with the ONNX "
          f"import, {everything:.3f} s with import, JSON and SVG{cli_text} "
          f"(< {BAR_SECONDS:g} s): {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    """Run the benchmark; exit status 1 when the bar is missed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=[BAR_MODEL] +
                   [m for m in LIGHT_MODELS if m != BAR_MODEL], choices=LIGHT_MODELS)
    p.add_argument("--target", default="B4096")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cli-runs", type=int, default=3)
    p.add_argument("--no-cli", action="store_true", help="skip the fresh-process command timing")
    args = p.parse_args()

    from xir.backend.targets import load_target

    target = load_target(args.target)
    rows = [r for r in (measure(m, target, args.runs) for m in args.models) if r is not None]
    print_table(rows, target.name, args.runs)
    cli = None
    if not args.no_cli and BAR_MODEL in args.models:
        cli = cli_time(BAR_MODEL, args.target, args.cli_runs)
    return 0 if print_bar(rows, cli) else 1


if __name__ == "__main__":
    sys.exit(main())
