"""Writing an evaluation's outputs: the JSON report and its Markdown tables, side by side."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(out_dir: str | Path, report: dict, markdown: str,
                 markdown_name: str = "table.md") -> None:
    """``out_dir/report.json`` and ``out_dir/MARKDOWN_NAME`` (the folder is made)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    (folder / markdown_name).write_text(markdown)
