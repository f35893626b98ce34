"""Hypothesis strategies for random, well-formed xir modules: as IR objects and as text.

``modules(profile)`` draws a ``builtin.module`` built with the IR API: nested regions and blocks
with arguments, successors, multi-result ops, unregistered ``test.*`` ops whose operands are values
in scope (block arguments, earlier results, values of enclosing regions, and, where MLIR allows it,
values defined later in a graph region), every kind of attribute, type and location, properties,
``func.func`` definitions and declarations with ``func.return``/``func.call``, nested modules and
dense resources. Every module it draws verifies.

``module_texts(profile)`` draws a module and writes it with :class:`TextWriter`, a writer of our
own that spells the same IR in the many ways the parser must accept (named and numbered values,
``%x:2`` groups and ``%x#1`` uses, forward references, ``!alias``/``#alias`` definitions, typed and
untyped integers, hexadecimal floats, splat/list/hex dense literals, ``unit`` entries, implicit
top-level modules, comments and odd whitespace). It returns ``(text, module)``: parsing the text
must give back the module.

A :class:`Profile` says what to draw; ``Profile(xdsl=True)`` leaves out the few things xDSL 0.75
cannot parse (listed in tests/test_xdsl_interop.py).
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from xir import attributes as A
from xir import types as T
from xir.builtin import ModuleOp
from xir.dialects.func import FuncOp
from xir.ir import Block, Operation, Region

# -- what to draw --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Knobs of the module strategy."""

    max_ops: int = 24  # ops drawn per module, not counting terminators the IR needs
    max_depth: int = 3  # regions nested in regions
    forward_refs: bool = True  # uses before definitions, in graph regions
    locations: bool = True
    xdsl: bool = False  # only syntax xDSL 0.75 parses (see tests/test_xdsl_interop.py)


DEFAULT = Profile()
XDSL = Profile(xdsl=True)

# -- names -----------------------------------------------------------------------------------------

# Names the printer keeps as written (a value's name hint, a block's label).
VALUE_HINTS = ["x", "arg", "a.b", "$v", "v-1", "_", "res", "x_1", "true", "bb0", "in", "-",
               "cst", "a$b.c-d"]
BLOCK_HINTS = ["bb1", "bb7", "exit", "loop.body", "x-1", "0", "$", "bb0"]
OP_NAMES = [f"test.op_{k}" for k in range(8)] + ["test.a.b", "test.op-x", "test.$", "test.ünï"]

_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_$.]{0,5}", fullmatch=True)
# Attribute names: identifiers, words that are keywords elsewhere, and names that need quotes.
KEYWORD_NAMES = ["true", "false", "unit", "loc", "dense", "i32", "f32", "tensor", "attributes",
                 "func.func", "builtin.module", "private", "at", "index", "array", "none", "fused",
                 "callsite", "unknown", "sym_name", "x-y", "a.b.c", "$a"]
QUOTED_NAMES = ["a b", "a\"b", "back\\slash", "new\nline", "ünï", "1abc", "x=y", "{}", "a::b",
                "@", "#x", "%x", "é€😀", ""]


def attr_names(profile: Profile) -> st.SearchStrategy[str]:
    if not profile.xdsl:
        return st.one_of(_IDENT, st.sampled_from(KEYWORD_NAMES), st.sampled_from(QUOTED_NAMES))
    # xDSL reads no name with non-ASCII characters (written as "\\C3\\A9" escapes), and reads an
    # attribute named like a property of a registered op (sym_name of builtin.module) as that property
    keywords = [n for n in KEYWORD_NAMES if n != "sym_name"]
    quoted = [n for n in QUOTED_NAMES if n.isascii()]
    return st.one_of(_IDENT, st.sampled_from(keywords), st.sampled_from(quoted))


def symbol_names(profile: Profile) -> st.SearchStrategy[str]:
    return st.one_of(_IDENT, st.sampled_from(["main", "f.g", "x-1", "$s", "a b", "\"q\"", "a::b",
                                              "::", "@x", "ünï", "1", "a\\b"]))


# -- strings ---------------------------------------------------------------------------------------

TRICKY_STRINGS = ["", "\"", "\\", "\n", "\t", "a\"b\\c", "\\n", "\\22", "€", "😀", "\x00", "\x7f",
                  "\x1b[0m", "}>", ")", "loc(", "\"0x00\"", "a\r\nb", " lead", "trail ", "#x", "%0"]


def strings(profile: Profile, ascii: bool = False) -> st.SearchStrategy[str]:
    """String attribute values (and, with ``ascii``, the strings xDSL reads in names and locations)."""
    tricky = TRICKY_STRINGS if profile.xdsl else TRICKY_STRINGS + ["\udcff"]  # an invalid UTF-8 byte
    if ascii:
        return st.one_of(st.sampled_from([t for t in tricky if t.isascii()]),
                         st.text(st.characters(max_codepoint=127), max_size=8))
    return st.one_of(st.sampled_from(tricky), st.text(max_size=8))


# -- types -----------------------------------------------------------------------------------------

INTEGER_WIDTHS = [1, 2, 7, 8, 16, 32, 64, 128]


def integer_types() -> st.SearchStrategy[T.IntegerType]:
    return st.builds(T.IntegerType, st.sampled_from(INTEGER_WIDTHS), st.sampled_from(["", "s", "u"]))


VALUE_FLOAT_KINDS = ["f16", "bf16", "f32", "f64"]  # kinds whose values the IR rounds exactly


def float_types(value_kinds_only: bool = False) -> st.SearchStrategy[T.FloatType]:
    kinds = VALUE_FLOAT_KINDS if value_kinds_only else list(T.FLOAT_KINDS)
    return st.sampled_from([T.FloatType(k) for k in kinds])


def scalar_types() -> st.SearchStrategy[T.Type]:
    return st.one_of(integer_types(), float_types(), st.just(T.index), st.just(T.none))


# Dialect type and attribute bodies are kept as text: balanced <...>, strings may hold anything.
_BODY_ATOMS = ["1", "-2", "a", "i32", "x.y", "?", "*", "4x?xf32", "[1, 2]", "(i32) -> i32",
               "{a = 1}", "\"s>\"", "\"q\\\"<\"", "a-b", "#test.y", "!test.z", "@sym", "0x1F",
               "f32, i1", "=", ":"]


def _bodies(depth: int) -> st.SearchStrategy[str]:
    atom = st.sampled_from(_BODY_ATOMS)
    if depth == 0:
        return st.lists(atom, max_size=3).map(", ".join)
    nested = _bodies(depth - 1).map(lambda b: f"<{b}>")
    item = st.one_of(atom, atom.flatmap(lambda a: nested.map(lambda n: a + n)))
    return st.lists(item, max_size=3).map(", ".join)


@functools.lru_cache(maxsize=None)
def dialect_bodies(profile: Profile = DEFAULT) -> st.SearchStrategy[str | None]:
    # The grammar reads <...> nested four deep; the body sits in one of them.
    bodies = _bodies(2)
    if profile.xdsl:
        bodies = bodies.filter(bool)  # xDSL prints !test.t<> as !test.t
    return st.one_of(st.none(), bodies)


def dialect_types(profile: Profile = DEFAULT) -> st.SearchStrategy[T.DialectType]:
    return st.builds(T.DialectType, st.just("test"), st.sampled_from(["t", "ty.pe", "t2"]),
                     dialect_bodies(profile))


def dialect_attrs(profile: Profile = DEFAULT) -> st.SearchStrategy[A.DialectAttr]:
    return st.builds(A.DialectAttr, st.just("test"), st.sampled_from(["x", "at.tr", "enc"]),
                     dialect_bodies(profile))


_DIMS = st.one_of(st.integers(0, 5), st.just(T.DYNAMIC))


def tensor_types(element, profile: Profile) -> st.SearchStrategy[T.TensorType]:
    encodings = st.one_of(st.none(), dialect_attrs(profile), st.builds(A.StringAttr, strings(profile)),
                          st.builds(A.IntegerAttr, st.integers(-5, 5)))
    ranked = st.builds(T.TensorType, st.lists(_DIMS, max_size=3).map(tuple), element, encodings)
    unranked = st.builds(T.TensorType, st.none(), element)
    return st.one_of(ranked, unranked)


def vector_types(element=None) -> st.SearchStrategy[T.VectorType]:
    element = element or st.one_of(integer_types(), float_types(), st.just(T.index))
    return st.builds(T.VectorType, st.lists(st.integers(1, 8), max_size=3).map(tuple), element)


def complex_types() -> st.SearchStrategy[T.ComplexType]:
    return st.builds(T.ComplexType, st.one_of(float_types(), integer_types()))


@functools.lru_cache(maxsize=None)
def types(profile: Profile = DEFAULT, depth: int = 2) -> st.SearchStrategy[T.Type]:
    """Any type: scalars, tensors, vectors, complex, dialect and function types."""
    element = st.one_of(scalar_types(), dialect_types(profile), complex_types())
    simple = st.one_of(
        scalar_types(), tensor_types(element, profile), vector_types(), complex_types(),
        dialect_types(profile),
    )
    if depth == 0:
        return simple
    inner = types(profile, depth - 1)
    function = st.builds(T.FunctionType, st.lists(inner, max_size=2).map(tuple),
                         st.lists(inner, max_size=2).map(tuple))
    return st.one_of(simple, simple, simple, function)


# -- scalar attributes -----------------------------------------------------------------------------


def _int_range(t) -> tuple[int, int]:
    if isinstance(t, T.IndexType):
        return -(1 << 63), (1 << 63) - 1
    if t.signedness == "u":
        return 0, (1 << t.width) - 1
    return -(1 << (t.width - 1)), (1 << (t.width - 1)) - 1


def integer_attrs(profile: Profile = DEFAULT) -> st.SearchStrategy[A.Attribute]:
    """Typed and untyped integers; ``i1`` integers are the bool attributes the parser makes.
    A signless integer may be written in its unsigned reading (``255 : i8``) too, except for xDSL,
    which prints that as ``-1 : i8``."""

    @st.composite
    def draw(draw):
        t = draw(st.one_of(st.just(T.i64), integer_types(), st.just(T.index)))
        lo, hi = _int_range(t)
        if not profile.xdsl and isinstance(t, T.IntegerType) and not t.signedness and t.width > 1:
            hi = (1 << t.width) - 1
        value = draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, -1 if lo < 0 else 1])))
        if t == T.i1:
            return A.TRUE if value else A.FALSE
        return A.IntegerAttr(value, t)

    return draw()


TRICKY_FLOATS = [0.0, -0.0, 0.1, -0.1, 1e-30, -1e-30, 1.0, -1.5, 1e30, 1e300, 65504.0, 1 / 3,
                 math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308, 3.4028234663852886e38,
                 1e-45, 6e-8, 123456.789, 16777217.0, 2.0 ** 53 + 1, 1e16, 1e-7, 100.0]


_FLOAT_FORMAT = {"f16": "<e", "f32": "<f", "f64": "<d"}


def _float_bits(value: float, kind: str) -> int:
    """The bit pattern of ``value`` in float type ``kind`` (how a hexadecimal literal spells it)."""
    if kind == "bf16":
        return int.from_bytes(struct.pack("<f", value), "little") >> 16
    return int.from_bytes(struct.pack(_FLOAT_FORMAT[kind], value), "little")


def _in_type(value: float, kind: str) -> float:
    """``value`` made a value of float type ``kind``: rounded, and a NaN's payload cut to the type's."""
    if math.isnan(value):
        return A.float_from_bits(_float_bits(value, kind), T.FloatType(kind))
    return A._round_to(kind, value)


def float_values(kind: str, finite: bool = False) -> st.SearchStrategy[float]:
    width = {"f16": 16, "f32": 32}.get(kind, 64)
    values = st.one_of(st.sampled_from(TRICKY_FLOATS),
                       st.floats(width=width, allow_nan=not finite, allow_infinity=not finite))
    values = values.map(lambda v: _in_type(v, kind))
    if finite:
        values = values.filter(math.isfinite)
    return values


def float_attrs(finite: bool = False) -> st.SearchStrategy[A.FloatAttr]:
    return float_types(value_kinds_only=True).flatmap(
        lambda t: float_values(t.kind, finite).map(lambda v: A.FloatAttr(v, t)))


def string_attrs(profile: Profile) -> st.SearchStrategy[A.StringAttr]:
    plain = st.builds(A.StringAttr, strings(profile))
    if profile.xdsl:
        return plain
    typed = st.builds(A.StringAttr, strings(profile), st.one_of(integer_types(), float_types()))
    return st.one_of(plain, plain, typed)


def symbol_refs(profile: Profile) -> st.SearchStrategy[A.SymbolRefAttr]:
    return st.builds(A.SymbolRefAttr, symbol_names(profile),
                     st.lists(symbol_names(profile), max_size=2).map(tuple))


# -- dense attributes -------------------------------------------------------------------------------

DENSE_ELEMENTS = [T.i1, T.i8, T.i16, T.i32, T.i64, T.IntegerType(8, "s"), T.IntegerType(8, "u"),
                  T.IntegerType(16, "u"), T.IntegerType(32, "s"), T.index, T.f16, T.f32, T.f64]


def _dense_values(element, count: int, finite: bool):
    if element == T.i1:
        return st.lists(st.booleans(), min_size=count, max_size=count)
    if isinstance(element, T.FloatType):
        return st.lists(float_values(element.kind, finite), min_size=count, max_size=count)
    lo, hi = _int_range(element)
    return st.lists(st.integers(lo, hi), min_size=count, max_size=count)


@st.composite
def dense_attrs(draw, profile: Profile = DEFAULT) -> A.DenseElementsAttr:
    """``dense<...>``: splat, nested list, or large enough to print as a hex string."""
    element = draw(st.sampled_from(DENSE_ELEMENTS))
    big = draw(st.integers(0, 9)) == 0
    if big:
        shape = draw(st.sampled_from([(A.HEX_PRINT_THRESHOLD + 1,), (5, 13), (2, 3, 11)]))
    else:
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    vector = draw(st.booleans()) and 0 not in shape
    t = T.VectorType(shape, element) if vector else T.TensorType(shape, element)
    count = int(np.prod(shape, dtype=np.int64))
    dtype = A.numpy_dtype(element)
    if count and draw(st.integers(0, 3)) == 0:
        # xDSL reads a hexadecimal splat dense<0x7F800000> : tensor<2xf32> as an integer
        (value,) = draw(_dense_values(element, 1, finite=profile.xdsl))
        return A.DenseElementsAttr(t, np.array(value, dtype=dtype), is_splat=True)
    values = draw(_dense_values(element, count, False))
    return A.DenseElementsAttr(t, np.array(values, dtype=dtype).reshape(shape), is_splat=False)


DENSE_ARRAY_ELEMENTS = [T.i1, T.i8, T.i16, T.i32, T.i64, T.f32, T.f64]


@st.composite
def dense_array_attrs(draw, profile: Profile = DEFAULT) -> A.DenseArrayAttr:
    """``array<i64: 1, 2>`` and friends (xDSL reads no hexadecimal, non-finite, float in them)."""
    element = draw(st.sampled_from(DENSE_ARRAY_ELEMENTS))
    count = draw(st.integers(0, 4))
    values = draw(_dense_values(element, count, finite=profile.xdsl))
    return A.DenseArrayAttr(element, tuple(values))


@st.composite
def resources(draw, profile: Profile = DEFAULT) -> list[A.ResourceHandle]:
    """Dense resource blobs for one module: name, alignment and bytes (some names lack data)."""
    choices = ["blob", "w.0", "conv1_w", "_"] + ([] if profile.xdsl else ["x-y", "a b"])  # xDSL: bare names
    names = draw(st.lists(st.sampled_from(choices), max_size=3, unique=True))
    handles = []
    for name in names:
        data = draw(st.one_of(st.none(), st.binary(max_size=16).map(lambda b: b + bytes(4 - len(b) % 4))))
        handles.append(A.ResourceHandle(name, data, draw(st.sampled_from([1, 4, 8, 64]))))
    return handles


# -- locations --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def locations(profile: Profile = DEFAULT, parens: int = 3) -> st.SearchStrategy[A.Location]:
    """Any location. ``parens`` is how many more levels of (...) the text may open: the grammar
    reads a ``loc(...)`` token with parentheses nested four deep."""
    text = strings(profile, ascii=profile.xdsl)  # xDSL reads only ASCII in location strings
    filenames = st.one_of(st.sampled_from(["model.onnx", "a\"b.py", "", "dir/f.mlir"]), text)
    unknown = st.just(A.UNKNOWN_LOC)
    file = st.builds(A.FileLineColLoc, filenames, st.integers(0, 2 ** 31), st.integers(0, 2 ** 31))
    name = st.builds(A.NameLoc, text)
    leaves = st.one_of(unknown, file, name)
    if parens == 0:
        return leaves
    inner = locations(profile, parens - 1)
    named_child = st.builds(A.NameLoc, text, inner)
    callsite = st.builds(A.CallSiteLoc, inner, inner)
    fused_list = st.lists(inner, max_size=3).map(tuple)
    if profile.xdsl:
        fused = st.builds(A.FusedLoc, fused_list)
    else:
        metadata = st.one_of(st.none(), st.just(A.UNIT), st.builds(A.StringAttr, strings(profile)),
                             dialect_attrs(profile), st.builds(A.IntegerAttr, st.integers(-3, 3)))
        fused = st.builds(A.FusedLoc, fused_list, metadata)
    return st.one_of(leaves, leaves, named_child, callsite, fused)


# -- all attributes ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def attributes(profile: Profile = DEFAULT, depth: int = 2) -> st.SearchStrategy[A.Attribute]:
    """Any attribute, with arrays and dictionaries nested ``depth`` deep."""
    leaves = [
        integer_attrs(profile), integer_attrs(profile), float_attrs(), string_attrs(profile),
        st.sampled_from([A.TRUE, A.FALSE, A.UNIT]), types(profile, 1).map(A.TypeAttr),
        symbol_refs(profile), dense_attrs(profile), dense_array_attrs(profile), dialect_attrs(profile),
        locations(profile, 2),
    ]
    leaf = st.one_of(*leaves)
    if depth == 0:
        return leaf
    inner = attributes(profile, depth - 1)
    array = st.lists(inner, max_size=3).map(lambda items: A.ArrayAttr(tuple(items)))
    dictionary = attr_dicts(profile, inner).map(A.DictionaryAttr)
    return st.one_of(leaf, leaf, leaf, array, dictionary)


def attr_dicts(profile: Profile, values=None, max_size: int = 3) -> st.SearchStrategy[dict]:
    values = values if values is not None else attributes(profile, depth=1)
    return st.dictionaries(attr_names(profile), values, max_size=max_size)


# -- modules ----------------------------------------------------------------------------------------


_INTEGERS: dict = {}


class _ModuleBuilder:
    """Draws one module op by op, keeping track of the values each new op may use."""

    def __init__(self, draw, profile: Profile):
        self.draw = draw
        self.profile = profile
        self.ops_left = profile.max_ops
        self.handles = draw(resources(profile))
        self.op_names = [n for n in OP_NAMES if n.isascii()] if profile.xdsl else OP_NAMES
        # xDSL reads no block label that starts with a digit (MLIR does: ^0)
        self.block_hints = [h for h in BLOCK_HINTS if not h[0].isdigit()] if profile.xdsl else BLOCK_HINTS
        self.attrs = attributes(profile)
        if self.handles:
            resource_attrs = st.builds(
                A.DenseResourceAttr, st.sampled_from(self.handles),
                st.builds(T.TensorType, st.lists(st.integers(1, 3), max_size=2).map(tuple),
                          st.sampled_from([T.f32, T.i8])))
            self.attrs = st.one_of(self.attrs, resource_attrs,
                                   st.lists(resource_attrs, max_size=2).map(lambda a: A.ArrayAttr(tuple(a))))
        self.types = types(profile)
        self.symbol_names = symbol_names(profile)
        self.dicts = {n: attr_dicts(profile, self.attrs, max_size=n) for n in (2, 3)}
        self.symbols: list = []  # (name, input types, result types) of the functions in scope
        self.called: set = set()  # the names calls in the current module body have used

    # -- small draws (strategies are built once: building them costs more than drawing)

    def int(self, low: int, high: int) -> int:
        strategy = _INTEGERS.get((low, high))
        if strategy is None:
            strategy = _INTEGERS[low, high] = st.integers(low, high)
        return self.draw(strategy)

    def pick(self, items):
        return items[self.int(0, len(items) - 1)]

    def maybe(self, chance: int) -> bool:
        """True with probability 1/chance."""
        return self.int(0, chance - 1) == 0

    def type_list(self, most: int) -> list:
        return [self.draw(self.types) for _ in range(self.int(0, most))]

    def attr_dict(self, most: int = 3) -> dict:
        return self.draw(self.dicts[most])

    def location(self):
        if not self.profile.locations or not self.maybe(3):
            return None
        return self.draw(locations(self.profile))

    def value_hint(self):
        return None if self.maybe(2) else self.pick(VALUE_HINTS)

    def name_values(self, values) -> None:
        for v in values:
            v.name_hint = self.value_hint()

    def operands(self, visible: list, most: int = 3) -> list:
        if not visible:
            return []
        return [self.pick(visible) for _ in range(self.int(0, most))]

    def take_op(self) -> bool:
        if self.ops_left <= 0:
            return False
        self.ops_left -= 1
        return True

    # -- the module

    def module(self) -> ModuleOp:
        top = self.nested_module(depth=0)
        top.resources = {h.name: h for h in self.handles}
        return top

    def nested_module(self, depth: int) -> ModuleOp:
        name = None if self.maybe(2) else self.draw(self.symbol_names)
        attributes = self.attr_dict(2) if self.maybe(3) else None
        module = ModuleOp.build(sym_name=name, attributes=attributes, location=self.location())
        self.fill_module_body(module.body, depth)
        return module

    def fill_module_body(self, block: Block, depth: int) -> None:
        outer_symbols = self.symbols  # a module's functions are callable inside it only
        outer_called = self.called
        self.symbols, self.called = list(outer_symbols), set()
        try:
            self._fill_module_body(block, depth)
        finally:
            self.symbols, self.called = outer_symbols, outer_called

    def _fill_module_body(self, block: Block, depth: int) -> None:
        visible: list = []
        names: set[str] = set()
        count = self.int(0, 5)
        for _ in range(count):
            if not self.take_op():
                break
            kind = self.pick(["func", "func", "test", "test", "module"])
            if kind == "module" and depth < 1:
                nested = self.nested_module(depth + 1)
                name = nested.properties.get("sym_name")
                if name is not None and name.value in names:
                    del nested.properties["sym_name"]
                elif name is not None:
                    names.add(name.value)
                block.append(nested)
            elif kind == "func":
                block.append(self.func(names))
            else:
                op = self.test_op(visible, depth)
                block.append(op)
                visible = visible + op.results
        if self.profile.forward_refs:
            self.forward_reference(block)

    # -- functions

    def func(self, taken: set) -> FuncOp:
        name = self.draw(self.symbol_names)
        # a symbol table is unordered: a name an earlier call of this module already resolved
        # to an outer function must not be redefined here, or that call would change callee
        while name in taken or name in self.called:
            name += "_"
        taken.add(name)
        inputs = self.type_list(3)
        results = self.type_list(2)
        # a call resolves to the nearest definition: this one hides an outer one of its name
        self.symbols = [s for s in self.symbols if s[0] != name] + [(name, inputs, results)]
        arg_attrs = [self.attr_dict(2) for _ in inputs] if self.maybe(3) else None
        res_attrs = [self.attr_dict(2) for _ in results] if self.maybe(3) else None
        visibility = self.pick([None, None, "private", "public", "nested"])
        attributes = self.attr_dict(2) if self.maybe(3) else None
        body = None
        if not self.maybe(4):
            body = self.region(outer=[], kind="func", depth=1, entry_args=inputs, results=results)
        return FuncOp.from_signature(name, inputs, results, arg_attrs, res_attrs, visibility,
                                     attributes, body, self.location())

    # -- regions and blocks

    def region(self, outer: list, kind: str, depth: int, entry_args=None, results=()) -> Region:
        """A region of a test op (``kind="test"``, graph-like, any blocks) or a function body
        (``kind="func"``: at least one block, each ending in a return or a branch)."""
        if kind == "func":
            count = 1 if self.maybe(2) else self.int(1, 3)
        else:
            count = self.int(0, 3 if depth < self.profile.max_depth else 1)
        region = Region()
        for i in range(count):
            if i == 0 and entry_args is not None:
                arg_types = entry_args
            else:
                arg_types = self.type_list(2)
            block = region.add_block(Block(arg_types))
            self.name_values(block.args)
            if not self.maybe(3):
                block.name_hint = self.pick(self.block_hints)
        entry_values: list = []
        for i, block in enumerate(region.blocks):
            visible = outer + block.args + (entry_values if i else [])
            self.fill_block(block, visible, kind, depth, region.blocks[1:], results)
            if i == 0:
                entry_values = list(block.args) + [r for op in block.ops for r in op.results]
        return region

    def fill_block(self, block: Block, visible: list, kind: str, depth: int, targets: list,
                   results) -> None:
        for _ in range(self.int(0, 4)):
            if not self.take_op():
                break
            op = self.call(visible) if kind == "func" and self.symbols and self.maybe(6) else None
            if op is None:
                op = self.test_op(visible, depth)
            block.append(op)
            visible = visible + op.results
        if kind == "func":
            if targets and self.maybe(3):
                block.append(self.branch(visible, targets))
            else:
                block.append(self.return_op(block, visible, results))
        else:
            if targets and self.maybe(2):
                block.append(self.branch(visible, targets))
            if self.profile.forward_refs:
                self.forward_reference(block)

    def forward_reference(self, block: Block) -> None:
        """Make an op (or an op nested in it) use a value defined later in ``block``, where the
        verifier does not ask values to dominate their uses: in the body of builtin.module (a graph
        region, as in MLIR) and in the regions of unregistered ops (which it does not check)."""
        ops = list(block.ops)
        if len(ops) < 2 or not self.maybe(3):
            return
        later = self.int(1, len(ops) - 1)
        values = [r for op in ops[later:] for r in op.results]
        users = [u for op in ops[:later] for u in _graph_walk(op) if u._operands]
        if not values or not users:
            return
        user = self.pick(users)
        user.set_operand(self.int(0, len(user._operands) - 1), self.pick(values))

    # -- operations

    def test_op(self, visible: list, depth: int) -> Operation:
        name = self.pick(self.op_names)
        operands = self.operands(visible)
        result_types = self.type_list(3)
        attributes = self.attr_dict(3) if self.maybe(2) else None
        properties = self.attr_dict(2) if self.maybe(3) else None
        regions = []
        if depth < self.profile.max_depth and self.maybe(3):
            for _ in range(self.int(1, 2)):
                regions.append(self.region(visible, "test", depth + 1))
        op = Operation.create(name, operands, result_types, attributes, properties, regions,
                              location=self.location())
        self.name_values(op.results)
        return op

    def branch(self, visible: list, targets: list) -> Operation:
        successors = [self.pick(targets) for _ in range(self.int(1, 2))]
        name = self.pick(["test.br", "test.cond_br"])
        return Operation.create(name, self.operands(visible, 2), successors=successors,
                                location=self.location())

    def call(self, visible: list) -> Operation | None:
        """A call of a function in scope whose argument types some visible values have (None
        if there is none): calls verify against their callee's signature."""
        name, inputs, results = self.pick(self.symbols)
        self.called.add(name)
        operands = []
        for t in inputs:
            candidates = [v for v in visible if v.type == t]
            if not candidates:
                return None
            operands.append(self.pick(candidates))
        op = Operation.create("func.call", operands, list(results),
                              properties={"callee": A.SymbolRefAttr(name)},
                              location=self.location())
        self.name_values(op.results)
        return op

    def return_op(self, block: Block, visible: list, results) -> Operation:
        values = []
        for t in results:
            candidates = [v for v in visible if v.type == t]
            if not candidates or self.maybe(3):
                maker = Operation.create("test.make", result_types=[t], location=self.location())
                self.name_values(maker.results)
                block.append(maker)
                candidates = maker.results
            values.append(self.pick(candidates))
        return Operation.create("func.return", values, location=self.location())


def _graph_walk(op: Operation):
    """``op`` and the ops nested in it through unregistered ops only (not into functions or modules,
    which are isolated from above, nor into function bodies, where values must dominate uses)."""
    if op.definition is not None:
        return
    yield op
    for region in op.regions:
        for block in region.blocks:
            for inner in block.ops:
                yield from _graph_walk(inner)


@st.composite
def modules(draw, profile: Profile = DEFAULT) -> ModuleOp:
    """A random, well-formed (verifying) ``builtin.module``."""
    return _ModuleBuilder(draw, profile).module()


# -- a text writer of our own -------------------------------------------------------------------------

class TextWriter:
    """Writes a module in generic or pretty form, choosing among the spellings the parser accepts.

    Every choice is made by ``rnd`` (a ``random.Random``), so hypothesis controls and shrinks it.
    The text it writes parses back to the module it was given.
    """

    def __init__(self, rnd, profile: Profile = DEFAULT):
        self.rnd = rnd
        self.profile = profile
        self.names: dict = {}  # value -> "%name" or "%name#i"
        self.blocks: dict = {}
        self.counter = 0
        self.type_aliases: dict = {}  # type -> alias name
        self.attr_aliases: dict = {}  # attribute -> alias name

    def chance(self, n: int) -> bool:
        return self.rnd.randrange(n) == 0

    # -- whole modules

    def write(self, module: ModuleOp) -> str:
        body = []
        implicit = (not module.properties and not module.attributes and module.location is None
                    and not (len(list(module.body.ops)) == 1 and isinstance(module.body.first_op, ModuleOp))
                    and self.chance(3))
        if implicit:
            for op in module.body.ops:
                body.append(self.op(op, 0))
        else:
            body.append(self.op(module, 0))
        text = "\n".join(body) + "\n"
        header = []
        for t, alias in self.type_aliases.items():
            header.append(f"{alias} = {t}")
        for a, alias in self.attr_aliases.items():
            header.append(f"{alias} = {a}")
        if self.chance(4):
            header.insert(0, "// a comment before everything")
        text = "\n".join(header) + ("\n" if header else "") + text
        blobs = [(n, h) for n, h in (module.resources or {}).items() if h.data is not None]
        if blobs:
            entries = ",\n".join(
                f'      {A.symbol_text(n)}: "0x{h.alignment.to_bytes(4, "little").hex()}{h.data.hex()}"'
                for n, h in blobs)
            text += "{-#\n  dialect_resources: {\n    builtin: {\n" + entries + "\n    }\n  }\n#-}\n"
        return text

    # -- names

    def fresh(self, hint=None) -> str:
        if hint and self.chance(2):
            self.counter += 1
            return f"%{hint}_w{self.counter}"
        self.counter += 1
        return f"%{self.counter}" if self.chance(2) else f"%v{self.counter}"

    def define_results(self, op: Operation) -> str:
        """``%a, %b:2 = ``: results named one by one or in groups (a group is used as ``%b#1``)."""
        results = op.results
        if not results:
            return ""
        forced = self.names.get(("group", op))
        if forced is not None:  # a forward reference already named the results as one group
            return f"{forced}:{len(results)} = "
        parts = []
        i = 0
        while i < len(results):
            named = self.names.get(results[i])
            size = 1 if named is not None else self.rnd.randint(1, len(results) - i)
            if size == 1 and (named is not None or self.chance(2)):
                name = named or self.fresh(results[i].name_hint)
                self.names[results[i]] = name
                parts.append(name)
            else:
                if any(r in self.names for r in results[i:i + size]):
                    size = 1
                base = self.fresh()
                for k in range(size):
                    self.names[results[i + k]] = f"{base}#{k}"
                parts.append(f"{base}:{size}")
            i += size
        return ", ".join(parts) + " = "

    def use(self, value) -> str:
        name = self.names.get(value)
        if name is None:  # a forward reference: name the value now
            owner = getattr(value, "owner", None)
            if isinstance(owner, Operation) and len(owner.results) > 1:
                base = self.names[("group", owner)] = self.fresh()
                for i, r in enumerate(owner.results):
                    self.names[r] = f"{base}#{i}"
                name = self.names[value]
            else:
                name = self.names[value] = self.fresh(value.name_hint)
        if "#" not in name and self.chance(8):
            return name + "#0"
        return name

    def block_label(self, block: Block) -> str:
        label = self.blocks.get(block)
        if label is None:
            self.counter += 1
            label = self.blocks[block] = self.rnd.choice([f"^bb{self.counter}", f"^b{self.counter}",
                                                          f"^{self.counter}", f"^x.{self.counter}"])
        return label

    # -- types and attributes

    def type(self, t) -> str:
        if isinstance(t, (T.DialectType, T.TensorType, T.IntegerType)) and self.chance(6):
            alias = self.type_aliases.get(t)
            if alias is None:
                alias = self.type_aliases[t] = f"!alias{len(self.type_aliases)}"
            return alias
        if isinstance(t, T.FunctionType):
            return self.function_type(t.inputs, t.results)
        if isinstance(t, T.TensorType) and (t.encoding is not None or not isinstance(
                t.element_type, (T.IntegerType, T.FloatType, T.IndexType, T.NoneType))):
            dims = "*x" if t.shape is None else "".join(("?" if d == T.DYNAMIC else str(d)) + "x" for d in t.shape)
            enc = "" if t.encoding is None else f", {self.attr(t.encoding)}"
            return f"tensor<{dims}{self.type(t.element_type)}{enc}>"
        return str(t)

    def function_type(self, inputs, results) -> str:
        sp = self.rnd.choice(["", " ", "  "])
        ins = f",{sp}".join(self.type(t) for t in inputs)
        if len(results) == 1 and not isinstance(results[0], T.FunctionType) and self.chance(2):
            out = self.type(results[0])
        else:
            out = "(" + ", ".join(self.type(t) for t in results) + ")"
        return f"({sp}{ins}{sp}){sp}->{sp}{out}" if sp else f"({ins}) -> {out}"

    def attr(self, a) -> str:
        if isinstance(a, (A.ArrayAttr, A.DictionaryAttr, A.DenseElementsAttr, A.DialectAttr)) and self.chance(8):
            try:
                hash(a)
            except TypeError:
                pass
            else:
                alias = self.attr_aliases.get(a)
                if alias is None:
                    alias = self.attr_aliases[a] = f"#alias{len(self.attr_aliases)}"
                return alias
        if isinstance(a, A.IntegerAttr):
            return self.integer(a)
        if isinstance(a, A.BoolAttr):
            return self.rnd.choice(["true" if a.value else "false", f"{int(a.value)} : i1"])
        if isinstance(a, A.FloatAttr):
            return self.float(a)
        if isinstance(a, A.ArrayAttr):
            return "[" + ", ".join(self.attr(x) for x in a.value) + "]"
        if isinstance(a, A.DictionaryAttr):
            return "{" + self.entries(a.value) + "}"
        if isinstance(a, A.TypeAttr):
            return self.type(a.value)
        if isinstance(a, A.DenseElementsAttr):
            return self.dense(a)
        if isinstance(a, A.StringAttr) and a.type is not None:
            return f"{A.quote_string(a.value)} : {self.type(a.type)}"
        return str(a)

    def integer(self, a: A.IntegerAttr) -> str:
        v = a.value
        text = str(v)
        if v >= 0 and self.chance(4):
            text = hex(v)
        elif v < 0 and self.chance(4):
            text = "-" + hex(-v)
        if a.type == T.i64 and self.chance(2):
            return text
        return f"{text} : {self.type(a.type)}"

    def float(self, a: A.FloatAttr) -> str:
        kind = a.type.kind
        if not math.isfinite(a.value) or self.chance(4):
            bits = _float_bits(a.value, kind)
            return (f"0x{bits:X}" if self.chance(2) else f"0x{bits:x}") + f" : {a.type}"
        text = A.float_text(a.value, kind) if self.chance(2) else f"{a.value:.17e}"
        if kind == "f64" and self.chance(2):
            return text  # an untyped float is an f64
        return f"{text} : {a.type}"

    def dense(self, a: A.DenseElementsAttr) -> str:
        t = self.type(a.type)
        if a.is_splat:
            return f"dense<{self.element(a, a.array.item())}> : {t}"
        if a.array.size == 0:
            # a nested [] cannot show the shape of tensor<2x0x3xf32>: only a 1-D one may be written so
            return f"dense<{'[]' if a.array.ndim == 1 and self.chance(2) else ''}> : {t}"
        if self.chance(3):
            data = a.array.astype(a.array.dtype.newbyteorder("<")).tobytes()
            return f'dense<"0x{data.hex()}"> : {t}'
        return f"dense<{self.nested(a, a.array.tolist())}> : {t}"

    def nested(self, a, value) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(self.nested(a, v) for v in value) + "]"
        return self.element(a, value)

    def element(self, a, v) -> str:
        element = a.type.element_type
        if element == T.i1:
            return "true" if v else "false"
        if isinstance(element, T.FloatType):
            v = float(v)
            if not math.isfinite(v) or self.chance(5):
                bits = _float_bits(v, element.kind)
                return f"0x{bits:X}"
            return A.float_text(v, element.kind)
        return str(int(v))

    def entries(self, entries: dict) -> str:
        parts = []
        for key, value in entries.items():
            name = A.symbol_text(key)
            if name == key and self.chance(5):
                name = A.quote_string(key)
            if value is A.UNIT:
                parts.append(name if self.chance(2) else f"{name} = unit")
            else:
                parts.append(f"{name} = {self.attr(value)}")
        sep = self.rnd.choice([", ", ",", " ,\n  "])
        return sep.join(parts)

    def loc(self, op) -> str:
        if op.location is None:
            return ""
        if self.chance(5):
            alias = self.attr_aliases.get(op.location)
            if alias is None:
                alias = self.attr_aliases[op.location] = f"#loc{len(self.attr_aliases)}"
            return f" loc({alias})"
        return " " + str(op.location)

    # -- operations

    def op(self, op: Operation, indent: int) -> str:
        if isinstance(op, ModuleOp) and self.chance(2) and _module_pretty(op):
            return self.module(op, indent)
        if isinstance(op, FuncOp) and self.chance(2) and _func_pretty(op):
            return self.func(op, indent)
        return self.generic(op, indent)

    def generic(self, op: Operation, indent: int) -> str:
        out = [self.define_results(op), A.quote_string(op.name), "("]
        out.append(", ".join(self.use(v) for v in op.operands))
        out.append(")")
        if op.successors:
            out.append("[" + ", ".join(self.block_label(b) for b in op.successors) + "]")
        if op.properties:
            out.append(" <{" + self.entries(op.properties) + "}>")
        if op.regions:
            out.append(" (" + ", ".join(self.region(r, indent, True) for r in op.regions) + ")")
        if op.attributes or self.chance(10):
            out.append(" {" + self.entries(op.attributes) + "}")
        out.append(" : " + self.function_type([v.type for v in op.operands], [r.type for r in op.results]))
        out.append(self.loc(op))
        return "".join(out)

    def region(self, region: Region, indent: int, entry_label: bool) -> str:
        pad = "  " * indent
        lines = ["{"]
        for i, block in enumerate(region.blocks):
            label = i > 0 or block.args or len(region.blocks) > 1 or block.is_empty() or self.chance(4)
            if label and (entry_label or i > 0):
                header = pad + self.block_label(block)
                if block.args:
                    args = []
                    for a in block.args:
                        self.names[a] = self.fresh(a.name_hint)
                        args.append(f"{self.names[a]}: {self.type(a.type)}")
                    header += "(" + ", ".join(args) + ")"
                lines.append(header + ":")
            for op in block.ops:
                lines.append(pad + "  " + self.op(op, indent + 1))
                if self.chance(12):
                    lines.append(pad + "  // a comment")
        lines.append(pad + "}")
        return "\n".join(lines)

    def module(self, op: ModuleOp, indent: int) -> str:
        out = [self.rnd.choice(["builtin.module", "module"])]
        sym = op.properties.get("sym_name")
        if sym is not None:
            out.append(" @" + A.symbol_text(sym.value))
        if op.attributes:
            out.append(" attributes {" + self.entries(op.attributes) + "}")
        out.append(" " + self.region(op.regions[0], indent, False))
        out.append(self.loc(op))
        return "".join(out)

    def func(self, op: FuncOp, indent: int) -> str:
        props = op.properties
        signature = props["function_type"].value
        out = ["func.func "]
        if "sym_visibility" in props:
            out.append(props["sym_visibility"].value + " ")
        out.append("@" + A.symbol_text(props["sym_name"].value))
        arg_attrs = _dicts(props.get("arg_attrs"), len(signature.inputs))
        res_attrs = _dicts(props.get("res_attrs"), len(signature.results))
        body = op.regions[0]
        args = []
        for i, t in enumerate(signature.inputs):
            text = self.type(t)
            if body.blocks:
                arg = body.blocks[0].args[i]
                self.names[arg] = self.fresh(arg.name_hint)
                text = f"{self.names[arg]}: {text}"
            if arg_attrs[i]:
                text += " {" + self.entries(arg_attrs[i]) + "}"
            args.append(text)
        out.append("(" + ", ".join(args) + ")")
        results = signature.results
        if results:
            texts = [self.type(t) + (" {" + self.entries(d) + "}" if d else "") for t, d in zip(results, res_attrs)]
            single = len(results) == 1 and not res_attrs[0] and not isinstance(results[0], T.FunctionType)
            if single and self.chance(2):
                out.append(" -> " + texts[0])
            else:
                out.append(" -> (" + ", ".join(texts) + ")")
        if op.attributes:
            out.append(" attributes {" + self.entries(op.attributes) + "}")
        if body.blocks:
            out.append(" " + self.region(body, indent, False))
        out.append(self.loc(op))
        return "".join(out)


def _dicts(array, n: int) -> list[dict]:
    if array is None:
        return [{} for _ in range(n)]
    return [d.value for d in array.value]


def _module_pretty(op: ModuleOp) -> bool:
    region = op.regions[0]
    return len(region.blocks) == 1 and not region.blocks[0].args and set(op.properties) <= {"sym_name"}


def _func_pretty(op: FuncOp) -> bool:
    blocks = op.regions[0].blocks
    signature = op.properties["function_type"].value
    return not blocks or tuple(a.type for a in blocks[0].args) == signature.inputs


@st.composite
def module_texts(draw, profile: Profile = DEFAULT) -> tuple[str, ModuleOp]:
    """``(text, module)``: a random module and a text of ours that spells it."""
    module = draw(modules(profile))
    rnd = draw(st.randoms(use_true_random=False))
    return TextWriter(rnd, profile).write(module), module
