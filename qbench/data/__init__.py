"""Datasets (registry) and named transform presets."""
