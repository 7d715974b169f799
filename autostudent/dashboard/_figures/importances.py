"""Parameter importances (fANOVA) of one study, one panel per objective."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import STUDY_COLOURS, apply_layout, centre_note


def importances(study: StudyData) -> go.Figure:
    """fANOVA importance of each parameter for each objective (Optuna's importance evaluator),
    one panel per objective, most important at the top."""
    names = list(study.importances) or [""]
    fig = make_subplots(
        rows=1, cols=len(names), subplot_titles=[f"for {n}" for n in names], horizontal_spacing=0.18
    )
    for i, (objective, values) in enumerate(study.importances.items(), start=1):
        ordered = sorted(values.items(), key=lambda kv: kv[1])
        fig.add_trace(
            go.Bar(
                x=[v for _, v in ordered],
                y=[k for k, _ in ordered],
                orientation="h",
                name=objective,
                showlegend=False,
                marker={"color": STUDY_COLOURS[(i - 1) % len(STUDY_COLOURS)]},
                hovertemplate="%{y}: %{x:.3f}<extra>" + objective + "</extra>",
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(title_text="share of variance", row=1, col=i)
    if study.importance_note:
        centre_note(fig, study.importance_note)
    n = max((len(v) for v in study.importances.values()), default=3)
    return apply_layout(
        fig,
        f"Parameter importances (fANOVA, complete trials) — {study.name}",
        height=160 + 20 * n,
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
    )
