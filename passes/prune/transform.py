"""Pruning channels: zeroing them (the same function, the same shapes) or removing them.

``removed`` maps a group's name (or the group) to the indices of its channels (0 .. channels - 1) that go.
Each group's :class:`~.groups.Use` records say which weights belong to those channels:

- a *producer*'s output channels (conv weight rows and bias, a dense layer's output features),
- a *member*'s per-channel parameters (batch norm, depthwise conv filters and bias, PReLU slopes,
  a per-channel constant of an add or mul),
- a *consumer*'s input channels (conv weight columns; a dense layer's input features, in blocks
  of H·W after a flatten, at the group's offset after a concat).

:func:`remove_channels` deletes all of them and re-infers every result type downstream (a
flatten-like reshape gets its new feature count). :func:`zero_channels` keeps every shape and
computes the same function as the pruned model: it zeroes the consumers' input weights of the
removed channels, so that whatever flows in them contributes nothing; it also zeroes them at the
source (producer rows and bias, batch norm γ and β, depthwise filters and bias, per-channel
constants added), so that they are exactly zero up to the first op with f(0) ≠ 0 (a sigmoid, a
batch norm of a later group...). Outputs of the two agree to float rounding: the zeroed model's
sums have extra zero terms, which changes their order.
"""

from __future__ import annotations

import numpy as np

from xir import attributes as A
from xir.dialects.graph.base import get_ints, ints_attr
from xir.diagnostics import XirError

from ..cle import replace_operand
from ..dpu_rules import constant_array, is_constant, node_name
from .groups import channel_axis, is_depthwise, trace


def output_axis(op) -> int:
    """The axis of a producer's weight that holds its output channels."""
    if op.name == "graph.gemm":
        return 0 if op.param["trans_b"] else 1
    return 1 if op.name == "graph.matmul" else 0


def input_axis(op) -> int:
    """The axis of a consumer's weight that holds its input channels (features)."""
    if op.name == "graph.gemm":
        return 1 if op.param["trans_b"] else 0
    return 0 if op.name == "graph.matmul" else 1


def channel_importance(module, group, criterion: str = "l1") -> np.ndarray:
    """One importance score per channel of ``group`` (a ChannelGroup or its name): the ``l1`` or
    ``l2`` norm of each producer's output-channel weights, summed over the group's producers,
    or ``bn``: |γ| of the batch norm right after each producer, summed."""
    if criterion not in ("l1", "l2", "bn"):
        raise XirError(f"prune: unknown importance criterion '{criterion}' (expects l1, l2 or bn)")
    tracing = trace(module)
    name = group if isinstance(group, str) else group.name
    scores = np.zeros(tracing.group(name).channels)
    for use in tracing.uses[name]:
        if use.role != "producer":
            continue
        if criterion == "bn":
            scores += np.abs(_gamma_after(use.op))
            continue
        weight = np.moveaxis(constant_array(use.op.operands[1], np.float64), output_axis(use.op), 0)
        rows = weight.reshape(weight.shape[0], -1)
        scores += np.abs(rows).sum(axis=1) if criterion == "l1" else np.sqrt((rows ** 2).sum(axis=1))
    return scores


def _gamma_after(op) -> np.ndarray:
    users = op.results[0].users
    if len(users) != 1 or users[0].name != "graph.batch_norm" or not is_constant(users[0].operands[1]):
        raise XirError(f"prune: layer '{node_name(op)}' has no batch norm right after it "
                       f"(criterion 'bn' needs one); use 'l1' or 'l2'")
    return constant_array(users[0].operands[1], np.float64)


# -- the transforms -----------------------------------------------------------------------------


def zero_channels(module, removed: dict):
    """A clone of ``module`` in which the ``removed`` channels contribute nothing anywhere: it
    computes what :func:`remove_channels` does, with every shape kept."""
    return _transform(module, removed, zero=True)


def remove_channels(module, removed: dict):
    """A clone of ``module`` with the ``removed`` channels physically gone: smaller weights,
    batch norms and activations, result types re-inferred."""
    return _transform(module, removed, zero=False)


def _transform(module, removed: dict, zero: bool):
    clone = module.clone()
    tracing = trace(clone)
    plan: dict = {}  # op -> role -> set of indices along the role's axis
    for key, channels in removed.items():
        group = tracing.group(key if isinstance(key, str) else key.name)
        indices = _checked(group, channels)
        if not indices:
            continue
        for use in tracing.uses[group.name]:
            positions = plan.setdefault(use.op, {}).setdefault(use.role, set())
            positions.update((use.offset + i) * use.block + j
                             for i in indices for j in range(use.block))
    for op, roles in plan.items():
        for role, positions in roles.items():
            _edit(op, role, sorted(positions), zero)
    if not zero:
        _retype(clone, plan)
    return clone


def _checked(group, channels) -> list[int]:
    if not group.prunable:
        raise XirError(f"prune: group '{group.name}' cannot be pruned: it {group.reason}")
    indices = sorted({int(c) for c in channels})
    if indices and not 0 <= indices[0] <= indices[-1] < group.channels:
        raise XirError(f"prune: group '{group.name}' has {group.channels} channels; channel "
                       f"{indices[0] if indices[0] < 0 else indices[-1]} does not exist")
    if len(indices) == group.channels:
        raise XirError(f"prune: removing all {group.channels} channels of group '{group.name}' "
                       f"would disconnect the model; keep at least one")
    return indices


def _edit(op, role: str, positions: list[int], zero: bool) -> None:
    """Zero or delete ``positions`` in the weights the op's ``role`` ties to the channels."""
    if op.name == "graph.batch_norm":
        for i in ((1, 2) if zero else (1, 2, 3, 4)):  # zeroed: γ = β = 0 gives exactly 0
            _cut(op, i, 0, positions, zero)
    elif op.name in ("graph.prelu", "graph.add", "graph.sub", "graph.mul", "graph.div"):
        if zero and op.name in ("graph.prelu", "graph.mul", "graph.div"):
            return  # consumers' zero weights make these channels irrelevant
        rank = op.results[0].type.rank
        for i, value in enumerate(op.operands):
            axis = channel_axis(value.type.rank, rank)
            if is_constant(value) and axis is not None and value.type.shape[axis] > 1:
                _cut(op, i, axis, positions, zero)
    elif role == "consumer":
        _cut(op, 1, input_axis(op), positions, zero)
    else:  # a producer, or a depthwise conv (one filter per channel, like a producer)
        depthwise = role == "member" and is_depthwise(op)
        _cut(op, 1, output_axis(op), positions, zero)
        if len(op.operands) > 2:
            bias = op.operands[2]
            if bias.type.rank >= 1 and bias.type.shape[-1] == op.results[0].type.shape[1] > 1:
                _cut(op, 2, bias.type.rank - 1, positions, zero)
        if depthwise and not zero:
            op.attributes["group"] = A.IntegerAttr(op.operands[1].type.shape[0])


def _cut(op, index: int, axis: int, positions: list[int], zero: bool) -> None:
    array = constant_array(op.operands[index], np.float32)
    if zero:
        array = array.copy()
        where = [slice(None)] * array.ndim
        where[axis] = positions
        array[tuple(where)] = 0
    else:
        array = np.delete(array, positions, axis=axis)
    replace_operand(op, index, array, "pruned")


def _retype(module, plan: dict) -> None:
    """Re-infer the result types of every op whose operand types changed, in order."""
    changed = set()
    for func in module.walk():
        if func.name != "func.func" or not func.regions or not func.regions[0].blocks:
            continue
        for op in func.regions[0].blocks[0].ops:
            if op.name == "graph.constant" or not (op in plan or changed & set(op.operands)) \
                    or not hasattr(op, "infer_result_types"):
                continue
            if op.name == "graph.reshape":
                _reshape_features(op)
            types = op.infer_result_types([v.type for v in op.operands], op.all_attributes())
            for result, type_ in zip(op.results, types):
                if result.type != type_:
                    result.type = type_
                    changed.add(result)


def _reshape_features(op) -> None:
    """A flatten-like reshape (the only reshape pruned channels pass) takes the new size."""
    shape = list(get_ints(op.all_attributes(), "shape"))
    if shape[1] not in (-1, 0):
        shape[1] = int(np.prod(op.operands[0].type.shape[1:]))
        op.attributes["shape"] = ints_attr(shape)
