"""Reports: load workspaces into a report context, render it with Jinja, write every format.

Entry point for other steps: :func:`qbench.reports.writers.write_reports`.
"""
