"""Number formatting shared by the Python context builder and the Jinja filters.

Every helper returns a string; ``None`` (a value the record does not hold) becomes
``n/a (<reason>)`` so a report never shows a blank or an invented number.
"""

from __future__ import annotations

import math
import re
from typing import Any


def na(reason: str) -> str:
    return f"n/a ({reason})"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def num(value: Any, digits: int = 2, reason: str = "not recorded", suffix: str = "") -> str:
    """``%.{digits}f`` with thousands separators: 1234.5 -> '1,234.50'."""
    if _missing(value):
        return na(reason)
    return f"{float(value):,.{digits}f}{suffix}"


def plain(value: Any, digits: int = 2, reason: str = "not recorded", suffix: str = "") -> str:
    """``%.{digits}f`` without separators (the reference report's tables)."""
    if _missing(value):
        return na(reason)
    return f"{float(value):.{digits}f}{suffix}"


def thousands(value: Any, reason: str = "not recorded") -> str:
    """57012034 -> '57,012,034'."""
    if _missing(value):
        return na(reason)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def mb(value: Any, reason: str = "not recorded") -> str:
    """217.4815 -> '217.48 MB' (MiB, printed as MB like reference 000)."""
    return num(value, 2, reason, " MB")


def mega(value: Any, reason: str = "not recorded") -> str:
    """710119008 -> '710.119M' (FLOPs as reference 000 prints them)."""
    if _missing(value):
        return na(reason)
    return f"{float(value) / 1e6:.3f}M"


def pct(value: Any, digits: int = 2, reason: str = "not recorded") -> str:
    return plain(value, digits, reason, "%")


def signed(value: Any, digits: int = 2, reason: str = "not recorded", suffix: str = "") -> str:
    if _missing(value):
        return na(reason)
    return f"{float(value):+.{digits}f}{suffix}"


def ratio(value: Any, digits: int = 2, reason: str = "not recorded") -> str:
    """2.00x; a ratio below 0.1 keeps two significant digits (0.00065x, not 0.00x)."""
    if not _missing(value) and 0 < abs(float(value)) < 0.1:
        return f"{float(value):.2g}x"
    return plain(value, digits, reason, "x")


def dash(value: Any, digits: int = 2, sign: bool = False) -> str:
    """A number for a LaTeX table cell: '--' where the record holds none (the reason is in the text)."""
    if _missing(value):
        return "--"
    return f"{float(value):{'+' if sign else ''}.{digits}f}"


def short_float(value: Any, reason: str = "not recorded") -> str:
    """Learning rates and weight decay as Python prints them: 0.0001, 1e-05."""
    if _missing(value):
        return na(reason)
    return repr(float(value)) if not isinstance(value, str) else value


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIALS))
_LATEX_UNICODE = {
    "×": r"$\times$",
    "Δ": r"$\Delta$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "•": r"\textbullet{}",
    "→": r"$\rightarrow$",
    "–": "--",
}


def latex(value: Any) -> str:
    """Escape text for LaTeX (pdflatex-safe: a few Unicode symbols become math)."""
    text = _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], str(value))
    for char, repl in _LATEX_UNICODE.items():
        text = text.replace(char, repl)
    return text


def markdown_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")
