"""Iterative pruning: reach a MAC ratio in several steps, with a checkpoint after each.

Each step analyses the sensitivity of the current model (:func:`~.sensitivity.sensitivity_table`),
chooses the channels to remove (:func:`~.select.choose_ratios`), removes them
(:func:`~.groups.remove_channels`) and, optionally, recovers accuracy with a user hook. Steps
follow a geometric schedule: after step ``k`` of ``n`` the model keeps ``macs_ratio ** (k / n)``
of the original MACs, so every step removes the same share of what is left.

The checkpoint directory holds ``step_<k>.xir`` (the IR after step ``k``, ``step_0.xir`` the
original; large weights in ``step_<k>.xir.weights``), the sensitivity table each step used
(``step_<k>.sensitivity.json``, so a rerun reuses it), and ``index.json``, which lists every step
with its metric, MACs and removed channels. :func:`backtrack` reads any step back.
"""

from __future__ import annotations

import json
from pathlib import Path

from xir.diagnostics import XirError

from .select import check_macs_ratio, choose_ratios
from .sensitivity import DEFAULT_RATIOS, sensitivity_table

INDEX = "index.json"
FORMAT = "xir-prune-steps-1"


def step_path(checkpoint_dir, step: int) -> Path:
    """The IR file of ``step`` in ``checkpoint_dir``: ``step_<k>.xir``."""
    return Path(checkpoint_dir) / f"step_{step}.xir"


def prune_iteratively(module, evaluate, macs_ratio, iterations: int, checkpoint_dir,
                      ratios=DEFAULT_RATIOS, criterion: str = "l1", divisor: int = 16,
                      workers: int | None = None, ray_address: str | None = None,
                      progress: bool = True, recover=None):
    """Prune ``module`` to ``macs_ratio`` of its MACs in ``iterations`` steps; return the result.

    ``evaluate(module) -> float`` is the metric (higher is better) the sensitivity analysis and
    the checkpoints use; ``ratios``, ``criterion``, ``workers``, ``ray_address`` and ``progress``
    go to :func:`~.sensitivity.sensitivity_table`, ``divisor`` to :func:`~.select.choose_ratios`.
    ``recover(pruned, before, removed) -> module``, if given, runs after every removal (``before``
    is the model the step started from, ``removed`` the channels it removed, by group), e.g.
    BN re-estimation or a fine-tune. Every step is written to ``checkpoint_dir`` (created if
    needed) as described in the module docstring.
    """
    from xir.weights import save_module

    from .groups import find_groups
    from .macs import model_macs, model_params
    from .transform import remove_channels

    ratio = check_macs_ratio(macs_ratio)
    if int(iterations) != iterations or iterations < 1:
        raise XirError(f"the number of pruning iterations must be a positive integer, "
                       f"got {iterations}")
    iterations = int(iterations)
    directory = Path(checkpoint_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise XirError(f"cannot create checkpoint directory '{directory}': {e.strerror}") from None
    original = int(model_macs(module))
    steps: list[dict] = []

    def checkpoint(step: int, current, removed: dict) -> None:
        path = step_path(directory, step)
        save_module(current, str(path))
        macs = int(model_macs(current))
        steps.append({"step": step, "file": path.name, "metric": float(evaluate(current)),
                      "macs": macs, "macs_ratio": macs / original if original else 1.0,
                      "params": int(model_params(current)), "removed": removed})
        _write_index(directory, ratio, iterations, original, steps)

    current = module
    checkpoint(0, current, {})
    for step in range(1, iterations + 1):
        goal = original * ratio ** (step / iterations)
        macs = model_macs(current)
        removed: dict = {}
        if macs > goal:
            groups = find_groups(current)
            table = sensitivity_table(current, groups, evaluate, ratios, criterion, workers,
                                      ray_address, progress,
                                      model_path=step_path(directory, step - 1))
            removed = choose_ratios(table, groups, macs_ratio=min(goal / macs, 1.0),
                                    divisor=divisor, module=current)
            before, current = current, remove_channels(current, removed)
            if recover is not None:
                current = recover(current, before, removed)
        checkpoint(step, current, removed)
    return current


def _write_index(directory: Path, ratio: float, iterations: int, original: int, steps) -> None:
    from xir.files import write_atomically

    index = {"format": FORMAT, "macs_ratio": ratio, "iterations": iterations,
             "original_macs": original, "steps": steps}
    write_atomically(str(directory / INDEX), json.dumps(index, indent=1) + "\n")


def read_index(checkpoint_dir) -> dict:
    """The ``index.json`` of ``checkpoint_dir`` (one-line XirError if missing or malformed)."""
    path = Path(checkpoint_dir) / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise XirError(f"'{checkpoint_dir}' holds no pruning checkpoints (no {INDEX})") from None
    except (OSError, ValueError) as e:
        raise XirError(f"cannot read '{path}': {e}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise XirError(f"'{path}' is not an index of pruning checkpoints")
    return index


def backtrack(checkpoint_dir, step: int):
    """The model after ``step`` (0: the original), parsed back from its checkpoint."""
    from xir.parser import parse

    index = read_index(checkpoint_dir)
    known = [entry["step"] for entry in index["steps"]]
    if step not in known:
        raise XirError(f"'{checkpoint_dir}' has no pruning step {step} (steps: "
                       f"{', '.join(map(str, known))})")
    path = step_path(checkpoint_dir, step)
    try:
        text = path.read_text()
    except OSError as e:
        raise XirError(f"cannot read checkpoint '{path}': {e.strerror}") from None
    return parse(text, str(path))
