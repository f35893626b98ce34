"""``xir targets [NAME] [--json]``: the DPU targets xir knows.

Without a name it prints one row per target: name, family, fingerprint, PP / ICP / OCP, peak ops
a cycle, clock and peak GOPS. With a name (or a fingerprint, or an arch.json) it prints that
target's whole description: bank groups, engines, limits, feature flags and assumptions.
``--json`` prints the descriptions themselves (all of them, or the one named).
"""

from __future__ import annotations

import sys

from xir.tools.model_io import arg_parser, command


def main(argv: list[str] | None = None, prog: str = "xir targets") -> int:
    """Run ``xir targets``; returns the exit status."""
    p = arg_parser(prog, "List the known DPU targets, or describe one.")
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help="a target name (B4096, DPUCAHX8H_ISA2 …), a fingerprint 0x… or an arch.json")
    p.add_argument("--json", action="store_true",
                   help="print the target descriptions as JSON (the schema of docs/targets.md)")
    return command(p, _work, argv)


def _work(args, timer) -> int:
    import json

    from xir.backend.targets import known_targets, load_target

    targets = [load_target(args.target)] if args.target else list(known_targets())
    if args.json:
        data = [t.to_json() for t in targets]
        sys.stdout.write(json.dumps(data[0] if args.target else data, indent=2) + "\n")
        return 0
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False, width=_width())
    if args.target:
        _describe(console, targets[0])
    else:
        console.print(_summary_table(targets))
    return 0


def _width() -> int | None:
    """The terminal's width, or a wide page when the output is not a terminal (tests, pipes)."""
    return None if sys.stdout.isatty() else 160


def _summary_table(targets):
    from rich.table import Table

    table = Table(title="DPU targets", title_justify="left")
    for header in ("name", "family", "fingerprint"):
        table.add_column(header)
    for header in ("PP", "ICP", "OCP", "batch", "peak ops/cycle", "clock MHz", "peak GOPS"):
        table.add_column(header, justify="right")
    for t in targets:
        c = t.conv
        table.add_row(t.name, f"{t.type} ISA{t.isa_version}", t.fingerprint_hex,
                      str(c.pixel_parallel), str(c.input_channel_parallel),
                      str(c.output_channel_parallel), str(t.batch), str(t.peak_ops_per_cycle),
                      f"{t.clock_mhz:g}", f"{t.peak_gops:.1f}")
    return table


def _describe(console, t) -> None:
    from rich.table import Table

    console.print(f"[bold]{t.name}[/bold]  {t.type} ISA{t.isa_version}  fingerprint "
                  f"{t.fingerprint_hex}  feature code {t.feature_code:#x}")
    console.print(f"peak {t.peak_ops_per_cycle} ops/cycle (2 · PP · ICP · OCP · batch {t.batch}), "
                  f"{t.clock_mhz:g} MHz, {t.peak_gops:.1f} GOPS; DDR {t.ddr_bytes_per_cycle:g} "
                  f"bytes/cycle")
    flags = {"load channel augmentation": t.load_channel_augmentation, "load mean": t.load_mean,
             "conv leaky-relu": t.conv_leaky_relu, "ALU leaky-relu": t.alu_leaky_relu,
             "save argmax": t.save_argmax}
    console.print("features: " + ", ".join(f"{k} {'on' if v else 'off'}" for k, v in flags.items()))

    banks = Table(title="bank groups", title_justify="left")
    for header, justify in (("name", "left"), ("type", "left"), ("base_id", "right"),
                            ("bank_num", "right"), ("bank_width", "right"),
                            ("bank_depth", "right"), ("bytes", "right")):
        banks.add_column(header, justify=justify)
    for g in t.bank_groups:
        banks.add_row(g.name, g.type, str(g.base_id), str(g.bank_num), str(g.bank_width),
                      str(g.bank_depth), str(g.size_bytes))
    console.print(banks)

    engines = Table(title="engines", title_justify="left")
    for header in ("engine", "parallelism", "banks", "types / nonlinear", "limits"):
        engines.add_column(header)
    for row in _engine_rows(t):
        engines.add_row(*row)
    console.print(engines)
    if t.notes:
        console.print("notes:")
        for note in t.notes:
            console.print(f"  - {note}", markup=False)


def _engine_rows(t):
    """(engine, parallelism, banks, types, limits) per engine the target has."""
    def banks(e):
        return f"{','.join(e.input_bank)} → {','.join(e.output_bank)}"

    def pads(p):
        return f"pad l/r/t/b {p.left}/{p.right}/{p.top}/{p.bottom}"

    rows = [("load", f"CP {t.load.channel_parallel}", "→ " + ",".join(t.load.output_bank),
             f"mean bank {t.load.meanvalue_bank}" if t.load_mean else "", ""),
            ("save", f"CP {t.save.channel_parallel}", ",".join(t.save.input_bank) + " →",
             "argmax" if t.save.argmax else "", "")]
    c = t.conv
    augmentation = f"; augment to {c.channel_augmentation} ch" if c.channel_augmentation else ""
    rows.append(("conv", f"PP {c.pixel_parallel} ICP {c.input_channel_parallel} "
                 f"OCP {c.output_channel_parallel}",
                 f"{banks(c)}; w {c.weight_bank}, b {c.bias_bank}",
                 ", ".join(c.nonlinear) + augmentation,
                 f"kernel {c.kernel}, stride {c.stride}" + (f", {pads(c.pad)}" if c.pad else "")))
    e = t.eltwise
    rows.append(("eltwise", f"PP {e.pixel_parallel} CP {e.channel_parallel}", banks(e),
                 f"{', '.join(e.elew_type)}; {', '.join(e.nonlinear)}", ""))
    if (p := t.pool) is not None:
        limits = [f"{kind} kernel {k}, stride {s}" for kind, k, s in
                  (("max", p.max_kernel, p.max_stride), ("avg", p.avg_kernel, p.avg_stride))
                  if k is not None]
        rows.append(("pool", f"PP {p.pixel_parallel} CP {p.channel_parallel}", banks(p),
                     f"{', '.join(p.pool_type)}; {', '.join(p.nonlinear) or 'no nonlinear'}",
                     "; ".join(limits)))
    if (d := t.dwconv) is not None:
        rows.append(("dwconv", f"PP {d.pixel_parallel} CP {d.channel_parallel}",
                     f"{banks(d)}; w {d.weight_bank}, b {d.bias_bank}", ", ".join(d.nonlinear),
                     f"kernel {d.kernel}, stride {d.stride}"))
    if (a := t.alu) is not None:
        rows.append(("alu", f"PP {a.pixel_parallel} CP {a.channel_parallel}",
                     f"{banks(a)}; w {a.weight_bank}, b {a.bias_bank}",
                     f"{', '.join(a.alu_type)}; {', '.join(a.nonlinear)}",
                     f"kernel {a.kernel}, stride {a.stride}, {pads(a.pad)}"))
    return rows
