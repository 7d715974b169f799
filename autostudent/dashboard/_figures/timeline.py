"""The timeline: one study's trials per Ray worker over time."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.style import STATE_COLOURS, STATE_WORDS, apply_layout
from autostudent.dashboard._figures.text import hover_text


def timeline(study: StudyData) -> go.Figure:
    """Each trial as a bar from proposal to result, one lane per Ray worker process."""
    t = study.trials.dropna(subset=["start"]).copy()
    t["end"] = t["complete"].fillna(pd.Timestamp.now())
    fig = go.Figure()
    lanes = sorted(t["worker"].unique(), key=lambda w: (w == "driver", w))
    for state, colour in STATE_COLOURS.items():
        rows = t[t["state"] == state]
        if rows.empty:
            continue
        duration = (rows["end"] - rows["start"]).dt.total_seconds() * 1000
        fig.add_trace(
            go.Bar(
                base=rows["start"],
                x=duration.clip(lower=300),
                y=rows["worker"],
                orientation="h",
                name=STATE_WORDS[state],
                marker={"color": colour},
                hovertext=rows.apply(hover_text, axis=1),
                hoverinfo="text",
                customdata=rows["number"],
                text=rows["number"].astype(str),
                textposition="inside",
                insidetextanchor="middle",
            )
        )
    return apply_layout(
        fig,
        f"Trials per worker over time — {study.name}",
        height=140 + 40 * max(len(lanes), 1),
        barmode="overlay",
        xaxis={"type": "date", "title": "time"},
        yaxis={"title": "worker (Ray node:pid)", "categoryorder": "array", "categoryarray": lanes},
    )
