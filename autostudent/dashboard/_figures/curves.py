"""Learning curves: validation accuracy per epoch of one study's trials."""

from __future__ import annotations

import plotly.graph_objects as go

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import (
    PRUNED,
    STATE_COLOURS,
    STUDY_COLOURS,
    TEACHER,
    apply_layout,
)
from autostudent.dashboard._figures.text import hover_text


def curves(study: StudyData) -> go.Figure:
    """Validation accuracy per epoch of every trial, by outcome; the front in bold."""
    fig = go.Figure()
    t = study.trials
    front = t[f"front_{study.size_objective}"]
    shown_legend: set[str] = set()
    for idx, row in t.iterrows():
        if not row["curve"]:
            continue
        kind = "Pareto front" if front[idx] else row["state"].lower()
        colour = STUDY_COLOURS[0] if front[idx] else STATE_COLOURS.get(row["state"], PRUNED)
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(row["curve"]) + 1)),
                y=row["curve"],
                mode="lines+markers",
                name=kind,
                legendgroup=kind,
                showlegend=kind not in shown_legend,
                line={"color": colour, "width": 3 if front[idx] else 1},
                opacity=1.0 if front[idx] else 0.45,
                marker={"size": 5},
                hovertext=hover_text(row),
                hoverinfo="text",
            )
        )
        shown_legend.add(kind)
    teacher = study.teacher.get("val_accuracy")
    if teacher:
        fig.add_hline(
            y=teacher,
            line={"dash": "dot", "color": TEACHER, "width": 1},
            annotation_text="teacher",
            annotation_position="top left",
        )
    return apply_layout(
        fig,
        f"Learning curves — {study.name}",
        height=380,
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy", "tickformat": ".0%"},
    )
