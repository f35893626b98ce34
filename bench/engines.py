"""The simulator's conv engine against onnxruntime's FP32 Conv on ResNet-50's layer shapes,
batch 1, ONE thread each; and the engines' JIT compile time against their cached load.

    python bench/engines.py              # every distinct ResNet-50 conv, best of 15 rounds
    python bench/engines.py --runs 3     # quicker
    python bench/engines.py --tile-rows 8 --tile-channels 16   # also per-instruction tiles

Threads: NUMBA_NUM_THREADS, OMP/OpenBLAS/MKL thread counts are set to 1 at the very top, before
numpy loads (run this as a script); onnxruntime gets intra_op_num_threads = 1.

Columns, each a whole layer in one call on an int8 NHWC tile with OHWI weights (im2col, GEMM and
the integer finish timed): ``f32`` the float32 chunked GEMM (the default, exact by the bound in
``backend/sim/engines.py``) converting the weights in the call; ``f32 prep`` the same with the
weights converted beforehand (``gemm_weights``, as a simulator can do once per weight load);
``f64 prep`` float64 GEMM (exact without chunks), weights prepared; onnxruntime: one Conv node,
NCHW float32 (its weights are prepacked at session creation). ``count`` is how many
times the shape occurs in ResNet-50 v1.5; the last row weighs every shape by it.
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

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# (H, W, C, M, kernel, stride, count in ResNet-50 v1.5, batch 1, 224 × 224)
RESNET50_CONVS = [
    (224, 224, 3, 64, 7, 2, 1),
    (56, 56, 64, 64, 1, 1, 1), (56, 56, 64, 64, 3, 1, 3), (56, 56, 64, 256, 1, 1, 4),
    (56, 56, 256, 64, 1, 1, 2), (56, 56, 256, 128, 1, 1, 1), (56, 56, 128, 128, 3, 2, 1),
    (56, 56, 256, 512, 1, 2, 1), (28, 28, 128, 512, 1, 1, 4), (28, 28, 512, 128, 1, 1, 3),
    (28, 28, 128, 128, 3, 1, 3), (28, 28, 512, 256, 1, 1, 1), (28, 28, 256, 256, 3, 2, 1),
    (28, 28, 512, 1024, 1, 2, 1), (14, 14, 256, 1024, 1, 1, 6), (14, 14, 1024, 256, 1, 1, 5),
    (14, 14, 256, 256, 3, 1, 5), (14, 14, 1024, 512, 1, 1, 1), (14, 14, 512, 512, 3, 2, 1),
    (14, 14, 1024, 2048, 1, 2, 1), (7, 7, 512, 2048, 1, 1, 3), (7, 7, 2048, 512, 1, 1, 2),
    (7, 7, 512, 512, 3, 1, 2),
]

COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
from xir.backend.sim import engines
t1 = time.perf_counter()
engines.warm_up()
print(json.dumps({"import": t1 - t0, "warm_up": time.perf_counter() - t1}))
"""


def best_times(fns, runs: int) -> list:
    """The shortest wall time of each of ``fns`` over ``runs`` rounds, after one warm-up call
    each; a round calls each function once, so that all see the same machine load (on a shared
    machine the minimum is the stable statistic; medians are also returned, second)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [min(ts) for ts in times], [statistics.median(ts) for ts in times]


def ort_conv(h, w, c, m, k, s, weight):
    """An onnxruntime session of one FP32 Conv (pads k // 2), on one thread."""
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], strides=[s, s],
                          pads=[k // 2] * 4)], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight.astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def compile_times(probe: str = COMPILE_PROBE) -> dict:
    """The import and warm-up times ``probe`` (a script printing them as JSON) measures in a
    fresh process with an empty cache (JIT compile) and in a second one (cached load)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        return {name: json.loads(subprocess.run([sys.executable, "-c", probe], env=env,
                                                check=True, capture_output=True,
                                                text=True).stdout)
                for name in ("first (compile)", "second (cached)")}


def tiled(engines, x, wt, prepared, k, s, rows: int, channels: int):
    """The layer as per-instruction calls: strips of ``rows`` output rows × ``channels``
    output channels (weights ``prepared`` per channel tile), each reading its input rows with
    the halo."""
    h, pad = x.shape[0], k // 2
    oh = engines.out_size(h, k, s, pad, pad)
    for r0 in range(0, oh, rows):
        r1 = min(oh, r0 + rows)
        first, last = r0 * s - pad, (r1 - 1) * s - pad + k - 1
        tile = x[max(first, 0):min(last, h - 1) + 1]
        tile_pad = (max(0, -first), pad, max(0, last - (h - 1)), pad)
        for o, weights in zip(range(0, wt.shape[0], channels), prepared):
            engines.conv_tile(tile, wt[o:o + channels], None, (s, s), (1, 1), tile_pad, 0, 8,
                              weights=weights)


def main(argv=None) -> int:
    """Print the table (and optionally write it as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tile-rows", type=int, default=0,
                        help="also time per-instruction tiles of this many output rows")
    parser.add_argument("--tile-channels", type=int, default=16)
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)

    compile_ = compile_times()
    for name, t in compile_.items():
        print(f"engines {name}: import {t['import']:.2f} s, warm_up {t['warm_up']:.2f} s")

    from xir.backend.sim import engines

    engines.warm_up()
    rng = np.random.default_rng(0)
    head = f"{'layer':>28} {'count':>5} {'ort ms':>8} {'f32 ms':>8} {'ratio':>6} " \
           f"{'f32 prep':>8} {'ratio':>6} {'f64 prep':>8} {'ratio':>6}" + \
           (f" {'tiled ms':>8} {'ratio':>6}" if args.tile_rows else "")
    print(head)
    rows, totals = [], np.zeros(5)
    for h, w, c, m, k, s, count in RESNET50_CONVS:
        x = rng.integers(-128, 128, size=(h, w, c)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(m, k, k, c)).astype(np.int8)
        bias = rng.integers(-128, 128, size=m).astype(np.int8)
        pad = (k // 2,) * 4
        session = ort_conv(h, w, c, m, k, s, wt.transpose(0, 3, 1, 2))
        feed = {"x": x.transpose(2, 0, 1)[None].astype(np.float32)}
        prepared = {d: engines.gemm_weights(wt, d) for d in (np.float32, np.float64)}
        fns = [lambda: session.run(None, feed)] + [
            lambda d=dtype, p=prep: engines.conv_tile(x, wt, bias, (s, s), (1, 1), pad, 2, 8,
                                                      dtype=d, weights=prepared[d] if p else None)
            for dtype, prep in ((np.float32, False), (np.float32, True), (np.float64, True))]
        if args.tile_rows:
            per_tile = [engines.gemm_weights(wt[o:o + args.tile_channels])
                        for o in range(0, m, args.tile_channels)]
            fns.append(lambda: tiled(engines, x, wt, per_tile, k, s, args.tile_rows,
                                     args.tile_channels))
        (t_ort, *times), medians = best_times(fns, args.runs)
        name = f"{h}x{w}x{c}->{m} {k}x{k}/{s}"
        line = f"{name:>28} {count:>5} {t_ort * 1e3:8.2f}" + "".join(
            f" {t * 1e3:8.2f} {t / t_ort:6.2f}" for t in times)
        print(line)
        rows.append({"layer": name, "count": count, "ort": t_ort, "engine": times,
                     "medians": medians})
        totals[:1 + len(times)] += count * np.array([t_ort, *times])
    n = 1 + len(rows[0]["engine"])
    print(f"{'ResNet-50 convs (weighted)':>28} {'53':>5} {totals[0] * 1e3:8.2f}" + "".join(
        f" {t * 1e3:8.2f} {t / totals[0]:6.2f}" for t in totals[1:n]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"compile": compile_, "layers": rows, "totals": totals[:n].tolist()}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
