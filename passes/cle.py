"""cle: cross-layer equalization (Nagel et al., 2019), so per-tensor weight scales fit every channel.

For two convolutions in a row, ``conv1 → relu → conv2`` (any chain of relu, leaky relu and
pooling between, or nothing; the second may be depthwise), output channel ``i`` of conv1 and input channel ``i`` of conv2 can be
rescaled against each other without changing the function, because relu(x / s) = relu(x) / s
for s > 0. With ``r1_i`` the range of conv1's channel ``i`` weights and ``r2_i`` that of conv2's,
``s_i = sqrt(r1_i · r2_i) / r2_i`` makes both ranges ``sqrt(r1_i · r2_i)``: conv1's weights and
bias are divided by ``s_i``, conv2's channel ``i`` weights multiplied by it. Chains are
equalized pair by pair, repeatedly, until the scales settle. Run ``fold-bn`` first: a batch norm
between the two hides the pair.

Equalization leaves one factor per pair free: conv1 divided by ``c`` and conv2 multiplied by it
(every channel alike) computes the same. With power-of-two fix points that factor matters: a
tensor whose largest value is just above a power of two (1.05, say) is quantized with half the
resolution of one just below it, and plain CLE tends to leave every layer at such a boundary.
After the sweeps, :func:`align_to_grid` chooses each pair's ``c`` among 2^(k/32), |k| ≤ 16 (one
octave: the grid repeats every factor of two), minimizing the sum of the relative squared
quantization errors (min-MSE fix point, int8) of conv1's weights, conv2's weights and, when
calibration inputs are given, the activation between them, which ``c`` divides too.
"""

from __future__ import annotations

import attrs
import numpy as np

from xir import attributes as A
from xir.dialects.graph.constants import constant_attr, module_of
from xir.dialects.quant import kernels as K
from xir.ir import Operation
from xir.pass_manager import Pass, register_pass

from . import fixpoint
from .dpu_rules import constant_array, is_constant, node_name, producer
from .fusion import sole_user

# per-channel ops f with f(x / s) = f(x) / s for s > 0: a pair may have any chain of them between
POSITIVELY_HOMOGENEOUS = ("graph.relu", "graph.leaky_relu", "graph.max_pool2d",
                          "graph.avg_pool2d", "graph.global_avg_pool")
TOLERANCE = 1e-6  # stop when every scale of a sweep is within this of 1
ALIGN_FACTORS = 2.0 ** (np.arange(-16, 17) / 32)  # one octave around 1
ALIGN_SWEEPS = 2  # a chain's pairs share layers: a second sweep lets them settle together
ERROR_SAMPLE = 1 << 13  # values a relative error is estimated on, at most (range kept exact)


def _weights(conv) -> np.ndarray:
    return constant_array(conv.operands[1], np.float64)


def _is_depthwise(conv) -> bool:
    weight = conv.operands[1].type.shape
    return conv.param["group"] > 1 and conv.param["group"] == conv.operands[0].type.shape[1] \
        and weight[0] == conv.param["group"] and weight[1] == 1


def _equalizable(conv) -> bool:
    return (conv.name == "graph.conv2d" and len(conv.operands) >= 2 and is_constant(conv.operands[1])
            and (len(conv.operands) < 3 or is_constant(conv.operands[2]))
            and (conv.param["group"] == 1 or _is_depthwise(conv)))


def pairs(func: Operation) -> list[tuple[Operation, Operation]]:
    """The ``(conv1, conv2)`` pairs of ``func`` that can be equalized."""
    found = []
    for op in func.regions[0].blocks[0].ops:
        if not _equalizable(op):
            continue
        nxt = sole_user(op.results[0])
        while nxt is not None and nxt.name in POSITIVELY_HOMOGENEOUS:
            nxt = sole_user(nxt.results[0])
        if nxt is not None and _equalizable(nxt):
            found.append((op, nxt))
    return found


def _ranges(weight: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(np.abs(weight), axis, 0)
    return moved.reshape(moved.shape[0], -1).max(axis=1)


def equalize_pair(conv1: Operation, conv2: Operation) -> np.ndarray:
    """Rescale one pair in place (new constants); returns the scales ``s`` used."""
    r1 = _ranges(_weights(conv1), 0)
    r2 = _ranges(_weights(conv2), 0 if _is_depthwise(conv2) else 1)
    scale = np.ones_like(r1)
    ok = (r1 > 0) & (r2 > 0)
    scale[ok] = np.sqrt(r1[ok] * r2[ok]) / r2[ok]
    scale_channels(conv1, conv2, scale)
    return scale


def scale_channels(conv1: Operation, conv2: Operation, scale: np.ndarray) -> None:
    """Divide conv1's output channel ``i`` (weights and bias) by ``scale[i]`` and multiply
    conv2's input channel ``i`` by it: the pair computes the same (for positive scales)."""
    w1, w2 = _weights(conv1), _weights(conv2)
    shape2 = [1] * w2.ndim
    shape2[0 if _is_depthwise(conv2) else 1] = -1
    replace_operand(conv1, 1, w1 / scale.reshape((-1,) + (1,) * (w1.ndim - 1)), "w")
    if len(conv1.operands) > 2:
        bias = constant_array(conv1.operands[2], np.float64)
        replace_operand(conv1, 2, bias / scale, "b")
    replace_operand(conv2, 1, w2 * scale.reshape(shape2), "w")


def replace_operand(op: Operation, index: int, array: np.ndarray, suffix: str) -> None:
    """Give operand ``index`` of ``op`` a new ``graph.constant`` holding ``array`` (as float32),
    located like the constant it replaces and named ``<layer>_<suffix>``; the old constant goes
    (with its resource) once nothing else uses it."""
    module = module_of(op)
    old = producer(op.operands[index])
    attr = constant_attr(module, array.astype(np.float32), f"{node_name(op)}_{suffix}")
    new = Operation.create("graph.constant", (), [attr.type], attributes={"value": attr},
                           location=old.location)
    op.parent.insert_before(new, op)
    op.set_operand(index, new.results[0])
    if not old.results[0].uses:
        value = old.attributes.get("value")
        old.erase()
        if isinstance(value, A.DenseResourceAttr):
            module.resources.pop(value.handle.name, None)


def equalize(func: Operation, max_sweeps: int = 20, sample: dict | None = None) -> int:
    """Equalize every pair of ``func`` until the scales settle, then align each pair to the
    power-of-two grid (:func:`align_to_grid`, on the activations ``sample`` gives, if any);
    returns the sweeps run."""
    found = pairs(func)
    sweeps = max_sweeps
    for sweep in range(1, max_sweeps + 1):
        worst = max((float(np.max(np.abs(np.log(equalize_pair(a, b))))) for a, b in found),
                    default=0.0)
        if worst <= TOLERANCE:
            sweeps = sweep
            break
    align_to_grid(func, found, sample)
    return sweeps


def align_to_grid(func: Operation, found: list, sample: dict | None = None) -> None:
    """Scale each pair ``(conv1, conv2)`` by the factor of :data:`ALIGN_FACTORS` whose int8
    power-of-two quantization loses least, relative to the signal, over conv1's weights,
    conv2's weights and the activation between them (measured on ``sample``, the model's
    inputs, when given)."""
    activations = _activations_between(func, found, sample) if sample else {}
    for _ in range(ALIGN_SWEEPS):
        for conv1, conv2 in found:
            # samples keep each tensor's extremes, and scaling by c > 0 commutes with sampling
            w1, w2 = _sample(_weights(conv1)), _sample(_weights(conv2))
            between = activations.get(conv2)

            def loss(c):
                total = relative_error(w1 / c, False) + relative_error(w2 * c, False)
                return total + (relative_error(between / c, True) if between is not None else 0)

            c = min(ALIGN_FACTORS, key=loss)
            if c != 1.0:
                scale_channels(conv1, conv2, np.full(conv1.operands[1].type.shape[0], c))
                if between is not None:
                    activations[conv2] = between / c


def relative_error(x: np.ndarray, activation: bool) -> float:
    """Σ(x − Q(x))² / Σx² for int8 at the min-MSE fix point: DPU rounding for an activation,
    STD_ROUND for weights; estimated on :func:`_sample` of ``x``."""
    flat = _sample(x)
    mode = K.DPU_ROUND if activation else K.STD_ROUND
    fp = fixpoint.diffs_fp(flat, half_up=activation)
    error = K.fix(flat, fp, 8, mode) * 2.0 ** -fp - flat
    signal = float(np.dot(flat, flat))
    return float(np.dot(error, error)) / signal if signal > 0 else 0.0


def _sample(x: np.ndarray) -> np.ndarray:
    """At most about :data:`ERROR_SAMPLE` values of ``x``, evenly strided, with its minimum and
    maximum (which decide the fix point) always among them."""
    flat = np.asarray(x, np.float64).reshape(-1)
    if flat.size <= ERROR_SAMPLE:
        return flat
    return np.concatenate([flat[::-(-flat.size // ERROR_SAMPLE)], [flat.min(), flat.max()]])


def _activations_between(func: Operation, found: list, sample: dict) -> dict:
    """conv2 -> a strided sample of its input's values on the model inputs ``sample``."""
    from xir.interpreter import run_function

    wanted = {conv2.operands[0]: conv2 for _, conv2 in found}
    seen: dict = {}

    def observe(op, arrays):
        for result, array in zip(op.results, arrays):
            if result in wanted:
                seen[wanted[result]] = _sample(array)

    run_function(func, sample, observe=observe)
    return seen


@register_pass
@attrs.frozen
class CrossLayerEqualization(Pass):
    """Equalize the weight ranges of consecutive convolutions and align them to the
    power-of-two grid (function-preserving)."""

    name = "cle"
    sweeps: int = 20

    def run(self, module: Operation) -> None:
        """Equalize every function of ``module`` (weights only: a pass has no activations)."""
        for op in list(module.walk()):
            if op.name == "func.func" and op.regions and op.regions[0].blocks:
                equalize(op, self.sweeps)
