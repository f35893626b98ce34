"""The DPU simulator against onnxruntime FP32 on the whole model (issue 7): light ResNet-50
(the onnx package's light_resnet50.onnx, seeded random weights, 224 × 224, batch 1) compiled
INT8 for DPUCZDX8G_ISA1_B4096, its DPU subgraph(s) simulated from their instruction streams,
against onnxruntime running the float model on the same image, ONE thread each; and the
simulator's JIT compile time against its cached load in a second process.

    python bench/sim.py                 # the whole model, median of 5 runs
    python bench/sim.py --layers        # also every ResNet-50 conv shape on its own
    python bench/sim.py --runs 3 --no-compile

The model is compiled as bench/cycles.py does (``compile_model``, 2 random calibration
samples, CLE and bias correction off). Each DPU subgraph's input is what the reference run of
the compiled model (``Runner(dpu="ref")``) hands it for the image; the timed call is
``DpuProgram.run`` on that int8 input (the stream decoded and scheduled on the first call and
kept, as ``xir run`` does for a batch), checked bit for bit against the reference executor's
output of the subgraph. The per-mnemonic shares come from ``Machine.times`` on one more run.
The whole ``xir run`` path (``Runner(dpu="sim")`` over the ``.xmodel``: host glue, the DPU
subgraph, the CPU softmax on onnxruntime) is timed for information. Bars: simulated time at
most 5x onnxruntime's (goal 3x); the exit status is 1 when the 5x bar is missed or a subgraph
is not bit-exact.

``--layers`` adds the per-conv table: each ResNet-50 conv shape as one ``dpu.conv2d_fix`` in a
function of its own (random int8 weights and bias, relu), emitted by
``passes.codegen.emit.emit_program`` and simulated on a fresh Machine each run (decode,
schedule, execute), against onnxruntime running the same conv as one FP32 Conv node
(bench/engines.py's ``ort_conv``), weighted by how often ResNet-50 has each shape.

Threads: NUMBA_NUM_THREADS, OMP/OpenBLAS/MKL thread counts are set to 1 at the very top, before
numpy loads (run this as a script); onnxruntime gets intra_op_num_threads = inter_op_num_threads
= 1.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

from engines import RESNET50_CONVS, best_times, compile_times, ort_conv  # noqa: E402
from test_codegen_conv import conv_lines, ddr_image, module_text, the_func, ttype  # noqa: E402

TARGET = "DPUCZDX8G_ISA1_B4096"

COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
from xir.backend.sim.machine import warm_up
t1 = time.perf_counter()
warm_up()
print(json.dumps({"import": t1 - t0, "warm_up": time.perf_counter() - t1}))
"""


def conv_function(rng, h, w, c, m, k, s):
    """A parsed function of one relu conv2d_fix (pads k // 2) and its weights (OHWI int8)."""
    from xir.parser import parse

    lines, out, _ = conv_lines(rng, "x", "y", h, w, c, m, (k, k), (s, s), (1, 1), [k // 2] * 4,
                               "relu", True)
    return the_func(parse(module_text(lines, ttype((1, h, w, c)), "%y", out)))


def conv_layers(rng, shapes):
    """``(name, count, stream, ddr image, registers, reference)`` per ResNet-50 conv shape (a
    function of its own); ``reference`` returns the onnxruntime (session, feed) of the same
    computation."""
    from xir.backend.targets import load_target
    from xir.dialects.dpuisa import encode
    from xir.passes.codegen import plan_layout
    from xir.passes.codegen.emit import emit_program

    target = load_target(TARGET)
    for h, w, c, m, k, s, count in shapes:
        func = conv_function(rng, h, w, c, m, k, s)
        layout = plan_layout(func, target)
        op = next(o for o in func.walk() if o.name == "dpu.conv2d_fix")
        stream = encode(emit_program(func, layout, target))
        x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        ddr, base = ddr_image(layout, layout.of(op.operands[0]), x)
        weight = np.asarray(op.operands[1].owner.evaluate()[0])

        def reference(x=x, weight=weight, shape=(h, w, c, m, k, s)):
            session = ort_conv(*shape, weight.transpose(0, 3, 1, 2))
            return session, {"x": x.transpose(0, 3, 1, 2).astype(np.float32)}

        yield f"{h}x{w}x{c}->{m} {k}x{k}/{s}", count, stream, ddr, {0: 0, 1: base}, reference


def medians(fns, runs: int) -> list[float]:
    """The median wall time of each of ``fns`` over ``runs`` rounds after one warm-up call
    each (bench/engines.py's rounds; a round calls each once, so all see the same load)."""
    return best_times(fns, runs)[1]


def compile_resnet(samples: int, path: str):
    """Light ResNet-50 compiled for :data:`TARGET` and written to ``path``: ``(float ONNX
    model, feeds, CompiledModel, seconds)``."""
    from cycles import quick_compile
    from test_onnx_import import light_model

    loaded = light_model("resnet50")
    if loaded is None:
        raise SystemExit("light_resnet50.onnx is not installed (the onnx package's light models)")
    model, feeds = loaded
    compiled, seconds = quick_compile(model, feeds, TARGET, samples)
    compiled.write(path)
    return model, feeds, compiled, seconds


def whole_model(args) -> tuple[dict, bool]:
    """Compile, check and time light ResNet-50 (see the module docstring); prints its tables
    and returns ``(numbers, passed)``."""
    from xir.backend.dpu_program import DpuProgram
    from xir.backend.runner import Runner, boundary_name, new_session
    from xir.backend.sim.machine import Machine
    from xir.backend.xmodel import read_xmodel

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "resnet50.xmodel")
        model, feeds, compiled, compile_s = compile_resnet(args.samples, path)
        xmodel = read_xmodel(path)
        # every subgraph's arguments and results on the image, by the reference executors
        boundary: dict = {}
        Runner(xmodel.module, dpu="ref", xmodel=xmodel).run(feeds, boundary)
        session = new_session(model.SerializeToString())
        runner = Runner(xmodel.module, dpu="sim", xmodel=xmodel)
        rows, fns = [], []
        for record in xmodel.subgraphs:
            if record["device"] != "DPU":
                continue
            name = record["name"]
            if "isa" not in record:
                print(f"{name}: no instruction stream ({record.get('isa_error')})")
                return {}, False
            program = DpuProgram.from_xmodel(xmodel, record)
            inputs = [boundary[boundary_name(name, "in", k)] for k in range(len(program.inputs))]
            expected = [boundary[boundary_name(name, "out", k)]
                        for k in range(len(program.outputs))]
            start = time.perf_counter()
            outputs, counters = program.run(inputs)  # decodes and schedules: the first call
            first = time.perf_counter() - start
            exact = len(outputs) == len(expected) and all(
                np.array_equal(o, np.asarray(e)) for o, e in zip(outputs, expected))
            machine = Machine(TARGET, program.ddr_image([np.asarray(x)[0] for x in inputs]))
            machine.times = {}
            machine.run(program.plan(machine), program.registers)
            rows.append({"subgraph": name, "instructions": program.instructions,
                         "counts": dict(counters.instructions), "first": first,
                         "exact": exact, "times": machine.times})
            fns.append(lambda program=program, inputs=inputs: program.run(inputs))
        t_ort, t_run, *t_sims = medians(
            [lambda: session.run(None, feeds), lambda: runner.run(feeds), *fns], args.runs)
    for row, t in zip(rows, t_sims):
        row["sim"] = t
    sim = sum(t_sims)
    ratio = sim / t_ort
    print(f"light ResNet-50 on {TARGET}: compile {compile_s:.1f} s; "
          f"{len(rows)} DPU subgraph(s); median of {args.runs} runs, one thread")
    print(f"{'subgraph':>16} {'instrs':>7} {'LOAD':>6} {'SAVE':>6} {'CONV':>6} {'MISC':>6} "
          f"{'sim ms':>8} {'1st ms':>8} {'bit-exact':>9}")
    for row in rows:
        c = row["counts"]
        print(f"{row['subgraph']:>16} {row['instructions']:>7} {c['LOAD']:>6} {c['SAVE']:>6} "
              f"{c['CONV']:>6} {c['MISC']:>6} {row['sim'] * 1e3:8.1f} {row['first'] * 1e3:8.1f} "
              f"{'yes' if row['exact'] else 'NO':>9}")
    print(f"{'onnxruntime FP32 (whole float model)':>40}: {t_ort * 1e3:8.1f} ms")
    print(f"{'simulated DPU subgraph(s)':>40}: {sim * 1e3:8.1f} ms   ratio {ratio:.2f}x")
    print(f"{'xir run path (Runner, dpu=sim)':>40}: {t_run * 1e3:8.1f} ms   "
          f"({(t_run - sim) * 1e3:+.1f} ms against the subgraph(s) alone: host glue and the CPU "
          f"subgraph)")
    for row in rows:
        total = sum(row["times"].values())
        share = sorted(row["times"].items(), key=lambda kv: -kv[1])
        print(f"{row['subgraph']} sim time by mnemonic ({total * 1e3:.1f} ms in the engines): "
              + ", ".join(f"{m} {100 * t / total:.1f} %" for m, t in share))
    exact = all(r["exact"] for r in rows)
    print(f"bit-exact against the reference executor: {'PASS' if exact else 'FAIL'}")
    print(f"bar  {5:g}x: {'PASS' if ratio <= 5 else 'FAIL'} ({ratio:.2f}x)")
    print(f"goal {3:g}x: {'PASS' if ratio <= 3 else 'FAIL'} ({ratio:.2f}x)")
    numbers = {"compile_s": compile_s, "ort": t_ort, "xir_run": t_run, "sim": sim,
               "ratio": ratio, "subgraphs": rows}
    return numbers, exact and ratio <= 5


def layer_table(args) -> list:
    """Print the per-conv table (``--layers``) and return its rows."""
    from xir.backend.sim.machine import Machine

    shapes = RESNET50_CONVS[:args.only] if args.only else RESNET50_CONVS
    print(f"{'layer':>28} {'count':>5} {'instrs':>7} {'sim ms':>8} {'ort ms':>8} {'ratio':>6} "
          f"{'Minstr/s':>8}")
    rows, total = [], np.zeros(3)
    for name, count, stream, ddr, registers, reference in conv_layers(
            np.random.default_rng(0), shapes):
        session, feed = reference()
        image = ddr.tobytes()
        instructions = []

        def simulate():
            counters = Machine(TARGET, image).run(stream, registers)
            instructions[:] = [sum(counters.instructions.values())]

        t_sim, t_ort = medians([simulate, lambda: session.run(None, feed)], args.runs)
        n = instructions[0]
        print(f"{name:>28} {count:>5} {n:>7} {t_sim * 1e3:8.2f} {t_ort * 1e3:8.2f} "
              f"{t_sim / t_ort:6.2f} {n / t_sim / 1e6:8.3f}")
        rows.append({"layer": name, "count": count, "instructions": n, "sim": t_sim,
                     "ort": t_ort})
        total += count * np.array([t_sim, t_ort, n])
    print(f"{'ResNet-50 convs (weighted)':>28} {int(sum(r['count'] for r in rows)):>5} "
          f"{int(total[2]):>7} {total[0] * 1e3:8.2f} {total[1] * 1e3:8.2f} "
          f"{total[0] / total[1]:6.2f} {total[2] / total[0] / 1e6:8.3f}")
    return rows


def main(argv=None) -> int:
    """Print the tables (and optionally write them as JSON); 1 when a bar is missed."""
    from xir.backend.sim.machine import warm_up

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2, help="calibration samples")
    parser.add_argument("--layers", action="store_true", help="also the per-conv table")
    parser.add_argument("--only", type=int, default=0, help="--layers: the first N shapes")
    parser.add_argument("--no-compile", action="store_true", help="skip the JIT probe")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)

    compile_ = {} if args.no_compile else compile_times(COMPILE_PROBE)
    for name, t in compile_.items():
        print(f"simulator JIT, {name}: import {t['import']:.2f} s, warm_up {t['warm_up']:.2f} s")
    warm_up()
    numbers, passed = whole_model(args)
    layers = layer_table(args) if args.layers else []
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"compile": compile_, "model": numbers, "layers": layers}, f, indent=1,
                      default=float)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
