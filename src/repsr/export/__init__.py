"""Exporting merged networks for deployment outside PyTorch (ONNX, INT8 QDQ); the engines that run the
files live in :mod:`repsr.inference.engines`."""

from repsr.export.onnx import export_onnx

__all__ = ["export_onnx"]
