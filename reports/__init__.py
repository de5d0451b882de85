"""netae's HTML run report.

``render_report`` turns a ``ReportInputs`` (captures, packet table, model sections and
artifact locations) into one self-contained HTML document. The package needs numpy,
pandas, matplotlib and jinja2 only, never Prefect, Spark or TensorFlow.
"""

from reports.inputs import CaptureEntry, ModelSection, ReportInputs
from reports.render import render_report

__all__ = ["CaptureEntry", "ModelSection", "ReportInputs", "render_report"]
