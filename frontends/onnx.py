"""ONNX import: ``import_onnx(model_or_path) -> ModuleOp`` (see :mod:`.onnx_import`; the op
mapping table is in :mod:`.onnx_ops`)."""

from .onnx_import import import_onnx, load_model

__all__ = ["import_onnx", "load_model"]
