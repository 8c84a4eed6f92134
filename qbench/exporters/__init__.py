"""Conversions from the FP32 baseline into deployment variants (one module per mode)."""
