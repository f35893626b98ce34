"""Instruction emission for pooling (``dpu.pool_fix``): not written yet."""

from __future__ import annotations


def pool_items(op, layout, target, buffers: int = 2, plan=None) -> list:
    """The [mnemonic, field values] items of ``dpu.pool_fix`` ``op`` (no END)."""
    raise op.error("is not emitted yet (pooling)")
