"""Dashboards of a study database: a static, self-contained HTML report and a live Dash view.

    write_report([load_study_data(url, "my-study")], Path("report.html"))
    serve([StudySource(url, "my-study")], host="127.0.0.1", port=8050)

Both draw the views of ``VIEWS`` (``_figures``) from ``StudyData`` (``_data``), read from the
study database alone.
"""

from __future__ import annotations

from pathlib import Path

from autostudent.dashboard._data import StudyData, StudySource, load_study_data
from autostudent.dashboard._figures import VIEWS, figures
from autostudent.dashboard._page import render_report

__all__ = [
    "VIEWS",
    "StudyData",
    "figures",
    "load_study_data",
    "render_report",
    "serve",
    "write_report",
]


def write_report(studies: list[StudyData], out: Path) -> Path:
    """Write the report atomically (a reader never sees half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    try:
        tmp.write_text(render_report(studies), encoding="utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def serve(
    sources: list[StudySource],
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    refresh_seconds: float = 5.0,
) -> None:
    """Serve the live view until interrupted."""
    import logging

    from autostudent.dashboard._app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per poll
    app = create_app(sources, refresh_seconds)
    app.run(host=host, port=port, debug=False)
