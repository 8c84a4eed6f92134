"""CI regression of latency numbers: current results vs a baseline, run by run.

The unit of evidence is one process run: each side contributes its per-run medians
(``LatencyStats.repeats`` from ``qbench bench --repeats R``, or the A/B runs of
``qbench regress --ab``). A variant x batch size is a REGRESSION only when the ratio of the
medians of run medians is slower by more than the threshold (read in the chosen metric: median
up, or throughput down, by it), than the baseline's own between-run noise and than an absolute
floor, and its bootstrap interval over runs lies beyond the threshold too; with too few runs it
is "inconclusive". A baseline variant missing, failed or skipped now fails the gate;
top-1 is gated per variant. Figures are defined as in the reports (median, throughput =
batch / median, change = current / baseline). See ``runs`` for the model, ``ab`` for A/B.
"""

from qbench.regress.ab import DEFAULT_AB_REPEATS, bench_ab
from qbench.regress.junit import junit_xml, write_junit
from qbench.regress.markdown import markdown_summary, model_sentence
from qbench.regress.options import BASELINE_KIND, METRICS, VERDICT_KIND, RegressOptions, parse_threshold
from qbench.regress.results import (
    RegressBaseline,
    ResultSet,
    check_same_model,
    load_results,
    load_stored_baseline,
    machine_warnings,
    save_baseline,
)
from qbench.regress.runs import RunComparison, compare_runs, run_medians
from qbench.regress.verdict import (
    IMPROVED,
    INCONCLUSIVE,
    MISSING,
    NOISY,
    NOT_COMPARED,
    OK,
    REGRESSION,
    VERDICTS,
    Report,
    Row,
    compare,
    compare_accuracy,
    compare_latency,
    fmt_change,
    fmt_interval,
    fmt_noise,
    fmt_runs,
    fmt_value,
)

__all__ = [
    "BASELINE_KIND",
    "DEFAULT_AB_REPEATS",
    "IMPROVED",
    "INCONCLUSIVE",
    "METRICS",
    "MISSING",
    "NOISY",
    "NOT_COMPARED",
    "OK",
    "REGRESSION",
    "VERDICTS",
    "VERDICT_KIND",
    "RegressBaseline",
    "RegressOptions",
    "Report",
    "ResultSet",
    "Row",
    "RunComparison",
    "bench_ab",
    "check_same_model",
    "compare",
    "compare_accuracy",
    "compare_latency",
    "compare_runs",
    "fmt_change",
    "fmt_interval",
    "fmt_noise",
    "fmt_runs",
    "fmt_value",
    "junit_xml",
    "load_results",
    "load_stored_baseline",
    "machine_warnings",
    "markdown_summary",
    "model_sentence",
    "parse_threshold",
    "run_medians",
    "save_baseline",
    "write_junit",
]
