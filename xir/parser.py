"""The parser: text in the grammar of ``grammar/xir.lark`` to IR objects.

Lark's LALR parser calls the builder's methods (the grammar's actions, in :mod:`xir.parse_structure`
and :mod:`xir.parse_attributes`) as it reduces each rule, so operations are built while the text is
read and no parse tree exists. Coarse tokens (a whole type, operand list, function
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
from xir.ir import Block, Operation
from xir.parse_attributes import ValueActions
from xir.parse_structure import StructureActions
from xir.parse_values import ALIAS_USE, TokenError

_START_SYMBOLS = [
    "start", "type_text", "attribute_text", "attr_dict_text", "builtin_type_text", "function_type_text",
    "location_text", "dense_text",
]


class _Builder(StructureActions, ValueActions):
    """The Lark transformer: one method per grammar rule that builds something."""

    def __init__(self, owner: "Parser"):
        self.owner = owner


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
            raise TokenError(tok, "empty operation name is invalid")
        dialect_name, dot, _ = name.partition(".")
        dialect = lookup_dialect(dialect_name) if dot else None
        if dialect is None:
            if allow_unregistered:
                return Operation
            if not dot:
                raise TokenError(tok, f"operation name '{name}' has no dialect prefix")
            raise TokenError(tok, f"operation '{name}' belongs to unregistered dialect "
                                   f"'{dialect_name}' (use --allow-unregistered-dialect)")
        op_class = dialect.op_classes.get(name)
        if op_class is None:
            raise TokenError(tok, f"unknown operation '{name}': dialect '{dialect_name}' has no such op")
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
        return not (builder.type_aliases or builder.attr_aliases) or ALIAS_USE.search(text) is None

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
        except TokenError as e:
            if tok is None or e.token is None:
                raise
            # A token of this sub-parse: its position is relative to ``text``.
            raise TokenError((tok, base + e.token.start_pos + e.at), e.message) from None
        except lark.exceptions.LarkError as e:
            _, _, pos, message = self._describe(e, text)
            raise TokenError((tok, base + pos) if tok is not None else None, message) from None

    # -- parsing -------------------------------------------------------------------------------

    def parse(self, text: str, filename: str, allow_unregistered: bool, open_weights=None):
        import lark

        builder = self.builder
        builder.reset(allow_unregistered, filename, open_weights)
        source = SourceFile(filename, text)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a parse allocates millions of objects and frees none: collecting is pure cost
        try:
            top = self.lark.parse(text, start="start")
        except TokenError as e:
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
            builder.open_weights = None
            if gc_was_enabled:
                gc.enable()
        return _as_module(top, builder.resources)

    def _diagnostic_at(self, e: TokenError, source: SourceFile) -> Diagnostic:
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


def parse(text: str, filename: str = "<stdin>", allow_unregistered: bool = False, open_weights=None):
    """Parse a whole file of IR text into its module (a ``builtin.module`` op).

    ``open_weights(name, filename)`` opens the weights file that the text's ``xir_weights`` index
    names (default :func:`xir.weights.open_weights`: the file ``name`` beside ``filename``); a
    container such as the ``.xmodel`` passes its own, to serve the blobs from one of its sections.
    Raises :class:`~xir.diagnostics.XirError` with a ``file:line:col`` diagnostic on bad input.
    """
    return _thread_parser().parse(text, filename, allow_unregistered, open_weights)


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
    except TokenError as e:
        raise XirError(Diagnostic(e.message, filename="<string>", line=1, column=1)) from None
