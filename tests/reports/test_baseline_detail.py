"""The HTML report carries reference 003's tables when train.json records them."""

from __future__ import annotations

import json


def test_layer_table_and_per_split_metrics(recorded_ws):
    from bs4 import BeautifulSoup

    from qbench.baselines.models import create_model
    from qbench.baselines.summary import summarize
    from qbench.reports.writers import write_reports

    summary = summarize(create_model("alexnet-paper", num_classes=10), 227, "alexnet-paper", 10).to_dict()
    per_class = [
        {"label": str(c), "precision": 0.9 + c / 100, "recall": 0.8, "f1": 0.85, "support": 27}
        for c in range(10)
    ]
    splits = {
        name: {"n_images": n, "loss": loss, "acc": acc, "top5": 100.0, "per_class": per_class}
        for name, n, loss, acc in (
            ("train", 1257, 0.03, 98.92),
            ("val", 270, 0.05, 98.67),
            ("test", 270, 0.04, 98.87),
        )
    }
    path = recorded_ws / "baseline" / "train.json"
    train = json.loads(path.read_text())
    path.write_text(json.dumps({**train, "summary": summary, "splits": splits}))

    html = write_reports(recorded_ws, ["html"])["html"][0].read_text()
    soup = BeautifulSoup(html, "html.parser")
    layers = soup.select("table.model-summary tbody tr")
    assert len(layers) == 23
    assert [td.text for td in layers[0].find_all("td")] == ["2D Convolution", "[-1, 96, 55, 55]", "34,944"]
    assert "58,322,314" in soup.select_one("table.model-summary tfoot").text
    rows = {
        tr.th.text: [td.text for td in tr.find_all("td")]
        for tr in soup.select("table.split-metrics tbody tr")
    }
    assert rows["Accuracy (%)"] == ["98.92", "98.67", "98.87"]
    assert rows["Loss"] == ["0.0300", "0.0500", "0.0400"]
    first = [td.text for td in soup.select("table.split-per-class tbody tr")[0].find_all("td")]
    assert first[0] == "0" and first[1:4] == ["0.9000"] * 3 and len(first) == 10
