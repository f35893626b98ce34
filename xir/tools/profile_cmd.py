"""``xir profile MODEL.xmodel [--json F] [--svg F] [--clock MHZ] [--target T]``: cycles, latency
and MAC utilization of a compiled model, per DPU subgraph and per layer.

The cycle model (:mod:`xir.backend.sim.cycles`, docs/cycles.md) runs over each DPU subgraph's
instruction stream as the ``.xmodel`` holds it: per-engine timelines, synchronized by the
dependency tokens, with costs from the target (parallelism, DDR bandwidth, clock). It prints one
table of layers per DPU subgraph and the model's totals (DPU subgraphs one after the other;
host work is not counted). ``--json F`` writes the report (``-`` for stdout, then no table),
``--svg F`` draws the timeline of the longest DPU subgraph, one lane per engine. ``--clock``
overrides the target's clock (e.g. 281 for a ZCU102's B4096); ``--target`` refuses an
``.xmodel`` compiled for another DPU.
"""

from __future__ import annotations

from xir.tools.model_io import arg_parser, command


def main(argv: list[str] | None = None, prog: str = "xir profile") -> int:
    """Run ``xir profile``; returns the exit status."""
    p = arg_parser(prog, "Estimate the cycles, latency and MAC utilization of a compiled model "
                         "on its DPU, per subgraph and per layer.")
    p.add_argument("input", metavar="MODEL", help="a compiled model (.xmodel)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout, no "
                                                  "table)")
    p.add_argument("--svg", metavar="FILE", help="draw the timeline of the longest DPU subgraph "
                                                 "as SVG")
    p.add_argument("--clock", type=float, metavar="MHZ",
                   help="the DPU clock in MHz (default: the target's)")
    p.add_argument("--target", metavar="TARGET",
                   help="the DPU the .xmodel must have been compiled for (an error otherwise)")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    import json

    from xir.backend.profile import profile_xmodel
    from xir.backend.xmodel import read_xmodel
    from xir.diagnostics import XirError
    from xir.files import write_atomically

    if not args.input.endswith(".xmodel"):
        raise XirError(f"'{args.input}' is not a compiled model (.xmodel): run xir compile "
                       f"first")
    with timer("Read .xmodel"):
        xmodel = read_xmodel(args.input)
    with timer("Cycle model"):
        profile = profile_xmodel(xmodel, args.target, args.clock)
    document = json.dumps(profile.as_json(), indent=1) + "\n"
    if args.svg is not None:
        from xir.backend.sim.timeline_svg import timeline_svg

        report = max(profile.reports.values(), key=lambda r: r.cycles)
        with timer("Timeline"):
            svg = timeline_svg(report)
    if args.json == "-":
        print(document, end="")
    else:
        print_profile(profile)
    with timer("Write"):
        if args.json is not None and args.json != "-":
            write_atomically(args.json, document)
        if args.svg is not None:
            write_atomically(args.svg, svg)
    return 0


def print_profile(profile) -> None:
    """Each DPU subgraph's layer table, then the model's totals, on stdout."""
    for name, report in profile.reports.items():
        print(f"{name}:")
        print(report.table().rstrip("\n"))
        print()
    macs = f"{profile.macs / 1e9:.3f} GMAC" if profile.macs >= 1e9 else \
        f"{profile.macs / 1e6:.3f} MMAC"
    print(f"{profile.target.name} @ {profile.clock_mhz:g} MHz, {len(profile.reports)} DPU "
          f"subgraph{'s' if len(profile.reports) != 1 else ''}: {profile.cycles} cycles, "
          f"{profile.latency_ms:.3f} ms, {profile.fps:.1f} fps, MAC utilization "
          f"{100 * profile.mac_utilization:.1f} % ({macs})")
