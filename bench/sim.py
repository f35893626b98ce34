"""The DPU simulator against onnxruntime FP32: ResNet-50's conv layers (224 × 224, batch 1) run
as INT8 instruction streams on DPUCZDX8G_ISA1_B4096, ONE thread each; and the simulator's JIT
compile time against its cached load in a second process.

    python bench/sim.py               # every ResNet-50 conv shape, median of 5 runs
    python bench/sim.py --runs 3 --only 3   # quicker: the first 3 shapes

Each layer is one ``dpu.conv2d_fix`` (random int8 weights and bias, relu, consistent fix points
as tests/test_codegen_conv.py builds them) in a function of its own, emitted by
``passes.codegen.emit.emit_program`` and simulated from its encoded stream (a fresh
:class:`~xir.backend.sim.machine.Machine` each run: decode, schedule, execute); onnxruntime
runs the same conv as one FP32 Conv node (bench/engines.py's ``ort_conv``). The total weighs
every shape by how often ResNet-50 has it. :func:`dpu_subgraphs` is the one place that knows
what is simulated: the whole compiled model's DPU subgraphs go there when the emitter writes
them.

Threads: NUMBA_NUM_THREADS, OMP/OpenBLAS/MKL thread counts are set to 1 at the very top, before
numpy loads (run this as a script); onnxruntime gets intra_op_num_threads = 1.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

from engines import RESNET50_CONVS, ort_conv  # noqa: E402
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


def dpu_subgraphs(rng, shapes):
    """``(name, count, stream, ddr image, registers, reference)`` per DPU subgraph to simulate:
    here each ResNet-50 conv shape as a function of its own; ``reference`` a function
    returning the onnxruntime (session, feed) of the same computation."""
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
    each; a round calls each once, so that all see the same machine load."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def compile_times() -> dict:
    """The simulator's import and warm-up times in a fresh process with an empty JIT cache
    (compile) and in a second one (loaded from the cache)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        return {name: json.loads(subprocess.run([sys.executable, "-c", COMPILE_PROBE], env=env,
                                                check=True, capture_output=True,
                                                text=True).stdout)
                for name in ("first (compile)", "second (cached)")}


def main(argv=None) -> int:
    """Print the table (and optionally write it as JSON)."""
    from xir.backend.sim.machine import warm_up
    from xir.backend.sim.machine import Machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", type=int, default=0, help="the first N shapes only")
    parser.add_argument("--no-compile", action="store_true", help="skip the JIT probe")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)

    compile_ = {} if args.no_compile else compile_times()
    for name, t in compile_.items():
        print(f"simulator {name}: import {t['import']:.2f} s, warm_up {t['warm_up']:.2f} s")
    warm_up()
    shapes = RESNET50_CONVS[:args.only] if args.only else RESNET50_CONVS
    print(f"{'layer':>28} {'count':>5} {'instrs':>7} {'sim ms':>8} {'ort ms':>8} {'ratio':>6} "
          f"{'Minstr/s':>8}")
    rows, total = [], np.zeros(3)
    for name, count, stream, ddr, registers, reference in dpu_subgraphs(
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"compile": compile_, "layers": rows, "totals": total.tolist()}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
