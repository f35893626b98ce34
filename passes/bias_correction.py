"""bias-correction: remove the mean error that quantization adds to each output channel.

Quantized weights and inputs shift the mean of a layer's output a little, channel by channel,
and the shift adds up through the network. For each ``quant.conv2d`` / ``quant.dense`` with a
bias, in program order, this compares on calibration samples the layer's accumulator as the
quantized model computes it (from its actual int8 inputs, before rounding and activation) with
the float model's value at the same point, and subtracts the mean difference of each channel
from the bias (reference/dpu.md §3). Each layer is measured with the corrections before it in
place. The bias keeps its fix point; only its int8 values change.
"""

from __future__ import annotations

import numpy as np

from xir.dialects.graph.constants import constant_attr, module_of
from xir.ir import Operation

from .dpu_rules import constant_array, producer
from .quant_lowering import quantize_constant

ACCUMULATING = ("quant.conv2d", "quant.dense")
ACTIVATIONS = ("graph.relu", "graph.clip", "graph.leaky_relu", "graph.hard_sigmoid")
DEFAULT_SAMPLES = 64


def pre_activation(value):
    """The float value before the activation that produced ``value`` (itself if none did)."""
    owner = producer(value)
    return owner.operands[0] if owner is not None and owner.name in ACTIVATIONS else value


def _channel_mean(array: np.ndarray) -> np.ndarray:
    """Mean over every axis but 1 (channels)."""
    axes = tuple(i for i in range(array.ndim) if i != 1)
    return array.mean(axis=axes)


def correctable(op) -> bool:
    """Whether ``op`` is a conv/dense with a bias whose accumulator reads as an affine value."""
    return (op is not None and op.name in ACCUMULATING and len(op.operands) >= 3
            # these two round at hsigmoid_in first: the accumulator is not the layer's output
            and op.param["activation"] not in ("hard_sigmoid", "hard_swish"))


def layer_targets(layers, float_of) -> dict:
    """For each correctable quant op among ``layers`` (``(report, float value, quant value)``),
    its layer name and the float value it should compute (before any activation)."""
    targets = {}
    for report, fvalue, qvalue in layers:
        op = producer(qvalue)
        if correctable(op):
            targets[op] = (report.name, pre_activation(float_of.get(fvalue, fvalue)))
    return targets


def correct_biases(float_func: Operation, quant_func: Operation, layers, float_of, batches,
                   samples: int = DEFAULT_SAMPLES) -> dict:
    """Correct the bias of every accumulating layer of ``quant_func``; ``layers`` lists
    ``(report, float value, quant value)`` as the lowering recorded them and ``float_of`` maps
    the quantized module's float values to ``float_func``'s. Returns, per layer name, the mean
    absolute per-channel error before correction (in output units).

    Two passes: the float model once, for each layer's per-channel mean; then the quantized
    model once, all samples side by side (:func:`xir.interpreter.run_lockstep`), each layer's
    bias corrected just before it runs, so it sees the corrections before it."""
    from xir.interpreter import run_function, run_lockstep

    used = first_samples(batches, samples)
    targets = layer_targets(layers, float_of)
    float_means = _float_means({t for _, t in targets.values()}, float_func, used, run_function)
    errors = {}

    def correct(op, operand_sets):
        if op in targets:
            name, target = targets[op]
            diff = _quantized_mean(op, [operands[0] for operands in operand_sets]) - \
                float_means[target]
            errors[name] = float(np.mean(np.abs(diff)))
            _shift_bias(op, diff)

    run_lockstep(quant_func, used, before=correct)
    return errors


def _float_means(values: set, float_func, batches, run_function) -> dict:
    """Per-channel means of the float ``values`` over ``batches``."""
    sums: dict = {}

    def observe(op, outputs):
        for result, array in zip(op.results, outputs):
            if result in values:
                total, count = sums.get(result, (0.0, 0))
                sums[result] = (total + _channel_mean(np.asarray(array, np.float64)) *
                                array.shape[0], count + array.shape[0])

    for batch in batches:
        run_function(float_func, batch, observe=observe)
    return {value: total / count for value, (total, count) in sums.items()}


def _quantized_mean(op, inputs: list) -> np.ndarray:
    """Per-channel mean of ``op``'s accumulator plus bias, as a float, over the int8 ``inputs``."""
    p = op.param
    w = constant_array(op.operands[1])
    bias = np.ldexp(constant_array(op.operands[2]).astype(np.float64), -p["bias_fp"])
    total, count = 0.0, 0
    for x in inputs:
        acc = np.ldexp(op.accumulate(x, w).astype(np.float64), -(p["input_fp"] + p["weight_fp"]))
        total = total + _channel_mean(acc) * acc.shape[0]
        count += acc.shape[0]
    return total / count + bias


def first_samples(batches, samples: int) -> list:
    """The leading batches that hold ``samples`` samples (or all of them)."""
    chosen, seen = [], 0
    for batch in batches:
        if seen >= samples:
            break
        chosen.append(batch)
        seen += next(iter(batch.values())).shape[0]
    return chosen


def _shift_bias(op, diff: np.ndarray) -> None:
    """Subtract ``diff`` from the op's bias, at the bias's own fix point."""
    p = op.param
    bias = np.ldexp(constant_array(op.operands[2]).astype(np.float64), -p["bias_fp"]) - diff
    replace_constant(op, 2, quantize_constant(bias, p["bias_fp"]))


def replace_constant(op, index: int, q: np.ndarray) -> None:
    """Give operand ``index`` of ``op`` (a ``quant.constant``) the int8 values ``q``, keeping its
    fix point; the old constant goes if nothing else reads it."""
    old = producer(op.operands[index])
    attributes = dict(old.attributes)
    name = old.results[0].name_hint or "cst"
    attributes["value"] = constant_attr(module_of(op), np.asarray(q, np.int8), f"{name}_tuned")
    new = Operation.create(old.name, (), [old.results[0].type], attributes=attributes,
                           location=old.location)
    op.parent.insert_before(new, op)
    op.set_operand(index, new.results[0])
    if not old.results[0].uses:
        old.erase()
