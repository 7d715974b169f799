"""The hypervolume of each study's front as trials finished, every study overlaid."""

from __future__ import annotations

import plotly.graph_objects as go

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import STUDY_COLOURS, apply_layout
from autostudent.dashboard._figures.text import fmt_size


def hypervolume(studies: list[StudyData]) -> go.Figure:
    """The hypervolume of each study's front after every finished trial."""
    fig = go.Figure()
    for s, study in enumerate(studies):
        h = study.hv_history
        fig.add_trace(
            go.Scatter(
                x=h["finished"],
                y=h["hypervolume"],
                mode="lines+markers",
                name=study.name,
                line={"shape": "hv", "color": STUDY_COLOURS[s % len(STUDY_COLOURS)]},
                marker={"size": 5},
                customdata=h["trial"],
                hovertemplate="after %{x} finished trials (trial %{customdata}): "
                "HV %{y:.4f}<extra></extra>",
            )
        )
    refs = ", ".join(f"{k} {fmt_size(v, k)}" for k, v in (studies[0].hv_reference or {}).items())
    return apply_layout(
        fig,
        "Hypervolume over finished trials",
        height=360,
        xaxis_title="finished trials (COMPLETE + PRUNED), in the order they finished",
        yaxis_title=f"hypervolume (reference: {refs or 'none'})",
        xaxis_tickformat="d",
        showlegend=len(studies) > 1,
    )
