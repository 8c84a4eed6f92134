"""The roofline, machine-limits and energy sections of every report, the CLI lines, the figure.

Built from the records alone: each result carries its :class:`~qbench.records.Roofline` (with the
limits it was compared with) and its :class:`~qbench.records.EnergyStats`, so a report renders
on any machine, without the limits cache. A value that cannot apply is ``n/a (<reason>)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qbench.records import BenchResult, DeviceLimits, EnergyPoint, EnergyStats, RooflinePoint
from qbench.reports import fmt

if TYPE_CHECKING:
    from qbench.reports.context import ReportContext
    from qbench.reports.figures import FigureDir
    from qbench.reports.sources import Source

# the roofs' colours stay clear of the variants' (matplotlib's C0..C6)
_PEAK_COLORS = {"fp32": "tab:gray", "bf16": "tab:olive", "fp16": "tab:cyan", "int8": "tab:purple"}
STALE = "this result predates the roofline: rerun 'qbench bench'"


@dataclass
class LimitRow:
    what: str  # "memory bandwidth (read)", "int8 peak"
    value: str  # "30.6 GB/s", "370.2 GOP/s"
    method: str


@dataclass
class LimitsTable:
    """One device's measured limits, as a results' rooflines recorded them."""

    source: str
    device: str
    name: str
    measured: str
    fingerprint: str
    rows: list[LimitRow]
    notes: list[str] = field(default_factory=list)
    limits: DeviceLimits | None = None  # the record, for report.json and the figure's roofs


@dataclass
class RooflineLine:
    """One batch size: the roofline point as printed, and the energy where the machine counts it."""

    batch_size: int
    median_ms: str
    mbytes: str  # MB moved per call
    gops: str  # G operations per call
    intensity: str  # operations per byte
    bound: str  # "memory" | "compute"
    bound_rate: str
    achieved_rate: str
    fraction: str  # "12.3%"
    bound_ms: str
    over_floor: str  # "2.61x"
    energy: str  # "0.0123 J/image (45.0 W)" or n/a
    point: RooflinePoint
    energy_point: EnergyPoint | None = None


@dataclass
class RooflineSection:
    """One variant's roofline: its facts, a line per batch size, its notes."""

    key: str
    label: str
    mode: str
    available: bool
    reason: str  # why not available ("" when it is)
    precision: str = ""
    unit: str = ""
    peak: str = ""
    bandwidth: str = ""
    weights: str = ""
    activations: str = ""
    floor: str = ""
    knee: str = ""
    lines: list[RooflineLine] = field(default_factory=list)
    energy_source: str = ""
    energy_note: str = ""
    notes: list[str] = field(default_factory=list)

    def at(self, batch_size: int) -> RooflineLine | None:
        return next((line for line in self.lines if line.batch_size == batch_size), None)

    @property
    def has_energy(self) -> bool:
        return any(line.energy_point is not None for line in self.lines)


# ---------------------------------------------------------------------------------------------
# sections


def sections(sources: list[Source], multi: bool) -> tuple[dict[str, RooflineSection], list[LimitsTable]]:
    """The roofline section of every ok result by variant key, and each source's limits tables."""
    by_key: dict[str, RooflineSection] = {}
    tables: list[LimitsTable] = []
    for s in sources:
        seen: set[tuple[str, str]] = set()
        for r in s.results:
            if not r.ok:
                continue
            key = f"{s.label}/{r.mode}"
            by_key[key] = section(r, key, f"{r.mode} @ {s.label}" if multi else r.mode)
            roof = r.roofline
            if roof is not None and roof.limits is not None:
                ident = (roof.limits_fingerprint, roof.device)
                if ident not in seen:
                    seen.add(ident)
                    tables.append(
                        limits_table(roof.limits, s.label, roof.limits_measured, roof.limits_fingerprint)
                    )
    return by_key, tables


def section(r: BenchResult, key: str, label: str) -> RooflineSection:
    roof = r.roofline
    energy = r.energy
    common = {"key": key, "label": label, "mode": r.mode}
    energy_source, energy_note = _energy_texts(energy)
    if roof is None:
        reason = next((n.split(": ", 1)[1] for n in r.notes if n.startswith("roofline: ")), None)
        return RooflineSection(
            **common,
            available=False,
            reason=reason or fmt.na(STALE),
            energy_source=energy_source,
            energy_note=energy_note,
        )
    latency = {s.batch_size: s for s in r.latency}
    lines = []
    for p in roof.points:
        stats = latency.get(p.batch_size)
        lines.append(
            RooflineLine(
                batch_size=p.batch_size,
                median_ms=fmt.plain(stats.median_ms if stats else None, 3),
                mbytes=fmt.num(p.bytes_per_call / 1e6, 3),
                gops=fmt.num(p.ops_per_call / 1e9, 4),
                intensity=fmt.num(p.intensity, 1),
                bound=p.bound,
                bound_rate=rate(p.bound_rate, roof.unit),
                achieved_rate=rate(p.achieved_rate, roof.unit),
                fraction=percent(p.fraction),
                bound_ms=fmt.plain(p.bound_ms, 3, suffix=" ms"),
                over_floor=fmt.ratio(p.over_floor),
                energy=_energy_cell(energy, p.batch_size),
                point=p,
                energy_point=energy.at(p.batch_size) if energy is not None else None,
            )
        )
    peak = roof.peak_rate
    return RooflineSection(
        **common,
        available=True,
        reason="",
        precision=roof.precision,
        unit=roof.unit,
        peak=f"{rate(peak, roof.unit)} ({roof.peak_method})" if peak else fmt.na(roof.peak_method),
        bandwidth=f"{roof.bandwidth_gbytes_per_s:,.1f} GB/s ({roof.bandwidth_method})",
        # decimal megabytes, as the GB/s they are divided by (the sizes elsewhere are MiB)
        weights=f"{roof.weight_bytes / 1e6:,.3f} MB (10^6 bytes): {roof.weight_bytes_method}",
        activations=f"{roof.activation_bytes_per_image / 1e6:,.3f} MB (10^6 bytes) per image: {roof.activation_method}",
        floor=f"{roof.floor_ms:.4g} ms (weights / bandwidth)",
        knee=f"batch {roof.knee_batch_size}" if roof.knee_batch_size else fmt.na("no throughput measured"),
        lines=lines,
        energy_source=energy_source,
        energy_note=energy_note,
        notes=list(roof.notes)
        + ([f"limits measured {roof.limits_measured}"] if roof.limits_measured else []),
    )


def limits_table(limits: DeviceLimits, source: str, measured: str, fingerprint: str) -> LimitsTable:
    rows = []
    bw = limits.bandwidth
    if bw is not None:
        method = f"{bw.method}; {bw.library}, {bw.threads} threads, buffer {bw.buffer_bytes / 2**20:,.0f} MiB"
        if bw.cache_bytes:
            method += f" (last-level cache {bw.cache_bytes / 2**20:,.0f} MiB)"
        rows.append(LimitRow("memory bandwidth", f"{bw.gbytes_per_s:,.1f} GB/s", method))
    for p in limits.peaks:
        value = rate(p.rate, p.unit) if p.rate else fmt.na(p.error or "not measured")
        shape = "x".join(str(d) for d in p.shape) or "-"
        method = (
            f"{p.op}; {p.library}; {shape}; {p.threads or 'device'} threads; median of {p.repetitions} calls"
        )
        if p.emulated:
            method += f"; {p.emulated}"
        rows.append(LimitRow(f"{p.precision} matmul peak", value, method))
    notes = list(limits.notes) + ([bw.note] if bw is not None and bw.note else [])
    return LimitsTable(source, limits.device, limits.name, measured, fingerprint, rows, notes, limits)


def device_limit_lines(limits: DeviceLimits) -> list[str]:
    """Plain lines for ``qbench info --limits``: '<what>  <value>  <method>'."""
    table = limits_table(limits, "", "", "")
    width = max((len(r.what) for r in table.rows), default=0)
    lines = [f"{r.what:<{width}}  {r.value:>16}  {r.method}" for r in table.rows]
    return lines + [f"note: {n}" for n in table.notes]


# ---------------------------------------------------------------------------------------------
# formatting


def rate(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return fmt.na("not measured")
    digits = 1 if value >= 10 else 3
    return f"{value:,.{digits}f} {unit}"


def percent(value: float | None) -> str:
    """12.3%; small fractions keep two significant digits (0.0051%)."""
    if value is None or not math.isfinite(value):
        return fmt.na("not measured")
    pct = value * 100
    return f"{pct:.1f}%" if pct >= 0.1 else f"{pct:.2g}%"


def _energy_texts(energy: EnergyStats | None) -> tuple[str, str]:
    if energy is None:
        return fmt.na("this result predates energy readings"), ""
    if energy.source is None or energy.reason:
        return energy.reason or fmt.na("no energy counter"), ""
    return energy.source, f"window: {energy.window}; scope: {energy.scope}"


def _energy_cell(energy: EnergyStats | None, batch_size: int) -> str:
    if energy is None:
        return fmt.na("not recorded")
    if energy.reason or energy.source is None:
        return energy.reason or fmt.na("no energy counter")
    p = energy.at(batch_size)
    if p is None:
        return fmt.na(f"not read at batch {batch_size}")
    return f"{p.joules_per_image:.4g} J/image ({p.watts:.1f} W)"


def csv_cells(section: RooflineSection | None, batch_size: int) -> dict[str, str]:
    """The roofline and energy columns of one CSV row ('' where not available)."""
    line = section.at(batch_size) if section is not None else None
    if line is None:
        return {k: "" for k in CSV_COLUMNS}
    p, e = line.point, line.energy_point
    return {
        "roofline_bound": p.bound,
        "roofline_bound_rate": _cell(p.bound_rate),
        "roofline_achieved_rate": _cell(p.achieved_rate),
        "roofline_fraction": _cell(p.fraction),
        "over_weight_floor": _cell(p.over_floor),
        "joules_per_image": _cell(e.joules_per_image if e is not None else None),
    }


def _cell(value: float | None) -> str:
    """Full precision as recorded; empty where not applicable (as the other CSV columns)."""
    return repr(float(value)) if value is not None and math.isfinite(value) else ""


CSV_COLUMNS = [
    "roofline_bound",
    "roofline_bound_rate",
    "roofline_achieved_rate",
    "roofline_fraction",
    "over_weight_floor",
    "joules_per_image",
]


# ---------------------------------------------------------------------------------------------
# the CLI summary of `qbench bench`


def summary_lines(results: list[BenchResult]) -> list[str]:
    """One line per ok result: its roofline at the smallest and largest batch size, the knee,
    and the energy per image; a header line naming the limits compared with."""
    lines: list[str] = []
    roofs = [r for r in results if r.ok and r.roofline is not None]
    if roofs:
        first = roofs[0].roofline
        assert first is not None
        lines.append(
            f"roofline on {first.device}: read bandwidth {first.bandwidth_gbytes_per_s:,.1f} GB/s; peaks "
            + ", ".join(
                f"{p}: {rate(pk.rate, pk.unit)}"
                for p in (first.limits.precisions if first.limits else [])
                if (pk := first.limits.peak(p)) is not None  # type: ignore[union-attr]
            )
        )
    for r in results:
        if not r.ok:
            continue
        roof = r.roofline
        if roof is None:
            why = next((n.split(": ", 1)[1] for n in r.notes if n.startswith("roofline: ")), fmt.na(STALE))
            lines.append(f"  {r.mode}: roofline {why}")
            continue
        parts = []
        shown = [roof.points[0], roof.points[-1]] if len(roof.points) > 1 else roof.points
        for p in shown:
            parts.append(
                f"b{p.batch_size} {percent(p.fraction)} of the {p.bound} bound ({p.over_floor:.2f}x weight floor)"
            )
        knee = f"knee b{roof.knee_batch_size}" if roof.knee_batch_size else "knee n/a"
        energy = ""
        if r.energy is not None and r.energy.points:
            e = r.energy.points[0]
            energy = f"; {e.joules_per_image:.3g} J/image at b{e.batch_size}"
        cached = any("last-level cache" in n for n in roof.notes)
        lines.append(
            f"  {r.mode} ({roof.precision}, floor {roof.floor_ms:.3g} ms): "
            + "; ".join(parts)
            + f"; {knee}{energy}"
            + ("; weights fit in the last-level cache" if cached else "")
        )
    energy_reason = next((r.energy.reason for r in results if r.energy is not None and r.energy.reason), None)
    if energy_reason:
        lines.append(f"energy: {energy_reason}")
    return lines


# ---------------------------------------------------------------------------------------------
# the figure


def draw_figure(ctx: ReportContext, out_dir: FigureDir) -> dict[str, Any] | None:
    """Log-log roofline: the memory roof and each precision's peak, every variant's points
    labelled by batch size. None when no result has a roofline."""
    from qbench.reports.figures import _MARKERS, _plt, _save

    drawn = [s for s in ctx.rooflines if s.available and s.lines]
    if not drawn:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    xs = [line.point.intensity for s in drawn for line in s.lines]
    ys = [line.point.achieved_rate for s in drawn for line in s.lines]
    ridges = [  # where each peak meets the memory roof: the figure shows every one
        pk.rate / t.limits.bandwidth.gbytes_per_s
        for t in ctx.machine_limits
        if t.limits is not None and t.limits.bandwidth is not None and t.limits.bandwidth.gbytes_per_s
        for pk in t.limits.peaks
        if pk.rate
    ]
    x_low, x_high = min(xs) / 4, max([max(xs) * 8, *(r * 3 for r in ridges)])
    roof_rates = []
    for n, table in enumerate(ctx.machine_limits):
        suffix = f" ({table.source})" if ctx.multi else ""
        style = ["-", "--", ":", "-."][n % 4]
        limits = table.limits
        if limits is None or limits.bandwidth is None:
            continue
        bw = limits.bandwidth.gbytes_per_s
        grid = [x_low * (x_high / x_low) ** (i / 60) for i in range(61)]
        for precision in limits.precisions:
            peak = limits.peak(precision)
            assert peak is not None and peak.rate is not None
            roof_rates.append(peak.rate)
            ax.plot(
                grid,
                [min(peak.rate, bw * x) for x in grid],
                style,
                color=_PEAK_COLORS.get(precision, "0.5"),
                linewidth=1.6,
                alpha=0.55,
                label=f"{precision} peak {rate(peak.rate, peak.unit)}{suffix}",
            )
        ax.plot(
            grid,
            [bw * x for x in grid],
            style,
            color="black",
            linewidth=1.2,
            label=f"memory {bw:,.1f} GB/s{suffix}",
        )
    for i, s in enumerate(drawn):
        px = [line.point.intensity for line in s.lines]
        py = [line.point.achieved_rate for line in s.lines]
        ax.plot(
            px,
            py,
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=5,
            linewidth=1.0,
            color=f"C{i % 7}",
            label=s.label,
        )
        for line in s.lines:
            ax.annotate(
                f"b{line.batch_size}",
                (line.point.intensity, line.point.achieved_rate),
                textcoords="offset points",
                xytext=(4, -9),
                fontsize=6,
                color=f"C{i % 7}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_low, x_high)
    top = max([*ys, *roof_rates]) * 3
    ax.set_ylim(min(ys) / 5, top)
    ax.set_xlabel("arithmetic intensity (operations per byte moved)")
    ax.set_ylabel("G operations/s (GFLOP/s; GOP/s for int8)")
    ax.set_title("Roofline: achieved rate per batch size against this machine's limits")
    ax.legend(fontsize=6.5, loc="lower right")
    caption = (
        "Roofline (log-log): the black line is the measured memory-bandwidth roof, the others each "
        "precision's measured matmul peak; points are each variant's achieved rate per batch size "
        "(b1, b4, ...), bytes = weights once + activations, operations = 2 x MACs."
    )
    return _save(fig, out_dir, "roofline", "Roofline", caption)
