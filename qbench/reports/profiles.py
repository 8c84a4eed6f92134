"""Per-layer profiles in every report: a stacked table per variant and the stacked-bar figure.

Built from ``BenchResult.profiles`` alone (``qbench bench --profile``). One table per variant:
its layer rows in execution order with, per profiled batch size, the time per call and the
share of the per-layer sum; below them the sum, the measured median latency, and their
difference labelled as overhead. A breakdown per profile answers "why is INT8 not faster
here": time in integer and in float compute, in quantize/dequantize steps, in layout
conversions, and in no layer at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qbench.records import BenchResult, LayerProfile
from qbench.records.profile import AGREEMENT_TOLERANCE
from qbench.reports import fmt

if TYPE_CHECKING:
    from qbench.reports.context import ReportContext
    from qbench.reports.figures import FigureDir
    from qbench.reports.sources import Source

OVERHEAD_LABEL = "overhead (framework/unattributed)"
NOT_PROFILED = "no per-layer profile: rerun 'qbench bench --profile'"
KIND_LABELS = {"quantize": "quantize", "dequantize": "dequantize", "layout": "layout conversion"}
FIGURE_LAYERS = 8  # layers with a colour of their own in the figure; the rest are "other layers"
# matplotlib's cycle without the red and the yellow-green, which mark quantize/dequantize and layout
_LAYER_COLORS = ["C0", "C1", "C2", "C4", "C5", "C6", "C7", "C9"]


def ms_text(value: float | None) -> str:
    """Milliseconds with the digits a per-layer time needs: 26.51, 0.412, 0.0024."""
    if value is None or value != value:
        return fmt.na("not recorded")
    size = abs(value)
    digits = 1 if size >= 100 else 2 if size >= 1 else 3 if size >= 0.01 else 4
    return f"{value:.{digits}f}"


def share_text(value: float | None) -> str:
    return fmt.na("not recorded") if value is None else f"{value * 100:.1f}%"


@dataclass
class ProfileCell:
    ms: str
    share: str


@dataclass
class ProfileRow:
    """One layer (and kind) of a variant, with a cell per profiled batch size."""

    layer: str
    kind: str  # compute | quantize | dequantize | layout
    kind_text: str  # "" for compute, else "quantize", "layout conversion", ...
    op_types: str
    precision: str
    cells: list[ProfileCell]


@dataclass
class ProfileTotals:
    """The footer of one profiled batch size."""

    batch_size: int
    layer_sum: str
    median: str  # the timed loop's median (no profiler)
    overhead: str
    overhead_share: str  # of the median
    profiled: str  # median wall time of a profiled call
    agrees: bool  # the sum is within AGREEMENT_TOLERANCE of the median
    agreement: str  # the sentence the report prints
    breakdown: list[tuple[str, str]]  # (what, "0.412 ms (31.0%)") shares of the median
    top: str  # the heaviest rows: "features.0 30.0%, features.3 15.5%, ..."
    profiler: str
    iterations: int
    notes: list[str] = field(default_factory=list)
    record: LayerProfile | None = None


@dataclass
class ProfileSection:
    """A variant's profiles: one stacked table with a column pair per profiled batch size."""

    key: str
    label: str
    mode: str
    available: bool
    reason: str  # why there is no profile ("" when there is)
    batch_sizes: list[int] = field(default_factory=list)
    rows: list[ProfileRow] = field(default_factory=list)
    totals: list[ProfileTotals] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """The profilers' notes, once each (they repeat from one batch size to the next)."""
        return list(dict.fromkeys(n for t in self.totals for n in t.notes))


def sections(sources: list[Source], multi: bool) -> dict[str, ProfileSection]:
    """The profile section of every ok result by variant key ('<source label>/<mode>')."""
    found = {}
    for s in sources:
        for r in s.results:
            if r.ok:
                key = f"{s.label}/{r.mode}"
                found[key] = section(r, key, f"{r.mode} @ {s.label}" if multi else r.mode)
    return found


def _reason(r: BenchResult) -> str:
    why = [n.split(": ", 1)[1] for n in r.notes if n.startswith("per-layer profile")]
    return why[0] if why else fmt.na(NOT_PROFILED)


def section(r: BenchResult, key: str, label: str) -> ProfileSection:
    profiles = sorted(r.profiles, key=lambda p: p.batch_size)
    if not profiles:
        return ProfileSection(key=key, label=label, mode=r.mode, available=False, reason=_reason(r))
    order: list[tuple[str, str]] = []
    for p in profiles:
        order += [(row.layer, row.kind) for row in p.layers if (row.layer, row.kind) not in order]
    rows = []
    for layer, kind in order:
        found = [next((x for x in p.layers if (x.layer, x.kind) == (layer, kind)), None) for p in profiles]
        first = next(x for x in found if x is not None)
        op_types = list(dict.fromkeys(op for x in found if x is not None for op in x.op_types))
        rows.append(
            ProfileRow(
                layer=layer,
                kind=kind,
                kind_text=KIND_LABELS.get(kind, ""),
                op_types=", ".join(op_types),
                precision=first.precision or fmt.na("not reported"),
                cells=[
                    ProfileCell(ms_text(x.ms), share_text(x.share)) if x else ProfileCell("–", "–")
                    for x in found
                ],
            )
        )
    return ProfileSection(
        key=key,
        label=label,
        mode=r.mode,
        available=True,
        reason="",
        batch_sizes=[p.batch_size for p in profiles],
        rows=rows,
        totals=[totals(p) for p in profiles],
    )


def breakdown(p: LayerProfile) -> list[tuple[str, float]]:
    """Milliseconds per call by what they were spent on: compute per precision, quantize/dequantize,
    layout conversions, and the overhead (median minus the per-layer sum)."""
    parts: dict[str, float] = {}
    for row in p.layers:
        if row.kind == "compute":
            what = f"{row.precision} compute" if row.precision else "compute (precision not reported)"
        elif row.kind in ("quantize", "dequantize"):
            what = "quantize/dequantize"
        else:
            what = "layout conversions"
        parts[what] = parts.get(what, 0.0) + row.ms
    ordered = sorted(parts.items(), key=lambda item: -item[1])
    return [*ordered, (OVERHEAD_LABEL, p.overhead_ms)]


def agreement_text(p: LayerProfile) -> str:
    """How the per-layer sum compares with the measured latency, and with the profiled calls' own
    wall time (the same calls the layer times come from, so a machine slower or faster during
    the timed loop than while profiling shows up as the difference between the two)."""
    text = _against_median(p)
    if p.profiled_ms > 0:
        cover = p.layer_sum_ms / p.profiled_ms * 100
        text += f"; within the profiled calls the layers cover {cover:.0f}% of the wall time"
    return text


def _against_median(p: LayerProfile) -> str:
    if p.median_ms <= 0:
        return fmt.na("no measured latency to compare with")
    gap = p.overhead_ms / p.median_ms
    limit = f"{AGREEMENT_TOLERANCE * 100:.0f}%"
    if p.within_tolerance:
        return f"the per-layer sum is within {limit} of the measured latency ({gap * 100:+.1f}% left as overhead)"
    if gap > 0:
        return (
            f"the layers account for {100 - gap * 100:.0f}% of the measured latency; the other "
            f"{gap * 100:.0f}% is {OVERHEAD_LABEL}"
        )
    return (
        f"the layer times add up to {-gap * 100:.0f}% more than the unprofiled latency, shown as negative "
        "overhead: the profiler's own cost per operator (large next to a fast call), or the machine "
        f"running slower while profiling than during the timed loop (a profiled call took {ms_text(p.profiled_ms)} ms)"
    )


def totals(p: LayerProfile) -> ProfileTotals:
    def part(ms: float) -> str:
        share = ms / p.median_ms if p.median_ms > 0 else None
        return f"{ms_text(ms)} ms ({share_text(share)})"

    top = sorted(p.layers, key=lambda row: -row.ms)[:3]
    return ProfileTotals(
        batch_size=p.batch_size,
        layer_sum=ms_text(p.layer_sum_ms),
        median=ms_text(p.median_ms),
        overhead=ms_text(p.overhead_ms),
        overhead_share=share_text(p.overhead_ms / p.median_ms if p.median_ms > 0 else None),
        profiled=ms_text(p.profiled_ms),
        agrees=p.within_tolerance,
        agreement=agreement_text(p),
        breakdown=[(what, part(ms)) for what, ms in breakdown(p)],
        top=", ".join(
            f"{row.layer}{' ' + KIND_LABELS.get(row.kind, '') if row.kind in KIND_LABELS else ''} "
            f"{share_text(row.share)}"
            for row in top
        ),
        profiler=p.profiler,
        iterations=p.iterations,
        notes=list(p.notes),
        record=p,
    )


# ---------------------------------------------------------------------------------------------
# the figure


def _segments(p: LayerProfile, colored: list[str]) -> list[tuple[str, float]]:
    """(segment, percent of the measured latency) for one bar: the coloured layers, the rest
    merged, quantize/dequantize, layout, and a positive overhead."""
    scale = 100.0 / p.median_ms if p.median_ms > 0 else 0.0
    parts: dict[str, float] = {}
    for row in p.layers:
        if row.kind in ("quantize", "dequantize"):
            name = "quantize/dequantize"
        elif row.kind == "layout":
            name = "layout conversions"
        else:
            name = row.layer if row.layer in colored else "other layers"
        parts[name] = parts.get(name, 0.0) + row.ms * scale
    ordered = [(n, parts[n]) for n in colored if n in parts]
    ordered += [
        (n, parts[n]) for n in ("other layers", "quantize/dequantize", "layout conversions") if n in parts
    ]
    if p.overhead_ms > 0:
        ordered.append((OVERHEAD_LABEL, p.overhead_ms * scale))
    return ordered


def draw_figure(ctx: ReportContext, out_dir: FigureDir) -> dict[str, Any] | None:
    """Horizontal stacked bars, one per variant and profiled batch size (a panel per batch size):
    each layer's time as a percent of the measured median latency. None without profiles."""
    from qbench.reports.figures import _plt, _save

    drawn = [s for s in ctx.profile_sections if s.available]
    if not drawn:
        return None
    weights: dict[str, float] = {}
    for s in drawn:
        for t in s.totals:
            assert t.record is not None
            for row in t.record.layers:
                if row.kind == "compute":
                    weights[row.layer] = max(weights.get(row.layer, 0.0), row.share)
    colored = [name for name, _ in sorted(weights.items(), key=lambda item: -item[1])[:FIGURE_LAYERS]]
    colored.sort(key=lambda name: list(weights).index(name))  # execution order, as the tables
    colors = {name: _LAYER_COLORS[i % len(_LAYER_COLORS)] for i, name in enumerate(colored)}
    colors.update({"other layers": "0.8", "quantize/dequantize": "tab:red", "layout conversions": "gold"})
    panels = sorted({t.batch_size for s in drawn for t in s.totals})
    plt = _plt()
    height = 0.5 + 0.42 * len(drawn)
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.6, 1.2 + height * len(panels)), squeeze=False)
    used: dict[str, Any] = {}
    for ax, batch_size in zip(axes[:, 0], panels, strict=True):
        labels = []
        for y, s in enumerate(drawn):
            t = next((t for t in s.totals if t.batch_size == batch_size), None)
            labels.append(s.label)
            if t is None or t.record is None:
                continue
            left = 0.0
            for name, width in _segments(t.record, colored):
                overhead = name == OVERHEAD_LABEL
                bar = ax.barh(
                    y,
                    width,
                    left=left,
                    color="white" if overhead else colors[name],
                    edgecolor="0.4" if overhead else "white",
                    hatch="//" if overhead else None,
                    linewidth=0.6,
                    height=0.7,
                )
                used.setdefault(name, bar)
                left += width
        ax.axvline(100, color="black", linewidth=0.9, linestyle="--")
        ax.set_yticks(range(len(drawn)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"batch {batch_size}", fontsize=8)
        ax.set_xlabel("% of the measured median latency (dashed: 100%)", fontsize=7)
    order = [
        n
        for n in [*colored, "other layers", "quantize/dequantize", "layout conversions", OVERHEAD_LABEL]
        if n in used
    ]
    fig.legend(
        [used[n] for n in order],
        order,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    title = "Per-layer profiles"
    caption = (
        "Where one call's time goes, per variant and profiled batch size: each layer's time under the "
        "runner's own profiler as a percent of the measured median latency; quantize/dequantize steps "
        "and layout conversions are their own segments, hatched is time in no layer. Bars past 100% "
        "mean the profiler's own cost inflated the layer times."
    )
    return _save(fig, out_dir, "layer_profiles", title, caption)
