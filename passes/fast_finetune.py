"""fast-finetune: refine each layer's int8 weights and bias to match the float model (AdaQuant).

For each ``quant.conv2d`` / ``quant.dense``, in program order, on calibration samples: the layer
sees the input the quantized model actually gives it, and its weights ``V`` (float, starting
from the quantized ones) and bias ``b`` are moved by Adam to minimize the mean squared error
between ``conv(x, Q(V)) + b`` and the float model's value at the same point, where ``Q`` rounds
to the layer's own weight grid (a straight-through gradient, as in AdaQuant, Hubara et al.
2020). The fix points stay as legalized; only the int8 values change, so every shift stays in
the DPU's ranges. Later layers are tuned on the outputs of the tuned earlier ones.
"""

from __future__ import annotations

import numpy as np

from xir.dialects.graph.nn_kernels import im2col

from .bias_correction import first_samples, layer_targets, replace_constant
from .dpu_rules import constant_array
from .quant_lowering import quantize_constant

DEFAULT_SAMPLES = 200  # digits, B=200: 64 samples/300 steps gave 30.7 dB, 200/600 gave 31.2 dB
STEPS = 600
WEIGHT_LR = 0.1  # in units of the weight grid step (2^-weight_fp) per step
BIAS_LR = 0.1  # in units of the bias grid step
MAX_COLUMNS = 16384  # output pixels (over all samples) a layer is tuned on
MAX_ELEMENTS = 1 << 22  # column entries (pixels x C·kh·kw / group) a layer is tuned on


def _columns(op, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Input columns (N, G, K/G, P) of the op's product, and its group count."""
    if op.name == "quant.dense":
        return x.reshape(x.shape[0], 1, x.shape[1], 1), 1
    p = op.param
    kh, kw = op.operands[1].type.shape[2:]
    cols = im2col(x, (kh, kw), p["strides"], p["pads"], p["dilations"])
    n, k, oh, ow = cols.shape
    return cols.reshape(n, p["group"], k // p["group"], oh * ow), p["group"]


class _Adam:
    """Adam on one array, with a step size in the array's own units."""

    def __init__(self, shape, lr: float):
        self.m, self.v, self.t, self.lr = np.zeros(shape), np.zeros(shape), 0, lr

    def step(self, value: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        m_hat = self.m / (1 - 0.9 ** self.t)
        v_hat = self.v / (1 - 0.999 ** self.t)
        return value - self.lr * m_hat / (np.sqrt(v_hat) + 1e-12)


def tune_layer(op, xs: list, ys: list, steps: int = STEPS) -> float:
    """Tune ``op``'s weights and bias on inputs ``xs`` (int8) and targets ``ys``; returns the
    fraction of the mean squared error left (tuned / rounded-to-nearest)."""
    p = op.param
    w_fp, b_fp, i_fp = p["weight_fp"], p["bias_fp"], p["input_fp"]
    shape = op.operands[1].type.shape
    cols, group = _columns(op, np.ldexp(np.concatenate(xs).astype(np.float64), -i_fp))
    m = shape[0]
    target = np.concatenate(ys).reshape(cols.shape[0], group, m // group, -1)
    cols, target = _subsample(cols, target)
    v = np.ldexp(constant_array(op.operands[1], np.float64), -w_fp).reshape(group, m // group, -1)
    b = np.ldexp(constant_array(op.operands[2], np.float64), -b_fp).reshape(group, m // group, 1)
    adam_v = _Adam(v.shape, WEIGHT_LR * 2.0 ** -w_fp)
    adam_b = _Adam(b.shape, BIAS_LR * 2.0 ** -b_fp)
    lo, hi = -128 * 2.0 ** -w_fp, 127 * 2.0 ** -w_fp
    count = target.size

    def loss_and_error(weights, bias):
        error = np.matmul(weights, cols) + bias - target
        return float(np.sum(error * error)) / count, error

    start, _ = loss_and_error(_grid(v, w_fp), _grid(b, b_fp))
    best = (start, v.copy(), b.copy())
    for _ in range(steps):
        loss, error = loss_and_error(_grid(v, w_fp), b)
        grad_w = np.einsum("ngmp,ngkp->gmk", error, cols) * (2.0 / count)
        grad_w[(v <= lo) | (v >= hi)] = 0.0  # the straight-through gradient stops at the clamp
        grad_b = error.sum(axis=(0, 3), keepdims=False)[..., None] * (2.0 / count)
        v, b = adam_v.step(v, grad_w), adam_b.step(b, grad_b)
        tuned, _ = loss_and_error(_grid(v, w_fp), _grid(b, b_fp))
        if tuned < best[0]:
            best = (tuned, v.copy(), b.copy())
    loss, v, b = best
    replace_constant(op, 1, quantize_constant(v, w_fp).reshape(shape))
    replace_constant(op, 2, quantize_constant(b, b_fp).reshape(-1))
    return loss / start if start else 1.0


def _subsample(cols: np.ndarray, target: np.ndarray):
    """At most :data:`MAX_COLUMNS` output pixels, and at most :data:`MAX_ELEMENTS` column
    entries (the same seeded choice in every sample): the error of a large layer is estimated
    on a fixed subset, which keeps a step cheap."""
    n, _, k, pixels = cols.shape
    keep = max(1, min(MAX_COLUMNS, MAX_ELEMENTS // k) // n)
    if pixels <= keep:
        return cols, target
    chosen = np.sort(np.random.default_rng(0).choice(pixels, keep, replace=False))
    return cols[..., chosen], target[..., chosen]


def _grid(values: np.ndarray, fp: int) -> np.ndarray:
    return np.ldexp(quantize_constant(values, fp).astype(np.float64), -fp)


def fast_finetune(float_func, quant_func, layers, float_of, batches,
                  samples: int = DEFAULT_SAMPLES, steps: int = STEPS) -> dict:
    """Tune every conv/dense of ``quant_func`` with a bias, in order; returns per layer the
    fraction of its squared error left after tuning.

    Two passes: the float model once, keeping each layer's target values; then the quantized
    model once with every sample side by side (:func:`xir.interpreter.run_lockstep`), each
    layer tuned just before it runs on what actually reaches it."""
    from xir.interpreter import run_function, run_lockstep

    used = first_samples(batches, samples)
    targets = layer_targets(layers, float_of)
    wanted = {target: [] for _, target in targets.values()}

    def keep(op, outputs):
        for result, array in zip(op.results, outputs):
            if result in wanted:
                wanted[result].append(np.asarray(array, np.float32))

    for batch in used:
        run_function(float_func, batch, observe=keep)
    left = {}

    def tune(op, operand_sets):
        if op in targets:
            name, target = targets[op]
            left[name] = tune_layer(op, [operands[0] for operands in operand_sets],
                                    wanted.pop(target), steps)

    run_lockstep(quant_func, used, before=tune)
    return left
