"""Sensitivity analysis: how much the metric drops when each channel group loses a share of its
channels.

For every prunable :class:`~xir.passes.prune.groups.ChannelGroup` and every ratio of a grid, the
``round(ratio * channels)`` least important channels of the group are zeroed
(:func:`~xir.passes.prune.groups.zero_channels`) and the model is evaluated; with the unpruned
baseline that makes a :class:`SensitivityTable`, which :func:`~xir.passes.prune.select.choose_ratios`
reads to decide how far to prune each group.

Groups are independent tasks: they run on local processes (``workers``), or on a Ray cluster
(``ray_address``; Ray is the optional extra ``xir[ray]``). The table is cached beside the model as
JSON and reused while the model, the data, the metric, the criterion and the ratio grid are the same.
The evaluators that score the pruned models (:func:`onnx_evaluator`) are in
:mod:`~xir.passes.prune.evaluate`; this module re-exports them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import attrs
import numpy as np

from xir.diagnostics import XirError

from ..progress import Progress
from .evaluate import (OnnxEvaluator, evaluator_key, evaluator_name, load_metric, one_line_error,
                       onnx_evaluator)

__all__ = [
    "DEFAULT_RATIOS", "FORMAT", "SensitivityTable", "MacLayer", "mac_layers", "cache_path",
    "table_key", "load_cached", "save_table", "prunable_groups", "check_ratios",
    "sensitivity_table", "evaluate_group",
    # the evaluators, from .evaluate
    "OnnxEvaluator", "onnx_evaluator", "load_metric", "evaluator_name", "evaluator_key",
]

DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FORMAT = "xir-sensitivity-1"  # the cache file's "format": a file of another format is recomputed


def _tuple(values) -> tuple:
    return tuple(values)


@attrs.frozen
class SensitivityTable:
    """The metric of the model with each group pruned by each ratio of ``ratios``.

    ``metrics[group][i]`` is the metric with ``round(ratios[i] * channels[group])`` channels of the
    group zeroed, the least important first in ``order[group]`` (channel indices by increasing
    importance under ``criterion``); ``baseline`` is the unpruned model's metric and ``macs`` its
    MACs. ``layers`` says how those MACs shrink (:func:`mac_layers`; empty: each group's ``macs``
    shrinks linearly with its channels). ``key`` identifies the model, data, metric, criterion and
    grid the table was made from.
    """

    ratios: tuple[float, ...] = attrs.field(converter=_tuple)
    baseline: float
    metrics: dict           # group name -> tuple of metrics, one per ratio
    channels: dict          # group name -> channels in the group
    order: dict             # group name -> channel indices, least important first
    criterion: str = "l1"
    metric: str = "metric"  # the metric's name
    macs: int = 0
    key: str = ""
    layers: tuple = attrs.field(default=(), converter=_tuple)  # MacLayer, ...

    def metric_at(self, group: str, ratio: float) -> float:
        """The metric with ``ratio`` of ``group``'s channels pruned: the table interpolated
        linearly (ratio 0 is the baseline), extrapolated along its last segment past the grid."""
        xs = [0.0, *self.ratios]
        ys = [self.baseline, *self.metrics[group]]
        if ratio <= xs[-1]:
            return float(np.interp(ratio, xs, ys))
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(ys[-1] + min(slope, 0.0) * (ratio - xs[-1]))

    def kept_macs(self, kept: dict) -> float:
        """The model's MACs when each group ``name`` of ``kept`` keeps ``kept[name]`` channels
        (the others all theirs), by :attr:`layers`."""
        return self.macs - sum(layer.macs - layer.kept(kept, self.channels) for layer in self.layers)

    def removed(self, group: str, kept: int) -> list[int]:
        """The channel indices of ``group`` to remove so that ``kept`` remain (the least
        important ones)."""
        return sorted(int(i) for i in self.order[group][:self.channels[group] - kept])

    def to_json(self) -> dict:
        """The table as a JSON-ready dict (:meth:`from_json` reads it back)."""
        return {"format": FORMAT, "key": self.key, "metric": self.metric,
                "criterion": self.criterion, "macs": self.macs, "ratios": list(self.ratios),
                "baseline": self.baseline, "layers": [attrs.astuple(x) for x in self.layers],
                "groups": {name: {"channels": self.channels[name],
                                  "metrics": list(self.metrics[name]),
                                  "order": list(self.order[name])} for name in self.metrics}}

    @classmethod
    def from_json(cls, data: dict) -> "SensitivityTable":
        """The table :meth:`to_json` wrote (KeyError/TypeError/ValueError on a malformed dict)."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a sensitivity table of format {FORMAT}")
        groups = data["groups"]
        return cls(ratios=[float(r) for r in data["ratios"]], baseline=float(data["baseline"]),
                   metrics={n: tuple(float(m) for m in g["metrics"]) for n, g in groups.items()},
                   channels={n: int(g["channels"]) for n, g in groups.items()},
                   order={n: tuple(int(i) for i in g["order"]) for n, g in groups.items()},
                   criterion=str(data["criterion"]), metric=str(data["metric"]),
                   macs=int(data["macs"]), key=str(data["key"]),
                   layers=[MacLayer(int(m), tuple(map(str, out)),
                                    tuple((str(g), float(share)) for g, share in ins))
                           for m, out, ins in data.get("layers", ())])


@attrs.frozen
class MacLayer:
    """How one layer's MACs shrink with the groups it touches: ``macs`` times each ``scaled``
    group's kept share of its channels (the layer's output channels, or a depthwise layer's),
    times the share of its input that remains (``inputs``: per group, the share of the input one
    channel of the group is)."""

    macs: int
    scaled: tuple = ()
    inputs: tuple = ()

    def kept(self, kept: dict, channels: dict) -> float:
        """The layer's MACs with ``kept[g]`` of ``channels[g]`` channels in each group ``g``."""
        factor = 1.0
        for g in self.scaled:
            factor *= kept.get(g, channels[g]) / channels[g]
        factor *= 1.0 - sum(share * (channels[g] - kept.get(g, channels[g]))
                            for g, share in self.inputs)
        return self.macs * factor


def mac_layers(module, names) -> tuple[MacLayer, ...]:
    """The :class:`MacLayer` of every layer with MACs that groups ``names`` touch: whose output
    channels they are (producers, depthwise members) or whose input channels they are among."""
    from .groups import channel_extent, trace
    from .macs import op_macs

    layers: dict = {}  # op -> [macs, scaled groups, input terms]
    tracing = trace(module)
    for name in names:
        for use in tracing.uses[name]:
            macs = op_macs(use.op)
            if macs == 0:
                continue
            layer = layers.setdefault(use.op, [macs, [], []])
            if use.role == "consumer":
                layer[2].append((name, use.block / channel_extent(use)))
            else:
                layer[1].append(name)
    return tuple(MacLayer(m, tuple(scaled), tuple(ins)) for m, scaled, ins in layers.values())


def cache_path(model_path) -> Path:
    """Where the table of the model in file ``model_path`` is cached: ``<model>.sensitivity.json``
    beside it (``net.onnx`` -> ``net.sensitivity.json``)."""
    return Path(model_path).with_suffix(".sensitivity.json")


def table_key(text: str, groups, evaluate, criterion: str, ratios) -> str:
    """The cache key: a hash of the model's printed IR ``text`` (weights included), the
    evaluator's data and metric (:func:`evaluator_key`), the criterion, the grid and the groups."""
    h = hashlib.sha256()
    h.update(text.encode())
    h.update(evaluator_key(evaluate).encode())
    h.update(json.dumps([criterion, [float(r) for r in ratios],
                         sorted(g.name for g in groups if g.prunable)]).encode())
    return h.hexdigest()


def load_cached(path, key: str) -> SensitivityTable | None:
    """The table cached at ``path`` if it exists, reads, and has ``key``; else None."""
    try:
        table = SensitivityTable.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return table if table.key == key else None


def save_table(table: SensitivityTable, path) -> None:
    """Write ``table`` to ``path`` as JSON (atomically)."""
    from xir.files import write_atomically

    write_atomically(str(path), json.dumps(table.to_json(), indent=1) + "\n")


def prunable_groups(groups, what: str = "the model") -> list:
    """The prunable ones of ``groups``; XirError ``<what> has no prunable layer`` if none is."""
    prunable = [g for g in groups if g.prunable]
    if not prunable:
        raise XirError(f"{what} has no prunable layer")
    return prunable


def check_ratios(ratios) -> tuple[float, ...]:
    """The grid as floats, each in (0, 1) and increasing; XirError otherwise."""
    grid = tuple(float(r) for r in ratios)
    if not grid or any(not 0 < r < 1 for r in grid) or list(grid) != sorted(set(grid)):
        raise XirError(f"sensitivity ratios must increase strictly within (0, 1), "
                       f"got {list(ratios)}")
    return grid


def sensitivity_table(module, groups, evaluate, ratios=DEFAULT_RATIOS, criterion: str = "l1",
                      workers: int | None = None, ray_address: str | None = None,
                      progress: bool = True, model_path=None) -> SensitivityTable:
    """Evaluate ``module`` with each prunable group of ``groups`` pruned by each of ``ratios``.

    ``evaluate(module) -> float`` is the metric, higher is better (see
    :func:`onnx_evaluator`). Groups run on ``workers`` local processes
    (default ``min(cpu_count, groups)``; 1 runs in this process), or as one Ray task each on the
    cluster at ``ray_address``. A progress bar goes to stderr when ``progress`` and stderr is a
    terminal. With ``model_path``, the table is cached in :func:`cache_path` and reused while its
    key (:func:`table_key`) matches.
    """
    from xir.printer import print_ir

    from .macs import model_macs
    from .transform import channel_importance

    grid = check_ratios(ratios)
    what = f"'{model_path}'" if model_path is not None else "the model"
    prunable = prunable_groups(groups, what)
    text = print_ir(module)
    key = table_key(text, prunable, evaluate, criterion, grid)
    cache = cache_path(model_path) if model_path is not None else None
    if cache is not None and (cached := load_cached(cache, key)) is not None:
        return cached

    order = {g.name: tuple(int(i) for i in np.argsort(channel_importance(module, g, criterion),
                                                      kind="stable")) for g in prunable}
    plans = [(g.name, [list(order[g.name][:round(r * g.channels)]) for r in grid])
             for g in prunable]
    bar = Progress(progress, len(plans) * len(grid) + 1, "sensitivity")
    try:
        baseline = float(evaluate(module))
        bar.advance()
        metrics = _run(module, text, evaluate, plans, workers, ray_address, bar)
    finally:
        bar.close()
    table = SensitivityTable(ratios=grid, baseline=baseline,
                             metrics={name: tuple(baseline if v is None else v for v in m)
                                      for name, m in zip(order, metrics)},
                             channels={g.name: g.channels for g in prunable}, order=order,
                             criterion=criterion, metric=evaluator_name(evaluate),
                             macs=int(model_macs(module)), key=key,
                             layers=mac_layers(module, list(order)))
    if cache is not None:
        try:
            save_table(table, cache)
        except OSError as e:  # the cache only saves time: a read-only folder is not an error
            warnings.warn(f"cannot cache the sensitivity table in '{cache}': {e.strerror}",
                          stacklevel=2)
    return table


# -- running the groups ----------------------------------------------------------------------------


def _run(module, text: str, evaluate, plans, workers, ray_address, bar) -> list[list[float]]:
    """The metrics of every plan (a group and its removal lists), in order of ``plans``. Other
    processes get the module as IR (the IR's one serialization): Ray tasks its ``text``, local
    processes a file with its weights beside it, which they map rather than parse."""
    if ray_address is not None:
        return _run_on_ray(ray_address, text, evaluate, plans, bar)
    workers = min(os.cpu_count() or 1, len(plans)) if workers is None else int(workers)
    if workers < 1:
        raise XirError(f"workers must be at least 1, got {workers}")
    if workers > 1 and len(plans) > 1 and not _picklable(evaluate):
        warnings.warn(f"the evaluator {evaluator_name(evaluate)} cannot be sent to worker "
                      f"processes (it does not pickle): evaluating in this process", stacklevel=3)
        workers = 1
    if workers == 1 or len(plans) == 1:
        return [evaluate_group(module, evaluate, name, removals, bar.advance)
                for name, removals in plans]
    return _run_processes(module, evaluate, plans, min(workers, len(plans)), bar)


def evaluate_group(module, evaluate, name: str, removals, advance=None) -> list:
    """The metric of ``module`` with each list of ``removals`` zeroed in group ``name`` (None
    for an empty list: the unpruned model's)."""
    from .transform import zero_channels

    metrics = []
    for removed in removals:  # none removed at this ratio: the baseline, which the caller has
        metrics.append(float(evaluate(zero_channels(module, {name: list(removed)})))
                       if removed else None)
        if advance is not None:
            advance()
    return metrics


def _picklable(value) -> bool:
    import pickle

    try:
        pickle.dumps(value)
    except Exception:  # PicklingError, AttributeError, TypeError: a lambda, a local function...
        return False
    return True


_WORKER: dict = {}  # a worker process's module and evaluator, sent once by _init_worker


def _init_worker(path: str, evaluate) -> None:
    from xir.parser import parse

    with open(path, encoding="utf-8") as f:
        _WORKER["module"], _WORKER["evaluate"] = parse(f.read(), path), evaluate


def _worker_task(name: str, removals):
    return _remote_result(_WORKER["module"], _WORKER["evaluate"], name, removals)


def _remote_result(module, evaluate, name: str, removals):
    """The metrics, or the Diagnostic of an XirError: sent back as a value, since an exception
    crossing processes is rebuilt from its text and would lose its diagnostic."""
    try:
        return evaluate_group(module, evaluate, name, removals)
    except XirError as e:
        return e.diagnostic


def _returned(result) -> list[float]:
    from xir.diagnostics import Diagnostic

    if isinstance(result, Diagnostic):
        raise XirError(result)
    return result


def _run_processes(module, evaluate, plans, workers: int, bar) -> list[list[float]]:
    """``plans`` on a pool of ``workers`` spawned processes (spawn: onnxruntime's and numba's
    threads do not survive a fork), each given the evaluator and the module, in a temporary IR
    file, once."""
    import multiprocessing
    import tempfile

    from xir.weights import save_module

    with tempfile.TemporaryDirectory(prefix="xir-prune-") as directory:
        path = os.path.join(directory, "model.xir")
        save_module(module, path)
        return _pool_run(multiprocessing.get_context("spawn"), path, evaluate, plans, workers, bar)


def _pool_run(context, path: str, evaluate, plans, workers: int, bar) -> list[list[float]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(path, evaluate)) as pool:
        futures = {pool.submit(_worker_task, name, removals): i
                   for i, (name, removals) in enumerate(plans)}
        results: list = [None] * len(plans)
        try:
            for future in as_completed(futures):
                i = futures[future]
                results[i] = _returned(future.result())
                bar.advance(len(plans[i][1]))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # one group failed: skip the others
            raise
    return results


def _ray_task(text: str, evaluate, name: str, removals):
    from xir.parser import parse

    return _remote_result(parse(text, "<pruned model>"), evaluate, name, removals)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A one-line XirError when ``address`` names a host and port (``host:port`` or
    ``ray://host:port``) that accepts no connection within ``timeout`` seconds: ``ray.init``
    itself retries an unreachable head for minutes. ``auto``, ``local`` and other forms are
    left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        reason = e.strerror.lower() if e.strerror else type(e).__name__
        raise XirError(f"cannot connect to the Ray cluster at '{address}': {reason}") from None


def _run_on_ray(address: str, text: str, evaluate, plans, bar) -> list[list[float]]:
    """``plans`` as one Ray task per group on the cluster at ``address`` (joined if this process
    is not connected to one yet), the module's IR text and the evaluator put in its object store
    once."""
    try:
        import ray
    except ImportError:
        raise XirError("--ray needs the ray package: pip install 'xir[ray]'") from None
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as e:  # ray raises ConnectionError, ValueError, RuntimeError...
            raise XirError(f"cannot connect to the Ray cluster at '{address}': "
                           f"{one_line_error(e)}") from None
    task = ray.remote(num_cpus=1)(_ray_task)
    module_ref, evaluate_ref = ray.put(text), ray.put(evaluate)
    refs = [task.remote(module_ref, evaluate_ref, name, removals) for name, removals in plans]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(plans)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        i = index[done[0]]
        results[i] = _returned(ray.get(done[0]))
        bar.advance(len(plans[i][1]))
    return results

