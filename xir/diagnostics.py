"""Diagnostics: errors as values with a location, raised as one exception type, printed once.

A diagnostic prints as ``file:line:col: error: message``, then the source line and a caret under the
column, the way compilers do. Code anywhere in xir raises :class:`XirError`; the command-line tools
catch it at the edge and print it, so a user never sees a Python traceback for a mistake of theirs.
"""

from __future__ import annotations


class SourceFile:
    """The text of one input, by name, so that a diagnostic can quote the offending line."""

    __slots__ = ("name", "text")

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text

    def line_text(self, line: int) -> str | None:
        """The 1-based ``line`` of the text, without its newline, or None past the end."""
        start = 0
        for _ in range(line - 1):
            start = self.text.find("\n", start) + 1
            if start == 0:
                return None
        end = self.text.find("\n", start)
        return self.text[start:] if end < 0 else self.text[start:end]


class Diagnostic:
    """One message about a place in an input: severity, text, and where (all optional but text)."""

    def __init__(self, message: str, severity: str = "error", filename: str | None = None,
                 line: int | None = None, column: int | None = None,
                 source: SourceFile | None = None, notes: list | None = None):
        self.message = message
        self.severity = severity
        self.filename = filename
        self.line = line
        self.column = column
        self.source = source
        self.notes: list[Diagnostic] = [] if notes is None else notes

    def __repr__(self) -> str:
        return f"<Diagnostic {self.header()}>"

    def header(self) -> str:
        """``file:line:col: error: message`` (the parts that are known)."""
        place = ""
        if self.filename is not None:
            place = self.filename
            if self.line is not None:
                place += f":{self.line}:{self.column or 1}"
            place += ": "
        return f"{place}{self.severity}: {self.message}"

    def render(self, show_source: bool = True) -> str:
        """The full text: header, then the quoted source line and a caret, then any notes."""
        out = [self.header()]
        if show_source and self.source is not None and self.line is not None:
            text = self.source.line_text(self.line)
            if text is not None and len(text) <= 400:
                out.append(text)
                out.append(" " * max((self.column or 1) - 1, 0) + "^")
        out.extend(note.render(show_source) for note in self.notes)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.header()


class XirError(Exception):
    """The one exception type for user-facing errors; it carries a :class:`Diagnostic`."""

    def __init__(self, diagnostic: Diagnostic | str):
        if isinstance(diagnostic, str):
            diagnostic = Diagnostic(diagnostic)
        self.diagnostic = diagnostic
        super().__init__(diagnostic.header())


def error_at(location, message: str) -> XirError:
    """An :class:`XirError` placed at an IR location (FileLineColLoc) or nowhere in particular.

    Named locations (``loc("conv1")``) name the user's layer in the message instead.
    """
    from xir.attributes import FileLineColLoc, NameLoc, location_name

    loc = location
    while isinstance(loc, NameLoc) and loc.child is not None and not isinstance(loc, FileLineColLoc):
        loc = loc.child
    if isinstance(loc, FileLineColLoc):
        return XirError(Diagnostic(message, filename=loc.filename, line=loc.line, column=loc.column))
    name = location_name(location)
    if name:
        message = f"{message} (at '{name}')"
    return XirError(Diagnostic(message))


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): how a
    library's multi-line error becomes part of one ``error:`` line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
