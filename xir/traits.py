"""Op traits: shared rules and markers that op definitions list in ``traits``.

A trait with rules implements ``verify(op)`` and raises ``op.error(...)``; a marker trait (Pure,
Commutative, ...) has none and is read by passes (``op.definition.has_trait(Pure)``).
"""

from __future__ import annotations


class Trait:
    """Base of all traits."""

    def verify(self, op) -> None:
        pass

    def __repr__(self) -> str:
        return type(self).__name__


class Pure(Trait):
    """No side effects: unused results make the op dead, and equal ops compute equal values."""


class Commutative(Trait):
    """The order of the operands does not matter."""


class ConstantLike(Trait):
    """Produces a constant held in its ``value`` property or attribute (folding reads it)."""


class ReturnLike(Trait):
    """Returns control and values to the parent op."""


class NoTerminator(Trait):
    """The op's regions hold blocks that need no terminator (builtin.module)."""


class SymbolTable(Trait):
    """Symbols defined directly in the op's region have unique names."""

    def verify(self, op) -> None:
        from xir.symbols import symbol_name  # a symbol's name is a string sym_name (else none)

        seen = {}
        for region in op.regions:
            for child in region.ops:
                name = symbol_name(child)
                if name is None:
                    continue
                if name in seen:
                    raise child.error(f"redefinition of symbol named '{name}'")
                seen[name] = child


class IsTerminator(Trait):
    """Must be the last op of its block."""

    def verify(self, op) -> None:
        block = op.parent
        if block is not None and block.last_op is not op:
            raise op.error("must be the last operation in the parent block")


class IsolatedFromAbove(Trait):
    """Ops inside may not use values defined outside this op."""

    def verify(self, op) -> None:
        for region in op.regions:
            for block in region.blocks:
                for inner in block.ops:
                    for nested in inner.walk():
                        for i, value in enumerate(nested._operands):
                            if not _defined_inside(value, op):
                                raise nested.error(f"using value defined outside the region "
                                                   f"(operand #{i} of an op in '{op.name}', "
                                                   f"which is isolated from above)")


def _defined_inside(value, op) -> bool:
    from xir.ir import BlockArgument

    if isinstance(value, BlockArgument):
        owner = value.owner.parent_op
        return owner is not None and op.is_ancestor_of(owner)
    return value.owner is not op and op.is_ancestor_of(value.owner)


class SameOperandsAndResultType(Trait):
    """Every operand and result has the same type."""

    def verify(self, op) -> None:
        types = [v.type for v in op._operands] + [r.type for r in op.results]
        if any(t != types[0] for t in types[1:]):
            raise op.error("requires the same type for all operands and results")


class HasParent(Trait):
    """Must be directly inside one of the named ops."""

    def __init__(self, *parents: str):
        self.parents = parents

    def verify(self, op) -> None:
        parent = op.parent_op
        if parent is None or parent.name not in self.parents:
            names = ", ".join(f"'{p}'" for p in self.parents)
            raise op.error(f"expects parent op {'' if len(self.parents) == 1 else 'to be one of '}{names}")


class SingleBlock(Trait):
    """Each region has at most one block."""

    def verify(self, op) -> None:
        for i, region in enumerate(op.regions):
            if len(region.blocks) > 1:
                raise op.error(f"expects region #{i} to have 0 or 1 blocks")
