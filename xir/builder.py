"""Building IR from code: a :class:`Builder` inserts new operations at an insertion point.

    builder = Builder.at_end(module.body)
    x = builder.create("test.source", result_types=[i32]).result
    builder.create("test.sink", [x])
"""

from __future__ import annotations

from xir.ir import Block, Operation


class InsertionPoint:
    """Where new operations go: at the end of ``block``, or just before ``before``."""

    __slots__ = ("block", "before")

    def __init__(self, block: Block, before: Operation | None = None):
        self.block = block
        self.before = before

    def insert(self, op: Operation) -> Operation:
        if self.before is None:
            return self.block.append(op)
        return self.block.insert_before(op, self.before)


class Builder:
    """Creates operations and inserts them at the current insertion point."""

    def __init__(self, point: InsertionPoint | None = None, location=None):
        self.point = point
        self.location = location  # given to new ops that are not given one

    @classmethod
    def at_end(cls, block: Block) -> "Builder":
        return cls(InsertionPoint(block))

    @classmethod
    def at_start(cls, block: Block) -> "Builder":
        return cls(InsertionPoint(block, block.first_op))

    @classmethod
    def before(cls, op: Operation) -> "Builder":
        return cls(InsertionPoint(op.parent, op))

    @classmethod
    def after(cls, op: Operation) -> "Builder":
        return cls(InsertionPoint(op.parent, op.next_op))

    def set_insertion_point_to_end(self, block: Block) -> None:
        self.point = InsertionPoint(block)

    def set_insertion_point_before(self, op: Operation) -> None:
        self.point = InsertionPoint(op.parent, op)

    def set_insertion_point_after(self, op: Operation) -> None:
        self.point = InsertionPoint(op.parent, op.next_op)

    def insert(self, op: Operation) -> Operation:
        """Insert an already built op at the insertion point (it must not be in a block)."""
        if self.point is None:
            raise ValueError("the builder has no insertion point")
        if op.location is None:
            op.location = self.location
        return self.point.insert(op)

    def create(self, name: str, operands=(), result_types=(), attributes=None, properties=None,
               regions=(), successors=(), location=None) -> Operation:
        """Build op ``name`` (of its registered class, if any) and insert it."""
        op = Operation.create(name, operands, result_types, attributes, properties, regions,
                              successors, location=location)
        return self.insert(op)
