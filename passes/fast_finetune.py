"""fast-finetune: refine each layer's int8 weights and bias to match the float model (AdaQuant).

For each ``quant.conv2d`` / ``quant.dense``, in program order, on calibration samples: the layer
sees the input the quantized model actually gives it, and its weights and bias, kept as floats
in units of their own grid steps and starting from the int8 values, are moved by Adam to
minimize the mean squared error between the layer's output with them rounded (STD_ROUND,
clamped to int8) and the float model's value at the same point; the gradient goes straight
through the rounding (AdaQuant, Hubara et al. 2020) and stops at the clamp. The rounded values
with the smallest error seen are kept, so a layer never ends worse than it started. The fix
points stay as legalized; only the int8 values change, so every shift stays in the DPU's
ranges. Later layers are tuned on the outputs of the tuned earlier ones.

The error is linear in the change ``D`` of the int8 values ``[w | b]`` of each group: with
``C`` the layer's input columns (one per output pixel, a ones row for the bias, each row
scaled to real units) and ``R`` the error left by the starting values, the loss is
``|D·C - R|²``. A step computes it directly (two products of cost M·K·P, for P output
pixels and K = C·kh·kw/group), or, when P is the larger, through ``G = C·Cᵀ`` and
``H = R·Cᵀ`` formed once: ``Σ D·(D·G - 2H) + |R|²``, gradient ``2(D·G - H)``, one product
of cost M·K². A layer takes at most :data:`STEPS` steps and :data:`MAX_MULTIPLY_ADDS` in all
(one that cannot afford :data:`MIN_STEPS` keeps its rounded values), and stops early once
its error has not fallen by :data:`PROGRESS` for :data:`PATIENCE` steps. Steps run in
float32; the chosen values are checked against the starting ones in float64.
"""

from __future__ import annotations

import numpy as np

from xir.dialects.graph.nn_kernels import pad_hw, windows
from xir.dialects.quant import kernels as K

from .bias_correction import first_samples, layer_targets, replace_constant
from .dpu_rules import constant_array

DEFAULT_SAMPLES = 200  # the digits benches: all their calibration samples
STEPS = 600
PATIENCE = 100  # steps without PROGRESS (relative) in the rounded error before a layer stops
PROGRESS = 1e-3
MIN_STEPS = 50  # a layer whose budget allows fewer steps stays rounded to nearest
STEP_SIZE = 0.05  # Adam's step in grid steps; digits: 35.9 / 31.1 dB (0.1: 35.9 / 30.8)
MAX_MULTIPLY_ADDS = 3 * 10 ** 10  # a layer's tuning budget: fewer steps for the largest layers
MAX_COLUMNS = 16384  # output pixels (over all samples) a layer is tuned on
MAX_ELEMENTS = 1 << 22  # column entries (pixels x K) a layer is tuned on


# -- the layer's error as a function of its int8 values ----------------------------------------


class DirectError:
    """``|D·C - R|²`` / count and its gradient, from the columns themselves."""

    def __init__(self, columns: np.ndarray, residual: np.ndarray):
        self.columns, self.residual = columns, residual  # (G, K+1, P), (G, M, P)
        self.count = residual.size
        self.base = float(np.sum(residual * residual)) / self.count
        groups, k, pixels = columns.shape
        self.multiply_adds = 2 * groups * residual.shape[1] * k * pixels
        self._single = (columns.astype(np.float32), residual.astype(np.float32))

    def __call__(self, change: np.ndarray, exact: bool = False):
        columns, residual = (self.columns, self.residual) if exact else self._single
        error = np.matmul(change.astype(columns.dtype), columns) - residual
        loss = float(np.sum(error * error)) / self.count
        return loss, np.matmul(error, columns.transpose(0, 2, 1)) * (2.0 / self.count)


class GramError:
    """The same loss and gradient through ``G = C·Cᵀ`` and ``H = R·Cᵀ``: exact, and cheaper
    than :class:`DirectError` when there are more pixels than columns."""

    def __init__(self, columns: np.ndarray, residual: np.ndarray):
        self.gram = np.matmul(columns, columns.transpose(0, 2, 1))  # (G, K+1, K+1)
        self.cross = np.matmul(residual, columns.transpose(0, 2, 1))  # (G, M, K+1)
        self.count = residual.size
        self.base = float(np.sum(residual * residual)) / self.count
        groups, k, _ = columns.shape
        self.multiply_adds = groups * residual.shape[1] * k * k
        self._single = (self.gram.astype(np.float32), self.cross.astype(np.float32))

    def __call__(self, change: np.ndarray, exact: bool = False):
        gram, cross = (self.gram, self.cross) if exact else self._single
        change = change.astype(gram.dtype)
        product = np.matmul(change, gram)
        loss = self.base + float(np.sum(change * (product - 2 * cross))) / self.count
        return loss, (product - cross) * (2.0 / self.count)


def layer_error(columns: np.ndarray, residual: np.ndarray):
    """The cheaper of :class:`GramError` and :class:`DirectError` for these columns."""
    _, k, pixels = columns.shape
    return GramError(columns, residual) if k < 2 * pixels else DirectError(columns, residual)


# -- tuning one layer ------------------------------------------------------------------------------


class _Adam:
    """Adam on one float32 array, with a step size in the array's own units."""

    def __init__(self, shape, lr: float):
        self.m, self.v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.t, self.lr = 0, lr

    def step(self, value: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        m_hat = self.m / (1 - 0.9 ** self.t)
        v_hat = self.v / (1 - 0.999 ** self.t)
        return value - self.lr * m_hat / (np.sqrt(v_hat) + 1e-12)


def _grid(values: np.ndarray) -> np.ndarray:
    """``values`` (in grid steps) rounded (STD_ROUND) and clamped to int8, as float32."""
    return np.clip(K.round_float(values, K.STD_ROUND), *K.int_range(8)).astype(np.float32)


def descend(error, start: np.ndarray, steps: int = STEPS) -> tuple[np.ndarray, float]:
    """The int8 values (as floats, the shape of ``start``) with the smallest ``error`` of their
    change from ``start`` seen in at most ``steps`` Adam steps, and that error (float64);
    ``start`` itself if nothing beats it, or if the layer's budget allows fewer than
    :data:`MIN_STEPS` steps."""
    steps = min(steps, MAX_MULTIPLY_ADDS // error.multiply_adds)
    if steps < MIN_STEPS:
        return start, error.base
    adam = _Adam(start.shape, STEP_SIZE)
    low, high = K.int_range(8)
    values, start32 = start.astype(np.float32), start.astype(np.float32)
    best, best_loss, progress, progress_step = start32, error.base, error.base, 0
    for step in range(steps + 1):
        current = _grid(values)
        loss, grad = error(current - start32)
        if loss < best_loss:
            best, best_loss = current, loss
        if loss < progress * (1 - PROGRESS):
            progress, progress_step = loss, step
        if step == steps or step - progress_step > PATIENCE:
            break
        grad[(values <= low) | (values >= high)] = 0.0  # the straight-through gradient stops
        values = adam.step(values, grad)
    if best is start32:
        return start, error.base
    loss = error(best - start, exact=True)[0]
    return (best.astype(np.float64), loss) if loss < error.base else (start, error.base)


def tune_layer(op, xs: list, ys: list, steps: int = STEPS) -> float:
    """Tune ``op``'s weights and bias on inputs ``xs`` (int8) and targets ``ys``; returns the
    fraction of the mean squared error left (tuned / rounded-to-nearest)."""
    columns, start, target = _layer_problem(op, np.concatenate(xs), np.concatenate(ys))
    error = layer_error(columns, target - np.matmul(start, columns))
    best, loss = descend(error, start, steps)
    if best is start:
        return 1.0
    replace_constant(op, 1, best[..., :-1].astype(np.int8).reshape(op.operands[1].type.shape))
    replace_constant(op, 2, best[..., -1].astype(np.int8).reshape(-1))
    return loss / error.base if error.base else 1.0


def _layer_problem(op, x: np.ndarray, target: np.ndarray):
    """The columns ``C`` (G, K/G + 1, N·P) in real units, the int8 values ``[w | b]``
    (G, M/G, K/G + 1) and the float targets (G, M/G, N·P) of ``op`` on input ``x`` (int8)."""
    p, shape = op.param, op.operands[1].type.shape
    group = p["group"] if op.name == "quant.conv2d" else 1
    chosen = fit_pixels(x.shape[0], target[0, 0].size, int(np.prod(shape[1:])))
    columns = np.ldexp(input_columns(op, x, chosen, group), -(p["input_fp"] + p["weight_fp"]))
    ones = np.full(columns[:, :1].shape, 2.0 ** -p["bias_fp"])
    weights = constant_array(op.operands[1], np.float64).reshape(group, shape[0] // group, -1)
    bias = constant_array(op.operands[2], np.float64).reshape(group, -1, 1)
    target = target.reshape(x.shape[0], group, shape[0] // group, -1)[..., chosen]
    return (np.concatenate([columns, ones], axis=1), np.concatenate([weights, bias], axis=2),
            target.transpose(1, 2, 0, 3).reshape(group, shape[0] // group, -1))


def fit_pixels(samples: int, pixels: int, k: int) -> np.ndarray:
    """The output pixels (flat indices, the same in every sample) a layer is tuned on: at most
    :data:`MAX_COLUMNS` over all samples and :data:`MAX_ELEMENTS` column entries, a seeded
    choice when that is not all of them."""
    keep = max(1, min(MAX_COLUMNS, MAX_ELEMENTS // k) // samples)
    if pixels <= keep:
        return np.arange(pixels)
    return np.sort(np.random.default_rng(0).choice(pixels, keep, replace=False))


def input_columns(op, x: np.ndarray, chosen: np.ndarray, group: int) -> np.ndarray:
    """Input columns (G, K/G, N·P) of the op's product at output pixels ``chosen``, float64: the
    im2col of a convolution's input ``x`` (N, C, H, W) in ``group`` groups, or a dense layer's
    input transposed (``chosen`` unused)."""
    if op.name == "quant.dense":
        return x.astype(np.float64).T[None]
    p = op.param
    kh, kw = op.operands[1].type.shape[2:]
    view = windows(pad_hw(x, p["pads"]), (kh, kw), p["strides"], p["dilations"])
    n, c, _, width = view.shape[:4]
    picked = view[:, :, chosen // width, chosen % width]  # N, C, P, KH, KW
    picked = picked.transpose(1, 3, 4, 0, 2).astype(np.float64)  # C, KH, KW, N, P
    return picked.reshape(group, c // group * kh * kw, n * len(chosen))


# -- the pass --------------------------------------------------------------------------------------


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
