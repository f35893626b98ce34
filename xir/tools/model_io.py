"""Shared plumbing of the model subcommands (``xir import``, ``xir export``, ``xir run``).

Each command is a function ``work(args, timer) -> int`` wrapped by :func:`command`, which turns
any :class:`~xir.diagnostics.XirError` (or unexpected failure) into ONE line
``<prog>: error: <message>`` on stderr and exit status 1. Output files are written through
:func:`xir.files.write_atomically`, so a failed command leaves no partial output.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from xir.tools.opt import _ENV_DEBUG, _os_reason, _Timer, _UsageError, silence_stdout


def arg_parser(prog: str, description: str):
    """An argparse parser whose usage errors raise instead of exiting (with ``--timing``)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise _UsageError(message)

    p = Parser(prog=prog, description=description)
    p.add_argument("--timing", action="store_true", help="report the time spent in each phase")
    return p


def command(parser, work, argv) -> int:
    """Parse ``argv`` with ``parser`` and run ``work(args, timer)``; errors become one line."""
    from xir.diagnostics import XirError

    prog = parser.prog
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        timer = _Timer(args.timing)
        code = work(args, timer)
        timer.report(getattr(args, "input", prog))
        return code
    except _UsageError as e:
        message = str(e)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except XirError as e:
        message = e.diagnostic.header()
        if message.startswith("error: "):
            message = message[len("error: "):]
        else:  # a positioned diagnostic: keep its 'file:line:col: error:' header as is
            sys.stderr.write(one_line(message) + "\n")
            return 1
    except OSError as e:
        message = f"{getattr(e, 'filename', None) or 'output'}: {_os_reason(e)}"
    except KeyboardInterrupt:
        message = "interrupted"
    except BrokenPipeError:
        silence_stdout()
        return 1
    except Exception as e:
        if os.environ.get(_ENV_DEBUG):
            raise
        message = (f"internal error: {type(e).__name__}: {e} (please report this; "
                   f"set {_ENV_DEBUG}=1 to see the traceback)")
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    return 1


@contextlib.contextmanager
def warnings_as_lines(where: str):
    """Python warnings raised inside become one ``where: warning: message`` line each on
    stderr (printed when the block ends), not Python's two-line format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        sys.stderr.write(f"{where}: warning: {' '.join(str(warning.message).split())}\n")


def one_line(message: str) -> str:
    """``message`` with its line breaks folded into spaces."""
    return " ".join(message.split("\n"))


def load_module(path: str, timer):
    """The verified module of ``path``: an ONNX model (``.onnx``, imported) or textual IR."""
    from xir.verifier import verify

    if path.endswith(".onnx"):
        with timer("Import ONNX"):
            from xir.frontends.onnx import import_onnx

            module = import_onnx(path)
    else:
        from xir.tools.opt import read_input

        with timer("Read"):
            text = read_input(path, path)
        with timer("Parser"):
            from xir.parser import parse

            module = parse(text, path)
    with timer("(V) verifier"):
        verify(module)
    return module
