"""``--verify-diagnostics``: check the diagnostics a run produced against annotations in its input.

An annotation is a comment that says which diagnostic is expected and on which line, as in MLIR:

    // expected-error {{undefined value}}          this line
    // expected-error @+1 {{undefined value}}      the next line (@-2: two lines up)
    // expected-error @above {{...}}               the nearest line above without an annotation
    // expected-error @below {{...}}               the nearest line below without an annotation
    // expected-error @unknown {{...}}             a diagnostic that has no line
    // expected-warning {{...}}   // expected-note {{...}}   // expected-remark {{...}}

A produced diagnostic matches an annotation of its severity on its line whose text is part of its
message. Every diagnostic must match an annotation and every annotation a diagnostic; each mismatch
is reported as an error, so a run passes only when the two lists agree.
"""

from __future__ import annotations

import re

import attrs

_ANNOTATION = re.compile(
    r"expected-(?P<severity>error|warning|note|remark)"
    r"(?:[ \t]*@(?P<where>[+-][0-9]+|above|below|unknown))?[ \t]*\{\{(?P<message>.*)\}\}")
_MENTION = re.compile(r"expected-(?:error|warning|note|remark)\b")


@attrs.define
class Expected:
    """One annotation: the diagnostic it expects, and where the annotation itself is."""

    severity: str
    message: str
    line: int | None  # None for @unknown
    annotation_line: int
    annotation_column: int
    matched: bool = False


def collect_expectations(text: str, filename: str) -> tuple[list[Expected], list]:
    """The annotations in ``text``, and diagnostics for annotations that are malformed."""
    from xir.diagnostics import Diagnostic, SourceFile

    expected: list[Expected] = []
    problems = []
    pending_below: list[Expected] = []
    last_plain_line = None
    source = None
    for line_no, line in enumerate(text.split("\n"), start=1):
        comment = line.find("//")
        mention = _MENTION.search(line, comment) if comment >= 0 else None
        if mention is None:
            if line.strip():
                for item in pending_below:
                    item.line = line_no
                pending_below = []
                last_plain_line = line_no
            continue
        for m in _MENTION.finditer(line, comment):
            full = _ANNOTATION.match(line, m.start())
            column = m.start() + 1
            if full is None:
                source = source or SourceFile(filename, text)
                problems.append(Diagnostic(
                    "malformed diagnostic annotation: expected 'expected-<severity> [@<where>] {{message}}'",
                    filename=filename, line=line_no, column=column, source=source))
                continue
            message = full.group("message")
            if "}}" in message:  # several annotations on one line: the message ends at the first }}
                message = message[:message.index("}}")]
            item = Expected(full.group("severity"), message, line_no, line_no, column)
            where = full.group("where")
            if where == "unknown":
                item.line = None
            elif where == "above":
                if last_plain_line is None:
                    source = source or SourceFile(filename, text)
                    problems.append(Diagnostic("'@above' has no line above it to refer to",
                                               filename=filename, line=line_no, column=column,
                                               source=source))
                    continue
                item.line = last_plain_line
            elif where == "below":
                pending_below.append(item)
            elif where is not None:
                item.line = line_no + int(where)
            expected.append(item)
        if line[:comment].strip():  # code before the comment: the line itself can be referred to
            last_plain_line = line_no
    for item in pending_below:
        item.line = None
        source = source or SourceFile(filename, text)
        problems.append(Diagnostic("'@below' has no line below it to refer to", filename=filename,
                                   line=item.annotation_line, column=item.annotation_column,
                                   source=source))
        expected.remove(item)
    return expected, problems


def _flatten(diagnostics) -> list:
    out = []
    for d in diagnostics:
        out.append(d)
        out.extend(_flatten(d.notes))
    return out


def check_diagnostics(text: str, filename: str, produced: list) -> list:
    """Match ``produced`` diagnostics against the annotations in ``text``; returns the mismatches
    as error diagnostics (an empty list when everything matched)."""
    from xir.diagnostics import Diagnostic, SourceFile

    expected, problems = collect_expectations(text, filename)
    source = SourceFile(filename, text)
    for diagnostic in _flatten(produced):
        line = diagnostic.line if diagnostic.filename in (filename, None) else None
        found = None
        for item in expected:
            if (not item.matched and item.severity == diagnostic.severity and item.line == line
                    and item.message in diagnostic.message):
                found = item
                break
        if found is not None:
            found.matched = True
            continue
        problems.append(Diagnostic(
            f"unexpected {diagnostic.severity}: {diagnostic.message}",
            filename=diagnostic.filename or filename, line=diagnostic.line,
            column=diagnostic.column, source=diagnostic.source or source))
    for item in expected:
        if not item.matched:
            where = "" if item.line is not None else " (without a location)"
            problems.append(Diagnostic(
                f'expected {item.severity} "{item.message}" was not produced{where}',
                filename=filename, line=item.annotation_line, column=item.annotation_column,
                source=source))
    problems.sort(key=lambda d: (d.line or 0, d.column or 0))
    return problems
