"""Parse errors: the exact diagnostic (``file:line:col: error: message``) for representative
mistakes, and no Python exception other than XirError for any damaged input.

Every case parses ``in.mlir`` with unregistered dialects allowed, except where marked: those are
about which ops and dialects exist.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import modules
from xir.diagnostics import XirError
from xir.parser import parse
from xir.printer import print_ir
from xir.verifier import verify

REGISTERED_ONLY = {"unknown func op", "unregistered dialect", "no dialect prefix"}

CASES = [
    # (what is wrong, input, diagnostic header after "in.mlir:")
    ('undefined value',
     '"t.u"(%x) : (i32) -> ()',
     "1:7: error: use of undeclared SSA value name '%x'"),
    ('redefinition',
     ('%a = "t.d"() : () -> i32\n'
      '%a = "t.d"() : () -> i32'),
     "2:1: error: redefinition of SSA value '%a'"),
    ('type mismatch',
     ('%a = "t.d"() : () -> i32\n'
      '"t.u"(%a) : (f32) -> ()'),
     "2:7: error: use of value '%a' expects different type than prior uses: 'f32' vs 'i32'"),
    ('type mismatch fwd',
     ('"t.g"() ({\n'
      '  "t.u"(%a) : (f32) -> ()\n'
      '  %a = "t.d"() : () -> i32\n'
      '}) : () -> ()'),
     "2:9: error: use of value '%a' expects different type than prior uses: 'f32' vs 'i32'"),
    ('operand count',
     ('%a = "t.d"() : () -> i32\n'
      '"t.u"(%a) : (i32, i32) -> ()'),
     '2:1: error: expected 1 operand type but had 2'),
    ('result count',
     '%a, %b = "t.d"() : () -> i32',
     '1:1: error: operation defines 1 results but was provided 2 to bind'),
    ('result number',
     ('%a:2 = "t.d"() : () -> (i32, i32)\n'
      '"t.u"(%a#2) : (i32) -> ()'),
     "2:7: error: result number 2 of '%a' is out of range (it has 2 results)"),
    ('unterminated string',
     '"t.d"() {a = "abc} : () -> ()',
     '1:14: error: unterminated string literal'),
    ('unexpected char',
     ('"t.d"() : () -> ()\n'
      '  `'),
     "2:3: error: unexpected character '`'"),
    ('unknown func op',  # registered dialects only
     '"func.nope"() : () -> ()',
     "1:1: error: unknown operation 'func.nope': dialect 'func' has no such op"),
    ('unregistered dialect',  # registered dialects only
     '"foo.bar"() : () -> ()',
     "1:1: error: operation 'foo.bar' belongs to unregistered dialect 'foo' (use --allow-unregistered-dialect)"),
    ('no dialect prefix',  # registered dialects only
     '"nodot"() : () -> ()',
     "1:1: error: operation name 'nodot' has no dialect prefix"),
    ('int out of range',
     '"t.d"() {a = 300 : i8} : () -> ()',
     '1:14: error: integer constant 300 out of range for type i8'),
    ('dense shape',
     '"t.d"() {a = dense<[1, 2, 3]> : tensor<2xi32>} : () -> ()',
     '1:14: error: dense literal of shape 3 does not match type tensor<2xi32>'),
    ('dense dynamic',
     '"t.d"() {a = dense<1> : tensor<?xi32>} : () -> ()',
     "1:14: error: dense elements need a statically shaped tensor or vector type, not 'tensor<?xi32>'"),
    ('undefined attr alias',
     '"t.d"() {a = #nope} : () -> ()',
     "1:14: error: undefined attribute alias '#nope'"),
    ('undefined type alias',
     '%a = "t.d"() : () -> !nope',
     "1:22: error: undefined type alias '!nope'"),
    ('undefined block',
     ('"t.g"() ({\n'
      '  "t.br"()[^nowhere] : () -> ()\n'
      '}) : () -> ()'),
     "2:12: error: reference to an undefined block '^nowhere'"),
    ('block redefinition',
     ('"t.g"() ({\n'
      '^a:\n'
      '  "t.x"() : () -> ()\n'
      '^a:\n'
      '  "t.x"() : () -> ()\n'
      '}) : () -> ()'),
     "4:1: error: redefinition of block '^a'"),
    ('end of input',
     '"t.d"() : () ->',
     "1:16: error: unexpected end of input, expected '(', 'tensor', 'vector', type"),
    ('end of input region',
     ('"t.g"() ({\n'
      '  "t.x"() : () -> ()\n'
      ''),
     "3:1: error: unexpected end of input, expected 'builtin.module', 'func.func', '}', block label, operation, string"),
    ('float for int',
     '"t.d"() {a = 1.5 : i32} : () -> ()',
     '1:14: error: floating point value not valid for type i32'),
    ('int for float',
     '"t.d"() {a = 1 : f32} : () -> ()',
     '1:14: error: unexpected decimal integer literal for a floating point value (add a trailing dot to make the literal a float)'),
    ('bad escape',
     '"t.d"() {a = "\\q"} : () -> ()',
     "1:14: error: unknown escape '\\q' in string"),
    ('hex too wide',
     '"t.d"() {a = 0x1FFFF : f16} : () -> ()',
     '1:14: error: hexadecimal float literal does not fit f16'),
    ('negative hex float',
     '"t.d"() {a = -0x1 : f32} : () -> ()',
     '1:14: error: hexadecimal float literal does not fit f32'),
    ('int array bad type',
     '"t.d"() {a = [1 : i0]} : () -> ()',
     "1:14: error: unknown scalar type 'i0'"),
    ('dense bad element type',
     '"t.d"() {a = dense<1> : tensor<2x!t.x>} : () -> ()',
     '1:14: error: dense elements of type !t.x are not supported'),
    ('dense array bad float',
     '"t.d"() {a = array<f32: 1e5>} : () -> ()',
     "1:14: error: invalid element '1e5' in array of f32"),
    ('alias redefinition',
     ('!a = i32\n'
      '!a = f32'),
     "2:1: error: redefinition of type alias '!a'"),
    ('func body unnamed',
     ('func.func @f(i32) {\n'
      '  "func.return"() : () -> ()\n'
      '}'),
     '1:1: error: a function with a body must name its arguments'),
    ('bad resource',
     ('"t.d"() {a = dense_resource<r> : tensor<1xi8>} : () -> ()\n'
      '{-#\n'
      '  dialect_resources: {\n'
      '    builtin: {\n'
      '      r: "0xZZ"\n'
      '    }\n'
      '  }\n'
      '#-}'),
     "5:10: error: resource 'r' is not valid hexadecimal"),
    ('missing signature',
     '"t.d"()',
     "1:8: error: unexpected end of input, expected '(', ':', ':' and a function type, '<{', '[', '{'"),
    ('value at top',
     '%0',
     "1:1: error: expected 'builtin.module', 'func.func', '{-#', attribute alias, operation, string, ..., found '%0'"),
]


@pytest.mark.parametrize("text, header", [(t, h) for _, t, h in CASES], ids=[n for n, _, _ in CASES])
def test_parse_error(text, header, request):
    name = request.node.callspec.id
    with pytest.raises(XirError) as info:
        parse(text, "in.mlir", allow_unregistered=name not in REGISTERED_ONLY)
    diagnostic = info.value.diagnostic
    assert diagnostic.header() == "in.mlir:" + header
    assert str(info.value) == diagnostic.header()


def test_diagnostic_quotes_the_line_with_a_caret():
    with pytest.raises(XirError) as info:
        parse('"t.d"() : () -> ()\n"t.u"(%x) : (i32) -> ()\n', "in.mlir", allow_unregistered=True)
    assert info.value.diagnostic.render() == (
        "in.mlir:2:7: error: use of undeclared SSA value name '%x'\n"
        '"t.u"(%x) : (i32) -> ()\n'
        "      ^")


def test_the_default_file_name():
    with pytest.raises(XirError, match="^<stdin>:1:1: error: operation name 'nodot' has no dialect prefix$"):
        parse('"nodot"() : () -> ()')


# Damaged inputs: a printed random module with characters deleted, inserted, duplicated or cut off
# must parse (and verify, and print) or fail with an XirError, never with another exception.

_PIECES = list('"%^@#!<>(){}[]:,=-.0123456789xe\\ \n') + [
    "loc(", "dense<", "0x", "->", "tensor<", "{-#", "#-}", "i1", "f16", "bf16", ":2", "#1", "array<",
    "dense_resource<", "%x#5", '"\\FF"', "func.func @f(", '"func.return"() : () -> ()\n',
    '"func.func"() <{sym_name = 1, function_type = i32}> ({\n^bb0:\n}) : () -> ()\n',
]


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules(), st.data())
def test_damaged_input_fails_cleanly(module, data):
    text = print_ir(module, generic=data.draw(st.booleans()))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["delete", "insert", "duplicate", "truncate"]))
        if kind == "delete":
            text = text[:i] + text[i + data.draw(st.integers(1, 4)):]
        elif kind == "insert":
            text = text[:i] + data.draw(st.sampled_from(_PIECES)) + text[i:]
        elif kind == "duplicate":
            j = i + data.draw(st.integers(1, 30))
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i]
    try:
        damaged = parse(text, "in.mlir", allow_unregistered=True)
        verify(damaged)
        print_ir(damaged)
    except XirError as e:
        assert e.diagnostic.message
