"""``xir-opt``: read textual IR, run a pass pipeline over it, print the result (like ``mlir-opt``).

    xir-opt model.xir -p 'canonicalize,cse' -o out.xir
    xir-opt tests.mlir --split-input-file --verify-diagnostics

Exit status is 0 on success and 1 on any error. Errors print as one diagnostic,
``file:line:col: error: message`` with the source line and a caret, never as a Python traceback.
Start-up is kept short: nothing heavier than argparse is imported until it is needed.
"""

from __future__ import annotations

import os
import sys

SPLIT_MARKER = "// -----"
_ENV_DEBUG = "XIR_DEBUG"  # set to 1 to let internal errors raise with their traceback


class _UsageError(Exception):
    """A bad command line (argparse reports through this instead of exiting with status 2)."""


def build_arg_parser(prog: str = "xir-opt"):
    """The argument parser of ``xir-opt`` (``xir opt`` uses it too, under its own ``prog``)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise _UsageError(message)

    class Help(argparse.Action):
        def __init__(self, option_strings, dest, **kwargs):
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

        def __call__(self, parser, namespace, values, option_string=None):
            parser.print_help(sys.stdout)
            sys.stdout.write("\n" + registry_help())
            parser.exit(0)

    p = Parser(prog=prog, add_help=False,
               description="Run a pass pipeline over textual xir IR and print the result.")
    add = p.add_argument
    add("input", nargs="?", default="-", help="input file, or '-' for standard input (default)")
    add("-p", "--pass-pipeline", dest="pipeline", default="", metavar="PIPELINE",
        help="passes to run, e.g. 'canonicalize,cse{opt=v}'")
    add("-o", "--output", default="-", metavar="FILE",
        help="output file (written only on success; default: standard output)")
    add("--inline-weights", action="store_true",
        help="keep all resources in the output text as hex, not large ones in FILE.weights")
    add("--split-input-file", action="store_true",
        help="process each chunk between '// -----' lines on its own")
    add("--verify-diagnostics", action="store_true",
        help="check produced diagnostics against '// expected-error {{...}}' annotations")
    add("--load-plugin", action="append", default=[], metavar="FILE|MODULE",
        help="import a Python file or module that registers dialects or passes (it may define "
             "register(), which is then called); repeatable")
    add("--allow-unregistered-dialect", action="store_true",
        help="accept operations of dialects that are not registered")
    add("--no-verify", action="store_true",
        help="do not verify the input, nor the IR after each pass")
    add("--print-op-generic", action="store_true", help="print every op in the generic form")
    add("--no-locations", action="store_true", help="do not print loc(...) locations")
    add("--print-ir-before", action="append", default=[], metavar="PASS",
        help="print the IR before PASS (repeatable, or comma-separated)")
    add("--print-ir-after", action="append", default=[], metavar="PASS",
        help="print the IR after PASS (repeatable, or comma-separated)")
    add("--print-ir-before-all", action="store_true", help="print the IR before every pass")
    add("--print-ir-after-all", action="store_true", help="print the IR after every pass")
    add("--timing", action="store_true", help="report the time spent in each phase and pass")
    add("-h", "--help", action=Help, help="show this help, the passes and the dialects, and exit")
    return p


def registry_help() -> str:
    """The help text's list of available passes (with their options) and dialects."""
    lines = ["available passes:"]
    try:
        from xir.pass_manager import available_passes, pass_help

        passes = available_passes()
    except ImportError:
        passes = {}
    if not passes:
        lines.append("  (none installed)")
    for name in sorted(passes):
        lines.extend("  " + line for line in pass_help(passes[name]).splitlines())
    lines += ["", "dialects:"]
    from xir.dialect import known_dialects, lookup_dialect

    for name in known_dialects():
        try:
            dialect = lookup_dialect(name)
            summary = (dialect.description or "").strip() if dialect is not None else ""
        except Exception as e:  # a broken third-party plug-in must not break --help
            summary = f"(failed to load: {type(e).__name__}: {e})"
        lines.append(f"  {name:<16} {summary.splitlines()[0] if summary else ''}".rstrip())
    return "\n".join(lines) + "\n"


def load_plugin(spec: str) -> None:
    """Import plug-in ``spec`` (a ``.py`` file or a module name) and call its ``register()``."""
    import importlib
    import importlib.util

    from xir.diagnostics import XirError

    try:
        if spec.endswith(".py"):
            if not os.path.isfile(spec):
                raise XirError(f"cannot load plugin '{spec}': no such file")
            name = "xir_plugin_" + os.path.splitext(os.path.basename(spec))[0]
            module_spec = importlib.util.spec_from_file_location(name, spec)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
        register = getattr(module, "register", None)
        if callable(register):
            register()
    except XirError:
        raise
    except Exception as e:  # the plug-in's own failure: say which, without a traceback
        raise XirError(f"cannot load plugin '{spec}': {type(e).__name__}: {e}") from None


def _check_pass_names(args) -> None:
    """Every pass named by --print-ir-before/after must exist (a typo would silently print nothing)."""
    for flag, values in (("--print-ir-before", args.print_ir_before),
                         ("--print-ir-after", args.print_ir_after)):
        names = _split_names(values)
        if not names:
            continue
        from xir.diagnostics import XirError
        from xir.pass_manager import available_passes, lookup_pass, suggest

        for name in names:
            if lookup_pass(name) is None:
                raise XirError(f"{flag}: unknown pass '{name}'{suggest(name, available_passes())}")


def _split_names(values: list[str]) -> tuple[str, ...]:
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


# -- the command ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None, prog: str = "xir-opt") -> int:
    """Run ``xir-opt`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        args = build_arg_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
        args.prog = prog
        return run(args)
    except _UsageError as e:
        sys.stderr.write(f"{prog}: error: {e}\n")
        return 1
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: error: interrupted\n")
        return 1
    except BrokenPipeError:  # the reader went away (xir-opt ... | head): stop quietly
        silence_stdout()
        return 1


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit cannot fail on a closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run(args) -> int:
    """The work of ``xir-opt`` for parsed arguments ``args``; returns the exit status."""
    from xir.diagnostics import XirError

    name = "<stdin>" if args.input == "-" else args.input
    pipeline = None
    try:
        for plugin in args.load_plugin:
            load_plugin(plugin)
        if args.pipeline.strip():
            from xir.pass_manager import parse_pipeline

            pipeline = parse_pipeline(args.pipeline)
        _check_pass_names(args)
        text = read_input(args.input, name)
    except XirError as e:
        if e.diagnostic.filename is None:
            e.diagnostic.filename = getattr(args, "prog", "xir-opt")
        _report(e.diagnostic)
        return 1
    from xir.tools.model_io import warnings_as_lines

    chunks = split_chunks(text) if args.split_input_file else [(text, 1)]
    ok = True
    outputs = []
    for chunk, first_line in chunks:
        padded = "\n" * (first_line - 1) + chunk  # so that positions are lines of the whole file
        with warnings_as_lines(name):
            output, diagnostics = process_chunk(padded, name, args, pipeline)
        if args.verify_diagnostics:
            from xir.tools.verify_diagnostics import check_diagnostics

            diagnostics = check_diagnostics(padded, name, diagnostics)
        for diagnostic in diagnostics:
            _report(diagnostic)
        ok = ok and not diagnostics
        if output is not None:
            outputs.append(output)
    try:
        if args.output == "-":
            sys.stdout.write(f"{SPLIT_MARKER}\n".join(o.text for o in outputs))
            sys.stdout.flush()
        elif ok and len(outputs) == 1:
            outputs[0].write(args.output)  # with its weights file, if it has one
        elif ok:
            from xir.files import write_atomically

            write_atomically(args.output, f"{SPLIT_MARKER}\n".join(o.text for o in outputs))
    except BrokenPipeError:
        raise
    except OSError as e:
        where = "<stdout>" if args.output == "-" else args.output
        sys.stderr.write(f"{where}: error: cannot write output: {_os_reason(e)}\n")
        return 1
    return 0 if ok else 1


def process_chunk(text: str, name: str, args, pipeline) -> tuple[object, list]:
    """Parse, verify, transform and print one input; returns (output or None, diagnostics).

    The output is an :class:`xir.weights.ModuleOutput`: its text, and its weights file when the
    result goes to a file of its own (the input is not split) and has large resources."""
    from xir.diagnostics import Diagnostic, SourceFile, XirError

    source = SourceFile(name, text)
    timer = _Timer(args.timing)
    try:
        with timer("Parser"):
            from xir.parser import parse

            module = parse(text, name, args.allow_unregistered_dialect)
        if not args.no_verify and pipeline is None:  # the pass manager verifies its input itself
            with timer("(V) verifier"):
                from xir.verifier import verify

                verify(module)
        if pipeline is not None:
            pm = _pass_manager(pipeline, args)
            try:
                pm.run(module)
            finally:
                timer.phases.extend(pm.times)
        with timer("Output"):
            from xir.weights import prepare_output

            inline = args.inline_weights or args.split_input_file
            output = prepare_output(module, args.output, inline, generic=args.print_op_generic,
                                    print_locations=not args.no_locations)
        timer.report(name)
        return output, []
    except XirError as e:
        diagnostic = e.diagnostic
    except RecursionError:
        from xir.parser import deep_nesting_position

        line, column, depth = deep_nesting_position(text)
        diagnostic = Diagnostic(f"input is nested too deeply to process ({depth} levels of brackets)",
                                filename=name, line=line, column=column)
    except MemoryError:
        diagnostic = Diagnostic("out of memory while processing the input")
    except Exception as e:
        if os.environ.get(_ENV_DEBUG):
            raise
        diagnostic = Diagnostic(f"internal error: {type(e).__name__}: {e} (please report this; "
                                f"set {_ENV_DEBUG}=1 to see the traceback)")
    if diagnostic.filename is None:
        diagnostic.filename = name
    if diagnostic.source is None and diagnostic.filename == name:
        diagnostic.source = source
    return None, [diagnostic]


def _pass_manager(pipeline, args):
    from xir.pass_manager import PassManager

    return PassManager(
        pipeline, verify_each=not args.no_verify, timing=args.timing,
        print_before=_split_names(args.print_ir_before), print_after=_split_names(args.print_ir_after),
        print_before_all=args.print_ir_before_all, print_after_all=args.print_ir_after_all,
        print_stream=sys.stderr, print_generic=args.print_op_generic,
    )


class _Timer:
    """Wall-clock time per phase of one input, reported on stderr when ``--timing`` is given."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.phases: list[tuple[str, float]] = []

    def __call__(self, phase: str):
        import contextlib
        import time

        @contextlib.contextmanager
        def measure():
            start = time.perf_counter()
            try:
                yield
            finally:
                self.phases.append((phase, time.perf_counter() - start))

        return measure()

    def report(self, name: str) -> None:
        """Print the phases in mlir-opt's ``-mlir-timing`` layout."""
        if not self.enabled:
            return
        rule = "===" + "-" * 73 + "==="
        total = sum(t for _, t in self.phases) or 1e-12
        lines = [rule, "... Execution time report ...".center(len(rule)).rstrip(), rule,
                 f"  Total Execution Time: {total:.4f} seconds ({name})", "",
                 "  ----Wall Time----  ----Name----"]
        for phase, seconds in self.phases + [("Total", total)]:
            lines.append(f"  {seconds:8.4f} ({100 * seconds / total:5.1f}%)  {phase}")
        sys.stderr.write("\n".join(lines) + "\n")


# -- input and output ----------------------------------------------------------------------------


def read_input(path: str, name: str) -> str:
    """The text of input ``path`` ('-' is stdin), decoded as UTF-8; XirError if it cannot be."""
    from xir.diagnostics import Diagnostic, XirError

    try:
        if path == "-":
            if sys.stdin is None:  # started with stdin closed
                raise XirError(Diagnostic("cannot read input: standard input is closed", filename=name))
            data = sys.stdin.buffer.read()
        else:
            if os.path.isdir(path):
                raise XirError(Diagnostic("cannot read input: it is a directory", filename=name))
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise XirError(Diagnostic(f"cannot read input: {_os_reason(e)}", filename=name)) from None
    except MemoryError:
        raise XirError(Diagnostic("cannot read input: it does not fit in memory", filename=name)) from None
    return decode_utf8(data, name)


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as text; invalid UTF-8 is an error naming the line, column and byte offset."""
    from xir.diagnostics import Diagnostic, SourceFile, XirError

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise XirError(Diagnostic("input is UTF-16 (xir reads UTF-8)", filename=name, line=1, column=1))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        line = data.count(b"\n", 0, e.start) + 1
        column = len(data[line_start:e.start].decode("utf-8", errors="replace")) + 1
        line_end = data.find(b"\n", e.start)
        line_text = data[line_start:len(data) if line_end < 0 else line_end]
        source = SourceFile(name, "\n" * (line - 1) + line_text.decode("utf-8", errors="replace"))
        message = (f"input is not valid UTF-8: invalid byte 0x{data[e.start]:02x} "
                   f"at byte offset {e.start}")
        raise XirError(Diagnostic(message, filename=name, line=line, column=column,
                                  source=source)) from None


def split_chunks(text: str) -> list[tuple[str, int]]:
    """``text`` cut at lines ``// -----``, as (chunk, line number of its first line) pairs."""
    chunks = []
    current: list[str] = []
    first = 1
    for line_no, line in enumerate(text.split("\n"), start=1):  # lines as the parser counts them
        stripped = line.strip()
        if stripped.startswith(SPLIT_MARKER) and not stripped[len(SPLIT_MARKER):].strip("-"):
            chunks.append(("\n".join(current) + "\n" if current else "", first))
            current = []
            first = line_no + 1
        else:
            current.append(line)
    chunks.append(("\n".join(current), first))
    return chunks


def _os_reason(e: OSError) -> str:
    return e.strerror.lower() if e.strerror else str(e)


# Control characters of the input would reach the terminal through quoted source lines (an escape
# sequence in binary garbage can rewrite the screen); each becomes one '?' so carets stay aligned.
_CONTROLS = {c: "?" for c in [*range(0, 9), *range(11, 32), *range(127, 160)]}


def _report(diagnostic) -> None:
    sys.stderr.write(diagnostic.render().translate(_CONTROLS) + "\n")


if __name__ == "__main__":
    sys.exit(main())
