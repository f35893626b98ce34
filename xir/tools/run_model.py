"""``xir run model.{onnx,xir,xmodel} --input in.npz -o out.npz``: run a model.

An ``.onnx`` or textual-IR model runs with the reference interpreter. A compiled ``.xmodel``
(:mod:`xir.backend.xmodel`) runs with :class:`xir.backend.runner.Runner`: host glue by the
interpreter, DPU subgraphs by their instruction streams on the DPU simulator (default, ``--dpu
sim``; ``--seed N`` runs the simulator's queues in a seeded random order) or by the dpu
dialect's integer executor (``--dpu ref``), CPU subgraphs by onnxruntime (default) or numpy
(``--cpu numpy``); ``--target T`` refuses an ``.xmodel`` compiled for another target. See
docs/runner.md.

The keys of ``in.npz`` are the model's input names (the ONNX names, for an imported model); the
keys of ``out.npz`` are its output names: the ONNX graph's output names for a ``.onnx`` model,
else each returned value's ``xir.name`` result attribute or SSA name, else ``output<i>``. A
missing, extra or ill-shaped input is one line ``error: input 'x': ...`` and no output file.
``--dump layers.npz`` also writes every op's outputs keyed by node name (see
:class:`xir.interpreter.TensorDump`); for an ``.xmodel``, ``--dump DIR`` writes every tensor that
crosses a subgraph boundary as ``DIR/<subgraph>.in<k>.npy`` and ``DIR/<subgraph>.out<k>.npy``.
"""

from __future__ import annotations

from xir.tools.model_io import arg_parser, command, load_module


def main(argv: list[str] | None = None, prog: str = "xir run") -> int:
    """Run ``xir run``; returns the exit status."""
    p = arg_parser(prog, "Run a model: ONNX or textual IR with the reference interpreter, a "
                         "compiled .xmodel with the runner (DPU and CPU subgraphs).")
    p.add_argument("input", help="the model: .onnx (imported first), textual IR or .xmodel")
    p.add_argument("--input", dest="inputs", required=True, metavar="NPZ",
                   help="an .npz archive holding one array per model input, keyed by its name")
    p.add_argument("-o", "--output", required=True, metavar="NPZ",
                   help="the .npz archive to write the outputs to (written only on success)")
    p.add_argument("--entry", default="main", help="the function to run (default: main)")
    p.add_argument("--dump", metavar="NPZ|DIR",
                   help="also write every op's outputs to this .npz, keyed by node name; for an "
                        ".xmodel, every subgraph boundary tensor to DIR/<subgraph>.<in|out><k>.npy")
    p.add_argument("--cpu", choices=("onnxruntime", "numpy"),
                   help="what runs the CPU subgraphs of an .xmodel (default: onnxruntime)")
    p.add_argument("--dpu", choices=("sim", "ref"),
                   help="what runs the DPU subgraphs of an .xmodel: their instruction streams "
                        "on the DPU simulator (sim, the default) or the dpu dialect's integer "
                        "executor (ref)")
    p.add_argument("--target", metavar="TARGET",
                   help="the DPU the .xmodel must have been compiled for (an error otherwise)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="run the simulator's instruction queues in a random order seeded by N "
                        "(the results must not change)")
    p.set_defaults(prog=prog)
    return command(p, _work, argv)


def output_names(func, path: str, count: int) -> list[str]:
    """The names of the ``count`` results of ``func`` (see the module docstring)."""
    if path.endswith(".onnx"):
        from xir.frontends.onnx import load_model

        names = [o.name for o in load_model(path).graph.output]
        if len(names) == count:
            return names
    res_attrs = func.get_attr("res_attrs")
    returned = func.regions[0].blocks[0].last_op.operands
    names = []
    for i in range(count):
        name = None
        if res_attrs is not None and i < len(res_attrs):
            attr = getattr(res_attrs[i], "value", {}).get("xir.name")
            name = getattr(attr, "value", None)
        if name is None and i < len(returned):
            name = returned[i].name_hint
        if not name or name in names:
            name = f"output{i}"
        names.append(name)
    return names


def _work(args, timer) -> int:
    from xir.files import read_npz
    from xir.interpreter import TensorDump, run_function
    from xir.symbols import entry_function

    if args.input.endswith(".xmodel"):
        return _run_xmodel(args, timer)
    for option in ("cpu", "dpu", "target", "seed"):
        if getattr(args, option) is not None:
            raise _usage(f"--{option} applies to compiled .xmodel models only, not to "
                         f"'{args.input}'")
    with timer("Read inputs"):
        inputs = read_npz(args.inputs)
    module = load_module(args.input, timer)
    func = entry_function(module, args.entry)
    dump = TensorDump() if args.dump else None
    with timer("Interpret"):
        outputs = run_function(func, inputs, observe=dump)
    with timer("Output"):
        archives = [(args.output, _named(func, args.input, outputs))]
        if dump is not None:
            archives.append((args.dump, dump.tensors))
        _write_archives(archives)
    return 0


def _run_xmodel(args, timer) -> int:
    """``xir run model.xmodel``: the runner on the verified module of the file."""
    from xir.backend.runner import Runner, boundary_files
    from xir.backend.xmodel import read_xmodel
    from xir.files import read_npz, write_files_atomically
    from xir.tools.model_io import warnings_as_lines
    from xir.verifier import verify

    with timer("Read inputs"):
        inputs = read_npz(args.inputs)
    with timer("Read .xmodel"):
        xmodel = read_xmodel(args.input)
    with timer("(V) verifier"):
        verify(xmodel.module)
    boundary = {} if args.dump else None
    with warnings_as_lines(args.prog):
        runner = Runner(xmodel.module, cpu=args.cpu or "onnxruntime", dpu=args.dpu or "sim",
                        entry=args.entry, xmodel=xmodel, target=args.target, seed=args.seed)
        with timer("Run"):
            outputs = runner.run(inputs, boundary)
    with timer("Output"):
        files = [(args.output, _npz(_named(runner.main, args.input, outputs)))]
        if boundary is not None:
            files += boundary_files(args.dump, boundary)
        write_files_atomically(files)
    return 0


def _usage(message: str):
    from xir.tools.opt import _UsageError

    return _UsageError(message)


def _named(func, path: str, outputs: list) -> dict:
    import numpy as np

    names = output_names(func, path, len(outputs))
    return dict(zip(names, (np.asarray(o) for o in outputs)))


def _npz(arrays: dict) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _write_archives(archives: list) -> None:
    """Write each ``(path, arrays)`` as an .npz archive (atomically, all or none)."""
    from xir.files import write_files_atomically

    write_files_atomically([(path, _npz(arrays)) for path, arrays in archives])
