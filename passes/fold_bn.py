"""fold-bn: fold batch norms into the convolution before them, as the DPU quantizers do.

A convolution followed by per-channel affines (a ``graph.batch_norm`` with constant statistics,
a ``graph.mul`` by or ``graph.add`` of a constant holding one value per channel) becomes one
convolution with new weights and bias (reference/dpu.md §3):
``s = γ / sqrt(var + ε)``, ``W' = W · s`` per output channel, ``b' = (b − μ) · s + β``.
A batch norm with no convolution before it (conv → relu → bn, or after a concat) becomes a
depthwise 1×1 convolution of weight ``s`` and bias ``β − μ · s``, which then folds what follows
it. The function computed is the same, to float rounding; the fusion patterns the inspector
reports are the ones this pass folds (:mod:`.fusion`).
"""

from __future__ import annotations

import attrs
import numpy as np

from xir import attributes as A
from xir.dialects.graph.constants import constant_attr, module_of
from xir.ir import Operation
from xir.pass_manager import Pass, register_pass

from .dpu_rules import channel_constant, constant_array, is_constant, node_name, producer
from .fusion import sole_user

CONVOLUTIONS = ("graph.conv2d", "graph.conv_transpose2d")


def _channel_vector(value, channels: int) -> np.ndarray:
    """A per-channel (or scalar) constant as a vector of ``channels`` values."""
    array = constant_array(value, np.float64)
    return np.broadcast_to(array.reshape(-1), (channels,)) if array.size == 1 \
        else array.reshape(channels)


def affine_of(op, x, channels: int):
    """``(scale, shift)`` per channel if ``op`` is a per-channel affine of value ``x``, else None."""
    if op.name == "graph.batch_norm":
        if op.operands[0] is not x or not all(is_constant(v) for v in op.operands[1:]):
            return None
        gamma, beta, mean, var = (_channel_vector(v, channels) for v in op.operands[1:])
        scale = gamma / np.sqrt(var + op.param["epsilon"])
        return scale, beta - mean * scale
    if channel_constant(op) is not x:
        return None
    constant = next(v for v in op.operands if v is not x)
    vector = _channel_vector(constant, channels)
    if op.name == "graph.mul":
        return vector, np.zeros(channels)
    return np.ones(channels), vector


class _Folder:
    """Folding in one block; new constants go to ``module``'s resources."""

    def __init__(self, module):
        self.module = module

    def fold_after(self, conv: Operation) -> bool:
        """Fold the affines that follow ``conv`` into it; True if any was folded."""
        if conv.param["group"] != 1 and conv.name == "graph.conv_transpose2d":
            return False
        channels = conv.results[0].type.shape[1]
        scale, shift, last, chain = np.ones(channels), np.zeros(channels), conv, []
        while (user := sole_user(last.results[0])) is not None:
            affine = affine_of(user, last.results[0], channels)
            if affine is None:
                break
            scale, shift = scale * affine[0], shift * affine[0] + affine[1]
            chain.append(user)
            last = user
        if not chain:
            return False
        self._rewrite(conv, scale, shift, chain)
        return True

    def _rewrite(self, conv: Operation, scale, shift, chain) -> None:
        weight = constant_array(conv.operands[1], np.float64)
        bias = constant_array(conv.operands[2], np.float64) if len(conv.operands) > 2 \
            else np.zeros(scale.size)
        if conv.name == "graph.conv_transpose2d":  # weight (C_in, C_out, kh, kw)
            weight = weight * scale[None, :, None, None]
        else:
            weight = weight * scale[:, None, None, None]
        name = node_name(conv)
        operands = [conv.operands[0], self._constant(weight, f"{name}_w", conv),
                    self._constant(bias * scale + shift, f"{name}_b", conv)]
        folded = Operation.create(conv.name, operands, [chain[-1].results[0].type],
                                  attributes=dict(conv.attributes), location=conv.location)
        folded.results[0].name_hint = chain[-1].results[0].name_hint
        conv.parent.insert_before(folded, conv)
        chain[-1].results[0].replace_all_uses_with(folded.results[0])
        self._erase([*reversed(chain), conv])

    def to_depthwise(self, bn: Operation) -> Operation | None:
        """A batch norm on its own as a depthwise 1×1 convolution (None if it cannot be)."""
        x = bn.operands[0]
        if len(x.type.shape) != 4 or not all(is_constant(v) for v in bn.operands[1:]):
            return None
        channels = x.type.shape[1]
        scale, shift = affine_of(bn, x, channels)
        name = node_name(bn)
        operands = [x, self._constant(scale.reshape(channels, 1, 1, 1), f"{name}_w", bn),
                    self._constant(shift, f"{name}_b", bn)]
        marks = {k: v for k, v in bn.attributes.items() if k.startswith("xir.")}  # inspect's
        conv = Operation.create("graph.conv2d", operands, [bn.results[0].type],
                                attributes={"group": A.IntegerAttr(channels), **marks},
                                location=bn.location)
        conv.results[0].name_hint = bn.results[0].name_hint
        bn.parent.insert_before(conv, bn)
        bn.results[0].replace_all_uses_with(conv.results[0])
        self._erase([bn])
        return conv

    def _constant(self, array, name: str, before: Operation):
        attr = constant_attr(self.module, np.asarray(array, np.float32), name)
        op = Operation.create("graph.constant", (), [attr.type], attributes={"value": attr},
                              location=before.location)
        before.parent.insert_before(op, before)
        return op.results[0]

    def _erase(self, ops) -> None:
        """Erase ``ops`` (users first), then the constants only they used."""
        constants = [producer(v) for op in ops for v in op.operands if is_constant(v)]
        for op in ops:
            op.erase()
        for constant in dict.fromkeys(constants):
            if not constant.results[0].uses:
                value = constant.attributes.get("value")
                constant.erase()
                if isinstance(value, A.DenseResourceAttr):
                    self.module.resources.pop(value.handle.name, None)


def fold_batch_norms(func: Operation) -> int:
    """Fold every foldable affine of ``func``'s body; returns how many ops went away."""
    folder = _Folder(module_of(func))
    block = func.regions[0].blocks[0]
    before = sum(1 for _ in block.ops)
    for op in list(block.ops):
        if op.parent is None:
            continue  # erased by an earlier fold
        if op.name == "graph.batch_norm":
            op = folder.to_depthwise(op) or op
        if op.name in CONVOLUTIONS and len(op.operands) >= 2 and is_constant(op.operands[1]):
            folder.fold_after(op)
    return before - sum(1 for _ in block.ops)


@register_pass
@attrs.frozen
class FoldBatchNorm(Pass):
    """Fold batch norms and per-channel constant scales/shifts into convolutions."""

    name = "fold-bn"

    def run(self, module: Operation) -> None:
        """Fold in every function of ``module``."""
        for op in list(module.walk()):
            if op.name == "func.func" and op.regions and op.regions[0].blocks:
                fold_batch_norms(op)
