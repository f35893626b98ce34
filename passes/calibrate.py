"""calibrate: stream calibration samples through the float executor and keep what choosing fix
points needs, per tensor.

For every value of ``@main`` (its inputs and every op's results) a :class:`TensorStats` keeps the
running minimum and maximum, the per-batch vote of the diffs method, and a bounded uniform sample
of the values (for percentiles), so memory does not grow with the number of samples. The samples
come from a dict of arrays keyed by the model's input names (a calibration ``.npz``), the first
axis indexing samples; they run in batches through :func:`xir.interpreter.run_function` with a
progress bar.
"""

from __future__ import annotations

import warnings

import numpy as np

from xir import types as T
from xir.diagnostics import XirError

from . import fixpoint
from .progress import Progress

MIN_SAMPLES = 100  # fewer calibration samples than this earns a warning
SAMPLE_SIZE = 1 << 16  # values kept per tensor for percentiles
VOTE_SIZE = 1 << 18  # values of a batch the diffs vote looks at, at most


class TensorStats:
    """What calibration saw of one tensor."""

    def __init__(self, rng: np.random.Generator):
        self.low, self.high = np.inf, -np.inf
        self.votes = fixpoint.Votes()
        self.sample = np.empty(0, np.float32)
        self.count = 0
        self._rng = rng

    def update(self, x: np.ndarray, vote: bool = True, keep: bool = True) -> None:
        """Take in one batch of the tensor's values: its range always, a diffs vote if ``vote``
        and a share of the uniform sample if ``keep``."""
        x = np.asarray(x, np.float32)
        if x.size == 0:
            return
        self.low = min(self.low, float(x.min()))
        self.high = max(self.high, float(x.max()))
        flat = x.reshape(-1)
        if vote:
            # the squared error is estimated on an evenly strided subset of a large batch; the
            # candidates still start from the batch's true range
            stride = -(-flat.size // VOTE_SIZE)
            self.votes.add(fixpoint.diffs_fp(flat[::stride], low=float(x.min()),
                                             high=float(x.max())))
        if keep:
            self._keep(flat)
        self.count += x.size

    def _keep(self, flat: np.ndarray) -> None:
        # a uniform sample of everything seen: each batch's share in proportion to its size
        total = self.count + flat.size
        keep_new = min(flat.size, round(SAMPLE_SIZE * flat.size / total)) if total > SAMPLE_SIZE \
            else flat.size
        keep_old = min(self.sample.size, SAMPLE_SIZE - keep_new)
        new = flat if keep_new == flat.size else flat[self._rng.integers(0, flat.size, keep_new)]
        old = self.sample if keep_old == self.sample.size else \
            self.sample[self._rng.integers(0, self.sample.size, keep_old)]
        self.sample = np.concatenate([old, new])

    def fix_point(self, method: str = "diffs") -> int:
        """The fix point ``method`` (``diffs``, ``nonoverflow`` or ``percentile``) chooses."""
        if method == "nonoverflow" or (method == "diffs" and self.votes.winner() is None):
            return fixpoint.nonoverflow_fp(self.low, self.high)
        if method == "diffs":
            return self.votes.winner()
        if method == "percentile":
            return fixpoint.percentile_fp(self.sample)
        raise ValueError(f"unknown calibration method '{method}' (diffs, nonoverflow, percentile)")


class Calibration:
    """The statistics of every tensor of one function, keyed by IR value."""

    def __init__(self, func, seed: int = 0, methods=("diffs", "nonoverflow", "percentile")):
        self.func = func
        self.vote, self.keep = "diffs" in methods, "percentile" in methods
        self.stats: dict = {}
        self.samples = 0
        self._rng = np.random.default_rng(seed)
        self.block = func.regions[0].blocks[0]

    def stats_of(self, value) -> TensorStats:
        """The statistics of IR value ``value`` (KeyError if calibration never saw it)."""
        return self.stats[value]

    def observe_inputs(self, arrays: list) -> None:
        """Record the function's inputs for one batch."""
        for arg, array in zip(self.block.args, arrays):
            self._update(arg, array)

    def observe(self, op, outputs) -> None:
        """The interpreter's observe hook: record ``op``'s outputs (constants excepted)."""
        if op.name.endswith(".constant"):
            return
        for result, array in zip(op.results, outputs):
            self._update(result, array)

    def _update(self, value, array) -> None:
        if not isinstance(value.type, T.TensorType) or value.type.element_type != T.f32:
            return
        stats = self.stats.get(value)
        if stats is None:
            stats = self.stats[value] = TensorStats(self._rng)
        stats.update(array, vote=self.vote, keep=self.keep)


def calibration_batches(func, data: dict, batch_size: int, source: str = "calibration data"):
    """The batches of ``data`` for ``func``'s inputs, checked: every input present, of the right
    shape (the first axis counts samples) and finite. Returns ``(list of input dicts, samples)``;
    warns when there are fewer than :data:`MIN_SAMPLES`."""
    from xir.interpreter import input_names

    names, shown = input_names(func)
    args = func.regions[0].blocks[0].args
    arrays = []
    for name, label, arg in zip(names, shown, args):
        array = data.get(label, data.get(name))
        if array is None:
            raise XirError(f"{source} has no input '{label}' (it holds: "
                           f"{', '.join(sorted(data)) or 'nothing'})")
        array = np.asarray(array)
        expected = [None if d == T.DYNAMIC else d for d in arg.type.shape[1:]]
        if array.ndim != len(arg.type.shape) or any(
                e is not None and e != a for e, a in zip(expected, array.shape[1:])):
            want = "x".join("?" if e is None else str(e) for e in expected)
            raise XirError(f"{source}: input '{label}' has shape {tuple(array.shape)}; expected "
                           f"(samples, {want.replace('x', ', ')})")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise XirError(f"{source}: input '{label}' holds {bad} NaN or infinite values")
        arrays.append(array.astype(np.float32) if array.dtype.kind == "f" else array)
    samples = {a.shape[0] for a in arrays}
    if len(samples) != 1:
        raise XirError(f"{source}: inputs hold different numbers of samples ({sorted(samples)})")
    count = samples.pop()
    if count < MIN_SAMPLES:
        warnings.warn(f"{source} holds only {count} samples; {MIN_SAMPLES} or more give stabler "
                      "fix points", stacklevel=2)
    static_batch = args[0].type.shape[0] if args else T.DYNAMIC
    step = batch_size if static_batch == T.DYNAMIC else static_batch
    batches = [{n: a[i:i + step] for n, a in zip(names, arrays)}
               for i in range(0, count - (count % step if static_batch != T.DYNAMIC else 0), step)]
    return batches, count


def calibrate(func, data: dict, batch_size: int = 32, progress: bool = False,
              source: str = "calibration data",
              methods=("diffs", "nonoverflow", "percentile")) -> Calibration:
    """Run ``func`` (a graph-dialect ``func.func``) on every calibration sample in ``data`` and
    return the statistics of each of its tensors (only what ``methods`` need: the range always,
    the diffs votes, the sample for percentiles)."""
    from xir.interpreter import run_function

    batches, count = calibration_batches(func, data, batch_size, source)
    calibration = Calibration(func, methods=methods)
    bar = Progress(progress, len(batches), "calibrating", terminal_only=False)
    for batch in batches:
        calibration.observe_inputs(list(batch.values()))
        run_function(func, batch, observe=calibration.observe)
        calibration.samples += next(iter(batch.values())).shape[0]
        bar.advance()
    bar.close()
    return calibration
