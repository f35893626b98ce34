"""Evaluators: the metric that sensitivity analysis and iterative pruning score a pruned model by.

An evaluator is any ``evaluate(module) -> float``, higher is better. :func:`onnx_evaluator` makes
the usual one (an :class:`OnnxEvaluator`): it exports the module to ONNX, runs it in onnxruntime on
evaluation data and scores the outputs, as top-1 accuracy against labels or with a user metric
``module:function`` (:func:`load_metric`). It pickles, so it runs on worker processes and Ray
tasks; :func:`evaluator_name` and :func:`evaluator_key` name it in a sensitivity table and in the
table's cache key.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from xir.diagnostics import XirError


def one_line_error(error: BaseException) -> str:
    """``error`` as ``Type: message`` on one line (its line breaks and runs of spaces folded)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def evaluator_name(evaluate) -> str:
    """The metric's name: an :class:`OnnxEvaluator`'s, else the callable's ``module:qualname``."""
    name = getattr(evaluate, "name", None)
    if isinstance(name, str):
        return name
    qualname = getattr(evaluate, "__qualname__", type(evaluate).__name__)
    return f"{getattr(evaluate, '__module__', '?')}:{qualname}"


def evaluator_key(evaluate) -> str:
    """What identifies the evaluation for the cache: its ``cache_key`` attribute (an
    :class:`OnnxEvaluator` hashes its data, labels and metric there), else only its name, so a
    plain callable's cache is not invalidated when its data changes."""
    key = getattr(evaluate, "cache_key", None)
    return key if isinstance(key, str) else evaluator_name(evaluate)


def load_metric(spec: str):
    """The function ``"module:function"`` names (one-line XirError if it cannot be loaded)."""
    import importlib

    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise XirError(f"metric '{spec}' is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise XirError(f"cannot load metric '{spec}': {one_line_error(e)}") from None
    function = module
    for part in function_name.split("."):
        function = getattr(function, part, None)
    if not callable(function):
        raise XirError(f"cannot load metric '{spec}': module '{module_name}' has no function "
                       f"'{function_name}'")
    return function


def _hash_arrays(h, arrays: dict) -> None:
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        h.update(array.tobytes())


class OnnxEvaluator:
    """``evaluate(module) -> float``: export the module to ONNX, run it in onnxruntime (one thread)
    on ``data`` and score the outputs: top-1 accuracy (a fraction) against ``labels``, or
    ``metric(outputs, data)`` (outputs: the model's outputs in order, data: the whole mapping).

    Picklable (a metric given as ``module:function`` is loaded again in each process), so it runs
    on worker processes and Ray tasks.
    """

    def __init__(self, data: dict, labels=None, metric=None):
        self.data = {name: np.asarray(array) for name, array in data.items()}
        self.labels = None if labels is None else np.asarray(labels)
        self.spec = metric if isinstance(metric, str) else None
        self._metric = load_metric(metric) if isinstance(metric, str) else metric
        if metric is None:
            self.name = "accuracy"
            if self.labels is None:
                raise XirError("evaluation data has no labels: give labels, or a metric "
                               "module:function")
        else:
            self.name = self.spec or evaluator_name(metric)
        h = hashlib.sha256(self.name.encode())
        _hash_arrays(h, self.data)
        if self.labels is not None:
            _hash_arrays(h, {"labels": self.labels})
        self.cache_key = h.hexdigest()

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.spec is not None:
            state["_metric"] = None
        return state

    def __call__(self, module) -> float:
        outputs = self.run(module)
        if self._metric is None and self.spec is not None:
            self._metric = load_metric(self.spec)
        if self._metric is None:
            return self.accuracy(outputs[0])
        try:
            value = float(self._metric(outputs, self.data))
        except Exception as e:
            raise XirError(f"metric '{self.name}' raised {one_line_error(e)}") from None
        if not np.isfinite(value):
            raise XirError(f"metric '{self.name}' returned {value}, not a finite number")
        return value

    def accuracy(self, logits: np.ndarray) -> float:
        """Top-1 accuracy of ``logits`` (samples on the first axis) against the labels (class
        indices, or one-hot rows)."""
        labels = self.labels
        if labels.ndim > 1:  # one-hot rows
            labels = labels.reshape(len(labels), -1).argmax(1)
        if len(labels) != len(logits):
            raise XirError(f"the labels have {len(labels)} entries but the data has "
                           f"{len(logits)} samples")
        return float(np.mean(logits.reshape(len(logits), -1).argmax(1) == labels))

    def run(self, module) -> list[np.ndarray]:
        """The outputs of ``module`` on the data, from onnxruntime with one thread."""
        import onnxruntime as ort

        from xir.frontends.onnx_export import export_onnx

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(export_onnx(module).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        feeds = self._feeds(session.get_inputs())
        samples = len(next(iter(feeds.values())))
        batch = session.get_inputs()[0].shape[0]
        batch = batch if isinstance(batch, int) and batch > 0 else samples
        try:
            parts = [session.run(None, {k: v[i:i + batch] for k, v in feeds.items()})
                     for i in range(0, samples, batch)]
        except Exception as e:  # onnxruntime's errors: wrong dtype or shape of the data
            raise XirError(f"cannot run the model on the evaluation data: "
                           f"{one_line_error(e)}") from None
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]

    def _feeds(self, inputs) -> dict:
        if len(inputs) == 1 and len(self.data) == 1:
            arrays = {inputs[0].name: next(iter(self.data.values()))}
        else:
            arrays = self.data
        feeds = {}
        for spec in inputs:
            if spec.name not in arrays:
                raise XirError(f"evaluation data has no array '{spec.name}' for the model's "
                               f"input (it has: {', '.join(sorted(self.data))})")
            array = arrays[spec.name]
            if spec.type == "tensor(float)" and array.dtype.kind == "f":
                array = array.astype(np.float32, copy=False)
            feeds[spec.name] = array
        return feeds


def onnx_evaluator(data, labels=None, metric=None) -> OnnxEvaluator:
    """An ``evaluate(module) -> float`` for :func:`~.sensitivity.sensitivity_table`: top-1
    accuracy against ``labels``, or a user ``metric(outputs, data) -> float`` (a callable, or
    ``"module:function"``).

    ``data`` maps the model's input names to arrays (samples first; a single array feeds a
    single-input model whatever its name), or is the path of such an ``.npz``; ``labels`` is an
    array or the path of an ``.npy``. Errors (unreadable files, no labels and no metric, a metric
    that cannot be loaded, or that raises) are one-line XirErrors.
    """
    from xir.files import read_npz

    if isinstance(data, (str, os.PathLike)):
        data = read_npz(str(data), "evaluation data")
    if isinstance(labels, (str, os.PathLike)):
        path = str(labels)
        try:
            labels = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise XirError(f"cannot read labels '{path}': {one_line_error(e)}") from None
        if not isinstance(labels, np.ndarray):
            raise XirError(f"cannot read labels '{path}': not an .npy array")
    return OnnxEvaluator(data, labels, metric)
