"""The rewrite patterns, the rewriter and the greedy driver (xir/rewrite.py)."""

import time

import pytest
from testing_dialect import AddOp, AddZero, ConstantOp, MulOp, constant_value, tst  # noqa: F401

from xir import types as T
from xir.builtin import ModuleOp
from xir.ir import Operation
from xir.parser import parse
from xir.printer import print_ir
from xir.rewrite import (GreedyRewriteDriver, PatternRewriter, RewritePattern,
                         apply_patterns_greedily, is_trivially_dead)

i32 = T.i32


def func(body: str, args: str = "%a: i32, %b: i32") -> str:
    """A module holding ``func.func @f(args) -> i32 { body }``."""
    return f"func.func @f({args}) -> i32 {{\n{body}\n}}\n"


def expected(body: str, args: str = "%a: i32, %b: i32") -> str:
    lines = "\n".join("  " + line for line in body.strip("\n").splitlines())
    return f"builtin.module {{\n  func.func @f({args}) -> i32 {{\n{lines}\n  }}\n}}\n"


def test_pattern_replaces_op_and_dead_constant_goes(tst):
    module = parse(func('''
  %z = "tst.constant"() <{value = 0 : i32}> : () -> i32
  %0 = "tst.add"(%a, %z) : (i32, i32) -> i32
  %1 = "tst.add"(%0, %z) : (i32, i32) -> i32
  "func.return"(%1) : (i32) -> ()'''))
    assert apply_patterns_greedily(module, [AddZero()])
    assert print_ir(module) == expected('''
  "func.return"(%a) : (i32) -> ()''')


def test_fold_to_attribute_materializes_a_constant_through_the_dialect(tst):
    module = parse(func('''
  %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
  %c3 = "tst.constant"() <{value = 3 : i32}> : () -> i32
  %0 = "tst.add"(%c2, %c3) : (i32, i32) -> i32
  %1 = "tst.mul"(%0, %c3) : (i32, i32) -> i32
  "func.return"(%1) : (i32) -> ()'''))
    assert apply_patterns_greedily(module, [])
    assert print_ir(module) == expected('''
  %0 = "tst.constant"() <{value = 15 : i32}> : () -> i32
  "func.return"(%0) : (i32) -> ()''')


def test_fold_to_value_and_fold_switched_off(tst):
    text = func('''
  %c1 = "tst.constant"() <{value = 1 : i32}> : () -> i32
  %0 = "tst.mul"(%a, %c1) : (i32, i32) -> i32
  "func.return"(%0) : (i32) -> ()''')
    module = parse(text)
    assert apply_patterns_greedily(module, [], fold=False)
    assert "tst.mul" in print_ir(module)
    apply_patterns_greedily(module, [])
    assert print_ir(module) == expected('''
  "func.return"(%a) : (i32) -> ()''')


def test_fold_without_materializer_is_skipped(tst, monkeypatch):
    monkeypatch.delattr(type(tst), "materialize_constant")
    text = func('''
  %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
  %0 = "tst.add"(%c2, %c2) : (i32, i32) -> i32
  "func.return"(%0) : (i32) -> ()''')
    module = parse(text)
    assert apply_patterns_greedily(module, [])
    assert print_ir(module) == print_ir(parse(text))


class Record(RewritePattern):
    """Records which pattern saw an op first, then claims to have done nothing."""

    def __init__(self, label, log, benefit=1, op_name=None, op_class=None):
        self.label, self.log, self.benefit = label, log, benefit
        self.op_name, self.op_class = op_name, op_class

    def match_and_rewrite(self, op, rewriter):
        self.log.append((self.label, op.name))
        return False


def test_patterns_run_by_benefit_and_dispatch_on_name_class_or_any(tst):
    module = parse(func('''
  %0 = "tst.add"(%a, %b) : (i32, i32) -> i32
  %1 = "tst.mul"(%0, %b) : (i32, i32) -> i32
  "func.return"(%1) : (i32) -> ()'''))
    log = []
    patterns = [Record("low", log, 1, op_name="tst.add"), Record("any", log, 2),
                Record("high", log, 3, op_name="tst.add"), Record("class", log, 1, op_class=MulOp)]
    apply_patterns_greedily(module, patterns, max_iterations=1)
    assert log == [("high", "tst.add"), ("any", "tst.add"), ("low", "tst.add"),
                   ("any", "tst.mul"), ("class", "tst.mul"),
                   ("any", "func.return"), ("any", "func.func")]


def test_annotation_gives_the_root(tst):
    class Either(RewritePattern):
        def match_and_rewrite(self, op: AddOp | MulOp, rewriter) -> bool:
            seen.append(op.name)
            return False

    seen = []
    assert AddZero().root() == ("tst.add", AddOp)
    assert Either().root() == (None, (AddOp, MulOp))
    assert Record("x", []).root() == (None, None)
    module = parse(func('''
  %0 = "tst.add"(%a, %b) : (i32, i32) -> i32
  %1 = "tst.mul"(%0, %b) : (i32, i32) -> i32
  "func.return"(%1) : (i32) -> ()'''))
    apply_patterns_greedily(module, [Either()])
    assert seen == ["tst.add", "tst.mul"]


def test_new_ops_are_visited_in_the_same_iteration(tst):
    class MulByTwoToAddZero(RewritePattern):
        """mul(x, 2) -> add(add(x, x), 0), so that AddZero has work on a new op."""

        def match_and_rewrite(self, op: MulOp, rewriter):
            if constant_value(op.rhs) != 2:
                return False
            zero = rewriter.insert_op_before(ConstantOp.build(0, i32), op)
            double = rewriter.create_op_before(op, "tst.add", (op.lhs, op.lhs), (i32,))
            rewriter.replace_op(op, Operation.create("tst.add", (double.result, zero.result), (i32,)))
            return True

    module = parse(func('''
  %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
  %0 = "tst.mul"(%a, %c2) : (i32, i32) -> i32
  "func.return"(%0) : (i32) -> ()'''))
    driver = GreedyRewriteDriver([MulByTwoToAddZero(), AddZero()])
    assert driver.run(module) and driver.changed
    assert driver.iterations == 2  # one that rewrites everything, one that finds nothing to do
    assert print_ir(module) == expected('''
  %0 = "tst.add"(%a, %a) : (i32, i32) -> i32
  "func.return"(%0) : (i32) -> ()''')


def test_dead_pure_ops_go_but_effects_and_unregistered_ops_stay(tst):
    module = parse(func('''
  %0 = "tst.add"(%a, %b) : (i32, i32) -> i32
  %1 = "tst.mul"(%0, %0) : (i32, i32) -> i32
  %2 = "tst.effect"(%a) : (i32) -> i32
  %3 = "test.unknown"(%a) : (i32) -> i32
  "func.return"(%a) : (i32) -> ()'''), allow_unregistered=True)
    assert apply_patterns_greedily(module, [])
    assert print_ir(module) == expected('''
  %0 = "tst.effect"(%a) : (i32) -> i32
  %1 = "test.unknown"(%a) : (i32) -> i32
  "func.return"(%a) : (i32) -> ()''')
    assert not is_trivially_dead(module)


class Liar(RewritePattern):
    """Claims a rewrite every time, changing nothing: the IR never settles."""

    def match_and_rewrite(self, op: AddOp, rewriter):
        return True


class Swap(RewritePattern):
    """Swaps the operands of every add, in place: it undoes itself forever."""

    def match_and_rewrite(self, op: AddOp, rewriter):
        op.set_operands([op.rhs, op.lhs])
        rewriter.notify_op_modified(op)
        return True


@pytest.mark.parametrize("pattern", [Liar(), Swap()], ids=["liar", "swap"])
def test_iteration_cap_stops_patterns_that_never_settle(tst, pattern):
    module = parse(func('''
  %0 = "tst.add"(%a, %b) : (i32, i32) -> i32
  "func.return"(%0) : (i32) -> ()'''))
    driver = GreedyRewriteDriver([pattern], max_iterations=3)
    start = time.perf_counter()
    assert driver.run(module) is False
    assert driver.iterations == 3 and driver.changed and not driver.converged
    assert time.perf_counter() - start < 5


def test_rewriter_checks_its_arguments(tst):
    module = parse(func('''
  %0 = "tst.add"(%a, %b) : (i32, i32) -> i32
  "func.return"(%0) : (i32) -> ()'''))
    add = next(op for op in module.walk() if op.name == "tst.add")
    rewriter = PatternRewriter()
    with pytest.raises(ValueError, match="with 2 values"):
        rewriter.replace_op(add, [add.lhs, add.rhs])
    with pytest.raises(ValueError, match="still used by func.return"):
        rewriter.erase_op(add)
    rewriter.insert_op_after(ConstantOp.build(7, i32), add)
    assert rewriter.has_changed
    assert '%1 = "tst.constant"() <{value = 7 : i32}>' in print_ir(module)


def test_driver_is_linear_on_a_large_block(tst):
    n = 100_000
    module = ModuleOp.build()
    body = module.body
    zero = body.append(ConstantOp.build(0, i32)).result
    value = body.append(Operation.create("tst.effect", (), (i32,))).result
    for _ in range(n):
        value = body.append(Operation.create("tst.add", (value, zero), (i32,))).result
    body.append(Operation.create("tst.effect", (value,), ()))
    start = time.perf_counter()
    assert apply_patterns_greedily(module, [AddZero()])
    assert time.perf_counter() - start < 20  # about 1 s; a quadratic driver takes minutes
    assert len(body) == 2
