"""Passes, the pass registry, pipeline strings and the pass manager.

A pass is an ``attrs`` frozen class with a ``name`` and typed options (int, float, bool, str) that
all have defaults, so ``name{opt=v}`` in a pipeline, the defaults and the ``--help`` text come from
the class itself::

    @register_pass
    @attrs.frozen
    class Canonicalize(Pass):
        '''Simplify IR with folders and canonicalization patterns.'''
        name = "canonicalize"
        max_iterations: int = option(10, "sweeps before giving up")

        def run(self, module): ...

Passes are found by name: those registered in-process with :func:`register_pass`, then those named
by the entry-point group ``xir.passes`` (xir's own passes are listed there too, exactly like a
third party's). A pass's module is imported only when the pass is first named.
"""

from __future__ import annotations

import copy
import difflib
import sys
import time
import warnings
from typing import ClassVar

import attrs

from xir.diagnostics import XirError
from xir.ir import Operation

ENTRY_POINT_GROUP = "xir.passes"
OPTION_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


class Pass:
    """Base of every pass. Module passes override :meth:`run`; operation passes set ``op_name``
    and override :meth:`run_on_operation`, which runs on each op of that name in the module."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    op_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("summary"):
            doc = (cls.__dict__.get("__doc__") or "").strip()
            cls.summary = doc.splitlines()[0] if doc else ""

    def run(self, module: Operation) -> None:
        """Transform ``module`` in place (raise :class:`XirError` on failure)."""
        if self.op_name is None:
            raise NotImplementedError(f"pass '{self.name}' defines neither run nor op_name")
        for op in [op for op in module.walk() if op.name == self.op_name]:
            self.run_on_operation(op)

    def run_on_operation(self, op: Operation) -> None:
        """Transform one op named ``op_name`` (operation passes only)."""
        raise NotImplementedError

    def pipeline_text(self) -> str:
        """This pass as pipeline text, ``name{opt=v}`` with the options that differ from defaults."""
        changed = [f"{o.name}={_format_value(getattr(self, o.field))}" for o in pass_options(type(self))
                   if getattr(self, o.field) != o.default]
        return self.name + ("{" + " ".join(changed) + "}" if changed else "")


def option(default, help: str = "", validator=None):
    """Declare a pass option with its default and a one-line help text."""
    return attrs.field(default=default, validator=validator, metadata={"help": help})


@attrs.frozen
class PassOption:
    """One option of a pass: its name in pipelines (dashes), field name, type, default and help."""

    name: str
    field: str
    type: type
    default: object
    help: str


def pass_options(cls: type[Pass]) -> list[PassOption]:
    """The options of pass class ``cls``, in declaration order."""
    if not attrs.has(cls):
        return []
    names = {"int": int, "float": float, "bool": bool, "str": str}
    return [PassOption(f.name.replace("_", "-"), f.name, names.get(f.type, f.type), f.default,
                       f.metadata.get("help", "")) for f in attrs.fields(cls)]


def pass_help(cls: type[Pass]) -> str:
    """A help entry for ``cls``: its name and summary, one line per option, then the class's
    ``help_details`` text, if it has one."""
    lines = [f"{cls.name}  {cls.summary}".rstrip()]
    for o in pass_options(cls):
        lines.append(f"    {o.name}={OPTION_TYPES[o.type]} (default {_format_value(o.default)})"
                     + (f"  {o.help}" if o.help else ""))
    details = getattr(cls, "help_details", "")  # a pass's longer help (e.g. fuse's rule table)
    lines.extend(f"    {line}".rstrip() for line in details.splitlines())
    return "\n".join(lines)


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (not value or any(c in value for c in " {},'\"")):
        return '"' + value + '"'
    return str(value)


# -- the registry ------------------------------------------------------------------------------

_passes: dict[str, type[Pass]] = {}
_entry_points: dict | None = None


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Make pass class ``cls`` known by its ``name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Pass)) or not cls.name:
        raise TypeError(f"{cls!r} is not a Pass subclass with a name")
    if attrs.has(cls):
        try:
            attrs.resolve_types(cls)
        except NameError:  # an annotation only a type checker sees; the plain names still map
            pass
        for o in pass_options(cls):
            if o.type not in OPTION_TYPES or o.default is attrs.NOTHING:
                raise TypeError(f"pass '{cls.name}': option '{o.field}' must be an int, float, "
                                f"bool or str with a default")
    _passes[cls.name] = cls
    return cls


def _discover(refresh: bool = False) -> dict:
    global _entry_points
    if _entry_points is None or refresh:
        from importlib.metadata import entry_points

        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points


def lookup_pass(name: str) -> type[Pass] | None:
    """The pass class called ``name``, loading it through its entry point on first use."""
    cls = _passes.get(name)
    if cls is not None:
        return cls
    # A miss rescans: a package may have been installed (or put on sys.path) since the last scan.
    ep = _discover().get(name) or _discover(refresh=True).get(name)
    if ep is None:
        return None
    try:
        cls = ep.load()
    except Exception as e:
        raise XirError(f"cannot load pass '{name}' ({ep.value}): {type(e).__name__}: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Pass)) or cls.name != name:
        raise XirError(f"entry point '{name}' in group {ENTRY_POINT_GROUP} ({ep.value}) is not "
                       f"a Pass subclass named '{name}'")
    return register_pass(cls)


def available_passes() -> dict[str, type[Pass]]:
    """Every known pass by name, sorted (loads all of them; a pass that fails to load is skipped
    with a warning)."""
    found = {}
    for name in sorted(set(_passes) | set(_discover())):
        try:
            cls = lookup_pass(name)
        except XirError as e:
            warnings.warn(e.diagnostic.message, stacklevel=2)
            continue
        if cls is not None:
            found[name] = cls
    return found


def suggest(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_pipeline(text: str) -> list[Pass]:
    """The passes of a pipeline string ``a,b{opt=1 other=x}``; errors point into the string."""
    from xir.pipeline import PipelineParser

    return PipelineParser(text).parse()


# -- the pass manager --------------------------------------------------------------------------


class PassManager:
    """Runs passes on a module, verifying the IR before and after each one, timing each, and
    printing the IR before or after the passes named in ``print_before`` / ``print_after`` (or
    all of them) to ``print_stream`` (stderr by default)."""

    def __init__(self, passes, verify_each=True, timing=False, print_before=(), print_after=(),
                 print_before_all=False, print_after_all=False, print_stream=None,
                 print_generic=False):
        self.passes: list[Pass] = parse_pipeline(passes) if isinstance(passes, str) else list(passes)
        self.verify_each = verify_each
        self.timing = timing  # the caller prints timing_report(); times are always recorded
        self.print_before, self.print_after = set(print_before), set(print_after)
        self.print_before_all, self.print_after_all = print_before_all, print_after_all
        self.print_stream = print_stream
        self.print_generic = print_generic
        self.times: list[tuple[str, float]] = []
        self.total_time = 0.0

    def run(self, module: Operation) -> None:
        """Run every pass on ``module`` in order; raises :class:`XirError` on the first failure."""
        from xir.verifier import verify

        self.times, verify_time, start = [], 0.0, time.perf_counter()
        try:
            if self.verify_each:
                verify(module)
                verify_time = time.perf_counter() - start
            for p in self.passes:
                if self.print_before_all or p.name in self.print_before:
                    self._dump("Before", p, module)
                began = time.perf_counter()
                p.run(module)
                self.times.append((p.name, time.perf_counter() - began))
                if self.verify_each:
                    began = time.perf_counter()
                    try:
                        verify(module)
                    except XirError as e:
                        d = copy.copy(e.diagnostic)
                        d.message = f"IR is invalid after pass '{p.name}': {d.message}"
                        raise XirError(d) from e
                    verify_time += time.perf_counter() - began
                if self.print_after_all or p.name in self.print_after:
                    self._dump("After", p, module)
        finally:
            if self.verify_each:
                self.times.append(("(V) verifier", verify_time))
            self.total_time = time.perf_counter() - start

    def _dump(self, when: str, p: Pass, module: Operation) -> None:
        from xir.printer import print_ir

        stream = self.print_stream or sys.stderr
        stream.write(f"// -----// IR Dump {when} {p.name} //----- //\n")
        stream.write(print_ir(module, generic=self.print_generic))
        stream.write("\n")
        stream.flush()

    def timing_report(self) -> str:
        """The wall time of each pass (and of verification) and the total, as mlir-opt prints it."""
        rule = "===" + "-" * 73 + "==="
        total = self.total_time or 1e-12
        lines = [rule, "... Execution time report ...".center(len(rule)).rstrip(), rule,
                 f"  Total Execution Time: {self.total_time:.4f} seconds", "",
                 "  ----Wall Time----  ----Name----"]
        for name, seconds in self.times + [("Total", self.total_time)]:
            lines.append(f"  {seconds:8.4f} ({100 * seconds / total:5.1f}%)  {name}")
        return "\n".join(lines) + "\n"
