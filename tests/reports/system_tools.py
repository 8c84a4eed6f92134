"""Install a Debian package the report consumers need (Chromium, TeX) when it is missing.

The suite CI runs checks every format with its real consumer, so where the tool is absent
and the tests run as root the set-up installs it once with apt-get; elsewhere (or if that
fails) the test skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure_tool(tool: str, packages: list[str]) -> str:
    """The path of ``tool``, installing ``packages`` with apt-get first when it is missing."""
    found = shutil.which(tool)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip(
            f"{tool} is not installed and the tests do not run as root to install {' '.join(packages)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    for cmd in (["apt-get", "update"], install):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"could not install {tool} ({' '.join(cmd)}: {exc})")
        if proc.returncode != 0:
            pytest.skip(f"could not install {tool} ({' '.join(cmd)} failed: {proc.stderr.strip()[-300:]})")
    found = shutil.which(tool)
    if not found:
        pytest.skip(f"apt-get installed {' '.join(packages)} but {tool} is still missing")
    return found


TEX_PACKAGES = ["texlive-latex-base", "texlive-latex-recommended", "texlive-fonts-recommended"]


def compile_latex(reports, tmp_path) -> subprocess.CompletedProcess:
    """Compile ``reports/report.tex`` \\input into a minimal document with pdflatex (installed where
    missing); the completed process, with main.pdf beside it in ``tmp_path``."""
    pdflatex = ensure_tool("pdflatex", TEX_PACKAGES)
    main = tmp_path / "main.tex"
    main.write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}"
        "\\usepackage[margin=1cm]{geometry}\n"
        f"\\newcommand{{\\qbenchfigdir}}{{{reports.as_posix()}/figures/}}\n"
        f"\\begin{{document}}\\input{{{reports.as_posix()}/report.tex}}\\end{{document}}\n"
    )
    return subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", main.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
