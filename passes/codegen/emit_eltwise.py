"""Instruction emission for element-wise ops (``dpu.eltwise_fix``): not written yet."""

from __future__ import annotations


def eltwise_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The [mnemonic, field values] items of ``dpu.eltwise_fix`` ``op`` (no END)."""
    raise op.error("is not emitted yet (eltwise)")
