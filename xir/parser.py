"""The parser: text in the grammar of ``grammar/xir.lark`` to IR objects.

Lark's LALR parser calls :class:`_Builder`'s methods as it reduces each rule, so operations are built
while the text is read and no parse tree exists. Coarse tokens (a whole type, operand list, function
type, location or integer array) are decoded once per distinct text and then looked up.

Entry points: :func:`parse` (a whole file), :func:`parse_type`, :func:`parse_attribute`.
"""

from __future__ import annotations

import gc
import re
import threading

from xir import attributes as A
from xir import types as T
from xir.diagnostics import Diagnostic, SourceFile, XirError
from xir.ir import Block, BlockArgument, Operation, OpResult, Region, Value
from xir.parse_values import decode_dense, decode_dense_array, decode_int_array, decode_number
from xir.parse_values import ParseValueError

_START_SYMBOLS = [
    "start", "type_text", "attribute_text", "attr_dict_text", "builtin_type_text", "function_type_text",
    "location_text", "dense_text",
]


class _Scope:
    """The names visible inside one region: values, block labels, and what is still unresolved."""

    __slots__ = ("values", "forward", "blocks", "pending_successors", "parent", "region", "block",
                 "implicit_entry")

    def __init__(self, parent: "_Scope | None", region: Region | None):
        self.values: dict[str, list[Value]] = {}
        self.forward: dict[str, tuple[list[Value], object]] = {}  # name -> (placeholders, token)
        self.blocks: dict[str, Block] = {}
        self.pending_successors: list = []  # (op, index, label token)
        self.parent = parent
        self.region = region
        self.block: Block | None = None
        self.implicit_entry = False


class _ParseError(Exception):
    """Raised inside callbacks; carries a token (for its position) and a message."""

    def __init__(self, where, message: str):
        super().__init__(message)
        # ``where`` is a token or (token, character offset of the problem inside its text).
        token, at = where if isinstance(where, tuple) else (where, 0)
        self.token = token
        self.at = at
        self.message = message


class _Builder:
    """Lark callbacks: one method per grammar rule that builds something."""

    def __init__(self, owner: "Parser"):
        self.owner = owner

    # -- state for one parse -------------------------------------------------------------------

    def reset(self, allow_unregistered: bool, filename: str):
        self.allow_unregistered = allow_unregistered
        self.filename = filename
        self.scope = _Scope(None, None)
        self.scope.block = Block()
        self.type_aliases: dict[str, T.Type] = {}
        self.attr_aliases: dict[str, A.Attribute] = {}
        self.resources: dict[str, A.ResourceHandle] = {}
        self.pending_entry_args = None

    # -- operations ----------------------------------------------------------------------------

    def generic_op(self, c):
        results_tok, (name_tok, operands), successors, props, regions, attrs, ftype, loc = c
        name = _STRING_RE.match(name_tok).group(1)
        if "\\" in name:
            name = _unquote_text(f'"{name}"', name_tok)
        op_class = self.owner.op_class(name, name_tok, self.allow_unregistered)
        if len(operands) != len(ftype.inputs):
            raise _ParseError(name_tok, f"expected {len(operands)} operand type"
                              f"{'' if len(operands) == 1 else 's'} but had {len(ftype.inputs)}")
        values = self._resolve_operands(operands, ftype.inputs)
        op = Operation.__new__(op_class)
        op._name = name
        op._operands = values
        for i, v in enumerate(values):
            v.uses[(op, i)] = None
        op.results = [OpResult(t, op, i) for i, t in enumerate(ftype.results)]
        op.attributes = {} if attrs is None else attrs
        op.properties = {} if props is None else props
        op.regions = []
        if regions is not None:
            for region in regions:
                region.parent = op
                op.regions.append(region)
        op.successors = []
        if successors is not None:
            scope = self.scope
            for i, label in enumerate(successors):
                op.successors.append(None)
                scope.pending_successors.append((op, i, label))
        op.location = None if loc is None else self.owner.location(loc)
        op.position = (self.filename, (results_tok or name_tok).line, (results_tok or name_tok).column)
        op.parent = op.prev_op = op.next_op = None
        if results_tok is not None:
            self._define_results(results_tok, op.results)
        self.scope.block.append(op)
        return op

    def _resolve_operands(self, operands, types) -> list[Value]:
        values = []
        scope = self.scope
        for (name, index, where), t in zip(operands, types):
            s = scope
            group = None
            while s is not None:
                group = s.values.get(name)
                if group is not None:
                    break
                s = s.parent
            if group is None:
                v = self._forward_reference(name, index, where, t)
            elif index >= len(group):
                raise _ParseError(where, f"result number {index} of '{name}' is out of range "
                                         f"(it has {len(group)} results)")
            else:
                v = group[index]
            if v.type is not t and v.type != t:
                raise _ParseError(where, f"use of value '{name}' expects different type than prior "
                                         f"uses: '{t}' vs '{v.type}'")
            values.append(v)
        return values

    def _forward_reference(self, name, index, where, t) -> Value:
        """A placeholder for a value used before its definition (bound when it is defined)."""
        entry = self.scope.forward.get(name)
        if entry is None:
            entry = self.scope.forward[name] = ([], where)
        placeholders = entry[0]
        while len(placeholders) <= index:
            placeholders.append(None)
        if placeholders[index] is None:
            placeholders[index] = Value(t)
        return placeholders[index]

    def _define(self, name: str, values: list[Value], tok) -> None:
        scope = self.scope
        if name in scope.values:
            raise _ParseError(tok, f"redefinition of SSA value '{name}'")
        scope.values[name] = values
        hint = name[1:]
        if not hint.isdigit():
            for i, v in enumerate(values):
                v.name_hint = hint if len(values) == 1 else f"{hint}_{i}" if i else hint
        pending = scope.forward.pop(name, None)
        if pending is not None:
            self._bind_forward(name, values, pending)

    def _bind_forward(self, name, values, pending) -> None:
        placeholders, tok = pending
        for index, placeholder in enumerate(placeholders):
            if placeholder is None:
                continue
            if index >= len(values):
                raise _ParseError(tok, f"result number {index} of '{name}' is out of range "
                                       f"(it has {len(values)} results)")
            if placeholder.type != values[index].type:
                raise _ParseError(tok, f"use of value '{name}' expects different type than prior "
                                       f"uses: '{placeholder.type}' vs '{values[index].type}'")
            placeholder.replace_all_uses_with(values[index])

    def _define_results(self, tok, results: list[OpResult]) -> None:
        groups = []
        for part in tok[:-1].split(","):
            name, _, count = part.strip().partition(":")
            groups.append((name.strip(), int(count) if count else 1))
        total = sum(n for _, n in groups)
        if total != len(results):
            raise _ParseError(tok, f"operation defines {len(results)} results but was provided "
                                   f"{total} to bind")
        start = 0
        for name, n in groups:
            self._define(name, results[start:start + n], tok)
            start += n

    def op_head(self, c):
        """(name token, operands): the name token's text starts with the quoted name."""
        if len(c) == 2:
            return c[0], c[1]
        tok = c[0]
        start = tok.rindex("(")
        return tok, self._coarse_operands(tok, start)

    def signature(self, c):
        tok = c[0]
        if not isinstance(tok, str):
            return tok  # the fine form: a FunctionType already
        t = self.owner.function_types.get(tok)
        if t is None:
            start = tok.index("(")
            t = self.owner.sub_parse(str(tok)[start:], "function_type_text", (tok, start))
            if self.owner.reusable(tok):
                self.owner.function_types[str(tok)] = t
        return t

    def _coarse_operands(self, tok, start: int = 0):
        return [(m.group(1), int(m.group(2) or 0), (tok, m.start()))
                for m in _OPERAND_RE.finditer(tok, start)]

    def operands(self, c):
        """A list of (name, result index, where) for each operand; ``where`` places errors."""
        out = []
        if len(c) == 1 and c[0] is not None and c[0].type == "OPERANDS":
            return self._coarse_operands(c[0])
        else:
            for tok in c:
                if tok is not None:
                    name, _, index = tok.partition("#")
                    out.append((name, int(index or 0), tok))
        return out

    def successors(self, c):
        return c

    def properties(self, c):
        if len(c) == 1 and isinstance(c[0], str):  # the coarse PROPERTIES token
            return self.owner.simple_dict(c[0], text=str(c[0])[1:-1], column_offset=1)
        return _entries_dict(c)

    def regions(self, c):
        return c

    # -- regions and blocks --------------------------------------------------------------------

    def region_open(self, c):
        region = Region()
        scope = self.scope = _Scope(self.scope, region)
        block = region.add_block()
        scope.block = block
        scope.implicit_entry = True
        if self.pending_entry_args is not None:
            args, self.pending_entry_args = self.pending_entry_args, None
            for name_tok, t, _attrs, loc in args:
                arg = block.add_arg(t)
                self._define(str(name_tok), [arg], name_tok)
        return region

    def region(self, c):
        scope = self.scope
        region = scope.region
        if scope.implicit_entry and scope.block.is_empty() and len(region.blocks) == 1 and not scope.block.args:
            region.blocks.clear()  # `{ }`: a region with no blocks
        for op, index, label in scope.pending_successors:
            block = scope.blocks.get(str(label))
            if block is None:
                raise _ParseError(label, f"reference to an undefined block '{label}'")
            op.successors[index] = block
        parent = scope.parent
        for name, (placeholders, tok) in scope.forward.items():
            entry = parent.forward.get(name)
            outer = self._lookup(parent, name)
            if outer is not None:
                self._bind_forward(name, outer, (placeholders, tok))
            elif entry is None:
                parent.forward[name] = (placeholders, tok)
            else:
                self._merge_forward(entry[0], placeholders)
        self.scope = parent
        return region

    @staticmethod
    def _lookup(scope, name):
        while scope is not None:
            group = scope.values.get(name)
            if group is not None:
                return group
            scope = scope.parent
        return None

    @staticmethod
    def _merge_forward(into: list, placeholders: list) -> None:
        for index, p in enumerate(placeholders):
            if p is None:
                continue
            while len(into) <= index:
                into.append(None)
            if into[index] is None:
                into[index] = p
            else:
                p.replace_all_uses_with(into[index])

    def block_header(self, c):
        label = c[0]
        args = [a for a in c[1:] if a is not None]
        scope = self.scope
        name = str(label)
        if name in scope.blocks:
            raise _ParseError(label, f"redefinition of block '{name}'")
        if scope.implicit_entry and scope.block.is_empty() and not scope.block.args:
            block = scope.block
        else:
            block = scope.region.add_block()
        scope.implicit_entry = False
        block.name_hint = name[1:]
        scope.blocks[name] = block
        scope.block = block
        for name_tok, t, loc in args:
            arg = block.add_arg(t)
            self._define(str(name_tok), [arg], name_tok)
        return block

    def block_arg(self, c):
        return (c[0], c[1], c[2])

    def block(self, c):
        return None

    # -- pretty forms --------------------------------------------------------------------------

    def module_op(self, c):
        kw, sym, attrs, region, loc = c
        from xir.builtin import ModuleOp

        op = ModuleOp.build(region=region, sym_name=None if sym is None else _symbol(sym).root,
                            attributes=attrs, location=None if loc is None else self.owner.location(loc))
        op.position = (self.filename, kw.line, kw.column)
        self.scope.block.append(op)
        return op

    def func_args(self, c):
        args = [a for a in c if a is not None]
        named = [a for a in args if a[0] is not None]
        if named and len(named) != len(args):
            raise _ParseError(named[0][0], "expected all function arguments to be named or none")
        self.pending_entry_args = named if named else None
        return args

    def named_func_arg(self, c):
        return (c[0], c[1], c[2], c[3])

    def anonymous_func_arg(self, c):
        return (None, c[0], c[1], None)

    def single_func_result(self, c):
        return [(c[0], None)]

    def func_results(self, c):
        return [r for r in c if r is not None]

    def func_result(self, c):
        return (c[0], c[1])

    def func_op(self, c):
        kw, visibility, sym, args, results, attrs, region, loc = c
        self.pending_entry_args = None
        op_class = self.owner.op_class("func.func", kw, False)
        results = results or []
        if region is not None and args and args[0][0] is None:
            raise _ParseError(kw, "a function with a body must name its arguments")
        op = op_class.from_signature(
            name=_symbol(sym).root,
            arg_types=[a[1] for a in args], result_types=[r[0] for r in results],
            arg_attrs=[a[2] for a in args], result_attrs=[r[1] for r in results],
            visibility=None if visibility is None else str(visibility),
            attributes=attrs, body=region,
            location=None if loc is None else self.owner.location(loc),
        )
        op.position = (self.filename, kw.line, kw.column)
        self.scope.block.append(op)
        return op

    # -- top level -----------------------------------------------------------------------------

    def type_alias_def(self, c):
        name, t = c
        if str(name) in self.type_aliases:
            raise _ParseError(name, f"redefinition of type alias '{name}'")
        self.type_aliases[str(name)] = t

    def attr_alias_def(self, c):
        name, a = c
        if str(name) in self.attr_aliases:
            raise _ParseError(name, f"redefinition of attribute alias '{name}'")
        self.attr_aliases[str(name)] = a

    def resource_section(self, c):
        return [g for g in c if g is not None]

    def resource_group(self, c):
        return (c[0], [d for d in c[1:] if d is not None])

    def resource_dialect(self, c):
        return (c[0], [e for e in c[1:] if e is not None])

    def resource_entry(self, c):
        key, value = c
        return (_unquote(key), value)

    def start(self, c):
        top = self.scope
        if top.forward:
            name, (_, tok) = next(iter(top.forward.items()))
            raise _ParseError(tok, f"use of undeclared SSA value name '{name}'")
        section = c[-1]
        if section is not None:
            self._load_resources(section)
        return top.block

    def _load_resources(self, section) -> None:
        listed = {}  # the module keeps its resources in the order of the section, as it prints them
        for group, dialects in section:
            if group != "dialect_resources":
                continue  # external_resources and others are kept by their owners, not here
            for _dialect, entries in dialects:
                for key, value in entries:
                    handle = self.resources.get(key)
                    if handle is None:
                        handle = self.resources[key] = A.ResourceHandle(key)
                    listed[key] = handle
                    if value.type != "STRING" or not value.startswith('"0x'):
                        raise _ParseError(value, f"resource '{key}' must be a hex string \"0x...\"")
                    try:
                        blob = bytes.fromhex(value[3:-1])
                    except ValueError:
                        raise _ParseError(value, f"resource '{key}' is not valid hexadecimal") from None
                    if len(blob) < 4:
                        raise _ParseError(value, f"resource '{key}' lacks its 4-byte alignment header")
                    handle.alignment = int.from_bytes(blob[:4], "little")
                    handle.data = blob[4:]
        listed.update(self.resources)
        self.resources = listed

    # -- attributes ----------------------------------------------------------------------------

    def attr_dict(self, c):
        if len(c) == 1 and isinstance(c[0], str):  # the coarse ATTR_DICT token
            return self.owner.simple_dict(c[0], text=str(c[0]), column_offset=0)
        return _entries_dict(c)

    attr_dict_text = attr_dict

    def attr_entry(self, c):
        key, value = c
        return (key, A.UNIT if value is None else value)  # the key token: see _entries_dict

    def int_array_attr(self, c):
        tok = c[0]
        cache = self.owner.int_arrays
        attr = cache.get(tok)
        if attr is None:
            try:
                attr = cache[str(tok)] = decode_int_array(str(tok))
            except ParseValueError as e:
                raise _ParseError(tok, str(e)) from None
        return attr

    def number_attr(self, c):
        tok, t = c
        try:
            return decode_number(str(tok), t)
        except ParseValueError as e:
            raise _ParseError(tok, str(e)) from None

    def string_attr(self, c):
        tok, t = c
        return A.StringAttr(_unquote(tok), t)

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
        return _symbol(c[0])

    def dense_attr(self, c):
        tok, t = c
        if not isinstance(t, (T.TensorType, T.VectorType)) or t.shape is None or T.DYNAMIC in t.shape:
            raise _ParseError(tok, f"dense elements need a statically shaped tensor or vector type, not '{t}'")
        elements = self.owner.sub_parse(str(tok), "dense_text", tok)
        try:
            return decode_dense(elements, t)
        except ParseValueError as e:
            raise _ParseError(tok, str(e)) from None

    def dense_resource_attr(self, c):
        tok, t = c
        name = tok[tok.index("<") + 1:-1].strip()
        name = _unquote_text(name, tok)
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
            raise _ParseError(tok, str(e)) from None

    def dialect_attr(self, c):
        return self.owner.dialect_item(c[0], A.DialectAttr)

    def attr_alias_use(self, c):
        a = self.attr_aliases.get(str(c[0]))
        if a is None:
            raise _ParseError(c[0], f"undefined attribute alias '{c[0]}'")
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
            raise _ParseError(c[0], f"undefined type alias '{c[0]}'")
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
        dims, element, encoding = c
        shape = None if dims is not None and str(dims) == "*x" else _dims(dims)
        return T.TensorType(shape, element, encoding)

    def vector_type(self, c):
        dims, element = c
        return T.VectorType(_dims(dims), element)

    def complex_type(self, c):
        return T.ComplexType(c[0])

    # -- locations -----------------------------------------------------------------------------

    def location_text(self, c):
        return c[0]

    def file_loc(self, c):
        return A.FileLineColLoc(_unquote(c[0]), int(c[1]), int(c[2]))

    def name_loc(self, c):
        return A.NameLoc(_unquote(c[0]), c[1])

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
            raise _ParseError(c[0], f"undefined location alias '{c[0]}'")
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


# -- helpers for the callbacks -------------------------------------------------------------------


_STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_OPERAND_RE = re.compile(r"(%[^\s,#)]+)(?:#([0-9]+))?")


def _unquote_text(text: str, tok=None) -> str:
    if text.startswith('"'):
        try:
            return A.unescape_string(text[1:-1])
        except ValueError as e:  # an unknown escape: an error in the input, at token ``tok``
            raise _ParseError(tok, str(e)) from None
    return text


def _entries_dict(entries) -> dict:
    """The dictionary of ``(key token, value)`` entries; a key given twice is an error."""
    out = {}
    for entry in entries:
        if entry is None:
            continue
        tok, value = entry
        key = _unquote(tok)
        if key in out:
            raise _ParseError(tok, f"duplicate key '{key}' in dictionary attribute")
        out[key] = value
    return out


def _unquote(tok) -> str:
    return _unquote_text(str(tok), tok)


# One `@name` or `@"name"` of a symbol reference (a quoted name may itself contain "::@").
_SYMBOL_PART = re.compile(r'@("[^"\\\n]*(?:\\.[^"\\\n]*)*"|[^:"]*)')

# A `!name` or `#name` alias use (a dialect type or attribute has a dot after its dialect's name).
_ALIAS_USE = re.compile(r"[!#][A-Za-z_][A-Za-z0-9_$]*(?![A-Za-z0-9_$.])")


def _symbol(tok) -> A.SymbolRefAttr:
    parts = [_unquote_text(m.group(1), tok) for m in _SYMBOL_PART.finditer(str(tok))]
    return A.SymbolRefAttr(parts[0], tuple(parts[1:]))


def _dims(tok) -> tuple[int, ...]:
    if tok is None:
        return ()
    return tuple(T.DYNAMIC if d == "?" else int(d) for d in str(tok).split("x")[:-1])


# -- the parser ----------------------------------------------------------------------------------

_lark_lock = threading.Lock()
_lark = None
_builder = None
_parser = None

MAX_REGION_DEPTH = 200
_SIMPLE_LOC = re.compile(r'loc\(\s*"([^"\\\n]*)"\s*(?::\s*([0-9]+)\s*:\s*([0-9]+)\s*)?\)')


class Parser:
    """Owns the Lark parser and the caches that intern decoded tokens by their text."""

    def __init__(self):
        self.types: dict[str, T.Type] = {}
        self.function_types: dict[str, T.FunctionType] = {}
        self.int_arrays: dict[str, A.ArrayAttr] = {}
        self.dicts: dict[str, dict] = {}
        self.locations: dict[str, A.Location] = {}
        self.dialect_items: dict[str, object] = {}
        self.builder = _Builder(self)
        self.lark = _load_lark(self.builder)
        self.terminal_descriptions = _terminal_descriptions(self.lark)

    # -- lookups used by the callbacks ---------------------------------------------------------

    def op_class(self, name: str, tok, allow_unregistered: bool):
        from xir.dialect import lookup_dialect

        if not name:
            raise _ParseError(tok, "empty operation name is invalid")
        dialect_name, dot, _ = name.partition(".")
        dialect = lookup_dialect(dialect_name) if dot else None
        if dialect is None:
            if allow_unregistered:
                return Operation
            if not dot:
                raise _ParseError(tok, f"operation name '{name}' has no dialect prefix")
            raise _ParseError(tok, f"operation '{name}' belongs to unregistered dialect "
                                   f"'{dialect_name}' (use --allow-unregistered-dialect)")
        op_class = dialect.op_classes.get(name)
        if op_class is None:
            raise _ParseError(tok, f"unknown operation '{name}': dialect '{dialect_name}' has no such op")
        return op_class

    def builtin_type(self, tok) -> T.Type:
        text = str(tok)
        if text[-1] == ">":
            t = self.sub_parse(text, "builtin_type_text", tok)
        else:
            t = T.scalar_type(text)
        self.types[text] = t
        return t

    def simple_dict(self, tok, text: str, column_offset: int) -> dict:
        """A coarse dictionary token decoded once per distinct text; each op gets its own copy."""
        entries = self.dicts.get(text)
        if entries is None:
            entries = self.sub_parse(text, "attr_dict_text", (tok, column_offset))
            if self.reusable(text):
                self.dicts[text] = entries
        return dict(entries)

    def reusable(self, text: str) -> bool:
        """Whether what ``text`` decodes to may be cached for later parses: not if it may name a
        ``!alias`` or ``#alias`` of this file (another file may define the alias differently), nor
        a ``dense_resource<...>`` (its handle belongs to this file's module and resource section)."""
        if "dense_resource" in text:
            return False
        builder = self.builder
        return not (builder.type_aliases or builder.attr_aliases) or _ALIAS_USE.search(text) is None

    def parse_type_text(self, text: str) -> T.Type:
        t = self.types.get(text)
        if t is None:
            t = self.sub_parse(text, "type_text", None)
        return t

    def dialect_item(self, tok, cls):
        text = str(tok)
        item = self.dialect_items.get(text)
        if item is None:
            head, lt, body = text[1:].partition("<")
            dialect, _, name = head.partition(".")
            item = self.dialect_items[text] = cls(dialect, name, body[:-1] if lt else None)
        return item

    def location(self, tok) -> A.Location:
        text = str(tok)
        loc = self.locations.get(text)
        if loc is None:
            simple = _SIMPLE_LOC.fullmatch(text)  # loc("name") or loc("file":1:2), without Lark
            if simple is None:
                loc = self.sub_parse(text, "location_text", tok)
            elif simple.group(2) is None:
                loc = A.NameLoc(simple.group(1), None)
            else:
                loc = A.FileLineColLoc(simple.group(1), int(simple.group(2)), int(simple.group(3)))
            if "#" not in text:  # aliases differ between files; cache only self-contained text
                self.locations[text] = loc
        return loc

    def sub_parse(self, text: str, start: str, where):
        """Parse ``text`` with one of the fine start symbols. ``text`` is found in the input at
        ``where``: a token (``text`` is its text) or ``(token, offset of text in the token)``."""
        import lark

        tok, base = where if isinstance(where, tuple) else (where, 0)
        try:
            return self.lark.parse(text, start=start)
        except _ParseError as e:
            if tok is None or e.token is None:
                raise
            # A token of this sub-parse: its position is relative to ``text``.
            raise _ParseError((tok, base + e.token.start_pos + e.at), e.message) from None
        except lark.exceptions.LarkError as e:
            _, _, pos, message = self._describe(e, text)
            raise _ParseError((tok, base + pos) if tok is not None else None, message) from None

    # -- parsing -------------------------------------------------------------------------------

    def parse(self, text: str, filename: str, allow_unregistered: bool):
        import lark

        builder = self.builder
        builder.reset(allow_unregistered, filename)
        source = SourceFile(filename, text)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a parse allocates millions of objects and frees none: collecting is pure cost
        try:
            top = self.lark.parse(text, start="start")
        except _ParseError as e:
            raise XirError(self._diagnostic_at(e, source)) from None
        except lark.exceptions.LarkError as e:
            line, column, _, message = self._describe(e, text)
            raise XirError(Diagnostic(message, filename=filename, line=line, column=column,
                                      source=source)) from None
        except RecursionError:
            line, column, depth = deep_nesting_position(text)
            raise XirError(Diagnostic(f"input is nested too deeply ({depth} levels of brackets)",
                                      filename=filename, line=line, column=column,
                                      source=source)) from None
        finally:
            builder.scope = None
            if gc_was_enabled:
                gc.enable()
        return _as_module(top, builder.resources)

    def _diagnostic_at(self, e: _ParseError, source: SourceFile) -> Diagnostic:
        tok = e.token
        line = getattr(tok, "line", None)
        column = getattr(tok, "column", None)
        if e.at and line is not None:
            before = str(tok)[:e.at]
            newlines = before.count("\n")
            if newlines:
                line, column = line + newlines, e.at - before.rfind("\n")
            else:
                column += e.at
        return Diagnostic(e.message, filename=source.name, line=line, column=column, source=source)

    def _describe(self, e, text: str) -> tuple[int, int, int, str]:
        """(line, column, character offset, message) for a Lark error in ``text``."""
        import lark

        if isinstance(e, lark.exceptions.UnexpectedCharacters):
            pos = e.pos_in_stream
            char = text[pos] if pos < len(text) else ""
            if char == '"':
                return e.line, e.column, pos, "unterminated string literal"
            return e.line, e.column, pos, f"unexpected character {_char_repr(char)}"
        if isinstance(e, lark.exceptions.UnexpectedToken):
            tok = e.token
            expected = self._expected_text(e.expected)
            if tok.type == "$END":
                line, column = _end_position(text)
                return line, column, len(text), f"unexpected end of input, expected {expected}"
            shown = str(tok) if len(tok) <= 40 else str(tok)[:37] + "..."
            return tok.line, tok.column, tok.start_pos, f"expected {expected}, found '{shown}'"
        line, column = _end_position(text)
        return line, column, len(text), "unexpected end of input"

    def _expected_text(self, names) -> str:
        described = sorted({self.terminal_descriptions.get(n, n) for n in names})
        if len(described) > 6:
            described = described[:6] + ["..."]
        return " or ".join(described) if len(described) <= 2 else ", ".join(described)


_FRIENDLY = {
    "BUILTIN_TYPE": "type", "DIALECT_TYPE": "type", "TYPE_ALIAS_NAME": "type", "FUNCTION_TYPE": "function type",
    "VALUE_NAME": "SSA value name", "VALUE_USE": "SSA value", "RESULTS": "operation",
    "OPERANDS": "operand list", "BLOCK_LABEL": "block label", "SYMBOL_REF": "symbol reference",
    "STRING": "string", "NUMBER": "number", "INT_ARRAY": "array", "BARE_ID": "identifier",
    "LOC": "location", "DENSE": "dense literal", "DENSE_RESOURCE": "dense resource",
    "DENSE_ARRAY": "array literal", "DIALECT_ATTR": "attribute", "ATTR_ALIAS_NAME": "attribute alias",
    "DIMS": "dimensions", "MODULE_KW": "'builtin.module'", "FUNC_KW": "'func.func'",
    "VISIBILITY": "visibility", "$END": "end of input",
    "OP_CALL": "operation", "SIGNATURE": "':' and a function type", "ATTR_DICT": "'{'",
    "PROPERTIES": "'<{'",
}


def _terminal_descriptions(lark_parser) -> dict[str, str]:
    out = dict(_FRIENDLY)
    for term in lark_parser.terminals:
        if term.name not in out and term.pattern.type == "str":
            out[term.name] = f"'{term.pattern.value}'"
    return out


def _char_repr(char: str) -> str:
    if char.isprintable() and char != "'":
        return f"'{char}'"
    return repr(char) if char else "end of input"


_NESTING_TOKEN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|//[^\n]*|->|[\[({<]|[\])}>]')


def deep_nesting_position(text: str, threshold: int = 100) -> tuple[int, int, int]:
    """Where ``text`` nests too deeply: (line, column) of the first bracket at depth ``threshold``
    (or of the deepest one, if none is that deep), and the greatest depth. Used only to place
    a RecursionError, so its cost is paid on the error path alone."""
    depth = deepest = 0
    where = at_threshold = 0
    for m in _NESTING_TOKEN.finditer(text):
        c = m.group()[0]
        if c in "[({<":
            depth += 1
            if depth > deepest:
                deepest, where = depth, m.start()
                if depth == threshold:
                    at_threshold = m.start()
        elif c in "])}>":
            depth -= 1
    offset = at_threshold or where
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1, deepest


def _end_position(text: str) -> tuple[int, int]:
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    return line, column


def _as_module(top: Block, resources: dict):
    """The module a file denotes: its single builtin.module, or an implicit one around its ops."""
    from xir.builtin import ModuleOp

    ops = list(top.ops)
    if len(ops) == 1 and isinstance(ops[0], ModuleOp):
        module = ops[0]
        module.detach()
    else:
        module = ModuleOp.build()
        for op in ops:
            op.detach()
            module.body.append(op)
    module.resources = resources
    return module


def _load_lark(builder):
    import os

    import lark

    import xir.grammar
    from xir.lexer import ContextualLexer

    # The grammar sits beside xir/grammar/__init__.py in a checkout and in a wheel alike (a plain
    # path is cheaper to import than importlib.resources, which start-up time notices).
    with open(os.path.join(os.path.dirname(xir.grammar.__file__), "xir.lark"), encoding="utf-8") as f:
        grammar = f.read()
    return lark.Lark(
        grammar, parser="lalr", lexer=ContextualLexer, start=_START_SYMBOLS,
        maybe_placeholders=True, transformer=builder, cache=_cache_path(grammar),
    )


def _cache_path(grammar: str):
    """Where Lark keeps the compiled parse tables: a per-user cache dir, or none if not writable.

    The name only needs to differ between grammars: Lark checks a full hash of the grammar and
    options stored in the file and rebuilds on a mismatch.
    """
    import os
    import zlib

    import lark

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "xir")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    digest = zlib.crc32(grammar.encode()) & 0xFFFFFFFF
    return os.path.join(folder, f"grammar-{digest:08x}-lark{lark.__version__}.lark.cache")


def _shared_parser() -> Parser:
    global _parser
    if _parser is None:
        with _lark_lock:
            if _parser is None:
                _parser = Parser()
    return _parser


_local = threading.local()


def _thread_parser() -> Parser:
    # The builder keeps per-parse state, so each thread gets its own Parser (the first shares).
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _shared_parser() if threading.current_thread() is threading.main_thread() else Parser()
    return parser


def parse(text: str, filename: str = "<stdin>", allow_unregistered: bool = False):
    """Parse a whole file of IR text into its module (a ``builtin.module`` op).

    Raises :class:`~xir.diagnostics.XirError` with a ``file:line:col`` diagnostic on bad input.
    """
    return _thread_parser().parse(text, filename, allow_unregistered)


def parse_type(text: str) -> T.Type:
    """Parse one type, e.g. ``parse_type("tensor<1x3xf32>")``."""
    return _parse_fragment(text, "type_text")


def parse_attribute(text: str) -> A.Attribute:
    """Parse one attribute, e.g. ``parse_attribute("[1, 2]")``."""
    return _parse_fragment(text, "attribute_text")


def _parse_fragment(text: str, start: str):
    parser = _thread_parser()
    parser.builder.reset(False, "<string>")
    try:
        return parser.sub_parse(text, start, None)
    except _ParseError as e:
        raise XirError(Diagnostic(e.message, filename="<string>", line=1, column=1)) from None
