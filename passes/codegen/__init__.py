"""Planning beneath code generation: where each tensor of a DPU subgraph lives in DDR, how weights
are packed for the engines, and how each op is cut into tiles that fit the on-chip banks.

Everything here is plain data (frozen ``attrs`` classes), independent of instruction encoding:
the instruction emitter (the ``dpuisa`` dialect) reads a :class:`~.ddr_layout.Layout` and one
:class:`~.tiling.TilePlan` per op and turns them into LOAD / CONV / SAVE … instructions.

- :mod:`.ddr_layout`: ``plan_layout(func, target)`` → :class:`~.ddr_layout.Layout` (CONST and
  DATA regions, a linear-scan allocator for activations), ``pack_weights`` / ``unpack_weights``
  (the conv engine's read order), ``pack_depthwise_weights``, ``pack_bias``;
- :mod:`.tiling`: ``plan_tiles(layer, target)`` / ``plan_op(op, target)`` →
  :class:`~.tiling.TilePlan` (output-channel tiles, row strips with their halo, pixel groups,
  bank addresses with ping/pong buffers).

- :mod:`.emit`: ``emit_function(func, layout, target)`` → :class:`~.emit.Emission` (the whole
  subgraph's instruction stream and layer table), with :mod:`.emit_pool`,
  :mod:`.emit_eltwise` and :mod:`.emit_move` (concat, upsample, reshape copies).

The rules are written out in docs/codegen.md.
"""

from xir.passes.codegen.ddr_layout import (
    Layout, Region, TensorLayout, concat_views, feature_map_channel_align, pack_bias,
    pack_depthwise_weights, pack_weights, plan_layout, unpack_depthwise_weights, unpack_weights,
)
from xir.passes.codegen.emit import Emission, LayerRecord, emit_function
from xir.passes.codegen.tiling import (
    BankAccess, LayerShape, Tile, TilePlan, layer_shape, plan_function, plan_op, plan_tiles,
)

__all__ = [
    "BankAccess", "Emission", "LayerRecord", "LayerShape", "Layout", "Region", "TensorLayout",
    "Tile", "TilePlan", "concat_views", "emit_function", "feature_map_channel_align",
    "layer_shape", "pack_bias", "pack_depthwise_weights", "pack_weights", "plan_function",
    "plan_layout", "plan_op", "plan_tiles", "unpack_depthwise_weights", "unpack_weights",
]
