"""Write reports in every format, each file atomically, into ``reports/``.

    write_reports(workspace, ["text", "html"], out_dir)  ->  {"text": [...], "html": [...]}

Formats: text (``<mode>.txt`` per variant, reference 000's structure), html (one
self-contained file), md, latex (``report.tex``), csv (one row per variant x batch size),
json (the combined context). Latency headlines are medians; the CSV and JSON also carry
the mean and the 95% confidence interval of the median.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qbench.errors import QBenchError
from qbench.reports.context import ReportContext, build_context, context_for_json
from qbench.reports.env import make_env, render
from qbench.reports.roofline import CSV_COLUMNS as ROOFLINE_CSV_COLUMNS
from qbench.reports.roofline import csv_cells as roofline_csv_cells
from qbench.reports.rows import VariantRow
from qbench.reports.sources import Source, load_sources
from qbench.workspace import Workspace, write_text

FORMATS = ("text", "html", "md", "latex", "csv", "json")
ALIASES = {"txt": "text", "markdown": "md", "tex": "latex", "htm": "html"}
# figures are only drawn for the formats that show them
FIGURE_FORMATS = {"html", "latex"}


def parse_formats(spec: str | Iterable[str]) -> list[str]:
    """'html,md' / ['all'] -> the canonical format names, in FORMATS order."""
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    wanted = set()
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            wanted.update(FORMATS)
            continue
        item = ALIASES.get(item, item)
        if item not in FORMATS:
            raise QBenchError(
                f"unknown report format {item!r}; choose from {', '.join(FORMATS)} or all (comma-separated)."
            )
        wanted.add(item)
    if not wanted:
        raise QBenchError(f"no report format given; pass --report with one of {', '.join(FORMATS)} or all.")
    return [f for f in FORMATS if f in wanted]


def _as_sources(ws_or_sources: Any) -> list[Source]:
    if isinstance(ws_or_sources, (Workspace, str, Path)):
        items = [ws_or_sources]
    else:
        items = list(ws_or_sources)
    if items and all(isinstance(i, Source) for i in items):
        return items
    return load_sources(items)


def variant_filename(var: VariantRow, multi: bool) -> str:
    name = var.mode if not multi else f"{var.source}-{var.mode}"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{safe}.txt"


def write_reports(
    ws_or_sources: Any,
    formats: Iterable[str],
    out_dir: str | Path | None = None,
    templates_dir: str | Path | None = None,
    title: str | None = None,
) -> dict[str, list[Path]]:
    """Render ``formats`` from a workspace (or sources) into ``out_dir``; return the paths written.

    ``out_dir`` defaults to the (first) workspace's ``reports/`` folder.
    """
    fmts = parse_formats(list(formats))
    sources = _as_sources(ws_or_sources)
    out = Path(out_dir) if out_dir is not None else Workspace(sources[0].root).reports_dir
    env = make_env(templates_dir)
    ctx = build_context(sources, title=title)
    written: dict[str, list[Path]] = {}
    if FIGURE_FORMATS & set(fmts):
        from qbench.reports.figures import draw_figures

        ctx.figures = draw_figures(ctx, out / "figures", pdf="latex" in fmts)
        written["figures"] = [Path(p) for f in ctx.figures.values() for p in f["files"].values()]
    # render everything first so a template error leaves no half-updated set of files
    rendered: dict[str, list[tuple[Path, str]]] = {}
    for f in fmts:
        rendered[f] = _render(f, ctx, env, out)
    for f, items in rendered.items():
        written[f] = [write_text(path, text) for path, text in items]
    return written


def _render(fmt_name: str, ctx: ReportContext, env, out: Path) -> list[tuple[Path, str]]:
    variables = ctx.template_vars()
    if fmt_name == "text":
        return [
            (out / variant_filename(v, ctx.multi), render(env, "variant_report.txt.j2", v=v, **variables))
            for v in ctx.variants
        ]
    if fmt_name in ("html", "md", "latex"):
        name = {"html": "report.html", "md": "report.md", "latex": "report.tex"}[fmt_name]
        return [(out / name, render(env, f"{name}.j2", **variables))]
    if fmt_name == "csv":
        return [(out / "report.csv", csv_text(ctx))]
    if fmt_name == "json":
        return [(out / "report.json", json.dumps(context_for_json(ctx), indent=2, allow_nan=False) + "\n")]
    raise AssertionError(fmt_name)


CSV_COLUMNS = [
    "source",
    "machine",
    "variant",
    "status",
    "skip_reason",
    "engine",
    "device",
    "batch_size",
    "n_samples",
    "median_ms",
    "median_ci_low_ms",
    "median_ci_high_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "cv",
    "noisy",
    "per_image_ms",
    "median_throughput_ips",
    "throughput_ips",
    "speedup_vs_fp32",
    "size_mb",
    "size_ratio",
    "top1",
    "top5",
    "top1_error",
    "top5_error",
    "top1_delta_pp",
    "top1_agreement",
]
CSV_COLUMNS += ROOFLINE_CSV_COLUMNS  # the roofline point and the energy of each batch size
# copied from the LatencyStats record as is
_STAT_COLUMNS = [*CSV_COLUMNS[CSV_COLUMNS.index("n_samples") : CSV_COLUMNS.index("cv") + 1], "per_image_ms"]


def csv_text(ctx: ReportContext) -> str:
    """One row per variant x batch size (one row with an empty batch size for a skipped variant).

    speedup_vs_fp32 and median_throughput_ips use the median; throughput_ips is images over
    the timed wall time, as recorded.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for v in ctx.variants:
        common = {
            "source": v.source,
            "machine": v.machine,
            "variant": v.mode,
            "status": v.status,
            "skip_reason": v.skip_reason or "",
            "engine": v.engine,
            "device": v.device,
            "size_mb": _c(v.size_mb),
            "size_ratio": _c(v.size_ratio),
            "top1": _c(v.top1),
            "top5": _c(v.top5),
            "top1_error": _c(v.top1_error),
            "top5_error": _c(v.top5_error),
            "top1_delta_pp": _c(v.acc_delta),
            "top1_agreement": _c(v.agreement.top1_agreement if v.agreement else None),
        }
        if not v.latency:
            writer.writerow(common)
        for row in v.latency:
            writer.writerow(
                {
                    **common,
                    "batch_size": row.batch_size,
                    **{k: _c(getattr(row.stats, k)) for k in _STAT_COLUMNS},
                    "noisy": str(row.noisy).lower(),
                    "median_throughput_ips": _c(row.median_throughput_ips),
                    "throughput_ips": _c(row.stats.throughput_ips),
                    "speedup_vs_fp32": _c(row.speedup),
                    **roofline_csv_cells(ctx.roofline_by_key.get(v.key), row.batch_size),
                }
            )
    return buf.getvalue()


def _c(value: Any) -> str:
    """A CSV cell: full precision as recorded (repr of floats), empty when not applicable."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return repr(value) if isinstance(value, float) else str(value)
