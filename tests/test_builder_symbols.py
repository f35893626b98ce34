"""Building IR at insertion points, and symbol tables."""

from xir import attributes as A
from xir import types as T
from xir.builder import Builder
from xir.parser import parse
from xir.printer import print_ir
from xir.symbols import SymbolTable, resolve_symbol, symbol_name
from xir.verifier import verify

MODULE = """\
builtin.module {
  func.func @f(%x: i32) -> i32 {
    "func.return"(%x) : (i32) -> ()
  }
  builtin.module @inner {
    func.func private @g()
  }
}
"""


def names(block):
    return [op.name for op in block.ops]


def test_insertion_points_place_ops_where_asked():
    module = parse(MODULE)
    func = SymbolTable(module).lookup("f")
    entry = func.regions[0].blocks[0]
    ret = entry.last_op
    x = entry.args[0]

    middle = Builder.before(ret).create("test.middle", [x], [T.i32]).result
    Builder.at_start(entry).create("test.first")
    Builder.after(middle.owner).create("test.after_middle", [middle])
    Builder.at_end(entry).create("test.last")
    assert names(entry) == ["test.first", "test.middle", "test.after_middle", "func.return", "test.last"]
    assert [op for op, _ in middle.uses] == [middle.owner.next_op]


def test_builder_moves_and_gives_its_location_to_new_ops():
    module = parse(MODULE)
    entry = SymbolTable(module).lookup("f").regions[0].blocks[0]
    builder = Builder.at_end(entry)
    builder.location = A.NameLoc("conv1")
    a = builder.create("test.a")
    builder.set_insertion_point_before(a)
    b = builder.create("test.b", location=A.NameLoc("mine"))
    builder.set_insertion_point_after(a)
    c = builder.create("test.c")
    assert names(entry) == ["func.return", "test.b", "test.a", "test.c"]
    assert (a.location, b.location, c.location) == (A.NameLoc("conv1"), A.NameLoc("mine"), A.NameLoc("conv1"))


def test_built_ir_prints_and_verifies():
    module = parse(MODULE)
    entry = SymbolTable(module).lookup("f").regions[0].blocks[0]
    ret = entry.last_op
    doubled = Builder.before(ret).create("func.call", [entry.args[0]], [T.i32],
                                         properties={"callee": A.SymbolRefAttr("f")}).result
    ret.set_operand(0, doubled)
    verify(module)
    assert '%0 = "func.call"(%x) <{callee = @f}> : (i32) -> i32' in print_ir(module)


def test_symbol_table_lookup_and_nested_references():
    module = parse(MODULE)
    table = SymbolTable(module)
    assert "f" in table and "g" not in table
    assert symbol_name(table.lookup("inner")) == "inner"
    assert symbol_name(resolve_symbol(module, A.SymbolRefAttr("inner", ("g",)))) == "g"
    assert resolve_symbol(module, A.SymbolRefAttr("inner", ("nope",))) is None
    assert resolve_symbol(module, A.SymbolRefAttr("f", ("g",))) is None


def test_symbol_table_insert_renames_a_taken_name_and_erase_removes():
    module = parse(MODULE)
    table = SymbolTable(module)
    clone = table.lookup("f").clone()
    assert table.insert(clone) == "f_1"
    assert table.unique_name("f") == "f_2"
    verify(module)  # the SymbolTable trait sees no duplicate
    assert "func.func @f_1(%x: i32) -> i32 {" in print_ir(module)
    table.erase("f_1")
    assert "f_1" not in table and "@f_1" not in print_ir(module)
