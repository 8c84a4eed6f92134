"""Load one or several workspaces (or result files) into the report context.

The context is plain data (dicts, lists, strings, numbers) so it serializes to
``report.json`` as is and templates only print it. Every number comes from the records
(``baseline/train.json``, ``variants/<mode>/variant.json``, ``results/<mode>.json``) or is
derived from them (ratios, deltas); a value that cannot apply is the string
``n/a (<reason>)``, computed here rather than in templates.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench import __version__
from qbench.errors import QBenchError
from qbench.harness.result import BenchResult
from qbench.reports import fmt
from qbench.workspace import Workspace, read_json

BASELINE_MODE = "fp32"


@dataclass
class Source:
    """One workspace's records (or a set of result files that share a workspace)."""

    root: Path
    results: list[BenchResult]
    train: dict[str, Any] | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    label: str = ""
    machine: str = ""

    @property
    def baseline(self) -> BenchResult | None:
        return next((r for r in self.results if r.mode == BASELINE_MODE), None)


# ---------------------------------------------------------------------------------------------
# loading


def _workspace_root_of(path: Path) -> tuple[Path, list[Path] | None]:
    """Map a user-given path to (workspace root, explicit result files or None for all)."""
    if path.is_file():
        parent = path.parent
        root = parent.parent if parent.name == "results" else parent
        return root, [path]
    if (path / "results").is_dir():
        return path, None
    if path.name == "results" and path.is_dir():
        return path.parent, None
    if (path / "default" / "results").is_dir():  # a runs/ folder holding the default experiment
        return path / "default", None
    return path, None  # a workspace without results: load_source says which step to run


def _read_optional(path: Path, what: str) -> dict[str, Any] | None:
    return read_json(path, what) if path.is_file() else None


def load_source(path: str | Path | Workspace) -> Source:
    """Read one workspace (or one result file and the workspace around it)."""
    if isinstance(path, Workspace):
        root, files = path.root, None
    else:
        path = Path(path)
        if not path.exists():
            raise QBenchError(f"{path} does not exist; pass a workspace folder or a results JSON file.")
        root, files = _workspace_root_of(path)
    ws = Workspace(root)
    paths = files if files is not None else ws.result_paths()
    if not paths:
        raise QBenchError(
            f"no results in {ws.results_dir}; run 'qbench bench' (or 'qbench run') for that workspace first."
        )
    results = []
    for p in paths:
        data = read_json(p, "result")
        if "mode" not in data or "status" not in data:
            raise QBenchError(f"{p} is not a qbench result (no mode/status); pass results/<mode>.json files.")
        results.append(BenchResult.from_dict(data))
    results.sort(key=lambda r: (r.mode != BASELINE_MODE, r.mode))
    variants = {}
    for r in results:
        record = _read_optional(ws.variant_json(r.mode), "variant record")
        variants[r.mode] = record if record is not None else dict(r.variant or {})
    train = _read_optional(ws.train_json, "training record")
    source = Source(root=root, results=results, train=train, variants=variants)
    source.machine = machine_label(source)
    return source


def load_sources(paths: list[str | Path | Workspace]) -> list[Source]:
    """Load several sources and give each a unique label (machine, then workspace if needed)."""
    sources = [load_source(p) for p in paths]
    merged: dict[Path, Source] = {}
    for s in sources:  # two result files of one workspace are one source
        key = s.root.resolve()
        if key in merged:
            have = {r.mode for r in merged[key].results}
            merged[key].results.extend(r for r in s.results if r.mode not in have)
            merged[key].variants.update(
                {k: v for k, v in s.variants.items() if k not in merged[key].variants}
            )
        else:
            merged[key] = s
    sources = list(merged.values())
    for s in sources:
        s.results.sort(key=lambda r: (r.mode != BASELINE_MODE, r.mode))
    labels = [s.machine for s in sources]
    for s in sources:
        s.label = s.machine if labels.count(s.machine) == 1 else f"{s.machine} [{s.root.name}]"
    seen: dict[str, int] = {}
    for s in sources:  # same machine and same workspace name: number them
        n = seen.get(s.label, 0)
        seen[s.label] = n + 1
        if n:
            s.label = f"{s.label} #{n + 1}"
    return sources


def _dig(data: Any, *paths: str) -> Any:
    """The first non-empty value among dotted paths: _dig(env, 'cpu.model', 'cpu_model')."""
    for path in paths:
        cur = data
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur not in (None, "", [], {}):
            return cur
    return None


def machine_label(source: Source) -> str:
    """'<CPU model> (<hostname>)', plus the GPU for a CUDA run, from the recorded environment."""
    env: dict[str, Any] = {}
    for r in source.results:
        if r.env:
            env = r.env
            break
    if not env and source.train:
        env = source.train.get("env") or {}
    cpu = _dig(env, "cpu.model", "cpu_model", "cpu.brand", "cpu_brand", "processor", "cpu.name", "cpu")
    host = _dig(env, "hostname", "host", "node", "platform.node", "machine.hostname")
    gpu = _dig(env, "gpu.name", "gpu_name", "gpus.0.name", "cuda.device_name")
    if isinstance(gpu, list):
        gpu = gpu[0].get("name") if gpu and isinstance(gpu[0], dict) else None
    if not isinstance(cpu, str):
        cpu = None
    uses_cuda = any(str(r.device).startswith("cuda") for r in source.results)
    parts = [p for p in (cpu, gpu if uses_cuda and isinstance(gpu, str) else None) if p]
    label = " + ".join(parts) if parts else "unknown machine"
    if isinstance(host, str):
        label = f"{label} ({host})"
    return label


# ---------------------------------------------------------------------------------------------
# per-variant rows


def _reason_unavailable(r: BenchResult) -> str | None:
    if r.status == "ok":
        return None
    return f"{r.status}: {r.skip_reason or 'no reason recorded'}"


def _precision(v: dict[str, Any], r: BenchResult) -> str:
    weights, acts = v.get("weights"), v.get("activations")
    if not weights and not acts:
        dtype = v.get("dtype") or _dig(r.runner_info, "dtype")
        return str(dtype).upper() if dtype else fmt.na("not recorded in variant.json")
    if weights == acts or not acts:
        text = str(weights).upper()
    else:
        text = f"{str(weights).upper()} weights / {str(acts).upper()} activations"
    if v.get("granularity"):
        text += f" ({v['granularity']})"
    return text


_TORCH_DTYPES = {"float32", "float16", "bfloat16", "qint8", "quint8", "int8", "float64"}


def _dtype(v: dict[str, Any], r: BenchResult) -> str:
    dtype = v.get("dtype") or _dig(r.runner_info, "dtype")
    if not dtype:
        return fmt.na("not recorded in variant.json")
    dtype = str(dtype)
    return f"torch.{dtype}" if dtype in _TORCH_DTYPES else dtype


def _latency_rows(r: BenchResult, base: BenchResult | None, unavailable: str | None) -> list[dict[str, Any]]:
    rows = []
    for s in sorted(r.latency, key=lambda s: s.batch_size):
        ref = base.latency_at(s.batch_size) if base is not None else None
        if r.mode == BASELINE_MODE:
            speedup, speedup_text = 1.0, "1.00x"
        elif base is None:
            speedup, speedup_text = None, fmt.na("no FP32 result")
        elif ref is None:
            speedup, speedup_text = None, fmt.na(f"FP32 not measured at batch {s.batch_size}")
        else:
            speedup = ref.mean_ms / s.mean_ms if s.mean_ms else None
            speedup_text = fmt.ratio(speedup, reason="zero latency")
        per_image_mean = s.mean_ms / s.batch_size
        noisy_reason = f"noisy: CV {s.cv * 100:.1f}%" if s.noisy else ""
        rows.append(
            {
                "batch_size": s.batch_size,
                "n_samples": s.n_samples,
                "warmup_iters": s.warmup_iters,
                "cold_ms": s.cold_ms,
                "mean_ms": s.mean_ms,
                "median_ms": s.median_ms,
                "std_ms": s.std_ms,
                "min_ms": s.min_ms,
                "max_ms": s.max_ms,
                "p90_ms": s.p90_ms,
                "p95_ms": s.p95_ms,
                "p99_ms": s.p99_ms,
                "iqr_ms": s.iqr_ms,
                "cv": s.cv,
                "per_image_ms": s.per_image_ms,
                "per_image_mean_ms": per_image_mean,
                "throughput_ips": s.throughput_ips,
                "noisy": bool(s.noisy),
                "noisy_reason": noisy_reason,
                "unreliable_percentiles": list(s.unreliable_percentiles),
                "sync": s.sync,
                "speedup": speedup,
                "speedup_text": speedup_text,
                "fp32_mean_ms": ref.mean_ms if ref is not None else None,
                "text": {
                    "mean_ms": f"{s.mean_ms:.2f}",
                    "median_ms": f"{s.median_ms:.2f}",
                    "p95_ms": f"{s.p95_ms:.2f}",
                    "p99_ms": f"{s.p99_ms:.2f}",
                    "std_ms": f"{s.std_ms:.2f}",
                    "cv": f"{s.cv * 100:.1f}%",
                    "per_image_mean_ms": f"{per_image_mean:.2f}",
                    "per_image_ms": f"{s.per_image_ms:.2f}",
                    "throughput": f"{s.throughput_ips:.1f}",
                    "throughput_sep": f"{s.throughput_ips:,.1f}",
                },
            }
        )
    return rows


def _memory(r: BenchResult, unavailable: str | None) -> dict[str, Any]:
    m = r.memory
    cpu = r.device == "cpu" or not str(r.device).startswith("cuda")
    gpu_reason = unavailable or ("no CUDA device" if cpu else "not recorded")
    cpu_reason = unavailable or "not recorded"
    disk_reason = unavailable or "no artifact"
    gpu = m.gpu_peak_allocated_mb
    return {
        "raw": {
            "size_mb": r.size_mb,
            "rss_before_load_mb": m.rss_before_load_mb,
            "rss_after_load_mb": m.rss_after_load_mb,
            "rss_peak_mb": m.rss_peak_mb,
            "runtime_mb": m.runtime_mb,
            "gpu_peak_allocated_mb": gpu,
            "gpu_peak_reserved_mb": m.gpu_peak_reserved_mb,
            "gpu_nvml_mb": m.gpu_nvml_mb,
        },
        "disk": fmt.mb(r.size_mb, disk_reason),
        "gpu_runtime": fmt.mb(gpu, gpu_reason),
        "gpu_reserved": fmt.mb(m.gpu_peak_reserved_mb, gpu_reason),
        "gpu_nvml": fmt.mb(m.gpu_nvml_mb, gpu_reason if cpu else "NVML not available"),
        "cpu_runtime": fmt.mb(m.runtime_mb, cpu_reason),
        "rss_before_load": fmt.mb(m.rss_before_load_mb, cpu_reason),
        "rss_after_load": fmt.mb(m.rss_after_load_mb, cpu_reason),
        "rss_peak": fmt.mb(m.rss_peak_mb, cpu_reason),
    }


def _train_facts(train: dict[str, Any] | None) -> dict[str, Any]:
    """Section 3/4/6 strings of the FP32 training run (reference 000)."""
    missing = "no training record: baseline/train.json is missing (imported checkpoint?)"
    cfg = (train or {}).get("config") or {}
    met = (train or {}).get("metrics") or {}
    hist = (train or {}).get("history") or []

    def get(d: dict, key: str, reason: str = "") -> Any:
        value = d.get(key)
        return (
            value
            if value is not None
            else fmt.na(reason or (missing if train is None else f"{key} not recorded"))
        )

    ls = cfg.get("label_smoothing")
    if train is None:
        loss_fn = fmt.na(missing)
    elif ls:
        loss_fn = f"CrossEntropyLoss with Label Smoothing ({ls})"
    else:
        loss_fn = "CrossEntropyLoss"
    if train is None:
        lr = fmt.na(missing)
    elif cfg.get("lr_backbone") is not None or cfg.get("lr_head") is not None:
        lr = f"backbone={fmt.short_float(cfg.get('lr_backbone'))}, head={fmt.short_float(cfg.get('lr_head'))}"
    else:
        lr = fmt.short_float(cfg.get("lr"), missing)

    def pct4(key: str) -> str:
        return fmt.plain(met.get(key), 4, missing if train is None else f"{key} not recorded", "%")

    def loss6(key: str) -> str:
        return fmt.plain(met.get(key), 6, missing if train is None else f"{key} not recorded")

    def yes_no(value: Any, yes: str = "True", no: str = "False") -> str:
        if value is None:
            return fmt.na(missing if train is None else "not recorded")
        return yes if value else no

    det = cfg.get("deterministic")
    if train is None:
        repro = fmt.na(missing)
    elif det:
        repro = "Fixed random seed, deterministic algorithms enabled"
    elif det is None:
        repro = "Fixed random seed"
    else:
        repro = "Fixed random seed, deterministic algorithms disabled (faster, not bit-exact)"
    return {
        "available": train is not None,
        "epochs_trained": str(get(met, "epochs_trained")),
        "batch_size": str(get(cfg, "batch_size")),
        "optimizer": str(get(cfg, "optimizer")),
        "learning_rate": lr,
        "weight_decay": fmt.short_float(
            cfg.get("weight_decay"), missing if train is None else "not recorded"
        ),
        "scheduler": str(get(cfg, "scheduler")),
        "early_stopping_patience": str(get(cfg, "early_stopping_patience")),
        "loss_function": loss_fn,
        "augmentation": str(get(cfg, "augment")),
        "mixed_precision": yes_no(cfg.get("mixed_precision")),
        "seed": str(get(cfg, "seed")),
        "reproducibility": repro,
        "best_val_acc": pct4("best_val_acc"),
        "final_train_acc": pct4("final_train_acc"),
        "final_val_acc": pct4("final_val_acc"),
        "final_train_loss": loss6("final_train_loss"),
        "final_val_loss": loss6("final_val_loss"),
        "best_epoch": str(get(met, "best_epoch")),
        "early_stopped": yes_no(met.get("early_stopped")),
        "early_stopped_word": yes_no(met.get("early_stopped"), "Yes", "No"),
        "stability": _stability(hist, train is not None),
        "history": hist,
        "test_acc": met.get("test_acc"),
    }


def _stability(hist: list[dict[str, Any]], have_train: bool) -> str:
    """A one-line verdict on the curves, derived from the recorded history only."""
    if not have_train:
        return fmt.na("no training record")
    losses = [(h.get("epoch"), h.get("val_loss")) for h in hist if h.get("val_loss") is not None]
    train_losses = [h.get("train_loss") for h in hist if h.get("train_loss") is not None]
    if len(losses) < 2:
        return fmt.na("fewer than 2 epochs of history recorded")
    best_epoch, best = min(losses, key=lambda t: t[1])
    last_epoch, last = losses[-1]
    falling = len(train_losses) < 2 or train_losses[-1] < train_losses[0]
    if last > best * 1.10 and last_epoch != best_epoch:
        return (
            f"Validation loss rose from {best:.4f} (epoch {best_epoch}) to {last:.4f} (epoch {last_epoch}): "
            "signs of overfitting"
        )
    if not falling:
        return "Training loss did not decrease over the run: check the learning rate"
    return "Loss/accuracy curves consistent with healthy optimization"


def _conversion(v: dict[str, Any], r: BenchResult) -> dict[str, Any]:
    calib = v.get("calibration") or {}
    qat = v.get("qat") or {}
    if calib:
        calib_text = (
            f"{calib.get('method', 'method not recorded')}, {calib.get('batches', '?')} batches "
            f"({thousands_or(calib.get('images'))} images), hash {calib.get('hash') or 'not recorded'}"
        )
    else:
        calib_text = fmt.na("no calibration: this conversion needs none")
    qat_hist = qat.get("history") or []
    if qat:
        qat_text = f"{qat.get('epochs', len(qat_hist))} epoch(s) of fake-quant fine-tuning"
    else:
        qat_text = fmt.na("post-training conversion, no fine-tuning")
    qat_lines = []
    for h in qat_hist:
        parts = [f"epoch {h.get('epoch', '?')}"]
        for key, label, digits, unit in (
            ("train_loss", "train loss", 6, ""),
            ("train_acc", "train acc", 2, "%"),
            ("val_loss", "val loss", 6, ""),
            ("val_acc", "val acc", 2, "%"),
        ):
            if h.get(key) is not None:
                parts.append(f"{label} {h[key]:.{digits}f}{unit}")
        qat_lines.append(", ".join(parts))
    secs = v.get("conversion_seconds")
    return {
        "engine": v.get("engine") or fmt.na(_reason_unavailable(r) or "not recorded in variant.json"),
        "runner": v.get("runner") or r.runner or fmt.na("not recorded"),
        "calibration": calib_text,
        "qat": qat_text,
        "qat_history": qat_hist,
        "qat_lines": qat_lines,
        "seconds": fmt.plain(secs, 2, _reason_unavailable(r) or "not recorded", " s"),
        "tool_versions": ", ".join(f"{k} {val}" for k, val in sorted((v.get("tool_versions") or {}).items()))
        or fmt.na("not recorded"),
        "note": v.get("note") or "",
        "description": v.get("description") or "",
    }


def thousands_or(value: Any) -> str:
    return fmt.thousands(value) if value is not None else "?"


def _sync_text(rows: list[dict[str, Any]]) -> str:
    syncs = {row["sync"] for row in rows}
    if not syncs:
        return fmt.na("no latency measured")
    if syncs & {"cuda-event", "cuda-synchronize"}:
        return "CUDA synchronization enabled (" + ", ".join(sorted(syncs)) + ")"
    return "not needed on the CPU: each call returns when the work is done"


def _backend_text(v: dict[str, Any], r: BenchResult) -> str:
    engine = v.get("engine") or r.runner or "unknown engine"
    provider = _dig(r.runner_info, "provider", "providers.0")
    threads = _dig(r.runner_info, "threads", "intra_op_threads", "intra_op_num_threads")
    extra = [str(r.device)]
    if provider:
        extra.append(str(provider))
    if threads:
        extra.append(f"{threads} threads")
    return f"{engine} ({', '.join(extra)})"


def _variant(source: Source, r: BenchResult, multi: bool) -> dict[str, Any]:
    base = source.baseline
    v = source.variants.get(r.mode) or dict(r.variant or {})
    unavailable = _reason_unavailable(r)
    ok = unavailable is None
    summary = (source.train or {}).get("summary") or {}
    model = {**summary, **{k: val for k, val in (r.model or {}).items() if val is not None}}
    acc = r.accuracy
    acc_reason = unavailable or "accuracy not measured"
    top1 = acc.top1 if acc else None
    base_top1 = base.accuracy.top1 if base is not None and base.accuracy else None
    base_size = base.size_mb if base is not None else None
    is_base = r.mode == BASELINE_MODE
    lat = _latency_rows(r, base, unavailable)
    b1 = next((row for row in lat if row["batch_size"] == 1), None)
    best = max(lat, key=lambda row: row["throughput_ips"]) if lat else None
    lat_reason = unavailable or "no latency measured"

    if is_base:
        acc_delta, acc_delta_text = 0.0, "+0.00 pp"
        size_ratio, size_ratio_text = 1.0, "1.00x"
    else:
        no_base = "no FP32 result" if base is None else None
        acc_delta = top1 - base_top1 if top1 is not None and base_top1 is not None else None
        acc_delta_text = fmt.signed(acc_delta, 2, unavailable or no_base or "accuracy not measured", " pp")
        size_ratio = r.size_mb / base_size if r.size_mb and base_size else None
        size_ratio_text = fmt.ratio(size_ratio, reason=unavailable or no_base or "size not recorded")
    agreement = acc.agreement if acc else None
    if is_base:
        agree_reason = "FP32 reference"
    else:
        agree_reason = unavailable or ("no FP32 result" if base is None else "agreement not measured")
    class_names = [c.label for c in acc.per_class] if acc else []
    input_size = model.get("input_size")
    params = _dig(model, "total_params", "params", "parameters")
    trainable = _dig(model, "trainable_params", "trainable")
    flops = model.get("flops")
    name = model.get("model") or model.get("name") or (source.train or {}).get("config", {}).get("model")
    label = f"{r.mode} @ {source.label}" if multi else r.mode
    noisy = [row for row in lat if row["noisy"]]
    notes = list(r.notes)
    if v.get("note"):
        notes.append(str(v["note"]))
    if noisy:
        notes.append(
            "noisy measurement (CV above the threshold) at batch size "
            + ", ".join(f"{row['batch_size']} (CV {row['cv'] * 100:.1f}%)" for row in noisy)
        )
    return {
        "key": f"{source.label}/{r.mode}",
        "mode": r.mode,
        "label": label,
        "source": source.label,
        "workspace": str(source.root),
        "machine": source.machine,
        "status": r.status,
        "ok": ok,
        "is_baseline": is_base,
        "skip_reason": r.skip_reason,
        "unavailable": unavailable or "",
        "device": r.device,
        "runner": r.runner or v.get("runner"),
        "backend": _backend_text(v, r),
        "engine": v.get("engine") or r.runner or fmt.na("not recorded"),
        "precision": _precision(v, r),
        "dtype": _dtype(v, r),
        "size_mb": r.size_mb,
        "size_bytes": r.size_bytes,
        "top1": top1,
        "top5": acc.top5 if acc else None,
        "loss": acc.loss if acc else None,
        "n_images": acc.n_images if acc else None,
        "agreement": (
            {
                "top1_agreement": agreement.top1_agreement,
                "mean_abs_logit_diff": agreement.mean_abs_logit_diff,
                "max_abs_logit_diff": agreement.max_abs_logit_diff,
                "cosine": agreement.cosine,
            }
            if agreement
            else None
        ),
        "acc_delta": acc_delta,
        "size_ratio": size_ratio,
        "latency": lat,
        "speedup_by_batch": {row["batch_size"]: row["speedup_text"] for row in lat},
        "batch1_ms": b1["mean_ms"] if b1 else None,
        "best_throughput": best["throughput_ips"] if best else None,
        "best_throughput_batch": best["batch_size"] if best else None,
        "noisy": bool(noisy),
        "memory": _memory(r, unavailable),
        "per_class": [
            {"label": c.label, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
            for c in (acc.per_class if acc else [])
        ],
        "confusion": acc.confusion if acc else [],
        "class_names": class_names,
        "notes": notes,
        "provenance": v,
        "settings": r.settings,
        "env": r.env,
        "created": r.created,
        "model": {
            "name": name or fmt.na("not recorded"),
            "params": params,
            "trainable_params": trainable,
            "flops": flops,
            "input_size": input_size,
            "num_classes": model.get("num_classes"),
            "fp32_size_mb": model.get("size_mb"),
        },
        "conversion": _conversion(v, r),
        "cells": {
            "status": "ok" if ok else unavailable,
            "size": fmt.mb(r.size_mb, unavailable or "not recorded"),
            "top1": fmt.pct(top1, 2, acc_reason),
            "top5": fmt.pct(acc.top5 if acc else None, 2, acc_reason),
            "agreement": fmt.pct(agreement.top1_agreement if agreement else None, 2, agree_reason),
            "mean_logit_diff": fmt.plain(
                agreement.mean_abs_logit_diff if agreement else None, 4, agree_reason
            ),
            "max_logit_diff": fmt.plain(agreement.max_abs_logit_diff if agreement else None, 4, agree_reason),
            "cosine": fmt.plain(agreement.cosine if agreement else None, 5, agree_reason),
            "batch1": fmt.plain(
                b1["mean_ms"] if b1 else None, 2, lat_reason if not lat else "batch 1 not measured", " ms"
            ),
            "best_throughput": (
                f"{best['throughput_ips']:,.1f} img/s @{best['batch_size']}" if best else fmt.na(lat_reason)
            ),
            "size_ratio": size_ratio_text,
            "acc_delta": acc_delta_text,
        },
    }


def _text_fields(
    source: Source, var: dict[str, Any], experiment: str, train: dict[str, Any]
) -> dict[str, Any]:
    """The field values of reference 000's sections, for this variant, as printed strings."""
    env = var["env"] or (source.train or {}).get("env") or {}
    train_env = (source.train or {}).get("env") or {}
    unavailable = var["unavailable"]
    model = var["model"]
    cuda = _dig(env, "cuda_version", "cuda.version", "torch_cuda_version")
    if not cuda:
        cuda = fmt.na("no CUDA device" if not str(var["device"]).startswith("cuda") else "not recorded")
    torch_version = _dig(env, "torch_version", "versions.torch", "torch") or _dig(train_env, "torch_version")
    size_2 = model["fp32_size_mb"] if var["is_baseline"] and model["fp32_size_mb"] else var["size_mb"]
    input_size = model["input_size"]
    lat = var["latency"]
    warmup = _dig(var["settings"], "warmup", "warmup_iters") or (lat[0]["warmup_iters"] if lat else None)
    iters = _dig(var["settings"], "iters", "iterations") or (lat[0]["n_samples"] if lat else None)
    batches = [row["batch_size"] for row in lat] or _dig(var["settings"], "batch_sizes") or []
    lat_reason = unavailable or "no latency measured"
    seed = train["seed"]
    if var["is_baseline"]:
        title = f"{str(model['name']).upper()} FP32 BASELINE - COMPREHENSIVE ANALYSIS REPORT"
    else:
        title = f"{str(model['name']).upper()} {var['mode'].upper()} VARIANT - COMPREHENSIVE ANALYSIS REPORT"
    return {
        "title": title,
        "experiment": experiment if var["is_baseline"] else f"{experiment} [{var['mode']}]",
        "timestamp": var["created"] or (source.train or {}).get("created") or fmt.na("not recorded"),
        "torch_version": torch_version or fmt.na("not recorded"),
        "cuda_version": str(cuda),
        "device": str(var["device"]),
        "architecture": str(model["name"]),
        "total_params": fmt.thousands(model["params"], "not recorded"),
        "trainable_params": fmt.thousands(model["trainable_params"], "not recorded"),
        "model_size": fmt.mb(size_2, unavailable or "not recorded"),
        "flops": fmt.mega(model["flops"], "not recorded"),
        "input_resolution": f"({input_size}, {input_size})" if input_size else fmt.na("not recorded"),
        "num_classes": str(model["num_classes"]) if model["num_classes"] else fmt.na("not recorded"),
        "test_accuracy": fmt.plain(var["top1"], 4, unavailable or "accuracy not measured", "%"),
        "warmup": f"{warmup} runs before benchmarking" if warmup is not None else fmt.na(lat_reason),
        "iterations": f"{iters} iterations per batch size" if iters is not None else fmt.na(lat_reason),
        "batch_sizes": "[" + ", ".join(str(b) for b in batches) + "]" if batches else fmt.na(lat_reason),
        "backend": var["backend"] if not unavailable else fmt.na(unavailable),
        "synchronization": _sync_text(lat) if lat else fmt.na(lat_reason),
        "reproducibility_seed": f"Fixed random seed ({seed})" if train["available"] else seed,
        "latency_unavailable": fmt.na(lat_reason) if not lat else "",
        "accuracy_2": fmt.pct(var["top1"], 2, unavailable or "accuracy not measured"),
        "latency_b1": var["cells"]["batch1"],
    }


def _comparison(var: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """Section 7 of a converted variant: what it buys and costs against the FP32 baseline."""
    unavailable = var["unavailable"]
    reason = unavailable or ("no FP32 result in this workspace" if base is None else "")
    if reason:
        na = fmt.na(reason)
        return {"size": na, "speedups": [na], "accuracy": na, "agreement": na, "logits": na}
    size = f"{var['cells']['size_ratio']} ({fmt.mb(var['size_mb'])} vs {fmt.mb(base['size_mb'])} on disk)"
    speedups = []
    for row in var["latency"]:
        if row["fp32_mean_ms"] is None:
            speedups.append(f"Batch {row['batch_size']}: {row['speedup_text']}")
        else:
            speedups.append(
                f"Batch {row['batch_size']}: {row['speedup_text']} "
                f"({row['mean_ms']:.2f} ms vs {row['fp32_mean_ms']:.2f} ms)"
            )
    if not speedups:
        speedups = [fmt.na("no latency measured")]
    if var["top1"] is not None and base["top1"] is not None:
        accuracy = f"{var['cells']['acc_delta']} ({var['top1']:.2f}% vs {base['top1']:.2f}%)"
    else:
        accuracy = var["cells"]["acc_delta"]
    agr = var["agreement"]
    logits = (
        f"mean |diff| {agr['mean_abs_logit_diff']:.4f}, max |diff| {agr['max_abs_logit_diff']:.4f}, "
        f"cosine {agr['cosine']:.5f}"
        if agr
        else fmt.na("agreement not measured")
    )
    return {
        "size": size,
        "speedups": speedups,
        "accuracy": accuracy,
        "agreement": var["cells"]["agreement"],
        "logits": logits,
    }


# ---------------------------------------------------------------------------------------------
# the whole context


def _experiment_name(source: Source) -> str:
    train = source.train or {}
    name = _dig(train, "experiment.name", "config.experiment", "experiment")
    return str(name) if isinstance(name, str) else source.root.name


def build_context(sources: list[Source], title: str | None = None) -> dict[str, Any]:
    if not sources:
        raise QBenchError("nothing to report: pass a workspace with results (run 'qbench bench' first).")
    multi = len(sources) > 1
    variants: list[dict[str, Any]] = []
    baselines = []
    for s in sources:
        train = _train_facts(s.train)
        experiment = _experiment_name(s)
        for r in s.results:
            var = _variant(s, r, multi)
            var["train"] = train
            var["text"] = _text_fields(s, var, experiment, train)
            var["experiment"] = experiment
            variants.append(var)
        base = next((v for v in variants if v["source"] == s.label and v["is_baseline"]), None)
        for var in variants:
            if var["source"] == s.label:
                var["comparison"] = _comparison(var, base)
        baselines.append(
            {
                "source": s.label,
                "machine": s.machine,
                "workspace": str(s.root),
                "experiment": experiment,
                "present": base is not None,
                "mode": BASELINE_MODE,
                "top1": base["top1"] if base else None,
                "size_mb": base["size_mb"] if base else None,
                "batch1_ms": base["batch1_ms"] if base else None,
                "train": train,
                "model": base["model"] if base else None,
            }
        )
    batch_sizes = sorted({row["batch_size"] for v in variants for row in v["latency"]})
    for v in variants:
        v["speedup_cells"] = [
            v["speedup_by_batch"].get(b, fmt.na(v["unavailable"] or f"batch {b} not measured"))
            for b in batch_sizes
        ]
    lat_rows = []
    for v in variants:
        for row in v["latency"]:
            lat_rows.append({"variant": v["label"], "mode": v["mode"], "source": v["source"], **row})
    skipped = [v for v in variants if not v["ok"]]
    first_train = next((s.train for s in sources if s.train), None) or {}
    model_name = (
        next((v["model"]["name"] for v in variants if v["is_baseline"]), None)
        or (variants[0]["model"]["name"])
    )
    return {
        "title": title or f"{str(model_name).upper()} quantization and deployment benchmark",
        "project": f"qbench {__version__}: quantization and deployment benchmark",
        "qbench_version": __version__,
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "multi": multi,
        "sources": [
            {
                "label": s.label,
                "machine": s.machine,
                "workspace": str(s.root),
                "experiment": _experiment_name(s),
            }
            for s in sources
        ],
        "baselines": baselines,
        "variants": variants,
        "ok_variants": [v for v in variants if v["ok"]],
        "skipped": skipped,
        "batch_sizes": batch_sizes,
        "latency_rows": lat_rows,
        "has_per_class": any(v["per_class"] for v in variants),
        "train_config": first_train.get("config") or {},
        "model_summary": _model_summary(first_train),
        "split_metrics": _split_metrics(first_train),
        "figures": {},
    }


def _model_summary(train: dict[str, Any]) -> dict[str, Any] | None:
    """The FP32 layer table of reference 003 (type, output shape, parameters), when recorded."""
    summary = train.get("summary") or {}
    if not summary.get("layers"):
        return None
    return {
        "layers": [
            {
                "type": layer["type"],
                "shape": "[" + ", ".join(str(d) for d in layer["output_shape"]) + "]",
                "params": layer["params"],
            }
            for layer in summary["layers"]
        ],
        "total_params": summary.get("total_params"),
        "trainable_params": summary.get("trainable_params"),
        "non_trainable_params": summary.get("non_trainable_params"),
    }


SPLIT_TITLES = (("train", "Training"), ("val", "Validation"), ("test", "Testing"))


def _split_metrics(train: dict[str, Any]) -> dict[str, Any] | None:
    """Loss/accuracy and per-class P/R/F1 of the FP32 model on each split (reference 003)."""
    splits = train.get("splits") or {}
    if not all(key in splits for key, _ in SPLIT_TITLES):
        return None
    names = [c["label"] for c in splits["test"]["per_class"]]
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"label": name}
        for metric in ("precision", "recall", "f1"):
            row[metric] = [splits[key]["per_class"][i][metric] for key, _ in SPLIT_TITLES]
        rows.append(row)
    return {
        "titles": [title for _, title in SPLIT_TITLES],
        "loss": [splits[key]["loss"] for key, _ in SPLIT_TITLES],
        "acc": [splits[key]["acc"] for key, _ in SPLIT_TITLES],
        "n_images": [splits[key]["n_images"] for key, _ in SPLIT_TITLES],
        "per_class": rows,
    }


def context_for_json(ctx: dict[str, Any]) -> dict[str, Any]:
    """The context without what only templates need (figure data URIs, repeated train facts)."""
    out = dict(ctx)
    out["figures"] = {
        k: {kk: vv for kk, vv in f.items() if kk != "data_uri"} for k, f in ctx["figures"].items()
    }
    out["ok_variants"] = [v["key"] for v in ctx["ok_variants"]]
    out["skipped"] = [v["key"] for v in ctx["skipped"]]
    out["variants"] = [{k: val for k, val in v.items() if k != "train"} for v in ctx["variants"]]
    return json.loads(json.dumps(out, default=_json_default, allow_nan=False))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
