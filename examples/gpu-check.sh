#!/usr/bin/env bash
# The checks qbench's GPU path needs on a CUDA machine (TensorRT, ONNX Runtime CUDA, PyTorch CUDA),
# in one go: install the gpu extras, run the GPU-marked tests, then the pipeline on the embedded
# data set with every GPU variant, and leave the reports (Markdown: GPU compute vs host latency per
# batch size, memory, top-1 agreement) in OUT.
#
#   examples/gpu-check.sh [OUT]        (default OUT: gpu-check/)
set -euo pipefail
out="${1:-gpu-check}"
mkdir -p "$out"
python3 -m venv .venv-gpu
.venv-gpu/bin/python -m pip install --quiet --upgrade pip
.venv-gpu/bin/python -m pip install --quiet -e '.[dev,gpu]' 2>&1 | tail -5 | tee "$out/install.txt"
# onnxruntime (a base requirement) and onnxruntime-gpu write the same package: keep the GPU build only
.venv-gpu/bin/python -m pip uninstall --quiet -y onnxruntime
.venv-gpu/bin/python -m pip install --quiet --force-reinstall --no-deps onnxruntime-gpu
.venv-gpu/bin/qbench info > "$out/info.txt" 2>&1 || true
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
.venv-gpu/bin/python -m pytest -m "gpu or tensorrt" -rs -q tests 2>&1 | tee "$out/gpu-tests.txt" | tail -30
modes=fp32,fp16,bf16,onnx,onnx-fp16,onnx-int8,onnx-tensorrt-fp16,tensorrt-fp16,tensorrt-int8,tensorrt-qat
.venv-gpu/bin/qbench run --device cuda --modes "$modes" --runs-dir "$out/runs" --report text,html,md,json 2>&1 \
  | tee "$out/run.txt" | tail -40
.venv-gpu/bin/qbench run --device cuda --modes fp32,tensorrt-fp16 --cuda-graph --runs-dir "$out/runs-graph" \
  --report md 2>&1 | tail -20 | tee "$out/run-cuda-graph.txt"
