"""CI regression of latency numbers: current results vs a stored baseline.

Compares per variant x batch size. A pair is a REGRESSION only when the current run is slower
than the baseline by more than the relative threshold AND by more than an absolute floor AND,
where both sides kept raw samples, a one-sided Mann-Whitney U test finds the slowdown
significant, so measurement noise alone cannot fail CI. Top-1 accuracy is gated per variant.

Every figure is defined as in the reports: the headline is the median (with ``--repeats`` the
median of per-repeat medians), throughput is ``batch / median``, and a change is the ratio
``current / baseline`` of the same statistic. Results are read as records
(``qbench.reports.sources``); a saved baseline is a :class:`RegressBaseline` record.
"""

from qbench.regress.markdown import markdown_summary
from qbench.regress.options import BASELINE_KIND, METRICS, VERDICT_KIND, RegressOptions, parse_threshold
from qbench.regress.results import RegressBaseline, ResultSet, load_results, machine_warnings, save_baseline
from qbench.regress.verdict import (
    IMPROVED,
    MISSING,
    NOISY,
    OK,
    REGRESSION,
    Report,
    Row,
    compare,
    compare_accuracy,
    compare_latency,
    fmt_change,
    fmt_p,
    fmt_value,
    slower_p_value,
)

__all__ = [
    "BASELINE_KIND",
    "IMPROVED",
    "METRICS",
    "MISSING",
    "NOISY",
    "OK",
    "REGRESSION",
    "VERDICT_KIND",
    "RegressBaseline",
    "RegressOptions",
    "Report",
    "ResultSet",
    "Row",
    "compare",
    "compare_accuracy",
    "compare_latency",
    "fmt_change",
    "fmt_p",
    "fmt_value",
    "load_results",
    "machine_warnings",
    "markdown_summary",
    "parse_threshold",
    "save_baseline",
    "slower_p_value",
]
