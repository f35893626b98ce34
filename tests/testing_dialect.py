"""A small registered dialect, ``tst``, for testing passes and the rewrite driver.

``tst.constant`` (pure, constant-like), ``tst.add`` and ``tst.mul`` (pure, commutative, with folders;
``tst.add`` also has canonicalization patterns), ``tst.effect`` (has side effects), ``tst.scope`` and
``tst.isolated`` (region holders; the second is isolated from above) and the terminators ``tst.br``
and ``tst.cond_br``. Use the ``tst`` fixture to register it for one test; ``xir-opt --load-plugin`` on this file
registers it for good (the lit pass fixtures do).
"""

from __future__ import annotations

import pytest

from xir import attributes as A
from xir import dialect as registry
from xir.dialect import Dialect
from xir.ir import Operation, OpResult, Value
from xir.opdef import (AnyInteger, AnyType, IntegerAttrC, operand, prop, region, result, successor,
                       var_operand, var_result, var_successor)
from xir.rewrite import PatternRewriter, RewritePattern
from xir.traits import (Commutative, ConstantLike, IsolatedFromAbove, IsTerminator, NoTerminator,
                        Pure, SameOperandsAndResultType)


def constant_value(value: Value) -> int | None:
    """The integer a ``tst.constant`` defines as ``value``, or None."""
    if isinstance(value, OpResult) and isinstance(value.owner, ConstantOp):
        return value.owner.value.value
    return None


class ConstantOp(Operation):
    """An integer constant."""

    name = "tst.constant"
    value = prop(IntegerAttrC)
    output = result(AnyInteger)
    traits = (Pure(), ConstantLike())

    @classmethod
    def build(cls, value: int, type) -> "ConstantOp":
        return Operation.create(cls.name, (), (type,), properties={"value": A.IntegerAttr(value, type)})


class AddZero(RewritePattern):
    """add(x, 0) -> x"""

    def match_and_rewrite(self, op: AddOp, rewriter: PatternRewriter) -> bool:
        if constant_value(op.rhs) != 0:
            return False
        rewriter.replace_op(op, [op.lhs])
        return True


class ConstantToRight(RewritePattern):
    """add(c, x) -> add(x, c): constants go to the right, so AddZero needs to look only there."""

    benefit = 2

    def match_and_rewrite(self, op: AddOp, rewriter: PatternRewriter) -> bool:
        if constant_value(op.lhs) is None or constant_value(op.rhs) is not None:
            return False
        op.set_operands([op.rhs, op.lhs])
        rewriter.notify_op_modified(op)
        return True


class AddOp(Operation):
    """Integer sum."""

    name = "tst.add"
    lhs = operand(AnyInteger)
    rhs = operand(AnyInteger)
    output = result(AnyInteger)
    traits = (Pure(), Commutative(), SameOperandsAndResultType())

    def fold(self):
        lhs, rhs = constant_value(self.lhs), constant_value(self.rhs)
        if lhs is None or rhs is None:
            return None
        return [A.IntegerAttr(lhs + rhs, self.output.type)]

    @classmethod
    def canonicalization_patterns(cls):
        return [AddZero(), ConstantToRight()]


class MulOp(Operation):
    """Integer product; folds x * 1 to x and constant products."""

    name = "tst.mul"
    lhs = operand(AnyInteger)
    rhs = operand(AnyInteger)
    output = result(AnyInteger)
    traits = (Pure(), Commutative(), SameOperandsAndResultType())

    def fold(self):
        lhs, rhs = constant_value(self.lhs), constant_value(self.rhs)
        if rhs == 1:
            return [self.lhs]
        if lhs is None or rhs is None:
            return None
        return [A.IntegerAttr(lhs * rhs, self.output.type)]


class EffectOp(Operation):
    """An op with side effects (never erased or merged)."""

    name = "tst.effect"
    inputs = var_operand(AnyType)
    outputs = var_result(AnyType)


class ScopeOp(Operation):
    """Holds a region that sees the values around it."""

    name = "tst.scope"
    body = region()
    traits = (NoTerminator(),)


class IsolatedOp(Operation):
    """Holds a region that is isolated from above."""

    name = "tst.isolated"
    body = region()
    traits = (NoTerminator(), IsolatedFromAbove())


class BranchOp(Operation):
    """Jumps to its successor."""

    name = "tst.br"
    dest = var_successor()
    traits = (IsTerminator(),)


class CondBranchOp(Operation):
    """Jumps to one of two successors."""

    name = "tst.cond_br"
    condition = operand(AnyInteger)
    then_dest = successor()
    else_dest = successor()
    traits = (IsTerminator(),)


class TstDialect(Dialect):
    """The tst dialect, which materializes folded constants as ``tst.constant``."""

    def materialize_constant(self, value, type, location):
        if not isinstance(value, A.IntegerAttr):
            return None
        op = ConstantOp.build(value.value, type)
        op.location = location
        return op


TST = TstDialect("tst", [ConstantOp, AddOp, MulOp, EffectOp, ScopeOp, IsolatedOp, BranchOp,
                         CondBranchOp])


def register() -> None:
    """Register ``tst`` for good: what ``xir-opt --load-plugin tests/testing_dialect.py`` calls."""
    registry.register_dialect(TST)


@pytest.fixture
def tst():
    """Register the tst dialect for the duration of one test."""
    previous = registry._dialects.get("tst")
    registry.register_dialect(TST)
    yield TST
    if previous is None:
        registry._dialects.pop("tst", None)
    else:
        registry.register_dialect(previous)
