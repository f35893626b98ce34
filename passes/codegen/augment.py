"""Channel augmentation: a convolution over a thin input (an RGB image's first conv) run as a
(kh × 1) convolution over kw·C channels.

The load engine gathers, for each output column, the kernel-width neighbourhood of the C input
channels (kw·C consecutive bytes of an unpadded row) into one **augmented pixel**: one LOAD per
input row with ``length`` = output W, ``channel`` = kw·C, ``jump_read`` = stride_w·C. The conv
engine then walks kh taps × ⌈kw·C / ICP⌉ channel groups per pixel group instead of kh · kw
taps × ⌈C / ICP⌉ (conv1 of ResNet-50 on B4096: 7 × 2 instead of 49 × 1). What it takes
(docs/codegen.md, "Channel augmentation"):

- the input is stored unpadded (pixel stride C bytes), each row between the conv's left and
  right pad as zero columns, so windows hanging over an edge read zeros
  (:class:`~.ddr_layout.TensorLayout` ``augment``);
- the weights (M, kh, kw, C) are packed as (M, kh, 1, kw·C) (:func:`augment_weights`): channel
  kx·C + c of the augmented pixel is column kx, channel c of the window;
- the tiler plans the augmented :class:`~.tiling.LayerShape` (:attr:`Augmentation.layer`).

:func:`augmentation` says whether a conv qualifies by its shape and the target;
:func:`augmented_inputs` adds the subgraph's conditions (see there).
"""

from __future__ import annotations

import attrs
import numpy as np

from xir.diagnostics import XirError

from .tiling import LayerShape, ceil_div, layer_shape, plan_tiles


@attrs.frozen
class Augmentation:
    """One channel-augmented conv: its input's ``channels`` (C), ``kernel_w``, ``stride_w``,
    the zero columns ``pad_left`` / ``pad_right`` stored around each input row, and the
    augmented ``layer`` the tiler plans and the emitter emits: kernel (kh, 1) over
    (H, W_out, kw·C), stride (sh, 1), dilation (dh, 1), pads top and bottom only."""

    channels: int
    kernel_w: int
    stride_w: int
    pad_left: int
    pad_right: int
    layer: LayerShape

    @property
    def load_channels(self) -> int:
        """Bytes of one augmented pixel: kw·C."""
        return self.kernel_w * self.channels

    @classmethod
    def of(cls, op) -> "Augmentation":
        """The augmentation of ``dpu.conv2d_fix`` ``op`` (whether it qualifies is
        :func:`augmentation`'s question)."""
        layer = layer_shape(op)
        (h, _, c), = layer.inputs
        (kh, kw), (sh, sw), (dh, _) = layer.kernel, layer.stride, layer.dilation
        top, left, bottom, right = layer.pad
        wide = attrs.evolve(layer, inputs=((h, layer.output[1], kw * c),), kernel=(kh, 1),
                            stride=(sh, 1), dilation=(dh, 1), pad=(top, 0, bottom, 0))
        return cls(c, kw, sw, left, right, wide)


def augmentation_size(target) -> int:
    """The most channels the target's load engine augments to (0 without the feature)."""
    return target.conv.channel_augmentation or 0


def augmentation(op, target) -> Augmentation | None:
    """The :class:`Augmentation` of ``op`` on ``target``, or None when it does not qualify: a
    ``dpu.conv2d_fix`` with dilation_w 1 and kw·C within the target's augmentation size that
    saves CONV steps (⌈kw·C / ICP⌉ < kw · ⌈C / ICP⌉) and whose augmented layer tiles."""
    size = augmentation_size(target)
    if op.name != "dpu.conv2d_fix" or not size:
        return None
    p = op.param
    kw = int(p["kernel"][1])
    dilation_w = int((p.get("dilation") or (1, 1))[1])
    c = max(int(op.operands[0].type.shape[-1]), 1)
    icp = target.conv.input_channel_parallel
    if dilation_w != 1 or kw * c > size or ceil_div(kw * c, icp) >= kw * ceil_div(c, icp):
        return None
    aug = Augmentation.of(op)
    try:
        plan_tiles(aug.layer, target, 2, op)
    except XirError:
        return None
    return aug


def augmented_inputs(args, ops, outputs, target) -> tuple[dict, dict]:
    """``({input value: Augmentation}, {weights value: Augmentation})`` of the convs of a
    subgraph (its block arguments ``args``, ops ``ops``, returned values ``outputs``) that run
    channel-augmented: those :func:`augmentation` accepts whose input is an argument of the
    subgraph, not returned and read by that conv only, and whose weights are a constant read
    by that conv only. (An input produced inside the subgraph is not augmented: its producer
    would have to save it unpadded between zero columns.)"""
    uses: dict = {}
    for op in ops:
        for v in op.operands:
            uses[v] = uses.get(v, 0) + 1
    constants = {op.results[0] for op in ops if op.name.endswith(".constant")}
    arguments = set(args)
    inputs, weights = {}, {}
    for op in ops:
        if op.name != "dpu.conv2d_fix" or len(op.operands) < 2:
            continue
        x, w = op.operands[0], op.operands[1]
        if x not in arguments or x in outputs or uses[x] != 1 or w not in constants \
                or uses[w] != 1:
            continue
        aug = augmentation(op, target)
        if aug is not None:
            inputs[x] = weights[w] = aug
    return inputs, weights


def augment_weights(weight) -> np.ndarray:
    """Conv weights (M, kh, kw, C) as the augmented conv's (M, kh, 1, kw·C): window column
    kx, channel c is augmented channel kx·C + c."""
    w = np.asarray(weight)
    m, kh, kw, c = w.shape
    return w.reshape(m, kh, 1, kw * c)


def augmented_plan(op, layout, target, buffers: int = 2, plan=None):
    """``(plan, augmentation)`` for emitting conv ``op`` with ``layout``: when its input is
    stored for channel augmentation (``layout.of(input).augment``), the plan of the augmented
    layer (``plan`` if it is that already) and its :class:`Augmentation`; else ``(plan,
    None)``."""
    if op.name != "dpu.conv2d_fix" or layout.of(op.operands[0]).augment is None:
        return plan, None
    aug = Augmentation.of(op)
    if plan is None or plan.layer != aug.layer:
        plan = plan_tiles(aug.layer, target, buffers, op)
    return plan, aug


__all__ = ["Augmentation", "augment_weights", "augmentation", "augmentation_size",
           "augmented_inputs", "augmented_plan"]
