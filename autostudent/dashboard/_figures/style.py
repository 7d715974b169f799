"""What every view shares: the colours, the base layout and a note for an empty figure."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import qualitative

STUDY_COLOURS = qualitative.Plotly
PRUNED = "#9aa0a6"
FAILED = "#d62728"
TEACHER = "#111111"
STATE_WORDS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}
STATE_COLOURS = {"COMPLETE": "#1f77b4", "PRUNED": PRUNED, "FAIL": FAILED, "RUNNING": "#2ca02c"}
BASE_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "font": {"size": 12},
    "uirevision": "keep",  # the live view keeps zoom and selections across reloads
}


def apply_layout(fig: go.Figure, title: str, **extra) -> go.Figure:
    fig.update_layout(**{**BASE_LAYOUT, **extra}, title={"text": title, "x": 0.01})
    return fig


def centre_note(fig: go.Figure, text: str) -> None:
    """A message in the middle of an empty figure, axes hidden."""
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
