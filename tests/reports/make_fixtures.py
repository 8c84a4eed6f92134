"""Write the recorded workspace under tests/reports/fixtures/ws (run once; the output is checked in).

    python tests/reports/make_fixtures.py

The numbers imitate a CPU run of AlexNet (10 classes, 224x224, digits test split) on a
2-core machine; they are built with the BenchResult dataclasses so the files round-trip
through ``BenchResult.from_dict``. Statistics are computed from the stored samples, so every
figure in a rendered report can be traced back to these files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from qbench.harness.result import (
    AccuracyStats,
    Agreement,
    BenchResult,
    ClassMetrics,
    LatencyStats,
    MemoryStats,
)
from qbench.workspace import Workspace, write_json

HERE = Path(__file__).resolve().parent
WS = Workspace(HERE / "fixtures" / "ws")
BATCHES = [1, 8, 16, 32, 64]
N_SAMPLES = 100
CLASSES = [str(d) for d in range(10)]
ENV = {
    "hostname": "bench-ci-01",
    "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "cpu_cores_logical": 2,
    "cpu_flags": ["avx2", "avx512f", "avx512_vnni"],
    "ram_gb": 7.6,
    "torch_version": "2.8.0+cpu",
    "cuda_version": None,
    "onnxruntime_version": "1.22.1",
    "python_version": "3.11.2",
    "device": "cpu",
    "git_commit": "702f63a",
    "timestamp": "2025-09-02T10:14:07+00:00",
}
SUMMARY = {
    "model": "alexnet",
    "input_size": 224,
    "num_classes": 10,
    "total_params": 57044810,
    "trainable_params": 57044810,
    "flops": 710151776,
    "size_bytes": 228179240,
    "size_mb": 228179240 / 2**20,
    "non_trainable_params": 0,
    "layers": [
        {
            "name": "features.0",
            "type": "2D Convolution",
            "output_shape": [-1, 64, 55, 55],
            "params": 23296,
            "flops": 70276800,
        },
        {"name": "classifier.6", "type": "Linear", "output_shape": [-1, 10], "params": 40970, "flops": 40960},
    ],
}


def latency(rng, per_image_ms: float, b1_ms: float, noisy_at: set[int]) -> list[LatencyStats]:
    out = []
    for bs in BATCHES:
        centre = b1_ms if bs == 1 else per_image_ms * bs * (1 + 0.6 / bs)
        spread = 0.18 if bs in noisy_at else 0.03
        samples = np.round(centre * rng.lognormal(0.0, spread, N_SAMPLES), 4)
        mean, std = float(samples.mean()), float(samples.std(ddof=1))
        q = np.percentile(samples, [25, 50, 75, 90, 95, 99])
        total = float(samples.sum()) / 1000.0
        out.append(
            LatencyStats(
                batch_size=bs,
                n_samples=N_SAMPLES,
                warmup_iters=10,
                cold_ms=round(centre * 3.1, 4),
                mean_ms=round(mean, 4),
                median_ms=round(float(q[1]), 4),
                std_ms=round(std, 4),
                min_ms=float(samples.min()),
                max_ms=float(samples.max()),
                p90_ms=round(float(q[3]), 4),
                p95_ms=round(float(q[4]), 4),
                p99_ms=round(float(q[5]), 4),
                iqr_ms=round(float(q[2] - q[0]), 4),
                cv=round(std / mean, 4),
                per_image_ms=round(float(q[1]) / bs, 4),
                throughput_ips=round(bs * N_SAMPLES / total, 2),
                total_s=round(total, 4),
                noisy=std / mean > 0.1,
                unreliable_percentiles=["p99"],
                gflops=round(0.710151776 * bs * N_SAMPLES / total, 2),
                sync="none",
                samples_ms=[float(s) for s in samples],
            )
        )
    return out


def accuracy(rng, labels: np.ndarray, preds: np.ndarray, ref: np.ndarray | None) -> AccuracyStats:
    n = len(CLASSES)
    conf = np.zeros((n, n), dtype=int)
    for t, p in zip(labels, preds, strict=True):
        conf[t, p] += 1
    per_class = []
    for c in range(n):
        tp = conf[c, c]
        prec = tp / max(conf[:, c].sum(), 1)
        rec = tp / max(conf[c, :].sum(), 1)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class.append(
            ClassMetrics(CLASSES[c], round(prec, 4), round(rec, 4), round(f1, 4), int(conf[c].sum()))
        )
    agreement = None
    if ref is not None:
        agreement = Agreement(
            top1_agreement=round(100.0 * float((preds == ref).mean()), 4),
            mean_abs_logit_diff=round(float(rng.uniform(0.01, 0.05)), 4),
            max_abs_logit_diff=round(float(rng.uniform(0.3, 0.9)), 4),
            cosine=round(1 - float(rng.uniform(1e-5, 4e-4)), 6),
        )
    return AccuracyStats(
        n_images=len(labels),
        top1=round(100.0 * float((preds == labels).mean()), 4),
        top5=round(100.0 - float(rng.uniform(0, 0.6)), 4),
        loss=round(float(rng.uniform(0.08, 0.12)), 6),
        per_class=per_class,
        confusion=conf.tolist(),
        agreement=agreement,
    )


def perturb(rng, preds: np.ndarray, flips: int) -> np.ndarray:
    out = preds.copy()
    for i in rng.choice(len(out), flips, replace=False):
        out[i] = (out[i] + 1 + rng.integers(0, 9)) % 10
    return out


def main() -> None:
    rng = np.random.default_rng(7)
    if WS.root.exists():
        shutil.rmtree(WS.root)
    labels = np.repeat(np.arange(10), 36)
    fp32_preds = perturb(rng, labels, 9)
    history = []
    for e in range(1, 11):
        history.append(
            {
                "epoch": e,
                "train_loss": round(1.9 * 0.72**e + 0.25, 6),
                "train_acc": round(98.9 - 70 * 0.6**e, 4),
                "val_loss": round(1.7 * 0.7**e + 0.27 + (0.004 * (e - 8) if e > 8 else 0), 6),
                "val_acc": round(98.2 - 66 * 0.58**e - (0.35 if e == 10 else 0), 4),
                "lr_backbone": 1e-4 if e < 8 else 1e-5,
                "lr_head": 1e-3 if e < 8 else 1e-4,
                "seconds": round(41.5 + rng.uniform(-2, 2), 2),
            }
        )
    best = max(history, key=lambda h: h["val_acc"])
    write_json(
        WS.train_json,
        {
            "experiment": {"name": "AlexNet_Digits_Baseline"},
            "config": {
                "model": "alexnet",
                "num_classes": 10,
                "input_size": 224,
                "epochs": 10,
                "batch_size": 64,
                "optimizer": "AdamW",
                "lr_backbone": 0.0001,
                "lr_head": 0.001,
                "weight_decay": 0.0001,
                "scheduler": "ReduceLROnPlateau",
                "early_stopping_patience": 10,
                "label_smoothing": 0.1,
                "augment": "RandomCrop, RandomHorizontalFlip, ColorJitter, RandomRotation, RandomAffine",
                "mixed_precision": False,
                "seed": 42,
                "deterministic": True,
                "device": "cpu",
                "data": {
                    "name": "digits",
                    "root": None,
                    "image_size": 224,
                    "seed": 42,
                    "split": [0.6, 0.2, 0.2],
                },
            },
            "history": history,
            "metrics": {
                "epochs_trained": 10,
                "best_val_acc": best["val_acc"],
                "best_epoch": best["epoch"],
                "final_train_acc": history[-1]["train_acc"],
                "final_val_acc": history[-1]["val_acc"],
                "final_train_loss": history[-1]["train_loss"],
                "final_val_loss": history[-1]["val_loss"],
                "early_stopped": False,
                "test_acc": round(100.0 * float((fp32_preds == labels).mean()), 4),
            },
            "summary": SUMMARY,
            "env": ENV,
            "created": "2025-09-02T09:40:12+00:00",
        },
    )
    tools = {"torch": "2.8.0+cpu", "torchvision": "0.23.0+cpu", "onnx": "1.18.0", "onnxruntime": "1.22.1"}
    model = {k: SUMMARY[k] for k in ("model", "num_classes", "input_size", "flops")}
    model.update(params=SUMMARY["total_params"], trainable_params=SUMMARY["trainable_params"])
    specs = {
        "fp32": dict(
            variant={
                "artifact": "../../baseline/model.pt",
                "format": "checkpoint",
                "dtype": "float32",
                "engine": "PyTorch eager",
                "weights": "fp32",
                "activations": "fp32",
                "runner": "torch",
                "conversion_seconds": 0.01,
            },
            size=228185412,
            per_image=7.9,
            b1=14.8,
            noisy=set(),
            flips=0,
            runner="torch",
            mem=MemoryStats(412.5, 651.2, 1296.8, 884.3, None, None, None, 5.0),
        ),
        "int8-ptq": dict(
            variant={
                "artifact": "model-int8.pt",
                "format": "torchscript",
                "dtype": "qint8",
                "engine": "x86 (torch.ao eager)",
                "weights": "int8",
                "activations": "uint8",
                "granularity": "per-channel",
                "runner": "torch",
                "conversion_seconds": 6.42,
                "calibration": {
                    "method": "minmax",
                    "batches": 8,
                    "images": 256,
                    "hash": "sha256:3f9a1c2be07d",
                    "source": "train split, test-time transforms",
                },
            },
            size=57183121,
            per_image=3.4,
            b1=6.1,
            noisy=set(),
            flips=3,
            runner="torch",
            mem=MemoryStats(405.1, 468.9, 702.4, 297.3, None, None, None, 5.0),
        ),
        "onnx": dict(
            variant={
                "artifact": "model.onnx",
                "format": "onnx",
                "dtype": "float32",
                "engine": "ONNX Runtime (CPUExecutionProvider)",
                "weights": "fp32",
                "activations": "fp32",
                "runner": "onnxruntime",
                "conversion_seconds": 3.87,
                "opset": 18,
            },
            size=228197330,
            per_image=6.8,
            b1=12.9,
            noisy={8},
            flips=0,
            runner="onnxruntime",
            mem=MemoryStats(398.7, 627.0, 1183.5, 784.8, None, None, None, 5.0),
        ),
        "qat": dict(
            variant={
                "artifact": "model-qat-int8.pt",
                "format": "torchscript",
                "dtype": "qint8",
                "engine": "x86 (torch.ao eager)",
                "weights": "int8",
                "activations": "uint8",
                "granularity": "per-channel",
                "runner": "torch",
                "conversion_seconds": 188.3,
                "qat": {
                    "epochs": 2,
                    "lr": 1e-5,
                    "history": [
                        {
                            "epoch": 1,
                            "train_loss": 0.312417,
                            "train_acc": 96.21,
                            "val_loss": 0.301122,
                            "val_acc": 96.94,
                        },
                        {
                            "epoch": 2,
                            "train_loss": 0.287905,
                            "train_acc": 96.88,
                            "val_loss": 0.295310,
                            "val_acc": 97.22,
                        },
                    ],
                },
            },
            size=57183121,
            per_image=3.45,
            b1=6.2,
            noisy=set(),
            flips=2,
            runner="torch",
            mem=MemoryStats(406.0, 470.2, 705.9, 299.9, None, None, None, 5.0),
        ),
    }
    for mode, spec in specs.items():
        record = {
            "mode": mode,
            "status": "ok",
            "tool_versions": tools,
            "created": "2025-09-02T10:02:51+0000",
            "baseline": {"model": "alexnet", "num_classes": 10, "input_size": 224},
            "artifact_bytes": spec["size"],
            **spec["variant"],
        }
        write_json(WS.variant_json(mode), record)
        preds = perturb(rng, fp32_preds, spec["flips"]) if spec["flips"] else fp32_preds
        result = BenchResult(
            mode=mode,
            status="ok",
            runner=spec["runner"],
            device="cpu",
            model=model,
            variant=record,
            runner_info={"threads": 2, "interop_threads": 1}
            | ({"provider": "CPUExecutionProvider"} if mode == "onnx" else {}),
            size_bytes=spec["size"],
            latency=latency(rng, spec["per_image"], spec["b1"], spec["noisy"]),
            memory=spec["mem"],
            accuracy=accuracy(rng, labels, preds, None if mode == "fp32" else fp32_preds),
            settings={
                "warmup": 10,
                "iters": 100,
                "batch_sizes": BATCHES,
                "cv_threshold": 0.1,
                "isolate": True,
            },
            env=ENV,
            notes=["GPU memory: n/a (no CUDA device)"],
            created="2025-09-02T10:14:07+0000",
        )
        result.save_json(WS.result_path(mode))
    skipped = {
        "mode": "tensorrt-fp16",
        "status": "skipped",
        "skip_reason": "no CUDA device",
        "runner": "tensorrt",
        "requires": ["cuda", "tensorrt"],
        "tool_versions": tools,
        "created": "2025-09-02T10:03:00+0000",
        "description": "TensorRT FP16 engine built from the ONNX",
    }
    write_json(WS.variant_json("tensorrt-fp16"), skipped)
    BenchResult(
        mode="tensorrt-fp16",
        status="skipped",
        skip_reason="no CUDA device",
        runner="tensorrt",
        device="cpu",
        model=model,
        variant=skipped,
        env=ENV,
        created="2025-09-02T10:14:09+0000",
    ).save_json(WS.result_path("tensorrt-fp16"))
    total = sum(p.stat().st_size for p in WS.root.rglob("*") if p.is_file())
    print(f"wrote {WS.root} ({total / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
