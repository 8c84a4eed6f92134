"""Report figures (matplotlib, Agg backend, imported only when a report needs figures).

Each figure is saved as SVG and PNG under ``reports/figures/``, and as PDF when the LaTeX report
(whose ``includegraphics`` reads it) is written: the PDF is a third of the drawing time. The
PNG is also returned as a base64 data URI so the HTML report embeds it and needs no other file.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qbench.workspace import atomic_path

if TYPE_CHECKING:
    from qbench.reports.context import ReportContext
    from qbench.reports.rows import LatencyRow, VariantRow

FORMATS = ("svg", "png", "pdf")
PDF = "pdf"  # for the LaTeX report only


@dataclass(frozen=True)
class FigureDir:
    """Where figures go and in which formats (a subset of FORMATS, PNG always: HTML embeds it)."""

    path: Path
    formats: tuple[str, ...] = FORMATS


# noisy measurements get a hollow marker, so they are visible in print too
_MARKERS = "osD^vP*Xh<>"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 130,
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "svg.hashsalt": "qbench",  # stable SVG ids: reruns give identical files
            "pdf.compression": 6,
        }
    )
    return plt


def _save(fig, out_dir: FigureDir, name: str, title: str, caption: str) -> dict[str, Any]:
    files = {}
    for ext in out_dir.formats:
        path = out_dir.path / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            meta: dict[str, Any] = {"Software": "qbench"}
            if ext == "svg":
                meta = {"Creator": "qbench", "Date": None}
            elif ext == "pdf":
                meta = {"Creator": "qbench", "CreationDate": None}
            fig.savefig(tmp, format=ext, bbox_inches="tight", metadata=meta)
        files[ext] = str(path)
    data = Path(files["png"]).read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"name": name, "title": title, "caption": caption, "files": files, "data_uri": uri}


def _series(ctx: ReportContext) -> list[VariantRow]:
    return [v for v in ctx.variants if v.ok and v.latency]


def _style(i: int) -> dict[str, Any]:
    return {"marker": _MARKERS[i % len(_MARKERS)], "markersize": 5, "linewidth": 1.4}


def _median_ms(row: LatencyRow) -> float:
    return row.stats.median_ms


def _median_throughput(row: LatencyRow) -> float:
    return row.median_throughput_ips


def _latency_like(
    ctx: ReportContext,
    out_dir: FigureDir,
    value: Callable[[LatencyRow], float],
    name: str,
    title: str,
    ylabel: str,
    caption: str,
):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, v in enumerate(_series(ctx)):
        xs = [r.batch_size for r in v.latency]
        ys = [value(r) for r in v.latency]
        ax.plot(xs, ys, label=v.label, **_style(i))
        noisy = [(x, y) for x, y, r in zip(xs, ys, v.latency, strict=True) if r.noisy]
        if noisy:
            ax.scatter(
                *zip(*noisy, strict=True),
                s=120,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
                zorder=5,
            )
    if any(r.noisy for v in _series(ctx) for r in v.latency):
        ax.scatter(
            [], [], s=120, facecolors="none", edgecolors="red", label="noisy (robust CV above threshold)"
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ctx.batch_sizes or [1])
    ax.set_xticklabels([str(b) for b in ctx.batch_sizes] or ["1"])
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, out_dir, name, title, caption)


def _pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points not dominated by another (smaller or equal size and higher or equal accuracy)."""
    front = []
    for p in points:
        dominated = any(
            q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1]) for q in points if q is not p
        )
        if not dominated:
            front.append(p)
    return sorted(front)


def _accuracy_vs_size(ctx, out_dir: FigureDir):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    points = [
        (v.size_mb, v.top1, v.label)
        for v in ctx.variants
        if v.ok and v.size_mb is not None and v.top1 is not None
    ]
    front = _pareto(points)
    seen: dict[tuple[float, float], int] = {}
    for x, y, label in points:
        # variants of (nearly) equal size and accuracy: stack their labels instead of overprinting
        spot = (round(x, 0), round(y, 1))
        stack = seen.get(spot, 0)
        seen[spot] = stack + 1
        on_front = (x, y, label) in front
        ax.scatter([x], [y], s=45 if on_front else 30, color="tab:red" if on_front else "tab:blue", zorder=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4 - 10 * stack), fontsize=7)
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="tab:red", label="Pareto front")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlim(0, max(p[0] for p in points) * 1.25 if points else 1)
    ax.margins(y=0.25)
    ax.set_xlabel("model size on disk (MB)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs model size")
    caption = "Top-1 accuracy against on-disk size; red points lie on the Pareto front (no variant is smaller and more accurate)."
    return _save(fig, out_dir, "accuracy_vs_size", "Accuracy vs model size", caption)


def _confusions(ctx, out_dir: FigureDir):
    vs = [v for v in ctx.variants if v.ok and v.confusion]
    if not vs:
        return None
    plt = _plt()
    cols = min(3, len(vs))
    rows = math.ceil(len(vs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.flat[len(vs) :]:
        ax.axis("off")
    for ax, v in zip(axes.flat, vs, strict=False):
        matrix = v.confusion
        n = len(matrix)
        ax.imshow(matrix, cmap="Blues")
        ax.grid(False)
        names = v.class_names or [str(i) for i in range(n)]
        ticks = list(range(n))
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xticklabels(names, fontsize=6, rotation=90 if n > 10 else 0)
        ax.set_yticklabels(names, fontsize=6)
        if n <= 12:
            peak = max(max(r) for r in matrix) or 1
            for i, row in enumerate(matrix):
                for j, count in enumerate(row):
                    if count:
                        color = "white" if count > peak / 2 else "black"
                        ax.text(j, i, str(count), ha="center", va="center", fontsize=5.5, color=color)
        ax.set_title(f"{v.label} ({v.cells.top1})", fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.tight_layout()
    caption = "Confusion matrices on the test split (rows: true class, columns: predicted class)."
    return _save(fig, out_dir, "confusion", "Confusion matrices", caption)


def _training(ctx: ReportContext, out_dir: FigureDir):
    """FP32 training curves and QAT fine-tuning curves (loss; accuracy in percent)."""
    curves: list[tuple[str, list[Any]]] = []
    for b in ctx.baselines:
        if b.train.history:
            curves.append(("FP32" if not ctx.multi else f"FP32 @ {b.source}", b.train.history))
    fp32_epochs = max((h.epoch for h in curves[0][1]), default=0) if curves else 0
    for v in ctx.variants:
        if v.conversion.qat_history:
            curves.append(("QAT" if v.label == "qat" else f"QAT {v.label}", v.conversion.qat_history))
    if not curves:
        return None
    plt = _plt()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for i, (tag, hist) in enumerate(curves):
        # QAT epochs continue after the FP32 run they fine-tune
        start = fp32_epochs if tag.startswith("QAT") else 0
        ep = [start + h.epoch for h in hist]
        for key, ax, style in (
            ("train_loss", ax_loss, "-"),
            ("val_loss", ax_loss, "--"),
            ("train_acc", ax_acc, "-"),
            ("val_acc", ax_acc, "--"),
        ):
            if not hasattr(hist[0], key):  # QAT records no validation loss
                continue
            ax.plot(
                ep,
                [getattr(h, key) for h in hist],
                style,
                marker=_MARKERS[i % len(_MARKERS)],
                markersize=3,
                color=f"C{i}",
                label=f"{tag} {key.split('_')[0]}",
            )
    ax_loss.set_title("Loss")
    ax_acc.set_title("Accuracy (%)")
    ax_acc.set_ylim(top=100.5)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6.5)
    fig.tight_layout()
    caption = "Training curves: solid = training, dashed = validation; QAT epochs follow the FP32 run."
    return _save(fig, out_dir, "training", "Training curves", caption)


def draw_figures(ctx: ReportContext, out_dir: Path, pdf: bool = True) -> dict[str, dict[str, Any]]:
    """Draw every figure the records support, as PDF too when ``pdf`` (the LaTeX report needs it);
    return {name: {title, caption, files, data_uri}}."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    out_dir = FigureDir(Path(out_dir), tuple(f for f in FORMATS if pdf or f != PDF))
    figures: dict[str, dict[str, Any]] = {}
    if _series(ctx):
        figures["latency"] = _latency_like(
            ctx,
            out_dir,
            _median_ms,
            "latency_vs_batch",
            "Latency vs batch size",
            "median latency per batch (ms)",
            "Median latency per batch against batch size (log-log); red rings mark noisy measurements.",
        )
        figures["throughput"] = _latency_like(
            ctx,
            out_dir,
            _median_throughput,
            "throughput_vs_batch",
            "Throughput vs batch size",
            "throughput (images/s, from the median)",
            "Throughput (batch size / median latency) against batch size; red rings mark noisy measurements.",
        )
    if any(v.ok and v.top1 is not None and v.size_mb for v in ctx.variants):
        figures["accuracy_size"] = _accuracy_vs_size(ctx, out_dir)
    for name, fn in (("confusion", _confusions), ("training", _training)):
        fig = fn(ctx, out_dir)
        if fig is not None:
            figures[name] = fig
    from qbench.reports.roofline import draw_figure as roofline_figure

    if (roof := roofline_figure(ctx, out_dir)) is not None:
        figures["roofline"] = roof
    from qbench.reports.profiles import draw_figure as profiles_figure

    if (layers := profiles_figure(ctx, out_dir)) is not None:
        figures["profiles"] = layers
    return figures
