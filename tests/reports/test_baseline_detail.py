"""The HTML report carries reference 003's tables from the real run's train.json."""

from __future__ import annotations

from qbench.records import TrainRecord


def test_layer_table_and_per_split_metrics(rendered):
    from bs4 import BeautifulSoup

    root, _ = rendered
    train = TrainRecord.from_json(root / "baseline" / "train.json")
    soup = BeautifulSoup((root / "reports" / "report.html").read_text(), "html.parser")
    layers = soup.select("table.model-summary tbody tr")
    assert len(layers) == len(train.summary.layers) > 0
    first = train.summary.layers[0]
    shape = "[" + ", ".join(map(str, first.output_shape)) + "]"
    assert [td.text for td in layers[0].find_all("td")] == [first.type, shape, f"{first.params:,}"]
    assert f"{train.summary.total_params:,}" in soup.select_one("table.model-summary tfoot").text
    rows = {
        tr.th.text: [td.text for td in tr.find_all("td")]
        for tr in soup.select("table.split-metrics tbody tr")
    }
    splits = [train.splits[k] for k in ("train", "val", "test")]
    assert rows["Top-1 accuracy (%)"] == [f"{s.top1:.2f}" for s in splits]
    assert rows["Top-5 accuracy (%)"] == [f"{s.top5:.2f}" for s in splits]
    assert rows["Loss"] == [f"{s.loss:.4f}" for s in splits]
    first_class = [td.text for td in soup.select("table.split-per-class tbody tr")[0].find_all("td")]
    assert first_class[0] == splits[2].per_class[0].label
    assert first_class[1:4] == [f"{s.per_class[0].precision:.4f}" for s in splits]
