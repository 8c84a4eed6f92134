"""JUnit XML of a verdict for CI systems: one test case per variant x batch size (and top-1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from qbench.regress.verdict import (
    INCONCLUSIVE,
    MISSING,
    NOT_COMPARED,
    Report,
    Row,
    fmt_change,
    fmt_interval,
    fmt_noise,
    fmt_runs,
    fmt_value,
    where,
)

SUITE = "qbench regress"


def _numbers(row: Row) -> str:
    return (
        f"{row.metric}: baseline {fmt_value(row.baseline, row.metric)}, current "
        f"{fmt_value(row.current, row.metric)}, change {fmt_change(row)}, interval {fmt_interval(row)}, "
        f"baseline noise {fmt_noise(row)}, runs {fmt_runs(row)}" + (f"; {row.note}" if row.note else "")
    )


def junit_xml(report: Report) -> ET.ElementTree:
    failing = {id(r) for r in report.failures()}
    suite = ET.Element("testsuite", name=SUITE, tests=str(len(report.rows)))
    failures = skipped = 0
    for row in report.rows:
        case = ET.SubElement(suite, "testcase", classname=f"qbench.{row.variant}", name=where(row))
        text = _numbers(row)
        if id(row) in failing:
            failures += 1
            kind = "missing" if row.verdict == MISSING else row.verdict.lower()
            ET.SubElement(
                case, "failure", message=f"{row.verdict}: {row.variant} {where(row)}", type=kind
            ).text = text
        elif row.verdict in (INCONCLUSIVE, NOT_COMPARED, MISSING):
            skipped += 1
            ET.SubElement(case, "skipped", message=row.note or row.verdict)
        ET.SubElement(case, "system-out").text = f"{row.verdict}: {text}"
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    for w in report.warnings:
        ET.SubElement(suite, "system-err").text = w
    ET.indent(suite)
    return ET.ElementTree(suite)


def write_junit(report: Report, path: str | Path) -> Path:
    from qbench.records.io import write_text

    xml = ET.tostring(junit_xml(report).getroot(), encoding="unicode", xml_declaration=True)
    return write_text(Path(path), xml + "\n")
