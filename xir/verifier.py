"""The verifier: checks that IR is well formed, raising the first problem as an XirError.

Structure (every registered op against its definition: counts, constraints, required attributes,
traits, its own ``verify_``), block structure (terminators, successors), and SSA dominance inside
the blocks of registered ops' regions. Unregistered ops are checked only for structure.
"""

from __future__ import annotations

from xir.ir import BlockArgument, Operation
from xir.traits import IsTerminator, NoTerminator


def verify(op: Operation) -> None:
    """Verify ``op`` and everything nested in it."""
    for nested in op.walk_preorder():
        _verify_op(nested)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _verify_counts(op: Operation, kind: str, items, fields) -> None:
    fixed = sum(1 for f in fields if not f.variadic)
    variadic = any(f.variadic for f in fields)
    if len(items) < fixed or (not variadic and len(items) != fixed):
        expected = f"at least {fixed}" if variadic else str(fixed)
        raise op.error(f"expected {expected} {kind}{'' if fixed == 1 and not variadic else 's'}, "
                       f"but found {len(items)}")


def _verify_definition(op: Operation) -> None:
    definition = op.definition
    _verify_counts(op, "operand", op._operands, definition.of("operand"))
    _verify_counts(op, "result", op.results, definition.of("result"))
    _verify_counts(op, "region", op.regions, definition.of("region"))
    _verify_counts(op, "successor", op.successors, definition.of("successor"))
    for kind, noun in (("operand", "operand"), ("result", "result")):
        for field in definition.of(kind):
            values = definition.slice(field, op._operands if kind == "operand" else op.results)
            for v in (values if field.variadic else [values]):
                if not field.constraint.accepts(v.type):
                    raise op.error(f"{noun} '{field.name}' must be {field.constraint}, but got '{v.type}'")
    for kind, store in (("property", op.properties), ("attribute", op.attributes)):
        for field in definition.of(kind):
            value = store.get(field.name)
            if value is None:
                if not field.optional:
                    raise op.error(f"requires {kind} '{field.name}'")
                continue
            if not field.constraint.accepts(value):
                raise op.error(f"{kind} '{field.name}' must be {field.constraint}, but got {value}")
    for trait in definition.traits:
        trait.verify(op)
    custom = getattr(op, "verify_", None)
    if custom is not None:
        custom()


def _verify_op(op: Operation) -> None:
    if op.definition is not None:
        _verify_definition(op)
    if op.successors:
        block = op.parent
        if block is not None and block.last_op is not op:
            raise op.error("operation with block successors must terminate its parent block")
        for succ in op.successors:
            if block is None or succ.parent is not block.parent:
                raise op.error("successor block is not in the same region")
    for region in op.regions:
        _verify_region(op, region)


def _verify_region(op: Operation, region) -> None:
    registered = op.definition is not None
    needs_terminator = registered and not op.definition.has_trait(NoTerminator)
    for block in region.blocks:
        last = block.last_op
        if needs_terminator:
            if last is None:
                raise op.error("empty block: expect at least a terminator")
            if last.definition is not None and not last.definition.has_trait(IsTerminator):
                raise last.error(f"block in '{op.name}' must end with a terminator, "
                                 f"not '{last.name}'")
        if registered and not op.definition.has_trait(NoTerminator):
            _verify_dominance_in_block(block)


def _verify_dominance_in_block(block) -> None:
    """Inside one block of an SSA-CFG region, every operand defined in that block comes first."""
    seen = set()
    for op in block.ops:
        for nested in op.walk_preorder():
            for i, value in enumerate(nested._operands):
                if isinstance(value, BlockArgument):
                    continue
                owner = value.owner
                if owner.parent is block and owner not in seen:
                    raise nested.error(f"operand #{i} does not dominate this use")
        seen.add(op)
