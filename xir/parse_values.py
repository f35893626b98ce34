"""Decoding literal values: numbers, integer arrays, ``array<...>`` and ``dense<...>`` payloads.

These turn the text of a literal (already delimited by the grammar) into attributes, checking that the
value fits its type. Errors are :class:`ParseValueError`; the parser gives them a position.
"""

from __future__ import annotations

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
    attr = decode_number(text, element_type)
    return attr.value


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
