"""`qbench evaluate` records appear in the variant's text report and in the HTML, with their numbers."""

from __future__ import annotations

from bs4 import BeautifulSoup

from qbench.records import EvaluationRecord
from qbench.reports.writers import write_reports
from tests.reports.conftest import run_qbench


def test_an_evaluated_variant_shows_its_split_tables(real_ws):
    run_qbench(real_ws.parent, "evaluate", "--variant", "int8-ptq", "--out", str(real_ws))
    record = EvaluationRecord.from_json(real_ws / "evaluation" / "int8-ptq.json")
    written = write_reports(real_ws, ["text", "html"], real_ws / "reports")

    text = (real_ws / "reports" / "int8-ptq.txt").read_text()
    assert "Evaluation by Split (qbench evaluate, centre view)" in text
    for split in ("train", "val", "test"):
        assert f"{record.splits[split].top1:.2f}" in text
    assert "Evaluation by Split" not in (real_ws / "reports" / "fp32.txt").read_text()  # not evaluated

    (html_path,) = written["html"]
    soup = BeautifulSoup(html_path.read_text(), "html.parser")
    heading = soup.find(id="evaluation")
    assert heading is not None and "int8-ptq" in heading.find_next("h3").get_text()
    cells = [td.get_text() for td in heading.find_next("table").find_all("td")]
    assert f"{record.splits['test'].top5:.2f}" in cells
