"""The cycle model on the real compile flow: light ResNet-50 (random weights) compiled for
DPUCZDX8G_ISA1_B4096 and _B512, each ``.xmodel`` profiled as ``xir profile`` does, and where
the time goes.

    python bench/cycles.py                    # both targets (about a minute)
    python bench/cycles.py --samples 4 --json out.json

Per target: the compile (``compile_model``, 2 random calibration samples, CLE and bias
correction off: the weights do not change the instruction stream's timing), the ``.xmodel``
written to a temporary directory, read back and profiled (``profile_xmodel`` of
backend/profile.py); then cycles, latency at 281 MHz (ZCU102's B4096 clock) and at the target's
own clock, fps, MAC utilization, DDR bytes (with the mean bytes a cycle against the memory's
cap and the cycles LOADs and SAVEs lost to it) and each queue's busy share; the time per layer
kind; and the ten layers losing the most time against the MAC array's peak, with why. The loss
of a layer (its span minus its MACs at peak) splits into: op-boundary (its span before its
compute engine starts and after it stops: fill and drain, where nothing of its neighbours
overlaps); the engine's busy time beyond the MACs at peak: channel padding and pixel-group
padding (CONV steps spent on channels beyond the real ones, on pixels beyond a row's end),
inits, or all of it (MISC work) for a layer without MACs (eltwise, pool); and the engine's idle
time in between, DDR-bound when the layer's DDR traffic outlasts its compute, else stalls
(token waits). Where the emitter overlaps layers (an op's loads during the previous op's
compute), their common cycles lie in two spans: the row "overlap of layers" subtracts them, so
the per-kind and per-cause columns sum to the run's cycles. The ``.xmodel`` is profiled both
by ``profile_xmodel`` and from the program's words directly (the fields of CONV and CONVINIT
are needed for the padding split); both must agree. Bar (issue 7): ResNet-50 on B4096 at 281
MHz between 7.1 ms (every MAC at peak) and 12.9 ms (the published single-thread end-to-end
figure); the exit status is 1 when it is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import numpy as np  # noqa: E402

TARGETS = ("DPUCZDX8G_ISA1_B4096", "DPUCZDX8G_ISA1_B512")
BOARD_MHZ = 281.0  # ZCU102's B4096 clock (the published figures' board)
PEAK_MS, PUBLISHED_MS = 7.1, 12.9
KINDS = ("conv", "eltwise", "pool")  # the rest is "other"
OVERLAP = "overlap of layers"  # minus the cycles counted in two layers' spans
CAUSES = ("channel padding", "pixel-group padding", "inits", "DDR-bound", "op-boundary",
          "stalls")
COMPUTE_QUEUE = {"conv": "CONV", "alu": "MISC", "dwconv": "MISC", "pool": "MISC",
                 "eltwise": "MISC"}


def quick_compile(model, feeds: dict, target: str, samples: int):
    """``model`` (ONNX) compiled for ``target`` on ``samples`` seeded random calibration images
    shaped like ``feeds``' input, CLE and bias correction off (they change weights, not
    timing): ``(CompiledModel, seconds)``. bench/sim.py and bench/prune.py compile this way too."""
    from xir.backend.compiler import compile_model
    from xir.frontends.onnx import import_onnx

    (name, one), = feeds.items()
    data = {name: np.random.default_rng(7).random((samples,) + one.shape[1:], dtype=np.float32)}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer than 100 calibration samples
        compiled = compile_model(import_onnx(model), target, data, cle=False,
                                 bias_correction=False)
    return compiled, time.perf_counter() - start


def compile_for(model, feeds: dict, target: str, samples: int, tmp: Path) -> dict:
    """Compile ``model`` for ``target``, write and read back its ``.xmodel`` and profile it:
    ``{"compiled", "profile", "seconds"}``."""
    from xir.backend.profile import profile_xmodel
    from xir.backend.xmodel import read_xmodel

    seconds = {}
    compiled, seconds["compile"] = quick_compile(model, feeds, target, samples)
    seconds["codegen"] = compiled.seconds.get("codegen", 0.0)
    path = str(tmp / f"{target}.xmodel")
    start = time.perf_counter()
    compiled.write(path)
    seconds["write"] = time.perf_counter() - start
    start = time.perf_counter()
    profile = profile_xmodel(read_xmodel(path), clock_mhz=BOARD_MHZ)
    seconds["profile"] = time.perf_counter() - start
    return {"compiled": compiled, "profile": profile, "seconds": seconds}


def conv_steps(items: list, target) -> tuple[np.ndarray, np.ndarray]:
    """Per instruction: the conv engine's steps as costed (⌈length / PP⌉ pixel groups) and
    as if rows had no padded pixels (length / PP); 0 for anything but CONV."""
    pp = target.conv.pixel_parallel
    padded, exact = np.zeros(len(items)), np.zeros(len(items))
    kernel = 1
    for i, (mnemonic, fields) in enumerate(items):
        if mnemonic == "CONVINIT":
            kernel = max(fields.get("kernel_h", 0) * fields.get("kernel_w", 0), 1)
        elif mnemonic == "CONV":
            per_group = kernel * max(fields.get("channel_group", 0), 1)
            padded[i] = per_group * -(-fields.get("length", 0) // pp)
            exact[i] = per_group * fields.get("length", 0) / pp
    return padded, exact


def losses(report, lay, engine: str, padded: np.ndarray, exact: np.ndarray) -> dict:
    """Cycles layer ``lay`` (a LayerCycles of ``report``) loses against the MAC array's peak,
    by cause (the module docstring); they sum to its span minus its MACs at peak. Its span is
    fill + window + drain (before its compute engine's first instruction starts, after its last
    leaves); in the window the engine is busy (padding, inits, or all of it for a layer without
    MACs) or idle: DDR-bound if the layer's DDR traffic outlasts its compute, else stalls."""
    from xir.backend.sim.cycles import QUEUES

    ideal = lay.macs / report.peak_macs_per_cycle
    q = COMPUTE_QUEUE.get(engine)
    sl = slice(lay.first, lay.stop)
    if q is None:  # data movement only
        return {"data movement": lay.cycles - ideal}
    out = dict.fromkeys(CAUSES, 0.0)
    compute = lay.busy[q]
    if q == "CONV":
        out["pixel-group padding"] = float(padded[sl].sum() - exact[sl].sum())
        out["channel padding"] = float(exact[sl].sum() - ideal)
        out["inits"] = compute - float(padded[sl].sum())
    else:
        out["MISC work"] = float(compute)  # no MACs: the engine's time is all lost
    on_engine = report.queue[sl] == QUEUES.index(q)
    if on_engine.any():
        fill = int(report.start[sl][on_engine].min()) - lay.start
        drain = lay.end - int(report.busy_end[sl][on_engine].max())
        out["op-boundary"] = float(fill + drain)
    idle = lay.cycles - ideal - sum(out.values())
    out["DDR-bound" if lay.busy["DDR"] >= compute else "stalls"] += idle
    return out


def why(lost: dict) -> str:
    """The causes holding at least 15 % of a layer's loss, largest first."""
    total = sum(lost.values())
    if total <= 0:
        return "-"
    top = sorted(((v, k) for k, v in lost.items() if v >= 0.15 * total), reverse=True)
    return ", ".join(f"{k} {100 * v / total:.0f} %" for v, k in top)


def shapes(func) -> dict:
    """Layer label → "HxWxC -> HxWxC kK/sS" of each op of DPU function ``func``."""
    from xir.passes.codegen.tiling import layer_label

    out = {}
    for op in func.walk():
        if not op.results or not op.operands or not hasattr(op.results[0].type, "shape"):
            continue
        try:
            src = "x".join(str(d) for d in op.operands[0].type.shape[1:])
            dst = "x".join(str(d) for d in op.results[0].type.shape[1:])
        except (AttributeError, TypeError):
            continue
        kernel = op.attributes.get("kernel")
        stride = op.attributes.get("stride")
        if kernel is None and len(op.operands) > 1 and op.name.endswith("conv2d_fix"):
            kernel = op.operands[1].type.shape[1:3]
        k = "" if kernel is None else " k" + "x".join(str(getattr(v, "value", v))
                                                    for v in kernel)
        s = "" if stride is None else "/s" + str(getattr(stride[0], "value", stride[0]))
        out.setdefault(layer_label(op), f"{src} -> {dst}{k}{s}")
    return out


def analyse(run: dict, target) -> dict:
    """Everything the tables print for one target, from its compiled programs."""
    from xir.backend.sim.cycles import estimate
    from xir.dialects.dpuisa.encoding import decode_items
    from xir.symbols import SymbolTable

    compiled, profile = run["compiled"], run["profile"]
    functions = SymbolTable(compiled.module)
    rows, seconds, decode_s, own_cycles = [], 0.0, 0.0, 0
    kinds = dict.fromkeys((*KINDS, "other", "between layers", OVERLAP), 0.0)
    totals = dict.fromkeys(CAUSES, 0.0)
    for name, program in compiled.programs.items():
        report = profile.reports[name]
        start = time.perf_counter()
        items = decode_items(program.words.tobytes())  # for the conv-step padding breakdown
        decoded = time.perf_counter()
        # the memory has its own clock: at the target's clock a cycle gets fewer DDR bytes
        own_cycles += estimate(items, target, layers=program.layers).cycles
        seconds += time.perf_counter() - decoded
        decode_s += decoded - start
        padded, exact = conv_steps(items, target)
        labels = shapes(functions.lookup(name))
        covered = np.zeros(report.cycles + 1, dtype=bool)
        for record, lay in zip(program.layers, report.layers):
            kind = lay.kind if lay.kind in KINDS else "other"
            kinds[kind] += lay.cycles
            covered[lay.start:lay.end] = True
            lost = losses(report, lay, record["engine"], padded, exact)
            for k, v in lost.items():
                totals[k] = totals.get(k, 0.0) + v
            rows.append({"name": lay.name, "kind": lay.kind, "shape": labels.get(lay.name, ""),
                         "cycles": lay.cycles, "utilization": lay.utilization,
                         "lost": sum(lost.values()), "why": why(lost), "causes": lost})
        kinds["between layers"] += float(np.count_nonzero(~covered[:report.cycles]))
        # cycles inside two or more layers' spans, counted once per span above
        kinds[OVERLAP] -= sum(lay.cycles for lay in report.layers) - \
            float(np.count_nonzero(covered[:report.cycles]))
    return {"rows": rows, "kinds": kinds, "losses": totals, "estimate_s": seconds,
            "decode_s": decode_s, "own_cycles": own_cycles}


def print_target(console, run: dict, result: dict, target) -> None:
    """The summary, per-kind and worst-layer tables of one target."""
    from rich.table import Table

    from xir.backend.sim.cycles import QUEUES

    profile = run["profile"]
    cycles = profile.cycles
    own = target.clock_mhz

    def ms(c, mhz=BOARD_MHZ):
        return c / (mhz * 1e3)

    macs = profile.macs
    ideal = macs / (target.peak_ops_per_cycle // 2)
    head = Table(title=f"{target.name}: light ResNet-50, {len(profile.reports)} DPU subgraph(s)")
    head.add_column("quantity")
    head.add_column("value", justify="right")
    busy = {u: sum(r.busy[u] for r in profile.reports.values()) for u in (*QUEUES, "DDR")}
    loaded = sum(r.bytes_loaded for r in profile.reports.values())
    saved = sum(r.bytes_saved for r in profile.reports.values())
    count = sum(len(r.mnemonics) for r in profile.reports.values())
    cap = min(r.ddr_cap for r in profile.reports.values())
    throttled = sum(r.ddr_throttled for r in profile.reports.values())
    words = sum(len(p.words) for p in run["compiled"].programs.values())
    for label, value in [
            ("cycles", f"{cycles:,}"),
            (f"latency at {BOARD_MHZ:g} MHz", f"{ms(cycles):.3f} ms ({1e3 / ms(cycles):.1f} fps)"),
            (f"latency at {own:g} MHz (target's)",
             f"{ms(result['own_cycles'], own):.3f} ms "
             f"({1e3 / ms(result['own_cycles'], own):.1f} fps)"),
            ("MACs / at peak", f"{macs / 1e9:.3f} G / {ms(ideal):.3f} ms at {BOARD_MHZ:g} MHz"),
            ("MAC utilization", f"{100 * profile.mac_utilization:.1f} %"),
            ("DDR bytes loaded / saved", f"{loaded / 1e6:.2f} MB / {saved / 1e6:.2f} MB"),
            *((f"busy {u}", f"{100 * busy[u] / cycles:.1f} %") for u in (*QUEUES, "DDR")),
            ("DDR bytes a cycle: mean / cap (reads + writes)",
             f"{(loaded + saved) / cycles:.1f} / {cap:.1f} at {BOARD_MHZ:g} MHz"),
            ("LOAD + SAVE cycles throttled by the cap",
             f"{throttled:,} ({ms(throttled):.3f} ms)"),
            ("instructions / words", f"{count:,} / {words:,}"),
            ("compile / of it codegen", f"{run['seconds']['compile']:.1f} s / "
                                        f"{run['seconds']['codegen']:.1f} s"),
            ("write / profile_xmodel (read, decode, estimate)",
             f"{run['seconds']['write']:.2f} s / {run['seconds']['profile']:.2f} s"),
            ("decode_items / estimate() alone (at the target's clock)",
             f"{result['decode_s']:.2f} s / {result['estimate_s']:.2f} s")]:
        head.add_row(label, value)
    console.print(head)

    kinds = Table(title=f"{target.name}: time per layer kind (spans; at {BOARD_MHZ:g} MHz)")
    for col in ("kind", "layers", "ms", "share %"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    counts = {}
    for row in result["rows"]:
        k = row["kind"] if row["kind"] in KINDS else "other"
        counts[k] = counts.get(k, 0) + 1
    for k, c in result["kinds"].items():
        count = "" if k in ("between layers", OVERLAP) else str(counts.get(k, 0))
        kinds.add_row(k, count, f"{ms(c):.3f}", f"{100 * c / cycles:.1f}")
    console.print(kinds)

    lost = Table(title=f"{target.name}: where the time beyond peak goes (all layers, ms at "
                       f"{BOARD_MHZ:g} MHz)")
    lost.add_column("cause")
    lost.add_column("ms", justify="right")
    lost.add_row("MACs at peak", f"{ms(ideal):.3f}")
    for k, v in sorted(result["losses"].items(), key=lambda kv: -kv[1]):
        lost.add_row(k, f"{ms(v):.3f}")
    lost.add_row("between layers", f"{ms(result['kinds']['between layers']):.3f}")
    lost.add_row(OVERLAP, f"{ms(result['kinds'][OVERLAP]):.3f}")
    lost.add_row("total", f"{ms(cycles):.3f}", style="bold")
    console.print(lost)

    worst = Table(title=f"{target.name}: the 10 layers losing most time against peak")
    for col in ("layer", "kind", "shape", "ms", "MAC util", "lost ms", "why (share of loss)"):
        worst.add_column(col, justify="right" if col in ("ms", "MAC util", "lost ms") else "left")
    for row in sorted(result["rows"], key=lambda r: -r["lost"])[:10]:
        util = "-" if row["utilization"] is None else f"{100 * row['utilization']:.1f} %"
        worst.add_row(row["name"], row["kind"], row["shape"], f"{ms(row['cycles']):.3f}", util,
                      f"{ms(row['lost']):.3f}", row["why"])
    console.print(worst)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2, help="calibration samples (default 2)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    from rich.console import Console

    from test_onnx_import import light_model
    from xir.backend.targets import load_target

    loaded = light_model("resnet50")
    if loaded is None:
        print("light_resnet50.onnx is not installed")
        return 1
    model, feeds = loaded
    console = Console(width=max(Console().width, 130))
    runs, results = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in TARGETS:
            target = load_target(name)
            runs[name] = compile_for(model, feeds, name, args.samples, Path(tmp))
            missing = [r["name"] for r in runs[name]["compiled"].subgraphs
                       if r["device"] == "DPU" and r["name"] not in runs[name]["compiled"].programs]
            if missing:
                console.print(f"INCOMPLETE  {name}: DPU subgraph(s) without an instruction "
                              f"stream: {', '.join(missing)}")
                return 1
            results[name] = analyse(runs[name], target)
            print_target(console, runs[name], results[name], target)

    big, small = (runs[t]["profile"] for t in TARGETS)
    ratio = small.cycles / big.cycles
    console.print(f"B512 / B4096: {ratio:.2f}x the cycles (same clock; peak MACs a cycle 8x)")
    latency = big.cycles / (BOARD_MHZ * 1e3)
    ok = PEAK_MS <= latency <= PUBLISHED_MS
    console.print(f"{'PASS' if ok else 'FAIL'}  ResNet-50 on B4096 at {BOARD_MHZ:g} MHz: "
                  f"{latency:.2f} ms = {latency / PEAK_MS:.2f}x the {PEAK_MS} ms of every MAC "
                  f"at peak, {latency / PUBLISHED_MS:.2f}x the published {PUBLISHED_MS} ms "
                  f"(bar: between them)")
    first = results[TARGETS[0]]
    convs = first["kinds"]["conv"] / (BOARD_MHZ * 1e3)
    console.print(f"(info) of it the {sum(r['kind'] == 'conv' for r in first['rows'])} "
                  f"convolutions' spans: {convs:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({
            name: {"profile": runs[name]["profile"].as_json() | {"layers": None},
                   "seconds": runs[name]["seconds"], "estimate_s": results[name]["estimate_s"],
                   "decode_s": results[name]["decode_s"],
                   "kinds": results[name]["kinds"], "losses": results[name]["losses"],
                   "layers": [{k: v for k, v in r.items()} for r in results[name]["rows"]]}
            for name in TARGETS} | {"b512_over_b4096": ratio, "pass": ok}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
