"""dce: dead-code elimination.

Erases registered pure ops whose results are unused (walking each block bottom-up, so a dead chain
goes in one sweep, and sweeping again until nothing changes), and blocks that no path from the entry
block reaches, in the regions of registered ops. Unregistered ops are never erased.
"""

from __future__ import annotations

import attrs

from xir.ir import Operation, Region
from xir.pass_manager import Pass, register_pass
from xir.rewrite import is_trivially_dead


def erase_unreachable_blocks(region: Region) -> bool:
    """Erase the blocks of ``region`` that its entry block does not reach; True if any were."""
    if len(region.blocks) < 2:
        return False
    reachable, stack = {region.blocks[0]}, [region.blocks[0]]
    while stack:
        terminator = stack.pop().last_op
        for successor in terminator.successors if terminator is not None else ():
            if successor not in reachable:
                reachable.add(successor)
                stack.append(successor)
    dead = [b for b in region.blocks if b not in reachable]
    for block in dead:  # first drop every reference they make, as they may refer to each other
        for op in block.ops:
            for nested in op.walk():
                nested.set_operands(())
                nested.successors = []
    for block in dead:
        for op in list(block.ops_reversed()):
            op.erase()
        block.parent = None
    region.blocks = [b for b in region.blocks if b in reachable]
    return bool(dead)


@register_pass
@attrs.frozen
class DCE(Pass):
    """Erase unused pure ops and unreachable blocks."""

    name = "dce"

    def run(self, module: Operation) -> None:
        """Erase dead code in ``module`` until none is left."""
        changed = True
        while changed:
            changed = False
            for op in [op for op in module.walk() if op.definition is not None]:
                for region in op.regions:
                    changed |= erase_unreachable_blocks(region)
            for op in module.walk(reverse=True):
                if op is not module and is_trivially_dead(op):
                    op.erase()
                    changed = True
