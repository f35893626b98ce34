"""Choosing how many channels each group keeps, from a sensitivity table.

:func:`choose_ratios` removes channels greedily, a ``divisor`` at a time from one group per step,
always where the table says the metric loses least per MAC removed, until the model keeps at most a
MAC ratio, or as long as the estimated metric stays above a floor. Kept channel counts are multiples
of the divisor, the target's channel parallelism by default (:func:`default_divisor`): a DPU
computes ``output_channel_parallel`` channels at once, so any other count wastes cycles.
"""

from __future__ import annotations

import attrs

from xir.diagnostics import XirError

from .sensitivity import SensitivityTable, prunable_groups

MAX_CORRECTIONS = 8  # exact MAC checks before giving up on a target the estimate keeps missing


def default_divisor(target) -> int:
    """The channel parallelism of ``target`` (a :class:`~xir.backend.targets.Target` or anything
    :func:`~xir.backend.targets.load_target` takes): 16 on B4096."""
    from xir.backend.targets import load_target

    return int(load_target(target).conv.output_channel_parallel)


def allowed_counts(channels: int, divisor: int) -> list[int]:
    """The channel counts a group of ``channels`` may keep, decreasing: itself, then every
    multiple of ``divisor`` below it down to ``divisor`` (only itself when it is smaller than
    ``divisor``)."""
    multiples = range((channels - 1) // divisor * divisor, divisor - 1, -divisor)
    return [channels, *multiples]


def check_macs_ratio(macs_ratio) -> float:
    """``macs_ratio`` as a float in (0, 1]; XirError otherwise."""
    try:
        ratio = float(macs_ratio)
    except (TypeError, ValueError):
        raise XirError(f"the MAC ratio must be a number in (0, 1], got {macs_ratio!r}") from None
    if not 0 < ratio <= 1:
        raise XirError(f"the MAC ratio must be in (0, 1], got {macs_ratio}")
    return ratio


@attrs.define
class _Greedy:
    """The state of the greedy search: the count each group keeps, the estimated MACs and metric."""

    table: SensitivityTable
    groups: dict                 # name -> ChannelGroup
    options: dict                # name -> allowed counts, decreasing
    kept: dict                   # name -> current count
    macs: float                  # estimated MACs kept
    metric: float                # estimated metric (baseline plus every group's change)
    layers: dict = attrs.Factory(dict)  # name -> the table's MacLayers the group touches

    def __attrs_post_init__(self):
        for layer in self.table.layers:
            for name in {*layer.scaled, *(g for g, _ in layer.inputs)}:
                self.layers.setdefault(name, []).append(layer)

    def step(self, name: str, back: bool = False) -> tuple[int, float, float]:
        """The next count of group ``name`` (with ``back``, the previous one), the MACs that
        step removes (negative going back) and the metric change."""
        group, count = self.groups[name], self.kept[name]
        options = self.options[name]
        following = options[options.index(count) + (-1 if back else 1)]
        channels = self.table.channels[name]
        if self.table.layers:
            after, all_channels = {**self.kept, name: following}, self.table.channels
            removed_macs = sum(layer.kept(self.kept, all_channels) - layer.kept(after, all_channels)
                               for layer in self.layers.get(name, ()))
        else:  # a table without a MAC model: the group's MACs, linear in its channels
            removed_macs = group.macs * (count - following) / channels
        change = (self.table.metric_at(name, 1 - following / channels)
                  - self.table.metric_at(name, 1 - count / channels))
        return following, removed_macs, change

    def best_step(self, metric_floor) -> str | None:
        """The group whose next step loses the least metric per MAC removed (keeping the
        estimated metric at or above ``metric_floor``), or None when no step is left."""
        best, best_cost = None, None
        for name, count in self.kept.items():
            if count == self.options[name][-1]:
                continue
            _, removed_macs, change = self.step(name)
            if removed_macs <= 0:
                continue
            if metric_floor is not None and self.metric + change < metric_floor:
                continue
            cost = -change / removed_macs
            if best_cost is None or cost < best_cost:
                best, best_cost = name, cost
        return best

    def give_back(self, goal: float) -> bool:
        """Undo the one step whose undoing gains the most metric while the estimated MACs stay
        within ``goal`` (the last greedy step may have overshot it); False if none does."""
        best, best_gain = None, 0.0
        for name, count in self.kept.items():
            if count == self.options[name][0]:
                continue
            _, removed_macs, change = self.step(name, back=True)
            if self.macs - removed_macs <= goal and change > best_gain:
                best, best_gain = name, change
        if best is not None:
            self.take(best, back=True)
        return best is not None

    def take(self, name: str, back: bool = False) -> None:
        following, removed_macs, change = self.step(name, back)
        self.kept[name] = following
        self.macs -= removed_macs
        self.metric += change

    def removed(self) -> dict[str, list[int]]:
        return {name: self.table.removed(name, count) for name, count in self.kept.items()
                if count < self.table.channels[name]}


def choose_ratios(table: SensitivityTable, groups, macs_ratio=None, metric_floor=None,
                  divisor: int = 16, module=None) -> dict[str, list[int]]:
    """The channels to remove, by group name (indices, the least important by the table's order).

    With ``macs_ratio`` the model keeps at most that share of its MACs (0.5 keeps half); with
    ``metric_floor`` the metric the table predicts (each group's loss added up) stays at or above
    it; with both, pruning stops at whichever comes first. Each step removes channels from the group
    whose metric falls least per MAC removed, the table interpolated between its ratios. Kept
    counts are multiples of ``divisor`` (at least ``divisor``, never more than the group has; a
    group smaller than ``divisor`` is left alone).

    MACs kept are counted with the table's MAC model (``table.layers``: each layer's MACs scale
    with the kept share of its output and of its input channels), or, for a table without one,
    estimated from each group's ``macs``, linear in its channels. With ``module`` (the model the
    table and groups were made from) the result is checked with
    :func:`~xir.passes.prune.transform.remove_channels` and
    :func:`~xir.passes.prune.macs.model_macs`, and pruning goes on until the target truly holds.
    XirError for a ratio outside (0, 1], no prunable group, or a MAC target that the divisor and
    the unprunable layers do not allow.
    """
    if macs_ratio is None and metric_floor is None:
        raise XirError("choose a MAC ratio or a metric floor to prune to")
    ratio = None if macs_ratio is None else check_macs_ratio(macs_ratio)
    if int(divisor) != divisor or divisor < 1:
        raise XirError(f"the channel divisor must be a positive integer, got {divisor}")
    divisor = int(divisor)
    prunable = prunable_groups(groups)
    missing = [g.name for g in prunable if g.name not in table.metrics]
    if missing:
        raise XirError(f"the sensitivity table has no group '{missing[0]}': it was made for "
                       f"another model")
    search = _Greedy(table, {g.name: g for g in prunable},
                     {g.name: allowed_counts(g.channels, divisor) for g in prunable},
                     {g.name: g.channels for g in prunable}, float(table.macs), table.baseline)
    if ratio is None:
        _prune_to(search, None, metric_floor)
        return search.removed()
    target = ratio * table.macs
    goal = target
    for _ in range(MAX_CORRECTIONS):
        exhausted = not _prune_to(search, goal, metric_floor)
        if module is None:
            if exhausted and metric_floor is None and search.macs > target:
                raise _unreachable(ratio, search.macs / table.macs, divisor)
            return search.removed()
        exact = _exact_macs(module, search.removed())
        if exact <= target or exhausted:
            if exact > target and metric_floor is None:
                raise _unreachable(ratio, exact / table.macs, divisor)
            return search.removed()
        goal -= exact - target  # the estimate was optimistic by this much: aim lower
    raise _unreachable(ratio, exact / table.macs, divisor)


def _prune_to(search: _Greedy, goal, metric_floor) -> bool:
    """Take steps until the estimated MACs reach ``goal`` (None: as far as the floor allows);
    False if no step was left before that."""
    while goal is None or search.macs > goal:
        name = search.best_step(metric_floor)
        if name is None:
            return False
        search.take(name)
    while search.give_back(goal):
        pass
    return True


def _exact_macs(module, removed) -> int:
    from .macs import model_macs
    from .transform import remove_channels

    return int(model_macs(remove_channels(module, removed) if removed else module))


def _unreachable(ratio: float, best: float, divisor: int) -> XirError:
    return XirError(f"cannot prune to MAC ratio {ratio:g}: with channel counts multiples of "
                    f"{divisor}, the model keeps at least {best:.3f} of its MACs")
