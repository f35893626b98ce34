"""The pipeline-string parser: ``canonicalize{max-iterations=4 fold=false},cse`` to pass objects.

Passes are separated by commas; options go in braces after a pass name, separated by spaces, as
``name=value`` with dashes in names (``max-iterations`` sets the field ``max_iterations``). A value
is a bare word or a quoted string; a bool option may be written bare (``fold``) to mean true.
Every error is an :class:`XirError` placed at ``<pipeline>:1:<column>`` of the problem.
"""

from __future__ import annotations

import re

from xir.diagnostics import Diagnostic, SourceFile, XirError
from xir.pass_manager import Pass, available_passes, lookup_pass, pass_options, suggest

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_WORD = re.compile(r"[^\s{},]+")
_BOOLS = {"true": True, "1": True, "false": False, "0": False}
_EXPECTS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


class PipelineParser:
    """Parses one pipeline string; :meth:`parse` returns the configured passes."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int | None = None) -> XirError:
        """An error at character ``pos`` (0-based; the current position by default)."""
        column = (self.pos if pos is None else pos) + 1
        return XirError(Diagnostic(message, filename="<pipeline>", line=1, column=column,
                                   source=SourceFile("<pipeline>", self.text)))

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _found(self) -> str:
        char = self._peek()
        return f"'{char}'" if char else "end of pipeline"

    def _match(self, pattern: re.Pattern) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def parse(self) -> list[Pass]:
        """All passes of the pipeline (none for an empty or blank string)."""
        passes = []
        self._skip_space()
        if not self._peek():
            return passes
        while True:
            passes.append(self._pass())
            self._skip_space()
            if not self._peek():
                return passes
            if self._peek() != ",":
                raise self.error(f"expected ',' or end of pipeline, found {self._found()}")
            self.pos += 1
            self._skip_space()

    def _pass(self) -> Pass:
        start = self.pos
        name = self._match(_NAME)
        if name is None:
            raise self.error(f"expected a pass name, found {self._found()}")
        cls = lookup_pass(name)
        if cls is None:
            raise self.error(f"unknown pass '{name}'{suggest(name, available_passes())}", start)
        self._skip_space()
        values = self._options(cls) if self._peek() == "{" else {}
        try:
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise self.error(f"invalid options for pass '{name}': {e}", start) from None

    def _options(self, cls: type[Pass]) -> dict:
        opening = self.pos
        self.pos += 1
        options = {o.name: o for o in pass_options(cls)}
        values = {}
        while True:
            self._skip_space()
            if self._peek() == "}":
                self.pos += 1
                return values
            if not self._peek():
                raise self.error(f"expected '}}' to close the options of pass '{cls.name}' "
                                 f"opened at column {opening + 1}")
            start = self.pos
            key = self._match(_NAME)
            if key is None:
                raise self.error(f"expected an option name or '}}', found {self._found()}")
            option = options.get(key)
            if option is None:
                raise self.error(f"unknown option '{key}' for pass '{cls.name}'"
                                 f"{suggest(key, options)}", start)
            if option.field in values:
                raise self.error(f"option '{key}' of pass '{cls.name}' is given twice", start)
            values[option.field] = self._value(cls, option)

    def _value(self, cls: type[Pass], option):
        if self._peek() != "=":
            if option.type is bool:
                return True
            raise self.error(f"expected '=' and a value after option '{option.name}'")
        self.pos += 1
        start = self.pos
        quote = self._peek()
        if quote in ("'", '"'):
            end = self.text.find(quote, start + 1)
            if end < 0:
                raise self.error("unterminated string", start)
            self.pos = end + 1
            text = self.text[start + 1:end]
        else:
            text = self._match(_WORD)
            if text is None:
                raise self.error(f"expected a value for option '{option.name}', found {self._found()}")
        try:
            if option.type is bool:
                return _BOOLS[text.lower()]
            return option.type(text)
        except (KeyError, ValueError):
            raise self.error(f"option '{option.name}' of pass '{cls.name}' expects "
                             f"{_EXPECTS[option.type]}, got '{text}'", start) from None
