"""ONNX import: ``import_onnx(model_or_path) -> ModuleOp`` (see :mod:`.onnx_import`; the op
mapping table is in :mod:`.onnx_ops`). Export: ``export_onnx``/``save_onnx`` (:mod:`.onnx_export`)."""

from .onnx_export import export_onnx, save_onnx
from .onnx_import import import_onnx, load_model

__all__ = ["import_onnx", "load_model", "export_onnx", "save_onnx"]
