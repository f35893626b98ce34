"""Recovery without training: win back the accuracy pruning lost, from calibration data alone.

Two methods, each on a pruned float module (zeroed by :func:`~.transform.zero_channels` or made
smaller by :func:`~.transform.remove_channels`), each returning a clone:

:func:`reestimate_bn` runs the pruned model on calibration data and gives every batch norm the
mean and variance of what now reaches it. A layer that lost input channels computes outputs with
another mean and spread than the statistics its batch norm was trained with; re-estimating them
re-centres and re-scales each channel (the "adaptive batch norm" of pruning papers). It helps a
model pruned by zeroing alone, the more the more it was pruned; after :func:`reconstruct` the
layers already compute what they did before, so there it changes little. A channel that sees a
constant (a zeroed one) keeps its statistics.

:func:`reconstruct` refits the weights of every layer that reads pruned channels (a convolution
or dense layer consuming a pruned group): by least squares, over the input channels it keeps
(im2col columns for a convolution, with a ones row for the bias), its output before the
activation is made to match the ORIGINAL model's output of that layer on the calibration data.
The inputs are the pruned model's own activations, taken layer by layer in program order with
the earlier layers already refitted, so errors do not add up along the network. The change of
the weights is what is solved for, with a small ridge term: ``min |D·C - R|² + λ|D|²`` where
``R`` is the layer's error with its current weights, so a layer that lost nothing is left
exactly as it is, and a poorly conditioned fit stays near the pruned weights. A layer without a
bias gets one (the lost channels' mean contribution moves into it).
"""

from __future__ import annotations

import warnings

import numpy as np

from xir.diagnostics import XirError
from xir.symbols import entry_function

from ..dpu_rules import constant_array, node_name
from ..fast_finetune import fit_pixels, input_columns
from .finetune import set_constant
from .groups import trace
from .transform import input_axis, output_axis

CONSUMERS = ("graph.conv2d", "graph.gemm", "graph.matmul")
DEFAULT_SAMPLES = 512
RIDGE = 1e-3  # λ relative to the mean of the Gram matrix's diagonal


def calibration_sets(module, data, samples: int = DEFAULT_SAMPLES, batch_size: int = 64):
    """The first ``samples`` samples of ``data`` (a dict from input names to arrays, the first
    axis counting samples; or one array for a one-input model) as input dicts of ``batch_size``
    samples, checked against ``@main``'s inputs."""
    from xir.interpreter import input_names
    from xir.passes.calibrate import calibration_batches

    func = entry_function(module, "main", "prune")
    if not isinstance(data, dict):
        shown = input_names(func)[1]
        if len(shown) != 1:
            raise XirError(f"prune: the model has {len(shown)} inputs; give the calibration "
                           "data as a dict from input names to arrays")
        data = {shown[0]: data}
    data = {k: np.asarray(v)[:samples] for k, v in data.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fix-point warning about few samples is not ours
        batches, _ = calibration_batches(func, data, batch_size, "prune calibration data")
    if not batches:
        raise XirError("prune calibration data holds no samples")
    return func, batches


# -- batch norm statistics -----------------------------------------------------------------------


def reestimate_bn(module, data, samples: int = DEFAULT_SAMPLES, batch_size: int = 64):
    """A clone of ``module`` whose batch norms' running mean and variance are those of their
    inputs on ``data`` (see the module docstring); each is measured with the ones before it
    already re-estimated."""
    from xir.interpreter import run_lockstep

    clone = module.clone()
    func, batches = calibration_sets(clone, data, samples, batch_size)

    def measure(op, operand_sets):
        if op.name != "graph.batch_norm":
            return
        x = np.concatenate([operands[0] for operands in operand_sets]).astype(np.float64)
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        old_mean = constant_array(op.operands[3], np.float64).reshape(-1)
        old_var = constant_array(op.operands[4], np.float64).reshape(-1)
        constant = var == 0
        mean = np.where(constant, np.broadcast_to(old_mean, mean.shape), mean)
        var = np.where(constant, np.broadcast_to(old_var, var.shape), var)
        set_constant(op, 3, mean.reshape(op.operands[3].type.shape))
        set_constant(op, 4, var.reshape(op.operands[4].type.shape))

    run_lockstep(func, batches, before=measure)
    return clone


# -- least-squares reconstruction -----------------------------------------------------------------


def layer_plans(original, removed: dict, layers=None) -> dict:
    """The layers of ``original`` to refit, each with ``(removed input channels, removed output
    channels)`` as index arrays of its own weight's axes: every layer that reads pruned
    channels, and the convolutions and dense layers named in ``layers`` (a layer that lost
    nothing is refitted too, to the same weights)."""
    tracing = trace(original)
    inputs: dict = {}
    outputs: dict = {}
    for name, channels in removed.items():
        group = tracing.group(name)
        channels = np.asarray(sorted(set(int(c) for c in channels)), np.int64)
        if channels.size and (channels.min() < 0 or channels.max() >= group.channels):
            raise XirError(f"prune: group '{name}' has {group.channels} channels; channel "
                           f"{int(channels.min() if channels.min() < 0 else channels.max())} "
                           "does not exist")
        for use in tracing.uses[name] if channels.size else ():
            if use.role == "consumer":
                start = (use.offset + channels[:, None]) * use.block
                inputs.setdefault(use.op, []).append((start + np.arange(use.block)).ravel())
            elif use.role == "producer":
                outputs.setdefault(use.op, []).append(channels)
    if layers is not None:
        by_name = _layers_by_name(entry_function(original, "main", "prune"))
        for name in layers:
            if name not in by_name:
                raise XirError(f"prune: no convolution or dense layer '{name}' to reconstruct")
            inputs.setdefault(by_name[name], [])
    empty = np.zeros(0, np.int64)
    return {op: (np.concatenate([empty, *ins]), np.concatenate([empty, *outputs.get(op, [])]))
            for op, ins in inputs.items()}


def reconstruct(original, pruned, removed: dict, data, layers=None,
                samples: int = DEFAULT_SAMPLES, batch_size: int = 64, ridge: float = RIDGE):
    """A clone of ``pruned`` whose layers that read pruned channels (and those named in
    ``layers``) are refitted to compute the outputs of ``original`` (see the module docstring).
    ``removed`` maps group names of ``original`` to the channels pruned from them, as given to
    :func:`~.transform.zero_channels` or :func:`~.transform.remove_channels` (either made
    ``pruned``); ``data`` is calibration data (see :func:`calibration_sets`)."""
    from xir.interpreter import run_function, run_lockstep

    plans = layer_plans(original, removed, layers)
    clone = pruned.clone()
    func, batches = calibration_sets(clone, data, samples, batch_size)
    ofunc, obatches = calibration_sets(original, data, samples, batch_size)
    count = sum(next(iter(batch.values())).shape[0] for batch in batches)
    picks = {op: _chosen_pixels(op, plan[0], count) for op, plan in plans.items()}
    by_name = _layers_by_name(ofunc)
    targets = {}  # original op -> its outputs at the chosen pixels, one array per batch

    def keep(op, outputs):
        if op in plans:
            targets.setdefault(op, []).append(_at_pixels(np.asarray(outputs[0]), picks[op]))

    for batch in obatches:
        run_function(ofunc, batch, observe=keep)

    def refit(op, operand_sets):
        if op.name not in CONSUMERS:
            return
        source = by_name.get(node_name(op))
        if source is None or source not in plans:
            return
        target = np.concatenate(targets.pop(source))
        _refit_layer(op, source, operand_sets, target, picks[source], *plans[source], ridge)

    run_lockstep(func, batches, before=refit)
    return clone


def _chosen_pixels(op, removed_in: np.ndarray, samples: int):
    """The output pixels a convolution is fitted on (see
    :func:`~xir.passes.fast_finetune.fit_pixels`: a seeded sample when there are many), the same
    for the zeroed and the removed model; None for a dense layer."""
    if op.name != "graph.conv2d":
        return None
    _, channels, kh, kw = op.operands[1].type.shape
    k = (channels - len(np.unique(removed_in))) * kh * kw
    return fit_pixels(samples, int(np.prod(op.results[0].type.shape[2:])), k)


def _at_pixels(y: np.ndarray, chosen) -> np.ndarray:
    """A layer's output (N, M, H, W) at the chosen pixels, (N, M, P); a dense one unchanged."""
    return y if chosen is None else y.reshape(y.shape[0], y.shape[1], -1)[..., chosen]


def _layers_by_name(func) -> dict:
    names: dict = {}
    for op in func.regions[0].blocks[0].ops:
        if op.name in CONSUMERS:
            names.setdefault(node_name(op), op)
    return names


def _refit_layer(op, source, operand_sets, target, chosen, removed_in, removed_out,
                 ridge: float):
    """Refit ``op`` (the pruned model's copy of ``source``) on its operands, batch by batch, to
    ``target`` (the original's output at pixels ``chosen``)."""
    w = np.moveaxis(constant_array(op.operands[1], np.float64), (output_axis(op), input_axis(op)),
                    (0, 1))
    w0 = np.moveaxis(constant_array(source.operands[1], np.float64),
                     (output_axis(source), input_axis(source)), (0, 1))
    kept_in = _kept(w0.shape[1], removed_in, w.shape[1], node_name(op), "input")
    kept_out = _kept(w0.shape[0], removed_out, w.shape[0], node_name(op), "output")
    target_rows = np.setdiff1d(np.arange(w0.shape[0]), removed_out)
    rows = kept_out  # the pruned layer's own output channels that are fitted
    has_bias = op.name != "graph.matmul"
    inner = int(np.prod(w.shape[2:]))  # kernel positions per input channel
    c, current, wanted = _problem(op, operand_sets, target, chosen, kept_in, has_bias)
    col_index = (kept_in[:, None] * inner + np.arange(inner)).ravel()
    residual = wanted[target_rows] - current[rows]
    gram = c @ c.T
    lam = ridge * max(float(np.trace(gram)) / len(gram), 1e-12)
    change = np.linalg.solve(gram + lam * np.eye(len(gram)), c @ residual.T).T
    alpha = float(op.param["alpha"]) if op.name == "graph.gemm" else 1.0
    flat = w.reshape(w.shape[0], -1).copy()
    flat[np.ix_(rows, col_index)] += change[:, :col_index.size] / alpha
    new_w = np.moveaxis(flat.reshape(w.shape), (0, 1), (output_axis(op), input_axis(op)))
    set_constant(op, 1, new_w.astype(np.float32))
    if has_bias:
        _add_to_bias(op, rows, change[:, -1], w.shape[0])


def _kept(original: int, removed: np.ndarray, pruned: int, name: str, what: str) -> np.ndarray:
    """The pruned layer's own indices of the kept channels along one axis: all of them when the
    axis was made smaller, the ones not removed when it was zeroed in place."""
    if pruned == original:
        return np.setdiff1d(np.arange(original), removed)
    if pruned == original - len(np.unique(removed)):
        return np.arange(pruned)
    raise XirError(f"prune: layer '{name}' has {pruned} {what} channels; the original has "
                   f"{original} and {len(np.unique(removed))} were to go")


def _problem(op, operand_sets, target, chosen, kept_in, bias: bool):
    """The columns (K + 1, P) of ``op``'s product on its kept input channels at pixels
    ``chosen`` (with a last row of ones for a ``bias``), the op's current output (M, P) and the
    original's there. The current output is computed batch by batch, as the original's was, so
    that a layer that lost nothing has a residual of exactly zero."""
    x = np.concatenate([operands[0] for operands in operand_sets])[:, kept_in]
    current = np.concatenate([_at_pixels(op.evaluate(*operands)[0], chosen)
                              for operands in operand_sets])
    if chosen is None:
        columns = x.astype(np.float64).T
    else:
        columns = input_columns(op, x, chosen, 1)[0]

    def flat(y):  # (N, M, P) or (N, M) -> (M, N·P), the columns' order
        return np.moveaxis(y, 1, 0).reshape(y.shape[1], -1).astype(np.float64)

    if bias:
        columns = np.concatenate([columns, np.ones((1, columns.shape[1]))])
    return columns, flat(current), flat(target)


def _add_to_bias(op, rows, delta, channels: int) -> None:
    """Add ``delta`` to the layer's bias at output channels ``rows`` (a bias is added if the
    layer has none; a gemm's is scaled by its ``beta``)."""
    beta = float(op.param["beta"]) if op.name == "graph.gemm" else 1.0
    if len(op.operands) > 2:
        old = constant_array(op.operands[2], np.float64)
        if old.size not in (1, channels):
            raise XirError(f"prune: layer '{node_name(op)}' has a bias of shape {old.shape}, "
                           f"not one value per output channel; cannot reconstruct it")
        bias = np.broadcast_to(old.reshape(-1), (channels,)).copy()
        shape = old.shape if old.size == channels else (channels,)
    elif beta != 1.0:
        raise XirError(f"prune: layer '{node_name(op)}' has beta {beta} and no bias; "
                       "reconstruction cannot add one")
    else:
        bias, shape = np.zeros(channels), (channels,)
    bias[rows] += delta / beta
    name = None if len(op.operands) > 2 else f"{node_name(op)}.bias"
    set_constant(op, 2, bias.reshape(shape).astype(np.float32), name)
