"""The compare step of the library API: reports from one or several workspaces."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qbench.errors import QBenchError


def compare(
    sources: Any,
    formats: str | Iterable[str],
    out_dir: Path | None = None,
    templates_dir: Path | None = None,
    title: str | None = None,
) -> dict[str, list[Path]]:
    """Write the reports of ``sources`` (a Workspace, or workspace folders / result files to
    compare side by side) in ``formats`` ('all', 'html,md' or a list); returns the files by format."""
    from qbench.reports.writers import parse_formats, write_reports

    chosen = parse_formats(formats)
    if templates_dir is not None and not Path(templates_dir).is_dir():
        raise QBenchError(
            f"template folder {templates_dir} does not exist; pass --templates a folder of *.j2 overrides."
        )
    return write_reports(sources, chosen, out_dir, templates_dir=templates_dir, title=title)
