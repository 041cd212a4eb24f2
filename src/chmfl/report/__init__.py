"""Tables, figures and a self-contained HTML report built from a results folder only (no torch)."""

from chmfl.report.build import ReportPaths, build_report

__all__ = ["ReportPaths", "build_report"]
