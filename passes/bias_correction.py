"""bias-correction: remove the mean error that quantization adds to each output channel.

Quantized weights and inputs shift the mean of a layer's output a little, channel by channel,
and the shift adds up through the network. For each ``quant.conv2d`` / ``quant.dense`` with a
bias, in program order, this compares on calibration samples the layer's accumulator as the
quantized model computes it (from its actual int8 inputs, before rounding and activation) with
the float model's value at the same point, and subtracts the mean difference of each channel
from the bias (reference/dpu.md §3). Layers are corrected one after another, each measured with
the corrections before it in place. The bias keeps its fix point; only its int8 values change.
"""

from __future__ import annotations

import numpy as np

from xir.dialects.graph.constants import constant_attr, module_of
from xir.dialects.quant import kernels as K
from xir.ir import Operation

from .dpu_rules import constant_array, producer

ACCUMULATING = ("quant.conv2d", "quant.dense")
ACTIVATIONS = ("graph.relu", "graph.clip", "graph.leaky_relu", "graph.hard_sigmoid")
DEFAULT_SAMPLES = 64


def _accumulator(op, x, w) -> np.ndarray:
    """The op's integer accumulator on int8 input ``x`` and weight ``w``."""
    p = op.param
    if op.name == "quant.dense":
        return K.dense_acc(x, w)
    return K.conv2d_acc(x, w, p["strides"], p["pads"], p["dilations"], p["group"])


def pre_activation(value):
    """The float value before the activation that produced ``value`` (itself if none did)."""
    owner = producer(value)
    return owner.operands[0] if owner is not None and owner.name in ACTIVATIONS else value


def _channel_mean(array: np.ndarray) -> np.ndarray:
    """Mean over every axis but 1 (channels)."""
    axes = tuple(i for i in range(array.ndim) if i != 1)
    return array.mean(axis=axes)


def correct_biases(float_func: Operation, quant_func: Operation, layers, float_of, batches,
                   samples: int = DEFAULT_SAMPLES) -> dict:
    """Correct the bias of every accumulating layer of ``quant_func``; ``layers`` lists
    ``(report, float value, quant value)`` as the lowering recorded them and ``float_of`` maps
    the quantized module's float values to ``float_func``'s. Returns, per layer name, the mean
    absolute per-channel error before correction (in output units)."""
    used = first_samples(batches, samples)
    errors = {}
    for report, fvalue, qvalue in layers:
        op = producer(qvalue)
        if op is None or op.name not in ACCUMULATING or len(op.operands) < 3:
            continue
        if op.param["activation"] == "hard_sigmoid":
            continue  # its accumulator is rounded at hsigmoid_in first: not a plain affine read
        target = pre_activation(float_of.get(fvalue, fvalue))
        diff = _mean_difference(op, target, float_func, quant_func, used)
        errors[report.name] = float(np.mean(np.abs(diff)))
        _shift_bias(op, diff)
    return errors


def first_samples(batches, samples: int) -> list:
    """The leading batches that hold ``samples`` samples (or all of them)."""
    chosen, seen = [], 0
    for batch in batches:
        if seen >= samples:
            break
        chosen.append(batch)
        seen += next(iter(batch.values())).shape[0]
    return chosen


def layer_samples(op, target, float_func, quant_func, batches):
    """For each batch, ``(x, y)``: the int8 input the quantized model gives ``op`` and the float
    model's value ``target`` (what ``op`` should compute)."""
    from xir.interpreter import run_function

    x_value = op.operands[0]
    for batch in batches:
        seen: dict = {}

        def keep_float(o, outputs):
            for result, array in zip(o.results, outputs):
                if result is target:
                    seen["y"] = np.asarray(array, np.float64)

        def keep_input(o, outputs):
            for result, array in zip(o.results, outputs):
                if result is x_value:
                    seen["x"] = array

        run_function(float_func, batch, observe=keep_float)
        if producer(x_value) is None:  # the quant op reads a function argument directly
            seen["x"] = batch[next(iter(batch))]
        else:
            run_function(quant_func, batch, observe=keep_input)
        yield seen["x"], seen["y"]


def _mean_difference(op, target, float_func, quant_func, batches) -> np.ndarray:
    """Per channel, mean of (quantized accumulator − float value) over ``batches``."""
    p = op.param
    w = constant_array(op.operands[1])
    bias = np.ldexp(constant_array(op.operands[2]).astype(np.float64), -p["bias_fp"])
    total, count = 0.0, 0
    for x, y in layer_samples(op, target, float_func, quant_func, batches):
        acc = _accumulator(op, x, w).astype(np.float64)
        shape = (1, -1) + (1,) * (acc.ndim - 2)
        quantized = np.ldexp(acc, -(p["input_fp"] + p["weight_fp"])) + bias.reshape(shape)
        total = total + _channel_mean(quantized - y) * acc.shape[0]
        count += acc.shape[0]
    return total / count


def _shift_bias(op, diff: np.ndarray) -> None:
    """Subtract ``diff`` from the op's bias, at the bias's own fix point."""
    p = op.param
    bias = np.ldexp(constant_array(op.operands[2]).astype(np.float64), -p["bias_fp"]) - diff
    replace_constant(op, 2, K.fix(bias, p["bias_fp"], 8, K.STD_ROUND).astype(np.int8))


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
