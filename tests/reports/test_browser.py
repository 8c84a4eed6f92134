"""Open the HTML report in headless Chromium: figures render, nothing errors (marker: browser).

Chromium is Debian's package; where it is missing and the tests run as root the set-up installs
it once with apt-get (tests/reports/system_tools.py), and the test skips with the reason if that fails. The
page is driven with --dump-dom: a copy of the report gets a small script that stamps each
image's natural size and any error into the DOM (the report itself carries no script).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.reports.system_tools import ensure_tool

pytestmark = pytest.mark.browser

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
const origError = console.error;
console.error = (...a) => { window.__errors.push(a.join(" ")); origError(...a); };
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  const imgs = [...document.images].map(i => i.alt + "|" + i.naturalWidth + "x" + i.naturalHeight + "|" + i.complete);
  out.textContent = JSON.stringify({images: imgs, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    return ensure_tool("chromium", ["chromium"])


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


def _run(chromium: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="qbench-chromium-") as profile:
        return subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


def test_html_report_renders_in_chromium(chromium, rendered, tmp_path):
    import json

    from bs4 import BeautifulSoup

    root, _ = rendered
    html = (root / "reports" / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</head>", PROBE + "\n</head>", 1))
    shot = tmp_path / "report.png"
    proc = _run(chromium, "--window-size=1280,2400", f"--screenshot={shot}", probe.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    proc = _run(
        chromium, "--virtual-time-budget=5000", "--enable-logging=stderr", "--dump-dom", probe.as_uri()
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    soup = BeautifulSoup(proc.stdout, "html.parser")
    probe_out = soup.find(id="probe")
    assert probe_out is not None, "the page did not finish loading"
    data = json.loads(probe_out.get_text())
    assert data["errors"] == []
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "error" in line.lower()]
    assert console == []
    figures = BeautifulSoup(html, "html.parser").find_all("img")
    assert len(data["images"]) == len(figures) >= 5
    for entry in data["images"]:
        _alt, size, complete = entry.split("|")
        width, height = (int(v) for v in size.split("x"))
        assert complete == "true" and width > 100 and height > 100, entry
    if os.environ.get("QBENCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["QBENCH_KEEP_SCREENSHOT"])
