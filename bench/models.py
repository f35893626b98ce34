"""Every ONNX model the onnx package bundles, through xir: the table in ``docs/models.md``.

    python bench/models.py                     # print the table (about a minute)
    python bench/models.py --write docs/models.md
    python bench/models.py --skip-light        # the pytorch cases only (a few seconds)

For each light architecture (weights replaced by seeded random ones, see ``randomize_weights``
in tests/test_onnx_import.py) and each pytorch-converted / pytorch-operator case: ONNX import
time, how many ops stayed whole as ``graph.onnx`` (run on the CPU through onnxruntime) and
which, and the relative error ‖ours − ref‖₂ / ‖ref‖₂ of

- the reference executor against onnxruntime (for the pytorch cases also against the stored
  ``output_*.pb``),
- onnxruntime on xir's exported ONNX against the same reference (the export round trip).

Everything runs on one thread; times are single runs (this is a correctness table, not a
benchmark: ``bench/executor.py`` measures speed).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import onnx  # noqa: E402
from onnx_cases import load_case, ort_reference, ort_run, pytorch_cases, worst_error  # noqa: E402
from test_onnx_import import LIGHT_MODELS, light_model  # noqa: E402

from xir.frontends.onnx import export_onnx, import_onnx  # noqa: E402
from xir.frontends.onnx_import import opset_version  # noqa: E402
from xir.interpreter import run_module  # noqa: E402

BAR = 1e-4


def _err(value: float | None) -> str:
    if value is None:
        return "–"
    mark = "" if value <= BAR else " ✗"
    return f"{value:.1e}{mark}"


def _kept(module) -> str:
    kinds = Counter(op.op_type.value for op in module.walk() if op.name == "graph.onnx")
    return ", ".join(f"{k}×{n}" if n > 1 else k for k, n in sorted(kinds.items())) or "–"


def measure(model, inputs: list, stored: list | None):
    """One table row's numbers for ``model`` run on ``inputs`` (``stored``: expected outputs)."""
    start = time.perf_counter()
    module = import_onnx(model)
    seconds = time.perf_counter() - start
    ours = run_module(module, inputs)
    reference, how = ort_reference(model, inputs)
    exported = export_onnx(module)
    onnx.checker.check_model(exported, full_check=True)
    round_trip = ort_run(exported, inputs)
    target = stored if stored is not None else reference
    return {
        "nodes": len(model.graph.node),
        "opset": opset_version(model),
        "import_ms": seconds * 1e3,
        "kept": _kept(module),
        "vs_stored": None if stored is None else worst_error(ours, stored),
        "vs_ort": None if reference is None else worst_error(ours, reference),
        "ort": how,
        "export": worst_error(round_trip, target),
    }


def light_rows() -> list[str]:
    rows = ["| model | nodes[^w] | opset | import | kept as graph.onnx | executor vs ORT | "
            "exported, ORT vs ORT |", "|---|---:|---:|---:|---|---:|---:|"]
    for name in LIGHT_MODELS:
        loaded = light_model(name)
        if loaded is None:
            rows.append(f"| {name} | not installed | | | | | |")
            continue
        model, feeds = loaded
        r = measure(model, list(feeds.values()), None)
        rows.append(f"| {name} | {r['nodes']} | {r['opset']} | {r['import_ms']:.0f} ms | "
                    f"{r['kept']} | {_err(r['vs_ort'])} | {_err(r['export'])} |")
        print(f"  {name} done", file=sys.stderr)
    rows += ["", "[^w]: after the weights' ConstantOfShape nodes are replaced by initializers."]
    return rows


def pytorch_rows() -> list[str]:
    rows = ["| case | opset | ONNX ops | kept as graph.onnx | executor vs stored | "
            "executor vs ORT | exported, ORT vs stored |", "|---|---:|---|---|---:|---:|---:|"]
    notes = []
    for case in pytorch_cases():
        model, inputs, stored = load_case(case)
        ops = ", ".join(sorted({n.op_type for n in model.graph.node}))
        try:
            r = measure(model, inputs, stored)
        except Exception as e:  # a row says what failed rather than stopping the table
            rows.append(f"| {case} | | {ops} | error: {str(e).splitlines()[0]} | | | |")
            continue
        vs_ort = _err(r["vs_ort"])
        if r["vs_ort"] is None:
            vs_ort = f"ORT cannot run it[^{len(notes) + 1}]"
            notes.append(r["ort"])
        elif r["ort"] != "as stamped":
            vs_ort += f" ({r['ort']})"
        rows.append(f"| {case.replace('pytorch-', '')} | {r['opset']} | {ops} | {r['kept']} | "
                    f"{_err(r['vs_stored'])} | {vs_ort} | {_err(r['export'])} |")
    rows.append("")
    rows += [f"[^{i}]: onnxruntime: {re.sub(r'/onnxruntime_src/[^ ]+ ', '', text)}"
             for i, text in enumerate(notes, 1)]
    return rows


HEADER = """# The bundled ONNX models through xir

Generated by `python bench/models.py --write docs/models.md` (onnx {onnx}, onnxruntime {ort}).
Each model is imported, run by the reference executor (`xir.interpreter`) and exported back to
ONNX; numbers are relative errors ‖ours − ref‖₂ / ‖ref‖₂ (the bar is {bar:g}; ✗ marks a miss;
NaN and infinite entries must match exactly). *Kept as graph.onnx* lists the nodes the graph
dialect has no op for: they stay whole and run through onnxruntime on the CPU. The same checks
run as parametrized tests (`tests/test_onnx_import.py`, `tests/test_onnx_pytorch_cases.py`).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", metavar="FILE", help="write the markdown to FILE")
    p.add_argument("--skip-light", action="store_true", help="only the pytorch cases")
    args = p.parse_args(argv)
    import onnxruntime

    parts = [HEADER.format(onnx=onnx.__version__, ort=onnxruntime.__version__, bar=BAR)]
    if not args.skip_light:
        parts += ["## Light architectures (seeded random weights, batch 1)", "",
                  "\n".join(light_rows()), ""]
    parts += ["## PyTorch cases (`pytorch-converted`, `pytorch-operator`)", "",
              "Compared with the outputs stored next to each model and with onnxruntime. Opset-6 "
              "models that onnxruntime refuses as stamped are compared with it after onnx's "
              "version converter upgrades them to opset 7.", "", "\n".join(pytorch_rows()), ""]
    text = "\n".join(parts)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
