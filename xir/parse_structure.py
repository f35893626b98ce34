"""The grammar's actions for the structure of IR: operations, regions, blocks, names and scopes.

Lark's LALR parser calls these methods as it reduces each rule. ``region_open`` and ``block_header``
are reduced as soon as they are seen, so the current block is known before any op inside it is built;
each op is appended to it as it is reduced. A region opens a scope of value names; a use of a name not
yet defined gets a typed placeholder that its definition replaces.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.ir import Block, Operation, OpResult, Region, Value
from xir.parse_values import (OPERAND_RE, STRING_RE, TokenError, entries_dict, symbol_ref, unquote,
                              unquote_text)


_WEIGHTS_KEY = "xir_weights"  # xir.weights.SECTION_KEY (that module is imported only when needed)


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


class StructureActions:
    """The grammar's actions for operations, regions, blocks, the pretty forms and the top level.

    A mixin of the parser's builder: ``self.owner`` is the :class:`~xir.parser.Parser`.
    """

    # -- state for one parse -------------------------------------------------------------------

    def reset(self, allow_unregistered: bool, filename: str, open_weights=None):
        self.allow_unregistered = allow_unregistered
        self.filename = filename
        self.open_weights = open_weights  # None: xir.weights.open_weights (a file beside the text)
        self.scope = _Scope(None, None)
        self.scope.block = Block()
        self.type_aliases: dict[str, T.Type] = {}
        self.attr_aliases: dict[str, A.Attribute] = {}
        self.resources: dict[str, A.ResourceHandle] = {}
        self.pending_entry_args = None
        self.op_classes: dict[str, type] = {}  # op name -> class, for this parse (the registry may change)

    # -- operations ----------------------------------------------------------------------------

    def generic_op(self, c):
        results_tok, (name_tok, operands), successors, props, regions, attrs, ftype, loc = c
        end = name_tok.index('"', 1)
        name = name_tok[1:end]
        if "\\" in name:  # an escape, perhaps of a quote: read the literal properly
            name = unquote_text(f'"{STRING_RE.match(name_tok).group(1)}"', name_tok)
        op_class = self.op_classes.get(name)
        if op_class is None:
            op_class = self.op_classes[name] = self.owner.op_class(name, name_tok, self.allow_unregistered)
        if len(operands) != len(ftype.inputs):
            raise TokenError(name_tok, f"expected {len(operands)} operand type"
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
        first = results_tok or name_tok
        op.position = (self.filename, first.line, first.column)
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
                raise TokenError(where, f"result number {index} of '{name}' is out of range "
                                         f"(it has {len(group)} results)")
            else:
                v = group[index]
            if v.type is not t and v.type != t:
                raise TokenError(where, f"use of value '{name}' expects different type than prior "
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
            raise TokenError(tok, f"redefinition of SSA value '{name}'")
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
                raise TokenError(tok, f"result number {index} of '{name}' is out of range "
                                       f"(it has {len(values)} results)")
            if placeholder.type != values[index].type:
                raise TokenError(tok, f"use of value '{name}' expects different type than prior "
                                       f"uses: '{placeholder.type}' vs '{values[index].type}'")
            placeholder.replace_all_uses_with(values[index])

    def _define_results(self, tok, results: list[OpResult]) -> None:
        if len(results) == 1 and "," not in tok and ":" not in tok:  # `%x =`, the common case
            self._define(tok[:-1].rstrip(), results, tok)
            return
        groups = []
        for part in tok[:-1].split(","):
            name, _, count = part.strip().partition(":")
            groups.append((name.strip(), int(count) if count else 1))
        total = sum(n for _, n in groups)
        if total != len(results):
            raise TokenError(tok, f"operation defines {len(results)} results but was provided "
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
                for m in OPERAND_RE.finditer(tok, start)]

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
        return entries_dict(c)

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
                raise TokenError(label, f"reference to an undefined block '{label}'")
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
            raise TokenError(label, f"redefinition of block '{name}'")
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

        op = ModuleOp.build(region=region, sym_name=None if sym is None else symbol_ref(sym).root,
                            attributes=attrs, location=None if loc is None else self.owner.location(loc))
        op.position = (self.filename, kw.line, kw.column)
        self.scope.block.append(op)
        return op

    def func_args(self, c):
        args = [a for a in c if a is not None]
        named = [a for a in args if a[0] is not None]
        if named and len(named) != len(args):
            raise TokenError(named[0][0], "expected all function arguments to be named or none")
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
            raise TokenError(kw, "a function with a body must name its arguments")
        op = op_class.from_signature(
            name=symbol_ref(sym).root,
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
            raise TokenError(name, f"redefinition of type alias '{name}'")
        self.type_aliases[str(name)] = t

    def attr_alias_def(self, c):
        name, a = c
        if str(name) in self.attr_aliases:
            raise TokenError(name, f"redefinition of attribute alias '{name}'")
        self.attr_aliases[str(name)] = a

    def resource_section(self, c):
        return [g for g in c if g is not None]

    def resource_group(self, c):
        return (c[0], [d for d in c[1:] if d is not None])

    def resource_dialect(self, c):
        return (c[0], [e for e in c[1:] if e is not None])

    def resource_entry(self, c):
        key, value = c
        return (unquote(key), value)

    def start(self, c):
        top = self.scope
        if top.forward:
            name, (_, tok) = next(iter(top.forward.items()))
            raise TokenError(tok, f"use of undeclared SSA value name '{name}'")
        section = c[-1]
        if section is not None:
            self._load_resources(section)
        return top.block

    def resource_bool(self, c):
        return c[0]

    def _load_resources(self, section) -> None:
        listed = {}  # the module keeps its resources in the order of the section, as it prints them
        for group, dialects in section:
            for dialect, entries in dialects:
                if group == "dialect_resources":
                    self._load_inline(entries, listed)
                elif group == "external_resources" and dialect == _WEIGHTS_KEY:
                    self._load_weights(dialect, entries, listed)
                # other external resources are kept by their owners, not here
        listed.update(self.resources)
        self.resources = listed

    def _listed_handle(self, key: str, listed: dict) -> A.ResourceHandle:
        handle = self.resources.get(key)
        if handle is None:
            handle = self.resources[key] = A.ResourceHandle(key)
        listed[key] = handle
        return handle

    def _load_inline(self, entries, listed: dict) -> None:
        for key, value in entries:
            handle = self._listed_handle(key, listed)
            if value.type != "STRING" or not value.startswith('"0x'):
                raise TokenError(value, f"resource '{key}' must be a hex string \"0x...\"")
            try:
                blob = bytes.fromhex(value[3:-1])
            except ValueError:
                raise TokenError(value, f"resource '{key}' is not valid hexadecimal") from None
            if len(blob) < 4:
                raise TokenError(value, f"resource '{key}' lacks its 4-byte alignment header")
            handle.alignment = int.from_bytes(blob[:4], "little")
            handle.data = blob[4:]

    def _load_weights(self, dialect_tok, entries, listed: dict) -> None:
        """Index the resources of the weights file named by ``entries``; their data stays on disk
        until it is used (:mod:`xir.weights`)."""
        from xir import weights as W

        meta = {key: value for key, value in entries if key in W.RESERVED}
        for key in ("file", "id"):
            if key not in meta:
                raise TokenError(dialect_tok, f"'{dialect_tok}' lacks its '{key}' entry")
        try:
            weights = (self.open_weights or W.open_weights)(unquote(meta["file"]), self.filename)
        except W.WeightsError as e:
            raise TokenError(meta["file"], str(e)) from None
        try:
            weights.check_id(unquote(meta["id"]))
        except W.WeightsError as e:
            raise TokenError(meta["id"], str(e)) from None
        for key, value in entries:
            if key in W.RESERVED:
                continue
            try:
                offset, size, alignment = W.parse_entry(key, unquote(value))
                weights.check_blob(key, offset, size)
            except W.WeightsError as e:
                raise TokenError(value, str(e)) from None
            self._listed_handle(key, listed).defer(weights.loader(offset, size), alignment)
