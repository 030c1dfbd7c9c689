"""Self-contained HTML reports (figures inline) built from a list of sections."""

from cascade_ml.report.html import Figure, Section, Table, Text, build_html, write_html

__all__ = ["Figure", "Section", "Table", "Text", "build_html", "write_html"]
