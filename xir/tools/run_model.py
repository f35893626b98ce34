"""``xir run model.{onnx,xir} --input in.npz -o out.npz``: run a model with the reference
interpreter.

The keys of ``in.npz`` are the model's input names (the ONNX names, for an imported model); the
keys of ``out.npz`` are its output names: the ONNX graph's output names for a ``.onnx`` model,
else each returned value's ``xir.name`` result attribute or SSA name, else ``output<i>``. A
missing, extra or ill-shaped input is one line ``error: input 'x': ...`` and no output file.
``--dump layers.npz`` also writes every op's outputs keyed by node name (see
:class:`xir.interpreter.TensorDump`).
"""

from __future__ import annotations

from xir.tools.model_io import arg_parser, command, load_module


def main(argv: list[str] | None = None, prog: str = "xir run") -> int:
    """Run ``xir run``; returns the exit status."""
    p = arg_parser(prog, "Run a model (ONNX or textual IR) with the reference interpreter.")
    p.add_argument("input", help="the model: .onnx (imported first) or textual IR")
    p.add_argument("--input", dest="inputs", required=True, metavar="NPZ",
                   help="an .npz archive holding one array per model input, keyed by its name")
    p.add_argument("-o", "--output", required=True, metavar="NPZ",
                   help="the .npz archive to write the outputs to (written only on success)")
    p.add_argument("--entry", default="main", help="the function to run (default: main)")
    p.add_argument("--dump", metavar="NPZ",
                   help="also write every op's outputs to this .npz, keyed by node name")
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
    import io

    import numpy as np

    from xir.files import read_npz, write_atomically
    from xir.interpreter import TensorDump, run_function
    from xir.symbols import entry_function

    with timer("Read inputs"):
        inputs = read_npz(args.inputs)
    module = load_module(args.input, timer)
    func = entry_function(module, args.entry)
    dump = TensorDump() if args.dump else None
    with timer("Interpret"):
        outputs = run_function(func, inputs, observe=dump)
    with timer("Output"):
        names = output_names(func, args.input, len(outputs))
        archives = [(args.output, dict(zip(names, (np.asarray(o) for o in outputs))))]
        if dump is not None:
            archives.append((args.dump, dump.tensors))
        for path, arrays in archives:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            write_atomically(path, buffer.getvalue())
    return 0
