"""Parse/print speed and start-up time of xir against xDSL, measured in one run.

Both parsers read the same generated generic-form files ("tensor": conv/relu/add/pool ops on
tensors with attributes; "scalar": integer and float arithmetic, constants and casts) at each
size in ``--sizes``. Every timing is the median of ``--repeat`` runs, each after ``gc.collect()``.
See bench/README.md for how to run it and what the numbers mean.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EMPTY_MODULE = "builtin.module {\n}\n"
ACT, WEIGHT = "tensor<1x16x32x32xf32>", "tensor<16x16x3x3xf32>"
WINDOW = 32  # operands come from the last WINDOW values, like the dataflow of a real network
SCALAR_BINOPS = {"i32": ("test.addi", "test.muli", "test.subi"),
                 "i64": ("test.addi", "test.andi", "test.shli"),
                 "f32": ("test.addf", "test.mulf", "test.divf")}
SCALAR_CASTS = (("i32", "i64", "test.extsi"), ("i32", "f32", "test.sitofp"))


def _ints(values: list[int]) -> str:
    """Render integers as an MLIR array attribute of ``i64`` integers."""
    return "[" + ", ".join(f"{v} : i64" for v in values) + "]"


def _wrap(arg_decls: str, body: list[str]) -> str:
    """Put op lines into ``builtin.module { "test.graph"() ({ ^bb0(args): ... }) }``."""
    lines = ["builtin.module {", '  "test.graph"() ({', f"  ^bb0({arg_decls}):"]
    lines += ["    " + line for line in body]
    lines += ['    "test.yield"() : () -> ()', "  }) : () -> ()", "}", ""]
    return "\n".join(lines)


def tensor_op(rng: random.Random, i: int, values: list[str]) -> str:
    """One tensor op defining ``%v{i}`` from recent ``values``: conv2d, relu, add or maxpool."""
    x, y = rng.choice(values[-WINDOW:]), rng.choice(values[-WINDOW:])
    kind = rng.choice(("conv2d", "relu", "add", "maxpool"))
    pads, strides = _ints([1, 1, 1, 1]), _ints([1, 1])
    if kind == "conv2d":
        attrs = f'strides = {strides}, pads = {pads}, group = 1 : i64, name = "conv_{i}"'
        return f'%v{i} = "test.conv2d"({x}, %a1) {{{attrs}}} : ({ACT}, {WEIGHT}) -> {ACT}'
    if kind == "relu":
        return f'%v{i} = "test.relu"({x}) : ({ACT}) -> {ACT}'
    if kind == "add":
        return f'%v{i} = "test.add"({x}, {y}) : ({ACT}, {ACT}) -> {ACT}'
    attrs = f"kernel = {_ints([3, 3])}, strides = {strides}, pads = {pads}"
    return f'%v{i} = "test.maxpool"({x}) {{{attrs}}} : ({ACT}) -> {ACT}'


def gen_tensor(n: int, seed: int = 0) -> str:
    """Generic-form module with ``n`` tensor ops; the same text for the same ``seed``."""
    rng, values, body = random.Random(seed), ["%a0"], []
    for i in range(n):
        body.append(tensor_op(rng, i, values))
        values.append(f"%v{i}")
    return _wrap(f"%a0: {ACT}, %a1: {WEIGHT}", body)


def scalar_op(rng: random.Random, i: int, pools: dict[str, list[str]]) -> tuple[str, str]:
    """One scalar op defining ``%v{i}`` (constant, binary op or cast); returns (line, type)."""
    roll, ty = rng.random(), rng.choice(tuple(SCALAR_BINOPS))
    if roll < 0.2:
        value = rng.randint(0, 99) / 4 if ty == "f32" else rng.randint(-99, 99)
        return f'%v{i} = "test.constant"() {{value = {value} : {ty}}} : () -> {ty}', ty
    if roll < 0.3:
        src, ty, name = rng.choice(SCALAR_CASTS)
        return f'%v{i} = "{name}"({rng.choice(pools[src][-WINDOW:])}) : ({src}) -> {ty}', ty
    x, y = rng.choice(pools[ty][-WINDOW:]), rng.choice(pools[ty][-WINDOW:])
    return f'%v{i} = "{rng.choice(SCALAR_BINOPS[ty])}"({x}, {y}) : ({ty}, {ty}) -> {ty}', ty


def gen_scalar(n: int, seed: int = 0) -> str:
    """Generic-form module with ``n`` scalar ops on i32/i64/f32; the same text for ``seed``."""
    rng, pools, body = random.Random(seed), {"i32": ["%a0"], "i64": ["%a1"], "f32": ["%a2"]}, []
    for i in range(n):
        line, ty = scalar_op(rng, i, pools)
        body.append(line)
        pools[ty].append(f"%v{i}")
    return _wrap("%a0: i32, %a1: i64, %a2: f32", body)


WORKLOADS = {"tensor": gen_tensor, "scalar": gen_scalar}


def time_runs(fn, repeat: int, budget: float = float("inf")) -> tuple[float, object, int]:
    """Run ``fn`` ``repeat`` times, fewer if that would take over ``budget`` seconds in all.

    Returns (median seconds, last result, number of runs).
    """
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if sum(times) / len(times) * repeat > budget:
            break
    return statistics.median(times), result, len(times)


def load_xir():
    """Return ``(parse, print)`` functions for xir from this checkout; raises if not importable."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from xir.parser import parse
    from xir.printer import print_ir

    return (lambda text: parse(text, filename="bench.xir", allow_unregistered=True),
            lambda module: print_ir(module, generic=True))


def load_xdsl():
    """Return ``(parse, print)`` functions for xDSL, allowing unregistered ops."""
    try:
        from xdsl.context import Context
    except ImportError:  # xDSL before Context was renamed
        from xdsl.ir import MLContext as Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.parser import Parser
    from xdsl.printer import Printer

    def parse(text: str):
        """Parse ``text`` in a fresh context, as xdsl-opt does for each file."""
        ctx = Context(allow_unregistered=True)
        ctx.load_dialect(Builtin)
        return Parser(ctx, text).parse_module()

    def print_generic(module) -> str:
        """Print ``module`` in generic form into a string."""
        stream = io.StringIO()
        Printer(stream=stream, print_generic_format=True).print_op(module)
        return stream.getvalue()

    return parse, print_generic


def measure(impl, text: str, n: int, repeat: int, budget: float = float("inf")) -> dict:
    """Parse ``text`` then print the result with ``impl``; ops/s and how many runs were made."""
    parse, print_ = impl
    parse_s, module, parse_runs = time_runs(lambda: parse(text), repeat, budget)
    print_s, _, print_runs = time_runs(lambda: print_(module), repeat, budget)
    return {"parse_ops_s": n / parse_s, "print_ops_s": n / print_s,
            "parse_runs": parse_runs, "print_runs": print_runs}


def find_tool(name: str, module: str | None = None) -> list[str] | None:
    """Command for console script ``name`` (next to sys.executable, else on PATH), else None.

    When the script is not installed but ``module`` is in this checkout, use ``python -m module``.
    """
    local = Path(sys.executable).parent / name
    if local.exists() or shutil.which(name):
        return [str(local) if local.exists() else shutil.which(name)]
    if module and (REPO_ROOT / (module.replace(".", "/") + ".py")).exists():
        return [sys.executable, "-m", module]
    return None


def time_command(cmd: list[str], path: Path, runs: int) -> float | None:
    """Median wall time of ``cmd path`` over ``runs`` runs after one warm-up; None if it fails."""
    env = None
    if "-m" in cmd:  # running from the checkout: make the repo importable, as installing would
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run([*cmd, str(path)], capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            print(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-300:].strip()}", file=sys.stderr)
            return None
    return statistics.median(times[1:])


def peak_rss_growth_kib(path: Path) -> int | None:
    """Growth of peak RSS (KiB) over one xir parse of ``path``, in a new process; None off Linux.

    Uses VmHWM from /proc: ru_maxrss would carry over this (large) process's peak into the child.
    """
    code = ("import re, sys; sys.path.insert(0, sys.argv[1]); from xir.parser import parse\n"
            "hwm = lambda: int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n"
            "text = open(sys.argv[2]).read(); before = hwm()\n"
            "parse(text, filename='bench.xir', allow_unregistered=True); print(hwm() - before)")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), str(path)], capture_output=True)
    return int(proc.stdout) if proc.returncode == 0 else None


def fmt(value: float | None, as_ratio: bool = False) -> str:
    """Format ops/s with thousands separators and ratios as ``12.34x``; None as ``-``."""
    if value is None:
        return "-"
    return f"{value:.2f}x" if as_ratio else f"{value:,.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None if either is missing."""
    return a / b if a and b else None


def run_speed(args, xir_impl, xdsl_impl, tmp: Path) -> list[dict]:
    """Generate each workload at each size into ``tmp``, measure both tools; one row per file."""
    rows = []
    for workload, gen in WORKLOADS.items():
        for n in args.sizes:
            text = gen(n, args.seed)
            (tmp / f"{workload}_{n}.mlir").write_text(text)
            row = {"workload": workload, "ops": n, "bytes": len(text), "xir": None, "xdsl": None}
            if xir_impl:
                row["xir"] = measure(xir_impl, text, n, args.repeat)
            if n <= args.xdsl_max_ops:
                row["xdsl"] = measure(xdsl_impl, text, n, args.repeat, args.xdsl_budget)
            for key in ("parse", "print"):
                row[f"{key}_ratio"] = ratio((row["xir"] or {}).get(f"{key}_ops_s"),
                                            (row["xdsl"] or {}).get(f"{key}_ops_s"))
            print(f"measured {workload} at {n:,} ops", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def compile_bytecode() -> None:
    """Compile xir's bytecode, as installing a wheel does, so both tools start from bytecode.

    An editable checkout has none until a run writes it, and with PYTHONDONTWRITEBYTECODE set no
    run ever does: every start would then compile xir from source, while xDSL (installed by pip)
    starts from bytecode.
    """
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    folders = [str(root / d) for d in ("xir", "grammar", "dialects", "passes") if (root / d).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], env=env,
                   stdout=subprocess.DEVNULL, check=False)


def run_startup(runs: int, tmp: Path) -> dict:
    """Median start-up time of xir-opt and of xdsl-opt on an empty module, and their ratio."""
    compile_bytecode()
    empty = tmp / "empty.mlir"
    empty.write_text(EMPTY_MODULE)
    result = {}
    for key, cmd in (("xir_opt", find_tool("xir-opt", "xir.tools.opt")),
                     ("xdsl_opt", find_tool("xdsl-opt"))):
        result[f"{key}_cmd"] = cmd and " ".join(cmd)
        result[f"{key}_s"] = time_command(cmd, empty, runs) if cmd else None
    result["ratio"] = ratio(result["xir_opt_s"], result["xdsl_opt_s"])
    return result


def print_table(rows: list[dict]) -> None:
    """Print the speed table, one line per (workload, size)."""
    lines = [("workload", "ops", "xir parse/s", "xDSL parse/s", "parse ratio",
              "xir print/s", "xDSL print/s", "print ratio")]
    for r in rows:
        xi, xd = r["xir"] or {}, r["xdsl"] or {}
        lines.append((r["workload"], f"{r['ops']:,}", fmt(xi.get("parse_ops_s")),
                      fmt(xd.get("parse_ops_s")), fmt(r["parse_ratio"], True),
                      fmt(xi.get("print_ops_s")), fmt(xd.get("print_ops_s")),
                      fmt(r["print_ratio"], True)))
    widths = [max(len(cell) for cell in column) for column in zip(*lines)]
    lines.insert(1, tuple("-" * w for w in widths))
    for line in lines:
        print("  ".join([line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]))


def show_startup(startup: dict, key: str) -> str:
    """``123 ms`` for tool ``key`` (saying how it was run if not as a console script), or why not."""
    cmd, seconds = startup[f"{key}_cmd"], startup[f"{key}_s"]
    if not cmd:
        return "not installed"
    via = f" (via `python {cmd.split(' ', 1)[1]}`)" if " -m " in cmd else ""
    return ("failed" if seconds is None else f"{seconds * 1000:.0f} ms") + via


def print_summary(rows: list[dict], startup: dict, memory: dict) -> dict:
    """Print the linearity, start-up, memory and bar lines; return linearity per workload."""
    linearity = {}
    for workload in WORKLOADS:
        mine = sorted((r for r in rows if r["workload"] == workload and r["xir"]), key=lambda r: r["ops"])
        if len(mine) >= 2:
            lo, hi = mine[0], mine[-1]
            linearity[workload] = hi["xir"]["parse_ops_s"] / lo["xir"]["parse_ops_s"]
            print(f"linearity {workload}: xir parse ops/s at {hi['ops']:,} / at {lo['ops']:,} ops"
                  f" = {linearity[workload]:.2f} (1.00 = linear)")
    print(f"start-up, empty module (median): xir-opt {show_startup(startup, 'xir_opt')}, "
          f"xdsl-opt {show_startup(startup, 'xdsl_opt')}, ratio {fmt(startup['ratio'], True)}")
    for key, kib in memory.items():
        print(f"xir parse peak-RSS growth, {key}: " + ("-" if kib is None else f"{kib / 1024:.1f} MiB"))
    parse_ratios = [r["parse_ratio"] for r in rows if r["parse_ratio"]]
    verdict = lambda ok: "-" if ok is None else ("PASS" if ok else "FAIL")
    print(f"bar: parse >= 5x xDSL: {verdict(min(parse_ratios) >= 5 if parse_ratios else None)}"
          f" (min {fmt(min(parse_ratios, default=None), True)}); start-up <= 0.5x xdsl-opt: "
          f"{verdict(startup['ratio'] <= 0.5 if startup['ratio'] else None)}")
    return linearity


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="comma-separated op counts")
    p.add_argument("--quick", action="store_true", help="sizes 2000,10000 (smoke run)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is used")
    p.add_argument("--xdsl-max-ops", type=int, default=100_000, help="skip xDSL above this size")
    p.add_argument("--xdsl-budget", type=float, default=120.0,
                   help="seconds; fewer xDSL runs when --repeat runs would take longer")
    p.add_argument("--startup-runs", type=int, default=10, help="runs of each *-opt tool")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS measurement")
    p.add_argument("--seed", type=int, default=0, help="seed of the generators")
    p.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = p.parse_args(argv)
    args.sizes = [2000, 10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and summary, and write JSON if asked."""
    args = parse_args(argv)
    try:
        xir_impl = load_xir()
    except Exception as exc:  # still report xDSL's numbers
        xir_impl = None
        print(f"xir not importable: {type(exc).__name__}: {exc}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = run_speed(args, xir_impl, load_xdsl(), tmp)
        startup = run_startup(args.startup_runs, tmp)
        memory, n = {}, max(args.sizes)
        for workload in WORKLOADS if xir_impl and not args.no_memory else ():
            memory[f"{workload} {n:,} ops"] = peak_rss_growth_kib(tmp / f"{workload}_{n}.mlir")
    print(f"\nPython {platform.python_version()} on {platform.machine()}; median of {args.repeat}\n")
    print_table(rows)
    print()
    linearity = print_summary(rows, startup, memory)
    if args.json:
        data = {"python": platform.python_version(), "machine": platform.machine(),
                "repeat": args.repeat, "seed": args.seed, "rows": rows, "linearity": linearity,
                "startup": startup, "peak_rss_growth_kib": memory}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
