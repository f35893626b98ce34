"""canonicalize, cse and dce: input IR and the exact IR each pipeline prints."""

import textwrap
import time

import pytest
from testing_dialect import tst  # noqa: F401

from xir.diagnostics import XirError
from xir.parser import parse
from xir.pass_manager import PassManager
from xir.printer import print_ir


def run(pipeline: str, text: str) -> str:
    module = parse(textwrap.dedent(text), allow_unregistered=True)
    PassManager(pipeline).run(module)
    return print_ir(module)


def ir(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- canonicalize ----------------------------------------------------------------------------------

CANON_INPUT = """
    func.func @f(%a: i32) -> i32 {
      %z = "tst.constant"() <{value = 0 : i32}> : () -> i32
      %c1 = "tst.constant"() <{value = 1 : i32}> : () -> i32
      %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
      %0 = "tst.add"(%z, %a) : (i32, i32) -> i32
      %1 = "tst.add"(%c1, %c2) : (i32, i32) -> i32
      %2 = "tst.mul"(%0, %1) : (i32, i32) -> i32
      %3 = "tst.add"(%1, %2) : (i32, i32) -> i32
      "func.return"(%3) : (i32) -> ()
    }
"""


def test_canonicalize_folds_and_applies_patterns(tst):
    # add(0, a) -> add(a, 0) (constant to the right) -> a; add(1, 2) folds to 3; mul and the
    # last add stay; every constant left unused goes.
    assert run("canonicalize", CANON_INPUT) == ir("""
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            %0 = "tst.constant"() <{value = 3 : i32}> : () -> i32
            %1 = "tst.mul"(%a, %0) : (i32, i32) -> i32
            %2 = "tst.add"(%1, %0) : (i32, i32) -> i32
            "func.return"(%2) : (i32) -> ()
          }
        }
    """)


def test_canonicalize_without_folding(tst):
    assert run("canonicalize{fold=false}", CANON_INPUT) == ir("""
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            %c1 = "tst.constant"() <{value = 1 : i32}> : () -> i32
            %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
            %0 = "tst.add"(%c1, %c2) : (i32, i32) -> i32
            %1 = "tst.mul"(%a, %0) : (i32, i32) -> i32
            %2 = "tst.add"(%0, %1) : (i32, i32) -> i32
            "func.return"(%2) : (i32) -> ()
          }
        }
    """)


def test_canonicalize_strict_reports_no_fixed_point(tst):
    with pytest.raises(XirError) as info:
        run("canonicalize{max-iterations=1 strict=true}", CANON_INPUT)
    assert str(info.value) == "error: canonicalize did not converge after 1 iteration"
    assert "tst.mul" in run("canonicalize{max-iterations=2 strict}", CANON_INPUT)  # converged
    # Without strict, the pass stops where it is: the IR is valid, just not fully simplified.
    assert '"tst.add"(%c1, %c2)' not in run("canonicalize{max-iterations=1}", CANON_INPUT)


# -- cse -------------------------------------------------------------------------------------------


def test_cse_merges_equal_pure_ops(tst):
    assert run("cse", """
        func.func @f(%a: i32, %b: i32) -> i32 {
          %c = "tst.constant"() <{value = 1 : i32}> : () -> i32 loc("first")
          %d = "tst.constant"() <{value = 1 : i32}> : () -> i32 loc("second")
          %e = "tst.constant"() <{value = 2 : i32}> : () -> i32
          %0 = "tst.add"(%a, %c) : (i32, i32) -> i32
          %1 = "tst.add"(%d, %a) : (i32, i32) -> i32
          %2 = "tst.add"(%a, %e) : (i32, i32) -> i32
          %3 = "tst.add"(%a, %d) {note} : (i32, i32) -> i32
          %4 = "tst.effect"(%a) : (i32) -> i32
          %5 = "tst.effect"(%a) : (i32) -> i32
          %6 = "test.pure_or_not"(%a) : (i32) -> i32
          %7 = "test.pure_or_not"(%a) : (i32) -> i32
          %8 = "tst.effect"(%0, %1, %2, %3, %4, %5, %6, %7) : (i32, i32, i32, i32, i32, i32, i32, i32) -> i32
          "func.return"(%8) : (i32) -> ()
        }
    """) == ir("""
        builtin.module {
          func.func @f(%a: i32, %b: i32) -> i32 {
            %c = "tst.constant"() <{value = 1 : i32}> : () -> i32 loc("first")
            %e = "tst.constant"() <{value = 2 : i32}> : () -> i32
            %0 = "tst.add"(%a, %c) : (i32, i32) -> i32
            %1 = "tst.add"(%a, %e) : (i32, i32) -> i32
            %2 = "tst.add"(%a, %c) {note} : (i32, i32) -> i32
            %3 = "tst.effect"(%a) : (i32) -> i32
            %4 = "tst.effect"(%a) : (i32) -> i32
            %5 = "test.pure_or_not"(%a) : (i32) -> i32
            %6 = "test.pure_or_not"(%a) : (i32) -> i32
            %7 = "tst.effect"(%0, %0, %1, %2, %3, %4, %5, %6) : (i32, i32, i32, i32, i32, i32, i32, i32) -> i32
            "func.return"(%7) : (i32) -> ()
          }
        }
    """)


def test_cse_scopes_follow_regions(tst):
    # Outer ops are visible in a nested region, but not inside an isolated op; ops of a nested
    # region are not visible after it, nor in a sibling region.
    assert run("cse", """
        func.func @f(%a: i32) -> i32 {
          %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
          "tst.scope"() ({
            %c_in = "tst.constant"() <{value = 1 : i32}> : () -> i32
            %k = "tst.constant"() <{value = 5 : i32}> : () -> i32
            %k2 = "tst.constant"() <{value = 5 : i32}> : () -> i32
            "tst.effect"(%c_in, %k, %k2) : (i32, i32, i32) -> ()
          }) : () -> ()
          "test.two_regions"() ({
            %k3 = "tst.constant"() <{value = 5 : i32}> : () -> i32
            "tst.effect"(%k3) : (i32) -> ()
          }, {
            %k5 = "tst.constant"() <{value = 5 : i32}> : () -> i32
            "tst.effect"(%k5) : (i32) -> ()
          }) : () -> ()
          "tst.isolated"() ({
            %c_iso = "tst.constant"() <{value = 1 : i32}> : () -> i32
            "tst.effect"(%c_iso) : (i32) -> ()
          }) : () -> ()
          %k4 = "tst.constant"() <{value = 5 : i32}> : () -> i32
          %0 = "tst.add"(%c, %k4) : (i32, i32) -> i32
          "func.return"(%0) : (i32) -> ()
        }
    """) == ir("""
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
            "tst.scope"() ({
              %k = "tst.constant"() <{value = 5 : i32}> : () -> i32
              "tst.effect"(%c, %k, %k) : (i32, i32, i32) -> ()
            }) : () -> ()
            "test.two_regions"() ({
              %k3 = "tst.constant"() <{value = 5 : i32}> : () -> i32
              "tst.effect"(%k3) : (i32) -> ()
            }, {
              %k5 = "tst.constant"() <{value = 5 : i32}> : () -> i32
              "tst.effect"(%k5) : (i32) -> ()
            }) : () -> ()
            "tst.isolated"() ({
              %c_iso = "tst.constant"() <{value = 1 : i32}> : () -> i32
              "tst.effect"(%c_iso) : (i32) -> ()
            }) : () -> ()
            %k4 = "tst.constant"() <{value = 5 : i32}> : () -> i32
            %0 = "tst.add"(%c, %k4) : (i32, i32) -> i32
            "func.return"(%0) : (i32) -> ()
          }
        }
    """)


def test_cse_does_not_share_between_blocks_or_functions(tst):
    text = """
        func.func @f(%a: i32) -> i32 {
          %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
          "tst.br"()[^bb1] : () -> ()
        ^bb1:
          %d = "tst.constant"() <{value = 1 : i32}> : () -> i32
          %0 = "tst.add"(%c, %d) : (i32, i32) -> i32
          "func.return"(%0) : (i32) -> ()
        }
        func.func @g() -> i32 {
          %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
          "func.return"(%c) : (i32) -> ()
        }
    """
    assert run("cse", text) == print_ir(parse(textwrap.dedent(text)))


# -- dce -------------------------------------------------------------------------------------------


def test_dce_erases_unused_pure_ops_to_a_fixed_point(tst):
    assert run("dce", """
        func.func @f(%a: i32) -> i32 {
          %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
          %0 = "tst.add"(%a, %c) : (i32, i32) -> i32
          %1 = "tst.mul"(%0, %0) : (i32, i32) -> i32
          %2 = "tst.effect"(%a) : (i32) -> i32
          %3 = "test.unknown"(%a) : (i32) -> i32
          "tst.scope"() ({
            %4 = "tst.add"(%a, %a) : (i32, i32) -> i32
          }) : () -> ()
          "func.return"(%a) : (i32) -> ()
        }
    """) == ir("""
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            %0 = "tst.effect"(%a) : (i32) -> i32
            %1 = "test.unknown"(%a) : (i32) -> i32
            "tst.scope"() ({
            ^bb0:
            }) : () -> ()
            "func.return"(%a) : (i32) -> ()
          }
        }
    """)


def test_dce_erases_unreachable_blocks(tst):
    assert run("dce", """
        func.func @f(%a: i32) -> i32 {
          "tst.br"()[^bb2] : () -> ()
        ^bb1:
          %x = "tst.effect"() : () -> i32
          "tst.br"()[^bb3] : () -> ()
        ^bb2:
          %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
          "tst.cond_br"(%c)[^bb2, ^bb4] : (i32) -> ()
        ^bb3:
          "func.return"(%x) : (i32) -> ()
        ^bb4:
          "func.return"(%a) : (i32) -> ()
        }
    """) == ir("""
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            "tst.br"()[^bb1] : () -> ()
          ^bb1:
            %c = "tst.constant"() <{value = 1 : i32}> : () -> i32
            "tst.cond_br"(%c)[^bb1, ^bb2] : (i32) -> ()
          ^bb2:
            "func.return"(%a) : (i32) -> ()
          }
        }
    """)


def test_pipeline_of_all_three(tst):
    assert run("canonicalize,cse,dce", """
        func.func @f(%a: i32) -> i32 {
          %z = "tst.constant"() <{value = 0 : i32}> : () -> i32
          %0 = "tst.add"(%a, %z) : (i32, i32) -> i32
          %1 = "tst.mul"(%0, %a) : (i32, i32) -> i32
          %2 = "tst.mul"(%a, %0) : (i32, i32) -> i32
          %3 = "tst.add"(%1, %2) : (i32, i32) -> i32
          "func.return"(%3) : (i32) -> ()
        }
    """) == ir("""
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            %0 = "tst.mul"(%a, %a) : (i32, i32) -> i32
            %1 = "tst.add"(%0, %0) : (i32, i32) -> i32
            "func.return"(%1) : (i32) -> ()
          }
        }
    """)


def test_cse_and_dce_are_linear_on_a_large_block(tst):
    from testing_dialect import ConstantOp

    from xir import types as T
    from xir.builtin import ModuleOp
    from xir.ir import Operation

    n, module = 100_000, ModuleOp.build()
    body = module.body
    zero = body.append(ConstantOp.build(0, T.i32)).result
    x = body.append(Operation.create("tst.effect", (), (T.i32,))).result
    for _ in range(n):  # n equal adds, each used once, then n unused ones
        add = body.append(Operation.create("tst.add", (x, zero), (T.i32,)))
        body.append(Operation.create("tst.effect", (add.result,), ()))
    for _ in range(n):
        body.append(Operation.create("tst.add", (x, x), (T.i32,)))
    start = time.perf_counter()
    PassManager("cse,dce", verify_each=False).run(module)
    assert time.perf_counter() - start < 20  # about 1 s; quadratic use lists take minutes
    assert len(body) == n + 3
