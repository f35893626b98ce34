"""Decoding tokens: literal values (numbers, integer arrays, ``array<...>``, ``dense<...>``
payloads), strings, symbol references and dimensions.

These turn the text of a token (already delimited by the grammar) into values, checking that a
value fits its type. :class:`ParseValueError` is a value that does not fit (the parser places it);
:class:`TokenError` is an error already placed at a token.
"""

from __future__ import annotations

import re

from xir import attributes as A
from xir import types as T


class ParseValueError(ValueError):
    """A literal that does not fit its type (the message says how)."""


def _int_range(t: T.IntegerType) -> tuple[int, int]:
    if t.signedness == "u":
        return 0, (1 << t.width) - 1
    if t.signedness == "s":
        return -(1 << (t.width - 1)), (1 << (t.width - 1)) - 1
    return -(1 << (t.width - 1)), (1 << t.width) - 1  # signless: either reading fits


def _parse_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    return sign * (int(text, 16) if text.startswith("0x") else int(text))


def check_int(value: int, t: T.Type) -> int:
    """``value`` if it fits integer (or index) type ``t``, else a ParseValueError."""
    if isinstance(t, T.IntegerType):
        lo, hi = _int_range(t)
        if not lo <= value <= hi:
            raise ParseValueError(f"integer constant {value} out of range for type {t}")
    return value


def decode_number(text: str, t: T.Type | None) -> A.Attribute:
    """``4``, ``-1.5``, ``0x7FC00000 : f32``, optionally typed, as an Integer/Float/Bool attribute."""
    is_float_literal = "." in text
    if t is None:
        t = T.f64 if is_float_literal else T.i64
    if isinstance(t, T.FloatType):
        if is_float_literal:
            return A.FloatAttr(A._round_to(t.kind, float(text)), t)
        if "0x" not in text:
            raise ParseValueError("unexpected decimal integer literal for a floating point value "
                                  "(add a trailing dot to make the literal a float)")
        try:
            return A.FloatAttr(A.float_from_bits(_parse_int(text), t), t)
        except ValueError as e:
            raise ParseValueError(str(e)) from None
    if is_float_literal:
        raise ParseValueError(f"floating point value not valid for type {t}")
    if not isinstance(t, (T.IntegerType, T.IndexType)):
        raise ParseValueError(f"integer literal not valid for type {t}")
    value = check_int(_parse_int(text), t)
    if t == T.i1:
        if value not in (0, 1, -1):
            raise ParseValueError(f"integer constant {value} out of range for type i1")
        return A.TRUE if value else A.FALSE
    return A.IntegerAttr(value, t)


def decode_int_array(text: str) -> A.ArrayAttr:
    """``[1, 2, 3]`` or ``[1 : i32, 2 : i64]`` as an array of integer attributes (i64 by default)."""
    items = []
    for part in text.strip()[1:-1].split(","):
        value, _, type_text = part.partition(":")
        if type_text:
            try:
                t = T.scalar_type(type_text.strip())
            except ValueError as e:
                raise ParseValueError(str(e)) from None
            items.append(decode_number(value.strip(), t))
        else:
            items.append(A.IntegerAttr(int(value)))
    return A.ArrayAttr(tuple(items))


def decode_dense_array(text: str, parse_type) -> A.DenseArrayAttr:
    """``array<i64: 1, 2>`` (or ``array<f32>``, empty) as a DenseArrayAttr."""
    body = text[text.index("<") + 1:-1]
    type_text, _, items = body.partition(":")
    element = parse_type(type_text.strip())
    values = []
    for item in filter(None, (i.strip() for i in items.split(","))):
        if isinstance(element, T.FloatType):
            try:
                values.append(decode_number(item if "." in item or "0x" in item else item + ".0", element).value)
            except ValueError:
                raise ParseValueError(f"invalid element '{item}' in array of {element}") from None
        elif item in ("true", "false") and element == T.i1:
            values.append(item == "true")
        else:
            try:
                values.append(check_int(_parse_int(item), element))
            except ValueError:
                raise ParseValueError(f"invalid element '{item}' in array of {element}") from None
    return A.DenseArrayAttr(element, tuple(values))


def decode_dense(elements, t: T.TensorType | T.VectorType) -> A.DenseElementsAttr:
    """The payload of ``dense<...> : t`` (as the grammar's ``dense_text`` callbacks return it)."""
    import numpy as np

    try:
        dtype = A.numpy_dtype(t.element_type)
    except ValueError as e:
        raise ParseValueError(str(e)) from None
    if elements is None:
        if T.TensorType(t.shape, t.element_type).num_elements != 0:
            raise ParseValueError(f"empty dense literal for non-empty type {t}")
        return A.DenseElementsAttr(t, np.zeros(t.shape, dtype), is_splat=False)
    kind, value = elements
    if kind == "hex":
        return _dense_from_hex(value, t, dtype)
    if kind == "number":
        return A.DenseElementsAttr(t, _element(value, t.element_type), is_splat=True)
    flat: list = []
    shape = _nested_shape(elements, flat, t.element_type)
    if tuple(shape) != tuple(t.shape):
        raise ParseValueError(f"dense literal of shape {_shape_text(shape)} does not match type {t}")
    return A.DenseElementsAttr(t, np.array(flat, dtype=dtype).reshape(t.shape), is_splat=False)


def _dense_from_hex(token: str, t, dtype) -> A.DenseElementsAttr:
    import numpy as np

    body = token[1:-1]
    if not body.startswith("0x"):
        raise ParseValueError('expected a hex string "0x..." in dense literal')
    try:
        raw = bytes.fromhex(body[2:])
    except ValueError:
        raise ParseValueError("invalid hexadecimal in dense literal") from None
    count = T.TensorType(t.shape, t.element_type).num_elements
    if len(raw) == dtype.itemsize and count != 1:
        return A.DenseElementsAttr(t, np.frombuffer(raw, dtype.newbyteorder("<")), is_splat=True)
    if len(raw) != count * dtype.itemsize:
        raise ParseValueError(f"hex dense literal has {len(raw)} bytes, type {t} needs "
                              f"{count * dtype.itemsize}")
    return A.DenseElementsAttr(t, np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype), is_splat=False)


def _element(text: str, element_type: T.Type):
    if text in ("true", "false"):
        if element_type != T.i1:
            raise ParseValueError(f"boolean value not valid for element type {element_type}")
        return text == "true"
    value = decode_number(text, element_type).value
    if (isinstance(element_type, T.IntegerType) and not element_type.signedness
            and element_type.width > 1 and value >= 1 << (element_type.width - 1)):
        value -= 1 << element_type.width  # signless 255 : i8 is the bits of -1, as numpy holds them
    return value


def _nested_shape(elements, flat: list, element_type) -> list[int]:
    kind, value = elements
    if kind == "number":
        flat.append(_element(value, element_type))
        return []
    if kind == "hex":
        raise ParseValueError("a hex string must be the whole dense literal")
    shapes = [_nested_shape(e, flat, element_type) for e in value]
    if any(s != shapes[0] for s in shapes):
        raise ParseValueError("dense literal has rows of different lengths")
    return [len(value)] + (shapes[0] if shapes else [])


def _shape_text(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


class TokenError(Exception):
    """An error at a token of the input: raised by the grammar's actions, placed by the parser."""

    def __init__(self, where, message: str):
        super().__init__(message)
        # ``where`` is a token or (token, character offset of the problem inside its text).
        token, at = where if isinstance(where, tuple) else (where, 0)
        self.token = token
        self.at = at
        self.message = message


STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
OPERAND_RE = re.compile(r"(%[^\s,#)]+)(?:#([0-9]+))?")


def unquote_text(text: str, tok=None) -> str:
    """The value of a string literal's text (other text as it is); a bad escape is a TokenError."""
    if text.startswith('"'):
        try:
            return A.unescape_string(text[1:-1])
        except ValueError as e:  # an unknown escape: an error in the input, at token ``tok``
            raise TokenError(tok, str(e)) from None
    return text


def entries_dict(entries) -> dict:
    """The dictionary of ``(key token, value)`` entries; a key given twice is an error."""
    out = {}
    for entry in entries:
        if entry is None:
            continue
        tok, value = entry
        key = unquote(tok)
        if key in out:
            raise TokenError(tok, f"duplicate key '{key}' in dictionary attribute")
        out[key] = value
    return out


def unquote(tok) -> str:
    """The value of a string or bare-identifier token."""
    return unquote_text(str(tok), tok)


# One `@name` or `@"name"` of a symbol reference (a quoted name may itself contain "::@").
_SYMBOL_PART = re.compile(r'@("[^"\\\n]*(?:\\.[^"\\\n]*)*"|[^:"]*)')

# A `!name` or `#name` alias use (a dialect type or attribute has a dot after its dialect's name).
ALIAS_USE = re.compile(r"[!#][A-Za-z_][A-Za-z0-9_$]*(?![A-Za-z0-9_$.])")


def symbol_ref(tok) -> A.SymbolRefAttr:
    """``@a::@"b"`` as a SymbolRefAttr."""
    parts = [unquote_text(m.group(1), tok) for m in _SYMBOL_PART.finditer(str(tok))]
    return A.SymbolRefAttr(parts[0], tuple(parts[1:]))


def dims(tok) -> tuple[int, ...]:
    """``1x?x4x`` as a shape (``DYNAMIC`` for ``?``)."""
    if tok is None:
        return ()
    return tuple(T.DYNAMIC if d == "?" else int(d) for d in str(tok).split("x")[:-1])
