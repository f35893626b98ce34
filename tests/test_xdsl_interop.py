"""Interop with xDSL: what we print in generic form, xDSL reads; what xDSL prints, we read back to
the same IR.

The loop, for every generic-form fixture (tests/lit, tests/interop, examples) and for 100 random
modules: parse with ours, print generic, parse with xDSL (in process, builtin and func loaded,
unregistered ops allowed), print with xDSL's generic printer (with locations and resources),
parse with ours, and compare with the original structurally (tests/ir_compare.py, value names
ignored). A few files also go through the real ``xdsl-opt --allow-unregistered-dialect``.

Where xDSL 0.75 prints differently (we read its spelling; the IR compares equal):

- integers: ``1 : i64`` where we print ``1``; ``true``/``false`` for ``1 : i1``/``0 : i1``; a
  signless integer in its signed reading (``-1 : i8`` for our ``255 : i8``, an equal value that is
  not an equal attribute: the random modules draw signless integers in the signed range);
- floats: ``1.000000e-01`` where we print the shortest ``0.1``, lower-case hex ``0x7fc00000``;
- dense: ``dense<1.5>`` for any dense whose elements are all equal, ``dense<>`` for an empty one, a
  hex-string payload as a list with hex elements ``dense<[0x7fc00000, 1.0]>`` (compared by value);
- results: ``%0, %1 = ...`` where we print ``%0:2 = ...`` and use ``%0#1``;
- locations: xDSL gives every op (and block argument) a location, ``loc(unknown)`` where we have
  none: compared as equal;
- value names: xDSL drops a ``_1`` suffix from names and can then print one name twice in an op
  isolated from above (``%x_1, %x_1 = ...``, an xDSL printer bug): random modules go to xDSL with
  numbered names (``print_ir(..., numbered=True)``); that our named text parses is checked apart;
- resources: xDSL drops blobs no attribute refers to, and keeps blobs in one store per process, so
  that parsing ``blob`` a second time names it ``blob_0``: the test empties the store before each
  parse and compares the referenced resources only;
- a dialect type or attribute with an empty body, ``!test.t<>``, prints as ``!test.t``;
- a discardable attribute named like a property of a registered op (``sym_name`` on
  ``builtin.module``) becomes that property, as in MLIR.

What xDSL 0.75 cannot read, left out of the random modules (``Profile(xdsl=True)``) and taken
out of a fixture before it goes to xDSL (the attribute or location that has it is dropped, see
:func:`strip_what_xdsl_cannot_read`; a fixture is skipped, with the reason, only if an op name is
the problem):

- typed string attributes, ``"x" : i32``;
- fused locations with metadata, ``loc(fused<"m">["a"])``;
- non-ASCII characters (``\\C3\\A9`` escapes) in op names, attribute names, location strings;
- quoted resource names, ``dense_resource<"a b">``;
- block labels that start with a digit, ``^0``;
- hexadecimal (non-finite) floats in ``array<f32: ...>``; and a hexadecimal splat
  ``dense<0x7F800000> : tensor<2xf32>``, which xDSL reads as the integer 2139095040.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

pytest.importorskip("xdsl.context", reason="needs xDSL with xdsl.context.Context (0.75 is tested)")

from fixtures import TESTS, fixtures  # noqa: E402
from ir_compare import assert_same_ir  # noqa: E402
from strategies import XDSL, modules  # noqa: E402
from xir import attributes as A  # noqa: E402
from xir import types as T  # noqa: E402
from xir.parser import parse  # noqa: E402
from xir.printer import print_ir  # noqa: E402

XDSL_OPT = Path(sys.executable).parent / "xdsl-opt"

# -- the loop --------------------------------------------------------------------------------------


def xdsl_generic(text: str) -> str:
    """``text`` parsed by xDSL and printed back by xDSL in generic form, with locations and the
    resource section."""
    from xdsl.context import Context
    from xdsl.dialect_interfaces.op_asm import OpAsmDialectInterface
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func
    from xdsl.parser import Parser
    from xdsl.printer import Printer

    # xDSL keeps resource blobs in the (global) builtin dialect object: start each parse afresh.
    storage = getattr(Builtin.get_interface(OpAsmDialectInterface), "_blob_storage", None)
    if storage is not None:
        storage.clear()
    ctx = Context(allow_unregistered=True)
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Func)
    module = Parser(ctx, text).parse_module()
    out = io.StringIO()
    printer = Printer(stream=out, print_generic_format=True, print_debuginfo=True)
    printer.print_op(module)
    printer.print_metadata(ctx.loaded_dialects)
    return out.getvalue() + "\n"


def _parse(text: str):
    return parse(text, allow_unregistered=True)


def assert_same_through_xdsl(module, text_for_xdsl: str) -> None:
    back = _parse(xdsl_generic(text_for_xdsl))
    assert_same_ir(back, module, unknown_location_is_none=True, resources="referenced")


# -- what xDSL cannot read ---------------------------------------------------------------------------

_BARE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")


def xdsl_cannot_read(module) -> str | None:
    """Why xDSL 0.75 cannot read ``module`` printed in generic form, or None if it can."""
    for op in module.walk():
        if not op.name.isascii():
            return f"non-ASCII op name '{op.name}'"
        for region in op.regions:
            for block in region.blocks:
                if block.name_hint and block.name_hint[0].isdigit():
                    return f"block label ^{block.name_hint}"
                for arg in block.args:
                    reason = _cannot_read_value(arg.type)
                    if reason:
                        return reason
        for name, value in (*op.properties.items(), *op.attributes.items()):
            reason = _cannot_read_name(name) or _cannot_read_value(value)
            if reason:
                return reason
        for value in (*op.operands, *op.results):
            reason = _cannot_read_value(value.type)
            if reason:
                return reason
        reason = _cannot_read_value(op.location)
        if reason:
            return reason
    return None


def strip_what_xdsl_cannot_read(module) -> list[str]:
    """Drop from ``module`` the attributes and locations xDSL cannot read; return what was dropped
    and why. An op name or a type xDSL cannot read cannot be dropped: the reason is returned
    prefixed with "cannot strip"."""
    dropped = []
    for op in module.walk():
        if not op.name.isascii():
            return [f"cannot strip: non-ASCII op name '{op.name}'"]
        for region in op.regions:
            for block in region.blocks:
                if block.name_hint and block.name_hint[0].isdigit():
                    dropped.append(f"block label ^{block.name_hint}")
                    block.name_hint = None
        for store in (op.properties, op.attributes):
            for name in list(store):
                reason = _cannot_read_name(name) or _cannot_read_value(store[name])
                if reason:
                    dropped.append(f"'{name}' of '{op.name}': {reason}")
                    del store[name]
        reason = _cannot_read_value(op.location)
        if reason:
            dropped.append(f"location of '{op.name}': {reason}")
            op.location = None
    resources = getattr(module, "resources", None) or {}
    for name in [n for n in resources if not _BARE_ID.fullmatch(n)]:
        dropped.append(f"resource '{name}': quoted resource name")
        del resources[name]
    reason = xdsl_cannot_read(module)
    if reason:
        return [f"cannot strip: {reason}"]
    return dropped


def _cannot_read_name(name: str) -> str | None:
    return None if name.isascii() else f"non-ASCII attribute name '{name}'"


def _cannot_read_value(value) -> str | None:
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return None
    if isinstance(value, (tuple, list)):
        return next(filter(None, map(_cannot_read_value, value)), None)
    if isinstance(value, dict):
        for name, item in value.items():
            reason = _cannot_read_name(name) or _cannot_read_value(item)
            if reason:
                return reason
        return None
    if isinstance(value, A.StringAttr) and value.type is not None:
        return "typed string attribute"
    if isinstance(value, A.FusedLoc) and value.metadata is not None:
        return "fused location with metadata"
    if isinstance(value, (A.NameLoc, A.FileLineColLoc)):
        text = value.name if isinstance(value, A.NameLoc) else value.filename
        if not text.isascii():
            return "non-ASCII location string"
    if isinstance(value, A.DenseResourceAttr):
        return None if _BARE_ID.fullmatch(value.handle.name) else "quoted resource name"
    if isinstance(value, A.DenseArrayAttr) and isinstance(value.element_type, T.FloatType):
        if not all(map(_finite, value.values)):
            return "non-finite float in array<...>"
    if isinstance(value, A.DenseElementsAttr):
        if value.is_splat and isinstance(value.type.element_type, T.FloatType) and not _finite(value.array.item()):
            return "non-finite float splat"
        return _cannot_read_value(value.type)
    fields = getattr(type(value), "_fields", None)
    if fields is not None:
        return next(filter(None, (_cannot_read_value(getattr(value, f)) for f in fields)), None)
    return None


def _finite(x) -> bool:
    return abs(float(x)) != float("inf") and float(x) == float(x)


# -- (a) fixtures ----------------------------------------------------------------------------------

FIXTURES = fixtures()


@pytest.mark.parametrize("text", [t for _, t in FIXTURES], ids=[name for name, _ in FIXTURES])
def test_fixture_through_xdsl(text):
    module = _parse(text)
    dropped = strip_what_xdsl_cannot_read(module)
    if dropped and dropped[0].startswith("cannot strip"):
        pytest.skip(f"xDSL 0.75 cannot read it: {dropped[0]}")
    generic = print_ir(module, generic=True)
    xdsl_generic(generic)  # our text, names and all, parses in xDSL
    assert_same_through_xdsl(module, print_ir(module, generic=True, numbered=True))


def test_the_corpus_is_there():
    assert len(list((TESTS / "interop").glob("*.mlir"))) >= 8


# -- (b) random modules ----------------------------------------------------------------------------

EXAMPLES = 100


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules(XDSL))
def test_random_modules_through_xdsl(module):
    assert xdsl_cannot_read(module) is None  # the XDSL profile keeps to what xDSL reads
    xdsl_generic(print_ir(module, generic=True))
    assert_same_through_xdsl(module, print_ir(module, generic=True, numbered=True))


# -- (c) the xdsl-opt executable ---------------------------------------------------------------------

CLI_FILES = ["cnn.mlir", "func.mlir", "attributes.mlir", "locations.mlir"]


@pytest.mark.skipif(not XDSL_OPT.exists(), reason="xdsl-opt is not installed next to this Python")
@pytest.mark.parametrize("name", CLI_FILES)
def test_xdsl_opt_reads_our_generic_form(name, tmp_path):
    module = _parse((TESTS / "interop" / name).read_text())
    path = tmp_path / name
    path.write_text(print_ir(module, generic=True))
    result = subprocess.run(
        [str(XDSL_OPT), "--allow-unregistered-dialect", "--print-op-generic", "--print-debuginfo",
         str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    back = _parse(result.stdout)
    assert_same_ir(back, module, unknown_location_is_none=True, resources="referenced")


# -- xDSL's spellings, read by us --------------------------------------------------------------------

SPELLINGS = [
    # (what xDSL prints, what we print for the same IR)
    ('"t.o"() {a = 1 : i64, b = -1 : i8} : () -> ()', '"t.o"() {a = 1, b = -1 : i8} : () -> ()'),
    ('"t.o"() {a = 1.000000e-01 : f64, b = 9.997559e-02 : f16, c = 1.000980e-01 : bf16} : () -> ()',
     '"t.o"() {a = 0.1 : f64, b = 0.1 : f16, c = 0.1 : bf16} : () -> ()'),
    ('"t.o"() {a = 0x7fc00000 : f32, b = -0.000000e+00 : f32} : () -> ()',
     '"t.o"() {a = 0x7FC00000 : f32, b = -0.0 : f32} : () -> ()'),
    ('"t.o"() {a = true, b = false} : () -> ()', '"t.o"() {a = 1 : i1, b = 0 : i1} : () -> ()'),
    ('"t.o"() {a = [1 : i64, 2 : i64]} : () -> ()', '"t.o"() {a = [1, 2]} : () -> ()'),
    ('"t.o"() {a = dense<1.500000e+00> : tensor<2xf32>, b = dense<> : tensor<0xi8>} : () -> ()',
     '"t.o"() {a = dense<[1.5, 1.5]> : tensor<2xf32>, b = dense<[]> : tensor<0xi8>} : () -> ()'),
    ('"t.o"() {a = dense<[0x7fc00000, 1.000000e+00]> : tensor<2xf32>} : () -> ()',
     '"t.o"() {a = dense<"0x0000C07F0000803F"> : tensor<2xf32>} : () -> ()'),
    ('%0, %1 = "t.o"() : () -> (i32, i32)\n"t.u"(%1) : (i32) -> ()',
     '%0:2 = "t.o"() : () -> (i32, i32)\n"t.u"(%0#1) : (i32) -> ()'),
    ('"t.o"() ({\n^bb0(%0 : i32 loc(unknown)):\n  "t.u"(%0) : (i32) -> () loc(unknown)\n}) : () -> () loc(unknown)',
     '"t.o"() ({\n^bb0(%0 : i32):\n  "t.u"(%0) : (i32) -> ()\n}) : () -> ()'),
    ('"t.o"() {a = "a\\22b"} : () -> ()', '"t.o"() {a = "a\\"b"} : () -> ()'),
]


@pytest.mark.parametrize("xdsl_text, our_text", SPELLINGS)
def test_we_read_xdsl_spellings(xdsl_text, our_text):
    assert_same_ir(_parse(xdsl_text), _parse(our_text), unknown_location_is_none=True)
