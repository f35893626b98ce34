"""``xir prune MODEL --data eval.npz (--labels L.npy | --metric mod:fn) --macs R -o OUT.onnx``.

Channel pruning of a float model in one command (:mod:`xir.passes.prune`, docs/prune.md): import
the model, find its channel groups, measure each group's sensitivity on the evaluation data
(cached beside the model as ``MODEL.sensitivity.json``), choose how many channels each group
keeps so that the model keeps at most ``R`` of its MACs (counts multiples of ``--divisor``,
default the target's channel parallelism: 16 on B4096), remove them, win back accuracy without
training (``--recover reconstruct``, the default, or ``bn``; on ``--calib`` or the evaluation
data), optionally fine-tune through a user hook, and export the smaller model as ONNX.
``--iterations N`` reaches ``R`` in N steps, each checkpointed (``--checkpoints DIR``).
``--sparse magnitude|2:4`` zeroes single weights instead (the DPU gains no speed from that).

It prints a table of the groups (channels before → after) and the MACs, parameters and metric
before → after; ``--report R.json|R.html`` writes them with the sensitivity table (the HTML
page plots it). Every output file is written atomically, and only when everything succeeded.
"""

from __future__ import annotations

import os
import sys
import time

from xir.tools.model_io import arg_parser, command, load_module, warnings_as_lines

DEFAULT_TARGET = "DPUCZDX8G_ISA1_B4096"
RECOVERY = ("none", "bn", "reconstruct")


def main(argv: list[str] | None = None, prog: str = "xir prune") -> int:
    """Run ``xir prune``; returns the exit status."""
    p = arg_parser(prog, "Prune the channels of a float model to a share of its MACs, chosen by "
                         "a sensitivity analysis on evaluation data, and recover accuracy "
                         "without training.")
    p.add_argument("input", metavar="MODEL", help="the float model: .onnx or textual IR (.xir)")
    p.add_argument("--data", required=True, metavar="NPZ",
                   help="evaluation data: one array per model input (samples first)")
    p.add_argument("--labels", metavar="NPY", help="class labels of the samples: the metric is "
                                                   "top-1 accuracy")
    p.add_argument("--metric", metavar="MODULE:FUNCTION",
                   help="instead of --labels: metric(outputs, data) -> float, higher is better")
    p.add_argument("--macs", metavar="R", help="the share of MACs to keep, in (0, 1]")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx to write")
    p.add_argument("--iterations", type=int, default=1, metavar="N",
                   help="reach --macs in N steps, each with its sensitivity analysis")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="where --iterations keeps each step (default: OUT.steps beside OUT)")
    p.add_argument("--divisor", type=int, metavar="D",
                   help="kept channel counts are multiples of D (default: the target's channel "
                        "parallelism)")
    p.add_argument("--target", default=DEFAULT_TARGET, metavar="TARGET",
                   help=f"the DPU the divisor comes from (default {DEFAULT_TARGET})")
    p.add_argument("--criterion", choices=("l1", "l2", "bn"), default="l1",
                   help="channel importance: L1 or L2 norm of the weights, or BN scale")
    p.add_argument("--ratios", metavar="LIST",
                   help="the sensitivity grid, comma-separated (default 0.1,0.2,…,0.9)")
    p.add_argument("--recover", choices=RECOVERY, default="reconstruct",
                   help="recovery without training (default: least-squares reconstruction)")
    p.add_argument("--calib", metavar="NPZ",
                   help="calibration data for recovery (default: the evaluation data)")
    p.add_argument("--finetune", metavar="MODULE:FUNCTION",
                   help="a fine-tune hook: hook(onnx_model) -> {initializer: array}")
    p.add_argument("--workers", type=int, metavar="K",
                   help="local processes for the sensitivity analysis (default: the CPUs)")
    p.add_argument("--ray", metavar="ADDRESS", help="run the sensitivity analysis on this Ray "
                                                    "cluster")
    p.add_argument("--sparse", metavar="KIND",
                   help="sparse pruning instead: 'magnitude' or an N:M pattern such as 2:4")
    p.add_argument("--sparsity", type=float, default=0.5, metavar="S",
                   help="the fraction of weights --sparse magnitude zeroes (default 0.5)")
    p.add_argument("--report", metavar="FILE", help="also write a report: .json or .html")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    from xir.files import write_files_atomically

    from xir.tools import prune_report

    start = time.perf_counter()
    _check_options(args)
    if args.report is not None and args.report.endswith(".html"):
        prune_report.check_libraries()
    with timer("Read evaluation data"):
        evaluate = _evaluator(args)
    module = load_module(args.input, timer)
    with warnings_as_lines(args.input):
        if args.sparse is not None:
            result = _sparse(args, module, evaluate, timer)
        else:
            result = _channels(args, module, evaluate, timer)
    result["seconds"]["total"] = time.perf_counter() - start
    result["seconds"] = {k: round(v, 3) for k, v in result["seconds"].items()}
    with timer("Export ONNX"):
        from xir.frontends.onnx_export import export_onnx

        files = [(args.output, export_onnx(result.pop("module")).SerializeToString())]
    if args.report is not None:
        with timer("Report"):
            document = prune_report.render_html(result) if args.report.endswith(".html") \
                else prune_report.render_json(result)
        files.append((args.report, document))
    with timer("Write"):
        write_files_atomically(files)  # both or neither
    prune_report.print_summary(result)
    return 0


def _check_options(args) -> None:
    from xir.diagnostics import XirError

    if args.report is not None and not args.report.endswith((".json", ".html")):
        raise XirError(f"--report: '{args.report}' should end in .json or .html")
    for path in (args.output, args.report):  # before the long work, not after it
        if path is not None and not os.path.isdir(os.path.dirname(path) or "."):
            raise XirError(f"cannot write '{path}': no such directory")
    if args.labels is not None and args.metric is not None:
        raise XirError("give --labels or --metric, not both")
    if args.labels is None and args.metric is None:
        raise XirError(f"--data '{args.data}' has no labels: give --labels L.npy, or --metric "
                       f"module:function")
    if args.sparse is not None:
        if args.macs is not None:
            raise XirError("--sparse prunes single weights, not channels: leave out --macs")
        return
    if args.macs is None:
        raise XirError("--macs R is required: the share of MACs to keep, in (0, 1]")
    try:
        ratio = float(args.macs)
    except ValueError:
        ratio = float("nan")
    if not 0 < ratio <= 1:  # NaN fails too
        raise XirError(f"--macs must be in (0, 1], got {args.macs}")
    args.macs = ratio
    if args.iterations < 1:
        raise XirError(f"--iterations must be at least 1, got {args.iterations}")
    if args.divisor is not None and args.divisor < 1:
        raise XirError(f"--divisor must be at least 1, got {args.divisor}")
    if args.workers is not None and args.workers < 1:
        raise XirError(f"--workers must be at least 1, got {args.workers}")
    if args.ratios is not None:
        try:
            args.ratios = tuple(float(r) for r in args.ratios.split(","))
        except ValueError:
            raise XirError(f"--ratios: '{args.ratios}' is not a comma-separated list of "
                           f"numbers") from None


def _evaluator(args):
    """The metric on the evaluation data; ``--metric`` modules are found from the working
    directory too (as ``python -m`` would)."""
    from xir.passes.prune.evaluate import onnx_evaluator

    if args.metric is not None or args.finetune is not None:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
    return onnx_evaluator(args.data, args.labels, args.metric)


def _calibration(args, evaluate):
    """Recovery's calibration data: ``--calib``, else the evaluation data (one array for a
    one-input model, whatever the array's name)."""
    from xir.files import read_npz

    data = read_npz(args.calib, "calibration data") if args.calib else evaluate.data
    return next(iter(data.values())) if len(data) == 1 else data


def _load_hook(spec: str):
    from xir.diagnostics import XirError
    from xir.passes.prune.evaluate import load_metric

    try:
        return load_metric(spec)
    except XirError as e:
        raise XirError(e.diagnostic.message.replace("metric", "fine-tune hook", 1)) from None


def _recovery(args, evaluate):
    """``recover(pruned, before, removed) -> module``: the chosen recovery, then the hook."""
    from xir.passes.prune.finetune import finetune
    from xir.passes.prune.recover import reconstruct, reestimate_bn

    calib = _calibration(args, evaluate) if args.recover != "none" else None
    if calib is not None and not args.calib:
        import warnings

        warnings.warn("recovery fits on the evaluation data, so the metric after it is "
                      "measured on the data it was fitted to: give --calib to keep them apart",
                      stacklevel=2)
    hook = _load_hook(args.finetune) if args.finetune else None

    def recover(pruned, before, removed):
        if args.recover == "reconstruct":
            pruned = reconstruct(before, pruned, removed, calib)
        elif args.recover == "bn":
            pruned = reestimate_bn(pruned, calib)
        return finetune(pruned, hook) if hook is not None else pruned

    return recover


def _channels(args, module, evaluate, timer) -> dict:
    """Channel pruning (one step, or ``--iterations``): the report's data and the module."""
    from xir.diagnostics import XirError
    from xir.passes.prune import find_groups, remove_channels
    from xir.passes.prune.select import choose_ratios, default_divisor
    from xir.passes.prune.sensitivity import DEFAULT_RATIOS, sensitivity_table

    seconds: dict = {}
    divisor = args.divisor if args.divisor is not None else default_divisor(args.target)
    ratios = args.ratios or DEFAULT_RATIOS
    groups = find_groups(module)
    if not any(group.prunable for group in groups):
        reasons = "; ".join(f"{g.name}: {g.reason}" for g in groups[:3])
        raise XirError(f"'{args.input}' has no prunable layer" + (f" ({reasons})" if reasons
                                                                   else ""))
    recover = _recovery(args, evaluate)
    tick = time.perf_counter()
    if args.iterations == 1:
        with timer("Sensitivity"):
            table = sensitivity_table(module, groups, evaluate, ratios, args.criterion,
                                      args.workers, args.ray, True, model_path=args.input)
        seconds["sensitivity"] = time.perf_counter() - tick
        tick = time.perf_counter()
        with timer("Choose and remove channels"):
            removed = choose_ratios(table, groups, macs_ratio=args.macs, divisor=divisor,
                                    module=module)
            pruned = remove_channels(module, removed)
        seconds["prune"] = time.perf_counter() - tick
        tick = time.perf_counter()
        with timer("Recover"):
            pruned = recover(pruned, module, removed)
        seconds["recover"] = time.perf_counter() - tick
        baseline = table.baseline
    else:
        from pathlib import Path

        from xir.passes.prune.iterate import prune_iteratively, step_path

        directory = args.checkpoints or str(Path(args.output).with_suffix("")) + ".steps"
        with timer("Iterative pruning"):
            pruned = prune_iteratively(module, evaluate, args.macs, args.iterations, directory,
                                       ratios, args.criterion, divisor, args.workers, args.ray,
                                       True, recover=recover)
        seconds["iterations"] = time.perf_counter() - tick
        table = _first_table(step_path(directory, 0))
        baseline = table.baseline if table is not None else float(evaluate(module))
    tick = time.perf_counter()
    with timer("Evaluate"):
        after = float(evaluate(pruned))
    seconds["evaluate"] = time.perf_counter() - tick
    return _result(args, module, pruned, baseline, after, evaluate, seconds,
                   mode="channels", groups=groups, table=table, divisor=divisor)


def _first_table(model_path):
    """The sensitivity table iterative pruning cached for its first step (None if unreadable)."""
    import json
    from pathlib import Path

    from xir.passes.prune.sensitivity import SensitivityTable, cache_path

    try:
        return SensitivityTable.from_json(json.loads(Path(cache_path(model_path)).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _sparse(args, module, evaluate, timer) -> dict:
    """Sparse pruning: the report's data and the module."""
    from xir.passes.prune.sparse import sparsify

    seconds: dict = {}
    tick = time.perf_counter()
    with timer("Evaluate"):
        before = float(evaluate(module))
    with timer("Sparsify"):
        pruned, sparsity = sparsify(module, args.sparse, args.sparsity)
    seconds["sparsify"] = time.perf_counter() - tick
    if args.finetune:
        from xir.passes.prune.finetune import finetune

        pruned = finetune(pruned, _load_hook(args.finetune))
    with timer("Evaluate"):
        after = float(evaluate(pruned))
    seconds["evaluate"] = time.perf_counter() - tick - seconds["sparsify"]
    return _result(args, module, pruned, before, after, evaluate, seconds, mode="sparse",
                   sparsity=sparsity)


def _result(args, module, pruned, before, after, evaluate, seconds, mode, groups=(),
            table=None, divisor=None, sparsity=None) -> dict:
    """Everything the summary and the report show (see :mod:`xir.tools.prune_report`)."""
    from xir.passes.prune import model_macs, model_params
    from xir.passes.prune.evaluate import evaluator_name

    from xir.tools.prune_report import group_rows, layer_rows

    layers = layer_rows(module, pruned)
    return {
        "model": args.input, "output": args.output, "mode": mode,
        "target": args.target, "divisor": divisor, "criterion": args.criterion,
        "macs_goal": args.macs, "iterations": args.iterations,
        "recovery": args.recover if mode == "channels" else "none",
        "finetune": args.finetune,
        "groups": group_rows(groups, layers),
        "sensitivity": table.to_json() if table is not None else None,
        "macs": _before_after(model_macs(module), model_macs(pruned)),
        "params": _before_after(model_params(module), model_params(pruned)),
        "metric": {"name": evaluator_name(evaluate), "before": before, "after": after},
        "layers": layers,
        "sparsity": sparsity.to_json() if sparsity is not None else None,
        "seconds": seconds, "module": pruned,
    }


def _before_after(before: int, after: int) -> dict:
    return {"before": int(before), "after": int(after),
            "ratio": after / before if before else 1.0}
