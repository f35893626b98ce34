"""A contextual lexer for Lark's LALR parser, shaped for xir's grammar.

Like Lark's own contextual lexer, it matches only the terminals the parser can accept in its current
state. It differs in what costs time: one regular-expression match per token (the whitespace and
comments before a token are skipped by the same match, possessively, so a failed match never
backtracks into them), a scanner per state built on first use instead of all at start-up, and
tokens built without Lark's general-purpose constructor. Terminals, their order and the ignored
patterns all come from the grammar.
"""

from __future__ import annotations

import re

from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from lark.lexer import Lexer, Token

_new_str = str.__new__


def make_token(type_: str, value: str, pos: int, line: int, column: int) -> Token:
    """A Lark token with its position (the fields the parser and diagnostics read)."""
    tok = _new_str(Token, value)
    tok.type = type_
    tok.value = value
    tok.start_pos = pos
    tok.line = line
    tok.column = column
    tok.end_line = tok.end_column = tok.end_pos = None
    return tok


class _Scanner:
    """The compiled alternation of the terminals one parser state accepts."""

    __slots__ = ("regex", "group_types", "keywords")

    def __init__(self, terminals, skip: str):
        # Lark's order: higher priority first, then longer patterns, so regexes precede keywords.
        ordered = sorted(terminals, key=lambda t: (-t.priority, -t.pattern.max_width,
                                                   -len(t.pattern.value), t.name))
        alternatives = [f"(?P<T{i}>{t.pattern.to_regexp()})" for i, t in enumerate(ordered)]
        # A state that accepts only the end of input gets a pattern that never matches.
        self.regex = re.compile(f"(?:{skip})*+(?:{'|'.join(alternatives) or '(?!)'})")
        self.group_types = {f"T{i}": t.name for i, t in enumerate(ordered)}
        # A keyword accepted here that a regex terminal also matches is lexed as the keyword.
        self.keywords = {t.pattern.value: t.name for t in ordered if t.pattern.type == "str"}


class ContextualLexer(Lexer):
    """Lark custom lexer (``lexer=ContextualLexer``) that reads the parser state for context."""

    __future_interface__ = 2

    def __init__(self, conf):
        self.terminals = {t.name: t for t in conf.terminals}
        self.ignore = [self.terminals[n].pattern.to_regexp() for n in conf.ignore]
        self.skip = "|".join(f"(?:{p})" for p in self.ignore)
        self.skip_only = re.compile(f"(?:{self.skip})*+\\Z")
        self.by_state: dict[int, _Scanner] = {}
        self.by_terminals: dict[frozenset, _Scanner] = {}
        self.everything: _Scanner | None = None

    def _scanner(self, parser_state) -> _Scanner:
        position = parser_state.position
        names = frozenset(n for n in parser_state.parse_conf.states[position] if n in self.terminals)
        scanner = self.by_terminals.get(names)
        if scanner is None:
            scanner = self.by_terminals[names] = _Scanner([self.terminals[n] for n in names], self.skip)
        self.by_state[position] = scanner
        return scanner

    def lex(self, lexer_state, parser_state):
        text_slice = lexer_state.text
        text = text_slice.text
        pos, end = text_slice.start, text_slice.end
        line, line_start = 1, pos
        by_state = self.by_state
        while True:
            scanner = by_state.get(parser_state.position) or self._scanner(parser_state)
            m = scanner.regex.match(text, pos, end)
            if m is None:
                if self.skip_only.match(text, pos, end):
                    return
                raise self._error(text, pos, end, line, line_start, scanner, parser_state)
            group = m.lastgroup
            start = m.start(group)
            newlines = text.count("\n", pos, start)
            if newlines:
                line += newlines
                line_start = text.rfind("\n", pos, start) + 1
            value = m.group(group)
            type_ = scanner.group_types[group]
            if value in scanner.keywords:
                type_ = scanner.keywords[value]
            token = make_token(type_, value, start, line, start - line_start + 1)
            lexer_state.last_token = token
            pos = m.end()
            if "\n" in value:
                line += value.count("\n")
                line_start = text.rfind("\n", start, pos) + 1
            yield token

    def _error(self, text, pos, end, line, line_start, scanner, parser_state):
        """UnexpectedToken if some terminal of the grammar matches here, else UnexpectedCharacters."""
        skipped = re.compile(f"(?:{self.skip})*+").match(text, pos, end).end()
        newlines = text.count("\n", pos, skipped)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", pos, skipped) + 1
        column = skipped - line_start + 1
        expected = set(scanner.group_types.values())
        if self.everything is None:
            self.everything = _Scanner(self.terminals.values(), self.skip)
        m = self.everything.regex.match(text, skipped, end)
        if m is not None:
            value = m.group(m.lastgroup)
            type_ = self.everything.keywords.get(value) or self.everything.group_types[m.lastgroup]
            token = make_token(type_, value, skipped, line, column)
            return UnexpectedToken(token, expected, state=parser_state)
        return UnexpectedCharacters(text, skipped, line, column, allowed=expected)
