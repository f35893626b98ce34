"""The IR API: building ops, use lists, walking, erasing, cloning, blocks and regions, dense
attributes and numpy, float and string literals, and the verifier's messages."""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir_compare import assert_same_ir
from xir import attributes as A
from xir import types as T
from xir.builtin import ModuleOp
from xir.diagnostics import XirError
from xir.dialects.func import FuncOp, ReturnOp
from xir.ir import Block, BlockArgument, Operation, OpResult, Region
from xir.parser import parse, parse_attribute
from xir.printer import print_ir
from xir.verifier import verify


def _parse(text: str, filename: str = "<stdin>"):
    return parse(text, filename, allow_unregistered=True)


def _ops(module) -> list[Operation]:
    return list(module.body.ops)


def _uses(value) -> list[tuple[str, int]]:
    return [(op.name, index) for op, index in value.uses]


# -- building ops ------------------------------------------------------------------------------------


def test_create_picks_the_registered_class():
    ret = Operation.create("func.return")
    assert isinstance(ret, ReturnOp) and ret.definition is not None
    other = Operation.create("test.anything", result_types=[T.i32])
    assert type(other) is Operation and other.definition is None
    assert other.name == "test.anything" and other.result.type == T.i32


def test_create_wires_operands_results_and_regions():
    a = Operation.create("test.a", result_types=[T.i32, T.f32])
    region = Region([Block([T.index])])
    b = Operation.create("test.b", [a.results[1], a.results[0], a.results[1]], [T.i8],
                         attributes={"x": A.IntegerAttr(1)}, properties={"p": A.UNIT},
                         regions=[region], location=A.NameLoc("b"))
    assert b.operands == (a.results[1], a.results[0], a.results[1])
    assert b.operand_types == (T.f32, T.i32, T.f32)
    assert isinstance(b.result, OpResult) and b.result.owner is b and b.result.index == 0
    assert _uses(a.results[1]) == [("test.b", 0), ("test.b", 2)]
    assert a.results[1].users == [b]
    assert region.parent is b and region.blocks[0].parent is region
    arg = region.blocks[0].args[0]
    assert isinstance(arg, BlockArgument) and arg.owner is region.blocks[0] and arg.index == 0
    assert b.get_attr("x") == A.IntegerAttr(1) and b.get_attr("p") is A.UNIT
    assert b.get_attr("missing", 5) == 5
    with pytest.raises(ValueError, match="'test.a' has 2 results, not one"):
        a.result


def test_built_module_prints_and_parses_back():
    module = ModuleOp.build(sym_name="m")
    x = Operation.create("test.source", result_types=[T.tensor([1, 3], T.f32)])
    module.body.append(x)
    module.body.append(Operation.create("test.sink", [x.result], location=A.FileLineColLoc("a.py", 1, 2)))
    text = print_ir(module)
    assert text == ('builtin.module @m {\n'
                    '  %0 = "test.source"() : () -> tensor<1x3xf32>\n'
                    '  "test.sink"(%0) : (tensor<1x3xf32>) -> () loc("a.py":1:2)\n'
                    '}\n')
    assert_same_ir(_parse(text), module)


# -- use lists -----------------------------------------------------------------------------------------

USES = '''
%a = "test.def"() : () -> i32
%b = "test.def"() : () -> i32
"test.use"(%a, %a, %b) : (i32, i32, i32) -> ()
%c = "test.use2"(%a) : (i32) -> i32
'''


def test_use_lists_follow_set_operand():
    module = _parse(USES)
    a, b, use, use2 = _ops(module)
    assert _uses(a.result) == [("test.use", 0), ("test.use", 1), ("test.use2", 0)]
    use.set_operand(1, b.result)
    assert _uses(a.result) == [("test.use", 0), ("test.use2", 0)]
    assert _uses(b.result) == [("test.use", 2), ("test.use", 1)]
    assert use.operands == (a.result, b.result, b.result)
    use.set_operands([b.result])
    assert _uses(a.result) == [("test.use2", 0)]
    assert _uses(b.result) == [("test.use", 0)]


def test_replace_all_uses_with():
    module = _parse(USES)
    a, b, use, use2 = _ops(module)
    a.result.replace_all_uses_with(b.result)
    assert not a.result.has_uses()
    assert use.operands == (b.result, b.result, b.result) and use2.operands == (b.result,)
    assert sorted(_uses(b.result)) == [("test.use", 0), ("test.use", 1), ("test.use", 2), ("test.use2", 0)]
    b.result.replace_all_uses_with(b.result)  # no-op
    assert len(b.result.uses) == 4


def test_replace_uses_if():
    module = _parse(USES)
    a, b, use, use2 = _ops(module)
    a.result.replace_uses_if(b.result, lambda op, index: op is use2)
    assert use2.operands == (b.result,)
    assert _uses(a.result) == [("test.use", 0), ("test.use", 1)]


def test_erase_updates_the_use_lists_of_operands():
    module = _parse(USES)
    a, b, use, use2 = _ops(module)
    use.erase()
    assert _uses(a.result) == [("test.use2", 0)] and not b.result.has_uses()
    assert [op.name for op in module.body.ops] == ["test.def", "test.def", "test.use2"]
    assert use.parent is None


def test_erase_with_live_uses_raises():
    module = _parse(USES)
    a = _ops(module)[0]
    with pytest.raises(ValueError, match=re.escape("cannot erase 'test.def': its result is still used by "
                                                   "test.use, test.use2")):
        a.erase()
    assert a.parent is module.body  # nothing happened


def test_erase_drops_the_uses_made_inside_regions():
    module = _parse('''
    %outer = "test.def"() : () -> i32
    "test.holder"() ({
      %inner = "test.use"(%outer) : (i32) -> i32
      "test.use"(%inner, %outer) : (i32, i32) -> ()
    }) : () -> ()
    ''')
    outer, holder = _ops(module)
    assert len(outer.result.uses) == 2
    holder.erase()
    assert not outer.result.has_uses()
    outer.erase()
    assert module.body.is_empty()


# -- walking -------------------------------------------------------------------------------------------

WALK = '''
"test.a"() ({
  "test.b"() : () -> ()
^bb1:
  "test.c"() ({
    "test.d"() : () -> ()
  }) : () -> ()
}, {
  "test.e"() : () -> ()
}) : () -> ()
"test.f"() : () -> ()
'''


def test_walk_orders():
    module = _parse(WALK)
    names = lambda ops: [op.name.removeprefix("test.") for op in ops]  # noqa: E731
    assert names(module.walk()) == ["b", "d", "c", "e", "a", "f", "builtin.module"]
    assert names(module.walk(reverse=True)) == ["f", "e", "d", "c", "b", "a", "builtin.module"]
    assert names(module.walk_preorder()) == ["builtin.module", "a", "b", "c", "d", "e", "f"]


def test_erase_while_walking():
    module = _parse('''
    %x = "test.keep"() : () -> i32
    "test.dead"() : () -> ()
    "test.box"() ({
      "test.dead"() : () -> ()
      "test.dead"() : () -> ()
      "test.keep"(%x) : (i32) -> ()
      "test.dead"() : () -> ()
    }) : () -> ()
    "test.dead"() : () -> ()
    ''')
    seen = []
    for op in module.walk():
        seen.append(op.name)
        if op.name == "test.dead":
            op.erase()
    assert seen.count("test.dead") == 5
    assert print_ir(module) == ('builtin.module {\n'
                                '  %x = "test.keep"() : () -> i32\n'
                                '  "test.box"() ({\n'
                                '    "test.keep"(%x) : (i32) -> ()\n'
                                '  }) : () -> ()\n'
                                '}\n')
    for op in module.walk(reverse=True):
        if op.name == "test.keep" and op.operands:
            op.erase()
    assert len(list(module.walk())) == 3


def test_ancestry():
    module = _parse(WALK)
    a = module.body.first_op
    d = next(op for op in module.walk() if op.name == "test.d")
    assert d.parent_op.name == "test.c" and d.parent_op.parent_op is a and a.parent_op is module
    assert a.is_ancestor_of(d) and module.is_ancestor_of(d) and d.is_ancestor_of(d)
    assert not d.is_ancestor_of(a)


# -- cloning -------------------------------------------------------------------------------------------

CLONE = '''
%outer = "test.def"() : () -> i32
"test.holder"(%outer) ({
  "test.use"(%late, %outer) : (i64, i32) -> ()
  %late = "test.late"() : () -> i64
  "test.br"(%late)[^next] : (i64) -> ()
^next(%arg: f32):
  "test.inner"() ({
    "test.use"(%arg, %late) : (f32, i64) -> ()
  }) : () -> ()
  "test.br"()[^next] : () -> ()
}) {tag = "h"} : (i32) -> ()
'''


def test_clone_is_deep_and_remaps_operands_successors_and_forward_references():
    module = _parse(CLONE)
    outer, holder = _ops(module)
    value_map = {}
    copy = holder.clone(value_map)
    module.body.append(copy)

    assert copy is not holder and copy.attributes == holder.attributes
    assert copy.attributes is not holder.attributes
    assert copy.operands == (outer.result,)  # defined outside: shared
    entry, nxt = copy.regions[0].blocks
    use, late, br = entry.ops
    inner, br2 = nxt.ops
    assert use.operands[0] is late.result  # the forward reference points into the copy
    assert use.operands[1] is outer.result
    assert br.successors == [nxt] and br2.successors == [nxt]
    assert br.operands == (late.result,)
    nested_use = inner.regions[0].blocks[0].first_op
    assert nested_use.operands == (nxt.args[0], late.result)

    old_entry, old_next = holder.regions[0].blocks
    old_use, old_late, _ = old_entry.ops
    assert value_map[old_late.result] is late.result and value_map[old_next.args[0]] is nxt.args[0]
    # the original is untouched: its values are used by original ops only
    assert old_use.operands[0] is old_late.result
    assert all(holder.is_ancestor_of(op) for op, _ in old_late.result.uses)
    assert all(copy.is_ancestor_of(op) for op, _ in late.result.uses)
    assert len(outer.result.uses) == 4
    verify(module)
    assert_same_ir(_parse(print_ir(module)), module)


def test_clone_of_a_module_keeps_its_resources():
    module = _parse('''"test.c"() {v = dense_resource<blob> : tensor<2xi8>} : () -> ()
    {-#
      dialect_resources: {
        builtin: {
          blob: "0x010000000102"
        }
      }
    #-}''')
    copy = module.clone()
    assert copy.resources["blob"].data == b"\x01\x02"
    assert print_ir(copy) == print_ir(module)


# -- blocks and regions ---------------------------------------------------------------------------------


def test_block_insert_before_after_and_detach():
    block = Block()
    a, b, c, d = (Operation.create(f"test.{n}") for n in "abcd")
    block.append(b)
    block.insert_before(a, b)
    block.insert_after(d, b)
    block.insert_after(c, b)
    assert [op.name for op in block.ops] == ["test.a", "test.b", "test.c", "test.d"]
    assert block.first_op is a and block.last_op is d and block.terminator is d
    assert a.prev_op is None and a.next_op is b and d.next_op is None and c.prev_op is b
    assert all(op.parent is block for op in block.ops) and len(block) == 4
    assert [op.name for op in block.ops_reversed()] == ["test.d", "test.c", "test.b", "test.a"]
    b.detach()
    assert [op.name for op in block.ops] == ["test.a", "test.c", "test.d"]
    assert b.parent is None and b.prev_op is None and b.next_op is None and a.next_op is c
    a.detach()
    d.detach()
    assert block.first_op is c and block.last_op is c
    c.detach()
    assert block.is_empty() and block.first_op is None and block.last_op is None and len(block) == 0
    block.append(b)
    assert block.first_op is block.last_op is b


def test_regions_and_block_arguments():
    region = Region()
    entry = region.add_block(Block([T.i32], name_hint="entry"))
    exit_ = region.add_block()
    x = exit_.add_arg(T.f32, "x")
    assert region.entry is entry and entry.parent is region and exit_.parent is region
    assert x.index == 0 and x.owner is exit_ and x.name_hint == "x"
    br = Operation.create("test.br", [entry.args[0]], successors=[exit_])
    entry.append(br)
    exit_.append(Operation.create("test.ret", [x]))
    assert exit_.uses == [br] and entry.uses == []
    assert [op.name for op in region.ops] == ["test.br", "test.ret"]
    holder = Operation.create("test.holder", regions=[region])
    assert region.parent is holder and entry.parent_op is holder
    assert Region().entry is None


# -- dense attributes and numpy ---------------------------------------------------------------------------


def test_dense_numpy_round_trip():
    t = T.tensor([2, 3], T.f32)
    data = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    attr = A.DenseElementsAttr(t, data)
    assert not attr.is_splat and attr.to_numpy().dtype == np.float32
    np.testing.assert_array_equal(attr.to_numpy(), data)
    assert not attr.to_numpy().flags.writeable
    back = parse_attribute(str(attr))
    assert back == attr and back.type == t
    np.testing.assert_array_equal(back.to_numpy(), data)


def test_dense_splat_stays_one_element():
    t = T.tensor([1024, 1024], T.f32)
    splat = A.DenseElementsAttr(t, np.float32(0.5), is_splat=True)
    assert splat.is_splat and splat.array.size == 1
    assert str(splat) == "dense<0.5> : tensor<1024x1024xf32>"
    full = splat.to_numpy()
    assert full.shape == (1024, 1024) and full.dtype == np.float32 and float(full[1023, 7]) == 0.5
    assert not full.flags.writeable
    assert parse_attribute(str(splat)) == splat


@pytest.mark.parametrize("element, values", [
    (T.i1, [True, False, True]), (T.i8, [-128, 0, 127]), (T.IntegerType(8, "u"), [0, 200, 255]),
    (T.i64, [-(2 ** 63), 0, 2 ** 63 - 1]), (T.index, [1, 2, 3]), (T.f16, [0.5, -2.0, 65504.0]),
    (T.f64, [0.1, -0.0, 1e300]),
])
def test_dense_element_types(element, values):
    attr = A.DenseElementsAttr(T.tensor([3], element), np.array(values, dtype=A.numpy_dtype(element)))
    back = parse_attribute(str(attr))
    assert back == attr
    assert back.to_numpy().tolist() == attr.to_numpy().tolist()


def test_dense_signless_integers_hold_their_bits():
    # 255 : i8 is a valid signless literal; a signless i8 tensor holds it as the bits of -1.
    attr = parse_attribute("dense<[255, 1]> : tensor<2xi8>")
    assert attr.to_numpy().tolist() == [-1, 1]
    assert str(attr) == "dense<[-1, 1]> : tensor<2xi8>"


def test_dense_resource_to_numpy():
    data = (np.arange(6, dtype="<f4") - 2.5).tobytes()
    attr = A.DenseResourceAttr(A.ResourceHandle("w", data), T.tensor([2, 3], T.f32))
    np.testing.assert_array_equal(attr.to_numpy(), (np.arange(6, dtype=np.float32) - 2.5).reshape(2, 3))
    module = _parse('''"test.c"() {v = dense_resource<w> : tensor<2x2xi16>} : () -> ()
    {-#
      dialect_resources: {
        builtin: {
          w: "0x020000000100FFFF0300FEFF"
        }
      }
    #-}''')
    value = module.body.first_op.attributes["v"]
    assert value.to_numpy().tolist() == [[1, -1], [3, -2]]
    assert module.resources["w"].alignment == 2
    with pytest.raises(ValueError, match="resource 'missing' has no data"):
        A.DenseResourceAttr(A.ResourceHandle("missing"), T.tensor([1], T.f32)).to_numpy()


# -- float literals ---------------------------------------------------------------------------------------

_FORMATS = {"f16": "<e", "f32": "<f", "f64": "<d"}


def _bits(value: float, kind: str) -> bytes:
    return struct.pack(_FORMATS[kind], value)


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


def _shortest_digits(value: float, kind: str) -> int:
    for digits in range(1, 18):
        if _bits(A._round_to(kind, float(f"{value:.{digits}g}")), kind) == _bits(value, kind):
            return digits
    raise AssertionError(value)


def _check_float_text(value: float, kind: str) -> None:
    text = A.float_text(value, kind)
    assert "." in text, text
    assert re.fullmatch(r"-?[0-9]+\.[0-9]*(e[-+][0-9]+)?", text), text
    assert _bits(A._round_to(kind, float(text)), kind) == _bits(value, kind)  # exact, -0.0 included
    parsed = parse_attribute(f"{text} : {kind}")
    assert _bits(parsed.value, kind) == _bits(value, kind)
    # Shortest: f64 exactly as Python's shortest repr; narrower kinds with at least 6 digits.
    assert _significant_digits(text) <= max(6, _shortest_digits(value, kind)), text


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.floats(width=64, allow_nan=False, allow_infinity=False))
def test_float_text_f64(value):
    _check_float_text(value, "f64")
    assert float(A.float_text(value)) == value and repr(value).lstrip("-")[:1] in A.float_text(value)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float_text_f32(value):
    _check_float_text(value, "f32")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.floats(width=16, allow_nan=False, allow_infinity=False))
def test_float_text_f16(value):
    _check_float_text(value, "f16")


@pytest.mark.parametrize("value, kind, text", [
    (0.1, "f64", "0.1"), (-0.0, "f64", "-0.0"), (1e-30, "f64", "1e-30"), (1e300, "f64", "1e+300"),
    (100.0, "f64", "100.0"), (A._round_to("f32", 0.1), "f32", "0.1"), (65504.0, "f16", "65504.0"),
    (5e-324, "f64", "5e-324"),
])
def test_float_text_examples(value, kind, text):
    assert float(A.float_text(value, kind)) == float(text)
    assert A.float_text(value, kind) in (text, text.replace("e", ".0e"))


@pytest.mark.parametrize("text, kind", [
    ("0x7FC00000", "f32"), ("0x7F800000", "f32"), ("0xFF800000", "f32"), ("0x7FF8000000000000", "f64"),
    ("0x7C00", "f16"), ("0x7FC0", "bf16"), ("0xFF80", "bf16"),
])
def test_non_finite_floats_print_as_their_bits(text, kind):
    attr = parse_attribute(f"{text} : {kind}")
    assert not math.isfinite(attr.value)
    assert str(attr) == f"{text} : {kind}"


def test_float_attrs_compare_by_bits():
    assert A.FloatAttr(0.0, T.f32) != A.FloatAttr(-0.0, T.f32)
    assert A.FloatAttr(math.nan, T.f32) == A.FloatAttr(math.nan, T.f32)
    assert A.DenseArrayAttr(T.f32, (0.0,)) != A.DenseArrayAttr(T.f32, (-0.0,))
    assert len({A.FloatAttr(0.0, T.f64), A.FloatAttr(-0.0, T.f64)}) == 2


def test_bf16_values_are_rounded():
    assert parse_attribute("0.1 : bf16").value == 0.10009765625
    assert parse_attribute("3.39e38 : bf16").value == 3.3895313892515355e38  # the largest bf16
    assert parse_attribute("3.4e38 : bf16").value == math.inf  # past the largest + half an ulp
    assert parse_attribute("1.0e39 : bf16").value == math.inf
    assert parse_attribute("-1.0e-45 : bf16").value == -0.0 and math.copysign(1, parse_attribute("-1.0e-45 : bf16").value) == -1


# -- string literals ---------------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(['"', "\\", "\n", "\t", "\x00", "\udcff", "\udc80"])))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_TEXT)
def test_string_quoting_round_trip(value):
    quoted = A.quote_string(value)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert all(32 <= ord(c) < 127 for c in quoted)  # printable ASCII only
    assert A.unescape_string(quoted[1:-1]) == value
    assert parse_attribute(quoted) == A.StringAttr(value)
    assert parse_attribute(f"{{{quoted} = {quoted}}}").value == {value: A.StringAttr(value)}


@pytest.mark.parametrize("value, text", [
    ("plain", '"plain"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("line\n", '"line\\0A"'),
    ("€", '"\\E2\\82\\AC"'), ("", '""'), ("\udcff", '"\\FF"'),
])
def test_string_quoting_examples(value, text):
    assert A.quote_string(value) == text
    assert A.unescape_string(text[1:-1]) == value


def test_string_escapes_that_parse():
    assert parse_attribute('"\\n\\t\\"\\\\\\41"').value == '\n\t"\\A'


# -- verifier messages ----------------------------------------------------------------------------------


def _verify_error(text: str) -> str:
    module = _parse(text, "t.mlir")
    with pytest.raises(XirError) as info:
        verify(module)
    return info.value.diagnostic.header()


def test_verifier_return_count_mismatch():
    assert _verify_error('''func.func @f(%a: i32) -> (i32, i32) {
  "func.return"(%a) : (i32) -> ()
}''') == "t.mlir:2:3: error: 'func.return' op has 1 operands, but enclosing function (@f) returns 2"


def test_verifier_return_type_mismatch():
    assert _verify_error('''func.func @f(%a: i32) -> f32 {
  "func.return"(%a) : (i32) -> ()
}''') == ("t.mlir:2:3: error: 'func.return' op type of return operand 0 ('i32') doesn't match "
          "function result type ('f32') in function @f")


def test_verifier_return_outside_a_function():
    assert _verify_error('''"test.wrap"() ({
  "func.return"() : () -> ()
}) : () -> ()''') == "t.mlir:2:3: error: 'func.return' op expects parent op 'func.func'"


def test_verifier_isolated_from_above():
    assert _verify_error('''%0 = "test.def"() : () -> i32
func.func @f() {
  "test.use"(%0) : (i32) -> ()
  "func.return"() : () -> ()
}''') == ("t.mlir:3:3: error: 'test.use' op using value defined outside the region (operand #0 of "
          "an op in 'func.func', which is isolated from above)")


def test_verifier_missing_terminator():
    assert _verify_error('''func.func @f() {
  "test.op"() : () -> ()
  %0 = "func.call"() <{callee = @f}> : () -> i32
}''') == "t.mlir:3:3: error: 'func.call' op block in 'func.func' must end with a terminator, not 'func.call'"
    assert _verify_error('''"func.func"() <{sym_name = "f", function_type = () -> ()}> ({
^bb0:
}) : () -> ()''') == "t.mlir:1:1: error: 'func.func' op empty block: expect at least a terminator"
    assert _verify_error('''func.func @f() {
  "func.return"() : () -> ()
  "test.op"() : () -> ()
}''') == "t.mlir:2:3: error: 'func.return' op must be the last operation in the parent block"


def test_verifier_duplicate_symbol():
    assert _verify_error('''func.func @f() {
  "func.return"() : () -> ()
}
func.func private @f()''') == "t.mlir:4:1: error: 'func.func' op redefinition of symbol named 'f'"


def test_verifier_ignores_a_sym_name_that_is_not_a_string():
    verify(_parse('"test.a"() {sym_name = @f} : () -> ()\n"test.b"() {sym_name = @f} : () -> ()'))


def test_verifier_dominance_and_entry_arguments():
    assert _verify_error('''func.func @f() {
  "test.use"(%x) : (i32) -> ()
  %x = "test.def"() : () -> i32
  "func.return"() : () -> ()
}''') == "t.mlir:2:3: error: 'test.use' op operand #0 does not dominate this use"
    assert _verify_error('''"func.func"() <{sym_name = "f", function_type = (i32) -> ()}> ({
^bb0(%a: f32):
  "func.return"() : () -> ()
}) : () -> ()''') == ("t.mlir:1:1: error: 'func.func' op entry block arguments (f32) do not match the "
                      "function signature (i32)")


def test_verifier_accepts_graph_regions_and_declarations():
    verify(_parse('''"test.graph"() ({
  "test.use"(%x) : (i32) -> ()
  %x = "test.def"() : () -> i32
}) : () -> ()
func.func private @decl(i32) -> f32
'''))
    assert isinstance(_parse("func.func private @decl(i32) -> f32").body.first_op, FuncOp)
