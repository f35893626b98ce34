"""cse: common-subexpression elimination of pure ops.

A registered pure op without regions or successors is replaced by an earlier op with the same name,
operands (in any order if the op is commutative), attributes, properties and result types, when that
earlier op is visible: earlier in the same block, or in a block that encloses this one. Scopes do not
cross ops that are isolated from above, and blocks of one region do not share (no dominance tree:
this is conservative in multi-block regions). Locations are not compared; the first op is kept.
"""

from __future__ import annotations

import attrs

from xir.ir import Block, Operation
from xir.pass_manager import Pass, register_pass
from xir.rewrite import is_pure
from xir.traits import Commutative, IsolatedFromAbove


def cse_key(op: Operation):
    """What makes two pure ops equal, or None if ``op`` may not be eliminated."""
    if not op.results or op.regions or op.successors or not is_pure(op):
        return None
    operands = op._operands
    if len(operands) > 1 and op.definition.has_trait(Commutative):
        operands = sorted(operands, key=id)
    try:
        return (op.name, tuple(operands), frozenset(op.attributes.items()),
                frozenset(op.properties.items()), tuple(r.type for r in op.results))
    except TypeError:  # an unhashable attribute: never equal
        return None


class _Eliminator:
    """One scoped table of the ops seen so far, from key to op."""

    def __init__(self):
        self.known: dict = {}
        self.erased = 0

    def regions_of(self, op: Operation) -> None:
        outer = self.known
        if op.definition is not None and op.definition.has_trait(IsolatedFromAbove):
            self.known = {}
        for region in op.regions:
            for block in region.blocks:
                self.block(block)
        self.known = outer

    def block(self, block: Block) -> None:
        added = []
        for op in block.ops_safe():
            key = cse_key(op)
            if key is not None:
                earlier = self.known.get(key)
                if earlier is not None:
                    for old, new in zip(op.results, earlier.results):
                        old.replace_all_uses_with(new)
                    op.erase()
                    self.erased += 1
                    continue
                self.known[key] = op
                added.append(key)
            if op.regions:
                self.regions_of(op)
        for key in added:  # leaving the block: its ops are not visible to the next block
            del self.known[key]


@register_pass
@attrs.frozen
class CSE(Pass):
    """Eliminate common subexpressions: reuse an equal earlier pure op's results."""

    name = "cse"

    def run(self, module: Operation) -> None:
        """Eliminate common subexpressions in ``module``."""
        _Eliminator().regions_of(module)
