"""The grammar's actions for attributes, types and locations.

Coarse tokens (a whole type, function type, integer array, simple dictionary or location) are decoded
by the fine rules once per distinct text and kept in the parser's caches; these methods look them up.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.parse_values import (ParseValueError, TokenError, decode_dense, decode_dense_array,
                              decode_int_array, decode_number, dims, entries_dict, symbol_ref,
                              unquote, unquote_text)


class ValueActions:
    """A mixin of the parser's builder: ``self.owner`` is the :class:`~xir.parser.Parser`."""

    # -- attributes ----------------------------------------------------------------------------

    def attr_dict(self, c):
        if len(c) == 1 and isinstance(c[0], str):  # the coarse ATTR_DICT token
            return self.owner.simple_dict(c[0], text=str(c[0]), column_offset=0)
        return entries_dict(c)

    attr_dict_text = attr_dict

    def attr_entry(self, c):
        key, value = c
        return (key, A.UNIT if value is None else value)  # the key token: see entries_dict

    def int_array_attr(self, c):
        tok = c[0]
        cache = self.owner.int_arrays
        attr = cache.get(tok)
        if attr is None:
            try:
                attr = cache[str(tok)] = decode_int_array(str(tok))
            except ParseValueError as e:
                raise TokenError(tok, str(e)) from None
        return attr

    def number_attr(self, c):
        tok, t = c
        try:
            return decode_number(str(tok), t)
        except ParseValueError as e:
            raise TokenError(tok, str(e)) from None

    def string_attr(self, c):
        tok, t = c
        return A.StringAttr(unquote(tok), t)

    def true_attr(self, c):
        return A.TRUE

    def false_attr(self, c):
        return A.FALSE

    def unit_attr(self, c):
        return A.UNIT

    def array_attr(self, c):
        return A.ArrayAttr(tuple(a for a in c if a is not None))

    def dict_attr(self, c):
        return A.DictionaryAttr(c[0])

    def symbol_ref_attr(self, c):
        return symbol_ref(c[0])

    def dense_attr(self, c):
        tok, t = c
        if not isinstance(t, (T.TensorType, T.VectorType)) or t.shape is None or T.DYNAMIC in t.shape:
            raise TokenError(tok, f"dense elements need a statically shaped tensor or vector type, not '{t}'")
        elements = self.owner.sub_parse(str(tok), "dense_text", tok)
        try:
            return decode_dense(elements, t)
        except ParseValueError as e:
            raise TokenError(tok, str(e)) from None

    def dense_resource_attr(self, c):
        tok, t = c
        name = tok[tok.index("<") + 1:-1].strip()
        name = unquote_text(name, tok)
        handle = self.resources.get(name)
        if handle is None:
            handle = self.resources[name] = A.ResourceHandle(name)
        return A.DenseResourceAttr(handle, t)

    def dense_array_attr(self, c):
        tok = c[0]
        try:
            return decode_dense_array(str(tok), lambda text: self.owner.types.get(text)
                                      or self.owner.sub_parse(text, "type_text", tok))
        except ParseValueError as e:
            raise TokenError(tok, str(e)) from None

    def dialect_attr(self, c):
        return self.owner.dialect_item(c[0], A.DialectAttr)

    def attr_alias_use(self, c):
        a = self.attr_aliases.get(str(c[0]))
        if a is None:
            raise TokenError(c[0], f"undefined attribute alias '{c[0]}'")
        return a

    def location_attr(self, c):
        return self.owner.location(c[0])

    def type_attr(self, c):
        return A.TypeAttr(c[0])

    # -- types ---------------------------------------------------------------------------------

    def builtin_type(self, c):
        tok = c[0]
        t = self.owner.types.get(tok)
        return t if t is not None else self.owner.builtin_type(tok)

    def dialect_type(self, c):
        return self.owner.dialect_item(c[0], T.DialectType)

    def type_alias_use(self, c):
        t = self.type_aliases.get(str(c[0]))
        if t is None:
            raise TokenError(c[0], f"undefined type alias '{c[0]}'")
        return t

    def function_type(self, c):
        if len(c) == 1:
            tok = c[0]
            t = self.owner.function_types.get(tok)
            if t is None:
                t = self.owner.sub_parse(str(tok), "function_type_text", tok)
                if self.owner.reusable(tok):
                    self.owner.function_types[str(tok)] = t
            return t
        return T.FunctionType(tuple(c[0]), tuple(c[1]))

    def function_type_text(self, c):
        return T.FunctionType(tuple(c[0]), tuple(c[1]))

    def type_list(self, c):
        return [t for t in c if t is not None]

    def result_types(self, c):
        return c[0] if isinstance(c[0], list) else [c[0]]

    def type_text(self, c):
        return c[0]

    def attribute_text(self, c):
        return c[0]

    def builtin_type_text(self, c):
        return c[0]

    def tensor_type(self, c):
        dims_tok, element, encoding = c
        shape = None if dims_tok is not None and str(dims_tok) == "*x" else dims(dims_tok)
        return T.TensorType(shape, element, encoding)

    def vector_type(self, c):
        dims_tok, element = c
        return T.VectorType(dims(dims_tok), element)

    def complex_type(self, c):
        return T.ComplexType(c[0])

    # -- locations -----------------------------------------------------------------------------

    def location_text(self, c):
        return c[0]

    def file_loc(self, c):
        return A.FileLineColLoc(unquote(c[0]), int(c[1]), int(c[2]))

    def name_loc(self, c):
        return A.NameLoc(unquote(c[0]), c[1])

    def unknown_loc(self, c):
        return A.UNKNOWN_LOC

    def fused_loc(self, c):
        meta = c[0]
        return A.FusedLoc(tuple(l for l in c[1:] if l is not None), meta)

    def callsite_loc(self, c):
        return A.CallSiteLoc(c[0], c[1])

    def loc_alias(self, c):
        loc = self.attr_aliases.get(str(c[0]))
        if not isinstance(loc, A.Location):
            raise TokenError(c[0], f"undefined location alias '{c[0]}'")
        return loc

    # -- dense literal bodies ------------------------------------------------------------------

    def dense_text(self, c):
        return c[0]

    def dense_number(self, c):
        return ("number", str(c[0]))

    def dense_true(self, c):
        return ("number", "true")

    def dense_false(self, c):
        return ("number", "false")

    def dense_hex(self, c):
        return ("hex", c[0])

    def dense_list(self, c):
        return ("list", [e for e in c if e is not None])
