"""ONNX import: ``import_onnx(model_or_path) -> ModuleOp`` (see :mod:`.onnx_import`; the op
mapping table is in :mod:`.onnx_ops`). Export: ``export_onnx``/``save_onnx`` (:mod:`.onnx_export`); a
quant-dialect module as ONNX QDQ: ``export_qdq`` (:mod:`.onnx_qdq`)."""

from .onnx_export import export_onnx, save_onnx
from .onnx_import import import_onnx, load_model
from .onnx_qdq import export_qdq

__all__ = ["import_onnx", "load_model", "export_onnx", "save_onnx", "export_qdq"]
