"""Exporting merged networks for deployment outside PyTorch (ONNX; OpenVINO reads the same file)."""

from repsr.export.onnx import OnnxUpscaler, export_onnx

__all__ = ["OnnxUpscaler", "export_onnx"]
