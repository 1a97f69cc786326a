"""Export of trained policies for robot controllers: ONNX, TorchScript and C99, verified."""

from app.export.bundle import ExportError, ExportResult, export_run

__all__ = ["ExportError", "ExportResult", "export_run"]
