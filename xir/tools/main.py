"""``xir``: the one command of the compiler, with a subcommand per job (``xir opt``, ``xir version``).

Each subcommand is a function ``main(argv, prog) -> int`` in a module of its own, named in
:data:`SUBCOMMANDS` and imported only when it is run, so ``xir --help`` stays instant and a new
subcommand is one line here plus its module.
"""

from __future__ import annotations

import sys

# name -> (module:function, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "opt": ("xir.tools.opt:main", "run a pass pipeline over textual IR (the same as xir-opt)"),
    "import": ("xir.tools.import_model:main", "import an ONNX model as textual IR"),
    "export": ("xir.tools.export_model:main", "export textual IR as an ONNX model"),
    "run": ("xir.tools.run_model:main", "run a model (.onnx, .xir, or a compiled .xmodel) on .npz inputs"),
    "quantize": ("xir.tools.quantize_cmd:main", "quantize a float model to INT8 with power-of-two scales on calibration data"),
    "compile": ("xir.tools.compile_cmd:main", "compile a float model for a DPU target into an .xmodel (quantize, fuse, partition)"),
    "profile": ("xir.tools.profile_cmd:main", "estimate cycles, latency and MAC utilization of a compiled .xmodel per layer"),
    "prune": ("xir.tools.prune_cmd:main", "prune a float model's channels to a share of its MACs, recovering accuracy without training"),
    "inspect": ("xir.tools.inspect_cmd:main", "show which layers of a model run on a DPU target, which on the CPU, and why"),
    "targets": ("xir.tools.targets_cmd:main", "list the known DPU targets, or describe one"),
    "version": ("xir.tools.main:version", "print the version of xir"),
}


def usage() -> str:
    """The text of ``xir --help``: the subcommands that exist."""
    lines = ["usage: xir <command> [options]", "", "commands:"]
    for name, (_, summary) in SUBCOMMANDS.items():
        lines.append(f"  {name:<12} {summary}")
    lines += ["", "Run 'xir <command> --help' for the options of a command."]
    return "\n".join(lines) + "\n"


def version(argv: list[str], prog: str = "xir version") -> int:
    """Print ``xir <version>`` (and the Python that runs it)."""
    if argv:
        if argv[0] in ("-h", "--help"):
            sys.stdout.write(f"usage: {prog}\n\nPrint the version of xir.\n")
            return 0
        sys.stderr.write(f"{prog}: error: unexpected argument '{argv[0]}'\n")
        return 1
    import platform

    import xir

    sys.stdout.write(f"xir {xir.__version__} (Python {platform.python_version()})\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``xir <command> ...`` to the command's function; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0 if argv else 1
    if argv[0] == "--version":
        return version([])
    name = argv[0]
    entry = SUBCOMMANDS.get(name)
    if entry is None:
        sys.stderr.write(f"xir: error: unknown command '{name}' (commands: {', '.join(SUBCOMMANDS)})\n")
        return 1
    from importlib import import_module

    module_name, _, function = entry[0].partition(":")
    command = getattr(import_module(module_name), function)
    try:
        return command(argv[1:], prog=f"xir {name}")
    except BrokenPipeError:  # the reader went away (xir ... | head): stop quietly
        from xir.tools.opt import silence_stdout

        silence_stdout()
        return 1


if __name__ == "__main__":
    sys.exit(main())
