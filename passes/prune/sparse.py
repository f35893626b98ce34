"""Sparse pruning: zero individual weights, by magnitude or in an N:M pattern, and report it.

:func:`sparsify` zeroes weights of the convolutions and dense layers (``graph.conv2d``,
``graph.gemm``) of a graph-dialect module, in a clone:

- ``kind="magnitude"``: the ``sparsity`` fraction of weights with the smallest absolute values,
  counted per layer (``scope="layer"``: every layer ends ``sparsity`` sparse, to the weight) or
  over all chosen layers at once (``scope="global"``: one threshold, so the layers that matter
  least give the most);
- ``kind="2:4"`` (any ``"N:M"``): in every run of M consecutive input channels of a weight (at
  each output channel and kernel position) only the N largest weights stay, the layout sparse
  tensor cores accelerate. A layer whose input channels per group are not a multiple of M (the
  first conv of an image model, a depthwise conv) is left dense and listed as skipped.

The report lists each layer's weights and zeros and the overall sparsity. The DPU gains no
speed from any of it: it computes every multiply-accumulate, zero or not (the inspector says so
on every layer whose weights are sparse, :func:`sparsity_note`); sparsity only makes the model
compress better. Channel pruning (:mod:`.groups`) is what makes the DPU faster.
"""

from __future__ import annotations

import re

import attrs
import numpy as np

from xir.diagnostics import XirError

from ..dpu_rules import constant_array, is_constant, node_name
from .finetune import set_constant
from .transform import input_axis, output_axis

SPARSE_LAYERS = ("graph.conv2d", "graph.gemm")
NOTE_FROM = 0.1  # the inspector notes layers with at least this fraction of zero weights
_PATTERN = re.compile(r"^(\d+):(\d+)$")


@attrs.frozen
class LayerSparsity:
    """One layer's weights after sparse pruning: ``zeros`` of its ``weights`` are zero."""

    name: str
    weights: int
    zeros: int

    @property
    def sparsity(self) -> float:
        """The fraction of the layer's weights that are zero."""
        return self.zeros / self.weights if self.weights else 0.0

    def to_json(self) -> dict:
        """The layer as the JSON report lists it."""
        return {"name": self.name, "weights": self.weights, "zeros": self.zeros,
                "sparsity": self.sparsity}


@attrs.frozen
class SparsityReport:
    """What :func:`sparsify` did: the kind asked for, each pruned layer, and the layers it left
    dense with the reason (``skipped``: ``(name, reason)`` pairs)."""

    kind: str
    layers: tuple = attrs.field(converter=tuple)
    skipped: tuple = attrs.field(default=(), converter=tuple)

    @property
    def weights(self) -> int:
        """Weights of the pruned layers."""
        return sum(layer.weights for layer in self.layers)

    @property
    def zeros(self) -> int:
        """Zero weights in the pruned layers."""
        return sum(layer.zeros for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """The overall fraction of zero weights over the pruned layers."""
        return self.zeros / self.weights if self.weights else 0.0

    def to_json(self) -> dict:
        """The report as JSON data."""
        return {"kind": self.kind, "weights": self.weights, "zeros": self.zeros,
                "sparsity": self.sparsity, "layers": [layer.to_json() for layer in self.layers],
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped]}

    def text(self) -> str:
        """One line per layer, then the total."""
        width = max([len(layer.name) for layer in self.layers] + [5])
        lines = [f"{layer.name:<{width}}  {layer.weights:>9,} weights  "
                 f"{layer.sparsity:6.1%} zero" for layer in self.layers]
        lines += [f"{name:<{width}}  left dense: {reason}" for name, reason in self.skipped]
        lines.append(f"{'total':<{width}}  {self.weights:>9,} weights  {self.sparsity:6.1%} zero "
                     f"({self.kind}; the DPU computes every MAC: no speed-up)")
        return "\n".join(lines)


def sparse_layers(func) -> list:
    """The ops of ``func``'s body whose weights sparse pruning can zero: convolutions and dense
    layers with a constant weight."""
    return [op for op in func.regions[0].blocks[0].ops
            if op.name in SPARSE_LAYERS and len(op.operands) > 1 and is_constant(op.operands[1])]


def sparsify(module, kind: str = "magnitude", sparsity: float = 0.5, layers=None,
             scope: str = "layer"):
    """A clone of ``module`` with weights zeroed, and its :class:`SparsityReport`.

    ``kind`` is ``"magnitude"`` or an ``"N:M"`` pattern such as ``"2:4"`` (whose sparsity is
    1 - N/M; ``sparsity`` is then unused). ``layers`` names the layers to prune (by node name;
    all convolutions and dense layers by default); ``scope`` is ``"layer"`` or ``"global"``
    for magnitude pruning. Mistakes are XirErrors naming the argument or layer."""
    from xir.symbols import entry_function

    pattern = _parse_kind(kind)
    if pattern is None and not 0.0 <= sparsity < 1.0:
        raise XirError(f"sparsity {sparsity} is outside [0, 1)")
    if scope not in ("layer", "global"):
        raise XirError(f"scope '{scope}' is neither 'layer' nor 'global'")
    clone = module.clone()
    chosen = _chosen_layers(entry_function(clone, "main", "sparsify"), layers)
    weights = {op: _weight_matrix(op) for op in chosen}
    skipped = []
    if pattern is not None:
        masks = {}
        for op, w in weights.items():
            reason = _nm_unfit(op, w, pattern[1])
            if reason is None:
                masks[op] = _nm_mask(w, *pattern)
            elif layers is None:
                skipped.append((node_name(op), reason))
            else:
                raise XirError(f"{node_name(op)}: cannot be {kind} sparse: {reason}")
    elif scope == "global":
        masks = _global_masks(weights, sparsity)
    else:
        masks = {op: _magnitude_mask(np.abs(w), sparsity) for op, w in weights.items()}
    report = []
    for op, mask in masks.items():
        w = np.where(mask, 0.0, weights[op])
        set_constant(op, 1, _from_matrix(op, w))
        report.append(LayerSparsity(node_name(op), int(w.size), int(np.count_nonzero(w == 0))))
    return clone, SparsityReport(kind, report, skipped)


def sparsity_note(op, name: str) -> str | None:
    """The inspector's note on a layer whose weights are sparse (at least :data:`NOTE_FROM`
    of them zero), or None: the DPU computes every MAC, so the zeros buy no speed."""
    if op.name not in SPARSE_LAYERS or len(op.operands) < 2 or not is_constant(op.operands[1]):
        return None
    weight = constant_array(op.operands[1])
    if weight.size == 0:
        return None
    fraction = 1.0 - np.count_nonzero(weight) / weight.size
    if fraction < NOTE_FROM:
        return None
    return (f"{name}: weights {fraction * 100:.0f} % sparse: the DPU gains no speed from "
            "sparsity (it computes every MAC)")


# -- the masks -----------------------------------------------------------------------------------


def _parse_kind(kind: str):
    """None for magnitude pruning, else the ``(N, M)`` of an N:M pattern."""
    if kind == "magnitude":
        return None
    match = _PATTERN.match(str(kind))
    if match is None:
        raise XirError(f"sparse kind '{kind}' is neither 'magnitude' nor an N:M pattern like 2:4")
    n, m = int(match[1]), int(match[2])
    if not 0 < n < m:
        raise XirError(f"sparse pattern '{kind}': N must be between 1 and M - 1")
    return n, m


def _chosen_layers(func, layers) -> list:
    """The layers to prune: all of :func:`sparse_layers`, or those named (each must be one)."""
    available = sparse_layers(func)
    if layers is None:
        return available
    by_name = {node_name(op): op for op in available}
    missing = [name for name in layers if name not in by_name]
    if missing:
        raise XirError(f"layer '{missing[0]}' is not a convolution or dense layer with constant "
                       f"weights (there are: {', '.join(by_name) or 'none'})")
    return [by_name[name] for name in dict.fromkeys(layers)]


def _weight_matrix(op) -> np.ndarray:
    """The op's weight with the output channel first and the input channel second:
    (O, I/group, KH, KW) for a conv, (out, in) for a dense layer."""
    w = constant_array(op.operands[1], np.float32)
    return np.moveaxis(w, (output_axis(op), input_axis(op)), (0, 1))


def _from_matrix(op, w: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_weight_matrix`."""
    return np.moveaxis(w, (0, 1), (output_axis(op), input_axis(op)))


def _magnitude_mask(magnitude: np.ndarray, sparsity: float) -> np.ndarray:
    """True on the ``round(sparsity * size)`` smallest entries (ties: the first ones)."""
    mask = np.zeros(magnitude.size, bool)
    mask[np.argsort(magnitude, axis=None, kind="stable")[:round(sparsity * magnitude.size)]] = True
    return mask.reshape(magnitude.shape)


def _global_masks(weights: dict, sparsity: float) -> dict:
    """Per layer, the mask of the smallest weights over all layers together."""
    if not weights:
        return {}
    flat = _magnitude_mask(np.concatenate([np.abs(w).ravel() for w in weights.values()]),
                           sparsity)
    ends = np.cumsum([w.size for w in weights.values()])[:-1]
    return {op: part.reshape(w.shape)
            for (op, w), part in zip(weights.items(), np.split(flat, ends))}


def _nm_unfit(op, w: np.ndarray, m: int) -> str | None:
    """Why the layer's input channels cannot hold runs of ``m`` (None if they can)."""
    if w.shape[1] % m:
        return f"{w.shape[1]} input channels per group, not a multiple of {m}"
    return None


def _nm_mask(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """True on the M - N smallest of every run of ``m`` consecutive input channels (axis 1)."""
    moved = np.moveaxis(np.abs(w), 1, -1)  # (O, [KH, KW,] I)
    runs = moved.reshape(*moved.shape[:-1], moved.shape[-1] // m, m)
    order = np.argsort(runs, axis=-1, kind="stable")
    mask = np.zeros(runs.shape, bool)
    np.put_along_axis(mask, order[..., :m - n], True, axis=-1)
    return np.moveaxis(mask.reshape(moved.shape), -1, 1)
