"""FP32 baselines: model registry, trainer, checkpoint import and model summary."""
