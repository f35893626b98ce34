"""quantize: post-training INT8 quantization with power-of-two scales, graph dialect → quant.

:func:`quantize_module` takes a float (graph-dialect) module and calibration samples and returns
the quantized module and a :class:`QuantReport`:

1. a copy of the module has its batch norms folded (:mod:`.fold_bn`) and, optionally, its weight
   ranges equalized (:mod:`.cle`); weights holding NaN or infinities are an error naming them;
2. the folded function runs over the calibration samples (:mod:`.calibrate`), which chooses a fix
   point for every activation by ``method``: ``diffs`` (min-MSE with the per-batch vote, the
   default), ``nonoverflow`` or ``percentile``;
3. :class:`.quant_lowering.Lowering` rewrites each op the DPU runs into its quant op, in
   program order: weights and biases become int8 constants with their own fix points (diffs
   or non-overflow on the values, STD_ROUND; percentile uses diffs for them), an activation
   that the DPU fuses (relu, relu6, leaky relu, hard sigmoid after a convolution or dense;
   relu, leaky relu after an eltwise add) goes into its producer, and the fix points are
   legalized (:mod:`.quant_legalize`). Every other op stays a float graph op between
   ``quant.dequantize`` and ``quant.quantize``; the model's inputs are quantized (STD_ROUND)
   and its outputs dequantized, so the quantized function has the float one's signature;
4. the result is verified, and each layer's output is compared with the float one on a few
   calibration samples (SQNR in dB).

Fix points shared by construction: a concat's inputs, pooling and data movement (reshape,
flatten, pad, resize) keep one fix point across input and output. Those tensors are tied
together before lowering and take the smallest (widest-range) fix point of the tie, so their
producers write at it directly; where a producer cannot (its fix point was forced by a rule, or
moved by legalization), the consumer reads through a requantizing op: an identity depthwise 1×1
convolution (weight 2^k at fix point k) for 4-D tensors, an identity dense for 2-D ones, a
float round trip otherwise. The report lists every requantization.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from xir import types as T
from xir.diagnostics import XirError

from .calibrate import calibrate, calibration_batches
from .dpu_rules import node_name, producer
from .quant_lowering import Lowering
from .quant_report import LayerReport, QuantReport, sqnr_db

__all__ = ["METHODS", "LayerReport", "QuantReport", "check_weights", "quantize_module", "sqnr_db"]

METHODS = ("diffs", "nonoverflow", "percentile")
SQNR_SAMPLES = 32  # calibration samples the per-layer SQNR is measured on


def check_weights(func) -> None:
    """Every float constant of ``func`` must be finite (XirError naming the first that is not)."""
    for op in func.walk():
        if op.name != "graph.constant" or op.results[0].type.element_type not in (T.f32, T.f64,
                                                                                   T.f16):
            continue
        array = np.asarray(op.all_attributes()["value"].to_numpy())
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            users = sorted({node_name(u) for u in op.results[0].users})
            used = f" (used by {', '.join(users)})" if users else ""
            raise XirError(f"weight '{node_name(op)}'{used} holds {bad} NaN or infinite values")

# -- the entry point -----------------------------------------------------------------------------


def _main(module):
    from xir.symbols import entry_function

    return entry_function(module, "main", "quantize")


def quantize_module(module, calibration_data: dict, method: str = "diffs", cle: bool = True,
                    batch_size: int = 32, progress: bool = False, bias_correction: bool = True,
                    fast_finetune: bool = False, finetune_steps: int | None = None,
                    phase=None):
    """Quantize float ``module`` (graph dialect) on ``calibration_data`` (arrays keyed by the
    model's input names, first axis = samples); returns ``(quant_module, QuantReport)``.
    ``module`` itself is not changed. Bad calibration data or non-finite weights raise
    XirError; fewer than 100 samples is a warning. ``phase(name)``, if given, returns a context
    manager wrapped around each step (fold-bn, cle, calibrate, lower, bias-correction,
    fast-finetune, measure): the compile command and its benchmark time them so."""
    from xir.interpreter import run_function
    from xir.verifier import verify

    from .cle import equalize
    from .fold_bn import fold_batch_norms

    step = phase or (lambda name: contextlib.nullcontext())
    if method not in METHODS:
        raise XirError(f"unknown calibration method '{method}' (expects one of "
                       f"{', '.join(METHODS)})")
    check_weights(_main(module))
    with step("fold-bn"):
        folded = module.clone()
        func = _main(folded)
        fold_batch_norms(func)
        batches, count = calibration_batches(func, calibration_data, batch_size)
    if not batches:
        batch = func.regions[0].blocks[0].args[0].type.shape[0]
        raise XirError(f"calibration data holds {count} samples, fewer than the model's fixed "
                       f"batch of {batch}")
    if cle:
        with step("cle"):
            equalize(func, sample=batches[0])
    check_weights(func)
    with step("calibrate"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # calibration_batches above warned once, for the caller
        calibration = calibrate(func, calibration_data, batch_size, progress)
    _check_activations(calibration)

    with step("lower"):
        value_map: dict = {}
        quantized = folded.clone(value_map)
        float_of = {new: old for old, new in value_map.items()}
        report = QuantReport(method, count)
        lowering = Lowering(quantized, _main(quantized), calibration, float_of, method, report)
        lowering.run()
        verify(quantized)
    if bias_correction:
        from .bias_correction import correct_biases

        with step("bias-correction"):
            report.bias_errors = correct_biases(func, _main(quantized), lowering.layers,
                                                float_of, batches)
            verify(quantized)
    if fast_finetune:
        from .fast_finetune import STEPS
        from .fast_finetune import fast_finetune as tune

        with step("fast-finetune"):
            report.finetune_left = tune(func, _main(quantized), lowering.layers, float_of,
                                        batches, steps=finetune_steps or STEPS)
            verify(quantized)
    with step("measure"):
        _measure(func, _main(quantized), lowering, float_of, batches, report, run_function)
    return quantized, report


def _check_activations(calibration) -> None:
    for value, stats in calibration.stats.items():
        if not (math.isfinite(stats.low) and math.isfinite(stats.high)):
            owner = producer(value)
            what = node_name(owner) if owner is not None else (value.name_hint or "an input")
            raise XirError(f"the float model computes NaN or infinite values at '{what}' on the "
                           "calibration data")


def _measure(float_func, quant_func, lowering, float_of, batches, report, run_function) -> None:
    """Each layer's and each output's SQNR over the first calibration samples."""
    wanted = {}  # float (folded) value -> [signal, noise, float array of this batch]
    for _, fvalue, qvalue in lowering.layers:
        wanted.setdefault(float_of.get(fvalue), [0.0, 0.0, None])
    by_quant = {qvalue: float_of.get(fvalue) for _, fvalue, qvalue in lowering.layers}
    outputs = None
    seen = 0
    for batch in batches:
        if seen >= SQNR_SAMPLES:
            break
        seen += next(iter(batch.values())).shape[0]

        def observe_float(op, arrays):
            for result, array in zip(op.results, arrays):
                if result in wanted:
                    wanted[result][2] = np.asarray(array, np.float64)

        def observe_quant(op, arrays):
            for result, array in zip(op.results, arrays):
                key = by_quant.get(result)
                if key is not None and wanted[key][2] is not None:
                    x = wanted[key][2]
                    xq = np.ldexp(np.asarray(array, np.float64), -op.output_fix_point())
                    wanted[key][0] += float(np.sum(x * x))
                    wanted[key][1] += float(np.sum((x - xq) ** 2))

        reference = run_function(float_func, batch, observe=observe_float)
        got = run_function(quant_func, batch, observe=observe_quant)
        if outputs is None:
            outputs = [[0.0, 0.0] for _ in reference]
        for acc, x, xq in zip(outputs, reference, got):
            x, xq = np.asarray(x, np.float64), np.asarray(xq, np.float64)
            acc[0] += float(np.sum(x * x))
            acc[1] += float(np.sum((x - xq) ** 2))
        for entry in wanted.values():
            entry[2] = None
    for layer, fvalue, _ in lowering.layers:
        signal, noise, _ = wanted[float_of.get(fvalue)]
        layer.sqnr_db = sqnr_db(signal, noise)
    report.output_sqnr_db = [sqnr_db(s, n) for s, n in outputs or []]
